package store

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/opendus/opendus/firmware"
)

// A backup is a tar archive (POSIX, uncompressed: the images are
// compressed already) that holds, in this order:
//
//	opendus-backup.json            the manifest, BackupInfo
//	opendus.db                     the database, from one read transaction
//	DeviceUpdateFiles/<dir>/<file> every file of every update that database
//	                               records, as the file store holds it
//
// Backup writes it while the store keeps working: the database is the
// snapshot of one read transaction, and the files are those its updates
// record, which never change once written and which a Remove or Purge
// committed after the snapshot does not delete until the backup has copied
// them (removeMu). So a backup taken during imports and check-ins is the
// catalog at one history number, whole. RestoreBackup reads one back.

// BackupFormat is the format of the backups Backup writes; RestoreBackup
// reads it and refuses a newer one.
const BackupFormat = 1

// Names in a backup archive.
const (
	backupManifest = "opendus-backup.json"
	maxManifest    = 64 << 10
)

// BackupInfo describes a backup: its manifest, the archive's first entry.
type BackupInfo struct {
	// Format is BackupFormat when it was written.
	Format int `json:"format"`
	// Created is when it was taken, Version by which program.
	Created time.Time `json:"created"`
	Version string    `json:"version,omitempty"`
	// Schema is the database's schema version (SchemaVersion).
	Schema int `json:"schemaVersion"`
	// Seq is the history number of the last change it holds.
	Seq uint64 `json:"seq"`
	// DBBytes is the size of the database; Updates, Files and FileBytes
	// count the updates it records and their files.
	DBBytes   int64 `json:"dbBytes"`
	Updates   int   `json:"updates"`
	Files     int   `json:"files"`
	FileBytes int64 `json:"fileBytes"`
}

// errCutShort is what a truncated archive reads as.
var errCutShort = errors.New("the archive is cut short (the backup was interrupted, or the file was copied in part)")

// storedFile is a file of a recorded update: its path under the file
// store and its image.
type storedFile struct {
	path string
	im   firmware.Image
}

// recordedFiles lists the files of every update tx records, by path.
func recordedFiles(tx *bolt.Tx) (files []storedFile, updates int, err error) {
	err = tx.Bucket(bucketUpdates).ForEach(func(k, v []byte) error {
		u, err := decodeUpdate(k, v)
		if err != nil {
			return err
		}
		updates++
		for _, f := range u.Files {
			files = append(files, storedFile{u.Dir() + "/" + f.Name, f})
		}
		return nil
	})
	return files, updates, err
}

// Backup writes a backup archive of the store to w, while the store keeps
// working, and returns its manifest. version names the program in it.
// Each file is checked against its recorded size and SHA-256 as it is
// copied: a stored file that differs fails the backup, naming it.
func (s *Store) Backup(ctx context.Context, w io.Writer, version string) (BackupInfo, error) {
	s.removeMu.RLock()
	defer s.removeMu.RUnlock()
	tw := tar.NewWriter(ctxWriter{ctx, w})
	info := BackupInfo{Format: BackupFormat, Created: s.now().UTC().Truncate(time.Second), Version: version}
	var files []storedFile
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		if info.Schema, err = strconv.Atoi(string(tx.Bucket(bucketMeta).Get(keySchema))); err != nil {
			return fmt.Errorf("schema version: %w", err)
		}
		info.Seq = tx.Bucket(bucketHistory).Sequence()
		info.DBBytes = tx.Size()
		if files, info.Updates, err = recordedFiles(tx); err != nil {
			return err
		}
		info.Files = len(files)
		for _, f := range files {
			info.FileBytes += f.im.Size
		}
		manifest, err := json.MarshalIndent(info, "", "  ")
		if err != nil {
			return err
		}
		manifest = append(manifest, '\n')
		if err := tw.WriteHeader(fileHeader(backupManifest, int64(len(manifest)), 0o600, info.Created)); err != nil {
			return err
		}
		if _, err := tw.Write(manifest); err != nil {
			return err
		}
		if err := tw.WriteHeader(fileHeader(dbName, info.DBBytes, 0o600, info.Created)); err != nil {
			return err
		}
		n, err := tx.WriteTo(tw)
		if err == nil && n != info.DBBytes {
			err = fmt.Errorf("the database copy has %d bytes, want %d", n, info.DBBytes)
		}
		return err
	})
	if err != nil {
		return info, fmt.Errorf("store: backup: %w", err)
	}
	// The read transaction is over (a long one would hold up the
	// database's growth); the files it recorded stay, under removeMu.
	for _, f := range files {
		if err := s.backupFile(ctx, tw, f, info.Created); err != nil {
			return info, fmt.Errorf("store: backup: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return info, fmt.Errorf("store: backup: %w", err)
	}
	return info, nil
}

func fileHeader(name string, size int64, mode int64, mod time.Time) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: mode, ModTime: mod, Format: tar.FormatPAX}
}

// backupFile copies one stored file into the archive, checking it.
func (s *Store) backupFile(ctx context.Context, tw *tar.Writer, f storedFile, mod time.Time) error {
	in, err := s.root.Open(f.path)
	if err != nil {
		return fmt.Errorf("%s/%s: %w (the update is recorded but its file is missing: re-import its bundle)", filesDir, f.path, err)
	}
	defer in.Close()
	if err := tw.WriteHeader(fileHeader(filesDir+"/"+f.path, f.im.Size, 0o640, mod)); err != nil {
		return err
	}
	n, sum, err := hashCopy(ctx, tw, in, f.im.Size, &progress{})
	if err != nil && !errors.Is(err, tar.ErrWriteTooLong) {
		return fmt.Errorf("%s/%s: %w", filesDir, f.path, err)
	}
	if err != nil || n != f.im.Size || sum != f.im.SHA256 {
		return fmt.Errorf("%s/%s: the stored file does not match its record (size %d, SHA-256 %x): it is damaged; re-import its bundle", filesDir, f.path, f.im.Size, f.im.SHA256)
	}
	return nil
}

// RestoreBackup reads a backup archive from r into dir, which must be
// missing or empty, and checks it whole before it returns: the manifest
// comes first and is of a format this package reads; the database passes
// bbolt's consistency check, has a schema Open can open and is at the
// manifest's history number; and the files are exactly those the
// database records, each with its recorded size and SHA-256. Every file
// is fsynced. Names in the archive are read as outside input: only the
// names above, regular files, no name twice, nothing outside dir. A
// replica's backup starts a new outbox (see Store.restartOutbox). On an
// error RestoreBackup removes what it wrote. It returns the manifest;
// Open dir to use the store (Open upgrades an older schema).
func RestoreBackup(ctx context.Context, r io.Reader, dir string) (info BackupInfo, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return info, fmt.Errorf("store: restore: %w", err)
	}
	if ents, err := os.ReadDir(dir); err != nil {
		return info, fmt.Errorf("store: restore: %w", err)
	} else if len(ents) > 0 {
		return info, fmt.Errorf("store: restore: %s is not empty", dir)
	}
	defer func() {
		if err != nil {
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				os.RemoveAll(filepath.Join(dir, e.Name()))
			}
			err = fmt.Errorf("store: restore: %w", err)
		}
	}()
	tr := tar.NewReader(r)
	next := func(want string) (*tar.Header, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if err == io.EOF && want != "" {
			return nil, fmt.Errorf("the archive ends before %s: it is cut short", want)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errCutShort
		}
		if err != nil {
			if err != io.EOF {
				err = fmt.Errorf("not a backup archive (%v)", err)
			}
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("entry %q is not a regular file (type %q): not a backup devsvc wrote", h.Name, h.Typeflag)
		}
		if want != "" && h.Name != want {
			return nil, fmt.Errorf("the entry %q comes where %s should: not a backup devsvc wrote", h.Name, want)
		}
		return h, nil
	}

	h, err := next(backupManifest)
	if err != nil {
		return info, err
	}
	if h.Size > maxManifest {
		return info, fmt.Errorf("%s has %d bytes, more than a manifest's %d", backupManifest, h.Size, maxManifest)
	}
	if err := json.NewDecoder(io.LimitReader(tr, maxManifest)).Decode(&info); err != nil {
		return info, fmt.Errorf("%s: %w", backupManifest, err)
	}
	switch {
	case info.Format < 1:
		return info, fmt.Errorf("%s: format %d: not a backup devsvc wrote", backupManifest, info.Format)
	case info.Format > BackupFormat:
		return info, fmt.Errorf("the backup has format %d, this program reads format %d: restore it with the devsvc that took it (%s) or a newer one", info.Format, BackupFormat, info.Version)
	case info.Schema > SchemaVersion:
		return info, fmt.Errorf("the backup's database has schema version %d, this program opens versions up to %d: restore it with the devsvc that took it (%s) or a newer one", info.Schema, SchemaVersion, info.Version)
	case info.DBBytes <= 0 || info.Files < 0 || info.FileBytes < 0:
		return info, fmt.Errorf("%s: sizes %d, %d, %d: not a backup devsvc wrote", backupManifest, info.DBBytes, info.Files, info.FileBytes)
	}

	if h, err = next(dbName); err != nil {
		return info, err
	}
	if h.Size != info.DBBytes {
		return info, fmt.Errorf("%s has %d bytes, the manifest says %d: the archive is damaged", dbName, h.Size, info.DBBytes)
	}
	if err := writeRestored(filepath.Join(dir, dbName), tr, h.Size, 0o600); err != nil {
		return info, err
	}

	if err := os.Mkdir(filepath.Join(dir, filesDir), 0o750); err != nil {
		return info, err
	}
	root, err := os.OpenRoot(filepath.Join(dir, filesDir))
	if err != nil {
		return info, err
	}
	defer root.Close()
	got := map[string]firmware.Image{}
	var total int64
	for {
		h, err := next("")
		if err == io.EOF {
			break
		}
		if err != nil {
			return info, err
		}
		rel, ok := strings.CutPrefix(h.Name, filesDir+"/")
		if !ok || !fs.ValidPath(rel) || rel == "." || strings.ContainsRune(rel, '\\') || path.Dir(rel) == "." {
			return info, fmt.Errorf("entry %q: a backup holds %s, %s and files under %s/ only", h.Name, backupManifest, dbName, filesDir)
		}
		if _, dup := got[rel]; dup {
			return info, fmt.Errorf("entry %q is in the archive twice: the archive is damaged", h.Name)
		}
		if len(got) == info.Files || h.Size > info.FileBytes-total {
			return info, fmt.Errorf("entry %q is more than the manifest's %d files of %d bytes: the archive is damaged", h.Name, info.Files, info.FileBytes)
		}
		if err := root.MkdirAll(path.Dir(rel), 0o750); err != nil {
			return info, fmt.Errorf("%s: %w", h.Name, err)
		}
		out, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if err != nil {
			return info, fmt.Errorf("%s: %w", h.Name, err)
		}
		n, sum, err := hashCopy(ctx, out, tr, h.Size, &progress{})
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = errCutShort
		}
		if err == nil && n != h.Size {
			err = fmt.Errorf("%d bytes, the entry says %d: the archive is damaged", n, h.Size)
		}
		if err == nil {
			err = out.Sync()
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return info, fmt.Errorf("%s: %w", h.Name, err)
		}
		got[rel] = firmware.Image{Size: n, SHA256: sum}
		total += n
	}
	if err := checkRestored(filepath.Join(dir, dbName), info, got); err != nil {
		return info, err
	}
	// What Open reads (rules, updates, sites, rollouts, the devices of
	// the fleet index) must read; Open also upgrades an older schema.
	st, err := Open(dir, &Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return info, fmt.Errorf("the database in the backup does not open: %w", err)
	}
	if st.ReplicaOf() != "" {
		if err := st.restartOutbox(ctx); err != nil {
			st.Close()
			return info, err
		}
	}
	if err := st.Close(); err != nil {
		return info, err
	}
	return info, syncTree(dir)
}

// ReadBackupInfo reads the manifest of the backup archive r: its first
// entry. It checks nothing else (RestoreBackup checks the whole archive).
func ReadBackupInfo(r io.Reader) (BackupInfo, error) {
	var info BackupInfo
	tr := tar.NewReader(r)
	h, err := tr.Next()
	if err != nil || h.Name != backupManifest || h.Typeflag != tar.TypeReg {
		return info, errors.New("not a backup archive: it does not start with " + backupManifest)
	}
	if err := json.NewDecoder(io.LimitReader(tr, maxManifest)).Decode(&info); err != nil {
		return info, fmt.Errorf("%s: %w", backupManifest, err)
	}
	return info, nil
}

// writeRestored writes size bytes of r to a new file name, fsynced.
func writeRestored(name string, r io.Reader, size int64, perm os.FileMode) error {
	out, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	n, err := io.CopyN(out, r, size)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("%s: %d bytes of %d: %w", filepath.Base(name), n, size, errCutShort)
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// checkRestored opens the restored database read-only and checks it
// against the manifest and the files restored (got, by path).
func checkRestored(dbPath string, info BackupInfo, got map[string]firmware.Image) (err error) {
	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("the database in the backup does not open: %w", err)
	}
	defer db.Close()
	// bbolt panics on some damage that Check does not see; a damaged
	// backup is an error, not a crash.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("the database in the backup is damaged: %v", p)
		}
	}()
	return db.View(func(tx *bolt.Tx) error {
		var problems []string
		for err := range tx.Check() { // read to the end: Check's goroutine uses tx
			if len(problems) < 10 {
				problems = append(problems, err.Error())
			}
		}
		if len(problems) > 0 {
			return fmt.Errorf("the database in the backup is damaged: %s", strings.Join(problems, "; "))
		}
		meta := tx.Bucket(bucketMeta)
		if meta == nil || tx.Bucket(bucketUpdates) == nil || tx.Bucket(bucketHistory) == nil {
			return errors.New("the database in the backup is no OpenDUS database")
		}
		// Every record but the devices' (binary, read by Open) and the
		// change feed's (binary, decodeRecords, holding JSON records) is
		// JSON.
		for _, name := range allBuckets {
			b := tx.Bucket(name)
			if b == nil || string(name) == string(bucketMeta) || string(name) == string(bucketDevices) {
				continue
			}
			feed := string(name) == string(bucketFeed)
			if err := b.ForEach(func(k, v []byte) error {
				if feed {
					rs, err := decodeRecords(v)
					if err != nil {
						return fmt.Errorf("the database in the backup is damaged: feed record %q: %w", k, err)
					}
					for _, r := range rs { // copies of replicated records: JSON too
						if !r.Delete && !json.Valid(r.Value) {
							return fmt.Errorf("the database in the backup is damaged: feed record %q: its %s record %q is not JSON", k, r.Bucket, r.Key)
						}
					}
					return nil
				}
				if !json.Valid(v) {
					return fmt.Errorf("the database in the backup is damaged: %s record %q is not JSON", name, k)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		if v, err := strconv.Atoi(string(meta.Get(keySchema))); err != nil || v != info.Schema {
			return fmt.Errorf("the database has schema version %q, the manifest says %d: the archive is damaged", meta.Get(keySchema), info.Schema)
		}
		if seq := tx.Bucket(bucketHistory).Sequence(); seq != info.Seq {
			return fmt.Errorf("the database is at history %d, the manifest says %d: the archive is damaged", seq, info.Seq)
		}
		files, _, err := recordedFiles(tx)
		if err != nil {
			return fmt.Errorf("the database in the backup: %w", err)
		}
		for _, f := range files {
			g, ok := got[f.path]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("%s/%s is recorded but not in the archive", filesDir, f.path))
			case g.Size != f.im.Size || g.SHA256 != f.im.SHA256:
				problems = append(problems, fmt.Sprintf("%s/%s has %d bytes, SHA-256 %x; the database records %d bytes, %x", filesDir, f.path, g.Size, g.SHA256, f.im.Size, f.im.SHA256))
			}
			delete(got, f.path)
		}
		extra := make([]string, 0, len(got))
		for p := range got {
			extra = append(extra, filesDir+"/"+p)
		}
		sort.Strings(extra)
		for _, p := range extra {
			problems = append(problems, p+" is in the archive but no update records it")
		}
		if len(problems) > 0 {
			return fmt.Errorf("the backup's files do not match its database: %s", strings.Join(problems, "; "))
		}
		return nil
	})
}

// syncTree fsyncs every directory under dir, deepest first, and dir.
func syncTree(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return err
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		f, err := os.Open(dirs[i])
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("fsync %s: %w", dirs[i], err)
		}
	}
	return nil
}

// Inspect counts what the store in dir holds without opening it for use:
// read-only, no upgrade, no cleaning. While another process (a running
// devsvc serve) has the store open it fails, with inUse true.
func Inspect(dir string) (st Stats, inUse bool, err error) {
	path := filepath.Join(dir, dbName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if errors.Is(err, berrors.ErrTimeout) {
		return Stats{}, true, fmt.Errorf("store: %s is in use by another process (a running devsvc serve?): stop it first", path)
	}
	if err != nil {
		return Stats{}, false, fmt.Errorf("store: %s: %w", path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for _, c := range []struct {
			bucket []byte
			n      *int
		}{{bucketRules, &st.Rules}, {bucketUpdates, &st.Updates}, {bucketDevices, &st.Devices}, {bucketTestDevices, &st.TestDevices}, {bucketAccounts, &st.Accounts}} {
			if b := tx.Bucket(c.bucket); b != nil {
				*c.n = b.Stats().KeyN
			}
		}
		if b := tx.Bucket(bucketHistory); b != nil {
			st.Seq = b.Sequence()
		}
		if b := tx.Bucket(bucketMeta); b != nil {
			st.SchemaVersion, _ = strconv.Atoi(string(b.Get(keySchema)))
		}
		st.DBBytes = tx.Size()
		return nil
	})
	if err != nil {
		return Stats{}, false, fmt.Errorf("store: %s: %w", path, err)
	}
	return st, false, nil
}
