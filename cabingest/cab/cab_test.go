package cab

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opendus/opendus/cabingest/cabtest"
)

func TestChecksum(t *testing.T) {
	tests := []struct {
		in   []byte
		seed uint32
		want uint32
	}{
		{nil, 0, 0},
		{[]byte{1}, 0, 0x01},
		{[]byte{1, 2}, 0, 0x0102},
		{[]byte{1, 2, 3}, 0, 0x010203},
		{[]byte{1, 2, 3, 4}, 0, 0x04030201},
		{[]byte{1, 2, 3, 4, 5}, 0, 0x04030201 ^ 0x05},
		{[]byte{1, 2, 3, 4, 1, 2, 3, 4}, 7, 7},
	}
	for _, tt := range tests {
		if got := Checksum(tt.in, tt.seed); got != tt.want {
			t.Errorf("Checksum(%x, %d) = %#x, want %#x", tt.in, tt.seed, got, tt.want)
		}
	}
}

func TestSafePath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain.txt", "plain.txt"},
		{`dir\sub\file.bin`, "dir/sub/file.bin"},
		{"/etc/passwd", "etc/passwd"},
		{`\\server\share\x`, "server/share/x"},
		{"../../etc/x", "xx/xx/etc/x"},
		{`..\..\x`, "xx/xx/x"},
		{"a/./b//c", "a/b/c"},
		{".", "x"},
		{"/", "x"},
		{`\\\`, "x"},
		{"a\x00b", "a\uFFFDb"},
		{"..", "xx"},
		{"...", "..."},
	}
	for _, tt := range tests {
		if got := SafePath(tt.in); got != tt.want {
			t.Errorf("SafePath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDecodeName(t *testing.T) {
	tests := []struct {
		in   string
		utf  bool
		want string
	}{
		{"abc", false, "abc"},
		{"\xe9t\xe9", false, "\xe9t\xe9"}, // kept as stored, like cabextract
		{"été", true, "été"},
		{"\xc0\xaf", true, "\uFFFD\uFFFD"}, // overlong two-byte: invalid
		{"\xe0\x80\xaf", true, "/"},        // overlong three-byte: accepted, as cabextract
		{"\xe0\x80\x80", true, "\uFFFD"},   // decoded NUL
		{"\xf8\x80\x80\x80\xaf", true, "\uFFFD\uFFFD\uFFFD\uFFFD\uFFFD"},
		{"\xef\xbf\xbe", true, "\uFFFD"},
		{"\xf4\x90\x80\x80", true, "\uFFFD"}, // beyond U+10FFFF: one, as cabextract
		{"\xf5\x80\x80\x80", true, "\uFFFD\uFFFD\uFFFD\uFFFD"},
	}
	for _, tt := range tests {
		if got := decodeName([]byte(tt.in), tt.utf); got != tt.want {
			t.Errorf("decodeName(%q, %v) = %q, want %q", tt.in, tt.utf, got, tt.want)
		}
	}
}

// writeCab packs files with compression c into a byte slice.
func writeCab(t *testing.T, c Compression, files []cabtest.TreeFile) []byte {
	t.Helper()
	return smallCabinet(t, c, files)
}

func TestChecksumErrorNamesBlock(t *testing.T) {
	files := []cabtest.TreeFile{{Name: "UC\\fw.bin", Data: cabtest.FirmwareLike(1, 200000)}}
	data := writeCab(t, Compression{Type: CompressMSZIP}, files)
	c, err := Open(bytes.NewReader(data), int64(len(data)), "UCUpdates.cab", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Corrupt a byte in the payload of block 3.
	off := int64(binary.LittleEndian.Uint32(data[36:]))
	for i := 0; i < 3; i++ {
		off += dataSize + int64(binary.LittleEndian.Uint16(data[off+4:]))
	}
	data[off+dataSize+10] ^= 0xFF
	err = c.Test(t.Context())
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("Test = %v, want ErrChecksum", err)
	}
	if want := "cab: UCUpdates.cab: folder 0: block 3: checksum mismatch"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	err = c.Extract(t.Context(), func(f *File, r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), `file "UC\\fw.bin"`) {
		t.Errorf("Extract = %v, want ErrChecksum naming the file", err)
	}
}

func TestEmbedded(t *testing.T) {
	files := []cabtest.TreeFile{{Name: "a", Data: []byte("payload")}}
	cabinet := writeCab(t, Compression{Type: CompressNone}, files)
	// A fake stub with false "MSCF" signatures before the real cabinet.
	stub := append([]byte("MZ\x90\x00"), bytes.Repeat([]byte("junk MSCF junk \x00\x00"), 5000)...)
	exe := append(append(stub, cabinet...), "trailer"...)
	c, err := Open(bytes.NewReader(exe), int64(len(exe)), "setup.exe", nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got := c.Files()[0].Name; got != "a" {
		t.Errorf("file = %q, want a", got)
	}
	if err := c.Test(t.Context()); err != nil {
		t.Errorf("Test: %v", err)
	}
	_, err = Open(bytes.NewReader(exe), int64(len(exe)), "setup.exe", &Config{MaxScan: 1000})
	if !errors.Is(err, ErrFormat) {
		t.Errorf("Open with MaxScan 1000 = %v, want ErrFormat", err)
	}
}

func TestLimits(t *testing.T) {
	files := []cabtest.TreeFile{
		{Name: "a", Data: bytes.Repeat([]byte{0}, 100000)},
		{Name: strings.Repeat("n", 200), Data: []byte("x")},
	}
	data := writeCab(t, Compression{Type: CompressMSZIP}, files)
	tests := []struct {
		name string
		cfg  Config
	}{
		{"files", Config{MaxFiles: 1}},
		{"size", Config{MaxTotalSize: 50000}},
		{"name", Config{MaxNameLen: 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(bytes.NewReader(data), int64(len(data)), "bomb.cab", &tt.cfg)
			if !errors.Is(err, ErrLimit) {
				t.Errorf("Open = %v, want ErrLimit", err)
			}
		})
	}
}

func TestTruncated(t *testing.T) {
	files := []cabtest.TreeFile{{Name: "a", Data: cabtest.FirmwareLike(3, 100000)}}
	data := writeCab(t, Compression{Type: CompressMSZIP}, files)
	for _, n := range []int{10, 40, 60, len(data) / 2, len(data) - 1} {
		c, err := Open(bytes.NewReader(data[:n]), int64(n), "t.cab", nil)
		if err == nil {
			err = c.Test(t.Context())
		}
		if !errors.Is(err, ErrFormat) {
			t.Errorf("truncated to %d: %v, want ErrFormat", n, err)
		}
	}
}

func TestExtractAllSymlinkEscape(t *testing.T) {
	files := []cabtest.TreeFile{
		{Name: "link", Data: []byte("replaces the link")},
		{Name: "dirlink\\evil", Data: []byte("must not escape")},
		{Name: "..\\..\\up", Data: []byte("up")},
	}
	data := writeCab(t, Compression{Type: CompressNone}, files)
	c, err := Open(bytes.NewReader(data), int64(len(data)), "evil.cab", nil)
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	target := filepath.Join(base, "target")
	for _, d := range []string{outside, target} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(outside, "victim"), []byte("keep"), 0o644)
	os.Symlink(filepath.Join(outside, "victim"), filepath.Join(target, "link"))
	os.Symlink(outside, filepath.Join(target, "dirlink"))
	err = c.ExtractAll(context.Background(), target)
	if err == nil {
		t.Error("ExtractAll through a planted directory symlink succeeded, want an error")
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "victim")); string(b) != "keep" {
		t.Errorf("victim outside the target = %q, want it untouched", b)
	}
	if _, err := os.Stat(filepath.Join(outside, "evil")); err == nil {
		t.Error("file written through the directory symlink")
	}
	if fi, err := os.Lstat(filepath.Join(target, "link")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("link: %v, %v; want a regular file replacing the symlink", fi, err)
	}
	entries, _ := os.ReadDir(base)
	if len(entries) != 2 {
		t.Errorf("base holds %d entries, want 2 (outside, target)", len(entries))
	}
}

// TestOpenAll opens a self-extracting file holding three cabinets, one of
// them carrying a fourth as a stored file: OpenAll opens the three, in
// order, each named by its offset, and the cumulative limits hold.
func TestOpenAll(t *testing.T) {
	inner := writeCab(t, Compression{Type: CompressNone}, []cabtest.TreeFile{{Name: "inner.txt", Data: []byte("inside")}})
	first := writeCab(t, Compression{Type: CompressNone}, []cabtest.TreeFile{{Name: "nested.cab", Data: inner}})
	second := writeCab(t, Compression{Type: CompressMSZIP}, []cabtest.TreeFile{{Name: "fw\\a.nbt", Data: cabtest.FirmwareLike(2, 100000)}})
	third := writeCab(t, Compression{Type: CompressLZX, Window: 16}, []cabtest.TreeFile{{Name: "fw\\b.nbt", Data: cabtest.FirmwareLike(3, 70000)}, {Name: "b.xml", Data: []byte("<x/>")}})
	stub := append([]byte("MZ\x90\x00"), bytes.Repeat([]byte("stub MSCF "), 100)...)
	var exe []byte
	var offsets []int
	for _, part := range [][]byte{stub, first, []byte("gap MSCF gap"), second, third, []byte("trailer")} {
		if len(part) > 0 && string(part[:4]) == "MSCF" {
			offsets = append(offsets, len(exe))
		}
		exe = append(exe, part...)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "setup.exe"), exe, 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()

	cs, err := OpenAll(root, "setup.exe", nil)
	if err != nil {
		t.Fatal(err)
	}
	var names, files []string
	for _, c := range cs {
		names = append(names, c.Name())
		for _, f := range c.Files() {
			files = append(files, f.Name)
		}
		if err := c.Test(t.Context()); err != nil {
			t.Errorf("Test(%s): %v", c.Name(), err)
		}
	}
	wantNames := []string{"setup.exe", fmt.Sprintf("setup.exe@%d", offsets[1]), fmt.Sprintf("setup.exe@%d", offsets[2])}
	if !slices.Equal(names, wantNames) {
		t.Errorf("cabinets %q, want %q", names, wantNames)
	}
	if want := []string{"nested.cab", "fw\\a.nbt", "fw\\b.nbt", "b.xml"}; !slices.Equal(files, want) {
		t.Errorf("files %q, want %q", files, want)
	}
	// Closing in any order closes the shared file once, with the last.
	for _, i := range []int{1, 0, 2} {
		if err := cs[i].Close(); err != nil {
			t.Errorf("Close(%s): %v", cs[i].Name(), err)
		}
	}

	// The limits count the cabinets together.
	if _, err := OpenAll(root, "setup.exe", &Config{MaxFiles: 3}); !errors.Is(err, ErrLimit) {
		t.Errorf("OpenAll with MaxFiles 3 = %v, want ErrLimit", err)
	}
	// No scanning: the first cabinet only.
	cs, err = OpenAll(root, "setup.exe", &Config{MaxScan: -1})
	if !errors.Is(err, ErrFormat) {
		t.Errorf("OpenAll of a stub with MaxScan -1 = %d cabinets, %v; want ErrFormat", len(cs), err)
	}
}

// TestExtractAllKeepsGoing corrupts a block of the first folder of a
// split set: as cabextract does, ExtractAll reports that folder's files
// (the broken one removed) and still extracts the next folder.
func TestExtractAllKeepsGoing(t *testing.T) {
	dir := t.TempDir()
	files := []cabtest.TreeFile{
		{Name: "a.bin", Data: cabtest.FirmwareLike(1, 100000)},
		{Name: "b.bin", Data: cabtest.FirmwareLike(2, 100000)},
		{Name: "c.bin", Data: cabtest.FirmwareLike(3, 50000)},
	}
	names := pack(t, dir, files, WriterConfig{SplitSize: 120 << 10})
	if len(names) < 2 {
		t.Fatalf("wrote %d cabinets, want a set", len(names))
	}
	first := filepath.Join(dir, names[0])
	data, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	cfg := (*Config)(nil).withDefaults()
	part, err := parsePart(bytes.NewReader(data), int64(len(data)), names[0], &cfg)
	if err != nil {
		t.Fatal(err)
	}
	off := part.fols[0].off // folder 0's first block
	data[off+dataSize+10] ^= 0xFF
	if err := os.WriteFile(first, data, 0o644); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "out")
	err = extractSet(t.Context(), first, out)
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("ExtractAll = %v, want ErrChecksum", err)
	}
	for _, want := range []string{`file "a.bin"`, `file "b.bin": not extracted after an error earlier in folder 0`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	got, rerr := cabtest.ReadTree(out)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if len(got) != 1 || got[0].Name != "c.bin" || !bytes.Equal(got[0].Data, files[2].Data) {
		t.Errorf("extracted %d files, want c.bin alone and intact", len(got))
	}
	// Extract (the streaming API) still stops at the first error.
	root, _ := os.OpenRoot(dir)
	defer root.Close()
	c, err := OpenSet(root, names[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	calls := 0
	err = c.Extract(t.Context(), func(f *File, r io.Reader) error { calls++; _, err := io.Copy(io.Discard, r); return err })
	if !errors.Is(err, ErrChecksum) || calls != 1 {
		t.Errorf("Extract = %v after %d files, want ErrChecksum after 1", err, calls)
	}
}
