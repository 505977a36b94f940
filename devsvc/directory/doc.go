// Package directory finds the service's users in an LDAP directory (OpenLDAP
// with the Samba schema, or any server that keeps an NT hash per user): the
// NTLM acceptor looks up phone users' NT hashes through [Directory.LookupNT],
// which implements [ntlm.Accounts], and admins sign in with their directory
// password through [Directory.Authenticate], which also finds their role from
// their groups. It is the only package that imports go-ldap.
//
// # What is read
//
// A user is the one entry under Config.BaseDN (whole subtree) that matches
// Config.UserFilter with {user} replaced by the user name. Its attributes:
//
//   - uid: the canonical user name.
//   - Config.NTHashAttr (sambaNTPassword): 32 hexadecimal digits, the MD4 of
//     the UTF-16LE password, as [ntlm.NTHash] computes it. An entry without a
//     well-formed hash cannot sign in with NTLM and is reported as unknown
//     (with a warning in the log).
//   - Config.FlagsAttr (sambaAcctFlags): Samba account flags in brackets,
//     such as "[U          ]". D (disabled) or L (locked by Samba's bad
//     password policy) disable the account, and so do W, S and I (machine and
//     trust accounts are not people). A malformed value disables the account.
//     No value at all means a normal account.
//   - memberOf, when the server keeps it (OpenLDAP's memberof overlay, Active
//     Directory): groups of the user, in addition to the groups found with
//     Config.GroupFilter under Config.GroupBaseDN.
//
// Roles: members of Config.AdminGroup are [RoleAdmin], otherwise members of
// Config.ReadOnlyGroup are [RoleReadOnly], otherwise the role is empty.
//
// # Invariants
//
//   - No plain text: the URL must be ldaps://, or ldap:// with StartTLS, and
//     the server certificate is verified against Config.RootCAs before any bind.
//     Connections that fail to negotiate TLS are closed before binding.
//   - No injection: a user name is first checked to be a plausible account
//     name (ASCII letters, digits, '.', '-' and '_', at most 64 bytes, starting
//     with a letter or digit; see the Config docs for user@domain forms), and
//     is then escaped with RFC 4515 rules before it enters a filter, so that no
//     name can widen a search. Group DNs are escaped the same way.
//   - Only entries under BaseDN are users: aliases are never dereferenced and
//     an entry whose DN is not below BaseDN is ignored. Two entries that match
//     the same name make the name unknown (and are logged), never a choice.
//   - Fail closed: when the directory cannot be reached, times out, refuses
//     the service bind or answers with an error, lookups return an error
//     wrapping [ErrUnavailable], never [ntlm.ErrUnknownUser], so the acceptor
//     refuses the sign-in and reports an outage (503) instead of a bad
//     password. The first failure after a success is logged at level Error,
//     the recovery at level Info.
//   - Bounded: every step (connecting, which includes TLS and the service
//     bind; each search; each bind) is bounded by Config.Timeout and by the
//     caller's context; at most Config.PoolSize connections are open at
//     once; the cache holds at most Config.CacheSize names.
//   - Authenticate binds as the user on a connection of its own, never on a
//     pooled one, refuses empty passwords (an empty simple bind is an
//     anonymous bind in LDAP and would always succeed), and returns
//     [ErrBadCredentials] for every refusal whatever the reason.
//
// # Connections and cache
//
// Lookups use a pool of connections bound as Config.BindDN. A connection is
// reused while it is healthy: it is discarded when the server has closed it,
// when it has been idle for more than a minute (firewalls drop idle TCP
// connections silently), and after any error other than an LDAP result. A
// request that fails on a reused connection for a network reason is retried
// once on a new connection, so a restart of the directory costs no sign-in.
//
// LookupNT caches answers, found and not found, for Config.CacheTTL: a
// password change or a disabled account reaches the acceptor within that
// time. Outages are never cached. Authenticate never uses the cache.
package directory
