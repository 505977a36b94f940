// Package pieces splits an update file into fixed-size pieces and names each
// piece by its SHA-256, so that a device fetching a file from untrusted
// relays (subnet peers, replicas, caches) can check every piece as it arrives
// and throw away only the bad one, instead of finding out at the end that
// the whole file is wrong.
//
// A piece list is itself a small file with one canonical encoding (Marshal),
// so it can be named by its own SHA-256 (Digest): signed update metadata
// names the list's digest, any relay may then serve the list, and the device
// checks it against the signed digest before it trusts a single piece hash.
//
// The encoding is text, one item per line:
//
//	opendus-pieces 1
//	size 20971520
//	piece-size 262144
//	<64 hex digits: SHA-256 of piece 0>
//	<64 hex digits: SHA-256 of piece 1>
//	...
//
// Every piece is PieceSize bytes but the last, which holds the rest (a file
// of size 0 has no pieces). Parse accepts only this exact form.
package pieces

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// PieceSize is the size of every piece but a file's last.
const PieceSize = 256 << 10

// MaxFileSize is the largest file a list describes (4 GiB, far above any
// phone image); it bounds what Parse accepts.
const MaxFileSize = 4 << 30

const header = "opendus-pieces 1"

// ErrBadPiece says a piece's bytes do not match its hash.
var ErrBadPiece = errors.New("piece does not match its SHA-256")

// ErrBadList says bytes are not a piece list.
var ErrBadList = errors.New("not a piece list")

// List is the piece list of one file.
type List struct {
	FileSize  int64
	PieceSize int64
	Hashes    [][sha256.Size]byte
}

// Compute reads r to its end and returns its piece list.
func Compute(r io.Reader) (List, error) {
	l := List{PieceSize: PieceSize}
	buf := make([]byte, PieceSize)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			l.FileSize += int64(n)
			if l.FileSize > MaxFileSize {
				return List{}, fmt.Errorf("pieces: file larger than %d bytes", int64(MaxFileSize))
			}
			l.Hashes = append(l.Hashes, sha256.Sum256(buf[:n]))
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return l, nil
		default:
			return List{}, fmt.Errorf("pieces: %w", err)
		}
	}
}

// Count is the number of pieces.
func (l List) Count() int { return len(l.Hashes) }

// Range returns the offset and length of piece i.
func (l List) Range(i int) (off, n int64) {
	off = int64(i) * l.PieceSize
	n = min(l.PieceSize, l.FileSize-off)
	return off, n
}

// Check says whether b is piece i.
func (l List) Check(i int, b []byte) error {
	if i < 0 || i >= len(l.Hashes) {
		return fmt.Errorf("pieces: piece %d of %d: %w", i, len(l.Hashes), ErrBadPiece)
	}
	if _, n := l.Range(i); int64(len(b)) != n {
		return fmt.Errorf("pieces: piece %d has %d bytes, want %d: %w", i, len(b), n, ErrBadPiece)
	}
	if sha256.Sum256(b) != l.Hashes[i] {
		return fmt.Errorf("pieces: piece %d: %w", i, ErrBadPiece)
	}
	return nil
}

// Marshal returns the list's canonical encoding.
func (l List) Marshal() []byte {
	b := make([]byte, 0, 64+len(l.Hashes)*(2*sha256.Size+1))
	b = append(b, header...)
	b = append(b, "\nsize "...)
	b = strconv.AppendInt(b, l.FileSize, 10)
	b = append(b, "\npiece-size "...)
	b = strconv.AppendInt(b, l.PieceSize, 10)
	b = append(b, '\n')
	for _, h := range l.Hashes {
		b = hex.AppendEncode(b, h[:])
		b = append(b, '\n')
	}
	return b
}

// Digest is the lower-case hex SHA-256 of the list's encoding: the name
// signed metadata gives the list.
func (l List) Digest() string {
	sum := sha256.Sum256(l.Marshal())
	return hex.EncodeToString(sum[:])
}

// MaxEncodedSize is the largest encoding of a list of a file of at most
// MaxFileSize bytes; Parse refuses anything longer before reading it.
const MaxEncodedSize = 128 + (MaxFileSize/PieceSize+1)*(2*sha256.Size+1)

// Parse reads a list in its canonical encoding. The piece size must be
// PieceSize: a list is only useful to a device that agrees on the ranges.
func Parse(b []byte) (List, error) {
	if len(b) > MaxEncodedSize {
		return List{}, fmt.Errorf("%w: %d bytes, at most %d", ErrBadList, len(b), MaxEncodedSize)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 128), 128)
	line := 0
	next := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		line++
		return sc.Text(), true
	}
	bad := func(format string, a ...any) (List, error) {
		return List{}, fmt.Errorf("%w: line %d: %s", ErrBadList, line, fmt.Sprintf(format, a...))
	}
	if s, ok := next(); !ok || s != header {
		return bad("want %q", header)
	}
	var l List
	for _, f := range []struct {
		key string
		v   *int64
	}{{"size ", &l.FileSize}, {"piece-size ", &l.PieceSize}} {
		s, ok := next()
		if !ok || len(s) <= len(f.key) || s[:len(f.key)] != f.key {
			return bad("want %q and a number", f.key)
		}
		n, err := strconv.ParseInt(s[len(f.key):], 10, 64)
		if err != nil || n < 0 || strconv.FormatInt(n, 10) != s[len(f.key):] {
			return bad("%q is not a canonical number", s[len(f.key):])
		}
		*f.v = n
	}
	if l.PieceSize != PieceSize {
		return bad("piece size %d, want %d", l.PieceSize, PieceSize)
	}
	if l.FileSize > MaxFileSize {
		return bad("file size %d above %d", l.FileSize, int64(MaxFileSize))
	}
	want := int((l.FileSize + l.PieceSize - 1) / l.PieceSize)
	l.Hashes = make([][sha256.Size]byte, 0, min(want, len(b)/(2*sha256.Size)+1))
	for {
		s, ok := next()
		if !ok {
			break
		}
		var h [sha256.Size]byte
		if len(s) != 2*sha256.Size || !isLowerHex(s) {
			return bad("a piece hash is 64 lower-case hex digits")
		}
		if _, err := hex.Decode(h[:], []byte(s)); err != nil {
			return bad("a piece hash is 64 lower-case hex digits")
		}
		l.Hashes = append(l.Hashes, h)
		if len(l.Hashes) > want {
			return bad("more than the %d pieces of a %d-byte file", want, l.FileSize)
		}
	}
	if err := sc.Err(); err != nil {
		return bad("%v", err)
	}
	if len(l.Hashes) != want {
		return bad("%d pieces, a %d-byte file has %d", len(l.Hashes), l.FileSize, want)
	}
	if !bytes.Equal(l.Marshal(), b) {
		return List{}, fmt.Errorf("%w: not in canonical form (line ends, trailing bytes)", ErrBadList)
	}
	return l, nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
