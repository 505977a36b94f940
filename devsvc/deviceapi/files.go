package deviceapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/opendus/opendus/firmware"
)

// errBadPath is answered 400: a file path with a component that no stored
// file can have.
var errBadPath = errors.New("bad file path")

// parseFilePath splits the part of a file URL after the files prefix,
// DeviceType/Vendor/Model/Revision/Locale/Version/file, still escaped,
// and validates every component: the five names and the file name with
// firmware.ValidName (so no "..", no slash or backslash, however encoded)
// and the version with firmware.ParseVersion in its canonical form.
func parseFilePath(escaped string) (firmware.Identity, firmware.Version, string, error) {
	parts := strings.Split(escaped, "/")
	if len(parts) != 7 {
		return firmware.Identity{}, firmware.Version{}, "", fmt.Errorf("%w: want DeviceType/Vendor/Model/Revision/Locale/Version/file after the prefix", errBadPath)
	}
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			return firmware.Identity{}, firmware.Version{}, "", fmt.Errorf("%w: component %d is badly escaped", errBadPath, i+1)
		}
		parts[i] = u
	}
	id := firmware.Identity{DeviceType: parts[0], Vendor: parts[1], Model: parts[2], Revision: parts[3], Locale: parts[4]}
	if err := id.Validate(); err != nil {
		return firmware.Identity{}, firmware.Version{}, "", fmt.Errorf("%w: %w", errBadPath, err)
	}
	v, err := firmware.ParseVersion(parts[5])
	if err != nil {
		return firmware.Identity{}, firmware.Version{}, "", fmt.Errorf("%w: %w", errBadPath, err)
	}
	if err := firmware.ValidName(parts[6]); err != nil {
		return firmware.Identity{}, firmware.Version{}, "", fmt.Errorf("%w: file name %w", errBadPath, err)
	}
	return id, v, parts[6], nil
}

// serveFile serves GET and HEAD of a stored file of a committed update,
// with byte ranges, a strong ETag (the quoted SHA-256) and caching forever:
// a stored version's files never change. On the internal listener shared
// caches may keep them (public: a CDN or a caching proxy in front of the
// service); on the external one, where the file was served to a user
// signed in with NTLM, only the device may (private), so that no shared
// cache serves it to someone who did not sign in.
func (l *listener) serveFile(w http.ResponseWriter, r *http.Request) {
	s := l.s
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.fail(w, r, "", errMethod)
		return
	}
	if _, err := l.user(r, ""); err != nil {
		s.fail(w, r, "", err)
		return
	}
	id, v, name, err := parseFilePath(strings.TrimPrefix(r.URL.EscapedPath(), l.files))
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	f, im, err := s.st.OpenFile(id, v, name)
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	defer f.Close()
	var modtime time.Time
	if u, ok := s.st.Catalog().Update(id, v); ok {
		modtime = u.Imported
	}
	h := w.Header()
	h["Etag"] = []string{`"` + im.SHA256Hex() + `"`}
	h["Cache-Control"] = l.cacheControl
	h["Content-Type"] = []string{"application/octet-stream"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	bp := s.copyBufs.Get().(*[]byte)
	defer s.copyBufs.Put(bp)
	cw := &copyWriter{ResponseWriter: w, buf: *bp, rc: http.NewResponseController(w), stall: s.cfg.DownloadStall}
	cw.extend()
	http.ServeContent(cw, r, name, modtime, f)
	// What is buffered goes out under the last deadline; then the
	// connection may wait for its next request without one.
	if err := cw.rc.Flush(); err == nil {
		cw.rc.SetWriteDeadline(time.Time{})
	}
	if cw.stalled {
		s.stallLog.Add(r.Context(), "remote", r.RemoteAddr, "path", r.URL.Path, "sent", cw.n)
	}
}

// copyBufferSize is the size of the buffers files are copied through: a
// read from the file per eight TLS records rather than per two (the
// ResponseWriter's own ReadFrom copies 32 KiB at a time over TLS, where it
// cannot use sendfile).
const copyBufferSize = 128 << 10

// writeChunk is the most written under one extension of the write
// deadline: a download is dropped when the connection took less than this
// within DownloadStall (256 bytes a second with the default).
const writeChunk = 16 << 10

// copyWriter is a ResponseWriter whose ReadFrom, which ServeContent's copy
// uses, copies through buf, and whose writes each get DownloadStall from
// when they start: a download that makes progress is never dropped, one
// whose peer takes nothing for DownloadStall is (the write fails, and the
// server closes the connection or, on HTTP/2, resets the stream).
type copyWriter struct {
	http.ResponseWriter
	buf     []byte
	rc      *http.ResponseController
	stall   time.Duration
	n       int64 // bytes written
	stalled bool  // a write failed at its deadline
}

// extend moves the write deadline DownloadStall from now.
func (w *copyWriter) extend() { w.rc.SetWriteDeadline(time.Now().Add(w.stall)) }

func (w *copyWriter) Write(p []byte) (int, error) {
	var n int
	for len(p) > 0 {
		k := min(len(p), writeChunk)
		start := time.Now()
		w.rc.SetWriteDeadline(start.Add(w.stall))
		m, err := w.ResponseWriter.Write(p[:k])
		n += m
		w.n += int64(m)
		if err != nil {
			// HTTP/1 says os.ErrDeadlineExceeded; HTTP/2 only that the
			// stream was reset.
			w.stalled = w.stalled || errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) >= w.stall
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

func (w *copyWriter) ReadFrom(src io.Reader) (int64, error) {
	return io.CopyBuffer(struct{ io.Writer }{w}, src, w.buf)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *copyWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
