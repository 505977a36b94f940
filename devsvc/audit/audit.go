package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Listener names for Middleware.
const (
	Internal = "internal" // the LAN listener, anonymous check-ins
	External = "external" // the edge listener, NTLM
)

// Defaults of Config.
const (
	DefaultRetention     = 10 * 24 * time.Hour // LogCleanUpInterval
	DefaultFlushInterval = 5 * time.Minute     // LogFlushInterval
	DefaultMaxCache      = 512000              // MaxLogCacheLimit, bytes
)

// cleanEvery is how often Run removes expired files.
const cleanEvery = time.Hour

// lossReportEvery is how often, at most, lost lines are logged while they
// keep being lost; Close reports the rest.
const lossReportEvery = time.Minute

// FilePrefix and FileSuffix frame the UTC date in a day file's name:
// imageUpdates-2026-11-21.log.
const (
	FilePrefix = "imageUpdates-"
	FileSuffix = ".log"
	dateLayout = "2006-01-02"
)

const header = "#Software: OpenDUS audit log\n#Fields: time remote listener user method path status bytes duration_us device\n"

// ErrClosed is returned when Close is called again.
var ErrClosed = errors.New("audit: log closed")

// Cleaner is something else whose old files Run removes along with the
// audit log's, with the same clock: the device log uploads
// (*devlogs.Handler) implement it.
type Cleaner interface {
	// Clean removes the files that have expired at now.
	Clean(now time.Time) error
}

// Config configures a Log. The zero value, with Dir set, is the original
// service's defaults.
type Config struct {
	// Dir is the directory of the day files, DATA/Logs/Server/Audit/imageUpdates.
	// It is created if missing. Required.
	Dir string

	// Retention is how long a day file is kept after its day has ended
	// (LogCleanUpInterval). Zero means DefaultRetention, 10 days.
	Retention time.Duration

	// FlushInterval is how often Run writes the pending lines to the file
	// and fsyncs it (LogFlushInterval). Zero means DefaultFlushInterval,
	// 5 minutes.
	FlushInterval time.Duration

	// MaxCache is how many bytes of lines may wait in memory before the
	// request that adds the next line writes them out (MaxLogCacheLimit).
	// Zero means DefaultMaxCache, 512,000.
	MaxCache int

	// Cleaners are cleaned by Run with the audit files, e.g. the device
	// log uploads.
	Cleaners []Cleaner

	// Floor, if set, keeps room on the disk for what matters more than
	// the audit log (the device inventory): lines that would leave less
	// free space than the floor are dropped, counted and reported, rather
	// than written or held (devices are never made to wait for the audit
	// log). nil means none.
	Floor Floor

	// Now is the clock for line times, day files and retention. nil means
	// time.Now. Run's ticker runs on the real (or synctest) clock.
	Now func() time.Time

	// Logger receives write and cleanup failures. nil discards.
	Logger *slog.Logger
}

// Floor is a floor of free disk space (*freespace.Floor is one).
type Floor interface {
	// Room returns how many bytes may be written before the free space
	// falls below the floor; zero or less when it is below already.
	Room() (int64, error)
}

// Log is an open audit log. It is safe for concurrent use.
type Log struct {
	cfg  Config
	root *os.Root
	now  func() time.Time
	log  *slog.Logger

	// mu guards the buffers. Lock order: wmu before mu.
	mu     sync.Mutex
	cur    chunk   // lines being added
	full   []chunk // lines of earlier days, waiting to be written
	free   [][]byte
	closed bool

	// wmu serialises writes to the file and guards the fields below.
	wmu      sync.Mutex
	f        *os.File
	fday     int64 // day number of f
	fsize    int64 // size of f
	dirty    bool  // f has writes not yet fsynced
	dropped  int64 // lines lost since Open
	unsaid   int64 // lines lost and not yet reported
	losing   bool  // the last write lost lines
	lastSaid time.Time
	floorErr bool // the floor's error was logged

	// retention and flushEvery are Config's, as Reconfigure changes
	// them; reconfigured wakes Run to apply them.
	retention, flushEvery atomic.Int64
	reconfigured          chan struct{}
}

// chunk is a buffer of lines of one UTC day.
type chunk struct {
	day int64 // days since the Unix epoch, UTC
	b   []byte
}

// Open opens the audit log in cfg.Dir, creating the directory.
func Open(cfg Config) (*Log, error) {
	if cfg.Dir == "" {
		return nil, errors.New("audit: Config.Dir is empty")
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.MaxCache <= 0 {
		cfg.MaxCache = DefaultMaxCache
	}
	l := &Log{cfg: cfg, now: cfg.Now, log: cfg.Logger, reconfigured: make(chan struct{}, 1)}
	l.retention.Store(int64(cfg.Retention))
	l.flushEvery.Store(int64(cfg.FlushInterval))
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	root, err := os.OpenRoot(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l.root = root
	l.cur.day = -1
	return l, nil
}

// dayOf returns the UTC day number of t.
func dayOf(t time.Time) int64 {
	s := t.Unix()
	d := s / 86400
	if s < 0 && s%86400 != 0 {
		d--
	}
	return d
}

// FileName returns the name of the day file that holds lines of time t.
func FileName(t time.Time) string {
	return FilePrefix + t.UTC().Format(dateLayout) + FileSuffix
}

func dayName(day int64) string {
	return FileName(time.Unix(day*86400, 0))
}

// add appends e's line to the buffer and writes the buffer out when it is
// full or a day has ended.
func (l *Log) add(e *Entry) {
	day := dayOf(e.Time)
	// Format outside the lock, on the stack for ordinary lines.
	var buf [512]byte
	line := AppendLine(buf[:0], e)
	l.mu.Lock()
	if l.cur.day != day {
		// A line of an earlier day that lost a race at midnight goes to
		// the current file rather than reopening yesterday's.
		if len(l.cur.b) == 0 {
			l.cur.day = day
		} else if day > l.cur.day {
			l.full = append(l.full, l.cur)
			l.cur = chunk{day: day, b: l.buffer()}
		}
	}
	if l.cur.b == nil {
		l.cur.b = l.buffer()
	}
	l.cur.b = append(l.cur.b, line...)
	flush := len(l.cur.b) >= l.cfg.MaxCache || len(l.full) > 0 || l.closed
	closed := l.closed
	l.mu.Unlock()
	if flush {
		l.flush(closed)
	}
	if closed {
		l.wmu.Lock()
		l.closeFile()
		l.wmu.Unlock()
	}
}

// buffer returns an empty buffer, reusing a written one. mu is held.
func (l *Log) buffer() []byte {
	if n := len(l.free); n > 0 {
		b := l.free[n-1]
		l.free = l.free[:n-1]
		return b[:0]
	}
	return make([]byte, 0, l.cfg.MaxCache+4096)
}

// flush writes every pending line to the files of their days, and fsyncs
// the open file when sync is set.
func (l *Log) flush(sync bool) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()

	l.mu.Lock()
	chunks := l.full
	l.full = nil
	if len(l.cur.b) > 0 {
		chunks = append(chunks, l.cur)
		l.cur = chunk{day: l.cur.day}
	}
	l.mu.Unlock()

	var errs []error
	for _, c := range chunks {
		if err := l.write(c); err != nil {
			errs = append(errs, err)
		}
	}
	if sync && l.f != nil && l.dirty {
		l.dirty = false
		if err := l.f.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("audit: %s: %w", l.f.Name(), err))
		}
	}

	l.mu.Lock()
	for _, c := range chunks {
		if len(l.free) < 2 && cap(c.b) <= 2*(l.cfg.MaxCache+4096) {
			l.free = append(l.free, c.b[:0])
		}
	}
	l.mu.Unlock()
	return errors.Join(errs...)
}

// write appends c to its day's file: the whole lines that fit above the
// floor, the others are lost. A write that fails part way (the disk is
// full) is cut back to its last whole line, so that the file never holds a
// torn line. wmu is held.
func (l *Log) write(c chunk) error {
	data := c.b
	low := false
	if l.cfg.Floor != nil {
		room, err := l.cfg.Floor.Room()
		switch {
		case err != nil:
			// Writing anyway: the audit log is the service's record.
			if !l.floorErr {
				l.floorErr = true
				l.log.Error("audit: free disk space cannot be measured; writing without the floor", "err", err)
			}
		case room < int64(len(data)):
			cut := 0
			if room > 0 {
				cut = bytes.LastIndexByte(data[:room], '\n') + 1
			}
			l.lost(data[cut:], errLowSpace)
			data, low = data[:cut], true
		}
	}
	if len(data) == 0 {
		return nil
	}
	if err := l.openDay(c.day); err != nil {
		l.lost(data, err)
		return err
	}
	l.dirty = true
	n, err := l.f.Write(data)
	l.fsize += int64(n)
	if err != nil {
		err = fmt.Errorf("audit: %s: %w", l.f.Name(), err)
		if keep := bytes.LastIndexByte(data[:n], '\n') + 1; keep < n {
			if terr := l.f.Truncate(l.fsize - int64(n-keep)); terr != nil {
				err = errors.Join(err, fmt.Errorf("audit: cutting off a torn line: %w", terr))
			} else {
				l.fsize -= int64(n - keep)
			}
			n = keep
		}
		l.lost(data[n:], err)
		return err
	}
	if !low && l.losing {
		l.losing = false
		l.log.Warn("audit: lines are written again", "lost", l.unsaid, "lost_total", l.dropped)
		l.unsaid, l.lastSaid = 0, time.Time{}
	}
	return nil
}

// errLowSpace is why lines that do not fit above Config.Floor are lost.
var errLowSpace = errors.New("free disk space is below the floor (min_free_space)")

// lost counts the lines of b, which could not be written, and reports
// them: at once when lines start being lost, then at most once every
// lossReportEvery while they keep being lost, and the rest at Close. wmu
// is held.
func (l *Log) lost(b []byte, err error) {
	n := int64(bytes.Count(b, []byte{'\n'}))
	if n == 0 {
		return
	}
	l.dropped += n
	l.unsaid += n
	l.losing = true
	if now := l.now(); l.lastSaid.IsZero() || now.Sub(l.lastSaid) >= lossReportEvery || now.Before(l.lastSaid) {
		l.log.Error("audit: lines lost", "lines", l.unsaid, "lost_total", l.dropped, "err", err)
		l.unsaid, l.lastSaid = 0, now
	}
}

// openDay makes l.f the file of day, fsyncing and closing the previous
// one. wmu is held.
func (l *Log) openDay(day int64) error {
	if l.f != nil && l.fday == day {
		return nil
	}
	if err := l.closeFile(); err != nil {
		l.log.Error("audit: closing the previous day's file", "err", err)
	}
	name := dayName(day)
	f, err := l.root.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: %w", err)
	}
	size := fi.Size()
	if size == 0 {
		if _, err := f.WriteString(header); err != nil {
			f.Truncate(0)
			f.Close()
			return fmt.Errorf("audit: %s: %w", name, err)
		}
		size = int64(len(header))
	}
	l.f, l.fday, l.fsize = f, day, size
	return nil
}

// closeFile fsyncs and closes the open file. wmu is held.
func (l *Log) closeFile() error {
	if l.f == nil {
		return nil
	}
	err := l.f.Sync()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	if err != nil {
		return fmt.Errorf("audit: %s: %w", dayName(l.fday), err)
	}
	return nil
}

// Flush writes the pending lines and fsyncs the file.
func (l *Log) Flush() error {
	return l.flush(true)
}

// Close writes the pending lines that it can, fsyncs and closes the file,
// and logs the lines it could not write (and any lost before and not yet
// reported) at Error. Lines added after Close (by requests still running)
// are written at once, each opening and closing the file: close the
// servers first.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true
	l.mu.Unlock()
	err := l.flush(true)
	l.wmu.Lock()
	if cerr := l.closeFile(); err == nil {
		err = cerr
	}
	if l.unsaid > 0 {
		l.log.Error("audit: closing with lines that could not be written: they are lost", "lines", l.unsaid, "lost_total", l.dropped)
		l.unsaid = 0
	}
	l.wmu.Unlock()
	return err
}

// Reconfigure changes Config.Retention and Config.FlushInterval (zero:
// their defaults). Run applies them at once: it flushes on the new
// interval from now and cleans with the new retention.
func (l *Log) Reconfigure(retention, flushInterval time.Duration) {
	if retention <= 0 {
		retention = DefaultRetention
	}
	if flushInterval <= 0 {
		flushInterval = DefaultFlushInterval
	}
	l.retention.Store(int64(retention))
	l.flushEvery.Store(int64(flushInterval))
	select {
	case l.reconfigured <- struct{}{}:
	default: // Run has one waiting already
	}
}

// Run writes and fsyncs the pending lines every FlushInterval and removes
// expired files (Clean, then each of Config.Cleaners) at start and every
// hour, until ctx is done; then it writes the pending lines once more.
func (l *Log) Run(ctx context.Context) {
	every := time.Duration(l.flushEvery.Load())
	tick := time.NewTicker(every)
	defer tick.Stop()
	lastClean := l.now()
	l.cleanAll(lastClean)
	for {
		select {
		case <-l.reconfigured:
			if e := time.Duration(l.flushEvery.Load()); e != every {
				every = e
				tick.Reset(every)
			}
			lastClean = l.now()
			l.cleanAll(lastClean)
		case <-ctx.Done():
			if err := l.Flush(); err != nil {
				l.log.Error("audit: flush", "err", err)
			}
			return
		case <-tick.C:
			if err := l.Flush(); err != nil {
				l.log.Error("audit: flush", "err", err)
			}
			if now := l.now(); now.Sub(lastClean) >= cleanEvery || now.Before(lastClean) {
				lastClean = now
				l.cleanAll(now)
			}
		}
	}
}

func (l *Log) cleanAll(now time.Time) {
	if err := l.Clean(now); err != nil {
		l.log.Error("audit: cleanup", "err", err)
	}
	for _, c := range l.cfg.Cleaners {
		if err := c.Clean(now); err != nil {
			l.log.Error("audit: cleanup", "err", err)
		}
	}
}

// Clean removes the day files whose day ended more than Retention before
// now. The file being written is kept whatever the clock says.
func (l *Log) Clean(now time.Time) error {
	d, err := l.root.Open(".")
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	l.wmu.Lock()
	open := int64(-1)
	if l.f != nil {
		open = l.fday
	}
	l.wmu.Unlock()
	var errs []error
	for _, name := range names {
		date, ok := strings.CutPrefix(name, FilePrefix)
		if !ok {
			continue
		}
		date, ok = strings.CutSuffix(date, FileSuffix)
		if !ok {
			continue
		}
		t, err := time.Parse(dateLayout, date)
		if err != nil || dayOf(t) == open {
			continue
		}
		if end := t.Add(24 * time.Hour); now.Sub(end) < time.Duration(l.retention.Load()) {
			continue
		}
		if err := l.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("audit: %w", err))
		}
	}
	return errors.Join(errs...)
}
