package simulator

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ntlmssp "github.com/Azure/go-ntlmssp"
	"github.com/miekg/dns"

	"github.com/opendus/opendus/provisioning"
)

// Service is where the simulated devices find the update service, and
// what they trust.
type Service struct {
	// Domain is the devices' domain: a device nobody ever signed in to
	// looks up ucupdates-r2.<Domain>. Default: the domain of InternalURL's
	// host when that is ucupdates-r2.<domain>.
	Domain string
	// InternalURL is the base URL of the internal listener
	// (https://ucupdates-r2.contoso.com:8443/): LAN devices sign in there,
	// and its port is the one a device uses with the name it found in DNS.
	InternalURL string
	// ExternalURL is the base URL of the edge (external listener): remote
	// devices sign in and check in there with NTLM.
	ExternalURL string
	// RootCAs are the CAs devices trust: the service's CA only
	// (DIR/certs/ca.pem, see LoadCA).
	RootCAs *x509.CertPool
	// Hosts are the names the simulator's DNS server answers, with their
	// addresses. Default: the hosts of InternalURL and ExternalURL, and
	// ucupdates-r2.<Domain>, all 127.0.0.1 (names that are addresses are
	// left out).
	Hosts map[string]netip.Addr
	// ClockFile, when set, is the simulated clock the service runs on
	// (devsvc serve --simulated-clock; package internal/simclock): the
	// simulation drives it, so the service's rollouts, waves, windows and
	// alarms run on the devices' time line. A run then starts at the
	// clock's time (Scenario.Start, if set, may not be earlier), and
	// RunUntil moves the clock to the earliest event not yet handled, so
	// the service's time is never ahead of a device's.
	ClockFile string
	// Root is the root of the signed update metadata the devices come
	// provisioned with (DIR/keys/root/1.root.json; LoadService reads it);
	// devices that sign in take the one of the provisioning document.
	// A device that holds a root verifies every answer against the signed
	// metadata (Config.NoVerify turns it off). nil: no device verifies
	// until it signs in.
	Root []byte
	// RelayURL, when set, is the base URL of a relay (a replica or a
	// cache, possibly compromised) between the LAN devices and the
	// service: they check in, fetch metadata and download through it, and
	// go to the service itself (InternalURL, or where provisioning or DNS
	// sent them) once they refused what it served, for the rest of the
	// run.
	RelayURL string
}

// ErrService is returned when a Service is incomplete or its URLs invalid.
var ErrService = errors.New("invalid service")

// normalize checks s and fills in its defaults.
func (s *Service) normalize() error {
	if s.RootCAs == nil {
		return fmt.Errorf("%w: no CA to trust (RootCAs)", ErrService)
	}
	in, err := baseURL(s.InternalURL)
	if err != nil {
		return fmt.Errorf("%w: internal URL: %w", ErrService, err)
	}
	s.InternalURL = in
	if s.RelayURL != "" {
		if s.RelayURL, err = baseURL(s.RelayURL); err != nil {
			return fmt.Errorf("%w: relay URL: %w", ErrService, err)
		}
	}
	if s.ExternalURL != "" {
		if s.ExternalURL, err = baseURL(s.ExternalURL); err != nil {
			return fmt.Errorf("%w: external URL: %w", ErrService, err)
		}
	}
	u, _ := url.Parse(s.InternalURL)
	if s.Domain == "" {
		if d, ok := strings.CutPrefix(u.Hostname(), "ucupdates-r2."); ok {
			s.Domain = d
		}
	}
	if s.Hosts == nil {
		loop := netip.MustParseAddr("127.0.0.1")
		s.Hosts = map[string]netip.Addr{}
		for _, raw := range []string{s.InternalURL, s.ExternalURL} {
			if u, err := url.Parse(raw); err == nil && u.Hostname() != "" {
				if _, err := netip.ParseAddr(u.Hostname()); err != nil {
					s.Hosts[strings.ToLower(u.Hostname())] = loop
				}
			}
		}
		if s.Domain != "" {
			s.Hosts["ucupdates-r2."+strings.ToLower(s.Domain)] = loop
		}
	}
	return nil
}

// internalPort is the port of the internal URL: a device that found the
// service's name in DNS uses it (real devices use 443).
func (s *Service) internalPort() string {
	u, _ := url.Parse(s.InternalURL)
	if p := u.Port(); p != "" {
		return p
	}
	return "443"
}

// baseURL checks that raw is an https URL with a host and returns it with
// no path, ending in "/".
func baseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("%q: want https://host[:port]/", raw)
	}
	return "https://" + u.Host + "/", nil
}

// LoadCA reads a PEM file of CA certificates, such as DIR/certs/ca.pem,
// into a pool: what the simulated devices trust.
func LoadCA(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	n := 0
	for len(data) > 0 {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	return pool, nil
}

// dnsServer is the test DNS server the simulator runs on loopback: it
// answers A queries for the service's names, an empty answer for their
// other types, and NXDOMAIN for every other name.
type dnsServer struct {
	udp, tcp *dns.Server
	addr     string
}

func startDNS(hosts map[string]netip.Addr) (*dnsServer, error) {
	zone := make(map[string]netip.Addr, len(hosts))
	for name, a := range hosts {
		zone[dns.Fqdn(strings.ToLower(name))] = a
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		if len(r.Question) != 1 {
			m.Rcode = dns.RcodeFormatError
			w.WriteMsg(m)
			return
		}
		q := r.Question[0]
		a, ok := zone[strings.ToLower(q.Name)]
		switch {
		case !ok:
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeA && a.Is4():
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: a.AsSlice()})
		case q.Qtype == dns.TypeAAAA && a.Is6():
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 300}, AAAA: a.AsSlice()})
		}
		w.WriteMsg(m)
	})
	// UDP and TCP on the same port (a truncated answer is asked again over
	// TCP); another program may hold the TCP port, so try a few.
	var (
		pc  net.PacketConn
		ln  net.Listener
		err error
	)
	for range 20 {
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("dns server: %w", err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("dns server: %w", err)
	}
	s := &dnsServer{addr: pc.LocalAddr().String()}
	var ready sync.WaitGroup
	ready.Add(2)
	s.udp = &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: ready.Done}
	s.tcp = &dns.Server{Listener: ln, Handler: h, NotifyStartedFunc: ready.Done}
	go s.udp.ActivateAndServe()
	go s.tcp.ActivateAndServe()
	ready.Wait()
	return s, nil
}

func (s *dnsServer) close() {
	s.udp.Shutdown()
	s.tcp.Shutdown()
}

// dialer connects devices to the service: it resolves names through the
// simulator's DNS server (caching answers, as devices do) and dials TCP.
type dialer struct {
	net      net.Dialer
	resolver *net.Resolver
	mu       *sync.Mutex // guards cache, which dialers of other sources share
	cache    map[string]string
}

func newDialer(dnsAddr string) *dialer {
	d := &dialer{cache: map[string]string{}, mu: &sync.Mutex{}}
	d.net.Timeout = 10 * time.Second
	d.resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var nd net.Dialer
		return nd.DialContext(ctx, network, dnsAddr)
	}}
	return d
}

// lookupUpdateService finds the update service of domain as a device that
// was never signed in does: ucupdates-r2.<domain> must resolve (A or
// AAAA). It returns that host name; the device connects to it on the
// internal port and checks the certificate against it. The answer is cached
// like any other name the dialer resolves.
func (d *dialer) lookupUpdateService(ctx context.Context, domain string) (string, error) {
	host, err := provisioning.FallbackHost(domain)
	if err != nil {
		return "", err
	}
	d.mu.Lock()
	_, ok := d.cache[host]
	d.mu.Unlock()
	if ok {
		return host, nil
	}
	ips, err := d.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return "", err
	}
	for _, ip := range ips {
		if ip.Is4() || ip.Is4In6() {
			d.mu.Lock()
			d.cache[host] = ip.Unmap().String()
			d.mu.Unlock()
			break
		}
	}
	return host, nil
}

func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return d.dial(ctx, &d.net, network, addr)
}

// dial connects to addr with nd, resolving a name as DialContext does.
func (d *dialer) dial(ctx context.Context, nd *net.Dialer, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if _, err := netip.ParseAddr(host); err != nil {
		d.mu.Lock()
		ip, ok := d.cache[host]
		d.mu.Unlock()
		if !ok {
			ips, err := d.resolver.LookupNetIP(ctx, "ip4", host)
			if err != nil {
				return nil, err
			}
			if len(ips) == 0 {
				return nil, fmt.Errorf("lookup %s: no address", host)
			}
			ip = ips[0].String()
			d.mu.Lock()
			d.cache[host] = ip
			d.mu.Unlock()
		}
		addr = net.JoinHostPort(ip, port)
	}
	return nd.DialContext(ctx, network, addr)
}

// subnetDialer dials from the addresses of a subnet: each connection is
// bound to the next of its first few host addresses, so the service sees
// the devices of the subnet come from it.
type subnetDialer struct {
	d     *dialer
	addrs []*net.TCPAddr
	next  atomic.Uint32
}

// maxSourceAddrs bounds the addresses of a subnet its devices' connections
// come from.
const maxSourceAddrs = 8

func newSubnetDialer(d *dialer, p netip.Prefix) *subnetDialer {
	sd := &subnetDialer{d: d}
	a := p.Addr().Next() // the first host address
	for range maxSourceAddrs {
		if !p.Contains(a) || !p.Contains(a.Next()) { // not the broadcast address
			break
		}
		sd.addrs = append(sd.addrs, &net.TCPAddr{IP: a.AsSlice()})
		a = a.Next()
	}
	return sd
}

func (sd *subnetDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := sd.d.net
	nd.LocalAddr = sd.addrs[int(sd.next.Add(1))%len(sd.addrs)]
	return sd.d.dial(ctx, &nd, network, addr)
}

// newTLSConfig returns the devices' TLS configuration: only the service's
// CA is trusted, TLS 1.2 at least, HTTP/1.1, and sessions are resumed.
func newTLSConfig(roots *x509.CertPool) *tls.Config {
	return &tls.Config{
		RootCAs:    roots,
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		// X25519 alone: what a desk phone's TLS stack offers, and a
		// fraction of the cost of the post-quantum hybrid.
		CurvePreferences:   []tls.CurveID{tls.X25519, tls.CurveP256},
		ClientSessionCache: tls.NewLRUClientSessionCache(4096),
	}
}

// newTransport returns a keep-alive HTTP/1.1 transport over dial with cfg.
func newTransport(dial func(ctx context.Context, network, addr string) (net.Conn, error), cfg *tls.Config, conns int) *http.Transport {
	return &http.Transport{
		DialContext:           dial,
		TLSClientConfig:       cfg,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		IdleConnTimeout:       90 * time.Second,
		// HTTP/1.1 only: NTLM authenticates a connection, and the LAN
		// transport keeps one connection per worker rather than
		// multiplexing.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
}

// ntlmClient returns a client that signs in with NTLM (go-ntlmssp) when a
// request carries Basic credentials, over t: NTLM authenticates a
// connection, so t must carry the requests of one user only. The transport
// is the caller's to close.
func ntlmClient(t *http.Transport) *http.Client {
	return &http.Client{Transport: ntlmssp.Negotiator{RoundTripper: t}, Timeout: requestTimeout,
		CheckRedirect: noRedirect}
}

const requestTimeout = 60 * time.Second

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
