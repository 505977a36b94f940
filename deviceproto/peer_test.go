package deviceproto_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/deviceproto"
)

const checkInHead = `<DeviceUpdateRequest protocol="1"><DeviceType>UCPhone</DeviceType><MAC>00-04-F2-00-00-01</MAC><Vendor>Polycom</Vendor><Model>CX600</Model><Revision>A</Revision><Locale>ENU</Locale>`

func TestParseCheckInPeer(t *testing.T) {
	for _, tc := range []struct {
		name, peer  string
		serve, skip string // want; "" invalid
		err         string
	}{
		{name: "none", peer: ""},
		{name: "ipv4", peer: `<Peer address="10.1.2.3" port="47010"/>`, serve: "10.1.2.3:47010"},
		{name: "ipv6", peer: `<Peer address="2001:db8::7" port="1"/>`, serve: "[2001:db8::7]:1"},
		{name: "avoid", peer: `<Peer address="10.1.2.3" port="47010" avoid="10.1.2.9:47010"/>`, serve: "10.1.2.3:47010", skip: "10.1.2.9:47010"},
		{name: "no port", peer: `<Peer address="10.1.2.3"/>`, err: "port"},
		{name: "port 0", peer: `<Peer address="10.1.2.3" port="0"/>`, err: "port"},
		{name: "port too big", peer: `<Peer address="10.1.2.3" port="65536"/>`, err: "port"},
		{name: "port not canonical", peer: `<Peer address="10.1.2.3" port="080"/>`, err: "port"},
		{name: "a name", peer: `<Peer address="phone.local" port="80"/>`, err: "address"},
		{name: "mapped", peer: `<Peer address="::ffff:10.1.2.3" port="80"/>`, err: "address"},
		{name: "zone", peer: `<Peer address="fe80::1%eth0" port="80"/>`, err: "address"},
		{name: "unspecified", peer: `<Peer address="0.0.0.0" port="80"/>`, err: "address"},
		{name: "bad avoid", peer: `<Peer address="10.1.2.3" port="80" avoid="10.1.2.9"/>`, err: "avoid"},
		{name: "twice", peer: `<Peer address="10.1.2.3" port="80"/><Peer address="10.1.2.3" port="80"/>`, err: "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := deviceproto.ParseCheckIn([]byte(checkInHead + tc.peer + `</DeviceUpdateRequest>`))
			if tc.err != "" {
				if !errors.Is(err, deviceproto.ErrMalformed) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseCheckIn(%s) = %v, want ErrMalformed about %s", tc.peer, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := addrPort(c.Peer.Addr); got != tc.serve {
				t.Errorf("Peer = %q, want %q", got, tc.serve)
			}
			if got := addrPort(c.Peer.Avoid); got != tc.skip {
				t.Errorf("Avoid = %q, want %q", got, tc.skip)
			}
		})
	}
}

func addrPort(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func TestParseAnswerPeer(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name, attrs string
		want        deviceproto.PeerAdvice
		err         string
	}{
		{name: "none"},
		{name: "representative", attrs: `Peer="representative"`, want: deviceproto.PeerAdvice{Representative: true}},
		{name: "from", attrs: `Peer="10.1.2.3:47010" PeerDelay="60"`, want: deviceproto.PeerAdvice{From: netip.MustParseAddrPort("10.1.2.3:47010"), Delay: time.Minute}},
		{name: "from at once", attrs: `Peer="10.1.2.3:47010"`, want: deviceproto.PeerAdvice{From: netip.MustParseAddrPort("10.1.2.3:47010")}},
		{name: "delay alone", attrs: `PeerDelay="60"`, err: "without Peer"},
		{name: "representative waits", attrs: `Peer="representative" PeerDelay="60"`, err: "representative"},
		{name: "bad peer", attrs: `Peer="somewhere"`, err: "Peer="},
		{name: "negative delay", attrs: `Peer="10.1.2.3:47010" PeerDelay="-1"`, err: "PeerDelay"},
		{name: "delay too long", attrs: `Peer="10.1.2.3:47010" PeerDelay="86401"`, err: "PeerDelay"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `<DeviceUpdateResponse protocol="1" downloads="1"><Version>4.0.7577.4372</Version><Modules><Module FileName="CX600.nbt" Version="4.0.7577.4372" Size="10" SHA256="` + sha + `" ` + tc.attrs + `/></Modules></DeviceUpdateResponse>`
			a, err := deviceproto.ParseAnswer([]byte(body))
			if tc.err != "" {
				if !errors.Is(err, deviceproto.ErrMalformed) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseAnswer(%s) = %v, want ErrMalformed about %s", tc.attrs, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := a.Files[0].Peer; got != tc.want {
				t.Errorf("ParseAnswer(%s): Peer = %+v, want %+v", tc.attrs, got, tc.want)
			}
			if again, err := deviceproto.ParseAnswer(a.AppendXML(nil)); err != nil || again.Files[0].Peer != tc.want {
				t.Errorf("round trip: %+v, %v; want %+v", again.Files[0].Peer, err, tc.want)
			}
		})
	}
}

func TestParsePiecesPath(t *testing.T) {
	sha := strings.Repeat("0f", 32)
	for _, tc := range []struct {
		path  string
		index int
		ok    bool
	}{
		{"/Pieces/" + sha, -1, true},
		{"/Pieces/" + sha + "/0", 0, true},
		{"/Pieces/" + sha + "/79", 79, true},
		{"/Pieces/" + sha + "/80", 0, false}, // beyond the bound
		{"/Pieces/" + sha + "/07", 0, false},
		{"/Pieces/" + sha + "/", 0, false},
		{"/Pieces/" + strings.ToUpper(sha), 0, false},
		{"/Pieces/" + sha[:62], 0, false},
		{"/Files/" + sha, 0, false},
	} {
		_, i, ok := deviceproto.ParsePiecesPath(tc.path, 80)
		if ok != tc.ok || ok && i != tc.index {
			t.Errorf("ParsePiecesPath(%q) = %d, %v; want %d, %v", tc.path, i, ok, tc.index, tc.ok)
		}
	}
}
