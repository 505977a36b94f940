package cab

import (
	"strings"
	"unicode/utf8"
)

// decodeName converts a stored name to UTF-8: see Names in the package
// documentation.
func decodeName(raw []byte, isUTF bool) string {
	var sb strings.Builder
	sb.Grow(len(raw) + 8)
	if !isUTF {
		return string(raw)
	}
	for i := 0; i < len(raw); {
		c := raw[i]
		if c < 0x80 {
			sb.WriteByte(c)
			i++
			continue
		}
		r, n := decodeLenient(raw[i:])
		if n == 0 {
			sb.WriteRune(utf8.RuneError)
			i++
			continue
		}
		if r == 0 {
			r = utf8.RuneError
		}
		if utf8.ValidRune(r) && r != 0xFFFE && r != 0xFFFF {
			sb.WriteRune(r)
		} else {
			sb.WriteRune(utf8.RuneError)
		}
		i += n
	}
	return sb.String()
}

// decodeLenient decodes one multi-byte UTF-8 sequence the way cabextract
// does: two-byte sequences must not be overlong (lead 0xC2..0xDF), three-
// and four-byte ones are accepted when their continuation bytes are valid,
// even if overlong. It returns n == 0 for an invalid sequence.
func decodeLenient(p []byte) (rune, int) {
	cont := func(k int) bool { return len(p) > k && p[k]&0xC0 == 0x80 }
	switch c := p[0]; {
	case c >= 0xC2 && c <= 0xDF && cont(1):
		return rune(c&0x1F)<<6 | rune(p[1]&0x3F), 2
	case c >= 0xE0 && c <= 0xEF && cont(1) && cont(2):
		return rune(c&0x0F)<<12 | rune(p[1]&0x3F)<<6 | rune(p[2]&0x3F), 3
	case c >= 0xF0 && c <= 0xF4 && cont(1) && cont(2) && cont(3):
		r := rune(c&0x07)<<18 | rune(p[1]&0x3F)<<12 | rune(p[2]&0x3F)<<6 | rune(p[3]&0x3F)
		if r > utf8.MaxRune {
			return utf8.RuneError, 4 // one U+FFFD for the sequence, as cabextract
		}
		return r, 4
	}
	return 0, 0
}

// SafePath turns a decoded cabinet name into a relative slash-separated
// path that cannot leave the extraction directory: '\' and '/' both
// separate components; empty components, "." and leading separators are
// dropped; ".." becomes "xx"; NUL bytes become U+FFFD; an empty result
// becomes "x".
func SafePath(name string) string {
	name = strings.ReplaceAll(name, "\x00", "\uFFFD")
	parts := strings.FieldsFunc(name, func(r rune) bool { return r == '/' || r == '\\' })
	out := parts[:0]
	for _, p := range parts {
		switch p {
		case ".":
			continue
		case "..":
			p = "xx"
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return "x"
	}
	return strings.Join(out, "/")
}
