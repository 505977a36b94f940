package deviceproto_test

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/firmware"
)

// The fuzz targets feed arbitrary bytes to the parsers of what devices send
// (and what devices read). Each input is at most MaxBodyBytes (the server
// never parses more), so a run is bounded in time and memory. A message that
// parses must survive encoding and parsing again unchanged.

func FuzzParseCheckIn(f *testing.F) {
	f.Add(checkInBody(cx600, macDevice, v1))
	f.Add(checkInBody(cx500, "", firmware.Version{}))
	serial := deviceproto.CheckIn{Identity: cx3000, Serial: "CX3-000123", Modules: []firmware.Module{
		{Name: "CX3000.nbt", Version: v2, Timestamp: "2026-01-15T08:00:00Z"}, {Name: "Fonts.cat", Version: v1},
	}}
	f.Add(serial.AppendXML(nil))
	f.Add([]byte(`<DeviceUpdateRequest><DeviceType>UCPhone</DeviceType><MAC>0004f2000001</MAC><Vendor>a</Vendor><Model>b</Model><Revision>c</Revision><Locale>d</Locale></DeviceUpdateRequest>`))
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><DeviceUpdateRequest>&a;</DeviceUpdateRequest>`))
	f.Add([]byte(`<a><b><c><d><e><f><g><h><i></i></h></g></f></e></d></c></b></a>`))
	f.Add([]byte("<DeviceUpdateRequest><User>\x01</User></DeviceUpdateRequest>"))
	peer := deviceproto.CheckIn{Identity: cx600, MAC: macDevice, Peer: deviceproto.PeerServer{Addr: netip.MustParseAddrPort("10.1.2.3:47010"),
		Avoid: netip.MustParseAddrPort("[2001:db8::7]:47010")}, Modules: []firmware.Module{{Name: "CX600.nbt", Version: v1}}}
	f.Add(peer.AppendXML(nil))
	f.Add([]byte(`<DeviceUpdateRequest><MAC>0004f2000001</MAC><DeviceType>UCPhone</DeviceType><Vendor>a</Vendor><Model>b</Model><Revision>c</Revision><Locale>d</Locale><Peer address="::ffff:10.0.0.1" port="080" avoid="1.2.3.4:0"/></DeviceUpdateRequest>`))
	trust := peer
	trust.Metadata = deviceproto.MetadataTrust{Root: 2, Timestamp: 1765000000}
	f.Add(trust.AppendXML(nil))
	f.Add([]byte(`<DeviceUpdateRequest><MAC>0004f2000001</MAC><DeviceType>UCPhone</DeviceType><Vendor>a</Vendor><Model>b</Model><Revision>c</Revision><Locale>d</Locale><Metadata root="0" timestamp="-1"/></DeviceUpdateRequest>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > deviceproto.MaxBodyBytes {
			return
		}
		c, err := deviceproto.ParseCheckIn(data)
		if err != nil {
			if !errors.Is(err, deviceproto.ErrMalformed) {
				t.Fatalf("ParseCheckIn error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if c.Key() == "" {
			t.Fatalf("ParseCheckIn(%q) accepted a device without a key", data)
		}
		again, err := deviceproto.ParseCheckIn(c.AppendXML(nil))
		if err != nil {
			t.Fatalf("ParseCheckIn(AppendXML(%+v)) = %v", c, err)
		}
		if diff := cmp.Diff(c, again); diff != "" {
			t.Fatalf("round trip changed the check-in (-first +again):\n%s", diff)
		}
	})
}

func FuzzParseStatus(f *testing.F) {
	f.Add(statusBody(macDevice, firmware.StateDownloading, v1, ""))
	f.Add(statusBody("", firmware.StateFailure, v2, "0x80070005"))
	s := deviceproto.Status{Serial: "CX3-000123", State: firmware.StateFailure, Target: v2, ErrorCode: "disk full & <busy>"}
	f.Add(s.AppendXML(nil))
	f.Add([]byte(`<DeviceStatusReport><MAC>00:04:f2:00:00:01</MAC><State>success</State><TargetVersion>1.0.0.1</TargetVersion></DeviceStatusReport>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > deviceproto.MaxBodyBytes {
			return
		}
		s, err := deviceproto.ParseStatus(data)
		if err != nil {
			if !errors.Is(err, deviceproto.ErrMalformed) {
				t.Fatalf("ParseStatus error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again, err := deviceproto.ParseStatus(s.AppendXML(nil))
		if err != nil {
			t.Fatalf("ParseStatus(AppendXML(%+v)) = %v", s, err)
		}
		if diff := cmp.Diff(s, again); diff != "" {
			t.Fatalf("round trip changed the report (-first +again):\n%s", diff)
		}
	})
}

func FuzzParseAnswer(f *testing.F) {
	a := deviceproto.Answer{
		Version: v2, InternalURL: intURL + "DeviceUpdateFiles_Int/x/", ExternalURL: extURL + "DeviceUpdateFiles_Ext/x/",
		InternalURLAlt: "https://dus.contoso.com/DeviceUpdateFiles_Int/x/", ExternalURLAlt: "https://dus-ext.contoso.com/DeviceUpdateFiles_Ext/x/",
		Files: []deviceproto.File{{FileName: "CX600.nbt", Version: v2, Timestamp: t0, Size: 1234, SHA256: strings.Repeat("ab", 32),
			SignatureFileName: "CX600.cat", SignatureSize: 12, SignatureSHA256: strings.Repeat("cd", 32)}},
		NextCheck: 24 * time.Hour, NextCheckAt: t0.Add(24 * time.Hour), MovedInternalURL: "https://new/?a=1&b=2",
	}
	f.Add(a.AppendXML(nil))
	a.InstallBy = t0.Add(20 * time.Hour)
	f.Add(a.AppendXML(nil))
	none := deviceproto.Answer{NextCheck: time.Hour}
	f.Add(none.AppendXML(nil))
	none.Metadata = 1765000000
	f.Add(none.AppendXML(nil))
	none.MetadataRoot, none.Stapled = 3, []byte(`{"signed":{"_type":"timestamp"},"signatures":[]}`)
	f.Add(none.AppendXML(nil))
	a.Files[0].Peer = deviceproto.PeerAdvice{From: netip.MustParseAddrPort("10.1.2.3:47010"), Delay: time.Minute}
	f.Add(a.AppendXML(nil))
	a.Files[0].Peer = deviceproto.PeerAdvice{Representative: true}
	f.Add(a.AppendXML(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > deviceproto.MaxBodyBytes {
			return
		}
		a, err := deviceproto.ParseAnswer(data)
		if err != nil {
			if !errors.Is(err, deviceproto.ErrMalformed) {
				t.Fatalf("ParseAnswer error %v does not wrap ErrMalformed", err)
			}
			return
		}
		out := a.AppendXML(nil)
		again, err := deviceproto.ParseAnswer(out)
		if err != nil {
			t.Fatalf("ParseAnswer(AppendXML(%+v)) = %v\n%s", a, err, out)
		}
		if !bytes.Equal(again.AppendXML(nil), out) {
			t.Fatalf("round trip changed the answer:\n%s\nthen\n%s", out, again.AppendXML(nil))
		}
	})
}

func FuzzParsePiecesPath(f *testing.F) {
	sha := strings.Repeat("ab", 32)
	for _, p := range []string{deviceproto.PiecesPath(sha), deviceproto.PiecePath(sha, 79), "/Pieces/" + sha + "/01", "/Pieces/" + sha + "/-1", "/Pieces/x/1", "/Pieces/" + sha + "/1/2"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		sha, i, ok := deviceproto.ParsePiecesPath(p, 1<<14)
		if !ok {
			return
		}
		again := deviceproto.PiecesPath(sha)
		if i >= 0 {
			again = deviceproto.PiecePath(sha, i)
		}
		if again != p {
			t.Fatalf("ParsePiecesPath(%q) = %q, %d: written back as %q", p, sha, i, again)
		}
	})
}
