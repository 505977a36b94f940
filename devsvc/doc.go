// Package devsvc composes the device update service: `devsvc init`, which
// creates a data directory (see package datadir for its layout), and
// `devsvc serve`, which opens the store, certificates and directory, binds
// the listeners and runs the handlers of its subpackages until it is told
// to stop.
//
// # The listeners
//
// Three listeners, told apart by address and never by a header: the
// internal (LAN) HTTPS listener for anonymous check-ins and downloads, the
// external (edge) HTTPS listener where every request needs NTLM, and the
// admin gRPC API over mutual TLS. Listeners, TLS and shutdown live here; the
// handlers are http.Handlers of their own packages.
//
// # Disk space
//
// One internal/freespace floor, min_free_space on the data directory's
// file system, is given to the device log uploads and the audit log, which
// refuse or drop what would take the room it keeps; the store is not
// refused by it: the floor is its headroom. When the store cannot write the
// inventory anyway, check-ins are answered 503 (package deviceapi),
// /healthz on the device listeners answers 503, and devsvc status says so,
// until a write succeeds again (package store explains the guarantee).
//
// # Goroutines
//
// Serve starts every goroutine it runs (listeners, the certificate watcher,
// the rollout engine of package rollout, the audit log's flusher) in one
// group and returns only after all of them have stopped, so the store is
// closed last.
package devsvc
