package devsvc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
)

// group runs the goroutines of a running service and owns them: Wait
// returns once every one has returned. The first to fail (other than by
// being closed) cancels the group's context, so the others stop, and its
// error is what Wait returns.
type group struct {
	wg     sync.WaitGroup
	cancel context.CancelFunc
	mu     sync.Mutex
	err    error
}

// newGroup returns a group and the context its goroutines watch: done when
// ctx is, or when one of them fails.
func newGroup(ctx context.Context) (*group, context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	return &group{cancel: cancel}, ctx
}

// Go runs f in the group; name says what it is, in its error.
func (g *group) Go(name string, f func() error) {
	g.wg.Go(func() {
		err := f()
		if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
			return
		}
		g.mu.Lock()
		if g.err == nil {
			g.err = fmt.Errorf("%s: %w", name, err)
		}
		g.mu.Unlock()
		g.cancel()
	})
}

// Wait cancels the group's context, waits for every goroutine and returns
// the first failure.
func (g *group) Wait() error {
	g.cancel()
	g.wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}
