package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/opendus/opendus/firmware"
)

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openDir(t, dir, nil)
	mustImport(t, s, update(phone, v1), update(table, v2))
	s.AddTestDevice(ctx, "admin", firmware.TestDevice{Serial: "SN1"})
	s.PutAccount(ctx, "admin", firmware.Account{Name: "alice", NTHash: [16]byte{9}})
	rules, seq := s.Catalog().Rules(), s.Catalog().Seq()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := s.Approve(ctx, "admin", phone.Path()); !errors.Is(err, ErrClosed) {
		t.Errorf("Approve after Close = %v, want ErrClosed", err)
	}
	if _, _, err := s.OpenFile(phone, v1, "CX600.nbt"); !errors.Is(err, ErrClosed) {
		t.Errorf("OpenFile after Close = %v, want ErrClosed", err)
	}

	s = openDir(t, dir, nil)
	if diff := cmp.Diff(rules, s.Catalog().Rules()); diff != "" {
		t.Errorf("rules after reopen (-before +after):\n%s", diff)
	}
	if s.Catalog().Seq() != seq || !s.Catalog().IsTestDevice("", "SN1") {
		t.Errorf("snapshot after reopen: seq %d (want %d), test device %v", s.Catalog().Seq(), seq, s.Catalog().IsTestDevice("", "SN1"))
	}
	if a, err := s.Account(ctx, "ALICE"); err != nil || a.NTHash != [16]byte{9} {
		t.Errorf("Account after reopen = %+v, %v", a, err)
	}
	if _, err := s.Approve(ctx, "admin", phone.Path()); err != nil {
		t.Errorf("Approve after reopen = %v", err)
	}
	checkConsistent(t, s)
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	openDir(t, dir, nil)
	if _, err := Open(dir, nil); err == nil || !strings.Contains(err.Error(), "another opendus") {
		t.Errorf("Open of a directory in use = %v, want a lock error", err)
	}
}

func TestOpenNewerSchema(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir, nil)
	if st, _ := s.Stats(context.Background()); st.SchemaVersion != SchemaVersion {
		t.Errorf("SchemaVersion = %d, want %d", st.SchemaVersion, SchemaVersion)
	}
	s.Close()
	db, err := bolt.Open(filepath.Join(dir, dbName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte("99")) })
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(dir, nil)
	if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "schema version 99") {
		t.Fatalf("Open of a newer schema = %v, want ErrSchema naming version 99", err)
	}
}

func TestOpenCleansLeftovers(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir, nil)
	mustImport(t, s, update(phone, v1))
	s.Close()
	files := diskFiles(t, dir)
	root := filepath.Join(dir, filesDir)
	leftovers := []string{
		phone.Path() + "/" + v1.String() + "/.tmp-CX600.nbt-0123456789abcdef", // a file being written
		phone.Path() + "/" + v1.String() + "/extra.nbt",                       // a file no record lists
		phone.Path() + "/" + v2.String() + "/CX600.nbt",                       // an update never recorded
		table.Path() + "/" + v1.String() + "/.tmp-x-1",
		"stray.txt",
	}
	for _, p := range leftovers {
		p = filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("junk"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	s = openDir(t, dir, nil)
	if diff := cmp.Diff(files, diskFiles(t, dir)); diff != "" {
		t.Errorf("files after Open (-want +got):\n%s", diff)
	}
	for _, d := range []string{table.DeviceType, phone.Path() + "/" + v2.String()} {
		if _, err := os.Stat(filepath.Join(root, d)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("empty directory %s left: %v", d, err)
		}
	}
	checkConsistent(t, s)
}

func TestStats(t *testing.T) {
	s := openTest(t, nil)
	ctx := context.Background()
	mustImport(t, s, update(phone, v1), update(phone, v2), update(table, v1))
	s.AddTestDevice(ctx, "admin", firmware.TestDevice{Serial: "1"})
	s.PutAccount(ctx, "admin", firmware.Account{Name: "a"})
	s.PutAccount(ctx, "admin", firmware.Account{Name: "b"})
	for i := range 5 {
		s.RecordCheckIn(ctx, firmware.Device{Serial: string(rune('a' + i))})
	}
	s.Flush(ctx)
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.DBBytes = 0
	want := Stats{Rules: 2, Updates: 3, Devices: 5, TestDevices: 1, Accounts: 2, Seq: 7, SchemaVersion: SchemaVersion}
	if st != want {
		t.Errorf("Stats = %+v, want %+v", st, want)
	}
}

// TestOpenMigratesSchema1 opens a schema 1 database, whose device records
// are JSON: Open converts them, and the inventory reads and updates them.
func TestOpenMigratesSchema1(t *testing.T) {
	ctx := context.Background()
	d := fullDevice()
	other := firmware.Device{Key: "serial:SERIAL-7", Serial: "SERIAL-7", State: firmware.StateDownloading}
	dir := schema1Dir(t, func(devices *bolt.Bucket) error {
		for _, d := range []firmware.Device{d, other} {
			if err := putJSON(devices, []byte(d.Key), &d); err != nil {
				return err
			}
		}
		return nil
	})
	s := openDir(t, dir, nil)
	if st, _ := s.Stats(ctx); st.SchemaVersion != SchemaVersion {
		t.Errorf("SchemaVersion after migration = %d, want %d", st.SchemaVersion, SchemaVersion)
	}
	got, err := s.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]firmware.Device{d, other}, got); diff != "" {
		t.Errorf("devices after migration (-want +got):\n%s", diff)
	}
	if err := s.RecordCheckIn(ctx, firmware.Device{Serial: "SERIAL-7", Version: v2}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Device(ctx, "serial:SERIAL-7"); err != nil || got.Version != v2 || got.State != firmware.StateDownloading {
		t.Errorf("after a check-in: %+v, %v; want version %s, state kept", got, err, v2)
	}
}

func TestOpenRefusesCorruptDeviceRecord(t *testing.T) {
	dir := schema1Dir(t, func(devices *bolt.Bucket) error {
		return devices.Put([]byte("k"), []byte("{broken"))
	})
	if _, err := Open(dir, nil); !errors.Is(err, errDeviceRecord) || !strings.Contains(err.Error(), `device "k"`) {
		t.Errorf("Open with a corrupt schema 1 record = %v, want an error naming the device", err)
	}
}

// schema1Dir returns a data directory whose database says schema 1, with
// fill's device records.
func schema1Dir(t *testing.T, fill func(devices *bolt.Bucket) error) string {
	t.Helper()
	dir := t.TempDir()
	openDir(t, dir, nil).Close()
	db, err := bolt.Open(filepath.Join(dir, dbName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketMeta).Put(keySchema, []byte("1")); err != nil {
			return err
		}
		return fill(tx.Bucket(bucketDevices))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
