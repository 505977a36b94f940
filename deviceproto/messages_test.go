package deviceproto_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/firmware"
)

// TestAnswerInstallBy: an offer's InstallBy is written as an RFC 3339
// time in UTC and read back; a malformed or repeated one is refused; an
// answer without an offer has none.
func TestAnswerInstallBy(t *testing.T) {
	offer := deviceproto.Answer{
		Version: v2, InternalURL: intURL + "DeviceUpdateFiles_Int/x/",
		Files:     []deviceproto.File{{FileName: "CX600.nbt", Version: v2, Size: 10, SHA256: strings.Repeat("ab", 32)}},
		NextCheck: time.Hour,
	}
	berlin := time.FixedZone("CET", 3600)
	for _, c := range []struct {
		name    string
		by      time.Time
		want    time.Time
		element string // in the XML, "" for none
	}{
		{"none", time.Time{}, time.Time{}, ""},
		{"utc", t0.Add(20 * time.Hour), t0.Add(20 * time.Hour), "<InstallBy>2026-11-22T05:00:00Z</InstallBy>"},
		{"zone and fraction", time.Date(2026, 11, 22, 6, 0, 0, 999e6, berlin), t0.Add(20 * time.Hour), "<InstallBy>2026-11-22T05:00:00Z</InstallBy>"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := offer
			a.InstallBy = c.by
			out := a.AppendXML(nil)
			if got := strings.Contains(string(out), "<InstallBy>"); got != (c.element != "") || c.element != "" && !strings.Contains(string(out), c.element) {
				t.Errorf("AppendXML = %s, want the element %q", out, c.element)
			}
			got, err := deviceproto.ParseAnswer(out)
			if err != nil {
				t.Fatalf("ParseAnswer: %v\n%s", err, out)
			}
			if !got.InstallBy.Equal(c.want) {
				t.Errorf("InstallBy = %v, want %v", got.InstallBy, c.want)
			}
		})
	}
	base := string(offer.AppendXML(nil))
	withBy := func(elems string) []byte {
		return []byte(strings.Replace(base, "  <InternalURL>", elems+"  <InternalURL>", 1))
	}
	for _, c := range []struct {
		name string
		body []byte
		want string // in the error; "" for none
	}{
		{"not a time", withBy("<InstallBy>tonight</InstallBy>\n"), `InstallBy "tonight": want an RFC 3339 time`},
		{"twice", withBy("<InstallBy>2026-11-22T05:00:00Z</InstallBy><InstallBy>2026-11-22T05:00:00Z</InstallBy>\n"), "<InstallBy> appears twice"},
		{"with elements", withBy("<InstallBy><at/></InstallBy>\n"), "<InstallBy> must hold text"},
		{"other zone", withBy("<InstallBy>2026-11-22T06:00:00+01:00</InstallBy>\n"), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := deviceproto.ParseAnswer(c.body)
			if c.want == "" {
				if err != nil || !a.InstallBy.Equal(t0.Add(20*time.Hour)) {
					t.Errorf("ParseAnswer = InstallBy %v, %v; want %v", a.InstallBy, err, t0.Add(20*time.Hour))
				}
				return
			}
			if !errors.Is(err, deviceproto.ErrMalformed) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("ParseAnswer = %v, want ErrMalformed saying %q", err, c.want)
			}
		})
	}
	// Without an offer, InstallBy bounds nothing and is dropped.
	nothing := strings.Replace(string((&deviceproto.Answer{NextCheck: time.Hour}).AppendXML(nil)), "</DeviceUpdateResponse>", "  <InstallBy>2026-11-22T05:00:00Z</InstallBy>\n</DeviceUpdateResponse>", 1)
	if a, err := deviceproto.ParseAnswer([]byte(nothing)); err != nil || !a.InstallBy.IsZero() {
		t.Errorf("ParseAnswer(no offer, an InstallBy) = InstallBy %v, %v; want none", a.InstallBy, err)
	}
}

// TestAnswerMetadata: the signed timestamp's version round-trips, with an
// offer and without; a version that is not a canonical positive number
// is refused.
func TestAnswerMetadata(t *testing.T) {
	stapled := []byte(`{"signed":{"_type":"timestamp","version":1765000123},"signatures":[{"keyid":"k","sig":"s"}]}`)
	for _, a := range []deviceproto.Answer{
		{NextCheck: time.Hour, Metadata: 1765000123},
		{NextCheck: time.Hour, Metadata: 1765000123, MetadataRoot: 2, Stapled: stapled},
		{Version: v2, InternalURL: "https://x/", Files: []deviceproto.File{{FileName: "CX600.nbt", Version: v2, Size: 1, SHA256: strings.Repeat("ab", 32)}},
			NextCheck: time.Hour, Metadata: 7},
	} {
		b := a.AppendXML(nil)
		got, err := deviceproto.ParseAnswer(b)
		if err != nil {
			t.Fatalf("ParseAnswer(%s) = %v", b, err)
		}
		if got.Metadata != a.Metadata || got.MetadataRoot != a.MetadataRoot || string(got.Stapled) != string(a.Stapled) {
			t.Errorf("Metadata %d root %d stapled %q, want %d, %d, %q:\n%s", got.Metadata, got.MetadataRoot, got.Stapled, a.Metadata, a.MetadataRoot, a.Stapled, b)
		}
	}
	good := string((&deviceproto.Answer{NextCheck: time.Hour, Metadata: 5}).AppendXML(nil))
	for _, bad := range []string{"0", "-5", "05", "5x", "", "99999999999999999999"} {
		in := strings.Replace(good, `timestamp="5"`, `timestamp="`+bad+`"`, 1)
		if _, err := deviceproto.ParseAnswer([]byte(in)); !errors.Is(err, deviceproto.ErrMalformed) {
			t.Errorf("Metadata timestamp %q: ParseAnswer = %v, want ErrMalformed", bad, err)
		}
	}
	for _, bad := range []string{` root="0"/>`, ` root="x"/>`, `>not base64!</Metadata>`, `>=</Metadata>`} {
		in := strings.Replace(good, `timestamp="5"/>`, `timestamp="5"`+bad, 1)
		if _, err := deviceproto.ParseAnswer([]byte(in)); !errors.Is(err, deviceproto.ErrMalformed) {
			t.Errorf("Metadata %s: ParseAnswer = %v, want ErrMalformed\n%s", bad, err, in)
		}
	}
	// A timestamp too big to staple is left out: the device fetches it.
	big := deviceproto.Answer{NextCheck: time.Hour, Metadata: 5, Stapled: make([]byte, deviceproto.MaxStapledBytes+1)}
	if got, err := deviceproto.ParseAnswer(big.AppendXML(nil)); err != nil || got.Stapled != nil || got.Metadata != 5 {
		t.Errorf("an answer with a timestamp too big to staple: %v, stapled %d bytes; want none", err, len(got.Stapled))
	}
}

// TestCheckInMetadata: what a verifying device trusts round-trips; a
// root below 1 or a version that is not canonical is refused; a device
// that says nothing has the zero MetadataTrust.
func TestCheckInMetadata(t *testing.T) {
	c := deviceproto.CheckIn{Identity: cx600, MAC: macDevice, Modules: []firmware.Module{{Name: "CX600.nbt", Version: v1}},
		Metadata: deviceproto.MetadataTrust{Root: 1, Timestamp: 0}}
	b := c.AppendXML(nil)
	got, err := deviceproto.ParseCheckIn(b)
	if err != nil || got.Metadata != c.Metadata {
		t.Fatalf("ParseCheckIn = %+v, %v; want %+v\n%s", got.Metadata, err, c.Metadata, b)
	}
	c.Metadata = deviceproto.MetadataTrust{}
	if got, err := deviceproto.ParseCheckIn(c.AppendXML(nil)); err != nil || got.Metadata != (deviceproto.MetadataTrust{}) || strings.Contains(string(c.AppendXML(nil)), "Metadata") {
		t.Errorf("a device that says nothing: %+v, %v", got.Metadata, err)
	}
	for _, bad := range []string{`root="0" timestamp="1"`, `root="1" timestamp="-1"`, `root="01" timestamp="1"`, `timestamp="1"`, `root="1"`} {
		in := strings.Replace(string(b), `root="1" timestamp="0"`, bad, 1)
		if _, err := deviceproto.ParseCheckIn([]byte(in)); !errors.Is(err, deviceproto.ErrMalformed) {
			t.Errorf("Metadata %s: ParseCheckIn = %v, want ErrMalformed", bad, err)
		}
	}
}
