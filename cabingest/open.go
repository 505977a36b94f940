package cabingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/opendus/opendus/cabingest/cab"
	"github.com/opendus/opendus/cabingest/rpm"
	"github.com/opendus/opendus/firmware"
)

// Config configures OpenBundle. The zero value (or nil) is sensible: the
// limits below, and RPM bundles checked for integrity but not for a
// signature.
type Config struct {
	// Name is how messages call the bundle; "" means the file's base name.
	Name string
	// MaxFiles bounds the files of a bundle; 0 means 10,000.
	MaxFiles int
	// MaxTotalSize bounds the sum of the sizes of a bundle's files; 0
	// means 16 GiB.
	MaxTotalSize int64
	// RPMKeyring is an armored OpenPGP public keyring. When set, an RPM
	// bundle must carry a signature made by one of its keys, or it is
	// refused; when empty, RPM signatures are not checked (the header
	// and payload digests always are).
	RPMKeyring []byte
}

func (c *Config) withDefaults() Config {
	var out Config
	if c != nil {
		out = *c
	}
	if out.MaxFiles <= 0 {
		out.MaxFiles = 10000
	}
	if out.MaxTotalSize <= 0 {
		out.MaxTotalSize = 16 << 30
	}
	return out
}

// Format is the kind of file a bundle came in.
type Format string

// Bundle formats.
const (
	FormatCabinet Format = "cabinet" // UCUpdates.cab, or a cabinet inside an .exe
	FormatRPM     Format = "rpm"
	FormatTree    Format = "tree" // a directory, see OpenTreeBundle
)

// RPMTreePrefix is where an RPM bundle's payload carries the update tree:
// its files under this directory form the tree; others (documentation,
// licences) are ignored and listed in Bundle.Ignored.
const RPMTreePrefix = "/usr/share/opendus/" + TreeRoot + "/"

// Bundle is a validated bundle, ready for store.Import. Its Updates' Open
// funcs stream the files out of the bundle file, one at a time; Close the
// bundle after the import.
type Bundle struct {
	Name   string
	Format Format
	// Updates are the bundle's updates, each file with the size and
	// SHA-256 its description states (the store verifies them while it
	// writes), in the order in which the bundle holds them.
	Updates []firmware.ImportUpdate
	// Contents summarizes the updates, for reports.
	Contents []Update
	// Ignored lists the files of an RPM outside RPMTreePrefix.
	Ignored []string
	// Signer names the key that signed an RPM bundle, when a keyring
	// verified it.
	Signer string

	closer io.Closer
	stream *streamer
}

// Close stops reading the bundle and closes its file.
func (b *Bundle) Close() error {
	if b.stream != nil {
		b.stream.close()
	}
	if b.closer != nil {
		return b.closer.Close()
	}
	return nil
}

// OpenBundle opens the bundle file at path, a cabinet (also one inside a
// self-extracting .exe) or an RPM package, told apart by their content.
// It reads the bundle once completely: every file is hashed and every
// description checked against its directory and the files present (see
// docs/bundle-format.md). If any part is invalid, it returns a
// *BundleError listing every problem found, and the bundle must not be
// imported. Otherwise the returned Bundle's Updates stream the files out
// of the bundle again when the store opens them, in bounded memory and
// without temporary copies; the caller must Close it.
func OpenBundle(ctx context.Context, path string, cfg *Config) (*Bundle, error) {
	c := cfg.withDefaults()
	if c.Name == "" {
		c.Name = filepath.Base(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", c.Name, err)
	}
	b, err := openBundle(ctx, f, fi.Size(), c)
	if err != nil {
		f.Close()
		return nil, err
	}
	b.closer = f
	return b, nil
}

// openBundle is OpenBundle on an opened file; the caller closes r.
func openBundle(ctx context.Context, r io.ReaderAt, size int64, c Config) (*Bundle, error) {
	var magic [4]byte
	n, _ := r.ReadAt(magic[:], 0)
	if bytes.Equal(magic[:n], rpm.Magic[:]) {
		return openRPM(ctx, r, size, c)
	}
	return openCabinet(ctx, r, size, c)
}

func openCabinet(ctx context.Context, r io.ReaderAt, size int64, c Config) (*Bundle, error) {
	cbs, err := cab.OpenEvery(r, size, c.Name, &cab.Config{MaxFiles: c.MaxFiles, MaxTotalSize: c.MaxTotalSize})
	if err != nil {
		return nil, &BundleError{Bundle: c.Name, Problems: []Problem{{"", fmt.Errorf("%w: not a readable cabinet or RPM: %w", ErrInvalid, err)}}}
	}
	if len(cbs) > 1 {
		// Importing the first alone would leave the others out unseen.
		names := make([]string, len(cbs))
		for i, cb := range cbs {
			names[i] = cb.Name()
		}
		return nil, &BundleError{Bundle: c.Name, Problems: []Problem{{"", fmt.Errorf(
			"%w: the file holds %d cabinets (%s) and a bundle is one; list them with `devsvc cab list %s`, extract them with `devsvc cab extract`, and import the bundle cabinet among them",
			ErrInvalid, len(cbs), strings.Join(names, ", "), c.Name)}}}
	}
	cb := cbs[0]
	src := cabinetSource{cb}
	b := &Bundle{Name: c.Name, Format: FormatCabinet}
	treePath := func(p string) (string, bool) { return strings.TrimPrefix(p, TreeRoot+"/"), true }
	if err := b.load(ctx, src, treePath); err != nil {
		return nil, err
	}
	return b, nil
}

func openRPM(ctx context.Context, r io.ReaderAt, size int64, c Config) (*Bundle, error) {
	pkg, err := rpm.Open(ctx, r, size, &rpm.Config{Keyring: c.RPMKeyring, MaxFiles: c.MaxFiles, MaxTotalSize: c.MaxTotalSize})
	if err != nil {
		return nil, &BundleError{Bundle: c.Name, Problems: []Problem{{"", err}}}
	}
	b := &Bundle{Name: c.Name, Format: FormatRPM, Signer: pkg.Signer()}
	treePath := func(p string) (string, bool) {
		t, ok := strings.CutPrefix(p, RPMTreePrefix)
		if !ok {
			b.Ignored = append(b.Ignored, p)
		}
		return t, ok
	}
	if err := b.load(ctx, pkg, treePath); err != nil {
		return nil, err
	}
	return b, nil
}

// load validates src and sets up the updates.
func (b *Bundle) load(ctx context.Context, src Source, treePath func(string) (string, bool)) error {
	entries, problems, err := readEntries(ctx, src, treePath)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", b.Name, err)
		}
		// The archive could not be read to the end: report that with what
		// was found before.
		problems = append(problems, Problem{"", fmt.Errorf("%w: %w", ErrInvalid, err)})
		return &BundleError{Bundle: b.Name, Problems: problems}
	}
	planned, more := plan(entries)
	problems = append(problems, more...)
	if len(problems) > 0 {
		return &BundleError{Bundle: b.Name, Problems: problems}
	}
	paths := make([]string, len(entries))
	for i, e := range entries {
		paths[i] = e.path
	}
	b.stream = newStreamer(src, paths)
	b.Contents = summarize(planned, entries)
	for _, pu := range planned {
		u := pu.update
		for k := range u.Files {
			pos := entries[pu.entries[k]].index
			u.Files[k].Open = func() (io.ReadCloser, error) { return b.stream.open(pos) }
		}
		b.Updates = append(b.Updates, u)
	}
	return nil
}

// cabinetSource walks a cabinet's files in extraction order.
type cabinetSource struct{ c *cab.Cabinet }

func (s cabinetSource) Walk(ctx context.Context, fn func(string, int64, io.Reader) error) error {
	return s.c.Extract(ctx, func(f *cab.File, r io.Reader) error {
		return fn(f.Path(), f.Size, r)
	})
}

// Open opens whatever an admin imports, the one entry point for every kind
// of bundle: a directory is an update tree, a file a cabinet (also one
// inside a self-extracting .exe) or an RPM package, told apart by their
// content and never by the name.
//
// A tree holding descriptions (HasDescriptions) is validated whole as a
// bundle (OpenTreeBundle), so a tree and the bundle packed from it are the
// same update; a tree without any is a plain set of files whose updates
// the store hashes as it writes them (Tree). Either way every problem found
// is listed in one *BundleError. Close the returned Bundle after the
// import.
func Open(ctx context.Context, file string, cfg *Config) (*Bundle, error) {
	c := cfg.withDefaults()
	if c.Name == "" {
		c.Name = filepath.Base(file)
	}
	fi, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Name, err)
	}
	if !fi.IsDir() {
		return OpenBundle(ctx, file, &c)
	}
	s, err := OpenDir(file)
	if err != nil {
		return nil, &BundleError{Bundle: c.Name, Problems: []Problem{{"", err}}}
	}
	if len(s.files) > c.MaxFiles {
		s.Close()
		return nil, &BundleError{Bundle: c.Name, Problems: []Problem{{"", fmt.Errorf("%w: more than %d files", ErrInvalid, c.MaxFiles)}}}
	}
	described, err := HasDescriptions(s.root.FS(), s.files)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("%s: %w", c.Name, err)
	}
	b := &Bundle{Name: c.Name, Format: FormatTree, closer: s}
	if described {
		if err := b.load(ctx, s, treePathOf); err != nil {
			s.Close()
			return nil, err
		}
		return b, nil
	}
	var (
		t        Tree
		problems []Problem
		total    int64
	)
	for i, p := range s.files {
		total += s.sizes[i]
		if err := t.Add(p, s.sizes[i], func() (io.ReadCloser, error) { return s.root.Open(p) }); err != nil {
			problems = append(problems, Problem{"", err})
		}
	}
	if total > c.MaxTotalSize {
		problems = append(problems, Problem{"", fmt.Errorf("%w: the files take %d bytes, more than %d", ErrInvalid, total, c.MaxTotalSize)})
	}
	if len(problems) == 0 {
		if b.Updates, err = t.Updates(); err != nil {
			problems = append(problems, Problem{"", err})
		}
	}
	if len(problems) > 0 {
		s.Close()
		return nil, &BundleError{Bundle: c.Name, Problems: problems}
	}
	for _, u := range b.Updates {
		c := Update{Identity: u.Identity, Version: u.Version, UpdateType: u.UpdateType, Dir: path.Join(u.Identity.Path(), u.Version.String())}
		for _, f := range u.Files {
			c.Files = append(c.Files, firmware.Image{Name: f.Name, Role: f.Role, Size: f.Size})
		}
		b.Contents = append(b.Contents, c)
	}
	return b, nil
}
