package firmware

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in      string
		want    Version
		wantErr bool
	}{
		{"1.0.522.101", Version{1, 0, 522, 101}, false},
		{"4.0.7577.4372", Version{4, 0, 7577, 4372}, false},
		{"0.0.0.1", Version{0, 0, 0, 1}, false},
		{"4294967295.0.0.0", Version{4294967295, 0, 0, 0}, false},
		{"4294967296.0.0.0", Version{}, true},
		{"0.0.0.0", Version{}, true},
		{"", Version{}, true},
		{"1.2.3", Version{}, true},
		{"1.2.3.4.5", Version{}, true},
		{"1..3.4", Version{}, true},
		{"1.2.3.", Version{}, true},
		{".1.2.3", Version{}, true},
		{"1.2.3.-4", Version{}, true},
		{"1.2.3.+4", Version{}, true},
		{" 1.2.3.4", Version{}, true},
		{"1.2.3.4 ", Version{}, true},
		{"1.02.3.4", Version{}, true},
		{"1.2.3.x", Version{}, true},
		{"１.2.3.4", Version{}, true}, // full-width digit
		{"1.2.3.99999999999999999999", Version{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseVersion(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseVersion(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrVersion) {
				t.Errorf("ParseVersion(%q) error %v does not wrap ErrVersion", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseVersion(%q) = %v, want %v", tt.in, got, tt.want)
			}
			if err == nil && got.String() != tt.in {
				t.Errorf("ParseVersion(%q).String() = %q, want the input back", tt.in, got.String())
			}
		})
	}
}

func TestVersionCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0.0.0", "1.0.0.0", 0},
		{"1.0.0.0", "2.0.0.0", -1},
		{"2.0.0.0", "1.9.9.9", 1},
		{"3.5.6907.35", "3.5.6907.36", -1},
		{"4.0.7577.4372", "4.0.7577.999", 1}, // numeric, not lexical
		{"1.10.0.0", "1.9.0.0", 1},           // numeric, not lexical
		{"0.0.0.1", "0.0.1.0", -1},           // later parts matter less
		{"4294967295.0.0.0", "1.0.0.0", 1},   // no overflow
		{"1.0.0.4294967295", "1.0.1.0", -1},  // carry doesn't exist
		{"9.9.9.9", "10.0.0.0", -1},
		{"10.0.0.0", "9.99999.99999.99999", 1},
	}
	for _, tt := range tests {
		a, b := MustParseVersion(tt.a), MustParseVersion(tt.b)
		if got := a.Compare(b); got != tt.want {
			t.Errorf("%s.Compare(%s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := b.Compare(a); got != -tt.want {
			t.Errorf("%s.Compare(%s) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
	if got := (Version{}).Compare(MustParseVersion("0.0.0.1")); got != -1 {
		t.Errorf("no version compared with 0.0.0.1 = %d, want -1", got)
	}
}

func TestVersionJSON(t *testing.T) {
	type doc struct {
		V Version `json:"v"`
		N Version `json:"n"`
	}
	in := doc{V: MustParseVersion("4.0.7577.4372")}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"v":"4.0.7577.4372","n":""}`; got != want {
		t.Errorf("json.Marshal = %s, want %s", got, want)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Errorf("round trip = %+v, want %+v", out, in)
	}
	if err := json.Unmarshal([]byte(`{"v":"1.2"}`), &out); err == nil {
		t.Errorf("json.Unmarshal of a bad version succeeded")
	}
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"1.0.522.101", "4.0.7577.4372", "0.0.0.0", "1.2.3", "01.2.3.4", "4294967296.0.0.0", "1..2.3", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			if !v.IsZero() {
				t.Fatalf("ParseVersion(%q) returned %v with error %v", s, v, err)
			}
			return
		}
		if v.IsZero() {
			t.Fatalf("ParseVersion(%q) returned no version without error", s)
		}
		// Parsing is exact: the canonical form is the input.
		if v.String() != s {
			t.Fatalf("ParseVersion(%q).String() = %q", s, v.String())
		}
		w, err := ParseVersion(v.String())
		if err != nil || w != v || w.Compare(v) != 0 {
			t.Fatalf("re-parse of %q = %v, %v", v, w, err)
		}
	})
}
