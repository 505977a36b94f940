package deviceproto

import (
	"encoding/base64"
	"fmt"
	"strconv"
)

// MaxStapledBytes is the largest signed timestamp an answer staples
// (Answer.Stapled): its base64 fills an element's text limit. A larger
// one is not stapled; the device fetches it.
const MaxStapledBytes = maxTextBytes / 4 * 3

// MetadataTrust is what a device that verifies the signed update metadata
// says in its check-in of what it trusts (<Metadata root="R"
// timestamp="T"/>): the root's version (at least 1) and the timestamp's
// (0 before it trusted one). The zero value: the device does not say,
// and its answer staples nothing.
type MetadataTrust struct {
	Root, Timestamp int64
}

// parseTrust reads a check-in's <Metadata> element, if any.
func parseTrust(root *node) (MetadataTrust, error) {
	md, err := root.child("Metadata")
	if err != nil || md == nil {
		return MetadataTrust{}, err
	}
	r, err := version(md, "root", 1)
	if err != nil {
		return MetadataTrust{}, err
	}
	ts, err := version(md, "timestamp", 0)
	if err != nil {
		return MetadataTrust{}, err
	}
	return MetadataTrust{Root: r, Timestamp: ts}, nil
}

// version reads a Metadata attribute holding a metadata version of at
// least least, in canonical decimal.
func version(md *node, name string, least int64) (int64, error) {
	v, _ := md.attr(name)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < least || strconv.FormatInt(n, 10) != v {
		return 0, fmt.Errorf("%w: Metadata %s=%q: want a version from %d", ErrMalformed, name, cut(v), least)
	}
	return n, nil
}

func appendTrust(b []byte, t MetadataTrust) []byte {
	if t.Root <= 0 {
		return b
	}
	b = append(b, "  <Metadata root=\""...)
	b = strconv.AppendInt(b, t.Root, 10)
	b = append(b, "\" timestamp=\""...)
	b = strconv.AppendInt(b, t.Timestamp, 10)
	return append(b, "\"/>\n"...)
}

// appendMetadata writes an answer's <Metadata> element: the timestamp's
// version, the latest root's, and the stapled timestamp in base64.
func appendMetadata(b []byte, a *Answer) []byte {
	if a.Metadata <= 0 {
		return b
	}
	b = append(b, "  <Metadata timestamp=\""...)
	b = strconv.AppendInt(b, a.Metadata, 10)
	b = append(b, '"')
	if a.MetadataRoot > 0 {
		b = append(b, " root=\""...)
		b = strconv.AppendInt(b, a.MetadataRoot, 10)
		b = append(b, '"')
	}
	if len(a.Stapled) == 0 || len(a.Stapled) > MaxStapledBytes {
		return append(b, "/>\n"...)
	}
	b = append(b, '>')
	b = base64.StdEncoding.AppendEncode(b, a.Stapled)
	return append(b, "</Metadata>\n"...)
}

// parseMetadata reads an answer's <Metadata> element, if any.
func parseMetadata(root *node, a *Answer) error {
	md, err := root.child("Metadata")
	if err != nil || md == nil {
		return err
	}
	if a.Metadata, err = version(md, "timestamp", 1); err != nil {
		return err
	}
	if _, ok := md.attr("root"); ok {
		if a.MetadataRoot, err = version(md, "root", 1); err != nil {
			return err
		}
	}
	if md.text != "" {
		if a.Stapled, err = base64.StdEncoding.DecodeString(md.text); err != nil || len(a.Stapled) == 0 {
			return fmt.Errorf("%w: Metadata: the stapled timestamp is not base64", ErrMalformed)
		}
	}
	return nil
}
