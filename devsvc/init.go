package devsvc

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/updatemeta"
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
	// Force re-initialises an existing data directory and loses nothing:
	// the CA, the certificates, the settings, the catalog, the files and
	// the logs are kept. Names that differ from the settings' are set in
	// the settings file (every other line stays as it was), and when the
	// server certificate does not cover a name it is reissued under the
	// same CA for its old names and the new ones, so devices keep trusting
	// it. What is replaced is copied to a backup directory first. The
	// server must be stopped.
	Force bool
	// NewCA, with Force, makes a new CA and new certificates: every
	// device that cached the old CA stops connecting until it trusts the
	// new one, and every admin certificate of the old CA stops working
	// (the registry marks them revoked). The old certs directory is
	// moved to the backup directory.
	NewCA bool
	Now   func() time.Time // nil: time.Now
	// ReplicaOf, with Credentials (the file devsvc replicas add wrote on
	// the primary), makes the data directory a replica's: it follows the
	// primary at that admin address (host:port; the credentials' other
	// addresses are tried after it). Domain and the names come from the
	// credentials. See initReplica.
	ReplicaOf   string
	Credentials []byte
}

// InitResult says what Init did.
type InitResult struct {
	Settings datadir.Settings
	// Reinit is true when the data directory existed (Force).
	Reinit bool
	// Backup is the directory holding what Init replaced; empty when it
	// replaced nothing.
	Backup string
	// Changes says, one line each, what a re-initialisation changed; none
	// means it changed nothing.
	Changes []string
}

// BackupsDir is where Init keeps what it replaces, in the data directory:
// one directory per run, init-<UTC time>.
const BackupsDir = "backups"

// Init creates a data directory: the settings file with every setting and
// its default, a private CA with a server certificate and an admin client
// certificate (keys 0600), recorded in the registry of admin
// certificates, and an empty store. With Force it re-initialises an
// existing one without losing anything (see InitOptions.Force).
func Init(opts InitOptions) (InitResult, error) {
	if opts.ReplicaOf != "" || opts.Credentials != nil {
		return initReplica(opts)
	}
	if opts.Domain == "" {
		return InitResult{}, errors.New("init needs --domain, the SIP/DNS domain devices are in (e.g. contoso.com)")
	}
	if opts.Dir == "" {
		return InitResult{}, errors.New("init needs --data DIR, the data directory to create")
	}
	if opts.NewCA && !opts.Force {
		return InitResult{}, errors.New("--new-ca replaces the CA of an existing data directory: add --force to say so")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// Check the names before anything is written.
	if _, err := certs.ServerNames(certs.Config{Domain: opts.Domain, InternalName: opts.InternalName,
		ExternalName: opts.ExternalName, ExtraNames: opts.ExtraNames}); err != nil {
		return InitResult{}, err
	}
	conf := filepath.Join(opts.Dir, datadir.ConfigFile)
	certDir := filepath.Join(opts.Dir, datadir.CertsDir)
	_, confErr := os.Stat(conf)
	exists := confErr == nil || fileExists(certDir)
	switch {
	case confErr == nil && !opts.Force:
		return InitResult{}, fmt.Errorf("%s: %w. To re-initialise it without losing anything (the CA, certificates, settings, catalog and files are kept; names you give are updated), add --force; to replace the CA as well, --force --new-ca", opts.Dir, ErrExists)
	case !exists && !opts.Force:
		if entries, err := os.ReadDir(opts.Dir); err == nil && len(entries) > 0 {
			return InitResult{}, fmt.Errorf("%s is not empty and has no %s: choose an empty or new directory, or use --force", opts.Dir, datadir.ConfigFile)
		}
	}
	for _, d := range []string{"", datadir.RunDir, datadir.TmpDir} {
		if err := os.MkdirAll(filepath.Join(opts.Dir, d), 0o750); err != nil {
			return InitResult{}, err
		}
	}
	// The store first: its lock proves no server runs on the directory
	// while it changes, and it stays open until the end.
	st, err := store.Open(opts.Dir, &store.Options{Now: opts.Now})
	if err != nil {
		return InitResult{}, fmt.Errorf("%w; stop devsvc serve on this data directory before running init", err)
	}
	in := &initRun{opts: opts, st: st, res: InitResult{Reinit: exists}}
	err = in.run(conf, certDir)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil && in.res.Backup != "" {
		err = fmt.Errorf("%w (what was replaced so far is in %s)", err, in.res.Backup)
	}
	return in.res, err
}

// initRun is one run of Init.
type initRun struct {
	opts InitOptions
	st   *store.Store
	res  InitResult
}

func (in *initRun) run(conf, certDir string) error {
	s, write, err := in.settings(conf)
	if err != nil {
		return err
	}
	in.res.Settings = s
	if err := in.certificates(certDir, s); err != nil {
		return err
	}
	if err := in.keys(s); err != nil {
		return err
	}
	return write()
}

// keys makes the update metadata's signing keys when the data directory
// has none (a new one, or one made before signed metadata); existing keys
// are kept.
func (in *initRun) keys(s datadir.Settings) error {
	made, err := updatemeta.Ensure(filepath.Join(in.opts.Dir, datadir.KeysDir), in.opts.Now(), s.MetadataRootExpiry)
	if err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	if made && in.res.Reinit {
		in.change("signing keys: new keys for the update metadata in %s (there were none)", datadir.KeysDir)
	}
	return nil
}

// settings returns the settings of a new data directory, or those of an
// existing one with the names that changed, and the function that writes
// them: the whole file for a new one, only the names that changed in an
// existing one, keeping everything else.
func (in *initRun) settings(conf string) (datadir.Settings, func() error, error) {
	opts := in.opts
	data, err := os.ReadFile(conf)
	if errors.Is(err, fs.ErrNotExist) {
		s := datadir.DefaultSettings(opts.Domain)
		if opts.InternalName != "" {
			s.InternalName = opts.InternalName
		}
		if opts.ExternalName != "" {
			s.ExternalName = opts.ExternalName
		}
		if in.res.Reinit {
			in.change("settings: wrote %s with the defaults (there was none)", datadir.ConfigFile)
		}
		return s, func() error { return datadir.WriteFileAtomic(conf, s.Render(), 0o640) }, nil
	}
	if err != nil {
		return datadir.Settings{}, nil, err
	}
	old, err := datadir.ParseSettings(conf, data)
	if err != nil {
		return datadir.Settings{}, nil, fmt.Errorf("%w: fix it, or move it away to start from the defaults (init keeps an existing settings file)", err)
	}
	// A name given is set; a name not given follows the domain if it was
	// the old domain's default, else it is kept.
	name := func(given, was, oldDefault, newDefault string) string {
		switch {
		case given != "":
			return given
		case was == oldDefault:
			return newDefault
		}
		return was
	}
	s := old
	s.Domain = opts.Domain
	s.InternalName = name(opts.InternalName, old.InternalName, "ucupdates-r2."+old.Domain, "ucupdates-r2."+opts.Domain)
	s.ExternalName = name(opts.ExternalName, old.ExternalName, "ucupdates."+old.Domain, "ucupdates."+opts.Domain)
	kv := map[string]string{}
	for _, k := range []struct{ key, was, now string }{
		{"domain", old.Domain, s.Domain}, {"internal_name", old.InternalName, s.InternalName}, {"external_name", old.ExternalName, s.ExternalName},
	} {
		if k.was != k.now {
			kv[k.key] = k.now
			in.change("settings: %s = %s (was %s)", k.key, k.now, k.was)
		}
	}
	if s.Domain != old.Domain {
		// Set all three: their defaults follow the domain.
		kv["internal_name"], kv["external_name"] = s.InternalName, s.ExternalName
	}
	if len(kv) == 0 {
		return s, func() error { return nil }, nil
	}
	out, err := datadir.SetKeys(conf, data, kv)
	if err != nil {
		return datadir.Settings{}, nil, err
	}
	return s, func() error {
		if err := in.backupCopy(datadir.ConfigFile); err != nil {
			return err
		}
		return datadir.WriteFileAtomic(conf, out, 0o640)
	}, nil
}

// certificates keeps the certificates of an existing data directory
// (reissuing the server certificate when it lacks a name) or makes new
// ones, and records the admin certificate.
func (in *initRun) certificates(certDir string, s datadir.Settings) error {
	ctx := context.Background()
	cfg := certs.Config{Domain: in.opts.Domain, InternalName: s.InternalName, ExternalName: s.ExternalName,
		ExtraNames: append([]string{"ucupdates-r2." + in.opts.Domain}, in.opts.ExtraNames...), Now: in.opts.Now}
	cs, err := certs.Open(certDir, certs.Config{Now: in.opts.Now})
	switch {
	case err == nil && !in.opts.NewCA:
		if err := in.coverNames(cs, cfg); err != nil {
			return err
		}
	case err == nil || errors.Is(err, certs.ErrNotFound) || in.opts.NewCA:
		if fileExists(certDir) {
			if err := in.backupMove(datadir.CertsDir); err != nil {
				return err
			}
		}
		switch {
		case in.opts.NewCA:
			in.change("certificates: a new CA, server and admin certificate (--new-ca); devices that trust the old CA must be given the new one (devsvc certs export) or they stop connecting")
		case in.res.Reinit:
			in.change("certificates: a new CA, server and admin certificate (there was no CA in %s)", datadir.CertsDir)
		}
		if cs, err = certs.Bootstrap(certDir, cfg); err != nil {
			return err
		}
		// Every admin certificate recorded so far is of a CA that is
		// gone: the server no longer accepts them.
		if err := in.revokeOldCA(ctx); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: fix the certificates, or replace them all with init --force --new-ca (devices must then be given the new CA)", err)
	}
	return recordDirAdminCert(ctx, in.st, cs, "devsvc init", nil)
}

// coverNames reissues the server certificate, under the same CA, when it
// does not cover every name cfg asks for: with its old names and the
// missing ones, so that no device that reaches it by an old name loses it.
func (in *initRun) coverNames(cs *certs.Store, cfg certs.Config) error {
	cert := cs.ServerCertificate()
	var missing []string
	for _, n := range append([]string{cfg.InternalName, cfg.ExternalName}, cfg.ExtraNames...) {
		if n != "" && !covers(cert, n) {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	for _, f := range []string{certs.ServerCertFile, certs.ServerKeyFile} {
		if err := in.backupCopy(filepath.Join(datadir.CertsDir, f)); err != nil {
			return err
		}
	}
	info, err := cs.RenewServer(certs.RenewOptions{AddNames: missing})
	if err != nil {
		return fmt.Errorf("reissue the server certificate for %s: %w", strings.Join(missing, ", "), err)
	}
	in.change("certificates: the server certificate is reissued under the same CA for %s too (serial %s); the CA and the other names are kept", strings.Join(missing, ", "), info.Serial)
	return nil
}

// covers reports whether cert is valid for the DNS name or IP address n.
func covers(cert *x509.Certificate, n string) bool {
	n = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(n), "."))
	if strings.HasPrefix(n, "*.") {
		return slices.Contains(cert.DNSNames, n)
	}
	if ip, err := netip.ParseAddr(n); err == nil {
		n = ip.Unmap().String()
	}
	return cert.VerifyHostname(n) == nil
}

// revokeOldCA marks revoked every admin certificate recorded, before a new
// CA is made: the server no longer accepts them.
func (in *initRun) revokeOldCA(ctx context.Context) error {
	list, err := in.st.AdminCerts(ctx)
	if err != nil {
		return err
	}
	n := 0
	for _, c := range list {
		if !c.Revoked.IsZero() {
			continue
		}
		if _, err := in.st.RevokeAdminCert(ctx, "devsvc init", c.Serial, "its CA was replaced (init --new-ca)"); err != nil {
			return err
		}
		n++
	}
	if n > 0 {
		in.change("admin certificates: the %d of the old CA are marked revoked; issue new ones with devsvc certs issue", n)
	}
	return nil
}

func (in *initRun) change(format string, a ...any) {
	in.res.Changes = append(in.res.Changes, fmt.Sprintf(format, a...))
}

// backupDir returns this run's backup directory, made on first use.
func (in *initRun) backupDir() (string, error) {
	if in.res.Backup != "" {
		return in.res.Backup, nil
	}
	base := filepath.Join(in.opts.Dir, BackupsDir, "init-"+in.opts.Now().UTC().Format("20060102T150405Z"))
	dir := base
	for i := 2; fileExists(dir); i++ {
		dir = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	in.res.Backup = dir
	return dir, nil
}

// backupCopy copies the file rel (relative to the data directory) into
// the backup directory, keeping its mode.
func (in *initRun) backupCopy(rel string) error {
	src := filepath.Join(in.opts.Dir, rel)
	fi, err := os.Stat(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	dir, err := in.backupDir()
	if err != nil {
		return err
	}
	dst := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	return datadir.WriteFileAtomic(dst, data, fi.Mode().Perm())
}

// backupMove moves rel (relative to the data directory) into the backup
// directory.
func (in *initRun) backupMove(rel string) error {
	dir, err := in.backupDir()
	if err != nil {
		return err
	}
	dst := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	return os.Rename(filepath.Join(in.opts.Dir, rel), dst)
}

// fileExists reports whether name exists.
func fileExists(name string) bool {
	_, err := os.Lstat(name)
	return err == nil
}
