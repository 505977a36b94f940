package firmware

import (
	"errors"
	"strings"
	"testing"
)

func TestParseShare(t *testing.T) {
	tests := []struct {
		in   string
		want Share
		out  string // String of the result; "" for an error
	}{
		{"10%", 1000, "10%"},
		{"10", 1000, "10%"},
		{" 10 % ", 1000, "10%"},
		{"0.5%", 50, "0.5%"},
		{"0.05%", 5, "0.05%"},
		{"12.25%", 1225, "12.25%"},
		{"12.50%", 1250, "12.5%"},
		{"100%", 10000, "100%"},
		{"100.00%", 10000, "100%"},
		{"0%", 0, "0%"},
		{"007%", 700, "7%"},
		{"100.01%", 0, ""},
		{"101%", 0, ""},
		{"1000%", 0, ""},
		{"0.001%", 0, ""},
		{"-1%", 0, ""},
		{"1.%", 0, ""},
		{".5%", 0, ""},
		{"%", 0, ""},
		{"", 0, ""},
		{"ten%", 0, ""},
		{"1e2%", 0, ""},
	}
	for _, tt := range tests {
		got, err := ParseShare(tt.in)
		if tt.out == "" {
			if err == nil || !errors.Is(err, ErrShare) {
				t.Errorf("ParseShare(%q) = %v, %v, want an ErrShare", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want || got.String() != tt.out {
			t.Errorf("ParseShare(%q) = %d (%s), %v, want %d (%s)", tt.in, got, got, err, tt.want, tt.out)
		}
	}
}

func TestShareReached(t *testing.T) {
	tests := []struct {
		s             Share
		part, whole   int
		want          bool
		wantShareOf   Share
		shareOfString string
	}{
		{9000, 45, 50, true, 9000, "90%"},
		{9000, 44, 50, false, 8800, "88%"},
		{9000, 0, 0, true, 0, "0%"}, // a wave without devices has succeeded
		{0, 0, 10, true, 0, "0%"},
		{Whole, 10, 10, true, Whole, "100%"},
		{Whole, 9, 10, false, 9000, "90%"},
		{3333, 1, 3, true, 3333, "33.33%"},
	}
	for _, tt := range tests {
		if got := tt.s.Reached(tt.part, tt.whole); got != tt.want {
			t.Errorf("%s.Reached(%d, %d) = %v, want %v", tt.s, tt.part, tt.whole, got, tt.want)
		}
		if got := ShareOf(tt.part, tt.whole); got != tt.wantShareOf || got.String() != tt.shareOfString {
			t.Errorf("ShareOf(%d, %d) = %s, want %s", tt.part, tt.whole, got, tt.shareOfString)
		}
	}
}

func TestThreshold(t *testing.T) {
	tests := []struct {
		in              string
		failed, devices int
		want            bool
	}{
		{"10%", 12, 50, true},
		{"10%", 5, 50, true}, // reaching is enough
		{"10%", 4, 50, false},
		{"10%", 1, 1, true},
		{"10%", 0, 0, false},
		{"0%", 1, 1000, true}, // no failure tolerated
		{"0%", 0, 1000, false},
		{"100%", 49, 50, false},
		{"100%", 50, 50, true},
		{"3", 2, 50, false},
		{"3", 3, 50, true},
		{"3", 3, 2, true}, // more failures than devices counted: still reached
		{"0", 1, 50, true},
		{"0", 0, 50, false},
	}
	for _, tt := range tests {
		th, err := ParseThreshold(tt.in)
		if err != nil {
			t.Fatalf("ParseThreshold(%q): %v", tt.in, err)
		}
		if th.String() != tt.in {
			t.Errorf("ParseThreshold(%q).String() = %q", tt.in, th)
		}
		if got := th.Reached(tt.failed, tt.devices); got != tt.want {
			t.Errorf("threshold %s: Reached(%d of %d) = %v, want %v", th, tt.failed, tt.devices, got, tt.want)
		}
	}
	for _, bad := range []string{"", "-1", "ten", "10 %x", "101%", "1.5", "9999999999"} {
		if th, err := ParseThreshold(bad); err == nil || !errors.Is(err, ErrShare) {
			t.Errorf("ParseThreshold(%q) = %v, %v, want an ErrShare", bad, th, err)
		}
	}
	if err := (Threshold{N: -1}).Validate(); err == nil {
		t.Error("a negative count validated")
	}
	if err := (Threshold{Percent: true, N: 10001}).Validate(); err == nil {
		t.Error("a share over 100% validated")
	}
}

func TestParseWaves(t *testing.T) {
	tests := []struct {
		in, err string // err: a part of the error, "" valid
	}{
		{"1%,10%,50%,100%", ""},
		{"100%", ""},
		{"0.5%, 5%, 100%", ""},
		{"5%,25%,100%", ""},
		{"", "want a percentage"},
		{"1%,10%,50%", "the last wave must be 100%"},
		{"10%,5%,100%", "is not more than the one before"},
		{"10%,10%,100%", "is not more than the one before"},
		{"0%,100%", "is not more than the one before"},
		{"1%,,100%", "want a percentage"},
		{"1%,10%,100%,100%", "is not more than the one before"},
		{strings.Repeat("1%,", 100) + "100%", "more than 100 waves"},
	}
	for _, tt := range tests {
		ws, err := ParseWaves(tt.in)
		if tt.err != "" {
			if err == nil || !errors.Is(err, ErrShare) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseWaves(%q) = %v, %v, want an ErrShare saying %q", tt.in, ws, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseWaves(%q): %v", tt.in, err)
			continue
		}
		back, err := ParseWaves(ws.String())
		if err != nil || back.String() != ws.String() {
			t.Errorf("ParseWaves(%q).String() = %q reads back as %v, %v", tt.in, ws, back, err)
		}
	}
}

func TestWavesWave(t *testing.T) {
	ws := Waves{100, 1000, 5000, Whole}
	tests := []struct {
		cohort, wave int
	}{
		{0, 0}, {99, 0}, {100, 1}, {999, 1}, {1000, 2}, {4999, 2}, {5000, 3}, {9999, 3}, {-1, 0}, {10000, 3},
	}
	for _, tt := range tests {
		if got := ws.Wave(tt.cohort); got != tt.wave {
			t.Errorf("%s: Wave(%d) = %d, want %d", ws, tt.cohort, got, tt.wave)
		}
	}
	for k := range ws {
		lo, hi := ws.Bounds(k)
		if ws.Wave(lo) != k || ws.Wave(hi-1) != k {
			t.Errorf("%s: Bounds(%d) = [%d, %d) but Wave says %d and %d", ws, k, lo, hi, ws.Wave(lo), ws.Wave(hi-1))
		}
	}
}
