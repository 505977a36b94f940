package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/testtool"
	"github.com/opendus/opendus/simulator"
)

// scrapeMetrics returns what the metrics listener at addr serves.
func scrapeMetrics(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
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

// metricSum adds up the samples of a metric in a scrape whose labels
// contain every one of labels (name="value" each).
func metricSum(scrape, name string, labels ...string) float64 {
	var sum float64
	for _, line := range strings.Split(scrape, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(rest, l)
		}
		if i := strings.LastIndexByte(rest, ' '); match && i >= 0 {
			v, _ := strconv.ParseFloat(rest[i+1:], 64)
			sum += v
		}
	}
	return sum
}

// TestMetricsScrapedByPrometheus runs a simulated fleet against a real
// devsvc serve with its metrics listener on, then checks the scrape with
// promtool check metrics (Prometheus' own checker), checks that the
// counts are what the fleet did (and that a rollout started after it has
// the fleet's phones waiting), and has a real Prometheus server scrape the
// service and answer the check-in counter and the rollout's devices
// through its query API.
func TestMetricsScrapedByPrometheus(t *testing.T) {
	promtool := testtool.Need(t, "promtool")
	prometheus := testtool.Need(t, "prometheus")
	s := startService(t, func(dir string) { setSetting(t, dir, "metrics_addr", "127.0.0.1:0") })
	if s.Run.Metrics == "" {
		t.Fatal("serve.json names no metrics listener")
	}
	importVersion(t, s, "1.0.0.1", 32<<10, cx600)
	s.CLI(t, "approve", cx600.Path())
	importVersion(t, s, "2.0.0.1", 32<<10, cx600, rt) // the RoundTable deploys on import
	s.CLI(t, "approve", cx600.Path())
	sc := simulator.Scenario{Seed: 2, Groups: []simulator.Group{
		{Model: cx600.Path(), Count: 16, Version: "1.0.0.1"},
		{Model: rt.Path(), Count: 2, Version: "1.0.0.1"},
	}}
	prepare(t, s, &sc)
	sim := newSim(t, s, sc)
	runUntil(t, sim, 26*time.Hour)
	if rep := sim.Report(); rep.Updates != 18 {
		t.Fatalf("the fleet made %d updates, want 18", rep.Updates)
	}

	// devsvc devices flushes the inventory: its batches are committed,
	// and timed, before the scrape.
	if inv := inventory(t, s); len(inv) != 18 {
		t.Fatalf("the inventory has %d devices, want the fleet's 18", len(inv))
	}
	// A rollout of the next version starts: the fleet's 16 phones wait
	// for it.
	importVersion(t, s, "3.0.0.1", 32<<10, cx600)
	s.CLI(t, "rollout", "start", cx600.Path())
	scrape := scrapeMetrics(t, s.Run.Metrics)
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = strings.NewReader(scrape)
	if out, err := check.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("promtool check metrics on a scrape after the fleet ran: %v\n%s", err, out)
	}
	checkIns := metricSum(scrape, "opendus_checkins_total")
	for _, c := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"opendus_checkins_total", []string{`answer="offered"`}, 18},
		{"opendus_checkins_total", []string{`answer="nothing"`}, 18},
		{"opendus_offers_total", []string{`device_type="RoundTable"`}, 2},
		{"opendus_downloads_total", []string{`listener="internal"`}, 18},
		{"opendus_download_bytes_total", nil, 18 * 32 << 10},
		{"opendus_reported_states_total", []string{`state="success"`}, 18},
		{"opendus_status_reports_total", []string{`answer="accepted"`}, 18 * 4},
		{"opendus_store_commit_duration_seconds_count", []string{`kind="inventory"`}, 1},
		{"opendus_store_commit_duration_seconds_count", []string{`kind="catalog"`}, 4},
		{"opendus_imports_total", []string{`result="stored"`}, 2},
		{"opendus_inventory_writable", nil, 1},
		{"opendus_build_info", nil, 1},
		{"opendus_rollout_devices", []string{`identity="` + cx600.Path() + `"`, `state="waiting"`}, 16},
		{"opendus_rollout_state", []string{`identity="` + cx600.Path() + `"`, `state="running"`}, 1},
	} {
		if got := metricSum(scrape, c.name, c.labels...); got < c.min {
			t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, got, c.min)
		}
	}
	if got := metricSum(scrape, "opendus_checkins_total", `answer="refused"`) + metricSum(scrape, "opendus_checkins_total", `answer="error"`); got != 0 {
		t.Errorf("check-ins refused or failed: %v, want none from a well-behaved fleet", got)
	}
	t.Logf("after the fleet: %v check-ins", checkIns)

	// A real Prometheus scrapes the service every second through a proxy
	// that tells the test of each scrape, so that it queries once two have
	// ended instead of polling.
	target, err := url.Parse("http://" + s.Run.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	scraped := make(chan struct{}, 16)
	proxy := httputil.NewSingleHostReverseProxy(target)
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	psrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxy.ServeHTTP(w, r)
		if r.URL.Path == "/metrics" {
			select {
			case scraped <- struct{}{}:
			default:
			}
		}
	}), ReadHeaderTimeout: 10 * time.Second}
	go psrv.Serve(pln)
	t.Cleanup(func() { psrv.Close() })

	dir := t.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, fmt.Appendf(nil, `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: opendus
    static_configs:
      - targets: [%q]
`, pln.Addr().String()), 0o644); err != nil {
		t.Fatal(err)
	}
	web := freeLoopbackAddr(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, prometheus, "--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+web, "--log.level=warn")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-done
	}()
	for i := range 2 {
		select {
		case <-scraped:
		case err := <-done:
			t.Fatalf("prometheus exited before scrape %d: %v\n%s", i+1, err, logs.String())
		case <-ctx.Done():
			t.Fatalf("prometheus did not scrape the service twice within 2 minutes\n%s", logs.String())
		}
	}
	query := func(expr string) float64 {
		t.Helper()
		resp, err := http.Get("http://" + web + "/api/v1/query?query=" + url.QueryEscape(expr))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var answer struct {
			Status string
			Data   struct {
				Result []struct {
					Value [2]any
				}
			}
		}
		if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || answer.Status != "success" || len(answer.Data.Result) != 1 {
			t.Fatalf("Prometheus query %s: %v, %+v\n%s", expr, err, answer, logs.String())
		}
		got, _ := strconv.ParseFloat(fmt.Sprint(answer.Data.Result[0].Value[1]), 64)
		return got
	}
	if got := query(`sum(opendus_checkins_total{job="opendus"})`); got != checkIns {
		t.Errorf("Prometheus says %v check-ins, the scrape %v: the fleet has stopped, so they must agree", got, checkIns)
	}
	if got := query(`sum(opendus_rollout_devices{job="opendus",state="waiting"})`); got != 16 {
		t.Errorf("Prometheus says %v devices wait for the rollout, want the fleet's 16 phones", got)
	}
}

// freeLoopbackAddr returns a loopback address with a port free a moment
// ago, for a program that takes an address and cannot say which port it
// chose.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestReloadOnSIGHUP sends a real SIGHUP to a real devsvc serve after
// changing its settings file: the new check interval applies to the next
// check-in; a file that does not parse is refused and changes nothing, and
// devsvc status and the metrics say so.
func TestReloadOnSIGHUP(t *testing.T) {
	s := startService(t, func(dir string) {
		setSetting(t, dir, "check_interval", "24h")
		setSetting(t, dir, "check_jitter", "0s")
		setSetting(t, dir, "metrics_addr", "127.0.0.1:0")
	})
	c := deviceClient(t, s.Dir, s.Run.Internal, nil)
	base := "https://ucupdates-r2." + domain + ":" + port(t, s.Run.Internal)
	nextCheck := func() time.Duration {
		t.Helper()
		ci := deviceproto.CheckIn{Identity: cx600, MAC: "00-04-F2-00-00-01",
			Modules: []firmware.Module{{Name: "CX600.nbt", Version: firmware.MustParseVersion("1.0.0.1"), Timestamp: "2026-01-15T08:00:00Z"}}}
		resp, err := c.Post(base+deviceproto.CheckInPath, "application/xml; charset=utf-8", strings.NewReader(string(ci.AppendXML(nil))))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		a, err := deviceproto.ParseAnswer(body)
		if err != nil {
			t.Fatalf("check-in answer: %v\n%s", err, body)
		}
		return a.NextCheck
	}
	if got := nextCheck(); got != 24*time.Hour {
		t.Fatalf("next check before the reload = %v, want 24h", got)
	}
	hup := func(logged string) {
		t.Helper()
		proc, err := os.FindProcess(s.Run.PID)
		if err != nil {
			t.Fatal(err)
		}
		if err := proc.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if !s.WaitForLog(logged, 30*time.Second) {
			t.Fatalf("no %q logged within 30s of SIGHUP\n%s", logged, s.Logs())
		}
	}
	setSetting(t, s.Dir, "check_interval", "6h") // the last line wins
	hup(`"msg":"settings reloaded","file":"devsvc.conf","applied":"check_interval"`)
	if got := nextCheck(); got != 6*time.Hour {
		t.Errorf("next check after SIGHUP = %v, want the new 6h", got)
	}

	setSetting(t, s.Dir, "check_interval", "soon")
	hup(`settings not reloaded`)
	if got := nextCheck(); got != 6*time.Hour {
		t.Errorf("next check after a refused reload = %v, want the running 6h", got)
	}
	var st struct{ Warnings []string }
	s.JSON(t, &st, "status")
	if !regexp.MustCompile(`devsvc\.conf could not be reloaded .*check_interval`).MatchString(strings.Join(st.Warnings, "\n")) {
		t.Errorf("devsvc status warnings %q, want one saying devsvc.conf could not be reloaded, and why", st.Warnings)
	}
	if got := metricSum(scrapeMetrics(t, s.Run.Metrics), "opendus_config_last_reload_successful"); got != 0 {
		t.Errorf("opendus_config_last_reload_successful = %v after a refused reload, want 0", got)
	}
}
