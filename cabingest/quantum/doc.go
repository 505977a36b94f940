// Package quantum decodes Quantum, David Stafford's LZ77 + arithmetic
// coding compressor, as Microsoft cabinets use it (compression type 2; the
// window size, 2^10 to 2^21 bytes, is in bits 8..12 of the folder's
// typeCompress).
//
// Microsoft never published a specification of Quantum; this package
// follows the public prose descriptions of the format (Matthew Russotto's
// notes, and the comments of libmspack, the reference decoder cabextract
// uses). The stream is:
//
//   - A sequence of frames, each decoding to exactly 32768 bytes (FrameSize)
//     except the last of a folder. In a cabinet one CFDATA block carries one
//     frame. No literal or match may cross a frame's end.
//   - Each frame starts a fresh arithmetic decoder: 16-bit registers
//     H = 0xFFFF, L = 0, C = the next 16 bits of input. Bits are read
//     most-significant first, in byte order.
//   - After a frame's last byte the input is realigned to a byte boundary
//     and bytes are skipped up to and including a 0xFF byte. Cabinet
//     writers pad blocks with up to four zero bytes, and the cabinet reader
//     appends a 0xFF trailer to every block's payload; this package does so
//     itself, so Decode takes the payload as stored.
//   - Symbols come from nine adaptive models: the selector model (7
//     symbols), four literal models (64 byte values each: 0x00-0x3F,
//     0x40-0x7F, 0x80-0xBF, 0xC0-0xFF), three position-slot models for
//     matches of length 3, 4 and 5 or more (min(24, 2w), min(36, 2w) and
//     2w slots for window bits w) and the length-slot model (27 slots).
//     Selector 0..3 picks a literal model; 4 and 5 are matches of length 3
//     and 4; 6 is a match whose length slot comes first.
//   - A slot is followed by its extra bits, read raw from the same bit
//     stream: position slot s has base 0,1,2,3,4,6,8,12,... and
//     max(0, (s-2)/2) extra bits; the match offset is base+extra+1. Length
//     slot s (0..25) has max(0, (s-2)/4) extra bits, slot 26 is 254 with
//     none; the match length is base+extra+5.
//   - A model keeps its symbols sorted by rank with cumulative
//     frequencies; each decoded symbol gains 8. When the total exceeds
//     3800 the model is rescaled: usually the cumulative frequencies are
//     halved (kept strictly decreasing); the 4th rescale, and every 50th
//     after it, instead halves each frequency rounding up and re-sorts the
//     symbols by decreasing frequency with an exchange sort whose
//     (in)stability is part of the format.
//
// Input ends where it ends for the reference decoder (libmspack, behind
// cabextract), which reads a folder's payloads as one stream, each followed
// by its 0xFF, 2 bytes at a time and ahead of need, and supplies 2 zero
// bytes after the last: a truncated stream fails here exactly when it fails
// there. Two differences are deliberate: a match reaching before the start
// of the folder's data is an error here (the reference copies whatever its
// window holds); and a block other than the last whose frame needs more
// input than the block holds fails here, where the reference reads on into
// the next block's bytes (a stream broken either way). Like the reference,
// the decoder accepts a last match that runs past the end of the folder's
// data: it cannot tell the last block, and the bytes beyond are never
// asked for.
//
// Invariants the decoder enforces: every match refers to bytes already
// decoded in the current folder and within the window; nothing crosses a
// frame end; input is consumed in a bounded way, so corrupt data ends in
// an error wrapping ErrCorrupt, never a panic or an endless loop. Memory is
// the window plus a few hundred bytes of tables (and, for blocks that end
// in the middle of a frame, their unread input).
//
// State carries over between the blocks of one folder (window, models,
// and the arithmetic decoder when a block ends inside a frame); Reset
// starts a new folder.
package quantum
