// Package rpmtest builds real RPM bundles for tests: Build runs rpmbuild on
// a generated spec (no network, everything in the test's temporary
// directory), and NewKey and Sign make an OpenPGP key and sign a package
// with it, as a vendor's release process would.
package rpmtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	rpmutils "github.com/sassoftware/go-rpmutils"

	"github.com/opendus/opendus/internal/testtool"
)

// Payload compressors rpmbuild can use (the _binary_payload macro).
const (
	Gzip = "w9.gzdio"
	Xz   = "w2.xzdio"
	Zstd = "w3.zstdio"
)

// Build packages the update tree under tree as an RPM that installs it
// under /usr/share/opendus/DeviceUpdateFiles, with the payload compressor
// given (Gzip, Xz, Zstd; "" for rpmbuild's default), plus a documentation
// file outside the tree. It returns the package's path. The test is
// skipped when rpmbuild is missing (failed under CI=true).
func Build(t testing.TB, tree, compressor string) string {
	t.Helper()
	rpmbuild := testtool.Need(t, "rpmbuild")
	work := t.TempDir()
	spec := `Name: opendus-firmware-test
Version: 1
Release: 1
Summary: Firmware bundle for OpenDUS tests
License: Proprietary
BuildArch: noarch

%description
Device update files for the OpenDUS tests.

%install
mkdir -p %{buildroot}/usr/share/opendus/DeviceUpdateFiles %{buildroot}/usr/share/doc/opendus-firmware-test
cp -a ` + tree + `/. %{buildroot}/usr/share/opendus/DeviceUpdateFiles/
echo "release notes" > %{buildroot}/usr/share/doc/opendus-firmware-test/NOTES

%files
/usr/share/opendus/DeviceUpdateFiles
/usr/share/doc/opendus-firmware-test/NOTES
`
	specPath := filepath.Join(work, "bundle.spec")
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-bb", "--quiet",
		"--define", "_topdir " + filepath.Join(work, "top"),
		"--define", "_tmppath " + filepath.Join(work, "tmp"),
		"--define", "__os_install_post %{nil}",
		"--define", "_build_id_links none",
		"--define", "_source_payload " + Gzip,
	}
	if compressor != "" {
		args = append(args, "--define", "_binary_payload "+compressor)
	}
	cmd := exec.Command(rpmbuild, append(args, specPath)...)
	cmd.Env = append(os.Environ(), "HOME="+work)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rpmbuild: %v\n%s", err, out)
	}
	matches, _ := filepath.Glob(filepath.Join(work, "top", "RPMS", "noarch", "*.rpm"))
	if len(matches) != 1 {
		t.Fatalf("rpmbuild made %d packages, want 1", len(matches))
	}
	return matches[0]
}

// Key is an OpenPGP signing key.
type Key struct {
	entity *openpgp.Entity
	// Armored is the armored public keyring holding the key, what the
	// rpm_keyring setting names.
	Armored []byte
}

// NewKey makes an Ed25519 signing key for name.
func NewKey(t testing.TB, name string) *Key {
	t.Helper()
	e, err := openpgp.NewEntity(name, "test", "firmware@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &Key{entity: e, Armored: b.Bytes()}
}

// Sign writes a copy of the package in to out, signed with k (a
// signature over the header and one over header and payload, as rpmsign
// makes).
func Sign(t testing.TB, k *Key, in, out string) {
	t.Helper()
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := rpmutils.SignRpmFile(f, out, k.entity.PrivateKey, nil); err != nil {
		t.Fatal(fmt.Errorf("sign %s: %w", in, err))
	}
}
