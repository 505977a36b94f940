// Package console is the web console: a transport over the one service
// layer (package service), as the admin API is. It serves server-rendered
// pages (html/template) that read without JavaScript; its one script only
// enhances them (confirmations, upload progress, live updates). Console is
// an http.Handler; devsvc serve serves it on its own HTTPS listener
// (console_addr) with the service's certificate.
//
// # One service layer
//
// Every page and every change calls the service's operations with the
// signed-in admin's principal in the context, as "web:NAME" for a console
// admin and "dir:NAME" for a directory account: the service decides what
// the role allows and records the principal in the history. The console
// never decides what a role may do; it only hides the action controls
// from read-only admins. Errors map to HTTP statuses in one function,
// statusOf.
//
// # Sign-in and sessions
//
// ConsoleSignIn checks the password (console admins: argon2id; directory
// accounts: the directory) through the service's sign-in limiter, the one
// the device sign-ins share: wrong passwords lock the account, refusals
// slow the address. A sign-in starts a new session: 256 random bits in a
// cookie named __Host-opendus-session, Secure, HttpOnly, SameSite=Strict,
// Path=/, held server-side (keyed by the value's SHA-256) with an idle
// timeout and an absolute lifetime, in a table of at most MaxSessions.
// Every request asks the service again whether its principal may still
// act (ConsolePrincipal), so disabling or removing a console admin ends
// its sessions at once. Sign-out ends the session.
//
// # Changes: CSRF and cross-origin
//
// Every change is a POST with the session's synchronizer token in a form
// field (compared in constant time; an upload sends it as the first part
// of its body, checked before the file is read), and passes the standard
// library's cross-origin protection (Sec-Fetch-Site, else Origin against
// Host). A GET never changes anything. Forms are bounded (64 KiB; uploads
// MaxUploadBytes).
//
// # Headers
//
// Every response carries a Content-Security-Policy that allows only the
// console's own files ("default-src 'self'; script-src 'self'; style-src
// 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self';
// base-uri 'none'"), X-Content-Type-Options: nosniff, X-Frame-Options:
// DENY, Referrer-Policy: same-origin and Strict-Transport-Security; pages
// are Cache-Control: no-store. CSS, script and images are embedded in the
// binary and served under names that carry their content's hash; nothing
// is loaded from elsewhere.
//
// # Pages
//
// A page is one file (its routes, handlers and view) and one template,
// rendered in the shared layout (templates/layout.html); allRoutes lists
// every page's routes, and the tests enumerate the router from it, so a
// new route is covered by the sign-in sweep, the CSRF sweep and the page
// weight test without being named there. A page that changes while it is
// open streams server-sent events (sse.go, serveEvents) that console.js
// applies to its data-live elements.
//
// # Live pages
//
// A page that changes while it is open (the rollouts list, a rollout's
// progress) renders every number server-side, so a reload shows the same
// data without JavaScript, and marks its live part with data-live: the
// URL of an event stream (a stream route) of its numbers by data-field
// name, sent every LivePeriod when they changed. When the page would show
// more than changed numbers (a rollout paused, a wave opened, a site
// appeared), the stream sends "_reload" and console.js loads the page
// again. A stream does not count as the admin's activity (the session
// still idles out), ends when the session ends or its admin is disabled,
// after MaxStreamTime (the browser opens another, checking the session
// again), and when Run's context is done, so that it never holds up the
// listener's shutdown.
//
// # The device inventory
//
// Every count and list of devices comes from the store's index of the
// inventory through the service (QueryDevices, RolloutProgress,
// RuleCounts, FleetSummary, RuleDevices): the devices page is the
// store's indexed query, paged from its cursor (the key a page starts
// after); no page reads the whole inventory.
package console
