package console

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opendus/opendus/cabingest"
	"github.com/opendus/opendus/cabingest/cabtest"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/firmware"
)

// cabinetOf packs a described tree of CX600 at version v into a cabinet.
func cabinetOf(t *testing.T, v string) []byte {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, filepath.FromSlash(cx600), v, "CX600.nbt")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, cabtest.FirmwareLike(1, 20<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src, err := cabingest.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cabingest.Describe(ctx, src, cabingest.DescribeOptions{}); err != nil {
		t.Fatal(err)
	}
	if src, err = cabingest.OpenDir(dir); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := cabingest.Pack(ctx, src, &b, "UCUpdates.cab", nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestImportAndApprove walks an admin through the console: upload a
// cabinet, see it pending, read what approving does to how many devices,
// approve, and find it in the history under web:alice.
func TestImportAndApprove(t *testing.T) {
	e := newEnv(t, Config{}, 70) // 60 CX600s on 4.0.7577.4300, 10 CX500s
	c := e.signedIn("alice", alicePW)
	c.get("/import")
	r := c.upload("UCUpdates.cab", cabinetOf(t, "4.0.7577.4400"), c.csrf)
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/import/results/") {
		t.Fatalf("upload: %s to %q\n%s", r.Status, r.Header.Get("Location"), r.body)
	}
	res := c.get(r.Header.Get("Location"))
	if !strings.Contains(res.body, cx600) || !strings.Contains(res.body, "4.0.7577.4400") || !strings.Contains(res.body, "pending: offered to test devices") {
		t.Errorf("import result page:\n%s", res.body)
	}
	upd := c.get("/updates")
	approve := confirmURL("approve", firmware.Rule{ID: cx600ID.RuleID()})
	if !strings.Contains(upd.body, "4.0.7577.4400") || !strings.Contains(upd.body, strings.ReplaceAll(approve, "&", "&amp;")) {
		t.Fatalf("updates page lacks the pending version or its approve link %s:\n%s", approve, upd.body)
	}
	conf := c.get(approve)
	want := "Offer 4.0.7577.4400 to every device of this model: 60 devices of the 60 devices in the inventory run another version"
	if !strings.Contains(conf.body, want) {
		t.Errorf("confirm page does not say %q:\n%s", want, conf.body)
	}
	if e.st.Catalog().Rules()[0].Approved == firmware.MustParseVersion("4.0.7577.4400") {
		t.Fatal("the confirm page approved")
	}
	done := c.change("/updates/approve", url.Values{"rule": {cx600ID.RuleID()}})
	if done.StatusCode != http.StatusSeeOther || done.Header.Get("Location") != "/updates" {
		t.Fatalf("approve: %s\n%s", done.Status, done.body)
	}
	if page := c.get("/updates"); !strings.Contains(page.body, "Approved "+cx600) {
		t.Errorf("no confirmation after approving:\n%s", page.body)
	}
	rl, _ := e.svc.Rule(service.WithPrincipal(t.Context(), certAdmin), cx600)
	if rl.Approved != firmware.MustParseVersion("4.0.7577.4400") {
		t.Errorf("rule after approving = %+v", rl)
	}
	hist := c.get("/history?who=alice&what=approve")
	if !strings.Contains(hist.body, "<td>web:alice</td><td>approve</td>") || strings.Contains(hist.body, "<td>cert:admin</td>") {
		t.Errorf("history filtered by alice and approve:\n%s", hist.body)
	}
	// Schedule in the browser's zone: 14:00 at UTC+2 is 12:00 UTC.
	c.get("/import")
	c.upload("UCUpdates.cab", cabinetOf(t, "4.0.7577.4500"), c.csrf)
	if r := c.change("/updates/schedule", url.Values{"rule": {cx600}, "at": {"2026-11-22T14:00"}, "tz": {"120"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("schedule: %s\n%s", r.Status, r.body)
	}
	rl, _ = e.svc.Rule(service.WithPrincipal(t.Context(), certAdmin), cx600)
	if want := "2026-11-22T12:00:00Z"; rl.ApproveAt.UTC().Format("2006-01-02T15:04:05Z") != want {
		t.Errorf("scheduled at %v, want %s", rl.ApproveAt, want)
	}
	// A refusal of the service shows its message with its status.
	if r := c.change("/updates/restore", url.Values{"rule": {"UCPhone/Polycom/NOPE/A/ENU"}}); r.StatusCode != http.StatusNotFound {
		t.Errorf("restore of an unknown rule: %s, want 404", r.Status)
	}
}

// TestImportZip imports zipped trees: one made of a folder, with an
// archiver's extra files, and ones that are refused with every reason.
func TestImportZip(t *testing.T) {
	e := newEnv(t, Config{}, 0)
	c := e.signedIn("alice", alicePW)
	c.get("/import")
	good := zipOf(t,
		[2]string{"UCUpdates/" + cx600 + "/4.0.7577.4401/CX600.nbt", "firmware"},
		[2]string{"UCUpdates/UCPhone/Polycom/CX500/A/ENU/4.0.7577.4401/CX500.nbt", "firmware 500"},
		[2]string{"__MACOSX/UCUpdates/._CX600.nbt", "junk"},
		[2]string{"UCUpdates/.DS_Store", "junk"},
	)
	r := c.get(c.upload("UCUpdates.zip", good, c.csrf).Header.Get("Location"))
	for _, want := range []string{"UCPhone/Polycom/CX500/A/ENU", "4.0.7577.4401", "2 files unpacked from the zip", "__MACOSX/UCUpdates/._CX600.nbt"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("result of a good zip lacks %q:\n%s", want, r.body)
		}
	}
	seq := e.seq()
	for _, tc := range []struct {
		name string
		data []byte
		want []string
	}{
		{"slip.zip", zipOf(t, [2]string{"../../etc/cron.d/evil", "x"}, [2]string{"/abs/path", "x"}, [2]string{`UCPhone\Polycom\x`, "x"}),
			[]string{`"../../etc/cron.d/evil": empty, . or .. in the path`, `"/abs/path": not a relative path`, `"UCPhone\\Polycom\\x": not a relative path`}},
		{"layout.zip", zipOf(t, [2]string{"readme.txt", "x"}, [2]string{cx600 + "/notaversion/CX600.nbt", "x"}),
			[]string{"readme.txt", "notaversion"}},
		{"garbage.zip", []byte("this is no zip"), []string{"is not a zip file"}},
	} {
		r := c.upload(tc.name, tc.data, c.csrf)
		page := c.get(r.Header.Get("Location"))
		if !strings.Contains(page.body, "Refused: nothing was imported") {
			t.Errorf("%s: not refused:\n%s", tc.name, page.body)
		}
		for _, w := range tc.want {
			if !strings.Contains(page.body, htmlEscape(w)) {
				t.Errorf("%s: the refusal does not say %q:\n%s", tc.name, w, page.body)
			}
		}
	}
	if e.seq() != seq {
		t.Error("a refused import changed the history")
	}
	if r := c.get("/import/results/999999"); r.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown result: %s, want 404", r.Status)
	}
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}

// TestDevicesPage filters the inventory through the store's query and
// pages through it from its cursor, shows a device with its recent
// history, and marks it as a test device from its page.
func TestDevicesPage(t *testing.T) {
	e := newEnv(t, Config{}, 140) // 120 CX600s (12 failing), 20 CX500s; 47 at ny
	c := e.signedIn("alice", alicePW)
	for _, tc := range []struct {
		query string
		want  string
		rows  int
	}{
		{"", "140 devices of 140, 50 a page.", 50},
		{"?model=" + url.QueryEscape("UCPhone/Polycom/CX500/A/ENU"), "20 devices of 140.", 20},
		{"?model=cx500", "20 devices of 140.", 20},
		{"?state=retrying", "14 devices of 140.", 14},
		{"?state=retrying&model=" + url.QueryEscape(cx600), "12 devices of 140.", 12},
		{"?site=ny", "47 devices of 140.", 47},
		{"?site=ny&state=retrying", "5 devices of 140.", 5},
		{"?rule=" + cx600ID.RuleID() + "&version=4.0.7577.4300", "120 devices of 140, 50 a page.", 50},
		{"?version=4.0.7577.4300&state=waiting", "108 devices of 140, 50 a page.", 50},
		{"?q=USER17%40", "1 device of 140.", 1},
		{"?q=nobody", "0 devices of 140.", 0},
		{"?state=idle", "unknown device state &#34;idle&#34;", 0},
		{"?version=4.0&site=Berlin", "version: invalid version", 0},
		{"?rule=nosuchrule", "not found", 0},
	} {
		r := c.get("/devices" + tc.query)
		if r.StatusCode != http.StatusOK || !strings.Contains(r.body, tc.want) {
			t.Errorf("/devices%s: %s, does not say %q:\n%s", tc.query, r.Status, tc.want, firstLines(r.body, "matched"))
		}
		if rows := strings.Count(r.body, `<td><a href="/devices/`); rows != tc.rows {
			t.Errorf("/devices%s: %d rows, want %d", tc.query, rows, tc.rows)
		}
	}
	// Every device once, in key order, over three pages from the cursor.
	var keys []string
	next := "/devices"
	for page := 1; next != ""; page++ {
		r := c.get(next)
		keys = append(keys, regexpAll(`<td><a href="/devices/([^"]+)">`, r.body)...)
		next = ""
		if m := regexpAll(`<a href="([^"]+)" rel="next">`, r.body); len(m) > 0 {
			next = strings.ReplaceAll(m[0], "&amp;", "&")
		}
		if page > 1 && !strings.Contains(r.body, fmt.Sprintf("Page %d: the devices after", page)) {
			t.Errorf("page %d does not say where it starts:\n%s", page, firstLines(r.body, "matched"))
		}
		if page > 3 {
			t.Fatalf("more than 3 pages of 50 for 140 devices")
		}
	}
	if len(keys) != 140 || !slices.IsSorted(keys) || len(slices.Compact(slices.Clone(keys))) != 140 {
		t.Errorf("paging listed %d devices (sorted: %v), want each of the 140 once, in order", len(keys), slices.IsSorted(keys))
	}
	d := e.devices[5]
	page := c.get("/devices/" + url.PathEscape(d.Key))
	for _, want := range []string{d.MAC, d.Serial, d.User, "retrying", "failure 4.0.7577.4372; error 0x80070005", "runs 4.0.7577.4300; offered 4.0.7577.4372",
		`<a href="/sites/hq">hq</a>`, "Mark as test device"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("device page lacks %q:\n%s", want, page.body)
		}
	}
	r := c.change("/testdevices/add", url.Values{"mac": {d.MAC}, "back": {"/devices/" + d.Key}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/devices/"+d.Key {
		t.Fatalf("marking a test device: %s to %q", r.Status, r.Header.Get("Location"))
	}
	page = c.get("/devices/" + url.PathEscape(d.Key))
	if !strings.Contains(page.body, "test device</span>") || !strings.Contains(page.body, "testdevice-add by web:alice") {
		t.Errorf("device page after marking it:\n%s", page.body)
	}
	if r := c.get("/devices/00-00-00-00-00-00"); r.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown device: %s, want 404", r.Status)
	}
	if tds := c.get("/testdevices"); !strings.Contains(tds.body, d.Key) || !strings.Contains(tds.body, "checked in") {
		t.Errorf("test devices page:\n%s", tds.body)
	}
}

func firstLines(body, id string) string {
	if i := strings.Index(body, `id="`+id+`"`); i >= 0 {
		return body[i:min(len(body), i+200)]
	}
	return body
}

// TestAdminsAndAccountsPages adds and removes console admins and device
// accounts through their pages.
func TestAdminsAndAccountsPages(t *testing.T) {
	e := newEnv(t, Config{}, 0)
	c := e.signedIn("alice", alicePW)
	if r := c.change("/admins/add", url.Values{"name": {"carol"}, "role": {"readonly"}, "password": {"short"}, "confirm": {"short"}}); r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, "use at least 15") {
		t.Errorf("a short password: %s\n%s", r.Status, r.body)
	}
	if r := c.change("/admins/add", url.Values{"name": {"carol"}, "role": {"readonly"}, "password": {"carol's long passphrase"}, "confirm": {"carol's long passphrase!"}}); r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, "differ") {
		t.Errorf("passwords that differ: %s", r.Status)
	}
	if r := c.change("/admins/add", url.Values{"name": {"carol"}, "role": {"readonly"}, "password": {"carol's long passphrase"}, "confirm": {"carol's long passphrase"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("adding carol: %s\n%s", r.Status, r.body)
	}
	carol := e.signedIn("carol", "carol's long passphrase")
	if r := c.change("/admins/remove", url.Values{"name": {"carol"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("removing carol: %s", r.Status)
	}
	if r := carol.get("/"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("a removed admin's session: %s, want ended", r.Status)
	}
	// The service refuses a device password below min_password_length,
	// whichever transport asks.
	if r := c.change("/accounts/add", url.Values{"name": {"bob"}, "password": {"x"}, "confirm": {"x"}}); r.StatusCode != http.StatusBadRequest ||
		!strings.Contains(r.body, "device account passwords need at least 8 (min_password_length)") {
		t.Errorf("a one-character device password: %s\n%s", r.Status, r.body)
	}
	if r := c.change("/accounts/add", url.Values{"name": {"bob"}, "password": {"Summer2026!"}, "confirm": {"Summer2026!"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("adding device account bob: %s\n%s", r.Status, r.body)
	}
	a, err := e.st.Account(t.Context(), "bob")
	if h := [16]byte(a.NTHash); err != nil || h == ([16]byte{}) {
		t.Errorf("bob = %+v, %v", a, err)
	}
	c.change("/accounts/disable", url.Values{"name": {"bob"}})
	if page := c.get("/accounts"); !strings.Contains(page.body, "disabled") || !strings.Contains(page.body, "Disabled device account bob.") {
		t.Errorf("accounts page after disabling bob:\n%s", page.body)
	}
	if page := c.get("/settings"); !strings.Contains(page.body, "console_addr") {
		t.Errorf("settings page:\n%s", page.body)
	}
	if page := c.get("/certificates"); page.StatusCode != 200 {
		t.Errorf("certificates page: %s", page.Status)
	}
}
