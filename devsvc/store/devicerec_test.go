package store

import (
	"errors"
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
			got, err := decodeDevice(rec, false)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.d, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			// The report part alone.
			rep, err := decodeDevice(rec, true)
			if err != nil {
				t.Fatal(err)
			}
			want := firmware.Device{State: tc.d.State, Target: tc.d.Target, Error: tc.d.Error, LastReport: tc.d.LastReport, LastUpdate: tc.d.LastUpdate}
			if diff := cmp.Diff(want, rep); diff != "" {
				t.Errorf("report part (-want +got):\n%s", diff)
			}
			// Every truncation is refused.
			for n := range len(rec) {
				if _, err := decodeDevice(rec[:n], false); !errors.Is(err, errDeviceRecord) {
					t.Fatalf("truncated to %d of %d bytes: err = %v, want errDeviceRecord", n, len(rec), err)
				}
			}
			if _, err := decodeDevice(append(rec, 0), false); !errors.Is(err, errDeviceRecord) {
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
		{"unknown format", []byte{0x02, 0}},
		{"string past the end", []byte{devRecV1, 5, 'a'}},
		{"version over 32 bits", []byte{devRecV1, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0, 0}},
		{"bad time tag", []byte{devRecV1, 0, 0, 0, 0, 0, 0, 2}},
		{"nanoseconds over a second", []byte{devRecV1, 0, 0, 0, 0, 0, 0, 1, 0, 0x80, 0x94, 0xeb, 0xdc, 0x03}},
		{"too many modules", append(append([]byte{devRecV1}, make([]byte, 20)...), 0xff, 0x7f)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d, err := decodeDevice(tc.rec, false); !errors.Is(err, errDeviceRecord) {
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
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		got, err := decodeDevice(data, false)
		if err != nil {
			return
		}
		back, err := decodeDevice(appendDevice(nil, &got), false)
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if !cmp.Equal(back, got) {
			t.Fatalf("round trip changed the record:\n%s", cmp.Diff(got, back))
		}
	})
}
