package store

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/firmware"
)

// fullDevice has every field of a device record set.
func fullDevice() firmware.Device {
	t := time.Date(2026, 11, 21, 8, 30, 15, 123456789, time.UTC)
	return firmware.Device{
		Key: "00-04-F2-AA-BB-CC", MAC: "00-04-F2-AA-BB-CC", Serial: "SN-Ω-1",
		Identity: phone,
		Version:  firmware.MustParseVersion("4.0.7577.4455"),
		Modules: []firmware.Module{
			{Name: "CPE.nbt", Version: firmware.MustParseVersion("4.0.7577.4455"), Timestamp: "2025-01-02T03:04:05"},
			{Name: "Sip.nbt", Version: firmware.MustParseVersion("4294967295.0.0.1")},
		},
		User: "alice@contoso.com", Location: firmware.External, Address: "[::1]:4431",
		LastCheckIn: t, Offered: firmware.MustParseVersion("4.0.7577.4456"),
		State: firmware.StateFailure, Target: firmware.MustParseVersion("4.0.7577.4456"), Error: "0x80070005",
		LastReport: t.Add(-time.Minute), LastUpdate: time.Unix(-5, 7).UTC(),
		Site: "berlin-hq", Hold: firmware.HoldWindow, Held: firmware.MustParseVersion("4.0.7577.4457"),
		Attempt: firmware.Attempt{Version: firmware.MustParseVersion("4.0.7577.4456"), Offered: t.Add(-time.Hour), Failures: 2,
			Failed: t.Add(-time.Minute), State: firmware.StateFailure, Reported: t.Add(-time.Minute)},
		History: []firmware.DeviceEvent{
			{Time: t.Add(-2 * time.Hour), Kind: firmware.DeviceCheckIn, Version: firmware.MustParseVersion("4.0.7577.4455"),
				Offered: firmware.MustParseVersion("4.0.7577.4456"), Site: "berlin-hq", Count: 3},
			{Time: t.Add(-time.Minute), Kind: firmware.DeviceReport, Version: firmware.MustParseVersion("4.0.7577.4456"),
				State: firmware.StateFailure, Detail: "0x80070005"},
			{Time: t, Kind: firmware.DeviceCheckIn, Version: firmware.MustParseVersion("4.0.7577.4455"), Hold: firmware.HoldWindow,
				Held: firmware.MustParseVersion("4.0.7577.4457"), Site: "berlin-hq"},
			{Time: t, Kind: firmware.DeviceRefusal, Detail: "status report without a check-in"},
		},
	}
}

func TestDeviceRecordRoundTrip(t *testing.T) {
	full := fullDevice()
	tests := []struct {
		name string
		d    firmware.Device
	}{
		{"empty", firmware.Device{}},
		{"key only", firmware.Device{Key: "SERIAL-1"}},
		{"full", full},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := appendDevice(nil, &tc.d)
			got, err := decodeDevice(rec, decodeAll)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.d, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			// The kept part alone.
			rep, err := decodeDevice(rec, decodeKept)
			if err != nil {
				t.Fatal(err)
			}
			want := firmware.Device{State: tc.d.State, Target: tc.d.Target, Error: tc.d.Error, LastReport: tc.d.LastReport, LastUpdate: tc.d.LastUpdate,
				Attempt: tc.d.Attempt, History: tc.d.History}
			if diff := cmp.Diff(want, rep); diff != "" {
				t.Errorf("kept part (-want +got):\n%s", diff)
			}
			// What the index reads: all but the history, modules and address.
			idx, err := decodeDevice(rec, decodeIndex)
			if err != nil {
				t.Fatal(err)
			}
			want = tc.d
			want.History, want.Modules, want.Address = nil, nil, ""
			if diff := cmp.Diff(want, idx); diff != "" {
				t.Errorf("index part (-want +got):\n%s", diff)
			}
			// Every truncation is refused.
			for n := range len(rec) {
				if _, err := decodeDevice(rec[:n], decodeAll); !errors.Is(err, errDeviceRecord) {
					t.Fatalf("truncated to %d of %d bytes: err = %v, want errDeviceRecord", n, len(rec), err)
				}
			}
			if _, err := decodeDevice(append(rec, 0), decodeAll); !errors.Is(err, errDeviceRecord) {
				t.Errorf("trailing byte: err = %v, want errDeviceRecord", err)
			}
		})
	}
}

func TestDeviceRecordRefuses(t *testing.T) {
	tests := []struct {
		name string
		rec  []byte
	}{
		{"nothing", nil},
		{"unknown format", []byte{0x03, 0}},
		{"too many events", append(append([]byte{devRecV2}, make([]byte, 8+9)...), firmware.DeviceHistoryLen+1)},
		{"string past the end", []byte{devRecV1, 5, 'a'}},
		{"version over 32 bits", []byte{devRecV1, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0, 0}},
		{"bad time tag", []byte{devRecV1, 0, 0, 0, 0, 0, 0, 2}},
		{"nanoseconds over a second", []byte{devRecV1, 0, 0, 0, 0, 0, 0, 1, 0, 0x80, 0x94, 0xeb, 0xdc, 0x03}},
		{"too many modules", append(append([]byte{devRecV1}, make([]byte, 20)...), 0xff, 0x7f)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d, err := decodeDevice(tc.rec, decodeAll); !errors.Is(err, errDeviceRecord) {
				t.Errorf("decodeDevice(%x) = %+v, %v; want errDeviceRecord", tc.rec, d, err)
			}
		})
	}
}

// FuzzDecodeDevice feeds arbitrary bytes to the device record decoder,
// which reads what the store (or a restored backup) holds: it must refuse
// or return a record that survives a round trip.
func FuzzDecodeDevice(f *testing.F) {
	d := fullDevice()
	f.Add(appendDevice(nil, &d))
	f.Add(appendDevice(nil, &firmware.Device{Key: "k"}))
	f.Add(appendDeviceV1(nil, &d)) // schema 2's records, which Open migrates
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		got, err := decodeDevice(data, decodeAll)
		if err != nil {
			return
		}
		// Every part of a record that decodes decodes.
		for _, part := range []decodePart{decodeKept, decodeIndex} {
			if _, err := decodeDevice(data, part); err != nil {
				t.Fatalf("the record decodes whole but not part %d: %v", part, err)
			}
		}
		back, err := decodeDevice(appendDevice(nil, &got), decodeAll)
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if !cmp.Equal(back, got) {
			t.Fatalf("round trip changed the record:\n%s", cmp.Diff(got, back))
		}
	})
}

// appendDeviceV1 is schema 2's encoder (devRecV1), for migration tests
// and the fuzz corpus.
func appendDeviceV1(b []byte, d *firmware.Device) []byte {
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

// TestDeviceRecordV1 reads schema 2's records: the fields they had, the
// new ones zero.
func TestDeviceRecordV1(t *testing.T) {
	d := fullDevice()
	got, err := decodeDevice(appendDeviceV1(nil, &d), decodeAll)
	if err != nil {
		t.Fatal(err)
	}
	want := d
	want.Site, want.Hold, want.Held, want.Attempt, want.History = "", "", firmware.Version{}, firmware.Attempt{}, nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("a devRecV1 record (-want +got):\n%s", diff)
	}
}

// TestRawHistoryAddsAsTheVocabulary: the writer's stored history, added to
// without decoding it, is what firmware.Device.AddEvent makes of the same
// events: merges, trimming and all.
func TestRawHistoryAddsAsTheVocabulary(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	versions := []firmware.Version{{}, v1, v2}
	for run := range 200 {
		var d firmware.Device
		var h rawHistory
		for i := range rng.IntN(40) {
			e := firmware.DeviceEvent{Time: t0.Add(time.Duration(i) * time.Minute)}
			switch rng.IntN(4) {
			case 0, 1:
				e.Kind, e.Version, e.Offered, e.Site = firmware.DeviceCheckIn, v1, versions[rng.IntN(3)], []string{"", "hq"}[rng.IntN(2)]
				if rng.IntN(3) == 0 {
					e.Hold, e.Held = firmware.HoldWindow, v2
				}
			case 2:
				e.Kind, e.Version, e.State, e.Detail = firmware.DeviceReport, v2, firmware.StateFailure, "0x1"
			default:
				e.Kind, e.Detail = firmware.DeviceRefusal, "no check-in"
			}
			d.AddEvent(e)
			h = h.add(e)
		}
		got, err := h.events()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(d.History, got); diff != "" {
			t.Fatalf("run %d: stored history (-vocabulary +stored):\n%s", run, diff)
		}
		if h.n != len(d.History) {
			t.Fatalf("run %d: n = %d, want %d", run, h.n, len(d.History))
		}
	}
}
