package directory

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/certs/certstest"
	"github.com/opendus/opendus/devsvc/directory/dirtest"
)

// The test directory's users.
var (
	admins  = dirtest.Group{CN: "opendus-admins", Members: []string{erin.DN()}}
	readers = dirtest.Group{CN: "opendus-readers", Members: []string{dave.DN(), erin.DN()}}
	others  = dirtest.Group{CN: "staff", Members: []string{alice.DN()}}

	alice    = dirtest.User{UID: "alice", Password: "correct horse"}
	bob      = dirtest.User{UID: "Bob", Password: "hunter2", Flags: "[DU         ]"}
	carol    = dirtest.User{UID: "carol", Password: "carol's secret", MemberOf: []string{admins.DN()}}
	dave     = dirtest.User{UID: "dave", Password: "dave's secret"}
	erin     = dirtest.User{UID: "erin", Password: "erin's secret"}
	locked   = dirtest.User{UID: "locked", Password: "pw", Flags: "[UL         ]"}
	noFlags  = dirtest.User{UID: "noflags", Password: "pw", Flags: "-"}
	badFlags = dirtest.User{UID: "badflags", Password: "pw", Flags: "U"}
	noHash   = dirtest.User{UID: "nohash", Password: "pw", NTHash: "-"}
	badHash  = dirtest.User{UID: "badhash", Password: "pw", NTHash: "not a hash"}
	mallory  = dirtest.User{UID: "mallory", Password: "mallory's secret", OU: "contractors"}
	twin     = dirtest.User{UID: "twin", Password: "twin one"}
	twin2    = dirtest.User{UID: "twin", Password: "twin two", OU: "contractors"}
)

var testUsers = dirtest.Options{
	Users:  []dirtest.User{alice, bob, carol, dave, erin, locked, noFlags, badFlags, noHash, badHash, mallory, twin, twin2},
	Groups: []dirtest.Group{admins, readers, others},
}

// env is a running slapd and the certificates it presents.
type env struct {
	store *certs.Store
	srv   *dirtest.Server
}

func newEnv(t testing.TB) *env {
	t.Helper()
	store := certstest.NewStore(t, certs.Config{})
	return &env{store: store, srv: dirtest.Start(t, store, testUsers)}
}

// transports are the two ways to reach slapd with TLS.
var transports = []struct {
	name     string
	startTLS bool
}{{"ldaps", false}, {"starttls", true}}

// config returns a Config for e over LDAPS or StartTLS.
func (e *env) config(startTLS bool) Config {
	u := e.srv.LDAPS
	if startTLS {
		u = e.srv.LDAP
	}
	return Config{
		URL:           strings.TrimSuffix(u, "/"),
		StartTLS:      startTLS,
		RootCAs:       e.store.CertPool(),
		BindDN:        dirtest.ServiceDN,
		BindPassword:  dirtest.ServicePassword,
		BaseDN:        dirtest.PeopleDN,
		GroupBaseDN:   dirtest.Suffix,
		AdminGroup:    admins.DN(),
		ReadOnlyGroup: readers.DN(),
		Domains:       []string{"OPENDUS", "example.com"},
		Timeout:       5 * time.Second,
	}
}

// open returns a Directory with cfg, closed when the test ends.
func open(t testing.TB, cfg Config) *Directory {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// logRecorder is a slog.Handler that keeps every record's level, message
// and attributes.
type logRecorder struct {
	mu      sync.Mutex
	records []logRecord
}

type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, rec)
	return nil
}

// find returns the records at level whose message contains msg.
func (l *logRecorder) find(level slog.Level, msg string) []logRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []logRecord
	for _, r := range l.records {
		if r.level == level && strings.Contains(r.msg, msg) {
			out = append(out, r)
		}
	}
	return out
}
