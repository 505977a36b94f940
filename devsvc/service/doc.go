// Package service is the one service layer of the admin side: every
// operation an admin can ask for (import a bundle, approve, reject,
// restore, mark a test device, add an account, define sites, start, pause,
// resume and stop rollouts and watch their progress, read the alarms,
// find devices and read one's recent history, read the history, take a
// backup), with its checks, authorized the same way and recorded in the
// history under the same name, whichever transport asked.
// The gRPC admin API (package adminapi) and the web console are
// transports: they authenticate the caller, put a Principal in the
// context, call an operation and map its errors to their own codes.
//
// # Principals and roles
//
// A Principal is who asks (the actor the history records: "cert:NAME" for
// an admin certificate, "dir:NAME" for a directory account, "web:NAME" for
// a console account) and with which Role. Every operation checks the
// context's principal first: none is ErrUnauthenticated; a read-only
// admin asking for a change is ErrForbidden. A transport never decides
// what a role may do.
//
// # Console admins and sign-in
//
// The web console's own accounts (AddConsoleAdmin, SetConsoleAdminPassword,
// SetConsoleAdminDisabled, RemoveConsoleAdmin, ConsoleAdmins) are kept in
// the store with only an argon2id hash of the password (package passhash),
// at least MinPasswordLength characters. ConsoleSignIn checks a console
// admin's password, else a directory account's when the service has a
// directory, through the sign-in limiter the device sign-ins share
// (Config.Limiter): wrong passwords lock the account, refusals slow the
// address, and every refusal reads the same. A console session asks
// ConsolePrincipal at every request, so that disabling or removing a
// console admin ends its sessions at once. Hashes are computed at most
// Config.MaxConcurrentHashes at a time.
//
// # Admin certificates
//
// The service keeps a registry of the admin client certificates it issued
// (IssueAdminCert, for a key the admin made: the private key never reaches
// the service) and of the data directory's own admin.pem (recorded by init
// and at every start, RecordAdminCert). A transport that verified a client
// certificate against the CA asks CertPrincipal for its principal on every
// call: a certificate the registry does not have, or has revoked
// (RevokeAdminCert), is ErrForbidden with a message that names it, so a
// revocation takes effect at once, for every transport. Issuing and
// revoking are in the history under the admin who did it. A certificate
// the registry has no record of is refused rather than trusted for being
// signed by the CA: the registry is what lists and revokes access, so
// access it does not list could not be revoked.
//
// # Replicas
//
// On a primary, AddReplica makes a replica of a site: it issues the
// replica's client certificate with the role replica, recorded in the
// registry of admin certificates (and the history) like an admin's, its
// server certificate for its names and an admin certificate for its own
// data directory, all under the CA, and returns them as the credentials
// file `devsvc init --replica-of` reads. CertPrincipal makes a replica's
// certificate a Principal with RoleReplica ("replica:NAME"): it may call
// Follow, FetchFile and Upstream, the Replication calls, and nothing else
// (every admin operation refuses it), and no other principal may call
// those. RemoveReplica revokes its certificate: it is refused from its
// next call on. Follow streams the catalog's changes (package replica);
// FetchFile sends a stored file by SHA-256 from an offset and counts it
// in the replica's progress; Upstream takes its position, its URLs and
// the check-ins and reports it forwards, applied once (store.
// ApplyForwarded). ReplicaFor tells the device side where a site's
// devices fetch an update: their replica, once it holds it and while it is
// heard from. CheckReplicas raises an alarm for a replica that has not
// applied an approval AlarmAfter (15 minutes) after it.
//
// A service that is a replica (Config.ReplicaOf) refuses every change,
// whoever asks, with store.ErrFollower and a message naming its primary:
// its catalog is the primary's. Its admins may look and take backups.
//
// # Imports
//
// An import arrives as an Upload: the transport spools the bytes into it
// (one bundle file, or the files of an update tree, each path checked
// before anything is written), then calls Import, which opens whatever it
// is with cabingest.Open (a tree, a cabinet, a self-extracting .exe or an
// RPM, told apart by content) and hands the store whole updates in one
// all-or-nothing transaction. Uploads are bounded in bytes and files and
// live in the spool directory until closed.
//
// # Errors
//
// Operations return the store's and firmware's sentinel errors (wrapped
// with context) and this package's: ErrUnauthenticated, ErrForbidden,
// ErrInvalid (a request or bundle that cannot be accepted as it is) and
// ErrTooLarge; a sign-in from a slowed address with too many refusals
// pending wraps signin.ErrBusy. Each transport maps them in one function.
package service
