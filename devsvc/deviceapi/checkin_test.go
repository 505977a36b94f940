package deviceapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
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

const (
	macDevice = "00-04-F2-00-00-01"
	macTest   = "00-04-F2-00-00-99"
	intURL    = "https://ucupdates-r2.contoso.com/"
	extURL    = "https://ucupdates.contoso.com:4443/"
)

// offerStore holds one identity per branch of the offer:
//
//	cx600   approved v1, pending v2 (test devices get v2)
//	cx500   approved v1
//	a6725   approved v2 then restored: approved v1
//	hp4120  pending v1 only
//	cx3000  no rule
func offerStore(t testing.TB) *store.Store {
	t.Helper()
	return offerStoreWith(t, &store.Options{Now: fixedClock})
}

// offerStoreWith is offerStore opened with opts.
func offerStoreWith(t testing.TB, opts *store.Options) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	importUpdate(t, st, cx600, v1)
	approve(t, st, cx600)
	importUpdate(t, st, cx600, v2)
	importUpdate(t, st, cx500, v1)
	approve(t, st, cx500)
	importUpdate(t, st, a6725, v1)
	approve(t, st, a6725)
	importUpdate(t, st, a6725, v2)
	approve(t, st, a6725)
	if _, err := st.Restore(context.Background(), "test", a6725.Path()); err != nil {
		t.Fatal(err)
	}
	importUpdate(t, st, hp4120, v1)
	if err := st.AddTestDevice(context.Background(), "test", firmware.TestDevice{MAC: macTest}); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestCheckInOffer(t *testing.T) {
	st := offerStore(t)
	srv := deviceapi.New(st, deviceapi.Config{InternalURL: intURL, ExternalURL: extURL, Now: fixedClock})
	toaster := firmware.Identity{DeviceType: "Toaster", Vendor: "Acme", Model: "T1", Revision: "A", Locale: "ENU"}
	tests := []struct {
		name    string
		id      firmware.Identity
		mac     string
		current firmware.Version
		want    firmware.Version // zero: downloads="0"
	}{
		{"nothing: already on the approved version", cx600, macDevice, v1, firmware.Version{}},
		{"approved to a device on another version", cx500, macDevice, v2, v1},
		{"approved to a device that reports no modules", cx500, macDevice, firmware.Version{}, v1},
		{"pending to a test device", cx600, macTest, v1, v2},
		{"pending not to other devices", hp4120, macDevice, firmware.Version{}, firmware.Version{}},
		{"pending to a test device with nothing approved", hp4120, macTest, firmware.Version{}, v1},
		{"downgrade after restore", a6725, macDevice, v2, v1},
		{"unknown identity", cx3000, macDevice, v1, firmware.Version{}},
		{"unknown device type", toaster, macDevice, v1, firmware.Version{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(srv.Internal(), "POST", deviceproto.CheckInPath, checkInBody(tt.id, tt.mac, tt.current))
			a := answerOf(t, w)
			if a.Version != tt.want {
				t.Errorf("offered %v, want %v", a.Version, tt.want)
			}
			if tt.want.IsZero() {
				if len(a.Files) != 0 || !strings.Contains(w.Body.String(), `downloads="0"`) {
					t.Errorf("answer = %s, want downloads=\"0\" and no modules", w.Body.String())
				}
			} else {
				dir := tt.id.Path() + "/" + tt.want.String() + "/"
				want := deviceproto.Answer{
					Version:     tt.want,
					InternalURL: intURL + "DeviceUpdateFiles_Int/" + dir,
					ExternalURL: extURL + "DeviceUpdateFiles_Ext/" + dir,
					Files: []deviceproto.File{{
						FileName: tt.id.Model + ".nbt", Version: tt.want, Timestamp: t0, Size: 100_000, SHA256: hexSum(imageOf(tt.id, tt.want)),
						SignatureFileName: tt.id.Model + ".cat", SignatureSize: 300, SignatureSHA256: hexSum(catalogOf(tt.id, tt.want)),
					}},
				}
				got := a
				got.NextCheck, got.NextCheckAt = 0, time.Time{}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("answer (-want +got):\n%s", diff)
				}
			}
			// The check-in is in the inventory, with what was offered.
			if err := st.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			d, err := st.Device(context.Background(), tt.mac)
			if err != nil {
				t.Fatal(err)
			}
			if d.Identity != tt.id || d.Version != tt.current || d.Offered != tt.want || d.Location != firmware.Internal ||
				d.User != "alice@contoso.com" || d.Address != "192.0.2.1" || !d.LastCheckIn.Equal(t0) {
				t.Errorf("inventory record = %+v, want identity %v, version %v, offered %v, internal, alice, 192.0.2.1", d, tt.id, tt.current, tt.want)
			}
		})
	}
}

func TestCheckInURLsFromHost(t *testing.T) {
	st := offerStore(t)
	srv := deviceapi.New(st, deviceapi.Config{Now: fixedClock})
	a := answerOf(t, do(srv.Internal(), "POST", deviceproto.CheckInPath, checkInBody(cx500, macDevice, v2)))
	if got, want := a.InternalURL, "https://ucupdates-r2.contoso.com/DeviceUpdateFiles_Int/UCPhone/Polycom/CX500/A/ENU/3.5.6907.35/"; got != want {
		t.Errorf("InternalURL = %q, want %q", got, want)
	}
	if a.ExternalURL != "" {
		t.Errorf("ExternalURL = %q, want none when no external URL is configured", a.ExternalURL)
	}
}

func TestCheckInRefusals(t *testing.T) {
	st := offerStore(t)
	srv := deviceapi.New(st, deviceapi.Config{Now: fixedClock})
	good := string(checkInBody(cx600, macDevice, v1))
	tests := []struct {
		name   string
		method string
		body   string
		code   int
		reason string
	}{
		{"not XML", "POST", "hello", 400, "malformed message"},
		{"empty", "POST", "", 400, "no root element"},
		{"unclosed", "POST", strings.TrimSuffix(good, "</DeviceUpdateRequest>\n"), 400, "XML syntax error"},
		{"mismatched tags", "POST", strings.Replace(good, "</Model>", "</Modle>", 1), 400, "XML syntax error"},
		{"wrong root", "POST", "<DeviceStatusReport/>", 400, "want <DeviceUpdateRequest>"},
		{"two roots", "POST", good + "<DeviceUpdateRequest/>", 400, "second root"},
		{"bad MAC", "POST", strings.Replace(good, macDevice, "00-04-F2-00-00-ZZ", 1), 400, "MAC"},
		{"no MAC or serial", "POST", strings.Replace(good, "<MAC>"+macDevice+"</MAC>", "", 1), 400, "neither <MAC> nor <Serial>"},
		{"bad module version", "POST", strings.Replace(good, `Version="3.5.6907.35"`, `Version="3.5"`, 1), 400, "invalid version"},
		{"bad model name", "POST", strings.Replace(good, "<Model>CX600</Model>", "<Model>../../etc</Model>", 1), 400, "Model"},
		{"missing vendor", "POST", strings.Replace(good, "<Vendor>Polycom</Vendor>", "", 1), 400, "Vendor is empty"},
		{"duplicate field", "POST", strings.Replace(good, "<Model>CX600</Model>", "<Model>CX600</Model><Model>CX500</Model>", 1), 400, "appears twice"},
		{"text and elements", "POST", strings.Replace(good, "<Modules>", "<Modules>junk", 1), 400, "both text and elements"},
		{"deep nesting", "POST", strings.Replace(good, "<User>", strings.Repeat("<x>", 10)+strings.Repeat("</x>", 10)+"<User>", 1), 400, "nested"},
		{"other encoding", "POST", strings.Replace(good, "utf-8", "utf-16", 1), 400, "malformed"},
		{"too large", "POST", good + strings.Repeat(" ", deviceproto.MaxBodyBytes), 413, "larger than 65536"},
		{"GET", "GET", "", 405, "use POST"},
		{"PUT", "PUT", good, 405, "use POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(srv.Internal(), tt.method, deviceproto.CheckInPath, []byte(tt.body))
			if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.reason) {
				t.Errorf("%s = %d %q, want %d with a reason containing %q", tt.name, w.Code, w.Body.String(), tt.code, tt.reason)
			}
			if tt.code == 405 && w.Header().Get("Allow") != "POST" {
				t.Errorf("Allow = %q, want POST", w.Header().Get("Allow"))
			}
		})
	}
}

// TestRefusalsEchoLittle checks that a refusal tells the device why
// without sending back what it sent: a 2 KiB value is echoed as a short
// quoted prefix, and no answer is longer than a few hundred bytes.
func TestRefusalsEchoLittle(t *testing.T) {
	st := offerStore(t)
	srv := deviceapi.New(st, deviceapi.Config{Now: fixedClock})
	good := string(checkInBody(cx600, macDevice, v1))
	long := strings.Repeat("Z", 2000)
	tests := []struct {
		name, body, reason string
	}{
		{"long MAC", strings.Replace(good, macDevice, long, 1), `invalid MAC address "ZZZZZZZZZZZZZZZZZZZZZZZZ"...`},
		{"long element name", strings.Replace(good, "<Model>CX600</Model>", "<"+long+">x</"+long+"x>", 1), "XML syntax error"},
		{"long module version", strings.Replace(good, `Version="3.5.6907.35"`, `Version="`+long+`"`, 1), "invalid version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(srv.Internal(), "POST", deviceproto.CheckInPath, []byte(tt.body))
			got := w.Body.String()
			if w.Code != 400 || !strings.Contains(got, tt.reason) {
				t.Errorf("%s = %d %.300q, want 400 with a reason containing %q", tt.name, w.Code, got, tt.reason)
			}
			if len(got) > 300 || strings.Contains(got, strings.Repeat("Z", 64)) {
				t.Errorf("%s: the answer has %d bytes and echoes the input: %.300q", tt.name, len(got), got)
			}
		})
	}
}

// TestCheckInTooLargeStreamed sends an oversized body of unknown length
// over a real connection: the handler stops reading at the limit.
func TestCheckInTooLargeStreamed(t *testing.T) {
	st := offerStore(t)
	srv := deviceapi.New(st, deviceapi.Config{Now: fixedClock})
	ts := newTLSServer(t, srv.Internal())
	body := bytes.NewReader(append(checkInBody(cx600, macDevice, v1), bytes.Repeat([]byte(" "), 1<<20)...))
	req, err := http.NewRequest("POST", ts.URL+deviceproto.CheckInPath, struct{ *bytes.Reader }{body}) // hides the length
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status = %d, want 413", resp.StatusCode)
	}
}

// busyStore is the real store whose inventory queue is always full.
type busyStore struct{ *store.Store }

func (busyStore) RecordCheckIn(context.Context, firmware.Device) error {
	return errors.Join(errors.New("store: check-in"), store.ErrBusy)
}

func (busyStore) Report(context.Context, store.Report) error { return store.ErrBusy }

func TestShedWhenInventoryBusy(t *testing.T) {
	srv := deviceapi.New(busyStore{offerStore(t)}, deviceapi.Config{Now: fixedClock, RetryAfter: 30 * time.Second})
	for _, tt := range []struct{ path, body string }{
		{deviceproto.CheckInPath, string(checkInBody(cx600, macDevice, v1))},
		{deviceproto.StatusPath, string(statusBody(macDevice, firmware.StateDownloading, v2, ""))},
	} {
		w := do(srv.Internal(), "POST", tt.path, []byte(tt.body))
		if w.Code != http.StatusServiceUnavailable {
			t.Fatalf("POST %s = %d %q, want 503", tt.path, w.Code, w.Body.String())
		}
		ra, err := strconv.Atoi(w.Header().Get("Retry-After"))
		if err != nil || ra < 30 || ra >= 60 {
			t.Errorf("Retry-After = %q, want seconds in [30, 60)", w.Header().Get("Retry-After"))
		}
	}
}

// unwritableStore is the real store while its inventory cannot be
// written.
type unwritableStore struct{ *store.Store }

func (unwritableStore) RecordCheckIn(context.Context, firmware.Device) error {
	return fmt.Errorf("store: %w since 2026-11-21T08:00:00Z: no space left on device", store.ErrUnavailable)
}

func (unwritableStore) Report(context.Context, store.Report) error { return store.ErrUnavailable }

// TestUnavailableWhenInventoryUnwritable: a check-in or report the store
// cannot record is answered 503 with Retry-After, never 200 or 204, and
// each device is not logged.
func TestUnavailableWhenInventoryUnwritable(t *testing.T) {
	var logged bytes.Buffer
	srv := deviceapi.New(unwritableStore{offerStore(t)}, deviceapi.Config{Now: fixedClock, RetryAfter: 30 * time.Second,
		Logger: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	for _, tt := range []struct {
		h          http.Handler
		path, body string
	}{
		{srv.Internal(), deviceproto.CheckInPath, string(checkInBody(cx600, macDevice, v1))},
		{srv.Internal(), deviceproto.StatusPath, string(statusBody(macDevice, firmware.StateDownloading, v2, ""))},
	} {
		w := do(tt.h, "POST", tt.path, []byte(tt.body))
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "cannot record") {
			t.Errorf("POST %s = %d %q, want 503 saying it cannot record", tt.path, w.Code, w.Body.String())
		}
		ra, err := strconv.Atoi(w.Header().Get("Retry-After"))
		if err != nil || ra < 30 || ra >= 60 {
			t.Errorf("POST %s: Retry-After = %q, want seconds in [30, 60)", tt.path, w.Header().Get("Retry-After"))
		}
	}
	if logged.Len() > 0 {
		t.Errorf("logged per device at Warn or above:\n%s", logged.String())
	}
}

// blockingStore holds every check-in until release is closed.
type blockingStore struct {
	*store.Store
	entered chan struct{}
	release chan struct{}
}

func (b blockingStore) RecordCheckIn(ctx context.Context, d firmware.Device) error {
	b.entered <- struct{}{}
	<-b.release
	return b.Store.RecordCheckIn(ctx, d)
}

func TestShedOverInFlightLimit(t *testing.T) {
	bs := blockingStore{offerStore(t), make(chan struct{}, 8), make(chan struct{})}
	srv := deviceapi.New(bs, deviceapi.Config{Now: fixedClock, MaxInFlight: 2})
	body := checkInBody(cx600, macDevice, v1)
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range 2 {
		wg.Go(func() { codes[i] = do(srv.Internal(), "POST", deviceproto.CheckInPath, body).Code })
		<-bs.entered
	}
	// Both slots are taken: the third check-in and a report are shed.
	if w := do(srv.Internal(), "POST", deviceproto.CheckInPath, body); w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Errorf("check-in over the limit = %d (Retry-After %q), want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	if w := do(srv.External(), "POST", deviceproto.StatusPathExt, statusBody(macDevice, firmware.StateSuccess, v1, "")); w.Code != 503 {
		t.Errorf("report over the limit (the limit is shared) = %d, want 503", w.Code)
	}
	// Downloads are not limited.
	if w := do(srv.Internal(), "HEAD", deviceproto.FilesPrefix+"UCPhone/Polycom/CX600/A/ENU/"+v1.String()+"/CX600.nbt", nil); w.Code != 200 {
		t.Errorf("download while check-ins are at the limit = %d, want 200", w.Code)
	}
	close(bs.release)
	wg.Wait()
	if codes[0] != 200 || codes[1] != 200 {
		t.Errorf("the check-ins in flight got %v, want 200 both", codes)
	}
	if w := do(srv.Internal(), "POST", deviceproto.CheckInPath, body); w.Code != 200 {
		t.Errorf("check-in after the others finished = %d, want 200", w.Code)
	}
}

// fixedSchedule schedules an approval of one identity at one time.
type fixedSchedule struct {
	id firmware.Identity
	at time.Time
}

func (s fixedSchedule) Next(id firmware.Identity) (time.Time, bool) {
	return s.at, id == s.id
}

func TestNextCheck(t *testing.T) {
	st := offerStore(t)
	nextOf := func(t *testing.T, cfg deviceapi.Config, id firmware.Identity, mac string) deviceproto.Answer {
		t.Helper()
		cfg.Now = fixedClock
		return answerOf(t, do(deviceapi.New(st, cfg).Internal(), "POST", deviceproto.CheckInPath, checkInBody(id, mac, v1)))
	}
	t.Run("interval without jitter", func(t *testing.T) {
		a := nextOf(t, deviceapi.Config{CheckJitter: -1}, cx600, macDevice)
		if a.NextCheck != 24*time.Hour || !a.NextCheckAt.Equal(t0.Add(24*time.Hour)) {
			t.Errorf("next check = %v at %v, want 24h at %v", a.NextCheck, a.NextCheckAt, t0.Add(24*time.Hour))
		}
	})
	t.Run("jitter is per device, stable and spread", func(t *testing.T) {
		seen := map[time.Duration]bool{}
		for i := range 50 {
			mac := "00-04-F2-00-01-" + strconv.FormatInt(int64(10+i), 10)
			a := nextOf(t, deviceapi.Config{}, cx600, mac)
			if a.NextCheck < 23*time.Hour || a.NextCheck >= 25*time.Hour || a.NextCheck%time.Second != 0 {
				t.Errorf("%s: next check %v, want whole seconds in [23h, 25h)", mac, a.NextCheck)
			}
			if again := nextOf(t, deviceapi.Config{}, cx600, mac); again.NextCheck != a.NextCheck {
				t.Errorf("%s: next check %v then %v, want the same", mac, a.NextCheck, again.NextCheck)
			}
			seen[a.NextCheck] = true
		}
		if len(seen) < 45 {
			t.Errorf("50 devices got %d distinct next checks, want them spread", len(seen))
		}
	})
	t.Run("jitter at most the interval", func(t *testing.T) {
		a := nextOf(t, deviceapi.Config{CheckInterval: time.Hour, CheckJitter: 10 * time.Hour}, cx600, macDevice)
		if a.NextCheck < 30*time.Minute || a.NextCheck > 90*time.Minute {
			t.Errorf("next check = %v, want within [30m, 90m]", a.NextCheck)
		}
	})
	t.Run("scheduled approval brings the check forward", func(t *testing.T) {
		sched := fixedSchedule{cx600, t0.Add(3 * time.Hour)}
		a := nextOf(t, deviceapi.Config{Schedule: sched, CheckJitter: 30 * time.Minute}, cx600, macDevice)
		if a.NextCheck < 3*time.Hour || a.NextCheck >= 3*time.Hour+30*time.Minute {
			t.Errorf("next check = %v, want in [3h, 3h30m): after the scheduled approval, spread", a.NextCheck)
		}
		if b := nextOf(t, deviceapi.Config{Schedule: sched, CheckJitter: 30 * time.Minute}, cx500, macDevice); b.NextCheck < 23*time.Hour {
			t.Errorf("another identity's next check = %v, want the usual interval", b.NextCheck)
		}
	})
	t.Run("scheduled approval later than the next check", func(t *testing.T) {
		a := nextOf(t, deviceapi.Config{Schedule: fixedSchedule{cx600, t0.Add(72 * time.Hour)}, CheckJitter: -1}, cx600, macDevice)
		if a.NextCheck != 24*time.Hour {
			t.Errorf("next check = %v, want 24h", a.NextCheck)
		}
	})
	t.Run("scheduled approval in the past", func(t *testing.T) {
		a := nextOf(t, deviceapi.Config{Schedule: fixedSchedule{cx600, t0.Add(-time.Hour)}, CheckJitter: -1}, cx600, macDevice)
		if a.NextCheck != 24*time.Hour {
			t.Errorf("next check = %v, want 24h", a.NextCheck)
		}
	})
}

func TestMovedService(t *testing.T) {
	st := offerStore(t)
	tests := []struct {
		name               string
		id                 firmware.Identity
		movedInt, movedExt string
		wantInt, wantExt   string
	}{
		{"with an offer", cx500, "https://dus2.contoso.com/", "https://dus2-ext.contoso.com:4443",
			"https://dus2.contoso.com/RequestHandler/ucdevice.upx", "https://dus2-ext.contoso.com:4443/RequestHandlerExt/ucdevice.upx"},
		{"without an offer", cx600, "https://dus2.contoso.com/", "",
			"https://dus2.contoso.com/RequestHandler/ucdevice.upx", ""},
		{"check-in URLs given", cx600, "https://dus2.contoso.com/RequestHandler/ucdevice.upx", "https://edge.contoso.com/dus/RequestHandlerExt/ucdevice.upx",
			"https://dus2.contoso.com/RequestHandler/ucdevice.upx", "https://edge.contoso.com/dus/RequestHandlerExt/ucdevice.upx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := deviceapi.New(st, deviceapi.Config{Now: fixedClock, MovedInternalURL: tt.movedInt, MovedExternalURL: tt.movedExt})
			w := do(srv.Internal(), "POST", deviceproto.CheckInPath, checkInBody(tt.id, macDevice, v1))
			a := answerOf(t, w)
			if a.MovedInternalURL != tt.wantInt || a.MovedExternalURL != tt.wantExt {
				t.Errorf("moved URLs = %q, %q, want %q, %q\n%s", a.MovedInternalURL, a.MovedExternalURL, tt.wantInt, tt.wantExt, w.Body.String())
			}
		})
	}
	if a := answerOf(t, do(deviceapi.New(st, deviceapi.Config{}).Internal(), "POST", deviceproto.CheckInPath, checkInBody(cx600, macDevice, v1))); a.MovedInternalURL != "" || a.MovedExternalURL != "" {
		t.Errorf("moved URLs without a move = %q, %q, want none", a.MovedInternalURL, a.MovedExternalURL)
	}
}

func TestUnknownEndpoints(t *testing.T) {
	srv := deviceapi.New(offerStore(t), deviceapi.Config{})
	tests := []struct {
		name   string
		h      http.Handler
		method string
		path   string
	}{
		{"external check-in on the internal listener", srv.Internal(), "POST", deviceproto.CheckInPathExt},
		{"external files on the internal listener", srv.Internal(), "GET", deviceproto.FilesPrefixExt + "UCPhone/Polycom/CX600/A/ENU/" + v1.String() + "/CX600.nbt"},
		{"internal check-in on the external listener", srv.External(), "POST", deviceproto.CheckInPath},
		{"the root", srv.Internal(), "GET", "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if w := do(tt.h, tt.method, tt.path, nil); w.Code != http.StatusNotFound {
				t.Errorf("%s %s = %d, want 404", tt.method, tt.path, w.Code)
			}
		})
	}
}
