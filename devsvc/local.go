package devsvc

import (
	"context"
	"fmt"
	"os/user"
	"path/filepath"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
)

// Local opens the service layer on the data directory dir itself, for the
// commands that must work while the server is stopped (devsvc certs
// --offline): its store and certificates, and a context carrying the local
// principal, "local:USER" with the admin role (whoever may open the data
// directory may change it). The store is locked while it is open, so it
// fails while a server runs on dir. Call close when done.
func Local(ctx context.Context, dir string) (svc *service.Service, lctx context.Context, close func() error, err error) {
	cs, err := certs.Open(filepath.Join(dir, datadir.CertsDir), certs.Config{})
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := store.Open(dir, nil)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w; --offline works on a data directory whose server is stopped: while devsvc serve runs, leave --offline out", err)
	}
	if err := recordDirAdminCert(ctx, st, cs, "devsvc (offline)", nil); err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	svc = service.New(st, service.Config{Issuer: cs, Version: Version()})
	return svc, service.WithPrincipal(ctx, service.Principal{Name: "local:" + name, Role: service.RoleAdmin}), st.Close, nil
}
