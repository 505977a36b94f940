package devsvc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/opendus/opendus/datadir"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/devsvc/store"
)

// ErrExists is returned by Init when the data directory is already set up
// and Force is not given.
var ErrExists = errors.New("data directory already initialised")

// InitOptions configures Init.
type InitOptions struct {
	Dir          string   // the data directory to create
	Domain       string   // required, e.g. contoso.com
	InternalName string   // default ucupdates-r2.<Domain>
	ExternalName string   // default ucupdates.<Domain>
	ExtraNames   []string // more names or IPs for the server certificate
	// Force replaces the settings file and the certificates of an existing
	// data directory. The catalog, the image files and the logs are kept.
	Force bool
	Now   func() time.Time // nil: time.Now
}

// Init creates a data directory: the settings file with every setting and
// its default, a private CA with a server certificate and an admin client
// certificate (keys 0600), and an empty store.
func Init(opts InitOptions) (datadir.Settings, error) {
	if opts.Domain == "" {
		return datadir.Settings{}, errors.New("init needs --domain, the SIP/DNS domain devices are in (e.g. contoso.com)")
	}
	if opts.Dir == "" {
		return datadir.Settings{}, errors.New("init needs --data DIR, the data directory to create")
	}
	s := datadir.DefaultSettings(opts.Domain)
	if opts.InternalName != "" {
		s.InternalName = opts.InternalName
	}
	if opts.ExternalName != "" {
		s.ExternalName = opts.ExternalName
	}
	conf := filepath.Join(opts.Dir, datadir.ConfigFile)
	certDir := filepath.Join(opts.Dir, datadir.CertsDir)
	if _, err := os.Stat(conf); err == nil {
		if !opts.Force {
			return datadir.Settings{}, fmt.Errorf("%s: %w: use --force to replace its settings and certificates (the catalog and files are kept)", opts.Dir, ErrExists)
		}
		if err := os.RemoveAll(certDir); err != nil {
			return datadir.Settings{}, err
		}
	} else if entries, err := os.ReadDir(opts.Dir); err == nil && len(entries) > 0 && !opts.Force {
		return datadir.Settings{}, fmt.Errorf("%s is not empty and has no %s: choose an empty or new directory, or use --force", opts.Dir, datadir.ConfigFile)
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return datadir.Settings{}, err
	}
	for _, d := range []string{datadir.RunDir, datadir.TmpDir} {
		if err := os.MkdirAll(filepath.Join(opts.Dir, d), 0o750); err != nil {
			return datadir.Settings{}, err
		}
	}
	if _, err := certs.Bootstrap(certDir, certs.Config{
		Domain: opts.Domain, InternalName: s.InternalName, ExternalName: s.ExternalName,
		ExtraNames: append([]string{"ucupdates-r2." + opts.Domain}, opts.ExtraNames...), Now: opts.Now,
	}); err != nil {
		return datadir.Settings{}, fmt.Errorf("certificates: %w", err)
	}
	if err := datadir.WriteFileAtomic(conf, s.Render(), 0o640); err != nil {
		return datadir.Settings{}, err
	}
	st, err := store.Open(opts.Dir, &store.Options{Now: opts.Now})
	if err != nil {
		return datadir.Settings{}, fmt.Errorf("store: %w", err)
	}
	return s, st.Close()
}
