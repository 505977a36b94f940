package devsvc

import (
	"context"
	"crypto/x509"
	"errors"

	"github.com/opendus/opendus/datadir"

	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/opendus/opendus/devsvc/directory"
	"github.com/opendus/opendus/devsvc/service"
)

// openDirectory connects the LDAP directory the settings name; nil when
// none is configured.
func openDirectory(s datadir.Settings, log *slog.Logger) (*directory.Directory, error) {
	if s.LDAPURL == "" {
		return nil, nil
	}
	cfg := directory.Config{
		URL: s.LDAPURL, StartTLS: s.LDAPStartTLS, BindDN: s.LDAPBindDN, BaseDN: s.LDAPBaseDN,
		UserFilter: s.LDAPUserFilter, GroupBaseDN: s.LDAPGroupBaseDN, AdminGroup: s.LDAPAdminGroup, ReadOnlyGroup: s.LDAPReadOnlyGroup,
		Domains: directoryDomains(s), Logger: log,
	}
	if s.LDAPBindPasswordFile != "" {
		fi, err := os.Stat(s.LDAPBindPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("ldap_bind_password_file: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("ldap_bind_password_file %s is readable by others (mode %v): chmod 600 it", s.LDAPBindPasswordFile, fi.Mode().Perm())
		}
		pw, err := os.ReadFile(s.LDAPBindPasswordFile)
		if err != nil {
			return nil, err
		}
		cfg.BindPassword = strings.TrimRight(string(pw), "\r\n")
	}
	if s.LDAPCAFile != "" {
		pemData, err := os.ReadFile(s.LDAPCAFile)
		if err != nil {
			return nil, fmt.Errorf("ldap_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("ldap_ca_file %s holds no PEM certificate", s.LDAPCAFile)
		}
		cfg.RootCAs = pool
	}
	d, err := directory.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("ldap: %w", err)
	}
	return d, nil
}

// directoryDomains are the NTLM domains directory accounts may be named
// in: ldap_domains, else the service's own, never any domain at all.
func directoryDomains(s datadir.Settings) []string {
	if len(s.LDAPDomains) > 0 {
		return s.LDAPDomains
	}
	return serviceDomains(s.Domain)
}

// directoryAdmins signs admins in through the directory.
type directoryAdmins struct{ d *directory.Directory }

func (a directoryAdmins) AuthenticateAdmin(ctx context.Context, user, password string) (service.Role, error) {
	u, err := a.d.Authenticate(ctx, user, password)
	if errors.Is(err, directory.ErrBadCredentials) {
		return "", fmt.Errorf("%w: %w", service.ErrBadCredentials, err)
	}
	if err != nil {
		return "", err
	}
	switch u.Role {
	case directory.RoleAdmin:
		return service.RoleAdmin, nil
	case directory.RoleReadOnly:
		return service.RoleReadOnly, nil
	}
	return "", fmt.Errorf("%s: %w", user, service.ErrNoRole)
}

// AccountKey is the limiter's key of the directory account user names,
// the one its NTLM sign-ins count against.
func (a directoryAdmins) AccountKey(user string) (string, bool) { return a.d.AccountKey(user) }
