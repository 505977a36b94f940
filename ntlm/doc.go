// Package ntlm is the server side (acceptor) of NTLMv2 authentication over
// HTTP, written from [MS-NLMP], for the external listener of the update
// service: desk phones outside the firewall sign in with a user name and
// password before any request is served.
//
// # Protocol as implemented
//
// NTLM authenticates a connection, not a request, so the listener must
// speak HTTP/1.1 and install [Acceptor.ConnContext]; [Acceptor.Require]
// keeps the state of each connection. A connection that has not signed in
// gets 401 with "WWW-Authenticate: NTLM", then three messages travel as
// base64 in the Authorization and WWW-Authenticate headers (scheme NTLM,
// or Negotiate carrying the same raw NTLM messages; SPNEGO is not
// understood):
//
//  1. NEGOTIATE (client): the flags the client supports.
//  2. CHALLENGE (server, in a 401): a fresh random 8-byte server challenge
//     from crypto/rand, the selected flags (Unicode, NTLM, TargetInfo, and
//     extended session security, 128/56-bit and key exchange when the
//     client asks; never LM, OEM, anonymous, signing or sealing) and the
//     TargetInfo AV pairs MsvAvNbDomainName, MsvAvNbComputerName,
//     MsvAvDnsDomainName and MsvAvTimestamp.
//  3. AUTHENTICATE (client): user, domain and the NTLMv2 response:
//     NTProofStr = HMAC_MD5(NTOWFv2, ServerChallenge + blob), where
//     NTOWFv2 = HMAC_MD5(NTHash, UTF-16LE(Upper(user) + domain)) and the
//     blob holds the client's timestamp, client challenge and AV pairs.
//
// The server recomputes NTProofStr from the account's NT hash and compares
// it in constant time. A verified response proves the password and
// authenticates its blob, whose contents are then checked: the timestamp
// must be within [Config.MaxClockSkew] of the server clock, and when its
// MsvAvFlags announce a MIC, the MIC = HMAC_MD5(ExportedSessionKey,
// NEGOTIATE + CHALLENGE + AUTHENTICATE with the MIC zeroed) must verify,
// with ExportedSessionKey derived from SessionBaseKey = HMAC_MD5(NTOWFv2,
// NTProofStr), RC4-decrypting the client's EncryptedRandomSessionKey when
// key exchange was negotiated. A client that announces no MIC (go-ntlmssp
// and curl do not send one) is accepted without it: the TLS connection
// already protects the messages in transit.
//
// # What is refused, and why
//
//   - NTLMv1 and LM (a 24-byte NT response): offline-crackable, and their
//     responses do not authenticate a timestamp or the target.
//   - Anonymous (null session) sign-ins: no user to authorise.
//   - Unknown users, wrong passwords, disabled accounts.
//   - Stale or future timestamps, and a challenge older than MaxClockSkew.
//   - Replays: the challenge is fresh per connection and single use (the
//     next message on the connection consumes it, success or not), and the
//     NTProofStr of every accepted response is remembered for twice
//     MaxClockSkew in a bounded cache and refused a second time.
//   - A bad MIC.
//   - Anything the sign-in limiter ([Config.Limiter], package signin)
//     refuses: the sign-ins of an account locked after too many wrong
//     passwords. A message that names no user counts nowhere; every
//     refused message that names one counts against its address, which
//     is slowed (its refusals answered late, or "busy" with 503 and
//     Retry-After), never locked.
//   - Malformed messages: every offset and length is checked against the
//     message, which may be at most [MaxTokenSize] bytes.
//
// The client learns none of these reasons: every refusal is the same 401
// with a short plain-text hint and "Connection: close", so each guess
// costs a new TLS connection. The reason goes to the limiter's log under
// the key "reason", with "user" and "remote", rate-limited. A failure to
// reach the account store is not a refusal: it answers 503 and is logged
// as an error.
//
// Invariants: the wrapped handler never runs on a connection that has not
// completed a verified handshake; a connection that starts a new handshake
// loses its previous authentication until the handshake succeeds.
//
// [MS-NLMP]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/
package ntlm
