// Package rpm reads firmware bundles packaged as RPM packages: it checks a
// package's integrity and, given a keyring, its OpenPGP signature, and then
// walks the regular files of its payload. It is the only package that
// imports github.com/sassoftware/go-rpmutils and the OpenPGP library.
//
// # Format
//
// An RPM file is a 96-byte lead (magic ED AB EE DB), a signature header,
// padded to 8 bytes, a general header and the payload: a cpio archive
// compressed as the general header's PAYLOADCOMPRESSOR says (gzip, bzip2,
// xz, lzma or zstd). Both headers are an index of (tag, type, offset,
// count) entries over a data area. The signature header holds digests of
// the general header (SHA-256, SHA-1) and OpenPGP signatures over the
// general header alone or over the general header and the compressed
// payload; the general header holds the payload's digest
// (PAYLOADDIGEST), the file list, and each file's size and mode.
//
// # What Open checks
//
//   - The headers are well formed before any library code reads them: every
//     index entry lies inside its data area, and both headers are at most
//     MaxHeaderSize bytes (the library would otherwise allocate what a
//     hostile header states, or index out of range).
//   - The general header's digest from the signature header matches (one
//     is required), and so does the payload's digest (PAYLOADDIGEST, or the
//     legacy MD5 over header and payload).
//   - With a keyring: at least one signature, every signature made by a key
//     of the keyring and valid; and the payload covered by a signature,
//     either directly or through the signed PAYLOADDIGEST. A package
//     without a signature, or signed by another key, is refused.
//
// Walk then reads the payload again and presents its regular files in
// payload order; directories are skipped, and symbolic links, hard links
// and devices are errors (a bundle carries regular files only). Each file
// is drained with a fixed buffer before the next, so memory does not
// depend on file sizes. A walk that reaches the end also checks that the
// file is, byte for byte, the one Open verified (SHA-256 of the whole
// file), so what it presented was covered by the digests and signature.
//
// Known limit: the library's cpio reader allocates the file-name length a
// cpio entry header states (up to 4 GiB) before reading the name. The
// payload digest is checked first, so a hostile payload needs a package
// built to match it; with a keyring, it needs the vendor's key.
package rpm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	rpmutils "github.com/sassoftware/go-rpmutils"
)

// Magic is the start of every RPM file (the lead's magic).
var Magic = [4]byte{0xed, 0xab, 0xee, 0xdb}

// MaxHeaderSize bounds each header (index and data) in bytes.
const MaxHeaderSize = 16 << 20

var (
	// ErrFormat is returned when a file is not a well-formed RPM package.
	ErrFormat = errors.New("not a well-formed RPM package")
	// ErrDigest is returned when a header or payload digest does not match.
	ErrDigest = errors.New("RPM digest mismatch")
	// ErrSignature is returned, with a keyring, when a package is not
	// signed, or not validly by a key of the keyring.
	ErrSignature = errors.New("RPM signature not valid")
	// ErrLimit is returned when a package exceeds a limit of Config.
	ErrLimit = errors.New("limit exceeded")
)

// Config configures Open. The zero value checks digests only.
type Config struct {
	// Keyring is an armored OpenPGP public keyring; when set, the package
	// must be signed by one of its keys.
	Keyring []byte
	// MaxFiles bounds the package's files; 0 means 10,000.
	MaxFiles int
	// MaxTotalSize bounds the sum of its files' sizes; 0 means 16 GiB.
	MaxTotalSize int64
}

// Package is a verified RPM package.
type Package struct {
	r      io.ReaderAt
	size   int64
	sum    [32]byte // SHA-256 of the file as Open verified it
	nevra  string
	signer string
}

// ReadKeyring parses an armored OpenPGP public keyring: one or more
// armored public key blocks, one after the other (as gpg --export --armor
// of several keys, or such exports concatenated).
func ReadKeyring(armored []byte) (openpgp.EntityList, error) {
	const begin = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
	parts := bytes.Split(armored, []byte(begin))
	var keys openpgp.EntityList
	for _, part := range parts[1:] {
		el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(append([]byte(begin), part...)))
		if err != nil {
			return nil, fmt.Errorf("rpm: keyring: %w", err)
		}
		keys = append(keys, el...)
	}
	if len(keys) == 0 {
		return nil, errors.New("rpm: keyring: no armored public key block (-----BEGIN PGP PUBLIC KEY BLOCK-----)")
	}
	return keys, nil
}

// Open verifies the RPM package in r (size bytes), reading all of it: see
// the package documentation for what it checks.
func Open(ctx context.Context, r io.ReaderAt, size int64, cfg *Config) (pkg *Package, err error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.MaxFiles <= 0 {
		c.MaxFiles = 10000
	}
	if c.MaxTotalSize <= 0 {
		c.MaxTotalSize = 16 << 30
	}
	var keys openpgp.EntityList
	if len(c.Keyring) > 0 {
		if keys, err = ReadKeyring(c.Keyring); err != nil {
			return nil, err
		}
	}
	if err := checkHeaders(r, size); err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			pkg, err = nil, fmt.Errorf("rpm: %w: %v", ErrFormat, p)
		}
	}()
	in := &ctxReader{ctx: ctx, r: io.NewSectionReader(r, 0, size)}
	whole := sha256.New()
	hdr, sigs, err := rpmutils.Verify(io.TeeReader(in, whole), keys)
	if err == nil {
		_, err = io.Copy(whole, in) // anything after the payload
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		var nf rpmutils.KeyNotFoundError
		switch {
		case errors.As(err, &nf):
			return nil, fmt.Errorf("rpm: %w: signed by key %s, which is not in the keyring", ErrSignature, keyName(nf.KeyID, nf.Fingerprint))
		case strings.Contains(err.Error(), "mismatch"):
			return nil, fmt.Errorf("rpm: %w: %v", ErrDigest, err)
		case keys != nil && strings.Contains(err.Error(), "signature"):
			return nil, fmt.Errorf("rpm: %w: %v", ErrSignature, err)
		}
		return nil, fmt.Errorf("rpm: %w: %v", ErrFormat, err)
	}
	if !hdr.HasTag(rpmutils.SIG_SHA256) && !hdr.HasTag(rpmutils.SIG_SHA1) {
		return nil, fmt.Errorf("rpm: %w: the signature header has no digest of the header", ErrDigest)
	}
	pkg = &Package{r: r, size: size}
	whole.Sum(pkg.sum[:0])
	if n, err := hdr.GetNEVRA(); err == nil {
		pkg.nevra = n.String()
	}
	if keys != nil {
		if len(sigs) == 0 {
			return nil, fmt.Errorf("rpm: %w: the package is not signed, and a keyring is configured (rpm_keyring)", ErrSignature)
		}
		payloadSigned := hdr.HasTag(rpmutils.PAYLOADDIGEST)
		var names []string
		for _, s := range sigs {
			if !s.HeaderOnly {
				payloadSigned = true
			}
			names = append(names, signerName(s))
		}
		if !payloadSigned {
			return nil, fmt.Errorf("rpm: %w: the signature covers the header only and the header has no payload digest", ErrSignature)
		}
		pkg.signer = strings.Join(names, ", ")
	}
	files, err := hdr.GetFiles()
	if err != nil {
		return nil, fmt.Errorf("rpm: %w: file list: %v", ErrFormat, err)
	}
	if len(files) > c.MaxFiles {
		return nil, fmt.Errorf("rpm: %w: %d files, more than %d", ErrLimit, len(files), c.MaxFiles)
	}
	var total int64
	for _, f := range files {
		if f.Size() < 0 {
			return nil, fmt.Errorf("rpm: %w: %s has size %d", ErrFormat, f.Name(), f.Size())
		}
		if total += f.Size(); total > c.MaxTotalSize {
			return nil, fmt.Errorf("rpm: %w: files larger than %d bytes together", ErrLimit, c.MaxTotalSize)
		}
	}
	return pkg, nil
}

// NEVRA returns the package's name-epoch:version-release.arch.
func (p *Package) NEVRA() string { return p.nevra }

// Signer names the keys whose signatures were verified, "" without a
// keyring.
func (p *Package) Signer() string { return p.signer }

func signerName(s *rpmutils.Signature) string {
	if s.PrimaryName != "" {
		return fmt.Sprintf("%s (%s)", s.PrimaryName, keyName(s.KeyId, s.KeyFingerprint))
	}
	return keyName(s.KeyId, s.KeyFingerprint)
}

func keyName(id uint64, fp []byte) string {
	if len(fp) > 0 {
		return fmt.Sprintf("%X", fp)
	}
	return fmt.Sprintf("%016X", id)
}

// Walk reads the payload and calls fn for each regular file, with its
// path as the package installs it (/usr/share/...), its size and a
// reader of its content valid until fn returns. It hashes the whole file
// as it goes and fails at the end if the file is not the one Open
// verified.
func (p *Package) Walk(ctx context.Context, fn func(path string, size int64, r io.Reader) error) (err error) {
	inFn := false
	defer func() {
		if v := recover(); v != nil {
			if inFn {
				panic(v)
			}
			err = fmt.Errorf("rpm: %w: payload: %v", ErrFormat, v)
		}
	}()
	in := &ctxReader{ctx: ctx, r: io.NewSectionReader(p.r, 0, p.size)}
	whole := sha256.New()
	pkg, err := rpmutils.ReadRpm(io.TeeReader(in, whole))
	if err != nil {
		return fmt.Errorf("rpm: %w: %v", ErrFormat, err)
	}
	pr, err := pkg.PayloadReaderExtended()
	if err != nil {
		return fmt.Errorf("rpm: %w: payload: %v", ErrFormat, err)
	}
	// Close the decompressor (zstd keeps goroutines) however Walk ends.
	defer drainPayload(pr)
	buf := make([]byte, 32<<10)
	for {
		fi, err := pr.Next()
		if err == io.EOF {
			if _, err := io.Copy(whole, in); err != nil {
				return fmt.Errorf("rpm: %w", err)
			}
			var sum [32]byte
			if whole.Sum(sum[:0]); sum != p.sum {
				return fmt.Errorf("rpm: %w: the file changed since it was verified", ErrDigest)
			}
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("rpm: %w: payload: %v", ErrFormat, err)
		}
		name := fi.Name()
		switch mode := fi.Mode() & 0o170000; {
		case mode == 0o040000:
			continue
		case mode != 0o100000:
			return fmt.Errorf("rpm: %s: %w: mode %o: a bundle carries regular files and directories only", name, ErrFormat, fi.Mode())
		case pr.IsLink():
			return fmt.Errorf("rpm: %s: %w: a hard link: a bundle carries regular files only", name, ErrFormat)
		}
		lr := &io.LimitedReader{R: pr, N: fi.Size()}
		inFn = true
		err = fn(name, fi.Size(), lr)
		inFn = false
		if err != nil {
			return err
		}
		// The library skips what fn left by allocating it: drain instead.
		if _, err := io.CopyBuffer(io.Discard, lr, buf); err != nil {
			return fmt.Errorf("rpm: %s: %w", name, err)
		}
		if lr.N > 0 {
			return fmt.Errorf("rpm: %s: %w: payload ends %d bytes early", name, ErrFormat, lr.N)
		}
	}
}

// drainPayload reads the payload to its end, which makes the library close
// its decompressor.
func drainPayload(pr rpmutils.PayloadReader) {
	defer func() { _ = recover() }()
	for {
		if _, err := pr.Next(); err != nil {
			return
		}
	}
}

// ctxReader stops reading when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// checkHeaders checks the lead and the structure of both headers, so
// that the library, which trusts them, neither allocates what a hostile
// header states nor indexes outside a data area.
func checkHeaders(r io.ReaderAt, size int64) error {
	var lead [96]byte
	if _, err := r.ReadAt(lead[:], 0); err != nil {
		return fmt.Errorf("rpm: %w: no lead: %v", ErrFormat, err)
	}
	if !bytes.Equal(lead[:4], Magic[:]) {
		return fmt.Errorf("rpm: %w: no RPM magic", ErrFormat)
	}
	if lead[4] != 3 && lead[4] != 4 {
		return fmt.Errorf("rpm: %w: format version %d.%d", ErrFormat, lead[4], lead[5])
	}
	off := int64(96)
	for i, name := range []string{"signature", "general"} {
		var intro [16]byte
		if _, err := r.ReadAt(intro[:], off); err != nil {
			return fmt.Errorf("rpm: %w: %s header: %v", ErrFormat, name, err)
		}
		if !bytes.Equal(intro[:4], []byte{0x8e, 0xad, 0xe8, 0x01}) {
			return fmt.Errorf("rpm: %w: %s header: bad magic", ErrFormat, name)
		}
		n := int64(binary.BigEndian.Uint32(intro[8:]))
		dataSize := int64(binary.BigEndian.Uint32(intro[12:]))
		total := 16 + 16*n + dataSize
		if total > MaxHeaderSize {
			return fmt.Errorf("rpm: %w: %s header of %d bytes, more than %d", ErrLimit, name, total, MaxHeaderSize)
		}
		if off+total > size {
			return fmt.Errorf("rpm: %w: %s header runs past the end of the file", ErrFormat, name)
		}
		index := make([]byte, 16*n)
		if _, err := r.ReadAt(index, off+16); err != nil {
			return fmt.Errorf("rpm: %w: %s header: %v", ErrFormat, name, err)
		}
		for k := int64(0); k < n; k++ {
			e := index[16*k:]
			typ := binary.BigEndian.Uint32(e[4:])
			offset := int64(int32(binary.BigEndian.Uint32(e[8:])))
			count := int64(int32(binary.BigEndian.Uint32(e[12:])))
			if typ > 9 || offset < 0 || count < 0 || offset > dataSize {
				return fmt.Errorf("rpm: %w: %s header: entry %d (type %d, offset %d, count %d) is malformed", ErrFormat, name, k, typ, offset, count)
			}
			if width := [...]int64{0, 1, 1, 2, 4, 8, 0, 1, 0, 0}[typ]; offset+width*count > dataSize {
				return fmt.Errorf("rpm: %w: %s header: entry %d runs past the data", ErrFormat, name, k)
			}
		}
		off += total
		if i == 0 {
			off = (off + 7) &^ 7
		}
	}
	return nil
}
