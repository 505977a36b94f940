package service_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/certs/certstest"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

var (
	admin    = service.Principal{Name: "cert:admin", Role: service.RoleAdmin}
	viewer   = service.Principal{Name: "cert:viewer", Role: service.RoleReadOnly}
	printers = service.Principal{Name: "cert:printer", Role: "printers"}
)

const cx600 = "UCPhone/Polycom/CX600/A/ENU"

func newService(t *testing.T, cfg service.Config) (*service.Service, *store.Store) {
	t.Helper()
	st, err := store.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if cfg.SpoolDir == "" {
		cfg.SpoolDir = t.TempDir()
	}
	return service.New(st, cfg), st
}

// importTree imports one file into cx600's version v as p.
func importTree(t *testing.T, svc *service.Service, p service.Principal, v, content string) error {
	t.Helper()
	ctx := service.WithPrincipal(context.Background(), p)
	up, err := svc.NewUpload(ctx, "tree")
	if err != nil {
		return err
	}
	defer up.Close()
	w, err := up.TreeFile(cx600+"/"+v+"/CX600.nbt", int64(len(content)))
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, content); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	_, err = svc.Import(ctx, up, nil)
	return err
}

// TestAuthorization calls every operation as nobody, as a principal
// without an admin role, as a read-only admin and as an admin: only the
// admin changes anything, and the read-only admin may look.
func TestAuthorization(t *testing.T) {
	svc, st := newService(t, service.Config{PasswordParams: cheapHash})
	if err := importTree(t, svc, admin, "4.0.7577.4372", "image"); err != nil {
		t.Fatal(err)
	}
	ops := []struct {
		name   string
		change bool
		call   func(ctx context.Context) error
	}{
		{"Status", false, func(ctx context.Context) error { _, err := svc.Status(ctx); return err }},
		{"Rules", false, func(ctx context.Context) error { _, err := svc.Rules(ctx); return err }},
		{"Rule", false, func(ctx context.Context) error { _, err := svc.Rule(ctx, cx600); return err }},
		{"TestDevices", false, func(ctx context.Context) error { _, err := svc.TestDevices(ctx); return err }},
		{"Accounts", false, func(ctx context.Context) error { _, err := svc.Accounts(ctx); return err }},
		{"Devices", false, func(ctx context.Context) error { _, err := svc.Devices(ctx); return err }},
		{"History", false, func(ctx context.Context) error { _, err := svc.History(ctx, 0, 0); return err }},
		{"NewUpload", true, func(ctx context.Context) error {
			up, err := svc.NewUpload(ctx, "x")
			if err == nil {
				up.Close()
			}
			return err
		}},
		{"AddTestDevice", true, func(ctx context.Context) error {
			_, err := svc.AddTestDevice(ctx, firmware.TestDevice{MAC: "00-04-F2-00-00-09"})
			return err
		}},
		{"RemoveTestDevice", true, func(ctx context.Context) error { return svc.RemoveTestDevice(ctx, "0004f2000009") }},
		{"PutAccount", true, func(ctx context.Context) error {
			_, err := svc.PutAccount(ctx, "carol", service.NewAccountPassword("Winter2026!"), false)
			return err
		}},
		{"SetAccountDisabled", true, func(ctx context.Context) error { _, err := svc.SetAccountDisabled(ctx, "carol", true); return err }},
		{"RemoveAccount", true, func(ctx context.Context) error { return svc.RemoveAccount(ctx, "carol") }},
		{"Schedule", true, func(ctx context.Context) error {
			_, err := svc.Schedule(ctx, cx600, time.Now().Add(time.Hour))
			return err
		}},
		{"Approve", true, func(ctx context.Context) error { _, err := svc.Approve(ctx, cx600); return err }},
		{"Restore", true, func(ctx context.Context) error { _, err := svc.Restore(ctx, cx600); return err }},
		{"Withdraw", true, func(ctx context.Context) error { _, err := svc.Withdraw(ctx, cx600); return err }},
		{"Reject", true, func(ctx context.Context) error { _, err := svc.Reject(ctx, cx600); return err }},
		{"Remove", true, func(ctx context.Context) error { _, err := svc.Remove(ctx, cx600); return err }},
		{"Purge", true, func(ctx context.Context) error { _, err := svc.Purge(ctx); return err }},
		{"AdminCerts", false, func(ctx context.Context) error { _, err := svc.AdminCerts(ctx); return err }},
		{"IssueAdminCert", true, func(ctx context.Context) error {
			_, _, err := svc.IssueAdminCert(ctx, "ops", service.RoleAdmin, nil)
			return err
		}},
		{"RevokeAdminCert", true, func(ctx context.Context) error { _, err := svc.RevokeAdminCert(ctx, "ops", ""); return err }},
		{"Backup", true, func(ctx context.Context) error { _, err := svc.Backup(ctx, io.Discard); return err }},
		{"LastSeq", false, func(ctx context.Context) error { _, err := svc.LastSeq(ctx); return err }},
		{"ConsoleAdmins", false, func(ctx context.Context) error { _, err := svc.ConsoleAdmins(ctx); return err }},
		{"Settings", false, func(ctx context.Context) error { _, err := svc.Settings(ctx); return err }},
		{"AddConsoleAdmin", true, func(ctx context.Context) error {
			_, err := svc.AddConsoleAdmin(ctx, "dave", service.RoleAdmin, "a long enough passphrase")
			return err
		}},
		{"SetConsoleAdminPassword", true, func(ctx context.Context) error {
			_, err := svc.SetConsoleAdminPassword(ctx, "dave", "another long passphrase")
			return err
		}},
		{"SetConsoleAdminDisabled", true, func(ctx context.Context) error { _, err := svc.SetConsoleAdminDisabled(ctx, "dave", true); return err }},
		{"RemoveConsoleAdmin", true, func(ctx context.Context) error { return svc.RemoveConsoleAdmin(ctx, "dave") }},
		{"Replicas", false, func(ctx context.Context) error { _, _, err := svc.Replicas(ctx); return err }},
		{"ReplicationStatus", false, func(ctx context.Context) error { _, err := svc.ReplicationStatus(ctx); return err }},
		{"AddReplica", true, func(ctx context.Context) error {
			_, _, err := svc.AddReplica(ctx, service.AddReplicaRequest{Name: "paris", Site: "paris"})
			return err
		}},
		{"RemoveReplica", true, func(ctx context.Context) error { _, err := svc.RemoveReplica(ctx, "paris", ""); return err }},
		{"Sites", false, func(ctx context.Context) error { _, err := svc.Sites(ctx); return err }},
		{"PutSite", true, func(ctx context.Context) error {
			_, err := svc.PutSite(ctx, firmware.Site{Name: "hq", Subnets: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}, false)
			return err
		}},
		{"RemoveSite", true, func(ctx context.Context) error { return svc.RemoveSite(ctx, "hq") }},
		{"StartRollout", true, func(ctx context.Context) error {
			_, err := svc.StartRollout(ctx, cx600, firmware.DefaultPlan())
			return err
		}},
		{"PauseRollout", true, func(ctx context.Context) error { _, err := svc.PauseRollout(ctx, cx600, ""); return err }},
		{"ResumeRollout", true, func(ctx context.Context) error { _, err := svc.ResumeRollout(ctx, cx600); return err }},
		{"StopRollout", true, func(ctx context.Context) error { _, err := svc.StopRollout(ctx, cx600); return err }},
		{"Rollouts", false, func(ctx context.Context) error { _, err := svc.Rollouts(ctx); return err }},
		{"RolloutProgress", false, func(ctx context.Context) error {
			_, err := svc.RolloutProgress(ctx, cx600)
			if errors.Is(err, store.ErrNotFound) {
				return nil // no rollout yet: allowed to look
			}
			return err
		}},
		{"Alarms", false, func(ctx context.Context) error { _, err := svc.Alarms(ctx, true); return err }},
		{"RuleCounts", false, func(ctx context.Context) error { _, err := svc.RuleCounts(ctx); return err }},
		{"QueryDevices", false, func(ctx context.Context) error {
			_, err := svc.QueryDevices(ctx, store.DeviceQuery{Site: "hq"})
			return err
		}},
		{"Device", false, func(ctx context.Context) error {
			_, err := svc.Device(ctx, "00-04-F2-00-00-01")
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			return err
		}},
		{"FleetSummary", false, func(ctx context.Context) error { _, err := svc.FleetSummary(ctx); return err }},
		{"RuleDevices", false, func(ctx context.Context) error {
			_, err := svc.RuleDevices(ctx, cx600, firmware.DefaultPlan().Waves)
			if errors.Is(err, store.ErrNotFound) {
				return nil // removed by an admin's call before
			}
			return err
		}},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			seq := st.Catalog().Seq()
			for _, c := range []struct {
				who  string
				ctx  context.Context
				want error
			}{
				{"nobody", context.Background(), service.ErrUnauthenticated},
				{"no admin role", service.WithPrincipal(context.Background(), printers), service.ErrForbidden},
				{"read-only", service.WithPrincipal(context.Background(), viewer), map[bool]error{true: service.ErrForbidden, false: nil}[op.change]},
			} {
				if err := op.call(c.ctx); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
					t.Errorf("%s as %s: %v, want %v", op.name, c.who, err, c.want)
				}
			}
			if got := st.Catalog().Seq(); got != seq {
				t.Errorf("refused calls of %s changed the history (seq %d -> %d)", op.name, seq, got)
			}
			// The admin's call may fail for other reasons (nothing to
			// restore) but never for authorization.
			if err := op.call(service.WithPrincipal(context.Background(), admin)); errors.Is(err, service.ErrForbidden) || errors.Is(err, service.ErrUnauthenticated) {
				t.Errorf("%s as admin: %v", op.name, err)
			}
		})
	}
}

// TestHistoryNamesThePrincipal checks that a change is recorded under the
// principal's name, whichever transport put it in the context.
func TestHistoryNamesThePrincipal(t *testing.T) {
	svc, _ := newService(t, service.Config{})
	web := service.Principal{Name: "web:carol", Role: service.RoleAdmin}
	if err := importTree(t, svc, web, "4.0.7577.4372", "image"); err != nil {
		t.Fatal(err)
	}
	ctx := service.WithPrincipal(context.Background(), web)
	if _, err := svc.Approve(ctx, cx600); err != nil {
		t.Fatal(err)
	}
	events, err := svc.History(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.Actor != "web:carol" {
			t.Errorf("event %+v, want actor web:carol", e)
		}
	}
	if len(events) < 2 {
		t.Errorf("history = %+v, want the import and the approval", events)
	}
}

// TestUploadLimits checks the bounds of an upload and that a refused one
// leaves nothing in the store.
func TestUploadLimits(t *testing.T) {
	svc, st := newService(t, service.Config{MaxImportBytes: 10, MaxImportFiles: 2})
	ctx := service.WithPrincipal(context.Background(), admin)
	tests := []struct {
		name string
		run  func(up *service.Upload) error
		want error
	}{
		{"too many bytes", func(up *service.Upload) error {
			w, err := up.File()
			if err != nil {
				return err
			}
			_, err = w.Write(bytes.Repeat([]byte("x"), 11))
			return err
		}, service.ErrTooLarge},
		{"too many files", func(up *service.Upload) error {
			for _, n := range []string{"a", "b", "c"} {
				w, err := up.TreeFile(cx600+"/1.0.0.1/"+n+".nbt", 0)
				if err != nil {
					return err
				}
				w.Close()
			}
			return nil
		}, service.ErrTooLarge},
		{"path out of the tree", func(up *service.Upload) error {
			_, err := up.TreeFile(cx600+"/1.0.0.1/../../../../../../../x", 1)
			return err
		}, service.ErrInvalid},
		{"short file", func(up *service.Upload) error {
			w, err := up.TreeFile(cx600+"/1.0.0.1/a.nbt", 5)
			if err != nil {
				return err
			}
			io.WriteString(w, "ab")
			return w.Close()
		}, service.ErrInvalid},
		{"file and tree", func(up *service.Upload) error {
			if _, err := up.File(); err != nil {
				return err
			}
			_, err := up.TreeFile(cx600+"/1.0.0.1/a.nbt", 1)
			return err
		}, service.ErrInvalid},
		{"empty", func(up *service.Upload) error {
			_, err := svc.Import(ctx, up, nil)
			return err
		}, service.ErrInvalid},
		{"not a bundle", func(up *service.Upload) error {
			w, err := up.File()
			if err != nil {
				return err
			}
			io.WriteString(w, "MSCF")
			w.Close()
			_, err = svc.Import(ctx, up, nil)
			return err
		}, service.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, err := svc.NewUpload(ctx, tt.name)
			if err != nil {
				t.Fatal(err)
			}
			defer up.Close()
			if err := tt.run(up); !errors.Is(err, tt.want) {
				t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
			}
		})
	}
	if rules := st.Catalog().Rules(); len(rules) != 0 {
		t.Errorf("refused uploads left rules %+v", rules)
	}
}

// TestImportKeyringUnreadable checks that a configured RPM keyring that
// cannot be read refuses every import, saying which setting it is.
func TestImportKeyringUnreadable(t *testing.T) {
	svc, _ := newService(t, service.Config{RPMKeyring: "/nonexistent/keyring.asc", KeyringSetting: "rpm_keyring in devsvc.conf"})
	err := importTree(t, svc, admin, "1.0.0.1", "x")
	if err == nil || !strings.Contains(err.Error(), "rpm_keyring in devsvc.conf") {
		t.Errorf("import with an unreadable keyring: %v, want a refusal naming the setting", err)
	}
}

// TestCertPrincipal: the principal of a client certificate is allowed only
// while the registry has it and it is not revoked; the refusals name it.
func TestCertPrincipal(t *testing.T) {
	cs := certstest.NewStore(t, certs.Config{})
	svc, st := newService(t, service.Config{Issuer: cs})
	ctx := context.Background()
	issue := func(name, role string) *x509.Certificate {
		certPEM, _, err := cs.IssueClient(name, role)
		if err != nil {
			t.Fatal(err)
		}
		c, err := certs.ParseCertPEM(certPEM)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	recorded, unknown, printer := issue("alice", "admin"), issue("mallory", "admin"), issue("printer", "printers")
	for _, c := range []*x509.Certificate{recorded, printer} {
		if ok, err := service.RecordAdminCert(ctx, st, "test", c, ""); !ok || err != nil {
			t.Fatalf("RecordAdminCert = %v, %v", ok, err)
		}
	}
	if ok, err := service.RecordAdminCert(ctx, st, "test", recorded, ""); ok || err != nil {
		t.Errorf("recording again = %v, %v; want false, nil", ok, err)
	}
	p, err := svc.CertPrincipal(ctx, recorded)
	if err != nil || p.Name != "cert:alice" || p.Role != service.RoleAdmin || p.CertSerial != recorded.SerialNumber.Text(16) {
		t.Errorf("CertPrincipal(recorded) = %+v, %v", p, err)
	}
	for name, c := range map[string]*x509.Certificate{"unknown": unknown, "no admin role": printer} {
		if _, err := svc.CertPrincipal(ctx, c); !errors.Is(err, service.ErrForbidden) || !strings.Contains(err.Error(), c.Subject.CommonName) {
			t.Errorf("CertPrincipal(%s) = %v, want ErrForbidden naming it", name, err)
		}
	}
	if _, err := svc.RevokeAdminCert(service.WithPrincipal(ctx, p), "alice", ""); !errors.Is(err, service.ErrInvalid) {
		t.Errorf("revoking one's own certificate = %v, want ErrInvalid", err)
	}
	if _, err := svc.RevokeAdminCert(service.WithPrincipal(ctx, admin), "alice", "left"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CertPrincipal(ctx, recorded); !errors.Is(err, service.ErrForbidden) || !strings.Contains(err.Error(), "was revoked") || !strings.Contains(err.Error(), "left") {
		t.Errorf("CertPrincipal(revoked) = %v, want ErrForbidden saying it was revoked and why", err)
	}
}

// TestRolloutOperations: rollout and site operations are recorded under
// the principal, and what cannot be done says what to do.
func TestRolloutOperations(t *testing.T) {
	svc, st := newService(t, service.Config{})
	ctx := service.WithPrincipal(context.Background(), admin)
	if err := importTree(t, svc, admin, "4.0.7577.4372", "image"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PutSite(ctx, firmware.Site{Name: "hq", Subnets: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, TimeZone: "Europe/Berlin"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PutSite(ctx, firmware.Site{Name: "hq"}, false); !errors.Is(err, store.ErrExists) {
		t.Errorf("PutSite of an existing site = %v, want ErrExists", err)
	}
	ro, err := svc.StartRollout(ctx, cx600, firmware.DefaultPlan())
	if err != nil || ro.By != admin.Name || ro.State != firmware.RolloutRunning {
		t.Fatalf("StartRollout = %+v, %v", ro, err)
	}
	if _, err := svc.PauseRollout(ctx, cx600, "investigating tickets"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PauseRollout(ctx, cx600, ""); !errors.Is(err, firmware.ErrRolloutNotRunning) {
		t.Errorf("pausing a paused rollout = %v, want ErrRolloutNotRunning", err)
	}
	if _, err := svc.Approve(ctx, cx600); !errors.Is(err, store.ErrRolloutLive) || !strings.Contains(err.Error(), "devsvc rollout stop") {
		t.Errorf("approve during a rollout = %v, want ErrRolloutLive saying how to stop it", err)
	}
	rs, err := svc.Rollouts(ctx)
	if err != nil || len(rs) != 1 || rs[0].State != firmware.RolloutPaused || rs[0].Reason != "investigating tickets" {
		t.Errorf("Rollouts = %+v, %v", rs, err)
	}
	es, _ := st.History(context.Background(), 0, 0)
	for _, e := range es {
		if strings.HasPrefix(e.Action, "rollout-") || strings.HasPrefix(e.Action, "site-") {
			if e.Actor != admin.Name {
				t.Errorf("event %s by %q, want %q", e.Action, e.Actor, admin.Name)
			}
		}
	}
	if _, err := svc.QueryDevices(ctx, store.DeviceQuery{State: "broken"}); !errors.Is(err, service.ErrInvalid) {
		t.Errorf("QueryDevices with a bad state = %v, want ErrInvalid", err)
	}
	if _, err := svc.Device(ctx, "SN-none"); !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "devsvc devices --text") {
		t.Errorf("Device of an unknown serial = %v, want ErrNotFound saying how to search", err)
	}
	st.RecordCheckIn(context.Background(), firmware.Device{Serial: "SN-1", Identity: firmware.Identity{DeviceType: "UCPhone", Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"}})
	if d, err := svc.Device(ctx, "SN-1"); err != nil || d.Key != "serial:SN-1" {
		t.Errorf("Device by serial = %+v, %v", d, err)
	}
	status, _ := svc.Status(ctx)
	if status.Alarms != 0 {
		t.Errorf("Status.Alarms = %d", status.Alarms)
	}
}

// TestImportedResults: Config.Imported is told the result of every import.
func TestImportedResults(t *testing.T) {
	var got []string
	svc, _ := newService(t, service.Config{Imported: func(r string) { got = append(got, r) }})
	importTree(t, svc, admin, "1.0.0.1", "x")
	importTree(t, svc, admin, "1.0.0.1", "x")
	ctx := service.WithPrincipal(context.Background(), admin)
	up, err := svc.NewUpload(ctx, "junk")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	w, err := up.File()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "MSCF")
	w.Close()
	svc.Import(ctx, up, nil)                   // not a bundle
	importTree(t, svc, viewer, "1.0.0.2", "x") // not allowed to: no import made
	want := []string{service.ImportStored, service.ImportUnchanged, service.ImportRefused}
	if !slices.Equal(got, want) {
		t.Errorf("imports told = %q, want %q", got, want)
	}
}

// TestSetImportSettings: a new max_import_bytes and rpm_keyring apply to
// the next upload and import.
func TestSetImportSettings(t *testing.T) {
	svc, _ := newService(t, service.Config{MaxImportBytes: 1})
	if err := importTree(t, svc, admin, "1.0.0.1", "xy"); !errors.Is(err, service.ErrTooLarge) {
		t.Fatalf("import of 2 bytes with max 1 = %v, want ErrTooLarge", err)
	}
	svc.SetImportSettings(2, "")
	if err := importTree(t, svc, admin, "1.0.0.1", "xy"); err != nil {
		t.Errorf("import of 2 bytes with max 2 = %v", err)
	}
	svc.SetImportSettings(0, "/nonexistent/keyring.asc")
	if err := importTree(t, svc, admin, "1.0.0.2", "xyz"); err == nil || !strings.Contains(err.Error(), "keyring") {
		t.Errorf("import with an unreadable keyring set = %v, want a refusal naming the keyring", err)
	}
}

// TestMinAccountPasswordLength: PutAccount refuses a password shorter
// than the minimum, saying it, whichever transport asks; the default is
// 8; SetMinAccountPasswordLength changes it for the next call.
func TestMinAccountPasswordLength(t *testing.T) {
	svc, _ := newService(t, service.Config{})
	ctx := service.WithPrincipal(context.Background(), admin)
	if _, err := svc.PutAccount(ctx, "alice", service.NewAccountPassword("Autumn2026!"), false); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		set  int
		pw   string
		want string
	}{
		{0, "Winter2", "the password of alice has 7 character(s): device account passwords need at least 8 (min_password_length)"},
		{0, "Winter26", ""},
		{12, "Winter2026!", "need at least 12"},
		{12, "Wintér2026!x", ""}, // 12 characters, 13 bytes
		{-1, "Winter26", ""},     // back to the default
	} {
		if tt.set != 0 {
			svc.SetMinAccountPasswordLength(tt.set)
		}
		_, err := svc.PutAccount(ctx, "alice", service.NewAccountPassword(tt.pw), true)
		if tt.want == "" && err != nil {
			t.Errorf("PutAccount with %q (minimum set to %d) = %v, want it taken", tt.pw, tt.set, err)
		}
		if tt.want != "" && (!errors.Is(err, service.ErrInvalid) || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("PutAccount with %q (minimum set to %d) = %v, want ErrInvalid saying %q", tt.pw, tt.set, err, tt.want)
		}
	}
}
