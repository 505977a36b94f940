package simulator

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestQueueOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var q queue
	var all []timer
	for i := range 2000 {
		tm := timer{at: r.Int64N(500), dev: int32(i % 700)}
		all = append(all, tm)
		q.push(tm)
	}
	slices.SortFunc(all, func(a, b timer) int {
		switch {
		case a.before(b):
			return -1
		case b.before(a):
			return 1
		}
		return 0
	})
	for i, want := range all {
		if got := q.pop(); got != want {
			t.Fatalf("pop %d = %+v, want %+v", i, got, want)
		}
	}
	if !q.empty() {
		t.Errorf("queue has %d timers left, want none", q.Len())
	}
}

func TestQueueTiesByDevice(t *testing.T) {
	var q queue
	for _, dev := range []int32{5, 3, 9, 1} {
		q.push(timer{at: 10, dev: dev})
	}
	var got []int32
	for !q.empty() {
		got = append(got, q.pop().dev)
	}
	if want := []int32{1, 3, 5, 9}; !slices.Equal(got, want) {
		t.Errorf("devices at the same time popped as %v, want %v", got, want)
	}
}

func TestPace(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		p           pace
		after       time.Duration
		wantReached int64
	}{
		{"as fast as possible", pace{speed: 0, realStart: t0}, 0, never},
		{"one hour per second", pace{speed: 3600, realStart: t0}, time.Second, int64(time.Hour)},
		{"from a later start", pace{speed: 60, realStart: t0, simStart: int64(time.Hour)}, 2 * time.Second, int64(time.Hour + 2*time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.reached(t0.Add(tt.after)); got != tt.wantReached {
				t.Errorf("reached(+%v) = %v, want %v", tt.after, got, tt.wantReached)
			}
			if tt.p.speed > 0 {
				if got := tt.p.due(tt.wantReached); !got.Equal(t0.Add(tt.after)) {
					t.Errorf("due(%v) = %v, want %v", tt.wantReached, got, t0.Add(tt.after))
				}
			}
		})
	}
}
