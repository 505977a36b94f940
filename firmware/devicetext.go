package firmware

import (
	"fmt"
	"strings"
)

// Text describes the event for a person (devsvc devices show, the
// console's device page).
func (ev DeviceEvent) Text() string {
	var parts []string
	switch ev.Kind {
	case DeviceCheckIn:
		parts = append(parts, "runs "+ev.Version.String())
		if !ev.Offered.IsZero() {
			parts = append(parts, "offered "+ev.Offered.String())
		}
		if ev.Hold != "" {
			parts = append(parts, fmt.Sprintf("%s held back (%s)", ev.Held, ev.Hold.Text()))
		}
		if ev.Offered.IsZero() && ev.Hold == "" {
			parts = append(parts, "nothing offered")
		}
		if ev.Site != "" {
			parts = append(parts, "from site "+ev.Site)
		}
		if ev.Count > 1 {
			parts = append(parts, fmt.Sprintf("%d times alike, the last shown", ev.Count))
		}
	case DeviceReport:
		parts = append(parts, string(ev.State)+" "+ev.Version.String())
		if ev.Detail != "" {
			parts = append(parts, "error "+ev.Detail)
		}
	default:
		parts = append(parts, ev.Detail)
	}
	return strings.Join(parts, "; ")
}

// Text says for a person why a version was held back from a device.
func (h Hold) Text() string {
	switch h {
	case HoldScheduled:
		return "the rollout has not started"
	case HoldWave:
		return "its wave is not open yet"
	case HoldPaused:
		return "the rollout is paused"
	case HoldStopped:
		return "the rollout was stopped"
	case HoldFailed:
		return "it failed too often"
	case HoldRetry:
		return "it waits to retry after a failure"
	case HoldDownloads:
		return "enough devices are downloading"
	case HoldWindow:
		return "outside its maintenance windows"
	}
	return string(h)
}
