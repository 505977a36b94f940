package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/datadir"
)

// jsonFixture is what the --json cases run on: a data directory with a
// running server, files to import and pack, and names they use.
type jsonFixture struct {
	dir, tree, newTree, cab, backup, newDir, certPrefix string
	replicaDir                                          string // a replica's data directory, made by init --replica-of
	noKeys                                              string // a data directory's settings, no signing keys
}

// jsonCase is one command line whose --json output is checked.
type jsonCase struct {
	name  string // the command and its subcommand, as the command table names them
	args  []string
	stdin string
}

// jsonCases are the command lines that print JSON, in an order that
// builds what the later ones need. TestEveryJSONCommandIsChecked makes
// sure every command and subcommand is here or in noJSON.
func jsonCases(f jsonFixture) []jsonCase {
	const pw = "correct horse battery staple\n"
	return []jsonCase{
		{name: "init", args: []string{"init", "--data", f.newDir, "--domain", "fabrikam.com"}},
		{name: "version", args: []string{"version"}},
		{name: "status", args: []string{"status"}},
		{name: "bundle describe", args: []string{"bundle", "describe", f.tree}},
		{name: "bundle check", args: []string{"bundle", "check", f.tree}},
		{name: "bundle pack", args: []string{"bundle", "pack", f.tree, "-o", f.cab}},
		{name: "cab list", args: []string{"cab", "list", f.cab}},
		{name: "cab test", args: []string{"cab", "test", f.cab}},
		{name: "import", args: []string{"import", f.cab}},
		{name: "rules", args: []string{"rules"}},
		{name: "testdevices add", args: []string{"testdevices", "add", "--mac", "00-04-F2-00-00-01", "--note", "lab"}},
		{name: "testdevices list", args: []string{"testdevices", "list"}},
		{name: "accounts add", args: []string{"accounts", "add", "alice", "--password-stdin"}, stdin: pw},
		{name: "accounts passwd", args: []string{"accounts", "passwd", "alice", "--password-stdin"}, stdin: pw},
		{name: "accounts disable", args: []string{"accounts", "disable", "alice"}},
		{name: "accounts enable", args: []string{"accounts", "enable", "alice"}},
		{name: "accounts list", args: []string{"accounts", "list"}},
		{name: "admins add", args: []string{"admins", "add", "bob", "--password-stdin"}, stdin: pw},
		{name: "admins passwd", args: []string{"admins", "passwd", "bob", "--password-stdin"}, stdin: pw},
		{name: "admins disable", args: []string{"admins", "disable", "bob"}},
		{name: "admins enable", args: []string{"admins", "enable", "bob"}},
		{name: "admins list", args: []string{"admins", "list"}},
		{name: "sites add", args: []string{"sites", "add", "remote"}},
		{name: "sites update", args: []string{"sites", "update", "remote", "--window", "Sat,Sun 00:00-24:00"}},
		{name: "sites update", args: []string{"sites", "update", "remote", "--no-peers"}},
		{name: "sites list", args: []string{"sites", "list"}},
		{name: "sites add", args: []string{"sites", "add", "paris", "--subnet", "10.9.0.0/16"}},
		{name: "replicas add", args: []string{"replicas", "add", "paris", "--site", "paris", "-o", f.certPrefix + ".cred"}},
		{name: "replicas list", args: []string{"replicas", "list"}},
		{name: "replicas remove", args: []string{"replicas", "remove", "paris", "--reason", "test"}},
		{name: "init", args: []string{"init", "--data", f.replicaDir, "--replica-of", "127.0.0.1:9443", "--credentials", f.certPrefix + ".cred"}},
		{name: "rollout start", args: []string{"rollout", "start", cx600, "--wave-wait", "90m"}},
		{name: "rollout pause", args: []string{"rollout", "pause", cx600, "--reason", "tickets"}},
		{name: "rollout resume", args: []string{"rollout", "resume", cx600}},
		{name: "rollout show", args: []string{"rollout", "show", cx600}},
		{name: "rollouts", args: []string{"rollouts"}},
		{name: "rollout stop", args: []string{"rollout", "stop", cx600}},
		{name: "alarms", args: []string{"alarms", "--all"}},
		{name: "approve", args: []string{"approve", cx600}},
		{name: "import", args: []string{"import", f.newTree}},
		{name: "reject", args: []string{"reject", cx600}},
		{name: "restore", args: []string{"restore", cx600, "--withdraw"}},
		{name: "remove", args: []string{"remove", hp4120}},
		{name: "purge", args: []string{"purge"}},
		{name: "devices", args: []string{"devices"}},
		{name: "devices", args: []string{"devices", "--summary"}},
		{name: "devices show", args: []string{"devices", "show", "00-04-F2-00-00-01"}},
		{name: "history", args: []string{"history"}},
		{name: "backup", args: []string{"backup", f.backup}},
		{name: "restore-backup", args: []string{"restore-backup", f.backup, "--data", f.newDir}},
		{name: "certs list", args: []string{"certs", "list"}},
		{name: "certs renew", args: []string{"certs", "renew"}},
		{name: "certs issue", args: []string{"certs", "issue", "helpdesk", "-o", f.certPrefix}},
		{name: "certs revoke", args: []string{"certs", "revoke", "helpdesk", "--reason", "test"}},
		{name: "keys list", args: []string{"keys", "list"}},
		{name: "keys rotate", args: []string{"keys", "rotate"}},
		{name: "keys init", args: []string{"keys", "init", "--data", f.noKeys}},
		{name: "dns", args: []string{"dns", "--address", "10.0.0.5"}},
		{name: "testdevices remove", args: []string{"testdevices", "remove", "00-04-F2-00-00-01"}},
		{name: "accounts remove", args: []string{"accounts", "remove", "alice"}},
		{name: "admins remove", args: []string{"admins", "remove", "bob"}},
		{name: "sites remove", args: []string{"sites", "remove", "remote"}},
	}
}

// noJSON are the commands that print no JSON of their own, and why.
var noJSON = map[string]string{
	"serve":        "runs the service; its log is JSON with --log-format json",
	"completion":   "prints a shell script",
	"certs export": "writes the CA certificate itself (PEM or DER)",
	"keys export":  "writes the root metadata itself (JSON already) or the root key",
	"cab extract":  "prints nothing",
	"cab pack":     "prints nothing (bundle pack --json reports)",
}

const hp4120 = "UCPhone/HP/4120/A/ENU"

// lowerCamel is the form of every key (docs/cli-json.md).
var lowerCamel = regexp.MustCompile(`^[a-z][a-zA-Z0-9]*$`)

// checkJSON checks out, one JSON value, against the conventions of
// docs/cli-json.md: keys in lowerCamelCase, no null (an empty list is
// []), no zero time (a time not set is left out), durations as strings.
func checkJSON(out string) []string {
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return []string{fmt.Sprintf("not JSON: %v", err)}
	}
	if _, err := dec.Token(); err != io.EOF {
		return []string{"more than one JSON value"}
	}
	var problems []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case nil:
			problems = append(problems, path+" is null: an empty list is [], a value not set is left out")
		case map[string]any:
			for k, e := range v {
				if !lowerCamel.MatchString(k) {
					problems = append(problems, fmt.Sprintf("%s.%s: the key is not lowerCamelCase", path, k))
				}
				if k == "waveWait" {
					if s, ok := e.(string); !ok {
						problems = append(problems, fmt.Sprintf("%s.%s = %v: a duration is a string like \"24h\"", path, k, e))
					} else if _, err := time.ParseDuration(s); err != nil {
						problems = append(problems, fmt.Sprintf("%s.%s = %q: %v", path, k, s, err))
					}
				}
				walk(path+"."+k, e)
			}
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		case string:
			if strings.HasPrefix(v, "0001-01-01T") {
				problems = append(problems, fmt.Sprintf("%s = %q: a time not set is left out", path, v))
			}
		}
	}
	walk("$", v)
	return problems
}

// TestJSONConventions runs every command that prints JSON with --json,
// in-process against a real devsvc serve whose data directory has a
// catalog, devices, sites, a rollout, accounts, console admins and
// certificates, and checks each output against docs/cli-json.md: its
// keys, and every remove of a thing printing {"removed": NAME}.
func TestJSONConventions(t *testing.T) {
	dir := startServerWithFleet(t, 6, "4.0.7577.100")
	tmp := t.TempDir()
	f := jsonFixture{
		dir: dir,
		tree: writeFiles(t, map[string]string{
			cx600 + "/4.0.7577.200/CX600.nbt": "image 200",
			hp4120 + "/4.0.7577.100/4120.nbt": "image 4120",
			hp4120 + "/4.0.7577.100/4120.cat": "catalog 4120",
			cx600 + "/4.0.7577.200/CX600.cat": "catalog 200",
		}),
		newTree:    writeFiles(t, map[string]string{cx600 + "/4.0.7577.300/CX600.nbt": "image 300"}),
		cab:        filepath.Join(tmp, "UCUpdates.cab"),
		backup:     filepath.Join(tmp, "backup.tar"),
		newDir:     filepath.Join(tmp, "new"),
		certPrefix: filepath.Join(tmp, "helpdesk"),
		noKeys:     filepath.Join(tmp, "nokeys"),
		replicaDir: filepath.Join(tmp, "replica"),
	}
	conf, err := os.ReadFile(filepath.Join(dir, datadir.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(f.noKeys, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.noKeys, datadir.ConfigFile), conf, 0o640); err != nil {
		t.Fatal(err)
	}
	for _, c := range jsonCases(f) {
		args := append([]string{"--data", dir}, c.args...)
		args = append(args, "--json")
		var o, e bytes.Buffer
		if code := Main(t.Context(), args, strings.NewReader(c.stdin), &o, &e); code != 0 {
			t.Errorf("devsvc %s --json: exit %d\n%s%s", strings.Join(c.args, " "), code, o.String(), e.String())
			continue
		}
		for _, p := range checkJSON(o.String()) {
			t.Errorf("devsvc %s --json: %s\n%s", strings.Join(c.args, " "), p, o.String())
		}
		if strings.HasSuffix(c.name, " remove") {
			name := c.args[len(strings.Fields(c.name))]
			var got map[string]any
			if err := json.Unmarshal(o.Bytes(), &got); err != nil || len(got) != 1 || got["removed"] != name {
				t.Errorf("devsvc %s --json = %s, want {\"removed\": %q} (docs/cli-json.md)", strings.Join(c.args, " "), o.String(), name)
			}
		}
	}
}

// TestEveryJSONCommandIsChecked: every command and subcommand of the
// command table is one TestJSONConventions runs, or one that prints no
// JSON (noJSON), so a command added later is checked or this fails.
func TestEveryJSONCommandIsChecked(t *testing.T) {
	cases := jsonCases(jsonFixture{})
	checked := map[string]bool{}
	for _, c := range cases {
		if !slices.Equal(strings.Fields(c.name), c.args[:len(strings.Fields(c.name))]) {
			t.Errorf("case %q runs %q", c.name, c.args)
		}
		checked[c.name] = true
	}
	for _, c := range completionModel().Commands {
		if c.Name == "help" {
			continue
		}
		names := []string{c.Name}
		if len(c.Subs) > 0 && noJSON[c.Name] == "" {
			names = nil
			for _, s := range c.Subs {
				names = append(names, c.Name+" "+s)
			}
		}
		for _, n := range names {
			if !checked[n] && noJSON[n] == "" {
				t.Errorf("devsvc %s is neither in jsonCases (TestJSONConventions runs it with --json) nor in noJSON (with why it prints none)", n)
			}
		}
	}
	for n := range noJSON {
		if checked[n] {
			t.Errorf("%s is in both jsonCases and noJSON", n)
		}
	}
}

// TestCheckJSON: the check finds what the conventions forbid.
func TestCheckJSON(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
	}{
		{`{"name": "a", "names": [], "notAfter": "2026-01-01T00:00:00Z"}`, ""},
		{`{"Name": "a"}`, "not lowerCamelCase"},
		{`{"days_left": 3}`, "not lowerCamelCase"},
		{`{"names": null}`, "null"},
		{`[{"lastReport": "0001-01-01T00:00:00Z"}]`, "not set is left out"},
		{`{"waveWait": 86400000000000}`, "a duration is a string"},
		{`{"waveWait": "24h"}`, ""},
		{`{} {}`, "more than one"},
	} {
		got := strings.Join(checkJSON(tt.in), "; ")
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("checkJSON(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
