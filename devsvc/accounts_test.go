package devsvc

import (
	"context"
	"errors"
	"testing"

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
	a := storeAccounts{st}
	for _, tt := range []struct{ domain, user string }{
		{"", "alice"}, {"CONTOSO", "alice"}, {"EVIL", "ALICE"}, {"", "alice@contoso.com"}, {"", `CONTOSO\alice`},
	} {
		got, err := a.LookupNT(ctx, tt.domain, tt.user)
		if err != nil {
			t.Errorf("LookupNT(%q, %q): %v", tt.domain, tt.user, err)
			continue
		}
		// One lockout key whatever the client claims.
		if got.User != "alice" || got.Domain != localDomain || got.NTHash != ntlm.NTHash("pw") {
			t.Errorf("LookupNT(%q, %q) = %+v, want alice in %s", tt.domain, tt.user, got, localDomain)
		}
	}
	if _, err := a.LookupNT(ctx, "", "bob"); !errors.Is(err, ntlm.ErrUnknownUser) {
		t.Errorf("unknown user: %v, want ErrUnknownUser", err)
	}
}
