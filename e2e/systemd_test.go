package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opendus/opendus/internal/devsvctest"
	"github.com/opendus/opendus/internal/testtool"
)

// unitFile is the systemd unit the package installs.
const unitFile = "../packaging/opendus.service"

// notifySocket is a service manager's notification socket: a datagram
// socket that reads messages with their sender's credentials, as systemd's
// does.
type notifySocket struct {
	t    *testing.T
	conn *net.UnixConn
}

func listenNotify(t *testing.T, name string) *notifySocket {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PASSCRED, 1)
	}); err != nil || serr != nil {
		t.Fatalf("SO_PASSCRED: %v %v", err, serr)
	}
	return &notifySocket{t: t, conn: c}
}

// read returns the next message and the PID of its sender, waiting at most
// d.
func (s *notifySocket) read(d time.Duration) (msg string, pid int32) {
	s.t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(d))
	buf, oob := make([]byte, 4096), make([]byte, 1024)
	n, oobn, _, _, err := s.conn.ReadMsgUnix(buf, oob)
	if err != nil {
		s.t.Fatalf("reading the notification socket: %v", err)
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		s.t.Fatalf("no sender credentials with %q: %v", buf[:n], err)
	}
	cred, err := syscall.ParseUnixCredentials(&msgs[0])
	if err != nil {
		s.t.Fatalf("sender credentials: %v", err)
	}
	return string(buf[:n]), cred.Pid
}

// TestServeTellsSystemd runs devsvc serve as systemd runs a Type=notify
// unit with WatchdogSec=: it must say READY=1 (with the listeners) once it
// serves, ping WATCHDOG=1 at half the interval from its main process, say
// RELOADING=1 then READY=1 when SIGHUP (ExecReload=) reloads its settings,
// and say STOPPING=1 when SIGTERM starts the shutdown, then exit cleanly.
// The notification socket is a path and an abstract name, as systemd may
// give.
func TestServeTellsSystemd(t *testing.T) {
	bin, dir := devsvctest.Init(t, "contoso.com")
	for _, sock := range []string{
		filepath.Join(t.TempDir(), "notify"),
		fmt.Sprintf("@opendus-e2e-notify-%d", os.Getpid()),
	} {
		t.Run(map[bool]string{true: "abstract", false: "path"}[strings.HasPrefix(sock, "@")], func(t *testing.T) {
			ns := listenNotify(t, sock)
			cmd := exec.Command(bin, "serve", "--data", dir, "--internal-addr", "127.0.0.1:0",
				"--external-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0")
			const watchdog = 400 * time.Millisecond
			cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock,
				"WATCHDOG_USEC="+strconv.Itoa(int(watchdog/time.Microsecond)), "WATCHDOG_PID=") // WATCHDOG_PID unset: for whoever reads it
			var logs bytes.Buffer
			cmd.Stdout, cmd.Stderr = &logs, &logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			defer func() {
				if cmd.ProcessState == nil {
					cmd.Process.Kill()
					<-done
				}
			}()
			pid := int32(cmd.Process.Pid)

			msg, from := ns.read(60 * time.Second) // a -race build opens its store
			want := regexp.MustCompile(`^READY=1\nSTATUS=serving: internal 127\.0\.0\.1:\d+, external 127\.0\.0\.1:\d+, admin 127\.0\.0\.1:\d+$`)
			if !want.MatchString(msg) || from != pid {
				t.Fatalf("first message %q from PID %d, want one matching %s from %d\n%s", msg, from, want, pid, logs.String())
			}
			// Pings every 200 ms: three arrive within a few seconds, and
			// none sooner than the interval allows.
			start := time.Now()
			for i := range 3 {
				msg, from := ns.read(10 * time.Second)
				if msg != "WATCHDOG=1" || from != pid {
					t.Fatalf("message %d after READY: %q from PID %d, want WATCHDOG=1 from %d", i+1, msg, from, pid)
				}
			}
			if el := time.Since(start); el < 2*watchdog/2 {
				t.Errorf("3 watchdog pings in %v, want them at %v intervals", el, watchdog/2)
			}

			// systemctl reload: RELOADING=1 with the monotonic time, then
			// READY=1 with the status once the settings are reloaded.
			next := func() string {
				for {
					msg, from := ns.read(30 * time.Second)
					if from != pid {
						t.Fatalf("%q from PID %d, want messages from %d only", msg, from, pid)
					}
					if msg != "WATCHDOG=1" {
						return msg
					}
				}
			}
			cmd.Process.Signal(syscall.SIGHUP)
			if msg := next(); !regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=reloading devsvc\.conf$`).MatchString(msg) {
				t.Fatalf("after SIGHUP: %q, want RELOADING=1 with MONOTONIC_USEC\n%s", msg, logs.String())
			}
			if msg := next(); !want.MatchString(msg) {
				t.Fatalf("after the reload: %q, want one matching %s\n%s", msg, want, logs.String())
			}

			cmd.Process.Signal(syscall.SIGTERM)
			for {
				msg, from := ns.read(30 * time.Second)
				if msg == "WATCHDOG=1" {
					continue // one may have been on its way
				}
				if msg != "STOPPING=1\nSTATUS=shutting down" || from != pid {
					t.Fatalf("after SIGTERM: %q from PID %d, want STOPPING=1 from %d", msg, from, pid)
				}
				break
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("devsvc serve exited with %v\n%s", err, logs.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("devsvc serve did not exit within 30s of SIGTERM\n%s", logs.String())
			}
		})
	}
}

// TestServeRefusesABadNotifySocket checks that a NOTIFY_SOCKET devsvc
// cannot use stops the start with the reason, instead of systemd timing
// out on a READY=1 that never comes.
func TestServeRefusesABadNotifySocket(t *testing.T) {
	bin, dir := devsvctest.Init(t, "contoso.com")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--data", dir, "--internal-addr", "127.0.0.1:0",
		"--external-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET=relative/notify")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "NOTIFY_SOCKET") {
		t.Errorf("devsvc serve with NOTIFY_SOCKET=relative/notify: %v, output %q; want a failure naming NOTIFY_SOCKET", err, out)
	}
}

// TestUnitVerifies runs systemd-analyze verify on the unit the package
// installs, with ExecStart pointing at a built devsvc (verify checks that
// the program exists): it must pass with nothing to say, since verify
// reports unknown keys and bad values on stderr and exits 0.
func TestUnitVerifies(t *testing.T) {
	analyze := testtool.Need(t, "systemd-analyze")
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	bin := devsvctest.Binary(t)
	if !bytes.Contains(unit, []byte("ExecStart=/usr/bin/devsvc ")) {
		t.Fatalf("%s: no ExecStart=/usr/bin/devsvc (the package's path)", unitFile)
	}
	path := filepath.Join(t.TempDir(), "opendus.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(unit, []byte("/usr/bin/devsvc"), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unitFile, err, out)
	}
}

// maxExposure is the most systemd-analyze security may rate the unit.
const maxExposure = 3.0

// TestUnitSecurity rates the unit's sandbox with systemd-analyze security
// (offline: from the file, no running systemd needed): at most 3.0.
func TestUnitSecurity(t *testing.T) {
	analyze := testtool.Need(t, "systemd-analyze")
	abs, err := filepath.Abs(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "security", "--offline=true", "--no-pager", fmt.Sprintf("--threshold=%d", int(maxExposure*10)), abs)
	out, err := cmd.CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for opendus\.service: (\d+\.\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security: %v, no overall exposure level in:\n%s", err, out)
	}
	got, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security --offline=true %s: exposure %.1f", unitFile, got)
	if got > maxExposure || err != nil {
		t.Errorf("systemd-analyze security rates %s %.1f (%v), want at most %.1f:\n%s", unitFile, got, err, maxExposure, out)
	}
}

// TestUnitKeepsItsContract checks the settings the package, the docs and
// the service rely on: where the binary and the data are, who runs it,
// that readiness and the watchdog are told, and port 443 without root.
func TestUnitKeepsItsContract(t *testing.T) {
	f, err := os.Open(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			got[k] = append(got[k], v)
		}
	}
	for _, want := range []struct{ key, value string }{
		{"Type", "notify"},
		{"NotifyAccess", "main"},
		{"ExecStart", "/usr/bin/devsvc serve --data /var/lib/opendus"},
		{"ExecReload", "/bin/kill -HUP $MAINPID"},
		{"User", "opendus"},
		{"Group", "opendus"},
		{"StateDirectory", "opendus"},
		{"StateDirectoryMode", "0750"},
		{"ReadWritePaths", "/var/lib/opendus"},
		{"ProtectSystem", "strict"},
		{"AmbientCapabilities", "CAP_NET_BIND_SERVICE"},
		{"CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"},
		{"NoNewPrivileges", "yes"},
		{"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"}, // AF_UNIX: the notification socket
		{"UMask", "0027"},
		{"WantedBy", "multi-user.target"},
	} {
		if !slices.Contains(got[want.key], want.value) {
			t.Errorf("%s: %s=%v, want %s", unitFile, want.key, got[want.key], want.value)
		}
	}
	if len(got["WatchdogSec"]) != 1 {
		t.Errorf("%s: WatchdogSec=%v, want one", unitFile, got["WatchdogSec"])
	}
}
