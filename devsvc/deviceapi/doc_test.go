package deviceapi_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/deviceapi"
	"github.com/opendus/opendus/devsvc/peers"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

var update = flag.Bool("update", false, "rewrite the examples in docs/protocol.md from the handlers' answers")

const protocolDoc = "../../docs/protocol.md"

// exchange is one request to a handler and its answer, as a transcript.
type exchange struct {
	h      http.Handler
	method string
	path   string
	header []string // name, value pairs
	body   []byte
	remote string // the peer's address; "" is httptest's, 192.0.2.1
}

// transcript runs e and writes the request and the answer as HTTP/1.1
// text. Binary bodies are summarised.
func (e exchange) transcript() string {
	var b strings.Builder
	req := httptest.NewRequest(e.method, e.path, bytes.NewReader(e.body))
	req.Host = "ucupdates-r2.contoso.com"
	if e.remote != "" {
		req.RemoteAddr = e.remote
	}
	fmt.Fprintf(&b, "%s %s HTTP/1.1\nHost: %s\n", e.method, e.path, req.Host)
	for i := 0; i+1 < len(e.header); i += 2 {
		req.Header.Set(e.header[i], e.header[i+1])
		fmt.Fprintf(&b, "%s: %s\n", e.header[i], e.header[i+1])
	}
	if len(e.body) > 0 {
		fmt.Fprintf(&b, "Content-Type: application/xml; charset=utf-8\nContent-Length: %d\n\n%s", len(e.body), e.body)
		if !bytes.HasSuffix(e.body, []byte("\n")) {
			b.WriteString("\n")
		}
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	fmt.Fprintf(&b, "\nHTTP/1.1 %d %s\n", w.Code, http.StatusText(w.Code))
	keys := make([]string, 0, len(w.Header()))
	for k := range w.Header() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range w.Header()[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	switch body := w.Body.Bytes(); {
	case len(body) == 0:
	case bytes.ContainsFunc(body, func(r rune) bool { return r == 0xFFFD || r < 0x09 }):
		fmt.Fprintf(&b, "\n(%d bytes of the file)\n", len(body))
	default:
		b.WriteString("\n")
		b.Write(body)
	}
	return b.String()
}

// TestProtocolDoc checks that the examples in docs/protocol.md are what
// the handlers answer (go test -run TestProtocolDoc -update rewrites them).
// Each example sits between "<!-- example NAME -->" and
// "<!-- end example -->".
func TestProtocolDoc(t *testing.T) {
	st := offerStore(t)
	cfg := deviceapi.Config{InternalURL: intURL, ExternalURL: extURL, Now: fixedClock, RetryAfter: time.Minute}
	srv := deviceapi.New(st, cfg)
	moved := cfg
	moved.MovedInternalURL, moved.MovedExternalURL = "https://dus2.contoso.com/", "https://dus2-ext.contoso.com/"
	busy := deviceapi.New(busyStore{st}, cfg)
	in, ext := srv.Internal(), srv.External()
	upToDate := checkInBody(cx600, macDevice, v1)
	offered := deviceproto.CheckIn{Identity: cx500, MAC: macDevice, Serial: "CX5-000123", User: "alice@contoso.com", Modules: []firmware.Module{
		{Name: "CX500.nbt", Version: firmware.MustParseVersion("3.5.6000.12"), Timestamp: "2025-06-01T10:00:00Z"},
	}}
	file := deviceproto.FilesPrefix + "UCPhone/Polycom/CX500/A/ENU/" + v1.String() + "/CX500.nbt"
	etag := `"` + hexSum(imageOf(cx500, v1)) + `"`
	failure := deviceproto.Status{MAC: macDevice, State: firmware.StateFailure, Target: v1, ErrorCode: "0x80070070"}
	replicaCfg := cfg
	replicaCfg.InternalURL, replicaCfg.ExternalURL = "https://dus-paris.contoso.com/", "https://dus-paris.contoso.com:4443/"
	replicaCfg.AltInternalURL, replicaCfg.AltExternalURL = intURL, extURL
	siteCfg := cfg
	siteCfg.Mirror = func(site string, loc firmware.Location, u firmware.Update) (string, string, bool) {
		return "https://dus-paris.contoso.com/", "https://dus-paris.contoso.com:4443/", loc == firmware.Internal
	}
	// A rollout of cx600's pending version in two waves, and a site with a
	// night window: a device of the first wave is held by the window by day
	// (10:00 in Berlin) and offered the version at night with InstallBy;
	// one of the second wave, at no site, is held until its wave opens.
	ro := rolloutDocStore(t)
	day := deviceapi.New(ro, cfg)
	nightCfg := cfg
	nightCfg.Now = func() time.Time { return t0.Add(13 * time.Hour) } // 22:00 UTC, 23:00 in Berlin
	night := deviceapi.New(ro, nightCfg)
	wave0, wave1 := docWaveMACs()
	// Subnet peers: two peer-capable devices of 192.0.2.0/24 offered
	// cx500's version, the first elected representative.
	withPeers := cfg
	withPeers.Peers = peers.New(peers.Config{})
	peerSrv := deviceapi.New(st, withPeers).Internal()
	peerCheckIn := func(mac, serve string) []byte {
		c := offered
		c.MAC, c.Serial, c.User = mac, "", ""
		c.Peer = deviceproto.PeerServer{Addr: netip.MustParseAddrPort(serve)}
		return c.AppendXML(nil)
	}
	examples := map[string]exchange{
		"checkin-replica":      {h: deviceapi.New(st, replicaCfg).Internal(), method: "POST", path: deviceproto.CheckInPath, body: offered.AppendXML(nil)},
		"checkin-site-replica": {h: deviceapi.New(st, siteCfg).Internal(), method: "POST", path: deviceproto.CheckInPath, body: offered.AppendXML(nil)},
		"checkin-peer-representative": {h: peerSrv, method: "POST", path: deviceproto.CheckInPath, body: peerCheckIn("00-04-F2-00-00-21", "192.0.2.21:47010"),
			remote: "192.0.2.21:50123"},
		"checkin-peer-fetch": {h: peerSrv, method: "POST", path: deviceproto.CheckInPath, body: peerCheckIn("00-04-F2-00-00-22", "192.0.2.22:47010"),
			remote: "192.0.2.22:50123"},
		"pieces-list":       {h: in, method: "GET", path: deviceproto.PiecesPath(hexSum(imageOf(cx500, v1)))},
		"checkin-held-wave": {h: day.Internal(), method: "POST", path: deviceproto.CheckInPath, body: checkInBody(cx600, wave1, v1), remote: "198.51.100.7:50123"},
		"checkin-held-window": {h: day.Internal(), method: "POST", path: deviceproto.CheckInPath, body: checkInBody(cx600, wave0, v1),
			remote: "192.0.2.1:50123"},
		"checkin-offer-installby": {h: night.Internal(), method: "POST", path: deviceproto.CheckInPath, body: checkInBody(cx600, wave0, v1),
			remote: "192.0.2.1:50123"},
		"checkin-offer":      {h: in, method: "POST", path: deviceproto.CheckInPath, body: offered.AppendXML(nil)},
		"checkin-nothing":    {h: in, method: "POST", path: deviceproto.CheckInPath, body: upToDate},
		"checkin-moved":      {h: deviceapi.New(st, moved).Internal(), method: "POST", path: deviceproto.CheckInPath, body: upToDate},
		"checkin-malformed":  {h: in, method: "POST", path: deviceproto.CheckInPath, body: bytes.Replace(upToDate, []byte("<Vendor>Polycom</Vendor>"), nil, 1)},
		"checkin-busy":       {h: busy.Internal(), method: "POST", path: deviceproto.CheckInPath, body: upToDate},
		"checkin-disk-full":  {h: deviceapi.New(unwritableStore{st}, cfg).Internal(), method: "POST", path: deviceproto.CheckInPath, body: upToDate},
		"checkin-ext-nouser": {h: ext, method: "POST", path: deviceproto.CheckInPathExt, body: upToDate},
		"status-downloading": {h: in, method: "POST", path: deviceproto.StatusPath,
			body: statusBody(macDevice, firmware.StateDownloading, v1, "")},
		"status-failure": {h: in, method: "POST", path: deviceproto.StatusPath, body: failure.AppendXML(nil)},
		"status-not-checked-in": {h: in, method: "POST", path: deviceproto.StatusPath,
			body: statusBody("00-04-F2-00-00-42", firmware.StateSuccess, firmware.MustParseVersion("9.9.9.9"), "")},
		"download-head":    {h: in, method: "HEAD", path: file},
		"download-resume":  {h: in, method: "GET", path: file, header: []string{"Range", "bytes=99990-", "If-Range", etag}},
		"download-cached":  {h: in, method: "GET", path: file, header: []string{"If-None-Match", etag}},
		"download-416":     {h: in, method: "GET", path: file, header: []string{"Range", "bytes=100000-"}},
		"download-escape":  {h: in, method: "GET", path: deviceproto.FilesPrefix + "UCPhone/Polycom/CX500/A/ENU/" + v1.String() + "/..%2F..%2Fopendus.db"},
		"download-missing": {h: in, method: "GET", path: deviceproto.FilesPrefix + "UCPhone/Polycom/CX500/A/ENU/9.9.9.9/CX500.nbt"},
	}
	doc, err := os.ReadFile(protocolDoc)
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)<!-- example ([a-z0-9-]+) -->\n```http\n(.*?)```\n<!-- end example -->")
	seen := map[string]bool{}
	out := block.ReplaceAllFunc(doc, func(m []byte) []byte {
		sub := block.FindSubmatch(m)
		name := string(sub[1])
		e, ok := examples[name]
		if !ok {
			t.Errorf("%s has an example %q the test does not know", protocolDoc, name)
			return m
		}
		seen[name] = true
		got := e.transcript()
		if !*update && got != string(sub[2]) {
			t.Errorf("example %s in %s is stale (go test -run TestProtocolDoc -update rewrites it); the handler answers:\n%s", name, protocolDoc, got)
		}
		return fmt.Appendf(nil, "<!-- example %s -->\n```http\n%s```\n<!-- end example -->", name, got)
	})
	for name := range examples {
		if !seen[name] {
			t.Errorf("%s lacks the example %q", protocolDoc, name)
		}
	}
	if *update {
		if err := os.WriteFile(protocolDoc, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st.Flush(context.Background())
	ro.Flush(context.Background())
}

// docPlan is the rollout of the protocol's examples: 10% of the devices,
// then all of them 4 hours later.
var docPlan = firmware.Plan{Waves: firmware.Waves{1000, firmware.Whole}, WaveWait: 4 * time.Hour, Success: 9000, MaxFailures: firmware.FailureShare(1000)}

// rolloutDocStore is offerStore with cx600's pending version rolled out by
// docPlan and a site, berlin-hq (192.0.2.0/24, Europe/Berlin), whose
// window is 22:00-05:00.
func rolloutDocStore(t *testing.T) *store.Store {
	st := offerStore(t)
	ctx := context.Background()
	site := firmware.Site{Name: "berlin-hq", Subnets: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, TimeZone: "Europe/Berlin",
		Windows: firmware.MustParseSchedule("22:00-05:00")}
	if _, err := st.PutSite(ctx, "test", site, false); err != nil {
		t.Fatal(err)
	}
	if _, err := st.StartRollout(ctx, "test", cx600.Path(), docPlan); err != nil {
		t.Fatal(err)
	}
	return st
}

// docWaveMACs returns the first MACs 00-04-F2-00-01-xx in the first and
// the second wave of docPlan.
func docWaveMACs() (wave0, wave1 string) {
	for i := 0; wave0 == "" || wave1 == ""; i++ {
		mac := fmt.Sprintf("00-04-F2-00-01-%02X", i)
		switch k := docPlan.Waves.Wave(firmware.Cohort(mac)); {
		case k == 0 && wave0 == "":
			wave0 = mac
		case k == 1 && wave1 == "":
			wave1 = mac
		}
	}
	return wave0, wave1
}
