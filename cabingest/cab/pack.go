package cab

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/opendus/opendus/cabingest/mszip"
)

// encoder is the shape of the block encoders (mszip, lzx).
type encoder interface {
	Encode(dst, src []byte) ([]byte, error)
	Reset()
}

type storedEncoder struct{}

func (storedEncoder) Encode(dst, src []byte) ([]byte, error) { return append(dst, src...), nil }
func (storedEncoder) Reset()                                 {}

func (w *Writer) newEncoder() (encoder, error) {
	switch w.cfg.Compression.Type {
	case CompressMSZIP:
		return mszip.NewEncoder(w.cfg.MSZIPLevel)
	case CompressLZX:
		return newLZXEncoder(w.cfg.Compression.Window)
	}
	return storedEncoder{}, nil
}

// pfolder is a folder being written.
type pfolder struct {
	idx        int
	blocks     int
	carried    []*wentry // files listed in every cabinet the folder continues into
	closeAfter *wentry   // the folder ends after this file (set when split)
}

// partFolder is a folder's run of blocks inside one cabinet.
type partFolder struct {
	f       *pfolder
	dataOff int64 // offset of the first block in the part's data area
	n       int
}

// ppart is the cabinet being written.
type ppart struct {
	idx     int
	name    string
	prev    string
	folders []*partFolder
	files   []*wentry
	used    int64 // upper bound of the cabinet's size so far
}

// packer holds the state of one Write.
type packer struct {
	w      *Writer
	ctx    context.Context
	limit  int64
	enc    encoder
	create func(name string) (io.WriteCloser, error)
	first  string
	names  []string

	fol      *pfolder
	nfolders int
	folSize  int64
	forceNew bool

	buf        []byte
	fill       int
	out        []byte
	blockFiles []*wentry
	stream     int64   // position in the concatenation of all files
	starts     []int64 // stream position of each entry
	next       int     // next entry to start

	cur       *ppart
	spool     *os.File
	spoolW    *bufio.Writer
	spoolSize int64
	hdr       []byte
}

func fileCost(e *wentry) int64 { return int64(fileSize + len(e.name) + 1) }

// Write writes the cabinet, or the cabinet set when WriterConfig.SplitSize
// requires more than one, as name (and the following part names) in
// root. It returns the names written.
func (w *Writer) Write(ctx context.Context, root *os.Root, name string) ([]string, error) {
	create := func(n string) (io.WriteCloser, error) { return root.Create(n) }
	return w.run(ctx, name, w.cfg.SplitSize, create)
}

// WriteTo writes a single cabinet to dst; WriterConfig.SplitSize is
// ignored.
func (w *Writer) WriteTo(ctx context.Context, dst io.Writer) error {
	used := false
	create := func(string) (io.WriteCloser, error) {
		if used {
			return nil, fmt.Errorf("cab: WriteTo needs more than one cabinet: %w", ErrLimit)
		}
		used = true
		return nopWriteCloser{dst}, nil
	}
	_, err := w.run(ctx, "cabinet.cab", 0, create)
	return err
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

func (w *Writer) run(ctx context.Context, first string, limit int64, create func(string) (io.WriteCloser, error)) ([]string, error) {
	if limit <= 0 {
		limit = 1<<32 - 1
	}
	enc, err := w.newEncoder()
	if err != nil {
		return nil, fmt.Errorf("cab: %w", err)
	}
	spool, err := os.CreateTemp(w.cfg.TempDir, "cab-spool-*")
	if err != nil {
		return nil, fmt.Errorf("cab: %w", err)
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	p := &packer{
		w: w, ctx: ctx, limit: limit, enc: enc, create: create, first: first,
		buf:    make([]byte, maxBlockUncomp),
		out:    make([]byte, 0, maxBlockComp),
		spool:  spool,
		spoolW: bufio.NewWriterSize(spool, 1<<20),
	}
	var pos int64
	for _, e := range w.entries {
		e.parts, e.folder = nil, nil
		p.starts = append(p.starts, pos)
		pos += e.size
	}
	p.newPart()
	if err := p.packAll(); err != nil {
		return p.names, err
	}
	return p.names, nil
}

func (p *packer) packAll() error {
	for i, e := range p.w.entries {
		if p.fol == nil || p.forceNew ||
			(p.folSize+e.size+maxBlockUncomp-1)/maxBlockUncomp > maxFolderBlocks {
			if err := p.newFolder(); err != nil {
				return err
			}
		}
		p.next = i + 1
		e.folder = p.fol
		e.off = p.folSize
		p.blockFiles = append(p.blockFiles, e)
		if err := p.w.copyFile(e, func(b []byte) error {
			for len(b) > 0 {
				if p.fill == 0 && (len(p.blockFiles) == 0 || p.blockFiles[len(p.blockFiles)-1] != e) {
					p.blockFiles = append(p.blockFiles, e)
				}
				n := copy(p.buf[p.fill:], b)
				p.fill += n
				p.stream += int64(n)
				b = b[n:]
				if p.fill == maxBlockUncomp {
					if err := p.flush(); err != nil {
						return err
					}
				}
			}
			return nil
		}); err != nil {
			return err
		}
		p.folSize += e.size
		if p.fol.closeAfter == e {
			p.forceNew = true
		}
	}
	if err := p.endFolder(); err != nil {
		return err
	}
	return p.writeOut(p.cur, "")
}

// newFolder ends the current folder and starts the next.
func (p *packer) newFolder() error {
	if err := p.endFolder(); err != nil {
		return err
	}
	p.enc.Reset()
	p.fol = &pfolder{idx: p.nfolders}
	p.nfolders++
	p.folSize = 0
	p.forceNew = false
	return nil
}

// endFolder writes the folder's last block and lists empty files left at
// its end.
func (p *packer) endFolder() error {
	if p.fol == nil {
		return nil
	}
	if err := p.flush(); err != nil {
		return err
	}
	if len(p.blockFiles) > 0 {
		p.addFolder(p.fol)
		for _, e := range p.blockFiles {
			if err := p.list(e); err != nil {
				return err
			}
		}
		p.blockFiles = p.blockFiles[:0]
	}
	return nil
}

// flush compresses and places the block being filled.
func (p *packer) flush() error {
	if p.fill == 0 {
		return nil
	}
	if err := p.ctx.Err(); err != nil {
		return err
	}
	out, err := p.enc.Encode(p.out[:0], p.buf[:p.fill])
	if err != nil {
		return fmt.Errorf("cab: folder %d: block %d: %w", p.fol.idx, p.fol.blocks, err)
	}
	if len(out) > maxBlockComp {
		return fmt.Errorf("cab: folder %d: block %d: compressed to %d bytes: %w", p.fol.idx, p.fol.blocks, len(out), ErrLimit)
	}
	ucb := p.fill
	p.fill = 0
	files := p.blockFiles
	p.blockFiles = make([]*wentry, 0, 4)
	p.fol.blocks++
	return p.place(out, ucb, files)
}

// reserve is the room to keep after a block so that the next block can
// start in the same cabinet: its header, one byte, a folder entry and the
// entries of every file that may start in it.
func (p *packer) reserve() int64 {
	r := int64(dataSize + 1 + folderSize)
	for i := p.next; i < len(p.starts) && p.starts[i] <= p.stream+maxBlockUncomp; i++ {
		r += fileCost(p.w.entries[i])
	}
	return r
}

// place puts a compressed block into the current cabinet, splitting it
// into the next cabinet when it does not fit.
func (p *packer) place(payload []byte, ucb int, files []*wentry) error {
	p.addFolder(p.fol)
	for _, e := range files {
		if err := p.list(e); err != nil {
			return err
		}
	}
	need := int64(dataSize + len(payload))
	if p.cur.used+need+p.reserve() <= p.limit {
		return p.writePiece(payload, ucb)
	}
	room := p.limit - p.cur.used - dataSize
	if room < 0 {
		return fmt.Errorf("cab: split size %d too small for the file table of %s: %w", p.limit, p.cur.name, ErrLimit)
	}
	room = min(room, int64(len(payload)-1))
	if err := p.writePiece(payload[:room], 0); err != nil {
		return err
	}
	fol := p.fol
	if fol.carried == nil {
		fol.carried = append([]*wentry(nil), files...)
		fol.closeAfter = files[len(files)-1]
	}
	prev := p.cur
	p.newPart()
	for _, e := range fol.carried {
		if err := p.list(e); err != nil {
			return err
		}
	}
	if err := p.writeOut(prev, p.cur.name); err != nil {
		return err
	}
	p.addFolder(fol)
	if err := p.writePiece(payload[room:], ucb); err != nil {
		return err
	}
	if p.cur.used+p.reserve() > p.limit {
		return fmt.Errorf("cab: split size %d too small for a block and the file table of %s: %w", p.limit, p.cur.name, ErrLimit)
	}
	return nil
}

func (p *packer) newPart() {
	idx := 0
	if p.cur != nil {
		idx = p.cur.idx + 1
	}
	cur := &ppart{idx: idx, name: p.w.cfg.PartName(p.first, idx+1)}
	cur.used = headerSize + int64(len(p.w.cfg.PartName(p.first, idx+2))+2)
	if idx > 0 {
		cur.prev = p.cur.name
		cur.used += int64(len(cur.prev) + 2)
	}
	p.cur = cur
}

func (p *packer) addFolder(f *pfolder) {
	if n := len(p.cur.folders); n > 0 && p.cur.folders[n-1].f == f {
		return
	}
	p.cur.folders = append(p.cur.folders, &partFolder{f: f, dataOff: p.spoolSize})
	p.cur.used += folderSize
}

func (p *packer) list(e *wentry) error {
	if n := len(e.parts); n > 0 && e.parts[n-1] == p.cur.idx {
		return nil
	}
	if len(p.cur.files) >= 65535 {
		return fmt.Errorf("cab: %s: more than 65535 files: %w", p.cur.name, ErrLimit)
	}
	e.parts = append(e.parts, p.cur.idx)
	p.cur.files = append(p.cur.files, e)
	p.cur.used += fileCost(e)
	return nil
}

// writePiece appends a CFDATA block (or part of a split one) to the spool.
func (p *packer) writePiece(payload []byte, ucb int) error {
	var h [dataSize]byte
	le := binary.LittleEndian
	le.PutUint16(h[4:], uint16(len(payload)))
	le.PutUint16(h[6:], uint16(ucb))
	le.PutUint32(h[0:], dataChecksum(payload, h[4:8]))
	if _, err := p.spoolW.Write(h[:]); err != nil {
		return fmt.Errorf("cab: spool: %w", err)
	}
	if _, err := p.spoolW.Write(payload); err != nil {
		return fmt.Errorf("cab: spool: %w", err)
	}
	pf := p.cur.folders[len(p.cur.folders)-1]
	pf.n++
	if pf.n > 65535 {
		return fmt.Errorf("cab: %s: folder %d: more than 65535 blocks: %w", p.cur.name, pf.f.idx, ErrLimit)
	}
	p.spoolSize += int64(dataSize + len(payload))
	p.cur.used += int64(dataSize + len(payload))
	return nil
}

// writeOut writes cabinet part (header, tables and the spooled data) and
// empties the spool. For a part continued by the next one it is called
// after the next part has listed the carried files, so that their flags
// are known.
func (p *packer) writeOut(part *ppart, next string) error {
	if err := p.spoolW.Flush(); err != nil {
		return fmt.Errorf("cab: spool: %w", err)
	}
	le := binary.LittleEndian
	var flags uint16
	var strs []byte
	if part.prev != "" {
		flags |= flagPrevCabinet
		strs = append(strs, part.prev...)
		strs = append(strs, 0, 0)
	}
	if next != "" {
		flags |= flagNextCabinet
		strs = append(strs, next...)
		strs = append(strs, 0, 0)
	}
	coffFiles := headerSize + len(strs) + folderSize*len(part.folders)
	dataStart := coffFiles
	for _, e := range part.files {
		dataStart += int(fileCost(e))
	}
	total := int64(dataStart) + p.spoolSize
	if total > 1<<32-1 {
		return fmt.Errorf("cab: %s: %d bytes: %w", part.name, total, ErrLimit)
	}
	h := p.hdr[:0]
	h = append(h, "MSCF"...)
	h = le.AppendUint32(h, 0)
	h = le.AppendUint32(h, uint32(total))
	h = le.AppendUint32(h, 0)
	h = le.AppendUint32(h, uint32(coffFiles))
	h = le.AppendUint32(h, 0)
	h = append(h, 3, 1)
	h = le.AppendUint16(h, uint16(len(part.folders)))
	h = le.AppendUint16(h, uint16(len(part.files)))
	h = le.AppendUint16(h, flags)
	h = le.AppendUint16(h, p.w.cfg.SetID)
	h = le.AppendUint16(h, uint16(part.idx))
	h = append(h, strs...)
	index := map[*pfolder]int{}
	for i, pf := range part.folders {
		index[pf.f] = i
		h = le.AppendUint32(h, uint32(int64(dataStart)+pf.dataOff))
		h = le.AppendUint16(h, uint16(pf.n))
		h = le.AppendUint16(h, p.w.cfg.Compression.field())
	}
	for _, e := range part.files {
		ifold := uint16(index[e.folder])
		first, last := e.parts[0], e.parts[len(e.parts)-1]
		switch {
		case first == last:
		case part.idx == first:
			ifold = ifoldContinuedToNext
		case part.idx == last:
			ifold = ifoldContinuedFromPrev
		default:
			ifold = ifoldContinuedPrevAndNext
		}
		h = le.AppendUint32(h, uint32(e.size))
		h = le.AppendUint32(h, uint32(e.off))
		h = le.AppendUint16(h, ifold)
		h = le.AppendUint16(h, e.date)
		h = le.AppendUint16(h, e.time)
		h = le.AppendUint16(h, e.attrs)
		h = append(h, e.name...)
		h = append(h, 0)
	}
	p.hdr = h
	out, err := p.create(part.name)
	if err != nil {
		return fmt.Errorf("cab: %w", err)
	}
	_, err = out.Write(h)
	if err == nil {
		_, err = io.Copy(out, io.NewSectionReader(p.spool, 0, p.spoolSize))
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cab: %s: %w", part.name, err)
	}
	p.names = append(p.names, part.name)
	if err := p.spool.Truncate(0); err != nil {
		return fmt.Errorf("cab: spool: %w", err)
	}
	if _, err := p.spool.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("cab: spool: %w", err)
	}
	p.spoolW.Reset(p.spool)
	p.spoolSize = 0
	return nil
}

// copyFile streams e's data to fn, checking its size.
func (w *Writer) copyFile(e *wentry, fn func([]byte) error) error {
	if e.size == 0 {
		return nil
	}
	rc, err := e.open()
	if err != nil {
		return fmt.Errorf("cab: %s: %w", e.name, err)
	}
	defer rc.Close()
	buf := make([]byte, 64<<10)
	var n int64
	for {
		k, err := rc.Read(buf)
		if k > 0 {
			n += int64(k)
			if n > e.size {
				return fmt.Errorf("cab: %s: file grew beyond %d bytes: %w", e.name, e.size, ErrFormat)
			}
			if err := fn(buf[:k]); err != nil {
				return err
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("cab: %s: %w", e.name, err)
		}
	}
	if n != e.size {
		return fmt.Errorf("cab: %s: read %d bytes, want %d: %w", e.name, n, e.size, ErrFormat)
	}
	return nil
}
