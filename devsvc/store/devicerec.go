package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/opendus/opendus/firmware"
)

// Device records.
//
// The inventory writer rewrites a device's record at every check-in, so
// the record is a compact binary encoding rather than JSON (which cost
// about a quarter of the server's CPU time per check-in). A record is
//
//	format byte (devRecV2)
//	the kept part: State, Target, Error, LastReport, LastUpdate;
//	  the Attempt: Version, Offered, Failures, Failed, State, Reported;
//	  the History: an event count and per event its length, then the
//	  length of its key and the key (Kind, Version, Offered, Hold, Held,
//	  Site, State, Detail), then its Time and Count (see rawHistory)
//	the check-in part: Key, MAC, Serial, Identity (five strings),
//	  Version, module count and per module Name, Version, Timestamp,
//	  User, Location, Address, LastCheckIn, Offered, Site, Hold, Held
//
// with strings as a uvarint length and the bytes, versions as four
// uvarints, counts as uvarints and times as a uvarint 0 (the zero time) or
// 1 followed by varint Unix seconds and uvarint nanoseconds, always read
// back in UTC. The kept part comes first so that a check-in, which keeps
// only those fields of the old record, decodes no more.
//
// Schema 1 stored JSON records; schema 2 the binary form devRecV1, without
// the attempt, the history, the site and the hold (its kept part is the
// five report fields, its check-in part ends with Offered). Open converts
// both (migrateDevicesToBinary, migrateDevicesToV2); decodeDevice still
// reads devRecV1 for that.

// Formats of a binary device record: its first byte.
const (
	devRecV1 = 0x01 // schema 2
	devRecV2 = 0x02 // schema 3
)

// maxDeviceModules bounds a decoded record's module list.
const maxDeviceModules = 1024

// errDeviceRecord is returned when a stored device record is corrupt.
var errDeviceRecord = errors.New("corrupt device record")

// appendDevice appends d's record to b, in the current format.
func appendDevice(b []byte, d *firmware.Device) []byte {
	return appendRecord(b, d, historyOf(d.History))
}

// appendRecord appends d's record to b with the history h (d.History is
// not read).
func appendRecord(b []byte, d *firmware.Device, h rawHistory) []byte {
	b = append(b, devRecV2)
	b = appendString(b, string(d.State))
	b = appendVersion(b, d.Target)
	b = appendString(b, d.Error)
	b = appendTime(b, d.LastReport)
	b = appendTime(b, d.LastUpdate)
	a := &d.Attempt
	b = appendVersion(b, a.Version)
	b = appendTime(b, a.Offered)
	b = binary.AppendUvarint(b, uint64(max(a.Failures, 0)))
	b = appendTime(b, a.Failed)
	b = appendString(b, string(a.State))
	b = appendTime(b, a.Reported)
	b = binary.AppendUvarint(b, uint64(h.n))
	b = append(b, h.b...)
	b = appendString(b, d.Key)
	b = appendString(b, d.MAC)
	b = appendString(b, d.Serial)
	id := &d.Identity
	for _, s := range [...]string{id.DeviceType, id.Vendor, id.Model, id.Revision, id.Locale} {
		b = appendString(b, s)
	}
	b = appendVersion(b, d.Version)
	b = binary.AppendUvarint(b, uint64(len(d.Modules)))
	for i := range d.Modules {
		m := &d.Modules[i]
		b = appendString(b, m.Name)
		b = appendVersion(b, m.Version)
		b = appendString(b, m.Timestamp)
	}
	b = appendString(b, d.User)
	b = appendString(b, string(d.Location))
	b = appendString(b, d.Address)
	b = appendTime(b, d.LastCheckIn)
	b = appendVersion(b, d.Offered)
	b = appendString(b, d.Site)
	b = appendString(b, string(d.Hold))
	return appendVersion(b, d.Held)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendVersion(b []byte, v firmware.Version) []byte {
	for _, n := range v {
		b = binary.AppendUvarint(b, uint64(n))
	}
	return b
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// migrateDevicesToBinary rewrites schema 1's JSON device records in the
// binary form.
func migrateDevicesToBinary(b *bolt.Bucket) error {
	return rewriteDevices(b, func(k, v []byte) (firmware.Device, error) {
		var d firmware.Device
		if err := json.Unmarshal(v, &d); err != nil {
			return d, fmt.Errorf("device %q: %w: %w", k, errDeviceRecord, err)
		}
		return d, nil
	})
}

// migrateDevicesToV2 rewrites schema 2's devRecV1 records as devRecV2
// (records already in it are rewritten the same).
func migrateDevicesToV2(b *bolt.Bucket) error {
	return rewriteDevices(b, func(k, v []byte) (firmware.Device, error) {
		d, err := decodeDevice(v, decodeAll)
		if err != nil {
			return d, fmt.Errorf("device %q: %w", k, err)
		}
		return d, nil
	})
}

// rewriteDevices rewrites every record of the devices bucket, read by
// read, in the current binary form.
func rewriteDevices(b *bolt.Bucket, read func(k, v []byte) (firmware.Device, error)) error {
	type rec struct{ k, v []byte }
	var recs []rec
	err := b.ForEach(func(k, v []byte) error {
		d, err := read(k, v)
		if err != nil {
			return err
		}
		recs = append(recs, rec{k, appendDevice(nil, &d)})
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := b.Put(r.k, r.v); err != nil {
			return err
		}
	}
	return nil
}

// decodePart says how much of a record decodeDevice fills.
type decodePart int

const (
	decodeAll   decodePart = iota
	decodeKept             // the kept part: what a check-in keeps of the old record
	decodeIndex            // all but the history, modules and address: what the fleet index needs
)

// decodeDevice decodes a device record, of either format. With decodeKept
// it fills only the kept part (State, Target, Error, LastReport,
// LastUpdate, Attempt, History); with decodeIndex all but the history,
// the modules and the address.
func decodeDevice(data []byte, part decodePart) (firmware.Device, error) {
	d, h, err := decodeRecord(data, part)
	if err != nil || part == decodeIndex {
		return d, err
	}
	if d.History, err = h.events(); err != nil {
		return firmware.Device{}, err
	}
	return d, nil
}

// decodeRecord decodes a device record as decodeDevice does, but leaves
// its history as it is stored: the inventory writer adds to it without
// decoding it.
func decodeRecord(data []byte, part decodePart) (firmware.Device, rawHistory, error) {
	var (
		d firmware.Device
		h rawHistory
	)
	r := recReader{b: data}
	format := r.byte()
	if format != devRecV1 && format != devRecV2 {
		if r.err == nil {
			r.err = fmt.Errorf("%w: format %#x", errDeviceRecord, format)
		}
		return firmware.Device{}, h, r.err
	}
	d.State = firmware.State(r.word())
	d.Target = r.version()
	d.Error = r.string()
	d.LastReport = r.time()
	d.LastUpdate = r.time()
	if format == devRecV2 {
		a := &d.Attempt
		a.Version = r.version()
		a.Offered = r.time()
		a.Failures = r.count(1 << 30)
		a.Failed = r.time()
		a.State = firmware.State(r.word())
		a.Reported = r.time()
		h = r.history()
	}
	if part == decodeKept {
		return d, h, r.err
	}
	d.Key = r.string()
	d.MAC = r.string()
	d.Serial = r.string()
	id := &d.Identity
	for _, s := range [...]*string{&id.DeviceType, &id.Vendor, &id.Model, &id.Revision, &id.Locale} {
		*s = r.string()
	}
	d.Version = r.version()
	if n := r.uvarint(); n > 0 && r.err == nil {
		// Every module takes at least 6 bytes.
		if n > maxDeviceModules || n > uint64(len(r.b))/6 {
			return firmware.Device{}, h, fmt.Errorf("%w: %d modules", errDeviceRecord, n)
		}
		if part == decodeIndex {
			for range n {
				r.skipString()
				r.version()
				r.skipString()
			}
		} else {
			d.Modules = make([]firmware.Module, n)
			for i := range d.Modules {
				m := &d.Modules[i]
				m.Name = r.string()
				m.Version = r.version()
				m.Timestamp = r.string()
			}
		}
	}
	d.User = r.string()
	d.Location = firmware.Location(r.string())
	if part == decodeIndex {
		r.skipString()
	} else {
		d.Address = r.string()
	}
	d.LastCheckIn = r.time()
	d.Offered = r.version()
	if format == devRecV2 {
		d.Site = r.string()
		d.Hold = firmware.Hold(r.word())
		d.Held = r.version()
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d bytes after the record", errDeviceRecord, len(r.b))
	}
	if r.err != nil {
		return firmware.Device{}, rawHistory{}, r.err
	}
	return d, h, nil
}

// rawHistory is a device's history as its record holds it: n events, each
// a uvarint length and that many bytes: a uvarint length and the event's
// key (Kind, Version, Offered, Hold, Held, Site, State, Detail: what two
// alike check-ins share), then its Time and Count. The inventory writer
// adds events to it (add) without decoding the others.
type rawHistory struct {
	n int
	b []byte
}

// history reads a record's history: the count and the events' bytes,
// each checked only for its length (events decodes them).
func (r *recReader) history() rawHistory {
	n := r.count(firmware.DeviceHistoryLen)
	start := r.b
	for range n {
		l := r.uvarint()
		if l > uint64(len(r.b)) {
			r.fail("history")
			return rawHistory{}
		}
		r.b = r.b[l:]
	}
	if r.err != nil {
		return rawHistory{}
	}
	return rawHistory{n: n, b: start[:len(start)-len(r.b)]}
}

// appendEvent appends e in the history's form.
func appendEvent(b []byte, e *firmware.DeviceEvent) []byte {
	var buf [128]byte
	key := appendString(buf[:0], string(e.Kind))
	key = appendVersion(key, e.Version)
	key = appendVersion(key, e.Offered)
	key = appendString(key, string(e.Hold))
	key = appendVersion(key, e.Held)
	key = appendString(key, e.Site)
	key = appendString(key, string(e.State))
	key = appendString(key, e.Detail)
	var tail [24]byte
	t := appendTime(tail[:0], e.Time)
	t = binary.AppendUvarint(t, uint64(max(e.Count, 0)))
	n := len(key) + len(t) + uvarintLen(uint64(len(key)))
	b = binary.AppendUvarint(b, uint64(n))
	b = binary.AppendUvarint(b, uint64(len(key)))
	return append(append(b, key...), t...)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// historyOf is the stored form of events (at most the last
// DeviceHistoryLen).
func historyOf(es []firmware.DeviceEvent) rawHistory {
	es = es[max(len(es)-firmware.DeviceHistoryLen, 0):]
	var h rawHistory
	for i := range es {
		h.b = appendEvent(h.b, &es[i])
	}
	h.n = len(es)
	return h
}

// offsets returns where each event starts in h.b, and the end: at most
// DeviceHistoryLen+1 offsets, in the array (no allocation).
func (h rawHistory) offsets(off *[firmware.DeviceHistoryLen + 1]int) []int {
	o := off[:0]
	at := 0
	for range min(h.n, firmware.DeviceHistoryLen) {
		o = append(o, at)
		l, n := binary.Uvarint(h.b[at:])
		at += n + int(l)
	}
	return append(o, at)
}

// eventKey returns an event's key bytes and the rest (Time, Count), from
// its bytes with their length prefix.
func eventKey(ev []byte) (key, rest []byte, ok bool) {
	_, n := binary.Uvarint(ev)
	if n <= 0 {
		return nil, nil, false
	}
	ev = ev[n:]
	k, n := binary.Uvarint(ev)
	if n <= 0 || k > uint64(len(ev)-n) {
		return nil, nil, false
	}
	return ev[n : n+int(k)], ev[n+int(k):], true
}

// add returns h with e added as firmware.Device.AddEvent adds it: a
// check-in alike the last event is merged into it, and only the last
// DeviceHistoryLen events are kept. It decodes no other event, and
// allocates the new history only (h.b may be the database's memory,
// never written).
func (h rawHistory) add(e firmware.DeviceEvent) rawHistory {
	var off [firmware.DeviceHistoryLen + 1]int
	o := h.offsets(&off)
	var buf [192]byte
	enc := appendEvent(buf[:0], &e)
	if n := len(o) - 1; e.Kind == firmware.DeviceCheckIn && n > 0 {
		last := h.b[o[n-1]:o[n]]
		lk, lrest, ok := eventKey(last)
		nk, _, _ := eventKey(enc)
		if ok && string(lk) == string(nk) {
			r := recReader{b: lrest}
			r.time()
			e.Count = max(r.count(1<<30), 1) + max(e.Count, 1)
			enc = appendEvent(buf[:0], &e)
			out := make([]byte, 0, o[n-1]+len(enc))
			return rawHistory{n: h.n, b: append(append(out, h.b[:o[n-1]]...), enc...)}
		}
	}
	n := len(o) - 1
	drop := max(n-firmware.DeviceHistoryLen+1, 0)
	kept := h.b[o[drop]:o[n]]
	out := make([]byte, 0, len(kept)+len(enc))
	return rawHistory{n: n - drop + 1, b: append(append(out, kept...), enc...)}
}

// events decodes the history.
func (h rawHistory) events() ([]firmware.DeviceEvent, error) {
	if h.n == 0 {
		return nil, nil
	}
	out := make([]firmware.DeviceEvent, 0, h.n)
	var off [firmware.DeviceHistoryLen + 1]int
	o := h.offsets(&off)
	for i := range len(o) - 1 {
		key, rest, ok := eventKey(h.b[o[i]:o[i+1]])
		if !ok {
			return nil, fmt.Errorf("%w: bad history event", errDeviceRecord)
		}
		var e firmware.DeviceEvent
		r := recReader{b: key}
		e.Kind = firmware.DeviceEventKind(r.word())
		e.Version = r.version()
		e.Offered = r.version()
		e.Hold = firmware.Hold(r.word())
		e.Held = r.version()
		e.Site = r.string()
		e.State = firmware.State(r.word())
		e.Detail = r.string()
		if r.err == nil && len(r.b) != 0 {
			r.fail("history event")
		}
		r.b = rest
		e.Time = r.time()
		e.Count = r.count(1 << 30)
		if r.err == nil && len(r.b) != 0 {
			r.fail("history event")
		}
		if r.err != nil {
			return nil, r.err
		}
		out = append(out, e)
	}
	return out, nil
}

// recReader reads a binary record; the first error sticks and later reads
// return zero values.
type recReader struct {
	b   []byte
	err error
}

func (r *recReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated or bad %s", errDeviceRecord, what)
	}
	r.b = nil
}

func (r *recReader) byte() byte {
	if len(r.b) == 0 {
		r.fail("format byte")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *recReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("number")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a count of at most limit.
func (r *recReader) count(limit int) int {
	n := r.uvarint()
	if n > uint64(limit) {
		r.fail("count")
		return 0
	}
	return int(n)
}

// word reads a string that is mostly one of the vocabulary's words (an
// event kind, a hold, a state), which it returns without allocating.
func (r *recReader) word() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail("string")
		return ""
	}
	b := r.b[:n]
	r.b = r.b[n:]
	switch string(b) {
	case "":
		return ""
	case string(firmware.DeviceCheckIn):
		return string(firmware.DeviceCheckIn)
	case string(firmware.DeviceReport):
		return string(firmware.DeviceReport)
	case string(firmware.DeviceRefusal):
		return string(firmware.DeviceRefusal)
	case string(firmware.HoldScheduled):
		return string(firmware.HoldScheduled)
	case string(firmware.HoldWave):
		return string(firmware.HoldWave)
	case string(firmware.HoldPaused):
		return string(firmware.HoldPaused)
	case string(firmware.HoldStopped):
		return string(firmware.HoldStopped)
	case string(firmware.HoldFailed):
		return string(firmware.HoldFailed)
	case string(firmware.HoldRetry):
		return string(firmware.HoldRetry)
	case string(firmware.HoldDownloads):
		return string(firmware.HoldDownloads)
	case string(firmware.HoldWindow):
		return string(firmware.HoldWindow)
	case string(firmware.StateDownloading):
		return string(firmware.StateDownloading)
	case string(firmware.StateDownloaded):
		return string(firmware.StateDownloaded)
	case string(firmware.StateInstalling):
		return string(firmware.StateInstalling)
	case string(firmware.StateRebooting):
		return string(firmware.StateRebooting)
	case string(firmware.StateSuccess):
		return string(firmware.StateSuccess)
	case string(firmware.StateFailure):
		return string(firmware.StateFailure)
	}
	return string(b)
}

// skipString reads past a string.
func (r *recReader) skipString() {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail("string")
		return
	}
	r.b = r.b[n:]
}

func (r *recReader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail("string")
		return ""
	}
	if n == 0 {
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *recReader) version() firmware.Version {
	var v firmware.Version
	for i := range v {
		n := r.uvarint()
		if n > 1<<32-1 {
			r.fail("version")
			return firmware.Version{}
		}
		v[i] = uint32(n)
	}
	return v
}

func (r *recReader) time() time.Time {
	switch r.byte() {
	case 0:
		return time.Time{}
	case 1:
	default:
		r.fail("time")
		return time.Time{}
	}
	sec, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("time")
		return time.Time{}
	}
	r.b = r.b[n:]
	nsec := r.uvarint()
	if nsec >= 1e9 {
		r.fail("time")
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}
