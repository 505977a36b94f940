package cabingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/opendus/opendus/cabingest/cab"
	"github.com/opendus/opendus/firmware"
)

// DirSource is a Source over an update tree on disk: the regular files
// under a directory, in lexical path order, read through an os.Root. A
// symbolic link or other special file is an error.
type DirSource struct {
	root  *os.Root
	files []string
	sizes []int64
}

// OpenDir lists the update tree under dir (which may hold it directly or
// in a DeviceUpdateFiles directory). Close it when done.
func OpenDir(dir string) (*DirSource, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	s := &DirSource{root: root}
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			return fmt.Errorf("%s: %w: not a regular file (%s)", p, ErrLayout, d.Type())
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		s.files = append(s.files, p)
		s.sizes = append(s.sizes, info.Size())
		return nil
	})
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return s, nil
}

// Close closes the directory.
func (s *DirSource) Close() error { return s.root.Close() }

// Files returns the paths of the files, slash-separated, relative to the
// directory, in walk order.
func (s *DirSource) Files() []string { return s.files }

// Walk implements Source.
func (s *DirSource) Walk(ctx context.Context, fn func(string, int64, io.Reader) error) error {
	for i, p := range s.files {
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := s.root.Open(p)
		if err != nil {
			return err
		}
		err = fn(p, s.sizes[i], io.LimitReader(f, s.sizes[i]))
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// Open opens the file at p, a path Files returned.
func (s *DirSource) Open(p string) (*os.File, error) { return s.root.Open(p) }

// CheckTree validates an update tree on disk as OpenBundle validates a
// bundle, and returns the updates it would import (their Open funcs read
// the files) or a *BundleError listing every problem.
func CheckTree(ctx context.Context, s *DirSource, name string) ([]Update, error) {
	entries, problems, err := readEntries(ctx, s, treePathOf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	planned, more := plan(entries)
	if problems = append(problems, more...); len(problems) > 0 {
		return nil, &BundleError{Bundle: name, Problems: problems}
	}
	return summarize(planned, entries), nil
}

// Update summarizes one update of a bundle, for reports.
type Update struct {
	Identity   firmware.Identity `json:"identity"`
	Version    firmware.Version  `json:"version"`
	UpdateType string            `json:"updateType"`
	Dir        string            `json:"dir"` // the version directory in the bundle
	Files      []firmware.Image  `json:"files"`
}

func summarize(planned []plannedUpdate, entries []entry) []Update {
	out := make([]Update, 0, len(planned))
	for _, pu := range planned {
		u := Update{Identity: pu.update.Identity, Version: pu.update.Version, UpdateType: pu.update.UpdateType,
			Dir: path.Dir(entries[pu.entries[0]].path)}
		for _, f := range pu.update.Files {
			u.Files = append(u.Files, firmware.Image{Name: f.Name, Role: f.Role, Size: f.Size, SHA256: *f.SHA256})
		}
		out = append(out, u)
	}
	return out
}

func treePathOf(p string) (string, bool) { return strings.TrimPrefix(p, TreeRoot+"/"), true }

// OpenTreeBundle opens the update tree under dir as a bundle, validated as
// OpenBundle validates a cabinet: every version directory needs a valid
// description. name is used in reports. Close the returned Bundle.
func OpenTreeBundle(ctx context.Context, dir, name string) (*Bundle, error) {
	s, err := OpenDir(dir)
	if err != nil {
		return nil, err
	}
	b := &Bundle{Name: name, Format: FormatTree}
	if err := b.load(ctx, s, treePathOf); err != nil {
		s.Close()
		return nil, err
	}
	b.closer = s
	return b, nil
}

// HasDescriptions reports whether any of the files at paths in fsys is a
// description: an .xml file that mentions the description namespace
// (other .xml files, such as a device's own configuration, are plain
// files). A tree holding one is a bundle (OpenTreeBundle), a tree
// without any a plain set of files (Tree).
func HasDescriptions(fsys fs.FS, paths []string) (bool, error) {
	for _, p := range paths {
		if firmware.RoleOf(path.Base(p)) != firmware.RoleDescription {
			continue
		}
		f, err := fsys.Open(p)
		if err != nil {
			return false, err
		}
		head, err := io.ReadAll(io.LimitReader(f, MaxDescriptionSize))
		f.Close()
		if err != nil {
			return false, err
		}
		if bytes.Contains(head, []byte(Namespace)) {
			return true, nil
		}
	}
	return false, nil
}

// DescribeOptions tunes Describe. The zero value is sensible.
type DescribeOptions struct {
	// UpdateType is written into the descriptions; "" means
	// DefaultUpdateType.
	UpdateType string
	// Overwrite replaces existing descriptions; otherwise a version
	// directory that has one is left as it is.
	Overwrite bool
}

// Describe writes a description, <Model>.xml, into every version
// directory of the tree in s that has none (or, with Overwrite, replacing
// the one it has), listing every other file of the directory with its
// size, SHA-256 and the role its extension implies. It returns the paths
// written. Files outside the tree layout are a *BundleError.
func Describe(ctx context.Context, s *DirSource, opts DescribeOptions) ([]string, error) {
	if opts.UpdateType == "" {
		opts.UpdateType = DefaultUpdateType
	}
	type dir struct {
		te    TreeEntry
		files []string
		descs []string
	}
	dirs := map[string]*dir{}
	var problems []Problem
	for _, p := range s.files {
		te, err := ParseTreePath(strings.TrimPrefix(p, TreeRoot+"/"))
		if err != nil {
			problems = append(problems, Problem{p, err})
			continue
		}
		d := dirs[path.Dir(p)]
		if d == nil {
			d = &dir{te: te}
			dirs[path.Dir(p)] = d
		}
		if firmware.RoleOf(te.Name) == firmware.RoleDescription {
			d.descs = append(d.descs, p)
		} else {
			d.files = append(d.files, p)
		}
	}
	if len(problems) > 0 {
		return nil, &BundleError{Bundle: "tree", Problems: problems}
	}
	keys := make([]string, 0, len(dirs))
	for k := range dirs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var written []string
	for _, k := range keys {
		d := dirs[k]
		if len(d.descs) > 0 && !opts.Overwrite {
			continue
		}
		desc := &Description{Identity: d.te.Identity, Version: d.te.Version, UpdateType: opts.UpdateType}
		for _, p := range d.files {
			f, err := s.root.Open(p)
			if err != nil {
				return written, err
			}
			h := sha256.New()
			n, err := io.Copy(h, &ctxReader{ctx, f})
			f.Close()
			if err != nil {
				return written, fmt.Errorf("%s: %w", p, err)
			}
			df := DescribedFile{Name: path.Base(p), Role: firmware.RoleOf(p), Size: n}
			h.Sum(df.SHA256[:0])
			desc.Files = append(desc.Files, df)
		}
		data, err := MarshalDescription(desc)
		if err != nil {
			return written, fmt.Errorf("%s: %w", k, err)
		}
		for _, old := range d.descs {
			if err := s.root.Remove(old); err != nil {
				return written, err
			}
		}
		name := k + "/" + d.te.Identity.Model + ".xml"
		if err := writeFileRoot(s.root, name, data); err != nil {
			return written, err
		}
		written = append(written, name)
	}
	// The listing changed: list again.
	fresh, err := OpenDir(s.root.Name())
	if err != nil {
		return written, err
	}
	s.root.Close()
	*s = *fresh
	return written, nil
}

func writeFileRoot(root *os.Root, name string, data []byte) error {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ctxReader stops reading when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Pack checks the tree in s (CheckTree) and writes it as a cabinet to w,
// each file under its path in the tree, in walk order, compressed as cfg
// says (cab.WriterConfig; SplitSize must be 0). It returns what the
// bundle holds.
func Pack(ctx context.Context, s *DirSource, w io.Writer, name string, cfg *cab.WriterConfig) ([]Update, error) {
	updates, err := CheckTree(ctx, s, name)
	if err != nil {
		return nil, err
	}
	cw, err := cab.NewWriter(cfg)
	if err != nil {
		return nil, err
	}
	for i, p := range s.files {
		info, err := s.root.Stat(p)
		if err != nil {
			return nil, err
		}
		if info.Size() != s.sizes[i] {
			return nil, fmt.Errorf("%s: changed while packing", p)
		}
		if err := cw.Add(p, info.Size(), info.ModTime(), cab.AttrArchive, func() (io.ReadCloser, error) { return s.root.Open(p) }); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	if err := cw.WriteTo(ctx, w); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return updates, nil
}
