package quantum

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// This file holds a minimal cabinet reader and writer for the tests, until
// the cab package can be used: just enough to reach the CFDATA blocks of
// a folder, and to wrap test streams in a cabinet cabextract can read.

// Cabinet layout constants (MS-CAB).
const (
	cabHeaderSize  = 36
	cabFolderSize  = 8
	cabFileSize    = 16
	cabDataSize    = 8
	flagPrev       = 0x0001
	flagNext       = 0x0002
	flagReserve    = 0x0004
	compTypeMask   = 0x000F
	compQuantum    = 0x0002
	compWindowBits = 8 // bits 8..12 of typeCompress
)

type testCab struct {
	folders []testFolder
	files   []testFile
}

type testFolder struct {
	typeCompress uint16
	blocks       []testBlock
}

type testBlock struct {
	payload []byte
	size    int // uncompressed size
}

type testFile struct {
	name   string
	size   int64
	offset int64 // in the folder's uncompressed data
	folder int
}

func (f testFolder) quantum() bool { return f.typeCompress&compTypeMask == compQuantum }

func (f testFolder) windowBits() int { return int(f.typeCompress>>compWindowBits) & 0x1F }

var errShortCab = errors.New("cabinet truncated")

// parseTestCab reads a single cabinet (not a split set member's
// continuation blocks) from b.
func parseTestCab(b []byte) (*testCab, error) {
	if len(b) < cabHeaderSize || string(b[:4]) != "MSCF" {
		return nil, errors.New("not a cabinet")
	}
	le := binary.LittleEndian
	coffFiles := int(le.Uint32(b[16:]))
	nFolders := int(le.Uint16(b[26:]))
	nFiles := int(le.Uint16(b[28:]))
	flags := le.Uint16(b[30:])
	off := cabHeaderSize
	folderReserve, dataReserve := 0, 0
	if flags&flagReserve != 0 {
		if len(b) < off+4 {
			return nil, errShortCab
		}
		headerReserve := int(le.Uint16(b[off:]))
		folderReserve = int(b[off+2])
		dataReserve = int(b[off+3])
		off += 4 + headerReserve
	}
	skipString := func() error {
		i := bytes.IndexByte(b[min(off, len(b)):], 0)
		if i < 0 {
			return errShortCab
		}
		off += i + 1
		return nil
	}
	for _, f := range []uint16{flagPrev, flagNext} {
		if flags&f != 0 {
			if err := skipString(); err != nil {
				return nil, err
			}
			if err := skipString(); err != nil {
				return nil, err
			}
		}
	}
	cab := &testCab{}
	for i := 0; i < nFolders; i++ {
		if len(b) < off+cabFolderSize {
			return nil, errShortCab
		}
		start := int(le.Uint32(b[off:]))
		nBlocks := int(le.Uint16(b[off+4:]))
		folder := testFolder{typeCompress: le.Uint16(b[off+6:])}
		off += cabFolderSize + folderReserve
		p := start
		for j := 0; j < nBlocks; j++ {
			if p < 0 || len(b) < p+cabDataSize+dataReserve {
				return nil, fmt.Errorf("folder %d block %d: %w", i, j, errShortCab)
			}
			n := int(le.Uint16(b[p+4:]))
			size := int(le.Uint16(b[p+6:]))
			p += cabDataSize + dataReserve
			if len(b) < p+n {
				return nil, fmt.Errorf("folder %d block %d: %w", i, j, errShortCab)
			}
			folder.blocks = append(folder.blocks, testBlock{payload: b[p : p+n], size: size})
			p += n
		}
		cab.folders = append(cab.folders, folder)
	}
	off = coffFiles
	for i := 0; i < nFiles; i++ {
		if off < 0 || len(b) < off+cabFileSize {
			return nil, errShortCab
		}
		f := testFile{
			size:   int64(le.Uint32(b[off:])),
			offset: int64(le.Uint32(b[off+4:])),
			folder: int(le.Uint16(b[off+8:])),
		}
		off += cabFileSize
		name := off
		if err := skipString(); err != nil {
			return nil, err
		}
		f.name = string(b[name : off-1])
		cab.files = append(cab.files, f)
	}
	return cab, nil
}

// decodeFolder decodes every block of a Quantum folder, stopping at the
// first error; it returns what was decoded until then.
func decodeFolder(f testFolder) ([]byte, error) {
	out, _, err := decodeFolderOverrun(f)
	return out, err
}

// decodeFolderOverrun is decodeFolder that also reports whether the last
// match ran past the end of the folder's data.
func decodeFolderOverrun(f testFolder) (out []byte, overrun bool, err error) {
	d, err := NewDecoder(f.windowBits())
	if err != nil {
		return nil, false, err
	}
	for i, blk := range f.blocks {
		dst := make([]byte, blk.size)
		if err := d.Decode(dst, blk.payload); err != nil {
			return out, false, fmt.Errorf("block %d: %w", i, err)
		}
		out = append(out, dst...)
	}
	return out, d.matchLeft > 0, nil
}

// buildTestCab returns a one-folder cabinet holding one file, name, whose
// Quantum blocks are given.
func buildTestCab(name string, windowBits int, blocks []testBlock) []byte {
	le := binary.LittleEndian
	var size int
	for _, blk := range blocks {
		size += blk.size
	}
	filesAt := cabHeaderSize + cabFolderSize
	dataAt := filesAt + cabFileSize + len(name) + 1
	var b []byte
	b = append(b, "MSCF"...)
	b = le.AppendUint32(b, 0) // reserved1
	b = le.AppendUint32(b, 0) // cbCabinet, patched below
	b = le.AppendUint32(b, 0) // reserved2
	b = le.AppendUint32(b, uint32(filesAt))
	b = le.AppendUint32(b, 0) // reserved3
	b = append(b, 3, 1)       // version 1.3
	b = le.AppendUint16(b, 1) // cFolders
	b = le.AppendUint16(b, 1) // cFiles
	b = le.AppendUint16(b, 0) // flags
	b = le.AppendUint16(b, 0x5144)
	b = le.AppendUint16(b, 0) // iCabinet
	b = le.AppendUint32(b, uint32(dataAt))
	b = le.AppendUint16(b, uint16(len(blocks)))
	b = le.AppendUint16(b, uint16(compQuantum|windowBits<<compWindowBits))
	b = le.AppendUint32(b, uint32(size))
	b = le.AppendUint32(b, 0) // uoffFolderStart
	b = le.AppendUint16(b, 0) // iFolder
	b = le.AppendUint16(b, 0x5B54)
	b = le.AppendUint16(b, 0x6000)
	b = le.AppendUint16(b, 0x20) // archive
	b = append(b, name...)
	b = append(b, 0)
	for _, blk := range blocks {
		b = le.AppendUint32(b, 0) // no checksum
		b = le.AppendUint16(b, uint16(len(blk.payload)))
		b = le.AppendUint16(b, uint16(blk.size))
		b = append(b, blk.payload...)
	}
	le.PutUint32(b[8:], uint32(len(b)))
	return b
}
