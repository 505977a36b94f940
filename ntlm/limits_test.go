package ntlm

import (
	"fmt"
	"net"
	"testing"
	"time"
)

func TestAddressKey(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 443}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 443}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 443}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:ffff::1"), Port: 1}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 1, Zone: "eth0"}, "fe80::/64"},
		{&net.UnixAddr{Name: "@sock", Net: "unix"}, "@sock"},
	}
	for _, tt := range tests {
		if got := addressKey(tt.addr); got != tt.want {
			t.Errorf("addressKey(%v) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

func TestFailureLimiterBounded(t *testing.T) {
	now := testStart
	l := newFailureLimiter(2, time.Minute, time.Hour, 100)
	for i := range 1000 {
		key := fmt.Sprint("k", i)
		l.fail(key, now)
		l.fail(key, now) // locked
		if len(l.keys) > 100 {
			t.Fatalf("after %d keys the limiter holds %d, want at most 100", i+1, len(l.keys))
		}
	}
	if !l.locked("k999", now) {
		t.Errorf("the newest key is not locked")
	}
}

func TestFailureLimiterWindow(t *testing.T) {
	l := newFailureLimiter(3, time.Minute, 5*time.Minute, 100)
	now := testStart
	tests := []struct {
		advance    time.Duration
		fail       bool
		wantLocked bool
	}{
		{0, true, false},
		{30 * time.Second, true, false},
		{31 * time.Second, true, false}, // the first failure left the window
		{10 * time.Second, true, true},  // three within a minute
		{4 * time.Minute, false, true},
		{time.Minute, false, false}, // lockout over
	}
	for i, tt := range tests {
		now = now.Add(tt.advance)
		if tt.fail {
			l.fail("alice", now)
		}
		if got := l.locked("alice", now); got != tt.wantLocked {
			t.Errorf("step %d: locked = %v, want %v", i, got, tt.wantLocked)
		}
	}
}

func TestReplayCacheBounded(t *testing.T) {
	c := newReplayCache(time.Minute, 3)
	now := testStart
	p := func(i byte) []byte { return []byte{i, 15: 0} }
	if !c.add(p(1), now) {
		t.Fatal("first add refused")
	}
	if c.add(p(1), now.Add(59*time.Second)) {
		t.Error("replay within ttl accepted")
	}
	if !c.add(p(1), now.Add(time.Minute)) {
		t.Error("add after ttl refused")
	}
	for i := byte(2); i < 10; i++ {
		c.add(p(i), now.Add(time.Minute))
	}
	if len(c.seen) > 3 || len(c.order) > 3 {
		t.Errorf("cache holds %d/%d entries, want at most 3", len(c.seen), len(c.order))
	}
	if c.add(p(9), now.Add(time.Minute)) {
		t.Error("replay of the newest entry accepted")
	}
}
