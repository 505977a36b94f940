package deviceapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/opendus/opendus/devsvc/store"
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
	cat := s.st.Catalog()
	of, err := s.files.open(s.st, cat, fileKey{id, v, name})
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	defer s.files.release(of)
	im := of.im
	var modtime time.Time
	if u, ok := cat.Update(id, v); ok {
		modtime = u.Imported
	}
	h := w.Header()
	h["Etag"] = []string{`"` + im.SHA256Hex() + `"`}
	h["Cache-Control"] = l.cacheControl
	h["Content-Type"] = []string{"application/octet-stream"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	bp := s.copyBufs.Get().(*[]byte)
	defer s.copyBufs.Put(bp)
	cw := &copyWriter{ResponseWriter: w, buf: *bp, rc: http.NewResponseController(w), stall: s.settings().DownloadStall}
	cw.extend()
	http.ServeContent(cw, r, name, modtime, io.NewSectionReader(of.f, 0, im.Size))
	// What is buffered goes out under the last deadline; then the
	// connection may wait for its next request without one.
	if err := cw.rc.Flush(); err == nil {
		cw.rc.SetWriteDeadline(time.Time{})
	}
	if cw.stalled {
		s.stallLog.Add(r.Context(), "remote", r.RemoteAddr, "path", r.URL.Path, "sent", cw.n)
	}
	s.obs.Download(l.loc, cw.n)
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

// maxOpenFiles bounds the update files kept open.
const maxOpenFiles = 64

// openFiles keeps the files of stored updates open for their downloads:
// opening one through the store's os.Root takes a system call per
// component of its seven-part path, for a file that never changes while
// its update is stored. Downloads read an open file at their own offsets
// (ReadAt), so any number share it. When the catalog changes, the files
// of updates it no longer holds are closed (at once, or when their last
// download ends), so a removed update is served no more and its space is
// freed by the next download of any file. At most maxOpenFiles are kept;
// past them a file is opened for one download, as before.
type openFiles struct {
	mu  sync.Mutex
	seq uint64 // the catalog the files were last checked against
	m   map[fileKey]*openFile
}

type fileKey struct {
	id   firmware.Identity
	v    firmware.Version
	name string
}

// openFile is a file open for downloads.
type openFile struct {
	f     *os.File
	im    firmware.Image
	refs  int  // downloads reading it
	kept  bool // in openFiles.m
	stale bool // its update was removed: close it after the last download
}

// open returns the open file of k, opening it through st when none is,
// for a download that must release it. cat is the catalog the request
// reads.
func (o *openFiles) open(st Store, cat *store.Catalog, k fileKey) (*openFile, error) {
	o.mu.Lock()
	if o.m == nil {
		o.m = map[fileKey]*openFile{}
	}
	if seq := cat.Seq(); seq > o.seq {
		o.seq = seq
		for key, f := range o.m {
			if !stored(cat, key, f.im) {
				delete(o.m, key)
				f.kept, f.stale = false, true
				if f.refs == 0 {
					f.f.Close()
				}
			}
		}
	}
	if f, ok := o.m[k]; ok {
		f.refs++
		o.mu.Unlock()
		return f, nil
	}
	o.mu.Unlock()
	file, im, err := st.OpenFile(k.id, k.v, k.name)
	if err != nil {
		return nil, err
	}
	f := &openFile{f: file, im: im, refs: 1}
	o.mu.Lock()
	defer o.mu.Unlock()
	if kept, ok := o.m[k]; ok { // another download opened it meanwhile
		file.Close()
		kept.refs++
		return kept, nil
	}
	if len(o.m) < maxOpenFiles {
		f.kept = true
		o.m[k] = f
	}
	return f, nil
}

// stored reports whether the catalog still holds the file k as im (an
// update removed and imported again may have other files).
func stored(cat *store.Catalog, k fileKey, im firmware.Image) bool {
	u, ok := cat.Update(k.id, k.v)
	if !ok {
		return false
	}
	for _, f := range u.Files {
		if f.Name == k.name {
			return f == im
		}
	}
	return false
}

// release ends a download's use of f.
func (o *openFiles) release(f *openFile) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if f.refs--; f.refs == 0 && !f.kept {
		f.f.Close()
	}
}

// close closes the files kept open; those being downloaded are closed
// when their downloads end.
func (o *openFiles) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k, f := range o.m {
		delete(o.m, k)
		f.kept = false
		if f.refs == 0 {
			f.f.Close()
		}
	}
}
