package updatemeta

import (
	"context"
	"testing"
	"time"
)

// FuzzClient feeds a device's entry points into go-tuf, NewClient (the
// root provisioning gave) and Refresh (the files a relay serves), with
// arbitrary bytes: they must return an error or a client whose accepted
// offers are signed, never panic.
func FuzzClient(f *testing.F) {
	k, err := Init(f.TempDir(), t0, 365*24*time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	s := NewSigner(k)
	set, _, err := s.Publish(nil, []Rule{rule(id, "1.0.0.1", "2.0.0.1")}, t0, exp)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(k.LatestRoot(), set.Timestamp, set.Snapshot, set.Target, []byte{})
	f.Add(k.LatestRoot(), set.Timestamp, []byte("{}"), set.Target, []byte(`{"signed":{"_type":"root"}}`))
	f.Add([]byte("{"), []byte{}, []byte{}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, root, ts, snap, targets, next []byte) {
		for _, b := range [][]byte{root, ts, snap, targets, next} {
			if len(b) > MaxMetadataSize {
				return
			}
		}
		c, err := NewClient(root, id, nil)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("NewClient: an error without a reason: %v", err)
			}
			return
		}
		fetch := func(_ context.Context, name string, limit int64) ([]byte, error) {
			var b []byte
			switch name {
			case "timestamp.json":
				b = ts
			case "snapshot.json":
				b = snap
			case "targets.json":
				b = targets
			case "2.root.json":
				if len(next) == 0 {
					return nil, ErrNotFound
				}
				b = next
			default:
				return nil, ErrNotFound
			}
			if int64(len(b)) > limit {
				return nil, ErrNotFound
			}
			return b, nil
		}
		if err := c.Refresh(context.Background(), fetch, t0); err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("Refresh: an error without a reason: %v", err)
			}
			return
		}
		for _, f := range c.Rule().Files {
			if _, err := c.CheckOffer("", f.Version, []Offered{{f.Name, f.Length, f.SHA256}}); err != nil {
				t.Errorf("CheckOffer of a file targets signs: %v", err)
			}
		}
	})
}
