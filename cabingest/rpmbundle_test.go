package cabingest

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/cabingest/rpm"
	"github.com/opendus/opendus/cabingest/rpm/rpmtest"
)

// TestImportRPM builds RPM bundles with rpmbuild and imports them: plain,
// signed with a keyring, and the refusals (tampered payload, unsigned or
// signed by another key with a keyring configured) that leave the store
// unchanged.
func TestImportRPM(t *testing.T) {
	tree := t.TempDir()
	files := writeTree(t, tree, testUpdates)
	plain := rpmtest.Build(t, tree, rpmtest.Zstd)
	key := rpmtest.NewKey(t, "Vendor Release Key")
	other := rpmtest.NewKey(t, "Someone Else")
	signed := filepath.Join(t.TempDir(), "signed.rpm")
	rpmtest.Sign(t, key, plain, signed)
	signedOther := filepath.Join(t.TempDir(), "other.rpm")
	rpmtest.Sign(t, other, plain, signedOther)
	data, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1000] ^= 0x40
	tampered := filepath.Join(t.TempDir(), "tampered.rpm")
	if err := os.WriteFile(tampered, data, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("plain", func(t *testing.T) {
		st := openStore(t, true)
		res, b, err := importBundle(t, st, plain, &Config{Name: "firmware.rpm"})
		if err != nil {
			t.Fatal(err)
		}
		if b.Format != FormatRPM || len(res) != len(testUpdates) {
			t.Errorf("format %s, %d updates; want rpm, %d", b.Format, len(res), len(testUpdates))
		}
		if diff := cmp.Diff([]string{"/usr/share/doc/opendus-firmware-test/NOTES"}, b.Ignored); diff != "" {
			t.Errorf("Ignored (-want +got):\n%s", diff)
		}
		checkStored(t, st, files)
		if b.stream.walks != 1 {
			t.Errorf("the import walked the payload %d times, want 1", b.stream.walks)
		}
	})
	t.Run("signed", func(t *testing.T) {
		st := openStore(t, true)
		_, b, err := importBundle(t, st, signed, &Config{RPMKeyring: key.Armored})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.Signer, "Vendor Release Key") {
			t.Errorf("Signer = %q, want the vendor's key", b.Signer)
		}
		checkStored(t, st, files)
	})
	refusals := []struct {
		name    string
		path    string
		keyring []byte
		want    error
	}{
		{"tampered", tampered, nil, rpm.ErrDigest},
		{"tampered and signed", tampered, key.Armored, rpm.ErrDigest},
		{"unsigned with keyring", plain, key.Armored, rpm.ErrSignature},
		{"signed by another key", signedOther, key.Armored, rpm.ErrSignature},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t, true)
			before := stateOf(t, st)
			_, _, err := importBundle(t, st, tc.path, &Config{Name: "firmware.rpm", RPMKeyring: tc.keyring})
			if !errors.Is(err, ErrInvalid) || !errors.Is(err, tc.want) {
				t.Fatalf("import = %v, want ErrInvalid and %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), "firmware.rpm") {
				t.Errorf("error does not name the bundle: %v", err)
			}
			if diff := cmp.Diff(before, stateOf(t, st)); diff != "" {
				t.Errorf("store changed (-before +after):\n%s", diff)
			}
		})
	}
	t.Run("bad description", func(t *testing.T) {
		bad := t.TempDir()
		writeTree(t, bad, testUpdates[:2])
		p := filepath.Join(bad, "UCPhone/Polycom/CX700/A/ENU/4.0.7577.4372/CX700.xml")
		b, _ := os.ReadFile(p)
		os.WriteFile(p, bytes.Replace(b, []byte("<Version>4.0.7577.4372"), []byte("<Version>4.0.7577.4000"), 1), 0o644)
		pkg := rpmtest.Build(t, bad, rpmtest.Gzip)
		st := openStore(t, true)
		_, _, err := importBundle(t, st, pkg, nil)
		if !errors.Is(err, ErrDescription) || !strings.Contains(err.Error(), RPMTreePrefix+"UCPhone/Polycom/CX700/A/ENU/4.0.7577.4372/CX700.xml") {
			t.Errorf("import = %v, want ErrDescription naming CX700.xml", err)
		}
	})
}
