package updatemeta

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/opendus/opendus/datadir"
)

// Names inside a keys directory (the data directory's keys/).
const (
	RootKeyFile      = "root.key"      // the root's private key; may be moved offline
	TargetsKeyFile   = "targets.key"   // online
	SnapshotKeyFile  = "snapshot.key"  // online
	TimestampKeyFile = "timestamp.key" // online
	// RootChainDir holds every root version, N.root.json, public: what
	// devices fetch to follow a rotation.
	RootChainDir = "root"
)

// MaxMetadataSize bounds any metadata file a device reads (a root, the
// timestamp, the snapshot or targets): 4 MiB holds targets for thousands
// of rules.
const MaxMetadataSize = 4 << 20

// Errors of the keyring.
var (
	// ErrNoKeys is returned when a directory holds no keyring: run
	// devsvc keys init.
	ErrNoKeys = errors.New("no signing keys")
	// ErrExist is returned by Init when the directory holds a keyring.
	ErrExist = errors.New("signing keys exist already")
	// ErrNoRootKey is returned when an operation needs the root key and
	// it is neither in the directory nor given.
	ErrNoRootKey = errors.New("the root key is needed")
)

// Keyring is the keys directory of a service: the online keys, the root
// key when it is there, and the root chain.
type Keyring struct {
	Dir                          string
	Root                         ed25519.PrivateKey // nil when kept offline
	Targets, Snapshot, Timestamp ed25519.PrivateKey
	// Roots are the signed root versions, Roots[i] being version i+1.
	Roots [][]byte
}

// GenerateKey returns a new Ed25519 private key.
func GenerateKey() (ed25519.PrivateKey, error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	return k, err
}

// WriteKey writes k to path as a PKCS #8 PEM file of mode 0600, replacing
// it atomically.
func WriteKey(path string, k ed25519.PrivateKey) error {
	b, err := MarshalKey(k)
	if err != nil {
		return err
	}
	return datadir.WriteFileAtomic(path, b, 0o600)
}

// MarshalKey returns k as WriteKey writes it: PKCS #8 PEM.
func MarshalKey(k ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Ensure makes the keys of dir with Init when it has none (ErrNoKeys),
// and reports whether it did; keys there already are kept.
func Ensure(dir string, now time.Time, rootExpiry time.Duration) (made bool, err error) {
	if _, err := Load(dir); !errors.Is(err, ErrNoKeys) {
		return false, err // kept, or unreadable: say so
	}
	if _, err := Init(dir, now, rootExpiry); err != nil {
		return false, err
	}
	return true, nil
}

// ReadKey reads an Ed25519 private key written by WriteKey.
func ReadKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseKey(data)
}

// ParseKey reads a PKCS #8 PEM Ed25519 private key.
func ParseKey(data []byte) (ed25519.PrivateKey, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM PRIVATE KEY")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, want an Ed25519 key", k)
	}
	return ek, nil
}

// KeyID returns the TUF key ID of k's public key.
func KeyID(k ed25519.PrivateKey) string {
	key, err := metadata.KeyFromPublicKey(k.Public())
	if err != nil {
		return ""
	}
	id, _ := key.ID()
	return id
}

// Init makes a new keyring in dir (created 0700): four keys and root
// version 1, expiring rootExpiry after now. A directory that already
// holds one is ErrExist.
func Init(dir string, now time.Time, rootExpiry time.Duration) (*Keyring, error) {
	if _, err := os.Stat(filepath.Join(dir, RootChainDir, "1.root.json")); err == nil {
		return nil, fmt.Errorf("%s: %w", dir, ErrExist)
	}
	if err := os.MkdirAll(filepath.Join(dir, RootChainDir), 0o700); err != nil {
		return nil, err
	}
	k := &Keyring{Dir: dir}
	var err error
	for _, p := range []*ed25519.PrivateKey{&k.Root, &k.Targets, &k.Snapshot, &k.Timestamp} {
		if *p, err = GenerateKey(); err != nil {
			return nil, err
		}
	}
	root, err := k.signRoot(1, now.Add(rootExpiry), k.Root)
	if err != nil {
		return nil, err
	}
	if err := k.writeKeys(""); err != nil {
		return nil, err
	}
	if err := datadir.WriteFileAtomic(filepath.Join(dir, RootChainDir, "1.root.json"), root, 0o644); err != nil {
		return nil, err
	}
	k.Roots = [][]byte{root}
	return k, nil
}

// writeKeys writes the keys, each file name with suffix.
func (k *Keyring) writeKeys(suffix string) error {
	for _, f := range []struct {
		name string
		key  ed25519.PrivateKey
	}{{RootKeyFile, k.Root}, {TargetsKeyFile, k.Targets}, {SnapshotKeyFile, k.Snapshot}, {TimestampKeyFile, k.Timestamp}} {
		if f.key == nil {
			continue
		}
		if err := WriteKey(filepath.Join(k.Dir, f.name+suffix), f.key); err != nil {
			return err
		}
	}
	return nil
}

// signRoot returns root metadata of version v naming k's keys, signed by
// k.Root and by the extra signers (the previous root's key in a rotation).
func (k *Keyring) signRoot(v int64, expires time.Time, signers ...ed25519.PrivateKey) ([]byte, error) {
	root := metadata.Root(expires.UTC().Truncate(time.Second))
	root.Signed.Version = v
	for role, key := range map[string]ed25519.PrivateKey{
		metadata.ROOT: k.Root, metadata.TARGETS: k.Targets, metadata.SNAPSHOT: k.Snapshot, metadata.TIMESTAMP: k.Timestamp,
	} {
		if key == nil {
			return nil, fmt.Errorf("root version %d: %w", v, ErrNoRootKey)
		}
		tk, err := metadata.KeyFromPublicKey(key.Public())
		if err != nil {
			return nil, err
		}
		if err := root.Signed.AddKey(tk, role); err != nil {
			return nil, err
		}
	}
	seen := map[string]bool{}
	for _, s := range signers {
		if id := KeyID(s); !seen[id] {
			seen[id] = true
			if err := sign(root, s); err != nil {
				return nil, err
			}
		}
	}
	return root.ToBytes(true)
}

func sign[T metadata.Roles](m *metadata.Metadata[T], k ed25519.PrivateKey) error {
	s, err := signature.LoadSigner(k, crypto.Hash(0))
	if err != nil {
		return err
	}
	_, err = m.Sign(s)
	return err
}

// Load reads the keyring in dir. The root key may be missing (kept
// offline); the online keys and root version 1 must be there (else
// ErrNoKeys). A rotation interrupted after the new root was written is
// completed (the new keys were written as *.new first).
func Load(dir string) (*Keyring, error) {
	roots, err := readChain(filepath.Join(dir, RootChainDir))
	if err != nil {
		return nil, err
	}
	k := &Keyring{Dir: dir, Roots: roots}
	latest, err := metadata.Root().FromBytes(roots[len(roots)-1])
	if err != nil {
		return nil, fmt.Errorf("%s: root version %d: %w", dir, len(roots), err)
	}
	for _, f := range []struct {
		name, role string
		key        *ed25519.PrivateKey
		optional   bool
	}{
		{RootKeyFile, metadata.ROOT, &k.Root, true},
		{TargetsKeyFile, metadata.TARGETS, &k.Targets, false},
		{SnapshotKeyFile, metadata.SNAPSHOT, &k.Snapshot, false},
		{TimestampKeyFile, metadata.TIMESTAMP, &k.Timestamp, false},
	} {
		path := filepath.Join(dir, f.name)
		want := latest.Signed.Roles[f.role].KeyIDs
		// Finish an interrupted rotation: the root names the new key.
		if nk, err := ReadKey(path + ".new"); err == nil && slices.Contains(want, KeyID(nk)) {
			if err := os.Rename(path+".new", path); err != nil {
				return nil, err
			}
		}
		key, err := ReadKey(path)
		switch {
		case errors.Is(err, fs.ErrNotExist) && f.optional:
			continue
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("%s: %s is missing: %w", dir, f.name, ErrNoKeys)
		case err != nil:
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if !slices.Contains(want, KeyID(key)) {
			if f.optional {
				continue // an old root key left behind: not this root's
			}
			return nil, fmt.Errorf("%s: root version %d does not name this %s key: restore the keys directory from a backup, or run devsvc keys rotate --online with the root key", path, len(roots), f.role)
		}
		*f.key = key
	}
	return k, nil
}

// readChain reads N.root.json for N = 1, 2, ... in dir.
func readChain(dir string) ([][]byte, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", filepath.Dir(dir), ErrNoKeys)
	}
	if err != nil {
		return nil, err
	}
	var vs []int
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".root.json"); ok {
			if v, err := strconv.Atoi(n); err == nil && v > 0 {
				vs = append(vs, v)
			}
		}
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("%s: %w", filepath.Dir(dir), ErrNoKeys)
	}
	sort.Ints(vs)
	var roots [][]byte
	for i, v := range vs {
		if v != i+1 {
			return nil, fmt.Errorf("%s: root version %d is missing", dir, i+1)
		}
		b, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(v)+".root.json"))
		if err != nil {
			return nil, err
		}
		roots = append(roots, b)
	}
	return roots, nil
}

// RotateOptions says what Rotate replaces.
type RotateOptions struct {
	Online bool // new targets, snapshot and timestamp keys
	Root   bool // a new root key
	// RootKey is the current root key when it is not in the directory.
	RootKey ed25519.PrivateKey
	// RootExpiry is how long the new root version is valid.
	RootExpiry time.Duration
}

// Rotate replaces keys and writes the next root version, signed by the
// current root key and, with a new root key, by that one too: devices
// provisioned with an earlier root follow the chain. The new root key is
// written to the directory like the first (move it offline again).
func (k *Keyring) Rotate(now time.Time, o RotateOptions) error {
	old := k.Root
	if o.RootKey != nil {
		old = o.RootKey
	}
	if old == nil {
		return fmt.Errorf("rotate: %w: it is not in %s; give it with --root-key", ErrNoRootKey, k.Dir)
	}
	latest, err := metadata.Root().FromBytes(k.Roots[len(k.Roots)-1])
	if err != nil {
		return err
	}
	if !slices.Contains(latest.Signed.Roles[metadata.ROOT].KeyIDs, KeyID(old)) {
		return fmt.Errorf("rotate: the root key given is not the key of root version %d", len(k.Roots))
	}
	next := &Keyring{Dir: k.Dir, Root: old, Targets: k.Targets, Snapshot: k.Snapshot, Timestamp: k.Timestamp, Roots: k.Roots}
	if o.Online {
		for _, p := range []*ed25519.PrivateKey{&next.Targets, &next.Snapshot, &next.Timestamp} {
			if *p, err = GenerateKey(); err != nil {
				return err
			}
		}
	}
	if o.Root {
		if next.Root, err = GenerateKey(); err != nil {
			return err
		}
	}
	v := int64(len(k.Roots) + 1)
	root, err := next.signRoot(v, now.Add(o.RootExpiry), old, next.Root)
	if err != nil {
		return err
	}
	// New keys as *.new, then the root that names them, then the renames:
	// Load completes a rotation cut short between the two.
	write := &Keyring{Dir: k.Dir, Targets: next.Targets, Snapshot: next.Snapshot, Timestamp: next.Timestamp}
	if o.Root || k.Root != nil {
		write.Root = next.Root
	}
	if err := write.writeKeys(".new"); err != nil {
		return err
	}
	if err := datadir.WriteFileAtomic(filepath.Join(k.Dir, RootChainDir, strconv.FormatInt(v, 10)+".root.json"), root, 0o644); err != nil {
		return err
	}
	for _, name := range []string{RootKeyFile, TargetsKeyFile, SnapshotKeyFile, TimestampKeyFile} {
		p := filepath.Join(k.Dir, name)
		if err := os.Rename(p+".new", p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	next.Roots = append(append([][]byte(nil), k.Roots...), root)
	if write.Root == nil {
		next.Root = nil
	}
	*k = *next
	return nil
}

// RootVersion returns the latest root version.
func (k *Keyring) RootVersion() int { return len(k.Roots) }

// LatestRoot returns the latest signed root: what devices are
// provisioned with.
func (k *Keyring) LatestRoot() []byte { return k.Roots[len(k.Roots)-1] }

// Role names.
const (
	RoleRoot      = metadata.ROOT
	RoleTargets   = metadata.TARGETS
	RoleSnapshot  = metadata.SNAPSHOT
	RoleTimestamp = metadata.TIMESTAMP
)

// RootInfo is what a root metadata file says.
type RootInfo struct {
	Version int64
	Expires time.Time
	KeyIDs  map[string][]string // by role
}

// ParseRoot reads a root metadata file (it does not verify it).
func ParseRoot(b []byte) (RootInfo, error) {
	r, err := metadata.Root().FromBytes(b)
	if err != nil {
		return RootInfo{}, err
	}
	ri := RootInfo{Version: r.Signed.Version, Expires: r.Signed.Expires, KeyIDs: map[string][]string{}}
	for role, rr := range r.Signed.Roles {
		ri.KeyIDs[role] = rr.KeyIDs
	}
	return ri, nil
}
