package devlogs

import (
	"fmt"
	"net/url"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameBytes is the longest sanitised name kept, in bytes; longer names
// are shortened before the extension.
const MaxNameBytes = 100

// maxRawName bounds the name parameter before any work is done on it.
const maxRawName = 4096

// maxExtBytes is the longest extension kept whole when a name is shortened.
const maxExtBytes = 16

// parse parses the query of an upload request.
func (h *Handler) parse(lim *limits, rawQuery string) (upload, error) {
	var up upload
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return up, fmt.Errorf("%w: %v", ErrQuery, err)
	}
	for k, v := range q {
		if len(v) > 1 {
			return up, fmt.Errorf("%w: %q given %d times", ErrQuery, k, len(v))
		}
	}
	typ, ok := lim.types[strings.ToLower(q.Get("type"))]
	if !ok {
		return up, fmt.Errorf("%w: %q; accepted: %s", ErrType, clip(q.Get("type")), strings.Join(lim.cfg.Types, ", "))
	}
	up.typ = typ
	name, err := sanitizeName(q.Get("name"))
	if err != nil {
		return up, err
	}
	up.name = name
	if ext := strings.ToLower(path.Ext(name)); !lim.exts[ext] {
		return up, fmt.Errorf("%w: %q; accepted: %s", ErrExtension, clip(name), strings.Join(lim.cfg.Extensions, " "))
	}
	if m := q.Get("mac"); m != "" {
		mac, err := parseMAC(m)
		if err != nil {
			return up, err
		}
		up.mac = mac
	}
	return up, nil
}

// clip shortens a client's value for an error message, quoted with %q.
func clip(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return s
}

// sanitizeName returns the stored form of a device's file name, or ErrName
// when nothing usable remains; see the package comment.
func sanitizeName(raw string) (string, error) {
	if raw == "" {
		return "", fmt.Errorf("%w: name is missing", ErrName)
	}
	if len(raw) > maxRawName {
		return "", fmt.Errorf("%w: name longer than %d bytes", ErrName, maxRawName)
	}
	if i := strings.LastIndexAny(raw, `/\`); i >= 0 {
		raw = raw[i+1:]
	}
	var b strings.Builder
	for _, r := range raw {
		switch {
		case r == utf8.RuneError:
			b.WriteByte('_') // invalid UTF-8, or U+FFFD itself
		case unicode.IsLetter(r), unicode.IsDigit(r), r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	name := strings.TrimRight(strings.TrimLeft(b.String(), "."), ".")
	if name == "" {
		return "", fmt.Errorf("%w: nothing usable in the name", ErrName)
	}
	return shorten(name, MaxNameBytes), nil
}

// shorten cuts name to at most max bytes, on a rune boundary, keeping its
// extension when that is short.
func shorten(name string, max int) string {
	if len(name) <= max {
		return name
	}
	ext := path.Ext(name)
	if len(ext) > maxExtBytes || len(ext) == len(name) {
		ext = ""
	}
	stem := name[:len(name)-len(ext)]
	n := max - len(ext)
	for n > 0 && !utf8.RuneStart(stem[n]) {
		n--
	}
	return strings.TrimRight(stem[:n], ".") + ext
}

// parseMAC returns a MAC address as 12 lower-case hex digits. It accepts
// the digits alone or in groups separated by one kind of ':', '-' or '.'.
func parseMAC(s string) (string, error) {
	bad := fmt.Errorf("%w: %q", ErrMAC, clip(s))
	if len(s) > 17 {
		return "", bad
	}
	sep := byte(0)
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
			b.WriteByte(c)
		case 'A' <= c && c <= 'F':
			b.WriteByte(c + 'a' - 'A')
		case c == ':' || c == '-' || c == '.':
			if sep != 0 && c != sep || i == 0 || i == len(s)-1 || s[i-1] == c {
				return "", bad
			}
			sep = c
		default:
			return "", bad
		}
	}
	if b.Len() != 12 {
		return "", bad
	}
	return b.String(), nil
}
