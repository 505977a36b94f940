package simulator

import (
	"math"
	"math/rand/v2"
	"time"
)

// Usage is how a device is used: calls (or meetings) arrive as a Poisson
// process, faster in office hours, and last an exponentially distributed
// time. A device installs a downloaded update only once it has been idle
// (no call) for Behaviour.IdleTime.
type Usage struct {
	// BusyPerHour is the rate of calls in office hours (weekdays,
	// OfficeStart to OfficeEnd), QuietPerHour at other times.
	BusyPerHour  float64 `json:"busyPerHour,omitempty"`
	QuietPerHour float64 `json:"quietPerHour,omitempty"`
	// MeanCall is the mean length of a call; calls last at least 30 s.
	MeanCall Duration `json:"meanCall,omitzero"`
	// OfficeStart and OfficeEnd are the office hours, in hours of the day
	// (0-24) in the scenario start's time zone.
	OfficeStart int `json:"officeStart,omitempty"`
	OfficeEnd   int `json:"officeEnd,omitempty"`
}

// Default usage models: a desk phone has a few short calls an hour in office
// hours; a RoundTable holds long meetings.
var (
	DefaultPhoneUsage      = Usage{BusyPerHour: 3, QuietPerHour: 0.1, MeanCall: Duration(4 * time.Minute), OfficeStart: 8, OfficeEnd: 18}
	DefaultRoundTableUsage = Usage{BusyPerHour: 0.8, QuietPerHour: 0.02, MeanCall: Duration(40 * time.Minute), OfficeStart: 8, OfficeEnd: 18}
)

func (u Usage) withDefaults(def Usage) Usage {
	if u.BusyPerHour <= 0 {
		u.BusyPerHour = def.BusyPerHour
	}
	if u.QuietPerHour <= 0 {
		u.QuietPerHour = def.QuietPerHour
	}
	if u.MeanCall <= 0 {
		u.MeanCall = def.MeanCall
	}
	if u.OfficeEnd <= u.OfficeStart || u.OfficeStart < 0 || u.OfficeEnd > 24 {
		u.OfficeStart, u.OfficeEnd = def.OfficeStart, def.OfficeEnd
	}
	return u
}

const minCall = 30 * time.Second

// usageModel generates calls on the simulation's time line (nanoseconds
// since the scenario's start).
type usageModel struct {
	start        time.Time
	busy, quiet  float64 // calls per nanosecond
	mean         float64 // nanoseconds
	officeStart  time.Duration
	officeEnd    time.Duration
	startOfDay   int64 // offset of the start from the start of its day
	startWeekday time.Weekday
}

func newUsageModel(start time.Time, u Usage) *usageModel {
	h := float64(time.Hour)
	midnight := time.Date(start.Year(), start.Month(), start.Day(), 0, 0, 0, 0, start.Location())
	return &usageModel{
		start: start, busy: u.BusyPerHour / h, quiet: u.QuietPerHour / h, mean: float64(u.MeanCall),
		officeStart: time.Duration(u.OfficeStart) * time.Hour, officeEnd: time.Duration(u.OfficeEnd) * time.Hour,
		startOfDay: int64(start.Sub(midnight)), startWeekday: start.Weekday(),
	}
}

// office reports whether t (ns since the start) is in office hours. Days are
// counted as 24 hours from the start's midnight, which is exact in UTC and
// off by an hour around a daylight-saving change elsewhere.
func (m *usageModel) office(t int64) bool {
	since := m.startOfDay + t
	day := since / int64(24*time.Hour)
	if since < 0 {
		day--
	}
	wd := (int(m.startWeekday) + int(day%7) + 7) % 7
	if wd == int(time.Saturday) || wd == int(time.Sunday) {
		return false
	}
	tod := time.Duration(since - day*int64(24*time.Hour))
	return tod >= m.officeStart && tod < m.officeEnd
}

// nextOfficeStart returns the first start of office hours at or after t.
func (m *usageModel) nextOfficeStart(t int64) int64 {
	dayNs := int64(24 * time.Hour)
	since := m.startOfDay + t
	day := since / dayNs
	if since < 0 {
		day--
	}
	for i := int64(0); i < 8; i++ {
		open := (day+i)*dayNs + int64(m.officeStart) - m.startOfDay
		if open >= t && m.office(open) {
			return open
		}
	}
	return t
}

// nextCall returns the next call starting after t, by thinning: candidates
// arrive at the busy rate and are kept with probability rate(t)/busy.
func (m *usageModel) nextCall(t int64, r *rand.Rand) (start, end int64) {
	peak := math.Max(m.busy, m.quiet)
	for {
		t += int64(r.ExpFloat64() / peak)
		rate := m.quiet
		if m.office(t) {
			rate = m.busy
		}
		if r.Float64()*peak < rate {
			d := int64(r.ExpFloat64() * m.mean)
			return t, t + max(d, int64(minCall))
		}
	}
}

// calls is a device's position in its call stream: the end of the last call
// that ended and the current or next call. The stream is generated on demand
// from the device's usage source, so a device costs three numbers however
// long the run.
type calls struct {
	lastEnd    int64
	next, done int64 // start and end of the current or next call
	init       bool
}

// idleFrom returns the first time at or after t when the device has been
// idle for idle and no call is under way: when it may install an update.
func (c *calls) idleFrom(t, idle int64, m *usageModel, r *rand.Rand) int64 {
	if !c.init {
		// The stream starts a while before the first question, so that the
		// device may be in a call when it is first asked.
		c.lastEnd = math.MinInt64 / 2
		c.next, c.done = m.nextCall(t-int64(time.Hour), r)
		c.init = true
	}
	for {
		for c.done <= t {
			c.lastEnd = c.done
			c.next, c.done = m.nextCall(c.done, r)
		}
		cand := max(t, c.lastEnd+idle)
		if c.next > t && cand < c.next {
			return cand
		}
		t = c.done
	}
}

// busy reports whether a call is under way at t (for tests and progress).
func (c *calls) busyAt(t int64) bool { return c.init && c.next <= t && t < c.done }
