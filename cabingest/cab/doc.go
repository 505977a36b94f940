// Package cab reads and writes Microsoft cabinet files ([MS-CAB]), the
// container in which UC desk phones and conference units receive firmware.
//
// # Format
//
// A cabinet starts with a CFHEADER ("MSCF", total size, offset of the file
// table, folder and file counts, flags, set ID and index, optional
// reserved-area sizes and, for cabinet sets, the names of the previous and
// next cabinets). An array of CFFOLDER entries follows, each giving the
// offset of the folder's first CFDATA block, its block count and its
// compression type (low nibble: 0 none, 1 MSZIP, 2 Quantum, 3 LZX; bits
// 8..12 the LZX or Quantum window size in bits). The CFFILE table lists each
// file's uncompressed size, its offset inside its folder's uncompressed
// stream, its folder index, DOS date, time and attributes and a
// NUL-terminated name. Each CFDATA block holds a checksum, its compressed
// and uncompressed sizes (at most 32768 uncompressed bytes) and the
// compressed payload; a folder is one compression stream across all of its
// blocks, so a file can only be produced by decoding its folder from the
// start.
//
// In a cabinet set the last folder of one cabinet continues as the first
// folder of the next. Files that span the boundary carry the folder indexes
// 0xFFFE (continued to next), 0xFFFD (continued from previous) or 0xFFFF
// (both), and the block at the boundary may be split: its first part, with
// an uncompressed size of 0, ends one cabinet and the rest starts the next.
// OpenSet presents a set as one cabinet, opened from any of its parts as
// cabextract does: from a later part it walks back by the previous-cabinet
// names to the first, then follows the next-cabinet names to the last.
// The names are looked up beside the named part (ignoring case, as
// cabextract does) through an os.Root, so a stored name such as
// "../x.cab" cannot reach outside it; the walk is bounded by
// Config.MaxParts and stops at a cabinet named twice.
//
// # Invariants
//
//   - Reading never panics, hangs or reads outside the given size, whatever
//     the input; every inconsistency is an error wrapping one of the
//     sentinel errors, naming the cabinet, folder, block or file.
//   - Memory is bounded independently of file and folder sizes: a file's
//     bytes are streamed while its folder is decoded, holding one input
//     block, one output block and the codec's window (LZX: up to 2 MiB).
//   - A block that decodes to more or fewer bytes than its header says, or
//     whose compressed size exceeds 32768+6144 bytes, is an error; so is a
//     checksum mismatch (a stored checksum of 0 means none).
//   - Limits in Config bound the number of files, name lengths and the total
//     uncompressed size, so a small cabinet cannot expand without bound.
//
// # Names
//
// Names with the _A_NAME_IS_UTF attribute are UTF-8; as in cabextract,
// invalid sequences become U+FFFD per byte (three- and four-byte sequences
// are accepted as cabextract does), and a decoded NUL, surrogate, U+FFFE,
// U+FFFF or four-byte sequence beyond U+10FFFF becomes one U+FFFD. Other names are kept as the stored bytes, exactly
// as cabextract writes them without its -e option: the code page of a
// name is not recorded, and guessing (CP437? CP1252? Shift-JIS?) would
// give names cabextract does not; such a File.Name may not be valid UTF-8.
// The file table is read right after the folder table, as cabextract
// does, not at the header's coffFiles (a cabinet where they differ hides
// files from one tool or the other).
// File.Name is the decoded name as stored, with backslashes. File.Path is
// the safe relative path used for extraction: both '\' and '/' separate
// components (cabinets come from Windows; cabextract differs here and keeps
// backslashes in some names), leading separators, empty components and "."
// are dropped, ".." becomes "xx" (like cabextract) and a name with nothing
// left becomes "x". Extraction (ExtractAll) goes through os.Root, so even a
// symlink planted in the target cannot redirect a write outside it.
//
// Names that cannot coexist after this mapping (a file "a\b" and a file
// "a") are refused: ExtractAll stops with the error. Cabinets hold no
// links, but the target directory may: a symlink where a file is to be
// written is replaced by the file, and a symlink leading out of the
// target is refused by os.Root.
//
// # Writing
//
// Writer compresses files (none, MSZIP or LZX with a 15..21-bit window)
// into one folder, starting a new one before the 65535-block limit, and
// spools the compressed blocks to a temporary file so that memory stays
// bounded. Names are stored with backslashes; names that are not ASCII are
// stored as UTF-8 with _A_NAME_IS_UTF. With WriterConfig.SplitSize the
// output is a cabinet set in the layout cabextract expects (see
// WriterConfig).
//
// # Embedded cabinets
//
// Open looks for the "MSCF" signature at offset 0 and, failing that, scans
// up to Config.MaxScan bytes (self-extracting executables) for a signature
// whose header is plausible (reserved fields zero, version 1.3, sizes and
// offsets inside the file, at least one folder and file) and parses
// completely; the first one that does is used. cabextract extracts every
// cabinet it finds in a file; Open uses only the first.
package cab
