package deviceapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/deviceapi"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// recorder is an Observer that writes down what it is told.
type recorder struct {
	mu     sync.Mutex
	events []string
	bytes  int64
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
}

func (r *recorder) CheckIn(loc firmware.Location, a deviceapi.Answer, deviceType string) {
	r.add("checkin %s %s %s", loc, a, deviceType)
}

func (r *recorder) Report(loc firmware.Location, a deviceapi.Answer, state firmware.State) {
	r.add("report %s %s %s", loc, a, state)
}

func (r *recorder) Download(loc firmware.Location, sent int64) {
	r.add("download %s", loc)
	r.mu.Lock()
	r.bytes += sent
	r.mu.Unlock()
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// failingStore fails a check-in with an error the handlers do not know.
type failingStore struct{ *store.Store }

func (failingStore) RecordCheckIn(context.Context, firmware.Device) error {
	return fmt.Errorf("disk on fire")
}

// TestObserver checks that every way a check-in, a report and a download
// is answered is told to the Observer once, with the answer the device got.
func TestObserver(t *testing.T) {
	st := offerStore(t)
	rec := &recorder{}
	cfg := deviceapi.Config{Now: fixedClock, Observer: rec}
	srv := deviceapi.New(st, cfg)
	in, ext := srv.Internal(), srv.External()
	file := deviceproto.FilesPrefix + "UCPhone/Polycom/CX500/A/ENU/" + v1.String() + "/CX500.nbt"
	tests := []struct {
		name string
		h    http.Handler
		do   func(h http.Handler) int
		want []string
	}{
		{"nothing", in, func(h http.Handler) int {
			return do(h, "POST", deviceproto.CheckInPath, checkInBody(cx600, macDevice, v1)).Code
		}, []string{"checkin internal nothing UCPhone"}},
		{"offered", in, func(h http.Handler) int {
			return do(h, "POST", deviceproto.CheckInPath, checkInBody(cx500, macDevice, v2)).Code
		}, []string{"checkin internal offered UCPhone"}},
		{"malformed", in, func(h http.Handler) int {
			return do(h, "POST", deviceproto.CheckInPath, []byte("<junk")).Code
		}, []string{"checkin internal refused "}},
		{"no user outside", ext, func(h http.Handler) int {
			return do(h, "POST", deviceproto.CheckInPathExt, checkInBody(cx600, macDevice, v1)).Code
		}, []string{"checkin external refused UCPhone"}},
		{"shed", deviceapi.New(busyStore{st}, cfg).Internal(), func(h http.Handler) int {
			return do(h, "POST", deviceproto.CheckInPath, checkInBody(cx600, macDevice, v1)).Code
		}, []string{"checkin internal shed UCPhone"}},
		{"unavailable", deviceapi.New(unwritableStore{st}, cfg).Internal(), func(h http.Handler) int {
			return do(h, "POST", deviceproto.CheckInPath, checkInBody(cx600, macDevice, v1)).Code
		}, []string{"checkin internal unavailable UCPhone"}},
		{"failed", deviceapi.New(failingStore{st}, cfg).Internal(), func(h http.Handler) int {
			return do(h, "POST", deviceproto.CheckInPath, checkInBody(cx600, macDevice, v1)).Code
		}, []string{"checkin internal error UCPhone"}},
		{"report accepted", in, func(h http.Handler) int {
			return do(h, "POST", deviceproto.StatusPath, statusBody(macDevice, firmware.StateDownloading, v1, "")).Code
		}, []string{"report internal accepted downloading"}},
		{"report refused", in, func(h http.Handler) int {
			return do(h, "POST", deviceproto.StatusPath, statusBody("00-04-F2-00-00-42", firmware.StateSuccess, v1, "")).Code
		}, []string{"report internal refused success"}},
		{"report unreadable", in, func(h http.Handler) int {
			return do(h, "GET", deviceproto.StatusPath, nil).Code
		}, []string{"report internal refused "}},
		{"download", in, func(h http.Handler) int { return do(h, "GET", file, nil).Code }, []string{"download internal"}},
		{"download missing", in, func(h http.Handler) int {
			return do(h, "GET", strings.Replace(file, v1.String(), "9.9.9.9", 1), nil).Code
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := tt.do(tt.h)
			if diff := cmp.Diff(tt.want, rec.take()); diff != "" {
				t.Errorf("answered %d; the observer was told (-want +got):\n%s", code, diff)
			}
		})
	}
	if want := int64(len(imageOf(cx500, v1))); rec.bytes != want {
		t.Errorf("downloaded bytes told = %d, want %d", rec.bytes, want)
	}
	if got := deviceapi.Answers(); len(got) != 8 || got[len(got)-1].String() != "gone" {
		t.Errorf("Answers() = %v, want the eight answers, gone last", got)
	}
}

// TestReconfigure: the settings Reconfigure changes apply to the next
// check-in, and what the Server counted stays.
func TestReconfigure(t *testing.T) {
	st := offerStore(t)
	srv := deviceapi.New(st, deviceapi.Config{Now: fixedClock, CheckJitter: -1, InternalURL: intURL})
	in := srv.Internal()
	if a := answerOf(t, do(in, "POST", deviceproto.CheckInPath, checkInBody(cx600, macDevice, v1))); a.NextCheck != 24*time.Hour || a.MovedInternalURL != "" {
		t.Fatalf("before: next check %v, moved %q; want 24h, not moved", a.NextCheck, a.MovedInternalURL)
	}
	srv.Reconfigure(deviceapi.Config{CheckInterval: 6 * time.Hour, CheckJitter: -1, InternalURL: "https://dus.contoso.com/",
		MovedInternalURL: "https://dus2.contoso.com/"})
	a := answerOf(t, do(in, "POST", deviceproto.CheckInPath, checkInBody(cx500, macDevice, v2)))
	if a.NextCheck != 6*time.Hour || a.MovedInternalURL != "https://dus2.contoso.com/RequestHandler/ucdevice.upx" ||
		!strings.HasPrefix(a.InternalURL, "https://dus.contoso.com/") {
		t.Errorf("after Reconfigure: next check %v, moved %q, files at %q; want 6h, the new check-in URL and the new base URL",
			a.NextCheck, a.MovedInternalURL, a.InternalURL)
	}
	// Now stays the Server's: the next check is counted from the fixed clock.
	if want := t0.Add(6 * time.Hour); !a.NextCheckAt.Equal(want) {
		t.Errorf("next check at %v, want %v (the clock New was given)", a.NextCheckAt, want)
	}
	// The counts of Stats survive.
	shed := deviceapi.New(busyStore{st}, deviceapi.Config{Now: fixedClock})
	do(shed.Internal(), "POST", deviceproto.CheckInPath, checkInBody(cx600, macDevice, v1))
	shed.Reconfigure(deviceapi.Config{CheckInterval: time.Hour})
	do(shed.Internal(), "POST", deviceproto.CheckInPath, checkInBody(cx600, macDevice, v1))
	if got := shed.Stats().Shed; got != 2 {
		t.Errorf("Stats().Shed after Reconfigure = %d, want 2: the count is kept", got)
	}
}
