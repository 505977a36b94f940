package deviceapi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/deviceapi"
	"github.com/opendus/opendus/firmware"
)

func statusBody(mac string, state firmware.State, target firmware.Version, code string) []byte {
	s := deviceproto.Status{MAC: mac, State: state, Target: target, ErrorCode: code}
	return s.AppendXML(nil)
}

func TestStatusReports(t *testing.T) {
	st := offerStore(t)
	srv := deviceapi.New(st, deviceapi.Config{Now: fixedClock})
	ctx := context.Background()
	// The device checks in on v2 and is offered v1 (cx500's approved).
	answerOf(t, do(srv.Internal(), "POST", deviceproto.CheckInPath, checkInBody(cx500, macDevice, v2)))
	steps := []struct {
		state firmware.State
		code  string
	}{
		{firmware.StateDownloading, ""}, {firmware.StateDownloaded, ""}, {firmware.StateInstalling, ""},
		{firmware.StateRebooting, ""}, {firmware.StateFailure, "0x80070005"}, {firmware.StateSuccess, ""},
	}
	for _, s := range steps {
		w := do(srv.Internal(), "POST", deviceproto.StatusPath, statusBody(macDevice, s.state, v1, s.code))
		if w.Code != 204 {
			t.Fatalf("report %s = %d %q, want 204", s.state, w.Code, w.Body.String())
		}
		if err := st.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		d, err := st.Device(ctx, macDevice)
		if err != nil {
			t.Fatal(err)
		}
		if d.State != s.state || d.Target != v1 || d.Error != s.code {
			t.Errorf("after %s: state %q target %v error %q, want %q %v %q", s.state, d.State, d.Target, d.Error, s.state, v1, s.code)
		}
		wantVersion := v2
		if s.state == firmware.StateSuccess {
			wantVersion = v1
		}
		if d.Version != wantVersion {
			t.Errorf("after %s: version %v, want %v", s.state, d.Version, wantVersion)
		}
	}
	d, _ := st.Device(ctx, macDevice)
	if !d.LastUpdate.Equal(t0) {
		t.Errorf("LastUpdate = %v, want %v", d.LastUpdate, t0)
	}
	// Checking in again on the new version: nothing more to download.
	if a := answerOf(t, do(srv.Internal(), "POST", deviceproto.CheckInPath, checkInBody(cx500, macDevice, v1))); len(a.Files) != 0 {
		t.Errorf("after success the device is offered %v, want nothing", a.Version)
	}
}

func TestStatusRefusals(t *testing.T) {
	srv := deviceapi.New(offerStore(t), deviceapi.Config{Now: fixedClock})
	good := string(statusBody(macDevice, firmware.StateDownloading, v1, ""))
	tests := []struct {
		name, method, body string
		code               int
		reason             string
	}{
		{"unknown state", "POST", strings.Replace(good, "downloading", "exploded", 1), 400, "unknown device state"},
		{"no state", "POST", strings.Replace(good, "<State>downloading</State>", "", 1), 400, "unknown device state"},
		{"no target", "POST", strings.Replace(good, "<TargetVersion>"+v1.String()+"</TargetVersion>", "", 1), 400, "TargetVersion"},
		{"error code without failure", "POST", strings.Replace(good, "</State>", "</State><ErrorCode>42</ErrorCode>", 1), 400, "only with State failure"},
		{"no device", "POST", strings.Replace(good, "<MAC>"+macDevice+"</MAC>", "", 1), 400, "neither"},
		{"check-in body", "POST", string(checkInBody(cx500, macDevice, v1)), 400, "want <DeviceStatusReport>"},
		{"too large", "POST", good + strings.Repeat("\n", deviceproto.MaxBodyBytes), 413, "larger"},
		{"GET", "GET", "", 405, "use POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(srv.Internal(), tt.method, deviceproto.StatusPath, []byte(tt.body))
			if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.reason) {
				t.Errorf("= %d %q, want %d with %q", w.Code, w.Body.String(), tt.code, tt.reason)
			}
		})
	}
}

// TestStatusOnlyAfterCheckIn: reports are taken only from devices that
// checked in, on the version they run or were offered; others are refused
// 409 with the reason, and no record is made or changed.
func TestStatusOnlyAfterCheckIn(t *testing.T) {
	st := offerStore(t)
	srv := deviceapi.New(st, deviceapi.Config{Now: fixedClock})
	ctx := context.Background()
	other := "00-04-F2-00-00-42"
	v9 := firmware.MustParseVersion("9.9.9.9")
	// macDevice checks in on v2 and is offered v1 (cx500's approved).
	answerOf(t, do(srv.Internal(), "POST", deviceproto.CheckInPath, checkInBody(cx500, macDevice, v2)))
	tests := []struct {
		name   string
		mac    string
		state  firmware.State
		target firmware.Version
		code   int
		reason string
	}{
		{"never checked in", other, firmware.StateSuccess, v9, 409, "has not checked in: check in before reporting"},
		{"never checked in, known version", other, firmware.StateDownloading, v1, 409, "has not checked in"},
		{"neither offered nor run", macDevice, firmware.StateSuccess, v9, 409, "runs " + v2.String() + ", offered " + v1.String()},
		{"offered", macDevice, firmware.StateDownloading, v1, 204, ""},
		{"runs", macDevice, firmware.StateFailure, v2, 204, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := ""
			if tt.state == firmware.StateFailure {
				code = "0x1"
			}
			w := do(srv.Internal(), "POST", deviceproto.StatusPath, statusBody(tt.mac, tt.state, tt.target, code))
			if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.reason) {
				t.Errorf("report %s on %v = %d %q, want %d with %q", tt.mac, tt.target, w.Code, w.Body.String(), tt.code, tt.reason)
			}
		})
	}
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if d, err := st.Device(ctx, other); err == nil {
		t.Errorf("a refused report made a record: %+v", d)
	}
	if d, _ := st.Device(ctx, macDevice); d.Version != v2 || d.Target != v2 || d.State != firmware.StateFailure {
		t.Errorf("device after the reports: version %v, %s on %v; want %v, failure on %v", d.Version, d.State, d.Target, v2, v2)
	}
}
