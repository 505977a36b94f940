package lzx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// A minimal, test-only reader and writer of single-cabinet CAB files
// ([MS-CAB]), enough to feed CFDATA blocks to the decoder and to wrap the
// encoder's output for cabextract.

type testCab struct {
	folders []testFolder
	files   []testFile
}

type testFolder struct {
	typeCompress uint16
	blocks       []testBlock
}

type testBlock struct {
	data    []byte
	uncompr int
}

type testFile struct {
	name   string
	folder int
	offset uint32
	size   uint32
}

var errTestCab = errors.New("bad cabinet")

func parseTestCab(b []byte) (*testCab, error) {
	rd := func(off, n int) ([]byte, error) {
		if off < 0 || n < 0 || off+n > len(b) {
			return nil, fmt.Errorf("%w: short at %d", errTestCab, off)
		}
		return b[off : off+n], nil
	}
	h, err := rd(0, 36)
	if err != nil {
		return nil, err
	}
	if string(h[:4]) != "MSCF" {
		return nil, fmt.Errorf("%w: signature", errTestCab)
	}
	le := binary.LittleEndian
	coffFiles := int(le.Uint32(h[16:]))
	nFolders := int(le.Uint16(h[26:]))
	nFiles := int(le.Uint16(h[28:]))
	flags := le.Uint16(h[30:])
	off := 36
	var cbFolder, cbData int
	if flags&4 != 0 {
		r, err := rd(off, 4)
		if err != nil {
			return nil, err
		}
		cbHeader := int(le.Uint16(r))
		cbFolder, cbData = int(r[2]), int(r[3])
		off += 4 + cbHeader
	}
	for _, f := range []uint16{1, 2} {
		if flags&f != 0 {
			for range 2 {
				i := bytes.IndexByte(b[min(off, len(b)):], 0)
				if i < 0 {
					return nil, fmt.Errorf("%w: string", errTestCab)
				}
				off += i + 1
			}
		}
	}
	c := &testCab{}
	for range nFolders {
		r, err := rd(off, 8)
		if err != nil {
			return nil, err
		}
		off += 8 + cbFolder
		fo := testFolder{typeCompress: le.Uint16(r[6:])}
		p := int(le.Uint32(r))
		for range int(le.Uint16(r[4:])) {
			dh, err := rd(p, 8)
			if err != nil {
				return nil, err
			}
			cb := int(le.Uint16(dh[4:]))
			data, err := rd(p+8+cbData, cb)
			if err != nil {
				return nil, err
			}
			fo.blocks = append(fo.blocks, testBlock{data: data, uncompr: int(le.Uint16(dh[6:]))})
			p += 8 + cbData + cb
		}
		c.folders = append(c.folders, fo)
	}
	off = coffFiles
	for range nFiles {
		r, err := rd(off, 16)
		if err != nil {
			return nil, err
		}
		i := bytes.IndexByte(b[min(off+16, len(b)):], 0)
		if i < 0 {
			return nil, fmt.Errorf("%w: file name", errTestCab)
		}
		c.files = append(c.files, testFile{
			name:   string(b[off+16 : off+16+i]),
			folder: int(le.Uint16(r[8:])),
			offset: le.Uint32(r[4:]),
			size:   le.Uint32(r),
		})
		off += 16 + i + 1
	}
	return c, nil
}

// decodeFolder decodes every block of an LZX folder.
func decodeFolder(fo testFolder) ([]byte, error) {
	if fo.typeCompress&0xF != 3 {
		return nil, fmt.Errorf("not LZX: %#x", fo.typeCompress)
	}
	d, err := NewDecoder(int(fo.typeCompress >> 8 & 0x1F))
	if err != nil {
		return nil, err
	}
	var out []byte
	for i, blk := range fo.blocks {
		dst := make([]byte, blk.uncompr)
		if err := d.Decode(dst, blk.data); err != nil {
			return out, fmt.Errorf("block %d: %w", i, err)
		}
		out = append(out, dst...)
	}
	return out, nil
}

// writeTestCab writes a single-folder LZX cabinet holding one file whose
// compressed blocks are blocks (with uncompressed sizes sizes).
func writeTestCab(path string, windowBits int, name string, blocks [][]byte, sizes []int) error {
	le := binary.LittleEndian
	total := 0
	for _, s := range sizes {
		total += s
	}
	hdr := make([]byte, 36)
	copy(hdr, "MSCF")
	fileOff := 36 + 8
	dataOff := fileOff + 16 + len(name) + 1
	size := dataOff
	for _, b := range blocks {
		size += 8 + len(b)
	}
	le.PutUint32(hdr[8:], uint32(size))
	le.PutUint32(hdr[16:], uint32(fileOff))
	hdr[24], hdr[25] = 3, 1
	le.PutUint16(hdr[26:], 1)
	le.PutUint16(hdr[28:], 1)
	out := hdr
	fo := make([]byte, 8)
	le.PutUint32(fo, uint32(dataOff))
	le.PutUint16(fo[4:], uint16(len(blocks)))
	le.PutUint16(fo[6:], uint16(3|windowBits<<8))
	out = append(out, fo...)
	fi := make([]byte, 16)
	le.PutUint32(fi, uint32(total))
	le.PutUint16(fi[10:], 0x5A21) // 2025-01-01
	le.PutUint16(fi[14:], 0x20)
	out = append(out, fi...)
	out = append(out, name...)
	out = append(out, 0)
	for i, b := range blocks {
		dh := make([]byte, 8) // checksum 0: not checked
		le.PutUint16(dh[4:], uint16(len(b)))
		le.PutUint16(dh[6:], uint16(sizes[i]))
		out = append(out, dh...)
		out = append(out, b...)
	}
	return os.WriteFile(path, out, 0o644)
}
