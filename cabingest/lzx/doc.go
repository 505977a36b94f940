// Package lzx implements the LZX compression format as it is used inside
// Microsoft cabinet files (CAB folders with typeCompress 3), decoding and
// encoding one CFDATA block at a time.
//
// # Format
//
// LZX, as specified in [MS-PATCH] section 2 (which corrects the older
// description shipped with the Cabinet SDK), is an LZ77 scheme with a sliding
// window of 2^windowBits bytes (windowBits 15..21, 32 KiB..2 MiB) followed by
// static Huffman coding. The compressed stream is read as 16-bit
// little-endian words, most significant bit first.
//
// The stream opens with one bit that enables Intel E8 call translation and,
// when set, a 32-bit "translation size". Then come blocks. Each block header
// holds a 3-bit type (1 verbatim, 2 aligned offset, 3 uncompressed) and a
// 24-bit uncompressed size:
//
//   - A verbatim block carries the path lengths of the main tree (256
//     literals plus 8 length headers per position slot) and of the length
//     tree (249 symbols), each sent as deltas modulo 17 against the previous
//     block's lengths through a 20-symbol pretree whose symbols 17, 18 and 19
//     code runs of zeros and of equal values.
//   - An aligned offset block additionally sends an 8-symbol aligned offset
//     tree (3-bit lengths) which codes the low 3 bits of match offsets whose
//     position slot has 3 or more extra bits.
//   - An uncompressed block realigns to 16 bits (1..16 padding bits), stores
//     the repeated offsets R0, R1 and R2 as three 32-bit little-endian words,
//     the raw bytes, and one padding byte when its size is odd.
//
// A match names its offset either through one of the three most recently
// used offsets (position slots 0, 1, 2) or through a position slot plus extra
// bits; lengths run from 2 to 257 bytes.
//
// # Frames and cabinets
//
// The output is cut into frames of 32768 bytes; in a cabinet each CFDATA
// block holds exactly one frame (only the last of a folder may be shorter)
// and the bitstream realigns to 16 bits after every frame. Blocks may span
// frames, but no match may cross a frame boundary. Everything else carries
// over from frame to frame within a folder: the window, R0..R2, the previous
// path lengths, the remaining size of the current block and the E8 state.
// [Decoder.Decode] and [Encoder.Encode] therefore take one frame per call and
// Reset starts a new folder.
//
// # E8 translation
//
// When enabled, the encoder rewrites the 32-bit operand after every 0xE8
// byte (an x86 CALL) from a relative to an absolute address before
// compression, and the decoder undoes it after decompression, per frame: the
// last 10 bytes of a frame are never translated, frames of 10 bytes or less
// are left alone, and translation stops after 32768 frames. The encoder
// always enables it, with a translation size of 12000000 (the size is only
// a bound on the addresses translated; it need not be the file size): on
// x86 code it turns calls to the same function into identical bytes, and
// elsewhere it costs next to nothing.
//
// # Decoder
//
// Huffman codes are decoded through tables (12-bit first level plus
// secondary tables for longer codes) from a 64-bit bit buffer; a frame is
// decoded into the window and copied out, then E8 translation is undone in
// the copy. Trees must be complete prefix codes; an all-zero length or
// aligned tree is accepted until a symbol is read from it, an empty main
// tree is an error. Behaviour on malformed but accepted input follows
// libmspack (cabextract), for example runs of path lengths that overrun
// their range.
//
// # Encoder
//
// The encoder keeps the last window of input (after E8 translation) and
// finds matches with binary trees keyed by a hash of the next 4 bytes (as
// in LZMA's BT4), bounded in depth; positions closer than a maximum match
// to the end of the data are searched but inserted only when the next
// frame has arrived, so that every insertion compares the same length and
// the trees stay ordered. In long runs without matches (compressed or
// random data) the finder steps over more and more positions. A
// near-optimal parser chooses literals, matches and repeated-offset
// matches for the whole frame by dynamic programming over bit costs taken
// from the Huffman path lengths of the previous frame (the first frame is
// parsed twice, the second time with the costs of the first parse). The
// parser runs on the calling goroutine while the match finder, on another,
// works ahead of it through the frame.
// Each frame becomes one block: verbatim or aligned offset (whichever codes
// the offsets' low bits cheaper), or uncompressed when that is smaller.
// Trees are length-limited to 16 bits (the pretree to 15, the aligned tree
// to 7) and sent as deltas through the pretree with run-length codes.
//
// # Safety
//
// The decoder treats its input as untrusted: corrupt data ends in an error
// wrapping [ErrCorrupt], never in a panic, an endless loop or an access
// outside its buffers. After an error the decoder stays failed until Reset.
package lzx
