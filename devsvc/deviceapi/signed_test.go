package deviceapi_test

import (
	"testing"
	"time"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/deviceapi"
	"github.com/opendus/opendus/firmware"
)

// TestOfferWaitsForItsSigning: with Config.Signed, an update the served
// metadata does not sign yet is not offered; the device is told to come
// back after SignedWait (spread), and is offered it once it is signed.
func TestOfferWaitsForItsSigning(t *testing.T) {
	st := offerStore(t)
	signed := false
	var asked []firmware.Update
	srv := deviceapi.New(st, deviceapi.Config{Now: fixedClock, CheckInterval: 24 * time.Hour, Signed: func(u firmware.Update) bool {
		asked = append(asked, u)
		return signed
	}})
	old := firmware.MustParseVersion("1.0.0.1")
	body := checkInBody(cx600, "00-04-F2-00-05-01", old)
	a := answerOf(t, do(srv.Internal(), "POST", deviceproto.CheckInPath, body))
	if !a.Version.IsZero() || len(a.Files) != 0 {
		t.Fatalf("offered %s before its signing arrived", a.Version)
	}
	// SignedWait, spread over as much again by the device's key.
	if a.NextCheck > 2*deviceapi.SignedWait || a.NextCheck < deviceapi.SignedWait {
		t.Errorf("told to come back in %v, want between %v and twice that", a.NextCheck, deviceapi.SignedWait)
	}
	if len(asked) != 1 || asked[0].Identity != cx600 || asked[0].Version != v1 {
		t.Errorf("Signed asked of %+v, want cx600 %s", asked, v1)
	}
	signed = true
	a = answerOf(t, do(srv.Internal(), "POST", deviceproto.CheckInPath, body))
	if a.Version != v1 || len(a.Files) == 0 {
		t.Errorf("once signed: offered %q with %d files, want %s", a.Version, len(a.Files), v1)
	}
}
