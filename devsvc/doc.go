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
// /readyz answers 503, and devsvc status says so, until a write succeeds
// again (package store explains the guarantee).
//
// # Health, metrics and reloads
//
// Every HTTP listener answers /healthz (the process serves) and /readyz
// (the store can write, the certificates are valid, the directory
// answers, the listeners serve; 503 with what is not). With metrics_addr a
// plain-HTTP listener serves /metrics too (package metrics). Serve reloads
// the settings file on ServeOptions.Reload (devsvc serve: SIGHUP): the
// settings in reloadable apply to the running parts, each through its own
// Reconfigure, which keeps its state; the others are reported as needing
// a restart; a file refused changes nothing.
//
// # Deadlines
//
// Anyone on the LAN reaches the internal listener, and anyone the edge
// lets through the external one, so nothing waits on a peer without a
// deadline:
//
//   - a connection's TLS handshake and each request's headers: 10 s
//     (http.Server.ReadHeaderTimeout, which also bounds the handshake);
//     headers at most 64 KiB; an idle connection is closed after 2 minutes;
//   - a request's body: request_body_timeout (10 s) from when the request
//     reaches the handlers, for every request that has one, so that a
//     handler that answers without reading it (NTLM's 401, a 404) does not
//     leave the server waiting for it; the check-in, report and sign-in
//     handlers read it under the same deadline, log uploads under
//     log_upload_timeout (2 minutes);
//   - a download: download_stall_timeout (1 minute) without progress
//     (deviceapi.Config.DownloadStall); on HTTP/2 also the connection as a
//     whole (http.HTTP2Config.WriteByteTimeout);
//   - HTTP/2 on the internal listener: at most 100 streams per connection,
//     each with the deadlines above (the external listener is HTTP/1.1);
//   - the admin listener: a connection that has not finished its TLS
//     handshake and HTTP/2 preface in 10 s is closed.
//
// # Time, and rehearsals on a simulated clock
//
// What the service decides by time (the answers to check-ins and the
// inventory's times, rollouts and their waves, maintenance windows,
// back-offs and stalls, alarms, the history) runs on one clock that Serve
// gives the store, the service layer, the device side and the rollout
// engine: the real one, or for a rehearsal a simulated clock that a fleet
// simulator drives (ServeOptions.Clock, devsvc serve --simulated-clock,
// package internal/simclock), so that days of a rollout play out in
// seconds on the devices' time line. Deadlines on peers, TLS, sign-in
// lockouts, sessions and logs keep real time. A simulated clock is refused
// unless every listener is on a loopback address, is not a setting (a
// data directory copied from a rehearsal runs on real time), and is
// logged at start and warned of in devsvc status; on it the rollout
// engine ticks every 100 ms of real time.
//
// # Goroutines
//
// Serve starts every goroutine it runs (listeners, the certificate watcher,
// the rollout engine of package rollout, the audit log's flusher, the
// reloads; on a replica the follower of its primary instead of the
// scheduler and the rollout engine, on a primary the check of its
// replicas' alarms) in one group and returns only after all of them have
// stopped, so the store is closed last. At shutdown the replicas' Follow
// streams are ended first, so that the admin listener's graceful stop
// does not wait for them.
//
// # Replicas
//
// Init with ReplicaOf makes a replica's data directory from the
// credentials its primary issued (package replica); Serve refuses a data
// directory whose settings and store disagree on being a replica. On a
// replica the device side gives the primary's URLs as the files'
// alternatives; on a primary it sends a site's devices to their replica
// (downloads and provisioning), the sites read from the store at use.
package devsvc
