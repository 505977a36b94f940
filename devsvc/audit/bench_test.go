package audit

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// discardWriter is a ResponseWriter that costs nothing, so the benchmark
// measures the audit log and not a recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header               { return w.h }
func (w *discardWriter) Write(p []byte) (int, error)       { return len(p), nil }
func (w *discardWriter) WriteHeader(int)                   {}
func (w *discardWriter) WriteString(s string) (int, error) { return len(s), nil }

// BenchmarkMiddleware measures audit lines per second from parallel
// requests, with the real clock and real files (the default 512,000-byte
// cache, so the file is written every few thousand lines).
//
//	go test -run XXX -bench Middleware -benchmem ./devsvc/audit/
func BenchmarkMiddleware(b *testing.B) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetDevice(r.Context(), "00:04:f2:12:34:56")
		io.WriteString(w, "<downloads>0</downloads>")
	})
	run := func(b *testing.B, h http.Handler) {
		b.ReportAllocs()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			w := &discardWriter{h: http.Header{}}
			r := httptest.NewRequest("POST", "/RequestHandler/ucdevice.upx", nil)
			r.RemoteAddr = "10.20.30.40:51234"
			for pb.Next() {
				h.ServeHTTP(w, r)
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "lines/s")
	}
	b.Run("audit", func(b *testing.B) {
		l, err := Open(Config{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		run(b, l.Middleware(Internal, handler))
	})
	b.Run("no-audit", func(b *testing.B) {
		run(b, handler)
	})
}

// BenchmarkMiddlewareHTTP measures requests per second over real loopback
// HTTP/1.1 connections with and without the audit log, to show what it
// costs a check-in end to end.
//
//	go test -run XXX -bench MiddlewareHTTP ./devsvc/audit/
func BenchmarkMiddlewareHTTP(b *testing.B) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<downloads>0</downloads>")
	})
	run := func(b *testing.B, h http.Handler) {
		srv := httptest.NewServer(h)
		defer srv.Close()
		tr := srv.Client().Transport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		b.SetParallelism(8)
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Post(srv.URL+"/RequestHandler/ucdevice.upx", "text/xml", nil)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	}
	b.Run("audit", func(b *testing.B) {
		l, err := Open(Config{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		run(b, l.Middleware(Internal, handler))
	})
	b.Run("no-audit", func(b *testing.B) {
		run(b, handler)
	})
}
