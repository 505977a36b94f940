// Package devsvctest runs real devsvc processes for end-to-end tests: it
// builds the binary once per test binary, initialises a data directory in
// t.TempDir(), starts `devsvc serve` on free loopback ports and stops it
// when the test ends.
//
// A test package that uses it runs its tests through Run, which removes the
// binary when they end:
//
//	func TestMain(m *testing.M) { os.Exit(devsvctest.Run(m)) }
//
// The binary is built with the race detector when the test binary is
// (go test -race), and without it otherwise, so that a plain go test is
// quick.
package devsvctest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opendus/opendus/datadir"
)

// The binary built for this test binary, once: Run sets running, Binary
// builds, Run removes buildDir when the tests end.
var (
	running   bool
	buildOnce sync.Once
	buildDir  string
	buildErr  error
	buildOut  []byte
)

// Run runs the tests of m and then removes the devsvc binary that Binary
// built, returning m.Run's exit code. Call it from TestMain; Binary fails
// the test when it was not.
func Run(m *testing.M) int {
	running = true
	code := m.Run()
	if buildDir != "" {
		if err := os.RemoveAll(buildDir); err != nil {
			fmt.Fprintf(os.Stderr, "devsvctest: removing the devsvc binary: %v\n", err)
		}
	}
	return code
}

// Binary returns the path of a devsvc binary built from this checkout,
// once per test binary, with -race when the test binary has the race
// detector.
func Binary(t testing.TB) string {
	t.Helper()
	if !running {
		t.Fatalf("devsvctest.Binary: run the tests with devsvctest.Run from TestMain, which removes the binary they build")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "devsvctest-*")
		if buildErr != nil {
			return
		}
		args := []string{"build", "-o", filepath.Join(buildDir, "devsvc")}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "github.com/opendus/opendus/cmd/devsvc")...)
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build devsvc: %v\n%s", buildErr, buildOut)
	}
	return filepath.Join(buildDir, "devsvc")
}

// Service is a running devsvc serve process.
type Service struct {
	Bin  string
	Dir  string
	Run  datadir.RunInfo
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan error
}

// Init runs devsvc init for domain into a new data directory.
func Init(t testing.TB, domain string) (bin, dir string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "data")
	return InitIn(t, dir, domain), dir
}

// InitIn runs devsvc init for domain into dir, which must be missing or
// empty (a file system the test mounted, say), and returns the binary.
func InitIn(t testing.TB, dir, domain string) (bin string) {
	t.Helper()
	bin = Binary(t)
	if out, err := exec.Command(bin, "init", "--data", dir, "--domain", domain).CombinedOutput(); err != nil {
		t.Fatalf("devsvc init: %v\n%s", err, out)
	}
	return bin
}

// Start runs devsvc serve on free loopback ports with the data directory
// dir and waits until it serves (bounded: 60 s). It stops the process with
// SIGTERM when the test ends and fails the test if it did not exit cleanly.
func Start(t testing.TB, bin, dir string, extraArgs ...string) *Service {
	t.Helper()
	args := append([]string{"serve", "--data", dir, "--internal-addr", "127.0.0.1:0",
		"--external-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--console-addr", "127.0.0.1:0", "--log-format", "json"}, extraArgs...)
	cmd := exec.Command(bin, args...)
	s := &Service{Bin: bin, Dir: dir, cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	cmd.Stdout = s.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start devsvc serve: %v", err)
	}
	go func() { s.done <- cmd.Wait(); pw.Close() }()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			s.logs.Write([]byte(line + "\n"))
			if strings.Contains(line, `"msg":"serving"`) {
				once.Do(func() { close(ready) })
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case <-ready:
	case err := <-s.done:
		t.Fatalf("devsvc serve exited before serving: %v\n%s", err, s.logs.String())
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("devsvc serve did not start within 60s\n%s", s.logs.String())
	}
	ri, err := datadir.ReadRunInfo(dir)
	if err != nil {
		t.Fatalf("read run info: %v", err)
	}
	s.Run = ri
	t.Cleanup(func() { s.Stop(t) })
	return s
}

// Stop sends SIGTERM and waits (bounded: 30 s) for a clean exit.
func (s *Service) Stop(t testing.TB) {
	t.Helper()
	if s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("devsvc serve exited with %v\n%s", err, s.logs.String())
		}
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		t.Errorf("devsvc serve did not stop within 30s of SIGTERM\n%s", s.logs.String())
	}
}

// Kill kills the server with SIGKILL, a crash, and waits for it to exit.
func (s *Service) Kill(t testing.TB) {
	t.Helper()
	if s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Errorf("devsvc serve did not exit within 30s of SIGKILL")
	}
}

// WaitUntil checks cond at once and again after every line the server
// logs, for at most timeout, and reports whether it held: a wait woken by
// what the server does, not by polling.
func (s *Service) WaitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		_, changed := s.logs.snapshot()
		if cond() {
			return true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return cond()
		}
	}
}

// PID returns the server process's ID.
func (s *Service) PID() int { return s.cmd.Process.Pid }

// Logs returns what the server has logged so far.
func (s *Service) Logs() string { return s.logs.String() }

// WaitForLog waits until the server has logged a line containing substr,
// for at most timeout, and reports whether it did. It is woken by each
// line the server logs, not by polling.
func (s *Service) WaitForLog(substr string, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		logged, changed := s.logs.snapshot()
		if strings.Contains(logged, substr) {
			return true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return false
		}
	}
}

// CLI runs `devsvc --data DIR args...` and returns its stdout; it fails the
// test if the command fails.
func (s *Service) CLI(t testing.TB, args ...string) string {
	t.Helper()
	out, errOut, err := s.TryCLI(args...)
	if err != nil {
		t.Fatalf("devsvc %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// TryCLI runs `devsvc --data DIR args...` (bounded: 5 min) and returns its
// stdout, stderr and error.
func (s *Service) TryCLI(args ...string) (stdout, stderr string, err error) {
	return RunCLI(s.Bin, s.Dir, "", args...)
}

// RunCLI runs the devsvc binary with --data dir and args, with stdin.
func RunCLI(bin, dir, stdin string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--data", dir}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.Stdin = strings.NewReader(stdin)
	err = cmd.Run()
	return o.String(), e.String(), err
}

// JSON runs a CLI command with --json and decodes its output into v.
func (s *Service) JSON(t testing.TB, v any, args ...string) {
	t.Helper()
	out := s.CLI(t, append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("devsvc %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced by each Write
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return b.b.Write(p)
}

// snapshot returns what was written so far and a channel closed by the
// next Write.
func (b *syncBuffer) snapshot() (string, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed == nil {
		b.changed = make(chan struct{})
	}
	return b.b.String(), b.changed
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Race reports whether Binary builds devsvc with the race detector (the
// test binary has it): tests that measure time give it more.
func Race() bool { return raceEnabled }
