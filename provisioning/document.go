package provisioning

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ProtocolVersion is the version of the provisioning document this package
// writes, in the root element's protocol attribute (as in the check-in
// messages of package deviceapi).
const ProtocolVersion = "1"

// Check-in paths of the update service, which the document's URLs end in.
// They are those of package deviceapi.
const (
	CheckInPath    = "/RequestHandler/ucdevice.upx"
	CheckInPathExt = "/RequestHandlerExt/ucdevice.upx"
)

// Names of the document's group and properties. The first three are
// MS-SIPREGE's; the check interval is this project's.
const (
	GroupServerConfiguration = "ServerConfiguration"
	PropInternalURL          = "updatesServerInternalUrl"
	PropExternalURL          = "updatesServerExternalUrl"
	PropEnabled              = "updatesServerEnabled"
	PropCheckInterval        = "updatesServerCheckInterval"
	// PropRootMetadata is the root of the signed update metadata (TUF
	// root.json, base64), which the device trusts from then on and
	// verifies every update against (docs/protocol.md).
	PropRootMetadata = "updatesServerRootMetadata"
)

// Bounds that ParseDocument enforces.
const (
	// MaxDocumentBytes is the largest document ParseDocument reads.
	MaxDocumentBytes = 16 << 10
	// MaxRootMetadataBytes bounds the decoded root metadata a document
	// carries.
	MaxRootMetadataBytes = 8 << 10
	// MaxCheckInterval is the longest check interval a document may give.
	MaxCheckInterval = 365 * 24 * time.Hour
	maxURLBytes      = 1024
	maxUserBytes     = 256
)

// ErrMalformed is returned when a provisioning document is not well-formed
// XML of the expected shape, or one of its settings is invalid.
var ErrMalformed = errors.New("provisioning: malformed document")

// Document is the provisioning document a signed-in device receives.
type Document struct {
	// User is the user the document was issued to: the NTLM user, or the
	// Basic user name as the device sent it.
	User string
	// Issued is when the service wrote the document, to the second.
	Issued time.Time
	// InternalURL and ExternalURL are the check-in URLs
	// (updatesServerInternalUrl, updatesServerExternalUrl); either may be
	// empty when the service has no such location.
	InternalURL, ExternalURL string
	// Enabled (updatesServerEnabled) says whether the device should check
	// for updates at all.
	Enabled bool
	// CheckInterval (updatesServerCheckInterval) is how often the device
	// checks, in whole seconds; zero when the document does not say.
	CheckInterval time.Duration
	// RootMetadata (updatesServerRootMetadata) is the root of the signed
	// update metadata; nil when the document has none. ParseDocument
	// checks only its size: a device verifies it (package updatemeta).
	RootMetadata []byte
}

// AppendXML appends the document's XML to b.
func (d *Document) AppendXML(b []byte) []byte {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	buf.WriteString(`<provisionGroupList protocol="` + ProtocolVersion + `"`)
	if d.User != "" {
		buf.WriteString(` user="`)
		xml.EscapeText(&buf, []byte(d.User))
		buf.WriteString(`"`)
	}
	if !d.Issued.IsZero() {
		buf.WriteString(` issued="` + d.Issued.UTC().Format(time.RFC3339) + `"`)
	}
	buf.WriteString(">\n")
	buf.WriteString(`  <provisionGroup name="` + GroupServerConfiguration + "\">\n")
	buf.WriteString("    <propertyEntryList>\n")
	prop := func(name, value string) {
		buf.WriteString(`      <property name="` + name + `">`)
		xml.EscapeText(&buf, []byte(value))
		buf.WriteString("</property>\n")
	}
	if d.InternalURL != "" {
		prop(PropInternalURL, d.InternalURL)
	}
	if d.ExternalURL != "" {
		prop(PropExternalURL, d.ExternalURL)
	}
	prop(PropEnabled, strconv.FormatBool(d.Enabled))
	if d.CheckInterval > 0 {
		prop(PropCheckInterval, strconv.FormatInt(int64(seconds(d.CheckInterval)), 10))
	}
	if len(d.RootMetadata) > 0 {
		prop(PropRootMetadata, base64.StdEncoding.EncodeToString(d.RootMetadata))
	}
	buf.WriteString("    </propertyEntryList>\n")
	buf.WriteString("  </provisionGroup>\n")
	buf.WriteString("</provisionGroupList>\n")
	return append(b, buf.Bytes()...)
}

// seconds rounds d to whole seconds, at least one.
func seconds(d time.Duration) int64 {
	s := int64((d + time.Second/2) / time.Second)
	return max(s, 1)
}

// xmlDocument is the shape ParseDocument reads. Groups and properties it
// does not know are ignored, so that later versions can add settings.
type xmlDocument struct {
	XMLName  xml.Name   `xml:"provisionGroupList"`
	Protocol string     `xml:"protocol,attr"`
	User     string     `xml:"user,attr"`
	Issued   string     `xml:"issued,attr"`
	Groups   []xmlGroup `xml:"provisionGroup"`
}

type xmlGroup struct {
	Name       string        `xml:"name,attr"`
	Properties []xmlProperty `xml:"propertyEntryList>property"`
}

type xmlProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:",chardata"`
}

// ParseDocument reads a provisioning document, as a device does. It
// checks what a device relies on: the root element and protocol version,
// one ServerConfiguration group, at most one of each known property, URLs
// that are absolute https URLs with a host and no user information, a
// boolean updatesServerEnabled (required) and a check interval between one
// second and MaxCheckInterval. Unknown groups and properties are ignored.
// Errors wrap ErrMalformed.
func ParseDocument(data []byte) (Document, error) {
	if len(data) > MaxDocumentBytes {
		return Document{}, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(data), MaxDocumentBytes)
	}
	var x xmlDocument
	if err := xml.Unmarshal(data, &x); err != nil {
		return Document{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if x.XMLName.Local != "provisionGroupList" {
		return Document{}, fmt.Errorf("%w: root element %q", ErrMalformed, x.XMLName.Local)
	}
	if x.Protocol != ProtocolVersion {
		return Document{}, fmt.Errorf("%w: protocol %q, want %q", ErrMalformed, x.Protocol, ProtocolVersion)
	}
	d := Document{User: x.User}
	if len(d.User) > maxUserBytes || !printable(d.User) {
		return Document{}, fmt.Errorf("%w: user name too long, not UTF-8 or with control characters", ErrMalformed)
	}
	if x.Issued != "" {
		t, err := time.Parse(time.RFC3339, x.Issued)
		if err != nil {
			return Document{}, fmt.Errorf("%w: issued %q: want an RFC 3339 time", ErrMalformed, x.Issued)
		}
		d.Issued = t
	}
	var group *xmlGroup
	for i := range x.Groups {
		if x.Groups[i].Name != GroupServerConfiguration {
			continue
		}
		if group != nil {
			return Document{}, fmt.Errorf("%w: two %s groups", ErrMalformed, GroupServerConfiguration)
		}
		group = &x.Groups[i]
	}
	if group == nil {
		return Document{}, fmt.Errorf("%w: no %s group", ErrMalformed, GroupServerConfiguration)
	}
	seen := map[string]bool{}
	for _, p := range group.Properties {
		switch p.Name {
		case PropInternalURL, PropExternalURL, PropEnabled, PropCheckInterval, PropRootMetadata:
		default:
			continue
		}
		if seen[p.Name] {
			return Document{}, fmt.Errorf("%w: %s given twice", ErrMalformed, p.Name)
		}
		seen[p.Name] = true
		v := strings.TrimSpace(p.Value)
		switch p.Name {
		case PropInternalURL, PropExternalURL:
			if err := checkURL(v); err != nil {
				return Document{}, fmt.Errorf("%w: %s: %v", ErrMalformed, p.Name, err)
			}
			if p.Name == PropInternalURL {
				d.InternalURL = v
			} else {
				d.ExternalURL = v
			}
		case PropEnabled:
			switch v {
			case "true":
				d.Enabled = true
			case "false":
			default:
				return Document{}, fmt.Errorf("%w: %s %q: want true or false", ErrMalformed, p.Name, v)
			}
		case PropCheckInterval:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 || n > int64(MaxCheckInterval/time.Second) {
				return Document{}, fmt.Errorf("%w: %s %q: want whole seconds from 1 to %d", ErrMalformed, p.Name, v, int64(MaxCheckInterval/time.Second))
			}
			d.CheckInterval = time.Duration(n) * time.Second
		case PropRootMetadata:
			if base64.StdEncoding.DecodedLen(len(v)) > MaxRootMetadataBytes+2 {
				return Document{}, fmt.Errorf("%w: %s longer than %d bytes", ErrMalformed, p.Name, MaxRootMetadataBytes)
			}
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil || len(b) == 0 || len(b) > MaxRootMetadataBytes {
				return Document{}, fmt.Errorf("%w: %s: want base64 of at most %d bytes", ErrMalformed, p.Name, MaxRootMetadataBytes)
			}
			d.RootMetadata = b
		}
	}
	if !seen[PropEnabled] {
		return Document{}, fmt.Errorf("%w: no %s", ErrMalformed, PropEnabled)
	}
	return d, nil
}

// checkURL checks that s is an absolute https URL with a host, and nothing
// a device should not follow: user information, a fragment, an opaque part.
func checkURL(s string) error {
	if len(s) > maxURLBytes {
		return fmt.Errorf("URL longer than %d bytes", maxURLBytes)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("URL %q: %v", s, err)
	}
	if u.Scheme != "https" || u.Host == "" || u.Hostname() == "" || u.Opaque != "" || u.User != nil || u.Fragment != "" || u.RawQuery != "" {
		return fmt.Errorf("URL %q: want https://host[:port]/path", s)
	}
	return nil
}

// checkInURL returns the check-in URL under base, a base URL of the
// service such as "https://ucupdates-r2.contoso.com/": base with path
// appended. An empty base gives an empty URL.
func checkInURL(base, path string) (string, error) {
	if base == "" {
		return "", nil
	}
	if err := checkURL(base); err != nil {
		return "", err
	}
	u, _ := url.Parse(base)
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawPath = ""
	return u.String(), nil
}
