package cli

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// TestEncodeJSON: nil lists and maps are [] and {}, unset times are left
// out, values that encode themselves are left as they are, and nothing
// else changes (the value encoded is a copy).
func TestEncodeJSON(t *testing.T) {
	type inner struct {
		Names []string  `json:"names"`
		When  time.Time `json:"when"`
	}
	type outer struct {
		Inner   inner            `json:"inner"`
		Ptr     *inner           `json:"ptr"`
		List    []inner          `json:"list"`
		Counts  map[string]int   `json:"counts"`
		Version firmware.Version `json:"version"`
		Waves   firmware.Waves   `json:"waves"`
		Any     any              `json:"any"`
		Set     time.Time        `json:"set"`
		Bytes   []byte           `json:"bytes"`
		ByName  map[string]inner `json:"byName"`
		private []string
	}
	set := time.Date(2026, 12, 6, 4, 3, 42, 0, time.UTC)
	v := outer{List: []inner{{}}, Ptr: &inner{}, Any: []string(nil), Set: set, ByName: map[string]inner{"a": {}}, private: []string{"kept"}}
	b, err := encodeJSON(v, "")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := `{"any":[],"byName":{"a":{"names":[]}},"bytes":"","counts":{},"inner":{"names":[]},"list":[{"names":[]}],"ptr":{"names":[]},"set":"2026-12-06T04:03:42Z","version":"","waves":""}`
	if g, _ := json.Marshal(got); string(g) != want {
		t.Errorf("encodeJSON = %s\nwant         %s", g, want)
	}
	if v.List[0].Names != nil || v.Ptr.Names != nil || len(v.private) != 1 {
		t.Errorf("encodeJSON changed the value it encoded")
	}
}

// BenchmarkDeviceJSON measures what the conventions cost a streamed
// device, against encoding/json alone, in the same run.
func BenchmarkDeviceJSON(b *testing.B) {
	now := time.Now().UTC()
	d := store.DeviceRow{Device: firmware.Device{Key: "00-04-F2-00-00-01", MAC: "00-04-F2-00-00-01", Serial: "SN1",
		Identity: firmware.Identity{DeviceType: "UCPhone", Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"},
		Version:  firmware.MustParseVersion("4.0.7577.100"), Modules: []firmware.Module{{Name: "CX600.nbt", Version: firmware.MustParseVersion("4.0.7577.100")}},
		Location: firmware.Internal, Address: "10.1.2.3", LastCheckIn: now, Site: "berlin-hq"}, Outcome: firmware.OutcomeWaiting, Cohort: 4711}
	b.Run("encodeJSON", func(b *testing.B) {
		for b.Loop() {
			if _, err := encodeJSON(d, "  "); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.MarshalIndent", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.MarshalIndent(d, "  ", "  "); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestDropUnsetTimes(t *testing.T) {
	const zero = `"0001-01-01T00:00:00Z"`
	for _, tt := range []struct{ in, want string }{
		{`{"a":` + zero + `}`, `{}`},
		{`{"a":` + zero + `,"b":1}`, `{"b":1}`},
		{`{"b":1,"a":` + zero + `}`, `{"b":1}`},
		{`{"b":1,"a":` + zero + `,"c":2}`, `{"b":1,"c":2}`},
		{`[{"a":` + zero + `},{"x":{"a":` + zero + `,"t":"2026-01-01T00:00:00Z"}}]`, `[{},{"x":{"t":"2026-01-01T00:00:00Z"}}]`},
		{`{"k\"y":` + zero + `,"b":1}`, `{"b":1}`},
		{`{"k\\":` + zero + `}`, `{}`},
		{`{"s":"says \":\"0001-01-01T00:00:00Z\" in a string"}`, `{"s":"says \":\"0001-01-01T00:00:00Z\" in a string"}`},
		{`[` + zero + `]`, `[` + zero + `]`}, // a list of times keeps its elements
	} {
		got, err := dropUnsetTimes([]byte(tt.in))
		if err != nil || string(got) != tt.want {
			t.Errorf("dropUnsetTimes(%s) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
		if err == nil && !json.Valid(got) {
			t.Errorf("dropUnsetTimes(%s) = %s: not JSON", tt.in, got)
		}
	}
}
