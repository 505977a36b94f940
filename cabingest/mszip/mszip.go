// Package mszip implements MSZIP, the deflate-based compression of
// Microsoft cabinet folders ([MS-MCI] section 2).
//
// An MSZIP folder is a sequence of CFDATA blocks. Each block's payload is
// the two signature bytes "CK" followed by a complete deflate stream
// (RFC 1951) that decodes to at most 32768 bytes. The deflate stream of
// block n may refer back into the output of the blocks before it: the
// last 32 KiB of the folder's output is the preset dictionary of each
// block. A Decoder therefore carries the history from one Decode call to
// the next, and an Encoder uses the previous block as its dictionary;
// Reset starts a new folder.
//
// Both directions are implemented here rather than with compress/flate.
// Decoding works on whole slices (no per-byte interface calls), which
// makes it several times faster than compress/flate's streaming reader.
// For encoding, compress/flate writes a distance tree with a single one-bit code when a
// block uses one distance (or none), which RFC 1951 permits but
// libmspack's inflater (cabextract) rejects as an incomplete tree. The
// Encoder therefore does its own LZ77 matching against the 32 KiB history
// and emits fixed-Huffman blocks (no trees to get wrong), falling back to
// a stored block when that is smaller.
//
// Invariants: Decode produces exactly len(dst) bytes or fails, never
// reads outside src and never writes outside dst; a stream that would
// produce more than len(dst) bytes is an error.
package mszip

import (
	"errors"
	"fmt"
)

// MaxBlock is the largest uncompressed size of one MSZIP block.
const MaxBlock = 32768

// ErrFormat is returned when a block is not valid MSZIP: missing "CK"
// signature, corrupt deflate data, or output of the wrong length.
var ErrFormat = errors.New("mszip: invalid data")

// Decoder decodes the MSZIP blocks of one folder. The zero value is not
// usable; call NewDecoder.
type Decoder struct {
	win  []byte // history (win[:hist]) followed by the block being decoded
	hist int
	f    inflater
}

// NewDecoder returns a decoder positioned at the start of a folder.
func NewDecoder() *Decoder {
	return &Decoder{win: make([]byte, 2*MaxBlock)}
}

// Reset prepares the decoder for a new folder, forgetting the history.
func (d *Decoder) Reset() { d.hist = 0 }

// Decode decodes one block: src is the CFDATA payload ("CK" + deflate
// stream) and len(dst) the block's uncompressed size.
func (d *Decoder) Decode(dst, src []byte) error {
	if len(dst) > MaxBlock {
		return fmt.Errorf("%w: block of %d bytes exceeds %d", ErrFormat, len(dst), MaxBlock)
	}
	if len(src) < 2 || src[0] != 'C' || src[1] != 'K' {
		return fmt.Errorf("%w: missing CK signature", ErrFormat)
	}
	end := d.hist + len(dst)
	if err := d.f.inflate(d.win, d.hist, end, src[2:]); err != nil {
		return fmt.Errorf("%w: %v", ErrFormat, err)
	}
	copy(dst, d.win[d.hist:end])
	if end > MaxBlock {
		d.hist = copy(d.win, d.win[end-MaxBlock:end])
	} else {
		d.hist = end
	}
	return nil
}
