package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	bolt "go.etcd.io/bbolt"

	"github.com/opendus/opendus/firmware"
)

// clock is a fake clock that advances a second at every reading.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// openTest opens a store in a new temporary directory and closes it when
// the test ends.
func openTest(t testing.TB, opts *Options) *Store {
	t.Helper()
	return openDir(t, t.TempDir(), opts)
}

func openDir(t testing.TB, dir string, opts *Options) *Store {
	t.Helper()
	if opts == nil {
		opts = &Options{}
	}
	if opts.Now == nil {
		opts.Now = newClock().Now
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s) = %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var (
	phone  = firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"}
	phone2 = firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX500", Revision: "A", Locale: "ENU"}
	table  = firmware.Identity{DeviceType: firmware.RoundTable, Vendor: "Polycom", Model: "CX5000", Revision: "B", Locale: "ENU"}
	v1     = firmware.MustParseVersion("4.0.7577.100")
	v2     = firmware.MustParseVersion("4.0.7577.200")
	v3     = firmware.MustParseVersion("4.0.7577.300")
)

// content returns deterministic file content for a name and version.
func content(name string, v firmware.Version, size int) []byte {
	b := make([]byte, size)
	seed := sha256.Sum256([]byte(name + v.String()))
	for i := range b {
		b[i] = seed[i%32] ^ byte(i/32)
	}
	return b
}

// file returns an firmware.ImportFile for data, with its size and digest known.
func file(name string, data []byte) firmware.ImportFile {
	sum := sha256.Sum256(data)
	return firmware.ImportFile{Name: name, Size: int64(len(data)), SHA256: &sum,
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
}

// unknownFile returns an firmware.ImportFile for data with size and digest unknown.
func unknownFile(name string, data []byte) firmware.ImportFile {
	return firmware.ImportFile{Name: name, Size: -1,
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
}

// update returns an import of id at v with the usual three files.
func update(id firmware.Identity, v firmware.Version) firmware.ImportUpdate {
	return firmware.ImportUpdate{Identity: id, Version: v, UpdateType: "Firmware", Files: []firmware.ImportFile{
		file("CX600.nbt", content("nbt", v, 3000)),
		file("CX600.cat", content("cat", v, 200)),
		file("CX600.xml", content("xml", v, 100)),
	}}
}

func mustImport(t testing.TB, s *Store, us ...firmware.ImportUpdate) []ImportResult {
	t.Helper()
	res, err := s.Import(context.Background(), "admin", us, ImportOptions{})
	if err != nil {
		t.Fatalf("Import = %v", err)
	}
	return res
}

// diskFiles lists the files under the data directory's DeviceUpdateFiles
// with their content's SHA-256.
func diskFiles(t testing.TB, dir string) map[string][32]byte {
	t.Helper()
	files := make(map[string][32]byte)
	root := filepath.Join(dir, filesDir)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = sha256.Sum256(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// checkConsistent checks the invariants a store must keep: every recorded
// update has all its files with the right size and SHA-256, no other file
// is on disk, and the history is numbered 1..Seq without gaps.
func checkConsistent(t testing.TB, s *Store) {
	t.Helper()
	ctx := context.Background()
	us, err := s.Updates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	disk := diskFiles(t, s.Dir())
	for _, u := range us {
		for _, f := range u.Files {
			p := u.Dir() + "/" + f.Name
			sum, ok := disk[p]
			if !ok {
				t.Errorf("recorded file %s is missing", p)
				continue
			}
			delete(disk, p)
			if sum != f.SHA256 {
				t.Errorf("file %s has SHA-256 %x, recorded %x", p, sum, f.SHA256)
			}
			if info, err := os.Stat(filepath.Join(s.Dir(), filesDir, p)); err != nil || info.Size() != f.Size {
				t.Errorf("file %s: stat = %v, %v; want size %d", p, info, err, f.Size)
			}
		}
	}
	var orphans []string
	for p := range disk {
		orphans = append(orphans, p)
	}
	sort.Strings(orphans)
	if len(orphans) > 0 {
		t.Errorf("files no update records: %q", orphans)
	}
	es, err := s.History(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range es {
		if e.Seq != uint64(i+1) {
			t.Fatalf("history[%d].Seq = %d, want %d (gapless)", i, e.Seq, i+1)
		}
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Seq != uint64(len(es)) {
		t.Errorf("Stats().Seq = %d, want %d events", st.Seq, len(es))
	}
	if got := s.Catalog().Seq(); got != st.Seq {
		t.Errorf("Catalog().Seq() = %d, want %d", got, st.Seq)
	}
	certs, err := s.AdminCerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range certs {
		if serial, err := firmware.ParseCertSerial(c.Serial); err != nil || serial != c.Serial || c.Name == "" || c.Role == "" || c.Issued.IsZero() || c.IssuedBy == "" {
			t.Errorf("admin certificate record %+v is incomplete", c)
		}
		if got, err := s.AdminCert(ctx, c.Serial); err != nil || got.Serial != c.Serial {
			t.Errorf("admin certificate %s is listed but not found by its serial: %v", c.Serial, err)
		}
	}
	admins, err := s.ConsoleAdmins(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range admins {
		if err := validConsoleAdmin(a); err != nil || a.Created.IsZero() || a.Updated.Before(a.Created) {
			t.Errorf("console admin record %+v is invalid: %v", a, err)
		}
		if got, err := s.ConsoleAdmin(ctx, strings.ToUpper(a.Name)); err != nil || got != a {
			t.Errorf("console admin %s is listed as %+v but found by its name as %+v, %v", a.Name, a, got, err)
		}
	}
	checkRollouts(t, s)
	checkFleet(t, s)
}

// checkRollouts checks the sites, rollouts and alarms: the catalog holds
// what the buckets hold; a live rollout's rule has Pending = Version and
// Approved = From; a rule's scheduled approval is a scheduled one-wave
// rollout at that time; an open pause alarm's rollout is paused by the
// system.
func checkRollouts(t testing.TB, s *Store) {
	t.Helper()
	cat := s.Catalog()
	var (
		sites    []firmware.Site
		rollouts = map[string]rolloutRecord{}
		alarms   []firmware.Alarm
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		if sites, err = readSites(tx); err != nil {
			return err
		}
		if err := tx.Bucket(bucketRollouts).ForEach(func(k, v []byte) error {
			rec, err := decodeRollout(k, v)
			rollouts[string(k)] = rec
			return err
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketAlarms).ForEach(func(k, v []byte) error {
			var a firmware.Alarm
			if err := json.Unmarshal(v, &a); err != nil {
				return err
			}
			if a.ID != string(k) {
				t.Errorf("alarm %q is stored under %q", a.ID, k)
			}
			alarms = append(alarms, a)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sites, cat.SiteList(), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("sites of the catalog (-stored +catalog):\n%s", diff)
	}
	if _, err := firmware.NewSiteTable(sites, nil); err != nil {
		t.Errorf("the stored sites do not make a table: %v", err)
	}
	if got := len(cat.Rollouts()); got != len(rollouts) {
		t.Errorf("the catalog has %d rollouts, the store %d", got, len(rollouts))
	}
	for id, rec := range rollouts {
		if ro, ok := cat.Rollout(id); !ok || !cmp.Equal(ro, rec.Rollout) || cat.IsApproval(id) != rec.Approval {
			t.Errorf("rollout of %s: catalog %+v, stored %+v", id, ro, rec)
		}
		r, ok := cat.rules[cat.byID[id]]
		if !ok {
			t.Errorf("rollout of %s %s: the rule does not exist", id, rec.Identity)
			continue
		}
		if rec.Live() && (r.Pending != rec.Version || r.Approved != rec.From) {
			t.Errorf("live rollout of %s to %s from %s: the rule has pending %s, approved %s", rec.Identity, rec.Version, rec.From, r.Pending, r.Approved)
		}
		if rec.State == firmware.RolloutCompleted && rec.Approval && rec.Ended.IsZero() {
			t.Errorf("completed approval of %s has no end", rec.Identity)
		}
	}
	for _, r := range cat.sorted {
		if r.ApproveAt.IsZero() {
			continue
		}
		rec, ok := rollouts[r.ID]
		if !ok || !rec.scheduledApproval() || !rec.At.Equal(r.ApproveAt) || rec.Version != r.Pending {
			t.Errorf("rule %s is to be approved at %v, but its rollout is %+v", r.Identity, r.ApproveAt, rec)
		}
	}
	for id, rec := range rollouts {
		if r := cat.rules[cat.byID[id]]; rec.scheduledApproval() && !r.ApproveAt.Equal(rec.At) {
			t.Errorf("scheduled approval of %s at %v, but the rule says %v", rec.Identity, rec.At, r.ApproveAt)
		}
	}
	for _, a := range alarms {
		if !a.IsOpen() {
			continue
		}
		rec, ok := rollouts[a.Rule]
		switch {
		case !ok:
			t.Errorf("open alarm %s: rule %s has no rollout", a.ID, a.Rule)
		case a.Kind == firmware.AlarmPaused && (rec.State != firmware.RolloutPaused || rec.PausedBy != firmware.SystemActor):
			t.Errorf("open alarm %s: the rollout is %s, paused by %q", a.ID, rec.State, rec.PausedBy)
		case a.Kind == firmware.AlarmOverdue && rec.State == firmware.RolloutStopped:
			t.Errorf("open alarm %s: the rollout is stopped", a.ID)
		}
	}
}

// checkFleet checks that the fleet index holds what the devices bucket
// holds, once what is queued is written.
func checkFleet(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Flush(context.Background()); err != nil {
		if errors.Is(err, ErrClosed) {
			return
		}
		t.Fatalf("Flush = %v", err)
	}
	ds, err := s.Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// LiveRollouts counts what RolloutProgress counts in full.
	now := time.Now()
	for _, lr := range s.LiveRollouts(now) {
		pr, err := s.RolloutProgress(context.Background(), lr.Rollout.Rule, now)
		if err != nil {
			t.Errorf("RolloutProgress(%s) = %v", lr.Rollout.Rule, err)
			continue
		}
		if lr.Devices != pr.Total || !cmp.Equal(lr.Rollout, pr.Rollout) {
			t.Errorf("LiveRollouts has %s %+v, RolloutProgress %s %+v", lr.Rollout.Identity, lr.Devices, pr.Rollout.Identity, pr.Total)
		}
	}
	f := s.fleet
	f.mu.RLock()
	defer f.mu.RUnlock()
	if len(f.devs) != len(ds) || len(f.byKey) != len(ds) {
		t.Errorf("the index has %d devices (%d keys), the store %d", len(f.devs), len(f.byKey), len(ds))
	}
	for _, d := range ds {
		i, ok := f.byKey[d.Key]
		if !ok {
			t.Errorf("device %s is not in the index", d.Key)
			continue
		}
		e := &f.devs[i]
		got := firmware.Device{Key: e.key, MAC: e.macAddr(), Serial: e.serial, User: e.user, Identity: f.ids[e.id], Site: f.sites[e.site],
			Version: e.version, Offered: e.offered, LastCheckIn: fromNanos(e.lastCheckIn), State: e.state, Error: e.errCode, Hold: e.hold, Attempt: e.att.attempt()}
		want := firmware.Device{Key: d.Key, MAC: d.MAC, Serial: d.Serial, User: d.User, Identity: d.Identity, Site: d.Site,
			Version: d.Version, Offered: d.Offered, LastCheckIn: d.LastCheckIn, State: d.State, Error: d.Error, Hold: d.Hold, Attempt: d.Attempt}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("device %s in the index (-stored +index):\n%s", d.Key, diff)
		}
		if int(e.cohort) != firmware.Cohort(d.Key) {
			t.Errorf("device %s: cohort %d, want %d", d.Key, e.cohort, firmware.Cohort(d.Key))
		}
	}
	if len(f.order) == len(f.devs) && !slices.IsSortedFunc(f.order, func(a, b int32) int { return strings.Compare(f.devs[a].key, f.devs[b].key) }) {
		t.Errorf("the index's key order is not sorted")
	}
}

func isErr(err, want error) bool {
	if want == nil {
		return err == nil
	}
	return errors.Is(err, want)
}
