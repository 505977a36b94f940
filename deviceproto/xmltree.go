package deviceproto

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/opendus/opendus/firmware"
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

// builder assembles the tree of one message from a tokenizer's events and
// enforces the limits: at most maxElements elements nested at most
// maxDepth deep, at most maxTextBytes of text per element or attribute,
// one root element, no text outside it, and no element holding both text
// and elements. Namespaces are ignored (local names only; xmlns attributes
// are dropped).
type builder struct {
	root  *node
	stack []*node
	text  []byte
	count int
	slab  []node // nodes are taken from here, a few allocations per message
}

// newNode returns a node from the slab.
func (b *builder) newNode(name string) *node {
	if len(b.slab) == cap(b.slab) {
		b.slab = make([]node, 0, 16)
	}
	b.slab = append(b.slab, node{name: name})
	return &b.slab[len(b.slab)-1]
}

// start opens an element; space and local are its name's prefix and local
// part.
func (b *builder) start(local string, attrs []xml.Attr) error {
	if len(b.stack) == 0 && b.root != nil {
		return fmt.Errorf("%w: a second root element <%s>", ErrMalformed, local)
	}
	if len(b.stack) >= maxDepth {
		return fmt.Errorf("%w: elements nested more than %d deep", ErrMalformed, maxDepth)
	}
	if b.count++; b.count > maxElements {
		return fmt.Errorf("%w: more than %d elements", ErrMalformed, maxElements)
	}
	n := b.newNode(local)
	for _, a := range attrs {
		if a.Name.Space == "xmlns" || a.Name.Local == "xmlns" {
			continue
		}
		if len(a.Value) > maxTextBytes {
			return fmt.Errorf("%w: attribute %s of <%s> is longer than %d bytes", ErrMalformed, a.Name.Local, n.name, maxTextBytes)
		}
		n.attrs = append(n.attrs, xml.Attr{Name: xml.Name{Local: a.Name.Local}, Value: a.Value})
	}
	if len(b.stack) > 0 {
		parent := b.stack[len(b.stack)-1]
		if len(bytes.TrimSpace(b.text)) > 0 {
			return fmt.Errorf("%w: <%s> holds both text and elements", ErrMalformed, parent.name)
		}
		if parent.children == nil {
			parent.children = make([]*node, 0, 8)
		}
		parent.children = append(parent.children, n)
	} else {
		b.root = n
	}
	b.stack = append(b.stack, n)
	b.text = b.text[:0]
	return nil
}

// end closes the innermost element; the tokenizer has checked its name.
func (b *builder) end() error {
	n := b.stack[len(b.stack)-1]
	b.stack = b.stack[:len(b.stack)-1]
	if len(n.children) == 0 {
		n.text = string(bytes.TrimSpace(b.text))
	} else if len(bytes.TrimSpace(b.text)) > 0 {
		return fmt.Errorf("%w: <%s> holds both text and elements", ErrMalformed, n.name)
	}
	b.text = b.text[:0]
	return nil
}

// chars adds character data, already decoded.
func (b *builder) chars(t []byte) error {
	if len(b.stack) == 0 {
		if len(bytes.TrimSpace(t)) > 0 {
			return fmt.Errorf("%w: text outside the root element", ErrMalformed)
		}
		return nil
	}
	if len(b.text)+len(t) > maxTextBytes {
		return fmt.Errorf("%w: the text of <%s> is longer than %d bytes", ErrMalformed, b.stack[len(b.stack)-1].name, maxTextBytes)
	}
	b.text = append(b.text, t...)
	return nil
}

// finish returns the tree once the input has ended.
func (b *builder) finish() (*node, error) {
	if len(b.stack) > 0 {
		return nil, fmt.Errorf("%w: the XML ends before <%s> is closed", ErrMalformed, b.stack[len(b.stack)-1].name)
	}
	if b.root == nil {
		return nil, fmt.Errorf("%w: no root element", ErrMalformed)
	}
	return b.root, nil
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

// fields collects the text of n's leaf children named in want into the
// matching elements of out, refusing a child that appears twice or, among
// them, one that has children. Unknown children are left to the caller
// (later protocol versions may add some).
func (n *node) fields(want []string, out []string) error {
	var seen uint64
	for _, c := range n.children {
		for i, w := range want {
			if c.name != w {
				continue
			}
			if seen&(1<<i) != 0 {
				return fmt.Errorf("%w: <%s> appears twice in <%s>", ErrMalformed, w, n.name)
			}
			seen |= 1 << i
			if len(c.children) > 0 {
				return fmt.Errorf("%w: <%s> must hold text, not elements", ErrMalformed, w)
			}
			out[i] = c.text
		}
	}
	return nil
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

// plainXML[c] says an ASCII byte c is written as it is by appendEscaped.
var plainXML = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = !strings.ContainsRune(`&<>"'`, rune(c))
	}
	return t
}()

// appendEscaped appends s to b escaped for XML text and attribute values.
// Characters XML cannot carry (controls other than tab, CR and LF, invalid
// UTF-8) become U+FFFD, so the output is always well-formed.
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		// The bytes written as they are go in one append: most values
		// (MACs, versions, names, URLs) are nothing else.
		j := i
		for j < len(s) && plainXML[s[j]] {
			j++
		}
		b = append(b, s[i:j]...)
		if i = j; i == len(s) {
			break
		}
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
	if !firmware.Printable(s) || strings.ContainsRune(s, utf8.RuneError) {
		return fmt.Errorf("%w: %s %q has a control character", ErrMalformed, field, s)
	}
	return nil
}

const xmlHeader = `<?xml version="1.0" encoding="utf-8"?>` + "\n"
