package directory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/opendus/opendus/ntlm"
	"github.com/opendus/opendus/signin"
)

// Defaults of the Config fields.
const (
	DefaultUserFilter  = "(&(objectClass=sambaSamAccount)(uid={user}))"
	DefaultGroupFilter = "(&(objectClass=groupOfNames)(member={dn}))"
	DefaultNameAttr    = "uid"
	DefaultNTHashAttr  = "sambaNTPassword"
	DefaultFlagsAttr   = "sambaAcctFlags"
	DefaultTimeout     = 5 * time.Second
	DefaultCacheTTL    = 30 * time.Second
	DefaultCacheSize   = 1024
	DefaultPoolSize    = 4
)

// memberOfAttr is the attribute in which OpenLDAP's memberof overlay and
// Active Directory list the groups of an entry.
const memberOfAttr = "memberOf"

// maxGroups bounds the groups read for one user.
const maxGroups = 1000

// maxPasswordLen bounds the password Authenticate sends to the directory.
const maxPasswordLen = 1024

var (
	// ErrBadCredentials is returned by Authenticate when the user is
	// unknown, outside BaseDN, disabled, or the password is wrong or
	// empty; the reason is logged, never returned.
	ErrBadCredentials = errors.New("directory: bad credentials")

	// ErrUnavailable is returned (wrapped) by LookupNT and Authenticate
	// when the directory cannot answer: it cannot be reached, times out,
	// refuses TLS or the service bind, answers with an error, the caller's
	// context ends, or the Directory is closed. It is never
	// ntlm.ErrUnknownUser, so the NTLM acceptor refuses and reports an
	// outage.
	ErrUnavailable = errors.New("directory: unavailable")

	// errNotFound is returned by findUser when no single entry under
	// BaseDN matches.
	errNotFound = errors.New("no such user")

	// errBind marks a bind refused by the server (an LDAP result).
	errBind = errors.New("bind refused")
)

// Role is what an admin may do, from the groups of the admin's entry.
type Role string

// Roles.
const (
	RoleNone     Role = ""
	RoleAdmin    Role = "admin"
	RoleReadOnly Role = "readonly"
)

// User is an admin who signed in with Authenticate.
type User struct {
	Name   string   // the user name as the directory spells it (Config.NameAttr)
	DN     string   // the entry's distinguished name
	Groups []string // DNs of the groups the entry belongs to, sorted
	Role   Role     // from Config.AdminGroup and Config.ReadOnlyGroup
}

// Config says where the directory is and how its users are stored. URL,
// BindDN, BindPassword and BaseDN are required; every other field has a
// working default for OpenLDAP with the Samba schema.
type Config struct {
	// URL is ldaps://host[:636] or, with StartTLS, ldap://host[:389].
	// Nothing is ever sent in plain text: ldap:// without StartTLS is
	// refused.
	URL string

	// StartTLS upgrades an ldap:// connection to TLS before binding.
	StartTLS bool

	// RootCAs verifies the directory's certificate; nil means the system
	// roots. The certificate must name the URL's host.
	RootCAs *x509.CertPool

	// BindDN and BindPassword are the service account that searches for
	// users. It must be allowed to read NTHashAttr.
	BindDN, BindPassword string

	// BaseDN is where users are searched (whole subtree); entries outside
	// it are not users.
	BaseDN string

	// UserFilter finds a user; {user} is replaced by the escaped name.
	// Default DefaultUserFilter.
	UserFilter string

	// NameAttr holds the canonical user name. Default "uid".
	NameAttr string

	// NTHashAttr holds the NT hash as 32 hexadecimal digits. Default
	// "sambaNTPassword".
	NTHashAttr string

	// FlagsAttr holds Samba account flags such as "[U          ]"; D means
	// disabled. Default "sambaAcctFlags". Set it to "-" for a directory
	// without flags.
	FlagsAttr string

	// GroupBaseDN is where groups are searched (whole subtree). Default
	// BaseDN.
	GroupBaseDN string

	// GroupFilter finds the groups of a user; {dn} is replaced by the
	// user's escaped DN. Default DefaultGroupFilter. Groups listed in the
	// user's memberOf attribute, when the directory keeps it, count too:
	// memberOf must be maintained by the server (OpenLDAP's memberof
	// overlay, Active Directory), never writable by users themselves, or a
	// user could name the admin group.
	GroupFilter string

	// AdminGroup and ReadOnlyGroup are the DNs of the groups whose members
	// get RoleAdmin and RoleReadOnly. Empty means no one.
	AdminGroup, ReadOnlyGroup string

	// Domains are the domain names a client may give, in the NTLM domain
	// field or as the suffix of user@domain, case-insensitive: typically
	// the NetBIOS name and the DNS name ("CONTOSO", "contoso.com"). Any
	// other domain makes the user unknown. An empty domain is always
	// accepted. Empty means any domain. Accounts returned by LookupNT carry
	// the first, in upper case (or no domain), whatever the client sent, so
	// that the acceptor's lockout cannot be dodged by varying the domain.
	Domains []string

	// Timeout bounds each step: connecting (TCP, TLS and the service bind)
	// and each search or bind. Default 5s.
	Timeout time.Duration

	// CacheTTL is how long LookupNT remembers an answer, found or not.
	// Default 30s; negative disables the cache.
	CacheTTL time.Duration

	// CacheSize bounds the names the cache holds. Default 1024.
	CacheSize int

	// PoolSize is the most connections open to the directory at once:
	// service connections, kept for reuse while healthy, and the short
	// connections Authenticate binds as the user. Callers beyond it wait,
	// within their context. Default 4.
	PoolSize int

	// Now is the clock of the cache; nil means time.Now. Network deadlines
	// always use the real clock.
	Now func() time.Time

	// Logger receives outages (Error), their end (Info), refused admin
	// sign-ins (Info, with "user" and "reason") and inconsistent entries
	// (Warn). nil discards.
	Logger *slog.Logger
}

// Directory looks users up in an LDAP directory. It is safe for concurrent
// use.
type Directory struct {
	cfg    Config
	addr   string // host:port
	ldaps  bool
	tls    *tls.Config
	base   *ldap.DN
	admin  *ldap.DN // nil when not configured
	ro     *ldap.DN
	domain string // canonical domain of accounts
	pool   *pool
	cache  *cache
	log    *slog.Logger
	down   atomic.Bool // the last request failed for want of the directory

	lookupAttrs, authAttrs []string
}

var _ ntlm.Accounts = (*Directory)(nil)

// New checks cfg and returns a Directory. It does not connect: the first
// lookup does, so that the service starts while the directory is down.
func New(cfg Config) (*Directory, error) {
	if cfg.UserFilter == "" {
		cfg.UserFilter = DefaultUserFilter
	}
	if cfg.GroupFilter == "" {
		cfg.GroupFilter = DefaultGroupFilter
	}
	if cfg.NameAttr == "" {
		cfg.NameAttr = DefaultNameAttr
	}
	if cfg.NTHashAttr == "" {
		cfg.NTHashAttr = DefaultNTHashAttr
	}
	if cfg.FlagsAttr == "" {
		cfg.FlagsAttr = DefaultFlagsAttr
	}
	if cfg.GroupBaseDN == "" {
		cfg.GroupBaseDN = cfg.BaseDN
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.PoolSize <= 0 {
		cfg.PoolSize = DefaultPoolSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d := &Directory{cfg: cfg, log: cfg.Logger}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}

	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("directory: URL: %w", err)
	}
	port := ""
	switch {
	case u.Scheme == "ldaps" && !cfg.StartTLS:
		d.ldaps, port = true, "636"
	case u.Scheme == "ldaps":
		return nil, fmt.Errorf("directory: URL %q: StartTLS is for ldap:// URLs", cfg.URL)
	case u.Scheme == "ldap" && cfg.StartTLS:
		port = "389"
	case u.Scheme == "ldap":
		return nil, fmt.Errorf("directory: URL %q: ldap:// needs StartTLS: binds are never sent in plain text", cfg.URL)
	default:
		return nil, fmt.Errorf("directory: URL %q: scheme must be ldaps or ldap", cfg.URL)
	}
	if u.Hostname() == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("directory: URL %q: want scheme://host[:port]", cfg.URL)
	}
	if u.Port() != "" {
		port = u.Port()
	}
	d.addr = net.JoinHostPort(u.Hostname(), port)
	d.tls = &tls.Config{RootCAs: cfg.RootCAs, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}

	if cfg.BindDN == "" || cfg.BindPassword == "" {
		return nil, errors.New("directory: BindDN and BindPassword are required")
	}
	if cfg.BaseDN == "" {
		return nil, errors.New("directory: BaseDN is required")
	}
	if d.base, err = ldap.ParseDN(cfg.BaseDN); err != nil {
		return nil, fmt.Errorf("directory: BaseDN %q: %w", cfg.BaseDN, err)
	}
	if _, err := ldap.ParseDN(cfg.GroupBaseDN); err != nil {
		return nil, fmt.Errorf("directory: GroupBaseDN %q: %w", cfg.GroupBaseDN, err)
	}
	for _, g := range []struct {
		name string
		dn   string
		out  **ldap.DN
	}{{"AdminGroup", cfg.AdminGroup, &d.admin}, {"ReadOnlyGroup", cfg.ReadOnlyGroup, &d.ro}} {
		if g.dn == "" {
			continue
		}
		if *g.out, err = ldap.ParseDN(g.dn); err != nil {
			return nil, fmt.Errorf("directory: %s %q: %w", g.name, g.dn, err)
		}
	}
	if err := checkTemplate("UserFilter", cfg.UserFilter, "{user}"); err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	if err := checkTemplate("GroupFilter", cfg.GroupFilter, "{dn}"); err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	if len(cfg.Domains) > 0 {
		d.domain = strings.ToUpper(cfg.Domains[0])
	}

	d.lookupAttrs = []string{cfg.NameAttr, cfg.NTHashAttr}
	d.authAttrs = []string{cfg.NameAttr, memberOfAttr}
	if cfg.FlagsAttr != "-" {
		d.lookupAttrs = append(d.lookupAttrs, cfg.FlagsAttr)
		d.authAttrs = append(d.authAttrs, cfg.FlagsAttr)
	}
	d.pool = newPool(cfg.PoolSize)
	d.cache = newCache(cfg.CacheTTL, cfg.CacheSize, cfg.Now)
	return d, nil
}

// Close closes the pooled connections. Lookups after Close return
// ErrUnavailable.
func (d *Directory) Close() error {
	d.pool.close()
	return nil
}

// LookupNT returns the account for user in domain, as an NTLM client sent
// them, implementing ntlm.Accounts. A user of the form name@domain is
// looked up as name when domain is empty. It returns an error wrapping
// ntlm.ErrUnknownUser when the name is not a plausible account name, the
// domain is not one of Config.Domains, or no single entry under BaseDN
// matches, and one wrapping ErrUnavailable when the directory cannot
// answer.
func (d *Directory) LookupNT(ctx context.Context, domain, user string) (ntlm.Account, error) {
	name, ok := d.accountName(domain, user)
	if !ok {
		return ntlm.Account{}, fmt.Errorf("directory: %q: %w", user, ntlm.ErrUnknownUser)
	}
	key := strings.ToLower(name)
	if e, ok := d.cache.get(key); ok {
		if !e.known {
			return ntlm.Account{}, fmt.Errorf("directory: %q: %w", user, ntlm.ErrUnknownUser)
		}
		return e.acct, nil
	}
	e, err := d.findUser(ctx, name, d.lookupAttrs)
	if errors.Is(err, errNotFound) {
		d.cache.put(key, ntlm.Account{}, false)
		return ntlm.Account{}, fmt.Errorf("directory: %q: %w", user, ntlm.ErrUnknownUser)
	}
	if err != nil {
		return ntlm.Account{}, err
	}
	acct, err := d.account(e, name)
	if err != nil {
		d.log.Warn("directory: entry cannot sign in with NTLM", "user", name, "dn", e.DN, "reason", err.Error())
		d.cache.put(key, ntlm.Account{}, false)
		return ntlm.Account{}, fmt.Errorf("directory: %q: %w: %w", user, ntlm.ErrUnknownUser, err)
	}
	d.cache.put(key, acct, true)
	return acct, nil
}

// AccountKey returns the sign-in limiter's key (signin.AccountKey) of
// the account user names, found as LookupNT and Authenticate find it
// (user@domain and domain\user too): the canonical domain and the name.
// A password sign-in and the NTLM sign-ins of one account thus count
// against one lockout. ok is false for a name no account can have.
func (d *Directory) AccountKey(user string) (key string, ok bool) {
	name, ok := d.accountName("", user)
	if !ok {
		return "", false
	}
	return signin.AccountKey(d.domain, name), true
}

// account reads the NTLM account from a user entry.
func (d *Directory) account(e *ldap.Entry, name string) (ntlm.Account, error) {
	vals := e.GetEqualFoldAttributeValues(d.cfg.NTHashAttr)
	if len(vals) != 1 {
		return ntlm.Account{}, fmt.Errorf("%d values of %s, want 1", len(vals), d.cfg.NTHashAttr)
	}
	h, err := parseNTHash(vals[0])
	if err != nil {
		return ntlm.Account{}, fmt.Errorf("%s: %w", d.cfg.NTHashAttr, err)
	}
	return ntlm.Account{
		User:     d.canonicalName(e, name),
		Domain:   d.domain,
		NTHash:   h,
		Disabled: d.disabled(e),
	}, nil
}

// canonicalName returns the entry's spelling of name.
func (d *Directory) canonicalName(e *ldap.Entry, name string) string {
	for _, v := range e.GetEqualFoldAttributeValues(d.cfg.NameAttr) {
		if strings.EqualFold(v, name) {
			return v
		}
	}
	return name
}

// disabled reports whether the entry's flags forbid signing in. A
// malformed or repeated flags value counts as disabled.
func (d *Directory) disabled(e *ldap.Entry) bool {
	if d.cfg.FlagsAttr == "-" {
		return false
	}
	vals := e.GetEqualFoldAttributeValues(d.cfg.FlagsAttr)
	switch len(vals) {
	case 0:
		return false
	case 1:
		f, err := parseAcctFlags(vals[0])
		if err == nil {
			return f.disabled()
		}
		d.log.Warn("directory: account flags malformed, account treated as disabled", "dn", e.DN, "reason", err.Error())
	default:
		d.log.Warn("directory: account flags repeated, account treated as disabled", "dn", e.DN)
	}
	return true
}

// accountName returns the name to look up for user in domain, and false
// when the name is implausible or the domain is not one of ours. It accepts
// user@domain and domain\user when domain is empty.
func (d *Directory) accountName(domain, user string) (string, bool) {
	name := user
	if domain == "" {
		if i := strings.LastIndexByte(user, '@'); i >= 0 {
			name, domain = user[:i], user[i+1:]
		} else if i := strings.IndexByte(user, '\\'); i >= 0 {
			domain, name = user[:i], user[i+1:]
		}
	}
	if !plausibleName(name) {
		return "", false
	}
	if domain != "" && len(d.cfg.Domains) > 0 &&
		!slices.ContainsFunc(d.cfg.Domains, func(s string) bool { return strings.EqualFold(s, domain) }) {
		return "", false
	}
	return name, true
}

// findUser returns the one entry under BaseDN that matches UserFilter for
// name, errNotFound (wrapped) when there is none or more than one, and an
// error wrapping ErrUnavailable when the directory cannot answer.
func (d *Directory) findUser(ctx context.Context, name string, attrs []string) (*ldap.Entry, error) {
	filter := expand(d.cfg.UserFilter, "{user}", name)
	req := ldap.NewSearchRequest(d.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		2, d.timeLimit(), false, filter, attrs, nil)
	var res *ldap.SearchResult
	err := d.withConn(ctx, func(l *ldap.Conn) error {
		var err error
		res, err = l.Search(req)
		return err
	})
	ambiguous := false
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded):
		ambiguous = true
	case err != nil:
		return nil, d.outage(ctx, fmt.Sprintf("search for %q", name), err)
	}
	d.up()
	var found []*ldap.Entry
	var entries []*ldap.Entry
	if res != nil {
		entries = res.Entries
	}
	for _, e := range entries {
		dn, err := ldap.ParseDN(e.DN)
		if err == nil && d.base.AncestorOfFold(dn) {
			found = append(found, e)
		}
	}
	if ambiguous || len(found) > 1 {
		d.log.Warn("directory: several entries match one user name; none is used", "user", name, "filter", filter)
		return nil, fmt.Errorf("%q: several entries: %w", name, errNotFound)
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("%q: %w", name, errNotFound)
	}
	return found[0], nil
}

// Ping checks that the directory answers: one search of BaseDN itself,
// for no attribute, on a pooled connection (a new one is made, TLS and
// the service bind included, when none is pooled), bounded by
// Config.Timeout and ctx. It returns nil, or an error wrapping
// ErrUnavailable; an outage and its end are logged as for lookups.
func (d *Directory) Ping(ctx context.Context) error {
	req := ldap.NewSearchRequest(d.cfg.BaseDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, d.timeLimit(), false, "(objectClass=*)", []string{"1.1"}, nil)
	err := d.withConn(ctx, func(l *ldap.Conn) error {
		_, err := l.Search(req)
		return err
	})
	if err != nil {
		return d.outage(ctx, "ping", err)
	}
	d.up()
	return nil
}

// timeLimit is the server-side time limit of a search, in whole seconds.
func (d *Directory) timeLimit() int {
	return int((d.cfg.Timeout + time.Second - 1) / time.Second)
}

// outage logs a failure to use the directory (at Error the first time after
// a success) and returns it wrapped in ErrUnavailable.
func (d *Directory) outage(ctx context.Context, op string, err error) error {
	err = fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
	if ctx.Err() != nil {
		return err // the caller gave up; the directory may be fine
	}
	if !d.down.Swap(true) {
		d.log.Error("directory unreachable: lookups fail closed until it answers", "url", d.cfg.URL, "err", err.Error())
	} else {
		d.log.Debug("directory still unreachable", "url", d.cfg.URL, "err", err.Error())
	}
	return err
}

// up records that the directory answered.
func (d *Directory) up() {
	if d.down.Swap(false) {
		d.log.Info("directory reachable again", "url", d.cfg.URL)
	}
}

// Authenticate checks user's password by binding as the user's entry, on a
// TLS connection of its own, and returns the user with its groups and role.
// The user is found as LookupNT finds it (user@domain and domain\user
// accepted), without the cache. Every refusal returns ErrBadCredentials and
// logs its reason; an error wrapping ErrUnavailable means the directory
// could not answer.
func (d *Directory) Authenticate(ctx context.Context, user, password string) (User, error) {
	refuse := func(reason string) (User, error) {
		d.log.Info("directory sign-in refused", "user", user, "reason", reason)
		return User{}, ErrBadCredentials
	}
	name, ok := d.accountName("", user)
	switch {
	case !ok:
		return refuse("implausible user name or foreign domain")
	case password == "":
		return refuse("empty password")
	case len(password) > maxPasswordLen:
		return refuse("password too long")
	}
	e, err := d.findUser(ctx, name, d.authAttrs)
	if errors.Is(err, errNotFound) {
		return refuse(err.Error())
	}
	if err != nil {
		return User{}, err
	}
	if d.disabled(e) {
		return refuse("account disabled")
	}
	// The user's connection counts against PoolSize but is never pooled:
	// it is bound as the user.
	if err := d.pool.acquire(ctx); err != nil {
		return User{}, d.outage(ctx, "bind as user", err)
	}
	c, err := d.connect(ctx, e.DN, password)
	if c != nil {
		c.close()
	}
	d.pool.release()
	if errors.Is(err, errBind) {
		return refuse(err.Error())
	}
	if err != nil {
		return User{}, d.outage(ctx, "bind as user", err)
	}
	d.up()
	groups, err := d.groups(ctx, e)
	if err != nil {
		return User{}, err
	}
	u := User{Name: d.canonicalName(e, name), DN: e.DN, Groups: groups}
	u.Role = d.role(groups)
	return u, nil
}

// groups returns the DNs of the groups of entry e: its memberOf values and
// the entries under GroupBaseDN that match GroupFilter, without duplicates,
// sorted.
func (d *Directory) groups(ctx context.Context, e *ldap.Entry) ([]string, error) {
	var out []string
	var seen []*ldap.DN
	add := func(s string) {
		dn, err := ldap.ParseDN(s)
		if err != nil {
			d.log.Warn("directory: group DN malformed", "dn", e.DN, "group", s)
			return
		}
		if slices.ContainsFunc(seen, dn.EqualFold) {
			return
		}
		seen = append(seen, dn)
		out = append(out, s)
	}
	for _, g := range e.GetEqualFoldAttributeValues(memberOfAttr) {
		add(g)
	}
	req := ldap.NewSearchRequest(d.cfg.GroupBaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		maxGroups, d.timeLimit(), false, expand(d.cfg.GroupFilter, "{dn}", e.DN), []string{"1.1"}, nil)
	var res *ldap.SearchResult
	err := d.withConn(ctx, func(l *ldap.Conn) error {
		var err error
		res, err = l.Search(req)
		return err
	})
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded):
		d.log.Warn("directory: too many groups, some ignored", "dn", e.DN, "max", maxGroups)
	case err != nil:
		return nil, d.outage(ctx, "group search", err)
	}
	if res != nil {
		for _, g := range res.Entries {
			add(g.DN)
		}
	}
	slices.Sort(out)
	return out, nil
}

// role returns the role that groups give.
func (d *Directory) role(groups []string) Role {
	role := RoleNone
	for _, g := range groups {
		dn, err := ldap.ParseDN(g)
		if err != nil {
			continue
		}
		switch {
		case d.admin != nil && d.admin.EqualFold(dn):
			return RoleAdmin
		case d.ro != nil && d.ro.EqualFold(dn):
			role = RoleReadOnly
		}
	}
	return role
}
