package cab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Every error returned by this package wraps one of them.
var (
	// ErrFormat is returned when the input is not a well-formed cabinet
	// or a compressed stream is corrupt.
	ErrFormat = errors.New("invalid cabinet")
	// ErrChecksum is returned when a CFDATA block's checksum does not match.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrLimit is returned when a cabinet exceeds a limit of Config.
	ErrLimit = errors.New("limit exceeded")
	// ErrUnsupported is returned for compression types or parameters this
	// package cannot decode or encode.
	ErrUnsupported = errors.New("unsupported")
	// ErrIncomplete is returned when a file continues into a cabinet of
	// its set that was not opened or could not be found.
	ErrIncomplete = errors.New("cabinet set is incomplete")
)

// Compression types (CFFOLDER typeCompress, low nibble).
const (
	CompressNone    = 0
	CompressMSZIP   = 1
	CompressQuantum = 2
	CompressLZX     = 3
)

// Header flags.
const (
	flagPrevCabinet    = 0x0001
	flagNextCabinet    = 0x0002
	flagReservePresent = 0x0004
)

// Special folder indexes of CFFILE.iFolder.
const (
	ifoldContinuedFromPrev    = 0xFFFD
	ifoldContinuedToNext      = 0xFFFE
	ifoldContinuedPrevAndNext = 0xFFFF
)

// File attributes (CFFILE.attribs).
const (
	AttrReadOnly  = 0x01
	AttrHidden    = 0x02
	AttrSystem    = 0x04
	AttrArchive   = 0x20
	AttrExec      = 0x40
	AttrNameIsUTF = 0x80
)

// Sizes and limits from [MS-CAB].
const (
	headerSize     = 36
	folderSize     = 8
	fileSize       = 16
	dataSize       = 8
	maxBlockUncomp = 32768
	maxBlockComp   = 32768 + 6144
	maxNameBytes   = 256 // CB_MAX_FILENAME, NUL excluded in practice
	maxHeaderResv  = 60000
)

// Compression describes a folder's compression: its type and, for LZX and
// Quantum, the window size in bits.
type Compression struct {
	Type   int // CompressNone, CompressMSZIP, CompressQuantum or CompressLZX
	Window int // window bits for LZX (15..21) and Quantum (10..21)
}

// String returns "none", "mszip", "lzx:21", "quantum:20" or "unknown(N)".
func (c Compression) String() string {
	switch c.Type {
	case CompressNone:
		return "none"
	case CompressMSZIP:
		return "mszip"
	case CompressQuantum:
		return fmt.Sprintf("quantum:%d", c.Window)
	case CompressLZX:
		return fmt.Sprintf("lzx:%d", c.Window)
	}
	return fmt.Sprintf("unknown(%d)", c.Type)
}

func compressionOf(typ uint16) Compression {
	return Compression{Type: int(typ & 0x0F), Window: int(typ>>8) & 0x1F}
}

func (c Compression) field() uint16 {
	return uint16(c.Type&0x0F) | uint16(c.Window&0x1F)<<8
}

// Checksum computes the CFDATA checksum of p, continuing from seed, with
// the algorithm of [MS-CAB] 2.5 (CSUMCompute): little-endian 32-bit words
// XORed together, a trailing 1..3 bytes packed most significant first.
func Checksum(p []byte, seed uint32) uint32 {
	// XOR is associative: fold 8 bytes at a time, then the halves.
	var x uint64
	for len(p) >= 8 {
		x ^= binary.LittleEndian.Uint64(p)
		p = p[8:]
	}
	sum := seed ^ uint32(x) ^ uint32(x>>32)
	if len(p) >= 4 {
		sum ^= binary.LittleEndian.Uint32(p)
		p = p[4:]
	}
	var t uint32
	switch len(p) {
	case 3:
		t = uint32(p[0])<<16 | uint32(p[1])<<8 | uint32(p[2])
	case 2:
		t = uint32(p[0])<<8 | uint32(p[1])
	case 1:
		t = uint32(p[0])
	}
	return sum ^ t
}

// dataChecksum returns the checksum stored in a CFDATA header for the
// payload and the header's cbData/cbUncomp fields.
func dataChecksum(payload []byte, sizes []byte) uint32 {
	return Checksum(sizes, Checksum(payload, 0))
}

// dosTime converts a DOS date and time to a time.Time in UTC (cabinets do
// not record a zone). An invalid date yields the zero Time.
func dosTime(date, tm uint16) time.Time {
	y := int(date>>9) + 1980
	mo := int(date>>5) & 0x0F
	d := int(date) & 0x1F
	h := int(tm >> 11)
	mi := int(tm>>5) & 0x3F
	s := int(tm&0x1F) * 2
	if mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59 {
		return time.Time{}
	}
	return time.Date(y, time.Month(mo), d, h, mi, s, 0, time.UTC)
}

// toDOSTime converts t to DOS date and time, clamped to 1980..2107.
func toDOSTime(t time.Time) (date, tm uint16) {
	if t.IsZero() {
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	y := t.Year()
	switch {
	case y < 1980:
		return 1<<5 | 1, 0
	case y > 2107:
		return 127<<9 | 12<<5 | 31, 23<<11 | 59<<5 | 29
	}
	date = uint16(y-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day())
	tm = uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2)
	return date, tm
}
