package firmware

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidReplicaName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"paris", true}, {"berlin-hq", true}, {"r1", true},
		{"", false}, {"Paris", false}, {"-paris", false}, {"paris/1", false}, {strings.Repeat("a", 64), false},
	} {
		err := ValidReplicaName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidReplicaName(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrReplica) {
			t.Errorf("ValidReplicaName(%q) = %v, want ErrReplica", tc.name, err)
		}
	}
}

func TestCheckReplicaBehind(t *testing.T) {
	at := time.Date(2026, 11, 23, 22, 0, 0, 0, time.UTC)
	rel := Release{Rule: "r1", Identity: Identity{DeviceType: UCPhone, Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"}, Version: MustParseVersion("4.0.1.2"), At: at}
	const seq, grace = 40, 15 * time.Minute
	replica := func(pos uint64, removed bool) Replica {
		r := Replica{Name: "paris", Site: "paris", Progress: ReplicaProgress{Position: pos, LastContact: at.Add(-time.Hour)}}
		if removed {
			r.Removed = at
		}
		return r
	}
	for _, tc := range []struct {
		name string
		r    Replica
		now  time.Time
		want bool
	}{
		{"within the grace", replica(10, false), at.Add(grace - time.Second), false},
		{"behind after the grace", replica(10, false), at.Add(grace), true},
		{"just behind", replica(seq-1, false), at.Add(time.Hour), true},
		{"applied it", replica(seq, false), at.Add(time.Hour), false},
		{"ahead", replica(seq+5, false), at.Add(time.Hour), false},
		{"removed", replica(10, true), at.Add(time.Hour), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, ok := CheckReplicaBehind(rel, seq, grace, tc.r, tc.now)
			if ok != tc.want {
				t.Fatalf("CheckReplicaBehind = %+v, %v; want %v", a, ok, tc.want)
			}
			if !ok {
				return
			}
			if a.Kind != AlarmReplicaBehind || a.Replica != "paris" || a.Rule != "r1" || !a.IsOpen() || a.Raised != tc.now {
				t.Errorf("alarm %+v: want an open replica-behind alarm of paris for r1 raised now", a)
			}
			if !strings.Contains(a.Detail, "paris") || !strings.Contains(a.Detail, "4.0.1.2") || !strings.Contains(a.Detail, "last contact") {
				t.Errorf("detail %q: want the replica, the version and its last contact", a.Detail)
			}
			again, _ := CheckReplicaBehind(rel, seq, grace, tc.r, tc.now.Add(time.Hour))
			if again.ID != a.ID {
				t.Errorf("ID %q later, %q now: want the same alarm for the same condition", again.ID, a.ID)
			}
		})
	}
}
