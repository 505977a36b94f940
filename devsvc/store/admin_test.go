package store

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/firmware"
)

func TestTestDevices(t *testing.T) {
	s := openTest(t, nil)
	ctx := context.Background()
	steps := []struct {
		op      string // add, remove
		dev     firmware.TestDevice
		ref     string
		wantErr error
		want    []string // keys after the step
	}{
		{op: "add", dev: firmware.TestDevice{MAC: "00:04:f2:ab:cd:ef", Note: "lab"}, want: []string{"00-04-F2-AB-CD-EF"}},
		{op: "add", dev: firmware.TestDevice{MAC: "0004F2ABCDEF"}, wantErr: ErrExists},
		{op: "add", dev: firmware.TestDevice{Serial: "  SN1 "}, want: []string{"00-04-F2-AB-CD-EF", "serial:SN1"}},
		{op: "add", dev: firmware.TestDevice{MAC: "00-04-F2-00-00-02", Serial: "SN1"}, wantErr: ErrExists},
		{op: "add", dev: firmware.TestDevice{MAC: "00-04-F2-00-00-02", Serial: "SN2"}, want: []string{"00-04-F2-00-00-02", "00-04-F2-AB-CD-EF", "serial:SN1"}},
		{op: "add", dev: firmware.TestDevice{MAC: "00-04-F2"}, wantErr: firmware.ErrMAC},
		{op: "add", dev: firmware.TestDevice{Note: "nothing"}, wantErr: errAny},
		{op: "remove", ref: "00.04.f2.ab.cd.ef", want: []string{"00-04-F2-00-00-02", "serial:SN1"}},
		{op: "remove", ref: "00.04.f2.ab.cd.ef", wantErr: ErrNotFound},
		{op: "remove", ref: "SN2", want: []string{"serial:SN1"}},
		{op: "remove", ref: " SN1", want: nil},
		{op: "remove", ref: "", wantErr: ErrNotFound},
	}
	for i, st := range steps {
		seq := s.Catalog().Seq()
		var err error
		if st.op == "add" {
			err = s.AddTestDevice(ctx, "admin", st.dev)
		} else {
			err = s.RemoveTestDevice(ctx, "admin", st.ref)
		}
		if err == nil && st.wantErr != nil || err != nil && (st.wantErr == nil || st.wantErr != errAny && !errors.Is(err, st.wantErr)) {
			t.Fatalf("step %d: %s(%+v %q) = %v, want %v", i, st.op, st.dev, st.ref, err, st.wantErr)
		}
		if err != nil {
			if s.Catalog().Seq() != seq {
				t.Errorf("step %d: a refused %s recorded an event", i, st.op)
			}
			continue
		}
		ts, err := s.TestDevices(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, d := range ts {
			k, _ := d.Key()
			keys = append(keys, k)
			if d.Added.IsZero() {
				t.Errorf("step %d: test device %s has no Added time", i, k)
			}
		}
		if diff := cmp.Diff(st.want, keys); diff != "" {
			t.Errorf("step %d: test devices (-want +got):\n%s", i, diff)
		}
		es, _ := s.History(ctx, seq, 0)
		if len(es) != 1 || es[0].Action != map[string]string{"add": ActionTestDeviceAdd, "remove": ActionTestDeviceRemove}[st.op] {
			t.Errorf("step %d: history %+v", i, es)
		}
	}
}

func TestAccounts(t *testing.T) {
	s := openTest(t, nil)
	ctx := context.Background()
	hash1, hash2 := [16]byte{1, 2, 3}, [16]byte{4, 5, 6}
	if err := s.PutAccount(ctx, "admin", firmware.Account{Name: "Alice.Smith", NTHash: hash1}); err != nil {
		t.Fatal(err)
	}
	a, err := s.Account(ctx, "alice.smith")
	if err != nil {
		t.Fatalf("Account(lower case) = %v", err)
	}
	if a.Name != "Alice.Smith" || a.NTHash != hash1 || a.Disabled || a.Created.IsZero() || !a.Created.Equal(a.Updated) {
		t.Errorf("Account = %+v", a)
	}
	// Replacing keeps the creation time and changes the hash.
	if err := s.PutAccount(ctx, "admin", firmware.Account{Name: "ALICE.SMITH", NTHash: hash2}); err != nil {
		t.Fatal(err)
	}
	b, err := s.Account(ctx, "Alice.Smith")
	if err != nil || b.NTHash != hash2 || !b.Created.Equal(a.Created) || !b.Updated.After(a.Updated) || b.Name != "ALICE.SMITH" {
		t.Errorf("Account after replace = %+v, %v", b, err)
	}
	if err := s.SetAccountDisabled(ctx, "admin", "alice.SMITH", true); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Account(ctx, "alice.smith"); !c.Disabled || c.NTHash != hash2 {
		t.Errorf("Account after disable = %+v", c)
	}
	if err := s.PutAccount(ctx, "admin", firmware.Account{Name: "bob"}); err != nil {
		t.Fatal(err)
	}
	as, _ := s.Accounts(ctx)
	if len(as) != 2 || as[0].Name != "ALICE.SMITH" || as[1].Name != "bob" {
		t.Errorf("Accounts = %+v", as)
	}
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"nobody", s.SetAccountDisabled(ctx, "admin", "nobody", true)},
		{"remove nobody", s.RemoveAccount(ctx, "admin", "nobody")},
		{"bad name", s.PutAccount(ctx, "admin", firmware.Account{Name: "bad name"})},
		{"empty name", s.PutAccount(ctx, "admin", firmware.Account{})},
	} {
		if tt.err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
	if _, err := s.Account(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Account(nobody) = %v, want ErrNotFound", err)
	}
	if err := s.RemoveAccount(ctx, "admin", "Alice.Smith"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Account(ctx, "alice.smith"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Account after remove = %v, want ErrNotFound", err)
	}
	es, _ := s.History(ctx, 0, 0)
	var got []string
	for _, e := range es {
		got = append(got, e.Action+" "+e.Subject)
	}
	want := []string{"account-create Alice.Smith", "account-update ALICE.SMITH", "account-disable ALICE.SMITH", "account-create bob", "account-remove ALICE.SMITH"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
}
