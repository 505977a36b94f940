package cabingest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/opendus/opendus/firmware"
)

// ErrInvalid is returned (inside a *BundleError) when a bundle is refused
// because a part of it is invalid.
var ErrInvalid = errors.New("invalid bundle")

// ErrContent is returned when a file of a bundle does not match its
// description (size, SHA-256), is missing, or is not described.
var ErrContent = errors.New("content does not match the description")

// Source is an archive that holds an update tree: a cabinet, an RPM
// payload. Walk calls fn for each regular file, with its slash-separated
// path in the archive, its size and a reader of its bytes that is valid
// until fn returns; fn need not read everything. Walk must present the
// same files in the same order every time, and stop at the first error
// (from the archive or from fn). The bundle reader walks a source once to
// validate it and again, lazily, to stream the files into the store.
type Source interface {
	Walk(ctx context.Context, fn func(path string, size int64, r io.Reader) error) error
}

// Problem is one invalid part of a bundle.
type Problem struct {
	// Path is the part's path in the archive (a file or a version
	// directory); empty for the bundle as a whole.
	Path string
	Err  error
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Err.Error()
	}
	return p.Path + ": " + p.Err.Error()
}

// BundleError is the refusal of a whole bundle: it lists every invalid
// part found, not only the first. It matches ErrInvalid and the errors of
// its problems with errors.Is.
type BundleError struct {
	Bundle   string
	Problems []Problem
}

func (e *BundleError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: not a valid bundle: %d invalid part(s):", e.Bundle, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Unwrap returns ErrInvalid and the problems' errors.
func (e *BundleError) Unwrap() []error {
	errs := []error{ErrInvalid}
	for _, p := range e.Problems {
		errs = append(errs, p.Err)
	}
	return errs
}

// entry is one file of a source, as the validation pass saw it.
type entry struct {
	index int    // position in walk order
	path  string // path in the archive
	tree  string // path in the update tree; "" when ignored
	size  int64
	sum   [32]byte
	desc  []byte // the content of a description
}

// MaxDescriptionsSize bounds the descriptions of one bundle together, which
// are kept in memory while it is checked.
const MaxDescriptionsSize = 16 << 20

// readEntries walks src once: it hashes every file and keeps the content
// of descriptions. treePath maps an archive path to its path in the tree
// (ok false: not part of the tree). A description larger than
// MaxDescriptionSize is a problem, not read.
func readEntries(ctx context.Context, src Source, treePath func(string) (string, bool)) ([]entry, []Problem, error) {
	var (
		entries  []entry
		problems []Problem
	)
	buf := make([]byte, 64<<10)
	var kept int64 // bytes of descriptions kept, at most MaxDescriptionsSize
	err := src.Walk(ctx, func(p string, size int64, r io.Reader) error {
		e := entry{index: len(entries), path: p, size: size}
		tp, ok := treePath(p)
		if ok {
			e.tree = tp
		}
		h := sha256.New()
		var w io.Writer = h
		var desc *limitedBuffer
		if ok && firmware.RoleOf(p) == firmware.RoleDescription {
			switch {
			case size > MaxDescriptionSize:
				problems = append(problems, Problem{p, fmt.Errorf("%w: %d bytes, more than %d", ErrDescription, size, MaxDescriptionSize)})
			case kept+size > MaxDescriptionsSize:
				problems = append(problems, Problem{p, fmt.Errorf("%w: the bundle's descriptions are larger than %d bytes together", ErrDescription, MaxDescriptionsSize)})
			default:
				kept += size
				desc = &limitedBuffer{max: MaxDescriptionSize}
				w = io.MultiWriter(h, desc)
			}
		}
		n, err := io.CopyBuffer(w, r, buf)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if n != size {
			return fmt.Errorf("%s: %w: read %d bytes, the archive says %d", p, ErrContent, n, size)
		}
		h.Sum(e.sum[:0])
		if desc != nil {
			e.desc = desc.b
		}
		entries = append(entries, e)
		return nil
	})
	return entries, problems, err
}

type limitedBuffer struct {
	b   []byte
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if len(l.b)+len(p) > l.max {
		return 0, fmt.Errorf("%w: more than %d bytes", ErrDescription, l.max)
	}
	l.b = append(l.b, p...)
	return len(p), nil
}

// plannedUpdate is an update of the bundle with the entries of its files.
type plannedUpdate struct {
	update  firmware.ImportUpdate
	entries []int // index into the entries, parallel to update.Files
	first   int   // lowest walk position of its files
}

// plan groups the entries into updates and checks every description
// against its directory and the files present. It returns every problem
// it finds; the updates are meaningful only when there is none. Updates
// are ordered by the walk position of their first file and their files
// by walk position, so that an import that opens them in order reads the
// source front to back.
func plan(entries []entry) ([]plannedUpdate, []Problem) {
	var problems []Problem
	type dir struct {
		entry  TreeEntry // of any file: identity and version
		path   string    // directory path in the archive
		files  []int
		descs  []int
		byName map[string]int
	}
	dirs := map[string]*dir{}
	var order []*dir
	for i, e := range entries {
		if e.tree == "" {
			continue
		}
		te, err := ParseTreePath(e.tree)
		if err != nil {
			problems = append(problems, Problem{e.path, err})
			continue
		}
		key := te.Identity.Path() + "/" + te.Version.String()
		d := dirs[key]
		if d == nil {
			d = &dir{entry: te, path: path.Dir(e.path), byName: map[string]int{}}
			dirs[key] = d
			order = append(order, d)
		}
		lower := strings.ToLower(te.Name)
		if j, dup := d.byName[lower]; dup {
			problems = append(problems, Problem{e.path, fmt.Errorf("%w: the bundle holds this file twice (also %s)", ErrLayout, entries[j].path)})
			continue
		}
		d.byName[lower] = i
		d.files = append(d.files, i)
		if firmware.RoleOf(te.Name) == firmware.RoleDescription {
			d.descs = append(d.descs, i)
		}
	}
	if len(order) == 0 && len(problems) == 0 {
		problems = append(problems, Problem{"", fmt.Errorf("%w: no files in DeviceType/Vendor/Model/Revision/Locale/Version/ directories", ErrLayout)})
	}

	versions := map[firmware.Identity]*dir{}
	var out []plannedUpdate
	for _, d := range order {
		id, v := d.entry.Identity, d.entry.Version
		if other, dup := versions[id]; dup {
			problems = append(problems, Problem{d.path, fmt.Errorf("%w: %s has two versions in the bundle, %s and %s: a bundle brings one version per identity", ErrLayout, id, other.entry.Version, v)})
			continue
		}
		versions[id] = d
		switch len(d.descs) {
		case 0:
			problems = append(problems, Problem{d.path, fmt.Errorf("%w: no description (.xml) in the version directory", ErrDescription)})
			continue
		case 1:
		default:
			names := make([]string, len(d.descs))
			for k, j := range d.descs {
				names[k] = path.Base(entries[j].tree)
			}
			problems = append(problems, Problem{d.path, fmt.Errorf("%w: %d descriptions (%s); want one", ErrDescription, len(d.descs), strings.Join(names, ", "))})
			continue
		}
		de := entries[d.descs[0]]
		if de.desc == nil {
			continue // too large: reported while reading
		}
		desc, err := ParseDescription(de.desc)
		if err != nil {
			problems = append(problems, Problem{de.path, err})
			continue
		}
		var bad []error
		if desc.Identity != id {
			bad = append(bad, fmt.Errorf("%w: identity %s does not match its directory %s", ErrDescription, desc.Identity, id))
		}
		if desc.Version != v {
			bad = append(bad, fmt.Errorf("%w: version %s does not match its directory %s", ErrDescription, desc.Version, v))
		}
		listed := map[string]bool{}
		for _, f := range desc.Files {
			listed[strings.ToLower(f.Name)] = true
			j, ok := d.byName[strings.ToLower(f.Name)]
			if !ok {
				bad = append(bad, fmt.Errorf("%w: lists %s, which is not in the bundle", ErrContent, f.Name))
				continue
			}
			e := entries[j]
			if name := path.Base(e.tree); name != f.Name {
				problems = append(problems, Problem{e.path, fmt.Errorf("%w: the description lists it as %s", ErrContent, f.Name)})
				continue
			}
			if e.size != f.Size {
				problems = append(problems, Problem{e.path, fmt.Errorf("%w: %d bytes, the description says %d", ErrContent, e.size, f.Size)})
				continue
			}
			if e.sum != f.SHA256 {
				problems = append(problems, Problem{e.path, fmt.Errorf("%w: SHA-256 %x, the description says %x", ErrContent, e.sum, f.SHA256)})
			}
		}
		for _, j := range d.files {
			if j == d.descs[0] {
				continue
			}
			if !listed[strings.ToLower(path.Base(entries[j].tree))] {
				problems = append(problems, Problem{entries[j].path, fmt.Errorf("%w: the description %s does not list it", ErrContent, path.Base(de.tree))})
			}
		}
		for _, err := range bad {
			problems = append(problems, Problem{de.path, err})
		}

		pu := plannedUpdate{update: firmware.ImportUpdate{Identity: id, Version: v, UpdateType: desc.UpdateType}}
		roles := map[string]firmware.Role{}
		for _, f := range desc.Files {
			roles[strings.ToLower(f.Name)] = f.Role
		}
		files := append([]int(nil), d.files...)
		sort.Ints(files)
		pu.first = files[0]
		for _, j := range files {
			e := entries[j]
			name := path.Base(e.tree)
			role := roles[strings.ToLower(name)]
			if j == d.descs[0] {
				role = firmware.RoleDescription
			}
			sum := e.sum
			pu.update.Files = append(pu.update.Files, firmware.ImportFile{Name: name, Role: role, Size: e.size, SHA256: &sum})
			pu.entries = append(pu.entries, j)
		}
		out = append(out, pu)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].first < out[j].first })
	return out, problems
}
