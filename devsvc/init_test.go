package devsvc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// readCerts reads the data directory's certificate files.
func readCerts(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, f := range []string{certs.CACertFile, certs.CAKeyFile, certs.ServerCertFile, certs.AdminCertFile, certs.AdminKeyFile} {
		b, err := os.ReadFile(filepath.Join(dir, datadir.CertsDir, f))
		if err != nil {
			t.Fatal(err)
		}
		out[f] = b
	}
	return out
}

// adminCerts reads the registry of admin certificates.
func adminCerts(t *testing.T, dir string) []firmware.AdminCert {
	t.Helper()
	st, err := store.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	list, err := st.AdminCerts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// TestInitForceKeepsEverything: init --force on an existing data directory
// keeps the CA, the certificates, the settings (an admin's own lines
// too) and the catalog; a new name is set in the settings and added to
// the server certificate under the same CA, with what it replaced backed
// up; only --new-ca replaces the CA, backing up the old one.
func TestInitForceKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(InitOptions{Dir: dir, Domain: testDomain}); err != nil {
		t.Fatal(err)
	}
	if list := adminCerts(t, dir); len(list) != 1 || list[0].Name != "admin" || list[0].IssuedBy != "devsvc init" {
		t.Fatalf("registry after init = %+v, want the admin certificate recorded by devsvc init", list)
	}
	conf := filepath.Join(dir, datadir.ConfigFile)
	data, _ := os.ReadFile(conf)
	data = append(data, "\n# the lab checks twice a day\ncheck_interval = 12h\n"...)
	if err := os.WriteFile(conf, data, 0o640); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	seedUpdate(t, st, "1.0.0.1")
	st.Close()
	before := readCerts(t, dir)

	// Without --force: refused, pointing at --force and what it keeps.
	if _, err := Init(InitOptions{Dir: dir, Domain: testDomain}); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "--force") {
		t.Errorf("second Init = %v, want ErrExists mentioning --force", err)
	}

	// --force with the same names: nothing changes, nothing is backed up.
	res, err := Init(InitOptions{Dir: dir, Domain: testDomain, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reinit || len(res.Changes) != 0 || res.Backup != "" {
		t.Errorf("Init --force with the same names = %+v, want a re-init that changed nothing", res)
	}
	if got, _ := os.ReadFile(conf); !bytes.Equal(got, data) {
		t.Errorf("the settings file changed:\n%s", got)
	}
	for f, b := range readCerts(t, dir) {
		if !bytes.Equal(b, before[f]) {
			t.Errorf("%s changed", f)
		}
	}

	// --force with a new internal name: set in the settings, added to
	// the server certificate under the same CA; the rest kept.
	res, err = Init(InitOptions{Dir: dir, Domain: testDomain, Force: true, InternalName: "dus2.contoso.com"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) != 2 || res.Backup == "" {
		t.Errorf("Init --force --internal-name = %+v, want the setting and the server certificate changed, with a backup", res)
	}
	s, err := datadir.LoadSettings(dir)
	if err != nil || s.InternalName != "dus2.contoso.com" || s.CheckInterval.Hours() != 12 {
		t.Errorf("settings after the re-init = %+v, %v; want the new name and the admin's check_interval", s, err)
	}
	if got, _ := os.ReadFile(conf); !strings.Contains(string(got), "# the lab checks twice a day\ncheck_interval = 12h\n") {
		t.Errorf("the admin's own lines are gone:\n%s", got)
	}
	after := readCerts(t, dir)
	for _, f := range []string{certs.CACertFile, certs.CAKeyFile, certs.AdminCertFile, certs.AdminKeyFile} {
		if !bytes.Equal(after[f], before[f]) {
			t.Errorf("%s changed", f)
		}
	}
	srv, err := certs.ParseCertPEM(after[certs.ServerCertFile])
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"dus2.contoso.com", "ucupdates-r2.contoso.com", "ucupdates.contoso.com"} {
		if srv.VerifyHostname(n) != nil {
			t.Errorf("the reissued server certificate does not cover %s (names %v)", n, srv.DNSNames)
		}
	}
	for rel, want := range map[string][]byte{datadir.ConfigFile: data, filepath.Join(datadir.CertsDir, certs.ServerCertFile): before[certs.ServerCertFile]} {
		if got, err := os.ReadFile(filepath.Join(res.Backup, rel)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("backup of %s: %v, or not the file replaced", rel, err)
		}
	}

	// --new-ca: a new CA; the old certificates are in the backup, and
	// the old admin certificate is marked revoked.
	if _, err := Init(InitOptions{Dir: dir, Domain: testDomain, NewCA: true}); err == nil {
		t.Error("Init --new-ca without --force succeeded")
	}
	res, err = Init(InitOptions{Dir: dir, Domain: testDomain, Force: true, NewCA: true})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(readCerts(t, dir)[certs.CACertFile], before[certs.CACertFile]) {
		t.Error("--new-ca kept the CA")
	}
	if got, err := os.ReadFile(filepath.Join(res.Backup, datadir.CertsDir, certs.CACertFile)); err != nil || !bytes.Equal(got, before[certs.CACertFile]) {
		t.Errorf("the old CA is not in the backup %s: %v", res.Backup, err)
	}
	list := adminCerts(t, dir)
	if len(list) != 2 || list[0].Revoked.IsZero() || !list[1].Revoked.IsZero() {
		t.Errorf("registry after --new-ca = %+v, want the old admin certificate revoked and the new one valid", list)
	}
	if s, err := datadir.LoadSettings(dir); err != nil || s.InternalName != "dus2.contoso.com" || s.CheckInterval.Hours() != 12 {
		t.Errorf("--new-ca changed the settings: %+v, %v", s, err)
	}
	st, err = store.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if rules := st.Catalog().Rules(); len(rules) != 1 {
		t.Errorf("rules after the re-inits = %+v, want the one imported", rules)
	}
}

// TestInitRefusesWhileServing: a re-init while the store is in use (a
// server runs) is refused before anything changes, with an error that
// names the store once and says what to do.
func TestInitRefusesWhileServing(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(InitOptions{Dir: dir, Domain: testDomain}); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	before := readCerts(t, dir)
	_, err = Init(InitOptions{Dir: dir, Domain: testDomain, Force: true, NewCA: true})
	if err == nil || strings.Count(err.Error(), "store:") != 1 || !strings.Contains(err.Error(), "stop devsvc serve") {
		t.Errorf("Init --force while the store is open = %v, want one store: prefix and a hint to stop devsvc serve", err)
	}
	if !bytes.Equal(readCerts(t, dir)[certs.CACertFile], before[certs.CACertFile]) {
		t.Error("a refused re-init replaced the CA")
	}
}

// seedUpdate imports one CX600 update of version v into st.
func seedUpdate(t *testing.T, st *store.Store, v string) {
	t.Helper()
	id := firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"}
	if _, err := st.Import(context.Background(), "test", []firmware.ImportUpdate{{Identity: id, Version: firmware.MustParseVersion(v), Files: []firmware.ImportFile{{
		Name: "CX600.nbt", Size: -1, Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("img")), nil },
	}}}}, store.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
}
