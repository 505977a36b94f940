package deviceproto

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// parseTree reads one message: a small, strict subset of XML 1.0, scanned
// in one pass over the bytes without reflection (encoding/xml costs more
// than everything else a check-in does). The subset:
//
//   - an optional XML declaration at the very start, version 1.0,
//     encoding UTF-8 (if named), standalone yes or no;
//   - elements with attributes quoted with " or ', separated by white
//     space; names of ASCII letters, digits, '.', '-' and '_' (not first:
//     a digit, '.' or '-') with at most one ':' inside (a namespace prefix,
//     ignored);
//   - character data with the five predefined entities and decimal or
//     hexadecimal character references; CDATA sections; comments (no
//     "--" inside); processing instructions other than the declaration,
//     which are skipped;
//   - text must be UTF-8 of XML characters; "\r\n" and "\r" read as "\n",
//     as XML prescribes; "]]>" only inside CDATA.
//
// A DOCTYPE or any other declaration is refused, so there are no entities
// to expand and nothing to fetch. Every document it accepts, encoding/xml
// accepts too and reads the same way (a differential fuzz test checks it);
// it refuses some that encoding/xml accepts. The builder enforces the size
// limits. Errors wrap ErrMalformed and give the line.
func parseTree(data []byte) (*node, error) {
	if len(data) > MaxBodyBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(data), MaxBodyBytes)
	}
	var (
		names [maxDepth]string
		attrs [8]xml.Attr
		text  [256]byte
		stack [maxDepth]*node
		btext [256]byte
	)
	s := scanner{data: data, names: names[:0], attrs: attrs[:0], text: text[:0]}
	b := builder{stack: stack[:0], text: btext[:0]}
	if err := s.scan(&b); err != nil {
		return nil, err
	}
	return b.finish()
}

type scanner struct {
	data  []byte
	pos   int
	names []string // open elements' raw names, to match end tags
	attrs []xml.Attr
	text  []byte // decoded character data of the current run
}

// errorf returns a syntax error at the current position.
func (s *scanner) errorf(format string, args ...any) error {
	line := 1 + bytes.Count(s.data[:min(s.pos, len(s.data))], []byte{'\n'})
	return fmt.Errorf("%w: XML syntax error on line %d: %s", ErrMalformed, line, fmt.Sprintf(format, args...))
}

func (s *scanner) scan(b *builder) error {
	if bytes.HasPrefix(s.data, []byte("<?xml")) && len(s.data) > 5 && isSpace(s.data[5]) {
		if err := s.declaration(); err != nil {
			return err
		}
	}
	for s.pos < len(s.data) {
		if s.data[s.pos] != '<' {
			if err := s.charData(); err != nil {
				return err
			}
			if err := b.chars(s.text); err != nil {
				return err
			}
			continue
		}
		rest := s.data[s.pos:]
		switch {
		case bytes.HasPrefix(rest, []byte("</")):
			if err := s.endTag(); err != nil {
				return err
			}
			if err := b.end(); err != nil {
				return err
			}
		case bytes.HasPrefix(rest, []byte("<!--")):
			if err := s.comment(); err != nil {
				return err
			}
		case bytes.HasPrefix(rest, []byte("<![CDATA[")):
			if err := s.cdata(); err != nil {
				return err
			}
			if len(s.names) == 0 {
				return s.errorf("CDATA outside the root element")
			}
			if err := b.chars(s.text); err != nil {
				return err
			}
		case bytes.HasPrefix(rest, []byte("<!")):
			return s.errorf("declarations such as <!DOCTYPE are not accepted")
		case bytes.HasPrefix(rest, []byte("<?")):
			if err := s.procInst(); err != nil {
				return err
			}
		default:
			local, empty, err := s.startTag()
			if err != nil {
				return err
			}
			if err := b.start(local, s.attrs); err != nil {
				return err
			}
			if empty {
				s.names = s.names[:len(s.names)-1]
				if err := b.end(); err != nil {
					return err
				}
			}
		}
	}
	if len(s.names) > 0 {
		return s.errorf("the XML ends before <%s> is closed", s.names[len(s.names)-1])
	}
	return nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (s *scanner) skipSpace() bool {
	start := s.pos
	for s.pos < len(s.data) && isSpace(s.data[s.pos]) {
		s.pos++
	}
	return s.pos > start
}

// name reads a name at the current position.
func (s *scanner) name() (string, bool) {
	start := s.pos
	colon := -1
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case c >= '0' && c <= '9', c == '.', c == '-':
			if s.pos == start || s.pos == colon+1 {
				return "", false
			}
		case c == ':':
			if colon >= 0 || s.pos == start {
				return "", false
			}
			colon = s.pos
		default:
			goto done
		}
		s.pos++
	}
done:
	if s.pos == start || colon == s.pos-1 {
		return "", false
	}
	return intern(s.data[start:s.pos]), true
}

// intern returns the protocol's element and attribute names without
// allocating; other names are copied.
func intern(b []byte) string {
	switch string(b) {
	case "DeviceUpdateRequest":
		return "DeviceUpdateRequest"
	case "DeviceUpdateResponse":
		return "DeviceUpdateResponse"
	case "DeviceStatusReport":
		return "DeviceStatusReport"
	case "DeviceType":
		return "DeviceType"
	case "MAC":
		return "MAC"
	case "Serial":
		return "Serial"
	case "Vendor":
		return "Vendor"
	case "Model":
		return "Model"
	case "Revision":
		return "Revision"
	case "Locale":
		return "Locale"
	case "User":
		return "User"
	case "Modules":
		return "Modules"
	case "Module":
		return "Module"
	case "FileName":
		return "FileName"
	case "Version":
		return "Version"
	case "Timestamp":
		return "Timestamp"
	case "protocol":
		return "protocol"
	case "State":
		return "State"
	case "TargetVersion":
		return "TargetVersion"
	case "version":
		return "version"
	case "encoding":
		return "encoding"
	}
	return string(b)
}

// splitName splits a prefixed name into prefix and local part.
func splitName(n string) xml.Name {
	for i := 0; i < len(n); i++ {
		if n[i] == ':' {
			return xml.Name{Space: n[:i], Local: n[i+1:]}
		}
	}
	return xml.Name{Local: n}
}

// startTag reads <name attr="value" ...> or <name .../> and pushes the
// name; s.attrs holds the attributes.
func (s *scanner) startTag() (local string, empty bool, err error) {
	s.pos++ // <
	n, ok := s.name()
	if !ok {
		return "", false, s.errorf("expected an element name after <")
	}
	s.attrs = s.attrs[:0]
	for {
		sp := s.skipSpace()
		if s.pos >= len(s.data) {
			return "", false, s.errorf("the XML ends inside <%s>", n)
		}
		switch s.data[s.pos] {
		case '>':
			s.pos++
			s.names = append(s.names, n)
			return splitName(n).Local, false, nil
		case '/':
			if s.pos+1 >= len(s.data) || s.data[s.pos+1] != '>' {
				return "", false, s.errorf("expected /> in <%s>", n)
			}
			s.pos += 2
			s.names = append(s.names, n)
			return splitName(n).Local, true, nil
		}
		if !sp {
			return "", false, s.errorf("expected white space before an attribute in <%s>", n)
		}
		an, ok := s.name()
		if !ok {
			return "", false, s.errorf("expected an attribute name in <%s>", n)
		}
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != '=' {
			return "", false, s.errorf("attribute %s without = in <%s>", an, n)
		}
		s.pos++
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' && s.data[s.pos] != '\'' {
			return "", false, s.errorf("unquoted value of attribute %s in <%s>", an, n)
		}
		q := s.data[s.pos]
		s.pos++
		end := bytes.IndexByte(s.data[s.pos:], q)
		if end < 0 {
			return "", false, s.errorf("unterminated value of attribute %s in <%s>", an, n)
		}
		raw := s.data[s.pos : s.pos+end]
		if bytes.IndexByte(raw, '<') >= 0 {
			return "", false, s.errorf("unescaped < in the value of attribute %s", an)
		}
		for _, a := range s.attrs {
			// Names with at most one inner colon split one way only, so
			// equal parts mean equal names.
			if a.Name == splitName(an) {
				return "", false, s.errorf("attribute %s appears twice in <%s>", an, n)
			}
		}
		if err := s.decode(raw, false); err != nil {
			return "", false, err
		}
		s.pos += end + 1
		s.attrs = append(s.attrs, xml.Attr{Name: splitName(an), Value: string(s.text)})
	}
}

// endTag reads </name> and checks it closes the open element.
func (s *scanner) endTag() error {
	s.pos += 2
	n, ok := s.name()
	if !ok {
		return s.errorf("expected an element name after </")
	}
	s.skipSpace()
	if s.pos >= len(s.data) || s.data[s.pos] != '>' {
		return s.errorf("invalid characters between </%s and >", n)
	}
	s.pos++
	if len(s.names) == 0 {
		return s.errorf("unexpected end element </%s>", n)
	}
	if open := s.names[len(s.names)-1]; open != n {
		return s.errorf("element <%s> closed by </%s>", open, n)
	}
	s.names = s.names[:len(s.names)-1]
	return nil
}

// charData reads text up to the next '<' (or the end) into s.text.
func (s *scanner) charData() error {
	end := bytes.IndexByte(s.data[s.pos:], '<')
	if end < 0 {
		end = len(s.data) - s.pos
	}
	raw := s.data[s.pos : s.pos+end]
	if bytes.Contains(raw, []byte("]]>")) {
		return s.errorf("unescaped ]]> outside CDATA")
	}
	if err := s.decode(raw, false); err != nil {
		return err
	}
	s.pos += end
	return nil
}

// cdata reads <![CDATA[...]]> into s.text.
func (s *scanner) cdata() error {
	s.pos += len("<![CDATA[")
	end := bytes.Index(s.data[s.pos:], []byte("]]>"))
	if end < 0 {
		return s.errorf("unterminated CDATA section")
	}
	if err := s.decode(s.data[s.pos:s.pos+end], true); err != nil {
		return err
	}
	s.pos += end + 3
	return nil
}

// comment skips <!-- ... -->.
func (s *scanner) comment() error {
	s.pos += len("<!--")
	end := bytes.Index(s.data[s.pos:], []byte("--"))
	if end < 0 {
		return s.errorf("unterminated comment")
	}
	if s.pos+end+2 >= len(s.data) || s.data[s.pos+end+2] != '>' {
		return s.errorf(`"--" inside a comment`)
	}
	s.pos += end + 3
	return nil
}

// procInst skips a processing instruction other than the declaration.
func (s *scanner) procInst() error {
	s.pos += 2
	target, ok := s.name()
	if !ok {
		return s.errorf("expected a target name after <?")
	}
	if len(target) == 3 && (target[0]|0x20) == 'x' && (target[1]|0x20) == 'm' && (target[2]|0x20) == 'l' {
		return s.errorf("an XML declaration is allowed only at the start")
	}
	if s.pos < len(s.data) && !isSpace(s.data[s.pos]) && !bytes.HasPrefix(s.data[s.pos:], []byte("?>")) {
		return s.errorf("invalid characters after <?%s", target)
	}
	end := bytes.Index(s.data[s.pos:], []byte("?>"))
	if end < 0 {
		return s.errorf("unterminated processing instruction")
	}
	if !utf8.Valid(s.data[s.pos : s.pos+end]) {
		return s.errorf("invalid UTF-8")
	}
	s.pos += end + 2
	return nil
}

// declaration reads <?xml version="1.0" encoding="utf-8" standalone="yes"?>
// at the start: version required and 1.0, the others optional, in that
// order.
func (s *scanner) declaration() error {
	s.pos = len("<?xml")
	params := [...]string{"version", "encoding", "standalone"}
	next := 0
	for {
		sp := s.skipSpace()
		if bytes.HasPrefix(s.data[s.pos:], []byte("?>")) {
			s.pos += 2
			if next == 0 {
				return s.errorf("the XML declaration has no version")
			}
			return nil
		}
		if !sp {
			return s.errorf("malformed XML declaration")
		}
		n, ok := s.name()
		if !ok {
			return s.errorf("malformed XML declaration")
		}
		i := next
		for i < len(params) && params[i] != n {
			i++
		}
		if i == len(params) || (next == 0 && i != 0) {
			return s.errorf("unexpected %q in the XML declaration", n)
		}
		next = i + 1
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != '=' {
			return s.errorf("malformed XML declaration")
		}
		s.pos++
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' && s.data[s.pos] != '\'' {
			return s.errorf("malformed XML declaration")
		}
		q := s.data[s.pos]
		end := bytes.IndexByte(s.data[s.pos+1:], q)
		if end < 0 {
			return s.errorf("malformed XML declaration")
		}
		v := string(s.data[s.pos+1 : s.pos+1+end])
		s.pos += end + 2
		switch n {
		case "version":
			if v != "1.0" {
				return s.errorf("XML version %q; only 1.0 is supported", v)
			}
		case "encoding":
			if len(v) != 5 || (v[0]|0x20) != 'u' || (v[1]|0x20) != 't' || (v[2]|0x20) != 'f' || v[3] != '-' || v[4] != '8' {
				return s.errorf("encoding %q; only UTF-8 is accepted", v)
			}
		case "standalone":
			if v != "yes" && v != "no" {
				return s.errorf("standalone=%q, want yes or no", v)
			}
		}
	}
}

// decode puts raw character data, decoded, into s.text: entity and
// character references resolved (not in CDATA), "\r\n" and "\r" as "\n",
// and every character checked to be valid UTF-8 and allowed in XML.
func (s *scanner) decode(raw []byte, cdata bool) error {
	s.text = s.text[:0]
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\r':
			s.text = append(s.text, '\n')
			i++
			if i < len(raw) && raw[i] == '\n' {
				i++
			}
		case c == '&' && !cdata:
			semi := bytes.IndexByte(raw[i:], ';')
			if semi < 0 {
				return s.errorf("invalid character entity (no semicolon)")
			}
			ref := raw[i+1 : i+semi]
			r, ok := entity(ref)
			if !ok {
				return s.errorf("invalid character entity &%s;", ref)
			}
			s.text = utf8.AppendRune(s.text, r)
			i += semi + 1
		case c < utf8.RuneSelf:
			if c < 0x20 && c != '\t' && c != '\n' {
				return s.errorf("illegal character code %U", rune(c))
			}
			s.text = append(s.text, c)
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				return s.errorf("invalid UTF-8")
			}
			if !isXMLChar(r) {
				return s.errorf("illegal character code %U", r)
			}
			s.text = append(s.text, raw[i:i+size]...)
			i += size
		}
	}
	return nil
}

// entity resolves a reference's name: lt, gt, amp, apos, quot, #N, #xH.
func entity(ref []byte) (rune, bool) {
	switch string(ref) {
	case "lt":
		return '<', true
	case "gt":
		return '>', true
	case "amp":
		return '&', true
	case "apos":
		return '\'', true
	case "quot":
		return '"', true
	}
	if len(ref) < 2 || ref[0] != '#' {
		return 0, false
	}
	digits, base := ref[1:], 10
	if digits[0] == 'x' {
		digits, base = digits[1:], 16
	}
	if len(digits) == 0 || len(digits) > 8 {
		return 0, false
	}
	for _, d := range digits {
		if !(d >= '0' && d <= '9' || base == 16 && (d >= 'a' && d <= 'f' || d >= 'A' && d <= 'F')) {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(string(digits), base, 32)
	if err != nil || !isXMLChar(rune(n)) {
		return 0, false
	}
	return rune(n), true
}

// isXMLChar reports whether r is a Char of XML 1.0 (section 2.2).
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}
