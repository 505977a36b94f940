package service

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/opendus/opendus/cabingest"
	"github.com/opendus/opendus/devsvc/store"
)

// Upload is a bundle being received, spooled to disk: either one file (a
// cabinet, a self-extracting .exe or an RPM, see File) or the files of an
// update tree (see TreeFile), never both. It bounds what it takes by the
// service's MaxImportBytes and MaxImportFiles. Close it when done: that
// removes the spool, whatever happened.
type Upload struct {
	s     *Service
	name  string
	dir   string
	root  *os.Root
	kind  int // 0 unknown, 1 file, 2 tree
	files int
	bytes int64
	open  *spoolFile // the file being written, if any
	// maxBytes is MaxImportBytes when the upload began.
	maxBytes int64
}

const (
	uploadFile = 1
	uploadTree = 2
)

// NewUpload starts an upload; name is what the admin called it, for
// messages. It may be called by anyone signed in; Import checks the role.
func (s *Service) NewUpload(ctx context.Context, name string) (*Upload, error) {
	if _, err := s.change(ctx, "import"); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(s.cfg.SpoolDir, "import-*")
	if err != nil {
		return nil, fmt.Errorf("spool upload: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("spool upload: %w", err)
	}
	if name == "" {
		name = "upload"
	}
	return &Upload{s: s, name: name, dir: dir, root: root, maxBytes: s.imp.Load().maxBytes}, nil
}

// File returns the writer of a single-file bundle. Write the whole file,
// then Close the writer.
func (u *Upload) File() (io.WriteCloser, error) {
	if u.kind != 0 {
		return nil, fmt.Errorf("%w: a bundle upload is one file", ErrInvalid)
	}
	u.kind = uploadFile
	return u.create("bundle", -1)
}

// TreeFile returns the writer of the file at p, a slash-separated path of
// an update tree ([DeviceUpdateFiles/]DeviceType/Vendor/Model/Revision/
// Locale/Version/file), size bytes long. The path is checked before
// anything is written; writing more or fewer than size bytes is an error
// at Close. Close each file before the next.
func (u *Upload) TreeFile(p string, size int64) (io.WriteCloser, error) {
	if u.kind == uploadFile {
		return nil, fmt.Errorf("%w: a tree upload carries files only", ErrInvalid)
	}
	u.kind = uploadTree
	if u.open != nil {
		return nil, fmt.Errorf("%w: %s: the previous file %s is still open", ErrInvalid, p, u.open.name)
	}
	if u.files++; u.files > u.s.cfg.MaxImportFiles {
		return nil, fmt.Errorf("%w: more than %d files", ErrTooLarge, u.s.cfg.MaxImportFiles)
	}
	if size < 0 {
		return nil, fmt.Errorf("%w: %s: a negative size", ErrInvalid, p)
	}
	// ParseTreePath validates every component, so p cannot escape; the
	// root enforces it again.
	if _, err := cabingest.ParseTreePath(p); err != nil {
		return nil, invalid(err)
	}
	if err := u.root.MkdirAll(path.Dir(p), 0o755); err != nil {
		return nil, err
	}
	return u.create(p, size)
}

func (u *Upload) create(name string, size int64) (io.WriteCloser, error) {
	f, err := u.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, name, err)
	}
	u.open = &spoolFile{u: u, f: f, w: bufio.NewWriterSize(f, 256<<10), name: name, want: size}
	return u.open, nil
}

// Close removes the spool and everything in it.
func (u *Upload) Close() error {
	var err error
	if u.open != nil {
		err = u.open.f.Close()
		u.open = nil
	}
	return errors.Join(err, u.root.Close(), os.RemoveAll(u.dir))
}

// spoolFile is one file being written into an upload.
type spoolFile struct {
	u    *Upload
	f    *os.File
	w    *bufio.Writer
	name string
	want int64 // -1: any size
	got  int64
}

func (f *spoolFile) Write(p []byte) (int, error) {
	if f.u.open != f {
		return 0, fmt.Errorf("%w: %s is closed", ErrInvalid, f.name)
	}
	f.got += int64(len(p))
	if f.u.bytes += int64(len(p)); f.u.bytes > f.u.maxBytes {
		return 0, fmt.Errorf("%w: more than %d bytes (max_import_bytes)", ErrTooLarge, f.u.maxBytes)
	}
	if f.want >= 0 && f.got > f.want {
		return 0, fmt.Errorf("%w: %s is longer than its header said (%d bytes)", ErrInvalid, f.name, f.want)
	}
	return f.w.Write(p)
}

// Close finishes the file; it is an error if fewer bytes came than the
// size said. The file is closed whatever happens.
func (f *spoolFile) Close() error {
	if f.u.open != f {
		return nil
	}
	f.u.open = nil
	err := f.w.Flush()
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if err == nil && f.want >= 0 && f.got != f.want {
		err = fmt.Errorf("%w: %s: received %d bytes, header said %d", ErrInvalid, f.name, f.got, f.want)
	}
	return err
}

// Import imports what u holds, in one all-or-nothing store transaction:
// a tree (with descriptions, validated as a bundle; without, a plain set
// of files), or a cabinet, self-extracting .exe or RPM, told apart by
// content. A bundle that cannot be accepted is ErrInvalid, with every
// problem listed. progress, when set, is called as the store writes.
func (s *Service) Import(ctx context.Context, u *Upload, progress func(done, total int64)) (results []store.ImportResult, err error) {
	p, err := s.change(ctx, "import")
	if err != nil {
		return nil, err
	}
	if s.cfg.Imported != nil {
		defer func() { s.cfg.Imported(importResult(results, err)) }()
	}
	if u.open != nil {
		return nil, fmt.Errorf("%w: %s: the file %s was not finished", ErrInvalid, u.name, u.open.name)
	}
	var src string
	switch u.kind {
	case uploadFile:
		src = filepath.Join(u.dir, "bundle")
	case uploadTree:
		src = u.dir
	default:
		return nil, fmt.Errorf("%w: %s: the upload is empty", ErrInvalid, u.name)
	}
	cfg := &cabingest.Config{Name: u.name, MaxFiles: s.cfg.MaxImportFiles}
	if keyring := s.imp.Load().keyring; keyring != "" {
		kr, err := os.ReadFile(keyring)
		if err != nil {
			return nil, fmt.Errorf("%s: the RPM keyring (%s) cannot be read, so no bundle is accepted: %w", u.name, s.cfg.KeyringSetting, err)
		}
		cfg.RPMKeyring = kr
	}
	b, err := cabingest.Open(ctx, src, cfg)
	if err != nil {
		err = fmt.Errorf("import %s: %w", u.name, err)
		if errors.Is(err, cabingest.ErrInvalid) || errors.Is(err, cabingest.ErrLayout) {
			return nil, invalid(err)
		}
		return nil, err
	}
	defer b.Close()
	results, err = s.st.Import(ctx, p.Name, b.Updates, store.ImportOptions{Progress: progress})
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", u.name, err)
	}
	for _, r := range results {
		s.cfg.Logger.Info("imported", "rule", r.Rule.ID, "identity", r.Rule.Identity.Path(), "version", r.Update.Version.String(),
			"deployed", r.Deployed, "unchanged", r.Unchanged, "actor", p.Name)
		if !r.CancelledApproval.IsZero() {
			s.cfg.Logger.Warn("import cancelled a scheduled approval", "rule", r.Rule.ID, "identity", r.Rule.Identity.Path(),
				"version", r.CancelledVersion.String(), "scheduled", r.CancelledApproval, "replaced_by", r.Update.Version.String(), "actor", p.Name)
		}
	}
	return results, nil
}

// importResult is the result of an import, for Config.Imported.
func importResult(results []store.ImportResult, err error) string {
	switch {
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrTooLarge):
		return ImportRefused
	case err != nil:
		return ImportFailed
	}
	for _, r := range results {
		if !r.Unchanged {
			return ImportStored
		}
	}
	return ImportUnchanged
}
