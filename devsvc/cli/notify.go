package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/devsvc"
	"github.com/opendus/opendus/internal/sdnotify"
)

// serveNotified runs devsvc.Serve, reloading the settings on each signal
// from hup (SIGHUP), and, under systemd (Type=notify, see
// packaging/opendus.service), tells it the service's state: READY=1 with
// the listeners once they serve, WATCHDOG=1 at half of WatchdogSec= while
// serving, RELOADING=1 when a reload begins and READY=1 when it is done
// (with its result as the status), STOPPING=1 when shutdown begins, and
// the error as the status when Serve fails. Without $NOTIFY_SOCKET it only
// reloads.
//
// The watchdog is told the process is alive, not that it is ready: what
// /readyz checks (a full disk, an expired certificate, the directory) a
// restart would not fix, and a restart while the disk is full would lose
// the check-ins held until it can be written.
func serveNotified(ctx context.Context, log *slog.Logger, opts devsvc.ServeOptions, hup <-chan os.Signal) error {
	n, err := sdnotify.FromEnv(os.Getenv, os.Getpid())
	if err != nil {
		return err
	}
	if n != nil {
		log.Debug("telling the service manager our state", "socket", n.Socket(), "watchdog", n.WatchdogInterval())
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	reload := make(chan struct{})
	opts.Reload = reload
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			log.Info("reloading the settings", "file", datadir.ConfigFile)
			if err := n.Reloading("reloading " + datadir.ConfigFile); err != nil {
				log.Warn("telling the service manager we are reloading", "err", err)
			}
			select {
			case reload <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	})
	var (
		mu     sync.Mutex
		status string // the listeners, once they serve
	)
	reloaded := opts.Reloaded
	opts.Reloaded = func(res devsvc.ReloadResult) {
		mu.Lock()
		s := status
		mu.Unlock()
		switch {
		case res.Err != nil:
			s += "; " + datadir.ConfigFile + " not reloaded: " + res.Err.Error()
		case len(res.NeedRestart) > 0:
			s += "; reloaded, a restart is needed for " + strings.Join(res.NeedRestart, ", ")
		}
		if err := n.Ready(s); err != nil {
			log.Warn("telling the service manager the reload is done", "err", err)
		}
		if reloaded != nil {
			reloaded(res)
		}
	}
	wctx, stopWatchdog := context.WithCancel(ctx)
	ready := opts.Ready
	opts.Ready = func(ri datadir.RunInfo) {
		s := fmt.Sprintf("serving: internal %s, external %s, admin %s", ri.Internal, ri.External, ri.Admin)
		if ri.Metrics != "" {
			s += ", metrics " + ri.Metrics
		}
		mu.Lock()
		status = s
		mu.Unlock()
		if err := n.Ready(s); err != nil {
			log.Warn("telling the service manager we are ready", "err", err)
		}
		wg.Go(func() { n.Watchdog(wctx, log) })
		if ready != nil {
			ready(ri)
		}
	}
	stopping := context.AfterFunc(ctx, func() {
		if err := n.Stopping("shutting down"); err != nil {
			log.Warn("telling the service manager we are stopping", "err", err)
		}
	})
	err = devsvc.Serve(ctx, opts)
	stopping()
	stopWatchdog()
	if err != nil {
		n.Status("failed: " + err.Error())
	}
	return err
}
