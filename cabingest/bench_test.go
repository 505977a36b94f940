package cabingest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/opendus/opendus/cabingest/cab"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// benchUpdates is a bundle of 4 updates with 8 MiB images (32 MiB).
var benchUpdates = []testUpdate{
	{"UCPhone/Polycom/CX600/A/ENU", "4.0.7577.4372", 8 << 20},
	{"UCPhone/Polycom/CX700/A/ENU", "4.0.7577.4372", 8 << 20},
	{"UCPhone/Aastra/6725ip/A/ENU", "4.0.7577.4366", 8 << 20},
	{"RoundTable/Microsoft/RoundTable/A/ENU", "1.0.522.101", 8 << 20},
}

// BenchmarkImport compares the two ways of getting a validated cabinet
// into the store:
//
//   - stream: OpenBundle (one decoding pass that hashes and checks), then
//     store.Import reading the files from a second decoding pass, with no
//     temporary copy (what OpenBundle does);
//   - extract: ExtractAll into a temporary directory, CheckTree on it
//     (reading it back to hash and check), then store.Import from the
//     extracted files.
//
// Both include the store's writes and fsyncs; each iteration imports
// into a fresh store. The validate case is OpenBundle alone.
func BenchmarkImport(b *testing.B) {
	tree := b.TempDir()
	writeTree(b, tree, benchUpdates)
	var total int64
	for _, u := range benchUpdates {
		total += int64(u.imageSize)
	}
	for _, comp := range []cab.Compression{{Type: cab.CompressMSZIP}, {Type: cab.CompressLZX, Window: 21}} {
		bundle := packTree(b, tree, filepath.Join(b.TempDir(), "b.cab"), comp)
		b.Run(comp.String()+"/validate", func(b *testing.B) {
			b.SetBytes(total)
			b.ReportAllocs()
			for b.Loop() {
				bu, err := OpenBundle(context.Background(), bundle, nil)
				if err != nil {
					b.Fatal(err)
				}
				bu.Close()
			}
		})
		b.Run(comp.String()+"/stream", func(b *testing.B) {
			b.SetBytes(total)
			b.ReportAllocs()
			for b.Loop() {
				st := benchStore(b)
				bu, err := OpenBundle(context.Background(), bundle, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := st.Import(context.Background(), "bench", bu.Updates, store.ImportOptions{}); err != nil {
					b.Fatal(err)
				}
				bu.Close()
				st.Close()
			}
		})
		b.Run(comp.String()+"/extract", func(b *testing.B) {
			b.SetBytes(total)
			b.ReportAllocs()
			for b.Loop() {
				st := benchStore(b)
				if err := importExtracted(b, st, bundle); err != nil {
					b.Fatal(err)
				}
				st.Close()
			}
		})
	}
}

func benchStore(b *testing.B) *store.Store {
	b.Helper()
	st, err := store.Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// importExtracted is the alternative to streaming: extract, check, import
// from the copies.
func importExtracted(b *testing.B, st *store.Store, bundle string) error {
	ctx := context.Background()
	f, err := os.Open(bundle)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, _ := f.Stat()
	c, err := cab.Open(f, fi.Size(), bundle, nil)
	if err != nil {
		return err
	}
	dir := filepath.Join(b.TempDir(), "x")
	if err := c.ExtractAll(ctx, dir); err != nil {
		return err
	}
	s, err := OpenDir(dir)
	if err != nil {
		return err
	}
	defer s.Close()
	updates, err := CheckTree(ctx, s, bundle)
	if err != nil {
		return err
	}
	var imports []firmware.ImportUpdate
	for _, u := range updates {
		iu := firmware.ImportUpdate{Identity: u.Identity, Version: u.Version, UpdateType: u.UpdateType}
		for _, im := range u.Files {
			p := u.Dir + "/" + im.Name
			sum := im.SHA256
			iu.Files = append(iu.Files, firmware.ImportFile{Name: im.Name, Role: im.Role, Size: im.Size, SHA256: &sum,
				Open: func() (io.ReadCloser, error) { return s.Open(p) }})
		}
		imports = append(imports, iu)
	}
	if _, err := st.Import(ctx, "bench", imports, store.ImportOptions{}); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return nil
}
