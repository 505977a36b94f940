// Package replica is how a replica follows its primary: the protocol's
// messages, both of its ends (ServeFeed and ServeFile on the primary, the
// Follower on the replica) and the credentials file that makes a replica.
// The transport is the admin API's Replication service (package adminapi:
// gRPC over mutual TLS with the replica's certificate, role replica); this
// package only sees it through the Primary interface.
//
// # The feed
//
// A replica asks its primary for the changes after its position (the
// history number of the last change it applied) and the primary streams
// them as they commit (ServeFeed): each is one catalog transaction, its
// history events and the records it put and deleted (package store,
// "Change feed"). A new replica, one further behind than the primary's
// feed keeps, or one whose change needs a file the primary has removed
// since, gets a snapshot first. An idle stream gets a heartbeat every 15
// s; a stream silent for HeartbeatTimeout (45 s) is closed and opened
// again.
//
// For every change the Follower fetches the files it needs and the
// replica does not hold (by SHA-256; a file held under another update is
// copied, not fetched), each into Dir as a .part file that a broken
// transfer resumes from, even after a restart; checks its size and
// SHA-256; and only then applies the changes, with the files, in one
// store transaction with the new position (store.ApplyChanges). A device
// is therefore never offered a file the replica cannot serve, a crash
// leaves the replica at its old position or its new one, and a change is
// never applied twice. Each file crosses the WAN once per replica.
//
// # Reports upstream
//
// The check-ins and reports the replica answers are queued in its store's
// outbox in the inventory's own transaction. The Follower sends them
// (Upstream) in batches of at most BatchSize, in order, with its position
// and its base URLs; the primary applies a batch in one transaction with
// the number of its last item and answers with it, and the replica drops
// what was acknowledged. A batch sent again after a lost answer is not
// applied twice, so after an outage of any length every report arrives
// once, in order per device.
//
// # Outages
//
// Every failure is retried, from MinBackoff doubling up to MaxBackoff
// (1 s to 1 minute). Meanwhile the replica serves its site from what it
// has, and Status says since when the primary cannot be reached and why.
//
// # Credentials
//
// `devsvc replicas add` on the primary issues the replica's client
// certificate (recorded in the primary's registry of admin certificates,
// role replica, revoked by `devsvc replicas remove`), a server
// certificate for the replica's names and an admin certificate for its
// own data directory, all under the primary's CA, and writes them with the
// CA certificate and the primary's addresses into one file
// (Credentials). `devsvc init --replica-of` reads it (ParseCredentials):
// the replica never holds the CA's key, and devices that trust the CA
// trust the replica.
package replica
