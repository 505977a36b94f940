package cab

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/cabingest/cabtest"
	"github.com/opendus/opendus/internal/testtool"
)

// corpusFiles lists the corpus cabinets, sorted.
func corpusFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(strings.ToLower(p), ".cab") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// laterPart reports whether the file at p is a cabinet that names a
// previous cabinet, a later part of a set. (A file whose first header is
// bogus, as in search_tricky1.cab, is not.)
func laterPart(p string) bool {
	b, err := os.ReadFile(p)
	if err != nil {
		return false
	}
	cfg := (*Config)(nil).withDefaults()
	part, err := parsePart(bytes.NewReader(b), int64(len(b)), p, &cfg)
	return err == nil && part.h.flags&flagPrevCabinet != 0
}

// nameConflicts are corpus cabinets that cabextract extracts but we refuse:
// with backslashes as separators, "/absolute/path" is both a file and
// (from "\absolute\path\reverse\slashes") a directory. cabextract keeps
// the backslashes of that name.
var nameConflicts = map[string]bool{
	"dirwalk-vulns.cab": true,
}

// TestCorpusAgainstCabextract runs cabextract on every corpus cabinet,
// the later parts of sets included (from those, both walk back to the
// first part and extract the whole set), and compares: where cabextract
// fails we must fail; where it succeeds we must list the same files as
// cabextract -l and extract the same names and bytes.
func TestCorpusAgainstCabextract(t *testing.T) {
	dir := testtool.Corpus(t)
	cabextract := testtool.Need(t, "cabextract")
	var cabinets, later int
	for _, p := range corpusFiles(t, dir) {
		rel, _ := filepath.Rel(dir, p)
		cabinets++
		if laterPart(p) {
			later++
		}
		t.Run(rel, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			theirs := filepath.Join(t.TempDir(), "out")
			os.Mkdir(theirs, 0o755)
			cmd := exec.CommandContext(ctx, cabextract, "-q", "-d", theirs, filepath.Base(p))
			cmd.Dir = filepath.Dir(p)
			out, cerr := cmd.CombinedOutput()
			theirOK := cerr == nil

			parent := t.TempDir()
			ours := filepath.Join(parent, "out")
			err := extractSet(ctx, p, ours)
			if ctx.Err() != nil {
				t.Fatalf("timed out: %v", err)
			}
			if entries, _ := os.ReadDir(parent); len(entries) > 1 {
				t.Errorf("wrote outside the target: %v", entries)
			}
			if !theirOK {
				if err == nil {
					t.Errorf("cabextract failed (%v: %s) but we succeeded", cerr, out)
				} else {
					t.Logf("both fail; ours: %v", err)
				}
				return
			}
			compareListing(ctx, t, cabextract, p)
			if nameConflicts[filepath.Base(p)] {
				if err == nil {
					t.Fatal("extraction with conflicting names succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("cabextract succeeded, we failed: %v", err)
			}
			want, err := cabtest.ReadTree(theirs)
			if err != nil {
				t.Fatal(err)
			}
			got, err := cabtest.ReadTree(ours)
			if err != nil {
				t.Fatal(err)
			}
			compareTrees(t, got, want)
		})
	}
	t.Logf("%d cabinets compared, %d of them later parts of a set", cabinets, later)
}

// listed is one line of a listing: cabextract -l's size, date and name.
type listed struct {
	size int64
	date string // "02.01.2006 15:04:05"
	name string // as extracted (SafePath)
}

// listLine matches a file line of cabextract -l.
var listLine = regexp.MustCompile(`^ *(\d+) \| (\d\d\.\d\d\.\d{4} \d\d:\d\d:\d\d) \| (.*)$`)

// compareListing compares cabextract -l's listing of p, which cabextract
// extracts, with the files of the cabinets OpenAll opens in p, in order.
// Dates are compared where the stored one is valid (cabextract prints
// invalid ones as stored).
func compareListing(ctx context.Context, t *testing.T, cabextract, p string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, cabextract, "-l", filepath.Base(p))
	cmd.Dir = filepath.Dir(p)
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("cabextract -l: %v", err)
		return
	}
	var want []listed
	for line := range strings.Lines(string(out)) {
		m := listLine.FindStringSubmatch(strings.TrimSuffix(line, "\n"))
		if m == nil {
			continue
		}
		size, _ := strconv.ParseInt(m[1], 10, 64)
		want = append(want, listed{size, m[2], SafePath(m[3])})
	}

	root, err := os.OpenRoot(filepath.Dir(p))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	cs, err := OpenAll(root, filepath.Base(p), nil)
	if err != nil {
		t.Errorf("cabextract -l lists %d files, we cannot open: %v", len(want), err)
		return
	}
	var got []listed
	for _, c := range cs {
		for _, f := range c.Files() {
			date := ""
			if !f.Modified.IsZero() {
				date = f.Modified.Format("02.01.2006 15:04:05")
			}
			got = append(got, listed{f.Size, date, f.Path()})
		}
		c.Close()
	}
	if len(got) != len(want) {
		t.Errorf("we list %d files, cabextract -l %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if g.date == "" {
			g.date = w.date
		}
		if g != w {
			t.Errorf("file %d: we list %+v, cabextract -l %+v", i, g, w)
		}
	}
}

// extractSet opens the cabinets in p (with the whole set when p is a
// part of one) and extracts them to dir.
func extractSet(ctx context.Context, p, dir string) error {
	root, err := os.OpenRoot(filepath.Dir(p))
	if err != nil {
		return err
	}
	defer root.Close()
	cs, err := OpenAll(root, filepath.Base(p), nil)
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range cs {
		if err == nil {
			err = c.ExtractAll(ctx, dir)
		}
		errs = append(errs, c.Close())
	}
	return errors.Join(append(errs, err)...)
}

// compareTrees compares extracted trees. cabextract keeps backslashes in
// some names where we split directories, so names are compared with
// backslashes as slashes.
func compareTrees(t *testing.T, got, want []cabtest.TreeFile) {
	t.Helper()
	wm := map[string][]byte{}
	for _, f := range want {
		wm[SafePath(f.Name)] = f.Data
	}
	gm := map[string][]byte{}
	for _, f := range got {
		gm[f.Name] = f.Data
		w, ok := wm[f.Name]
		if !ok {
			t.Errorf("we extracted %q, cabextract did not", f.Name)
			continue
		}
		if !bytes.Equal(f.Data, w) {
			t.Errorf("%q: %d bytes differ from cabextract's %d", f.Name, len(f.Data), len(w))
		}
	}
	for name := range wm {
		if _, ok := gm[name]; !ok {
			t.Errorf("cabextract extracted %q, we did not", name)
		}
	}
}

// TestCorpusNoPanic opens and tests every corpus cabinet alone (also
// later parts), with Open, Test and Extract, checking only that each ends
// cleanly.
func TestCorpusNoPanic(t *testing.T) {
	dir := testtool.Corpus(t)
	for _, p := range corpusFiles(t, dir) {
		rel, _ := filepath.Rel(dir, p)
		t.Run(rel, func(t *testing.T) {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			c, err := Open(bytes.NewReader(data), int64(len(data)), rel, nil)
			if err != nil {
				if !isSentinel(err) {
					t.Errorf("Open: %v: not a sentinel error", err)
				}
				return
			}
			if err := c.Test(ctx); err != nil && !isSentinel(err) {
				t.Errorf("Test: %v: not a sentinel error", err)
			}
			var pe *fs.PathError
			if err := c.ExtractAll(ctx, t.TempDir()); err != nil && !isSentinel(err) && !errors.As(err, &pe) {
				t.Errorf("ExtractAll: %v: not a sentinel error", err)
			}
		})
	}
}

func isSentinel(err error) bool {
	for _, s := range []error{ErrFormat, ErrChecksum, ErrLimit, ErrUnsupported, ErrIncomplete} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
