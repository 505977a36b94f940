package sdnotify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestFromEnv(t *testing.T) {
	const pid = 4242
	tests := []struct {
		name         string
		env          map[string]string
		wantNil      bool
		wantSocket   string
		wantWatchdog time.Duration
		wantErr      string
	}{
		{name: "not under systemd", env: nil, wantNil: true},
		{name: "empty socket", env: map[string]string{SocketEnv: "", WatchdogUsecEnv: "1000000"}, wantNil: true},
		{name: "path", env: map[string]string{SocketEnv: "/run/systemd/notify"}, wantSocket: "/run/systemd/notify"},
		{name: "abstract", env: map[string]string{SocketEnv: "@/org/freedesktop/systemd1/notify/123"}, wantSocket: "@/org/freedesktop/systemd1/notify/123"},
		{name: "relative path", env: map[string]string{SocketEnv: "run/notify"}, wantErr: "absolute socket path"},
		{name: "vsock", env: map[string]string{SocketEnv: "vsock:2:1234"}, wantErr: "absolute socket path"},
		{name: "too long", env: map[string]string{SocketEnv: "/" + strings.Repeat("x", 107)}, wantErr: "longer than"},
		{name: "watchdog", env: map[string]string{SocketEnv: "/n", WatchdogUsecEnv: "30000000"}, wantSocket: "/n", wantWatchdog: 30 * time.Second},
		{name: "watchdog for us", env: map[string]string{SocketEnv: "/n", WatchdogUsecEnv: "2000000", WatchdogPIDEnv: strconv.Itoa(pid)}, wantSocket: "/n", wantWatchdog: 2 * time.Second},
		{name: "watchdog for another process", env: map[string]string{SocketEnv: "/n", WatchdogUsecEnv: "2000000", WatchdogPIDEnv: "1"}, wantSocket: "/n"},
		{name: "watchdog without socket", env: map[string]string{WatchdogUsecEnv: "2000000"}, wantNil: true},
		{name: "watchdog zero", env: map[string]string{SocketEnv: "/n", WatchdogUsecEnv: "0"}, wantErr: WatchdogUsecEnv},
		{name: "watchdog negative", env: map[string]string{SocketEnv: "/n", WatchdogUsecEnv: "-5"}, wantErr: WatchdogUsecEnv},
		{name: "watchdog words", env: map[string]string{SocketEnv: "/n", WatchdogUsecEnv: "30s"}, wantErr: WatchdogUsecEnv},
		{name: "watchdog overflows", env: map[string]string{SocketEnv: "/n", WatchdogUsecEnv: "18446744073709551615"}, wantErr: WatchdogUsecEnv},
		{name: "watchdog pid words", env: map[string]string{SocketEnv: "/n", WatchdogUsecEnv: "1000", WatchdogPIDEnv: "me"}, wantErr: WatchdogPIDEnv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := FromEnv(env(tt.env), pid)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("FromEnv(%v) = %v, %v; want an error naming %q", tt.env, n, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("FromEnv(%v): %v", tt.env, err)
			}
			if (n == nil) != tt.wantNil {
				t.Fatalf("FromEnv(%v) = %v, want nil %v", tt.env, n, tt.wantNil)
			}
			if got := n.Socket(); got != tt.wantSocket {
				t.Errorf("Socket() = %q, want %q", got, tt.wantSocket)
			}
			if got := n.WatchdogInterval(); got != tt.wantWatchdog {
				t.Errorf("WatchdogInterval() = %v, want %v", got, tt.wantWatchdog)
			}
		})
	}
}

// listen opens a datagram socket like the service manager's.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestNotifySendsOneDatagram(t *testing.T) {
	for _, sock := range []string{
		filepath.Join(t.TempDir(), "notify"),
		fmt.Sprintf("@opendus-sdnotify-test-%d", time.Now().UnixNano()),
	} {
		t.Run(map[bool]string{true: "abstract", false: "path"}[strings.HasPrefix(sock, "@")], func(t *testing.T) {
			ln := listen(t, sock)
			n, err := FromEnv(env(map[string]string{SocketEnv: sock}), 1)
			if err != nil {
				t.Fatal(err)
			}
			for _, tt := range []struct {
				send func() error
				want string
			}{
				{func() error { return n.Ready("serving on :443\nand more") }, "READY=1\nSTATUS=serving on :443"},
				{func() error { return n.Status("importing") }, "STATUS=importing"},
				{func() error { return n.Stopping("shutting down") }, "STOPPING=1\nSTATUS=shutting down"},
				{func() error { return n.Reloading("reloading devsvc.conf") }, "RELOADING=1\nMONOTONIC_USEC=#\nSTATUS=reloading devsvc.conf"},
				{func() error { return n.Notify("WATCHDOG=1") }, "WATCHDOG=1"},
			} {
				if err := tt.send(); err != nil {
					t.Fatalf("send %q: %v", tt.want, err)
				}
				ln.SetReadDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 4096)
				k, err := ln.Read(buf)
				if err != nil {
					t.Fatalf("read %q: %v", tt.want, err)
				}
				got := string(buf[:k])
				if usec := regexp.MustCompile(`MONOTONIC_USEC=(\d+)`).FindStringSubmatch(got); usec != nil {
					// CLOCK_MONOTONIC counts from boot: more than zero, less than a year.
					if v, _ := strconv.ParseUint(usec[1], 10, 64); v == 0 || v > 365*24*3600*1e6 {
						t.Errorf("MONOTONIC_USEC=%s, want microseconds since boot", usec[1])
					}
					got = strings.Replace(got, usec[0], "MONOTONIC_USEC=#", 1)
				}
				if got != tt.want {
					t.Errorf("datagram = %q, want %q", got, tt.want)
				}
			}
		})
	}
}

func TestNotifyRefusesBadAssignments(t *testing.T) {
	n := &Notifier{addr: &net.UnixAddr{Name: "/nonexistent"}, send: func([]byte) error { t.Error("sent"); return nil }}
	for _, a := range []string{"READY", "STATUS=a\nREADY=1", ""} {
		if err := n.Notify(a); err == nil {
			t.Errorf("Notify(%q) = nil, want an error", a)
		}
	}
}

func TestNotifyWithoutListener(t *testing.T) {
	n, err := FromEnv(env(map[string]string{SocketEnv: filepath.Join(t.TempDir(), "gone")}), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Ready("x"); err == nil {
		t.Errorf("Ready to a socket nobody listens on = nil, want an error")
	}
}

func TestNilNotifierDoesNothing(t *testing.T) {
	var n *Notifier
	for name, err := range map[string]error{
		"Ready": n.Ready("x"), "Stopping": n.Stopping("x"), "Reloading": n.Reloading("x"), "Status": n.Status("x"), "Notify": n.Notify("WATCHDOG=1"),
	} {
		if err != nil {
			t.Errorf("nil %s = %v, want nil", name, err)
		}
	}
	if n.WatchdogInterval() != 0 || n.Socket() != "" {
		t.Errorf("nil Notifier: WatchdogInterval %v, Socket %q; want 0, \"\"", n.WatchdogInterval(), n.Socket())
	}
	n.Watchdog(t.Context(), nil) // returns at once
}

func TestWatchdogPingsAtHalfTheInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var pings []time.Duration
		n := &Notifier{addr: &net.UnixAddr{Name: "/n"}, watchdog: 2 * time.Second, send: func(msg []byte) error {
			if string(msg) != "WATCHDOG=1" {
				t.Errorf("ping = %q, want WATCHDOG=1", msg)
			}
			pings = append(pings, time.Since(start))
			return nil
		}}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { n.Watchdog(ctx, nil); close(done) }()
		time.Sleep(5*time.Second + time.Millisecond)
		cancel()
		<-done
		want := []time.Duration{1 * time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second, 5 * time.Second}
		if fmt.Sprint(pings) != fmt.Sprint(want) {
			t.Errorf("pings at %v, want %v", pings, want)
		}
	})
}

func TestWatchdogLogsFailuresOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))
		// Pings 2, 3 and 4 fail; 1, 5 and 6 get through.
		sent := 0
		n := &Notifier{addr: &net.UnixAddr{Name: "/n"}, watchdog: 2 * time.Second, send: func([]byte) error {
			sent++
			if sent >= 2 && sent <= 4 {
				return errors.New("connection refused")
			}
			return nil
		}}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { n.Watchdog(ctx, log); close(done) }()
		time.Sleep(6*time.Second + time.Millisecond)
		cancel()
		<-done
		want := `level=WARN msg="watchdog ping to the service manager failed" socket=/n err="connection refused"
level=INFO msg="watchdog ping to the service manager works again" socket=/n
`
		if got := logs.String(); got != want {
			t.Errorf("logs:\n%s\nwant:\n%s", got, want)
		}
		if sent != 6 {
			t.Errorf("%d pings tried, want 6", sent)
		}
	})
}

// FuzzFromEnv checks that no environment makes FromEnv panic, and that
// what it accepts is what was given.
func FuzzFromEnv(f *testing.F) {
	f.Add("/run/systemd/notify", "30000000", "")
	f.Add("@abstract", "1", "7")
	f.Add("", "", "")
	f.Add("/n", "18446744073709551615", "-1")
	f.Fuzz(func(t *testing.T, sock, usec, pid string) {
		n, err := FromEnv(env(map[string]string{SocketEnv: sock, WatchdogUsecEnv: usec, WatchdogPIDEnv: pid}), 7)
		if err != nil {
			if n != nil {
				t.Fatalf("FromEnv returned %v with error %v", n, err)
			}
			return
		}
		if n == nil {
			if sock != "" {
				t.Fatalf("FromEnv(%q) = nil, nil", sock)
			}
			return
		}
		if n.Socket() != sock {
			t.Fatalf("Socket() = %q, want %q", n.Socket(), sock)
		}
		p, perr := strconv.Atoi(pid)
		otherPID := pid != "" && (perr != nil || p != 7)
		if w := n.WatchdogInterval(); w < 0 || (w > 0 && (usec == "" || otherPID)) {
			t.Fatalf("WatchdogInterval() = %v for usec %q pid %q", w, usec, pid)
		}
	})
}
