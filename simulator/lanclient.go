package simulator

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// lanClient is the HTTP/1.1 client of LAN devices: keep-alive TLS
// connections to the internal listener, each carrying one exchange at a
// time, pooled per host for the devices of one subnet (or of none). It
// writes requests and reads answers as net/http does (http.ReadResponse),
// without net/http's Transport, whose two goroutines per connection and
// channels, selects and timers per request cost the simulator about as
// much CPU time as the service spends answering. Devices at the edge keep
// net/http, under go-ntlmssp.
type lanClient struct {
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	tls     *tls.Config
	maxIdle int // idle connections kept per host

	mu   sync.Mutex
	idle map[string][]*lanConn // by host:port
}

func newLANClient(dial func(ctx context.Context, network, addr string) (net.Conn, error), cfg *tls.Config, maxIdle int) *lanClient {
	return &lanClient{dial: dial, tls: cfg, maxIdle: max(maxIdle, 1), idle: map[string][]*lanConn{}}
}

// lanConn is one connection: its TLS connection and buffers.
type lanConn struct {
	hostport string
	c        *tls.Conn
	br       *bufio.Reader
	wbuf     []byte
}

// get returns an idle connection to hostport, or dials one.
func (lc *lanClient) get(ctx context.Context, hostport string) (*lanConn, error) {
	lc.mu.Lock()
	if list := lc.idle[hostport]; len(list) > 0 {
		c := list[len(list)-1]
		lc.idle[hostport] = list[:len(list)-1]
		lc.mu.Unlock()
		return c, nil
	}
	lc.mu.Unlock()
	raw, err := lc.dial(ctx, "tcp", hostport)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(hostport)
	cfg := lc.tls.Clone()
	cfg.ServerName = host
	tc := tls.Client(raw, cfg)
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, err
	}
	return &lanConn{hostport: hostport, c: tc, br: bufio.NewReaderSize(tc, 16<<10), wbuf: make([]byte, 0, 1024)}, nil
}

// put keeps c for the next exchange to its host, or closes it when enough
// are kept.
func (lc *lanClient) put(c *lanConn) {
	lc.mu.Lock()
	if list := lc.idle[c.hostport]; len(list) < lc.maxIdle {
		lc.idle[c.hostport] = append(list, c)
		lc.mu.Unlock()
		return
	}
	lc.mu.Unlock()
	c.c.Close()
}

// closeIdle closes the idle connections.
func (lc *lanClient) closeIdle() {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	for k, list := range lc.idle {
		for _, c := range list {
			c.c.Close()
		}
		delete(lc.idle, k)
	}
}

// do sends one request to an https URL and reads the answer's head; the
// caller reads and closes its body, which gives the connection back (or
// closes it, if the body was not read to its end). header holds extra
// header name and value pairs.
func (lc *lanClient) do(ctx context.Context, method, url string, body []byte, ua string, header []string) (*http.Response, error) {
	rest, ok := strings.CutPrefix(url, "https://")
	if !ok {
		return nil, fmt.Errorf("%q: not an https URL", url)
	}
	hostport, path, _ := strings.Cut(rest, "/")
	path = "/" + path
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		hostport = net.JoinHostPort(hostport, "443")
	}
	c, err := lc.get(ctx, hostport)
	if err != nil {
		return nil, err
	}
	c.c.SetDeadline(time.Now().Add(requestTimeout))
	b := c.wbuf[:0]
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, hostport...)
	b = append(b, "\r\nUser-Agent: "...)
	b = append(b, ua...)
	b = append(b, "\r\n"...)
	if body != nil {
		b = append(b, "Content-Type: application/xml; charset=utf-8\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	} else if method == http.MethodPost {
		b = append(b, "Content-Length: 0\r\n"...)
	}
	for i := 0; i+1 < len(header); i += 2 {
		b = append(b, header[i]...)
		b = append(b, ": "...)
		b = append(b, header[i+1]...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	b = append(b, body...)
	c.wbuf = b
	if _, err := c.c.Write(b); err != nil {
		c.c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.c.Close()
		return nil, err
	}
	resp.Body = &lanBody{rc: resp.Body, lc: lc, c: c, keep: !resp.Close}
	return resp, nil
}

// lanBody is an answer's body: read to its end and closed, it gives the
// connection back for the next exchange; closed before, it closes it.
type lanBody struct {
	rc   io.ReadCloser
	lc   *lanClient
	c    *lanConn
	keep bool // the server keeps the connection open
	eof  bool
	done bool
	one  [1]byte
}

func (b *lanBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if errors.Is(err, io.EOF) {
		b.eof = true
	}
	return n, err
}

func (b *lanBody) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	if !b.eof && b.keep {
		// Read to its end but not past it: the end is known at once.
		if n, err := b.rc.Read(b.one[:]); n == 0 && errors.Is(err, io.EOF) {
			b.eof = true
		}
	}
	b.rc.Close()
	if b.eof && b.keep && b.c.br.Buffered() == 0 {
		// The deadline stays: nothing reads or writes an idle connection,
		// and do sets the next one (a deadline costs two timer updates).
		b.lc.put(b.c)
		return nil
	}
	return b.c.c.Close()
}
