package provisioning

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// FallbackLabel is the first label of the name a device that was never
// signed in looks up: ucupdates-r2.<domain>.
const FallbackLabel = "ucupdates-r2"

// Bounds of a lookup.
const (
	// DefaultTimeout bounds one DNS exchange of a zero Resolver.
	DefaultTimeout = 5 * time.Second
	// MaxCNAMEs is the longest CNAME chain followed, within one answer and
	// across the queries that follow a chain out of an answer.
	MaxCNAMEs = 8
	// maxAddrs bounds the addresses kept from one lookup.
	maxAddrs = 64
	// udpSize is the EDNS0 buffer size advertised: the DNS flag day 2020
	// value, which avoids IP fragmentation.
	udpSize = 1232
)

var (
	// ErrInvalidDomain is returned when the domain given to
	// LookupUpdateService is not a valid DNS name.
	ErrInvalidDomain = errors.New("provisioning: invalid domain")
	// ErrNotFound is returned when ucupdates-r2.<domain> does not exist
	// (NXDOMAIN) or has no A or AAAA record.
	ErrNotFound = errors.New("provisioning: no update service in DNS")
	// ErrServerFailure is returned when the DNS server answers with an
	// error such as SERVFAIL or REFUSED.
	ErrServerFailure = errors.New("provisioning: DNS server failure")
	// ErrBadAnswer is returned when a DNS answer does not answer the
	// question asked, or its CNAME chain loops or is longer than MaxCNAMEs.
	ErrBadAnswer = errors.New("provisioning: bad DNS answer")
	// ErrTimeout is returned when the DNS server does not answer within
	// the Resolver's Timeout or the context's deadline.
	ErrTimeout = errors.New("provisioning: DNS timeout")
)

// Service is the update service as DNS names it.
type Service struct {
	// Host is ucupdates-r2.<domain>, lower-case, without the final dot.
	Host string
	// Addrs are its addresses, IPv4 (A) first, then IPv6 (AAAA), without
	// duplicates, in the order of the answers.
	Addrs []netip.Addr
	// InternalURL is the base URL of the service: https://<Host>/. The
	// device checks in at InternalURL + CheckInPath (without the doubled
	// slash).
	InternalURL string
	// TTL is how long the answer may be cached: the smallest TTL of the
	// records used. Zero when the system resolver answered.
	TTL time.Duration
}

// CheckInURL returns the check-in URL of the service.
func (s Service) CheckInURL() string {
	return "https://" + s.Host + CheckInPath
}

// Resolver finds the update service of a domain through DNS.
// The zero value uses the system resolver with DefaultTimeout.
type Resolver struct {
	// Server is the DNS server to ask, "host:port" ("127.0.0.1:5353";
	// port 53 when it is left out); empty means the system resolver.
	Server string
	// Timeout bounds each exchange with the server; default
	// DefaultTimeout. The context's deadline bounds the whole lookup.
	Timeout time.Duration
}

// LookupUpdateService looks up the A and AAAA records of
// ucupdates-r2.<domain>. It returns ErrInvalidDomain, ErrNotFound,
// ErrServerFailure, ErrBadAnswer or ErrTimeout, wrapped with the name, or
// the context's error. One address family is enough: if the A query
// succeeds and the AAAA query fails, the service is returned with the IPv4
// addresses.
func (r *Resolver) LookupUpdateService(ctx context.Context, domain string) (Service, error) {
	domain, err := CanonicalDomain(domain)
	if err != nil {
		return Service{}, err
	}
	host := FallbackLabel + "." + domain
	svc := Service{Host: host, InternalURL: "https://" + host + "/"}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if r.Server == "" {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host+".")
		if err != nil {
			return Service{}, systemError(ctx, host, err)
		}
		svc.Addrs = orderAddrs(addrs)
		if len(svc.Addrs) == 0 {
			return Service{}, fmt.Errorf("%w: %s has no usable address", ErrNotFound, host)
		}
		return svc, nil
	}
	server := r.Server
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(strings.Trim(server, "[]"), "53")
	}
	c := &client{server: server, timeout: timeout}

	type result struct {
		addrs []netip.Addr
		ttl   uint32
		err   error
	}
	var results [2]result
	var wg sync.WaitGroup
	for i, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		wg.Go(func() {
			a, ttl, err := c.resolve(ctx, host, qtype)
			results[i] = result{a, ttl, err}
		})
	}
	wg.Wait()
	var ttl uint32
	var errs []error
	for _, res := range results {
		if res.err != nil {
			errs = append(errs, res.err)
			continue
		}
		if len(svc.Addrs) == 0 || res.ttl < ttl {
			ttl = res.ttl
		}
		svc.Addrs = append(svc.Addrs, res.addrs...)
	}
	if len(svc.Addrs) > 0 {
		svc.TTL = time.Duration(ttl) * time.Second
		return svc, nil
	}
	// No address: report the more telling failure. A failure (timeout,
	// SERVFAIL, a bad answer) beats "not found", which may be caused by it.
	for _, err := range errs {
		if !errors.Is(err, ErrNotFound) {
			return Service{}, err
		}
	}
	if len(errs) > 0 {
		return Service{}, errs[0]
	}
	return Service{}, fmt.Errorf("%w: %s has no A or AAAA record", ErrNotFound, host)
}

// CanonicalDomain checks that domain is a DNS name under which
// ucupdates-r2.<domain> is a valid host name (letters, digits and hyphens,
// labels of 1 to 63 bytes not starting or ending with a hyphen, at most 253
// bytes in all) and returns it lower-case without a final dot.
func CanonicalDomain(domain string) (string, error) {
	return canonicalName(domain, len(FallbackLabel)+1)
}

// canonicalName checks that name is a host name that leaves room for
// prefix more bytes, and returns it lower-case without a final dot.
func canonicalName(name string, prefix int) (string, error) {
	d := strings.ToLower(strings.TrimSuffix(name, "."))
	if d == "" || prefix+len(d) > 253 {
		return "", fmt.Errorf("%w: %q", ErrInvalidDomain, name)
	}
	for label := range strings.SplitSeq(d, ".") {
		if !validLabel(label) {
			return "", fmt.Errorf("%w: %q: label %q", ErrInvalidDomain, name, label)
		}
	}
	return d, nil
}

func validLabel(l string) bool {
	if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// usable reports whether a is an address a device may connect to.
func usable(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast()
}

// orderAddrs returns the usable addresses of addrs, unmapped, IPv4 first,
// without duplicates, at most maxAddrs.
func orderAddrs(addrs []netip.Addr) []netip.Addr {
	var v4, v6 []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		if !usable(a) || seen[a] {
			continue
		}
		seen[a] = true
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	out := append(v4, v6...)
	if len(out) > maxAddrs {
		out = out[:maxAddrs]
	}
	return out
}

// systemError maps an error of the system resolver to this package's.
func systemError(ctx context.Context, host string, err error) error {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return fmt.Errorf("%w: %s: %w", ErrNotFound, host, err)
	case errors.As(err, &dnsErr) && dnsErr.IsTimeout, ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w: %s: %w", ErrTimeout, host, err)
	default:
		return fmt.Errorf("%w: %s: %w", ErrServerFailure, host, err)
	}
}

// client asks one DNS server.
type client struct {
	server  string
	timeout time.Duration
}

// resolve returns the addresses of type qtype (A or AAAA) of name,
// following CNAMEs, and the smallest TTL of the records used.
func (c *client) resolve(ctx context.Context, name string, qtype uint16) ([]netip.Addr, uint32, error) {
	qname := dns.Fqdn(name)
	visited := map[string]bool{}
	links := 0
	var ttl uint32 = ^uint32(0)
	for {
		msg, err := c.exchange(ctx, qname, qtype)
		if err != nil {
			return nil, 0, err
		}
		ans, err := readAnswer(msg, qname, qtype)
		if err != nil {
			return nil, 0, err
		}
		ttl = min(ttl, ans.ttl)
		for _, n := range ans.chain {
			if visited[n] {
				return nil, 0, fmt.Errorf("%w: %s %s: CNAME loop through %s", ErrBadAnswer, name, dns.TypeToString[qtype], strings.TrimSuffix(n, "."))
			}
			visited[n] = true
		}
		links += len(ans.chain) - 1
		if links > MaxCNAMEs {
			return nil, 0, fmt.Errorf("%w: %s %s: more than %d CNAMEs", ErrBadAnswer, name, dns.TypeToString[qtype], MaxCNAMEs)
		}
		if len(ans.addrs) > 0 {
			return ans.addrs, ttl, nil
		}
		if ans.next == "" {
			return nil, 0, fmt.Errorf("%w: %s has no %s record", ErrNotFound, name, dns.TypeToString[qtype])
		}
		// The chain leaves the answer: ask for its end. The end is the
		// first name of the next answer's chain, so forget it here.
		delete(visited, ans.next)
		qname = ans.next
	}
}

// exchange sends one query and returns the answer: over UDP, and again
// over TCP when the UDP answer is truncated. The context's cancellation
// closes the connection.
func (c *client) exchange(ctx context.Context, qname string, qtype uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(qname, qtype)
	q.RecursionDesired = true
	q.SetEdns0(udpSize, false)
	resp, err := c.exchangeOver(ctx, "udp", q)
	if err == nil && resp.Truncated {
		resp, err = c.exchangeOver(ctx, "tcp", q)
	}
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("%w: %s %s at %s: %w", ErrTimeout, strings.TrimSuffix(qname, "."), dns.TypeToString[qtype], c.server, err)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("provisioning: %s %s: %w", strings.TrimSuffix(qname, "."), dns.TypeToString[qtype], ctx.Err())
		}
		return nil, fmt.Errorf("%w: %s %s at %s: %w", ErrServerFailure, strings.TrimSuffix(qname, "."), dns.TypeToString[qtype], c.server, err)
	}
	return resp, nil
}

func (c *client) exchangeOver(ctx context.Context, network string, q *dns.Msg) (*dns.Msg, error) {
	dc := &dns.Client{Net: network, Timeout: c.timeout, UDPSize: udpSize}
	conn, err := dc.DialContext(ctx, c.server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	resp, _, err := dc.ExchangeWithConnContext(ctx, q, conn)
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return resp, err
}

// answer is what readAnswer found in one message.
type answer struct {
	addrs []netip.Addr
	// chain is the CNAME chain from the question's name to the name the
	// addresses belong to (or to next), the question's name first.
	chain []string
	// next is the end of a CNAME chain that leaves the answer without an
	// address of the type asked: the name to ask for next; empty when the
	// chain ends in the answer.
	next string
	ttl  uint32
}

// readAnswer checks that msg answers the question (qname, qtype, IN) and
// returns the addresses of type qtype it gives for qname, following CNAMEs
// within the answer section. Records of other names, types and classes are
// ignored; a chain that loops or is longer than MaxCNAMEs is ErrBadAnswer.
// NXDOMAIN is ErrNotFound, other error codes ErrServerFailure.
func readAnswer(msg *dns.Msg, qname string, qtype uint16) (answer, error) {
	what := strings.TrimSuffix(qname, ".") + " " + dns.TypeToString[qtype]
	if !msg.Response || msg.Opcode != dns.OpcodeQuery {
		return answer{}, fmt.Errorf("%w: %s: not a response to a query", ErrBadAnswer, what)
	}
	if len(msg.Question) != 1 {
		return answer{}, fmt.Errorf("%w: %s: %d questions in the answer", ErrBadAnswer, what, len(msg.Question))
	}
	q := msg.Question[0]
	if !strings.EqualFold(q.Name, qname) || q.Qtype != qtype || q.Qclass != dns.ClassINET {
		return answer{}, fmt.Errorf("%w: %s: the answer is to another question (%s)", ErrBadAnswer, what, strings.TrimSpace(q.String()))
	}
	switch msg.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return answer{}, fmt.Errorf("%w: %s: NXDOMAIN", ErrNotFound, what)
	default:
		return answer{}, fmt.Errorf("%w: %s: %s", ErrServerFailure, what, rcodeName(msg.Rcode))
	}

	// The CNAMEs of the answer by owner name (the first of an owner
	// counts); records of other classes are ignored.
	type link struct {
		target string
		ttl    uint32
	}
	cnames := map[string]link{}
	for _, rr := range msg.Answer {
		if c, ok := rr.(*dns.CNAME); ok && c.Hdr.Class == dns.ClassINET {
			owner := strings.ToLower(c.Hdr.Name)
			if _, dup := cnames[owner]; !dup {
				cnames[owner] = link{strings.ToLower(c.Target), c.Hdr.Ttl}
			}
		}
	}
	var ttl uint32 = ^uint32(0)
	cur := strings.ToLower(qname)
	chain := []string{cur}
	seen := map[string]bool{cur: true}
	for {
		l, ok := cnames[cur]
		if !ok {
			break
		}
		target := l.target
		ttl = min(ttl, l.ttl)
		if seen[target] {
			return answer{}, fmt.Errorf("%w: %s: CNAME loop through %s", ErrBadAnswer, what, strings.TrimSuffix(target, "."))
		}
		if len(chain) > MaxCNAMEs {
			return answer{}, fmt.Errorf("%w: %s: more than %d CNAMEs", ErrBadAnswer, what, MaxCNAMEs)
		}
		seen[target] = true
		chain = append(chain, target)
		cur = target
	}
	var addrs []netip.Addr
	for _, rr := range msg.Answer {
		h := rr.Header()
		if h.Class != dns.ClassINET || !strings.EqualFold(h.Name, cur) || h.Rrtype != qtype {
			continue
		}
		var a netip.Addr
		switch rr := rr.(type) {
		case *dns.A:
			a, _ = netip.AddrFromSlice(rr.A.To4())
		case *dns.AAAA:
			a, _ = netip.AddrFromSlice(rr.AAAA)
		}
		if qtype == dns.TypeA && !a.Is4() || qtype == dns.TypeAAAA && (!a.Is6() || a.Is4In6()) {
			continue
		}
		if !usable(a) || containsAddr(addrs, a) {
			continue
		}
		if len(addrs) < maxAddrs {
			addrs = append(addrs, a)
			ttl = min(ttl, h.Ttl)
		}
	}
	ans := answer{addrs: addrs, chain: chain, ttl: ttl}
	if len(addrs) == 0 && len(chain) > 1 {
		ans.next = cur
	}
	return ans, nil
}

func containsAddr(addrs []netip.Addr, a netip.Addr) bool {
	for _, b := range addrs {
		if a == b {
			return true
		}
	}
	return false
}

func rcodeName(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rcode)
}
