package firmware

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDeviceAddEvent(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	checkIn := func(h int, offered Version, hold Hold) DeviceEvent {
		return DeviceEvent{Time: at(h), Kind: DeviceCheckIn, Version: v2, Offered: offered, Hold: hold, Site: "hq"}
	}
	tests := []struct {
		name string
		add  []DeviceEvent
		want []DeviceEvent
	}{
		{"first", []DeviceEvent{checkIn(0, v3, "")}, []DeviceEvent{checkIn(0, v3, "")}},
		{"alike check-ins merge", []DeviceEvent{checkIn(0, Version{}, HoldWave), checkIn(1, Version{}, HoldWave), checkIn(2, Version{}, HoldWave)},
			[]DeviceEvent{{Time: at(2), Kind: DeviceCheckIn, Version: v2, Hold: HoldWave, Site: "hq", Count: 3}}},
		{"a change starts an entry", []DeviceEvent{checkIn(0, Version{}, HoldWave), checkIn(1, v3, "")},
			[]DeviceEvent{checkIn(0, Version{}, HoldWave), checkIn(1, v3, "")}},
		{"a report between check-ins", []DeviceEvent{checkIn(0, v3, ""), {Time: at(1), Kind: DeviceReport, Version: v3, State: StateDownloading}, checkIn(2, v3, "")},
			[]DeviceEvent{checkIn(0, v3, ""), {Time: at(1), Kind: DeviceReport, Version: v3, State: StateDownloading}, checkIn(2, v3, "")}},
		{"reports never merge", []DeviceEvent{{Time: at(0), Kind: DeviceReport, State: StateFailure}, {Time: at(1), Kind: DeviceReport, State: StateFailure}},
			[]DeviceEvent{{Time: at(0), Kind: DeviceReport, State: StateFailure}, {Time: at(1), Kind: DeviceReport, State: StateFailure}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Device
			for _, e := range tt.add {
				d.AddEvent(e)
			}
			if diff := cmp.Diff(tt.want, d.History); diff != "" {
				t.Errorf("History (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("keeps the last", func(t *testing.T) {
		var d Device
		for i := range DeviceHistoryLen + 5 {
			d.AddEvent(DeviceEvent{Time: at(i), Kind: DeviceRefusal, Detail: fmt.Sprint(i)})
		}
		if len(d.History) != DeviceHistoryLen || d.History[0].Detail != "5" || d.History[DeviceHistoryLen-1].Detail != fmt.Sprint(DeviceHistoryLen+4) {
			t.Errorf("History = %d events from %q to %q, want %d from \"5\"", len(d.History), d.History[0].Detail, d.History[len(d.History)-1].Detail, DeviceHistoryLen)
		}
	})
}

func TestAttemptOutcomeOf(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	p := RetryPolicy{}
	tests := []struct {
		name     string
		a        Attempt
		v, cur   Version
		want     Outcome
		wantTake bool
	}{
		{"never offered", Attempt{}, v3, v2, OutcomeWaiting, false},
		{"runs it", Attempt{}, v3, v3, OutcomeInstalled, false},
		{"offered another version", Attempt{Version: v2, Offered: t0}, v3, v1, OutcomeWaiting, true},
		{"runs the other version", Attempt{Version: v2, Offered: t0}, v3, v2, OutcomeWaiting, false},
		{"offered v", Attempt{Version: v3, Offered: t0}, v3, v2, OutcomeOffered, true},
		{"downloading v", Attempt{Version: v3, Offered: t0, State: StateDownloading, Reported: t0}, v3, v2, OutcomeDownloading, true},
		{"failed v", Attempt{Version: v3, Offered: t0, Failures: 9, Failed: t0, State: StateFailure, Reported: t0}, v3, v2, OutcomeFailed, false},
		{"no version", Attempt{}, Version{}, Version{}, OutcomeWaiting, false},
	}
	for _, tt := range tests {
		if got := tt.a.OutcomeOf(tt.v, tt.cur, p, t0.Add(time.Minute)); got != tt.want {
			t.Errorf("%s: OutcomeOf = %s, want %s", tt.name, got, tt.want)
		}
		if got := tt.a.Taking(tt.cur, p, t0.Add(time.Minute)); got != tt.wantTake {
			t.Errorf("%s: Taking = %v, want %v", tt.name, got, tt.wantTake)
		}
	}
}
