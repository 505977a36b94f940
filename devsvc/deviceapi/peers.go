package deviceapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/peers"
	"github.com/opendus/opendus/firmware"
)

// peerCheckIn handles what a check-in says about subnet peers
// (Config.Peers): a device without <Peer> leaves its group; a
// peer-capable one is alive, and when it is offered files its first image
// gets the Elector's advice. The device's <Peer> is used only on the
// internal listener, only when peers are on for its site, and only when
// its address is the one the service sees the device at or in the same
// peer subnet; otherwise it is ignored (the device downloads from the
// service) and the reason logged.
func (l *listener) peerCheckIn(r *http.Request, c *deviceproto.CheckIn, key string, site firmware.ZonedSite, seen string, files []deviceproto.File, now time.Time) {
	e := l.s.cfg.Peers
	if e == nil {
		return
	}
	if !c.Peer.Addr.IsValid() {
		e.Leave(key)
		return
	}
	if len(files) == 0 {
		e.Seen(key, "", now)
		return
	}
	if reason := l.peerRefusal(c, site, seen, e); reason != "" {
		e.Leave(key)
		if l.s.log.Enabled(r.Context(), slog.LevelInfo) {
			l.s.log.Info("peer ignored", "device", key, "peer", c.Peer.Addr.String(), "reason", reason, "remote", r.RemoteAddr)
		}
		return
	}
	sa, _ := netip.ParseAddr(seen)
	files[0].Peer = e.Advise(peers.Query{Key: key, Seen: sa.Unmap(), Serve: c.Peer.Addr, Avoid: c.Peer.Avoid, SHA256: files[0].SHA256, Now: now})
}

// peerRefusal says why a device's <Peer> is ignored, or "".
func (l *listener) peerRefusal(c *deviceproto.CheckIn, site firmware.ZonedSite, seen string, e *peers.Elector) string {
	if l.loc != firmware.Internal {
		return "the device comes through the edge: peers serve only their own LAN subnet"
	}
	if site.NoPeers {
		return "peers are off for site " + site.Name + " (devsvc sites update " + site.Name + " --peers turns them on)"
	}
	sa, err := netip.ParseAddr(seen)
	if err != nil {
		return "the service cannot tell the device's address"
	}
	sa = sa.Unmap()
	pa := c.Peer.Addr.Addr()
	if pa != sa && !e.Subnet(sa).Contains(pa) {
		return "its address " + pa.String() + " is neither the one the service sees it at (" + sa.String() +
			") nor in that address's peer subnet " + e.Subnet(sa).String() + " (peer_prefix_v4, peer_prefix_v6)"
	}
	return ""
}

// PeerStats returns the subnet peers' election state; zero when peers are
// off (Config.Peers nil).
func (s *Server) PeerStats() peers.Stats {
	if e := s.cfg.Peers; e != nil {
		return e.Stats()
	}
	return peers.Stats{}
}

// peerReport tells the Elector of a status report.
func (s *Server) peerReport(_ context.Context, key string, st firmware.State, now time.Time) {
	if e := s.cfg.Peers; e != nil {
		e.Seen(key, st, now)
	}
}
