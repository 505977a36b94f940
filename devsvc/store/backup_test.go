package store

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/firmware"
)

// backupOf returns a backup of a store with two updates, a test device,
// an account, a device and a site, and the store.
func backupOf(t testing.TB) ([]byte, *Store) {
	t.Helper()
	s := openTest(t, nil)
	ctx := context.Background()
	mustImport(t, s, update(phone, v1), update(table, v1))
	s.AddTestDevice(ctx, "admin", firmware.TestDevice{MAC: "00-04-F2-00-00-01"})
	s.PutAccount(ctx, "admin", firmware.Account{Name: "alice", NTHash: [16]byte{7}})
	s.RecordCheckIn(ctx, firmware.Device{MAC: "00-04-F2-00-00-09", Identity: phone, Version: v1})
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := s.Backup(ctx, &buf, "test"); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), s
}

// TestBackupRestores: a backup restores into an empty directory as a
// store with the same catalog, history, inventory and files.
func TestBackupRestores(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, nil)
	mustImport(t, s, update(phone, v1), update(table, v1), update(phone, v2))
	s.AddTestDevice(ctx, "admin", firmware.TestDevice{MAC: "00-04-F2-00-00-01"})
	s.PutAccount(ctx, "admin", firmware.Account{Name: "alice", NTHash: [16]byte{7}})
	s.RecordCheckIn(ctx, firmware.Device{MAC: "00-04-F2-00-00-09", Identity: phone, Version: v1})
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	info, err := s.Backup(ctx, &buf, "test")
	if err != nil {
		t.Fatal(err)
	}
	st, _ := s.Stats(ctx)
	if info.Format != BackupFormat || info.Seq != st.Seq || info.Updates != 3 || info.Files != 9 || info.Schema != SchemaVersion || info.Version != "test" {
		t.Errorf("Backup = %+v, want format %d at history %d with 3 updates of 9 files", info, BackupFormat, st.Seq)
	}
	dir := t.TempDir()
	got, err := RestoreBackup(ctx, bytes.NewReader(buf.Bytes()), dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(info, got); diff != "" {
		t.Errorf("RestoreBackup's manifest (-Backup +RestoreBackup):\n%s", diff)
	}
	if diff := cmp.Diff(diskFiles(t, s.dir), diskFiles(t, dir)); diff != "" {
		t.Errorf("restored files (-original +restored):\n%s", diff)
	}
	b := openDir(t, dir, nil)
	for _, tt := range []struct {
		name string
		get  func(*Store) (any, error)
	}{
		{"stats", func(s *Store) (any, error) { st, err := s.Stats(ctx); st.DBBytes = 0; return st, err }},
		{"rules", func(s *Store) (any, error) { return s.Catalog().Rules(), nil }},
		{"updates", func(s *Store) (any, error) { return s.Updates(ctx) }},
		{"history", func(s *Store) (any, error) { return s.History(ctx, 0, 0) }},
		{"test devices", func(s *Store) (any, error) { return s.TestDevices(ctx) }},
		{"accounts", func(s *Store) (any, error) { return s.Accounts(ctx) }},
		{"devices", func(s *Store) (any, error) { return s.Devices(ctx) }},
	} {
		want, err1 := tt.get(s)
		got, err2 := tt.get(b)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v, %v", tt.name, err1, err2)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s of the restored backup (-original +restored):\n%s", tt.name, diff)
		}
	}
	checkConsistent(t, b)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Backup(cctx, io.Discard, "test"); !errors.Is(err, context.Canceled) {
		t.Errorf("Backup(cancelled) = %v", err)
	}
}

// blockingWriter blocks the first write after the database has been
// written (the first file's) until release is closed.
type blockingWriter struct {
	buf      bytes.Buffer
	after    int64
	reached  chan struct{}
	release  chan struct{}
	released bool
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	if !w.released && int64(w.buf.Len()) >= w.after {
		close(w.reached)
		<-w.release
		w.released = true
	}
	return w.buf.Write(p)
}

// TestBackupKeepsFilesARemoveDeletes: a Remove committed while a backup
// copies the files it recorded deletes them only after the backup has
// them, so the backup restores whole; the store then has them removed.
func TestBackupKeepsFilesARemoveDeletes(t *testing.T) {
	ctx := context.Background()
	removing := make(chan struct{})
	s := openTest(t, &Options{testHookRemoveFiles: func() { close(removing) }})
	mustImport(t, s, update(phone, v1), update(table, v1))
	st, _ := s.Stats(ctx)
	w := &blockingWriter{after: st.DBBytes + 2048, reached: make(chan struct{}), release: make(chan struct{})}
	backedUp := make(chan error, 1)
	go func() {
		_, err := s.Backup(ctx, w, "test")
		backedUp <- err
	}()
	<-w.reached // the database is in the archive, its files are not
	removed := make(chan error, 1)
	go func() {
		_, err := s.Remove(ctx, "admin", phone.Path())
		removed <- err
	}()
	<-removing // Remove committed and waits to delete the files
	close(w.release)
	if err := <-backedUp; err != nil {
		t.Fatalf("Backup = %v", err)
	}
	if err := <-removed; err != nil {
		t.Fatalf("Remove = %v", err)
	}
	dir := t.TempDir()
	if _, err := RestoreBackup(ctx, bytes.NewReader(w.buf.Bytes()), dir); err != nil {
		t.Fatalf("RestoreBackup of the backup taken during the remove: %v", err)
	}
	b := openDir(t, dir, nil)
	if _, ok := b.Catalog().Update(phone, v1); !ok {
		t.Errorf("the backup lacks the update removed after it began")
	}
	checkConsistent(t, b)
	checkConsistent(t, s)
}

// archive is a backup as tar entries, to damage.
type entry struct {
	name string
	typ  byte
	data []byte
}

func readArchive(t testing.TB, b []byte) []entry {
	t.Helper()
	var es []entry
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return es
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		es = append(es, entry{h.Name, h.Typeflag, data})
	}
}

func writeArchive(t testing.TB, es []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Size: int64(len(e.data)), Mode: 0o600}
		if e.typ == tar.TypeSymlink {
			h.Linkname, h.Size = "/etc/passwd", 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	tw.Close()
	return buf.Bytes()
}

// TestRestoreRefusesDamagedBackups: an archive that is not a backup, or
// is cut short, damaged or changed, is refused with what is wrong, and
// the directory is left empty; no name reaches outside it.
func TestRestoreRefusesDamagedBackups(t *testing.T) {
	good, _ := backupOf(t)
	es := readArchive(t, good)
	var manifest BackupInfo
	json.Unmarshal(es[0].data, &manifest)
	with := func(f func(es []entry) []entry) []byte {
		cp := make([]entry, len(es))
		for i, e := range es {
			cp[i] = entry{e.name, e.typ, bytes.Clone(e.data)}
		}
		return writeArchive(t, f(cp))
	}
	manifestWith := func(f func(*BackupInfo)) []byte {
		return with(func(es []entry) []entry {
			m := manifest
			f(&m)
			es[0].data, _ = json.Marshal(m)
			return es
		})
	}
	last := len(es) - 1
	for _, tt := range []struct {
		name    string
		archive []byte
		want    string
	}{
		{"empty", nil, "the archive ends before opendus-backup.json"},
		{"a database file", es[1].data, "not a backup archive"},
		{"cut short", good[:len(good)/2], "cut short"},
		{"no manifest", with(func(es []entry) []entry { return es[1:] }), `the entry "opendus.db" comes where opendus-backup.json should`},
		{"newer format", manifestWith(func(m *BackupInfo) { m.Format = 2 }), "the backup has format 2, this program reads format 1"},
		{"newer schema", manifestWith(func(m *BackupInfo) { m.Schema = SchemaVersion + 1 }), "restore it with the devsvc that took it (test) or a newer one"},
		{"wrong seq", manifestWith(func(m *BackupInfo) { m.Seq++ }), "the manifest says"},
		{"no database", with(func(es []entry) []entry { return append(es[:1:1], es[2:]...) }), "comes where opendus.db should"},
		{"damaged database", with(func(es []entry) []entry { copy(es[1].data[4096:], make([]byte, 4096)); return es }), "damaged"},
		{"a record not JSON", with(func(es []entry) []entry {
			i := bytes.Index(es[1].data, []byte(`"deviceType":"`))
			es[1].data[i+1] = 0 // bbolt's check passes; the record does not decode
			return es
		}), "is not JSON"},
		{"a file missing", with(func(es []entry) []entry { return es[:last] }), "is recorded but not in the archive"},
		{"a file changed", with(func(es []entry) []entry { es[last].data[0] ^= 1; return es }), "the database records"},
		{"a file twice", with(func(es []entry) []entry { return append(es, es[last]) }), "is in the archive twice"},
		{"a file more", with(func(es []entry) []entry {
			return append(es, entry{filesDir + "/UCPhone/x/y", tar.TypeReg, []byte("x")})
		}), "more than the manifest's"},
		{"outside", with(func(es []entry) []entry { es[last].name = filesDir + "/../../escape"; return es }), "files under DeviceUpdateFiles/ only"},
		{"absolute", with(func(es []entry) []entry { es[last].name = "/tmp/escape"; return es }), "files under DeviceUpdateFiles/ only"},
		{"a link", with(func(es []entry) []entry { es[last].typ = tar.TypeSymlink; return es }), "is not a regular file"},
		{"a directory", with(func(es []entry) []entry {
			return append(es[:2:2], append([]entry{{filesDir + "/UCPhone/", tar.TypeDir, nil}}, es[2:]...)...)
		}), "is not a regular file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "data")
			_, err := RestoreBackup(context.Background(), bytes.NewReader(tt.archive), dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("RestoreBackup = %v, want an error saying %q", err, tt.want)
			}
			if ents, _ := os.ReadDir(dir); len(ents) > 0 {
				t.Errorf("a refused restore left %v in the directory", ents)
			}
			if ents, _ := os.ReadDir(parent); len(ents) != 1 {
				t.Errorf("a refused restore wrote beside the directory: %v", ents)
			}
		})
	}
	if _, err := RestoreBackup(context.Background(), bytes.NewReader(good), t.TempDir()); err != nil {
		t.Errorf("the good backup: %v", err)
	}
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o600)
	if _, err := RestoreBackup(context.Background(), bytes.NewReader(good), full); err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Errorf("RestoreBackup into a directory with a file = %v, want a refusal", err)
	}
}

// FuzzRestoreBackup: whatever the archive, RestoreBackup does not panic,
// writes nothing outside its directory, and either refuses it and leaves
// the directory empty, or restores a store that opens consistent.
func FuzzRestoreBackup(f *testing.F) {
	good, _ := backupOf(f)
	f.Add(good)
	f.Add(good[:1024])
	f.Add([]byte{})
	es := readArchive(f, good)
	es[len(es)-1].name = filesDir + "/../x"
	f.Add(writeArchive(f, es))
	f.Fuzz(func(t *testing.T, b []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "data")
		_, err := RestoreBackup(context.Background(), bytes.NewReader(b), dir)
		if ents, _ := os.ReadDir(parent); len(ents) != 1 {
			t.Fatalf("RestoreBackup wrote beside its directory: %v", ents)
		}
		if err != nil {
			if ents, _ := os.ReadDir(dir); len(ents) > 0 {
				t.Fatalf("a refused restore (%v) left %v", err, ents)
			}
			return
		}
		s, err := Open(dir, nil)
		if err != nil {
			t.Fatalf("a restored backup does not open: %v", err)
		}
		defer s.Close()
		checkConsistent(t, s)
	})
}
