package console

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/opendus/opendus/devsvc/service"
)

// fleetSize is the fleet the devices page must serve quickly.
const fleetSize = 100000

// devicesQueries are the devices pages measured: the first page, filters
// by model and state, by site and state and by rule and version, a text
// search that matches one device, and a page far into a filter (from its
// cursor).
var devicesQueries = []struct{ name, query string }{
	{"all", ""},
	{"model+state", "?model=" + url.QueryEscape(cx600) + "&state=retrying"},
	{"site+state", "?site=ny&state=waiting"},
	{"rule+version", "?rule=" + cx600ID.RuleID() + "&version=4.0.7577.4300"},
	{"text", "?q=user4242"},
	{"model+version+page", "?model=" + url.QueryEscape(cx600) + "&version=4.0.7577.4300&after=00-04-F2-01-82-B8&page=1715"},
}

// signedInRequest returns a request for p carrying alice's session, to
// call the handler in-process: its server time, without TLS and network.
func (e *env) signedInRequest(p string) *http.Request {
	e.t.Helper()
	c := e.signedIn("alice", alicePW)
	u, _ := url.Parse(e.srv.URL)
	req := httptest.NewRequest("GET", p, nil)
	for _, ck := range c.hc.Jar.Cookies(u) {
		req.AddCookie(ck)
	}
	return req
}

func (e *env) serve(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.c.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		e.t.Fatalf("GET %s: %d\n%s", req.URL, rec.Code, rec.Body)
	}
	return rec
}

// BenchmarkDevicesPage renders the devices page over a real store seeded
// with 100,000 devices through the store's API, in-process (server time),
// through the store's indexed query.
func BenchmarkDevicesPage(b *testing.B) {
	e := newEnv(b, Config{}, fleetSize)
	for _, q := range devicesQueries {
		b.Run(q.name, func(b *testing.B) {
			req := e.signedInRequest("/devices" + q.query)
			e.serve(req)
			b.ReportAllocs()
			for b.Loop() {
				e.serve(req)
			}
		})
	}
}

// BenchmarkRolloutPage renders a rollout's page, and computes one event
// of its stream, over 100,000 devices (a walk of the fleet index each).
func BenchmarkRolloutPage(b *testing.B) {
	e := newEnv(b, Config{}, fleetSize)
	e.startRollout(b, "1%,10%,50%,100%")
	p := "/rollouts/" + cx600ID.RuleID()
	b.Run("page", func(b *testing.B) {
		req := e.signedInRequest(p)
		for b.Loop() {
			e.serve(req)
		}
	})
	b.Run("event", func(b *testing.B) {
		ctx := service.WithPrincipal(b.Context(), certAdmin)
		for b.Loop() {
			pr, err := e.svc.RolloutProgress(ctx, cx600)
			if err != nil {
				b.Fatal(err)
			}
			rolloutFields(&pr, pr.Sites, pr.Holds)
		}
	})
}
