package deviceproto

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Subnet peers (docs/protocol.md, "Subnet peers"): a device that can serve
// the pieces of the files it holds to the devices of its subnet says so in
// its check-in (CheckIn.Peer, the element <Peer address="..." port="..."/>).
// For each offered image the service then tells it, in the answer's
// Module element, either that it is its subnet's representative (it
// downloads from the service, as every device did before, and serves its
// peers) or which peer to fetch the file's pieces from, after how long.
// A device that cannot serve peers sends no <Peer> and is answered as
// before.

// PeerServer is what a peer-capable device says in its check-in.
type PeerServer struct {
	// Addr, when valid, is where the device serves the pieces of the
	// files it holds to its subnet's devices: it can take part in subnet
	// peers.
	Addr netip.AddrPort
	// Avoid, when valid, is a peer the device gave up on since its last
	// check-in (unreachable, slow, or it served a bad piece), so that the
	// service elects another.
	Avoid netip.AddrPort
}

// Equal reports whether p and o are the same (go-cmp uses it).
func (p PeerServer) Equal(o PeerServer) bool { return p == o }

// Equal reports whether a and o are the same (go-cmp uses it).
func (a PeerAdvice) Equal(o PeerAdvice) bool { return a == o }

// maxPeerDelay bounds the wait an answer may ask of a device.
const maxPeerDelay = 24 * time.Hour

// Piece paths. The service serves a file's piece list (package pieces) at
// PiecesPrefix + its SHA-256 on both device listeners; a peer serves the
// list at the same path and piece i at PiecesPrefix + SHA-256 + "/" + i,
// in plain HTTP on its subnet.
const PiecesPrefix = "/Pieces/"

// PeerAdvice is what the service tells a peer-capable device about one
// offered file.
type PeerAdvice struct {
	// Representative says the device is its subnet's representative for
	// the file: it downloads it from the service and serves its peers.
	Representative bool
	// From, when valid, is the peer (address and port of its piece
	// server) to fetch the file's pieces from once Delay has passed,
	// checking every piece against the file's piece list; the device
	// falls back to the service when the peer fails, is slow or serves a
	// bad piece.
	From  netip.AddrPort
	Delay time.Duration
}

// IsZero reports whether a carries no advice: the device downloads from
// the service as a device without peers does.
func (a PeerAdvice) IsZero() bool { return !a.Representative && !a.From.IsValid() }

// parsePeer reads a check-in's <Peer address="..." port="..."
// [avoid="addr:port"]/>: the device's piece server, and the peer it gave
// up on since its last check-in (if any). No element: the zero AddrPorts.
func parsePeer(root *node) (PeerServer, error) {
	var serve, avoid netip.AddrPort
	p, err := root.child("Peer")
	if err != nil || p == nil {
		return PeerServer{}, err
	}
	as, _ := p.attr("address")
	ps, _ := p.attr("port")
	a, err := netip.ParseAddr(as)
	if err != nil || a.Zone() != "" || a.Is4In6() || !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
		return PeerServer{}, fmt.Errorf("%w: Peer address=%q: want the IPv4 or IPv6 address the device serves its peers on", ErrMalformed, cut(as))
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || port == 0 || strconv.FormatUint(port, 10) != ps {
		return PeerServer{}, fmt.Errorf("%w: Peer port=%q: want a port number from 1 to 65535", ErrMalformed, cut(ps))
	}
	serve = netip.AddrPortFrom(a, uint16(port))
	if v, ok := p.attr("avoid"); ok {
		if avoid, err = parseAddrPort(v); err != nil {
			return PeerServer{}, fmt.Errorf("%w: Peer avoid=%q: want the address:port of a peer", ErrMalformed, cut(v))
		}
	}
	return PeerServer{Addr: serve, Avoid: avoid}, nil
}

// parseAddrPort reads "192.0.2.1:8080" or "[2001:db8::1]:8080" in its
// canonical form only (what netip writes), so that a message that parses
// is written back the same.
func parseAddrPort(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" || ap.Addr().Is4In6() || ap.Addr().IsUnspecified() || ap.String() != s {
		return netip.AddrPort{}, fmt.Errorf("%w: %q is not a canonical address:port", ErrMalformed, cut(s))
	}
	return ap, nil
}

// cut shortens a value quoted in an error.
func cut(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

// appendPeer appends a check-in's <Peer> element.
func appendPeer(b []byte, p PeerServer) []byte {
	serve, avoid := p.Addr, p.Avoid
	if !serve.IsValid() {
		return b
	}
	b = append(b, "  <Peer"...)
	b = appendAttr(b, "address", serve.Addr().String())
	b = appendAttr(b, "port", strconv.Itoa(int(serve.Port())))
	if avoid.IsValid() {
		b = appendAttr(b, "avoid", avoid.String())
	}
	return append(b, "/>\n"...)
}

// parseAdvice reads a Module's Peer and PeerDelay attributes: Peer=
// "representative", or Peer="addr:port" with PeerDelay in seconds.
func parseAdvice(m *node) (PeerAdvice, error) {
	v, ok := m.attr("Peer")
	ds, hasDelay := m.attr("PeerDelay")
	if !ok {
		if hasDelay {
			return PeerAdvice{}, fmt.Errorf("%w: Module PeerDelay without Peer", ErrMalformed)
		}
		return PeerAdvice{}, nil
	}
	if v == "representative" {
		if hasDelay {
			return PeerAdvice{}, fmt.Errorf("%w: Module PeerDelay with Peer=\"representative\"", ErrMalformed)
		}
		return PeerAdvice{Representative: true}, nil
	}
	from, err := parseAddrPort(v)
	if err != nil {
		return PeerAdvice{}, fmt.Errorf("%w: Module Peer=%q: want \"representative\" or a peer's address:port", ErrMalformed, cut(v))
	}
	a := PeerAdvice{From: from}
	if hasDelay {
		secs, err := strconv.ParseInt(ds, 10, 64)
		if err != nil || secs < 0 || secs > int64(maxPeerDelay/time.Second) || strconv.FormatInt(secs, 10) != ds {
			return PeerAdvice{}, fmt.Errorf("%w: Module PeerDelay=%q: want seconds, at most %d", ErrMalformed, cut(ds), int64(maxPeerDelay/time.Second))
		}
		a.Delay = time.Duration(secs) * time.Second
	}
	return a, nil
}

// appendAdvice appends a Module's Peer and PeerDelay attributes.
func appendAdvice(b []byte, a PeerAdvice) []byte {
	switch {
	case a.Representative:
		b = appendAttr(b, "Peer", "representative")
	case a.From.IsValid():
		b = appendAttr(b, "Peer", a.From.String())
		b = append(b, " PeerDelay=\""...)
		b = strconv.AppendInt(b, int64(a.Delay/time.Second), 10)
		b = append(b, '"')
	}
	return b
}

// PiecesPath returns the path of a file's piece list (sha is its
// lower-case hex SHA-256).
func PiecesPath(sha string) string { return PiecesPrefix + sha }

// PiecePath returns the path of piece i of a file at a peer.
func PiecePath(sha string, i int) string { return PiecesPrefix + sha + "/" + strconv.Itoa(i) }

// ParsePiecesPath reads a path under PiecesPrefix: the file's SHA-256 and,
// for a piece, its index (-1 for the list itself). ok is false for any
// other path: a digest that is not 64 lower-case hex digits, an index that
// is not a canonical number below maxPieces.
func ParsePiecesPath(p string, maxPieces int) (sha string, index int, ok bool) {
	rest, found := strings.CutPrefix(p, PiecesPrefix)
	if !found {
		return "", 0, false
	}
	sha, is, hasIndex := strings.Cut(rest, "/")
	if !isHexDigest(sha) {
		return "", 0, false
	}
	if !hasIndex {
		return sha, -1, true
	}
	n, err := strconv.Atoi(is)
	if err != nil || n < 0 || n >= maxPieces || strconv.Itoa(n) != is {
		return "", 0, false
	}
	return sha, n, true
}
