package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opendus/opendus/cabingest"
	"github.com/opendus/opendus/cabingest/cab"
)

var bundleCmd = &command{
	name: "bundle", args: "pack DIR [-o FILE] | check FILE|DIR | describe DIR",
	summary: "build and check firmware bundles offline (UCUpdates.cab)",
	help: `A bundle holds update trees in the layout
  DeviceType/Vendor/Model/Revision/Locale/Version/<files>
where each version directory has the image (.nbt), its catalog (.cat) and a
description (.xml) that states the identity, version, update type and every
file's size and SHA-256 (docs/bundle-format.md). These commands work on
files only; they need no server.

  pack DIR       check the tree under DIR and pack it into a cabinet (what a
                 vendor runs); --describe first writes the missing
                 descriptions
  check PATH     validate a bundle (.cab, .exe, .rpm) or a tree as import
                 would, listing every problem; exit status 1 if invalid
  describe DIR   write a description into every version directory that has
                 none (--overwrite: replace them all)

Examples:
  devsvc bundle describe ./tree --update-type Firmware
  devsvc bundle pack ./tree -o UCUpdates.cab --compression lzx:21
  devsvc bundle pack ./tree --describe -o UCUpdates.cab
  devsvc bundle check UCUpdates.cab
  devsvc bundle check firmware.rpm --keyring vendor.asc --json`,
	setup: func(fs *flag.FlagSet) runFunc {
		var (
			out, compression, updateType, keyring string
			describe, overwrite                   bool
		)
		fs.StringVar(&out, "o", "UCUpdates.cab", "the cabinet `FILE` to write (pack)")
		fs.StringVar(&compression, "compression", "mszip", "`none`, mszip, or lzx[:WINDOW] with a window of 15..21 bits (pack)")
		fs.BoolVar(&describe, "describe", false, "write missing descriptions before packing (pack)")
		fs.StringVar(&updateType, "update-type", cabingest.DefaultUpdateType, "the update `TYPE` descriptions state (pack --describe, describe)")
		fs.BoolVar(&overwrite, "overwrite", false, "replace existing descriptions (describe)")
		fs.StringVar(&keyring, "keyring", "", "armored OpenPGP keyring `FILE` that RPM bundles must be signed with (check)")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) != 2 {
				return usagef("say pack DIR, check FILE|DIR or describe DIR")
			}
			switch args[0] {
			case "pack":
				comp, err := parseCompression(compression)
				if err != nil {
					return usagef("--compression: %v", err)
				}
				return bundlePack(ctx, e, args[1], out, comp, describe, updateType)
			case "check":
				return bundleCheck(ctx, e, args[1], keyring)
			case "describe":
				return bundleDescribe(ctx, e, args[1], cabingest.DescribeOptions{UpdateType: updateType, Overwrite: overwrite})
			}
			return usagef("unknown bundle command %q: say pack, check or describe", args[0])
		}
	},
}

// parseCompression reads none, mszip, lzx or lzx:W.
func parseCompression(s string) (cab.Compression, error) {
	name, window, hasWindow := strings.Cut(s, ":")
	switch {
	case name == "none" && !hasWindow:
		return cab.Compression{Type: cab.CompressNone}, nil
	case name == "mszip" && !hasWindow:
		return cab.Compression{Type: cab.CompressMSZIP}, nil
	case name == "lzx":
		w := 21
		if hasWindow {
			n, err := strconv.Atoi(window)
			if err != nil || n < 15 || n > 21 {
				return cab.Compression{}, fmt.Errorf("LZX window %q: want 15..21 (bits)", window)
			}
			w = n
		}
		return cab.Compression{Type: cab.CompressLZX, Window: w}, nil
	}
	return cab.Compression{}, fmt.Errorf("%q: want none, mszip, lzx or lzx:WINDOW", s)
}

// bundleReport is what check and pack print with --json.
type bundleReport struct {
	Bundle      string             `json:"bundle"`
	Format      string             `json:"format,omitempty"`
	Valid       bool               `json:"valid"`
	Size        int64              `json:"size,omitempty"`
	Compression string             `json:"compression,omitempty"`
	Signer      string             `json:"signer,omitempty"`
	Updates     []cabingest.Update `json:"updates"`
	Ignored     []string           `json:"ignored"`
	Problems    []string           `json:"problems"`
}

// printBundle prints a report: a table of the updates, or the problems.
// An invalid bundle ends in exit status 1.
func printBundle(e *env, r bundleReport, err error) error {
	var be *cabingest.BundleError
	if err != nil && !errors.As(err, &be) {
		return err
	}
	if be != nil {
		r.Valid = false
		for _, p := range be.Problems {
			r.Problems = append(r.Problems, p.String())
		}
	}
	if r.Updates == nil {
		r.Updates = []cabingest.Update{}
	}
	if e.json {
		if err := printJSON(e.stdout, r); err != nil {
			return err
		}
		if be != nil {
			return exitCode(1)
		}
		return nil
	}
	if be != nil {
		return err
	}
	t := newTable(e.stdout, "IDENTITY", "VERSION", "TYPE", "FILES", "BYTES")
	for _, u := range r.Updates {
		var size int64
		for _, f := range u.Files {
			size += f.Size
		}
		t.row(u.Identity.Path(), u.Version.String(), u.UpdateType, strconv.Itoa(len(u.Files)), strconv.FormatInt(size, 10))
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, p := range r.Ignored {
		fmt.Fprintf(e.stdout, "Ignored (outside %s): %s\n", cabingest.RPMTreePrefix, p)
	}
	if r.Signer != "" {
		fmt.Fprintf(e.stdout, "Signed by %s.\n", r.Signer)
	}
	return nil
}

// bundleCheck opens path as import would (cabingest.Open: a tree with or
// without descriptions, a cabinet, an .exe or an RPM), so check and
// import never disagree.
func bundleCheck(ctx context.Context, e *env, path, keyringFile string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	cfg := &cabingest.Config{Name: path}
	if keyringFile != "" {
		if cfg.RPMKeyring, err = os.ReadFile(keyringFile); err != nil {
			return fmt.Errorf("--keyring: %w", err)
		}
	}
	r := bundleReport{Bundle: path, Valid: true}
	b, err := cabingest.Open(ctx, path, cfg)
	if b != nil {
		defer b.Close()
		r.Format, r.Updates, r.Ignored, r.Signer = string(b.Format), b.Contents, b.Ignored, b.Signer
		if !info.IsDir() {
			r.Size = info.Size()
		}
	}
	if err := printBundle(e, r, err); err != nil {
		return err
	}
	if !e.json {
		fmt.Fprintf(e.stdout, "%s is a valid bundle of %d update(s).\n", path, len(r.Updates))
	}
	return nil
}

func bundleDescribe(ctx context.Context, e *env, dir string, opts cabingest.DescribeOptions) error {
	s, err := cabingest.OpenDir(dir)
	if err != nil {
		return err
	}
	defer s.Close()
	written, err := cabingest.Describe(ctx, s, opts)
	if err != nil {
		return err
	}
	if e.json {
		if written == nil {
			written = []string{}
		}
		return printJSON(e.stdout, map[string][]string{"written": written})
	}
	for _, p := range written {
		fmt.Fprintf(e.stdout, "Wrote %s\n", filepath.Join(dir, filepath.FromSlash(p)))
	}
	if len(written) == 0 {
		fmt.Fprintln(e.stdout, "Every version directory has a description already (--overwrite replaces them).")
	}
	return nil
}

func bundlePack(ctx context.Context, e *env, dir, out string, comp cab.Compression, describe bool, updateType string) error {
	s, err := cabingest.OpenDir(dir)
	if err != nil {
		return err
	}
	defer s.Close()
	if describe {
		written, err := cabingest.Describe(ctx, s, cabingest.DescribeOptions{UpdateType: updateType})
		if err != nil {
			return err
		}
		for _, p := range written {
			fmt.Fprintf(e.stderr, "Wrote %s\n", filepath.Join(dir, filepath.FromSlash(p)))
		}
	}
	// Write next to the output, check what was written as an import
	// would, and only then put it in place.
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = cabingest.Pack(ctx, s, tmp, dir, &cab.WriterConfig{Compression: comp, TempDir: filepath.Dir(out)})
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	r := bundleReport{Bundle: out, Format: string(cabingest.FormatCabinet), Valid: true, Compression: comp.String()}
	if err != nil {
		if !errors.Is(err, cabingest.ErrInvalid) {
			return err
		}
		r.Bundle = dir
		if !e.json {
			err = fmt.Errorf("%w\nFix the tree (devsvc bundle describe writes missing descriptions), then pack again", err)
		}
		return printBundle(e, r, err)
	}
	b, err := cabingest.OpenBundle(ctx, tmp.Name(), &cabingest.Config{Name: out})
	if err != nil {
		return fmt.Errorf("the cabinet written does not check (a file changed while packing?): %w", err)
	}
	r.Updates = b.Contents
	b.Close()
	info, err := os.Stat(tmp.Name())
	if err != nil {
		return err
	}
	r.Size = info.Size()
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	if err := printBundle(e, r, nil); err != nil {
		return err
	}
	if !e.json {
		fmt.Fprintf(e.stdout, "Wrote %s: %d update(s), %d bytes, %s. Import it with devsvc import %s.\n", out, len(r.Updates), r.Size, r.Compression, out)
	}
	return nil
}
