package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/devsvctest"
	"github.com/opendus/opendus/internal/testtool"
	"github.com/opendus/opendus/simulator"
)

// ScreenshotsEnv names the directory the browser test writes its
// screenshots of the main pages to (make screenshots sets it to
// docs/screenshots); unset, it writes none.
const ScreenshotsEnv = "OPENDUS_SCREENSHOTS"

// browser starts a headless Chromium of the distribution, as root needs
// it, with a temporary profile, trusting the service's server key (by its
// SPKI hash) as a browser that was given the CA would trust its
// certificate.
func browser(t *testing.T, s *devsvctest.Service) context.Context {
	t.Helper()
	bin := testtool.Need(t, "chromium")
	cs, err := certs.Open(filepath.Join(s.Dir, datadir.CertsDir), certs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cs.ServerCertificate().RawSubjectPublicKeyInfo)
	spki := base64.StdEncoding.EncodeToString(sum[:])
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("ignore-certificate-errors-spki-list", spki),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // start the browser without a timeout
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// page runs steps against the browser, bounded in time.
func page(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML("main"))
		t.Fatalf("%s: %v\n%s", what, err, html)
	}
}

// value runs one action and returns its value, bounded in time.
func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// screenshot writes the page as name.png when ScreenshotsEnv is set.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv(ScreenshotsEnv)
	if dir == "" {
		return
	}
	png := value(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fetchStatus posts a form from the page with fetch() and returns the
// status: a change the page's own script could forge.
func fetchStatus(t *testing.T, ctx context.Context, path, body string) int {
	t.Helper()
	js := `fetch(` + jsString(path) + `, {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: ` + body + `}).then(r => r.status)`
	return value(t, ctx, "fetch "+path, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
}

func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// TestConsoleInBrowser drives the console of a real devsvc serve with a
// real Chromium: an admin signs in, uploads a cabinet and sees it
// pending, marks a test device and approves; a change without the CSRF
// token is refused; a read-only admin sees no action and its forged
// change is refused; five wrong passwords lock an account.
func TestConsoleInBrowser(t *testing.T) {
	s := startService(t, nil)
	for _, a := range []struct{ name, role, pw string }{
		{"alice", "admin", "correct horse battery staple"},
		{"helpdesk", "readonly", "a read-only admin's passphrase"},
	} {
		if out, errOut, err := devsvctest.RunCLI(s.Bin, s.Dir, a.pw+"\n", "admins", "add", a.name, "--role", a.role, "--password-stdin"); err != nil {
			t.Fatalf("devsvc admins add %s: %v\n%s%s", a.name, err, out, errOut)
		}
	}
	// A fleet that checked in, and a cabinet of a new CX600 version.
	sc := simulator.Scenario{Seed: 13, Groups: []simulator.Group{
		{Model: cx600.Path(), Count: 24, Version: "4.0.7577.4300"},
		{Model: hp.Path(), Count: 8, Version: "4.0.7577.4366"},
	}}
	prepare(t, s, &sc)
	runUntil(t, newSim(t, s, sc), 2*time.Hour)
	tree := t.TempDir()
	if err := simulator.WriteFirmware(tree, cx600, firmware.MustParseVersion("4.0.7577.4400"), 256<<10); err != nil {
		t.Fatal(err)
	}
	cab := filepath.Join(t.TempDir(), "UCUpdates.cab")
	s.CLI(t, "bundle", "pack", tree, "--describe", "-o", cab)

	ctx := browser(t, s)
	base := "https://" + s.Run.Console
	signIn := func(user, pw string) {
		t.Helper()
		page(t, ctx, "sign in as "+user,
			chromedp.Navigate(base+"/"),
			chromedp.WaitVisible("#user"),
			chromedp.SendKeys("#user", user),
			chromedp.SendKeys("#password", pw),
			chromedp.Submit("#password"),
			chromedp.WaitVisible("form.whoami, #signin-error"), // signed in, or refused
		)
	}
	signIn("alice", "correct horse battery staple")
	page(t, ctx, "overview", chromedp.WaitVisible("#h-fleet"))
	screenshot(t, ctx, "overview")

	// Upload the cabinet, with its progress, and see the result.
	page(t, ctx, "import",
		chromedp.Navigate(base+"/import"),
		chromedp.SetUploadFiles("#bundle", []string{cab}),
		chromedp.Click("form[data-upload] button[type=submit]"),
		chromedp.WaitVisible("#imported"),
	)
	if got := value(t, ctx, "import result", chromedp.Text("#imported")); !strings.Contains(got, "4.0.7577.4400") || !strings.Contains(got, "pending") {
		t.Errorf("import result: %q, want 4.0.7577.4400 pending", got)
	}
	screenshot(t, ctx, "import-result")
	page(t, ctx, "updates", chromedp.Navigate(base+"/updates"), chromedp.WaitVisible("table.rules"))
	if got := value(t, ctx, "updates", chromedp.Text("table.rules")); !strings.Contains(got, "4.0.7577.4400") {
		t.Errorf("updates page: %q, want 4.0.7577.4400 pending", got)
	}
	screenshot(t, ctx, "updates")

	// Mark a test device from its page.
	page(t, ctx, "devices",
		chromedp.Navigate(base+"/devices?model="+cx600.Path()),
		chromedp.WaitVisible("table.devices"),
	)
	screenshot(t, ctx, "devices")
	page(t, ctx, "mark a test device",
		chromedp.Click("table.devices tbody tr:first-child a"),
		chromedp.WaitVisible("h1"),
		chromedp.Click(`form[action="/testdevices/add"] button`),
		chromedp.WaitVisible(".flash"),
	)
	if got := value(t, ctx, "flash", chromedp.Text(".flash")); !strings.Contains(got, "is a test device") {
		t.Errorf("after marking a test device: %q", got)
	}
	screenshot(t, ctx, "device")
	var tds []firmware.TestDevice
	s.JSON(t, &tds, "testdevices", "list")
	if len(tds) != 1 {
		t.Errorf("test devices = %+v, want the one marked", tds)
	}

	// Approve, on the confirm page that counts the devices.
	page(t, ctx, "confirm approve",
		chromedp.Navigate(base+"/updates"),
		chromedp.Click(`a.button[href*="action=approve"]`),
		chromedp.WaitVisible("#effect"),
	)
	if got := value(t, ctx, "effect", chromedp.Text("#effect")); !strings.Contains(got, "24 devices of the 24 devices in the inventory run another version") {
		t.Errorf("approve confirm page says %q, want the 24 CX600s counted", got)
	}
	screenshot(t, ctx, "confirm")
	page(t, ctx, "approve", chromedp.Click("form.confirm button[type=submit]"), chromedp.WaitVisible(".flash"))
	var rules []firmware.Rule
	s.JSON(t, &rules, "rules", cx600.Path())
	if rules[0].Approved.String() != "4.0.7577.4400" {
		t.Fatalf("rule after approving in the browser: %+v", rules[0])
	}
	var es []firmware.Event
	s.JSON(t, &es, "history")
	if last := es[len(es)-1]; last.Actor != "web:alice" || last.Action != "approve" {
		t.Errorf("last event %+v, want web:alice's approve", last)
	}

	// A change without the CSRF token is refused.
	if code := fetchStatus(t, ctx, "/testdevices/add", `"mac=00-04-F2-00-00-99"`); code != 403 {
		t.Errorf("a change without the CSRF token: %d, want 403", code)
	}
	page(t, ctx, "history", chromedp.Navigate(base+"/history"), chromedp.WaitVisible("#history"))
	screenshot(t, ctx, "history")
	page(t, ctx, "sign out", chromedp.Click("form.whoami button"), chromedp.WaitVisible("#user"))

	// A read-only admin sees no action, and a change it forges with a
	// valid session and token is refused.
	signIn("helpdesk", "a read-only admin's passphrase")
	page(t, ctx, "read-only updates", chromedp.Navigate(base+"/updates"), chromedp.WaitVisible("table.rules"))
	controls := value(t, ctx, "controls", chromedp.Evaluate[int](`document.querySelectorAll('form[method=post]:not(.whoami), a[href*="/updates/confirm"]').length`))
	if controls != 0 {
		t.Errorf("a read-only admin's updates page has %d action controls", controls)
	}
	screenshot(t, ctx, "updates-readonly")
	forged := `new URLSearchParams({csrf: document.querySelector('input[name=csrf]').value, rule: ` + jsString(cx600.Path()) + `})`
	if code := fetchStatus(t, ctx, "/updates/withdraw", forged); code != 403 {
		t.Errorf("a read-only admin's forged withdraw: %d, want 403", code)
	}
	s.JSON(t, &rules, "rules", cx600.Path())
	if rules[0].Approved.String() != "4.0.7577.4400" {
		t.Errorf("the forged withdraw changed the rule: %+v", rules[0])
	}
	page(t, ctx, "sign out", chromedp.Click("form.whoami button"), chromedp.WaitVisible("#user"))
	screenshot(t, ctx, "signin")

	// Five wrong passwords lock alice: the right one is refused then.
	for range 5 {
		signIn("alice", "not alice's password")
	}
	signIn("alice", "correct horse battery staple")
	if loc := value(t, ctx, "location", chromedp.Location()); !strings.Contains(loc, "/signin") {
		t.Errorf("alice signed in after five wrong passwords: at %s", loc)
	}
}
