package console

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/opendus/opendus/cabingest"
	"github.com/opendus/opendus/devsvc/service"
)

// memSink is a tree sink in memory that holds files to their stated
// size, as service.Upload does.
type memSink struct {
	files map[string][]byte
	max   int64 // bytes in all
	total int64
}

func (s *memSink) TreeFile(p string, size int64) (io.WriteCloser, error) {
	if _, err := cabingest.ParseTreePath(p); err != nil {
		return nil, err
	}
	if s.files == nil {
		s.files = map[string][]byte{}
	}
	return &memFile{s: s, p: p, size: size}, nil
}

type memFile struct {
	s    *memSink
	p    string
	size int64
	b    bytes.Buffer
}

func (f *memFile) Write(b []byte) (int, error) {
	if int64(f.b.Len()+len(b)) > f.size {
		return 0, fmt.Errorf("%w: %s is longer than stated", service.ErrInvalid, f.p)
	}
	if f.s.total += int64(len(b)); f.s.max > 0 && f.s.total > f.s.max {
		return 0, service.ErrTooLarge
	}
	return f.b.Write(b)
}

func (f *memFile) Close() error {
	if int64(f.b.Len()) != f.size {
		return fmt.Errorf("%w: %s is shorter than stated", service.ErrInvalid, f.p)
	}
	f.s.files[f.p] = f.b.Bytes()
	return nil
}

func readerOf(t testing.TB, data []byte) *zip.Reader {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return zr
}

func TestUnzipTree(t *testing.T) {
	const f1 = cx600 + "/4.0.7577.4372/CX600.nbt"
	for _, tc := range []struct {
		name    string
		files   [][2]string
		want    []string // paths given to the sink
		skipped int
		err     error
		says    string
	}{
		{"tree", [][2]string{{f1, "a"}, {cx600 + "/4.0.7577.4372/CX600.cat", "b"}}, []string{f1, cx600 + "/4.0.7577.4372/CX600.cat"}, 0, nil, ""},
		{"DeviceUpdateFiles", [][2]string{{"DeviceUpdateFiles/" + f1, "a"}}, []string{"DeviceUpdateFiles/" + f1}, 0, nil, ""},
		{"in a folder", [][2]string{{"UCUpdates/" + f1, "a"}, {"UCUpdates/", ""}}, []string{f1}, 0, nil, ""},
		{"folder and DeviceUpdateFiles", [][2]string{{"x/DeviceUpdateFiles/" + f1, "a"}}, []string{"DeviceUpdateFiles/" + f1}, 0, nil, ""},
		{"junk skipped", [][2]string{{f1, "a"}, {"__MACOSX/._x", "j"}, {"UCPhone/Thumbs.db", "j"}}, []string{f1}, 2, nil, ""},
		{"slip", [][2]string{{"../" + f1, "a"}}, nil, 0, service.ErrInvalid, ".. in the path"},
		{"slip inside", [][2]string{{"UCPhone/../../x/Polycom/CX600/A/ENU/4.0.7577.4372/x", "a"}}, nil, 0, service.ErrInvalid, ".. in the path"},
		{"absolute", [][2]string{{"/" + f1, "a"}}, nil, 0, service.ErrInvalid, "not a relative path"},
		{"backslash", [][2]string{{strings.ReplaceAll(f1, "/", `\`), "a"}}, nil, 0, service.ErrInvalid, "not a relative path"},
		{"dot", [][2]string{{"./" + f1, "a"}}, nil, 0, service.ErrInvalid, ".. in the path"},
		{"outside the layout", [][2]string{{f1, "a"}, {"notes.txt", "b"}, {"UCPhone/x.txt", "c"}}, nil, 0, service.ErrInvalid, "notes.txt"},
		{"only junk", [][2]string{{".DS_Store", "j"}}, nil, 0, service.ErrInvalid, "no file of an update tree"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := &memSink{}
			rep, err := unzipTree(t.Context(), readerOf(t, zipOf(t, tc.files...)), sink, 100)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.says) {
					t.Fatalf("unzipTree = %v, want %v saying %q", err, tc.err, tc.says)
				}
				if len(sink.files) != 0 {
					t.Errorf("a refused zip wrote %d files", len(sink.files))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(sink.files) != len(tc.want) || rep.Files != len(tc.want) || len(rep.Skipped) != tc.skipped {
				t.Errorf("wrote %v, report %+v; want %q and %d skipped", keys(sink.files), rep, tc.want, tc.skipped)
			}
			for _, p := range tc.want {
				if _, ok := sink.files[p]; !ok {
					t.Errorf("%s not written; wrote %v", p, keys(sink.files))
				}
			}
		})
	}
}

// TestUnzipTreeListsEveryProblem: a refusal names every bad entry.
func TestUnzipTreeListsEveryProblem(t *testing.T) {
	_, err := unzipTree(t.Context(), readerOf(t, zipOf(t, [2]string{"../a", "x"}, [2]string{"/b", "x"}, [2]string{"c/../../d", "x"})), &memSink{}, 100)
	for _, name := range []string{`"../a"`, `"/b"`, `"c/../../d"`} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("refusal %v does not name %s", err, name)
		}
	}
}

// TestUnzipTreeBounds: too many entries are refused before any is read,
// an entry that is longer than its header says is refused, and a zip
// bomb stops at the sink's bound.
func TestUnzipTreeBounds(t *testing.T) {
	var many [][2]string
	for i := range 11 {
		many = append(many, [2]string{fmt.Sprintf("%s/4.0.7577.4372/f%d.nbt", cx600, i), "x"})
	}
	if _, err := unzipTree(t.Context(), readerOf(t, zipOf(t, many...)), &memSink{}, 10); !errors.Is(err, service.ErrTooLarge) {
		t.Errorf("11 entries with a bound of 10 = %v, want ErrTooLarge", err)
	}

	// A header that understates its entry: archive/zip refuses to read
	// past the stated size, so the sink never gets more.
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, _ := zw.CreateRaw(&zip.FileHeader{Name: cx600 + "/4.0.7577.4372/CX600.nbt", Method: zip.Store, UncompressedSize64: 3, CompressedSize64: 10, CRC32: 0})
	w.Write([]byte("0123456789"))
	zw.Close()
	if _, err := unzipTree(t.Context(), readerOf(t, b.Bytes()), &memSink{}, 10); !errors.Is(err, service.ErrInvalid) {
		t.Errorf("an entry longer than its header = %v, want ErrInvalid", err)
	}

	// 64 MiB of zeros compress to 64 KiB; the sink's bound stops it.
	b.Reset()
	zw = zip.NewWriter(&b)
	w, _ = zw.Create(cx600 + "/4.0.7577.4372/CX600.nbt")
	zero := make([]byte, 1<<20)
	for range 64 {
		w.Write(zero)
	}
	zw.Close()
	sink := &memSink{max: 1 << 20}
	if _, err := unzipTree(t.Context(), readerOf(t, b.Bytes()), sink, 10); !errors.Is(err, service.ErrTooLarge) || sink.total > 1<<20+32<<10 {
		t.Errorf("a zip bomb = %v after %d bytes, want ErrTooLarge at about 1 MiB", err, sink.total)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// FuzzUnzipTree feeds unzipTree any bytes archive/zip accepts: it never
// panics, gives the sink only paths of the tree's layout that stay inside
// it, never more bytes than an entry's header states, and never more
// entries than its bound.
func FuzzUnzipTree(f *testing.F) {
	f.Add(zipOf(f, [2]string{"UCUpdates/" + cx600 + "/4.0.7577.4372/CX600.nbt", "x"}, [2]string{"__MACOSX/x", "y"}))
	f.Add(zipOf(f, [2]string{"../" + cx600 + "/4.0.7577.4372/CX600.nbt", "x"}))
	f.Add(zipOf(f, [2]string{"DeviceUpdateFiles/" + cx600 + "/4.0.7577.4372/a", "x"}, [2]string{"DeviceUpdateFiles/" + cx600 + "/4.0.7577.4372/b", ""}))
	f.Fuzz(func(t *testing.T, data []byte) {
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		sink := &checkSink{t: t}
		rep, err := unzipTree(t.Context(), zr, sink, 20)
		if err == nil && (rep.Files == 0 || rep.Files != sink.n) {
			t.Errorf("accepted with %d files reported, %d written", rep.Files, sink.n)
		}
		if sink.n > 20 {
			t.Errorf("%d files written, bound 20", sink.n)
		}
	})
}

type checkSink struct {
	t testing.TB
	n int
}

func (s *checkSink) TreeFile(p string, size int64) (io.WriteCloser, error) {
	if _, err := cabingest.ParseTreePath(p); err != nil {
		s.t.Errorf("sink given %q, not a path of the layout: %v", p, err)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." || part == "." || part == "" {
			s.t.Errorf("sink given %q", p)
		}
	}
	if size < 0 {
		s.t.Errorf("sink given a negative size for %q", p)
	}
	s.n++
	return &limitFile{t: s.t, left: size}, nil
}

type limitFile struct {
	t    testing.TB
	left int64
}

func (f *limitFile) Write(b []byte) (int, error) {
	if int64(len(b)) > f.left {
		return 0, errors.New("longer than stated")
	}
	f.left -= int64(len(b))
	return len(b), nil
}

func (f *limitFile) Close() error { return nil }
