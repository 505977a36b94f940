package devsvc

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/clocktest"
)

// httpGet answers a plain GET (the metrics listener's).
func httpGet(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// importCX600 imports version v of cx600 with one small file.
func importCX600(t *testing.T, st *store.Store, v firmware.Version) {
	t.Helper()
	image := bytes.Repeat([]byte("CX600 "+v.String()), 100)
	sum := sha256.Sum256(image)
	_, err := st.Import(t.Context(), "test", []firmware.ImportUpdate{{Identity: cx600, Version: v, Files: []firmware.ImportFile{
		{Name: "CX600.nbt", Size: int64(len(image)), SHA256: &sum, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(image)), nil }}}}}, store.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// TestServeMetricsRollouts runs a primary with a live rollout whose
// scheduled release is overdue at a site, and a replica added: the
// metrics listener shows the rollout's devices by state and its state,
// the alarm the rollout engine raised, and the replica behind.
func TestServeMetricsRollouts(t *testing.T) {
	ctx := t.Context()
	v1, v2 := firmware.MustParseVersion("4.0.7577.4300"), firmware.MustParseVersion("4.0.7577.4372")
	now := time.Now()
	dir := t.TempDir()
	if _, err := Init(InitOptions{Dir: dir, Domain: testDomain}); err != nil {
		t.Fatal(err)
	}
	// Six hours ago: v2 was scheduled for five hours ago; 7 phones at
	// site hq checked in before and not since, 3 came after, took it and
	// installed it.
	then := now.Add(-6 * time.Hour)
	st, err := store.Open(dir, &store.Options{Now: func() time.Time { return then }})
	if err != nil {
		t.Fatal(err)
	}
	importCX600(t, st, v1)
	if _, err := st.Approve(ctx, "test", cx600.Path()); err != nil {
		t.Fatal(err)
	}
	importCX600(t, st, v2)
	ro, err := st.StartRollout(ctx, "test", cx600.Path(), firmware.Plan{Waves: firmware.Waves{firmware.Whole}, At: then.Add(time.Hour), WaveWait: time.Hour, Success: 9000})
	if err != nil || ro.State != firmware.RolloutScheduled {
		t.Fatalf("StartRollout = %+v, %v; want it scheduled", ro, err)
	}
	for i := range 10 {
		d := firmware.Device{MAC: fmt.Sprintf("00-04-F2-00-01-%02X", i), Identity: cx600, Version: v1, Site: "hq", Location: firmware.Internal, LastCheckIn: then}
		if i >= 7 {
			d.Offered, d.LastCheckIn = v2, now.Add(-time.Hour)
		}
		if err := st.RecordCheckIn(ctx, d); err != nil {
			t.Fatal(err)
		}
		if i >= 7 {
			if err := st.Report(ctx, store.Report{Key: d.MAC, State: firmware.StateSuccess, Target: v2, Time: now.Add(-time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := st.PutSite(ctx, "test", firmware.Site{Name: "paris", Subnets: []netip.Prefix{netip.MustParsePrefix("10.33.0.0/16")}}, false); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	ev := &events{}
	r := serveDir(t, dir, ServeOptions{Logger: slog.New(ev), MetricsAddr: "127.0.0.1:0"})
	if _, _, err := r.admin(t).AddReplica(ctx, service.AddReplicaRequest{Name: "paris", Site: "paris", InternalName: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	var body string
	ev.waitFor(t, 30*time.Second, "the rollout engine raises the overdue alarm", func() bool {
		_, body = httpGet(t, "http://"+r.ri.Metrics+"/metrics")
		return strings.Contains(body, `opendus_alarms_open{kind="overdue"} 1`+"\n")
	})
	series := `{identity="UCPhone/Polycom/CX600/A/ENU",rule="` + cx600.RuleID() + `",state=`
	for _, want := range []string{
		`opendus_rollout_devices` + series + `"waiting"} 7`,
		`opendus_rollout_devices` + series + `"installed"} 3`,
		`opendus_rollout_devices` + series + `"failed"} 0`,
		`opendus_rollout_state` + series + `"running"} 1`,
		`opendus_rollout_state` + series + `"scheduled"} 0`,
		`opendus_alarms_open{kind="overdue"} 1`,
		`opendus_alarms_open{kind="paused"} 0`,
		`opendus_replica_last_contact_timestamp_seconds{replica="paris",site="paris"} 0`,
		`opendus_ready{check="store"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, "opendus_rollout") || strings.HasPrefix(l, "opendus_alarms") {
				t.Log(l)
			}
		}
	}
	// Never heard from: as far behind as the primary's history is long.
	m := regexp.MustCompile(`opendus_replica_behind_changes\{replica="paris",site="paris"\} (\d+)\n`).FindStringSubmatch(body)
	if m == nil || m[1] == "0" {
		t.Errorf("/metrics has the replica behind %q, want the primary's head", m)
	}
	for _, absent := range []string{"opendus_replication_", `check="replica"`} {
		if strings.Contains(body, absent) {
			t.Errorf("/metrics of a primary has %s, a replica's", absent)
		}
	}
}

// TestServeReplicaReadiness runs a replica whose primary cannot be
// reached, on a clock the test moves: ready while within replica_max_lag
// of its start, not ready after (on the device listener and the metrics
// listener, which adds why), ready again once a reload turns the check
// off; its metrics say it is not connected.
func TestServeReplicaReadiness(t *testing.T) {
	ctx := t.Context()
	pdir := t.TempDir()
	if _, err := Init(InitOptions{Dir: pdir, Domain: testDomain}); err != nil {
		t.Fatal(err)
	}
	primary := serveDir(t, pdir, ServeOptions{})
	_, creds, err := primary.admin(t).AddReplica(ctx, service.AddReplicaRequest{Name: "paris", Site: "paris", InternalName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	rdir := filepath.Join(t.TempDir(), "replica")
	if _, err := Init(InitOptions{Dir: rdir, ReplicaOf: primary.ri.Admin, Credentials: creds}); err != nil {
		t.Fatal(err)
	}
	if err := primary.stop(); err != nil { // the WAN is down
		t.Fatal(err)
	}
	setSettings(t, rdir, func(s *datadir.Settings) { s.ReplicaMaxLag = 10 * time.Minute })

	clock := clocktest.New(time.Now())
	reloads, reloaded := make(chan struct{}), make(chan ReloadResult, 1)
	rep := serveDir(t, rdir, ServeOptions{MetricsAddr: "127.0.0.1:0", wall: clock.Now,
		Reload: reloads, Reloaded: func(res ReloadResult) { reloaded <- res }})
	c, base := rep.device(t, false, nil)
	readyz := func() (device, ops string, code int) {
		t.Helper()
		code, b := do(t, c, http.MethodGet, base+"/readyz", nil, nil)
		opsCode, ops := httpGet(t, "http://"+rep.ri.Metrics+"/readyz")
		if opsCode != code {
			t.Errorf("/readyz = %d on the device listener, %d on the metrics listener", code, opsCode)
		}
		return string(b), ops, code
	}

	if dev, _, code := readyz(); code != http.StatusOK {
		t.Errorf("/readyz just after the start = %d %q, want 200: within replica_max_lag", code, dev)
	}
	clock.Advance(10 * time.Minute)
	if dev, _, code := readyz(); code != http.StatusOK {
		t.Errorf("/readyz replica_max_lag after the start = %d %q, want 200", code, dev)
	}
	clock.Advance(time.Second)
	dev, ops, code := readyz()
	wantDev := "not ready:\nreplica: this replica has not been in step with its primary since its start (10m1s, more than replica_max_lag 10m0s), so its site's devices should go elsewhere: devsvc status says why\n"
	if code != http.StatusServiceUnavailable || dev != wantDev {
		t.Errorf("/readyz past replica_max_lag = %d %q, want 503 %q", code, dev, wantDev)
	}
	if !strings.Contains(ops, strings.TrimSuffix(wantDev, "\n")+": the primary "+primary.ri.Admin+" cannot be reached since ") {
		t.Errorf("the metrics listener's /readyz = %q, want the reason and the primary that cannot be reached", ops)
	}
	_, metrics := httpGet(t, "http://"+rep.ri.Metrics+"/metrics")
	for _, want := range []string{
		`opendus_ready{check="replica"} 0`,
		`opendus_replication_connected 0`,
		`opendus_replication_in_step_timestamp_seconds 0`,
		`opendus_replication_last_contact_timestamp_seconds 0`,
		`opendus_replication_outbox_length 0`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("the replica's /metrics lacks %q", want)
		}
	}
	for _, absent := range []string{"opendus_rollout_", "opendus_alarms_open", "opendus_replica_behind_changes"} {
		if strings.Contains(metrics, absent) {
			t.Errorf("the replica's /metrics has %s, its primary's", absent)
		}
	}

	// replica_max_lag = 0 turns the check off, by a reload.
	setSettings(t, rdir, func(s *datadir.Settings) { s.ReplicaMaxLag = 0 })
	reloads <- struct{}{}
	if res := <-reloaded; res.Err != nil || !strings.Contains(strings.Join(res.Applied, " "), "replica_max_lag") {
		t.Fatalf("reload = %+v, want replica_max_lag applied", res)
	}
	if dev, _, code := readyz(); code != http.StatusOK {
		t.Errorf("/readyz with replica_max_lag 0 = %d %q, want 200", code, dev)
	}
}

// setSettings changes the settings file of dir.
func setSettings(t *testing.T, dir string, edit func(*datadir.Settings)) {
	t.Helper()
	s, err := datadir.LoadSettings(dir)
	if err != nil {
		t.Fatal(err)
	}
	edit(&s)
	if err := datadir.WriteFileAtomic(filepath.Join(dir, datadir.ConfigFile), s.Render(), 0o640); err != nil {
		t.Fatal(err)
	}
}
