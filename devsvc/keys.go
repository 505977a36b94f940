package devsvc

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/updatemeta"
)

// KeyInfo is one signing key of the update metadata.
type KeyInfo struct {
	Role  string `json:"role"`
	KeyID string `json:"keyId"`
	// File is where it is kept, relative to the data directory; empty for
	// a root key kept offline.
	File string `json:"file,omitempty"`
}

// KeysStatus says what the data directory's keys/ holds.
type KeysStatus struct {
	Dir         string    `json:"dir"`
	RootVersion int       `json:"rootVersion"`
	RootExpires time.Time `json:"rootExpires"`
	// RootKeyOffline is true when the root key is not in the directory
	// (moved away: devsvc keys export --root-key --remove).
	RootKeyOffline bool      `json:"rootKeyOffline"`
	Keys           []KeyInfo `json:"keys"`
}

func keysDir(dir string) string { return filepath.Join(dir, datadir.KeysDir) }

// Keys returns the status of the data directory's signing keys;
// updatemeta.ErrNoKeys when it has none (devsvc keys init).
func Keys(dir string) (KeysStatus, error) {
	k, err := updatemeta.Load(keysDir(dir))
	if err != nil {
		return KeysStatus{}, keysErr(err)
	}
	return keysStatus(dir, k)
}

func keysStatus(dir string, k *updatemeta.Keyring) (KeysStatus, error) {
	root, err := updatemeta.ParseRoot(k.LatestRoot())
	if err != nil {
		return KeysStatus{}, err
	}
	st := KeysStatus{Dir: keysDir(dir), RootVersion: k.RootVersion(), RootExpires: root.Expires, RootKeyOffline: k.Root == nil, Keys: []KeyInfo{}}
	for _, r := range []struct{ role, file string }{
		{updatemeta.RoleRoot, updatemeta.RootKeyFile}, {updatemeta.RoleTargets, updatemeta.TargetsKeyFile},
		{updatemeta.RoleSnapshot, updatemeta.SnapshotKeyFile}, {updatemeta.RoleTimestamp, updatemeta.TimestampKeyFile},
	} {
		ki := KeyInfo{Role: r.role}
		if ids := root.KeyIDs[r.role]; len(ids) > 0 {
			ki.KeyID = ids[0]
		}
		if r.role != updatemeta.RoleRoot || k.Root != nil {
			ki.File = filepath.Join(datadir.KeysDir, r.file)
		}
		st.Keys = append(st.Keys, ki)
	}
	return st, nil
}

func keysErr(err error) error {
	if errors.Is(err, updatemeta.ErrNoKeys) {
		return fmt.Errorf("%w: run devsvc keys init (devsvc serve makes them too)", err)
	}
	return err
}

// KeysInit makes the signing keys of a data directory that has none:
// root version 1, valid metadata_root_expiry.
func KeysInit(dir string, now time.Time) (KeysStatus, error) {
	s, err := datadir.LoadSettings(dir)
	if err != nil {
		return KeysStatus{}, err
	}
	k, err := updatemeta.Init(keysDir(dir), now, s.MetadataRootExpiry)
	if errors.Is(err, updatemeta.ErrExist) {
		return KeysStatus{}, fmt.Errorf("%w in %s: devsvc keys rotate replaces them", err, keysDir(dir))
	}
	if err != nil {
		return KeysStatus{}, err
	}
	return keysStatus(dir, k)
}

// KeysRotateOptions says what KeysRotate replaces.
type KeysRotateOptions struct {
	Online bool // the targets, snapshot and timestamp keys
	Root   bool // the root key
	// RootKeyFile is the root key's file when it was moved offline.
	RootKeyFile string
}

// KeysRotate replaces keys and signs the next root version with the
// current root key (and the new one): devices follow it without being
// provisioned again. A running server re-signs everything within a
// second.
func KeysRotate(dir string, now time.Time, o KeysRotateOptions) (KeysStatus, error) {
	s, err := datadir.LoadSettings(dir)
	if err != nil {
		return KeysStatus{}, err
	}
	k, err := updatemeta.Load(keysDir(dir))
	if err != nil {
		return KeysStatus{}, keysErr(err)
	}
	ro := updatemeta.RotateOptions{Online: o.Online, Root: o.Root, RootExpiry: s.MetadataRootExpiry}
	if o.RootKeyFile != "" {
		if ro.RootKey, err = updatemeta.ReadKey(o.RootKeyFile); err != nil {
			return KeysStatus{}, fmt.Errorf("--root-key %s: %w", o.RootKeyFile, err)
		}
	}
	if err := k.Rotate(now, ro); err != nil {
		return KeysStatus{}, err
	}
	return keysStatus(dir, k)
}

// KeysExportRoot returns the latest root metadata: what devices are
// provisioned with (the provisioning document carries it too).
func KeysExportRoot(dir string) ([]byte, error) {
	k, err := updatemeta.Load(keysDir(dir))
	if err != nil {
		return nil, keysErr(err)
	}
	return k.LatestRoot(), nil
}

// KeysExportRootKey writes the private root key to out (0600, which must
// not exist) and, with remove, removes it from the data directory: the
// root is then kept offline, and rotations need it back (--root-key).
func KeysExportRootKey(dir, out string, remove bool) error {
	k, err := updatemeta.Load(keysDir(dir))
	if err != nil {
		return keysErr(err)
	}
	if k.Root == nil {
		return fmt.Errorf("%w: the root key is not in %s (kept offline already)", updatemeta.ErrNoRootKey, keysDir(dir))
	}
	if err := writeNewKey(out, k.Root); err != nil {
		return err
	}
	back, err := updatemeta.ReadKey(out)
	if err != nil || updatemeta.KeyID(back) != updatemeta.KeyID(k.Root) {
		return fmt.Errorf("%s does not read back as the root key: %v; the key stays in the data directory", out, err)
	}
	if remove {
		return os.Remove(filepath.Join(keysDir(dir), updatemeta.RootKeyFile))
	}
	return nil
}

// rootWarnings warns, for devsvc status, of a root of the signed metadata
// that expires within 90 days: devices refuse an expired root.
func rootWarnings(expires, now time.Time) []string {
	switch {
	case expires.IsZero():
		return nil
	case !now.Before(expires):
		return []string{fmt.Sprintf("the root of the signed update metadata expired on %s: devices refuse every update; run devsvc keys rotate (with --root-key when the root key is offline)", expires.Format(time.DateOnly))}
	case expires.Sub(now) < 90*24*time.Hour:
		return []string{fmt.Sprintf("the root of the signed update metadata expires on %s: run devsvc keys rotate before (with --root-key when the root key is offline)", expires.Format(time.DateOnly))}
	}
	return nil
}

// writeNewKey writes k to the new file out (mode 0600, synced); a file
// there already is refused, never replaced.
func writeNewKey(out string, k ed25519.PrivateKey) error {
	b, err := updatemeta.MarshalKey(k)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists: choose another file", out)
	}
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out)
	}
	return err
}
