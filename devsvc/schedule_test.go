package devsvc

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

func TestSchedulerApprovesWhenDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, err := store.Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		id := firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"}
		v := firmware.MustParseVersion("4.0.7577.4372")
		if _, err := st.Import(ctx, "test", []firmware.ImportUpdate{{Identity: id, Version: v, Files: []firmware.ImportFile{{
			Name: "CX600.nbt", Role: firmware.RoleImage, Size: -1,
			Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("img")), nil },
		}}}}, store.ImportOptions{}); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(time.Hour)
		if _, err := st.Schedule(ctx, "test", id.Path(), at); err != nil {
			t.Fatal(err)
		}
		go runScheduler(ctx, st, time.Now, 5*time.Second, slog.New(slog.DiscardHandler))
		time.Sleep(59 * time.Minute) // virtual time under synctest
		synctest.Wait()
		if r, _ := st.Catalog().Rule(id); !r.Approved.IsZero() {
			t.Fatalf("approved %v before its time", r.Approved)
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		r, _ := st.Catalog().Rule(id)
		if r.Approved != v || !r.Pending.IsZero() || !r.ApproveAt.IsZero() {
			t.Errorf("after the scheduled time rule = %+v, want %v approved", r, v)
		}
		cancel()
	})
}
