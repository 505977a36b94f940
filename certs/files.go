package certs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// writeFile writes data to dir/name with mode perm, durably and atomically:
// it writes and fsyncs a temporary file in dir, then renames it over name
// (replace) or hard-links it to name, failing with ErrExists if name exists
// (!replace), and finally fsyncs dir.
func writeFile(dir, name string, data []byte, perm os.FileMode, replace bool) (err error) {
	final := filepath.Join(dir, name)
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", final, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", final, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", final, err)
	}
	if replace {
		if err := os.Rename(tmp, final); err != nil {
			return err
		}
	} else {
		err := os.Link(tmp, final)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w", final, ErrExists)
		}
		if err != nil {
			// No hard links on this file system: check, then rename.
			if _, statErr := os.Lstat(final); statErr == nil {
				return fmt.Errorf("%s: %w", final, ErrExists)
			}
			if err := os.Rename(tmp, final); err != nil {
				return err
			}
		} else {
			os.Remove(tmp)
		}
	}
	return syncDir(dir)
}

// syncDir fsyncs a directory so that a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
