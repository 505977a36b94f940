package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"net/netip"
	"os"
	"time"

	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

func Example() {
	dir, err := os.MkdirTemp("", "opendus")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s, err := store.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	id, _ := firmware.ParseIdentity("UCPhone/Polycom/CX600/A/ENU")
	image := []byte("firmware image")
	sum := sha256.Sum256(image)
	_, err = s.Import(ctx, "admin", []firmware.ImportUpdate{{
		Identity: id, Version: firmware.MustParseVersion("4.0.7577.4372"), UpdateType: "Firmware",
		Files: []firmware.ImportFile{{Name: "CX600.nbt", Size: int64(len(image)), SHA256: &sum,
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(image)), nil }}},
	}}, store.ImportOptions{})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := s.Approve(ctx, "admin", id.Path()); err != nil {
		log.Fatal(err)
	}
	_, err = s.Approve(ctx, "admin", id.Path())
	fmt.Println(err)

	r, _ := s.Catalog().Rule(id)
	v, ok := firmware.Offer(&r, firmware.MustParseVersion("4.0.7577.4000"), false)
	fmt.Println(v, ok)
	events, _ := s.History(ctx, 0, 0)
	for _, e := range events {
		fmt.Println(e.Seq, e.Action, e.Subject, e.Version)
	}
	// Output:
	// rule UCPhone/Polycom/CX600/A/ENU has no pending version to approve
	// 4.0.7577.4372 true
	// 1 import UCPhone/Polycom/CX600/A/ENU 4.0.7577.4372
	// 2 approve UCPhone/Polycom/CX600/A/ENU 4.0.7577.4372
}

// Example_checkIn is what the check-in handler does with the store: the
// catalog snapshot (rule, rollout, site table), what the inventory knows
// of the device, the decision, and the check-in recorded with it; then a
// status report advances the device's attempt.
func Example_checkIn() {
	dir, err := os.MkdirTemp("", "opendus")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s, err := store.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	id, _ := firmware.ParseIdentity("UCPhone/Polycom/CX600/A/ENU")
	for _, v := range []string{"4.0.7577.4372", "4.0.7577.4400"} {
		image := []byte("firmware image " + v)
		_, err = s.Import(ctx, "admin", []firmware.ImportUpdate{{Identity: id, Version: firmware.MustParseVersion(v),
			Files: []firmware.ImportFile{{Name: "CX600.nbt", Size: -1, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(image)), nil }}}}},
			store.ImportOptions{})
		if err != nil {
			log.Fatal(err)
		}
		if v == "4.0.7577.4372" {
			s.Approve(ctx, "admin", id.Path())
		}
	}
	if _, err := s.PutSite(ctx, "admin", firmware.Site{Name: "hq", Subnets: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}, false); err != nil {
		log.Fatal(err)
	}
	// Every device in the first and only wave.
	if _, err := s.StartRollout(ctx, "admin", id.Path(), firmware.Plan{Waves: firmware.Waves{firmware.Whole}, MaxFailures: firmware.FailureCount(1)}); err != nil {
		log.Fatal(err)
	}

	// A check-in from 10.1.2.3 of a device running 4.0.7577.4372.
	const mac = "00-04-F2-00-00-01"
	now := time.Now()
	cat := s.Catalog()
	rule, _ := cat.Rule(id)
	site, _ := cat.Sites().Lookup(netip.MustParseAddr("10.1.2.3"))
	ro, hasRollout := cat.Rollout(rule.ID)
	dev := s.DeviceState(mac)
	q := firmware.OfferRequest{Rule: &rule, Current: firmware.MustParseVersion("4.0.7577.4372"), Test: cat.IsTestDevice(mac, ""),
		Cohort: dev.Cohort, Attempt: dev.Attempt, Retry: s.RetryPolicy(), Site: site, MinOpen: time.Hour, Now: now}
	if hasRollout {
		q.Rollout = &ro
		q.Downloading = s.Downloading(&ro)
	}
	d := firmware.Decide(&q)
	fmt.Println("offered", d.Version, "held", d.Hold == firmware.HoldNone)
	err = s.RecordCheckIn(ctx, firmware.Device{Key: mac, MAC: mac, Identity: id, Version: q.Current, Location: firmware.Internal,
		Address: "10.1.2.3", LastCheckIn: now, Site: site.Name, Offered: d.Version, Hold: d.Hold, Held: d.Held})
	if err != nil {
		log.Fatal(err) // ErrBusy, ErrUnavailable: answer 503 with Retry-After
	}
	fmt.Println("attempt", s.DeviceState(mac).Attempt.Version, "downloading", s.Downloading(&ro))

	// Its report of the install.
	if err := s.Report(ctx, store.Report{Key: mac, State: firmware.StateSuccess, Target: d.Version, Time: now.Add(time.Minute)}); err != nil {
		log.Fatal(err)
	}
	st := s.DeviceState(mac)
	fmt.Println("runs", st.Version, "attempt", st.Attempt.State, "downloading", s.Downloading(&ro), "site", st.Site)
	// Output:
	// offered 4.0.7577.4400 held true
	// attempt 4.0.7577.4400 downloading 1
	// runs 4.0.7577.4400 attempt success downloading 0 site hq
}
