package provisioning_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/opendus/opendus/provisioning"
)

// BenchmarkSignIn measures the handler for each outcome of a Basic
// sign-in. Refusals of an unknown user and of a wrong password should
// cost the same: compare their ns/op.
func BenchmarkSignIn(b *testing.B) {
	h := provisioning.NewHandler(testConfig(directory{users: testUsers}.authenticator(), io.Discard))
	for _, bb := range []struct{ name, user, password string }{
		{"ok", "alice", "Passw0rd!"},
		{"wrong-password", "alice", "Passw0rd?"},
		{"unknown-user", "mallory", "Passw0rd!"},
		{"disabled", "bob", "bob's secret"},
	} {
		b.Run(bb.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodPost, provisioning.Path, nil)
			req.TLS = &tls.ConnectionState{}
			req.SetBasicAuth(bb.user, bb.password)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
			}
		})
	}
}

func BenchmarkParseDocument(b *testing.B) {
	d := provisioning.Document{User: "alice", Issued: t0, InternalURL: intURL, ExternalURL: extURL, Enabled: true, CheckInterval: 24 * time.Hour}
	data := d.AppendXML(nil)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := provisioning.ParseDocument(data); err != nil {
			b.Fatal(err)
		}
	}
}
