// Package cli is the devsvc command line: `devsvc init` and `devsvc serve`
// for the service itself, and the admin commands (import, rules, approve,
// ...) that call the admin API of a running server. Main is what
// cmd/devsvc runs; tests call it in-process too.
package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opendus/opendus/datadir"

	"golang.org/x/term"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/devsvc/adminapi"
)

// env is what a command runs with: its streams and the common flags.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	data    string
	server  string
	cert    string
	key     string
	ca      string
	json    bool
	timeout time.Duration
	user    string
}

type command struct {
	name, args, summary string
	help                string
	// hidden keeps it out of the usage and completion (devsvc man).
	hidden bool
	// hiddenFlags are flags kept out of the usage and completion: for
	// tests and rehearsals, not for admins.
	hiddenFlags []string
	// setup registers the command's own flags on fs and returns the
	// function that runs it once they are parsed.
	setup func(fs *flag.FlagSet) runFunc
}

type runFunc func(ctx context.Context, e *env, args []string) error

var commands []*command

func init() {
	commands = []*command{
		initCmd, serveCmd,
		importCmd, bundleCmd, rulesCmd, approveCmd, rolloutCmd, rolloutsCmd, rejectCmd, restoreCmd, removeCmd, purgeCmd,
		testDevicesCmd, accountsCmd, adminsCmd, sitesCmd, devicesCmd, alarmsCmd, historyCmd, statusCmd, backupCmd, restoreBackupCmd,
		certsCmd, replicasCmd, keysCmd, dnsCmd, cabCmd, versionCmd, completionCmd, manCmd,
	}
}

const usageHead = `devsvc runs and manages OpenDUS, the device update service for UC desk
phones and RoundTable conference units.

Usage:
  devsvc [--data DIR] <command> [arguments]

Start here:
  devsvc init --data ./dus --domain contoso.com   create a data directory
  devsvc serve --data ./dus                       run the service
  devsvc --data ./dus import ./UCUpdates          import firmware (pending)
  devsvc --data ./dus rules                       see what is pending/approved
  devsvc --data ./dus approve UCPhone/Polycom/CX600/A/ENU
  devsvc --data ./dus rollout start UCPhone/Polycom/CX600/A/ENU   or in waves

Commands:
`

const usageTail = `
Common flags (before or after the command):
  --data DIR      data directory (default $OPENDUS_DATA, else ./data); admin
                  commands find the running server and its admin certificate
                  there
  --server ADDR   admin API address, instead of the one in DIR
  --cert FILE     admin client certificate (PEM), with --key and --ca
  --key FILE      its private key
  --ca FILE       the service CA certificate the server's must chain to
  --json          print JSON for scripts instead of tables
  --version       print the version (devsvc version)
  --timeout D     give up on an admin call after D (default 10m for import
                  and backup, 30s otherwise)
  --user NAME     sign in with a directory account instead of a certificate;
                  the password comes from $OPENDUS_ADMIN_PASSWORD or a prompt.
                  Members of the admin group may change things, members of
                  the read-only group may only look

Run "devsvc <command> --help" for a command's own flags and examples.
`

func usage(w io.Writer) {
	fmt.Fprint(w, usageHead)
	for _, c := range commands {
		if !c.hidden {
			fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprint(w, usageTail)
}

// Main runs the devsvc command line with args (without the program name)
// and returns the exit status: 0 on success, 1 on failure, 2 on misuse.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	global := flag.NewFlagSet("devsvc", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	e.register(global)
	showVersion := global.Bool("version", false, "print the version")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "devsvc: %v\n", err)
		usage(stderr)
		return 2
	}
	rest := global.Args()
	if *showVersion {
		rest = []string{"version"}
	}
	if len(rest) == 0 {
		usage(stderr)
		return 2
	}
	if rest[0] == "help" {
		if len(rest) > 1 {
			rest = []string{rest[1], "--help"}
		} else {
			usage(stdout)
			return 0
		}
	}
	var cmd *command
	for _, c := range commands {
		if c.name == rest[0] {
			cmd = c
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "devsvc: unknown command %q; run devsvc --help for the list\n", rest[0])
		return 2
	}
	fs := flag.NewFlagSet("devsvc "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	e.register(fs)
	run := cmd.setup(fs)
	// A command parses its own flags unless it passes them on (cab).
	cmdArgs := rest[1:]
	if cmd.name != "cab" {
		if err := parseInterspersed(fs, cmdArgs); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				cmd.usage(stdout, fs)
				return 0
			}
			fmt.Fprintf(stderr, "devsvc %s: %v\n", cmd.name, err)
			cmd.usage(stderr, fs)
			return 2
		}
		cmdArgs = fs.Args()
	}
	if e.data == "" {
		e.data = os.Getenv("OPENDUS_DATA")
	}
	if e.data == "" {
		e.data = "data"
	}
	if err := run(ctx, e, cmdArgs); err != nil {
		var code exitCode
		if errors.As(err, &code) {
			return int(code)
		}
		var u usageError
		if errors.As(err, &u) {
			fmt.Fprintf(stderr, "devsvc %s: %v\n", cmd.name, err)
			cmd.usage(stderr, fs)
			return 2
		}
		fmt.Fprintf(stderr, "devsvc %s: %v\n", cmd.name, err)
		return 1
	}
	return 0
}

// usageError is a misuse of a command: its usage is printed with it.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

func (c *command) usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: devsvc %s %s\n\n%s\n", c.name, c.args, c.summary)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.help))
	}
	var own []string
	fs.VisitAll(func(f *flag.Flag) {
		switch f.Name {
		case "data", "server", "cert", "key", "ca", "json", "timeout", "user":
			return
		}
		if slices.Contains(c.hiddenFlags, f.Name) {
			return
		}
		name, use := flag.UnquoteUsage(f)
		line := "  " + flagSpelling(f.Name)
		if name != "" {
			line += " " + name
		}
		line += "\n      " + use
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
			line += " (default " + f.DefValue + ")"
		}
		own = append(own, line)
	})
	if len(own) > 0 {
		fmt.Fprintf(w, "\nFlags:\n%s\n", strings.Join(own, "\n"))
	}
	fmt.Fprint(w, "\nCommon flags: --data DIR, --server ADDR, --cert/--key/--ca FILE, --user NAME, --json, --timeout D (devsvc --help).\n")
}

// flagSpelling is how help, usage lines and completion spell a flag: a
// single letter with one dash (-o), a name with two (--data). Both parse.
func flagSpelling(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

func (e *env) register(fs *flag.FlagSet) {
	fs.StringVar(&e.data, "data", e.data, "data directory")
	fs.StringVar(&e.server, "server", e.server, "admin API address")
	fs.StringVar(&e.cert, "cert", e.cert, "admin client certificate")
	fs.StringVar(&e.key, "key", e.key, "admin client key")
	fs.StringVar(&e.ca, "ca", e.ca, "service CA certificate")
	fs.BoolVar(&e.json, "json", e.json, "JSON output")
	fs.DurationVar(&e.timeout, "timeout", e.timeout, "admin call timeout")
	fs.StringVar(&e.user, "user", e.user, "directory account to sign in with")
}

// parseInterspersed parses flags that may come before, between or after
// the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}

// client connects to the admin API named by the flags or found in the
// data directory.
func (e *env) client() (*adminapi.Client, error) {
	addr := e.server
	var tlsConf *tls.Config
	certDir := filepath.Join(e.data, datadir.CertsDir)
	if e.user != "" {
		password, err := adminPassword(e)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		caFile := e.ca
		if caFile == "" {
			caFile = filepath.Join(certDir, certs.CACertFile)
		}
		caPEM, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("the service CA certificate (to trust the server): %w; pass --ca FILE", err)
		}
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
		if addr == "" {
			if addr, err = e.adminAddr(); err != nil {
				return nil, err
			}
		}
		return adminapi.DialUser(dialable(addr), &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, e.user, password)
	}
	if e.cert != "" || e.key != "" {
		if e.cert == "" || e.key == "" || e.ca == "" {
			return nil, usagef("--cert, --key and --ca go together")
		}
		pair, err := tls.LoadX509KeyPair(e.cert, e.key)
		if err != nil {
			return nil, fmt.Errorf("admin certificate: %w", err)
		}
		caPEM, err := os.ReadFile(e.ca)
		if err != nil {
			return nil, fmt.Errorf("CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("%s holds no PEM certificate", e.ca)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12}
	} else {
		cs, err := certs.Open(certDir, certs.Config{})
		if err != nil {
			return nil, fmt.Errorf("no admin credentials in %s (%v): pass --data DIR of an initialised service, or --cert, --key and --ca", e.data, err)
		}
		if tlsConf, err = cs.ClientTLSConfig("admin"); err != nil {
			return nil, err
		}
	}
	if addr == "" {
		var err error
		if addr, err = e.adminAddr(); err != nil {
			return nil, err
		}
	}
	return adminapi.Dial(dialable(addr), tlsConf)
}

// adminAddr finds the admin API address in the data directory: the running
// server's, else the configured one.
func (e *env) adminAddr() (string, error) {
	if ri, err := datadir.ReadRunInfo(e.data); err == nil {
		return ri.Admin, nil
	}
	s, err := datadir.LoadSettings(e.data)
	if err != nil {
		return "", fmt.Errorf("cannot find the admin API: %v; pass --server ADDR", err)
	}
	return s.AdminAddr, nil
}

// adminPassword reads the directory password for --user.
func adminPassword(e *env) (string, error) {
	if pw := os.Getenv("OPENDUS_ADMIN_PASSWORD"); pw != "" {
		return pw, nil
	}
	f, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("--user needs a password: set OPENDUS_ADMIN_PASSWORD or run in a terminal")
	}
	fmt.Fprintf(e.stderr, "Password for %s: ", e.user)
	pw, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(e.stderr)
	return string(pw), err
}

// dialable turns a listen address (":9443", "[::]:9443") into one to dial.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// call runs f with a connected client and the call timeout.
func (e *env) call(ctx context.Context, long bool, f func(context.Context, *adminapi.Client) error) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	defer c.Close()
	timeout := e.timeout
	if timeout == 0 {
		timeout = 30 * time.Second
		if long {
			timeout = 10 * time.Minute
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return f(ctx, c)
}
