package devsvc

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/ntlm"
)

func TestStoreAccountsLookup(t *testing.T) {
	st, err := store.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.PutAccount(ctx, "test", firmware.Account{Name: "alice", NTHash: ntlm.NTHash("pw")}); err != nil {
		t.Fatal(err)
	}
	a := storeAccounts{st: st, domains: serviceDomains("contoso.com")}
	for _, tt := range []struct {
		domain, user string
		ok           bool
	}{
		{"", "alice", true},
		{"CONTOSO", "alice", true},
		{"contoso", "ALICE", true},
		{"contoso.com", "alice", true},
		{"OPENDUS", "alice", true},
		{"", "alice@contoso.com", true},
		{"", `CONTOSO\alice`, true},
		{"", `opendus\alice`, true},
		{"EVIL", "ALICE", false},
		{"EVILCORP", "alice", false},
		{"", "alice@evilcorp.com", false},
		{"", `EVILCORP\alice`, false},
		{"CONTOSO.COM.EVIL", "alice", false},
		{"", "bob", false},
	} {
		got, err := a.LookupNT(ctx, tt.domain, tt.user)
		if !tt.ok {
			if !errors.Is(err, ntlm.ErrUnknownUser) {
				t.Errorf("LookupNT(%q, %q) = %+v, %v; want ErrUnknownUser", tt.domain, tt.user, got, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("LookupNT(%q, %q): %v", tt.domain, tt.user, err)
			continue
		}
		// One lockout key whatever the client claims.
		if got.User != "alice" || got.Domain != localDomain || got.NTHash != ntlm.NTHash("pw") {
			t.Errorf("LookupNT(%q, %q) = %+v, want alice in %s", tt.domain, tt.user, got, localDomain)
		}
	}
}

func TestServiceDomains(t *testing.T) {
	if got, want := serviceDomains("contoso.com"), []string{"CONTOSO", "contoso.com", "OPENDUS"}; !slices.Equal(got, want) {
		t.Errorf("serviceDomains(contoso.com) = %q, want %q", got, want)
	}
}

func TestDirectoryDomains(t *testing.T) {
	s := datadir.DefaultSettings("contoso.com")
	if got, want := directoryDomains(s), []string{"CONTOSO", "contoso.com", "OPENDUS"}; !slices.Equal(got, want) {
		t.Errorf("directory domains without ldap_domains = %q, want the service's %q", got, want)
	}
	s.LDAPDomains = []string{"CORP", "corp.contoso.com"}
	if got := directoryDomains(s); !slices.Equal(got, s.LDAPDomains) {
		t.Errorf("directory domains with ldap_domains = %q, want %q", got, s.LDAPDomains)
	}
}
