package cab

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Config bounds what a cabinet may make the reader do. The zero value (or
// a nil *Config) gives the defaults listed with each field.
type Config struct {
	// MaxFiles bounds the number of files of a cabinet or set; 0 means
	// 100000.
	MaxFiles int
	// MaxNameLen bounds a stored name in bytes (without the NUL); 0 means
	// 255, the limit of [MS-CAB].
	MaxNameLen int
	// MaxTotalSize bounds the sum of the uncompressed sizes of all files;
	// 0 means 16 GiB.
	MaxTotalSize int64
	// MaxScan bounds how far Open scans for an embedded cabinet when the
	// input does not start with one; 0 means 64 MiB, negative disables
	// scanning.
	MaxScan int64
	// MaxParts bounds the number of cabinets of a set that OpenSet opens,
	// those before the named one included; 0 means 255.
	MaxParts int
}

func (c *Config) withDefaults() Config {
	var d Config
	if c != nil {
		d = *c
	}
	if d.MaxFiles <= 0 {
		d.MaxFiles = 100000
	}
	if d.MaxNameLen <= 0 {
		d.MaxNameLen = 255
	}
	if d.MaxTotalSize <= 0 {
		d.MaxTotalSize = 16 << 30
	}
	if d.MaxScan == 0 {
		d.MaxScan = 64 << 20
	}
	if d.MaxParts <= 0 {
		d.MaxParts = 255
	}
	return d
}

// Cabinet is an opened cabinet or cabinet set. Its methods may be called
// from one goroutine at a time.
type Cabinet struct {
	name    string
	cfg     Config
	parts   []*part
	folders []*folder
	files   []*File
	closers []io.Closer
	origin  *part // the cabinet read from the named file
}

// File is one file of a cabinet.
type File struct {
	// Name is the decoded name as stored (see the package documentation),
	// with Windows backslash separators.
	Name string
	// Size is the uncompressed size in bytes.
	Size int64
	// Modified is the stored DOS date and time, read as UTC; zero if
	// invalid.
	Modified time.Time
	// Attrs holds the stored attributes (AttrReadOnly, ...).
	Attrs uint16
	// Folder is the index of the file's folder in the cabinet (or set).
	Folder int
	// Offset is the file's offset in its folder's uncompressed stream.
	Offset int64
	// Compression is the compression of the file's folder.
	Compression Compression

	raw        []byte
	incomplete string // non-empty: why the file cannot be extracted
}

// Path returns the safe slash-separated relative path under which the file
// is extracted: see Names in the package documentation.
func (f *File) Path() string { return SafePath(f.Name) }

// part is one cabinet file of a set.
type part struct {
	name string
	base int64       // offset of the cabinet in its file
	r    io.ReaderAt // offsets relative to the "MSCF" signature
	size int64
	h    header
	fols []rawFolder
	fils []rawFile
}

type header struct {
	cbCabinet  uint32
	coffFiles  uint32
	cFolders   uint16
	cFiles     uint16
	flags      uint16
	setID      uint16
	iCabinet   uint16
	resvFolder int
	resvData   int
	prevName   string
	nextName   string
}

type rawFolder struct {
	off    int64
	blocks int
	comp   Compression
}

type rawFile struct {
	size  uint32
	off   uint32
	ifold uint16
	date  uint16
	time  uint16
	attrs uint16
	name  []byte
}

// folder is one logical folder, possibly spanning several parts.
type folder struct {
	index int
	comp  Compression
	spans []span
}

// span is the run of CFDATA blocks of a folder inside one part.
type span struct {
	p      *part
	off    int64
	blocks int
}

func (f *folder) blocks() int {
	n := 0
	for _, s := range f.spans {
		n += s.blocks
	}
	return n
}

// Name returns the cabinet's name as given to Open or OpenSet.
func (c *Cabinet) Name() string { return c.name }

// Files returns the cabinet's files in cabinet order. Files that continue
// from a previous cabinet not opened are included; extracting them fails
// with ErrIncomplete.
func (c *Cabinet) Files() []*File { return c.files }

// Folders returns the number of (logical) folders.
func (c *Cabinet) Folders() int { return len(c.folders) }

// Parts returns the file names of the cabinets of the set, in order.
func (c *Cabinet) Parts() []string {
	names := make([]string, len(c.parts))
	for i, p := range c.parts {
		names[i] = p.name
	}
	return names
}

// Close closes the files OpenSet opened. It is a no-op for Open.
func (c *Cabinet) Close() error {
	var errs []error
	for _, cl := range c.closers {
		errs = append(errs, cl.Close())
	}
	c.closers = nil
	return errors.Join(errs...)
}

// Open reads the cabinet in r (size bytes). name is used in errors only.
// When r does not start with a cabinet, Open scans for one embedded in it.
// A cabinet that continues into other cabinets is opened alone: files
// stored partly in the others fail with ErrIncomplete when extracted.
func Open(r io.ReaderAt, size int64, name string, cfg *Config) (*Cabinet, error) {
	c := &Cabinet{name: name, cfg: cfg.withDefaults()}
	p, err := c.findPart(r, size, name)
	if err != nil {
		return nil, err
	}
	c.origin = p
	if err := c.assemble([]*part{p}); err != nil {
		return nil, err
	}
	return c, nil
}

// OpenSet opens the cabinet in the file name in root with the rest of its
// set, as cabextract does. When the cabinet continues a previous one,
// OpenSet walks back by the previous-cabinet names to the first cabinet
// of the set; then it follows the next-cabinet names from the named
// cabinet to the last. The names stored in the cabinets are looked up in
// name's directory, ignoring case when the exact name is missing (as
// cabextract does), and only through root: a stored name that leads out
// of root is not found. The returned Cabinet presents the whole set,
// whichever of its cabinets was named; Close it to close the files.
//
// A missing cabinet of the set is an error wrapping ErrIncomplete that
// names it. A set that names one of its cabinets twice (a loop) is
// ErrFormat; more than Config.MaxParts cabinets, before and after the
// named one together, is ErrLimit. To read the named cabinet alone, use
// Open.
func OpenSet(root *os.Root, name string, cfg *Config) (*Cabinet, error) {
	c := &Cabinet{name: name, cfg: cfg.withDefaults()}
	parts, err := c.openParts(root)
	if err == nil {
		err = c.assemble(parts)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// openParts opens the cabinet file c.name and the other cabinets of its
// set, and returns the set's parts in order. The opened files are added
// to c.closers.
func (c *Cabinet) openParts(root *os.Root) ([]*part, error) {
	f, err := openPart(root, c.name)
	if err != nil {
		return nil, fmt.Errorf("cab: %w", err)
	}
	c.closers = append(c.closers, f)
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cab: %w", err)
	}
	origin, err := c.findPart(f, fi.Size(), c.name)
	if err != nil {
		return nil, err
	}
	c.origin = origin
	s := &setWalk{c: c, root: root, dir: path.Dir(filepath.ToSlash(c.name)), seen: []os.FileInfo{fi}}
	// Backwards to the first cabinet, then forwards from the named one.
	var parts []*part
	for p := origin; p.h.flags&flagPrevCabinet != 0; {
		prev, err := s.open(p, p.h.prevName, "previous")
		if err != nil {
			return nil, err
		}
		parts = append(parts, prev)
		p = prev
	}
	slices.Reverse(parts)
	parts = append(parts, origin)
	for p := origin; p.h.flags&flagNextCabinet != 0; {
		next, err := s.open(p, p.h.nextName, "next")
		if err != nil {
			return nil, err
		}
		parts = append(parts, next)
		p = next
	}
	return parts, nil
}

// setWalk opens the cabinets of a set by the names stored in them.
type setWalk struct {
	c    *Cabinet
	root *os.Root
	dir  string        // the directory of the named cabinet, in root
	seen []os.FileInfo // the cabinet files opened, to detect loops
}

// open opens the cabinet that from names as stored, its "previous" or
// "next" one.
func (s *setWalk) open(from *part, stored, which string) (*part, error) {
	c := s.c
	if len(s.seen) >= c.cfg.MaxParts {
		return nil, fmt.Errorf("cab: %s: more than %d cabinets in set: %w", c.name, c.cfg.MaxParts, ErrLimit)
	}
	named := ""
	if from != c.origin {
		named = " (named in " + from.name + ")"
	}
	if stored == "" {
		return nil, fmt.Errorf("cab: %s: %w: %s cabinet%s has an empty name", c.name, ErrIncomplete, which, named)
	}
	f, found, err := openMember(s.root, path.Join(s.dir, stored))
	if errors.Is(err, fs.ErrNotExist) {
		others := "later"
		if which == "previous" {
			others = "earlier"
		}
		return nil, fmt.Errorf("cab: %s: %w: %s cabinet %q%s not found; put the %s cabinets of the set in the same directory as %s", c.name, ErrIncomplete, which, stored, named, others, c.name)
	}
	if err != nil {
		return nil, fmt.Errorf("cab: %s: %w: %s cabinet %q%s: %w", c.name, ErrIncomplete, which, stored, named, err)
	}
	c.closers = append(c.closers, f)
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cab: %w", err)
	}
	for _, other := range s.seen {
		if os.SameFile(fi, other) {
			return nil, fmt.Errorf("cab: %s: cabinet set loops back to %s, the %s cabinet%s: %w", c.name, found, which, named, ErrFormat)
		}
	}
	s.seen = append(s.seen, fi)
	p, err := parsePart(f, fi.Size(), found, &c.cfg)
	if err != nil {
		return nil, err
	}
	if p.h.setID != c.origin.h.setID {
		return nil, fmt.Errorf("cab: %s: set ID %d, want %d of %s: %w", p.name, p.h.setID, c.origin.h.setID, c.name, ErrFormat)
	}
	return p, nil
}

// openPart opens name in root, falling back to a case-insensitive match
// in the same directory.
func openPart(root *os.Root, name string) (*os.File, error) {
	found, err := resolve(root, name)
	if err != nil {
		return nil, err
	}
	return root.Open(found)
}

// resolve returns name if it exists in root or else, as cabextract does,
// the entry of name's directory that matches its base name ignoring case.
func resolve(root *os.Root, name string) (string, error) {
	_, err := root.Stat(name)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return name, err
	}
	dir, base := path.Split(strings.ReplaceAll(name, `\`, "/"))
	if dir == "" {
		dir = "."
	}
	d, derr := root.Open(dir)
	if derr != nil {
		return "", err
	}
	defer d.Close()
	names, derr := d.Readdirnames(-1)
	if derr != nil {
		return "", err
	}
	for _, n := range names {
		if strings.EqualFold(n, base) {
			return path.Join(dir, n), nil
		}
	}
	return "", err
}

// openMember opens a cabinet of a set by its stored name, as openPart
// does, and only if it is a regular file, as cabextract requires (a FIFO
// would block, a directory is no cabinet). It returns the name found.
func openMember(root *os.Root, name string) (*os.File, string, error) {
	found, err := resolve(root, name)
	if err != nil {
		return nil, "", err
	}
	notRegular := &fs.PathError{Op: "open", Path: found, Err: errNotRegular}
	fi, err := root.Stat(found)
	if err != nil {
		return nil, "", err
	}
	if !fi.Mode().IsRegular() {
		return nil, "", notRegular
	}
	f, err := root.Open(found)
	if err != nil {
		return nil, "", err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, "", notRegular
	}
	return f, found, nil
}

var errNotRegular = errors.New("not a regular file")

// findPart parses the cabinet at the start of r or, failing that, the
// first valid one embedded in it.
func (c *Cabinet) findPart(r io.ReaderAt, size int64, name string) (*part, error) {
	p, err := parsePart(r, size, name, &c.cfg)
	if err == nil || c.cfg.MaxScan < 0 {
		return p, err
	}
	// Search on, also past a broken cabinet header at the start (as
	// cabextract does: "MSCFMSCF..." hides the real header at offset 4).
	tries := 0
	found, serr := scan(r, size, name, 1, &c.cfg, &tries)
	switch {
	case found != nil:
		return found, nil
	case serr != nil:
		return nil, serr
	}
	var sig [4]byte
	if n, _ := r.ReadAt(sig[:], 0); n == 4 && string(sig[:]) == "MSCF" {
		return nil, err // a cabinet, but a broken one
	}
	return nil, fmt.Errorf("cab: %s: no cabinet found: %w", name, ErrFormat)
}

// maxScanTries bounds the plausible headers one scan parses, so that a
// crafted file cannot make it slow.
const maxScanTries = 64

// scan returns the first valid cabinet in r at an offset from from on,
// looking at most cfg.MaxScan bytes further, or nil when there is none.
// tries counts the plausible headers parsed, across the scans of a file.
func scan(r io.ReaderAt, size int64, name string, from int64, cfg *Config, tries *int) (*part, error) {
	limit := min(size, from+cfg.MaxScan)
	buf := make([]byte, 64<<10)
	for base := from; base < limit; base += int64(len(buf)) - 3 {
		n, rerr := r.ReadAt(buf, base)
		if n < 4 {
			break
		}
		chunk := buf[:n]
		for i := 0; ; {
			j := bytes.Index(chunk[i:], []byte("MSCF"))
			if j < 0 {
				break
			}
			off := base + int64(i+j)
			i += j + 1
			if off >= limit || !plausible(r, off, size) {
				continue
			}
			if *tries++; *tries > maxScanTries {
				return nil, fmt.Errorf("cab: %s: more than %d cabinet-like headers: %w", name, maxScanTries, ErrLimit)
			}
			sub := io.NewSectionReader(r, off, size-off)
			if p, perr := parsePart(sub, size-off, name, cfg); perr == nil {
				p.base = off
				return p, nil
			}
		}
		if rerr != nil {
			break
		}
	}
	return nil, nil
}

// OpenAll opens every cabinet in the file first in root, as cabextract
// does: the cabinet (and the set it starts) that OpenSet opens, then each
// further cabinet found after the end of the one before (so cabinets
// stored inside a cabinet's data are not opened twice). The further
// cabinets are opened alone, as Open does, and named first@offset. The
// limits of cfg apply to all of them together. Close every cabinet
// returned.
func OpenAll(root *os.Root, first string, cfg *Config) ([]*Cabinet, error) {
	c, err := OpenSet(root, first, cfg)
	if err != nil {
		return nil, err
	}
	if c.cfg.MaxScan < 0 {
		return []*Cabinet{c}, nil
	}
	f, err := openPart(root, first)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("cab: %w", err)
	}
	file := &sharedFile{f: f}
	file.refs.Store(1)
	defer file.Close()
	fi, err := f.Stat()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("cab: %w", err)
	}
	cabs, err := c.following(f, fi.Size())
	if err != nil {
		c.Close()
		return nil, err
	}
	for _, sub := range cabs[1:] {
		file.refs.Add(1)
		sub.closers = append(sub.closers, file)
	}
	return cabs, nil
}

// OpenEvery opens every cabinet in r (size bytes), as OpenAll does in a
// file, each alone (as Open does). name is used in errors and names the
// further cabinets name@offset.
func OpenEvery(r io.ReaderAt, size int64, name string, cfg *Config) ([]*Cabinet, error) {
	c, err := Open(r, size, name, cfg)
	if err != nil {
		return nil, err
	}
	if c.cfg.MaxScan < 0 {
		return []*Cabinet{c}, nil
	}
	return c.following(r, size)
}

// following returns c and the cabinets after it in r, the file c was
// opened from, checking the limits over all of them.
func (c *Cabinet) following(r io.ReaderAt, size int64) ([]*Cabinet, error) {
	cabs := []*Cabinet{c}
	next := c.origin.base + max(int64(c.origin.h.cbCabinet), 4)
	files, total := len(c.files), c.declaredSize()
	tries := 0
	for next < size {
		p, err := scan(r, size, c.name, next, &c.cfg, &tries)
		if err != nil {
			return nil, err
		}
		if p == nil {
			break
		}
		name := fmt.Sprintf("%s@%d", c.name, p.base)
		p.name = name
		sub := &Cabinet{name: name, cfg: c.cfg, origin: p}
		if err := sub.assemble([]*part{p}); err != nil {
			return nil, err
		}
		files += len(sub.files)
		total += sub.declaredSize()
		if files > c.cfg.MaxFiles || total > c.cfg.MaxTotalSize {
			return nil, fmt.Errorf("cab: %s: the cabinets in it hold more than %d files or %d bytes: %w", c.name, c.cfg.MaxFiles, c.cfg.MaxTotalSize, ErrLimit)
		}
		cabs = append(cabs, sub)
		next = p.base + max(int64(p.h.cbCabinet), 4)
	}
	return cabs, nil
}

// sharedFile is a file read by several cabinets, closed with the last.
type sharedFile struct {
	f    *os.File
	refs atomic.Int32
}

func (s *sharedFile) Close() error {
	if s.refs.Add(-1) == 0 {
		return s.f.Close()
	}
	return nil
}

// declaredSize is the sum of the files' sizes.
func (c *Cabinet) declaredSize() int64 {
	var n int64
	for _, f := range c.files {
		n += f.Size
	}
	return n
}

// plausible reports whether the header at off looks like a real cabinet,
// to keep the scan from parsing every "MSCF" in an executable.
func plausible(r io.ReaderAt, off, size int64) bool {
	var b [headerSize]byte
	if n, _ := r.ReadAt(b[:], off); n < headerSize {
		return false
	}
	le := binary.LittleEndian
	cb := int64(le.Uint32(b[8:]))
	coff := int64(le.Uint32(b[16:]))
	// The reserved fields are not checked: cabextract ignores them, and
	// search_tricky1.cab of its tests sets them.
	return b[24] == 3 && b[25] == 1 &&
		cb >= headerSize && cb <= size-off &&
		coff >= headerSize && coff < cb &&
		le.Uint16(b[26:]) > 0 && le.Uint16(b[28:]) > 0
}

// parsePart parses the headers, folders and files of one cabinet.
func parsePart(r io.ReaderAt, size int64, name string, cfg *Config) (*part, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("cab: %s: %s: %w", name, fmt.Sprintf(format, args...), ErrFormat)
	}
	if size < headerSize {
		return nil, bad("too short for a header (%d bytes)", size)
	}
	br := bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 16<<10)
	var b [headerSize]byte
	if _, err := io.ReadFull(br, b[:]); err != nil {
		return nil, bad("header: %v", err)
	}
	if string(b[:4]) != "MSCF" {
		return nil, bad("no MSCF signature")
	}
	le := binary.LittleEndian
	p := &part{name: name, r: r, size: size}
	h := &p.h
	h.cbCabinet = le.Uint32(b[8:])
	h.coffFiles = le.Uint32(b[16:])
	h.cFolders = le.Uint16(b[26:])
	h.cFiles = le.Uint16(b[28:])
	h.flags = le.Uint16(b[30:])
	h.setID = le.Uint16(b[32:])
	h.iCabinet = le.Uint16(b[34:])
	if h.cFolders == 0 {
		return nil, bad("no folders")
	}
	if h.cFiles == 0 {
		return nil, bad("no files")
	}
	if int(h.cFiles) > cfg.MaxFiles {
		return nil, fmt.Errorf("cab: %s: %d files: %w", name, h.cFiles, ErrLimit)
	}
	if int64(h.coffFiles) >= size {
		return nil, bad("file table offset %d beyond end (%d bytes)", h.coffFiles, size)
	}
	if h.flags&flagReservePresent != 0 {
		var rb [4]byte
		if _, err := io.ReadFull(br, rb[:]); err != nil {
			return nil, bad("reserve sizes: %v", err)
		}
		resvHeader := int(le.Uint16(rb[:]))
		h.resvFolder = int(rb[2])
		h.resvData = int(rb[3])
		if resvHeader > maxHeaderResv {
			return nil, bad("header reserve of %d bytes", resvHeader)
		}
		if _, err := br.Discard(resvHeader); err != nil {
			return nil, bad("header reserve: %v", err)
		}
	}
	if h.flags&flagPrevCabinet != 0 {
		var err error
		if h.prevName, err = readCString(br, maxNameBytes); err != nil {
			return nil, bad("previous cabinet name: %v", err)
		}
		if _, err = readCString(br, maxNameBytes); err != nil {
			return nil, bad("previous disk name: %v", err)
		}
	}
	if h.flags&flagNextCabinet != 0 {
		var err error
		if h.nextName, err = readCString(br, maxNameBytes); err != nil {
			return nil, bad("next cabinet name: %v", err)
		}
		if _, err = readCString(br, maxNameBytes); err != nil {
			return nil, bad("next disk name: %v", err)
		}
	}
	fb := make([]byte, folderSize+h.resvFolder)
	for i := 0; i < int(h.cFolders); i++ {
		if _, err := io.ReadFull(br, fb); err != nil {
			return nil, bad("folder %d: %v", i, err)
		}
		f := rawFolder{
			off:    int64(le.Uint32(fb[0:])),
			blocks: int(le.Uint16(fb[4:])),
			comp:   compressionOf(le.Uint16(fb[6:])),
		}
		if f.off >= size && f.blocks > 0 {
			return nil, bad("folder %d: data offset %d beyond end (%d bytes)", i, f.off, size)
		}
		p.fols = append(p.fols, f)
	}
	// The file table is read right after the folders, as cabextract
	// (libmspack) does, rather than at coffFiles: cabinets where the two
	// differ ("hidden files") then list the same files as cabextract.
	var fh [fileSize]byte
	for i := 0; i < int(h.cFiles); i++ {
		if _, err := io.ReadFull(br, fh[:]); err != nil {
			return nil, bad("file %d: %v", i, err)
		}
		f := rawFile{
			size:  le.Uint32(fh[0:]),
			off:   le.Uint32(fh[4:]),
			ifold: le.Uint16(fh[8:]),
			date:  le.Uint16(fh[10:]),
			time:  le.Uint16(fh[12:]),
			attrs: le.Uint16(fh[14:]),
		}
		n, err := readCString(br, cfg.MaxNameLen)
		if errors.Is(err, ErrLimit) {
			return nil, fmt.Errorf("cab: %s: file %d: name longer than %d bytes: %w", name, i, cfg.MaxNameLen, ErrLimit)
		}
		if err != nil {
			return nil, bad("file %d: name: %v", i, err)
		}
		if n == "" {
			return nil, bad("file %d: empty name", i)
		}
		f.name = []byte(n)
		switch f.ifold {
		case ifoldContinuedFromPrev, ifoldContinuedToNext, ifoldContinuedPrevAndNext:
		default:
			if f.ifold >= h.cFolders {
				return nil, bad("file %d: folder index %d of %d folders", i, f.ifold, h.cFolders)
			}
		}
		p.fils = append(p.fils, f)
	}
	return p, nil
}

// readCString reads a NUL-terminated string of at most max bytes.
func readCString(br *bufio.Reader, max int) (string, error) {
	var s []byte
	for {
		c, err := br.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		if c == 0 {
			return string(s), nil
		}
		if len(s) >= max {
			return "", ErrLimit
		}
		s = append(s, c)
	}
}

// assemble links the parts' folders and files into the logical view.
func (c *Cabinet) assemble(parts []*part) error {
	c.parts = parts
	var total int64
	for k, p := range parts {
		base := len(c.folders)
		merge := false
		if k > 0 {
			prev := parts[k-1]
			merge = continuesNext(prev) || continuesPrev(p)
		}
		for i, rf := range p.fols {
			s := span{p: p, off: rf.off, blocks: rf.blocks}
			if i == 0 && merge {
				last := c.folders[len(c.folders)-1]
				if last.comp != rf.comp {
					return fmt.Errorf("cab: %s: folder %d continues as %v, was %v: %w", p.name, last.index, rf.comp, last.comp, ErrFormat)
				}
				last.spans = append(last.spans, s)
				base--
				continue
			}
			c.folders = append(c.folders, &folder{index: len(c.folders), comp: rf.comp, spans: []span{s}})
		}
		last := base + len(p.fols) - 1
		for _, rf := range p.fils {
			fi := &File{
				Name:     decodeName(rf.name, rf.attrs&AttrNameIsUTF != 0),
				Size:     int64(rf.size),
				Modified: dosTime(rf.date, rf.time),
				Attrs:    rf.attrs,
				Offset:   int64(rf.off),
				raw:      rf.name,
			}
			switch rf.ifold {
			case ifoldContinuedFromPrev, ifoldContinuedPrevAndNext:
				if k > 0 {
					continue // listed already by the previous part
				}
				fi.Folder = base
				fi.incomplete = "continues from previous cabinet " + strconvQuote(p.h.prevName)
			case ifoldContinuedToNext:
				fi.Folder = last
			default:
				fi.Folder = base + int(rf.ifold)
			}
			if (rf.ifold == ifoldContinuedToNext || rf.ifold == ifoldContinuedPrevAndNext) && fi.incomplete == "" && k == len(parts)-1 {
				fi.incomplete = "continues in next cabinet " + strconvQuote(p.h.nextName)
			}
			fi.Compression = c.folders[fi.Folder].comp
			total += fi.Size
			if total > c.cfg.MaxTotalSize {
				return fmt.Errorf("cab: %s: total size exceeds %d bytes: %w", c.name, c.cfg.MaxTotalSize, ErrLimit)
			}
			if len(c.files) >= c.cfg.MaxFiles {
				return fmt.Errorf("cab: %s: more than %d files: %w", c.name, c.cfg.MaxFiles, ErrLimit)
			}
			c.files = append(c.files, fi)
		}
	}
	for _, fi := range c.files {
		if fi.incomplete == "" && fi.Offset+fi.Size > int64(c.folders[fi.Folder].blocks())*maxBlockUncomp {
			return fmt.Errorf("cab: %s: file %q: extends beyond its folder's data: %w", c.name, fi.Name, ErrFormat)
		}
	}
	return nil
}

func continuesNext(p *part) bool {
	if p.h.flags&flagNextCabinet == 0 {
		return false
	}
	for _, f := range p.fils {
		if f.ifold == ifoldContinuedToNext || f.ifold == ifoldContinuedPrevAndNext {
			return true
		}
	}
	return false
}

func continuesPrev(p *part) bool {
	for _, f := range p.fils {
		if f.ifold == ifoldContinuedFromPrev || f.ifold == ifoldContinuedPrevAndNext {
			return true
		}
	}
	return false
}

func strconvQuote(s string) string { return fmt.Sprintf("%q", s) }
