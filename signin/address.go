package signin

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// maxForwardedHops bounds the X-Forwarded-For entries looked at, from the
// right: no real chain of trusted proxies is longer.
const maxForwardedHops = 16

// AddressKey is the key an address counts under: the IPv4 address (an
// IPv4-mapped IPv6 address as IPv4), or the /64 prefix of an IPv6 address,
// since one IPv6 host usually holds a whole /64.
func AddressKey(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, err := a.Prefix(64)
	if err != nil {
		return a.String()
	}
	return p.String()
}

// ClientAddress returns the key (see AddressKey) of the address that r
// counts under: its peer's (r.RemoteAddr), or, when the peer is one of
// Config.TrustedProxies, the client that the X-Forwarded-For header names:
// the right-most entry that is not itself a trusted proxy. An entry that
// does not parse ends the walk there, leaving the request with the last
// trusted hop. A RemoteAddr that is not an address is returned as it is.
func (l *Limiter) ClientAddress(r *http.Request) string {
	client, ok := l.Client(r)
	if !ok {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return r.RemoteAddr
		}
		return host
	}
	return AddressKey(client)
}

// Client returns the address r comes from, as ClientAddress attributes
// it (the peer's, or behind trusted proxies the client X-Forwarded-For
// names), itself rather than its key; an IPv4-mapped address is its IPv4
// address. ok is false when r.RemoteAddr is not an address. Without
// trusted proxies it allocates nothing.
func (l *Limiter) Client(r *http.Request) (netip.Addr, bool) {
	peer, ok := parseHost(r.RemoteAddr)
	if !ok {
		return netip.Addr{}, false
	}
	if l.trusted(peer) {
		return l.forwardedClient(peer, r.Header.Values("X-Forwarded-For")), true
	}
	return peer, true
}

// forwardedClient walks the X-Forwarded-For values from the right, from a
// trusted peer, to the first hop that is not trusted.
func (l *Limiter) forwardedClient(peer netip.Addr, values []string) netip.Addr {
	client := peer
	hops := 0
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for v != "" {
			var entry string
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				v, entry = v[:j], v[j+1:]
			} else {
				v, entry = "", v
			}
			if hops++; hops > maxForwardedHops {
				return client
			}
			a, ok := parseHost(strings.TrimSpace(entry))
			if !ok {
				return client
			}
			client = a
			if !l.trusted(a) {
				return client
			}
		}
	}
	return client
}

// parseHost parses an address, with or without a port ("192.0.2.1",
// "192.0.2.1:443", "2001:db8::1", "[2001:db8::1]:443").
func parseHost(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// trusted reports whether a is one of the trusted proxies.
func (l *Limiter) trusted(a netip.Addr) bool {
	a = a.WithZone("")
	for _, p := range *l.proxies.Load() {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParsePrefix parses a trusted proxy: a CIDR prefix ("10.0.0.0/8",
// "2001:db8::/48") or a single address ("192.0.2.10").
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}
