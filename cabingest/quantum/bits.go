package quantum

import (
	"encoding/binary"
	"errors"
)

// trailerByte is what the cabinet reader appends to every block's payload
// so that the decoder can find the end of a frame's padding.
const trailerByte = 0xFF

// padBytes is how many zero bytes a read may take beyond the trailer: the
// arithmetic decoder looks up to 16 bits ahead of what it has decoded, and
// the reference decoder supplies 2 zero bytes past the end of its input.
const padBytes = 2

// refBufferBits is the width of the reference decoder's bit buffer, which
// it fills 16 bits at a time.
const refBufferBits = 32

// maxBacklog bounds the unread input a block may leave to the next one
// (only when a block ends inside a frame).
const maxBacklog = 1 << 17

// errExhausted is returned by the bit reader when the input, its trailer
// and the padding are used up.
var errExhausted = errors.New("compressed data ends early")

// bitReader reads bits most-significant first from a logical stream:
// backlog (unread input of earlier blocks), then the current payload, the
// 0xFF trailer and at most padBytes zero bytes. Bytes are fetched whole,
// so the bit buffer always ends on a byte boundary of the stream.
//
// Where the input runs out is decided as the reference decoder (libmspack,
// behind cabextract) decides it, so that both accept the same truncated
// streams: it reads its input 2 bytes at a time, ahead of need, and fails
// when a pair reaches beyond the folder's payloads, their trailers and 2
// zero bytes. The reader keeps count of the bytes the reference would have
// fetched (refFetched) against the bits used (used) and the bytes it was
// given (given).
type bitReader struct {
	buf     uint64 // the low n bits are unread, oldest first
	n       uint
	backlog []byte
	bpos    int
	src     []byte
	spos    int
	tail    int    // bytes fetched past src: 1 is the trailer, then padding
	spare   []byte // reused to build the next backlog

	given      int64 // payload and trailer bytes of the folder so far
	refFetched int64 // bytes the reference decoder would have read
	used       int64 // bits consumed
}

// start begins a block whose payload is src.
func (br *bitReader) start(src []byte) {
	br.src = src
	br.spos = 0
	br.tail = 0
	br.given += int64(len(src)) + 1
}

// reset forgets all input.
func (br *bitReader) reset() {
	br.buf, br.n = 0, 0
	br.backlog = br.backlog[:0]
	br.bpos = 0
	br.src, br.spos, br.tail = nil, 0, 0
	br.given, br.refFetched, br.used = 0, 0, 0
}

// refLeft is the fill of the reference decoder's bit buffer.
func (br *bitReader) refLeft() int64 { return 8*br.refFetched - br.used }

// refNeed fills the reference decoder's bit buffer up to at least k bits.
func (br *bitReader) refNeed(k int64) error {
	for br.refLeft() < k {
		if err := br.refPair(); err != nil {
			return err
		}
	}
	return nil
}

// refPair has the reference decoder read 2 more bytes. It fails where the
// reference would run out of input if this is the folder's last block;
// otherwise the reference would read on into the next block, which only a
// stream that is already broken needs.
func (br *bitReader) refPair() error {
	if br.refFetched+2 > br.given+padBytes {
		return errExhausted
	}
	br.refFetched += 2
	return nil
}

// finish keeps the block's unread bytes (and its trailer, if not yet
// read) for the next block, and lets go of src.
func (br *bitReader) finish() error {
	rest := len(br.backlog) - br.bpos + len(br.src) - br.spos
	if br.tail == 0 {
		rest++
	}
	if rest > maxBacklog {
		return errors.New("more than 128 KiB of input left unread")
	}
	next := br.spare[:0]
	next = append(next, br.backlog[br.bpos:]...)
	next = append(next, br.src[br.spos:]...)
	if br.tail == 0 {
		next = append(next, trailerByte)
	}
	br.spare = br.backlog[:0]
	br.backlog = next
	br.bpos = 0
	br.src, br.spos, br.tail = nil, 0, 0
	return nil
}

// fetch appends the next byte of the stream to the bit buffer.
func (br *bitReader) fetch() error {
	var b byte
	switch {
	case br.bpos < len(br.backlog):
		b = br.backlog[br.bpos]
		br.bpos++
	case br.spos < len(br.src):
		b = br.src[br.spos]
		br.spos++
	case br.tail == 0:
		b = trailerByte
		br.tail++
	case br.tail <= padBytes:
		b = 0
		br.tail++
	default:
		return errExhausted
	}
	br.buf = br.buf<<8 | uint64(b)
	br.n += 8
	return nil
}

// bit reads one bit.
func (br *bitReader) bit() (uint32, error) {
	if err := br.refNeed(1); err != nil {
		return 0, err
	}
	if br.n == 0 {
		if err := br.refill(1); err != nil {
			return 0, err
		}
	}
	br.n--
	br.used++
	return uint32(br.buf>>br.n) & 1, nil
}

// bits reads k <= 16 bits as an unsigned number, first bit most
// significant, as a run of single bits or one 16-bit read.
func (br *bitReader) bits(k uint) (uint32, error) {
	if err := br.refNeed(int64(k)); err != nil {
		return 0, err
	}
	return br.take(k)
}

// extra reads k <= 24 extra bits of a slot. The reference reads them in
// runs, first topping up its buffer by 2 bytes whenever it holds 16 bits
// or less.
func (br *bitReader) extra(k uint) (uint32, error) {
	left, have := int64(k), br.refLeft()
	for left > 0 {
		if have <= refBufferBits-16 {
			if err := br.refPair(); err != nil {
				return 0, err
			}
			have += 16
		}
		run := min(left, have)
		left -= run
		have -= run
	}
	return br.take(k)
}

// take reads k <= 24 bits.
func (br *bitReader) take(k uint) (uint32, error) {
	if br.n < k {
		if err := br.refill(k); err != nil {
			return 0, err
		}
	}
	br.n -= k
	br.used += int64(k)
	return uint32(br.buf>>br.n) & (1<<k - 1), nil
}

// refill fetches bytes until at least k <= 24 bits are buffered; from the
// payload it takes as many whole bytes as fit at once.
func (br *bitReader) refill(k uint) error {
	if br.bpos >= len(br.backlog) && len(br.src)-br.spos >= 8 {
		nb := (64 - br.n) / 8
		next := binary.BigEndian.Uint64(br.src[br.spos:]) >> (64 - 8*nb)
		br.buf = br.buf<<(8*nb) | next
		br.n += 8 * nb
		br.spos += int(nb)
		return nil
	}
	for br.n < k {
		if err := br.fetch(); err != nil {
			return err
		}
	}
	return nil
}

// align drops the bits left of the current byte.
func (br *bitReader) align() {
	drop := br.n % 8
	br.n -= drop
	br.used += int64(drop)
}
