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
// # Goroutines
//
// Serve starts every goroutine it runs (listeners, the certificate watcher,
// the scheduler, the audit log's flusher; on a replica the follower of its
// primary instead of the scheduler, on a primary the check of its
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
// alternatives; on a primary given ServeOptions.Sites, it sends a site's
// devices to their replica (downloads and provisioning).
package devsvc
