package cabingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// streamer hands out the files of a Source one at a time, for the Open
// funcs of the import: one goroutine walks the source and stops at each
// file asked for until its reader is closed, skipping the others. Asking
// for a file the walk has passed starts the walk again from the start
// (correct, but slow: plan orders the updates so that an import reads
// front to back). Only one file is open at a time, which is how the
// store reads (sequentially, in the order of the updates and their
// files); opening a second while the first is open is an error.
//
// Memory is what one walk of the source holds (for a cabinet: a block,
// the codec window), whatever the size of the files.
type streamer struct {
	src   Source
	paths []string // by walk position, to check that a rewalk sees the same

	mu     sync.Mutex
	run    *walkRun
	busy   bool
	closed bool
	walks  int // walks started, for tests and benchmarks
}

// walkRun is one walk of the source.
type walkRun struct {
	cancel context.CancelFunc
	want   chan int      // the position asked for
	got    chan delivery // its reader
	exited chan struct{} // closed when the walk has returned
	err    error         // the walk's result, set before exited closes
	next   int           // positions before next were passed or asked for
}

type delivery struct {
	r    io.Reader
	done chan struct{} // closed by the consumer when it is finished
}

func newStreamer(src Source, paths []string) *streamer {
	return &streamer{src: src, paths: paths}
}

// open returns a reader of the file at walk position i.
func (s *streamer) open(i int) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("bundle closed")
	}
	if s.busy {
		return nil, errors.New("bundle: a file of the bundle is open already; files are read one at a time")
	}
	if s.run != nil && i < s.run.next {
		s.stopLocked()
	}
	if s.run == nil {
		s.startLocked()
	}
	run := s.run
	run.next = i + 1
	select {
	case run.want <- i:
	case <-run.exited:
		return nil, s.endedLocked(run, i)
	}
	select {
	case d := <-run.got:
		s.busy = true
		return &streamReader{s: s, d: d}, nil
	case <-run.exited:
		return nil, s.endedLocked(run, i)
	}
}

func (s *streamer) endedLocked(run *walkRun, i int) error {
	s.run = nil
	if run.err != nil {
		return fmt.Errorf("%s: %w", s.paths[i], run.err)
	}
	return fmt.Errorf("%s: the archive ended before it", s.paths[i])
}

func (s *streamer) startLocked() {
	ctx, cancel := context.WithCancel(context.Background())
	run := &walkRun{cancel: cancel, want: make(chan int), got: make(chan delivery), exited: make(chan struct{})}
	s.run = run
	s.walks++
	go func() {
		defer close(run.exited)
		pos, want := 0, -1
		run.err = s.src.Walk(ctx, func(p string, size int64, r io.Reader) error {
			i := pos
			pos++
			if i >= len(s.paths) || s.paths[i] != p {
				return fmt.Errorf("%w: the archive changed since it was checked (file %d is %s)", ErrInvalid, i, p)
			}
			if want < 0 {
				select {
				case want = <-run.want:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if i < want {
				return nil
			}
			d := delivery{r: r, done: make(chan struct{})}
			select {
			case run.got <- d:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case <-d.done:
			case <-ctx.Done():
				return ctx.Err()
			}
			want = -1
			return nil
		})
	}()
}

func (s *streamer) stopLocked() {
	if s.run == nil {
		return
	}
	s.run.cancel()
	<-s.run.exited
	s.run = nil
}

// close stops the walk.
func (s *streamer) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.stopLocked()
}

// streamReader is the reader of one file; the walk waits for its Close.
type streamReader struct {
	s    *streamer
	d    delivery
	once sync.Once
}

func (r *streamReader) Read(p []byte) (int, error) { return r.d.r.Read(p) }

func (r *streamReader) Close() error {
	r.once.Do(func() {
		r.s.mu.Lock()
		r.s.busy = false
		r.s.mu.Unlock()
		close(r.d.done)
	})
	return nil
}
