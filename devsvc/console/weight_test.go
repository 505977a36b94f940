package console

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// maxFirstLoad is the most a page may transfer on first load, with every
// file it loads.
const maxFirstLoad = 150 << 10

// TestPageWeight fetches every page of the router, as a signed-in admin
// with a fleet in the inventory, and every file each page loads, and sums
// the bytes: none may pass maxFirstLoad.
func TestPageWeight(t *testing.T) {
	e := newEnv(t, Config{}, 300)
	c := e.signedIn("alice", alicePW)
	c.get("/import")
	res := c.upload("UCUpdates.zip", zipOf(t, [2]string{cx600 + "/4.0.7577.4400/CX600.nbt", "image"}), c.csrf)
	e.startRollout(t, "10%,50%,100%")
	pages := map[string]*client{"/signin": e.client(), res.Header.Get("Location"): c}
	for _, rt := range e.c.routes {
		method, p := samplePath(rt.pattern)
		if method != "GET" || rt.public || rt.stream {
			continue
		}
		if strings.Contains(rt.pattern, "{id}") {
			continue // the import result, above
		}
		if strings.Contains(rt.pattern, "{key}") {
			p = "/devices/" + url.PathEscape(e.devices[0].Key)
		}
		switch {
		case p == "/updates/confirm":
			p += "?rule=" + url.QueryEscape(cx600) + "&action=reject"
		case p == "/rollouts/new":
			p += "?rule=" + url.QueryEscape(cx600)
		case strings.HasSuffix(p, "/confirm"):
			p += "?action=pause"
		}
		pages[p] = c
	}
	for p, cl := range pages {
		r := cl.get(p)
		if r.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", p, r.Status)
			continue
		}
		total := len(r.body)
		assets := regexpAll(`(?:href|src)="(/static/[^"]+)"`, r.body)
		if len(assets) < 3 {
			t.Errorf("GET %s loads %d files, want the stylesheet, the script and the logo", p, len(assets))
		}
		seen := map[string]bool{}
		for _, a := range assets {
			if seen[a] {
				continue
			}
			seen[a] = true
			ar := cl.get(a)
			if ar.StatusCode != http.StatusOK {
				t.Errorf("GET %s's %s: %s", p, a, ar.Status)
			}
			total += len(ar.body)
		}
		t.Logf("%-40s %6d bytes with %d files", p, total, len(seen))
		if total > maxFirstLoad {
			t.Errorf("GET %s transfers %d bytes on first load, more than %d", p, total, maxFirstLoad)
		}
	}
}

// TestServeEvents checks the event stream: only changes are sent, each
// as one JSON data line, and the stream ends when the producer says so.
func TestServeEvents(t *testing.T) {
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveEvents(r.Context(), w, time.Millisecond, func(context.Context) (string, any, bool, error) {
			n++
			switch {
			case n <= 2:
				return "progress", map[string]int{"done": 1}, true, nil
			case n == 3:
				return "progress", map[string]string{"done": "2\nevent: forged"}, true, nil
			case n == 4:
				return "", nil, true, errors.New("the rollout is gone")
			}
			return "", nil, false, nil
		})
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		k, err := resp.Body.Read(buf)
		b.WriteString(string(buf[:k]))
		if err != nil {
			break
		}
	}
	want := "retry: 1\n\n" +
		"event: progress\ndata: {\"done\":1}\n\n" +
		"event: progress\ndata: {\"done\":\"2\\nevent: forged\"}\n\n" +
		"event: end\ndata: {\"message\":\"the rollout is gone\"}\n\n"
	if got := b.String(); got != want {
		t.Errorf("stream:\n%q\nwant:\n%q", got, want)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
}
