package provisioning

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// FuzzReadAnswer feeds readAnswer every DNS message the fuzzer makes up,
// as a hostile or broken server could send it: it never panics, and what
// it returns keeps the invariants the resolver relies on.
func FuzzReadAnswer(f *testing.F) {
	const qname = "ucupdates-r2.contoso.com."
	seed := func(qtype uint16, rcode int, rrs ...string) {
		m := new(dns.Msg)
		m.SetQuestion(qname, qtype)
		m.Response = true
		m.Rcode = rcode
		for _, s := range rrs {
			r, err := dns.NewRR(s)
			if err != nil {
				f.Fatal(err)
			}
			m.Answer = append(m.Answer, r)
		}
		data, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	seed(dns.TypeA, dns.RcodeSuccess, qname+" 60 IN A 192.0.2.1", qname+" 60 IN A 192.0.2.2")
	seed(dns.TypeAAAA, dns.RcodeSuccess, qname+" 60 IN AAAA 2001:db8::1", qname+" 60 IN A 192.0.2.1")
	seed(dns.TypeA, dns.RcodeSuccess, qname+" 60 IN CNAME a.example.", "a.example. 60 IN CNAME b.example.", "b.example. 60 IN A 192.0.2.3", "evil.example. 60 IN A 192.0.2.4")
	seed(dns.TypeA, dns.RcodeSuccess, qname+" 60 IN CNAME a.example.", "a.example. 60 IN CNAME "+qname)
	seed(dns.TypeA, dns.RcodeSuccess, qname+" 60 IN CNAME outside.example.")
	seed(dns.TypeA, dns.RcodeNameError)
	seed(dns.TypeA, dns.RcodeServerFailure)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > dns.MaxMsgSize {
			return
		}
		m := new(dns.Msg)
		if err := m.Unpack(data); err != nil {
			return
		}
		for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
			ans, err := readAnswer(m, qname, qtype)
			if err != nil {
				continue
			}
			if len(ans.addrs) > maxAddrs || len(ans.chain) < 1 || len(ans.chain) > MaxCNAMEs+1 {
				t.Fatalf("readAnswer: %d addresses, chain %q", len(ans.addrs), ans.chain)
			}
			if ans.chain[0] != qname {
				t.Fatalf("readAnswer: chain %q does not start at the question", ans.chain)
			}
			if ans.next != "" && len(ans.addrs) > 0 {
				t.Fatalf("readAnswer: both addresses and a next name %q", ans.next)
			}
			seen := map[netip.Addr]bool{}
			for _, a := range ans.addrs {
				if !usable(a) || (qtype == dns.TypeA) != a.Is4() || a.Is4In6() || seen[a] {
					t.Fatalf("readAnswer(%s): address %v", dns.TypeToString[qtype], a)
				}
				seen[a] = true
			}
		}
	})
}
