package deviceapi_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/deviceapi"
	"github.com/opendus/opendus/devsvc/peers"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/pieces"
)

func TestPieces(t *testing.T) {
	st := offerStore(t)
	srv := deviceapi.New(st, deviceapi.Config{})
	data := imageOf(cx500, v1)
	list, err := pieces.Compute(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	sha := hexSum(data)
	for _, tc := range []struct {
		name, method, path string
		code               int
		body               []byte
	}{
		{"the list", "GET", deviceproto.PiecesPath(sha), 200, list.Marshal()},
		{"again, cached", "GET", deviceproto.PiecesPath(sha), 200, list.Marshal()},
		{"HEAD", "HEAD", deviceproto.PiecesPath(sha), 200, nil},
		{"a catalog's list", "GET", deviceproto.PiecesPath(hexSum(catalogOf(cx500, v1))), 200, nil},
		{"no such file", "GET", deviceproto.PiecesPath(strings.Repeat("0", 64)), 404, nil},
		{"a piece: peers serve pieces, the service files", "GET", deviceproto.PiecePath(sha, 0), 400, nil},
		{"upper-case digest", "GET", deviceproto.PiecesPath(strings.ToUpper(sha)), 400, nil},
		{"POST", "POST", deviceproto.PiecesPath(sha), 405, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(srv.Internal(), tc.method, tc.path, nil)
			if w.Code != tc.code {
				t.Fatalf("%s %s = %d %q, want %d", tc.method, tc.path, w.Code, w.Body.String(), tc.code)
			}
			if tc.body != nil && !bytes.Equal(w.Body.Bytes(), tc.body) {
				t.Errorf("%s %s: body %q, want the list %q", tc.method, tc.path, w.Body.String(), tc.body)
			}
			if tc.code == 200 {
				if _, err := pieces.Parse(w.Body.Bytes()); err != nil && tc.method == "GET" {
					t.Errorf("the list does not parse: %v", err)
				}
				if got := w.Header().Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
					t.Errorf("Cache-Control = %q, want immutable", got)
				}
			}
		})
	}
	if w := do(srv.External(), "GET", deviceproto.PiecesPath(sha), nil); w.Code != http.StatusForbidden {
		t.Errorf("external listener without NTLM user: %d, want 403", w.Code)
	}
}

// peerCheckIn sends a check-in of a peer-capable cx500 device at v0
// (offered v1) from remote, serving peers at serve.
func peerCheckIn(t *testing.T, h http.Handler, mac, remote, serve, avoid string) deviceproto.Answer {
	t.Helper()
	c := deviceproto.CheckIn{Identity: cx500, MAC: mac, Modules: []firmware.Module{{Name: "CX500.nbt", Version: firmware.MustParseVersion("1.0.0.1")}}}
	if serve != "" {
		c.Peer.Addr = netip.MustParseAddrPort(serve)
	}
	if avoid != "" {
		c.Peer.Avoid = netip.MustParseAddrPort(avoid)
	}
	req := httptest.NewRequest("POST", deviceproto.CheckInPath, bytes.NewReader(c.AppendXML(nil)))
	req.RemoteAddr = remote
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return answerOf(t, w)
}

func TestPeerAdvice(t *testing.T) {
	st := offerStore(t)
	e := peers.New(peers.Config{})
	srv := deviceapi.New(st, deviceapi.Config{Now: fixedClock, Peers: e})
	h := srv.Internal()
	rep := deviceproto.PeerAdvice{Representative: true}
	from := func(s string) deviceproto.PeerAdvice {
		return deviceproto.PeerAdvice{From: netip.MustParseAddrPort(s), Delay: peers.DefaultDelay}
	}
	// After d1 fails, d2 or d3 is elected, by rank.
	replaced := func(got deviceproto.PeerAdvice) bool {
		return got.Representative || got == from("10.1.2.13:47010")
	}
	for _, tc := range []struct {
		name, mac, remote, serve, avoid string
		want                            deviceproto.PeerAdvice
		ok                              func(deviceproto.PeerAdvice) bool // instead of want
	}{
		{"an old device: no advice", "00-04-F2-00-01-00", "10.1.2.1:5000", "", "", deviceproto.PeerAdvice{}, nil},
		{"the first peer-capable device is representative", "00-04-F2-00-01-01", "10.1.2.1:5000", "10.1.2.11:47010", "", rep, nil},
		{"the next waits and fetches from it", "00-04-F2-00-01-02", "10.1.2.1:5001", "10.1.2.12:47010", "", from("10.1.2.11:47010"), nil},
		{"the address it is seen at", "00-04-F2-00-01-03", "10.1.2.13:5001", "10.1.2.13:47010", "", from("10.1.2.11:47010"), nil},
		{"another subnet has its own", "00-04-F2-00-02-01", "10.1.3.1:5000", "10.1.3.11:47010", "", rep, nil},
		{"a server outside its subnet is ignored", "00-04-F2-00-02-02", "10.1.3.1:5000", "10.9.9.9:47010", "", deviceproto.PeerAdvice{}, nil},
		{"a peer that failed is replaced", "00-04-F2-00-01-02", "10.1.2.1:5001", "10.1.2.12:47010", "10.1.2.11:47010", deviceproto.PeerAdvice{}, replaced},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := peerCheckIn(t, h, tc.mac, tc.remote, tc.serve, tc.avoid)
			if len(a.Files) == 0 {
				t.Fatalf("no offer: %+v", a)
			}
			if got := a.Files[0].Peer; tc.ok != nil && !tc.ok(got) || tc.ok == nil && got != tc.want {
				t.Errorf("advice %+v, want %+v", got, tc.want)
			}
		})
	}
	if w := do(h, "POST", deviceproto.StatusPath, statusBody("00-04-F2-00-01-01", firmware.StateDownloaded, v1, "")); w.Code != http.StatusNoContent {
		t.Fatalf("status: %d %s", w.Code, w.Body.String())
	}
	if s := e.Stats(); s.Holders != 1 {
		t.Errorf("after a downloaded report: %d holders, want 1", s.Holders)
	}
}

// TestPeerIgnored checks the cases where a device's <Peer> is ignored: it
// is then answered as a device without peers.
func TestPeerIgnored(t *testing.T) {
	st := offerStore(t)
	ctx := t.Context()
	lab := firmware.Site{Name: "lab", Subnets: []netip.Prefix{netip.MustParsePrefix("10.7.0.0/16")}, NoPeers: true}
	if _, err := st.PutSite(ctx, "test", lab, false); err != nil {
		t.Fatal(err)
	}
	srv := deviceapi.New(st, deviceapi.Config{Now: fixedClock, Peers: peers.New(peers.Config{})})
	for _, tc := range []struct {
		name, remote, serve string
	}{
		{"a site without peers", "10.7.1.1:5000", "10.7.1.11:47010"},
		{"another subnet than the one it is seen at", "10.1.2.1:5000", "10.1.3.11:47010"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := peerCheckIn(t, srv.Internal(), "00-04-F2-00-03-01", tc.remote, tc.serve, "")
			if len(a.Files) == 0 || !a.Files[0].Peer.IsZero() {
				t.Errorf("answer %+v, want an offer without advice", a.Files)
			}
		})
	}
	// Through the edge: no peers (the handler refuses it without NTLM
	// anyway; the refusal is the edge's, before any advice).
	c := deviceproto.CheckIn{Identity: cx500, MAC: "00-04-F2-00-03-02", Peer: deviceproto.PeerServer{Addr: netip.MustParseAddrPort("10.1.2.11:47010")}}
	if w := do(srv.External(), "POST", deviceproto.CheckInPathExt, c.AppendXML(nil)); w.Code != http.StatusForbidden {
		t.Errorf("external check-in without NTLM: %d, want 403", w.Code)
	}
}

// BenchmarkCheckInPeers is the check-in path (as BenchmarkCheckInHandler)
// with subnet peers off, on for devices that do not announce themselves,
// and on for peer-capable devices that are offered an update (an election
// each): what the Elector costs a check-in.
func BenchmarkCheckInPeers(b *testing.B) {
	for _, tc := range []struct {
		name       string
		on, serves bool
	}{{"peers=off", false, false}, {"peers=on/old-devices", true, false}, {"peers=on/peer-devices", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			st := offerStoreWith(b, &store.Options{Now: fixedClock})
			cfg := deviceapi.Config{Now: fixedClock, MaxInFlight: 1 << 20}
			if tc.on {
				cfg.Peers = peers.New(peers.Config{})
			}
			h := deviceapi.New(st, cfg).Internal()
			const n = 10_000
			bodies, remotes := make([][]byte, n), make([]string, n)
			for i := range n {
				a := netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)})
				c := deviceproto.CheckIn{Identity: cx500, MAC: fmt.Sprintf("00-04-F2-%02X-%02X-%02X", i>>16&0xff, i>>8&0xff, i&0xff),
					Modules: []firmware.Module{{Name: "CX500.nbt", Version: firmware.MustParseVersion("1.0.0.1")}}}
				if tc.serves {
					c.Peer.Addr = netip.AddrPortFrom(a, 47010)
				}
				bodies[i], remotes[i] = c.AppendXML(nil), netip.AddrPortFrom(a, 50000).String()
			}
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: http.Header{}}
				for pb.Next() {
					i := next.Add(1) % n
					req := httptest.NewRequest("POST", deviceproto.CheckInPath, bytes.NewReader(bodies[i]))
					req.RemoteAddr = remotes[i]
					clear(w.h)
					w.code = 0
					h.ServeHTTP(w, req)
					if w.code != 200 {
						b.Fatalf("status %d", w.code)
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checkins/s")
			st.Flush(context.Background())
		})
	}
}
