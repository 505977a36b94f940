package deviceproto

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

// appendEscapedRef is appendEscaped one byte or rune at a time, as it was
// written first: the reference its faster form must match.
func appendEscapedRef(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '&':
				b = append(b, "&amp;"...)
			case c == '<':
				b = append(b, "&lt;"...)
			case c == '>':
				b = append(b, "&gt;"...)
			case c == '"':
				b = append(b, "&quot;"...)
			case c == '\'':
				b = append(b, "&apos;"...)
			case c == '\t':
				b = append(b, "&#x9;"...)
			case c == '\n':
				b = append(b, "&#xA;"...)
			case c == '\r':
				b = append(b, "&#xD;"...)
			case c < 0x20 || c == 0x7f:
				b = append(b, "\uFFFD"...)
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == 0xFFFE || r == 0xFFFF {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}

var escapeCases = []string{
	"", "00-04-F2-00-00-01", "4.0.7577.4400", "https://ucupdates-r2.contoso.com:443/DeviceUpdateFiles_Int/a/",
	"a&b", "<x>", `"q"`, "it's", "\t\n\r", "\x00\x01\x1f\x7f", "ÿ", "日本語", "\xff\xfe", "a\xc3", "\uFFFE\uFFFF",
	"plain then & then <more> and 'end'", "&&&&", "é&é",
}

func TestAppendEscaped(t *testing.T) {
	for _, s := range escapeCases {
		prefix := []byte("<x a=")
		got := appendEscaped(bytes.Clone(prefix), s)
		want := appendEscapedRef(bytes.Clone(prefix), s)
		if !bytes.Equal(got, want) {
			t.Errorf("appendEscaped(%q) = %q, want %q", s, got, want)
		}
	}
}

// FuzzAppendEscaped checks appendEscaped against its reference on any
// string: what the service writes into answers and the simulator into
// check-ins and reports.
func FuzzAppendEscaped(f *testing.F) {
	for _, s := range escapeCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := appendEscaped(nil, s), appendEscapedRef(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendEscaped(%q) = %q, want %q", s, got, want)
		}
	})
}

func BenchmarkAppendEscaped(b *testing.B) {
	s := "https://ucupdates-r2.contoso.com:443/DeviceUpdateFiles_Int/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4400/"
	buf := make([]byte, 0, 256)
	b.Run("now", func(b *testing.B) {
		for b.Loop() {
			buf = appendEscaped(buf[:0], s)
		}
	})
	b.Run("byte-by-byte", func(b *testing.B) {
		for b.Loop() {
			buf = appendEscapedRef(buf[:0], s)
		}
	})
}
