package firmware

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	cx600 = Identity{UCPhone, "Polycom", "CX600", "A", "ENU"}
	rt    = Identity{RoundTable, "Microsoft", "RoundTable", "A", "ENU"}
	v1    = MustParseVersion("1.0.522.101")
	v2    = MustParseVersion("3.5.6907.35")
	v3    = MustParseVersion("4.0.7577.4372")
	t0    = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
)

// state is a rule's three versions, for compact tables.
type state struct{ Pending, Approved, Restore Version }

func stateOf(r Rule) state { return state{r.Pending, r.Approved, r.Restore} }

func TestTransitions(t *testing.T) {
	type step func(r *Rule) error
	imp := func(v Version) step {
		return func(r *Rule) error { return r.Import(v, "Firmware", DeploysOnImport(r.Identity, true), t0) }
	}
	impNoDeploy := func(v Version) step {
		return func(r *Rule) error { return r.Import(v, "Firmware", DeploysOnImport(r.Identity, false), t0) }
	}
	approve := func(r *Rule) error { return r.Approve(t0) }
	reject := func(r *Rule) error { _, err := r.Reject(t0); return err }
	restore := func(r *Rule) error { return r.Rollback(t0) }
	withdraw := func(r *Rule) error { _, err := r.Withdraw(t0); return err }

	tests := []struct {
		name    string
		id      Identity
		start   state
		step    step
		want    state
		wantErr error
	}{
		{"import creates pending", cx600, state{}, imp(v1), state{Pending: v1}, nil},
		{"import refreshes pending", cx600, state{Pending: v1}, imp(v2), state{Pending: v2}, nil},
		{"import beside approved", cx600, state{Approved: v1}, imp(v2), state{Pending: v2, Approved: v1}, nil},
		{"import older than approved is pending too", cx600, state{Approved: v2}, imp(v1), state{Pending: v1, Approved: v2}, nil},
		{"import of the approved version", cx600, state{Approved: v1}, imp(v1), state{Approved: v1}, ErrAlreadyApproved},
		{"import of no version", cx600, state{}, imp(Version{}), state{}, ErrVersion},
		{"approve first", cx600, state{Pending: v1}, approve, state{Approved: v1}, nil},
		{"approve keeps restore", cx600, state{Pending: v2, Approved: v1}, approve, state{Approved: v2, Restore: v1}, nil},
		{"approve replaces restore", cx600, state{Pending: v3, Approved: v2, Restore: v1}, approve, state{Approved: v3, Restore: v2}, nil},
		{"approve same as approved", cx600, state{Pending: v1, Approved: v1, Restore: v2}, approve, state{Approved: v1, Restore: v2}, nil},
		{"approve with nothing pending", cx600, state{Approved: v1}, approve, state{Approved: v1}, ErrNoPending},
		{"approve empty rule", cx600, state{}, approve, state{}, ErrNoPending},
		{"reject pending", cx600, state{Pending: v2, Approved: v1}, reject, state{Approved: v1}, nil},
		{"reject with nothing pending", cx600, state{Approved: v1, Restore: v2}, reject, state{Approved: v1, Restore: v2}, ErrNoPending},
		{"restore rolls back", cx600, state{Approved: v2, Restore: v1}, restore, state{Approved: v1}, nil},
		{"restore keeps pending", cx600, state{Pending: v3, Approved: v2, Restore: v1}, restore, state{Pending: v3, Approved: v1}, nil},
		{"restore without restore keeps approved", cx600, state{Approved: v1}, restore, state{Approved: v1}, ErrNothingToRestore},
		{"restore with nothing", cx600, state{Pending: v1}, restore, state{Pending: v1}, ErrNothingToRestore},
		{"withdraw", cx600, state{Approved: v1}, withdraw, state{}, nil},
		{"withdraw keeps pending and restore", cx600, state{Pending: v3, Approved: v2, Restore: v1}, withdraw, state{Pending: v3, Restore: v1}, nil},
		{"withdraw with nothing approved", cx600, state{Pending: v1}, withdraw, state{Pending: v1}, ErrNotApproved},
		{"RoundTable deploys on import", rt, state{Approved: v1}, imp(v2), state{Approved: v2, Restore: v1}, nil},
		{"RoundTable deploy turned off", rt, state{Approved: v1}, impNoDeploy(v2), state{Pending: v2, Approved: v1}, nil},
		{"UCPhone never deploys on import", cx600, state{}, imp(v2), state{Pending: v2}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRule(tt.id, t0.Add(-time.Hour))
			r.Pending, r.Approved, r.Restore = tt.start.Pending, tt.start.Approved, tt.start.Restore
			err := tt.step(&r)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, stateOf(r)); diff != "" {
				t.Errorf("state after step (-want +got):\n%s", diff)
			}
			if err == nil && !r.Updated.Equal(t0) {
				t.Errorf("Updated = %v, want %v", r.Updated, t0)
			}
			if err != nil && !r.Updated.Equal(t0.Add(-time.Hour)) {
				t.Errorf("a refused transition changed Updated to %v", r.Updated)
			}
		})
	}
}

func TestTransitionErrorsNameTheRule(t *testing.T) {
	r := NewRule(cx600, t0)
	err := r.Approve(t0)
	if got, want := err.Error(), "rule UCPhone/Polycom/CX600/A/ENU has no pending version to approve"; got != want {
		t.Errorf("Approve error = %q, want %q", got, want)
	}
	r.Approved = v3
	if got, want := r.Rollback(t0).Error(), "rule UCPhone/Polycom/CX600/A/ENU has nothing to restore: no version was approved before 4.0.7577.4372"; got != want {
		t.Errorf("Rollback error = %q, want %q", got, want)
	}
}

func TestOffer(t *testing.T) {
	tests := []struct {
		name    string
		rule    state
		current Version
		test    bool
		want    Version
		wantOK  bool
	}{
		{"nothing approved", state{}, v1, false, Version{}, false},
		{"nothing approved, pending not for normal devices", state{Pending: v2}, v1, false, Version{}, false},
		{"approved differs", state{Approved: v2}, v1, false, v2, true},
		{"approved equals current", state{Approved: v2}, v2, false, Version{}, false},
		{"approved to a device with no version", state{Approved: v2}, Version{}, false, v2, true},
		{"pending ignored for normal device", state{Pending: v3, Approved: v2}, v1, false, v2, true},
		{"test device gets pending", state{Pending: v3, Approved: v2}, v1, true, v3, true},
		{"test device already on pending", state{Pending: v3, Approved: v2}, v3, true, Version{}, false},
		{"test device without pending gets approved", state{Approved: v2}, v1, true, v2, true},
		{"test device back to approved after reject", state{Approved: v2}, v3, true, v2, true},
		{"downgrade after restore", state{Approved: v1}, v2, false, v1, true},
		{"withdrawn after restore with none", state{}, v2, false, Version{}, false},
		{"newer device still told the approved", state{Approved: v1}, v3, false, v1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Rule{Identity: cx600, Pending: tt.rule.Pending, Approved: tt.rule.Approved, Restore: tt.rule.Restore}
			got, ok := Offer(&r, tt.current, tt.test)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Offer(%+v, %v, test=%v) = %v, %v, want %v, %v", tt.rule, tt.current, tt.test, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestOfferRoundTableOnImport(t *testing.T) {
	r := NewRule(rt, t0)
	if err := r.Import(v2, "", DeploysOnImport(rt, true), t0); err != nil {
		t.Fatal(err)
	}
	if got, ok := Offer(&r, v1, false); !ok || got != v2 {
		t.Errorf("RoundTable after import: Offer = %v, %v, want %v, true", got, ok, v2)
	}
}

func TestParseIdentity(t *testing.T) {
	tests := []struct {
		in      string
		wantErr bool
	}{
		{"UCPhone/Polycom/CX600/A/ENU", false},
		{"RoundTable/Microsoft/RoundTable/A/ENU", false},
		{"UCPhone/Aastra/6725ip/A/DEU", false},
		{"Phone/Polycom/CX600/A/ENU", true},
		{"UCPhone/Polycom/CX600/A", true},
		{"UCPhone/Polycom/CX600/A/ENU/x", true},
		{"UCPhone/../CX600/A/ENU", true},
		{"UCPhone/Poly com/CX600/A/ENU", true},
		{"UCPhone//CX600/A/ENU", true},
		{"UCPhone/Polycom/CX600/A/EN\\U", true},
		{"UCPhone/.hidden/CX600/A/ENU", true},
	}
	for _, tt := range tests {
		id, err := ParseIdentity(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseIdentity(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && id.Path() != tt.in {
			t.Errorf("ParseIdentity(%q).Path() = %q", tt.in, id.Path())
		}
	}
	if a, b := cx600.RuleID(), rt.RuleID(); a == b || len(a) != 16 {
		t.Errorf("RuleIDs %q and %q: want 16 hex digits, distinct", a, b)
	}
}

func TestNormalizeMAC(t *testing.T) {
	tests := []struct{ in, want string }{
		{"00-04-f2-ab-cd-ef", "00-04-F2-AB-CD-EF"},
		{"00-04-F2-AB-CD-EF", "00-04-F2-AB-CD-EF"},
		{"00-04-F2-AB-CD-Ef", "00-04-F2-AB-CD-EF"},
		{"00-04-F2-AB-CD:EF", "00-04-F2-AB-CD-EF"},
		{"00-04-F2-AB-CDE-F", "00-04-F2-AB-CD-EF"},
		{"00:04:F2:AB:CD:EF", "00-04-F2-AB-CD-EF"},
		{"0004f2abcdef", "00-04-F2-AB-CD-EF"},
		{"0004.f2ab.cdef", "00-04-F2-AB-CD-EF"},
		{"00-04-f2-ab-cd", ""},
		{"00-04-f2-ab-cd-ef-01", ""},
		{"00-04-f2-ab-cd-eg", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, err := NormalizeMAC(tt.in)
		if (err != nil) != (tt.want == "") || got != tt.want {
			t.Errorf("NormalizeMAC(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { NormalizeMAC("00-04-F2-AB-CD-EF") }); n != 0 {
		t.Errorf("NormalizeMAC of a normalized MAC allocates %v times, want none", n)
	}
	set := TestDevices{}
	set.Add(TestDevice{MAC: "00:04:f2:00:00:01"})
	set.Add(TestDevice{Serial: "SN42"})
	if !set.Contains("00-04-F2-00-00-01", "") || !set.Contains("", "SN42") || set.Contains("00-04-F2-00-00-02", "SN43") {
		t.Errorf("TestDevices matching is wrong: %v", set)
	}
}

// BenchmarkOfferDecision measures what a check-in pays for the decision:
// the test-device lookup and Offer, among 10,000 test devices.
func BenchmarkOfferDecision(b *testing.B) {
	set := TestDevices{}
	for i := range 10000 {
		set.Add(TestDevice{Serial: "SN" + string(rune('A'+i%26)) + string(rune('a'+i/26%26)) + string(rune('0'+i/676))})
	}
	r := Rule{Identity: cx600, Pending: v3, Approved: v2, Restore: v1}
	mac := "00-04-F2-00-00-01"
	b.ReportAllocs()
	for b.Loop() {
		test := set.Contains(mac, "SN123")
		if _, ok := Offer(&r, v1, test); !ok {
			b.Fatal("no offer")
		}
	}
}

func TestSchedule(t *testing.T) {
	r := NewRule(cx600, t0)
	if err := r.Schedule(t0.Add(time.Hour), t0); !errors.Is(err, ErrNoPending) {
		t.Errorf("Schedule with nothing pending: %v, want ErrNoPending", err)
	}
	if err := r.Import(v2, "", false, t0); err != nil {
		t.Fatal(err)
	}
	if err := r.Schedule(t0, t0); !errors.Is(err, ErrSchedule) {
		t.Errorf("Schedule now: %v, want ErrSchedule", err)
	}
	at := t0.Add(2 * time.Hour)
	if err := r.Schedule(at, t0); err != nil {
		t.Fatal(err)
	}
	if r.Due(at.Add(-time.Second)) || !r.Due(at) {
		t.Errorf("Due around %v wrong", at)
	}
	if err := r.Import(v3, "", false, t0); err != nil || !r.ApproveAt.IsZero() {
		t.Errorf("a new pending version keeps the schedule for the old: %v, %v", r.ApproveAt, err)
	}
	if err := r.Schedule(at, t0); err != nil {
		t.Fatal(err)
	}
	if err := r.Approve(at); err != nil || !r.ApproveAt.IsZero() || r.Due(at) {
		t.Errorf("after approve: ApproveAt %v, err %v", r.ApproveAt, err)
	}
	if err := r.Import(v1, "", false, t0); err != nil {
		t.Fatal(err)
	}
	r.Schedule(at, t0)
	if _, err := r.Reject(t0); err != nil || !r.ApproveAt.IsZero() {
		t.Errorf("after reject: ApproveAt %v, err %v", r.ApproveAt, err)
	}
	if err := r.Import(v1, "", false, t0); err != nil {
		t.Fatal(err)
	}
	r.Schedule(at, t0)
	if err := r.Schedule(time.Time{}, t0); err != nil || !r.ApproveAt.IsZero() {
		t.Errorf("cancel: ApproveAt %v, err %v", r.ApproveAt, err)
	}
}
