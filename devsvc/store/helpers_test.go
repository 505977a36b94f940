package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendus/opendus/firmware"
)

// clock is a fake clock that advances a second at every reading.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// openTest opens a store in a new temporary directory and closes it when
// the test ends.
func openTest(t testing.TB, opts *Options) *Store {
	t.Helper()
	return openDir(t, t.TempDir(), opts)
}

func openDir(t testing.TB, dir string, opts *Options) *Store {
	t.Helper()
	if opts == nil {
		opts = &Options{}
	}
	if opts.Now == nil {
		opts.Now = newClock().Now
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s) = %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var (
	phone  = firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"}
	phone2 = firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX500", Revision: "A", Locale: "ENU"}
	table  = firmware.Identity{DeviceType: firmware.RoundTable, Vendor: "Polycom", Model: "CX5000", Revision: "B", Locale: "ENU"}
	v1     = firmware.MustParseVersion("4.0.7577.100")
	v2     = firmware.MustParseVersion("4.0.7577.200")
	v3     = firmware.MustParseVersion("4.0.7577.300")
)

// content returns deterministic file content for a name and version.
func content(name string, v firmware.Version, size int) []byte {
	b := make([]byte, size)
	seed := sha256.Sum256([]byte(name + v.String()))
	for i := range b {
		b[i] = seed[i%32] ^ byte(i/32)
	}
	return b
}

// file returns an firmware.ImportFile for data, with its size and digest known.
func file(name string, data []byte) firmware.ImportFile {
	sum := sha256.Sum256(data)
	return firmware.ImportFile{Name: name, Size: int64(len(data)), SHA256: &sum,
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
}

// unknownFile returns an firmware.ImportFile for data with size and digest unknown.
func unknownFile(name string, data []byte) firmware.ImportFile {
	return firmware.ImportFile{Name: name, Size: -1,
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
}

// update returns an import of id at v with the usual three files.
func update(id firmware.Identity, v firmware.Version) firmware.ImportUpdate {
	return firmware.ImportUpdate{Identity: id, Version: v, UpdateType: "Firmware", Files: []firmware.ImportFile{
		file("CX600.nbt", content("nbt", v, 3000)),
		file("CX600.cat", content("cat", v, 200)),
		file("CX600.xml", content("xml", v, 100)),
	}}
}

func mustImport(t testing.TB, s *Store, us ...firmware.ImportUpdate) []ImportResult {
	t.Helper()
	res, err := s.Import(context.Background(), "admin", us, ImportOptions{})
	if err != nil {
		t.Fatalf("Import = %v", err)
	}
	return res
}

// diskFiles lists the files under the data directory's DeviceUpdateFiles
// with their content's SHA-256.
func diskFiles(t testing.TB, dir string) map[string][32]byte {
	t.Helper()
	files := make(map[string][32]byte)
	root := filepath.Join(dir, filesDir)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = sha256.Sum256(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// checkConsistent checks the invariants a store must keep: every recorded
// update has all its files with the right size and SHA-256, no other file
// is on disk, and the history is numbered 1..Seq without gaps.
func checkConsistent(t testing.TB, s *Store) {
	t.Helper()
	ctx := context.Background()
	us, err := s.Updates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	disk := diskFiles(t, s.Dir())
	for _, u := range us {
		for _, f := range u.Files {
			p := u.Dir() + "/" + f.Name
			sum, ok := disk[p]
			if !ok {
				t.Errorf("recorded file %s is missing", p)
				continue
			}
			delete(disk, p)
			if sum != f.SHA256 {
				t.Errorf("file %s has SHA-256 %x, recorded %x", p, sum, f.SHA256)
			}
			if info, err := os.Stat(filepath.Join(s.Dir(), filesDir, p)); err != nil || info.Size() != f.Size {
				t.Errorf("file %s: stat = %v, %v; want size %d", p, info, err, f.Size)
			}
		}
	}
	var orphans []string
	for p := range disk {
		orphans = append(orphans, p)
	}
	sort.Strings(orphans)
	if len(orphans) > 0 {
		t.Errorf("files no update records: %q", orphans)
	}
	es, err := s.History(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range es {
		if e.Seq != uint64(i+1) {
			t.Fatalf("history[%d].Seq = %d, want %d (gapless)", i, e.Seq, i+1)
		}
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Seq != uint64(len(es)) {
		t.Errorf("Stats().Seq = %d, want %d events", st.Seq, len(es))
	}
	if got := s.Catalog().Seq(); got != st.Seq {
		t.Errorf("Catalog().Seq() = %d, want %d", got, st.Seq)
	}
	certs, err := s.AdminCerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range certs {
		if serial, err := firmware.ParseCertSerial(c.Serial); err != nil || serial != c.Serial || c.Name == "" || c.Role == "" || c.Issued.IsZero() || c.IssuedBy == "" {
			t.Errorf("admin certificate record %+v is incomplete", c)
		}
		if got, err := s.AdminCert(ctx, c.Serial); err != nil || got.Serial != c.Serial {
			t.Errorf("admin certificate %s is listed but not found by its serial: %v", c.Serial, err)
		}
	}
	admins, err := s.ConsoleAdmins(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range admins {
		if err := validConsoleAdmin(a); err != nil || a.Created.IsZero() || a.Updated.Before(a.Created) {
			t.Errorf("console admin record %+v is invalid: %v", a, err)
		}
		if got, err := s.ConsoleAdmin(ctx, strings.ToUpper(a.Name)); err != nil || got != a {
			t.Errorf("console admin %s is listed as %+v but found by its name as %+v, %v", a.Name, a, got, err)
		}
	}
}

func isErr(err, want error) bool {
	if want == nil {
		return err == nil
	}
	return errors.Is(err, want)
}
