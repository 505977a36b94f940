package metrics

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/devsvc/deviceapi"
	"github.com/opendus/opendus/devsvc/devlogs"
	"github.com/opendus/opendus/devsvc/peers"
	"github.com/opendus/opendus/devsvc/replica"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/testtool"
	"github.com/opendus/opendus/signin"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// full is a Metrics with every snapshot function set, to fixed values.
func full() *Metrics {
	return New(Config{
		Build:   Build{Version: "v1.2.3", Revision: "abc123", GoVersion: "go1.26.8"},
		Devices: func() deviceapi.Stats { return deviceapi.Stats{Shed: 3, BodyTimeouts: 2, DownloadsStalled: 1} },
		SignIn: func() signin.Stats {
			return signin.Stats{Refused: map[string]uint64{"ntlm": 4, "basic": 5}, Malformed: map[string]uint64{"ntlm": 6}, Lockouts: 1, Slowed: 2, Busy: 7}
		},
		Inventory: func() store.InventoryHealth { return store.InventoryHealth{Writable: false, Held: 42} },
		Logs: func() devlogs.Stats {
			return devlogs.Stats{Stored: 2, StoredBytes: 2048, Refused: map[string]uint64{"storage_full": 1}}
		},
		Certificates: func() []certs.CertInfo {
			return []certs.CertInfo{{Name: "ca", NotAfter: t0.Add(10 * 365 * 24 * time.Hour)}, {Name: "server", NotAfter: t0.Add(20 * 24 * time.Hour)}}
		},
		Checks: func() []Check { return []Check{{"store", false}, {"certificates", true}} },
		Reload: func() Reload { return Reload{OK: true, Last: t0, RestartNeeded: true} },
		Rollouts: func() []store.LiveRollout {
			return []store.LiveRollout{
				{Rollout: firmware.Rollout{Rule: cx600.RuleID(), Identity: cx600, State: firmware.RolloutPaused},
					Devices: firmware.WaveStats{Devices: 100, Waiting: 50, Offered: 10, Downloading: 5, Installed: 20, Retrying: 4, Stalled: 3, Failed: 8}},
				{Rollout: firmware.Rollout{Rule: trio.RuleID(), Identity: trio, State: firmware.RolloutScheduled}, Devices: firmware.WaveStats{Devices: 7, Waiting: 7}},
			}
		},
		Alarms: func() ([]firmware.Alarm, error) {
			// Open ones only, as store.Alarms(ctx, false) returns them.
			return []firmware.Alarm{{Kind: firmware.AlarmPaused}, {Kind: firmware.AlarmOverdue}, {Kind: firmware.AlarmOverdue},
				{Kind: "future-kind"}}, nil
		},
		Replicas: func() (uint64, []firmware.Replica, error) {
			return 120, []firmware.Replica{
				{Name: "paris", Site: "paris", Progress: firmware.ReplicaProgress{Position: 117, LastContact: t0.Add(-time.Minute)}},
				{Name: "lyon", Site: "lyon", Progress: firmware.ReplicaProgress{Position: 120, LastContact: t0}},
				{Name: "old", Site: "lyon", Removed: t0}, // removed: left out
			}, nil
		},
		Follower: func() replica.Status {
			return replica.Status{Connected: true, Position: 40, Head: 42, LastContact: t0, InStep: t0.Add(-30 * time.Second), Outbox: 3}
		},
		Peers: func() peers.Stats {
			return peers.Stats{Groups: 3, Members: 40, Holders: 12, Elections: 3, Failovers: 1}
		},
		Now: func() time.Time { return t0 },
	})
}

var (
	cx600 = firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"}
	trio  = firmware.Identity{DeviceType: firmware.RoundTable, Vendor: "Polycom", Model: "Trio", Revision: "A", Locale: "ENU"}
)

// scrape returns what the handler serves.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d, %v\n%s", resp.StatusCode, err, body)
	}
	return string(body)
}

// TestCounts checks that what the service tells the metrics, and what its
// snapshots say, is what a scrape shows.
func TestCounts(t *testing.T) {
	m := full()
	m.CheckIn(firmware.Internal, deviceapi.AnswerOffered, firmware.UCPhone)
	m.CheckIn(firmware.Internal, deviceapi.AnswerOffered, firmware.RoundTable)
	m.CheckIn(firmware.External, deviceapi.AnswerNothing, firmware.UCPhone)
	m.CheckIn(firmware.External, deviceapi.AnswerShed, "")
	m.CheckIn(firmware.Internal, deviceapi.AnswerAccepted, "") // no such answer for a check-in: not counted
	m.Report(firmware.Internal, deviceapi.AnswerAccepted, firmware.StateSuccess)
	m.Report(firmware.External, deviceapi.AnswerRefused, firmware.StateFailure)
	m.Report(firmware.Internal, deviceapi.AnswerOffered, "") // not counted
	m.Download(firmware.Internal, 1000)
	m.Download(firmware.Internal, 24)
	m.Download(firmware.External, 0)
	m.ObserveCommit(store.CommitInventory, 3*time.Millisecond)
	m.ObserveCommit(store.CommitCatalog, 2*time.Second)
	m.ObserveCommit("other", time.Second) // not a kind: not counted
	m.Imported("stored")
	m.Imported("nonsense") // not counted
	got := scrape(t, m)
	for _, want := range []string{
		`opendus_build_info{goversion="go1.26.8",revision="abc123",version="v1.2.3"} 1`,
		`opendus_checkins_total{answer="offered",listener="internal"} 2`,
		`opendus_checkins_total{answer="nothing",listener="external"} 1`,
		`opendus_checkins_total{answer="shed",listener="external"} 1`,
		`opendus_checkins_total{answer="unavailable",listener="internal"} 0`,
		`opendus_offers_total{device_type="UCPhone"} 1`,
		`opendus_offers_total{device_type="RoundTable"} 1`,
		`opendus_status_reports_total{answer="accepted",listener="internal"} 1`,
		`opendus_status_reports_total{answer="refused",listener="external"} 1`,
		`opendus_reported_states_total{state="success"} 1`,
		`opendus_reported_states_total{state="failure"} 0`,
		`opendus_downloads_total{listener="internal"} 2`,
		`opendus_downloads_total{listener="external"} 1`,
		`opendus_download_bytes_total{listener="internal"} 1024`,
		`opendus_store_commit_duration_seconds_bucket{kind="inventory",le="0.005"} 1`,
		`opendus_store_commit_duration_seconds_count{kind="catalog"} 1`,
		`opendus_imports_total{result="stored"} 1`,
		`opendus_imports_total{result="refused"} 0`,
		`opendus_requests_shed_total 3`,
		`opendus_request_body_timeouts_total 2`,
		`opendus_downloads_stalled_total 1`,
		`opendus_signin_refusals_total{via="ntlm"} 4`,
		`opendus_signin_refusals_total{via="basic"} 5`,
		`opendus_signin_malformed_total{via="basic"} 0`,
		`opendus_signin_lockouts_total 1`,
		`opendus_signin_slowed_addresses_total 2`,
		`opendus_signin_busy_total 7`,
		`opendus_inventory_writable 0`,
		`opendus_inventory_queue_length 42`,
		`opendus_log_uploads_total{result="stored"} 2`,
		`opendus_log_uploads_total{result="storage_full"} 1`,
		`opendus_log_uploads_total{result="stalled"} 0`,
		`opendus_log_upload_bytes_total 2048`,
		`opendus_certificate_remaining_seconds{certificate="server"} 1.728e+06`,
		`opendus_certificate_expiry_timestamp_seconds{certificate="server"} 1.7969904e+09`,
		`opendus_ready{check="store"} 0`,
		`opendus_ready{check="certificates"} 1`,
		`opendus_config_last_reload_successful 1`,
		`opendus_config_last_reload_success_timestamp_seconds 1.7952624e+09`,
		`opendus_config_restart_required 1`,
		`opendus_rollout_devices{identity="UCPhone/Polycom/CX600/A/ENU",rule="` + cx600.RuleID() + `",state="waiting"} 50`,
		`opendus_rollout_devices{identity="UCPhone/Polycom/CX600/A/ENU",rule="` + cx600.RuleID() + `",state="offered"} 10`,
		`opendus_rollout_devices{identity="UCPhone/Polycom/CX600/A/ENU",rule="` + cx600.RuleID() + `",state="downloading"} 5`,
		`opendus_rollout_devices{identity="UCPhone/Polycom/CX600/A/ENU",rule="` + cx600.RuleID() + `",state="installed"} 20`,
		`opendus_rollout_devices{identity="UCPhone/Polycom/CX600/A/ENU",rule="` + cx600.RuleID() + `",state="retrying"} 4`,
		`opendus_rollout_devices{identity="UCPhone/Polycom/CX600/A/ENU",rule="` + cx600.RuleID() + `",state="stalled"} 3`,
		`opendus_rollout_devices{identity="UCPhone/Polycom/CX600/A/ENU",rule="` + cx600.RuleID() + `",state="failed"} 8`,
		`opendus_rollout_devices{identity="RoundTable/Polycom/Trio/A/ENU",rule="` + trio.RuleID() + `",state="waiting"} 7`,
		`opendus_rollout_devices{identity="RoundTable/Polycom/Trio/A/ENU",rule="` + trio.RuleID() + `",state="failed"} 0`,
		`opendus_rollout_state{identity="UCPhone/Polycom/CX600/A/ENU",rule="` + cx600.RuleID() + `",state="paused"} 1`,
		`opendus_rollout_state{identity="UCPhone/Polycom/CX600/A/ENU",rule="` + cx600.RuleID() + `",state="running"} 0`,
		`opendus_rollout_state{identity="UCPhone/Polycom/CX600/A/ENU",rule="` + cx600.RuleID() + `",state="scheduled"} 0`,
		`opendus_rollout_state{identity="RoundTable/Polycom/Trio/A/ENU",rule="` + trio.RuleID() + `",state="scheduled"} 1`,
		`opendus_alarms_open{kind="overdue"} 2`,
		`opendus_alarms_open{kind="paused"} 1`,
		`opendus_alarms_open{kind="replica-behind"} 0`,
		`opendus_alarms_open{kind="future-kind"} 1`,
		`opendus_replica_behind_changes{replica="paris",site="paris"} 3`,
		`opendus_replica_behind_changes{replica="lyon",site="lyon"} 0`,
		`opendus_replica_last_contact_timestamp_seconds{replica="paris",site="paris"} 1.79526234e+09`,
		`opendus_replication_connected 1`,
		`opendus_replication_position 40`,
		`opendus_replication_behind_changes 2`,
		`opendus_replication_last_contact_timestamp_seconds 1.7952624e+09`,
		`opendus_replication_in_step_timestamp_seconds 1.79526237e+09`,
		`opendus_replication_outbox_length 3`,
		`go_goroutines `,
		`process_cpu_seconds_total `,
	} {
		if !strings.Contains(got, want+"\n") && !strings.Contains(got, want) {
			t.Errorf("the scrape lacks %q", want)
		}
	}
	for _, absent := range []string{`answer="accepted",listener="internal"} 1` + "\nopendus_checkins", `kind="other"`, `result="nonsense"`, `replica="old"`} {
		if strings.Contains(got, absent) {
			t.Errorf("the scrape has %q, which was not to be counted", absent)
		}
	}
	if strings.Contains(got, `opendus_checkins_total{answer="accepted"`) || strings.Contains(got, `opendus_status_reports_total{answer="offered"`) {
		t.Errorf("the scrape has answers a message cannot get:\n%s", got)
	}
}

// TestWithoutSnapshots: a Config without functions leaves their metrics
// out, and the rest works.
func TestWithoutSnapshots(t *testing.T) {
	got := scrape(t, New(Config{}))
	if strings.Contains(got, "opendus_inventory_writable") || !strings.Contains(got, "opendus_checkins_total") {
		t.Errorf("scrape of a bare Metrics:\n%s", got)
	}
}

// TestNames checks the conventions: Prometheus' own linter finds nothing,
// every metric of ours starts with opendus_, and no label can carry a
// device, an address or a user.
func TestNames(t *testing.T) {
	m := full()
	m.CheckIn(firmware.Internal, deviceapi.AnswerOffered, firmware.UCPhone)
	problems, err := testutil.GatherAndLint(m.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	// rule and identity (one to one) name the catalog's rules, one per
	// model, revision and locale: tens; replica and site the replicas an
	// admin added: a handful to hundreds. Never a device.
	allowed := []string{"listener", "answer", "device_type", "state", "kind", "result", "via", "certificate", "check", "version", "revision", "goversion",
		"rule", "identity", "replica", "site"}
	for _, f := range families {
		name := f.GetName()
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			continue
		}
		if !strings.HasPrefix(name, Prefix) {
			t.Errorf("metric %s does not start with %s", name, Prefix)
		}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if !slices.Contains(allowed, l.GetName()) {
					t.Errorf("metric %s has label %s, not one of the low-cardinality labels %q", name, l.GetName(), allowed)
				}
			}
		}
	}
}

// TestFamilyErrors: a family that emits the wrong number of label values
// breaks that family only, and the scrape still answers.
func TestFamilyErrors(t *testing.T) {
	m := New(Config{})
	m.Gauges("opendus_test_broken", "Emits too few label values.", []string{"a", "b"}, func(emit func(float64, ...string)) { emit(1, "x") })
	m.Gauges("opendus_test_good", "Emits one value.", nil, func(emit func(float64, ...string)) { emit(7) })
	got := scrape(t, m)
	if !strings.Contains(got, "opendus_test_good 7\n") || strings.Contains(got, "opendus_test_broken{") {
		t.Errorf("scrape with a broken family:\n%s", got)
	}
}

// TestSnapshotErrors: a snapshot that fails (the store cannot be read)
// leaves its families out of the scrape, which logs why and serves the
// rest.
func TestSnapshotErrors(t *testing.T) {
	var logged strings.Builder
	broken := errors.New("store: alarms: database not open")
	m := New(Config{
		Logger:   slog.New(slog.NewTextHandler(&logged, nil)),
		Alarms:   func() ([]firmware.Alarm, error) { return nil, broken },
		Replicas: func() (uint64, []firmware.Replica, error) { return 0, nil, broken },
		Rollouts: func() []store.LiveRollout { return nil },
	})
	got := scrape(t, m)
	for _, absent := range []string{"opendus_alarms_open{", "opendus_replica_behind_changes{", "opendus_rollout_devices{"} {
		if strings.Contains(got, absent) {
			t.Errorf("the scrape has %s, want it left out", absent)
		}
	}
	if !strings.Contains(got, "opendus_checkins_total{") {
		t.Errorf("the scrape lacks the rest:\n%s", got)
	}
	if !strings.Contains(logged.String(), "database not open") {
		t.Errorf("the log %q does not say why the scrape lacks families", logged.String())
	}
}

// TestPromtool runs promtool check metrics, Prometheus' own checker, on a
// scrape: it must report nothing.
func TestPromtool(t *testing.T) {
	promtool := testtool.Need(t, "promtool")
	m := full()
	m.CheckIn(firmware.Internal, deviceapi.AnswerOffered, firmware.UCPhone)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(scrape(t, m))
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestDocumented checks that docs/operations.md lists every metric of the
// service, so the page and the code cannot drift apart.
func TestDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	families, err := full().reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), Prefix) {
			names = append(names, f.GetName())
		}
	}
	for _, n := range names {
		if !regexp.MustCompile("`" + n + "(\\{[^`]*\\})?`").Match(doc) {
			t.Errorf("docs/operations.md does not list the metric %s", n)
		}
	}
	for _, m := range regexp.MustCompile("`(opendus_[a-z_]+)").FindAllSubmatch(doc, -1) {
		name := string(m[1])
		if !slices.Contains(names, name) && !slices.ContainsFunc(names, func(n string) bool {
			return strings.HasPrefix(name, n+"_") // a histogram's _bucket, _sum, _count
		}) {
			t.Errorf("docs/operations.md names %s, which is no metric", name)
		}
	}
}

// TestRules checks packaging/prometheus/opendus-rules.yml with promtool:
// the rules parse (check rules), their unit tests pass (test rules: the
// alerts fire on the series they are meant for), and every metric they
// name is one the service serves.
func TestRules(t *testing.T) {
	promtool := testtool.Need(t, "promtool")
	const dir = "../../packaging/prometheus"
	for _, args := range [][]string{{"check", "rules", "opendus-rules.yml"}, {"test", "rules", "opendus-rules.test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	rules, err := os.ReadFile(dir + "/opendus-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	families, err := full().reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, f := range families {
		served[f.GetName()] = true
	}
	for _, m := range regexp.MustCompile(`\b(opendus_[a-z_]+)`).FindAllStringSubmatch(string(rules), -1) {
		name := strings.TrimSuffix(m[1], "_bucket")
		if !served[name] {
			t.Errorf("opendus-rules.yml names %s, which the service does not serve", m[1])
		}
	}
}

// BenchmarkObserve is what the metrics add to a check-in and its store
// commit share: the Observer's count, from many goroutines at once, and a
// commit's timing.
func BenchmarkObserve(b *testing.B) {
	m := New(Config{})
	b.Run("CheckIn", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.CheckIn(firmware.Internal, deviceapi.AnswerOffered, firmware.UCPhone)
			}
		})
	})
	b.Run("ObserveCommit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.ObserveCommit(store.CommitInventory, 3*time.Millisecond)
		}
	})
}
