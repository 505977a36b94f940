package quantum

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/internal/testtool"
)

type corpusCab struct {
	path string
	cab  *testCab
}

// quantumCabs returns the corpus cabinets that have a Quantum folder.
func quantumCabs(tb testing.TB, dir string) []corpusCab {
	tb.Helper()
	var cabs []corpusCab
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.EqualFold(filepath.Ext(path), ".cab") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		cab, err := parseTestCab(b)
		if err != nil {
			return nil // not this package's concern
		}
		for _, f := range cab.folders {
			if f.quantum() {
				cabs = append(cabs, corpusCab{path: path, cab: cab})
				break
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return cabs
}

// extract returns what cabextract writes for the file name in cab, or
// the error cabextract exits with. Failing to run cabextract fails the
// test.
func extract(tb testing.TB, cabextract, cab, name string) ([]byte, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, cabextract, "-q", "-p", "-F", name, cab)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) || ctx.Err() != nil {
			tb.Fatalf("running cabextract on %s: %v", cab, err)
		}
		return nil, errors.New(strings.TrimSpace(stderr.String() + " " + err.Error()))
	}
	return stdout.Bytes(), nil
}

// TestCorpus decodes every Quantum folder of the cabinet corpus and holds
// each file to cabextract: where it extracts a file, the decoded bytes are
// the same; where it refuses, decoding does not reach the file's end.
func TestCorpus(t *testing.T) {
	dir := testtool.Corpus(t)
	cabextract := testtool.Need(t, "cabextract")
	cabs := quantumCabs(t, dir)
	if len(cabs) == 0 {
		t.Fatalf("no Quantum folder in %s", dir)
	}
	extracted := 0
	for _, c := range cabs {
		rel, _ := filepath.Rel(dir, c.path)
		t.Run(rel, func(t *testing.T) {
			for i, folder := range c.cab.folders {
				if !folder.quantum() {
					continue
				}
				start := time.Now()
				out, derr := decodeFolder(folder)
				if took := time.Since(start); took > 10*time.Second {
					t.Errorf("folder %d: decoding took %v", i, took)
				}
				if derr != nil && !errors.Is(derr, ErrCorrupt) && !errors.Is(derr, ErrWindowBits) {
					t.Errorf("folder %d: error %v does not wrap ErrCorrupt", i, derr)
				}
				t.Logf("folder %d (window 2^%d, %d blocks): decoded %d bytes, err %v", i, folder.windowBits(), len(folder.blocks), len(out), derr)
				for _, f := range c.cab.files {
					if f.folder != i {
						continue
					}
					want, cerr := extract(t, cabextract, c.path, f.name)
					end := f.offset + f.size
					decoded := end <= int64(len(out))
					switch {
					case cerr == nil && !decoded:
						t.Errorf("%s: cabextract extracts it, but decoding stopped at %d of %d bytes: %v", f.name, len(out), end, derr)
					case cerr == nil && !bytes.Equal(out[f.offset:end], want):
						t.Errorf("%s: decoded bytes differ from cabextract's (%d bytes)", f.name, len(want))
					case cerr == nil:
						extracted++
					case decoded:
						t.Errorf("%s: cabextract fails (%v), but it decoded cleanly", f.name, cerr)
					}
				}
			}
		})
	}
	if extracted == 0 {
		t.Errorf("no corpus file was extracted by both cabextract and this decoder")
	}
}

// TestCVECabinets decodes the corpus cabinets that once made Quantum
// decoders hang, crash or overflow: each ends within a bounded time, in
// ErrCorrupt or in the bytes cabextract extracts (without cabextract).
func TestCVECabinets(t *testing.T) {
	dir := testtool.Corpus(t)
	for _, tc := range []struct {
		path  string
		zeros int // > 0: decodes to this many zero bytes; 0: ErrCorrupt
	}{
		{"libmspack/cabd/cve-2014-9556-qtm-infinite-loop.cab", 0},
		{"libmspack/cabd/cve-2018-18584-qtm-max-size-block.cab", 0},
		{"libmspack/cabextract-bugs/qtm-max-size-block.cab", 0},
		{"libmspack/cabextract-bugs/cve-2010-2801-qtm-flush.cab", 524159},
	} {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, tc.path))
			if err != nil {
				t.Skip(err)
			}
			cab, err := parseTestCab(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(cab.folders) != 1 || !cab.folders[0].quantum() {
				t.Fatalf("want one Quantum folder, got %+v", cab.folders)
			}
			start := time.Now()
			out, err := decodeFolder(cab.folders[0])
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("decoding took %v", took)
			}
			if tc.zeros == 0 {
				if !errors.Is(err, ErrCorrupt) {
					t.Errorf("decodeFolder error = %v, want ErrCorrupt", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeFolder error = %v", err)
			}
			if len(out) != tc.zeros || bytes.Count(out, []byte{0}) != len(out) {
				t.Errorf("decoded %d bytes, want %d zero bytes", len(out), tc.zeros)
			}
		})
	}
}
