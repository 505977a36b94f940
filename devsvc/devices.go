package devsvc

import (
	"log/slog"
	"net/http"

	"github.com/opendus/opendus/devsvc/store"
)

// deviceHandlers returns the handlers of the internal and external
// listeners. The external one is wrapped in NTLM by Serve.
func deviceHandlers(st *store.Store, s Settings, log *slog.Logger) (internal, external http.Handler) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	return mux, mux
}
