// Package devlogs receives the log files that devices upload (CE logs,
// crash dumps, configuration dumps) and keeps them, one folder per log
// type, under DATA/Logs/Client, for the time the audit log is kept.
//
// # The upload request
//
// The original service's upload format is not public; this is OpenDUS's.
// A device sends one file per request, the raw bytes as the body:
//
//	POST /RequestHandler/logupload.upx?type=CELog&name=phone.clg&mac=00-04-F2-12-34-56
//	Content-Type: application/octet-stream
//	Content-Length: 5120
//
//	<the file>
//
// on the internal listener, or /RequestHandlerExt/logupload.upx on the
// external one (behind NTLM like every external request). The handler does
// not look at the path: it serves whatever path it is mounted on (Path and
// PathExt are the agreed ones). The query parameters, each at most once:
//
//	type  required; one of Config.Types (ValidLogFileTypes: Watson, CELog,
//	      Config by default), compared without regard to case
//	name  required; the file's name on the device. It may be a path (with /
//	      or \), of which only the last element is kept; see "Stored names"
//	mac   optional; the device's MAC address, 12 hex digits, optionally
//	      separated by ':', '-' or '.'. It names the stored file (otherwise
//	      the client's IP address does) and goes to the audit line
//	      (audit.SetDevice). It is the device's claim, not authenticated.
//
// The body is 1 to Config.MaxSize bytes (MaxLogFileSize, 1,024,000 by
// default), sent with Content-Length or chunked; multipart/form-data bodies
// are refused. The answers, each with a one-line text/plain body:
//
//	201 Created           stored; the body is "<type>/<stored name>\n"
//	400 Bad Request       bad or missing type, name, mac or extension; duplicated
//	                      parameter; empty body; the upload broke off
//	405 Method Not Allowed  not POST (Allow: POST)
//	408 Request Timeout   the body did not arrive within ReadTimeout (2 minutes
//	                      by default): the connection is closed and the space
//	                      the upload reserved is freed
//	413 Content Too Large the body exceeds MaxSize (refused on Content-Length
//	                      before reading, or when the limit is reached)
//	415 Unsupported Media Type  a multipart body
//	500 Internal Server Error   the file could not be stored (logged; the
//	                      device is told only to retry later)
//	429 Too Many Requests the uploads in progress from the client's address
//	                      (IPv4, or IPv6 /64) would reserve more than
//	                      MaxPerAddress (max_log_upload_per_address; a
//	                      sixteenth of MaxTotal by default); Retry-After: 60
//	507 Insufficient Storage    the stored logs would exceed MaxTotal (1 GiB
//	                      by default, max_log_storage): the listener is
//	                      anonymous, so the space logs take is bounded; old
//	                      logs expire after Retention and make room. Also
//	                      when the upload would leave less free disk space
//	                      than Config.Floor keeps (min_free_space), or the
//	                      disk is full: the body then says only that the
//	                      disk is nearly full
//
// # Free space
//
// MaxTotal bounds what logs take, not what is free: the disk may be
// smaller, or filled by something else. Config.Floor keeps room for the
// service's own records (the device inventory): before anything is
// written, an upload must fit in the room above the floor, less what the
// uploads in progress have reserved (their Content-Length, or MaxSize when
// chunked), else it is refused with 507. A write that meets a full disk
// anyway is refused with 507 too, and its temporary file removed. The
// floor logs when the disk crosses it, once each way; each refused upload
// is logged at Info only.
//
// An answer other than 201 closes the connection: the body may not have
// been read.
//
// # Reservations
//
// An upload reserves its Content-Length (MaxSize when chunked) of MaxTotal
// before it reads the body, and gives back what it does not store when it
// ends. So that nobody can hold the space without using it, the uploads in
// progress from one address reserve at most MaxPerAddress, and a body
// must arrive within ReadTimeout: a peer that starts uploads and stalls
// holds at most MaxPerAddress for at most ReadTimeout.
//
// For example, with curl:
//
//	curl --cacert ca.pem --data-binary @phone.clg -H 'Content-Type: application/octet-stream' \
//	  'https://ucupdates-r2.contoso.com/RequestHandler/logupload.upx?type=CELog&name=phone.clg&mac=0004f2123456'
//
// # Stored names
//
// The device's name is sanitised, never trusted: only the part after the
// last '/' or '\' is kept; every character that is not a Unicode letter or
// digit, '.', '-' or '_' (spaces, control characters, NUL, ':', invalid
// UTF-8, bidirectional controls) becomes '_'; leading dots are removed (no
// hidden files, no "..") and so are trailing dots; names over MaxNameBytes
// (100 bytes) are shortened, keeping the extension. An empty result is
// refused. The extension of the result, compared without regard to case,
// must be one of Config.Extensions (ValidLogFileExtensions).
//
// A file is stored as
//
//	<Dir>/<type>/<who>-<UTC time>-<name>
//	CELog/0004f2123456-20261121T222550.123Z-phone.clg
//
// where who is the MAC as 12 lower-case hex digits, or the client's IP
// address with ':' written '_', and the time has milliseconds. A stored
// file is never replaced: if the name exists, "-2-", "-3-", ... is put
// between the time and the name. All file access goes through an os.Root
// at Dir, so no name can reach outside it whatever it holds.
//
// # Durability
//
// The body is written to a temporary dot file in the type's folder
// (.tmp-<UTC time>-<random>), fsynced, hard-linked to the stored name
// (link, unlike rename, fails instead of replacing an existing file), the
// temporary name removed and the folder fsynced. Only then does the device
// get 201. A crash leaves either nothing under the stored name or the whole
// file; leftover temporary files older than an hour are removed by Clean.
//
// # Retention
//
// Clean(now) removes stored files whose time (from their name) is more
// than Config.Retention (LogCleanUpInterval, 10 days by default) before
// now. Files in the folders that do not have the stored-name form are left
// alone. *Handler satisfies audit.Cleaner, so the service passes it in
// audit.Config.Cleaners and the audit log's Run cleans both on one clock.
package devlogs
