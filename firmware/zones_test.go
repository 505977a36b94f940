package firmware

import (
	"testing"
	"time"
	_ "time/tzdata" // the tests' zones, even where the system has no zone database
)

// zone loads an IANA time zone for a test.
func loadZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

// utc parses an RFC 3339 time for a table.
func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}
