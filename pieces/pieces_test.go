package pieces

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func file(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>9)
	}
	return b
}

func TestComputeAndCheck(t *testing.T) {
	for _, n := range []int{0, 1, PieceSize - 1, PieceSize, PieceSize + 1, 3*PieceSize + 17} {
		data := file(n)
		l, err := Compute(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if l.FileSize != int64(n) || l.Count() != (n+PieceSize-1)/PieceSize {
			t.Fatalf("size %d: got size %d, %d pieces", n, l.FileSize, l.Count())
		}
		var joined []byte
		for i := range l.Count() {
			off, m := l.Range(i)
			piece := data[off : off+m]
			if err := l.Check(i, piece); err != nil {
				t.Errorf("size %d piece %d: %v", n, i, err)
			}
			bad := bytes.Clone(piece)
			bad[len(bad)/2] ^= 1
			if err := l.Check(i, bad); !errors.Is(err, ErrBadPiece) {
				t.Errorf("size %d piece %d flipped: got %v, want ErrBadPiece", n, i, err)
			}
			if err := l.Check(i, piece[:len(piece)-1]); !errors.Is(err, ErrBadPiece) {
				t.Errorf("size %d piece %d short: got %v, want ErrBadPiece", n, i, err)
			}
			joined = append(joined, piece...)
		}
		if !bytes.Equal(joined, data) {
			t.Errorf("size %d: ranges do not cover the file", n)
		}
		if err := l.Check(l.Count(), nil); !errors.Is(err, ErrBadPiece) {
			t.Errorf("size %d: piece past the end: got %v", n, err)
		}
		got, err := Parse(l.Marshal())
		if err != nil {
			t.Fatalf("size %d: Parse(Marshal) = %v", n, err)
		}
		if got.Digest() != l.Digest() || got.FileSize != l.FileSize || got.Count() != l.Count() {
			t.Errorf("size %d: round trip differs", n)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	good := string(func() []byte { l, _ := Compute(bytes.NewReader(file(PieceSize + 5))); return l.Marshal() }())
	h := strings.Split(good, "\n")
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"other header", strings.Replace(good, "opendus-pieces 1", "opendus-pieces 2", 1)},
		{"crlf", strings.ReplaceAll(good, "\n", "\r\n")},
		{"missing final newline", strings.TrimSuffix(good, "\n")},
		{"trailing blank line", good + "\n"},
		{"upper-case hex", strings.Replace(good, h[3], strings.ToUpper(h[3]), 1)},
		{"short hash", strings.Replace(good, h[3], h[3][:63], 1)},
		{"one piece missing", strings.Replace(good, h[4]+"\n", "", 1)},
		{"one piece too many", good + h[4] + "\n"},
		{"leading zero", strings.Replace(good, "size 262149", "size 0262149", 1)},
		{"negative size", strings.Replace(good, "size 262149", "size -1", 1)},
		{"other piece size", strings.Replace(good, "piece-size 262144", "piece-size 1024", 1)},
		{"huge size", strings.Replace(good, "size 262149", "size 99999999999999", 1)},
		{"too long", good + strings.Repeat("0", MaxEncodedSize)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse([]byte(tt.in)); !errors.Is(err, ErrBadList) {
				t.Errorf("Parse = %v, want ErrBadList", err)
			}
		})
	}
	if _, err := Parse([]byte(good)); err != nil {
		t.Errorf("Parse(good) = %v", err)
	}
}

func TestDigestNamesTheEncoding(t *testing.T) {
	l, _ := Compute(bytes.NewReader(file(10)))
	sum := sha256.Sum256(l.Marshal())
	if got := l.Digest(); got != hex.EncodeToString(sum[:]) {
		t.Errorf("Digest = %s", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range []int{0, 1, PieceSize + 1} {
		l, _ := Compute(bytes.NewReader(file(n)))
		f.Add(l.Marshal())
	}
	f.Add([]byte("opendus-pieces 1\nsize 1\npiece-size 262144\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrBadList) {
				t.Fatalf("error %v is not ErrBadList", err)
			}
			return
		}
		if !bytes.Equal(l.Marshal(), b) {
			t.Fatalf("accepted a non-canonical list")
		}
	})
}

func BenchmarkCompute(b *testing.B) {
	data := file(20 << 20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Compute(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
