package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/firmware"
)

// versions is a rule's three versions, for compact tables.
type versions struct{ pending, approved, restore firmware.Version }

func versionsOf(r firmware.Rule) versions { return versions{r.Pending, r.Approved, r.Restore} }

func TestRuleTransitions(t *testing.T) {
	ctx := context.Background()
	type step struct {
		op      string // import, approve, reject, restore, remove
		ref     string // default phone's path; "<empty>" for ""
		v       firmware.Version
		want    versions
		wantErr error
		wantMsg string // substring of the error
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"approve with nothing pending", []step{
			{op: "import", v: v1, want: versions{pending: v1}},
			{op: "approve", want: versions{approved: v1}},
			{op: "approve", wantErr: firmware.ErrNoPending, wantMsg: "rule UCPhone/Polycom/CX600/A/ENU has no pending version to approve"},
		}},
		{"approve keeps the previous as restore", []step{
			{op: "import", v: v1},
			{op: "approve"},
			{op: "import", v: v2, want: versions{pending: v2, approved: v1}},
			{op: "approve", want: versions{approved: v2, restore: v1}},
			{op: "restore", want: versions{approved: v1}},
			// Run twice by accident: refused, v1 stays approved.
			{op: "restore", wantErr: firmware.ErrNothingToRestore, wantMsg: "rule UCPhone/Polycom/CX600/A/ENU has nothing to restore: no version was approved before 4.0.7577.100"},
		}},
		{"withdraw", []step{
			{op: "import", v: v1},
			{op: "withdraw", wantErr: firmware.ErrNotApproved, wantMsg: "has no approved version to withdraw"},
			{op: "approve"},
			{op: "import", v: v2},
			{op: "approve", want: versions{approved: v2, restore: v1}},
			{op: "withdraw", want: versions{restore: v1}},
			{op: "withdraw", wantErr: firmware.ErrNotApproved},
			{op: "restore", want: versions{approved: v1}},
			{op: "withdraw", want: versions{}},
			{op: "restore", wantErr: firmware.ErrNothingToRestore, wantMsg: "no version is approved"},
		}},
		{"reject", []step{
			{op: "import", v: v1},
			{op: "approve"},
			{op: "import", v: v2},
			{op: "reject", want: versions{approved: v1}},
			{op: "reject", wantErr: firmware.ErrNoPending, wantMsg: "has no pending version to reject"},
			{op: "import", v: v2, want: versions{pending: v2, approved: v1}},
		}},
		{"by rule ID", []step{
			{op: "import", v: v1},
			{op: "approve", ref: phone.RuleID(), want: versions{approved: v1}},
			{op: "approve", ref: strings.ToUpper(phone.RuleID()), wantErr: firmware.ErrNoPending},
		}},
		{"unknown rules", []step{
			{op: "approve", wantErr: ErrNotFound, wantMsg: `rule "UCPhone/Polycom/CX600/A/ENU" not found: name a rule by its ID or its identity path`},
			{op: "reject", ref: "0123456789abcdef", wantErr: ErrNotFound},
			{op: "restore", ref: "UCPhone/Polycom/CX600/A", wantErr: ErrNotFound, wantMsg: "DeviceType/Vendor/Model/Revision/Locale"},
			{op: "remove", ref: "../../etc/passwd/x", wantErr: ErrNotFound},
			{op: "approve", ref: "<empty>", wantErr: ErrNotFound},
		}},
		{"names that almost name a rule", []step{
			{op: "import", v: v1},
			{op: "approve", ref: "CX600", wantErr: ErrNotFound, wantMsg: `rule "CX600" not found: did you mean UCPhone/Polycom/CX600/A/ENU?`},
			{op: "approve", ref: "cx600", wantErr: ErrNotFound, wantMsg: `rule "cx600" not found: did you mean UCPhone/Polycom/CX600/A/ENU?`},
			{op: "approve", ref: "ucphone/polycom/cx600/a/enu", wantErr: ErrNotFound, wantMsg: `rule "ucphone/polycom/cx600/a/enu" not found: did you mean UCPhone/Polycom/CX600/A/ENU?`},
			{op: "approve", ref: "Polycom/CX600", wantErr: firmware.ErrIdentity, wantMsg: `rule "Polycom/CX600" not found: did you mean UCPhone/Polycom/CX600/A/ENU?`},
			{op: "approve", ref: "CX700", wantErr: ErrNotFound, wantMsg: `rule "CX700" not found: name a rule by its ID or its identity path`},
			{op: "approve", ref: "UCPhone/Polycom/CX600/A/ENU", want: versions{approved: v1}},
		}},
		{"remove", []step{
			{op: "import", v: v1},
			{op: "approve"},
			{op: "import", v: v2},
			{op: "remove", want: versions{pending: v2, approved: v1}},
			{op: "approve", wantErr: ErrNotFound},
			{op: "import", v: v1, want: versions{pending: v1}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, nil)
			for i, st := range tt.steps {
				ref := st.ref
				switch ref {
				case "":
					ref = phone.Path()
				case "<empty>":
					ref = ""
				}
				seq := s.Catalog().Seq()
				var (
					r   firmware.Rule
					err error
				)
				switch st.op {
				case "import":
					var res []ImportResult
					res, err = s.Import(ctx, "admin", []firmware.ImportUpdate{update(phone, st.v)}, ImportOptions{})
					if err == nil {
						r = res[0].Rule
					}
				case "approve":
					r, err = s.Approve(ctx, "admin", ref)
				case "reject":
					r, err = s.Reject(ctx, "admin", ref)
				case "restore":
					r, err = s.Restore(ctx, "admin", ref)
				case "withdraw":
					r, err = s.Withdraw(ctx, "admin", ref)
				case "remove":
					r, err = s.Remove(ctx, "admin", ref)
				}
				if !isErr(err, st.wantErr) {
					t.Fatalf("step %d: %s(%q) = %v, want %v", i, st.op, ref, err, st.wantErr)
				}
				if err != nil {
					if !strings.Contains(err.Error(), st.wantMsg) {
						t.Errorf("step %d: %s error %q, want it to contain %q", i, st.op, err, st.wantMsg)
					}
					if got := s.Catalog().Seq(); got != seq {
						t.Errorf("step %d: a refused %s moved Seq from %d to %d", i, st.op, seq, got)
					}
					continue
				}
				if st.want != (versions{}) || st.op == "restore" {
					if got := versionsOf(r); got != st.want {
						t.Errorf("step %d: %s: rule versions %+v, want %+v", i, st.op, got, st.want)
					}
				}
				if got := s.Catalog().Seq(); got <= seq {
					t.Errorf("step %d: %s left Seq at %d", i, st.op, got)
				}
				es, err := s.History(ctx, seq, 0)
				if err != nil {
					t.Fatal(err)
				}
				if len(es) == 0 || es[0].Action != st.op {
					t.Errorf("step %d: history after %s: %+v", i, st.op, es)
				}
				snap, ok := s.Catalog().Rule(phone)
				if st.op == "remove" {
					if ok {
						t.Errorf("step %d: Catalog still has the removed rule %+v", i, snap)
					}
					if _, err := s.Rule(ctx, phone.Path()); !errors.Is(err, ErrNotFound) {
						t.Errorf("step %d: Rule after remove = %v, want ErrNotFound", i, err)
					}
				} else {
					stored, err := s.Rule(ctx, phone.RuleID())
					if err != nil || !cmp.Equal(stored, r) || !cmp.Equal(snap, r) {
						t.Errorf("step %d: Rule = %+v, %v; Catalog().Rule = %+v; want %+v", i, stored, err, snap, r)
					}
				}
				checkConsistent(t, s)
			}
		})
	}
}

func TestRemoveAndPurge(t *testing.T) {
	s := openTest(t, nil)
	ctx := context.Background()
	mustImport(t, s, update(phone, v1))
	s.Approve(ctx, "admin", phone.Path())
	mustImport(t, s, update(phone, v2))
	s.Reject(ctx, "admin", phone.Path())
	mustImport(t, s, update(phone, v3), update(phone2, v1))
	s.Approve(ctx, "admin", phone.Path()) // approved v3, restore v1; v2 unreferenced
	mustImport(t, s, update(phone2, v2))
	s.Reject(ctx, "admin", phone2.Path()) // phone2: pending none; v1, v2 unreferenced

	removed, err := s.Purge(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range removed {
		got = append(got, u.Dir())
	}
	slices.Sort(got)
	want := []string{phone2.Path() + "/" + v1.String(), phone2.Path() + "/" + v2.String(), phone.Path() + "/" + v2.String()}
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Purge removed (-want +got):\n%s", diff)
	}
	for _, u := range removed {
		if _, ok := s.Catalog().Update(u.Identity, u.Version); ok {
			t.Errorf("Catalog still has purged %s", u.Dir())
		}
	}
	checkConsistent(t, s)
	if removed, err := s.Purge(ctx, "admin"); err != nil || len(removed) != 0 {
		t.Errorf("second Purge = %v, %v; want nothing", removed, err)
	}

	// A file open while its update is removed stays readable.
	f, _, err := s.OpenFile(phone, v3, "CX600.nbt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := s.Remove(ctx, "admin", phone.RuleID()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3000)
	if n, err := f.Read(buf); err != nil || n != 3000 {
		t.Errorf("reading a file open across Remove: %d, %v", n, err)
	}
	if _, _, err := s.OpenFile(phone, v3, "CX600.nbt"); !errors.Is(err, ErrNotFound) {
		t.Errorf("OpenFile after Remove = %v, want ErrNotFound", err)
	}
	us, _ := s.Updates(ctx)
	if len(us) != 0 {
		t.Errorf("Updates after Remove and Purge = %+v, want none", us)
	}
	checkConsistent(t, s)
	if files := diskFiles(t, s.Dir()); len(files) != 0 {
		t.Errorf("files left: %v", files)
	}
}

func TestHistory(t *testing.T) {
	s := openTest(t, nil)
	ctx := context.Background()
	mustImport(t, s, update(phone, v1), update(table, v1)) // 1 import, 2 import, 3 approve
	s.Approve(ctx, "bob", phone.Path())                    // 4
	s.AddTestDevice(ctx, "bob", firmware.TestDevice{MAC: "00:04:f2:00:00:01"})
	s.PutAccount(ctx, "bob", firmware.Account{Name: "Carol"})
	s.Reject(ctx, "bob", phone.Path()) // refused: no event

	all, err := s.History(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range all {
		got = append(got, e.Action)
	}
	want := []string{ActionImport, ActionImport, ActionApprove, ActionApprove, ActionTestDeviceAdd, ActionAccountCreate}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	for i, e := range all {
		if e.Seq != uint64(i+1) {
			t.Errorf("event %d has Seq %d", i, e.Seq)
		}
		if i > 0 && e.Time.Before(all[i-1].Time) {
			t.Errorf("event %d at %v, before event %d at %v", i, e.Time, i-1, all[i-1].Time)
		}
	}
	for _, tt := range []struct {
		since uint64
		limit int
		want  []uint64
	}{
		{0, 2, []uint64{1, 2}},
		{2, 3, []uint64{3, 4, 5}},
		{4, 0, []uint64{5, 6}},
		{6, 0, nil},
		{100, 10, nil},
	} {
		es, err := s.History(ctx, tt.since, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, e := range es {
			seqs = append(seqs, e.Seq)
		}
		if !slices.Equal(seqs, tt.want) {
			t.Errorf("History(%d, %d) = %v, want %v", tt.since, tt.limit, seqs, tt.want)
		}
	}
}

func TestCatalogSnapshot(t *testing.T) {
	s := openTest(t, nil)
	ctx := context.Background()
	empty := s.Catalog()
	if empty.Seq() != 0 || len(empty.Rules()) != 0 || empty.IsTestDevice("00-04-F2-00-00-01", "") {
		t.Fatalf("new store's catalog is not empty")
	}
	mustImport(t, s, update(phone2, v1), update(phone, v1))
	c1 := s.Catalog()
	if c1.Seq() != 2 {
		t.Errorf("Seq after 2 imports = %d, want 2", c1.Seq())
	}
	var paths []string
	for _, r := range c1.Rules() {
		paths = append(paths, r.Identity.Path())
	}
	if want := []string{phone2.Path(), phone.Path()}; !slices.Equal(paths, want) {
		t.Errorf("Rules() in order %q, want %q", paths, want)
	}
	if _, err := s.Approve(ctx, "admin", phone.Path()); err != nil {
		t.Fatal(err)
	}
	c2 := s.Catalog()
	if r, _ := c1.Rule(phone); r.Pending != v1 || !r.Approved.IsZero() {
		t.Errorf("the old snapshot changed: %+v", r)
	}
	if r, _ := c2.Rule(phone); r.Approved != v1 {
		t.Errorf("the new snapshot's rule: %+v", r)
	}
	// What a snapshot returns is a copy.
	u, _ := c2.Update(phone, v1)
	u.Files[0].Name = "changed"
	rs := c2.Rules()
	rs[0].Pending = v3
	if u2, _ := c2.Update(phone, v1); u2.Files[0].Name == "changed" {
		t.Errorf("Update returned the snapshot's own slice")
	}
	if r, _ := c2.Rule(phone2); r.Pending != v1 {
		t.Errorf("Rules returned the snapshot's own slice")
	}

	if err := s.AddTestDevice(ctx, "admin", firmware.TestDevice{MAC: "0004f2000001"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddTestDevice(ctx, "admin", firmware.TestDevice{Serial: " SN123 "}); err != nil {
		t.Fatal(err)
	}
	c3 := s.Catalog()
	for _, tt := range []struct {
		mac, serial string
		want        bool
	}{
		{"00-04-F2-00-00-01", "", true},
		{"00:04:f2:00:00:01", "", true},
		{"", "SN123", true},
		{"00-04-F2-00-00-02", "SN123", true},
		{"00-04-F2-00-00-02", "SN124", false},
		{"", "", false},
		{"garbage", "", false},
	} {
		if got := c3.IsTestDevice(tt.mac, tt.serial); got != tt.want {
			t.Errorf("IsTestDevice(%q, %q) = %v, want %v", tt.mac, tt.serial, got, tt.want)
		}
	}
	if c2.IsTestDevice("00-04-F2-00-00-01", "") {
		t.Errorf("an older snapshot sees a later test device")
	}
}
