package simulator

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/pieces"
	"github.com/opendus/opendus/updatemeta"
)

// The verifying device (docs/protocol.md, "Signed update metadata"): a
// device that holds a root (Service.Root, or the provisioning document's)
// refreshes its trusted metadata at every check-in, from the server it
// checked in with, and checks the answer's offer against it before it
// downloads. A refusal is counted by its reason, reported to the service
// (a failure whose ErrorCode is "verify:" and the reason), and sends the
// device to the service itself (no longer through Service.RelayURL),
// where it checks again after RetryDelay.

// verifyReasons index the tally's verification counts.
var verifyReasons = updatemeta.Reasons

func verifyIndex(r updatemeta.Reason) int {
	for i, v := range verifyReasons {
		if v == r {
			return i
		}
	}
	return 0
}

// metaClient returns d's trusted metadata, made from Service.Root the
// first time; nil when the device holds no root or does not verify.
func (w *worker) metaClient(d *device) *updatemeta.Client {
	if d.meta != nil || w.s.cfg.NoVerify || len(w.s.svc.Root) == 0 {
		return d.meta
	}
	w.trustRoot(d, w.s.svc.Root)
	return d.meta
}

// trustRoot makes d trust root, unless it trusts one already or does
// not verify.
func (w *worker) trustRoot(d *device, root []byte) {
	if d.meta != nil || w.s.cfg.NoVerify || len(root) == 0 {
		return
	}
	c, err := updatemeta.NewClient(root, w.s.groups[d.group].id.Path(), w.s.metaCache)
	if err != nil {
		w.s.log.Debug("device: the root it was given does not verify", "device", d.mac, "err", err)
		return
	}
	d.meta = c
}

// fetchMeta returns a Fetch of the metadata under base for d.
func (w *worker) fetchMeta(d *device, base string) updatemeta.Fetch {
	return func(ctx context.Context, name string, limit int64) ([]byte, error) {
		w.t.metaRequests++
		resp, err := w.do(ctx, d, http.MethodGet, base+strings.TrimPrefix(deviceproto.MetadataPrefix, "/")+name, nil)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusNotFound:
			io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
			return nil, updatemeta.ErrNotFound
		default:
			return nil, fmt.Errorf("GET %s: %s", name, resp.Status)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		if err != nil {
			return nil, err
		}
		if int64(len(b)) > limit {
			return nil, fmt.Errorf("%s: more than %d bytes", name, limit)
		}
		w.t.metaBytes += int64(len(b))
		return b, nil
	}
}

// verify refreshes d's metadata from base and checks the answer's offer
// against it; it reports whether the device may go on and, for a
// peer-capable device, returns the image's piece list it checked (nil:
// none, the device does not verify or the image is of one piece). A
// refusal is counted, reported, and sends the device to the service
// itself.
func (w *worker) verify(ctx context.Context, d *device, at int64, base string, a *deviceproto.Answer) (*pieces.List, bool) {
	c := w.metaClient(d)
	if c == nil {
		return nil, true
	}
	now := w.s.sc.Start.Add(time.Duration(at))
	// The answer says which timestamp the service serves: one the device
	// trusts already, unexpired, needs no request (the hint is checked by
	// what follows: an offer its targets do not sign makes it refresh).
	var err error
	current := !w.s.cfg.AlwaysRefresh && c.Current(a.Metadata, now)
	switch {
	case current:
		w.t.metaSkipped++
	case w.s.cfg.AlwaysRefresh:
		err = c.Refresh(ctx, w.fetchMeta(d, base), now)
	default:
		// A newer timestamp stapled to the answer, the latest root's
		// version: verified as if fetched, without the requests.
		if len(a.Stapled) > 0 {
			w.t.metaStapled++
			w.t.metaBytes += int64(len(a.Stapled))
		}
		err = c.RefreshHinted(ctx, w.fetchMeta(d, base), now, updatemeta.Hint{Timestamp: a.Metadata, Root: a.MetadataRoot, Stapled: a.Stapled})
	}
	var image *pieces.List
	if err == nil && len(a.Files) > 0 {
		offered := make([]updatemeta.Offered, 0, 2*len(a.Files))
		for _, f := range a.Files {
			offered = append(offered, updatemeta.Offered{Name: f.FileName, Length: f.Size, SHA256: f.SHA256})
			if f.SignatureFileName != "" {
				offered = append(offered, updatemeta.Offered{Name: f.SignatureFileName, Length: f.SignatureSize, SHA256: f.SignatureSHA256})
			}
		}
		var signed []updatemeta.File
		signed, err = c.CheckOffer(d.version.String(), a.Version.String(), offered)
		if err != nil && current {
			// The hint named the metadata before the offer's signing:
			// fetch it, and check again.
			if err = c.Refresh(ctx, w.fetchMeta(d, base), now); err == nil {
				signed, err = c.CheckOffer(d.version.String(), a.Version.String(), offered)
			}
		}
		if err == nil {
			image, err = w.checkPieces(ctx, d, base, signed, a.Files[0].SHA256)
		}
	}
	if err == nil {
		w.t.verified++
		return image, true
	}
	r := updatemeta.ReasonOf(err)
	if r == "" {
		r = updatemeta.ReasonMalformed
	}
	w.t.verify[verifyIndex(r)]++
	w.s.log.Debug("device: refused the update metadata or offer", "device", d.mac, "model", w.s.groups[d.group].id.Path(), "reason", string(r), "err", err.Error(), "relay", d.viaRelay)
	target := a.Version
	if len(a.Files) == 0 {
		target = d.version
	}
	// To the service itself, which the relay may not be.
	d.refusedMeta = true
	d.viaRelay = false
	w.findService(ctx, d)
	if r != updatemeta.ReasonUnavailable {
		// The service takes reports on the version it offered or the one
		// the device runs (409 otherwise): a relay's own offer is
		// reported on the device's version.
		if w.reportCode(ctx, d, firmware.StateFailure, target, "verify:"+string(r)) == http.StatusConflict && target != d.version {
			w.reportCode(ctx, d, firmware.StateFailure, d.version, "verify:"+string(r))
		}
	}
	d.checkAt = at + int64(w.s.sc.Behaviour.RetryDelay)
	return nil, false
}

// findService finds the service itself for a LAN device that knew only
// the relay: as at its first check-in, by DNS (ucupdates-r2.<domain>).
func (w *worker) findService(ctx context.Context, d *device) {
	if d.internal != "" || w.s.groups[d.group].loc != firmware.Internal {
		return
	}
	if base, err := w.lookupService(ctx); err == nil {
		d.internal = base
	} // else the next check-in looks it up again
}

// checkPieces fetches the piece list of each signed file from base (the
// relay or the service: any may serve it) and checks it against the
// digest targets names. The simulated download then checks the whole
// file's SHA-256; a device that takes pieces from peers checks each piece
// against the list, the one of the image (SHA-256 image) checkPieces
// returns to it. A file of one piece needs no list: its one piece is the
// whole file, whose size and SHA-256 targets signs.
func (w *worker) checkPieces(ctx context.Context, d *device, base string, files []updatemeta.File, image string) (*pieces.List, error) {
	var kept *pieces.List
	for _, f := range files {
		if f.Length <= pieces.PieceSize {
			continue
		}
		w.t.metaRequests++
		resp, err := w.do(ctx, d, http.MethodGet, base+strings.TrimPrefix(deviceproto.PiecesPrefix, "/")+f.SHA256, nil)
		if err != nil {
			return nil, &updatemeta.Error{Reason: updatemeta.ReasonUnavailable, Err: fmt.Errorf("piece list of %s: %w", f.Name, err)}
		}
		if resp.StatusCode != http.StatusOK {
			drain(resp)
			return nil, &updatemeta.Error{Reason: updatemeta.ReasonUnavailable, Err: fmt.Errorf("piece list of %s: %s", f.Name, resp.Status)}
		}
		list, err := io.ReadAll(io.LimitReader(resp.Body, pieces.MaxEncodedSize+1))
		resp.Body.Close()
		if err != nil {
			return nil, &updatemeta.Error{Reason: updatemeta.ReasonUnavailable, Err: fmt.Errorf("piece list of %s: %w", f.Name, err)}
		}
		w.t.metaBytes += int64(len(list))
		l, err := updatemeta.CheckPieces(list, f)
		if err != nil {
			return nil, err
		}
		if d.peer != nil && f.SHA256 == image {
			kept = &l
			w.s.subnets[w.s.groups[d.group].peerNet].lists.Add(int64(len(list)))
		}
	}
	return kept, nil
}

// maxVerifyReasons sizes the tally's counts by reason.
const maxVerifyReasons = 16

func init() {
	if len(verifyReasons) > maxVerifyReasons {
		panic("simulator: more verification reasons than maxVerifyReasons")
	}
}
