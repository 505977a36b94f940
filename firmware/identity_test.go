package firmware

import "testing"

func TestPrintable(t *testing.T) {
	for _, tt := range []struct {
		s    string
		want bool
	}{{"", true}, {"alice@contoso.com", true}, {"Zoë", true}, {"a\tb", false}, {"a\x7fb", false}, {"\xff", false}} {
		if got := Printable(tt.s); got != tt.want {
			t.Errorf("Printable(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}
