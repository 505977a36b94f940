package clocktest

import (
	"sync"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	c := New(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Errorf("Now() = %v, want %v", got, t0)
	}
	c.Advance(time.Hour)
	if got := c.Now(); !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("after Advance: %v", got)
	}
	c.Set(t0)
	c.Step = time.Second
	if a, b := c.Now(), c.Now(); !a.Equal(t0) || !b.Equal(t0.Add(time.Second)) {
		t.Errorf("with Step: %v then %v", a, b)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { c.Now(); c.Advance(time.Millisecond) })
	}
	wg.Wait()
}
