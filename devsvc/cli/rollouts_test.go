package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/devsvc/adminapi"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/devsvctest"
)

// startServerWithFleet initialises a data directory, records n CX600
// devices running v in it (a third at berlin-hq, the rest at ny; device 7
// failed with an error code), and runs a real devsvc serve on it.
func startServerWithFleet(t *testing.T, n int, v string) string {
	t.Helper()
	bin, dir := devsvctest.Init(t, "contoso.com")
	st, err := store.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, _ := firmware.ParseIdentity(cx600)
	for i := range n {
		site := "ny"
		if i%3 == 0 {
			site = "berlin-hq"
		}
		d := firmware.Device{MAC: fmt.Sprintf("00-04-F2-00-00-%02X", i), Serial: fmt.Sprintf("SN%03d", i), User: fmt.Sprintf("user%d@contoso.com", i),
			Identity: id, Version: firmware.MustParseVersion(v), Site: site, Location: firmware.Internal}
		if err := st.RecordCheckIn(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	devsvctest.Start(t, bin, dir)
	return dir
}

// failAdmin runs a command that must fail with code and say want.
func failAdmin(t *testing.T, dir string, code int, want string, args ...string) {
	t.Helper()
	stdout, stderr, got := run(t, append([]string{"--data", dir}, args...)...)
	if got != code || !strings.Contains(stderr, want) {
		t.Errorf("devsvc %s: exit %d, stderr %q; want exit %d saying %q\n%s", strings.Join(args, " "), got, stderr, code, want, stdout)
	}
}

// TestSitesCommand adds, updates, lists and removes sites, and refuses
// malformed ones with what to write instead.
func TestSitesCommand(t *testing.T) {
	dir := startServerWithFleet(t, 9, "4.0.7577.100")
	out := admin(t, dir, "sites", "add", "berlin-hq", "--subnet", "10.1.0.0/16,10.9.0.0/16", "--timezone", "Europe/Berlin", "--window", "Mon-Fri 22:00-05:00")
	if !strings.Contains(out, "Added site berlin-hq: 10.1.0.0/16,10.9.0.0/16, time zone Europe/Berlin, windows Mon-Fri 22:00-05:00.") {
		t.Errorf("sites add printed %q", out)
	}
	admin(t, dir, "sites", "add", "ny", "--subnet", "10.2.0.0/16", "--subnet", "2001:db8::/48", "--timezone", "America/New_York")
	admin(t, dir, "sites", "update", "ny", "--window", "Sat,Sun 00:00-24:00")
	var sites []adminapi.SiteInfo
	adminJSON(t, dir, &sites, "sites", "list")
	if len(sites) != 2 || sites[1].Name != "ny" || sites[1].TimeZone != "America/New_York" || sites[1].Windows.String() != "Sat,Sun 00:00-24:00" ||
		len(sites[1].Subnets) != 2 || sites[0].Devices != 3 || sites[1].Devices != 6 {
		t.Errorf("sites list --json = %+v", sites)
	}
	table := admin(t, dir, "sites", "list")
	for _, want := range []string{"SITE", "berlin-hq", "10.1.0.0/16,10.9.0.0/16", "Europe/Berlin", "Mon-Fri 22:00-05:00", "Sat,Sun 00:00-24:00"} {
		if !strings.Contains(table, want) {
			t.Errorf("sites list lacks %q:\n%s", want, table)
		}
	}
	failAdmin(t, dir, 2, "separate windows with ';'", "sites", "add", "lab", "--window", "Mon-Fri 22:00-05:00, Sat 01:00-02:00")
	failAdmin(t, dir, 2, "did you mean 10.3.0.0/16", "sites", "add", "lab", "--subnet", "10.3.0.1/16")
	failAdmin(t, dir, 1, "subnet 10.1.0.0/16 is in both site berlin-hq and site lab", "sites", "add", "lab", "--subnet", "10.1.0.0/16")
	failAdmin(t, dir, 1, `unknown time zone "Mars/Olympus"`, "sites", "add", "lab", "--timezone", "Mars/Olympus")
	failAdmin(t, dir, 1, "sites update", "sites", "add", "ny")
	failAdmin(t, dir, 1, "sites add", "sites", "update", "nowhere", "--timezone", "UTC")
	admin(t, dir, "sites", "remove", "ny")
	adminJSON(t, dir, &sites, "sites", "list")
	if len(sites) != 1 {
		t.Errorf("after remove: %+v", sites)
	}
	if ev := lastEvent(t, dir); ev.Action != "site-remove" || ev.Subject != "ny" || ev.Actor != "cert:admin" {
		t.Errorf("last event %+v", ev)
	}
}

// TestRolloutCommands starts a rollout with flags, shows it per wave and
// per site, pauses, resumes and stops it, lists it; what cannot be done
// during it is refused with what to do; devices filters and streams the
// fleet; devices show gives one device's history.
func TestRolloutCommands(t *testing.T) {
	dir := startServerWithFleet(t, 30, "4.0.7577.100")
	importVersion(t, dir, "4.0.7577.100")
	admin(t, dir, "approve", cx600)
	importVersion(t, dir, "4.0.7577.200")

	failAdmin(t, dir, 2, "--waves", "rollout", "start", cx600, "--waves", "50%,10%")
	failAdmin(t, dir, 2, "--max-failures", "rollout", "start", cx600, "--max-failures", "lots")
	failAdmin(t, dir, 2, "--wave-wait", "rollout", "start", cx600, "--wave-wait", "soon")
	out := admin(t, dir, "rollout", "start", cx600, "--waves", "10%,50%,100%", "--wave-wait", "2d", "--success", "95%", "--max-failures", "3",
		"--window", "Mon-Fri 22:00-05:00", "--max-downloads", "100")
	if !strings.Contains(out, "is running: wave 1 of 3 open (10% of devices, 10% more)") || !strings.Contains(out, "devsvc rollout show "+cx600) {
		t.Errorf("rollout start printed %q", out)
	}
	failAdmin(t, dir, 1, "devsvc rollout stop", "approve", cx600)
	failAdmin(t, dir, 1, "a rollout is live", "rollout", "start", cx600)

	show := admin(t, dir, "rollout", "show", cx600)
	for _, want := range []string{"WAVE", "SHARE", "0%-10%", "50%-100%", "SITE", "berlin-hq", "ny", "Waves 10%,50%,100%, wave wait 48h0m0s, success 95%, max failures 3, window Mon-Fri 22:00-05:00, at most 100 downloads at once",
		"devsvc devices --rule"} {
		if !strings.Contains(show, want) {
			t.Errorf("rollout show lacks %q:\n%s", want, show)
		}
	}
	var pr rolloutProgressJSON
	adminJSON(t, dir, &pr, "rollout", "show", cx600)
	if pr.Total.Devices != 30 || len(pr.Waves) != 3 || len(pr.Sites) != 2 || pr.Sites[0].Devices != 10 || pr.Rollout.WaveWait != "48h" {
		t.Errorf("rollout show --json = %+v, want 30 devices in 3 waves, 2 sites and a wave wait of 48h", pr)
	}
	out = admin(t, dir, "rollout", "pause", cx600, "--reason", "tickets from berlin")
	if !strings.Contains(out, "is paused in wave 1 of 3 by cert:admin: tickets from berlin") {
		t.Errorf("rollout pause printed %q", out)
	}
	var rs []rolloutInfoJSON
	adminJSON(t, dir, &rs, "rollouts")
	if len(rs) != 1 || rs[0].State != firmware.RolloutPaused || rs[0].Total.Devices != 30 || rs[0].Reason != "tickets from berlin" {
		t.Errorf("rollouts --json = %+v", rs)
	}
	if list := admin(t, dir, "rollouts"); !strings.Contains(list, "paused") || !strings.Contains(list, "1/3") {
		t.Errorf("rollouts printed:\n%s", list)
	}
	admin(t, dir, "rollout", "resume", cx600)
	out = admin(t, dir, "rollout", "stop", cx600)
	if !strings.Contains(out, "is stopped (stopped by cert:admin): the devices it reached keep 4.0.7577.200, the others 4.0.7577.100") {
		t.Errorf("rollout stop printed %q", out)
	}
	var es []firmware.Event
	adminJSON(t, dir, &es, "history")
	var got []string
	for _, e := range es {
		if strings.HasPrefix(e.Action, "rollout-") {
			got = append(got, e.Action+" by "+e.Actor)
		}
	}
	want := []string{"rollout-started by cert:admin", "rollout-wave by cert:admin", "rollout-paused by cert:admin", "rollout-resumed by cert:admin", "rollout-stopped by cert:admin"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("history: %v, want %v", got, want)
	}
	if out := admin(t, dir, "alarms"); !strings.Contains(out, "No open alarms.") {
		t.Errorf("alarms printed %q", out)
	}
	if out := admin(t, dir, "status"); !strings.Contains(out, "Alarms: none open.") {
		t.Errorf("status printed:\n%s", out)
	}
	var rules []adminapi.RuleInfo
	adminJSON(t, dir, &rules, "rules")
	if len(rules) != 1 || rules[0].Devices != 30 || rules[0].OnApproved != 30 {
		t.Errorf("rules --json = %+v", rules)
	}
	if out := admin(t, dir, "rules"); !strings.Contains(out, "ON APPROVED") || !strings.Contains(out, "30/30") {
		t.Errorf("rules printed:\n%s", out)
	}

	// devices: filters, a limit and the page after it, JSON as it streams.
	var rows []store.DeviceRow
	adminJSON(t, dir, &rows, "devices", "--site", "berlin-hq", "--model", "cx600")
	if len(rows) != 10 || rows[0].Site != "berlin-hq" || rows[0].Outcome != firmware.OutcomeWaiting {
		t.Errorf("devices --site berlin-hq = %d rows, first %+v", len(rows), rows[0])
	}
	var ds []firmware.Device // what scripts decoded before: still decodes
	adminJSON(t, dir, &ds, "devices")
	if len(ds) != 30 {
		t.Errorf("devices --json = %d devices, want 30", len(ds))
	}
	stdout, stderr, code := run(t, "--data", dir, "devices", "--site", "ny", "--limit", "4")
	if code != 0 || strings.Count(stdout, "00-04-F2-") != 4 || !strings.Contains(stderr, "more follow: add --page 00-04-F2-00-00-05") {
		t.Errorf("devices --limit 4: exit %d\n%s%s", code, stdout, stderr)
	}
	out = admin(t, dir, "devices", "--site", "ny", "--page", "00-04-F2-00-00-05", "--limit", "2")
	if !strings.Contains(out, "00-04-F2-00-00-07") || strings.Contains(out, "00-04-F2-00-00-05") {
		t.Errorf("devices --page: %s", out)
	}
	if out := admin(t, dir, "devices", "--text", "USER17@"); !strings.Contains(out, "00-04-F2-00-00-11") || !strings.Contains(out, "1 device(s)") {
		t.Errorf("devices --text: %s", out)
	}
	failAdmin(t, dir, 2, "want waiting, offered", "devices", "--state", "lost")
	if out := admin(t, dir, "devices", "--summary", "--site", "ny"); !strings.Contains(out, "20 device(s)") {
		t.Errorf("devices --summary --site ny: %s", out)
	}
	show = admin(t, dir, "devices", "show", "00:04:f2:00:00:03")
	for _, want := range []string{"Device 00-04-F2-00-00-03", "site       berlin-hq", "Recent history", "runs 4.0.7577.100; nothing offered; from site berlin-hq"} {
		if !strings.Contains(show, want) {
			t.Errorf("devices show lacks %q:\n%s", want, show)
		}
	}
	var d store.DeviceRow
	adminJSON(t, dir, &d, "devices", "show", "SN003")
	if d.Key != "00-04-F2-00-00-03" || len(d.History) != 1 {
		t.Errorf("devices show SN003 --json = %+v", d)
	}
	failAdmin(t, dir, 1, "devsvc devices --text", "devices", "show", "00-04-F2-99-99-99")
	if _, err := json.Marshal(d); err != nil {
		t.Fatal(err)
	}
}

// TestServerApprovesAtTheScheduledTime: approve --at is a scheduled
// one-wave rollout that the server's rollout engine completes at its time
// (the scheduler's behaviour, kept), and logs it.
func TestServerApprovesAtTheScheduledTime(t *testing.T) {
	bin, dir := devsvctest.Init(t, "contoso.com")
	svc := devsvctest.Start(t, bin, dir)
	importVersion(t, dir, "4.0.7577.100")
	var r firmware.Rule
	adminJSON(t, dir, &r, "approve", cx600, "--at", "+2s")
	if r.ApproveAt.IsZero() || !r.Approved.IsZero() {
		t.Fatalf("approve --at = %+v", r)
	}
	var rs []rolloutInfoJSON
	adminJSON(t, dir, &rs, "rollouts")
	if len(rs) != 1 || rs[0].State != firmware.RolloutScheduled || !rs[0].Approval {
		t.Errorf("rollouts = %+v, want the scheduled approval", rs)
	}
	if !svc.WaitForLog(`"msg":"rollout completed"`, 30*time.Second) {
		t.Fatalf("the server did not complete the approval within 30s:\n%s", svc.Logs())
	}
	if r := ruleOf(t, dir); r.Approved.String() != "4.0.7577.100" || !r.Pending.IsZero() || !r.ApproveAt.IsZero() {
		t.Errorf("rule after its time: %+v", r)
	}
	if ev := lastEvent(t, dir); ev.Action != "approve" || ev.Actor != firmware.SystemActor || !strings.HasPrefix(ev.Detail, "scheduled for ") {
		t.Errorf("last event %+v, want the approve by the system", ev)
	}
}
