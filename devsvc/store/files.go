package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/opendus/opendus/firmware"
)

// tmpPrefix starts the name of a file being written. Valid file names never
// start with a dot, so a temporary name never collides with a stored file.
const tmpPrefix = ".tmp-"

// cleanFiles removes from the file store every file no committed update
// records (temporary files and files of imports a crash interrupted) and
// the directories left empty, and logs recorded files that are missing.
func (s *Store) cleanFiles() error {
	recorded := make(map[string]firmware.Image) // path -> image
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUpdates).ForEach(func(k, v []byte) error {
			u, err := decodeUpdate(k, v)
			if err != nil {
				return err
			}
			for _, f := range u.Files {
				recorded[u.Dir()+"/"+f.Name] = f
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	var orphans, dirs []string
	err = fs.WalkDir(s.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		if d.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		if im, ok := recorded[p]; ok && d.Type().IsRegular() {
			delete(recorded, p)
			if info, err := d.Info(); err == nil && info.Size() != im.Size {
				s.log.Error("store: stored file has the wrong size", "file", p, "size", info.Size(), "want", im.Size)
			}
			return nil
		}
		orphans = append(orphans, p)
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range orphans {
		s.log.Info("store: removing a file no update records (left by an interrupted import or removal)", "file", p)
		if err := s.root.Remove(p); err != nil {
			return err
		}
	}
	// Deepest first, so that parents are empty when their turn comes.
	slices.SortFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, p := range dirs {
		s.root.Remove(p) // fails, as it should, when not empty
	}
	for p := range recorded {
		s.log.Error("store: a recorded update file is missing; re-import its bundle", "file", p)
	}
	return nil
}

// removeUpdateFiles deletes the files of u and the directories left empty.
// It runs after the transaction that deleted u's record committed; a crash
// before it ends leaves orphans that the next Open removes.
func (s *Store) removeUpdateFiles(u firmware.Update) {
	if s.testHookRemoveFiles != nil {
		s.testHookRemoveFiles()
	}
	s.removeMu.Lock()
	defer s.removeMu.Unlock()
	dir := u.Dir()
	if err := s.root.RemoveAll(dir); err != nil {
		s.log.Error("store: removing update files", "dir", dir, "err", err)
		return
	}
	for d := path.Dir(dir); d != "."; d = path.Dir(d) {
		if s.root.Remove(d) != nil {
			break
		}
	}
}

// syncDir fsyncs a directory so that the entries created, renamed or removed
// in it are durable.
func (s *Store) syncDir(dir string) error {
	f, err := s.root.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// staged is the new files of one update being imported.
type staged struct {
	dir     string   // the version directory
	created []string // directories created, parents first
}

// mkdirs creates the directories of dir that are missing, parents first,
// and fsyncs the parent of each one created.
func (s *Store) mkdirs(st *staged) error {
	parts := strings.Split(st.dir, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		err := s.root.Mkdir(p, 0o750)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		st.created = append(st.created, p)
		parent := "."
		if i > 0 {
			parent = strings.Join(parts[:i], "/")
		}
		if err := s.syncDir(parent); err != nil {
			return err
		}
	}
	return nil
}

// unstage removes the files and directories of an import that failed.
func (s *Store) unstage(st *staged) {
	if err := s.root.RemoveAll(st.dir); err != nil {
		s.log.Error("store: removing the files of a failed import; the next start removes them", "dir", st.dir, "err", err)
	}
	for i := len(st.created) - 1; i >= 0; i-- {
		s.root.Remove(st.created[i]) // may hold another version: then it stays
	}
}

// progress reports import progress at least every progressStep bytes.
type progress struct {
	fn          func(done, total int64)
	done, total int64
	last        int64
}

const progressStep = 1 << 20

func (p *progress) add(n int64, force bool) {
	p.done += n
	if p.fn != nil && (force || p.done-p.last >= progressStep) {
		p.last = p.done
		p.fn(p.done, p.total)
	}
}

// copyBufSize is the read size of imports, also the granularity at which
// they notice a cancelled context.
const copyBufSize = 256 << 10

// hashCopy copies src to dst (nil: only hash), returning the size and
// SHA-256 of what it copied. It stops reading after limit+1 bytes when
// limit >= 0, enough to tell that the content is too long.
func hashCopy(ctx context.Context, dst io.Writer, src io.Reader, limit int64, p *progress) (int64, [32]byte, error) {
	h := sha256.New()
	if limit >= 0 {
		src = io.LimitReader(src, limit+1)
	}
	buf := make([]byte, copyBufSize)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, [32]byte{}, err
		}
		m, rerr := src.Read(buf)
		if m > 0 {
			h.Write(buf[:m])
			if dst != nil {
				if _, err := dst.Write(buf[:m]); err != nil {
					return n, [32]byte{}, err
				}
			}
			n += int64(m)
			p.add(int64(m), false)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return n, [32]byte{}, rerr
		}
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return n, sum, nil
}

// checkContent compares what was read with what the import expects.
func checkContent(f firmware.ImportFile, size int64, sum [32]byte) error {
	if f.Size >= 0 && size != f.Size {
		if size > f.Size {
			return fmt.Errorf("%w: more than the expected %d bytes", ErrIntegrity, f.Size)
		}
		return fmt.Errorf("%w: %d bytes, want %d", ErrIntegrity, size, f.Size)
	}
	if f.SHA256 != nil && sum != *f.SHA256 {
		return fmt.Errorf("%w: SHA-256 %x, want %x", ErrIntegrity, sum, *f.SHA256)
	}
	return nil
}

// writeFile stores one file of an update: written under a temporary name
// while hashing, checked, fsynced and renamed into place. The caller
// fsyncs the directory.
func (s *Store) writeFile(ctx context.Context, dir string, f firmware.ImportFile, p *progress) (firmware.Image, error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := dir + "/" + tmpPrefix + f.Name + "-" + hex.EncodeToString(rnd[:])
	out, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return firmware.Image{}, err
	}
	im, err := s.fill(ctx, out, f, p)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.root.Rename(tmp, dir+"/"+f.Name)
	}
	if err != nil {
		s.root.Remove(tmp)
		return firmware.Image{}, err
	}
	return im, nil
}

func (s *Store) fill(ctx context.Context, out io.Writer, f firmware.ImportFile, p *progress) (firmware.Image, error) {
	in, err := f.Open()
	if err != nil {
		return firmware.Image{}, err
	}
	defer in.Close()
	size, sum, err := hashCopy(ctx, out, in, f.Size, p)
	if err != nil {
		return firmware.Image{}, err
	}
	if err := checkContent(f, size, sum); err != nil {
		return firmware.Image{}, err
	}
	return firmware.Image{Name: f.Name, Size: size, SHA256: sum, Role: f.Role}, nil
}
