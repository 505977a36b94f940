package provisioning_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/opendus/opendus/provisioning"
)

// zone is the test DNS server's data: for each lower-case question name
// and type, what to answer. A name it does not know is NXDOMAIN.
type zone struct {
	records map[string][]dns.RR // owner name -> records (the answer for every type asked)
	rcode   map[string]int      // question name -> error code to answer
	silent  map[string]bool     // question name -> never answer
	// truncate: question names whose UDP answers are truncated (no
	// records, TC set); TCP gets the full answer.
	truncate map[string]bool
	// wrongQuestion: question names answered as if another name had been
	// asked.
	wrongQuestion map[string]bool
	// tcpQueries counts the queries that came over TCP.
	tcpQueries atomic.Int32
}

func rr(t testing.TB, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("dns.NewRR(%q): %v", s, err)
	}
	return r
}

func (z *zone) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	if len(q.Question) != 1 {
		return
	}
	name := strings.ToLower(q.Question[0].Name)
	if z.silent[name] {
		return
	}
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	tcp := w.RemoteAddr().Network() == "tcp"
	if tcp {
		z.tcpQueries.Add(1)
	}
	switch {
	case z.rcode[name] != 0:
		m.Rcode = z.rcode[name]
	case z.truncate[name] && !tcp:
		m.Truncated = true
	case z.wrongQuestion[name]:
		m.Question[0].Name = "elsewhere.example."
	default:
		rrs, ok := z.records[name]
		if !ok {
			m.Rcode = dns.RcodeNameError
			break
		}
		// Answer with the name's records of the type asked, or its
		// CNAME, and everything else the zone holds for the names
		// in between: a chain, unrelated records, as some servers do.
		for _, r := range rrs {
			if r.Header().Rrtype == q.Question[0].Qtype || r.Header().Rrtype == dns.TypeCNAME || r.Header().Name != name {
				m.Answer = append(m.Answer, r)
			}
		}
	}
	w.WriteMsg(m)
}

// startDNS serves z on a loopback port over UDP and TCP and returns the
// address.
func startDNS(t testing.TB, z *zone) string {
	t.Helper()
	var pc net.PacketConn
	var l net.Listener
	for range 20 {
		var err error
		l, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		pc, err = net.ListenPacket("udp", l.Addr().String())
		if err == nil {
			break
		}
		l.Close()
		l = nil
	}
	if l == nil {
		t.Fatal("no port free for both UDP and TCP")
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: z}, {Listener: l, Handler: z}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return l.Addr().String()
}

// testZone holds a domain per case.
func testZone(t *testing.T) *zone {
	z := &zone{
		records: map[string][]dns.RR{
			// contoso.com: the service on loopback, both families.
			"ucupdates-r2.contoso.com.": {
				rr(t, "ucupdates-r2.contoso.com. 300 IN A 127.0.0.1"),
				rr(t, "ucupdates-r2.contoso.com. 600 IN AAAA ::1"),
			},
			// v4only.example: no AAAA (NODATA).
			"ucupdates-r2.v4only.example.": {rr(t, "ucupdates-r2.v4only.example. 60 IN A 192.0.2.10")},
			// nodata.example: the name exists, with a TXT record only.
			"ucupdates-r2.nodata.example.": {rr(t, `ucupdates-r2.nodata.example. 60 IN TXT "no address"`)},
			// cname.example: a chain inside the answer, an unrelated
			// record for another name, a record of another type and
			// class, and an unusable address.
			"ucupdates-r2.cname.example.": {
				rr(t, "ucupdates-r2.cname.example. 120 IN CNAME svc.cname.example."),
				rr(t, "svc.cname.example. 30 IN A 192.0.2.20"),
				rr(t, "svc.cname.example. 30 IN A 192.0.2.20"),
				rr(t, "svc.cname.example. 30 IN A 0.0.0.0"),
				rr(t, "svc.cname.example. 30 CH A 192.0.2.66"),
				rr(t, "evil.example. 30 IN A 192.0.2.99"),
				rr(t, "ucupdates-r2.cname.example. 30 IN A 192.0.2.98"),
			},
			// outside.example: the chain leaves the answer; the target is
			// asked for next.
			"ucupdates-r2.outside.example.": {rr(t, "ucupdates-r2.outside.example. 60 IN CNAME host.other.example.")},
			"host.other.example.":           {rr(t, "host.other.example. 60 IN A 192.0.2.30")},
			// loop.example: a CNAME loop within the answer.
			"ucupdates-r2.loop.example.": {
				rr(t, "ucupdates-r2.loop.example. 60 IN CNAME a.loop.example."),
				rr(t, "a.loop.example. 60 IN CNAME ucupdates-r2.loop.example."),
			},
			// loop2.example: a loop across queries.
			"ucupdates-r2.loop2.example.": {rr(t, "ucupdates-r2.loop2.example. 60 IN CNAME b.loop2.example.")},
			"b.loop2.example.":            {rr(t, "b.loop2.example. 60 IN CNAME ucupdates-r2.loop2.example.")},
			// big.example: truncated over UDP.
			"ucupdates-r2.big.example.": {rr(t, "ucupdates-r2.big.example. 60 IN A 192.0.2.40")},
		},
		rcode:         map[string]int{"ucupdates-r2.fail.example.": dns.RcodeServerFailure, "ucupdates-r2.refused.example.": dns.RcodeRefused},
		silent:        map[string]bool{"ucupdates-r2.slow.example.": true},
		truncate:      map[string]bool{"ucupdates-r2.big.example.": true},
		wrongQuestion: map[string]bool{"ucupdates-r2.mismatch.example.": true},
	}
	// long.example: a chain of MaxCNAMEs+2 links, spread over queries.
	for i := 0; i <= provisioning.MaxCNAMEs+1; i++ {
		from := "ucupdates-r2.long.example."
		if i > 0 {
			from = "c" + string(rune('a'+i)) + ".long.example."
		}
		to := "c" + string(rune('a'+i+1)) + ".long.example."
		z.records[from] = []dns.RR{rr(t, from+" 60 IN CNAME "+to)}
	}
	return z
}

func TestLookupUpdateService(t *testing.T) {
	z := testZone(t)
	r := &provisioning.Resolver{Server: startDNS(t, z), Timeout: 2 * time.Second}
	addrs := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	tests := []struct {
		domain string
		want   provisioning.Service
	}{
		{"contoso.com", provisioning.Service{Host: "ucupdates-r2.contoso.com", Addrs: addrs("127.0.0.1", "::1"), InternalURL: "https://ucupdates-r2.contoso.com/", TTL: 300 * time.Second}},
		{"Contoso.COM.", provisioning.Service{Host: "ucupdates-r2.contoso.com", Addrs: addrs("127.0.0.1", "::1"), InternalURL: "https://ucupdates-r2.contoso.com/", TTL: 300 * time.Second}},
		{"v4only.example", provisioning.Service{Host: "ucupdates-r2.v4only.example", Addrs: addrs("192.0.2.10"), InternalURL: "https://ucupdates-r2.v4only.example/", TTL: time.Minute}},
		{"cname.example", provisioning.Service{Host: "ucupdates-r2.cname.example", Addrs: addrs("192.0.2.20"), InternalURL: "https://ucupdates-r2.cname.example/", TTL: 30 * time.Second}},
		{"outside.example", provisioning.Service{Host: "ucupdates-r2.outside.example", Addrs: addrs("192.0.2.30"), InternalURL: "https://ucupdates-r2.outside.example/", TTL: time.Minute}},
		{"big.example", provisioning.Service{Host: "ucupdates-r2.big.example", Addrs: addrs("192.0.2.40"), InternalURL: "https://ucupdates-r2.big.example/", TTL: time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			got, err := r.LookupUpdateService(t.Context(), tt.domain)
			if err != nil {
				t.Fatalf("LookupUpdateService(%q) = %v", tt.domain, err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("LookupUpdateService(%q) (-want +got):\n%s", tt.domain, diff)
			}
		})
	}
	if n := z.tcpQueries.Load(); n == 0 {
		t.Errorf("no query came over TCP: the truncated answer was not retried")
	}
}

func TestLookupUpdateServiceFailures(t *testing.T) {
	r := &provisioning.Resolver{Server: startDNS(t, testZone(t)), Timeout: 300 * time.Millisecond}
	tests := []struct {
		domain string
		want   error
	}{
		{"nx.example", provisioning.ErrNotFound},
		{"nodata.example", provisioning.ErrNotFound},
		{"fail.example", provisioning.ErrServerFailure},
		{"refused.example", provisioning.ErrServerFailure},
		{"slow.example", provisioning.ErrTimeout},
		{"mismatch.example", provisioning.ErrBadAnswer},
		{"loop.example", provisioning.ErrBadAnswer},
		{"loop2.example", provisioning.ErrBadAnswer},
		{"long.example", provisioning.ErrBadAnswer},
		{"", provisioning.ErrInvalidDomain},
		{"-contoso.com", provisioning.ErrInvalidDomain},
		{"contoso..com", provisioning.ErrInvalidDomain},
		{"con toso.com", provisioning.ErrInvalidDomain},
		{"contoso_com", provisioning.ErrInvalidDomain},
		{strings.Repeat("a", 64) + ".com", provisioning.ErrInvalidDomain},
		{strings.Repeat("abcdefghi.", 24) + "com", provisioning.ErrInvalidDomain},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			got, err := r.LookupUpdateService(t.Context(), tt.domain)
			t.Logf("LookupUpdateService(%q): %v", tt.domain, err)
			if !errors.Is(err, tt.want) {
				t.Errorf("LookupUpdateService(%q) = %+v, %v; want %v", tt.domain, got, err, tt.want)
			}
		})
	}
}

// TestSystemResolverInvalidDomain: the zero Resolver (the system
// resolver) checks the domain before any lookup.
func TestSystemResolverInvalidDomain(t *testing.T) {
	var r provisioning.Resolver
	if _, err := r.LookupUpdateService(t.Context(), "not a domain"); !errors.Is(err, provisioning.ErrInvalidDomain) {
		t.Errorf("LookupUpdateService(%q) = %v, want ErrInvalidDomain", "not a domain", err)
	}
}

// TestLookupCanceled: a canceled lookup returns at once with the
// context's error, even from a server that never answers.
func TestLookupCanceled(t *testing.T) {
	r := &provisioning.Resolver{Server: startDNS(t, testZone(t)), Timeout: time.Hour}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := r.LookupUpdateService(ctx, "slow.example")
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("LookupUpdateService after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("LookupUpdateService did not return after cancel")
	}
}
