package directory

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// maxIdle is how long a pooled connection may sit unused before it is
// closed instead of reused: NAT and firewalls drop idle TCP connections
// without telling either end, and a request on such a connection would
// only fail at Config.Timeout.
const maxIdle = time.Minute

// conn is one LDAP connection and the TCP connection under it, whose
// deadlines bound every request.
type conn struct {
	l       *ldap.Conn
	raw     net.Conn
	idleAt  time.Time // when it went back to the pool (real clock)
	broken  bool      // must not be reused
	timeout time.Duration
}

// run calls f with the connection's I/O bounded by the earlier of the
// context's deadline and now + c.timeout; cancelling ctx interrupts it.
// Any error that is not an LDAP result from the server breaks the
// connection.
func (c *conn) run(ctx context.Context, f func(*ldap.Conn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.raw.SetDeadline(deadline)
	c.l.SetTimeout(time.Until(deadline))
	stop := context.AfterFunc(ctx, func() { c.raw.SetDeadline(time.Unix(1, 0)) })
	err := f(c.l)
	if !stop() {
		// ctx ended during f: the deadline in the past may have cut a
		// response in half.
		c.broken = true
		if err != nil {
			err = fmt.Errorf("%w (%w)", context.Cause(ctx), err)
		}
	}
	if err != nil && !isResult(err) {
		c.broken = true
		if time.Now().After(deadline) && ctx.Err() == nil {
			err = fmt.Errorf("timed out after %v: %w", c.timeout, err)
		}
	}
	if !c.broken {
		c.raw.SetDeadline(time.Time{})
	}
	return err
}

// isResult reports whether err is an LDAP result the server sent (such as
// invalidCredentials or noSuchObject), after which the connection is still
// in a known state, rather than a network or protocol failure.
func isResult(err error) bool {
	var le *ldap.Error
	return errors.As(err, &le) && le.ResultCode != 0 && le.ResultCode < ldap.ErrorNetwork
}

// healthy reports whether a pooled connection may be reused at now.
func (c *conn) healthy(now time.Time) bool {
	return !c.broken && !c.l.IsClosing() && now.Sub(c.idleAt) < maxIdle
}

// close closes the connection, waiting at most c.timeout for go-ldap to
// stop its goroutines.
func (c *conn) close() {
	c.broken = true
	c.l.SetTimeout(c.timeout)
	c.l.Close()
}

// connect opens a connection to the directory, negotiates TLS (LDAPS or
// StartTLS) and binds as dn, all within d.cfg.Timeout.
func (d *Directory) connect(ctx context.Context, dn, password string) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	var dialer net.Dialer
	raw, err := dialer.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", d.addr, err)
	}
	nc := raw
	if d.ldaps {
		tc := tls.Client(raw, d.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("TLS with %s: %w", d.addr, err)
		}
		nc = tc
	}
	l := ldap.NewConn(nc, d.ldaps)
	l.Start()
	c := &conn{l: l, raw: raw, timeout: d.cfg.Timeout}
	err = c.run(ctx, func(l *ldap.Conn) error {
		if !d.ldaps {
			if err := l.StartTLS(d.tls); err != nil {
				return fmt.Errorf("StartTLS with %s: %w", d.addr, err)
			}
		}
		if st, ok := l.TLSConnectionState(); !ok || !st.HandshakeComplete {
			return fmt.Errorf("connection to %s is not protected by TLS", d.addr)
		}
		if err := l.Bind(dn, password); err != nil {
			if isResult(err) {
				return fmt.Errorf("bind as %q: %w: %w", dn, errBind, err)
			}
			return fmt.Errorf("bind as %q: %w", dn, err)
		}
		return nil
	})
	if err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// pool keeps up to cap(slots) open connections bound as the service.
type pool struct {
	slots  chan struct{} // a token per connection in use
	mu     sync.Mutex
	idle   []*conn
	closed bool
}

func newPool(size int) *pool {
	return &pool{slots: make(chan struct{}, size)}
}

// errClosed is returned by lookups after Close.
var errClosed = errors.New("directory closed")

// acquire waits for a slot: the right to have one connection open. The
// caller must call release, or put, when done.
func (p *pool) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("waiting for a directory connection: %w", context.Cause(ctx))
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		p.release()
		return errClosed
	}
	return nil
}

// release gives back a slot.
func (p *pool) release() { <-p.slots }

// get acquires a slot and returns an idle healthy connection, or nil when
// the caller must connect a new one; either way the caller must call put.
func (p *pool) get(ctx context.Context) (*conn, error) {
	if err := p.acquire(ctx); err != nil {
		return nil, err
	}
	p.mu.Lock()
	var stale []*conn
	var c *conn
	now := time.Now()
	for len(p.idle) > 0 && c == nil {
		last := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if last.healthy(now) {
			c = last
		} else {
			stale = append(stale, last)
		}
	}
	p.mu.Unlock()
	for _, s := range stale {
		s.close()
	}
	return c, nil
}

// put gives back the caller's slot and, if c is not nil and still usable,
// keeps c for reuse.
func (p *pool) put(c *conn) {
	if c != nil {
		p.mu.Lock()
		keep := !p.closed && !c.broken && !c.l.IsClosing()
		if keep {
			c.idleAt = time.Now()
			p.idle = append(p.idle, c)
		}
		p.mu.Unlock()
		if !keep {
			c.close()
		}
	}
	p.release()
}

// close closes the idle connections; connections in use are closed when
// they are put back.
func (p *pool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}

// withConn runs f on a pooled service connection. When f fails on a
// reused connection for a reason other than an LDAP result, it runs once
// more on a new connection: the server may have closed the old one.
func (d *Directory) withConn(ctx context.Context, f func(*ldap.Conn) error) error {
	c, err := d.pool.get(ctx)
	if err != nil {
		return err
	}
	defer func() { d.pool.put(c) }()
	if c != nil {
		err = c.run(ctx, f)
		if err == nil || isResult(err) || ctx.Err() != nil {
			return err
		}
		c.close()
		c = nil
	}
	c, err = d.connect(ctx, d.cfg.BindDN, d.cfg.BindPassword)
	if err != nil {
		return err
	}
	return c.run(ctx, f)
}
