// Package audit writes the device update service's audit log: one line per
// HTTP request on the device listeners, one file per UTC day, under
// DATA/Logs/Server/Audit/imageUpdates, as the original service kept it.
//
// # Files
//
// The file of a day is imageUpdates-YYYY-MM-DD.log (the UTC date). A line
// goes to the file of the day its time falls on; at midnight the open file
// is flushed, fsynced and closed, and the next line opens the new day's
// file. A new file starts with two comment lines:
//
//	#Software: OpenDUS audit log
//	#Fields: time remote listener user method path status bytes duration_us device
//
// Files whose last possible line (the end of their day) is older than
// Config.Retention (LogCleanUpInterval, 10 days by default) are removed by
// Clean, which Run calls once at start and then hourly. Other files in the
// directory are never touched.
//
// # Lines
//
// A line is ten fields separated by single spaces and ended by "\n":
//
//	time         when the response was complete, UTC, RFC 3339 with milliseconds:
//	             2026-11-21T22:25:50.123Z
//	remote       the client's address, host:port (http.Request.RemoteAddr)
//	listener     the name given to Middleware: "internal" or "external"
//	user         the NTLM-authenticated user (ntlm.UserFrom), "-" when anonymous
//	method       the HTTP method
//	path         the request path, decoded (http.Request.URL.Path); the query is
//	             not logged
//	status       the final HTTP status code sent (200 when the handler wrote a
//	             body without WriteHeader or nothing at all)
//	bytes        response body bytes written by the handler
//	duration_us  time from the request reaching Middleware to the handler's
//	             return, in whole microseconds
//	device       the device's MAC address, as given to SetDevice, "-" if unknown
//
// Every value is escaped so that no request can forge or split a line:
// each byte outside the printable ASCII range 0x21–0x7E, and each '%', is
// written as %XX (upper-case hex), so a field never holds a space, a tab, a
// newline, a control character or a non-ASCII byte. An empty value is
// written "-", and a value that is exactly "-" is written "%2D". Each field
// decodes with url.PathUnescape. For example the user name "Jöns", a
// newline and "fake" is written J%C3%B6ns%0Afake.
//
// # Buffering and durability
//
// Lines are appended to an in-memory buffer under one mutex (no system call
// per request). The buffer is written to the file when it holds
// Config.MaxCache bytes (MaxLogCacheLimit, 512,000 by default), by the
// request that filled it; at every Config.FlushInterval tick of Run
// (LogFlushInterval, 5 minutes by default), followed by an fsync; at the
// day's rotation; and by Close. So a line reaches the disk within
// FlushInterval when Run is running; a crash loses at most the lines of the
// last interval. Only one write to the file is in progress at a time and
// buffers are written in the order they were filled, so lines never
// interleave.
//
// # When the disk is full
//
// Devices are never made to wait for the audit log, and memory does not
// grow without bound: lines that cannot be written are dropped, counted
// and reported through Config.Logger at Error, at once when lines start
// being lost, then at most once a minute while they keep being lost, once
// at Warn when lines are written again, and at Close whatever was not
// reported yet. Config.Floor (min_free_space) keeps room on the disk for
// the device inventory: a buffer is written only as far as its whole
// lines fit above the floor, the rest is dropped before the disk is
// touched. A write that fails part way (the disk is full) is cut back to
// its last whole line, so a day file never holds a torn line and the next
// write starts a line of its own. Close writes what it can and reports
// what it could not.
//
// # Mounting
//
// One Log serves both device listeners; each wraps its handler with
// Middleware and its own listener name. The device handler reports the MAC
// it learned from the request body with SetDevice(r.Context(), mac). On the
// external listener, where ntlm.Acceptor.Require sets the user, put
// Middleware outside Require so that refused sign-ins (401) are audited
// too, and CaptureUser inside it so that the user still reaches the line:
//
//	internal := log.Middleware(audit.Internal, mux)
//	external := log.Middleware(audit.External, acceptor.Require(audit.CaptureUser(mux)))
//
// Middleware also reads ntlm.UserFrom from its own request, so placing it
// inside Require works without CaptureUser, at the cost of not logging the
// handshake and refused requests.
package audit
