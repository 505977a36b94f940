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

// TestAnswerStaplesTheTimestamp: every answer names the timestamp's and
// the latest root's versions; the signed timestamp itself goes only to a
// device whose check-in says it trusts an older one, never to one that
// says nothing, trusts it already, or is ahead (a replica behind its
// primary would staple what the device refuses).
func TestAnswerStaplesTheTimestamp(t *testing.T) {
	st := offerStore(t)
	signedTS := []byte(`{"signed":{"_type":"timestamp","version":40}}`)
	srv := deviceapi.New(st, deviceapi.Config{Now: fixedClock, CheckInterval: 24 * time.Hour,
		Metadata: func() (int64, int64, []byte) { return 40, 2, signedTS }})
	for _, tc := range []struct {
		name    string
		trust   deviceproto.MetadataTrust
		stapled bool
	}{
		{"says nothing", deviceproto.MetadataTrust{}, false},
		{"trusts none yet", deviceproto.MetadataTrust{Root: 1}, true},
		{"trusts an older one", deviceproto.MetadataTrust{Root: 2, Timestamp: 39}, true},
		{"trusts it", deviceproto.MetadataTrust{Root: 2, Timestamp: 40}, false},
		{"ahead", deviceproto.MetadataTrust{Root: 2, Timestamp: 41}, false},
	} {
		c := deviceproto.CheckIn{Identity: cx600, MAC: "00-04-F2-00-05-02", Metadata: tc.trust,
			Modules: []firmware.Module{{Name: "CX600.nbt", Version: v1}}}
		a := answerOf(t, do(srv.Internal(), "POST", deviceproto.CheckInPath, c.AppendXML(nil)))
		if a.Metadata != 40 || a.MetadataRoot != 2 {
			t.Errorf("%s: the answer names timestamp %d and root %d, want 40 and 2", tc.name, a.Metadata, a.MetadataRoot)
		}
		if got := string(a.Stapled) == string(signedTS); got != tc.stapled || !got && a.Stapled != nil {
			t.Errorf("%s: stapled %q, want stapled %v", tc.name, a.Stapled, tc.stapled)
		}
	}
}
