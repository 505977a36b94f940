package cabingest

import (
	"bytes"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/opendus/opendus/firmware"
)

// Namespace is the XML namespace of an update description. Its last
// component is the major schema version: a description in another
// namespace is not one this package can read.
const Namespace = "urn:opendus:update-description:1"

// SchemaVersion is the value of the schemaVersion attribute this package
// writes and the only one it reads.
const SchemaVersion = "1"

// Limits of a description.
const (
	// MaxDescriptionSize bounds a description file in bytes.
	MaxDescriptionSize = 64 << 10
	// MaxDescribedFiles bounds the File elements of one description.
	MaxDescribedFiles = 256
	// maxUpdateTypeLen bounds the UpdateType text.
	maxUpdateTypeLen = firmware.MaxNameLen
)

// ErrDescription is returned when a description is malformed or does not
// agree with where it is or what it describes.
var ErrDescription = errors.New("invalid description")

// Description is the content of an update's description file (.xml): which
// identity and version the update is for, what kind of update it is, and
// the size and SHA-256 of every other file of the update. See
// docs/bundle-format.md.
type Description struct {
	Identity firmware.Identity
	Version  firmware.Version
	// UpdateType says what the update is, for example "Firmware".
	UpdateType string
	// Files are the update's files other than the description itself.
	Files []DescribedFile
}

// DescribedFile is one File element of a description.
type DescribedFile struct {
	Name   string
	Role   firmware.Role // RoleImage or RoleCatalog
	Size   int64
	SHA256 [32]byte
}

// DefaultUpdateType is the update type of firmware images.
const DefaultUpdateType = "Firmware"

// ParseDescription parses and checks a description. It accepts only what
// MarshalDescription can write, plus elements and attributes of other
// namespaces, which it ignores (a vendor's extensions): every element of
// the description namespace must be known and appear once (File: at
// least once), values must be valid (identity names, version, sizes,
// digests), file names unique (ignoring case), and the document at most
// MaxDescriptionSize bytes without a DOCTYPE.
func ParseDescription(data []byte) (*Description, error) {
	if len(data) > MaxDescriptionSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrDescription, len(data), MaxDescriptionSize)
	}
	p := &descParser{d: xml.NewDecoder(bytes.NewReader(data))}
	p.d.Strict = true
	desc, err := p.parse()
	if err != nil {
		line, _ := p.d.InputPos()
		return nil, fmt.Errorf("%w: line %d: %w", ErrDescription, line, err)
	}
	if err := desc.Validate(); err != nil {
		return nil, err
	}
	return desc, nil
}

// Validate checks a description's values: a valid identity and version,
// an update type, at least one image, valid and unique file names with
// the image or catalog role, and no negative size.
func (d *Description) Validate() error {
	if err := d.Identity.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrDescription, err)
	}
	if d.Version.IsZero() {
		return fmt.Errorf("%w: no version", ErrDescription)
	}
	if err := validUpdateType(d.UpdateType); err != nil {
		return fmt.Errorf("%w: %w", ErrDescription, err)
	}
	if len(d.Files) == 0 {
		return fmt.Errorf("%w: it lists no file", ErrDescription)
	}
	if len(d.Files) > MaxDescribedFiles {
		return fmt.Errorf("%w: it lists %d files, more than %d", ErrDescription, len(d.Files), MaxDescribedFiles)
	}
	seen := make(map[string]bool, len(d.Files))
	images := 0
	for _, f := range d.Files {
		if err := firmware.ValidName(f.Name); err != nil {
			return fmt.Errorf("%w: file name: %w", ErrDescription, err)
		}
		key := strings.ToLower(f.Name)
		if seen[key] {
			return fmt.Errorf("%w: file %s is listed twice", ErrDescription, f.Name)
		}
		seen[key] = true
		switch f.Role {
		case firmware.RoleImage:
			images++
		case firmware.RoleCatalog:
		default:
			return fmt.Errorf("%w: file %s has role %q; want image or catalog", ErrDescription, f.Name, f.Role)
		}
		if firmware.RoleOf(f.Name) == firmware.RoleDescription {
			return fmt.Errorf("%w: file %s: a description does not list descriptions", ErrDescription, f.Name)
		}
		if f.Size < 0 {
			return fmt.Errorf("%w: file %s has size %d", ErrDescription, f.Name, f.Size)
		}
	}
	if images == 0 {
		return fmt.Errorf("%w: it lists no image (role image, like CX600.nbt)", ErrDescription)
	}
	return nil
}

func validUpdateType(s string) error {
	if s == "" {
		return errors.New("no UpdateType")
	}
	if len(s) > maxUpdateTypeLen {
		return fmt.Errorf("UpdateType longer than %d bytes", maxUpdateTypeLen)
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("UpdateType %q: only letters, digits, '-', '_' and '.'", s)
		}
	}
	return nil
}

// MarshalDescription writes d as a description document, with the files
// in the given order.
func MarshalDescription(d *Description) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	fmt.Fprintf(&b, "<UpdateDescription xmlns=%q schemaVersion=%q>\n", Namespace, SchemaVersion)
	b.WriteString("  <Identity>\n")
	for _, e := range []struct{ name, value string }{
		{"DeviceType", d.Identity.DeviceType}, {"Vendor", d.Identity.Vendor}, {"Model", d.Identity.Model},
		{"Revision", d.Identity.Revision}, {"Locale", d.Identity.Locale},
	} {
		// Validate allows only letters, digits, '-', '_' and '.': no escaping.
		fmt.Fprintf(&b, "    <%s>%s</%s>\n", e.name, e.value, e.name)
	}
	b.WriteString("  </Identity>\n")
	fmt.Fprintf(&b, "  <Version>%s</Version>\n", d.Version)
	fmt.Fprintf(&b, "  <UpdateType>%s</UpdateType>\n", d.UpdateType)
	for _, f := range d.Files {
		fmt.Fprintf(&b, "  <File name=%q role=%q size=\"%d\" sha256=\"%x\"/>\n", f.Name, f.Role, f.Size, f.SHA256[:])
	}
	b.WriteString("</UpdateDescription>\n")
	return b.Bytes(), nil
}

// descParser reads a description token by token, so that it can refuse
// what encoding/xml's Unmarshal would silently accept: unknown or repeated
// elements, text where none belongs, a DOCTYPE.
type descParser struct {
	d *xml.Decoder
}

// next returns the next start element, end element or non-space text,
// skipping comments, the XML declaration and whitespace, and refusing
// directives and other processing instructions.
func (p *descParser) next() (xml.Token, error) {
	for {
		t, err := p.d.Token()
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.Comment:
			continue
		case xml.ProcInst:
			if t.Target == "xml" {
				continue
			}
			return nil, fmt.Errorf("processing instruction <?%s?> not allowed", t.Target)
		case xml.Directive:
			return nil, errors.New("DOCTYPE and other directives are not allowed")
		case xml.CharData:
			if len(bytes.TrimSpace(t)) == 0 {
				continue
			}
			return t, nil
		default:
			return t, nil
		}
	}
}

func (p *descParser) parse() (*Description, error) {
	t, err := p.next()
	if err != nil {
		return nil, err
	}
	root, ok := t.(xml.StartElement)
	if !ok || root.Name.Local != "UpdateDescription" {
		return nil, errors.New("the document element must be UpdateDescription")
	}
	if root.Name.Space != Namespace {
		return nil, fmt.Errorf("namespace %q; want xmlns=%q", root.Name.Space, Namespace)
	}
	version := ""
	for _, a := range root.Attr {
		if plain(a) && a.Name.Local == "schemaVersion" {
			version = a.Value
		} else if plain(a) {
			return nil, fmt.Errorf("unknown attribute %s of UpdateDescription", a.Name.Local)
		}
	}
	if version != SchemaVersion {
		return nil, fmt.Errorf("schemaVersion %q; this program reads %q", version, SchemaVersion)
	}
	desc := &Description{}
	seen := map[string]bool{}
	for {
		t, err := p.next()
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.EndElement:
			for _, name := range []string{"Identity", "Version", "UpdateType"} {
				if !seen[name] {
					return nil, fmt.Errorf("no %s element", name)
				}
			}
			// Anything after the document element is refused by the
			// decoder (Strict) or is whitespace and comments.
			for {
				t, err := p.next()
				if err == io.ErrUnexpectedEOF {
					return desc, nil
				}
				if err != nil {
					return nil, err
				}
				return nil, fmt.Errorf("unexpected %T after the document element", t)
			}
		case xml.CharData:
			return nil, errors.New("text directly inside UpdateDescription")
		case xml.StartElement:
			if t.Name.Space != Namespace {
				if err := p.d.Skip(); err != nil {
					return nil, err
				}
				continue
			}
			name := t.Name.Local
			if name != "File" {
				if seen[name] {
					return nil, fmt.Errorf("element %s appears twice", name)
				}
				seen[name] = true
			}
			switch name {
			case "Identity":
				err = p.identity(&desc.Identity)
			case "Version":
				var s string
				if s, err = p.text(t); err == nil {
					desc.Version, err = firmware.ParseVersion(s)
				}
			case "UpdateType":
				desc.UpdateType, err = p.text(t)
			case "File":
				if len(desc.Files) == MaxDescribedFiles {
					return nil, fmt.Errorf("more than %d File elements", MaxDescribedFiles)
				}
				var f DescribedFile
				if f, err = p.file(t); err == nil {
					desc.Files = append(desc.Files, f)
				}
			default:
				return nil, fmt.Errorf("unknown element %s", name)
			}
			if err != nil {
				return nil, err
			}
		}
	}
}

// text reads the text content of an element with no attributes and no
// child elements (of any namespace), trimmed of surrounding space.
func (p *descParser) text(start xml.StartElement) (string, error) {
	for _, a := range start.Attr {
		if plain(a) {
			return "", fmt.Errorf("unknown attribute %s of %s", a.Name.Local, start.Name.Local)
		}
	}
	var s strings.Builder
	for {
		t, err := p.d.Token()
		if err != nil {
			return "", err
		}
		switch t := t.(type) {
		case xml.CharData:
			if s.Len()+len(t) > MaxDescriptionSize {
				return "", errors.New("text too long")
			}
			s.Write(t)
		case xml.Comment:
		case xml.EndElement:
			return strings.TrimSpace(s.String()), nil
		default:
			return "", fmt.Errorf("%s holds %T; want text only", start.Name.Local, t)
		}
	}
}

func (p *descParser) identity(id *firmware.Identity) error {
	fields := map[string]*string{
		"DeviceType": &id.DeviceType, "Vendor": &id.Vendor, "Model": &id.Model,
		"Revision": &id.Revision, "Locale": &id.Locale,
	}
	seen := map[string]bool{}
	for {
		t, err := p.next()
		if err != nil {
			return err
		}
		switch t := t.(type) {
		case xml.EndElement:
			for _, name := range []string{"DeviceType", "Vendor", "Model", "Revision", "Locale"} {
				if !seen[name] {
					return fmt.Errorf("element Identity has no %s", name)
				}
			}
			return nil
		case xml.CharData:
			return errors.New("text directly inside Identity")
		case xml.StartElement:
			if t.Name.Space != Namespace {
				if err := p.d.Skip(); err != nil {
					return err
				}
				continue
			}
			dst, ok := fields[t.Name.Local]
			if !ok {
				return fmt.Errorf("unknown element %s in Identity", t.Name.Local)
			}
			if seen[t.Name.Local] {
				return fmt.Errorf("element Identity has two %s elements", t.Name.Local)
			}
			seen[t.Name.Local] = true
			if *dst, err = p.text(t); err != nil {
				return err
			}
		}
	}
}

// file reads a File element: attributes name, role (optional, by
// default the role the name's extension implies), size and sha256; no
// content but other namespaces' elements.
func (p *descParser) file(start xml.StartElement) (DescribedFile, error) {
	var f DescribedFile
	var haveSize, haveSum bool
	for _, a := range start.Attr {
		if !plain(a) {
			continue
		}
		switch a.Name.Local {
		case "name":
			f.Name = a.Value
		case "role":
			f.Role = firmware.Role(a.Value)
		case "size":
			n, err := strconv.ParseInt(a.Value, 10, 64)
			if err != nil || !decimal(a.Value) {
				return f, fmt.Errorf("element File %q: size %q is not a decimal number of bytes", f.Name, a.Value)
			}
			f.Size, haveSize = n, true
		case "sha256":
			if len(a.Value) != 64 {
				return f, fmt.Errorf("element File %q: sha256 %q is not 64 hex digits", f.Name, a.Value)
			}
			if _, err := hex.Decode(f.SHA256[:], []byte(a.Value)); err != nil {
				return f, fmt.Errorf("element File %q: sha256 %q is not 64 hex digits", f.Name, a.Value)
			}
			haveSum = true
		default:
			return f, fmt.Errorf("unknown attribute %s of File", a.Name.Local)
		}
	}
	switch {
	case f.Name == "":
		return f, errors.New("a File has no name attribute")
	case !haveSize:
		return f, fmt.Errorf("element File %q has no size attribute", f.Name)
	case !haveSum:
		return f, fmt.Errorf("element File %q has no sha256 attribute", f.Name)
	}
	if f.Role == "" {
		f.Role = firmware.RoleOf(f.Name)
	}
	for {
		t, err := p.next()
		if err != nil {
			return f, err
		}
		switch t := t.(type) {
		case xml.EndElement:
			return f, nil
		case xml.StartElement:
			if t.Name.Space == Namespace {
				return f, fmt.Errorf("unknown element %s in File", t.Name.Local)
			}
			if err := p.d.Skip(); err != nil {
				return f, err
			}
		default:
			return f, fmt.Errorf("element File %q holds text; it has attributes only", f.Name)
		}
	}
}

// plain reports whether a is an attribute of no namespace, not a namespace
// declaration.
func plain(a xml.Attr) bool {
	return a.Name.Space == "" && a.Name.Local != "xmlns"
}

// decimal reports whether s is a decimal number without sign or leading
// zero.
func decimal(s string) bool {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
