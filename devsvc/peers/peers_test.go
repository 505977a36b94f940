package peers

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/firmware"
)

var (
	t0   = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	shaA = strings.Repeat("aa", 32)
	shaB = strings.Repeat("bb", 32)
)

// dev is a peer-capable device of test: key dN at 10.1.S.N, serving on
// port 47000+N.
func dev(subnet, n int) Query {
	a := netip.AddrFrom4([4]byte{10, 1, byte(subnet), byte(n)})
	return Query{Key: fmt.Sprintf("d%d-%d", subnet, n), Seen: a, Serve: netip.AddrPortFrom(a, uint16(47000+n)), SHA256: shaA}
}

func at(q Query, d time.Duration) Query { q.Now = t0.Add(d); return q }

func rep() deviceproto.PeerAdvice { return deviceproto.PeerAdvice{Representative: true} }

func from(q Query, delay time.Duration) deviceproto.PeerAdvice {
	return deviceproto.PeerAdvice{From: q.Serve, Delay: delay}
}

func TestAdvise(t *testing.T) {
	d1, d2, d3, d4 := dev(1, 1), dev(1, 2), dev(1, 3), dev(1, 4)
	other := dev(2, 1)
	type step struct {
		name string
		do   func(e *Elector) deviceproto.PeerAdvice
		want deviceproto.PeerAdvice
	}
	advise := func(q Query, d time.Duration) func(e *Elector) deviceproto.PeerAdvice {
		return func(e *Elector) deviceproto.PeerAdvice { return e.Advise(at(q, d)) }
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"the first is representative, the others wait for it", []step{
			{"d1", advise(d1, 0), rep()},
			{"d2", advise(d2, time.Second), from(d1, time.Minute)},
			{"d3", advise(d3, 2*time.Second), from(d1, time.Minute)},
			{"d1 again", advise(d1, 3*time.Second), rep()},
			{"another subnet elects its own", advise(other, 4*time.Second), rep()},
		}},
		{"a late joiner of higher rank does not displace a live representative", []step{
			{"d1", advise(d1, 0), rep()},
			{"d2", advise(d2, time.Minute), from(d1, time.Minute)},
			{"d3", advise(d3, 2*time.Minute), from(d1, time.Minute)},
			{"d4", advise(d4, 3*time.Minute), from(d1, time.Minute)},
		}},
		{"a representative silent for the timeout is replaced by the live member of highest rank", []step{
			{"d1", advise(d1, 0), rep()},
			{"d2", advise(d2, time.Minute), from(d1, time.Minute)},
			{"d3", advise(d3, time.Minute), from(d1, time.Minute)},
			{"d2 after the timeout", advise(d2, 16*time.Minute), bestOf(d2, d3)},
		}},
		{"a representative reported unreachable is replaced at once", []step{
			{"d1", advise(d1, 0), rep()},
			{"d2", advise(d2, time.Second), from(d1, time.Minute)},
			{"d3", advise(d3, time.Second), from(d1, time.Minute)},
			{"d2 avoids d1", advise(avoid(d2, d1), 2*time.Minute), bestOf(d2, d3)},
			{"d1, back, is not elected while avoided", advise(d1, 3*time.Minute), from(best(d2, d3), time.Minute)},
		}},
		{"holders are given to late joiners at once", []step{
			{"d1", advise(d1, 0), rep()},
			{"d2", advise(d2, time.Second), from(d1, time.Minute)},
			{"d1 downloaded", seen(d1, firmware.StateDownloaded, time.Minute), deviceproto.PeerAdvice{}},
			{"d3 late", advise(d3, 10*time.Hour), from(d1, 0)},
			{"d1 failed", seen(d1, firmware.StateFailure, 11*time.Hour), deviceproto.PeerAdvice{}},
			{"d4 later, the others silent for the timeout: it is representative", advise(d4, 12*time.Hour), rep()},
		}},
		{"a holder silent for a day and more is given to nobody", []step{
			{"d1", advise(d1, 0), rep()},
			{"d1 success", seen(d1, firmware.StateSuccess, time.Minute), deviceproto.PeerAdvice{}},
			{"d2 two days later", advise(d2, 48*time.Hour), rep()},
		}},
		{"a device offered another file leaves the old file's group", []step{
			{"d1", advise(d1, 0), rep()},
			{"d1 on file B", advise(fileB(d1), time.Second), rep()},
			{"d2 on file A elects itself", advise(d2, 2*time.Second), rep()},
		}},
		{"a device that left serves nobody", []step{
			{"d1", advise(d1, 0), rep()},
			{"d1 leaves", func(e *Elector) deviceproto.PeerAdvice { e.Leave(d1.Key); return deviceproto.PeerAdvice{} }, deviceproto.PeerAdvice{}},
			{"d2", advise(d2, time.Second), rep()},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := New(Config{})
			for _, s := range tc.steps {
				if got := s.do(e); got != s.want {
					t.Fatalf("%s: advice %+v, want %+v", s.name, got, s.want)
				}
			}
		})
	}
}

func avoid(q, peer Query) Query { q.Avoid = peer.Serve; return q }
func fileB(q Query) Query       { q.SHA256 = shaB; return q }

func seen(q Query, st firmware.State, d time.Duration) func(e *Elector) deviceproto.PeerAdvice {
	return func(e *Elector) deviceproto.PeerAdvice { e.Seen(q.Key, st, t0.Add(d)); return deviceproto.PeerAdvice{} }
}

// best is the member of highest rank for file A.
func best(qs ...Query) Query {
	b := qs[0]
	for _, q := range qs[1:] {
		if rank(q.Key, shaA) > rank(b.Key, shaA) {
			b = q
		}
	}
	return b
}

// bestOf is the advice the first of qs gets when the one of highest
// rank is elected.
func bestOf(qs ...Query) deviceproto.PeerAdvice {
	if b := best(qs...); b.Key != qs[0].Key {
		return from(b, time.Minute)
	}
	return rep()
}

// TestRendezvous checks that a failover elects the member of highest
// rank whichever member's check-in triggers it, and that the files of a
// subnet spread over its devices.
func TestRendezvous(t *testing.T) {
	const n = 50
	reps := map[string]int{}
	for f := range 40 {
		sha := fmt.Sprintf("%064x", f)
		qs := make([]Query, n)
		for i := range qs {
			qs[i] = dev(1, i+1)
			qs[i].SHA256 = sha
		}
		x := dev(1, 200) // the first representative, which goes silent
		x.SHA256 = sha
		want := qs[0]
		for _, q := range qs {
			if rank(q.Key, sha) > rank(want.Key, sha) {
				want = q
			}
		}
		for _, trigger := range []int{0, n / 2, n - 1} {
			e := New(Config{})
			e.Advise(at(x, 0))
			for _, q := range qs {
				e.Advise(at(q, 10*time.Minute))
			}
			q := qs[trigger]
			got := e.Advise(at(q, 16*time.Minute))
			if q.Key == want.Key && !got.Representative || q.Key != want.Key && got.From != want.Serve {
				t.Fatalf("file %d, failover at %s's check-in: %+v, want %s elected", f, q.Key, got, want.Key)
			}
		}
		reps[want.Key]++
	}
	if len(reps) < 20 {
		t.Errorf("40 files elected only %d distinct representatives among 50 devices: %v", len(reps), reps)
	}
}

func TestSubnet(t *testing.T) {
	e := New(Config{PrefixV4: 16})
	for _, tc := range []struct{ addr, want string }{
		{"10.1.2.3", "10.1.0.0/16"},
		{"::ffff:10.1.2.3", "10.1.0.0/16"},
		{"2001:db8:1:2:3::4", "2001:db8:1:2::/64"},
	} {
		if got := e.Subnet(netip.MustParseAddr(tc.addr)).String(); got != tc.want {
			t.Errorf("Subnet(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
}

func TestStats(t *testing.T) {
	e := New(Config{})
	d1, d2, d3 := dev(1, 1), dev(1, 2), dev(1, 3)
	e.Advise(at(d1, 0))
	e.Advise(at(d2, time.Second))
	e.Advise(at(d3, time.Second))
	e.Advise(at(dev(2, 1), time.Second))
	e.Seen(d1.Key, firmware.StateDownloaded, t0.Add(time.Minute))
	e.Advise(at(avoid(d2, d1), 2*time.Minute)) // d1 failed: another elected
	want := Stats{Groups: 2, Members: 4, Holders: 1, Elections: 2, Failovers: 1}
	if got := e.Stats(); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

func TestSweep(t *testing.T) {
	e := New(Config{})
	for i := range 10 {
		e.Advise(at(dev(1, i+1), 0))
	}
	if s := e.Stats(); s.Groups != 1 || s.Members != 10 {
		t.Fatalf("Stats = %+v, want 1 group of 10", s)
	}
	e.Advise(at(dev(2, 1), 27*time.Hour))
	if s := e.Stats(); s.Groups != 1 || s.Members != 1 {
		t.Errorf("after a day and more: Stats = %+v, want only the new group of 1", s)
	}
}

// TestConcurrent runs check-ins, reports and departures of one subnet at
// once (go test -race): every device is told something coherent, and one
// representative at most is elected while the first stays live.
func TestConcurrent(t *testing.T) {
	e := New(Config{})
	first := dev(1, 1)
	e.Advise(at(first, 0))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				q := dev(1, 2+(g*100+i)%200)
				a := e.Advise(at(q, time.Second))
				if a.Representative || a.From != first.Serve {
					t.Errorf("%s: %+v, want to fetch from %s", q.Key, a, first.Serve)
					return
				}
				e.Seen(q.Key, firmware.StateDownloading, t0.Add(time.Second))
				if i%10 == 0 {
					e.Leave(q.Key)
				}
			}
		}()
	}
	wg.Wait()
}
