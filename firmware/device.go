package firmware

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrMAC is returned when a MAC address is malformed.
var ErrMAC = errors.New("invalid MAC address")

// NormalizeMAC returns a MAC address as 12 upper-case hex digits separated
// by dashes (00-04-F2-AB-CD-EF), accepting dashes, colons, dots or no
// separators on input.
func NormalizeMAC(s string) (string, error) {
	if canonicalMAC(s) {
		return s, nil // the usual case, without allocating
	}
	var hex []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'A' && c <= 'F':
			hex = append(hex, c)
		case c >= 'a' && c <= 'f':
			hex = append(hex, c-'a'+'A')
		case c == '-' || c == ':' || c == '.':
		default:
			return "", fmt.Errorf("%w %q: %q is not a hex digit", ErrMAC, s, c)
		}
		if len(hex) > 12 {
			break
		}
	}
	if len(hex) != 12 {
		return "", fmt.Errorf("%w %q: want 12 hex digits like 00-04-F2-AB-CD-EF", ErrMAC, s)
	}
	var b strings.Builder
	for i := 0; i < 12; i += 2 {
		if i > 0 {
			b.WriteByte('-')
		}
		b.Write(hex[i : i+2])
	}
	return b.String(), nil
}

// canonicalMAC reports whether s is a MAC address as NormalizeMAC writes
// it: 00-04-F2-AB-CD-EF.
func canonicalMAC(s string) bool {
	if len(s) != 17 {
		return false
	}
	for i := 0; i < 17; i++ {
		c := s[i]
		if i%3 == 2 {
			if c != '-' {
				return false
			}
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// DeviceKey returns the key a device is known by: its normalized MAC, else
// "serial:" and its serial number. ok is false when it has neither.
func DeviceKey(mac, serial string) (key string, ok bool) {
	if m, err := NormalizeMAC(mac); err == nil {
		return m, true
	}
	if serial = strings.TrimSpace(serial); serial != "" {
		return "serial:" + serial, true
	}
	return "", false
}

// TestDevice is a device that receives pending versions, named by MAC or
// serial number (one of them).
type TestDevice struct {
	MAC    string    `json:"mac,omitempty"`
	Serial string    `json:"serial,omitempty"`
	Note   string    `json:"note,omitempty"`
	Added  time.Time `json:"added"`
}

// Key returns the device key the test device matches (see DeviceKey).
func (t TestDevice) Key() (string, bool) { return DeviceKey(t.MAC, t.Serial) }

// TestDevices is a set of test devices keyed by MAC and by serial.
type TestDevices map[string]bool

// Add puts a test device's MAC and serial into the set.
func (s TestDevices) Add(t TestDevice) {
	if m, err := NormalizeMAC(t.MAC); err == nil {
		s[m] = true
	}
	if t.Serial != "" {
		s["serial:"+t.Serial] = true
	}
}

// Contains reports whether a device with this MAC or serial is a test
// device. mac must already be normalized.
func (s TestDevices) Contains(mac, serial string) bool {
	if len(s) == 0 {
		return false
	}
	return (mac != "" && s[mac]) || (serial != "" && s["serial:"+serial])
}

// Location says which listener a device checked in through.
type Location string

// Locations.
const (
	Internal Location = "internal" // the LAN listener, anonymous
	External Location = "external" // the edge listener, NTLM
)

// State is where a device stands in an update, as it reports it.
type State string

// Device update states, in the order a successful update passes them.
const (
	StateIdle        State = ""            // nothing reported
	StateDownloading State = "downloading" // fetching the image
	StateDownloaded  State = "downloaded"  // image verified, waiting until idle
	StateInstalling  State = "installing"
	StateRebooting   State = "rebooting"
	StateSuccess     State = "success" // running the new version
	StateFailure     State = "failure" // see Device.Error
)

// ParseState returns the State named s, or an error naming the valid ones.
func ParseState(s string) (State, error) {
	switch st := State(s); st {
	case StateDownloading, StateDownloaded, StateInstalling, StateRebooting, StateSuccess, StateFailure:
		return st, nil
	}
	return "", fmt.Errorf("unknown device state %q: want downloading, downloaded, installing, rebooting, success or failure", s)
}

// Module is one firmware module a device reports: its file name, version
// and timestamp.
type Module struct {
	Name      string  `json:"name"`
	Version   Version `json:"version"`
	Timestamp string  `json:"timestamp,omitempty"`
}

// Device is a device's record in the inventory, from its check-ins and
// reports.
type Device struct {
	Key         string    `json:"key"` // DeviceKey(MAC, Serial)
	MAC         string    `json:"mac,omitempty"`
	Serial      string    `json:"serial,omitempty"`
	Identity    Identity  `json:"identity"`
	Version     Version   `json:"version"` // the main image's version
	Modules     []Module  `json:"modules"`
	User        string    `json:"user,omitempty"`
	Location    Location  `json:"location"`
	Address     string    `json:"address,omitempty"`
	LastCheckIn time.Time `json:"lastCheckIn"`
	// Offered is the version the last check-in offered, if any.
	Offered Version `json:"offered"`
	// State, Target and Error are the device's last report: where it is in
	// an update to Target, and the error code of a failure.
	State      State     `json:"state,omitempty"`
	Target     Version   `json:"target"`
	Error      string    `json:"error,omitempty"`
	LastReport time.Time `json:"lastReport"`
	// LastUpdate is when the device last reported a successful update.
	LastUpdate time.Time `json:"lastUpdate"`
	// Site is the site its last check-in came from (see SiteTable); ""
	// for none.
	Site string `json:"site,omitempty"`
	// Hold and Held are what the last check-in's Decision held back from
	// the device, and why (see Decide); "" when nothing was.
	Hold Hold    `json:"hold,omitempty"`
	Held Version `json:"held,omitzero"`
	// Attempt is its progress with the version it was last offered; the
	// store keeps it from the offers and reports it records.
	Attempt Attempt `json:"attempt,omitzero"`
	// History is its recent check-ins, reports and refusals, oldest first,
	// at most DeviceHistoryLen of them (see AddEvent); the store keeps it.
	History []DeviceEvent `json:"history,omitempty"`
}

// DeviceHistoryLen bounds Device.History.
const DeviceHistoryLen = 16

// DeviceEventKind names what a DeviceEvent records.
type DeviceEventKind string

// Device event kinds.
const (
	// DeviceCheckIn: a check-in, with what it was offered or held back.
	DeviceCheckIn DeviceEventKind = "checkin"
	// DeviceReport: a status report.
	DeviceReport DeviceEventKind = "report"
	// DeviceRefusal: the service refused one of the device's requests.
	DeviceRefusal DeviceEventKind = "refusal"
)

// DeviceEvent is one entry of a device's recent history.
type DeviceEvent struct {
	Time time.Time       `json:"time"`
	Kind DeviceEventKind `json:"kind"`
	// Version is, for a check-in, the version the device ran; for a
	// report, the version it reported about (its Target).
	Version Version `json:"version,omitzero"`
	// Offered is the version a check-in was offered (zero: none); Hold and
	// Held what it held back, and why.
	Offered Version `json:"offered,omitzero"`
	Hold    Hold    `json:"hold,omitempty"`
	Held    Version `json:"held,omitzero"`
	// Site is the site a check-in came from.
	Site string `json:"site,omitempty"`
	// State is a report's state.
	State State `json:"state,omitempty"`
	// Detail is a report's error code, or why a request was refused.
	Detail string `json:"detail,omitempty"`
	// Count is how many check-ins alike in everything but their time this
	// entry stands for (see AddEvent); Time is the last one's. 0 means 1.
	Count int `json:"count,omitempty"`
}

// sameCheckIn reports whether e and o are check-ins that differ only in
// their time and count.
func (e *DeviceEvent) sameCheckIn(o *DeviceEvent) bool {
	return e.Kind == DeviceCheckIn && o.Kind == DeviceCheckIn && e.Version == o.Version && e.Offered == o.Offered &&
		e.Hold == o.Hold && e.Held == o.Held && e.Site == o.Site
}

// AddEvent appends e to the device's history, keeping the last
// DeviceHistoryLen events. A check-in alike the last event in everything
// but its time (the same version, offer, hold and site) is merged into it:
// its Count grows and its Time moves on, so a device that checks in every
// day unchanged keeps one entry and its history shows what changed.
func (d *Device) AddEvent(e DeviceEvent) {
	if n := len(d.History); n > 0 && d.History[n-1].sameCheckIn(&e) {
		last := &d.History[n-1]
		last.Count = max(last.Count, 1) + max(e.Count, 1)
		last.Time = e.Time
		return
	}
	if len(d.History) >= DeviceHistoryLen {
		d.History = append(d.History[:0], d.History[len(d.History)-DeviceHistoryLen+1:]...)
	}
	d.History = append(d.History, e)
}

// Account is a local account a device's user signs in with. The store keeps
// only the NT hash (MD4 of the UTF-16LE password) that NTLM verification
// needs, never the password.
type Account struct {
	Name     string    `json:"name"`
	NTHash   [16]byte  `json:"-"`
	Disabled bool      `json:"disabled"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
}

// ValidAccountName checks an account name: 1..64 bytes of letters, digits
// and . _ - @, so that it is safe in logs and filters.
func ValidAccountName(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("account name %q: want 1 to 64 characters", s)
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '@') {
			return fmt.Errorf("account name %q: character %q not allowed; use letters, digits and . _ - @", s, c)
		}
	}
	return nil
}

// Event is one entry of the catalog history: every change gets the next
// sequence number, so a mirror can follow the catalog from a number onwards.
type Event struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`  // who: admin certificate or account name
	Action  string    `json:"action"` // import, approve, reject, restore, remove, ...
	Rule    string    `json:"rule,omitempty"`
	Subject string    `json:"subject,omitempty"` // identity path, device, account
	Version Version   `json:"version"`
	Detail  string    `json:"detail,omitempty"`
}
