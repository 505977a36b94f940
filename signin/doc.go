// Package signin is the service's one sign-in limiter: the NTLM sign-in at
// the edge (package ntlm) and the Basic sign-in on the LAN (package
// provisioning) share one [Limiter], so a failure through either counts
// against the same budgets, configured by one set of settings.
//
// # What is counted, and what it does
//
// A sign-in attempt falls into one of three kinds, and only the third can
// hurt a valid account:
//
//   - A message that names no user (a malformed NTLM token, an anonymous
//     NTLM message, a Basic header that does not parse) is refused and
//     logged ([Limiter.Malformed]); it counts nowhere. It proves nothing and
//     guesses nothing, so it must not cost the accounts behind an address
//     anything.
//   - A guess: a message that names a user and carries a password (or an
//     NTLM response) and is refused, whether the user exists or not. Every
//     guess counts against its address (an IPv4 address, or an IPv6 /64).
//     Unknown users count exactly as known ones do, or the limiter's
//     behaviour would tell a guesser which names exist.
//   - A wrong password for an existing account also counts against the
//     account. Config.MaxFailures of them within Config.Window lock the
//     account, and only it, for Config.Lockout: its sign-ins are refused,
//     from any address and through either sign-in, right password or not,
//     with the answer of a wrong password. Other refusals of an existing
//     account (disabled, a stale NTLM timestamp, a replay) prove the
//     password was not guessed wrong and do not count against it.
//
// Config.MaxAddressFailures guesses from one address within Window slow
// that address for Lockout; it is never locked out. A slowed address's
// sign-ins are still checked and a right password still signs in at once,
// but each refusal is held back for Config.Delay before it is sent, and at
// most Config.MaxDelayed refusals per address (256 in all) are held at a
// time: while that many are pending, the address's further sign-ins are
// answered "busy, try again" ([ErrBusy]; the sign-ins answer 503 with
// Retry-After) without being checked. A guesser behind one address thus
// gets at most MaxDelayed/Delay guesses a second (4 by default), and the
// limiter holds a bounded number of requests however hard it is pushed.
//
// The trade-off: phones behind one NAT or reverse proxy share an address,
// so the address can never be locked without locking them all out. What a
// flood from their address costs them is this: nothing while it is made of
// malformed messages; while a guesser keeps MaxDelayed guesses in flight,
// their sign-ins are answered "busy" and retried; and never anything
// after the flood stops. Password spraying from one address is slowed, not
// stopped; spraying from many addresses is limited only by the accounts'
// own lockouts, as before.
//
// # Addresses behind a reverse proxy
//
// [Limiter.ClientAddress] attributes a request to its peer's address,
// unless the peer is in Config.TrustedProxies: then the client is the
// right-most address of the X-Forwarded-For header that is not itself a
// trusted proxy (each proxy appends the address it received the request
// from, so the entries to the right of that one were written by trusted
// proxies and cannot be forged by the client). A missing or malformed
// header leaves the request attributed to the last trusted hop, which is
// what an untrusted proxy gets too: every client behind it shares one
// address, which is slowed but never locked.
//
// # Logs
//
// A flood of refusals must not flood the log. Each account lockout and
// each address that starts to be slowed is logged at Warn. Refusals are
// logged at Info, at most once per minute for each address and account
// pair and at most 100 lines a minute in all; the rest are counted, and a
// summary line ("sign-in refusals") gives their number, the number of
// addresses and the busiest one each minute ([Limiter.Run]) or with the
// next refusal.
//
// Memory is bounded: at most 65,536 accounts and as many addresses are
// remembered; when full, keys whose window and lockout are over go first,
// then arbitrary ones, so under such a flood some lockouts end early.
package signin
