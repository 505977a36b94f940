package adminapi

import (
	"encoding"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/opendus/opendus/devsvc/adminapi/adminpb"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// jsonFields returns the JSON names encoding/json gives the fields of
// struct type t (embedded structs' fields promoted), with their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				if _, ok := out[k]; !ok {
					out[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// elem is the struct type a field of type t holds (through pointers,
// slices and maps), or nil when it is a value encoding/json writes as a
// string or number (a Version, a time).
func elem(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeFor[time.Time]() || t.Implements(reflect.TypeFor[encoding.TextMarshaler]()) {
		return nil
	}
	return t
}

// grpcOnly are the JSON names of the gRPC mapping that the CLI's --json
// writes elsewhere, by message and name, with where (docs/cli-json.md
// lists them): the CLI gives a few values a shape of their own.
var grpcOnly = map[string]string{
	"StatusReply.rules":       "counts.rules",
	"StatusReply.updates":     "counts.updates",
	"StatusReply.devices":     "counts.devices",
	"StatusReply.testDevices": "counts.testDevices",
	"StatusReply.accounts":    "counts.accounts",
	"Rollout.plan":            "the plan's fields are the rollout's own (waves, waveWait, ...)",
	"SiteStats.stats":         "the counts are the site's own (devices, waiting, ...)",
	"File.sha256":             "not printed: devsvc bundle check and the store verify files",
	// Messages the CLI prints in a context with less (by the Go type).
	"firmware.Rule.devices":     "counted in devsvc rules (RuleInfo), not in an import's rule",
	"firmware.Rule.onApproved":  "counted in devsvc rules (RuleInfo)",
	"firmware.Rule.onPending":   "counted in devsvc rules (RuleInfo)",
	"firmware.Rollout.approval": "rollout show has it beside the rollout; rollouts in each",
	"firmware.Rollout.total":    "rollout show has it beside the rollout; rollouts in each",
}

// TestJSONNamesAgreeWithGRPC checks that the admin API's JSON mapping (what
// grpcurl prints: protobuf's lowerCamelCase of the .proto field names)
// and the CLI's --json (the JSON names of the types the client returns)
// name every value the same, message by message and field by field,
// except the few the CLI shapes otherwise (grpcOnly). A field added to a
// message or a type under another name fails here.
func TestJSONNamesAgreeWithGRPC(t *testing.T) {
	pairs := []struct {
		msg  proto.Message
		goes any
	}{
		{&pb.Rule{}, RuleInfo{}},
		{&pb.StatusReply{}, Status{}},
		{&pb.ImportResult{}, ImportResult{}},
		{&pb.Update{}, firmware.Update{}},
		{&pb.TestDevice{}, firmware.TestDevice{}},
		{&pb.Account{}, firmware.Account{}},
		{&pb.Device{}, store.DeviceRow{}},
		{&pb.Event{}, firmware.Event{}},
		{&pb.AdminCertificate{}, firmware.AdminCert{}},
		{&pb.ConsoleAdmin{}, firmware.ConsoleAdmin{}},
		{&pb.Site{}, SiteInfo{}},
		{&pb.Rollout{}, RolloutInfo{}},
		{&pb.RolloutProgress{}, store.RolloutProgress{}},
		{&pb.Alarm{}, firmware.Alarm{}},
	}
	seen, used := map[string]bool{}, map[string]bool{}
	var check func(md protoreflect.MessageDescriptor, gt reflect.Type)
	check = func(md protoreflect.MessageDescriptor, gt reflect.Type) {
		key := string(md.Name()) + " " + gt.String()
		if seen[key] {
			return
		}
		seen[key] = true
		names := jsonFields(gt)
		fields := md.Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			name := fd.JSONName()
			where := string(md.Name()) + "." + name
			if _, ok := grpcOnly[gt.String()+"."+name]; ok {
				used[gt.String()+"."+name] = true
				continue
			}
			if _, ok := grpcOnly[where]; ok {
				used[where] = true
				if _, both := names[name]; both {
					t.Errorf("%s is in grpcOnly, but %s has it too: take it out of grpcOnly", where, gt)
				}
				if fd.Message() != nil && name == "plan" {
					check(fd.Message(), gt) // flattened into the rollout
				}
				if fd.Message() != nil && name == "stats" {
					check(fd.Message(), gt)
				}
				continue
			}
			ft, ok := names[name]
			if !ok {
				have := make([]string, 0, len(names))
				for n := range names {
					have = append(have, n)
				}
				slices.Sort(have)
				t.Errorf("gRPC JSON %s (%s): %s has no JSON field %q; it has %s", where, fd.FullName(), gt, name, strings.Join(have, ", "))
				continue
			}
			if m := fd.Message(); m != nil && !strings.HasPrefix(string(m.FullName()), "google.protobuf.") {
				if et := elem(ft); et != nil {
					check(m, et)
				}
			}
		}
	}
	for _, p := range pairs {
		check(p.msg.ProtoReflect().Descriptor(), reflect.TypeOf(p.goes))
	}
	for k := range grpcOnly {
		if !used[k] {
			t.Errorf("grpcOnly names %s, which no message has: take it out", k)
		}
	}
}
