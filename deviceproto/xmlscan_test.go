package deviceproto

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// parseTreeStd is the reference for parseTree: the same builder fed by
// encoding/xml's strict tokenizer.
func parseTreeStd(data []byte) (*node, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var b builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errors.Join(ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			err = b.start(t.Name.Local, t.Attr)
		case xml.EndElement:
			err = b.end()
		case xml.CharData:
			err = b.chars(t)
		}
		if err != nil {
			return nil, err
		}
	}
	return b.finish()
}

var treeCmp = cmp.AllowUnexported(node{})

// xmlCases are documents both parsers must read alike; valid says whether
// they are accepted.
var xmlCases = []struct {
	name  string
	doc   string
	valid bool
}{
	{"minimal", `<a/>`, true},
	{"declaration", `<?xml version="1.0" encoding="utf-8"?>` + "\n<a x='1'/>", true},
	{"declaration single quotes standalone", `<?xml version='1.0' encoding='UTF-8' standalone='yes'?><a/>`, true},
	{"nested text", "<a>\n  <b> hi </b>\n  <c k=\"v\"/>\n</a>\n", true},
	{"entities", `<a t="&lt;&amp;&gt;&quot;&apos;">&#65;&#x42;&#x10FFFF;&lt;</a>`, true},
	{"CRLF", "<a t=\"x\r\ny\">1\r\n2\r3</a>", true},
	{"CR by reference", "<a>&#13;&#xD;</a>", true},
	{"CDATA", `<a><![CDATA[<not> & ]] markup]]></a>`, true},
	{"comments and PI", `<!-- c --><?pi data?><a><!----><?x?></a><!-- end -->`, true},
	{"namespaces", `<p:a xmlns:p="urn:x" xmlns="urn:y" p:k="1"><p:b/></p:a>`, true},
	{"UTF-8", "<a k=\"\u00e9\">\u65e5\u672c \U0001F600 \uFFFD</a>", true},
	{"tab and space in end tag", "<a></a \t>", true},
	{"unclosed", `<a><b></b>`, false},
	{"mismatched", `<a></b>`, false},
	{"prefix mismatch", `<p:a></q:a>`, false},
	{"two roots", `<a/><b/>`, false},
	{"text outside", `x<a/>`, false},
	{"unknown entity", `<a>&nbsp;</a>`, false},
	{"no semicolon", `<a>&amp</a>`, false},
	{"NUL reference", `<a>&#0;</a>`, false},
	{"control", "<a>\x01</a>", false},
	{"invalid UTF-8", "<a>\xff</a>", false},
	{"FFFE", "<a>\uFFFE</a>", false},
	{"lt in attribute", `<a k="<"/>`, false},
	{"unquoted attribute", `<a k=v/>`, false},
	{"attribute without value", `<a k/>`, false},
	{"]]> in text", `<a>]]></a>`, false},
	{"-- in comment", `<a><!-- a -- b --></a>`, false},
	{"encoding", `<?xml version="1.0" encoding="latin1"?><a/>`, false},
	{"version", `<?xml version="1.1"?><a/>`, false},
	{"name starting with a digit", `<1a/>`, false},
	{"two colons", `<a:b:c/>`, false},
	{"empty", ``, false},
	{"only space", " \n", false},
}

func TestParseTreeMatchesEncodingXML(t *testing.T) {
	for _, tt := range xmlCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTree([]byte(tt.doc))
			want, stdErr := parseTreeStd([]byte(tt.doc))
			if (err == nil) != tt.valid {
				t.Fatalf("parseTree(%q) error = %v, want valid=%v", tt.doc, err, tt.valid)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Errorf("parseTree(%q) error %v does not wrap ErrMalformed", tt.doc, err)
			}
			if (stdErr == nil) != tt.valid {
				t.Fatalf("encoding/xml on %q: %v, want valid=%v", tt.doc, stdErr, tt.valid)
			}
			if diff := cmp.Diff(want, got, treeCmp); diff != "" {
				t.Errorf("parseTree(%q) differs from encoding/xml (-std +fast):\n%s", tt.doc, diff)
			}
		})
	}
}

// TestParseTreeStricter lists what parseTree refuses on purpose although
// encoding/xml accepts it.
func TestParseTreeStricter(t *testing.T) {
	for _, doc := range []string{
		`<!DOCTYPE a [<!ENTITY e "x">]><a/>`,
		`<a x="1"y="2"/>`,
		`<a x="1" x="2"/>`,
		`<?xml version="1.0"?><?xml version="1.0"?><a/>`,
		`<a>&#xD800;</a>`,
		`<a:1/>`,
	} {
		if _, err := parseTree([]byte(doc)); err == nil {
			t.Errorf("parseTree(%q) accepted it, want it refused", doc)
		}
	}
}

func TestParseTreeLimits(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"depth", strings.Repeat("<a>", maxDepth+1) + strings.Repeat("</a>", maxDepth+1), "nested"},
		{"elements", "<a>" + strings.Repeat("<b/>", maxElements) + "</a>", "elements"},
		{"text", "<a>" + strings.Repeat("x", maxTextBytes+1) + "</a>", "longer"},
		{"attribute", `<a k="` + strings.Repeat("x", maxTextBytes+1) + `"/>`, "longer"},
		{"size", "<a>" + strings.Repeat(" ", MaxBodyBytes) + "</a>", "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseTree([]byte(tt.doc)); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// FuzzParseTree checks parseTree against encoding/xml: whatever it
// accepts, encoding/xml accepts too and reads into the same tree.
func FuzzParseTree(f *testing.F) {
	for _, tt := range xmlCases {
		f.Add([]byte(tt.doc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > MaxBodyBytes {
			return
		}
		got, err := parseTree(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		want, err := parseTreeStd(data)
		if err != nil {
			t.Fatalf("parseTree accepted %q, encoding/xml refused it: %v", data, err)
		}
		if diff := cmp.Diff(want, got, treeCmp); diff != "" {
			t.Fatalf("parseTree(%q) differs from encoding/xml (-std +fast):\n%s", data, diff)
		}
	})
}

func BenchmarkParseCheckIn(b *testing.B) {
	c := CheckIn{MAC: "00-04-F2-00-00-01", User: "alice@contoso.com"}
	c.Identity.DeviceType, c.Identity.Vendor, c.Identity.Model, c.Identity.Revision, c.Identity.Locale = "UCPhone", "Polycom", "CX600", "A", "ENU"
	data := c.AppendXML(nil)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := parseTree(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-xml", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := parseTreeStd(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
