package cab

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"

	"github.com/opendus/opendus/cabingest/mszip"
)

// decoder is the shape shared by the codecs of the mszip, lzx and quantum
// packages: one CFDATA block per call, state carried within a folder.
type decoder interface {
	Decode(dst, src []byte) error
	Reset()
}

// storedDecoder decodes uncompressed blocks.
type storedDecoder struct{}

func (storedDecoder) Decode(dst, src []byte) error {
	if len(src) != len(dst) {
		return fmt.Errorf("stored block of %d bytes declares %d: %w", len(src), len(dst), ErrFormat)
	}
	copy(dst, src)
	return nil
}

func (storedDecoder) Reset() {}

func newDecoder(comp Compression) (decoder, error) {
	switch comp.Type {
	case CompressNone:
		return storedDecoder{}, nil
	case CompressMSZIP:
		return mszip.NewDecoder(), nil
	case CompressLZX:
		return newLZXDecoder(comp.Window)
	case CompressQuantum:
		return newQuantumDecoder(comp.Window)
	}
	return nil, fmt.Errorf("compression %v: %w", comp, ErrUnsupported)
}

// folderReader decodes a folder block by block.
type folderReader struct {
	f       *folder
	dec     decoder
	span    int   // current span
	block   int   // next block within the span
	off     int64 // offset of the next CFDATA header in the span's part
	logical int   // logical block number, for errors
	pos     int64 // folder offset of out[0]
	in      []byte
	hdr     []byte
	out     []byte
	outPos  int
	budget  *int64 // decoded bytes still allowed
	ctx     context.Context
}

func (c *Cabinet) newFolderReader(ctx context.Context, f *folder, decs map[Compression]decoder, budget *int64) (*folderReader, error) {
	dec := decs[f.comp]
	if dec == nil {
		var err error
		if dec, err = newDecoder(f.comp); err != nil {
			return nil, fmt.Errorf("folder %d: %w", f.index, err)
		}
		decs[f.comp] = dec
	}
	fr := &folderReader{
		f:      f,
		dec:    dec,
		in:     make([]byte, maxBlockComp),
		hdr:    make([]byte, dataSize+255),
		out:    make([]byte, 0, maxBlockUncomp),
		budget: budget,
		ctx:    ctx,
	}
	fr.restart()
	return fr, nil
}

// restart positions the reader at the start of the folder.
func (fr *folderReader) restart() {
	fr.span, fr.block, fr.logical, fr.pos, fr.outPos = 0, 0, 0, 0, 0
	fr.off = fr.f.spans[0].off
	fr.out = fr.out[:0]
	fr.dec.Reset()
}

// errorf names the folder and block.
func (fr *folderReader) errorf(format string, args ...any) error {
	return fmt.Errorf("folder %d: block %d: %w", fr.f.index, fr.logical, fmt.Errorf(format, args...))
}

// next decodes the next block into fr.out. It returns io.EOF after the
// last block.
func (fr *folderReader) next() error {
	if err := fr.ctx.Err(); err != nil {
		return err
	}
	spans := fr.f.spans
	for fr.span < len(spans) && fr.block >= spans[fr.span].blocks {
		fr.span++
		fr.block = 0
		if fr.span < len(spans) {
			fr.off = spans[fr.span].off
		}
	}
	if fr.span >= len(spans) {
		return io.EOF
	}
	fr.pos += int64(len(fr.out))
	fr.out, fr.outPos = fr.out[:0], 0
	in := 0
	var uncomp int
	for {
		s := spans[fr.span]
		hl := dataSize + s.p.h.resvData
		hdr := fr.hdr[:hl]
		if err := readFull(s.p, hdr, fr.off); err != nil {
			return fr.errorf("header: %w", err)
		}
		csum := binary.LittleEndian.Uint32(hdr)
		cb := int(binary.LittleEndian.Uint16(hdr[4:]))
		uncomp = int(binary.LittleEndian.Uint16(hdr[6:]))
		if in+cb > maxBlockComp {
			return fr.errorf("compressed size %d exceeds %d: %w", in+cb, maxBlockComp, ErrFormat)
		}
		payload := fr.in[in : in+cb]
		if err := readFull(s.p, payload, fr.off+int64(hl)); err != nil {
			return fr.errorf("data: %w", err)
		}
		if csum != 0 && dataChecksum(payload, hdr[4:dataSize]) != csum &&
			(hl == dataSize || dataChecksum(payload, hdr[4:hl]) != csum) {
			return fr.errorf("%w", ErrChecksum)
		}
		fr.off += int64(hl + cb)
		fr.block++
		in += cb
		if uncomp != 0 {
			break
		}
		// A block with no uncompressed size is the first part of a block
		// split across cabinets; the rest starts the next cabinet.
		if fr.block < s.blocks {
			return fr.errorf("empty block: %w", ErrFormat)
		}
		if fr.span+1 >= len(spans) {
			return fr.errorf("block continues in next cabinet: %w", ErrIncomplete)
		}
		fr.span++
		fr.block = 0
		fr.off = spans[fr.span].off
		if spans[fr.span].blocks == 0 {
			return fr.errorf("continued block missing: %w", ErrFormat)
		}
	}
	if uncomp > maxBlockUncomp {
		return fr.errorf("uncompressed size %d exceeds %d: %w", uncomp, maxBlockUncomp, ErrFormat)
	}
	if *fr.budget -= int64(uncomp); *fr.budget < 0 {
		return fr.errorf("decoded too much data: %w", ErrLimit)
	}
	fr.out = fr.out[:uncomp]
	if err := fr.dec.Decode(fr.out, fr.in[:in]); err != nil {
		fr.out = fr.out[:0]
		if errors.Is(err, ErrUnsupported) || errors.Is(err, ErrFormat) {
			return fr.errorf("%w", err)
		}
		return fr.errorf("%w: %w", ErrFormat, err)
	}
	fr.logical++
	return nil
}

// readFull reads len(p) bytes at off of part p; running past the end is
// ErrFormat.
func readFull(p *part, b []byte, off int64) error {
	if off < 0 || off+int64(len(b)) > p.size {
		return fmt.Errorf("truncated at offset %d of %d bytes: %w", off, p.size, ErrFormat)
	}
	n, err := p.r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		return fmt.Errorf("truncated at offset %d: %w", off, ErrFormat)
	}
	return err
}

// skip advances to folder offset to.
func (fr *folderReader) skip(to int64) error {
	if to < fr.pos+int64(fr.outPos) {
		fr.restart()
	}
	for {
		cur := fr.pos + int64(fr.outPos)
		if cur == to {
			return nil
		}
		if avail := int64(len(fr.out) - fr.outPos); avail > 0 {
			fr.outPos += int(min(avail, to-cur))
			continue
		}
		if err := fr.next(); err != nil {
			if err == io.EOF {
				return fmt.Errorf("folder %d: offset %d beyond folder data: %w", fr.f.index, to, ErrFormat)
			}
			return err
		}
	}
}

// fileReader streams one file's bytes from a folderReader.
type fileReader struct {
	fr     *folderReader
	remain int64
	err    error
}

func (r *fileReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.remain == 0 {
		return 0, io.EOF
	}
	fr := r.fr
	if fr.outPos == len(fr.out) {
		if err := fr.next(); err != nil {
			if err == io.EOF {
				err = fmt.Errorf("folder %d: file extends beyond folder data: %w", fr.f.index, ErrFormat)
			}
			r.err = err
			return 0, err
		}
	}
	n := copy(p, fr.out[fr.outPos:])
	n = int(min(int64(n), r.remain))
	fr.outPos += n
	r.remain -= n64(n)
	return n, nil
}

func n64(n int) int64 { return int64(n) }

// Extract decodes the cabinet and calls fn for every file with a reader
// of the file's bytes, in folder order and, within a folder, in offset
// order (which is cabinet order for cabinets written by normal tools).
// fn need not read everything; the rest is decoded and checked. Extract
// stops at the first error, from decoding or from fn.
func (c *Cabinet) Extract(ctx context.Context, fn func(f *File, r io.Reader) error) error {
	return c.extract(ctx, fn, false)
}

// extract is Extract; with keepGoing, a file that cannot be decoded does
// not stop it: the rest of that file's folder is skipped (its files fail
// too), the other folders are extracted, and the errors are returned
// together. Errors of fn itself, other than reading, and cancellation
// still stop it.
func (c *Cabinet) extract(ctx context.Context, fn func(f *File, r io.Reader) error, keepGoing bool) error {
	byFolder := make([][]*File, len(c.folders))
	var total int64
	for _, f := range c.files {
		byFolder[f.Folder] = append(byFolder[f.Folder], f)
		total += f.Size
	}
	budget := 4*total + 64<<20
	decs := map[Compression]decoder{}
	var failed []error
	for fi, files := range byFolder {
		if len(files) == 0 {
			continue
		}
		slices.SortStableFunc(files, func(a, b *File) int {
			switch {
			case a.Offset < b.Offset:
				return -1
			case a.Offset > b.Offset:
				return 1
			}
			return 0
		})
		var fr *folderReader
		for k, f := range files {
			err := c.extractFile(ctx, f, fi, &fr, decs, &budget, fn)
			if err == nil {
				continue
			}
			var de *decodeError
			if !keepGoing || !errors.As(err, &de) || ctx.Err() != nil {
				return err
			}
			failed = append(failed, de.err)
			if de.folder {
				for _, g := range files[k+1:] {
					failed = append(failed, fmt.Errorf("cab: %s: file %q: not extracted after an error earlier in folder %d: %w", c.name, g.Name, fi, ErrFormat))
				}
				break
			}
		}
	}
	return errors.Join(failed...)
}

// decodeError is an error of the cabinet's data (not of the callback);
// with folder set the rest of the folder cannot be read either.
type decodeError struct {
	err    error
	folder bool
}

func (e *decodeError) Error() string { return e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

// extractFile passes file f of folder fi to fn, opening the folder's
// reader *fr when needed.
func (c *Cabinet) extractFile(ctx context.Context, f *File, fi int, fr **folderReader, decs map[Compression]decoder, budget *int64, fn func(f *File, r io.Reader) error) error {
	if f.incomplete != "" {
		return &decodeError{err: fmt.Errorf("cab: %s: file %q: %s: %w", c.name, f.Name, f.incomplete, ErrIncomplete)}
	}
	fail := func(err error) error {
		return &decodeError{err: fmt.Errorf("cab: %s: file %q: %w", c.name, f.Name, err), folder: true}
	}
	if *fr == nil {
		var err error
		if *fr, err = c.newFolderReader(ctx, c.folders[fi], decs, budget); err != nil {
			return fail(err)
		}
	}
	if err := (*fr).skip(f.Offset); err != nil {
		return fail(err)
	}
	r := &fileReader{fr: *fr, remain: f.Size}
	if err := fn(f, r); err != nil {
		if r.err != nil {
			return fail(r.err)
		}
		return err
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fail(err)
	}
	return nil
}

// Test decodes every folder completely, verifying checksums and block
// sizes, and checks that every file lies inside its folder's data. It
// writes nothing.
func (c *Cabinet) Test(ctx context.Context) error {
	ends := make([]int64, len(c.folders))
	for _, f := range c.files {
		if f.incomplete != "" {
			return fmt.Errorf("cab: %s: file %q: %s: %w", c.name, f.Name, f.incomplete, ErrIncomplete)
		}
		ends[f.Folder] = max(ends[f.Folder], f.Offset+f.Size)
	}
	budget := int64(1) << 62 // Test decodes each block once
	decs := map[Compression]decoder{}
	for i, fol := range c.folders {
		fr, err := c.newFolderReader(ctx, fol, decs, &budget)
		if err != nil {
			return fmt.Errorf("cab: %s: %w", c.name, err)
		}
		for {
			err := fr.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("cab: %s: %w", c.name, err)
			}
		}
		if size := fr.pos + int64(len(fr.out)); size < ends[i] {
			return fmt.Errorf("cab: %s: folder %d: %d bytes of data, files need %d: %w", c.name, i, size, ends[i], ErrFormat)
		}
	}
	return nil
}

// ExtractAll extracts every file under dir (created if missing) at its
// File.Path, through an os.Root so that nothing is written outside dir.
// Files are written with mode 0644 (0755 with the AttrExec attribute) and
// their stored modification time. A file that fails to extract is
// removed. As cabextract does, corrupt data does not stop it: the rest of
// the affected folder is skipped, every other file is extracted, and
// ExtractAll returns the errors of all the files it could not extract.
// Write errors and cancellation stop it at once.
func (c *Cabinet) ExtractAll(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cab: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("cab: %w", err)
	}
	defer root.Close()
	bw := bufio.NewWriterSize(nil, 256<<10)
	return c.extract(ctx, func(f *File, r io.Reader) error {
		p := f.Path()
		if d := path.Dir(p); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("cab: %s: file %q: %w", c.name, f.Name, err)
			}
		}
		mode := os.FileMode(0o644)
		if f.Attrs&AttrExec != 0 {
			mode = 0o755
		}
		// Remove what is there first, so that a planted symlink is
		// replaced rather than followed.
		if fi, err := root.Lstat(p); err == nil && !fi.Mode().IsRegular() && !fi.IsDir() {
			if err := root.Remove(p); err != nil {
				return fmt.Errorf("cab: %s: file %q: %w", c.name, f.Name, err)
			}
		}
		out, err := root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
		if err != nil {
			return fmt.Errorf("cab: %s: file %q: %w", c.name, f.Name, err)
		}
		bw.Reset(out)
		_, err = io.Copy(bw, r)
		if err == nil {
			err = bw.Flush()
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err == nil && !f.Modified.IsZero() {
			err = root.Chtimes(p, f.Modified, f.Modified)
		}
		if err != nil {
			root.Remove(p)
			return fmt.Errorf("cab: %s: file %q: %w", c.name, f.Name, err)
		}
		return nil
	}, true)
}
