// Package dirtest runs a real OpenLDAP slapd for tests: its own
// configuration and mdb database in a temporary directory, the Samba schema
// subset that package directory reads, TLS with a certificate from package
// certs (LDAPS on one loopback port, StartTLS on another), and the users and
// groups a test asks for.
//
// The directory looks like a small Samba domain:
//
//	dc=example,dc=com
//	  ou=services   cn=opendus: the service account (ServiceDN, ServicePassword)
//	  ou=people     users (inetOrgPerson + sambaSamAccount)
//	  ou=contractors, ou=...  users a test puts elsewhere (User.OU)
//	  ou=groups     groupOfNames
//
// Access control is what a careful administrator would set: only the service
// account reads sambaNTPassword, anyone may bind with userPassword, and only
// bound users read entries. slapd refuses simple binds on connections
// without TLS (security simple_bind), so a client that would bind in plain
// text fails.
//
// The memberof overlay is loaded so that entries may carry memberOf; since the
// data is loaded with slapadd, which bypasses overlays, memberOf holds
// exactly the values of User.MemberOf, independently of group members.
package dirtest

import (
	"bufio"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/internal/testtool"
	"github.com/opendus/opendus/ntlm"
)

//go:embed samba.schema
var sambaSchema string

// The fixed names of the test directory.
const (
	Suffix          = "dc=example,dc=com"
	PeopleDN        = "ou=people," + Suffix
	GroupsDN        = "ou=groups," + Suffix
	ServiceDN       = "cn=opendus,ou=services," + Suffix
	ServicePassword = "service bind secret"
)

// User is a user entry: inetOrgPerson and sambaSamAccount.
type User struct {
	UID      string
	Password string   // userPassword and, unless NTHash is set, the NT hash
	NTHash   string   // sambaNTPassword stored as is; "" means the hash of Password, "-" none
	Flags    string   // sambaAcctFlags; "" means "[U          ]", "-" none
	OU       string   // organizational unit under Suffix; "" means people
	MemberOf []string // memberOf values
}

// DN returns the user's distinguished name.
func (u User) DN() string {
	ou := u.OU
	if ou == "" {
		ou = "people"
	}
	return "uid=" + u.UID + ",ou=" + ou + "," + Suffix
}

// Group is a groupOfNames under GroupsDN.
type Group struct {
	CN      string
	Members []string // DNs; a groupOfNames needs at least one
}

// DN returns the group's distinguished name.
func (g Group) DN() string { return "cn=" + g.CN + "," + GroupsDN }

// Options are the contents of the directory.
type Options struct {
	Users  []User
	Groups []Group
}

// startTimeout bounds how long slapd may take to start or stop.
const startTimeout = 20 * time.Second

// Server is a running slapd. Its methods must be called from the test's
// goroutine.
type Server struct {
	LDAPS string // ldaps://127.0.0.1:port/
	LDAP  string // ldap://127.0.0.1:port/ (StartTLS)

	tb      testing.TB
	slapd   string
	dir     string
	conf    string
	logPath string
	ports   [2]string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
	paused  bool
}

// Start writes the configuration and the data under tb.TempDir(), loads the
// data with slapadd and starts slapd with the server certificate of store.
// It skips the test when slapd is not installed (fails under CI=true), and
// stops slapd when the test ends.
func Start(tb testing.TB, store *certs.Store, opts Options) *Server {
	tb.Helper()
	s := &Server{tb: tb, slapd: testtool.Need(tb, "slapd"), dir: tb.TempDir()}
	slapadd := testtool.Need(tb, "slapadd")
	s.conf = filepath.Join(s.dir, "slapd.conf")
	s.logPath = filepath.Join(s.dir, "slapd.log")
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatalf("dirtest: %v", err)
		}
	}
	must(os.Mkdir(filepath.Join(s.dir, "db"), 0o700))
	must(os.WriteFile(filepath.Join(s.dir, "samba.schema"), []byte(sambaSchema), 0o644))
	must(os.WriteFile(s.conf, []byte(s.config(store.Dir())), 0o600))
	ldif := filepath.Join(s.dir, "data.ldif")
	must(os.WriteFile(ldif, []byte(data(opts)), 0o600))
	if out, err := exec.Command(slapadd, "-q", "-f", s.conf, "-l", ldif).CombinedOutput(); err != nil {
		tb.Fatalf("dirtest: slapadd: %v\n%s", err, out)
	}
	tb.Cleanup(func() {
		s.Stop()
		if tb.Failed() {
			s.dumpLog()
		}
	})
	// The ports are found free, closed, then given to slapd: another
	// process may take one in between, so try a few times.
	var err error
	for range 3 {
		s.ports = [2]string{freePort(tb), freePort(tb)}
		if err = s.start(); err == nil {
			return s
		}
	}
	tb.Fatalf("dirtest: %v", err)
	return nil
}

// Stop stops slapd (SIGTERM, then SIGKILL if it lingers). It does nothing
// if slapd is not running.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.Resume()
	s.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(startTimeout)
	defer t.Stop()
	select {
	case <-s.exited:
	case <-t.C:
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// Pause freezes slapd (SIGSTOP): the kernel still accepts TCP connections
// for it, but nothing answers, as with a hung server. Resume undoes it.
func (s *Server) Pause() {
	s.tb.Helper()
	if s.cmd == nil {
		s.tb.Fatal("dirtest: Pause while stopped")
	}
	s.paused = true
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.tb.Fatalf("dirtest: pause: %v", err)
	}
	// The signal is delivered asynchronously: wait until every thread is
	// stopped, or a request sent now could still be answered.
	if err := waitStopped(s.cmd.Process.Pid, startTimeout); err != nil {
		s.tb.Fatalf("dirtest: pause: %v", err)
	}
}

// Resume lets a paused slapd run again. It does nothing if it is not
// paused.
func (s *Server) Resume() {
	s.tb.Helper()
	if s.cmd == nil || !s.paused {
		return
	}
	s.paused = false
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		s.tb.Fatalf("dirtest: resume: %v", err)
	}
}

// Restart starts slapd again, on the same ports and with the same data,
// after Stop.
func (s *Server) Restart() {
	s.tb.Helper()
	if s.cmd != nil {
		s.tb.Fatal("dirtest: Restart while running")
	}
	if err := s.start(); err != nil {
		s.tb.Fatalf("dirtest: restart: %v", err)
	}
}

// start runs slapd in the foreground (-d stats) on s.ports and waits until
// it logs that it is serving.
func (s *Server) start() error {
	s.LDAPS = "ldaps://127.0.0.1:" + s.ports[0] + "/"
	s.LDAP = "ldap://127.0.0.1:" + s.ports[1] + "/"
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	// Debug levels stats (256: operations) and conns (8: the listeners
	// being added, which is when slapd is ready).
	cmd := exec.Command(s.slapd, "-f", s.conf, "-h", s.LDAPS+" "+s.LDAP, "-d", "264")
	cmd.SysProcAttr = sysProcAttr()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logf.Close()
		return err
	}
	cmd.Stdout = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start slapd: %w", err)
	}
	ready := make(chan struct{})
	exited := make(chan struct{})
	var once sync.Once
	go func() {
		// Copy the log to the file, and signal when slapd has added both
		// listeners to its event loop ("daemon: added 6r listener=0x..."),
		// after listen(2): "slapd starting" comes before that.
		sc := bufio.NewScanner(stderr)
		listeners := 0
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if strings.Contains(line, "daemon: added ") && strings.Contains(line, "listener=0x") {
				if listeners++; listeners == 2 {
					once.Do(func() { close(ready) })
				}
			}
		}
		io.Copy(logf, stderr)
		cmd.Wait()
		logf.Close()
		close(exited)
	}()
	t := time.NewTimer(startTimeout)
	defer t.Stop()
	select {
	case <-ready:
		s.cmd, s.exited = cmd, exited
		for _, p := range s.ports {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+p, startTimeout)
			if err != nil {
				s.Stop()
				return fmt.Errorf("slapd said it listens, yet: %w", err)
			}
			c.Close()
		}
		return nil
	case <-exited:
		return fmt.Errorf("slapd exited before serving (%v); log: %s", cmd.ProcessState, s.logTail())
	case <-t.C:
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("slapd did not start within %v; log: %s", startTimeout, s.logTail())
	}
}

// logTail returns the end of slapd's log.
func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func (s *Server) dumpLog() {
	s.tb.Logf("slapd log (end):\n%s", s.logTail())
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("dirtest: %v", err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// config returns slapd.conf, with the TLS files of the certs directory
// certDir.
func (s *Server) config(certDir string) string {
	q := func(p string) string { return `"` + p + `"` }
	return fmt.Sprintf(`# slapd.conf written by dirtest
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include %[1]s
pidfile %[2]s
argsfile %[3]s
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
TLSCertificateFile %[4]s
TLSCertificateKeyFile %[5]s
TLSCACertificateFile %[6]s
security simple_bind=64

database mdb
maxsize 16777216
suffix "%[7]s"
rootdn "cn=admin,%[7]s"
directory %[8]s
overlay memberof

access to attrs=userPassword
	by anonymous auth
	by * none
access to attrs=sambaNTPassword
	by dn.exact="%[9]s" read
	by * none
access to *
	by users read
	by * none
`, q(filepath.Join(s.dir, "samba.schema")), q(filepath.Join(s.dir, "slapd.pid")), q(filepath.Join(s.dir, "slapd.args")),
		q(filepath.Join(certDir, certs.ServerCertFile)), q(filepath.Join(certDir, certs.ServerKeyFile)), q(filepath.Join(certDir, certs.CACertFile)),
		Suffix, q(filepath.Join(s.dir, "db")), ServiceDN)
}

// data returns the LDIF of the directory.
func data(opts Options) string {
	var b strings.Builder
	entry := func(dn string, attrs ...string) {
		attr(&b, "dn", dn)
		for i := 0; i+1 < len(attrs); i += 2 {
			attr(&b, attrs[i], attrs[i+1])
		}
		b.WriteString("\n")
	}
	entry(Suffix, "objectClass", "dcObject", "objectClass", "organization", "dc", "example", "o", "Example")
	entry("ou=services,"+Suffix, "objectClass", "organizationalUnit", "ou", "services")
	entry(ServiceDN, "objectClass", "organizationalRole", "objectClass", "simpleSecurityObject",
		"cn", "opendus", "userPassword", ServicePassword)
	ous := map[string]bool{"services": true}
	addOU := func(ou string) {
		if !ous[ou] {
			ous[ou] = true
			entry("ou="+ou+","+Suffix, "objectClass", "organizationalUnit", "ou", ou)
		}
	}
	addOU("people")
	addOU("groups")
	for i, u := range opts.Users {
		if u.OU != "" {
			addOU(u.OU)
		}
		attrs := []string{"objectClass", "inetOrgPerson", "objectClass", "sambaSamAccount",
			"uid", u.UID, "cn", u.UID, "sn", u.UID,
			"sambaSID", fmt.Sprintf("S-1-5-21-3623811015-3361044348-30300820-%d", 1000+i)}
		if u.Password != "" {
			attrs = append(attrs, "userPassword", u.Password)
		}
		switch u.NTHash {
		case "":
			h := ntlm.NTHash(u.Password)
			attrs = append(attrs, "sambaNTPassword", strings.ToUpper(hex.EncodeToString(h[:])))
		case "-":
		default:
			attrs = append(attrs, "sambaNTPassword", u.NTHash)
		}
		switch u.Flags {
		case "":
			attrs = append(attrs, "sambaAcctFlags", "[U          ]")
		case "-":
		default:
			attrs = append(attrs, "sambaAcctFlags", u.Flags)
		}
		for _, g := range u.MemberOf {
			attrs = append(attrs, "memberOf", g)
		}
		entry(u.DN(), attrs...)
	}
	for _, g := range opts.Groups {
		attrs := []string{"objectClass", "groupOfNames", "cn", g.CN}
		for _, m := range g.Members {
			attrs = append(attrs, "member", m)
		}
		entry(g.DN(), attrs...)
	}
	return b.String()
}

// attr writes one LDIF line, base64-encoding values that RFC 2849 does not
// allow as they are.
func attr(b *strings.Builder, name, value string) {
	safe := value == "" || (value[0] != ' ' && value[0] != ':' && value[0] != '<' && value[len(value)-1] != ' ')
	for i := 0; safe && i < len(value); i++ {
		safe = value[i] >= 0x20 && value[i] < 0x7f
	}
	if safe {
		fmt.Fprintf(b, "%s: %s\n", name, value)
	} else {
		fmt.Fprintf(b, "%s:: %s\n", name, base64.StdEncoding.EncodeToString([]byte(value)))
	}
}
