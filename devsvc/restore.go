package devsvc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
)

// RestoreOptions say which backup RestoreBackup restores, and where.
type RestoreOptions struct {
	// File is a backup archive, as devsvc backup writes it.
	File string
	// Dir is the data directory to restore into. It must hold settings
	// and certificates (devsvc init, or the old ones copied in: a backup
	// holds neither, since the admin API never hands out the CA's key),
	// and its server must be stopped.
	Dir string
	// Force replaces a database that holds something (rules, updates,
	// devices, test devices or accounts), or that does not open. One that
	// holds nothing, as devsvc init leaves it, is replaced without. What
	// is replaced is kept in Dir/backups/restore-<time>/ either way.
	Force bool
	Now   func() time.Time // nil: time.Now
}

// RestoreResult says what RestoreBackup restored.
type RestoreResult struct {
	// Backup is the backup's manifest; Stats counts the restored store.
	Backup store.BackupInfo
	Stats  store.Stats
	// Kept is the directory holding the database and files the restore
	// replaced; empty when there were none.
	Kept string
	// AdminCertRecorded says the data directory's admin certificate was
	// not in the backup's registry of admin certificates and is recorded
	// now: the data directory's PKI is not the one the backup was taken
	// under (a new devsvc init, say).
	AdminCertRecorded bool
}

// RestoreBackup restores a backup into a data directory: it checks the
// whole archive into a directory beside the store's first
// (store.RestoreBackup), then moves the database and files it replaces
// to Dir/backups/restore-<time>/ and the restored ones into place, opens
// the store (which upgrades an older schema) and records the data
// directory's admin certificate in its registry if it is not there. The
// settings and certificates of Dir are kept. An interrupted restore is
// run again (with Force: what it had moved is in backups/).
func RestoreBackup(ctx context.Context, o RestoreOptions) (RestoreResult, error) {
	var res RestoreResult
	if o.Now == nil {
		o.Now = time.Now
	}
	if _, err := datadir.LoadSettings(o.Dir); err != nil {
		return res, fmt.Errorf("%s is no data directory (%v): run devsvc init --data %s --domain DOMAIN first, or copy the old data directory's %s and %s/ in to keep the CA devices trust", o.Dir, err, o.Dir, datadir.ConfigFile, datadir.CertsDir)
	}
	cs, err := certs.Open(filepath.Join(o.Dir, datadir.CertsDir), certs.Config{})
	if err != nil {
		return res, fmt.Errorf("%s has no certificates (%v): run devsvc init --data %s --domain DOMAIN first, or copy the old data directory's %s/ in to keep the CA devices trust", o.Dir, err, o.Dir, datadir.CertsDir)
	}
	dbPath := filepath.Join(o.Dir, store.DBFile)
	if fileExists(dbPath) {
		st, inUse, err := store.Inspect(o.Dir)
		switch {
		case inUse:
			pid := ""
			if ri, err := datadir.ReadRunInfo(o.Dir); err == nil {
				pid = fmt.Sprintf(" (pid %d)", ri.PID)
			}
			return res, fmt.Errorf("a devsvc serve runs on %s%s: stop it first (systemctl stop opendus); nothing changed", o.Dir, pid)
		case err != nil && !o.Force:
			return res, fmt.Errorf("%w; to replace the database anyway, add --force (it is kept in %s)", err, filepath.Join(o.Dir, BackupsDir))
		case err == nil && !o.Force && st.Rules+st.Updates+st.Devices+st.TestDevices+st.Accounts > 0:
			return res, fmt.Errorf("%s holds a store already (rules %d, updates %d, devices %d, test devices %d, accounts %d; history at %d): restoring replaces it; add --force to do so (it is kept in %s)",
				o.Dir, st.Rules, st.Updates, st.Devices, st.TestDevices, st.Accounts, st.Seq, filepath.Join(o.Dir, BackupsDir, "restore-TIME"))
		}
	}

	f, err := os.Open(o.File)
	if err != nil {
		return res, err
	}
	defer f.Close()
	stage, err := os.MkdirTemp(o.Dir, ".restore-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(stage)
	if res.Backup, err = store.RestoreBackup(ctx, f, stage); err != nil {
		return res, fmt.Errorf("%s: %w; nothing in %s changed", o.File, err, o.Dir)
	}

	if res.Kept, err = keepForRestore(o); err != nil {
		return res, err
	}
	// The files first, then the database replaced in one rename, so that
	// the directory always has a database.
	if err := os.Rename(filepath.Join(stage, store.FilesDir), filepath.Join(o.Dir, store.FilesDir)); err != nil {
		return res, err
	}
	if err := os.Rename(filepath.Join(stage, store.DBFile), dbPath); err != nil {
		return res, err
	}
	if err := datadir.SyncDir(o.Dir); err != nil {
		return res, err
	}

	st, err := store.Open(o.Dir, nil)
	if err != nil {
		return res, fmt.Errorf("the restored store does not open: %w", err)
	}
	defer st.Close()
	if adm := cs.AdminCertificate(); adm != nil {
		if res.AdminCertRecorded, err = service.RecordAdminCert(ctx, st, "devsvc restore-backup", adm, "the data directory's "+datadir.CertsDir+"/"+certs.AdminCertFile); err != nil {
			return res, err
		}
	}
	if res.Stats, err = st.Stats(ctx); err != nil {
		return res, err
	}
	return res, st.Close()
}

// keepForRestore moves the data directory's file store, and links its
// database, into a new backups/restore-<time>/ directory, and returns it
// ("" when there is neither).
func keepForRestore(o RestoreOptions) (string, error) {
	db := filepath.Join(o.Dir, store.DBFile)
	files := filepath.Join(o.Dir, store.FilesDir)
	if !fileExists(db) && !fileExists(files) {
		return "", nil
	}
	base := filepath.Join(o.Dir, BackupsDir, "restore-"+o.Now().UTC().Format("20060102T150405Z"))
	kept := base
	for i := 2; fileExists(kept); i++ {
		kept = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.MkdirAll(kept, 0o700); err != nil {
		return "", err
	}
	if fileExists(db) {
		// A link: the database stays in place until the restored one
		// replaces it.
		if err := os.Link(db, filepath.Join(kept, store.DBFile)); err != nil {
			return "", fmt.Errorf("keeping the database: %w", err)
		}
	}
	if err := os.Rename(files, filepath.Join(kept, store.FilesDir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("keeping the files: %w", err)
	}
	if err := datadir.SyncDir(kept); err != nil {
		return "", err
	}
	return kept, datadir.SyncDir(o.Dir)
}
