package simulator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/pieces"
	"github.com/opendus/opendus/provisioning"
)

// reason is why a request was refused or an update failed.
type reason uint8

const (
	rNone reason = iota
	// Refusals.
	rNoUser        // the edge refused a device with nobody signed in
	rSignInRefused // the service refused the user's credentials
	rForbidden     // any other 401 or 403
	// Failures.
	rChecksum   // the image's SHA-256 did not match: refused
	rSize       // the image's size did not match: refused
	rPowerLoss  // the power failed during the install
	rTransfer   // a download failed even after resuming
	rNetwork    // the service was unreachable
	rDNS        // ucupdates-r2.<domain> did not resolve
	rHTTP       // an unexpected HTTP status
	rMalformed  // an answer or document the device could not read
	rNoDocument // sign-in gave no provisioning document
	rInstall    // the install failed (a fault): the old image kept
	numReasons
)

var reasonText = [numReasons]string{
	rNoUser:        "remote device with nobody signed in (edge: 401)",
	rSignInRefused: "sign-in refused",
	rForbidden:     "refused (401/403)",
	rChecksum:      "corrupted image refused (SHA-256), retried",
	rSize:          "image of the wrong size refused, retried",
	rPowerLoss:     "power loss during install: previous image kept",
	rTransfer:      "download failed after resuming",
	rNetwork:       "service unreachable",
	rDNS:           "DNS lookup of ucupdates-r2 failed",
	rHTTP:          "unexpected HTTP status",
	rMalformed:     "unreadable answer",
	rNoDocument:    "signed in, but no provisioning document (HTTP status)",
	rInstall:       "install failed: previous image kept",
}

// errorCode is the ErrorCode a device reports with a failure.
var errorCode = [numReasons]string{
	rChecksum: "checksum", rSize: "size", rPowerLoss: "power-loss", rInstall: "install",
	rTransfer: "download", rNetwork: "download", rHTTP: "download", rMalformed: "download",
}

func (r reason) refusal() bool { return r >= rNoUser && r <= rForbidden }

// tally counts what a worker's devices did; the totals are order-free sums,
// so they do not depend on which worker handled which event.
type tally struct {
	checkIns [2]int64 // internal, external
	signIns  int64
	lookups  int64
	reports  int64
	lost     int64 // status reports the service did not take
	busy     int64 // 503 answers, retried after Retry-After
	resumed  int64 // broken transfers resumed with Range
	bytes    int64
	updates  int64
	moved    int64
	missed   int64 // installs dropped because InstallBy had passed
	// Subnet peers: waits for a piece a peer had not got yet, pieces
	// that did not match the list, peers given up on otherwise, by kind.
	peerWaits, badPieces int64
	peerFailed           [numPeerFailures]int64
	refusals             [numReasons]int64
	failures             [numReasons]int64
	// The signed update metadata (verify.go): check-ins verified, bytes
	// of metadata fetched, refusals by reason (verifyReasons).
	verified  int64
	metaBytes int64
	// metaSkipped: check-ins whose answer named the timestamp the device
	// trusted (deviceproto Answer.Metadata): nothing fetched.
	metaSkipped int64
	// metaStapled: check-ins whose answer stapled a newer timestamp;
	// metaRequests: metadata and piece-list requests.
	metaStapled, metaRequests int64
	verify                    [maxVerifyReasons]int64
}

func (t *tally) add(o *tally) {
	t.checkIns[0] += o.checkIns[0]
	t.checkIns[1] += o.checkIns[1]
	t.signIns += o.signIns
	t.lookups += o.lookups
	t.reports += o.reports
	t.lost += o.lost
	t.busy += o.busy
	t.resumed += o.resumed
	t.bytes += o.bytes
	t.updates += o.updates
	t.moved += o.moved
	t.missed += o.missed
	t.peerWaits += o.peerWaits
	t.badPieces += o.badPieces
	for i := range t.peerFailed {
		t.peerFailed[i] += o.peerFailed[i]
	}
	for i := range t.refusals {
		t.refusals[i] += o.refusals[i]
		t.failures[i] += o.failures[i]
	}
	t.verified += o.verified
	t.metaBytes += o.metaBytes
	t.metaSkipped += o.metaSkipped
	t.metaStapled += o.metaStapled
	t.metaRequests += o.metaRequests
	for i := range t.verify {
		t.verify[i] += o.verify[i]
	}
}

// worker handles device events, one at a time, with its own buffers and
// its own edge transport.
type worker struct {
	s *Sim
	// edge is an NTLM client over edgeT, whose connection is signed in as
	// edgeUser (-1: nobody). NTLM authenticates a connection, and its
	// handshake must stay on one connection, so each worker has its own,
	// used by one device at a time and closed when a device of another
	// user needs it.
	edge     *http.Client
	edgeT    *http.Transport
	edgeUser int
	buf      []byte
	body     []byte
	// piece holds one piece of a peer-capable device's image, checked
	// before its holding copies it (pieceBuf).
	piece []byte
	t     tally
}

// pieceBuf returns the worker's piece buffer, one byte longer than a
// piece (a longer answer from a peer is bad), made the first time.
func (w *worker) pieceBuf() []byte {
	if w.piece == nil {
		w.piece = make([]byte, pieces.PieceSize+1)
	}
	return w.piece
}

// handle runs a device's due timers at simulated time at: sign-in, then the
// update or boot step, then the periodic check. It leaves at least one timer
// set unless the device was told not to check.
func (w *worker) handle(ctx context.Context, d *device, at int64) {
	if d.signInAt <= at {
		d.signInAt = never
		if w.signIn(ctx, d, at) && d.offer == nil && d.phase == phaseRunning {
			w.checkIn(ctx, d, at)
		}
	}
	if d.stepAt <= at {
		st := d.step
		d.stepAt, d.step = never, stepNone
		switch st {
		case stepBoot:
			d.phase = phaseRunning
			w.checkIn(ctx, d, at)
		case stepDownload:
			w.download(ctx, d, at)
		case stepInstall:
			w.install(ctx, d, at)
		case stepRebooted:
			w.rebooted(ctx, d, at)
		case stepPowerRestored:
			w.restored(ctx, d, at, rPowerLoss)
		case stepInstallFailed:
			w.restored(ctx, d, at, rInstall)
		}
	}
	if d.checkAt <= at {
		// While an update is under way the device does not check; the
		// boot at its end does.
		d.checkAt = never
		if d.offer == nil && d.phase == phaseRunning {
			w.checkIn(ctx, d, at)
		}
	}
	if d.next() == never && !d.disabled && d.phase != phaseOff {
		d.checkAt = at + d.interval
	}
}

func (w *worker) rng(d *device) *rand.Rand { return rand.New(&d.behaviour) }

func (w *worker) fail(d *device, r reason, err error) {
	if r.refusal() {
		w.t.refusals[r]++
		d.refused = true
	} else {
		w.t.failures[r]++
	}
	if err != nil {
		w.s.log.Debug("device: "+reasonText[r], "device", d.mac, "model", w.s.groups[d.group].id.Path(), "reason", err.Error())
	}
}

// location returns the device's location and its current check-in base.
func (w *worker) base(d *device) (firmware.Location, string) {
	g := &w.s.groups[d.group]
	if g.loc == firmware.External {
		return g.loc, d.external
	}
	if d.viaRelay {
		return g.loc, w.s.svc.RelayURL
	}
	return g.loc, d.internal
}

// do sends a request for d: over its subnet's LAN client inside, over the
// worker's NTLM transport outside (with the user's credentials when
// someone is signed in). header holds extra header name and value pairs.
// Transport errors are retried twice at once, as a device retries a
// dropped connection.
func (w *worker) do(ctx context.Context, d *device, method, url string, body []byte, header ...string) (*http.Response, error) {
	g := &w.s.groups[d.group]
	var last error
	for range 3 {
		var resp *http.Response
		var err error
		if g.loc == firmware.External {
			resp, err = w.edgeDo(ctx, d, method, url, body, header)
		} else {
			resp, err = g.lan.do(ctx, method, url, body, g.userAgent, header)
		}
		if err == nil {
			return resp, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, last
}

// edgeDo sends a request for d through the edge, on the worker's NTLM
// transport, whose connection is signed in as d's user (or nobody).
func (w *worker) edgeDo(ctx context.Context, d *device, method, url string, body []byte, header []string) (*http.Response, error) {
	g := &w.s.groups[d.group]
	user := -1
	if d.signedIn {
		user = int(d.user)
	}
	if user != w.edgeUser {
		w.edgeT.CloseIdleConnections()
		w.edgeUser = user
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/xml; charset=utf-8")
	}
	req.Header.Set("User-Agent", g.userAgent)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if d.signedIn && d.user >= 0 {
		req.SetBasicAuth(accountName(int(d.user)), w.s.sc.Password)
	}
	return w.edge.Do(req)
}

// readSmall reads a small answer body and closes it.
func readSmall(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 256<<10))
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// retryAfter reads a Retry-After header (seconds or an HTTP date), with
// def when there is none.
func retryAfter(resp *http.Response, def time.Duration) int64 {
	v := resp.Header.Get("Retry-After")
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return int64(max(time.Duration(n)*time.Second, time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return int64(max(time.Until(t), time.Second))
	}
	return int64(def)
}

// signIn signs the device's user in and takes the provisioning document:
// with Basic credentials over TLS inside, with NTLM at the edge. It
// reports whether the device is now signed in.
func (w *worker) signIn(ctx context.Context, d *device, at int64) bool {
	s := w.s
	g := &s.groups[d.group]
	base := w.signInBase(d)
	if base == "" || d.user < 0 {
		return false
	}
	user := accountName(int(d.user))
	// Inside, Basic is sent as such; at the edge go-ntlmssp turns the same
	// credentials into NTLM on this worker's transport.
	d.signedIn = g.loc == firmware.External
	var auth []string
	if g.loc == firmware.Internal {
		auth = []string{"Authorization", basicAuth(user, s.sc.Password)}
	}
	resp, err := w.do(ctx, d, http.MethodPost, base+strings.TrimPrefix(provisioning.Path, "/"), nil, auth...)
	d.signedIn = false
	if err != nil {
		w.fail(d, rNetwork, err)
		d.signInAt = at + int64(s.sc.Behaviour.RetryDelay)
		return false
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		drain(resp)
		w.fail(d, rSignInRefused, fmt.Errorf("sign-in as %s: %s", user, resp.Status))
		return false
	case http.StatusServiceUnavailable:
		d.signInAt = at + retryAfter(resp, time.Minute)
		drain(resp)
		w.t.busy++
		return false
	default:
		// The user is signed in on the device all the same (credentials
		// for NTLM); it keeps the addresses it has.
		drain(resp)
		w.fail(d, rNoDocument, fmt.Errorf("sign-in: %s", resp.Status))
		d.signedIn = true
		return true
	}
	data, err := readSmall(resp)
	if err != nil {
		w.fail(d, rNetwork, err)
		return false
	}
	doc, err := provisioning.ParseDocument(data)
	if err != nil {
		w.fail(d, rMalformed, err)
		return false
	}
	d.signedIn = true
	w.t.signIns++
	if u, err := checkInBase(doc.InternalURL, provisioning.CheckInPath); err == nil && u != "" {
		d.internal = s.intern(u)
	}
	if u, err := checkInBase(doc.ExternalURL, provisioning.CheckInPathExt); err == nil && u != "" {
		d.external = s.intern(u)
	}
	if doc.CheckInterval > 0 {
		d.interval = int64(doc.CheckInterval)
	}
	w.trustRoot(d, doc.RootMetadata)
	d.disabled = !doc.Enabled
	return true
}

func basicAuth(user, password string) string {
	r, _ := http.NewRequest(http.MethodGet, "https://x/", nil)
	r.SetBasicAuth(user, password)
	return r.Header.Get("Authorization")
}

// checkInBase turns a provisioned check-in URL into the base URL it is
// under.
func checkInBase(u, path string) (string, error) {
	if u == "" {
		return "", nil
	}
	return baseURL(strings.TrimSuffix(u, path))
}

// lookupService finds the service by DNS (ucupdates-r2.<domain>), as a
// LAN device that nobody told where it is does, and returns its base URL.
func (w *worker) lookupService(ctx context.Context) (string, error) {
	w.t.lookups++
	host, err := w.s.dial.lookupUpdateService(ctx, w.s.svc.Domain)
	if err != nil {
		return "", err
	}
	return w.s.intern("https://" + host + ":" + w.s.svc.internalPort() + "/"), nil
}

// checkIn asks the service whether to update, finding it through DNS first
// if nobody ever told the device where it is, and starts the update it is
// offered.
func (w *worker) checkIn(ctx context.Context, d *device, at int64) {
	s := w.s
	if d.disabled {
		return
	}
	loc, base := w.base(d)
	if base == "" && loc == firmware.Internal {
		var err error
		if base, err = w.lookupService(ctx); err != nil {
			w.fail(d, rDNS, err)
			d.checkAt = at + int64(s.sc.Behaviour.RetryDelay)
			return
		}
		d.internal = base
	}
	if base == "" && loc == firmware.External {
		base = s.svc.ExternalURL
		d.external = base
	}
	if base == "" {
		d.checkAt = at + d.interval
		return
	}
	path, li := deviceproto.CheckInPath, 0
	if loc == firmware.External {
		path, li = deviceproto.CheckInPathExt, 1
	}
	// The modules it runs: the image, and the catalog that came with it.
	mods := [2]firmware.Module{{Name: d.module, Version: d.version, Timestamp: d.stamp}, {Name: d.catalog, Version: d.version}}
	ci := deviceproto.CheckIn{Identity: s.groups[d.group].id, MAC: d.mac, Serial: d.serial, Modules: mods[:1]}
	if d.catalog != "" {
		ci.Modules = mods[:2]
	}
	if d.signedIn && d.user >= 0 {
		ci.User = accountName(int(d.user))
	}
	ci.Peer = d.peerServer()
	if c := w.metaClient(d); c != nil && !w.s.cfg.AlwaysRefresh {
		// What it trusts, so that the answer staples a newer timestamp.
		ci.Metadata = deviceproto.MetadataTrust{Root: c.RootVersion(), Timestamp: c.TimestampVersion()}
	}
	w.body = ci.AppendXML(w.body[:0])
	resp, err := w.do(ctx, d, http.MethodPost, base+strings.TrimPrefix(path, "/"), w.body)
	if err != nil {
		w.fail(d, rNetwork, err)
		d.checkAt = at + int64(s.sc.Behaviour.RetryDelay)
		return
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		drain(resp)
		r := rForbidden
		if loc == firmware.External && !d.signedIn {
			r = rNoUser
		}
		w.fail(d, r, nil)
		d.checkAt = at + d.interval
		return
	case http.StatusServiceUnavailable:
		w.t.busy++
		d.checkAt = at + retryAfter(resp, time.Minute)
		drain(resp)
		return
	default:
		body, _ := readSmall(resp)
		w.fail(d, rHTTP, fmt.Errorf("check-in: %s: %s", resp.Status, bytes.TrimSpace(body)))
		d.checkAt = at + int64(s.sc.Behaviour.RetryDelay)
		return
	}
	data, err := readSmall(resp)
	if err != nil {
		w.fail(d, rNetwork, err)
		d.checkAt = at + int64(s.sc.Behaviour.RetryDelay)
		return
	}
	a, err := deviceproto.ParseAnswer(data)
	if err != nil {
		w.fail(d, rMalformed, err)
		d.checkAt = at + int64(s.sc.Behaviour.RetryDelay)
		return
	}
	w.t.checkIns[li]++
	d.checkedIn = true
	d.avoid = netip.AddrPort{} // told
	// A moved service: store the new addresses and use them from the next
	// check on.
	if u, err := baseURL(a.MovedInternalURL); err == nil && u != d.internal && loc == firmware.Internal {
		d.internal, d.moved = s.intern(u), true
		w.t.moved++
	}
	if u, err := baseURL(a.MovedExternalURL); err == nil && u != d.external && loc == firmware.External {
		d.external, d.moved = s.intern(u), true
		w.t.moved++
	}
	next := int64(a.NextCheck)
	if next <= 0 {
		next = d.interval
	}
	d.checkAt = at + max(next, int64(time.Second))
	if o := d.offer; o != nil {
		// Checking again during a download, after a peer failed: the
		// new advice for the same file, or none (the service).
		o.advice = deviceproto.PeerAdvice{}
		if len(a.Files) > 0 && a.Version == o.target && a.Files[0].SHA256 == o.files[0].sha {
			o.advice = a.Files[0].Peer
		}
		return
	}
	image, ok := w.verify(ctx, d, at, base, &a)
	if !ok {
		return
	}
	if len(a.Files) > 0 {
		w.begin(ctx, d, at, &a, image)
	}
}

// begin starts downloading an offered update, unless the device failed to
// install that version a short while ago. image is the piece list of the
// offer's image that verify checked (nil: none).
func (w *worker) begin(ctx context.Context, d *device, at int64, a *deviceproto.Answer, image *pieces.List) {
	s := w.s
	g := &s.groups[d.group]
	d.try(a.Version, at)
	if a.Version == d.failedTarget && at < d.retryAt {
		d.checkAt = min(d.checkAt, d.retryAt)
		return
	}
	base, alt := a.InternalURL, a.InternalURLAlt
	if g.loc == firmware.External {
		base, alt = a.ExternalURL, a.ExternalURLAlt
	}
	if base == "" {
		w.fail(d, rMalformed, errors.New("the answer has no file URL for the device's location"))
		return
	}
	o := &offer{target: a.Version, base: s.sourceOf(base), alt: s.sourceOf(alt), installBy: never, list: image}
	if !a.InstallBy.IsZero() {
		o.installBy = int64(a.InstallBy.Sub(s.sc.Start))
	}
	var total int64
	for i, f := range a.Files {
		if i == 0 && !f.Timestamp.IsZero() {
			o.stamp = s.intern(f.Timestamp.UTC().Format(time.RFC3339))
		}
		o.files = append(o.files, offerFile{f.FileName, f.Size, f.SHA256})
		total += f.Size
		if f.SignatureFileName != "" {
			o.files = append(o.files, offerFile{f.SignatureFileName, f.SignatureSize, f.SignatureSHA256})
			total += f.SignatureSize
		}
	}
	var delay int64
	if d.peer != nil && len(a.Files) > 0 {
		o.advice = a.Files[0].Peer
		delay = int64(o.advice.Delay)
		if o.advice.Representative && g.faults.KillRepresentative > 0 && w.s.subnets[g.peerNet].firstRep.CompareAndSwap(false, true) &&
			w.rng(d).Float64() < g.faults.KillRepresentative {
			// Its piece server will stop half-way through serving the
			// image to its peers.
			d.peer.killAfter.Store(max((a.Files[0].Size+pieces.PieceSize-1)/pieces.PieceSize/2, 1))
		}
	}
	d.offer = o
	d.phase = phaseDownloading
	if d.peer != nil && len(o.files) > 0 {
		w.hold(ctx, d, o, o.files[0]) // a failure is retried at the download step
	}
	w.report(ctx, d, firmware.StateDownloading, o.target, rNone)
	// The transfer takes simulated time at the location's rate (after the
	// delay a peer-capable device is told to wait); the bytes move when
	// it ends.
	dur := delay + max(total*int64(time.Second)/g.rate, int64(time.Second))
	if wr := s.sc.Behaviour.WANRate; wr > 0 && g.peerNet.IsValid() && !o.advice.From.IsValid() && !o.base.replica {
		// From the primary service, over the subnet's shared WAN link
		// (a replica's bytes do not cross it).
		dur = max(s.subnets[g.peerNet].reserve(at, total, wr), int64(time.Second))
	}
	d.stepAt, d.step = at+dur, stepDownload
}

// download fetches and verifies the offer's files.
func (w *worker) download(ctx context.Context, d *device, at int64) {
	o := d.offer
	for i, f := range o.files {
		if i == 0 && d.peer != nil {
			// The image of a peer-capable device: piece by piece.
			res, r, err := w.fetchPieces(ctx, d, at, o, f)
			switch res {
			case piecesWait:
				return
			case piecesFailed:
				o.held = nil // the next attempt starts afresh
				w.abandon(ctx, d, at, r, err)
				return
			}
			continue
		}
		if r, err := w.fetch(ctx, d, o, f); r != rNone {
			w.abandon(ctx, d, at, r, err)
			return
		}
	}
	w.report(ctx, d, firmware.StateDownloaded, o.target, rNone)
	d.phase = phaseWaitingIdle
	g := &w.s.groups[d.group]
	d.stepAt = d.calls.idleFrom(at, int64(w.s.sc.Behaviour.IdleTime), g.usage, rand.New(&d.usage))
	d.step = stepInstall
}

// fetch downloads one file into a SHA-256, resuming a broken transfer with
// a Range request, and checks its size and digest. Faults may break the
// transfer once or flip a byte of an image.
func (w *worker) fetch(ctx context.Context, d *device, o *offer, f offerFile) (reason, error) {
	faults := &w.s.groups[d.group].faults
	r := w.rng(d)
	// Draw every fault every time, so the device's source advances the same
	// whatever happens.
	pBreak, pCorrupt, off := r.Float64(), r.Float64(), r.Int64N(max(f.size, 1))
	breakAt := int64(-1)
	if pBreak < faults.BrokenDownload && f.size > 1 {
		breakAt = max(off, 1)
	}
	r2, err := w.fetchFrom(ctx, d, o.base, f, breakAt, pCorrupt < faults.CorruptImage, off)
	if (r2 == rTransfer || r2 == rHTTP) && o.alt.url != "" {
		// The first URL failed: the alternative (url/urlalt), from the
		// start, with the same faults but the break, which happened.
		d.fallbacks++
		w.s.log.Debug("device: fetching from the alternative URL", "device", d.mac, "file", f.name, "reason", err)
		return w.fetchFrom(ctx, d, o.alt, f, -1, pCorrupt < faults.CorruptImage, off)
	}
	return r2, err
}

// fetchFrom downloads one file from src, as fetch describes: a break at
// breakAt (-1: none) resumed with Range, the byte at off flipped when
// corrupt.
func (w *worker) fetchFrom(ctx context.Context, d *device, src source, f offerFile, breakAt int64, corrupt bool, off int64) (reason, error) {
	h := sha256.New()
	var sink io.Writer = h
	var flip *flipWriter
	if corrupt && firmware.RoleOf(f.name) == firmware.RoleImage && f.size > 0 {
		flip = &flipWriter{w: h, at: off}
		sink = flip
	}
	var got int64
	restart := func() {
		h.Reset()
		got = 0
		if flip != nil {
			flip.pos = 0
		}
	}
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		var resume []string
		if got > 0 {
			resume = []string{"Range", "bytes=" + strconv.FormatInt(got, 10) + "-", "If-Range", `"` + f.sha + `"`}
		}
		resp, err := w.do(ctx, d, http.MethodGet, src.url+f.name, nil, resume...)
		if err != nil {
			last = err
			continue
		}
		switch resp.StatusCode {
		case http.StatusOK:
			if got > 0 { // the server sent it all again
				restart()
			}
		case http.StatusPartialContent:
			if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != got {
				last = fmt.Errorf("content range %q, want bytes from %d", resp.Header.Get("Content-Range"), got)
				drain(resp)
				restart()
				continue
			}
		default:
			body, _ := readSmall(resp)
			return rHTTP, fmt.Errorf("GET %s: %s: %s", f.name, resp.Status, bytes.TrimSpace(body))
		}
		var body io.Reader = resp.Body
		broken := breakAt > got
		if broken {
			body = io.LimitReader(resp.Body, breakAt-got)
		}
		n, err := io.CopyBuffer(sink, readerOnly{body}, w.buf)
		got += n
		w.count(d, src, n)
		resp.Body.Close() // before the end: the connection breaks
		if broken && got >= breakAt {
			breakAt = -1
			w.t.resumed++
			continue
		}
		if err != nil {
			last = err
			w.t.resumed++
			continue
		}
		last = nil
		break
	}
	if last != nil {
		return rTransfer, last
	}
	if got != f.size {
		return rSize, fmt.Errorf("%s: %d bytes, want %d", f.name, got, f.size)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != f.sha {
		return rChecksum, fmt.Errorf("%s: SHA-256 %s, want %s", f.name, sum, f.sha)
	}
	return rNone, nil
}

// rangeStart returns the first byte of a Content-Range "bytes a-b/n".
func rangeStart(v string) (int64, bool) {
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, false
	}
	a, _, ok := strings.Cut(rest, "-")
	if !ok || a == "" || strings.Trim(a, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(a, 10, 64)
	return n, err == nil
}

// flipWriter passes bytes to w, with the byte at offset at flipped: an
// image corrupted in transit.
type flipWriter struct {
	w   hash.Hash
	at  int64
	pos int64 // offset of the next byte written
}

func (f *flipWriter) Write(p []byte) (int, error) {
	if i := f.at - f.pos; i >= 0 && i < int64(len(p)) {
		f.w.Write(p[:i])
		f.w.Write([]byte{^p[i]})
		f.w.Write(p[i+1:])
	} else {
		f.w.Write(p)
	}
	f.pos += int64(len(p))
	return len(p), nil
}

// readerOnly hides a body's WriteTo, if any, so that CopyBuffer uses the
// worker's buffer.
type readerOnly struct{ r io.Reader }

func (r readerOnly) Read(p []byte) (int, error) { return r.r.Read(p) }

// abandon gives up an update attempt: the device reports the failure, keeps
// its version and tries again after RetryDelay.
func (w *worker) abandon(ctx context.Context, d *device, at int64, r reason, err error) {
	o := d.offer
	d.try(o.target, at).failures++
	w.fail(d, r, err)
	w.report(ctx, d, firmware.StateFailure, o.target, r)
	d.failed, d.lastErr = true, r
	d.failedTarget, d.retryAt = o.target, at+int64(w.s.sc.Behaviour.RetryDelay)
	if d.viaRelay && (r == rChecksum || r == rSize) {
		// A file that is not the signed one: the relay's, not the
		// service's; the device goes to the service itself.
		d.viaRelay, d.refusedMeta = false, true
		d.retryAt = at
	}
	d.offer = nil
	d.phase = phaseRunning
	d.checkAt = min(d.checkAt, d.retryAt)
}

// install starts installing the verified update once the device is idle:
// it reboots, or loses power half-way, or the install fails. An install
// that could not end by the offer's InstallBy (the device stayed busy
// until too late) is not begun: the device drops the update and takes it
// again when it is offered again, inside a window.
func (w *worker) install(ctx context.Context, d *device, at int64) {
	o := d.offer
	faults := &w.s.groups[d.group].faults
	reboot := int64(w.s.sc.Behaviour.RebootTime)
	if at+reboot > o.installBy {
		d.try(o.target, at).missed++
		w.t.missed++
		d.offer = nil
		d.phase = phaseRunning
		return
	}
	r := w.rng(d)
	powerLoss := r.Float64() < faults.PowerLoss
	// Drawn only for a version that may fail, so that scenarios without
	// the fault draw as they always did.
	failed := false
	if p := faults.installFails(o.target); p > 0 {
		failed = r.Float64() < p
	}
	w.report(ctx, d, firmware.StateInstalling, o.target, rNone)
	d.phase = phaseRebooting
	o.began = at
	switch {
	case powerLoss:
		// The power comes back a while later; the previous image is
		// still there.
		d.stepAt, d.step = at+reboot+int64(10*time.Minute), stepPowerRestored
	case failed:
		// The device reboots on its old image.
		d.stepAt, d.step = at+reboot, stepInstallFailed
	default:
		w.report(ctx, d, firmware.StateRebooting, o.target, rNone)
		d.stepAt, d.step = at+reboot, stepRebooted
	}
}

// rebooted: the device is back on the new version; it reports success and
// checks in, as at every boot.
func (w *worker) rebooted(ctx context.Context, d *device, at int64) {
	o := d.offer
	d.installs = append(d.installs, install{version: o.target, began: o.began, ended: at})
	d.try(o.target, at).installed = true
	d.version, d.stamp, d.catalog = o.target, o.stamp, ""
	for i, f := range o.files {
		switch {
		case i == 0:
			d.module = w.s.intern(f.name)
		case firmware.RoleOf(f.name) == firmware.RoleCatalog && d.catalog == "":
			d.catalog = w.s.intern(f.name)
		}
	}
	d.lastUpdate = at
	d.updates++
	d.failed, d.lastErr = false, rNone
	d.phase = phaseRunning
	w.t.updates++
	w.report(ctx, d, firmware.StateSuccess, o.target, rNone)
	d.offer = nil
	w.checkIn(ctx, d, at)
}

// restored: the device is back on its previous image after a power loss
// or a failed install; it reports the failure and checks in.
func (w *worker) restored(ctx context.Context, d *device, at int64, r reason) {
	o := d.offer
	d.installs = append(d.installs, install{version: o.target, began: o.began, ended: at, failed: true})
	d.phase = phaseRunning
	w.abandon(ctx, d, at, r, nil)
	d.checkAt = never
	w.checkIn(ctx, d, at)
}

// report sends a status report to the service the device checks in at.
func (w *worker) report(ctx context.Context, d *device, st firmware.State, target firmware.Version, r reason) {
	w.reportCode(ctx, d, st, target, errorCode[r])
}

// reportCode sends a status report with an error code of its own and
// returns the HTTP status (0 when it was not sent).
func (w *worker) reportCode(ctx context.Context, d *device, st firmware.State, target firmware.Version, code string) int {
	loc, base := w.base(d)
	if base == "" {
		return 0
	}
	path := deviceproto.StatusPath
	if loc == firmware.External {
		path = deviceproto.StatusPathExt
	}
	status := deviceproto.Status{MAC: d.mac, Serial: d.serial, State: st, Target: target, ErrorCode: code}
	w.body = status.AppendXML(w.body[:0])
	w.t.reports++
	resp, err := w.do(ctx, d, http.MethodPost, base+strings.TrimPrefix(path, "/"), w.body)
	if err != nil {
		w.t.lost++
		return 0
	}
	if resp.StatusCode/100 != 2 {
		w.t.lost++
	}
	drain(resp)
	return resp.StatusCode
}
