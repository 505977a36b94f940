package simulator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/pieces"
)

// Subnet peers, the device side (docs/protocol.md, "Subnet peers").
//
// A peer-capable device (Group.Peers) runs a piece server: plain HTTP on
// an address of its subnet (127.A.B.x, where its group's connections come
// from 127.A.B.1...), announced in every check-in. Offered an update, it
// fetches its image piece by piece, checking each against the file's piece
// list (the one its check-in checked against the signed metadata; a
// device that does not verify fetches it from the service, over TLS; a
// file of one piece needs none, its SHA-256 is its piece's): from the service
// when it is its subnet's representative (or has no advice), else from
// the peer it is told, after the delay it is told. A piece the peer does
// not have yet (503) makes it wait Behaviour.PeerRetry and ask again; a
// peer that fails (no connection, a piece not in time, a bad piece, 404)
// is avoided from then on: the device checks in again at once, naming it
// (Avoid), and follows the new advice, or fetches the rest from the
// service. Every piece it has it serves on at once.
//
// The bytes of a file are kept once for the whole simulation (a device
// keeps which pieces it has, not their bytes), so a fleet of thousands
// holding a 20 MB image takes 20 MB.

// Defaults of the peer behaviour.
const (
	DefaultPeerRetry        = 30 * time.Second
	DefaultPeerPieceTimeout = 10 * time.Second
	maxPeerWaits            = 40 // "not yet" answers before the device gives up on a peer
	maxPeerRounds           = 8  // peers tried per update before the device takes the rest from the service
	maxNotHeld              = 2  // 404s from peers taken as "not yet" per update
)

// byteCounts are the bytes a peer subnet's devices fetched, by source.
type byteCounts struct {
	wan, peer, replica, lists atomic.Int64
	// firstRep is set once a device of the subnet was told it is
	// representative (Faults.KillRepresentative applies to the first).
	firstRep atomic.Bool
	// linkFree is when the subnet's WAN link (Behaviour.WANRate) is free
	// again, in simulated time.
	linkFree atomic.Int64
}

// reserve books a transfer of n bytes from the service over the subnet's
// WAN link of rate bytes per simulated second, from simulated time at:
// after the transfers booked before it. It returns how long after at the
// transfer ends.
func (bc *byteCounts) reserve(at, n, rate int64) int64 {
	for {
		free := bc.linkFree.Load()
		end := max(at, free) + n*int64(time.Second)/rate
		if bc.linkFree.CompareAndSwap(free, end) {
			return end - at
		}
	}
}

// sharedFile is the content of one update file, kept once for every
// device: its piece list and the pieces verified so far.
type sharedFile struct {
	sha  string
	list pieces.List
	enc  []byte // the list's encoding, as peers serve it
	mu   sync.Mutex
	data []byte
	got  []atomic.Bool // piece i is in data
	// verified: the whole data matched the file's SHA-256 once.
	verified atomic.Bool
}

// file returns the shared file of sha with list l, creating it. A list
// other than the one the shared file has (one of the two was not the
// signed one: a relay's) gets a file of its own, shared with nobody.
func (s *Sim) file(sha string, l pieces.List) *sharedFile {
	s.filesMu.Lock()
	defer s.filesMu.Unlock()
	f, ok := s.files[sha]
	if ok && f.list.FileSize == l.FileSize && f.list.PieceSize == l.PieceSize && slices.Equal(f.list.Hashes, l.Hashes) {
		return f
	}
	f = &sharedFile{sha: sha, list: l, enc: l.Marshal(), data: make([]byte, l.FileSize), got: make([]atomic.Bool, l.Count())}
	if !ok {
		s.files[sha] = f
	}
	return f
}

// store keeps a verified piece.
func (f *sharedFile) store(i int, b []byte) {
	if f.got[i].Load() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.got[i].Load() {
		off, _ := f.list.Range(i)
		copy(f.data[off:], b)
		f.got[i].Store(true)
	}
}

// piece returns piece i, which must be stored.
func (f *sharedFile) piece(i int) []byte {
	off, n := f.list.Range(i)
	return f.data[off : off+n]
}

// holding is the file a device serves and the pieces of it it has.
type holding struct {
	f    *sharedFile
	have []atomic.Bool
	n    atomic.Int32 // pieces it has
	// pending: offered the file, its piece list not taken yet (f holds
	// only the SHA-256): every request is answered 503, not yet.
	pending bool
}

// peerNode is a device's piece server.
type peerNode struct {
	addr   netip.AddrPort
	srv    *http.Server
	cur    atomic.Pointer[holding]
	poison bool // serves corrupted pieces (Faults.PoisonPieces)
	slow   bool // stalls on every piece until the asker gives up (Faults.SlowPeers)
	// killAfter, when positive, is how many pieces it serves before it
	// stops, mid-transfer (Faults.KillRepresentative); dead once it has.
	killAfter atomic.Int64
	served    atomic.Int64
	dead      atomic.Bool
}

// startPeer starts d's piece server on addr (port 0: any).
func startPeer(addr netip.Addr, poison, slow bool) (*peerNode, error) {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		return nil, fmt.Errorf("simulator: peer server on %s: %w", addr, err)
	}
	p := &peerNode{addr: netip.MustParseAddrPort(ln.Addr().String()), poison: poison, slow: slow}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 30 * time.Second}
	go p.srv.Serve(ln)
	return p, nil
}

func (p *peerNode) close() { p.srv.Close() }

// kill stops the server: mid-transfer, its connections break.
func (p *peerNode) kill() {
	if p.dead.CompareAndSwap(false, true) {
		go p.srv.Close()
	}
}

// ServeHTTP answers GET /Pieces/<sha> (the list) and /Pieces/<sha>/<i>
// (a piece): 200, 503 with Retry-After for a piece it has not got yet,
// 404 for a file it does not hold.
func (p *peerNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.dead.Load() {
		panic(http.ErrAbortHandler)
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "method not allowed; use GET", http.StatusMethodNotAllowed)
		return
	}
	h := p.cur.Load()
	sha, i, ok := deviceproto.ParsePiecesPath(r.URL.Path, pieces.MaxFileSize/pieces.PieceSize+1)
	if !ok {
		http.Error(w, "not a piece path: want /Pieces/<sha256>[/<index>]", http.StatusBadRequest)
		return
	}
	if h == nil || h.f.sha != sha {
		http.Error(w, "this peer does not hold that file", http.StatusNotFound)
		return
	}
	if h.pending {
		w.Header().Set("Retry-After", strconv.Itoa(int(DefaultPeerRetry/time.Second)))
		http.Error(w, "not yet: this peer has not begun fetching that file", http.StatusServiceUnavailable)
		return
	}
	if i < 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(h.f.enc)
		return
	}
	if i >= len(h.have) {
		http.Error(w, "no such piece", http.StatusNotFound)
		return
	}
	if !h.have[i].Load() {
		w.Header().Set("Retry-After", strconv.Itoa(int(DefaultPeerRetry/time.Second)))
		http.Error(w, "not yet: this peer is still fetching that piece", http.StatusServiceUnavailable)
		return
	}
	b := h.f.piece(i)
	if p.slow {
		// A stalled peer: nothing until the asker gives up (or the
		// server stops).
		<-r.Context().Done()
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if k := p.killAfter.Load(); k > 0 && p.served.Add(1) >= k {
		// Killed mid-transfer: half the piece, then the connection breaks.
		w.Write(b[:len(b)/2])
		p.kill()
		panic(http.ErrAbortHandler)
	}
	if p.poison {
		bad := bytes.Clone(b)
		bad[len(bad)/2] ^= 0xFF
		b = bad
	}
	w.Write(b)
}

// peerAddr is the address of device i's piece server in its group's peer
// subnet: the subnet's .10 to .249, so that the service, which sees the
// group's devices at its first addresses, finds it in the same /24.
func peerAddr(net netip.Prefix, i int) netip.Addr {
	a := net.Addr().As4()
	a[3] = byte(10 + i%240)
	return netip.AddrFrom4(a)
}

// peerNet is the /24 a group's devices are seen from.
func peerNet(g *groupInfo) netip.Prefix {
	a := netip.MustParseAddr("127.0.0.1")
	if g.subnet.IsValid() {
		a = g.subnet.Addr().Next()
	}
	p, _ := a.Prefix(24)
	return p
}

// peerServer is what d's check-in says of its piece server.
func (d *device) peerServer() deviceproto.PeerServer {
	if d.peer == nil || d.peer.dead.Load() {
		return deviceproto.PeerServer{}
	}
	return deviceproto.PeerServer{Addr: d.peer.addr, Avoid: d.avoid}
}

// pieceResult is how fetching a file's pieces went.
type pieceResult uint8

const (
	piecesDone pieceResult = iota
	piecesWait             // rescheduled: the peer has not got them yet, or the device waits its delay
	piecesFailed
)

// fetchPieces fetches the image f of d's offer piece by piece (see the
// top of this file). It returns piecesWait when it has rescheduled the
// download step.
func (w *worker) fetchPieces(ctx context.Context, d *device, at int64, o *offer, f offerFile) (pieceResult, reason, error) {
	s := w.s
	g := &s.groups[d.group]
	bc := s.subnets[g.peerNet]
	if err := w.hold(ctx, d, o, f); err != nil {
		return piecesFailed, rTransfer, err
	}
	for {
		if int(o.held.n.Load()) == len(o.held.have) {
			break
		}
		from := o.advice.From
		if !from.IsValid() || o.rounds >= maxPeerRounds || d.avoided(from) {
			err := w.piecesFromService(ctx, d, o.base, o, f)
			if err != nil && o.alt.url != "" {
				// The first URL failed: the pieces still missing from the
				// alternative (url/urlalt).
				d.fallbacks++
				w.s.log.Debug("device: fetching the rest from the alternative URL", "device", d.mac, "file", f.name, "reason", err)
				err = w.piecesFromService(ctx, d, o.alt, o, f)
			}
			if err != nil {
				return piecesFailed, rTransfer, err
			}
			break
		}
		res, err := w.piecesFromPeer(ctx, d, o, from, bc)
		if res == peerNotHeld {
			// A representative whose own download has not begun yet
			// (it was elected a moment ago) does not hold the file: wait
			// for it twice, then give up on it.
			if o.notHeld++; o.notHeld <= maxNotHeld {
				res = peerNotYet
			} else {
				res = peerFailed
			}
		}
		switch res {
		case peerDone:
		case peerNotYet:
			if o.waits++; o.waits <= maxPeerWaits {
				w.t.peerWaits++
				d.stepAt, d.step = at+int64(s.sc.Behaviour.PeerRetry), stepDownload
				return piecesWait, rNone, nil
			}
			o.advice = deviceproto.PeerAdvice{} // the rest from the service
		case peerBad, peerFailed:
			if res == peerBad {
				w.t.badPieces++
			} else {
				w.t.peerFailed[peerFailureKind(err)]++
			}
			s.log.Debug("device: peer avoided", "device", d.mac, "peer", from.String(), "reason", err)
			d.avoid = from
			d.avoids = append(d.avoids, from)
			o.rounds++
			// Tell the service, and follow its new advice.
			o.advice = deviceproto.PeerAdvice{}
			w.checkIn(ctx, d, at)
			if o.advice.From.IsValid() && o.advice.Delay > 0 && !d.avoided(o.advice.From) {
				d.stepAt, d.step = at+int64(o.advice.Delay), stepDownload
				return piecesWait, rNone, nil
			}
		}
	}
	// Every piece checked: the file is whole, and it is the file.
	if !o.held.f.verified.Load() {
		if sum := sha256.Sum256(o.held.f.data); hex.EncodeToString(sum[:]) != f.sha {
			return piecesFailed, rChecksum, fmt.Errorf("%s: SHA-256 %x of pieces that all matched the list, want %s", f.name, sum, f.sha)
		}
		o.held.f.verified.Store(true)
	}
	return piecesDone, rNone, nil
}

// hold takes the piece list of the offer's image f, once, and makes d's
// piece server serve the file: from now on it answers 503 (not yet) for
// the pieces it has not got, rather than 404, so that a device told to
// fetch from it before its own download began waits instead of giving up
// on it.
func (w *worker) hold(ctx context.Context, d *device, o *offer, f offerFile) error {
	if o.held != nil {
		return nil
	}
	// Offered it: not yet, rather than not held, while the list comes.
	d.peer.cur.Store(&holding{f: &sharedFile{sha: f.sha}, pending: true})
	var sf *sharedFile
	switch {
	case o.list != nil:
		// Checked against the signed metadata at the check-in.
		sf = w.s.file(f.sha, *o.list)
	case f.size <= pieces.PieceSize:
		// One piece, the whole file: its list is the file's size and
		// SHA-256, which the answer gives (and the signed metadata
		// signs, for a device that verifies).
		l, err := onePiece(f)
		if err != nil {
			return err
		}
		sf = w.s.file(f.sha, l)
	default:
		var err error
		if sf, err = w.pieceList(ctx, d, f, w.s.subnets[w.s.groups[d.group].peerNet]); err != nil {
			return err
		}
	}
	o.held = &holding{f: sf, have: make([]atomic.Bool, sf.list.Count())}
	d.peer.cur.Store(o.held)
	return nil
}

// avoided reports whether d gave up on peer a.
func (d *device) avoided(a netip.AddrPort) bool {
	for _, x := range d.avoids {
		if x == a {
			return true
		}
	}
	return false
}

// onePiece returns the piece list of f, a file of at most one piece.
func onePiece(f offerFile) (pieces.List, error) {
	l := pieces.List{FileSize: f.size, PieceSize: pieces.PieceSize}
	if f.size == 0 {
		return l, nil
	}
	b, err := hex.DecodeString(f.sha)
	if err != nil || len(b) != sha256.Size {
		return pieces.List{}, fmt.Errorf("%s: SHA-256 %q is not 64 hex digits", f.name, f.sha)
	}
	l.Hashes = [][sha256.Size]byte{[sha256.Size]byte(b)}
	return l, nil
}

// pieceList fetches f's piece list from the service d checks in at (a
// device that does not verify), and checks it against the answer's size.
func (w *worker) pieceList(ctx context.Context, d *device, f offerFile, bc *byteCounts) (*sharedFile, error) {
	_, base := w.base(d)
	resp, err := w.do(ctx, d, http.MethodGet, base+strings.TrimPrefix(deviceproto.PiecesPath(f.sha), "/"), nil)
	if err != nil {
		return nil, fmt.Errorf("piece list of %s: %w", f.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("piece list of %s: %s", f.name, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, pieces.MaxEncodedSize+1))
	if err != nil {
		return nil, fmt.Errorf("piece list of %s: %w", f.name, err)
	}
	bc.lists.Add(int64(len(b)))
	l, err := pieces.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("piece list of %s: %w", f.name, err)
	}
	if l.FileSize != f.size {
		return nil, fmt.Errorf("piece list of %s: %d bytes, the answer says %d", f.name, l.FileSize, f.size)
	}
	return w.s.file(f.sha, l), nil
}

// have records piece i as d's (and the shared file's).
func (h *holding) add(i int, b []byte) {
	h.f.store(i, b)
	if !h.have[i].Swap(true) {
		h.n.Add(1)
	}
}

// piecesFromService fetches the pieces d lacks from the service at src
// (the primary or a replica), a Range request per run of missing pieces,
// checking each piece.
func (w *worker) piecesFromService(ctx context.Context, d *device, src source, o *offer, f offerFile) error {
	h := o.held
	l := h.f.list
	buf := w.pieceBuf() // h.add copies the piece
	for i := 0; i < l.Count(); {
		if h.have[i].Load() {
			i++
			continue
		}
		j := i
		for j < l.Count() && !h.have[j].Load() {
			j++
		}
		start, _ := l.Range(i)
		eoff, en := l.Range(j - 1)
		var last error
		for range 3 {
			resp, err := w.do(ctx, d, http.MethodGet, src.url+f.name, nil, "Range", "bytes="+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(eoff+en-1, 10))
			if err != nil {
				last = err
				continue
			}
			if resp.StatusCode != http.StatusPartialContent && !(resp.StatusCode == http.StatusOK && start == 0) {
				drain(resp)
				return fmt.Errorf("GET %s pieces %d-%d: %s", f.name, i, j-1, resp.Status)
			}
			k := i
			for ; k < j; k++ {
				_, n := l.Range(k)
				m, err := io.ReadFull(resp.Body, buf[:n])
				w.count(d, src, int64(m))
				if err != nil {
					last = err
					break
				}
				if err := l.Check(k, buf[:n]); err != nil {
					last = err
					break
				}
				h.add(k, buf[:n])
			}
			resp.Body.Close()
			if k == j {
				last = nil
				break
			}
			w.t.resumed++
			start, _ = l.Range(k)
			i = k
		}
		if last != nil {
			return fmt.Errorf("%s: %w", f.name, last)
		}
		i = j
	}
	return nil
}

// peerOutcome is how a round with a peer went.
type peerOutcome uint8

const (
	peerDone    peerOutcome = iota
	peerNotYet              // it has not got a piece yet
	peerNotHeld             // it does not hold the file (404)
	peerBad                 // it served a piece that does not match the list
	peerFailed              // no connection, an error, or a piece not in time
)

// Kinds of peer failures, for the report.
const (
	peerUnreachable = iota // no connection, or it broke
	peerTimeout            // a piece not within PeerPieceTimeout
	peerStatus             // an HTTP status other than 200 and 503
	peerShort              // a piece shorter than the list says
	numPeerFailures
)

var peerFailureText = [numPeerFailures]string{
	peerUnreachable: "peer unreachable or connection broken",
	peerTimeout:     "piece not in time",
	peerStatus:      "unexpected HTTP status from the peer",
	peerShort:       "piece shorter than the list says",
}

// errPeerStatus and errShortPiece mark two kinds of failures.
var (
	errPeerStatus = errors.New("peer answered")
	errShortPiece = errors.New("short piece")
)

func peerFailureKind(err error) int {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return peerTimeout
	case errors.Is(err, errPeerStatus):
		return peerStatus
	case errors.Is(err, errShortPiece):
		return peerShort
	}
	return peerUnreachable
}

// piecesFromPeer fetches the pieces d lacks from peer from, in order,
// each within Behaviour.PeerPieceTimeout.
func (w *worker) piecesFromPeer(ctx context.Context, d *device, o *offer, from netip.AddrPort, bc *byteCounts) (peerOutcome, error) {
	s := w.s
	h := o.held
	l := h.f.list
	buf := w.pieceBuf()[:l.PieceSize+1] // h.add copies the piece
	for i := range h.have {
		if h.have[i].Load() {
			continue
		}
		got, err := func() (peerOutcome, error) {
			pctx, cancel := context.WithTimeout(ctx, time.Duration(s.sc.Behaviour.PeerPieceTimeout))
			defer cancel()
			req, _ := http.NewRequestWithContext(pctx, http.MethodGet, "http://"+from.String()+deviceproto.PiecePath(h.f.sha, i), nil)
			resp, err := s.peerClient.Do(req)
			if err != nil {
				return peerFailed, err
			}
			defer resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
			case http.StatusServiceUnavailable:
				io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
				return peerNotYet, nil
			case http.StatusNotFound:
				io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
				return peerNotHeld, fmt.Errorf("piece %d: %w 404: it does not hold the file", i, errPeerStatus)
			default:
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
				return peerFailed, fmt.Errorf("piece %d: %w %s: %s", i, errPeerStatus, resp.Status, bytes.TrimSpace(body))
			}
			// At most one byte more than a piece: a longer answer is bad.
			n, err := io.ReadFull(resp.Body, buf)
			if err != io.ErrUnexpectedEOF && err != nil && err != io.EOF {
				bc.peer.Add(int64(n))
				return peerFailed, err
			}
			bc.peer.Add(int64(n))
			if err := l.Check(i, buf[:n]); err != nil {
				_, want := l.Range(i)
				if int64(n) < want {
					return peerFailed, fmt.Errorf("piece %d: %w: %d bytes of %d", i, errShortPiece, n, want)
				}
				return peerBad, err
			}
			h.add(i, buf[:n])
			return peerDone, nil
		}()
		if got != peerDone {
			if ctx.Err() != nil {
				return peerFailed, ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("piece %d not within %v: %w", i, time.Duration(s.sc.Behaviour.PeerPieceTimeout), err)
			}
			return got, err
		}
	}
	return peerDone, nil
}

// startPeers starts the piece servers of the peer-capable devices.
func (s *Sim) startPeers() error {
	s.peerClient = &http.Client{Transport: &http.Transport{
		MaxIdleConns: 256, MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second,
		DisableCompression: true, ResponseHeaderTimeout: time.Duration(s.sc.Behaviour.PeerPieceTimeout),
	}, CheckRedirect: noRedirect}
	for i := range s.devs {
		d := &s.devs[i]
		if !d.peerCapable {
			continue
		}
		g := &s.groups[d.group]
		p, err := startPeer(peerAddr(g.peerNet, i), d.poison, d.slow)
		if err != nil {
			return err
		}
		d.peer = p
	}
	return nil
}

// closePeers stops the piece servers.
func (s *Sim) closePeers() {
	for i := range s.devs {
		if p := s.devs[i].peer; p != nil {
			p.close()
		}
	}
	if s.peerClient != nil {
		s.peerClient.CloseIdleConnections()
	}
}

// SubnetReport is what the devices of one peer subnet (the /24 their
// connections come from) fetched, and when they were done.
type SubnetReport struct {
	Subnet  string `json:"subnet"`
	Devices int    `json:"devices"`
	// WANBytes came from the primary service, ReplicaBytes from a
	// replica (a file URL on another host), PeerBytes from peers;
	// ListBytes are the piece lists, from the service.
	WANBytes     int64 `json:"wanBytes"`
	ReplicaBytes int64 `json:"replicaBytes"`
	PeerBytes    int64 `json:"peerBytes"`
	ListBytes    int64 `json:"listBytes"`
	// FirstUpdate and LastUpdate are when its first and last install
	// ended, after the start.
	FirstUpdate Duration `json:"firstUpdate,omitzero"`
	LastUpdate  Duration `json:"lastUpdate,omitzero"`
}

// subnetReports reports every peer subnet of an internal group.
func (s *Sim) subnetReports() []SubnetReport {
	var out []SubnetReport
	idx := map[netip.Prefix]int{}
	for i := range s.groups {
		g := &s.groups[i]
		if !g.peerNet.IsValid() {
			continue
		}
		if _, ok := idx[g.peerNet]; ok {
			continue
		}
		bc := s.subnets[g.peerNet]
		idx[g.peerNet] = len(out)
		out = append(out, SubnetReport{Subnet: g.peerNet.String(), WANBytes: bc.wan.Load(), ReplicaBytes: bc.replica.Load(),
			PeerBytes: bc.peer.Load(), ListBytes: bc.lists.Load()})
	}
	for i := range s.devs {
		d := &s.devs[i]
		g := &s.groups[d.group]
		j, ok := idx[g.peerNet]
		if !ok {
			continue
		}
		sr := &out[j]
		sr.Devices++
		d.updateSpan(&sr.FirstUpdate, &sr.LastUpdate)
	}
	return out
}
