package store

import (
	"testing"

	"github.com/opendus/opendus/firmware"
)

// TestIsTest checks devEntry.isTest with and without test devices in the
// catalog: the scans skip the lookup when there are none, and must still
// find every test device, by MAC (whatever its notation) or by serial.
func TestIsTest(t *testing.T) {
	tests := firmware.TestDevices{}
	tests.Add(firmware.TestDevice{MAC: "00:04:f2:00:00:01"})
	tests.Add(firmware.TestDevice{Serial: "SN-TEST"})
	devs := []struct {
		name string
		e    devEntry
		want bool // with the test devices
	}{
		{"test MAC as key", devEntry{key: "00-04-F2-00-00-01"}, true},
		{"test MAC in another notation", devEntry{key: "serial:X", mac: "0004f2000001", serial: "X"}, true},
		{"test serial", devEntry{key: "serial:SN-TEST", serial: "SN-TEST"}, true},
		{"other MAC", devEntry{key: "00-04-F2-00-00-02", serial: "SN-2"}, false},
		{"other serial", devEntry{key: "serial:SN-3", serial: "SN-3"}, false},
	}
	for _, c := range []struct {
		name string
		cat  *Catalog
	}{{"no test devices", &Catalog{}}, {"test devices", &Catalog{tests: tests}}} {
		for _, d := range devs {
			want := d.want && len(c.cat.tests) > 0
			if got := d.e.isTest(c.cat); got != want {
				t.Errorf("%s: %s: isTest = %v, want %v", c.name, d.name, got, want)
			}
		}
	}
}
