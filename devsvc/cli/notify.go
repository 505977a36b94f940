package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/devsvc"
	"github.com/opendus/opendus/internal/sdnotify"
)

// serveNotified runs devsvc.Serve and, under systemd (Type=notify, see
// packaging/opendus.service), tells it the service's state: READY=1 with
// the listeners once they serve, WATCHDOG=1 at half of WatchdogSec= while
// serving, STOPPING=1 when shutdown begins, and the error as the status
// when Serve fails. Without $NOTIFY_SOCKET it is devsvc.Serve.
func serveNotified(ctx context.Context, log *slog.Logger, opts devsvc.ServeOptions) error {
	n, err := sdnotify.FromEnv(os.Getenv, os.Getpid())
	if err != nil {
		return err
	}
	if n == nil {
		return devsvc.Serve(ctx, opts)
	}
	log.Debug("telling the service manager our state", "socket", n.Socket(), "watchdog", n.WatchdogInterval())
	wctx, stopWatchdog := context.WithCancel(ctx)
	var wg sync.WaitGroup
	ready := opts.Ready
	opts.Ready = func(ri datadir.RunInfo) {
		status := fmt.Sprintf("serving: internal %s, external %s, admin %s", ri.Internal, ri.External, ri.Admin)
		if err := n.Ready(status); err != nil {
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
	wg.Wait()
	if err != nil {
		n.Status("failed: " + err.Error())
	}
	return err
}
