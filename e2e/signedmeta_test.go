package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/devsvctest"
	"github.com/opendus/opendus/simulator"
	"github.com/opendus/opendus/updatemeta"
)

// What a relay between the devices and the service does to what it
// relays: it stands in for a compromised replica or cache.
type relayMode int

const (
	relayPass      relayMode = iota // relays, with its own URLs in the answers
	relayHold                       // answers offer nothing (a relay may always delay)
	relayFlipFile                   // changes a byte of every image it relays
	relayHash                       // changes the image's SHA-256 in the answers
	relayReplay                     // serves the metadata it recorded, and offers nothing
	relayDowngrade                  // answers with the offer it recorded
	relayPieces                     // changes a hash in every piece list
)

// relay is an HTTPS reverse proxy with a certificate of its own (which
// the devices trust) in front of the service's internal listener.
type relay struct {
	srv      *httptest.Server
	primary  string // the service's internal base URL
	mu       sync.Mutex
	mode     relayMode
	record   bool
	recorded map[string][]byte // metadata by path, while recording
	offer    []byte            // the last answer with an offer, while recording
	seen     map[relayMode]int // requests it tampered with, by mode
}

func newRelay(t *testing.T, s *devsvctest.Service, svc simulator.Service) *relay {
	t.Helper()
	ca, err := simulator.LoadCA(filepath.Join(s.Dir, datadir.CertsDir, certs.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(svc.InternalURL)
	upstream := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca, ServerName: u.Hostname()},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, s.Run.Internal) // the name is the simulator's DNS's
		},
		ForceAttemptHTTP2: true,
	}
	r := &relay{primary: svc.InternalURL, recorded: map[string][]byte{}, seen: map[relayMode]int{}}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = u.Host
		},
		Transport:      upstream,
		ModifyResponse: r.modify,
	}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		mode := r.mode
		b, ok := r.recorded[req.URL.Path]
		r.mu.Unlock()
		if mode == relayReplay && strings.HasPrefix(req.URL.Path, deviceproto.MetadataPrefix) {
			r.count(mode)
			if !ok {
				http.NotFound(w, req)
				return
			}
			w.Write(b)
			return
		}
		proxy.ServeHTTP(w, req)
	}))
	r.srv.EnableHTTP2 = true
	r.srv.StartTLS()
	t.Cleanup(r.srv.Close)
	return r
}

func (r *relay) set(mode relayMode, record bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mode, r.record = mode, record
}

func (r *relay) count(m relayMode) {
	r.mu.Lock()
	r.seen[m]++
	r.mu.Unlock()
}

func (r *relay) tampered(m relayMode) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[m]
}

// url is the relay's base URL.
func (r *relay) url() string { return r.srv.URL + "/" }

// modify changes what the service answered as the mode says.
func (r *relay) modify(resp *http.Response) error {
	r.mu.Lock()
	mode, record := r.mode, r.record
	r.mu.Unlock()
	path := resp.Request.URL.Path
	if resp.StatusCode != http.StatusOK {
		if record && strings.HasPrefix(path, deviceproto.MetadataPrefix) {
			r.mu.Lock()
			delete(r.recorded, path)
			r.mu.Unlock()
		}
		return nil
	}
	switch {
	case strings.HasPrefix(path, deviceproto.MetadataPrefix):
		if !record {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.recorded[path] = body
		r.mu.Unlock()
		setBody(resp, body)
	case path == deviceproto.CheckInPath:
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		a, err := deviceproto.ParseAnswer(body)
		if err != nil {
			return err
		}
		a.InternalURL = strings.Replace(a.InternalURL, r.primary, r.url(), 1)
		if record && len(a.Files) > 0 {
			r.mu.Lock()
			r.offer = a.AppendXML(nil)
			r.mu.Unlock()
		}
		switch mode {
		case relayHold, relayReplay:
			a.Files, a.Version = nil, firmware.Version{}
		case relayHash:
			if len(a.Files) > 0 {
				a.Files[0].SHA256 = strings.Repeat("ab", 32)
				r.count(mode)
			}
		case relayDowngrade:
			r.mu.Lock()
			old := r.offer
			r.mu.Unlock()
			if old != nil {
				if a, err = deviceproto.ParseAnswer(old); err != nil {
					return err
				}
				r.count(mode)
			}
		}
		setBody(resp, a.AppendXML(nil))
	case mode == relayPieces && strings.HasPrefix(path, deviceproto.PiecesPrefix):
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		// The first piece's hash, the line after "piece-size ...".
		lines := strings.SplitN(string(body), "\n", 5)
		if len(lines) == 5 {
			lines[3] = strings.Repeat("0", 64)
			body = []byte(strings.Join(lines, "\n"))
			r.count(mode)
		}
		setBody(resp, body)
	case mode == relayFlipFile && strings.HasPrefix(path, deviceproto.FilesPrefix) && strings.HasSuffix(path, ".nbt") && resp.Request.Method == http.MethodGet:
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if len(body) > 0 {
			body[len(body)/2] ^= 0xff
			r.count(mode)
		}
		setBody(resp, body)
	}
	return nil
}

func setBody(resp *http.Response, body []byte) {
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
}

var (
	sv0 = firmware.MustParseVersion("0.9.0.1")
	sv1 = firmware.MustParseVersion("1.0.0.1")
	sv2 = firmware.MustParseVersion("2.0.0.1")
)

// signedService starts a service on a simulated clock (logging at debug
// level) that checks devices every hour and signs timestamps valid for two hours, with
// versions 1 and 2 of cx600 imported and 1 approved.
func signedService(t *testing.T) *devsvctest.Service {
	t.Helper()
	bin, dir := devsvctest.Init(t, domain)
	setSetting(t, dir, "check_interval", "1h")
	setSetting(t, dir, "metadata_timestamp_expiry", "2h")
	// Debug logs: the service logs each status report with its error.
	s := devsvctest.Start(t, bin, dir, "--simulated-clock", rehearsalStart.Format(time.RFC3339), "--log-level", "debug")
	for _, v := range []firmware.Version{sv1, sv2} {
		tree := t.TempDir()
		if err := simulator.WriteFirmware(tree, cx600, v, 300<<10); err != nil {
			t.Fatal(err)
		}
		s.CLI(t, "import", tree)
		if v == sv1 {
			s.CLI(t, "approve", cx600.Path())
		}
	}
	return s
}

// relayedFleet is n devices of cx600 running from, provisioned with the
// service's first root, that reach the service through a relay.
func relayedFleet(t *testing.T, s *devsvctest.Service, n int, from firmware.Version) (*simulator.Sim, *relay) {
	t.Helper()
	svc, err := simulator.LoadService(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Root) == 0 {
		t.Fatal("the data directory has no root for the devices (keys/root/1.root.json)")
	}
	r := newRelay(t, s, svc)
	svc.RelayURL = r.url()
	svc.RootCAs.AddCert(r.srv.Certificate())
	sc := simulator.Scenario{Seed: 15, Start: rehearsalStart, Duration: simulator.Duration(14 * 24 * time.Hour),
		Groups: []simulator.Group{{Model: cx600.Path(), Count: n, Version: from.String()}}}
	sim, err := simulator.New(sc, svc, simulator.Config{Lookahead: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim, r
}

// fleetVersions counts the devices' versions.
func fleetVersions(sim *simulator.Sim) map[firmware.Version]int {
	m := map[firmware.Version]int{}
	for _, d := range sim.Devices() {
		m[d.Version]++
	}
	return m
}

func refusals(rep simulator.Report, reason string) int64 {
	for _, c := range rep.VerifyRefusals {
		if c.Reason == reason {
			return c.Count
		}
	}
	return 0
}

func failures(rep simulator.Report, substr string) int64 {
	var n int64
	for _, c := range rep.Failures {
		if strings.Contains(c.Reason, substr) {
			n += c.Count
		}
	}
	return n
}

// TestSignedMetadataTamper runs real devsvc serve processes, a relay
// between them and a simulated fleet of verifying devices, and makes the
// relay tamper as a compromised replica or cache would: every device
// refuses, the service hears why (a failure status with the reason), and
// the devices end on the right version, from the service itself.
func TestSignedMetadataTamper(t *testing.T) {
	const n = 12
	tests := []struct {
		name string
		// run drives the fleet; it returns the version every device must
		// end on.
		run    func(t *testing.T, s *devsvctest.Service, sim *simulator.Sim, r *relay) firmware.Version
		mode   relayMode
		reason string // the verification refusal; "" for a failed download
		code   string // the status reports' error code
	}{
		{name: "changed file", mode: relayFlipFile, code: "checksum",
			run: func(t *testing.T, s *devsvctest.Service, sim *simulator.Sim, r *relay) firmware.Version {
				r.set(relayFlipFile, false)
				runUntil(t, sim, 8*time.Hour)
				return sv1
			}},
		{name: "changed hash in the answer", mode: relayHash, reason: string(updatemeta.ReasonAnswerHash),
			run: func(t *testing.T, s *devsvctest.Service, sim *simulator.Sim, r *relay) firmware.Version {
				r.set(relayHash, false)
				runUntil(t, sim, 8*time.Hour)
				return sv1
			}},
		{name: "changed piece list", mode: relayPieces, reason: string(updatemeta.ReasonPieces),
			run: func(t *testing.T, s *devsvctest.Service, sim *simulator.Sim, r *relay) firmware.Version {
				r.set(relayPieces, false)
				runUntil(t, sim, 8*time.Hour)
				return sv1
			}},
		{name: "replayed metadata after a newer approval", mode: relayReplay, reason: string(updatemeta.ReasonRollback),
			run: func(t *testing.T, s *devsvctest.Service, sim *simulator.Sim, r *relay) firmware.Version {
				r.set(relayPass, true) // yesterday: version 1, recorded
				runUntil(t, sim, 8*time.Hour)
				s.CLI(t, "approve", cx600.Path())
				r.set(relayHold, false) // the devices see the approval, and are held
				runUntil(t, sim, 12*time.Hour)
				r.set(relayReplay, false) // then yesterday's metadata
				runUntil(t, sim, 20*time.Hour)
				return sv2
			}},
		{name: "metadata past its expiry", mode: relayReplay, reason: string(updatemeta.ReasonExpired),
			run: func(t *testing.T, s *devsvctest.Service, sim *simulator.Sim, r *relay) firmware.Version {
				r.set(relayPass, true)
				runUntil(t, sim, 8*time.Hour)
				s.CLI(t, "approve", cx600.Path())
				// The relay freezes the devices on what they trust: it
				// serves them that until it expires (2h).
				r.set(relayReplay, false)
				runUntil(t, sim, 20*time.Hour)
				return sv2
			}},
		{name: "older version not restored", mode: relayDowngrade, reason: string(updatemeta.ReasonNotSigned),
			run: func(t *testing.T, s *devsvctest.Service, sim *simulator.Sim, r *relay) firmware.Version {
				r.set(relayPass, true) // records an offer of version 1
				runUntil(t, sim, 8*time.Hour)
				s.CLI(t, "approve", cx600.Path())
				r.set(relayPass, false)
				runUntil(t, sim, 16*time.Hour) // all on version 2
				if got := fleetVersions(sim); got[sv2] != n {
					t.Fatalf("before the downgrade: versions %v, want all %d on %s", got, n, sv2)
				}
				r.set(relayDowngrade, false) // offers version 1 again
				runUntil(t, sim, 24*time.Hour)
				return sv2
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := signedService(t)
			sim, r := relayedFleet(t, s, n, sv0)
			want := tc.run(t, s, sim, r)
			rep := sim.Report()
			t.Logf("versions %v; verified check-ins %d, refusals %v, failures %v; relay tampered %d times", fleetVersions(sim), rep.VerifiedCheckIns,
				rep.VerifyRefusals, rep.Failures, r.tampered(tc.mode))
			if r.tampered(tc.mode) == 0 {
				t.Fatalf("the relay never tampered: the test proves nothing")
			}
			if got := fleetVersions(sim); got[want] != n {
				t.Errorf("versions at the end: %v, want all %d on %s", got, n, want)
			}
			if tc.reason != "" {
				if got := refusals(rep, tc.reason); got < n {
					t.Errorf("refusals for %s: %d, want at least one per device (%d); all: %v", tc.reason, got, n, rep.VerifyRefusals)
				}
			} else if got := failures(rep, "SHA-256"); got < n {
				t.Errorf("downloads refused for their SHA-256: %d, want at least %d; failures %v", got, n, rep.Failures)
			}
			if rep.VerifyRefusedDevices != n {
				t.Errorf("devices that refused: %d, want %d", rep.VerifyRefusedDevices, n)
			}
			code := tc.code
			if code == "" {
				code = "verify:" + tc.reason
			}
			if got := strings.Count(s.Logs(), `"error":"`+code+`"`); got < n {
				t.Errorf("status reports with error %s the service logged: %d, want at least %d", code, got, n)
			}
		})
	}
}

// TestSignedMetadataRestore: a restore is signed as an intended
// downgrade, and devices take it through the relay without refusing.
func TestSignedMetadataRestore(t *testing.T) {
	const n = 12
	s := signedService(t)
	s.CLI(t, "approve", cx600.Path()) // version 2; version 1 is the restore version
	sim, r := relayedFleet(t, s, n, sv2)
	runUntil(t, sim, 4*time.Hour)
	s.CLI(t, "restore", cx600.Path())
	runUntil(t, sim, 16*time.Hour)
	rep := sim.Report()
	if got := fleetVersions(sim); got[sv1] != n {
		t.Errorf("versions after the restore: %v, want all %d on %s", got, n, sv1)
	}
	if len(rep.VerifyRefusals) != 0 || rep.VerifyRefusedDevices != 0 {
		t.Errorf("refusals of a restore: %v (%d devices), want none", rep.VerifyRefusals, rep.VerifyRefusedDevices)
	}
	if rep.VerifiedCheckIns == 0 {
		t.Errorf("no check-in was verified")
	}
	// The timestamp is re-signed every hour (half of its two hours), as
	// often as the devices check in: the answers staple it, so that the
	// devices fetch only what the approval and the restore changed.
	t.Logf("verified check-ins %d: %d current by the answer, %d stapled; %d metadata requests", rep.VerifiedCheckIns, rep.MetadataCurrent, rep.MetadataStapled, rep.MetadataRequests)
	if rep.MetadataStapled < int64(n) || rep.MetadataRequests > rep.VerifiedCheckIns/2 {
		t.Errorf("%d check-ins with a stapled timestamp, %d metadata requests for %d verified check-ins; want at least %d and at most %d",
			rep.MetadataStapled, rep.MetadataRequests, rep.VerifiedCheckIns, n, rep.VerifiedCheckIns/2)
	}
	_ = r
}

// TestSignedMetadataKeyRotation rotates the online keys, then the root
// (kept offline, given back for the rotation), on a running primary:
// devices provisioned with the first root follow the chain and keep
// updating, without being provisioned again and without a refusal.
func TestSignedMetadataKeyRotation(t *testing.T) {
	const n = 12
	s := signedService(t)
	sim, _ := relayedFleet(t, s, n, sv0)
	runUntil(t, sim, 6*time.Hour)
	if got := fleetVersions(sim); got[sv1] != n {
		t.Fatalf("before the rotation: versions %v, want all %d on %s", got, n, sv1)
	}
	rootKey := filepath.Join(t.TempDir(), "root.key")
	s.CLI(t, "keys", "export", "--root-key", rootKey, "--remove")
	if _, _, err := s.TryCLI("keys", "rotate"); err == nil {
		t.Errorf("keys rotate with the root key offline and not given: succeeded, want a refusal")
	}
	s.CLI(t, "keys", "rotate", "--root-key", rootKey)
	runUntil(t, sim, 8*time.Hour)
	s.CLI(t, "keys", "rotate", "--root", "--root-key", rootKey)
	var st struct {
		RootVersion int `json:"rootVersion"`
	}
	s.JSON(t, &st, "keys", "list")
	if st.RootVersion != 3 {
		t.Errorf("root version after two rotations: %d, want 3", st.RootVersion)
	}
	s.CLI(t, "approve", cx600.Path())
	runUntil(t, sim, 20*time.Hour)
	rep := sim.Report()
	if got := fleetVersions(sim); got[sv2] != n {
		t.Errorf("after the rotations: versions %v, want all %d on %s", got, n, sv2)
	}
	if len(rep.VerifyRefusals) != 0 {
		t.Errorf("refusals across the rotations: %v, want none", rep.VerifyRefusals)
	}
	// The root a device would be provisioned with now is version 3.
	resp, err := httpsGet(t, s, deviceproto.MetadataPrefix+"root.json")
	if err != nil {
		t.Fatal(err)
	}
	ri, err := updatemeta.ParseRoot(resp)
	if err != nil || ri.Version != 3 {
		t.Errorf("GET /Metadata/root.json: version %d (%v), want 3", ri.Version, err)
	}
}

// httpsGet fetches path from the service's internal listener.
func httpsGet(t *testing.T, s *devsvctest.Service, path string) ([]byte, error) {
	t.Helper()
	pem, err := certsPool(s)
	if err != nil {
		return nil, err
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pem, ServerName: "ucupdates-r2." + domain}}}
	resp, err := c.Get("https://" + s.Run.Internal + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

func certsPool(s *devsvctest.Service) (*x509.CertPool, error) {
	return simulator.LoadCA(filepath.Join(s.Dir, datadir.CertsDir, certs.CACertFile))
}
