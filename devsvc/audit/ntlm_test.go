package audit

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	ntlmssp "github.com/Azure/go-ntlmssp"

	"github.com/opendus/opendus/ntlm"

	"github.com/opendus/opendus/internal/clocktest"
)

// oneAccount is an ntlm.Accounts with one user, "eve", whose canonical
// name is hostile: it tries to end the line and forge another.
type oneAccount struct{}

const hostileUser = "eve 200 0 0 -\n2026-11-21T12:00:00.000Z 1.2.3.4:5 external admin"

func (oneAccount) LookupNT(_ context.Context, _, user string) (ntlm.Account, error) {
	if !strings.EqualFold(user, "eve") {
		return ntlm.Account{}, ntlm.ErrUnknownUser
	}
	return ntlm.Account{User: hostileUser, Domain: "OPENDUS", NTHash: ntlm.NTHash("pw")}, nil
}

// TestNTLMUser signs in with go-ntlmssp through a real ntlm.Acceptor and
// checks that the audit lines carry the user, escaped, with Middleware
// outside Require (and CaptureUser inside) or inside it.
func TestNTLMUser(t *testing.T) {
	tests := []struct {
		name      string
		mount     func(l *Log, a *ntlm.Acceptor, h http.Handler) http.Handler
		wantLines []int // statuses logged
	}{
		{"outside Require with CaptureUser", func(l *Log, a *ntlm.Acceptor, h http.Handler) http.Handler {
			return l.Middleware(External, a.Require(CaptureUser(h)))
		}, []int{401, 401, 200}},
		{"inside Require", func(l *Log, a *ntlm.Acceptor, h http.Handler) http.Handler {
			return a.Require(l.Middleware(External, h))
		}, []int{200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := openLog(t, Config{Now: (&clocktest.Clock{T: day1}).Now})
			acc := ntlm.NewAcceptor(oneAccount{}, ntlm.Config{})
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				SetDevice(r.Context(), "00-04-F2-AA-BB-CC")
				io.WriteString(w, "ok")
			})
			srv := httptest.NewUnstartedServer(tt.mount(l, acc, h))
			srv.EnableHTTP2 = false
			srv.Config.ConnContext = acc.ConnContext
			srv.StartTLS()
			defer srv.Close()

			client := &http.Client{Transport: ntlmssp.Negotiator{RoundTripper: srv.Client().Transport}, Timeout: 30 * time.Second}
			req, err := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/RequestHandlerExt/ucdevice.upx", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.SetBasicAuth("eve", "pw")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("sign-in: status %d, want 200", resp.StatusCode)
			}
			l.Close()
			got := readDay(t, l.cfg.Dir, FileName(day1))
			if len(got) != len(tt.wantLines) {
				t.Fatalf("%d lines, want %d: %+v", len(got), len(tt.wantLines), got)
			}
			for i, e := range got {
				if e.Status != tt.wantLines[i] {
					t.Errorf("line %d: status %d, want %d", i, e.Status, tt.wantLines[i])
				}
				wantUser, wantDevice := "", ""
				if e.Status == 200 {
					wantUser, wantDevice = hostileUser, "00-04-F2-AA-BB-CC"
				}
				if e.User != wantUser || e.Device != wantDevice {
					t.Errorf("line %d: user %q device %q, want %q and %q", i, e.User, e.Device, wantUser, wantDevice)
				}
			}
		})
	}
}
