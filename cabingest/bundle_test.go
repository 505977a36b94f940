package cabingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/cabingest/cab"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/testtool"
)

// importBundle opens the bundle at path and imports it into st.
func importBundle(t testing.TB, st *store.Store, path string, cfg *Config) ([]store.ImportResult, *Bundle, error) {
	t.Helper()
	ctx := context.Background()
	b, err := OpenBundle(ctx, path, cfg)
	if err != nil {
		return nil, nil, err
	}
	defer b.Close()
	res, err := st.Import(ctx, "test", b.Updates, store.ImportOptions{})
	return res, b, err
}

// checkStored checks that st holds exactly the files of want (tree path
// -> content), byte for byte, through OpenFile and on disk.
func checkStored(t *testing.T, st *store.Store, want map[string][]byte) {
	t.Helper()
	for p, data := range want {
		te, err := ParseTreePath(p)
		if err != nil {
			t.Fatal(err)
		}
		f, im, err := st.OpenFile(te.Identity, te.Version, te.Name)
		if err != nil {
			t.Errorf("OpenFile(%s) = %v", p, err)
			continue
		}
		got, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("stored %s differs from the bundle's (%d bytes, want %d)", p, len(got), len(data))
		}
		if want := firmware.RoleOf(te.Name); im.Role != want {
			t.Errorf("stored %s has role %q, want %q", p, im.Role, want)
		}
	}
	var onDisk []string
	root := filepath.Join(st.Dir(), TreeRoot)
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			onDisk = append(onDisk, filepath.ToSlash(rel))
		}
		return nil
	})
	var wantPaths []string
	for p := range want {
		wantPaths = append(wantPaths, p)
	}
	sort.Strings(onDisk)
	sort.Strings(wantPaths)
	if diff := cmp.Diff(wantPaths, onDisk); diff != "" {
		t.Errorf("files in the store (-want +got):\n%s", diff)
	}
}

func openStore(t testing.TB, deployRoundTable bool) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir(), &store.Options{DeployRoundTable: &deployRoundTable})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestImportCabinet imports one tree packed three ways (this package's
// writer with MSZIP and LZX, and gcab -cz) into a fresh store each time.
func TestImportCabinet(t *testing.T) {
	tree := t.TempDir()
	files := writeTree(t, tree, testUpdates)
	out := t.TempDir()
	bundles := map[string]string{
		"mszip": packTree(t, tree, filepath.Join(out, "mszip.cab"), cab.Compression{Type: cab.CompressMSZIP}),
		"lzx":   packTree(t, tree, filepath.Join(out, "lzx.cab"), cab.Compression{Type: cab.CompressLZX, Window: 16}),
	}
	if _, err := testtool.Find("gcab"); err == nil || os.Getenv("CI") == "true" {
		gcab := testtool.Need(t, "gcab")
		var paths []string
		for p := range files {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		cmd := exec.Command(gcab, append([]string{"-cz", filepath.Join(out, "gcab.cab")}, paths...)...)
		cmd.Dir = tree
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gcab: %v\n%s", err, b)
		}
		bundles["gcab"] = filepath.Join(out, "gcab.cab")
	}
	for name, path := range bundles {
		t.Run(name, func(t *testing.T) {
			for _, deploy := range []bool{true, false} {
				st := openStore(t, deploy)
				res, b, err := importBundle(t, st, path, nil)
				if err != nil {
					t.Fatalf("import: %v", err)
				}
				if b.Format != FormatCabinet {
					t.Errorf("Format = %q, want %q", b.Format, FormatCabinet)
				}
				if len(res) != len(testUpdates) {
					t.Fatalf("import gave %d results, want %d", len(res), len(testUpdates))
				}
				for _, r := range res {
					v := r.Update.Version
					isTable := r.Rule.Identity.DeviceType == firmware.RoundTable
					var want firmware.Rule
					want.Pending = v
					if isTable && deploy {
						want.Pending, want.Approved = firmware.Version{}, v
					}
					if r.Rule.Pending != want.Pending || r.Rule.Approved != want.Approved || r.Deployed != (isTable && deploy) {
						t.Errorf("%s: pending %s approved %s deployed %v; want pending %s approved %s deployed %v",
							r.Rule.Identity, r.Rule.Pending, r.Rule.Approved, r.Deployed, want.Pending, want.Approved, isTable && deploy)
					}
					if r.Update.UpdateType != DefaultUpdateType {
						t.Errorf("%s: update type %q, want %q", r.Rule.Identity, r.Update.UpdateType, DefaultUpdateType)
					}
				}
				checkStored(t, st, files)
				if w := b.stream.walks; w != 1 {
					t.Errorf("the import walked the bundle %d times, want 1 (cabinet order)", w)
				}
			}
		})
	}
}

// TestImportAgain checks that a second import of the same bundle streams
// nothing and changes nothing.
func TestImportAgain(t *testing.T) {
	tree := t.TempDir()
	writeTree(t, tree, testUpdates)
	path := packTree(t, tree, filepath.Join(t.TempDir(), "b.cab"), cab.Compression{Type: cab.CompressMSZIP})
	st := openStore(t, true)
	if _, _, err := importBundle(t, st, path, nil); err != nil {
		t.Fatal(err)
	}
	res, b, err := importBundle(t, st, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !r.Unchanged {
			t.Errorf("%s: second import not Unchanged", r.Rule.Identity)
		}
	}
	if b.stream.walks != 0 {
		t.Errorf("second import walked the bundle %d times, want 0", b.stream.walks)
	}
}

// storeState is what a refused import must not change.
type storeState struct {
	Rules []firmware.Rule
	Seq   uint64
	Files []string
}

func stateOf(t *testing.T, st *store.Store) storeState {
	t.Helper()
	stats, err := st.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := storeState{Rules: st.Catalog().Rules(), Seq: stats.Seq}
	filepath.WalkDir(st.Dir(), func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != st.Dir() && !strings.HasSuffix(p, "opendus.db") {
			rel, _ := filepath.Rel(st.Dir(), p)
			s.Files = append(s.Files, rel)
		}
		return nil
	})
	return s
}

// TestRefuseBundle damages one or more parts of a valid tree and checks
// that the whole bundle is refused with every damaged part named, and the
// store (which already holds an import) is unchanged.
func TestRefuseBundle(t *testing.T) {
	cx600 := "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/"
	cx700 := "UCPhone/Polycom/CX700/A/ENU/4.0.7577.4372/"
	table := "RoundTable/Microsoft/RoundTable/A/ENU/1.0.522.101/"
	edit := func(p, old, new string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			full := filepath.Join(dir, p)
			b, err := os.ReadFile(full)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte(old)) {
				t.Fatalf("%s does not contain %q", p, old)
			}
			if err := os.WriteFile(full, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	remove := func(p string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, p)); err != nil {
				t.Fatal(err)
			}
		}
	}
	write := func(p, content string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			full := filepath.Join(dir, p)
			os.MkdirAll(filepath.Dir(full), 0o755)
			if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	flip := func(p string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			full := filepath.Join(dir, p)
			b, err := os.ReadFile(full)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 1
			os.WriteFile(full, b, 0o644)
		}
	}
	tests := []struct {
		name    string
		damage  []func(t *testing.T, dir string)
		want    []string // each must appear in the report
		wantErr error
	}{
		{"wrong version", []func(*testing.T, string){edit(cx600+"CX600.xml", "<Version>4.0.7577.4372", "<Version>4.0.7577.4373")},
			[]string{cx600 + "CX600.xml", "version 4.0.7577.4373 does not match its directory 4.0.7577.4372"}, ErrDescription},
		{"wrong identity", []func(*testing.T, string){edit(table+"RoundTable.xml", "<Model>RoundTable", "<Model>CX600")},
			[]string{table + "RoundTable.xml", "does not match its directory RoundTable/Microsoft/RoundTable/A/ENU"}, ErrDescription},
		{"wrong digest", []func(*testing.T, string){flip(cx700 + "CX700.nbt")},
			[]string{cx700 + "CX700.nbt: content does not match the description: SHA-256"}, ErrContent},
		{"missing file", []func(*testing.T, string){remove(cx600 + "CX600.cat")},
			[]string{cx600 + "CX600.xml", "lists CX600.cat, which is not in the bundle"}, ErrContent},
		{"missing description", []func(*testing.T, string){remove(cx600 + "CX600.xml")},
			[]string{"UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372: invalid description: no description"}, ErrDescription},
		{"unlisted file", []func(*testing.T, string){write(cx600+"extra.bin", "x")},
			[]string{cx600 + "extra.bin", "does not list it"}, ErrContent},
		{"malformed description", []func(*testing.T, string){write(table+"RoundTable.xml", "<oops")},
			[]string{table + "RoundTable.xml: invalid description"}, ErrDescription},
		{"outside the layout", []func(*testing.T, string){write("README.txt", "hello")},
			[]string{"README.txt", "not in the update tree layout"}, ErrLayout},
		{"two versions", []func(*testing.T, string){write("UCPhone/Polycom/CX600/A/ENU/4.0.7577.4400/CX600.nbt", "x")},
			[]string{"has two versions in the bundle"}, ErrLayout},
		{"several problems", []func(*testing.T, string){
			edit(cx600+"CX600.xml", "<Version>4.0.7577.4372", "<Version>4.0.7577.4373"),
			flip(cx700 + "CX700.nbt"),
			remove(table + "RoundTable.cat"),
		}, []string{"3 invalid part(s)", cx600 + "CX600.xml", cx700 + "CX700.nbt", table + "RoundTable.xml: content does not match the description: lists RoundTable.cat"}, ErrContent},
	}
	base := t.TempDir()
	writeTree(t, base, testUpdates[:1])
	first := packTree(t, base, filepath.Join(t.TempDir(), "first.cab"), cab.Compression{Type: cab.CompressMSZIP})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t, true)
			if _, _, err := importBundle(t, st, first, nil); err != nil {
				t.Fatal(err)
			}
			before := stateOf(t, st)

			tree := t.TempDir()
			writeTree(t, tree, testUpdates)
			for _, d := range tc.damage {
				d(t, tree)
			}
			// Pack refuses the tree; build the cabinet with the writer
			// directly, as a careless vendor's tool would.
			bad := filepath.Join(t.TempDir(), "bad.cab")
			writeRawCab(t, tree, bad)
			_, _, err := importBundle(t, st, bad, nil)
			var be *BundleError
			if !errors.As(err, &be) {
				t.Fatalf("import = %v, want a *BundleError", err)
			}
			if !errors.Is(err, ErrInvalid) || !errors.Is(err, tc.wantErr) {
				t.Errorf("error does not match ErrInvalid and %v: %v", tc.wantErr, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("report does not contain %q:\n%v", w, err)
				}
			}
			if diff := cmp.Diff(before, stateOf(t, st)); diff != "" {
				t.Errorf("store changed by a refused bundle (-before +after):\n%s", diff)
			}
		})
	}
}

// writeRawCab packs every file under dir into a cabinet, valid or not.
func writeRawCab(t *testing.T, dir, out string) {
	t.Helper()
	w, err := cab.NewWriter(&cab.WriterConfig{Compression: cab.Compression{Type: cab.CompressMSZIP}, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, p := range s.Files() {
		if err := w.AddFile(p, filepath.Join(dir, filepath.FromSlash(p))); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := w.WriteTo(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestImportIntegrity damages a file between the check and the import
// (the bundle file changes under the reader): the store's own check of
// size and SHA-256 refuses it and nothing changes.
func TestImportIntegrity(t *testing.T) {
	tree := t.TempDir()
	writeTree(t, tree, testUpdates)
	path := packTree(t, tree, filepath.Join(t.TempDir(), "b.cab"), cab.Compression{Type: cab.CompressNone})
	st := openStore(t, true)
	before := stateOf(t, st)
	ctx := context.Background()
	b, err := OpenBundle(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// Flip a byte of the last image in the (uncompressed) cabinet.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-2000] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = st.Import(ctx, "test", b.Updates, store.ImportOptions{})
	if err == nil {
		t.Fatal("import of a changed bundle succeeded")
	}
	if diff := cmp.Diff(before, stateOf(t, st)); diff != "" {
		t.Errorf("store changed (-before +after):\n%s", diff)
	}
}

// TestStreamOrder opens the files of a bundle in an order that is not the
// cabinet's: the streamer walks again and every file still has its bytes.
func TestStreamOrder(t *testing.T) {
	tree := t.TempDir()
	files := writeTree(t, tree, testUpdates)
	path := packTree(t, tree, filepath.Join(t.TempDir(), "b.cab"), cab.Compression{Type: cab.CompressMSZIP})
	b, err := OpenBundle(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	type fileRef struct {
		path string
		f    firmware.ImportFile
	}
	var all []fileRef
	for _, u := range b.Updates {
		for _, f := range u.Files {
			all = append(all, fileRef{u.Identity.Path() + "/" + u.Version.String() + "/" + f.Name, f})
		}
	}
	// Backwards, and one file twice.
	for i := len(all) - 1; i >= 0; i-- {
		read := func(fr fileRef) {
			r, err := fr.f.Open()
			if err != nil {
				t.Fatalf("Open %s: %v", fr.path, err)
			}
			if _, err := fr.f.Open(); err == nil {
				t.Errorf("a second Open while %s is open succeeded", fr.path)
			}
			got, err := io.ReadAll(r)
			r.Close()
			if err != nil {
				t.Fatalf("read %s: %v", fr.path, err)
			}
			if !bytes.Equal(got, files[fr.path]) {
				t.Errorf("%s: got %d bytes, want the %d of the tree", fr.path, len(got), len(files[fr.path]))
			}
		}
		read(all[i])
		if i == 3 {
			read(all[i])
		}
	}
	if b.stream.walks < 2 {
		t.Errorf("walks = %d, want several (reading backwards)", b.stream.walks)
	}
	// A file read only partly, then the next.
	r, err := all[0].f.Open()
	if err != nil {
		t.Fatal(err)
	}
	r.Read(make([]byte, 10))
	r.Close()
	r, err = all[1].f.Open()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(r); !bytes.Equal(got, files[all[1].path]) {
		t.Errorf("%s after a partial read: wrong content", all[1].path)
	}
	r.Close()
	b.Close()
	if _, err := all[0].f.Open(); err == nil {
		t.Error("Open after Close succeeded")
	}
}

// TestOpenBundleEmbedded finds the cabinet inside a self-extracting
// executable.
func TestOpenBundleEmbedded(t *testing.T) {
	tree := t.TempDir()
	files := writeTree(t, tree, testUpdates[:2])
	cabPath := packTree(t, tree, filepath.Join(t.TempDir(), "b.cab"), cab.Compression{Type: cab.CompressMSZIP})
	data, err := os.ReadFile(cabPath)
	if err != nil {
		t.Fatal(err)
	}
	stub := append([]byte("MZ\x90\x00 this program cannot be run in DOS mode"), make([]byte, 5000)...)
	exe := filepath.Join(t.TempDir(), "UCUpdates.exe")
	if err := os.WriteFile(exe, append(stub, data...), 0o644); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, true)
	if _, _, err := importBundle(t, st, exe, nil); err != nil {
		t.Fatal(err)
	}
	checkStored(t, st, files)
}

func TestOpenBundleNotABundle(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("hello"), append([]byte{0xed, 0xab, 0xee, 0xdb}, make([]byte, 200)...)} {
		p := filepath.Join(t.TempDir(), "x")
		os.WriteFile(p, data, 0o644)
		_, err := OpenBundle(context.Background(), p, &Config{Name: "upload.cab"})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "upload.cab") {
			t.Errorf("OpenBundle(%q) = %v, want ErrInvalid naming upload.cab", data, err)
		}
	}
}

// FuzzOpenBundle opens arbitrary bytes as a bundle, cabinet or RPM, and
// imports what it accepts into a store: nothing panics or hangs, memory
// stays bounded (cabinets are limited to 1 MiB of content here), and a
// refusal is a *BundleError.
func FuzzOpenBundle(f *testing.F) {
	tree := f.TempDir()
	writeTree(f, tree, []testUpdate{{"UCPhone/Polycom/CX600/A/ENU", "4.0.7577.4372", 2000}})
	for _, c := range []cab.Compression{{Type: cab.CompressNone}, {Type: cab.CompressMSZIP}, {Type: cab.CompressLZX, Window: 15}} {
		data, err := os.ReadFile(packTree(f, tree, filepath.Join(f.TempDir(), "b.cab"), c))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("MSCF"))
	f.Add(append([]byte{0xed, 0xab, 0xee, 0xdb, 3, 0}, make([]byte, 120)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b, err := openBundle(ctx, bytes.NewReader(data), int64(len(data)), (&Config{Name: "fuzz", MaxFiles: 100, MaxTotalSize: 1 << 20}).withDefaults())
		if err != nil {
			var be *BundleError
			if !errors.As(err, &be) && ctx.Err() == nil {
				t.Fatalf("error is not a *BundleError: %v", err)
			}
			return
		}
		defer b.Close()
		for _, u := range b.Updates {
			for _, file := range u.Files {
				r, err := file.Open()
				if err != nil {
					t.Fatalf("Open %s: %v", file.Name, err)
				}
				n, err := io.Copy(io.Discard, r)
				r.Close()
				if err != nil || n != file.Size {
					t.Fatalf("%s: read %d bytes (%v), want %d", file.Name, n, err, file.Size)
				}
			}
		}
	})
}

// TestOpenBundleSeveralCabinets refuses a file carrying two cabinets,
// naming both, rather than importing the first and ignoring the other.
func TestOpenBundleSeveralCabinets(t *testing.T) {
	tree := t.TempDir()
	writeTree(t, tree, testUpdates[:1])
	cabPath := packTree(t, tree, filepath.Join(t.TempDir(), "b.cab"), cab.Compression{Type: cab.CompressMSZIP})
	data, err := os.ReadFile(cabPath)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(t.TempDir(), "UCUpdates.exe")
	two := append(append([]byte("MZ stub "), data...), data...)
	if err := os.WriteFile(exe, two, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = OpenBundle(context.Background(), exe, nil)
	want := fmt.Sprintf("2 cabinets (UCUpdates.exe, UCUpdates.exe@%d)", 8+len(data))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
		t.Errorf("OpenBundle = %v, want ErrInvalid with %q", err, want)
	}
}
