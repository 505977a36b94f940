package firmware

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrShare is returned when a percentage, a list of waves or a failure
// threshold is malformed.
var ErrShare = errors.New("invalid share")

// Share is a part of a whole in basis points: 1 is 0.01%, 100 is 1%, Whole
// (10000) is 100%. It is how rollouts speak of waves, success and failure
// shares. The zero value is 0%. Its text form is a percentage with at most
// two decimals: "0.5%", "10%", "12.25%".
type Share int

// Whole is 100%.
const Whole Share = 10000

// ParseShare parses a percentage between 0% and 100% with at most two
// decimals, like "10%", "0.5%" or "12.25%". The "%" may be left out:
// a share is always a percentage, never a count.
func ParseShare(s string) (Share, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSpace(strings.TrimSuffix(t, "%"))
	if t == "" {
		return 0, fmt.Errorf("%w %q: want a percentage like 10%% or 0.5%%", ErrShare, s)
	}
	whole, frac, dot := strings.Cut(t, ".")
	if whole == "" || dot && frac == "" || !digits(whole) || !digits(frac) {
		return 0, fmt.Errorf("%w %q: want a percentage like 10%% or 0.5%%", ErrShare, s)
	}
	if len(frac) > 2 {
		return 0, fmt.Errorf("%w %q: at most two decimals (0.01%% is the smallest step)", ErrShare, s)
	}
	if len(whole) > 3 {
		return 0, fmt.Errorf("%w %q: more than 100%%", ErrShare, s)
	}
	n, _ := strconv.Atoi(whole) // at most three digits
	f, _ := strconv.Atoi((frac + "00")[:2])
	v := Share(n*100 + f)
	if v > Whole {
		return 0, fmt.Errorf("%w %q: more than 100%%", ErrShare, s)
	}
	return v, nil
}

func digits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// String returns the share as a percentage: "10%", "0.5%", "12.25%".
func (s Share) String() string {
	n := int(s)
	sign := ""
	if n < 0 {
		sign, n = "-", -n
	}
	out := sign + strconv.Itoa(n/100)
	switch f := n % 100; {
	case f == 0:
	case f%10 == 0:
		out += "." + strconv.Itoa(f/10)
	default:
		out += fmt.Sprintf(".%02d", f)
	}
	return out + "%"
}

// ShareOf returns part as a share of whole, rounded down; 0 when whole is
// not positive.
func ShareOf(part, whole int) Share {
	if whole <= 0 {
		return 0
	}
	return Share(int64(part) * int64(Whole) / int64(whole))
}

// Reached reports whether part is at least the share s of whole. Every
// share of nothing is reached: a wave without devices has succeeded.
func (s Share) Reached(part, whole int) bool {
	return int64(part)*int64(Whole) >= int64(s)*int64(whole)
}

// MarshalText implements encoding.TextMarshaler: the percentage form.
func (s Share) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseShare.
func (s *Share) UnmarshalText(b []byte) error {
	v, err := ParseShare(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Threshold is a limit on the failures of a rollout's wave: either a share
// of the wave's devices (Percent, N in basis points) or a count of devices
// (N). It is reached at the first failure that makes the failures at least
// the limit; a limit of 0 (count or share) is reached at the first
// failure, and no failure ever reaches a threshold. The zero value is the
// count 0: any failure. Its text form is "10%" or "3".
type Threshold struct {
	// Percent says N is a Share of the wave's devices; otherwise N is a
	// count of devices.
	Percent bool `json:"percent,omitempty"`
	// N is the count, or with Percent the share in basis points (1000 is
	// 10%).
	N int `json:"n"`
}

// FailureCount returns the threshold of n failed devices.
func FailureCount(n int) Threshold { return Threshold{N: n} }

// FailureShare returns the threshold of the share s of a wave's devices.
func FailureShare(s Share) Threshold { return Threshold{Percent: true, N: int(s)} }

// ParseThreshold parses a failure threshold: a percentage of a wave's
// devices ("10%", "0.5%") or a count of devices ("3"). The "%" tells them
// apart.
func ParseThreshold(s string) (Threshold, error) {
	t := strings.TrimSpace(s)
	if strings.HasSuffix(t, "%") {
		v, err := ParseShare(t)
		if err != nil {
			return Threshold{}, err
		}
		return FailureShare(v), nil
	}
	if t == "" || !digits(t) || len(t) > 9 {
		return Threshold{}, fmt.Errorf("%w %q: want a percentage of a wave's devices like 10%% or a count like 3", ErrShare, s)
	}
	n, _ := strconv.Atoi(t)
	return FailureCount(n), nil
}

// String returns "10%" for a share, "3" for a count.
func (t Threshold) String() string {
	if t.Percent {
		return Share(t.N).String()
	}
	return strconv.Itoa(t.N)
}

// Validate checks that the count is not negative and a share is 0..100%.
func (t Threshold) Validate() error {
	if t.N < 0 || t.Percent && Share(t.N) > Whole {
		return fmt.Errorf("%w: failure threshold %s: want 0..100%% or a count of 0 or more", ErrShare, t)
	}
	return nil
}

// Reached reports whether failed of a wave's devices reach the threshold.
func (t Threshold) Reached(failed, devices int) bool {
	if failed <= 0 {
		return false
	}
	if t.Percent {
		return Share(t.N).Reached(failed, devices)
	}
	return failed >= t.N
}

// MarshalText implements encoding.TextMarshaler: "10%" or "3".
func (t Threshold) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseThreshold.
func (t *Threshold) UnmarshalText(b []byte) error {
	v, err := ParseThreshold(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// MaxWaves bounds the number of waves of a rollout.
const MaxWaves = 100

// Waves are a rollout's waves as cumulative shares of the fleet, strictly
// increasing, the last one 100%: 1%,10%,50%,100% opens to 1% of the
// devices, then 10% (9% more), then 50%, then all. Wave k holds the devices
// whose cohort (see Cohort) is in [Waves[k-1], Waves[k]), wave 0 those below
// Waves[0]. Its text form is the comma-separated list.
type Waves []Share

// ParseWaves parses a comma-separated list of cumulative percentages, like
// "1%,10%,50%,100%", and validates it.
func ParseWaves(s string) (Waves, error) {
	parts := strings.Split(s, ",")
	if len(parts) > MaxWaves {
		return nil, fmt.Errorf("%w: waves %.40q...: more than %d waves", ErrShare, s, MaxWaves)
	}
	ws := make(Waves, 0, len(parts))
	for _, p := range parts {
		v, err := ParseShare(p)
		if err != nil {
			return nil, fmt.Errorf("waves %q: %w", s, err)
		}
		ws = append(ws, v)
	}
	if err := ws.Validate(); err != nil {
		return nil, err
	}
	return ws, nil
}

// Validate checks that there are 1 to MaxWaves waves, each more than the
// one before and more than 0%, the last 100%.
func (ws Waves) Validate() error {
	switch {
	case len(ws) == 0:
		return fmt.Errorf("%w: no waves: want cumulative percentages like 1%%,10%%,50%%,100%%", ErrShare)
	case len(ws) > MaxWaves:
		return fmt.Errorf("%w: %d waves: at most %d", ErrShare, len(ws), MaxWaves)
	case ws[len(ws)-1] != Whole:
		return fmt.Errorf("%w: waves %s: the last wave must be 100%% (add ,100%%)", ErrShare, ws)
	}
	prev := Share(0)
	for i, w := range ws {
		if w <= prev {
			return fmt.Errorf("%w: waves %s: wave %d (%s) is not more than the one before: waves are cumulative shares, each larger", ErrShare, ws, i+1, w)
		}
		prev = w
	}
	return nil
}

// String returns the comma-separated form, "1%,10%,50%,100%".
func (ws Waves) String() string {
	var b strings.Builder
	for i, w := range ws {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(w.String())
	}
	return b.String()
}

// Wave returns the index of the wave a cohort belongs to: the first wave
// whose share exceeds it. Cohorts outside [0, Cohorts) belong to the first
// or last wave.
func (ws Waves) Wave(cohort int) int {
	for i, w := range ws {
		if cohort < int(w) {
			return i
		}
	}
	return max(len(ws)-1, 0)
}

// Bounds returns the cohorts of wave k: [lo, hi).
func (ws Waves) Bounds(k int) (lo, hi int) {
	if k > 0 {
		lo = int(ws[k-1])
	}
	return lo, int(ws[k])
}

// MarshalText implements encoding.TextMarshaler: "1%,10%,50%,100%".
func (ws Waves) MarshalText() ([]byte, error) { return []byte(ws.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseWaves.
func (ws *Waves) UnmarshalText(b []byte) error {
	v, err := ParseWaves(string(b))
	if err != nil {
		return err
	}
	*ws = v
	return nil
}
