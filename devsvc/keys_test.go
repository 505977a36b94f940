package devsvc

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/updatemeta"
)

// TestKeys: init makes the signing keys and init --force keeps them; the
// root key exported with --remove leaves the directory, a rotation then
// needs it back, and each rotation signs the next root version.
func TestKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dus")
	if _, err := Init(InitOptions{Dir: dir, Domain: testDomain}); err != nil {
		t.Fatal(err)
	}
	st, err := Keys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.RootVersion != 1 || st.RootKeyOffline || len(st.Keys) != 4 {
		t.Fatalf("after init: %+v, want root version 1, four keys, the root key online", st)
	}
	if _, err := KeysInit(dir, time.Now()); !errors.Is(err, updatemeta.ErrExist) {
		t.Errorf("keys init again: %v, want ErrExist", err)
	}
	if _, err := Init(InitOptions{Dir: dir, Domain: testDomain, Force: true}); err != nil {
		t.Fatal(err)
	}
	again, err := Keys(dir)
	if err != nil || again.Keys[1].KeyID != st.Keys[1].KeyID {
		t.Errorf("init --force: targets key %s (%v), want %s kept", again.Keys[1].KeyID, err, st.Keys[1].KeyID)
	}

	off := filepath.Join(t.TempDir(), "root.key")
	// A file there already is kept, and the key stays in the directory.
	if err := os.WriteFile(off, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := KeysExportRootKey(dir, off, true); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("export over an existing file: %v, want it refused", err)
	}
	if b, _ := os.ReadFile(off); string(b) != "mine" {
		t.Errorf("export over an existing file replaced it")
	}
	if err := os.Remove(off); err != nil {
		t.Fatal(err)
	}
	if err := KeysExportRootKey(dir, off, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, datadir.KeysDir, updatemeta.RootKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the root key is still in the data directory after --remove: %v", err)
	}
	if fi, err := os.Stat(off); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the exported root key: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	if err := KeysExportRootKey(dir, filepath.Join(t.TempDir(), "again.key"), false); !errors.Is(err, updatemeta.ErrNoRootKey) {
		t.Errorf("export of a root key kept offline: %v, want ErrNoRootKey", err)
	}
	if _, err := KeysRotate(dir, time.Now(), KeysRotateOptions{Online: true}); !errors.Is(err, updatemeta.ErrNoRootKey) {
		t.Errorf("rotate without the root key: %v, want ErrNoRootKey", err)
	}
	r, err := KeysRotate(dir, time.Now(), KeysRotateOptions{Online: true, RootKeyFile: off})
	if err != nil {
		t.Fatal(err)
	}
	if r.RootVersion != 2 || !r.RootKeyOffline || r.Keys[1].KeyID == st.Keys[1].KeyID {
		t.Errorf("after rotate: %+v, want root version 2, new online keys, the root key still offline", r)
	}
	r, err = KeysRotate(dir, time.Now(), KeysRotateOptions{Root: true, RootKeyFile: off})
	if err != nil {
		t.Fatal(err)
	}
	if r.RootVersion != 3 || r.RootKeyOffline {
		t.Errorf("after rotate --root: %+v, want root version 3 and the new root key in the directory", r)
	}
	root, err := KeysExportRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ri, err := updatemeta.ParseRoot(root); err != nil || ri.Version != 3 {
		t.Errorf("exported root: version %d (%v), want 3", ri.Version, err)
	}
}

func TestRootWarnings(t *testing.T) {
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name    string
		expires time.Time
		want    string
	}{
		{"far", now.Add(365 * 24 * time.Hour), ""},
		{"soon", now.Add(30 * 24 * time.Hour), "expires on 2027-01-05"},
		{"expired", now.Add(-time.Hour), "expired on 2026-12-05"},
		{"unknown", time.Time{}, ""},
	} {
		got := rootWarnings(tt.expires, now)
		if (tt.want == "") != (len(got) == 0) || (tt.want != "" && !strings.Contains(got[0], tt.want)) {
			t.Errorf("%s: rootWarnings = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestServeMakesMissingKeys: a data directory made before signed
// metadata (no keys/) gets keys when it is served, and both device
// listeners serve the metadata: the external one behind NTLM, the
// internal one anonymously.
func TestServeMakesMissingKeys(t *testing.T) {
	r := serveOpts(t, nil, "", nil, func(dir string, _ *ServeOptions) {
		if err := os.RemoveAll(filepath.Join(dir, datadir.KeysDir)); err != nil {
			t.Fatal(err)
		}
	})
	st, err := Keys(r.dir)
	if err != nil || st.RootVersion != 1 {
		t.Fatalf("keys after serve: %+v, %v; want root version 1", st, err)
	}
	c, base := r.device(t, false, nil)
	for _, tc := range []struct {
		path string
		code int
	}{
		{deviceproto.MetadataPrefix + "root.json", http.StatusOK},
		{deviceproto.MetadataPrefix + "1.root.json", http.StatusOK},
		{deviceproto.MetadataPrefix + "2.root.json", http.StatusNotFound},
		{deviceproto.MetadataPrefix + "timestamp.json", http.StatusOK},
		{deviceproto.MetadataPrefix + "snapshot.json", http.StatusOK},
		{deviceproto.MetadataPrefix + "targets.json", http.StatusOK},
		{deviceproto.MetadataPrefix + "../devsvc.conf", http.StatusNotFound},
		{deviceproto.PiecesPrefix + strings.Repeat("0", 64), http.StatusNotFound},
	} {
		if code, body := do(t, c, http.MethodGet, base+tc.path, nil, nil); code != tc.code {
			t.Errorf("GET %s = %d %s, want %d", tc.path, code, body, tc.code)
		}
	}
	ce, ext := r.device(t, true, nil)
	if code, _ := do(t, ce, http.MethodGet, ext+deviceproto.MetadataPrefix+"timestamp.json", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("GET timestamp.json at the edge without NTLM = %d, want 401", code)
	}
}
