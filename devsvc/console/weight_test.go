package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/firmware"
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

// TestRolloutPageWeight: a rollout's page over 200 sites, every wave's
// sites or one wave's, stays under maxFirstLoad with its files, and so
// does its event stream's first event.
func TestRolloutPageWeight(t *testing.T) {
	e := newEnv(t, Config{}, 0)
	ctx := context.Background()
	for i := range 4000 {
		d := firmware.Device{MAC: fmt.Sprintf("00-04-F2-01-%02X-%02X", i>>8, i&0xff), Identity: cx600ID, Version: v4300,
			Site: fmt.Sprintf("branch-%03d", i%200), LastCheckIn: e.clock.Now()}
		e.retry(func() error { return e.st.RecordCheckIn(ctx, d) })
	}
	e.startRollout(t, "1%,10%,50%,100%")
	c := e.signedIn("alice", alicePW)
	p := "/rollouts/" + cx600ID.RuleID()
	for _, q := range []string{"", "?wave=3"} {
		r := c.get(p + q)
		if n := strings.Count(r.body, `href="/sites/branch-`); n != 200 {
			t.Errorf("GET %s%s lists %d sites, want 200", p, q, n)
		}
		total := len(r.body)
		for _, a := range regexpAll(`(?:href|src)="(/static/[^"]+)"`, r.body) {
			total += len(c.get(a).body)
		}
		t.Logf("%s%s with 200 sites: %d bytes with its files", p, q, total)
		if total > maxFirstLoad {
			t.Errorf("GET %s%s transfers %d bytes on first load, more than %d", p, q, total, maxFirstLoad)
		}
	}
	live := regexpAll(`data-live="([^"]+)"`, c.get(p).body)
	ev := c.getStream(strings.ReplaceAll(live[0], "&amp;", "&"))
	t.Logf("its stream's first event: %d bytes", len(ev.body))
	if len(ev.body) > maxFirstLoad {
		t.Errorf("the stream's first event is %d bytes", len(ev.body))
	}
}

// TestChangedFields: after a stream's first event, each event carries
// only the fields that changed, none when nothing did; a reload always.
func TestChangedFields(t *testing.T) {
	prev := map[string]any{"w1.installed": 1, "w1.open": "open", "failures": "none"}
	for _, tc := range []struct {
		next map[string]any
		want map[string]any
	}{
		{map[string]any{"w1.installed": 1, "w1.open": "open", "failures": "none"}, nil},
		{map[string]any{"w1.installed": 2, "w1.open": "open", "failures": "none"}, map[string]any{"w1.installed": 2}},
		{map[string]any{"w1.installed": 2, "w1.open": "open", "failures": "0x80070005 1", "s/lab.devices": 3},
			map[string]any{"failures": "0x80070005 1", "s/lab.devices": 3}},
		{map[string]any{"w1.installed": 2, "w1.open": "open", "failures": "0x80070005 1", "s/lab.devices": 3}, nil},
		{map[string]any{reloadField: true}, map[string]any{reloadField: true}},
	} {
		got := changedFields(prev, tc.next)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("changedFields(..., %v) = %v, want %v", tc.next, got, tc.want)
		}
	}
}

// TestLiveCache: the streams of a live page share one computation per
// period, and compute again when the catalog changed or the period
// passed; a failed computation is not kept.
func TestLiveCache(t *testing.T) {
	computed := 0
	compute := func() (any, error) { computed++; return computed, nil }
	lc := liveCache{period: time.Hour}
	for _, tc := range []struct {
		key  string
		seq  uint64
		want int
	}{
		{"rollout a", 1, 1}, {"rollout a", 1, 1}, {"rollout b", 1, 2}, {"rollout a", 2, 3}, {"rollout a", 2, 3},
	} {
		if v, err := lc.get(tc.key, tc.seq, compute); err != nil || v != tc.want {
			t.Errorf("get(%q, %d) = %v, %v; want %d", tc.key, tc.seq, v, err, tc.want)
		}
	}
	if _, err := lc.get("rollout c", 2, func() (any, error) { return nil, errors.New("gone") }); err == nil {
		t.Error("a failed computation did not fail")
	}
	if v, _ := lc.get("rollout c", 2, compute); v != 4 {
		t.Errorf("after a failure, got %v, want a new computation", v)
	}
	lc.period = -1 // every entry has had its time
	if v, _ := lc.get("rollout a", 2, compute); v != 5 {
		t.Errorf("after the period, got %v, want a new computation", v)
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
