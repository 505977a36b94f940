package lzx

import (
	"errors"
	"fmt"
)

// Format constants from [MS-PATCH] section 2.
const (
	// MinWindowBits and MaxWindowBits bound the window sizes a cabinet may
	// declare: 2^15 (32 KiB) to 2^21 (2 MiB).
	MinWindowBits = 15
	MaxWindowBits = 21

	// FrameSize is the uncompressed size of every frame (CFDATA block) but
	// the last of a folder.
	FrameSize = 32768

	// MaxCompressedSize is the largest compressed payload of one CFDATA
	// block a cabinet allows; the encoder never exceeds it.
	MaxCompressedSize = FrameSize + 6144

	numChars         = 256
	minMatch         = 2
	maxMatch         = 257
	numPrimaryLens   = 7   // length headers 0..6 in the main symbol
	numSecondaryLens = 249 // symbols of the length tree
	pretreeSyms      = 20
	alignedSyms      = 8
	maxSlots         = 50
	maxMainSyms      = numChars + maxSlots*8
	maxCodeLen       = 16

	// lenSafety is the slack after each path length array: a run code may
	// run past the end of its range, as libmspack (and so cabextract)
	// tolerates; the excess lands here.
	lenSafety = 64

	e8MaxFrames  = 32768
	e8FileSize   = 12000000
	e8MinFrame   = 10
	blockInvalid = 0

	blockVerbatim     = 1
	blockAligned      = 2
	blockUncompressed = 3
)

var (
	// ErrCorrupt is returned when the compressed data is not a valid LZX
	// stream: a bad block type or Huffman tree, a match outside the window
	// or across a frame boundary, or input that ends too early.
	ErrCorrupt = errors.New("corrupt data")

	// ErrWindowBits is returned by NewDecoder and NewEncoder when the window
	// size is outside MinWindowBits..MaxWindowBits.
	ErrWindowBits = errors.New("window bits out of range")

	// ErrFrameSize is returned when a frame is larger than FrameSize, or
	// when a frame follows a short (final) frame of the same folder.
	ErrFrameSize = errors.New("invalid frame size")
)

// slotTables holds, per position slot, the number of extra offset bits and
// the base of the formatted offset (offset + 2).
type slotTables struct {
	extra [maxSlots]uint8
	base  [maxSlots]uint32
}

// slots is computed once and never written afterwards.
var slots = func() slotTables {
	var t slotTables
	var b uint32
	for i := range maxSlots {
		e := 0
		if i >= 4 {
			e = min((i-2)/2, 17)
		}
		t.extra[i] = uint8(e)
		t.base[i] = b
		b += 1 << e
	}
	return t
}()

// numPositionSlots returns the number of position slots for a window of
// 2^windowBits bytes ([MS-PATCH] 2.1.4.1).
func numPositionSlots(windowBits int) int {
	switch windowBits {
	case 20:
		return 42
	case 21:
		return 50
	default:
		return 2 * windowBits
	}
}

func checkWindowBits(windowBits int) error {
	if windowBits < MinWindowBits || windowBits > MaxWindowBits {
		return fmt.Errorf("lzx: window bits %d: %w", windowBits, ErrWindowBits)
	}
	return nil
}
