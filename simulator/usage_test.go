package simulator

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestOfficeHours(t *testing.T) {
	m := newUsageModel(DefaultStart, DefaultPhoneUsage) // Monday 06:00 UTC
	tests := []struct {
		at   time.Time
		want bool
	}{
		{time.Date(2026, 11, 23, 7, 59, 0, 0, time.UTC), false},
		{time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), true},
		{time.Date(2026, 11, 23, 17, 59, 0, 0, time.UTC), true},
		{time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC), false},
		{time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), true},  // Friday
		{time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC), false}, // Saturday
		{time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC), false}, // Sunday
		{time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC), true},   // Monday again
	}
	for _, tt := range tests {
		if got := m.office(int64(tt.at.Sub(DefaultStart))); got != tt.want {
			t.Errorf("office(%s) = %v, want %v", tt.at.Format("Mon 15:04"), got, tt.want)
		}
	}
	// Friday evening: the office opens on Monday at 8.
	fri := int64(time.Date(2026, 11, 27, 19, 0, 0, 0, time.UTC).Sub(DefaultStart))
	want := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	if got := DefaultStart.Add(time.Duration(m.nextOfficeStart(fri))); !got.Equal(want) {
		t.Errorf("nextOfficeStart(Friday 19:00) = %v, want %v", got, want)
	}
}

// TestIdleFrom checks idleFrom against the call stream it walks: the answer
// comes after the question, the last call ended at least the idle time
// before it (or it is the question itself after a long quiet), and the next
// call starts after it.
func TestIdleFrom(t *testing.T) {
	for _, usage := range []Usage{DefaultPhoneUsage, DefaultRoundTableUsage} {
		m := newUsageModel(DefaultStart, usage)
		idle := int64(5 * time.Minute)
		r := rand.New(rand.NewPCG(9, 9))
		var c calls
		waited := 0
		for q := int64(0); q < int64(48*time.Hour); q += int64(37 * time.Minute) {
			got := c.idleFrom(q, idle, m, r)
			switch {
			case got < q:
				t.Fatalf("idleFrom(%v) = %v, before the question", time.Duration(q), time.Duration(got))
			case c.busyAt(got) || c.next <= got:
				t.Fatalf("idleFrom(%v) = %v, not before the next call [%v, %v)", time.Duration(q), time.Duration(got), time.Duration(c.next), time.Duration(c.done))
			case got-c.lastEnd < idle:
				t.Fatalf("idleFrom(%v) = %v, only %v after the last call", time.Duration(q), time.Duration(got), time.Duration(got-c.lastEnd))
			case got > q && got != c.lastEnd+idle:
				t.Fatalf("idleFrom(%v) = %v, later than needed: the last call ended at %v", time.Duration(q), time.Duration(got), time.Duration(c.lastEnd))
			}
			if got > q {
				waited++
			}
		}
		if waited == 0 {
			t.Errorf("usage %+v: never had to wait for idle", usage)
		}
	}
}

func TestCallsBusierInOfficeHours(t *testing.T) {
	m := newUsageModel(DefaultStart, DefaultPhoneUsage)
	r := rand.New(rand.NewPCG(1, 1))
	var office, other int
	for t0 := int64(0); t0 < int64(7*24*time.Hour); {
		s, e := m.nextCall(t0, r)
		if m.office(s) {
			office++
		} else {
			other++
		}
		t0 = e
	}
	// A week: 50 office hours at 3/h, 118 other hours at 0.1/h.
	if office < 100 || other > 40 || other == 0 {
		t.Errorf("a week of calls: %d in office hours, %d outside; want about 150 and 12", office, other)
	}
}
