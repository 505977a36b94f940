package devsvc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/devsvc/store"
)

// backupFile takes a backup of the store in dir (two CX600 versions) and
// writes it to a file.
func backupFile(t *testing.T, dir string) string {
	t.Helper()
	st, err := store.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	seedUpdate(t, st, "4.0.7577.100")
	seedUpdate(t, st, "4.0.7577.200")
	f, err := os.Create(filepath.Join(t.TempDir(), "backup.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := st.Backup(context.Background(), f, "test"); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// updatesIn lists the updates of the store in dir.
func updatesIn(t *testing.T, dir string) int {
	t.Helper()
	st, _, err := store.Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st.Updates
}

// TestRestoreBackup: a backup restores into the data directory it was
// taken from (with --force, keeping what it replaces) and into a new
// devsvc init directory (without, as it holds nothing), whose admin
// certificate is then recorded; it is refused, changing nothing, into a
// directory that is no data directory, while a server has the store
// open, into a store that holds something without --force, and when the
// archive is damaged.
func TestRestoreBackup(t *testing.T) {
	ctx := context.Background()
	old := t.TempDir()
	if _, err := Init(InitOptions{Dir: old, Domain: testDomain}); err != nil {
		t.Fatal(err)
	}
	backup := backupFile(t, old)
	st, err := store.Open(old, nil)
	if err != nil {
		t.Fatal(err)
	}
	seedUpdate(t, st, "4.0.7577.300") // after the backup

	if _, err := RestoreBackup(ctx, RestoreOptions{File: backup, Dir: old, Force: true}); err == nil || !strings.Contains(err.Error(), "a devsvc serve runs on") {
		t.Errorf("RestoreBackup while the store is open = %v, want a refusal saying a server runs", err)
	}
	st.Close()
	if _, err := RestoreBackup(ctx, RestoreOptions{File: backup, Dir: old}); err == nil || !strings.Contains(err.Error(), "holds a store already (rules 1, updates 3") || !strings.Contains(err.Error(), "add --force") {
		t.Errorf("RestoreBackup over a store with 3 updates = %v, want a refusal that counts them and names --force", err)
	}
	if n := updatesIn(t, old); n != 3 {
		t.Fatalf("a refused restore left %d updates, want the 3 there were", n)
	}
	res, err := RestoreBackup(ctx, RestoreOptions{File: backup, Dir: old, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.Updates != 2 || res.Backup.Files != 2 || res.AdminCertRecorded || res.Kept == "" {
		t.Errorf("RestoreBackup --force = %+v, want 2 updates restored, the old store kept, the admin certificate known", res)
	}
	if n := updatesIn(t, res.Kept); n != 3 {
		t.Errorf("the kept store has %d updates, want the 3 it had", n)
	}
	if _, err := os.Stat(filepath.Join(res.Kept, store.FilesDir, "UCPhone/Polycom/CX600/A/ENU/4.0.7577.300/CX600.nbt")); err != nil {
		t.Errorf("the kept files lack the update imported after the backup: %v", err)
	}

	fresh := t.TempDir()
	if _, err := Init(InitOptions{Dir: fresh, Domain: testDomain}); err != nil {
		t.Fatal(err)
	}
	if res, err = RestoreBackup(ctx, RestoreOptions{File: backup, Dir: fresh}); err != nil {
		t.Fatalf("RestoreBackup into a new init directory = %v", err)
	}
	if res.Stats.Updates != 2 || !res.AdminCertRecorded {
		t.Errorf("RestoreBackup into a new init directory = %+v, want 2 updates and its admin certificate recorded", res)
	}
	for _, f := range []string{"4.0.7577.100/CX600.nbt", "4.0.7577.200/CX600.nbt"} {
		if b, err := os.ReadFile(filepath.Join(fresh, store.FilesDir, "UCPhone/Polycom/CX600/A/ENU", f)); err != nil || string(b) != "img" {
			t.Errorf("restored %s: %q, %v", f, b, err)
		}
	}

	if _, err := RestoreBackup(ctx, RestoreOptions{File: backup, Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "is no data directory") || !strings.Contains(err.Error(), "devsvc init") {
		t.Errorf("RestoreBackup into an empty directory = %v, want a refusal saying to init it", err)
	}
	damaged := filepath.Join(t.TempDir(), "damaged.tar")
	b, _ := os.ReadFile(backup)
	os.WriteFile(damaged, b[:len(b)-2048], 0o600)
	if _, err := RestoreBackup(ctx, RestoreOptions{File: damaged, Dir: fresh, Force: true}); err == nil || !strings.Contains(err.Error(), "nothing in "+fresh+" changed") {
		t.Errorf("RestoreBackup of a damaged backup = %v, want a refusal saying nothing changed", err)
	}
	if ents, _ := os.ReadDir(fresh); len(ents) == 0 || updatesIn(t, fresh) != 2 {
		t.Errorf("a refused restore changed the directory")
	}
	for _, e := range mustReadDir(t, fresh) {
		if strings.HasPrefix(e, ".restore-") {
			t.Errorf("a refused restore left %s", e)
		}
	}
	if _, err := datadir.LoadSettings(fresh); err != nil {
		t.Errorf("the settings after restores: %v", err)
	}
}

func mustReadDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
