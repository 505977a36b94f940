package deviceapi

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/pieces"
)

// maxPieceLists bounds the piece lists kept in memory (each about 5 KiB
// for a 20 MB image); past it the oldest is dropped and computed again
// when asked for.
const maxPieceLists = 256

// pieceLists caches the piece lists of stored files by SHA-256: a stored
// file never changes, so its list is computed once, on the first request.
type pieceLists struct {
	mu    sync.Mutex
	m     map[string]*pieceList
	order []string // oldest first
}

type pieceList struct {
	once sync.Once
	b    []byte // the canonical encoding
	err  error
}

// get returns the list of the stored file whose SHA-256 is sha (lower-case
// hex), computing it on the first request.
func (p *pieceLists) get(s *Server, cat *store.Catalog, sha string) ([]byte, error) {
	p.mu.Lock()
	if p.m == nil {
		p.m = map[string]*pieceList{}
	}
	pl, ok := p.m[sha]
	if !ok {
		pl = &pieceList{}
		p.m[sha] = pl
		p.order = append(p.order, sha)
		if len(p.order) > maxPieceLists {
			delete(p.m, p.order[0])
			p.order = p.order[1:]
		}
	}
	p.mu.Unlock()
	pl.once.Do(func() { pl.b, pl.err = computeList(s, cat, sha) })
	if pl.err != nil {
		p.mu.Lock()
		if p.m[sha] == pl {
			delete(p.m, sha) // not found now; maybe imported later
		}
		p.mu.Unlock()
	}
	return pl.b, pl.err
}

func computeList(s *Server, cat *store.Catalog, sha string) ([]byte, error) {
	var sum [32]byte
	if _, err := hex.Decode(sum[:], []byte(sha)); err != nil {
		return nil, fmt.Errorf("%w: pieces of %s", store.ErrNotFound, sha)
	}
	u, im, ok := cat.FileBySHA256(sum)
	if !ok {
		return nil, fmt.Errorf("%w: no stored file has the SHA-256 %s", store.ErrNotFound, sha)
	}
	of, err := s.files.open(s.st, cat, fileKey{u.Identity, u.Version, im.Name})
	if err != nil {
		return nil, err
	}
	defer s.files.release(of)
	l, err := pieces.Compute(io.NewSectionReader(of.f, 0, of.im.Size))
	if err != nil {
		return nil, err
	}
	return l.Marshal(), nil
}

// servePieces serves GET and HEAD of PiecesPrefix + a stored file's
// SHA-256: the file's piece list (package pieces), which a peer-capable
// device fetches from the service it checks in with and trusts over its
// TLS, and checks every piece it gets from a peer against. Cached
// forever: content-addressed.
func (l *listener) servePieces(w http.ResponseWriter, r *http.Request) {
	s := l.s
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.fail(w, r, "", errMethod)
		return
	}
	if _, err := l.user(r, ""); err != nil {
		s.fail(w, r, "", err)
		return
	}
	sha, i, ok := deviceproto.ParsePiecesPath(r.URL.Path, 1)
	if !ok || i >= 0 {
		s.fail(w, r, "", fmt.Errorf("%w: want %s and a file's SHA-256 in 64 lower-case hex digits (the service serves piece lists, not pieces)", errBadPath, deviceproto.PiecesPrefix))
		return
	}
	b, err := s.lists.get(s, s.st.Catalog(), sha)
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	h := w.Header()
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	h["Cache-Control"] = l.cacheControl // private through the edge, as files
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(b)
	}
}
