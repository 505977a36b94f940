package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/opendus/opendus/firmware"
)

// TestConcurrent runs imports, transitions, purges, snapshot reads and
// check-ins at once (for the race detector) and checks the store after.
func TestConcurrent(t *testing.T) {
	s := openTest(t, &Options{FlushInterval: 5 * time.Millisecond})
	ctx := context.Background()
	ids := []firmware.Identity{phone, phone2, table}
	var wg sync.WaitGroup
	for g, id := range ids {
		wg.Go(func() {
			for i := range 8 {
				v := firmware.Version{4, 0, uint32(g + 1), uint32(i + 1)}
				if _, err := s.Import(ctx, "admin", []firmware.ImportUpdate{update(id, v)}, ImportOptions{}); err != nil {
					t.Errorf("Import %s %s: %v", id, v, err)
					return
				}
				s.Approve(ctx, "admin", id.Path())
				if i%3 == 2 {
					s.Restore(ctx, "admin", id.RuleID())
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			if _, err := s.Purge(ctx, "admin"); err != nil {
				t.Errorf("Purge: %v", err)
			}
		}
	})
	wg.Go(func() {
		for i := range 2000 {
			c := s.Catalog()
			for _, id := range ids {
				if r, ok := c.Rule(id); ok {
					if u, ok := c.Update(id, r.Approved); ok {
						if f, _, err := s.OpenFile(id, u.Version, u.Files[0].Name); err == nil {
							f.Close()
						}
					}
				}
			}
			s.RecordCheckIn(ctx, firmware.Device{Serial: fmt.Sprint(i % 100), Identity: phone, Version: v1})
			if i%500 == 0 {
				s.Flush(ctx)
			}
		}
	})
	wg.Go(func() {
		for i := range 20 {
			s.AddTestDevice(ctx, "admin", firmware.TestDevice{Serial: fmt.Sprint("T", i)})
			s.PutAccount(ctx, "admin", firmware.Account{Name: fmt.Sprint("user", i%5)})
		}
	})
	wg.Wait()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if ds, _ := s.Devices(ctx); len(ds) != 100 {
		t.Errorf("%d devices, want 100", len(ds))
	}
	checkConsistent(t, s)
}
