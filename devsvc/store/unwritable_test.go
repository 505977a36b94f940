package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/testtool"
)

// faultyDisk fails the inventory's commits while full is set, as a full
// disk does, and counts the attempts.
type faultyDisk struct {
	full     atomic.Bool
	attempts atomic.Int64
}

var errNoSpace = fmt.Errorf("write opendus.db: %w", syscall.ENOSPC)

func (d *faultyDisk) write() error {
	d.attempts.Add(1)
	if d.full.Load() {
		return errNoSpace
	}
	return nil
}

// logBuffer is a concurrency-safe log destination.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// checkIn is a check-in of a device on v1 that was offered v2.
func checkIn(serial string) firmware.Device {
	return firmware.Device{Serial: serial, Identity: phone, Version: v1, Offered: v2}
}

// TestInventoryUnwritable: when the inventory's commits fail, what was
// accepted is kept and retried with back-off, nothing more is accepted
// (ErrUnavailable) and the state is logged once each way; when the writes
// succeed again the held check-ins are written by themselves.
func TestInventoryUnwritable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		disk := &faultyDisk{}
		var logged logBuffer
		s := openTest(t, &Options{Logger: logged.logger(), testHookWrite: disk.write})

		if h := s.InventoryHealth(); !h.Writable || h.Held != 0 || h.Err != nil || !h.Since.IsZero() {
			t.Errorf("InventoryHealth of a new store = %+v, want writable, nothing held", h)
		}
		// Accepted, then the disk fills before the batch is committed.
		disk.full.Store(true)
		for _, sn := range []string{"A1", "A2", "A3"} {
			if err := s.RecordCheckIn(ctx, checkIn(sn)); err != nil {
				t.Fatalf("RecordCheckIn(%s) = %v", sn, err)
			}
		}
		if err := s.Report(ctx, Report{Key: "serial:A1", State: firmware.StateDownloading, Target: v2}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(DefaultFlushInterval)
		synctest.Wait()
		h := s.InventoryHealth()
		if h.Writable || h.Held != 4 || !errors.Is(h.Err, syscall.ENOSPC) || h.Since.IsZero() {
			t.Errorf("InventoryHealth after a failed commit = %+v, want unwritable, 4 held, ENOSPC", h)
		}
		for name, err := range map[string]error{
			"RecordCheckIn": s.RecordCheckIn(ctx, checkIn("B1")),
			"Report":        s.Report(ctx, Report{Key: "serial:A2", State: firmware.StateSuccess, Target: v2}),
		} {
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no space left") {
				t.Errorf("%s while the inventory cannot be written = %v, want ErrUnavailable with the cause", name, err)
			}
		}

		// Retried with back-off: 100 ms after the failure, doubling, at
		// most 5 s apart.
		disk.attempts.Store(0)
		start := time.Now()
		for _, tt := range []struct {
			at       time.Duration // after the first failure
			attempts int64         // retries by then
		}{
			{50 * time.Millisecond, 0},
			{time.Second, 3},      // at 0.1, 0.3, 0.7 s
			{10 * time.Second, 6}, // 1.5, 3.1, 6.3 s
			{time.Minute, 16},     // then every 5 s: 11.3 ... 56.3 s
		} {
			time.Sleep(tt.at - time.Since(start))
			synctest.Wait()
			if got := disk.attempts.Load(); got != tt.attempts {
				t.Errorf("%v after the first failure: %d retries, want %d", tt.at, got, tt.attempts)
			}
		}
		if err := s.Flush(ctx); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Flush while the inventory cannot be written = %v, want ErrUnavailable", err)
		}
		if n := strings.Count(logged.String(), "the inventory cannot be written"); n != 1 {
			t.Errorf("logged the failure %d times, want once:\n%s", n, logged.String())
		}

		// Space returns: the held check-ins are written by themselves.
		disk.full.Store(false)
		time.Sleep(retryMax)
		synctest.Wait()
		if h := s.InventoryHealth(); !h.Writable || h.Held != 0 {
			t.Errorf("InventoryHealth after recovery = %+v, want writable, nothing held", h)
		}
		if n := strings.Count(logged.String(), "the inventory is written again"); n != 1 {
			t.Errorf("logged the recovery %d times, want once:\n%s", n, logged.String())
		}
		for _, key := range []string{"serial:A1", "serial:A2", "serial:A3"} {
			if _, err := s.Device(ctx, key); err != nil {
				t.Errorf("Device(%s), accepted before the failure = %v", key, err)
			}
		}
		if d, _ := s.Device(ctx, "serial:A1"); d.State != firmware.StateDownloading {
			t.Errorf("device A1 after recovery: state %q, want downloading (its report applied after its check-in)", d.State)
		}
		for _, key := range []string{"serial:B1", "serial:B2"} {
			if _, err := s.Device(ctx, key); !errors.Is(err, ErrNotFound) {
				t.Errorf("Device(%s), refused = %v, want ErrNotFound", key, err)
			}
		}
		if err := s.RecordCheckIn(ctx, checkIn("C1")); err != nil {
			t.Errorf("RecordCheckIn after recovery = %v", err)
		}
		if err := s.Flush(ctx); err != nil {
			t.Errorf("Flush after recovery = %v", err)
		}
	})
}

// TestInventoryFlushRetriesAtOnce: a Flush while the inventory cannot be
// written retries the held batch without waiting for the back-off, so an
// admin who freed space sees the result at once.
func TestInventoryFlushRetriesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		disk := &faultyDisk{}
		s := openTest(t, &Options{FlushInterval: time.Hour, testHookWrite: disk.write})
		if err := s.RecordCheckIn(ctx, checkIn("A1")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the writer has taken it into its batch
		if h := s.InventoryHealth(); !h.Writable || h.Held != 1 {
			t.Errorf("InventoryHealth with one check-in batched = %+v, want writable, 1 held", h)
		}
		disk.full.Store(true)
		if err := s.Flush(ctx); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Flush on a full disk = %v, want ErrUnavailable", err)
		}
		time.Sleep(time.Minute) // the back-off grows to 5 s
		synctest.Wait()
		disk.full.Store(false)
		if err := s.Flush(ctx); err != nil {
			t.Fatalf("Flush after space returned = %v, want nil", err)
		}
		if _, err := s.Device(ctx, "serial:A1"); err != nil {
			t.Errorf("Device(A1) = %v", err)
		}
		if h := s.InventoryHealth(); !h.Writable {
			t.Errorf("InventoryHealth = %+v, want writable", h)
		}
	})
}

// TestInventoryLostAtClose: when the inventory still cannot be written at
// Close, what it held is lost, and Close and the log say so, naming the
// devices.
func TestInventoryLostAtClose(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	disk := &faultyDisk{}
	var logged logBuffer
	s := openDir(t, dir, &Options{FlushInterval: time.Hour, Logger: logged.logger(), testHookWrite: disk.write})
	if err := s.RecordCheckIn(ctx, checkIn("written")); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	disk.full.Store(true)
	for _, sn := range []string{"L1", "L2"} {
		if err := s.RecordCheckIn(ctx, checkIn(sn)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Report(ctx, Report{Key: "serial:L1", State: firmware.StateDownloading, Target: v2}); err != nil {
		t.Fatal(err)
	}
	err := s.Close()
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "3 check-ins and reports of 2 devices could not be written and are lost") {
		t.Errorf("Close on a full disk = %v, want ErrUnavailable counting 3 lost of 2 devices", err)
	}
	if got := logged.String(); !strings.Contains(got, "level=ERROR") || !strings.Contains(got, `keys="serial:L1 serial:L2"`) {
		t.Errorf("the log does not name the lost devices at ERROR:\n%s", got)
	}
	s = openDir(t, dir, nil)
	ds, err := s.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Key != "serial:written" {
		t.Errorf("devices after reopen = %v, want only the one written before", ds)
	}
}

// TestInventoryBadRecord: a stored record that cannot be read does not
// stop the inventory: the other devices of the batch are written.
func TestInventoryBadRecord(t *testing.T) {
	ctx := context.Background()
	var logged logBuffer
	s := openTest(t, &Options{Logger: logged.logger()})
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDevices).Put([]byte("serial:BAD"), []byte{0xff, 0xff})
	}); err != nil {
		t.Fatal(err)
	}
	for _, sn := range []string{"BAD", "GOOD"} {
		if err := s.RecordCheckIn(ctx, checkIn(sn)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("Flush with a bad record in the batch = %v, want nil", err)
	}
	if _, err := s.Device(ctx, "serial:GOOD"); err != nil {
		t.Errorf("Device(GOOD) = %v", err)
	}
	if !strings.Contains(logged.String(), `device \"serial:BAD\"`) {
		t.Errorf("the bad record is not logged:\n%s", logged.String())
	}
	if h := s.InventoryHealth(); !h.Writable {
		t.Errorf("InventoryHealth = %+v, want writable", h)
	}
}

// TestInventoryDiskFull fills a real small file system under the store:
// the commit fails with ENOSPC, check-ins are refused while it is full, and
// once space is freed the held ones are written and the database is
// consistent, also after a reopen.
func TestInventoryDiskFull(t *testing.T) {
	ctx := context.Background()
	dir := testtool.TmpFS(t, 4<<20)
	s := openDir(t, dir, &Options{FlushInterval: time.Hour})
	if err := s.RecordCheckIn(ctx, checkIn("before")); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	fill(t, filler)

	const n = 2000 // far more than the database's free pages hold
	for i := range n {
		if err := s.RecordCheckIn(ctx, checkIn(fmt.Sprint(i))); err != nil {
			t.Fatalf("RecordCheckIn(%d) = %v", i, err)
		}
	}
	if err := s.Flush(ctx); !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Flush on a full disk = %v, want ErrUnavailable wrapping ENOSPC", err)
	}
	if h := s.InventoryHealth(); h.Writable || h.Held != n {
		t.Errorf("InventoryHealth on a full disk = %+v, want unwritable with %d held", h, n)
	}
	if err := s.RecordCheckIn(ctx, checkIn("refused")); !errors.Is(err, ErrUnavailable) {
		t.Errorf("RecordCheckIn on a full disk = %v, want ErrUnavailable", err)
	}
	checkDB(t, s)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("Flush after space was freed = %v", err)
	}
	checkDB(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDir(t, dir, nil)
	ds, err := s.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != n+1 {
		t.Errorf("%d devices after reopen, want %d", len(ds), n+1)
	}
	checkDB(t, s)
}

// fill writes name until the file system is full.
func fill(t *testing.T, name string) {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// checkDB runs bbolt's consistency check of the database.
func checkDB(t *testing.T, s *Store) {
	t.Helper()
	if err := s.db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}); err != nil {
		t.Errorf("bbolt check: %v", err)
	}
}
