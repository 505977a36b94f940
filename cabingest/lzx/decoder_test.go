package lzx

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opendus/opendus/internal/testtool"
)

// TestDecodeCorpus decodes every LZX folder of the cabinet corpus and
// compares the files with what cabextract extracts; where cabextract
// reports an error, the decoder must fail too.
func TestDecodeCorpus(t *testing.T) {
	dir := testtool.Corpus(t)
	cabextract := testtool.Need(t, "cabextract")
	var cabs []string
	err := filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".cab") {
			cabs = append(cabs, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	tested := 0
	for _, p := range cabs {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseTestCab(raw)
		if err != nil {
			continue
		}
		hasLZX := false
		for _, fo := range c.folders {
			hasLZX = hasLZX || fo.typeCompress&0xF == 3
		}
		if !hasLZX {
			continue
		}
		tested++
		rel, _ := filepath.Rel(dir, p)
		t.Run(rel, func(t *testing.T) {
			out := t.TempDir()
			cmd := exec.Command(cabextract, "-q", "-d", out, p)
			msg, exitErr := cmd.CombinedOutput()
			failed := false
			for i, fo := range c.folders {
				if fo.typeCompress&0xF != 3 {
					continue
				}
				got, err := decodeFolder(fo)
				if err != nil {
					if !errors.Is(err, ErrCorrupt) {
						t.Errorf("folder %d: error %v does not wrap ErrCorrupt", i, err)
					}
					failed = true
					if exitErr == nil {
						t.Errorf("folder %d: %v; cabextract extracted it", i, err)
					}
					continue
				}
				for _, f := range c.files {
					if f.folder != i {
						continue
					}
					want, err := os.ReadFile(filepath.Join(out, strings.ReplaceAll(f.name, `\`, "/")))
					if err != nil {
						t.Errorf("file %q: cabextract: %v (%s)", f.name, err, msg)
						continue
					}
					if int(f.offset)+int(f.size) > len(got) {
						t.Errorf("file %q: past the folder's end", f.name)
						continue
					}
					if !bytes.Equal(got[f.offset:f.offset+f.size], want) {
						t.Errorf("file %q: decoded bytes differ from cabextract's", f.name)
					}
				}
			}
			if exitErr != nil && !failed {
				t.Errorf("cabextract failed (%v: %s) but the decoder did not", exitErr, msg)
			}
		})
	}
	if tested < 8 {
		t.Errorf("tested %d LZX cabinets, want at least 8", tested)
	}
}
