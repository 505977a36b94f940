package firmware

import (
	"encoding/json"
	"errors"
	"math"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestParseSchedule(t *testing.T) {
	tests := []struct {
		in, want string // want: the canonical form
	}{
		{"", "always"},
		{"  always ", "always"},
		{"ALWAYS", "always"},
		{"Mon-Fri 22:00-05:00", "Mon-Fri 22:00-05:00"},
		{"mon-fri 22:00-05:00", "Mon-Fri 22:00-05:00"},
		{"Monday-Friday 22:00 - 05:00", "Mon-Fri 22:00-05:00"},
		{"Sat,Sun 00:00-24:00", "Sat,Sun 00:00-24:00"},
		{"Sat, Sun 0:00-24:00", "Sat,Sun 00:00-24:00"},
		{"Sat-Sun 00:00-24:00", "Sat,Sun 00:00-24:00"},
		{"22:00-05:00", "Mon-Sun 22:00-05:00"},
		{"Mon-Sun 1:30-2:30", "Mon-Sun 01:30-02:30"},
		{"Fri-Mon 01:00-02:00", "Fri-Mon 01:00-02:00"},
		{"Sun-Sat 01:00-02:00", "Mon-Sun 01:00-02:00"},
		{"Mon,Wed,Sat,Sun 01:00-02:00", "Wed,Sat-Mon 01:00-02:00"},
		{"Sun,Mon 01:00-02:00", "Sun,Mon 01:00-02:00"},
		{"Mon,Tue,Wed 01:00-02:00", "Mon-Wed 01:00-02:00"},
		{"Tue,Thu 01:00-02:00", "Tue,Thu 01:00-02:00"},
		{"Mon 22:00-00:00", "Mon 22:00-24:00"},
		{"Mon 23:59-00:01", "Mon 23:59-00:01"},
		{"Mon 22:00-05:00; Tue 22:00-05:00", "Mon,Tue 22:00-05:00"},
		{"Sat,Sun 00:00-24:00; Mon-Fri 22:00-05:00", "Mon-Fri 22:00-05:00; Sat,Sun 00:00-24:00"},
		{"Mon-Fri 22:00-05:00;Sat,Sun 00:00-24:00", "Mon-Fri 22:00-05:00; Sat,Sun 00:00-24:00"},
		{"Mon 12:00-13:00; Mon 01:00-02:00", "Mon 01:00-02:00; Mon 12:00-13:00"},
		{"Mon 01:00-02:00; Mon 01:00-02:00", "Mon 01:00-02:00"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, err := ParseSchedule(tt.in)
			if err != nil {
				t.Fatalf("ParseSchedule(%q): %v", tt.in, err)
			}
			if got := s.String(); got != tt.want {
				t.Errorf("ParseSchedule(%q).String() = %q, want %q", tt.in, got, tt.want)
			}
			back, err := ParseSchedule(s.String())
			if err != nil || !back.Equal(s) {
				t.Errorf("ParseSchedule(%q) = %v, %v: does not read back equal", s, back, err)
			}
		})
	}
}

func TestParseScheduleErrors(t *testing.T) {
	tests := []struct {
		in, want string // want: a part of the error
	}{
		{"Mon-Fri 25:00-05:00", "hours go from 00 to 23"},
		{"Mon 24:30-05:00", "hours go from 00 to 23"},
		{"Mon 22:60-05:00", "minutes go from 00 to 59"},
		{"Mon 22:00", "want HH:MM-HH:MM"},
		{"Mon 22:00-05:00-06:00", "want HH:MM-HH:MM"},
		{"Mon 2200-0500", "want HH:MM on a 24-hour clock"},
		{"Mon 1:0-2:00", "want HH:MM on a 24-hour clock"},
		{"Mon 123:00-2:00", "want HH:MM on a 24-hour clock"},
		{"Mon 22:00-22:00", "opens and closes at the same time"},
		{"Mon 00:00-00:00", "opens and closes at the same time"},
		{"Mon 24:00-05:00", "cannot open at 24:00"},
		{"Mnn 22:00-05:00", `"Mnn" is not a day`},
		{"Mon-Mon 01:00-02:00", "two different days"},
		{"Mon,,Tue 01:00-02:00", "empty day"},
		{"Mon- 01:00-02:00", "a day is missing"},
		{"Mon Tue", "no times"},
		{"Mon-Fri 22:00-05:00, Sat 01:00-02:00", "separate windows with ';'"},
		{"Mon 22:00-05:00 Tue", "separate windows with ';'"},
		{"Mon 22:00-05:00;", "an empty window"},
		{"always; Mon 01:00-02:00", "stands alone"},
		{"Mon 01:00-02:00; Mon 25:00-02:00", `window 2 ("Mon 25:00-02:00")`},
		{strings.Repeat("Mon 01:00-02:00;", 40), "more than 32 windows"},
		{strings.Repeat(" ", MaxScheduleLen+1), "longer than 1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, err := ParseSchedule(tt.in)
			if err == nil {
				t.Fatalf("ParseSchedule(%q) = %v, want an error", tt.in, s)
			}
			if !errors.Is(err, ErrWindow) {
				t.Errorf("ParseSchedule(%q) error %v does not wrap ErrWindow", tt.in, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseSchedule(%q) error = %q, want it to say %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestScheduleJSON(t *testing.T) {
	type doc struct {
		W Schedule `json:"w,omitzero"`
	}
	in := doc{W: MustParseSchedule("Mon-Fri 22:00-05:00")}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"w":"Mon-Fri 22:00-05:00"}`; got != want {
		t.Errorf("json.Marshal = %s, want %s", got, want)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil || !out.W.Equal(in.W) {
		t.Errorf("round trip = %v, %v, want %v", out.W, err, in.W)
	}
	if b, _ := json.Marshal(doc{}); string(b) != "{}" {
		t.Errorf("an always-open schedule marshals as %s, want {} (omitzero)", b)
	}
	if err := json.Unmarshal([]byte(`{"w":"Mon 25:00-01:00"}`), &out); !errors.Is(err, ErrWindow) {
		t.Errorf("json.Unmarshal of a bad window: %v, want ErrWindow", err)
	}
}

// TestScheduleTimes checks Open, NextOpen and CloseAt at hand-picked times:
// time zones, midnight, the weekend, and the 2026 changes of the clocks in
// Europe/Berlin (Mar 29 02:00 CET -> 03:00 CEST; Oct 25 03:00 CEST -> 02:00
// CET) and America/New_York (Mar 8 02:00 EST -> 03:00 EDT; Nov 1 02:00 EDT
// -> 01:00 EST). Times are UTC; the comments give them in the zone.
func TestScheduleTimes(t *testing.T) {
	tests := []struct {
		name, zone, sched, at string
		open                  bool
		next, close           string // "" is the zero time
	}{
		// Crossing midnight, in Berlin summer time (UTC+2).
		{"before opening", "Europe/Berlin", "Mon-Fri 22:00-05:00", "2026-06-01T19:59:00Z", false, "2026-06-01T20:00:00Z", ""},                // Mon 21:59
		{"at opening", "Europe/Berlin", "Mon-Fri 22:00-05:00", "2026-06-01T20:00:00Z", true, "2026-06-01T20:00:00Z", "2026-06-02T03:00:00Z"}, // Mon 22:00 -> Tue 05:00
		{"after midnight", "Europe/Berlin", "Mon-Fri 22:00-05:00", "2026-06-01T23:30:00Z", true, "2026-06-01T23:30:00Z", "2026-06-02T03:00:00Z"},
		{"Friday's window on Saturday", "Europe/Berlin", "Mon-Fri 22:00-05:00", "2026-06-06T02:59:59Z", true, "2026-06-06T02:59:59Z", "2026-06-06T03:00:00Z"}, // Sat 04:59:59
		{"closed at the close", "Europe/Berlin", "Mon-Fri 22:00-05:00", "2026-06-06T03:00:00Z", false, "2026-06-08T20:00:00Z", ""},                            // Sat 05:00 -> Mon 22:00
		{"Monday morning is Sunday's", "Europe/Berlin", "Mon-Fri 22:00-05:00", "2026-05-31T22:30:00Z", false, "2026-06-01T20:00:00Z", ""},                     // Mon 00:30
		{"sub-second before", "Europe/Berlin", "Mon-Fri 22:00-05:00", "2026-06-01T19:59:59.999Z", false, "2026-06-01T20:00:00Z", ""},
		// The same schedule in other zones, at the same instant (Mon 21:00 UTC).
		{"UTC", "UTC", "Mon-Fri 22:00-05:00", "2026-06-01T21:00:00Z", false, "2026-06-01T22:00:00Z", ""},
		{"New York", "America/New_York", "Mon-Fri 22:00-05:00", "2026-06-01T21:00:00Z", false, "2026-06-02T02:00:00Z", ""}, // Mon 17:00 EDT
		{"Tokyo", "Asia/Tokyo", "Mon-Fri 22:00-05:00", "2026-06-01T21:00:00Z", false, "2026-06-02T13:00:00Z", ""},          // Tue 06:00 JST -> Tue 22:00
		{"Kathmandu", "Asia/Kathmandu", "Mon-Fri 22:00-05:00", "2026-06-01T16:15:00Z", true, "2026-06-01T16:15:00Z", "2026-06-01T23:15:00Z"},
		// Windows that touch join; a week of them never closes.
		{"joined into the weekend", "Europe/Berlin", "Mon-Fri 22:00-05:00; Sat,Sun 00:00-24:00", "2026-06-05T21:00:00Z", true, "2026-06-05T21:00:00Z", "2026-06-07T22:00:00Z"}, // Fri 23:00 -> Mon 00:00
		{"whole week", "Europe/Berlin", "Mon-Sun 00:00-24:00", "2026-06-03T10:00:00Z", true, "2026-06-03T10:00:00Z", ""},
		{"always", "Europe/Berlin", "always", "2026-06-03T10:00:00Z", true, "2026-06-03T10:00:00Z", ""},
		{"wrapping days", "UTC", "Fri-Mon 09:00-10:00", "2026-06-02T09:30:00Z", false, "2026-06-05T09:00:00Z", ""}, // Tue -> Fri
		{"wrapping days, Monday", "UTC", "Fri-Mon 09:00-10:00", "2026-06-01T09:30:00Z", true, "2026-06-01T09:30:00Z", "2026-06-01T10:00:00Z"},
		// Berlin, spring forward: 02:00-02:59 does not exist on Mar 29.
		{"start skipped opens at the jump", "Europe/Berlin", "Sun 02:30-04:00", "2026-03-28T12:00:00Z", false, "2026-03-29T01:00:00Z", ""},
		{"open from the jump", "Europe/Berlin", "Sun 02:30-04:00", "2026-03-29T01:00:00Z", true, "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"}, // 03:00 CEST -> 04:00 CEST
		{"just before the jump", "Europe/Berlin", "Sun 02:30-04:00", "2026-03-29T00:59:59Z", false, "2026-03-29T01:00:00Z", ""},                  // 01:59:59 CET
		{"window in the skipped hour", "Europe/Berlin", "Sun 02:00-02:30", "2026-03-28T12:00:00Z", false, "2026-04-05T00:00:00Z", ""},            // next Sunday 02:00 CEST
		{"close skipped closes at the jump", "Europe/Berlin", "Sat 22:00-02:30", "2026-03-28T22:00:00Z", true, "2026-03-28T22:00:00Z", "2026-03-29T01:00:00Z"},
		{"night across the jump", "Europe/Berlin", "Sat 22:00-05:00", "2026-03-28T21:00:00Z", true, "2026-03-28T21:00:00Z", "2026-03-29T03:00:00Z"}, // 6 hours
		// Berlin, fall back: 02:00-02:59 occurs twice on Oct 25.
		{"repeated start is the first", "Europe/Berlin", "Sun 02:30-04:00", "2026-10-24T12:00:00Z", false, "2026-10-25T00:30:00Z", ""},                // 02:30 CEST
		{"open through the repeat", "Europe/Berlin", "Sun 02:30-04:00", "2026-10-25T01:30:00Z", true, "2026-10-25T01:30:00Z", "2026-10-25T03:00:00Z"}, // 02:30 CET, to 04:00 CET
		{"repeated close is the first", "Europe/Berlin", "Sun 01:30-02:30", "2026-10-25T00:29:59Z", true, "2026-10-25T00:29:59Z", "2026-10-25T00:30:00Z"},
		{"no reopening in the repeat", "Europe/Berlin", "Sun 01:30-02:30", "2026-10-25T01:15:00Z", false, "2026-11-01T00:30:00Z", ""},                 // 02:15 CET: next Sunday 01:30 CET
		{"night across the repeat", "Europe/Berlin", "Sat 22:00-05:00", "2026-10-24T20:00:00Z", true, "2026-10-24T20:00:00Z", "2026-10-25T04:00:00Z"}, // 8 hours
		// New York, spring forward: 02:00-02:59 does not exist on Mar 8.
		{"NY start skipped", "America/New_York", "Sun 02:30-04:00", "2026-03-07T12:00:00Z", false, "2026-03-08T07:00:00Z", ""}, // 03:00 EDT
		{"NY window in the skipped hour", "America/New_York", "Sun 02:00-02:59", "2026-03-08T06:30:00Z", false, "2026-03-15T06:00:00Z", ""},
		// New York, fall back: 01:00-01:59 occurs twice on Nov 1.
		{"NY repeated start is the first", "America/New_York", "Sun 01:30-03:00", "2026-10-31T12:00:00Z", false, "2026-11-01T05:30:00Z", ""},                // 01:30 EDT
		{"NY open through the repeat", "America/New_York", "Sun 01:30-03:00", "2026-11-01T06:30:00Z", true, "2026-11-01T06:30:00Z", "2026-11-01T08:00:00Z"}, // 01:30 EST
		{"NY no reopening in the repeat", "America/New_York", "Sun 01:00-01:30", "2026-11-01T06:10:00Z", false, "2026-11-08T06:00:00Z", ""},                 // 01:10 EST
		{"NY window closes at the first 01:30", "America/New_York", "Sun 01:00-01:30", "2026-11-01T05:00:00Z", true, "2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := loadZone(t, tt.zone)
			s := MustParseSchedule(tt.sched)
			at := utc(tt.at)
			if got := s.Open(at, loc); got != tt.open {
				t.Errorf("%q in %s: Open(%s) = %v, want %v", s, tt.zone, at.In(loc), got, tt.open)
			}
			if got := s.NextOpen(at, loc); !sameTime(got, tt.next) {
				t.Errorf("%q in %s: NextOpen(%s) = %s, want %s", s, tt.zone, at.In(loc), show(got, loc), tt.next)
			}
			if got := s.CloseAt(at, loc); !sameTime(got, tt.close) {
				t.Errorf("%q in %s: CloseAt(%s) = %s, want %s", s, tt.zone, at.In(loc), show(got, loc), tt.close)
			}
		})
	}
}

func sameTime(got time.Time, want string) bool {
	if want == "" {
		return got.IsZero()
	}
	return got.Equal(utc(want))
}

func show(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "zero"
	}
	return t.UTC().Format(time.RFC3339Nano) + " (" + t.In(loc).Format("Mon 15:04:05 MST") + ")"
}

// refZone answers from the definition of Schedule, minute by minute and
// without the package's arithmetic: a window opens at the first minute at
// which the local clock shows its opening time or later, and closes at
// the first minute after that showing its closing time or later.
type refZone struct {
	loc  *time.Location
	t0   int64   // Unix seconds of the first minute
	maxw []int64 // running maximum of the wall clock (local seconds since 1970) by minute
}

func newRefZone(loc *time.Location, from, to time.Time) *refZone {
	r := &refZone{loc: loc, t0: from.Unix() / 60 * 60}
	m := int64(math.MinInt64)
	for u := r.t0; u < to.Unix(); u += 60 {
		lt := time.Unix(u, 0).In(loc)
		y, mo, d := lt.Date()
		w := time.Date(y, mo, d, lt.Hour(), lt.Minute(), 0, 0, time.UTC).Unix()
		m = max(m, w)
		r.maxw = append(r.maxw, m)
	}
	return r
}

func (r *refZone) first(w int64) int64 {
	i := sort.Search(len(r.maxw), func(i int) bool { return r.maxw[i] >= w })
	if i == len(r.maxw) {
		panic("refZone: out of range")
	}
	return r.t0 + int64(i)*60
}

// occurrences returns the spans of the windows opening on the local day
// days after u's.
func (r *refZone) occurrences(s Schedule, u int64, days int) [][2]int64 {
	y, m, d := time.Unix(u, 0).In(r.loc).Date()
	midnight := time.Date(y, m, d+days, 0, 0, 0, 0, time.UTC)
	var out [][2]int64
	for _, w := range s.w {
		if w.days&(1<<midnight.Weekday()) == 0 {
			continue
		}
		end := midnight.Unix() + int64(w.end)*60
		if w.end <= w.start {
			end += 86400
		}
		out = append(out, [2]int64{r.first(midnight.Unix() + int64(w.start)*60), r.first(end)})
	}
	return out
}

func (r *refZone) open(s Schedule, u int64) (end int64, ok bool) {
	for days := -1; days <= 0; days++ {
		for _, o := range r.occurrences(s, u, days) {
			if o[0] <= u && u < o[1] && (!ok || o[1] > end) {
				end, ok = o[1], true
			}
		}
	}
	return end, ok
}

func (r *refZone) next(s Schedule, u int64) (int64, bool) {
	if _, ok := r.open(s, u); ok {
		return u, true
	}
	for days := 0; days <= 15; days++ {
		best, found := int64(0), false
		for _, o := range r.occurrences(s, u, days) {
			if o[0] < o[1] && o[0] > u && (!found || o[0] < best) {
				best, found = o[0], true
			}
		}
		if found {
			return best, true
		}
	}
	return 0, false
}

func (r *refZone) close(s Schedule, u int64) (int64, bool) {
	end, ok := r.open(s, u)
	if !ok {
		return 0, false
	}
	for end <= u+15*86400 {
		n, ok := r.open(s, end)
		if !ok {
			return end, true
		}
		end = n
	}
	return 0, false // never closes
}

// TestScheduleAgainstDefinition compares Open, NextOpen and CloseAt with
// refZone every few minutes for two days either side of changes of the
// clocks (an hour in Berlin and New York, half an hour on Lord Howe
// Island), and on ordinary days in zones with odd offsets, for schedules
// whose windows start, end or lie in the hours the changes skip or repeat.
func TestScheduleAgainstDefinition(t *testing.T) {
	scheds := []string{
		"Sun 02:30-04:00", "Sun 02:00-02:30", "Sun 01:30-02:30", "Sun 01:00-01:30", "Sun 02:15-02:45; Sun 02:45-03:30",
		"Sat 22:00-02:30", "Sat 23:00-03:00", "Sat,Sun 02:00-03:00", "Mon-Sun 03:00-02:00", "Fri-Mon 01:59-02:01",
		"Mon-Fri 22:00-05:00; Sat,Sun 00:00-24:00", "Mon-Sun 00:00-24:00", "Sun 00:00-02:00; Sun 02:30-24:00",
	}
	cases := []struct {
		zone, around string
	}{
		{"Europe/Berlin", "2026-03-29T01:00:00Z"},
		{"Europe/Berlin", "2026-10-25T01:00:00Z"},
		{"America/New_York", "2026-03-08T07:00:00Z"},
		{"America/New_York", "2026-11-01T06:00:00Z"},
		{"Australia/Lord_Howe", "2026-04-04T15:00:00Z"},
		{"Australia/Lord_Howe", "2026-10-03T15:30:00Z"},
		{"Asia/Kathmandu", "2026-06-07T00:00:00Z"},
		{"UTC", "2026-06-07T00:00:00Z"},
	}
	step := 7 * time.Minute
	if testing.Short() {
		step = 31 * time.Minute
	}
	for _, c := range cases {
		loc := loadZone(t, c.zone)
		mid := utc(c.around)
		ref := newRefZone(loc, mid.Add(-5*24*time.Hour), mid.Add(25*24*time.Hour))
		for _, text := range scheds {
			s := MustParseSchedule(text)
			fails := 0
			for at := mid.Add(-48 * time.Hour); at.Before(mid.Add(48*time.Hour)) && fails < 3; at = at.Add(step) {
				for _, t1 := range []time.Time{at, at.Add(30 * time.Second)} {
					u := t1.Unix()
					end, open := ref.open(s, u)
					if got := s.Open(t1, loc); got != open {
						t.Errorf("%s %q: Open(%s) = %v, want %v", c.zone, s, show(t1, loc), got, open)
						fails++
					}
					want := time.Time{}
					if n, ok := ref.next(s, u); ok {
						want = time.Unix(n, 0)
						if n == u {
							want = t1
						}
					}
					if got := s.NextOpen(t1, loc); !got.Equal(want) {
						t.Errorf("%s %q: NextOpen(%s) = %s, want %s", c.zone, s, show(t1, loc), show(got, loc), show(want, loc))
						fails++
					}
					want = time.Time{}
					if e, ok := ref.close(s, u); ok && open {
						want = time.Unix(e, 0)
					}
					_ = end
					if got := s.CloseAt(t1, loc); !got.Equal(want) {
						t.Errorf("%s %q: CloseAt(%s) = %s, want %s", c.zone, s, show(t1, loc), show(got, loc), show(want, loc))
						fails++
					}
				}
			}
		}
	}
}

// TestScheduleSlowPath checks that the arithmetic near a change of the
// clocks (firstAt and the zone's lookups) agrees with the fast path far
// from one: a year of times, every schedule, with the fast path turned off.
func TestScheduleSlowPath(t *testing.T) {
	scheds := []string{"Mon-Fri 22:00-05:00", "Sat,Sun 00:00-24:00; Mon-Fri 22:00-05:00", "Fri-Mon 01:30-02:30", "Mon-Sun 03:00-02:00"}
	for _, name := range []string{"Europe/Berlin", "America/New_York", "Australia/Sydney", "UTC"} {
		loc := loadZone(t, name)
		for _, text := range scheds {
			s := MustParseSchedule(text)
			for at := utc("2026-01-01T00:00:00Z"); at.Year() == 2026; at = at.Add(97*time.Hour + 13*time.Minute) {
				fast := zoneAt(at, loc)
				slow := fast
				slow.lo, slow.hi = math.MaxInt64, math.MinInt64
				u := at.Unix()
				fe, fok := s.span(&fast, u)
				se, sok := s.span(&slow, u)
				fn, fnok := s.nextStart(&fast, u)
				sn, snok := s.nextStart(&slow, u)
				if fe != se || fok != sok || fn != sn || fnok != snok {
					t.Errorf("%s %q at %s: fast span %d,%v next %d,%v; slow span %d,%v next %d,%v", name, s, show(at, loc), fe, fok, fn, fnok, se, sok, sn, snok)
				}
			}
		}
	}
}

func TestCheckWindows(t *testing.T) {
	berlin := "Europe/Berlin"
	tests := []struct {
		name    string
		zone    string
		scheds  []string
		minOpen time.Duration
		at      string
		open    bool
		next    string
		close   string
	}{
		{"none", berlin, nil, time.Hour, "2026-06-03T10:00:00Z", true, "2026-06-03T10:00:00Z", ""},
		{"always", berlin, []string{"always", "always"}, time.Hour, "2026-06-03T10:00:00Z", true, "2026-06-03T10:00:00Z", ""},
		{"inside one", berlin, []string{"Mon-Fri 22:00-05:00"}, 0, "2026-06-01T21:00:00Z", true, "2026-06-01T21:00:00Z", "2026-06-02T03:00:00Z"},
		{"outside one", berlin, []string{"Mon-Fri 22:00-05:00"}, 0, "2026-06-01T10:00:00Z", false, "2026-06-01T20:00:00Z", ""},
		{"site and rollout: both open", berlin, []string{"Mon-Fri 22:00-05:00", "Mon-Sun 01:00-04:00"}, 0, "2026-06-02T00:00:00Z", true, "2026-06-02T00:00:00Z", "2026-06-02T02:00:00Z"}, // Tue 02:00, closes at 04:00
		{"site open, rollout not yet", berlin, []string{"Mon-Fri 22:00-05:00", "Mon-Sun 01:00-04:00"}, 0, "2026-06-01T21:00:00Z", false, "2026-06-01T23:00:00Z", ""},
		{"rollout open, site closed", berlin, []string{"Mon-Fri 22:00-05:00", "Mon-Sun 12:00-23:00"}, 0, "2026-06-01T11:00:00Z", false, "2026-06-01T20:00:00Z", ""},                         // Mon 13:00 -> Mon 22:00
		{"Friday's night into Saturday's", berlin, []string{"Mon-Fri 22:00-05:00", "Sat,Sun 01:00-04:00"}, 0, "2026-06-06T00:00:00Z", true, "2026-06-06T00:00:00Z", "2026-06-06T02:00:00Z"}, // Sat 02:00 -> 04:00
		{"never together", berlin, []string{"Mon 01:00-02:00", "Tue 01:00-02:00"}, 0, "2026-06-01T10:00:00Z", false, "", ""},
		{"too little left", berlin, []string{"Mon-Fri 22:00-05:00"}, time.Hour, "2026-06-02T02:30:00Z", false, "2026-06-02T20:00:00Z", ""}, // Tue 04:30
		{"just enough left", berlin, []string{"Mon-Fri 22:00-05:00"}, time.Hour, "2026-06-02T02:00:00Z", true, "2026-06-02T02:00:00Z", "2026-06-02T03:00:00Z"},
		{"joined windows count together", berlin, []string{"Mon-Fri 22:00-24:00; Tue-Sat 00:00-05:00"}, 3 * time.Hour, "2026-06-01T21:00:00Z", true, "2026-06-01T21:00:00Z", "2026-06-02T03:00:00Z"},
		{"no window long enough", berlin, []string{"Mon-Sun 01:00-01:30"}, time.Hour, "2026-06-01T10:00:00Z", false, "", ""},
		{"open all week, before 1970", "UTC", []string{"Mon-Sun 00:00-24:00"}, time.Hour, "1969-12-31T12:00:00Z", true, "1969-12-31T12:00:00Z", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := loadZone(t, tt.zone)
			var ss []Schedule
			for _, s := range tt.scheds {
				ss = append(ss, MustParseSchedule(s))
			}
			at := utc(tt.at)
			got := CheckWindows(at, loc, tt.minOpen, ss...)
			if got.Open != tt.open || !sameTime(got.Next, tt.next) || !sameTime(got.Close, tt.close) {
				t.Errorf("CheckWindows(%s, %q, %v) = {Open %v, Next %s, Close %s}, want {%v, %s, %s}",
					show(at, loc), tt.scheds, tt.minOpen, got.Open, show(got.Next, loc), show(got.Close, loc), tt.open, tt.next, tt.close)
			}
		})
	}
}

var fuzzZones = []string{"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Apia", "America/Sao_Paulo"}

// FuzzSchedule checks the window syntax and the time arithmetic: parsing
// never panics; a schedule's String reads back equal and is stable; and at
// a time in a zone, NextOpen is open or zero, t itself when open, with
// CloseAt after it and closed there, and nothing open just before a
// NextOpen later than t.
func FuzzSchedule(f *testing.F) {
	for _, s := range []string{"Mon-Fri 22:00-05:00", "Mon-Fri 22:00-05:00; Sat,Sun 00:00-24:00", "always", "", "Fri-Mon 01:30-02:30",
		"Sun 02:00-02:30", "22:00-05:00", "Mon 24:00-01:00", "Mon,,Tue 1:00-2:00", "Sat-Sun 00:00-24:00; Mon-Sun 03:00-02:00"} {
		f.Add(s, int64(1774746000), uint8(1)) // 2026-03-29T01:00:00Z
		f.Add(s, int64(1792890000), uint8(2)) // 2026-10-25T01:00:00Z
	}
	locs := make([]*time.Location, len(fuzzZones))
	for i, n := range fuzzZones {
		locs[i] = loadZone(f, n)
	}
	f.Fuzz(func(t *testing.T, text string, sec int64, zi uint8) {
		s, err := ParseSchedule(text)
		if err != nil {
			if !errors.Is(err, ErrWindow) {
				t.Fatalf("ParseSchedule(%q) error %v does not wrap ErrWindow", text, err)
			}
			return
		}
		canon := s.String()
		back, err := ParseSchedule(canon)
		if err != nil || !back.Equal(s) || back.String() != canon {
			t.Fatalf("ParseSchedule(%q).String() = %q reads back as %v, %v", text, canon, back, err)
		}
		// A time between 1990 and 2100, in one of the zones.
		const lo, span = 631152000, 3502828800
		at := time.Unix(lo+(sec%span+span)%span, 0)
		loc := locs[int(zi)%len(locs)]
		open := s.Open(at, loc)
		next := s.NextOpen(at, loc)
		close := s.CloseAt(at, loc)
		switch {
		case open:
			if !next.Equal(at) {
				t.Fatalf("%q in %s: open at %s, NextOpen = %s", canon, loc, show(at, loc), show(next, loc))
			}
			if !close.IsZero() && (!close.After(at) || s.Open(close, loc) || !s.Open(close.Add(-time.Second), loc)) {
				t.Fatalf("%q in %s: open at %s, CloseAt = %s, which is not where it closes", canon, loc, show(at, loc), show(close, loc))
			}
			if close.IsZero() && (!s.Open(at.Add(7*24*time.Hour), loc) || !s.Open(at.Add(36*time.Hour+17*time.Minute), loc)) {
				t.Fatalf("%q in %s: CloseAt(%s) says it never closes, but it does", canon, loc, show(at, loc))
			}
		case next.IsZero():
			t.Fatalf("%q in %s: closed at %s and NextOpen is zero", canon, loc, show(at, loc))
		default:
			if !close.IsZero() {
				t.Fatalf("%q in %s: closed at %s, CloseAt = %s", canon, loc, show(at, loc), show(close, loc))
			}
			if !next.After(at) || !s.Open(next, loc) || s.Open(next.Add(-time.Second), loc) {
				t.Fatalf("%q in %s: closed at %s, NextOpen = %s, which is not where it opens", canon, loc, show(at, loc), show(next, loc))
			}
			if mid := at.Add(next.Sub(at) / 2); s.Open(mid, loc) {
				t.Fatalf("%q in %s: NextOpen(%s) = %s, but it is open at %s", canon, loc, show(at, loc), show(next, loc), show(mid, loc))
			}
		}
	})
}
