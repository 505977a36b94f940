package deviceapi

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Bounds on what the parsers accept, whatever the body size limit.
const (
	// MaxBodyBytes is the largest check-in or status report accepted; a
	// larger body is answered 413.
	MaxBodyBytes = 64 << 10
	// maxElements bounds the elements of one message; maxDepth its nesting.
	maxElements = 512
	maxDepth    = 8
	// maxTextBytes bounds one element's text or attribute value.
	maxTextBytes = 2048
)

// node is an element of a parsed message: its name, attributes, text (for
// leaf elements, trimmed) and child elements. Messages are small and
// bounded, so a tree is the simplest correct reading.
type node struct {
	name     string
	attrs    []xml.Attr
	text     string
	children []*node
}

// parseTree reads one XML document of at most maxElements elements nested at
// most maxDepth deep. Namespaces are ignored (local names only); comments,
// processing instructions and directives are skipped; an element may hold
// text or elements, not both. Anything after the root element other than
// white space, comments and processing instructions is an error.
func parseTree(data []byte) (*node, error) {
	if len(data) > MaxBodyBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(data), MaxBodyBytes)
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var (
		root  *node
		stack []*node
		text  []byte
		count int
	)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s", ErrMalformed, xmlReason(err))
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) == 0 && root != nil {
				return nil, fmt.Errorf("%w: a second root element <%s>", ErrMalformed, t.Name.Local)
			}
			if len(stack) >= maxDepth {
				return nil, fmt.Errorf("%w: elements nested more than %d deep", ErrMalformed, maxDepth)
			}
			if count++; count > maxElements {
				return nil, fmt.Errorf("%w: more than %d elements", ErrMalformed, maxElements)
			}
			n := &node{name: t.Name.Local}
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || a.Name.Local == "xmlns" {
					continue
				}
				if len(a.Value) > maxTextBytes {
					return nil, fmt.Errorf("%w: attribute %s of <%s> is longer than %d bytes", ErrMalformed, a.Name.Local, n.name, maxTextBytes)
				}
				n.attrs = append(n.attrs, xml.Attr{Name: xml.Name{Local: a.Name.Local}, Value: a.Value})
			}
			if len(stack) > 0 {
				parent := stack[len(stack)-1]
				if len(bytes.TrimSpace(text)) > 0 {
					return nil, fmt.Errorf("%w: <%s> holds both text and elements", ErrMalformed, parent.name)
				}
				parent.children = append(parent.children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
			text = text[:0]
		case xml.EndElement:
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if len(n.children) == 0 {
				n.text = string(bytes.TrimSpace(text))
			} else if len(bytes.TrimSpace(text)) > 0 {
				return nil, fmt.Errorf("%w: <%s> holds both text and elements", ErrMalformed, n.name)
			}
			text = text[:0]
		case xml.CharData:
			if len(stack) == 0 {
				if len(bytes.TrimSpace(t)) > 0 {
					return nil, fmt.Errorf("%w: text outside the root element", ErrMalformed)
				}
				continue
			}
			if len(text)+len(t) > maxTextBytes {
				return nil, fmt.Errorf("%w: the text of <%s> is longer than %d bytes", ErrMalformed, stack[len(stack)-1].name, maxTextBytes)
			}
			text = append(text, t...)
		case xml.Directive:
			// A DOCTYPE is allowed but never used: encoding/xml expands no
			// entities beyond the five predefined ones and fetches nothing.
		}
	}
	if root == nil {
		return nil, fmt.Errorf("%w: no root element", ErrMalformed)
	}
	return root, nil
}

// xmlReason turns an encoding/xml error into a short reason for the device.
func xmlReason(err error) string {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("XML syntax error on line %d: %s", se.Line, se.Msg)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "the XML ends before the root element is closed"
	}
	return "XML: " + err.Error()
}

// attr returns the value of the attribute named name and whether it is
// present.
func (n *node) attr(name string) (string, bool) {
	for _, a := range n.attrs {
		if a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

// fields collects the text of n's leaf children named in want, refusing a
// child that appears twice or, among them, one that has children. Unknown
// children are left to the caller (later protocol versions may add some).
func (n *node) fields(want ...string) (map[string]string, error) {
	out := make(map[string]string, len(want))
	for _, c := range n.children {
		for _, w := range want {
			if c.name != w {
				continue
			}
			if _, dup := out[w]; dup {
				return nil, fmt.Errorf("%w: <%s> appears twice in <%s>", ErrMalformed, w, n.name)
			}
			if len(c.children) > 0 {
				return nil, fmt.Errorf("%w: <%s> must hold text, not elements", ErrMalformed, w)
			}
			out[w] = c.text
		}
	}
	return out, nil
}

// child returns n's only child named name, or nil.
func (n *node) child(name string) (*node, error) {
	var found *node
	for _, c := range n.children {
		if c.name == name {
			if found != nil {
				return nil, fmt.Errorf("%w: <%s> appears twice in <%s>", ErrMalformed, name, n.name)
			}
			found = c
		}
	}
	return found, nil
}

// appendEscaped appends s to b escaped for XML text and attribute values.
// Characters XML cannot carry (controls other than tab, CR and LF, invalid
// UTF-8) become U+FFFD, so the output is always well-formed.
func appendEscaped(b []byte, s string) []byte {
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

// appendAttr appends ` name="value"`.
func appendAttr(b []byte, name, value string) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, '=', '"')
	b = appendEscaped(b, value)
	return append(b, '"')
}

// appendElem appends "<name>value</name>" on its own indented line.
func appendElem(b []byte, indent, name, value string) []byte {
	b = append(b, indent...)
	b = append(b, '<')
	b = append(b, name...)
	b = append(b, '>')
	b = appendEscaped(b, value)
	b = append(b, '<', '/')
	b = append(b, name...)
	return append(b, '>', '\n')
}

// printable checks a free-text field: at most max bytes, no control
// characters.
func printable(field, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%w: %s is longer than %d bytes", ErrMalformed, field, max)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == utf8.RuneError }) {
		return fmt.Errorf("%w: %s %q has a control character", ErrMalformed, field, s)
	}
	return nil
}

const xmlHeader = `<?xml version="1.0" encoding="utf-8"?>` + "\n"
