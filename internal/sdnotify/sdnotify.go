// Package sdnotify tells the service manager what a service is doing: the
// sd_notify protocol of systemd (man sd_notify(3)), without libsystemd.
//
// A unit with Type=notify starts the service with $NOTIFY_SOCKET naming a
// Unix datagram socket, either a path ("/run/systemd/notify") or an
// abstract name ("@..."). The service writes newline-separated KEY=VALUE
// assignments to it, one datagram per message:
//
//   - READY=1 once it serves: systemd considers the unit started (and
//     starts what is ordered after it) only then;
//   - STOPPING=1 when it begins to shut down;
//   - STATUS=... a line `systemctl status` shows;
//   - RELOADING=1 when it begins to reload its configuration (on SIGHUP,
//     from ExecReload=), with MONOTONIC_USEC= the time it was sent, then
//     READY=1 again once the reload is done: systemd shows the unit
//     "reloading" in between (systemd 253 and later also wait for READY=1
//     under Type=notify-reload; 252 takes RELOADING=1 as a state);
//   - WATCHDOG=1 at least every $WATCHDOG_USEC microseconds when the unit
//     sets WatchdogSec=: systemd kills and (with Restart=) restarts a
//     service whose pings stop. Pinging at half the interval, as sd_watchdog_enabled(3)
//     advises, leaves room for a late tick.
//
// systemd takes a message only from the unit's main process under the
// default NotifyAccess=main: the kernel tells it the sender's PID. When
// $WATCHDOG_PID is set, the watchdog variables are meant for that process
// only; FromEnv ignores them in any other.
//
// Outside systemd (no $NOTIFY_SOCKET) FromEnv returns a nil *Notifier,
// whose methods do nothing, so a service calls them unconditionally.
package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
)

// The environment variables systemd sets for a Type=notify service.
const (
	SocketEnv        = "NOTIFY_SOCKET"
	WatchdogUsecEnv  = "WATCHDOG_USEC"
	WatchdogPIDEnv   = "WATCHDOG_PID"
	maxWatchdogUsecs = uint64(1<<63-1) / 1000 // what fits a time.Duration
)

// Notifier sends state to the service manager's socket. A nil *Notifier
// is valid and sends nothing.
type Notifier struct {
	addr     *net.UnixAddr
	watchdog time.Duration // 0: no watchdog
	// send writes one datagram; tests replace it.
	send func(msg []byte) error
}

// FromEnv returns the Notifier the environment describes, read through
// getenv (os.Getenv), for the process pid (os.Getpid()): nil, with no
// error, when $NOTIFY_SOCKET is unset or empty. It fails when a variable
// is set to something it cannot use, so that a service started by systemd
// says why instead of timing out unnoticed.
func FromEnv(getenv func(string) string, pid int) (*Notifier, error) {
	sock := getenv(SocketEnv)
	if sock == "" {
		return nil, nil
	}
	if !strings.HasPrefix(sock, "/") && !strings.HasPrefix(sock, "@") {
		return nil, fmt.Errorf("sdnotify: %s=%q: want an absolute socket path or an @abstract name", SocketEnv, sock)
	}
	if len(sock) > 107 { // sun_path holds 108 bytes with the terminating NUL
		return nil, fmt.Errorf("sdnotify: %s=%q: longer than a socket address may be", SocketEnv, sock)
	}
	n := &Notifier{addr: &net.UnixAddr{Name: sock, Net: "unixgram"}}
	n.send = n.write
	usec := getenv(WatchdogUsecEnv)
	if usec == "" {
		return n, nil
	}
	if p := getenv(WatchdogPIDEnv); p != "" {
		wpid, err := strconv.Atoi(p)
		if err != nil || wpid <= 0 {
			return nil, fmt.Errorf("sdnotify: %s=%q: want a process ID", WatchdogPIDEnv, p)
		}
		if wpid != pid {
			return n, nil // the watchdog is another process's
		}
	}
	u, err := strconv.ParseUint(usec, 10, 64)
	if err != nil || u == 0 || u > maxWatchdogUsecs {
		return nil, fmt.Errorf("sdnotify: %s=%q: want a positive number of microseconds", WatchdogUsecEnv, usec)
	}
	n.watchdog = time.Duration(u) * time.Microsecond
	return n, nil
}

// Socket returns the socket messages go to ("" for a nil Notifier).
func (n *Notifier) Socket() string {
	if n == nil {
		return ""
	}
	return n.addr.Name
}

// WatchdogInterval returns how often the service manager wants to hear
// WATCHDOG=1 at the latest: 0 when it does not (or for a nil Notifier).
func (n *Notifier) WatchdogInterval() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog
}

// Notify sends the assignments (e.g. "READY=1", "STATUS=serving") in one
// datagram.
func (n *Notifier) Notify(assignments ...string) error {
	if n == nil || len(assignments) == 0 {
		return nil
	}
	for _, a := range assignments {
		if !strings.Contains(a, "=") || strings.Contains(a, "\n") {
			return fmt.Errorf("sdnotify: %q: want one KEY=VALUE line", a)
		}
	}
	return n.send([]byte(strings.Join(assignments, "\n")))
}

// Ready tells the service manager the service is up, with a status line.
func (n *Notifier) Ready(status string) error {
	return n.Notify("READY=1", "STATUS="+oneLine(status))
}

// Reloading tells the service manager the service is reloading its
// configuration, with a status line; send Ready when it is done.
// MONOTONIC_USEC is sent where the monotonic clock can be read (Linux).
func (n *Notifier) Reloading(status string) error {
	if usec, ok := monotonicUsec(); ok {
		return n.Notify("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatUint(usec, 10), "STATUS="+oneLine(status))
	}
	return n.Notify("RELOADING=1", "STATUS="+oneLine(status))
}

// Stopping tells the service manager the service is shutting down.
func (n *Notifier) Stopping(status string) error {
	return n.Notify("STOPPING=1", "STATUS="+oneLine(status))
}

// Status sets the status line `systemctl status` shows.
func (n *Notifier) Status(status string) error {
	return n.Notify("STATUS=" + oneLine(status))
}

// Watchdog sends WATCHDOG=1 every half WatchdogInterval until ctx is done;
// it returns at once when there is no watchdog. A failed ping is logged
// (once until one succeeds again) and the next is tried on time: giving
// up would have systemd kill a service that works.
func (n *Notifier) Watchdog(ctx context.Context, log *slog.Logger) {
	if n.WatchdogInterval() <= 0 {
		return
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(n.watchdog / 2)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := n.Notify("WATCHDOG=1")
		switch {
		case err != nil && !failing:
			log.Warn("watchdog ping to the service manager failed", "socket", n.addr.Name, "err", err)
			failing = true
		case err == nil && failing:
			log.Info("watchdog ping to the service manager works again", "socket", n.addr.Name)
			failing = false
		}
	}
}

// write sends msg to the socket as one datagram. A connection per message
// keeps nothing open that a restarted service manager would have to
// reconnect; the kernel attaches the sender's credentials.
func (n *Notifier) write(msg []byte) error {
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	_, werr := c.Write(msg)
	if err := errors.Join(werr, c.Close()); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}

// oneLine keeps a status to its first line: a newline would start a new
// assignment.
func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
