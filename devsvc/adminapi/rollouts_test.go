package adminapi

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	"github.com/google/go-cmp/cmp"

	pb "github.com/opendus/opendus/devsvc/adminapi/adminpb"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

var cx600 = firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"}

// importVersion imports a one-file update of cx600 at v through the API.
func importVersion(t *testing.T, h *harness, v string) {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{cx600.Path() + "/" + v + "/CX600.nbt": "image " + v})
	if _, err := h.client.ImportTree(ctx(t), dir, nil); err != nil {
		t.Fatal(err)
	}
}

// writeTree writes path -> content under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestListDevicesStreamsAFleetUnder4MiB lists a fleet whose devices take
// many times a client's default 4 MiB message limit, with a client that
// keeps that limit (as grpcurl does): every device arrives, in key order,
// and no message is larger than a MiB and a device.
func TestListDevicesStreamsAFleetUnder4MiB(t *testing.T) {
	h := newHarness(t)
	const n = 20000
	mods := make([]firmware.Module, 40)
	for i := range mods {
		mods[i] = firmware.Module{Name: fmt.Sprintf("Module%02d.nbt", i), Version: firmware.MustParseVersion("4.0.7577.4372"), Timestamp: "2025-01-02T03:04:05"}
	}
	for i := range n {
		d := firmware.Device{MAC: fmt.Sprintf("00-04-F2-%02X-%02X-%02X", i>>16, i>>8&0xff, i&0xff), Serial: fmt.Sprintf("SN%08d", i),
			Identity: cx600, Version: firmware.MustParseVersion("4.0.7577.4372"), Modules: mods, User: fmt.Sprintf("user%d@contoso.com", i),
			Site: fmt.Sprintf("site-%d", i%7)}
		if err := h.st.RecordCheckIn(ctx(t), d); err != nil {
			t.Fatal(err)
		}
	}
	// A client with grpc's default receive limit, 4 MiB.
	conf, err := h.cs.ClientTLSConfig("admin")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(credentials.NewTLS(conf)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// 20,000 devices under the race detector on a loaded machine take
	// more than ctx's 30 s: a deadline for correctness, not speed.
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stream, err := pb.NewAdminClient(conn).ListDevices(sctx, &pb.ListDevicesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var (
		keys       []string
		total      int64
		messages   int
		largest    int
		allDevices int
	)
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d messages: %v", messages, err)
		}
		if messages == 0 {
			total = m.GetTotal()
		}
		messages++
		largest = max(largest, proto.Size(m))
		allDevices += proto.Size(m)
		for _, d := range m.GetDevices() {
			keys = append(keys, d.GetKey())
		}
	}
	t.Logf("%d devices, %.1f MiB in %d messages, the largest %.2f MiB", len(keys), float64(allDevices)/(1<<20), messages, float64(largest)/(1<<20))
	if len(keys) != n || total != n {
		t.Fatalf("listed %d devices (total %d), want %d", len(keys), total, n)
	}
	if allDevices < 4<<20*4 {
		t.Errorf("the fleet takes %d bytes: not many times 4 MiB, the test proves nothing", allDevices)
	}
	if largest > maxReplyBytes+64<<10 {
		t.Errorf("the largest message is %d bytes, want at most %d and a device", largest, maxReplyBytes)
	}
	for i := 1; i < len(keys); i++ {
		if keys[i-1] >= keys[i] {
			t.Fatalf("keys out of order at %d: %s, %s", i, keys[i-1], keys[i])
		}
	}

	// The client API: a filter, a limit and the cursor to go on.
	var got []string
	l, err := h.client.ListDevices(ctx(t), DeviceFilter{Site: "site-3", Limit: 5}, func(d store.DeviceRow) error {
		got = append(got, d.Key)
		if d.Site != "site-3" || len(d.Modules) != 40 || d.Cohort != firmware.Cohort(d.Key) {
			t.Errorf("device %+v", d)
		}
		return nil
	})
	if err != nil || len(got) != 5 || l.Total != (n+3)/7 || l.Next != got[4] {
		t.Fatalf("ListDevices(site-3, limit 5) = %v, %+v, %v", got, l, err)
	}
	var more []string
	l, err = h.client.ListDevices(ctx(t), DeviceFilter{Site: "site-3", After: l.Next, Limit: 3, PageSize: 2}, func(d store.DeviceRow) error {
		more = append(more, d.Key)
		return nil
	})
	if err != nil || len(more) != 3 || more[0] <= got[4] || l.Total != -1 || l.Messages != 2 {
		t.Errorf("the next page = %v, %+v, %v; want 3 devices after %s in 2 messages", more, l, err, got[4])
	}
	_, err = h.client.ListDevices(ctx(t), DeviceFilter{State: "lost"}, func(store.DeviceRow) error { return nil })
	if codeOf(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "want waiting, offered") {
		t.Errorf("a bad state: %v, want InvalidArgument naming the states", err)
	}
}

// TestRolloutsOverTheAPI: sites, a rollout's life, its progress and the
// refusals, through the client; every refusal has the code of what it is.
func TestRolloutsOverTheAPI(t *testing.T) {
	h := newHarness(t)
	c := h.client
	importVersion(t, h, "4.0.7577.100")
	if _, err := c.Approve(ctx(t), cx600.Path()); err != nil {
		t.Fatal(err)
	}
	importVersion(t, h, "4.0.7577.200")
	site := firmware.Site{Name: "berlin", Subnets: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, TimeZone: "Europe/Berlin",
		Windows: firmware.MustParseSchedule("Mon-Fri 22:00-05:00"), NoPeers: true}
	if got, err := c.PutSite(ctx(t), site, false); err != nil || !got.Equal(site) {
		t.Fatalf("PutSite = %+v, %v", got, err)
	}
	for _, tt := range []struct {
		name string
		site firmware.Site
		code codes.Code
	}{
		{"the same again", site, codes.OK}, // adds are idempotent
		{"exists", firmware.Site{Name: "berlin", Subnets: site.Subnets, TimeZone: "UTC"}, codes.AlreadyExists},
		{"bad zone", firmware.Site{Name: "mars", TimeZone: "Mars/Olympus"}, codes.InvalidArgument},
		{"clash", firmware.Site{Name: "b2", Subnets: site.Subnets}, codes.InvalidArgument},
	} {
		if _, err := c.PutSite(ctx(t), tt.site, false); codeOf(err) != tt.code {
			t.Errorf("PutSite %s: %v, want %v", tt.name, err, tt.code)
		}
	}
	for i := range 10 {
		h.st.RecordCheckIn(ctx(t), firmware.Device{MAC: fmt.Sprintf("00-04-F2-00-00-%02X", i), Identity: cx600,
			Version: firmware.MustParseVersion("4.0.7577.100"), Site: "berlin"})
	}
	sites, err := c.Sites(ctx(t))
	if err != nil || len(sites) != 1 || sites[0].Devices != 10 || !sites[0].Site.Equal(site) {
		t.Errorf("Sites = %+v, %v", sites, err)
	}

	plan := firmware.Plan{Waves: firmware.Waves{500, 5000, firmware.Whole}, WaveWait: 2 * time.Hour, Success: 8000,
		MaxFailures: firmware.FailureCount(3), Window: firmware.MustParseSchedule("Sat,Sun 00:00-24:00"), MaxDownloads: 50}
	ro, err := c.StartRollout(ctx(t), cx600.Path(), plan)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(plan, ro.Plan); diff != "" || ro.State != firmware.RolloutRunning || ro.By != "cert:admin" {
		t.Errorf("StartRollout = %+v; plan (-want +got):\n%s", ro, diff)
	}
	for _, tt := range []struct {
		name string
		call func() error
		code codes.Code
	}{
		{"second rollout", func() error { _, err := c.StartRollout(ctx(t), cx600.Path(), plan); return err }, codes.FailedPrecondition},
		{"approve during it", func() error { _, err := c.Approve(ctx(t), cx600.Path()); return err }, codes.FailedPrecondition},
		{"resume a running one", func() error { _, err := c.ResumeRollout(ctx(t), cx600.Path()); return err }, codes.FailedPrecondition},
		{"no such rule", func() error { _, err := c.PauseRollout(ctx(t), "UCPhone/Polycom/CX999/A/ENU", ""); return err }, codes.NotFound},
		{"bad waves", func() error {
			_, err := h.client.c.StartRollout(ctx(t), &pb.StartRolloutRequest{Rule: cx600.Path(), Plan: &pb.Plan{Waves: "50%,10%"}})
			return h.client.wrap(err)
		}, codes.InvalidArgument},
		{"bad window", func() error {
			_, err := h.client.c.StartRollout(ctx(t), &pb.StartRolloutRequest{Rule: cx600.Path(), Plan: &pb.Plan{Window: "nightly"}})
			return h.client.wrap(err)
		}, codes.InvalidArgument},
	} {
		if err := tt.call(); codeOf(err) != tt.code {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.code)
		}
	}
	if ro, err := c.PauseRollout(ctx(t), cx600.Path(), "tickets from berlin"); err != nil || ro.State != firmware.RolloutPaused || ro.Reason != "tickets from berlin" {
		t.Errorf("PauseRollout = %+v, %v", ro, err)
	}
	pr, err := c.RolloutProgress(ctx(t), cx600.RuleID())
	if err != nil {
		t.Fatal(err)
	}
	if len(pr.Waves) != 3 || pr.Total.Devices != 10 || len(pr.Sites) != 1 || pr.Sites[0].Site != "berlin" || pr.Waves[1].From != 500 || pr.Waves[1].To != 5000 {
		t.Errorf("RolloutProgress = %+v", pr)
	}
	list, err := c.Rollouts(ctx(t))
	if err != nil || len(list) != 1 || list[0].State != firmware.RolloutPaused || list[0].Total.Devices != 10 {
		t.Errorf("Rollouts = %+v, %v", list, err)
	}
	if _, err := c.ResumeRollout(ctx(t), cx600.Path()); err != nil {
		t.Fatal(err)
	}
	if ro, err := c.StopRollout(ctx(t), cx600.Path()); err != nil || ro.State != firmware.RolloutStopped {
		t.Errorf("StopRollout = %+v, %v", ro, err)
	}
	if alarms, err := c.Alarms(ctx(t), true); err != nil || len(alarms) != 0 {
		t.Errorf("Alarms = %+v, %v", alarms, err)
	}
	rules, err := c.RulesWithDevices(ctx(t))
	if err != nil || len(rules) != 1 || rules[0].Devices != 10 || rules[0].OnApproved != 10 || rules[0].OnPending != 0 {
		t.Errorf("RulesWithDevices = %+v, %v", rules, err)
	}
	d, err := c.Device(ctx(t), "00:04:f2:00:00:03")
	if err != nil || d.Site != "berlin" || len(d.History) != 1 || d.History[0].Kind != firmware.DeviceCheckIn {
		t.Errorf("Device = %+v, %v", d, err)
	}
	if _, err := c.Device(ctx(t), "00-04-F2-99-99-99"); codeOf(err) != codes.NotFound {
		t.Errorf("Device of an unknown MAC = %v, want NotFound", err)
	}
	if err := c.RemoveSite(ctx(t), "berlin"); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Status(ctx(t)); err != nil || st.Alarms != 0 {
		t.Errorf("Status = %+v, %v", st, err)
	}
}
