package store

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/opendus/opendus/firmware"
)

// TestInventoryFlushInterval checks the durability bound on a fake clock: a
// check-in is committed once FlushInterval has passed, without Flush, and
// not before.
func TestInventoryFlushInterval(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		const every = 200 * time.Millisecond
		s, err := Open(dir, &Options{FlushInterval: every})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ctx := context.Background()
		if err := s.RecordCheckIn(ctx, firmware.Device{Serial: "SN1", Identity: phone, Version: v1}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(every - time.Millisecond)
		synctest.Wait()
		if ds, _ := s.Devices(ctx); len(ds) != 0 {
			t.Errorf("committed before FlushInterval: %+v", ds)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait() // the writer has committed and waits again
		if d, err := s.Device(ctx, "serial:SN1"); err != nil || d.Version != v1 {
			t.Errorf("Device after FlushInterval = %+v, %v", d, err)
		}
	})
}
