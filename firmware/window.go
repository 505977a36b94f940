package firmware

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// ErrWindow is returned by ParseSchedule for a malformed maintenance
// window.
var ErrWindow = errors.New("invalid maintenance window")

// Bounds of ParseSchedule's input.
const (
	MaxScheduleLen = 1024 // bytes of text
	MaxWindows     = 32   // windows separated by ';'
)

// Schedule is a weekly maintenance schedule: the times, in a site's time
// zone, at which devices may be offered updates. The zero value is always
// open. A Schedule is immutable; compare two with Equal.
//
// # Syntax
//
// A schedule is "always" (or empty), or one or more windows separated by
// ';':
//
//	Mon-Fri 22:00-05:00; Sat,Sun 00:00-24:00
//
// A window is a list of the days it opens on and the times it opens and
// closes, HH:MM-HH:MM on a 24-hour clock. Days are Mon, Tue, Wed, Thu, Fri,
// Sat, Sun (or their full English names, in any case), separated by ','
// and joined into ranges by '-'; a range may wrap over the weekend
// (Fri-Mon is Fri, Sat, Sun, Mon). Without days a window opens every day.
// A window that closes at or before the time it opens closes on the next
// day: "Mon-Fri 22:00-05:00" opens Monday to Friday at 22:00 and closes at
// 05:00 the next morning (Saturday's 05:00 for Friday's). 24:00 closes at
// the end of the day (so does 00:00 as a closing time: 22:00-00:00 is
// 22:00-24:00); "00:00-24:00" is a whole day; a window that opens and
// closes at the same time is refused.
//
// String writes the canonical form, which ParseSchedule reads back Equal:
// windows with the same times merged, days as ranges of three or more
// (Mon-Fri, Fri-Mon) and lists otherwise (Sat,Sun), ordered by their first
// day, Monday first, then time.
//
// # Time zones and daylight saving time
//
// A schedule is read in a time zone (Open, NextOpen and CloseAt take it;
// nil means UTC), in wall-clock time. Each window opens, on each of its
// days, at the first instant the local clock shows its opening time or a
// later one, and closes at the first instant after that at which the clock
// shows its closing time or a later one. So on the days the clocks change:
//
//   - a time that does not exist (02:30 when clocks spring forward from
//     02:00 to 03:00) is reached when the clocks jump: a window opening at
//     02:30 opens at 03:00 that day, one closing at 02:30 closes at 03:00,
//     and a window that lies wholly in the skipped hour does not open that
//     day;
//   - a time that occurs twice (01:30 when clocks fall back from 02:00 to
//     01:00, as in America/New_York, or 02:30 in Europe/Berlin) is its first
//     occurrence: a window opens then, once, and closes at the first
//     occurrence of its closing time, so it is open at most once a day and
//     does not reopen when the clock repeats the hour.
//
// A window is thus one span of real time per day it opens on; windows that
// touch or overlap join into one longer span (CloseAt follows them).
type Schedule struct {
	w []window // nil: always open
}

// window opens on days at start and closes at end, in minutes of the day.
type window struct {
	days  uint8  // bit d set: opens on time.Weekday d (Sunday = 0)
	start uint16 // 0..1439
	end   uint16 // 1..1440; end <= start: on the next day
}

const allDays = 1<<7 - 1

var dayNames = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

// ParseSchedule parses a schedule (see Schedule for the syntax).
func ParseSchedule(s string) (Schedule, error) {
	if len(s) > MaxScheduleLen {
		return Schedule{}, fmt.Errorf("%w %.32q...: longer than %d bytes", ErrWindow, s, MaxScheduleLen)
	}
	t := strings.TrimSpace(s)
	if t == "" || strings.EqualFold(t, "always") {
		return Schedule{}, nil
	}
	parts := strings.Split(t, ";")
	if len(parts) > MaxWindows {
		return Schedule{}, fmt.Errorf("%w %.32q...: more than %d windows", ErrWindow, s, MaxWindows)
	}
	ws := make([]window, 0, len(parts))
	for i, p := range parts {
		w, err := parseWindow(strings.TrimSpace(p))
		if err != nil {
			where := ""
			if len(parts) > 1 {
				where = fmt.Sprintf(" window %d (%q):", i+1, strings.TrimSpace(p))
			}
			return Schedule{}, fmt.Errorf("%w %q:%s %v; write windows like \"Mon-Fri 22:00-05:00; Sat,Sun 00:00-24:00\"", ErrWindow, s, where, err)
		}
		ws = append(ws, w)
	}
	return Schedule{w: normalize(ws)}, nil
}

// MustParseSchedule is ParseSchedule for constants in tests and examples;
// it panics on a malformed schedule.
func MustParseSchedule(s string) Schedule {
	sc, err := ParseSchedule(s)
	if err != nil {
		panic(err)
	}
	return sc
}

func parseWindow(p string) (window, error) {
	if p == "" {
		return window{}, errors.New("an empty window (a stray ';'?)")
	}
	if strings.EqualFold(p, "always") {
		return window{}, errors.New("\"always\" stands alone, not beside other windows")
	}
	i := strings.IndexAny(p, "0123456789")
	if i < 0 {
		return window{}, errors.New("no times: want the days and then HH:MM-HH:MM")
	}
	days, times := p[:i], p[i:]
	w := window{days: allDays}
	if d := strings.Join(strings.Fields(days), ""); d != "" {
		m, err := parseDays(d)
		if err != nil {
			return window{}, err
		}
		w.days = m
	}
	times = strings.Join(strings.Fields(times), "")
	if j := strings.IndexFunc(times, func(r rune) bool { return r != ':' && r != '-' && (r < '0' || r > '9') }); j >= 0 {
		return window{}, fmt.Errorf("%q after the times; separate windows with ';'", times[j:])
	}
	from, to, ok := strings.Cut(times, "-")
	if !ok || strings.Contains(to, "-") {
		return window{}, fmt.Errorf("times %q: want HH:MM-HH:MM, like 22:00-05:00", times)
	}
	start, err := parseClock(from)
	if err != nil {
		return window{}, err
	}
	if start == 24*60 {
		return window{}, errors.New("a window cannot open at 24:00; open at 00:00")
	}
	end, err := parseClock(to)
	if err != nil {
		return window{}, err
	}
	if end == start {
		return window{}, fmt.Errorf("%s-%s opens and closes at the same time; a whole day is 00:00-24:00", from, to)
	}
	if end == 0 {
		end = 24 * 60
	}
	w.start, w.end = uint16(start), uint16(end)
	return w, nil
}

// parseClock parses H:MM or HH:MM, 0:00 to 24:00, into minutes.
func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) < 1 || len(h) > 2 || len(m) != 2 || !digits(h) || !digits(m) {
		return 0, fmt.Errorf("time %q: want HH:MM on a 24-hour clock, like 05:00 or 22:30", s)
	}
	hh := int(h[0] - '0')
	if len(h) == 2 {
		hh = hh*10 + int(h[1]-'0')
	}
	mm := int(m[0]-'0')*10 + int(m[1]-'0')
	switch {
	case hh > 24 || hh == 24 && mm != 0:
		return 0, fmt.Errorf("time %q: hours go from 00 to 23 (24:00 is the end of the day)", s)
	case mm > 59:
		return 0, fmt.Errorf("time %q: minutes go from 00 to 59", s)
	}
	return hh*60 + mm, nil
}

func parseDays(s string) (uint8, error) {
	var m uint8
	for item := range strings.SplitSeq(s, ",") {
		if item == "" {
			return 0, fmt.Errorf("days %q: an empty day in the list", s)
		}
		a, b, isRange := strings.Cut(item, "-")
		from, err := parseDay(a)
		if err != nil {
			return 0, err
		}
		if !isRange {
			m |= 1 << from
			continue
		}
		to, err := parseDay(b)
		if err != nil {
			return 0, err
		}
		if from == to {
			return 0, fmt.Errorf("days %q: a range needs two different days (Mon-Sun is the whole week)", item)
		}
		for d := from; ; d = (d + 1) % 7 {
			m |= 1 << d
			if d == to {
				break
			}
		}
	}
	return m, nil
}

func parseDay(s string) (int, error) {
	full := [7]string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}
	for d, n := range dayNames {
		if strings.EqualFold(s, n) || strings.EqualFold(s, full[d]) {
			return d, nil
		}
	}
	if s == "" {
		return 0, errors.New("a day is missing around '-'")
	}
	return 0, fmt.Errorf("%q is not a day: use Mon, Tue, Wed, Thu, Fri, Sat or Sun", s)
}

// firstDay returns the Monday-first place of a day mask's first day.
func firstDay(m uint8) int {
	for i := range 7 {
		if m&(1<<((i+1)%7)) != 0 {
			return i
		}
	}
	return 7
}

// normalize merges windows with the same times and orders them for the
// canonical form.
func normalize(ws []window) []window {
	out := ws[:0]
	for _, w := range ws {
		if i := slices.IndexFunc(out, func(o window) bool { return o.start == w.start && o.end == w.end }); i >= 0 {
			out[i].days |= w.days
			continue
		}
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b window) int {
		return cmp.Or(cmp.Compare(firstDay(a.days), firstDay(b.days)), cmp.Compare(a.start, b.start), cmp.Compare(a.end, b.end))
	})
	return slices.Clip(out)
}

// String returns the canonical form; "always" for the zero Schedule.
func (s Schedule) String() string {
	if len(s.w) == 0 {
		return "always"
	}
	var b strings.Builder
	for i, w := range s.w {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(formatDays(w.days))
		fmt.Fprintf(&b, " %02d:%02d-%02d:%02d", w.start/60, w.start%60, w.end/60, w.end%60)
	}
	return b.String()
}

// formatDays writes a day mask Monday first, runs of three or more days as
// ranges, a run through Sunday and Monday as one wrapping range.
func formatDays(m uint8) string {
	if m == allDays {
		return "Mon-Sun"
	}
	type run struct{ from, n int } // Monday-first places
	var runs []run
	for i := 0; i < 7; i++ {
		if m&(1<<((i+1)%7)) == 0 {
			continue
		}
		r := run{from: i}
		for i < 7 && m&(1<<((i+1)%7)) != 0 {
			r.n++
			i++
		}
		runs = append(runs, r)
	}
	if len(runs) > 1 && runs[0].from == 0 && runs[len(runs)-1].from+runs[len(runs)-1].n == 7 {
		runs[len(runs)-1].n += runs[0].n // Sunday runs on into Monday
		runs = runs[1:]
	}
	var parts []string
	for _, r := range runs {
		name := func(k int) string { return dayNames[(r.from+k+1)%7] }
		switch r.n {
		case 1:
			parts = append(parts, name(0))
		case 2:
			parts = append(parts, name(0), name(1))
		default:
			parts = append(parts, name(0)+"-"+name(r.n-1))
		}
	}
	return strings.Join(parts, ",")
}

// IsZero reports whether s is the zero Schedule: always open.
func (s Schedule) IsZero() bool { return len(s.w) == 0 }

// Equal reports whether s and o are the same schedule.
func (s Schedule) Equal(o Schedule) bool { return slices.Equal(s.w, o.w) }

// MarshalText implements encoding.TextMarshaler: the canonical form.
func (s Schedule) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseSchedule.
func (s *Schedule) UnmarshalText(b []byte) error {
	v, err := ParseSchedule(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Open reports whether the schedule is open at t, read in loc (nil: UTC).
func (s Schedule) Open(t time.Time, loc *time.Location) bool {
	if len(s.w) == 0 {
		return true
	}
	z := zoneAt(t, loc)
	_, ok := s.containing(&z, t.Unix())
	return ok
}

// NextOpen returns the first time at or after t at which the schedule is
// open, read in loc (nil: UTC): t itself when it is open. The zero time
// means it never opens (a schedule whose only window lies wholly in the
// hour skipped on two changes of the clocks in a row; no real one).
func (s Schedule) NextOpen(t time.Time, loc *time.Location) time.Time {
	if len(s.w) == 0 {
		return t
	}
	z := zoneAt(t, loc)
	u := t.Unix()
	if _, ok := s.containing(&z, u); ok {
		return t
	}
	n, ok := s.nextStart(&z, u)
	if !ok {
		return time.Time{}
	}
	return time.Unix(n, 0).In(z.loc)
}

// CloseAt returns when the schedule, open at t, closes, read in loc (nil:
// UTC): the end of the window containing t, or of the windows that follow
// it without a break. The zero time means it is not open at t, or it never
// closes (it is open all week).
func (s Schedule) CloseAt(t time.Time, loc *time.Location) time.Time {
	if len(s.w) == 0 {
		return time.Time{}
	}
	z := zoneAt(t, loc)
	e, ok := s.span(&z, t.Unix())
	if !ok || e == math.MaxInt64 {
		return time.Time{}
	}
	return time.Unix(e, 0).In(z.loc)
}

const (
	daySecs = 24 * 60 * 60
	// scanDays bounds the days the arithmetic looks ahead: a week and a
	// week more, for a window that a change of the clocks skipped.
	scanDays = 15
	// zoneMargin keeps the fast path away from a change of the clocks by
	// more than any offset change (offsets span -12h to +14h).
	zoneMargin = 26 * 60 * 60
)

// zone is what the schedule arithmetic needs of a location around an
// instant: its offset there, and how far that offset surely holds.
type zone struct {
	loc    *time.Location
	off    int64 // seconds east of UTC
	lo, hi int64 // Unix seconds: off holds, with zoneMargin to spare, in [lo, hi)
}

func zoneAt(t time.Time, loc *time.Location) zone {
	if loc == nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	_, off := lt.Zone()
	s, e := lt.ZoneBounds()
	z := zone{loc: loc, off: int64(off), lo: math.MinInt64, hi: math.MaxInt64}
	if !s.IsZero() {
		z.lo = s.Unix() + zoneMargin
	}
	if !e.IsZero() {
		z.hi = e.Unix() - zoneMargin
	}
	return z
}

// wall returns the wall-clock time of instant u as seconds since
// 1970-01-01 00:00 local.
func (z *zone) wall(u int64) int64 {
	if z.lo <= u && u < z.hi {
		return u + z.off
	}
	_, off := time.Unix(u, 0).In(z.loc).Zone()
	return u + int64(off)
}

// instant returns the first instant (Unix seconds) at which the local clock
// shows the wall-clock time w or a later one.
func (z *zone) instant(w int64) int64 {
	if u := w - z.off; z.lo <= u && u < z.hi {
		return u // no change of the clocks near: w occurs once, at u
	}
	return firstAt(w, z.loc)
}

// firstAt is zone.instant near a change of the clocks.
func firstAt(w int64, loc *time.Location) int64 {
	d := time.Unix(w, 0).UTC()
	lt := time.Date(d.Year(), d.Month(), d.Day(), d.Hour(), d.Minute(), d.Second(), 0, loc)
	u := lt.Unix()
	_, off := lt.Zone()
	switch got := u + int64(off); {
	case got == w:
		// w exists at u; if the clocks fell back, it may have occurred
		// before, in the zone before u's.
		if s, _ := lt.ZoneBounds(); !s.IsZero() {
			_, prev := s.Add(-time.Second).Zone()
			if c := w - int64(prev); c < u {
				if _, o := time.Unix(c, 0).In(loc).Zone(); c+int64(o) == w {
					return c
				}
			}
		}
		return u
	case got > w:
		// w was skipped and time.Date went forward: the clocks jumped
		// where lt's zone starts.
		if s, _ := lt.ZoneBounds(); !s.IsZero() {
			return s.Unix()
		}
	default:
		// w was skipped and time.Date went back: the clocks jumped where
		// lt's zone ends.
		if _, e := lt.ZoneBounds(); !e.IsZero() {
			return e.Unix()
		}
	}
	return u
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// weekday returns the weekday of local day number d (days since
// 1970-01-01, a Thursday).
func weekday(d int64) int { return int((d%7 + 7 + 4) % 7) }

// occurrence returns the span of real time [open, close) of window w
// opening on local day d.
func (z *zone) occurrence(d int64, w window) (open, close int64) {
	base := d * daySecs
	end := base + int64(w.end)*60
	if w.end <= w.start {
		end += daySecs
	}
	return z.instant(base + int64(w.start)*60), z.instant(end)
}

// containing returns the latest close of the windows open at u.
func (s Schedule) containing(z *zone, u int64) (end int64, ok bool) {
	day := floorDiv(z.wall(u), daySecs)
	// A window open at u opened on u's local day or the day before: none
	// lasts longer than a day and an hour.
	for d := day - 1; d <= day; d++ {
		bit := uint8(1) << weekday(d)
		for _, w := range s.w {
			if w.days&bit == 0 {
				continue
			}
			if o, c := z.occurrence(d, w); o <= u && u < c && (!ok || c > end) {
				end, ok = c, true
			}
		}
	}
	return end, ok
}

// span returns when the schedule, open at u, closes: following windows
// that touch or overlap; math.MaxInt64 when it stays open for longer than
// the arithmetic looks (it is open all week). ok is false when it is not
// open at u.
func (s Schedule) span(z *zone, u int64) (end int64, ok bool) {
	end, ok = s.containing(z, u)
	if !ok {
		return 0, false
	}
	limit := u + scanDays*daySecs
	for end <= limit {
		next, open := s.containing(z, end)
		if !open {
			return end, true
		}
		end = next
	}
	return math.MaxInt64, true
}

// nextStart returns the earliest opening of a window after u, skipping
// windows lost to a change of the clocks.
func (s Schedule) nextStart(z *zone, u int64) (int64, bool) {
	day := floorDiv(z.wall(u), daySecs)
	// Openings on later local days are later (the clock's first reading of
	// a day's time never comes before an earlier day's): the first day
	// with one has the earliest.
	for d := day; d <= day+scanDays; d++ {
		bit := uint8(1) << weekday(d)
		best, found := int64(0), false
		for _, w := range s.w {
			if w.days&bit == 0 {
				continue
			}
			if o, c := z.occurrence(d, w); o < c && o > u && (!found || o < best) {
				best, found = o, true
			}
		}
		if found {
			return best, true
		}
	}
	return 0, false
}

// WindowCheck is what CheckWindows says about making an offer now.
type WindowCheck struct {
	// Open says an offer may be made now.
	Open bool
	// Next is the first time at or after now at which an offer may be made:
	// now when Open; the zero time when the windows never open together
	// (within two weeks).
	Next time.Time
	// Close is, when Open, when the windows close: a device offered an
	// update now must not install it after Close. The zero time means they
	// do not close (all the schedules are always open, or open all week).
	Close time.Time
}

// CheckWindows says whether an offer may be made at now under every one of
// the schedules, all read in loc (nil: UTC): a site's windows and a
// rollout's, say. An offer is made only inside a time when all are open
// and stay open for at least minOpen more, so that a device has the time to
// download and install before the windows close; otherwise Next says when
// that is next the case. Zero schedules are always open and cost nothing.
func CheckWindows(now time.Time, loc *time.Location, minOpen time.Duration, schedules ...Schedule) WindowCheck {
	n := 0
	for _, s := range schedules {
		if !s.IsZero() {
			n++
		}
	}
	if n == 0 {
		return WindowCheck{Open: true, Next: now}
	}
	z := zoneAt(now, loc)
	u := now.Unix()
	need := int64((minOpen + time.Second - 1) / time.Second)
	limit := u + scanDays*daySecs
	for t := u; t <= limit; {
		end, moved := int64(math.MaxInt64), false
		for _, s := range schedules {
			if s.IsZero() {
				continue
			}
			e, ok := s.span(&z, t)
			if !ok {
				next, ok := s.nextStart(&z, t)
				if !ok {
					return WindowCheck{}
				}
				t, moved = next, true
				break
			}
			end = min(end, e)
		}
		if moved {
			continue
		}
		if end != math.MaxInt64 && end-t < need {
			t = end // too little left: try when this span closes
			continue
		}
		c := WindowCheck{Open: t == u, Next: time.Unix(t, 0).In(z.loc)}
		if c.Open {
			c.Next = now
		}
		if end != math.MaxInt64 && c.Open {
			c.Close = time.Unix(end, 0).In(z.loc)
		}
		return c
	}
	return WindowCheck{}
}
