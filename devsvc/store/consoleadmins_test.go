package store

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/opendus/opendus/firmware"
)

const testHash = "$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

func TestConsoleAdmins(t *testing.T) {
	s := openTest(t, nil)
	ctx := context.Background()
	alice := firmware.ConsoleAdmin{Name: "Alice", Role: "admin", PasswordHash: testHash}
	if err := s.PutConsoleAdmin(ctx, "cert:admin", alice, false); err != nil {
		t.Fatal(err)
	}
	if err := s.PutConsoleAdmin(ctx, "cert:admin", firmware.ConsoleAdmin{Name: "helpdesk", Role: "readonly", PasswordHash: testHash}, false); err != nil {
		t.Fatal(err)
	}
	seq := s.Catalog().Seq()
	for _, tc := range []struct {
		name    string
		a       firmware.ConsoleAdmin
		replace bool
		want    error
	}{
		{"exists", firmware.ConsoleAdmin{Name: "ALICE", Role: "admin", PasswordHash: testHash}, false, ErrExists},
		{"replace missing", firmware.ConsoleAdmin{Name: "bob", Role: "admin", PasswordHash: testHash}, true, ErrNotFound},
		{"bad name", firmware.ConsoleAdmin{Name: "bob smith", Role: "admin", PasswordHash: testHash}, false, nil},
		{"bad role", firmware.ConsoleAdmin{Name: "bob", Role: "root", PasswordHash: testHash}, false, nil},
		{"password, not hash", firmware.ConsoleAdmin{Name: "bob", Role: "admin", PasswordHash: "Winter2026!"}, false, nil},
		{"no hash", firmware.ConsoleAdmin{Name: "bob", Role: "admin"}, false, nil},
	} {
		err := s.PutConsoleAdmin(ctx, "cert:admin", tc.a, tc.replace)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: PutConsoleAdmin(%+v, replace %v) = %v, want an error (%v)", tc.name, tc.a, tc.replace, err, tc.want)
		}
	}
	if got := s.Catalog().Seq(); got != seq {
		t.Errorf("refused changes moved the history from %d to %d", seq, got)
	}

	got, err := s.ConsoleAdmin(ctx, "alice")
	if err != nil || got.Name != "Alice" || got.Role != "admin" || got.PasswordHash != testHash || got.Created.IsZero() {
		t.Errorf("ConsoleAdmin(alice) = %+v, %v", got, err)
	}
	newHash := strings.Replace(testHash, "m=64", "m=128", 1)
	if err := s.PutConsoleAdmin(ctx, "web:alice", firmware.ConsoleAdmin{Name: "alice", Role: "readonly", PasswordHash: newHash}, true); err != nil {
		t.Fatal(err)
	}
	if a, err := s.SetConsoleAdminDisabled(ctx, "web:alice", "HELPDESK", true); err != nil || !a.Disabled || a.Name != "helpdesk" {
		t.Errorf("SetConsoleAdminDisabled(HELPDESK) = %+v, %v", a, err)
	}
	if _, err := s.SetConsoleAdminDisabled(ctx, "web:alice", "nobody", true); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetConsoleAdminDisabled(nobody) = %v, want ErrNotFound", err)
	}
	list, err := s.ConsoleAdmins(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("ConsoleAdmins = %+v, %v", list, err)
	}
	if a := list[0]; a.Name != "Alice" || a.Role != "readonly" || a.PasswordHash != newHash || !a.Updated.After(a.Created) {
		t.Errorf("after replace: %+v; want Alice, readonly, the new hash, created kept", a)
	}
	if !list[1].Disabled {
		t.Errorf("helpdesk = %+v, want disabled", list[1])
	}
	checkConsistent(t, s)
	if err := s.RemoveConsoleAdmin(ctx, "web:alice", "helpdesk"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveConsoleAdmin(ctx, "web:alice", "helpdesk"); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing twice = %v, want ErrNotFound", err)
	}
	es, _ := s.History(ctx, 0, 0)
	var lines []string
	for _, e := range es {
		lines = append(lines, e.Actor+" "+e.Action+" "+e.Subject+" "+e.Detail)
		if strings.Contains(e.Detail, "argon2") {
			t.Errorf("event %d carries a hash: %q", e.Seq, e.Detail)
		}
	}
	want := []string{
		"cert:admin console-admin-add Alice role admin",
		"cert:admin console-admin-add helpdesk role readonly",
		"web:alice console-admin-update Alice role readonly",
		"web:alice console-admin-disable helpdesk ",
		"web:alice console-admin-remove helpdesk ",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("history:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	checkConsistent(t, s)

	// The records survive a reopen.
	dir := s.Dir()
	s.Close()
	s2 := openDir(t, dir, nil)
	if a, err := s2.ConsoleAdmin(ctx, "alice"); err != nil || a.PasswordHash != newHash {
		t.Errorf("after reopening: %+v, %v", a, err)
	}
	checkConsistent(t, s2)
}
