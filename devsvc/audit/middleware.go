package audit

import (
	"context"
	"io"
	"net/http"
	"sync"

	"github.com/opendus/opendus/ntlm"
)

// Middleware returns next wrapped so that every request it serves adds one
// line to the log, listener naming the listener (Internal or External).
// The line is added when next returns, also when it panics (status 500
// unless a status was already sent; the panic then continues).
func (l *Log) Middleware(listener string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := l.now()
		rec := &record{ResponseWriter: w}
		r2 := r.WithContext(context.WithValue(r.Context(), ctxKey{}, rec))
		defer func() {
			p := recover()
			if p != nil && !rec.wroteHeader {
				rec.status = http.StatusInternalServerError
			}
			end := l.now()
			e := Entry{
				Time:     end,
				Remote:   r.RemoteAddr,
				Listener: listener,
				Method:   r.Method,
				Path:     r.URL.Path,
				Status:   rec.status,
				Bytes:    rec.bytes,
				Duration: end.Sub(start),
			}
			if e.Status == 0 {
				e.Status = http.StatusOK
			}
			rec.mu.Lock()
			e.User, e.Device = rec.user, rec.device
			rec.mu.Unlock()
			if u, ok := ntlm.UserFrom(r.Context()); ok {
				e.User = u
			}
			l.add(&e)
			if p != nil {
				panic(p)
			}
		}()
		next.ServeHTTP(rec, r2)
	})
}

type ctxKey struct{}

// SetDevice records mac as the device of the request whose context is
// ctx, for its audit line. It does nothing when ctx is not a request
// context under Middleware. Call it before the handler returns.
func SetDevice(ctx context.Context, mac string) {
	if rec, ok := ctx.Value(ctxKey{}).(*record); ok {
		rec.mu.Lock()
		rec.device = mac
		rec.mu.Unlock()
	}
}

// CaptureUser returns next wrapped so that the NTLM user of the request
// (ntlm.UserFrom) reaches the audit line of a Middleware further out. Put
// it inside ntlm.Acceptor.Require when Middleware is outside it.
func CaptureUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, ok := ntlm.UserFrom(r.Context()); ok {
			if rec, ok := r.Context().Value(ctxKey{}).(*record); ok {
				rec.mu.Lock()
				rec.user = u
				rec.mu.Unlock()
			}
		}
		next.ServeHTTP(w, r)
	})
}

// record is the ResponseWriter handed to the handler, counting what it
// sends, and the request's audit details.
type record struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	bytes       int64

	mu     sync.Mutex // guards user and device, set through the context
	user   string
	device string
}

func (rec *record) WriteHeader(code int) {
	if !rec.wroteHeader && (code >= 200 || code == http.StatusSwitchingProtocols) {
		rec.status, rec.wroteHeader = code, true
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *record) sent() {
	if !rec.wroteHeader {
		rec.status, rec.wroteHeader = http.StatusOK, true
	}
}

func (rec *record) Write(p []byte) (int, error) {
	rec.sent()
	n, err := rec.ResponseWriter.Write(p)
	rec.bytes += int64(n)
	return n, err
}

// WriteString saves a copy when the underlying writer has WriteString.
func (rec *record) WriteString(s string) (int, error) {
	rec.sent()
	n, err := io.WriteString(rec.ResponseWriter, s)
	rec.bytes += int64(n)
	return n, err
}

// ReadFrom keeps the underlying writer's sendfile path for downloads.
func (rec *record) ReadFrom(src io.Reader) (int64, error) {
	rec.sent()
	var n int64
	var err error
	if rf, ok := rec.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(writerOnly{rec.ResponseWriter}, src)
	}
	rec.bytes += n
	return n, err
}

// Flush implements http.Flusher for handlers that assert it.
func (rec *record) Flush() {
	rec.sent()
	_ = http.NewResponseController(rec.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (rec *record) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

type writerOnly struct{ io.Writer }
