package audit

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Entry is what one line records; see the package comment for the fields.
type Entry struct {
	Time     time.Time     // when the response was complete (UTC, milliseconds in the file)
	Remote   string        // host:port of the client
	Listener string        // Internal or External
	User     string        // NTLM user, "" when anonymous
	Method   string        // HTTP method
	Path     string        // decoded request path
	Status   int           // HTTP status sent
	Bytes    int64         // response body bytes
	Duration time.Duration // handler time (microseconds in the file)
	Device   string        // device MAC, "" when unknown
}

// ErrSyntax is returned by ParseLine when a line is not an audit line.
var ErrSyntax = errors.New("audit: malformed line")

// numFields is the number of fields of a line.
const numFields = 10

const timeLayout = "2006-01-02T15:04:05.000Z"

// AppendLine appends e's line, ended by "\n", to b.
func AppendLine(b []byte, e *Entry) []byte {
	b = e.Time.UTC().AppendFormat(b, timeLayout)
	b = append(b, ' ')
	b = appendField(b, e.Remote)
	b = append(b, ' ')
	b = appendField(b, e.Listener)
	b = append(b, ' ')
	b = appendField(b, e.User)
	b = append(b, ' ')
	b = appendField(b, e.Method)
	b = append(b, ' ')
	b = appendField(b, e.Path)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.Bytes, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, max(0, e.Duration.Microseconds()), 10)
	b = append(b, ' ')
	b = appendField(b, e.Device)
	return append(b, '\n')
}

// ParseLine parses one line of a day file, with or without its "\n".
// Comment lines (starting with '#') are ErrSyntax too.
func ParseLine(line string) (Entry, error) {
	var e Entry
	line = strings.TrimSuffix(line, "\n")
	f := strings.Split(line, " ")
	if len(f) != numFields {
		return e, fmt.Errorf("%w: %d fields, want %d", ErrSyntax, len(f), numFields)
	}
	t, err := time.Parse(timeLayout, f[0])
	if err != nil || t.Format(timeLayout) != f[0] {
		return e, fmt.Errorf("%w: time %q", ErrSyntax, f[0])
	}
	e.Time = t
	var num [3]int64
	for i, s := range f[6:9] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || (s != "0" && s[0] == '0') || s[0] == '+' {
			return e, fmt.Errorf("%w: field %d: %q is not a number", ErrSyntax, 7+i, s)
		}
		num[i] = n
	}
	if num[0] > 999 || num[2] > int64(time.Duration(1<<63-1)/time.Microsecond) {
		return e, fmt.Errorf("%w: numbers out of range", ErrSyntax)
	}
	e.Status, e.Bytes, e.Duration = int(num[0]), num[1], time.Duration(num[2])*time.Microsecond
	for i, dst := range []*string{&e.Remote, &e.Listener, &e.User, &e.Method, &e.Path, &e.Device} {
		k := i + 1
		if i >= 5 {
			k = 9
		}
		v, err := parseField(f[k])
		if err != nil {
			return Entry{}, fmt.Errorf("%w: field %d: %v", ErrSyntax, k+1, err)
		}
		*dst = v
	}
	return e, nil
}

// parseField undoes appendField, refusing what appendField never writes,
// so that a parsed line formats back to itself.
func parseField(s string) (string, error) {
	if s == "-" {
		return "", nil
	}
	if s == "" {
		return "", errors.New("empty field")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) || unhex(s[i+1]) < 0 || unhex(s[i+2]) < 0 {
				return "", errors.New("bad escape")
			}
			if d := byte(unhex(s[i+1])<<4 | unhex(s[i+2])); safe[d] && !(d == '-' && s == "%2D") {
				return "", errors.New("needless escape")
			}
			i += 2
		case !safe[c]:
			return "", fmt.Errorf("raw byte %#x", c)
		}
	}
	return url.PathUnescape(s)
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// safe[b] is true for the bytes written as they are: printable ASCII
// except '%'. It is never written to.
var safe = func() (t [256]bool) {
	for b := 0x21; b <= 0x7e; b++ {
		t[b] = b != '%'
	}
	return t
}()

const hexDigits = "0123456789ABCDEF"

// appendField appends s escaped as a field: "-" when empty, bytes outside
// printable ASCII and '%' as %XX, and a lone "-" as %2D.
func appendField(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	if s == "-" {
		return append(b, "%2D"...)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if safe[c] {
			b = append(b, c)
		} else {
			b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	return b
}
