package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/firmware"
)

// TestFleetSummaryAndIdentityCounts counts a fleet by identity and version
// and by rollout wave, from the fleet index, against counts made here from
// the devices checked in and firmware.Cohort.
func TestFleetSummaryAndIdentityCounts(t *testing.T) {
	s := openTest(t, nil)
	ctx := context.Background()
	if err := s.AddTestDevice(ctx, "admin", firmware.TestDevice{MAC: "00-04-F2-00-00-07"}); err != nil {
		t.Fatal(err)
	}
	waves := firmware.Waves{1000, 5000, firmware.Whole}
	wantWaves := make([]int, len(waves))
	for i := range 200 {
		d := firmware.Device{MAC: fmt.Sprintf("00-04-F2-00-%02X-%02X", i>>8, i&0xff), Identity: phone, Version: v1}
		switch {
		case i%4 == 0:
			d.Version = v2
		case i%10 == 1:
			d.Identity = phone2
		}
		if err := s.RecordCheckIn(ctx, d); err != nil {
			t.Fatal(err)
		}
		key, _ := firmware.DeviceKey(d.MAC, "")
		if d.Identity == phone && i != 7 { // device 7 is a test device
			wantWaves[waves.Wave(firmware.Cohort(key))]++
		}
	}
	// 200 devices: 50 phones on v2 (i%4 == 0), 20 CX500s (i%10 == 1, all
	// odd), 130 phones on v1.
	want := []ModelVersion{
		{phone2, v1, 20},
		{phone, v2, 50},
		{phone, v1, 130},
	}
	if diff := cmp.Diff(want, s.FleetSummary()); diff != "" {
		t.Errorf("FleetSummary() (-want +got):\n%s", diff)
	}
	got := s.IdentityCounts(phone, waves)
	wantCounts := IdentityCounts{Devices: 180, ByVersion: map[firmware.Version]int{v1: 130, v2: 50}, Tests: 1, Waves: wantWaves}
	if diff := cmp.Diff(wantCounts, got); diff != "" {
		t.Errorf("IdentityCounts(phone, %s) (-want +got):\n%s", waves, diff)
	}
	if sum := wantWaves[0] + wantWaves[1] + wantWaves[2]; sum != 179 || wantWaves[0] == 0 || wantWaves[2] == 0 {
		t.Errorf("waves %v: want 179 devices spread over the three waves", wantWaves)
	}
	if got := s.IdentityCounts(table, nil); got.Devices != 0 || got.Waves != nil {
		t.Errorf("IdentityCounts of an identity without devices = %+v, want none", got)
	}
	checkConsistent(t, s)
}
