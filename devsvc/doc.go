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
// # Goroutines
//
// Serve starts every goroutine it runs (listeners, the certificate watcher,
// the scheduler, the audit log's flusher) in one group and returns only
// after all of them have stopped, so the store is closed last.
package devsvc
