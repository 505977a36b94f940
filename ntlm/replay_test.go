package ntlm

import (
	"testing"
	"time"
)

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
