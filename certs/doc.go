// Package certs bootstraps and maintains the private PKI of an OpenDUS
// service: one certificate authority (CA) that devices trust, one TLS server
// certificate presented to devices and to admins, and client certificates
// that admins present to the gRPC admin API (mutual TLS).
//
// # Files
//
// [Bootstrap] writes six PEM files into the service's data directory:
//
//	ca.pem      the CA certificate; give it to devices (see [Store.ExportCA])
//	ca.key      the CA private key                          (mode 0600)
//	server.pem  the server certificate (leaf only)
//	server.key  the server private key                      (mode 0600)
//	admin.pem   the first admin client certificate, role "admin"
//	admin.key   its private key                             (mode 0600)
//
// Certificates are mode 0644. Private keys are PKCS #8 ("PRIVATE KEY")
// and [Open] refuses a key file that group or others may read
// ([ErrInsecureKey]), as ssh does. ca.key and admin.key may be moved off
// the machine after bootstrap (keep them offline): [Open] only needs ca.pem,
// server.pem and server.key; without ca.key, [Store.RenewServer] and
// [Store.IssueClient] return [ErrNoCAKey].
//
// # Certificates
//
// All keys are ECDSA on NIST P-256 and all signatures ECDSA with SHA-256.
// P-256 is the one curve every TLS 1.2 stack on desk phones and conference
// units supports (mbed TLS, wolfSSL, OpenSSL 1.0.x, Android, Windows
// SChannel); its keys and signatures are far smaller and its signing far
// faster than RSA-2048 at similar strength, which matters on slow device
// CPUs; Ed25519 certificates, by contrast, are still rejected by many
// embedded stacks.
//
// Serial numbers are 128 random bits. Every certificate carries a
// SubjectKeyId (SHA-256 of the public key truncated to 160 bits, RFC 7093
// method 1) and, except the CA, an AuthorityKeyId equal to the CA's. NotBefore
// is set one hour in the past to tolerate device clock skew; no certificate
// outlives the CA.
//
//   - CA: BasicConstraints CA:TRUE with path length 0 (it signs leaves only),
//     KeyUsage certSign and cRLSign; default validity 10 years.
//   - Server: KeyUsage digitalSignature, ExtKeyUsage serverAuth; default
//     validity 825 days (the longest that Apple platforms accept for a TLS
//     server certificate). Its common name is ucupdates-r2.<domain>, the
//     name Lync/Skype for Business phones look up to find their update
//     service, so that old stacks that still match the common name work. Its
//     subject alternative names always cover ucupdates-r2.<domain>, the
//     external and internal names (see [Config]), the host name,
//     localhost, 127.0.0.1 and ::1, plus any extra names.
//   - Client: KeyUsage digitalSignature, ExtKeyUsage clientAuth; the
//     common name is the admin's name and the organizational unit its role
//     (see [ClientIdentity]); default validity 2 years.
//
// # Invariants
//
//   - Every file is written to a temporary name in the same directory,
//     fsynced, then renamed into place (or hard-linked, when it must not
//     replace an existing file), and the directory is fsynced: a reader sees
//     the old or the new file, never a partial one.
//   - [Bootstrap] never overwrites: if any of the six files exists it
//     writes nothing and returns [ErrExists].
//   - The server certificate in use always chains to the CA, matches its
//     key and is not expired; [Store.ServerTLSConfig] and
//     [Store.AdminServerTLSConfig] read it through an atomic pointer on
//     every handshake, so [Store.RenewServer] and [Store.Reload] take effect
//     for new connections while established ones continue undisturbed.
//   - [Store.RenewServer] writes server.key before server.pem. Another
//     process that reads the pair between the two renames sees a key that
//     does not match the certificate; [Store.Reload] then keeps the current
//     certificate and [Store.Watch] retries on its next tick. Only one
//     process should renew at a time.
//
// [Store.IssueServer] issues a server certificate for another server under
// the same CA, and writes nothing: a replica's, so that devices that trust
// the CA trust the replica, whose data directory holds the CA certificate
// but never its key.
//
// [Store.SignClient] issues a client certificate for a key its owner made,
// so that the private key never reaches the service; [Store.IssueClient]
// makes the key too.
//
// There is no CRL or OCSP: client certificates are only ever presented to
// the admin API, and the service above this package keeps the registry of
// the admin certificates it issued and refuses a revoked one at once
// (devsvc certs list, devsvc certs revoke). Server and CA certificates are
// replaced, not revoked.
package certs
