package firmware

import "testing"

func TestDeviceEventText(t *testing.T) {
	v1, v2 := MustParseVersion("1.0.0.1"), MustParseVersion("2.0.0.1")
	for _, tt := range []struct {
		ev   DeviceEvent
		want string
	}{
		{DeviceEvent{Kind: DeviceCheckIn, Version: v1}, "runs 1.0.0.1; nothing offered"},
		{DeviceEvent{Kind: DeviceCheckIn, Version: v1, Offered: v2, Site: "hq", Count: 3}, "runs 1.0.0.1; offered 2.0.0.1; from site hq; 3 times alike, the last shown"},
		{DeviceEvent{Kind: DeviceCheckIn, Version: v1, Hold: HoldWindow, Held: v2}, "runs 1.0.0.1; 2.0.0.1 held back (outside its maintenance windows)"},
		{DeviceEvent{Kind: DeviceReport, State: StateFailure, Version: v2, Detail: "0x80070005"}, "failure 2.0.0.1; error 0x80070005"},
		{DeviceEvent{Kind: "refusal", Detail: "not checked in"}, "not checked in"},
	} {
		if got := tt.ev.Text(); got != tt.want {
			t.Errorf("%+v: Text() = %q, want %q", tt.ev, got, tt.want)
		}
	}
	if got := Hold("new-kind").Text(); got != "new-kind" {
		t.Errorf("an unknown hold reads %q, want its name", got)
	}
}
