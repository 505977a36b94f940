package deviceproto

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/opendus/opendus/firmware"
)

// ErrMalformed is returned when a check-in, status report or answer is not
// well-formed XML of the expected shape, or one of its fields is invalid.
// The error's text says why; the service sends it to the device with 400.
var ErrMalformed = errors.New("malformed message")

// ProtocolVersion is the version of the messages this package reads and
// writes, carried in every root element's protocol attribute.
const ProtocolVersion = "1"

// Root element names of the messages.
const (
	checkInRoot      = "DeviceUpdateRequest"
	answerRoot       = "DeviceUpdateResponse"
	statusRoot       = "DeviceStatusReport"
	maxModules       = 32
	maxUserBytes     = 256
	maxTimestamp     = 64
	maxErrorCodeSize = 128
	maxURLBytes      = 1024
)

// CheckIn is a device's update check: who it is, who is signed in on it and
// which modules it runs.
type CheckIn struct {
	Identity firmware.Identity
	// MAC and Serial name the device; at least one is required. MAC is
	// normalized by ParseCheckIn (00-04-F2-AB-CD-EF).
	MAC, Serial string
	// User is the user signed in on the device, as the device says; empty
	// when nobody is. On the external listener the NTLM user counts.
	User    string
	Modules []firmware.Module
	// Peer says where the device serves its subnet's peers, if it can
	// (<Peer address port [avoid]>).
	Peer PeerServer
	// Metadata is what the device trusts of the signed update metadata,
	// if it verifies it: the answer then staples a newer timestamp.
	Metadata MetadataTrust
}

// Version returns the version of the device's main image: that of the
// first module whose file is an image (not a .cat or .xml), or no version.
func (c *CheckIn) Version() firmware.Version {
	for _, m := range c.Modules {
		if firmware.RoleOf(m.Name) == firmware.RoleImage {
			return m.Version
		}
	}
	return firmware.Version{}
}

// Key returns the device's inventory key (firmware.DeviceKey).
func (c *CheckIn) Key() string {
	k, _ := firmware.DeviceKey(c.MAC, c.Serial)
	return k
}

// ParseCheckIn reads a check-in request (see the package documentation for
// its XML). It checks every field: the five identity names with
// firmware.ValidName (an unknown DeviceType is allowed: it is offered
// nothing), the MAC (normalized) or serial number, the module file names
// and versions. Errors wrap ErrMalformed.
func ParseCheckIn(data []byte) (CheckIn, error) {
	root, err := parseTree(data)
	if err != nil {
		return CheckIn{}, err
	}
	if root.name != checkInRoot {
		return CheckIn{}, fmt.Errorf("%w: root element <%s>, want <%s>", ErrMalformed, root.name, checkInRoot)
	}
	var f [8]string
	if err := root.fields([]string{"DeviceType", "MAC", "Serial", "Vendor", "Model", "Revision", "Locale", "User"}, f[:]); err != nil {
		return CheckIn{}, err
	}
	c := CheckIn{
		Identity: firmware.Identity{DeviceType: f[0], Vendor: f[3], Model: f[4], Revision: f[5], Locale: f[6]},
		User:     f[7],
	}
	for _, n := range [...]struct{ field, value string }{
		{"DeviceType", c.Identity.DeviceType}, {"Vendor", c.Identity.Vendor}, {"Model", c.Identity.Model},
		{"Revision", c.Identity.Revision}, {"Locale", c.Identity.Locale},
	} {
		if err := firmware.ValidName(n.value); err != nil {
			return CheckIn{}, fmt.Errorf("%w: %s %w", ErrMalformed, n.field, err)
		}
	}
	if c.MAC, c.Serial, err = deviceNames(f[1], f[2]); err != nil {
		return CheckIn{}, err
	}
	if err := printable("User", c.User, maxUserBytes); err != nil {
		return CheckIn{}, err
	}
	if c.Peer, err = parsePeer(root); err != nil {
		return CheckIn{}, err
	}
	if c.Metadata, err = parseTrust(root); err != nil {
		return CheckIn{}, err
	}
	mods, err := root.child("Modules")
	if err != nil {
		return CheckIn{}, err
	}
	if mods != nil {
		for _, m := range mods.children {
			if m.name != "Module" {
				continue
			}
			if len(c.Modules) == maxModules {
				return CheckIn{}, fmt.Errorf("%w: more than %d modules", ErrMalformed, maxModules)
			}
			mod, err := parseModule(m)
			if err != nil {
				return CheckIn{}, fmt.Errorf("%w (module %d)", err, len(c.Modules)+1)
			}
			c.Modules = append(c.Modules, mod)
		}
	}
	return c, nil
}

func parseModule(m *node) (firmware.Module, error) {
	name, _ := m.attr("FileName")
	if err := firmware.ValidName(name); err != nil {
		return firmware.Module{}, fmt.Errorf("%w: Module FileName %w", ErrMalformed, err)
	}
	vs, _ := m.attr("Version")
	v, err := firmware.ParseVersion(vs)
	if err != nil {
		return firmware.Module{}, fmt.Errorf("%w: Module %s: %w", ErrMalformed, name, err)
	}
	ts, _ := m.attr("Timestamp")
	if err := printable("Module Timestamp", ts, maxTimestamp); err != nil {
		return firmware.Module{}, err
	}
	return firmware.Module{Name: name, Version: v, Timestamp: ts}, nil
}

// deviceNames checks a device's MAC and serial number: at least one, the
// MAC normalized, the serial a valid name (letters, digits, '-', '_', '.').
func deviceNames(mac, serial string) (string, string, error) {
	if mac == "" && serial == "" {
		return "", "", fmt.Errorf("%w: the device has neither <MAC> nor <Serial>", ErrMalformed)
	}
	if mac != "" {
		m, err := firmware.NormalizeMAC(mac)
		if err != nil {
			return "", "", fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		mac = m
	}
	if serial != "" {
		if err := firmware.ValidName(serial); err != nil {
			return "", "", fmt.Errorf("%w: Serial %w", ErrMalformed, err)
		}
	}
	return mac, serial, nil
}

// AppendXML appends the check-in's XML to b: what a device sends.
func (c *CheckIn) AppendXML(b []byte) []byte {
	b = append(b, xmlHeader...)
	b = append(b, '<')
	b = append(b, checkInRoot...)
	b = appendAttr(b, "protocol", ProtocolVersion)
	b = append(b, ">\n"...)
	b = appendElem(b, "  ", "DeviceType", c.Identity.DeviceType)
	if c.MAC != "" {
		b = appendElem(b, "  ", "MAC", c.MAC)
	}
	if c.Serial != "" {
		b = appendElem(b, "  ", "Serial", c.Serial)
	}
	b = appendElem(b, "  ", "Vendor", c.Identity.Vendor)
	b = appendElem(b, "  ", "Model", c.Identity.Model)
	b = appendElem(b, "  ", "Revision", c.Identity.Revision)
	b = appendElem(b, "  ", "Locale", c.Identity.Locale)
	if c.User != "" {
		b = appendElem(b, "  ", "User", c.User)
	}
	b = appendPeer(b, c.Peer)
	b = appendTrust(b, c.Metadata)
	b = append(b, "  <Modules>\n"...)
	for _, m := range c.Modules {
		b = append(b, "    <Module"...)
		b = appendAttr(b, "FileName", m.Name)
		b = appendAttr(b, "Version", m.Version.String())
		if m.Timestamp != "" {
			b = appendAttr(b, "Timestamp", m.Timestamp)
		}
		b = append(b, "/>\n"...)
	}
	b = append(b, "  </Modules>\n</"...)
	b = append(b, checkInRoot...)
	return append(b, ">\n"...)
}

// Answer is the service's answer to a check-in.
type Answer struct {
	// Version is the version offered; no version when Files is empty.
	Version firmware.Version
	// InternalURL and ExternalURL are the base URLs of the offered
	// version's directory, ending in "/": a file's URL is the base and its
	// FileName. The device uses the one of the network it is in.
	InternalURL, ExternalURL string
	// InternalURLAlt and ExternalURLAlt, when set, are alternative base
	// URLs of the same files (the url/urlalt pair of Opera's update
	// protocol): a device whose download from InternalURL (ExternalURL)
	// fails fetches the file from the alternative, checked the same way.
	// A replica's answers name the primary's; a primary's answer that
	// sends a device to its site's replica names its own.
	InternalURLAlt, ExternalURLAlt string
	// Files are the modules to download; none means downloads="0".
	Files []File
	// NextCheck is how long after this answer the device checks again, at
	// most; NextCheckAt is the same as a time, for devices with a clock.
	NextCheck   time.Duration
	NextCheckAt time.Time
	// InstallBy, when set with an offer, is when the maintenance windows
	// the offer was made in close: the device must not begin an install
	// that cannot end by then. One it could not install in time it drops,
	// and it takes the offer again at a later check. The zero time: no
	// limit.
	InstallBy time.Time
	// MovedInternalURL and MovedExternalURL, when set, say that the
	// service has moved: they are its new check-in URLs, which the device
	// stores in place of the updatesServerInternalUrl and
	// updatesServerExternalUrl it was provisioned with and uses from its
	// next check on.
	MovedInternalURL, MovedExternalURL string
	// Metadata, when set, is the version of the signed timestamp the
	// service serves now (<Metadata timestamp="N"/>, docs/protocol.md,
	// "Signed update metadata"): a device that trusts that version already,
	// and whose trusted metadata has not expired, need not fetch it again.
	// It is a hint, never trusted: a relay that lies about it can only
	// keep a device on what it trusts until that expires, as one that
	// serves an old timestamp can. 0: not told.
	Metadata int64
	// MetadataRoot, when set, is the version of the latest root the
	// service serves: a device that trusts it looks for no newer one.
	MetadataRoot int64
	// Stapled, when set, is the signed timestamp itself (at most
	// MaxStapledBytes; base64 in the element's text), for a device whose
	// check-in named an older one: it verifies it as if it had fetched it
	// (updatemeta.Client.RefreshHinted), which spares the request.
	Stapled []byte
}

// File is one module of an offered update: an image, with the security
// catalog (.cat) that signs it.
type File struct {
	FileName string
	Version  firmware.Version
	// Timestamp is when the update was imported.
	Timestamp time.Time
	Size      int64
	SHA256    string // lower-case hex
	// SignatureFileName, SignatureSize and SignatureSHA256 describe the
	// .cat file; empty when the update has none.
	SignatureFileName string
	SignatureSize     int64
	SignatureSHA256   string
	// Peer is the service's advice to a peer-capable device about this
	// file (Peer and PeerDelay attributes); zero for other devices.
	Peer PeerAdvice
}

// AppendXML appends the answer's XML to b.
func (a *Answer) AppendXML(b []byte) []byte {
	b = append(b, xmlHeader...)
	b = append(b, '<')
	b = append(b, answerRoot...)
	b = appendAttr(b, "protocol", ProtocolVersion)
	b = append(b, " downloads=\""...)
	b = strconv.AppendInt(b, int64(len(a.Files)), 10)
	b = append(b, "\">\n  <NextCheck"...)
	b = append(b, " after=\""...)
	b = strconv.AppendInt(b, int64(a.NextCheck/time.Second), 10)
	b = append(b, '"')
	if !a.NextCheckAt.IsZero() {
		b = appendAttr(b, "at", a.NextCheckAt.UTC().Format(time.RFC3339))
	}
	b = append(b, "/>\n"...)
	b = appendMetadata(b, a)
	if a.MovedInternalURL != "" || a.MovedExternalURL != "" {
		b = append(b, "  <UpdatesServer"...)
		if a.MovedInternalURL != "" {
			b = appendAttr(b, "updatesServerInternalUrl", a.MovedInternalURL)
		}
		if a.MovedExternalURL != "" {
			b = appendAttr(b, "updatesServerExternalUrl", a.MovedExternalURL)
		}
		b = append(b, "/>\n"...)
	}
	if len(a.Files) > 0 {
		b = appendElem(b, "  ", "Version", a.Version.String())
		if !a.InstallBy.IsZero() {
			b = appendElem(b, "  ", "InstallBy", a.InstallBy.UTC().Format(time.RFC3339))
		}
		if a.InternalURL != "" {
			b = appendElem(b, "  ", "InternalURL", a.InternalURL)
		}
		if a.ExternalURL != "" {
			b = appendElem(b, "  ", "ExternalURL", a.ExternalURL)
		}
		if a.InternalURLAlt != "" {
			b = appendElem(b, "  ", "InternalURLAlt", a.InternalURLAlt)
		}
		if a.ExternalURLAlt != "" {
			b = appendElem(b, "  ", "ExternalURLAlt", a.ExternalURLAlt)
		}
		b = append(b, "  <Modules>\n"...)
		for _, f := range a.Files {
			b = append(b, "    <Module"...)
			b = appendAttr(b, "FileName", f.FileName)
			b = appendAttr(b, "Version", f.Version.String())
			if !f.Timestamp.IsZero() {
				b = appendAttr(b, "Timestamp", f.Timestamp.UTC().Format(time.RFC3339))
			}
			b = append(b, " Size=\""...)
			b = strconv.AppendInt(b, f.Size, 10)
			b = append(b, '"')
			b = appendAttr(b, "SHA256", f.SHA256)
			if f.SignatureFileName != "" {
				b = appendAttr(b, "SignatureFileName", f.SignatureFileName)
				b = append(b, " SignatureSize=\""...)
				b = strconv.AppendInt(b, f.SignatureSize, 10)
				b = append(b, '"')
				b = appendAttr(b, "SignatureSHA256", f.SignatureSHA256)
			}
			b = appendAdvice(b, f.Peer)
			b = append(b, "/>\n"...)
		}
		b = append(b, "  </Modules>\n"...)
	}
	b = append(b, "</"...)
	b = append(b, answerRoot...)
	return append(b, ">\n"...)
}

// ParseAnswer reads the service's answer to a check-in, as a device does.
// It checks what a device relies on: downloads matches the modules, file
// names are valid, sizes are not negative and digests are 64 hex digits.
// Errors wrap ErrMalformed.
func ParseAnswer(data []byte) (Answer, error) {
	root, err := parseTree(data)
	if err != nil {
		return Answer{}, err
	}
	if root.name != answerRoot {
		return Answer{}, fmt.Errorf("%w: root element <%s>, want <%s>", ErrMalformed, root.name, answerRoot)
	}
	var a Answer
	ds, _ := root.attr("downloads")
	downloads, err := strconv.Atoi(ds)
	if err != nil || downloads < 0 || downloads > maxModules {
		return Answer{}, fmt.Errorf("%w: downloads=%q, want a number from 0 to %d", ErrMalformed, ds, maxModules)
	}
	if nc, err := root.child("NextCheck"); err != nil {
		return Answer{}, err
	} else if nc != nil {
		after, _ := nc.attr("after")
		secs, err := strconv.ParseInt(after, 10, 64)
		if err != nil || secs < 0 || secs > int64(366*24*time.Hour/time.Second) {
			return Answer{}, fmt.Errorf("%w: NextCheck after=%q, want seconds", ErrMalformed, after)
		}
		a.NextCheck = time.Duration(secs) * time.Second
		if at, ok := nc.attr("at"); ok {
			if a.NextCheckAt, err = time.Parse(time.RFC3339, at); err != nil {
				return Answer{}, fmt.Errorf("%w: NextCheck at=%q: want an RFC 3339 time", ErrMalformed, at)
			}
		}
	}
	if err := parseMetadata(root, &a); err != nil {
		return Answer{}, err
	}
	if us, err := root.child("UpdatesServer"); err != nil {
		return Answer{}, err
	} else if us != nil {
		a.MovedInternalURL, _ = us.attr("updatesServerInternalUrl")
		a.MovedExternalURL, _ = us.attr("updatesServerExternalUrl")
	}
	var f [5]string
	if err := root.fields([]string{"Version", "InternalURL", "ExternalURL", "InternalURLAlt", "ExternalURLAlt"}, f[:]); err != nil {
		return Answer{}, err
	}
	a.InternalURL, a.ExternalURL, a.InternalURLAlt, a.ExternalURLAlt = f[1], f[2], f[3], f[4]
	for _, u := range [...]struct{ name, v string }{
		{"InternalURL", a.InternalURL}, {"ExternalURL", a.ExternalURL},
		{"InternalURLAlt", a.InternalURLAlt}, {"ExternalURLAlt", a.ExternalURLAlt},
		{"updatesServerInternalUrl", a.MovedInternalURL}, {"updatesServerExternalUrl", a.MovedExternalURL},
	} {
		if err := printable(u.name, u.v, maxURLBytes); err != nil {
			return Answer{}, err
		}
	}
	if v := f[0]; v != "" {
		if a.Version, err = firmware.ParseVersion(v); err != nil {
			return Answer{}, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
	}
	if a.InstallBy, err = installBy(root); err != nil {
		return Answer{}, err
	}
	mods, err := root.child("Modules")
	if err != nil {
		return Answer{}, err
	}
	if mods != nil {
		for _, m := range mods.children {
			if m.name != "Module" {
				continue
			}
			if len(a.Files) == maxModules {
				return Answer{}, fmt.Errorf("%w: more than %d modules", ErrMalformed, maxModules)
			}
			file, err := parseFile(m)
			if err != nil {
				return Answer{}, err
			}
			a.Files = append(a.Files, file)
		}
	}
	if len(a.Files) != downloads {
		return Answer{}, fmt.Errorf("%w: downloads=%d but %d modules", ErrMalformed, downloads, len(a.Files))
	}
	if downloads == 0 {
		a.InstallBy = time.Time{} // it bounds an offer; there is none
	}
	if downloads > 0 && a.Version.IsZero() {
		return Answer{}, fmt.Errorf("%w: downloads without a <Version>", ErrMalformed)
	}
	return a, nil
}

// installBy reads an answer's InstallBy: an RFC 3339 time, or none.
func installBy(root *node) (time.Time, error) {
	var f [1]string
	if err := root.fields([]string{"InstallBy"}, f[:]); err != nil || f[0] == "" {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339, f[0])
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: InstallBy %q: want an RFC 3339 time", ErrMalformed, f[0])
	}
	return t, nil
}

func parseFile(m *node) (File, error) {
	mod, err := parseModule(m)
	if err != nil {
		return File{}, err
	}
	f := File{FileName: mod.Name, Version: mod.Version}
	if mod.Timestamp != "" {
		if f.Timestamp, err = time.Parse(time.RFC3339, mod.Timestamp); err != nil {
			return File{}, fmt.Errorf("%w: Module %s Timestamp %q: want an RFC 3339 time", ErrMalformed, f.FileName, mod.Timestamp)
		}
	}
	if f.Size, f.SHA256, err = sizeAndDigest(m, "Size", "SHA256"); err != nil {
		return File{}, err
	}
	if sig, ok := m.attr("SignatureFileName"); ok {
		if err := firmware.ValidName(sig); err != nil {
			return File{}, fmt.Errorf("%w: Module SignatureFileName %w", ErrMalformed, err)
		}
		f.SignatureFileName = sig
		if f.SignatureSize, f.SignatureSHA256, err = sizeAndDigest(m, "SignatureSize", "SignatureSHA256"); err != nil {
			return File{}, err
		}
	}
	if f.Peer, err = parseAdvice(m); err != nil {
		return File{}, err
	}
	return f, nil
}

func sizeAndDigest(m *node, sizeAttr, sumAttr string) (int64, string, error) {
	s, _ := m.attr(sizeAttr)
	size, err := strconv.ParseInt(s, 10, 64)
	if err != nil || size < 0 {
		return 0, "", fmt.Errorf("%w: Module %s=%q, want a number of bytes", ErrMalformed, sizeAttr, s)
	}
	sum, _ := m.attr(sumAttr)
	if !isHexDigest(sum) {
		return 0, "", fmt.Errorf("%w: Module %s=%q, want 64 lower-case hex digits", ErrMalformed, sumAttr, sum)
	}
	return size, sum, nil
}

func isHexDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Status is a device's report of its progress in an update.
type Status struct {
	MAC, Serial string
	State       firmware.State
	// Target is the version the update installs.
	Target firmware.Version
	// ErrorCode is the device's error code, with State failure.
	ErrorCode string
}

// Key returns the device's inventory key (firmware.DeviceKey).
func (s *Status) Key() string {
	k, _ := firmware.DeviceKey(s.MAC, s.Serial)
	return k
}

// ParseStatus reads a status report (see the package documentation for its
// XML): the device's MAC or serial number, a state firmware.ParseState
// knows, the target version, and with failure an optional error code.
// Errors wrap ErrMalformed.
func ParseStatus(data []byte) (Status, error) {
	root, err := parseTree(data)
	if err != nil {
		return Status{}, err
	}
	if root.name != statusRoot {
		return Status{}, fmt.Errorf("%w: root element <%s>, want <%s>", ErrMalformed, root.name, statusRoot)
	}
	var f [5]string
	if err := root.fields([]string{"MAC", "Serial", "State", "TargetVersion", "ErrorCode"}, f[:]); err != nil {
		return Status{}, err
	}
	var s Status
	if s.MAC, s.Serial, err = deviceNames(f[0], f[1]); err != nil {
		return Status{}, err
	}
	if s.State, err = firmware.ParseState(f[2]); err != nil {
		return Status{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if s.Target, err = firmware.ParseVersion(f[3]); err != nil {
		return Status{}, fmt.Errorf("%w: TargetVersion: %w", ErrMalformed, err)
	}
	s.ErrorCode = f[4]
	if err := printable("ErrorCode", s.ErrorCode, maxErrorCodeSize); err != nil {
		return Status{}, err
	}
	if s.ErrorCode != "" && s.State != firmware.StateFailure {
		return Status{}, fmt.Errorf("%w: an ErrorCode goes only with State failure, not %s", ErrMalformed, s.State)
	}
	return s, nil
}

// AppendXML appends the status report's XML to b: what a device sends.
func (s *Status) AppendXML(b []byte) []byte {
	b = append(b, xmlHeader...)
	b = append(b, '<')
	b = append(b, statusRoot...)
	b = appendAttr(b, "protocol", ProtocolVersion)
	b = append(b, ">\n"...)
	if s.MAC != "" {
		b = appendElem(b, "  ", "MAC", s.MAC)
	}
	if s.Serial != "" {
		b = appendElem(b, "  ", "Serial", s.Serial)
	}
	b = appendElem(b, "  ", "State", string(s.State))
	b = appendElem(b, "  ", "TargetVersion", s.Target.String())
	if s.ErrorCode != "" {
		b = appendElem(b, "  ", "ErrorCode", s.ErrorCode)
	}
	b = append(b, "</"...)
	b = append(b, statusRoot...)
	return append(b, ">\n"...)
}
