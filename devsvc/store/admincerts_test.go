package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/firmware"
)

func TestAdminCerts(t *testing.T) {
	s := openTest(t, nil)
	ctx := context.Background()
	expires := time.Date(2028, 11, 21, 0, 0, 0, 0, time.UTC)
	admin := firmware.AdminCert{Serial: "1a2b", Name: "admin", Role: "admin", SHA256: "AA:BB", Expires: expires}
	help := firmware.AdminCert{Serial: "3c4d", Name: "helpdesk", Role: "readonly", SHA256: "CC:DD", Expires: expires}
	if err := s.AddAdminCert(ctx, "init", admin, "the first admin certificate"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAdminCert(ctx, "cert:admin", help, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAdminCert(ctx, "cert:admin", help, ""); !errors.Is(err, ErrExists) {
		t.Errorf("adding serial %s twice = %v, want ErrExists", help.Serial, err)
	}
	if err := s.AddAdminCert(ctx, "cert:admin", firmware.AdminCert{Serial: "0A", Name: "x", Role: "admin"}, ""); err == nil {
		t.Error("a serial not in canonical form was recorded")
	}
	got, err := s.AdminCert(ctx, help.Serial)
	if err != nil || got.Name != "helpdesk" || got.IssuedBy != "cert:admin" || got.Issued.IsZero() || got.State(got.Issued) != firmware.CertValid {
		t.Errorf("AdminCert(%s) = %+v, %v", help.Serial, got, err)
	}
	if _, err := s.AdminCert(ctx, "ffff"); !errors.Is(err, ErrNotFound) {
		t.Errorf("AdminCert(unknown) = %v, want ErrNotFound", err)
	}

	r, err := s.RevokeAdminCert(ctx, "cert:admin", help.Serial, "laptop lost")
	if err != nil || r.Revoked.IsZero() || r.RevokedBy != "cert:admin" || r.Reason != "laptop lost" {
		t.Fatalf("RevokeAdminCert = %+v, %v", r, err)
	}
	seq := s.Catalog().Seq()
	if _, err := s.RevokeAdminCert(ctx, "cert:admin", help.Serial, ""); !errors.Is(err, ErrRevoked) || !strings.Contains(err.Error(), "helpdesk") {
		t.Errorf("revoking twice = %v, want ErrRevoked naming helpdesk", err)
	}
	if _, err := s.RevokeAdminCert(ctx, "cert:admin", "ffff", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoking an unknown serial = %v, want ErrNotFound", err)
	}
	if s.Catalog().Seq() != seq {
		t.Error("refused revocations changed the history")
	}
	list, err := s.AdminCerts(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "admin" || list[1].State(time.Now()) != firmware.CertRevoked {
		t.Errorf("AdminCerts = %+v, %v; want admin, then helpdesk revoked", list, err)
	}
	es, _ := s.History(ctx, 0, 0)
	var got3 []string
	for _, e := range es {
		got3 = append(got3, e.Actor+" "+e.Action+" "+e.Subject)
	}
	want := []string{"init cert-issue admin", "cert:admin cert-issue helpdesk", "cert:admin cert-revoke helpdesk"}
	if strings.Join(got3, "; ") != strings.Join(want, "; ") {
		t.Errorf("history = %q, want %q", got3, want)
	}
	if !strings.Contains(es[0].Detail, "the first admin certificate; role admin, serial 1a2b") || !strings.Contains(es[2].Detail, "laptop lost") {
		t.Errorf("history details: %q, %q", es[0].Detail, es[2].Detail)
	}
	checkConsistent(t, s)
}
