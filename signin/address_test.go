package signin

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestAddressKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
	}
	for _, tt := range tests {
		if got := AddressKey(netip.MustParseAddr(tt.in)); got != tt.want {
			t.Errorf("AddressKey(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestClientAddress(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		remote  string
		xff     []string
		want    string
	}{
		{"no proxies: the peer", nil, "192.0.2.1:50000", nil, "192.0.2.1"},
		{"no proxies: the header is ignored", nil, "192.0.2.1:50000", []string{"198.51.100.7"}, "192.0.2.1"},
		{"untrusted peer: the header is ignored", proxies, "192.0.2.1:50000", []string{"198.51.100.7"}, "192.0.2.1"},
		{"trusted proxy: its client", proxies, "10.0.0.5:443", []string{"198.51.100.7"}, "198.51.100.7"},
		{"trusted proxy without a header: the proxy", proxies, "10.0.0.5:443", nil, "10.0.0.5"},
		{"a chain of trusted proxies", proxies, "10.0.0.5:443", []string{"198.51.100.7, 10.1.1.1, 10.2.2.2"}, "198.51.100.7"},
		{"the client cannot forge the hops left of its own", proxies, "10.0.0.5:443", []string{"203.0.113.9, 198.51.100.7"}, "198.51.100.7"},
		{"several headers are one list", proxies, "10.0.0.5:443", []string{"203.0.113.9", "198.51.100.7, 10.1.1.1"}, "198.51.100.7"},
		{"a malformed hop stops at the last trusted one", proxies, "10.0.0.5:443", []string{"198.51.100.7, unknown, 10.1.1.1"}, "10.1.1.1"},
		{"a malformed last hop: the proxy", proxies, "10.0.0.5:443", []string{"garbage"}, "10.0.0.5"},
		{"empty entries are malformed", proxies, "10.0.0.5:443", []string{"198.51.100.7,,"}, "10.0.0.5"},
		{"hops with ports", proxies, "10.0.0.5:443", []string{"198.51.100.7:1234"}, "198.51.100.7"},
		{"IPv6 hops", proxies, "[2001:db8:ffff::1]:443", []string{"[2001:db8:1:2::7]:1234"}, "2001:db8:1:2::/64"},
		{"bare IPv6 hop", proxies, "[2001:db8:ffff::1]:443", []string{"2001:db8:1:2::7"}, "2001:db8:1:2::/64"},
		{"every hop trusted: the left-most", proxies, "10.0.0.5:443", []string{"10.9.9.9, 10.1.1.1"}, "10.9.9.9"},
		{"a mapped peer is the IPv4 one", proxies, "[::ffff:10.0.0.5]:443", []string{"198.51.100.7"}, "198.51.100.7"},
		{"a remote that is no address", proxies, "pipe", nil, "pipe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(Config{TrustedProxies: tt.trusted})
			r := &http.Request{RemoteAddr: tt.remote, Header: http.Header{}}
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := l.ClientAddress(r); got != tt.want {
				t.Errorf("ClientAddress(%s, X-Forwarded-For %q) = %q, want %q", tt.remote, tt.xff, got, tt.want)
			}
		})
	}
}

// TestClient: Client attributes as ClientAddress does, but returns the
// address itself (the whole IPv6 address, not its /64).
func TestClient(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	tests := []struct {
		remote string
		xff    string
		want   string // "" for none
	}{
		{"192.0.2.1:50000", "198.51.100.7", "192.0.2.1"},
		{"10.0.0.5:443", "198.51.100.7, 10.1.1.1", "198.51.100.7"},
		{"[2001:db8:ffff::1]:443", "[2001:db8:1:2::7]:1234", "2001:db8:1:2::7"},
		{"[2001:db8:1:2::9]:443", "", "2001:db8:1:2::9"},
		{"[::ffff:192.0.2.1]:443", "", "192.0.2.1"},
		{"pipe", "", ""},
	}
	l := New(Config{TrustedProxies: proxies})
	for _, tt := range tests {
		r := &http.Request{RemoteAddr: tt.remote, Header: http.Header{}}
		if tt.xff != "" {
			r.Header.Add("X-Forwarded-For", tt.xff)
		}
		got, ok := l.Client(r)
		if tt.want == "" {
			if ok {
				t.Errorf("Client(%s) = %v, want none", tt.remote, got)
			}
			continue
		}
		if !ok || got.String() != tt.want {
			t.Errorf("Client(%s, X-Forwarded-For %q) = %v, %v; want %s", tt.remote, tt.xff, got, ok, tt.want)
		}
	}
}

// TestClientAddressHops checks that a long header is looked at from the
// right for at most maxForwardedHops entries.
func TestClientAddressHops(t *testing.T) {
	l := New(Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	r := &http.Request{RemoteAddr: "10.0.0.1:1", Header: http.Header{}}
	r.Header.Add("X-Forwarded-For", "198.51.100.7")
	for range maxForwardedHops {
		r.Header.Add("X-Forwarded-For", "10.1.1.1")
	}
	if got := l.ClientAddress(r); got != "10.1.1.1" {
		t.Errorf("ClientAddress past %d trusted hops = %q, want the last one looked at, 10.1.1.1", maxForwardedHops, got)
	}
}

func TestParsePrefix(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"10.0.0.0/8", "10.0.0.0/8", true},
		{"10.1.2.3/8", "10.0.0.0/8", true},
		{"192.0.2.10", "192.0.2.10/32", true},
		{"2001:db8::/48", "2001:db8::/48", true},
		{"2001:db8::1", "2001:db8::1/128", true},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8", true},
		{"10.0.0.0/33", "", false},
		{"proxy.contoso.com", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		p, err := ParsePrefix(tt.in)
		if (err == nil) != tt.ok || (tt.ok && p.String() != tt.want) {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s, ok %v", tt.in, p, err, tt.want, tt.ok)
		}
	}
}

// FuzzClientAddress feeds X-Forwarded-For headers and peers: the answer is
// always an address key, and it is the peer's unless the peer is trusted.
func FuzzClientAddress(f *testing.F) {
	for _, s := range []struct{ remote, xff string }{
		{"10.0.0.5:443", "198.51.100.7"},
		{"10.0.0.5:443", "198.51.100.7, 10.1.1.1"},
		{"192.0.2.1:1", "10.0.0.1"},
		{"[2001:db8::1]:443", "[2001:db8:1::7]:80, unknown"},
		{"10.0.0.5:443", ",,,"},
	} {
		f.Add(s.remote, s.xff)
	}
	l := New(Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}})
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {xff}}}
		got := l.ClientAddress(r)
		peer, ok := parseHost(remote)
		if !ok {
			return
		}
		if !l.trusted(peer) {
			if want := AddressKey(peer); got != want {
				t.Errorf("ClientAddress(%q, %q) = %q, want the untrusted peer's %q", remote, xff, got, want)
			}
			return
		}
		if _, err := netip.ParseAddr(got); err != nil {
			if _, err := netip.ParsePrefix(got); err != nil {
				t.Errorf("ClientAddress(%q, %q) = %q, not an address key", remote, xff, got)
			}
		}
	})
}
