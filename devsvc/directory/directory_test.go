package directory

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/certs/certstest"
	"github.com/opendus/opendus/devsvc/directory/dirtest"
	"github.com/opendus/opendus/ntlm"

	"github.com/opendus/opendus/internal/clocktest"
	"github.com/opendus/opendus/signin"
)

func TestLookupNT(t *testing.T) {
	e := newEnv(t)
	type want struct {
		acct    ntlm.Account
		unknown bool
	}
	found := func(user, password string, disabled bool) want {
		return want{acct: ntlm.Account{User: user, Domain: "OPENDUS", NTHash: ntlm.NTHash(password), Disabled: disabled}}
	}
	unknown := want{unknown: true}
	tests := []struct {
		domain, user string
		want         want
	}{
		{"", "alice", found("alice", alice.Password, false)},
		{"", "ALICE", found("alice", alice.Password, false)},
		{"OPENDUS", "alice", found("alice", alice.Password, false)},
		{"opendus", "Alice", found("alice", alice.Password, false)},
		{"", "alice@example.com", found("alice", alice.Password, false)},
		{"", "alice@EXAMPLE.COM", found("alice", alice.Password, false)},
		{"", `OPENDUS\alice`, found("alice", alice.Password, false)},
		{"", "bob", found("Bob", bob.Password, true)},          // D flag
		{"", "locked", found("locked", locked.Password, true)}, // L flag
		{"", "noflags", found("noflags", noFlags.Password, false)},
		{"", "badflags", found("badflags", badFlags.Password, true)}, // malformed flags disable
		{"", "carol", found("carol", carol.Password, false)},
		{"", "twin", found("twin", twin.Password, false)}, // the other twin is outside BaseDN

		{"", "nobody", unknown},
		{"EVIL", "alice", unknown},                // foreign domain
		{"", "alice@evil.example", unknown},       // foreign UPN suffix
		{"OPENDUS", "alice@example.com", unknown}, // '@' in a name with a domain
		{"", "mallory", unknown},                  // outside BaseDN
		{"", "nohash", unknown},
		{"", "badhash", unknown},
		{"", "", unknown},
		{"", "*", unknown},
		{"", "a*", unknown},
		{"", "al*ce", unknown},
		{"", "admin)(uid=*", unknown},
		{"", "*)(uid=*))(|(uid=*", unknown},
		{"", `\2a`, unknown},
		{"", "alice\x00", unknown},
		{"", "alice)", unknown},
		{"", "(uid=alice)", unknown},
		{"", " alice", unknown},
		{"", "alice ", unknown},
		{"", "alicé", unknown},
		{"", strings.Repeat("a", 65), unknown},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			d := open(t, e.config(tr.startTLS))
			for _, tt := range tests {
				t.Run(tt.domain+`\`+tt.user, func(t *testing.T) {
					got, err := d.LookupNT(t.Context(), tt.domain, tt.user)
					if tt.want.unknown {
						if !errors.Is(err, ntlm.ErrUnknownUser) {
							t.Fatalf("LookupNT(%q, %q) = %+v, %v; want ErrUnknownUser", tt.domain, tt.user, got, err)
						}
						return
					}
					if err != nil {
						t.Fatalf("LookupNT(%q, %q): %v", tt.domain, tt.user, err)
					}
					if diff := cmp.Diff(tt.want.acct, got); diff != "" {
						t.Errorf("LookupNT(%q, %q) mismatch (-want +got):\n%s", tt.domain, tt.user, diff)
					}
				})
			}
		})
	}
}

// TestAccountKey checks that a password sign-in names an account by the
// key its NTLM sign-ins count against, however the name is spelled.
func TestAccountKey(t *testing.T) {
	e := newEnv(t)
	d := open(t, e.config(false))
	for _, user := range []string{"alice", "ALICE", "alice@example.com", `OPENDUS\alice`, "bob", "carol"} {
		name := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(strings.ToLower(user), `opendus\`), "@example.com"))
		acct, err := d.LookupNT(t.Context(), "", name)
		if err != nil {
			t.Fatal(err)
		}
		want := signin.AccountKey(acct.Domain, acct.User)
		if got, ok := d.AccountKey(user); !ok || got != want {
			t.Errorf("AccountKey(%q) = %q, %v; want %q, the key of its NTLM sign-ins", user, got, ok, want)
		}
	}
	for _, user := range []string{"", "*", "alice@evil.example", " alice"} {
		if got, ok := d.AccountKey(user); ok {
			t.Errorf("AccountKey(%q) = %q, true; want no account", user, got)
		}
	}
}

// TestLookupNTAnyDomain checks that without Config.Domains any domain is
// accepted and accounts carry no domain, whatever the client sent.
func TestLookupNTAnyDomain(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(false)
	cfg.Domains = nil
	d := open(t, cfg)
	for _, domain := range []string{"", "OPENDUS", "ANYTHING"} {
		got, err := d.LookupNT(t.Context(), domain, "alice")
		if err != nil {
			t.Fatalf("LookupNT(%q, alice): %v", domain, err)
		}
		if got.User != "alice" || got.Domain != "" {
			t.Errorf("LookupNT(%q, alice) = %q\\%q, want \\alice", domain, got.Domain, got.User)
		}
	}
}

// TestBaseDN checks that twin, who has an entry inside and one outside
// ou=people, is unknown when BaseDN covers both: two entries for a name
// are never a choice.
func TestBaseDN(t *testing.T) {
	e := newEnv(t)
	logs := &logRecorder{}
	cfg := e.config(false)
	cfg.BaseDN = dirtest.Suffix
	cfg.Logger = slog.New(logs)
	d := open(t, cfg)
	if got, err := d.LookupNT(t.Context(), "", "twin"); !errors.Is(err, ntlm.ErrUnknownUser) {
		t.Errorf("LookupNT(twin) = %+v, %v; want ErrUnknownUser", got, err)
	}
	if got := logs.find(slog.LevelWarn, "several entries"); len(got) != 1 {
		t.Errorf("%d warnings about several entries, want 1", len(got))
	}
	if got, err := d.LookupNT(t.Context(), "", "mallory"); err != nil || got.NTHash != ntlm.NTHash(mallory.Password) {
		t.Errorf("LookupNT(mallory) with BaseDN %s = %+v, %v; want found", dirtest.Suffix, got, err)
	}
}

// TestSearchEscaping sends names with filter metacharacters straight to
// the search, past the plausibility check, and checks that none matches:
// escaped, they can only be compared as values. The control case shows
// that the same names unescaped would match several entries.
func TestSearchEscaping(t *testing.T) {
	e := newEnv(t)
	d := open(t, e.config(false))
	names := []string{"*", "a*", "*e", "al*ce", "admin)(uid=*", "*)(uid=*))(|(uid=*", `\2a`, `\*`, "alice\x00", "alice)(|(uid=*)", "*)(objectClass=*"}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			ent, err := d.findUser(t.Context(), name, d.lookupAttrs)
			if !errors.Is(err, errNotFound) {
				t.Errorf("findUser(%q) = %v, %v; want errNotFound", name, ent, err)
			}
		})
	}
	// Control: unescaped, "*" matches every user.
	var n int
	err := d.withConn(t.Context(), func(l *ldap.Conn) error {
		res, err := l.Search(ldap.NewSearchRequest(dirtest.PeopleDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			strings.ReplaceAll(DefaultUserFilter, "{user}", "*"), []string{"1.1"}, nil))
		if res != nil {
			n = len(res.Entries)
		}
		return err
	})
	if err != nil || n < 5 {
		t.Fatalf("control search (uid=*) found %d entries, %v; want many", n, err)
	}
	if ent, err := d.findUser(t.Context(), "alice", d.lookupAttrs); err != nil || ent.DN != alice.DN() {
		t.Errorf("findUser(alice) = %v, %v; want %s", ent, err, alice.DN())
	}
}

func TestAuthenticate(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		user, password string
		want           User // zero: ErrBadCredentials
	}{
		{"alice", alice.Password, User{Name: "alice", DN: alice.DN(), Groups: []string{others.DN()}, Role: RoleNone}},
		{"ALICE@example.com", alice.Password, User{Name: "alice", DN: alice.DN(), Groups: []string{others.DN()}, Role: RoleNone}},
		{"carol", carol.Password, User{Name: "carol", DN: carol.DN(), Groups: []string{admins.DN()}, Role: RoleAdmin}}, // memberOf
		{"dave", dave.Password, User{Name: "dave", DN: dave.DN(), Groups: []string{readers.DN()}, Role: RoleReadOnly}},
		{"erin", erin.Password, User{Name: "erin", DN: erin.DN(), Groups: []string{admins.DN(), readers.DN()}, Role: RoleAdmin}},
		{"noflags", noFlags.Password, User{Name: "noflags", DN: noFlags.DN(), Role: RoleNone}},

		{"alice", "wrong", User{}},
		{"alice", "", User{}},
		{"alice", strings.Repeat("x", 2000), User{}},
		{"nobody", "whatever", User{}},
		{"bob", bob.Password, User{}},         // disabled
		{"locked", locked.Password, User{}},   // locked
		{"mallory", mallory.Password, User{}}, // outside BaseDN
		{"*", alice.Password, User{}},
		{"alice@evil.example", alice.Password, User{}},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			logs := &logRecorder{}
			cfg := e.config(tr.startTLS)
			cfg.Logger = slog.New(logs)
			d := open(t, cfg)
			for _, tt := range tests {
				t.Run(tt.user, func(t *testing.T) {
					got, err := d.Authenticate(t.Context(), tt.user, tt.password)
					if tt.want.DN == "" {
						if err != ErrBadCredentials {
							t.Fatalf("Authenticate(%q, %q) = %+v, %v; want ErrBadCredentials", tt.user, tt.password, got, err)
						}
						return
					}
					if err != nil {
						t.Fatalf("Authenticate(%q): %v", tt.user, err)
					}
					if diff := cmp.Diff(tt.want, got); diff != "" {
						t.Errorf("Authenticate(%q) mismatch (-want +got):\n%s", tt.user, diff)
					}
				})
			}
			if got := logs.find(slog.LevelInfo, "sign-in refused"); len(got) != 9 {
				t.Errorf("%d refusals logged, want 9", len(got))
			}
		})
	}
}

// TestOutage stops slapd under a Directory: lookups and sign-ins fail
// closed with ErrUnavailable, not as unknown users or bad passwords, one
// Error is logged, and both work again once slapd is back, on the same
// Directory.
func TestOutage(t *testing.T) {
	e := newEnv(t)
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			logs := &logRecorder{}
			cfg := e.config(tr.startTLS)
			cfg.Logger = slog.New(logs)
			cfg.CacheTTL = -1
			d := open(t, cfg)
			if _, err := d.LookupNT(t.Context(), "", "alice"); err != nil {
				t.Fatalf("LookupNT(alice) before the outage: %v", err)
			}

			e.srv.Stop()
			for _, user := range []string{"alice", "nobody", "dave"} {
				_, err := d.LookupNT(t.Context(), "", user)
				if !errors.Is(err, ErrUnavailable) || errors.Is(err, ntlm.ErrUnknownUser) {
					t.Errorf("LookupNT(%s) with slapd stopped: %v; want ErrUnavailable, not ErrUnknownUser", user, err)
				}
			}
			if _, err := d.Authenticate(t.Context(), "alice", alice.Password); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrBadCredentials) {
				t.Errorf("Authenticate(alice) with slapd stopped: %v; want ErrUnavailable", err)
			}
			if got := logs.find(slog.LevelError, "directory unreachable"); len(got) != 1 {
				t.Errorf("%d Error records about the outage, want 1", len(got))
			} else if got[0].attrs["url"] != cfg.URL {
				t.Errorf("outage logged with url %q, want %q", got[0].attrs["url"], cfg.URL)
			}

			e.srv.Restart()
			if got, err := d.LookupNT(t.Context(), "", "dave"); err != nil || got.NTHash != ntlm.NTHash(dave.Password) {
				t.Errorf("LookupNT(dave) after restart = %+v, %v", got, err)
			}
			if _, err := d.LookupNT(t.Context(), "", "nobody"); !errors.Is(err, ntlm.ErrUnknownUser) {
				t.Errorf("LookupNT(nobody) after restart: %v, want ErrUnknownUser", err)
			}
			if _, err := d.Authenticate(t.Context(), "alice", alice.Password); err != nil {
				t.Errorf("Authenticate(alice) after restart: %v", err)
			}
			if got := logs.find(slog.LevelInfo, "reachable again"); len(got) != 1 {
				t.Errorf("%d records about the recovery, want 1", len(got))
			}
		})
	}
}

// TestRestartReusesPool checks that a restart of slapd between two lookups
// costs no failed lookup: the dead pooled connection is replaced.
func TestRestartReusesPool(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(false)
	cfg.CacheTTL = -1
	d := open(t, cfg)
	for i := range 3 {
		if _, err := d.LookupNT(t.Context(), "", "alice"); err != nil {
			t.Fatalf("lookup %d: %v", i, err)
		}
		e.srv.Stop()
		e.srv.Restart()
	}
}

// TestHang freezes slapd (SIGSTOP) so that TCP still connects but nothing
// answers: lookups must fail within Timeout with ErrUnavailable, on a
// pooled connection and on a new one, and a cancelled context must end a
// lookup at once.
func TestHang(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(true)
	cfg.CacheTTL = -1
	cfg.Timeout = time.Second
	d := open(t, cfg)
	if _, err := d.LookupNT(t.Context(), "", "alice"); err != nil {
		t.Fatal(err)
	}
	e.srv.Pause()
	defer e.srv.Resume()
	for i := range 2 {
		start := time.Now()
		_, err := d.LookupNT(t.Context(), "", "alice")
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("lookup %d on a frozen slapd: %v, want ErrUnavailable", i, err)
		}
		// A reused connection times out, then the retry's connect does:
		// two Timeouts at most, plus scheduling slack.
		if el := time.Since(start); el > 2*cfg.Timeout+5*time.Second {
			t.Errorf("lookup %d took %v, want about %v", i, el, 2*cfg.Timeout)
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	cfg.Timeout = time.Minute
	d2 := open(t, cfg)
	done := make(chan error, 1)
	go func() {
		_, err := d2.LookupNT(ctx, "", "alice")
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled lookup: %v, want ErrUnavailable and context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelled lookup did not return")
	}

	e.srv.Resume()
	if _, err := d.LookupNT(t.Context(), "", "alice"); err != nil {
		t.Errorf("lookup after thaw: %v", err)
	}
}

// TestSilentServer points a Directory at a listener that accepts and never
// answers: the TLS handshake (LDAPS) or the StartTLS request must time out.
func TestSilentServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			scheme := "ldaps://"
			if tr.startTLS {
				scheme = "ldap://"
			}
			d := open(t, Config{URL: scheme + l.Addr().String(), StartTLS: tr.startTLS, BindDN: "cn=x", BindPassword: "x", BaseDN: "dc=x", Timeout: 200 * time.Millisecond})
			start := time.Now()
			_, err := d.LookupNT(t.Context(), "", "alice")
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("LookupNT: %v, want ErrUnavailable", err)
			}
			if el := time.Since(start); el > 3*time.Second {
				t.Errorf("LookupNT took %v with Timeout 200ms", el)
			}
		})
	}
}

// TestTLSVerified checks that the directory's certificate is verified: a
// Directory that trusts another CA, or expects another name, cannot look
// anyone up, and says the directory is unavailable.
func TestTLSVerified(t *testing.T) {
	e := newEnv(t)
	other := certstest.NewStore(t, certs.Config{})
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			cfg := e.config(tr.startTLS)
			cfg.RootCAs = other.CertPool()
			d := open(t, cfg)
			if _, err := d.LookupNT(t.Context(), "", "alice"); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
				t.Errorf("LookupNT trusting another CA: %v, want ErrUnavailable about the certificate", err)
			}

			cfg = e.config(tr.startTLS)
			cfg.URL = strings.Replace(e.config(tr.startTLS).URL, "127.0.0.1", "localhost", 1)
			d = open(t, cfg)
			if _, err := d.LookupNT(t.Context(), "", "alice"); err != nil {
				t.Errorf("LookupNT via localhost (a name in the certificate): %v", err)
			}
		})
	}
}

// TestCache checks with a fake clock that found and unknown users are
// remembered for CacheTTL, while slapd is stopped, and not after.
func TestCache(t *testing.T) {
	e := newEnv(t)
	clock := &clocktest.Clock{T: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	cfg := e.config(false)
	cfg.Now = clock.Now
	cfg.CacheTTL = 30 * time.Second
	d := open(t, cfg)
	if _, err := d.LookupNT(t.Context(), "", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.LookupNT(t.Context(), "", "nobody"); !errors.Is(err, ntlm.ErrUnknownUser) {
		t.Fatal(err)
	}
	e.srv.Stop()

	clock.Advance(29 * time.Second)
	if got, err := d.LookupNT(t.Context(), "", "ALICE"); err != nil || got.User != "alice" {
		t.Errorf("cached LookupNT(ALICE) = %+v, %v; want alice from the cache", got, err)
	}
	if _, err := d.LookupNT(t.Context(), "", "nobody"); !errors.Is(err, ntlm.ErrUnknownUser) {
		t.Errorf("cached LookupNT(nobody): %v, want ErrUnknownUser from the cache", err)
	}

	clock.Advance(time.Second)
	for _, user := range []string{"alice", "nobody"} {
		if _, err := d.LookupNT(t.Context(), "", user); !errors.Is(err, ErrUnavailable) {
			t.Errorf("LookupNT(%s) after CacheTTL with slapd stopped: %v, want ErrUnavailable", user, err)
		}
	}
	// Outages are not cached.
	e.srv.Restart()
	if _, err := d.LookupNT(t.Context(), "", "alice"); err != nil {
		t.Errorf("LookupNT(alice) after restart: %v", err)
	}
}

func TestCacheBound(t *testing.T) {
	clock := &clocktest.Clock{T: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	c := newCache(time.Minute, 3, clock.Now)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		c.put(k, ntlm.Account{User: k}, true)
		clock.Advance(time.Second)
	}
	if got := c.len(); got != 3 {
		t.Errorf("cache holds %d names, want 3", got)
	}
	if e, ok := c.get("e"); !ok || e.acct.User != "e" {
		t.Errorf("get(e) = %+v, %v; want the last name put", e, ok)
	}
	clock.Advance(time.Minute)
	c.put("f", ntlm.Account{User: "f"}, false)
	if got := c.len(); got != 1 {
		t.Errorf("after expiry and a put, cache holds %d names, want 1", got)
	}
	if _, ok := c.get("f"); !ok {
		t.Error("get(f) missed")
	}
	off := newCache(-1, 3, clock.Now)
	off.put("a", ntlm.Account{}, true)
	if _, ok := off.get("a"); ok {
		t.Error("cache with negative TTL returned an entry")
	}
}

// TestConcurrent runs many lookups and sign-ins at once through a pool of
// two connections.
func TestConcurrent(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(true)
	cfg.PoolSize = 2
	cfg.CacheTTL = -1
	d := open(t, cfg)
	users := []dirtest.User{alice, carol, dave, erin}
	errs := make(chan error, 40)
	for i := range cap(errs) {
		go func() {
			u := users[i%len(users)]
			if i%4 == 0 {
				_, err := d.Authenticate(t.Context(), u.UID, u.Password)
				errs <- err
				return
			}
			a, err := d.LookupNT(t.Context(), "", u.UID)
			if err == nil && a.NTHash != ntlm.NTHash(u.Password) {
				err = errors.New(u.UID + ": wrong hash")
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := len(d.pool.idle); n > cfg.PoolSize {
		t.Errorf("%d idle connections, want at most %d", n, cfg.PoolSize)
	}
}

func TestClose(t *testing.T) {
	e := newEnv(t)
	d := open(t, e.config(false))
	if _, err := d.LookupNT(t.Context(), "", "alice"); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if _, err := d.LookupNT(t.Context(), "", "dave"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("LookupNT after Close: %v, want ErrUnavailable", err)
	}
}

func TestNew(t *testing.T) {
	ok := Config{URL: "ldaps://dir.example.com", BindDN: "cn=svc,dc=example,dc=com", BindPassword: "pw", BaseDN: "ou=people,dc=example,dc=com"}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string // "" means New succeeds
		addr    string
	}{
		{"ldaps default port", func(*Config) {}, "", "dir.example.com:636"},
		{"ldaps port", func(c *Config) { c.URL = "ldaps://dir.example.com:1636/" }, "", "dir.example.com:1636"},
		{"starttls default port", func(c *Config) { c.URL, c.StartTLS = "ldap://dir.example.com", true }, "", "dir.example.com:389"},
		{"ipv6", func(c *Config) { c.URL = "ldaps://[::1]:1636" }, "", "[::1]:1636"},
		{"plain ldap", func(c *Config) { c.URL = "ldap://dir.example.com" }, "needs StartTLS", ""},
		{"ldaps with StartTLS", func(c *Config) { c.StartTLS = true }, "StartTLS is for ldap://", ""},
		{"ldapi", func(c *Config) { c.URL = "ldapi:///run/slapd/ldapi" }, "scheme", ""},
		{"no URL", func(c *Config) { c.URL = "" }, "scheme", ""},
		{"no host", func(c *Config) { c.URL = "ldaps://" }, "want scheme://host", ""},
		{"URL with a DN", func(c *Config) { c.URL = "ldaps://dir/dc=example,dc=com" }, "want scheme://host", ""},
		{"no BindDN", func(c *Config) { c.BindDN = "" }, "BindDN", ""},
		{"no BindPassword", func(c *Config) { c.BindPassword = "" }, "BindDN", ""},
		{"no BaseDN", func(c *Config) { c.BaseDN = "" }, "BaseDN", ""},
		{"bad BaseDN", func(c *Config) { c.BaseDN = "not a dn" }, "BaseDN", ""},
		{"bad AdminGroup", func(c *Config) { c.AdminGroup = "nope" }, "AdminGroup", ""},
		{"filter without {user}", func(c *Config) { c.UserFilter = "(uid=alice)" }, "{user}", ""},
		{"bad filter", func(c *Config) { c.UserFilter = "(uid={user}" }, "UserFilter", ""},
		{"group filter without {dn}", func(c *Config) { c.GroupFilter = "(member=x)" }, "{dn}", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mod(&cfg)
			d, err := New(cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New: %v, want an error about %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer d.Close()
			if d.addr != tt.addr {
				t.Errorf("addr = %q, want %q", d.addr, tt.addr)
			}
		})
	}
}

// TestPing: Ping answers nil while slapd serves, ErrUnavailable while it
// is stopped, and nil again once it is back.
func TestPing(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(false)
	cfg.Timeout = 2 * time.Second
	d := open(t, cfg)
	if err := d.Ping(t.Context()); err != nil {
		t.Fatalf("Ping with slapd up: %v", err)
	}
	e.srv.Stop()
	if err := d.Ping(t.Context()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ping with slapd stopped: %v, want ErrUnavailable", err)
	}
	e.srv.Restart()
	if err := d.Ping(t.Context()); err != nil {
		t.Errorf("Ping after the restart: %v", err)
	}
}
