package rpm_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/cabingest/rpm"
	"github.com/opendus/opendus/cabingest/rpm/rpmtest"
	"github.com/opendus/opendus/internal/testtool"
)

// smallTree writes a tiny update tree and returns its directory and files.
func smallTree(t *testing.T) (string, map[string]string) {
	dir := t.TempDir()
	files := map[string]string{
		"UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/CX600.nbt": strings.Repeat("image ", 5000),
		"UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/CX600.cat": "catalog",
		"UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/empty.bin": "",
	}
	for p, s := range files {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, files
}

func openFile(t *testing.T, path string, cfg *rpm.Config) (*rpm.Package, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return rpm.Open(context.Background(), bytes.NewReader(data), int64(len(data)), cfg)
}

func walkAll(t *testing.T, p *rpm.Package) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := p.Walk(context.Background(), func(path string, size int64, r io.Reader) error {
		b, err := io.ReadAll(r)
		if int64(len(b)) != size {
			t.Errorf("%s: read %d bytes, size %d", path, len(b), size)
		}
		got[path] = string(b)
		return err
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return got
}

func TestOpenWalk(t *testing.T) {
	tree, files := smallTree(t)
	want := map[string]string{"/usr/share/doc/opendus-firmware-test/NOTES": "release notes\n"}
	for p, s := range files {
		want["/usr/share/opendus/DeviceUpdateFiles/"+p] = s
	}
	for _, comp := range []string{rpmtest.Gzip, rpmtest.Xz, rpmtest.Zstd} {
		t.Run(comp, func(t *testing.T) {
			path := rpmtest.Build(t, tree, comp)
			p, err := openFile(t, path, nil)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if got, want := p.NEVRA(), "opendus-firmware-test-1-1.noarch"; !strings.Contains(got, "opendus-firmware-test") {
				t.Errorf("NEVRA = %q, want %q", got, want)
			}
			if diff := cmp.Diff(want, walkAll(t, p)); diff != "" {
				t.Errorf("payload (-want +got):\n%s", diff)
			}
			// A walk that reads nothing still ends well.
			if err := p.Walk(context.Background(), func(string, int64, io.Reader) error { return nil }); err != nil {
				t.Errorf("Walk reading nothing: %v", err)
			}
		})
	}
}

func TestOpenRefuses(t *testing.T) {
	tree, _ := smallTree(t)
	plain := rpmtest.Build(t, tree, rpmtest.Gzip)
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
	tampered := filepath.Join(t.TempDir(), "tampered.rpm")
	b := bytes.Clone(data)
	b[len(b)-100] ^= 0x01 // in the compressed payload
	os.WriteFile(tampered, b, 0o644)
	header := filepath.Join(t.TempDir(), "header.rpm")
	b = bytes.Clone(data)
	i := bytes.Index(b, []byte("Firmware bundle for OpenDUS tests"))
	b[i] = 'f' // the summary, in the general header
	os.WriteFile(header, b, 0o644)
	truncated := filepath.Join(t.TempDir(), "truncated.rpm")
	os.WriteFile(truncated, data[:len(data)/2], 0o644)

	tests := []struct {
		name    string
		path    string
		keyring []byte
		want    error // nil: accepted
		signer  string
	}{
		{"unsigned, no keyring", plain, nil, nil, ""},
		{"signed, no keyring", signed, nil, nil, ""},
		{"signed, keyring", signed, key.Armored, nil, "Vendor Release Key"},
		{"signed, keyring of both", signedOther, append(append([]byte{}, key.Armored...), other.Armored...), nil, "Someone Else"},
		{"unsigned, keyring", plain, key.Armored, rpm.ErrSignature, ""},
		{"signed by another key", signedOther, key.Armored, rpm.ErrSignature, ""},
		{"payload tampered", tampered, nil, rpm.ErrDigest, ""},
		{"payload tampered, keyring", tampered, key.Armored, rpm.ErrDigest, ""},
		{"header tampered", header, nil, rpm.ErrDigest, ""},
		{"truncated", truncated, nil, rpm.ErrFormat, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := openFile(t, tc.path, &rpm.Config{Keyring: tc.keyring})
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Open = %v, want success", err)
				}
				if !strings.Contains(p.Signer(), tc.signer) {
					t.Errorf("Signer = %q, want it to name %q", p.Signer(), tc.signer)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := openFile(t, plain, &rpm.Config{Keyring: []byte("not a keyring")}); err == nil {
		t.Error("Open with a malformed keyring succeeded")
	}
	if _, err := openFile(t, plain, &rpm.Config{MaxFiles: 2}); !errors.Is(err, rpm.ErrLimit) {
		t.Errorf("Open over MaxFiles = %v, want ErrLimit", err)
	}
	if _, err := openFile(t, plain, &rpm.Config{MaxTotalSize: 100}); !errors.Is(err, rpm.ErrLimit) {
		t.Errorf("Open over MaxTotalSize = %v, want ErrLimit", err)
	}
}

// FuzzOpen checks that Open and Walk never panic or allocate without
// bound on hostile packages (seeded with a real one).
func FuzzOpen(f *testing.F) {
	f.Add(append(rpm.Magic[:], make([]byte, 200)...))
	if path, ok := seedRPM(f); ok {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := rpm.Open(context.Background(), bytes.NewReader(data), int64(len(data)), &rpm.Config{MaxFiles: 100, MaxTotalSize: 1 << 20})
		if err != nil {
			return
		}
		p.Walk(context.Background(), func(path string, size int64, r io.Reader) error {
			_, err := io.Copy(io.Discard, r)
			return err
		})
	})
}

// seedRPM builds a small package when rpmbuild is there.
func seedRPM(f *testing.F) (string, bool) {
	if _, err := exec.LookPath("rpmbuild"); err != nil {
		return "", false
	}
	dir := f.TempDir()
	p := filepath.Join(dir, "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/CX600.nbt")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("image"), 0o644)
	return rpmtest.Build(f, dir, rpmtest.Gzip), true
}

// TestRpmsign checks packages signed by the real tools, gpg and rpmsign
// (a header-only EdDSA signature, as rpm 4.16 and later make, whose
// header carries the payload digest).
func TestRpmsign(t *testing.T) {
	gpg := testtool.Need(t, "gpg")
	rpmsign := testtool.Need(t, "rpmsign")
	home, err := os.MkdirTemp("", "gnupg") // short: gpg-agent's socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	run := func(name string, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("%s %v: %v\n%s", name, args, err, ee.Stderr)
			}
			t.Fatalf("%s: %v", name, err)
		}
		return out
	}
	t.Cleanup(func() {
		cmd := exec.Command("gpgconf", "--kill", "gpg-agent")
		cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
		cmd.Run()
	})
	run(gpg, "--batch", "--passphrase", "", "--quick-gen-key", "Vendor Release <release@example.com>", "ed25519", "sign", "never")
	pub := run(gpg, "--armor", "--export", "Vendor Release")

	tree, _ := smallTree(t)
	signed := filepath.Join(t.TempDir(), "signed.rpm")
	data, err := os.ReadFile(rpmtest.Build(t, tree, rpmtest.Gzip))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(signed, data, 0o644)
	run(rpmsign, "--addsign", "--define", "__gpg "+gpg, "--define", "_gpg_name Vendor Release", "--define", "_gpg_path "+home, signed)

	p, err := openFile(t, signed, &rpm.Config{Keyring: pub})
	if err != nil {
		t.Fatalf("Open of an rpmsign-signed package with its key: %v", err)
	}
	if !strings.Contains(p.Signer(), "Vendor Release") {
		t.Errorf("Signer = %q, want the vendor's key", p.Signer())
	}
	if _, err := openFile(t, signed, &rpm.Config{Keyring: rpmtest.NewKey(t, "Other").Armored}); !errors.Is(err, rpm.ErrSignature) {
		t.Errorf("Open with another keyring = %v, want ErrSignature", err)
	}
}

// TestWalkChanged changes the package between Open and Walk: the walk
// fails instead of presenting content that was not verified.
func TestWalkChanged(t *testing.T) {
	tree, _ := smallTree(t)
	data, err := os.ReadFile(rpmtest.Build(t, tree, rpmtest.Gzip))
	if err != nil {
		t.Fatal(err)
	}
	p, err := rpm.Open(context.Background(), bytes.NewReader(data), int64(len(data)), nil)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 1 // the last byte of the gzip trailer
	err = p.Walk(context.Background(), func(path string, size int64, r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
	if err == nil {
		t.Fatal("Walk of a changed package succeeded")
	}
}
