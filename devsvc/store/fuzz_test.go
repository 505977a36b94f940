package store

import (
	"crypto/sha256"
	"encoding/json"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/firmware"
)

// FuzzDecodeUpdate feeds arbitrary records to the update decoder, which
// reads what a restored (possibly tampered) backup holds: it must refuse or
// return an update that validates and survives a round trip.
func FuzzDecodeUpdate(f *testing.F) {
	u := update(phone, v1)
	up := recordOf(mustStage(u))
	seed, _ := json.Marshal(up)
	f.Add([]byte(updateKeyOf(phone, v1)), seed)
	f.Add([]byte("UCPhone/a/b/c/d/1.2.3.4"), []byte(`{"identity":{"deviceType":"UCPhone","vendor":"a","model":"b","revision":"c","locale":"d"},"version":"1.2.3.4","files":[{"name":"../x","size":1,"sha256":"00"}]}`))
	f.Add([]byte("k"), []byte(`{"files":null}`))
	f.Fuzz(func(t *testing.T, key, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		got, err := decodeUpdate(key, data)
		if err != nil {
			return
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("decoded an invalid update: %v", err)
		}
		if updateKeyOf(got.Identity, got.Version) != string(key) {
			t.Fatalf("decoded %s under key %q", got.Dir(), key)
		}
		again, _ := json.Marshal(recordOf(got))
		back, err := decodeUpdate(key, again)
		if err != nil || !cmp.Equal(back, got) {
			t.Fatalf("round trip: %+v, %v; want %+v", back, err, got)
		}
	})
}

// mustStage returns the firmware.Update an import of u stores, without a
// store.
func mustStage(u firmware.ImportUpdate) firmware.Update {
	out := firmware.Update{Identity: u.Identity, Version: u.Version, UpdateType: u.UpdateType}
	for _, f := range u.Files {
		in, _ := f.Open()
		data, _ := io.ReadAll(in)
		out.Files = append(out.Files, firmware.Image{Name: f.Name, Size: int64(len(data)), SHA256: sha256.Sum256(data), Role: firmware.RoleOf(f.Name)})
	}
	return out
}
