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
//	format byte (devRecV1)
//	the report part: State, Target, Error, LastReport, LastUpdate
//	the check-in part: Key, MAC, Serial, Identity (five strings),
//	  Version, module count and per module Name, Version, Timestamp,
//	  User, Location, Address, LastCheckIn, Offered
//
// with strings as a uvarint length and the bytes, versions as four
// uvarints and times as a uvarint 0 (the zero time) or 1 followed by
// varint Unix seconds and uvarint nanoseconds, always read back in UTC.
// The report part comes first so that a check-in, which keeps only those
// fields of the old record, decodes no more. Schema 1 stored JSON
// records; Open converts them (migrateDevicesToBinary).

// devRecV1 is the first byte of a binary device record.
const devRecV1 = 0x01

// maxDeviceModules bounds a decoded record's module list.
const maxDeviceModules = 1024

// errDeviceRecord is returned when a stored device record is corrupt.
var errDeviceRecord = errors.New("corrupt device record")

// appendDevice appends d's record to b.
func appendDevice(b []byte, d *firmware.Device) []byte {
	b = append(b, devRecV1)
	b = appendString(b, string(d.State))
	b = appendVersion(b, d.Target)
	b = appendString(b, d.Error)
	b = appendTime(b, d.LastReport)
	b = appendTime(b, d.LastUpdate)
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
	return appendVersion(b, d.Offered)
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
	type rec struct{ k, v []byte }
	var recs []rec
	err := b.ForEach(func(k, v []byte) error {
		var d firmware.Device
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("device %q: %w: %w", k, errDeviceRecord, err)
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

// decodeDevice decodes a device record. With reportOnly it fills only the
// report part (State, Target, Error, LastReport, LastUpdate).
func decodeDevice(data []byte, reportOnly bool) (firmware.Device, error) {
	var d firmware.Device
	r := recReader{b: data}
	if v := r.byte(); v != devRecV1 {
		return firmware.Device{}, fmt.Errorf("%w: format %#x", errDeviceRecord, v)
	}
	d.State = firmware.State(r.string())
	d.Target = r.version()
	d.Error = r.string()
	d.LastReport = r.time()
	d.LastUpdate = r.time()
	if reportOnly {
		return d, r.err
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
			return firmware.Device{}, fmt.Errorf("%w: %d modules", errDeviceRecord, n)
		}
		d.Modules = make([]firmware.Module, n)
		for i := range d.Modules {
			m := &d.Modules[i]
			m.Name = r.string()
			m.Version = r.version()
			m.Timestamp = r.string()
		}
	}
	d.User = r.string()
	d.Location = firmware.Location(r.string())
	d.Address = r.string()
	d.LastCheckIn = r.time()
	d.Offered = r.version()
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d bytes after the record", errDeviceRecord, len(r.b))
	}
	if r.err != nil {
		return firmware.Device{}, r.err
	}
	return d, nil
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
