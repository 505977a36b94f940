package cab

import (
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/opendus/opendus/cabingest/mszip"
)

// WriterConfig configures a Writer. The zero value writes one
// uncompressed cabinet.
type WriterConfig struct {
	// Compression of the folders: CompressNone, CompressMSZIP or
	// CompressLZX with Window 15..21.
	Compression Compression
	// MSZIPLevel is the mszip encoder level for MSZIP, 1 (fast) to 9
	// (best); 0 means mszip.Default.
	MSZIPLevel int
	// SplitSize, when positive, is the largest size in bytes of one
	// cabinet file: Write produces a cabinet set with folders continued
	// across cabinets and blocks split at the boundaries, in the layout
	// cabextract (libmspack) expects: a file that spans cabinets is listed
	// in each, and a continued folder ends with the files it carries, so
	// that new files start a new folder. It must leave room for a full
	// block and the file tables (at least 64 KiB). gcab cannot read sets.
	SplitSize int64
	// SetID is stored in every cabinet of a set.
	SetID uint16
	// TempDir holds the spool file of compressed data; "" means
	// os.TempDir().
	TempDir string
	// PartName names cabinet k (1-based) of a set whose first cabinet is
	// first; nil means "name.cab", "name-2.cab", "name-3.cab", ...
	PartName func(first string, k int) string
}

// maxFolderBlocks is the most CFDATA blocks a folder may have (a u16
// count, and split blocks count in two cabinets).
const maxFolderBlocks = 65000

// Writer creates cabinets: Add files, then Write. The data of added files
// is read during Write.
type Writer struct {
	cfg     WriterConfig
	entries []*wentry
	total   int64
}

type wentry struct {
	name  []byte // stored name, backslash separators
	size  int64
	date  uint16
	time  uint16
	attrs uint16
	open  func() (io.ReadCloser, error)
	// set while writing
	folder *pfolder
	off    int64
	parts  []int // parts listing the file
}

// NewWriter returns a Writer. cfg may be nil.
func NewWriter(cfg *WriterConfig) (*Writer, error) {
	w := &Writer{}
	if cfg != nil {
		w.cfg = *cfg
	}
	c := w.cfg.Compression
	switch c.Type {
	case CompressNone, CompressMSZIP:
		w.cfg.Compression.Window = 0
	case CompressLZX:
		if c.Window < 15 || c.Window > 21 {
			return nil, fmt.Errorf("cab: lzx window %d outside 15..21: %w", c.Window, ErrUnsupported)
		}
	default:
		return nil, fmt.Errorf("cab: writing %v: %w", c, ErrUnsupported)
	}
	if w.cfg.MSZIPLevel == 0 {
		w.cfg.MSZIPLevel = mszip.Default
	}
	if w.cfg.SplitSize > 0 && w.cfg.SplitSize < 64<<10 {
		return nil, fmt.Errorf("cab: split size %d below 64 KiB: %w", w.cfg.SplitSize, ErrLimit)
	}
	if w.cfg.PartName == nil {
		w.cfg.PartName = defaultPartName
	}
	return w, nil
}

func defaultPartName(first string, k int) string {
	if k == 1 {
		return first
	}
	ext := path.Ext(first)
	return fmt.Sprintf("%s-%d%s", strings.TrimSuffix(first, ext), k, ext)
}

// Add adds a file of size bytes whose data open returns. name uses '/' or
// '\' separators and is stored with '\'; a name that is not ASCII must be
// UTF-8 and is flagged _A_NAME_IS_UTF. attrs may hold AttrReadOnly,
// AttrHidden, AttrSystem, AttrArchive and AttrExec.
func (w *Writer) Add(name string, size int64, mod time.Time, attrs uint16, open func() (io.ReadCloser, error)) error {
	stored := strings.ReplaceAll(strings.TrimLeft(name, `/\`), "/", `\`)
	switch {
	case stored == "":
		return fmt.Errorf("cab: empty name %q: %w", name, ErrFormat)
	case len(stored) > 255:
		return fmt.Errorf("cab: name %q longer than 255 bytes: %w", name, ErrLimit)
	case strings.IndexByte(stored, 0) >= 0 || !utf8.ValidString(stored):
		return fmt.Errorf("cab: name %q is not valid UTF-8: %w", name, ErrFormat)
	case size < 0 || size > maxFolderBlocks*maxBlockUncomp:
		return fmt.Errorf("cab: %s: size %d: %w", name, size, ErrLimit)
	}
	attrs &= AttrReadOnly | AttrHidden | AttrSystem | AttrArchive | AttrExec
	for i := 0; i < len(stored); i++ {
		if stored[i] >= 0x80 {
			attrs |= AttrNameIsUTF
			break
		}
	}
	if len(w.entries) >= 65535 && w.cfg.SplitSize <= 0 {
		return fmt.Errorf("cab: more than 65535 files: %w", ErrLimit)
	}
	d, t := toDOSTime(mod)
	w.entries = append(w.entries, &wentry{name: []byte(stored), size: size, date: d, time: t, attrs: attrs, open: open})
	w.total += size
	return nil
}

// AddFile adds the file at path (on the local file system) under name.
func (w *Writer) AddFile(name, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("cab: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("cab: %s: not a regular file: %w", path, ErrUnsupported)
	}
	attrs := uint16(AttrArchive)
	if fi.Mode()&0o111 != 0 {
		attrs |= AttrExec
	}
	return w.Add(name, fi.Size(), fi.ModTime(), attrs, func() (io.ReadCloser, error) { return os.Open(path) })
}
