package devsvc

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/devsvc/metrics"
)

// reloadable are the settings a reload applies to the running service
// (ServeOptions.Reload, SIGHUP). Every other setting takes a restart: the
// listeners' addresses, the names in the certificates and the domain, the
// directory's connection, the store's options (inventory_flush,
// deploy_roundtable_on_import). TestReloadableSettings keeps this list,
// the settings and docs/operations.md in step.
var reloadable = []string{
	"internal_url", "external_url", "moved_internal_url", "moved_external_url",
	"check_interval", "check_jitter",
	"max_import_bytes", "rpm_keyring",
	"signin_max_failures", "signin_max_address_failures", "signin_lockout", "trusted_proxies",
	"log_cleanup_interval", "log_flush_interval", "max_log_file_size", "max_log_storage", "min_free_space",
	"valid_log_file_types", "valid_log_file_extensions", "max_log_upload_per_address", "log_upload_timeout",
	"request_body_timeout", "download_stall_timeout",
	"min_password_length", "replica_max_lag",
	"metadata_timestamp_expiry", "metadata_snapshot_expiry", "metadata_targets_expiry", "metadata_root_expiry",
}

// ReloadResult says what a reload of the settings did.
type ReloadResult struct {
	// Err is why the settings file was not applied (it does not parse, a
	// value is refused): the service runs on with the settings it had.
	Err error
	// Applied are the settings that changed and now apply.
	Applied []string
	// NeedRestart are the settings whose value in the file differs from
	// the running one and that take effect only after a restart.
	NeedRestart []string
}

// reloader reloads the settings file into the running service and keeps
// the state devsvc status, the log and the metrics tell.
type reloader struct {
	dir       string
	override  func(*datadir.Settings) // the flags' addresses, over the file's
	apply     func(datadir.Settings) error
	log       *slog.Logger
	now       func() time.Time
	startWith datadir.Settings // at start: what the restart-only settings are

	mu      sync.Mutex
	running datadir.Settings // what is in force
	last    time.Time        // the last successful load
	failed  error            // the last reload's error; nil after a good one
	failAt  time.Time
	restart []string // restart-only settings the file changes
}

func newReloader(dir string, s datadir.Settings, override func(*datadir.Settings), log *slog.Logger) *reloader {
	return &reloader{dir: dir, override: override, log: log, now: time.Now, startWith: s, running: s, last: time.Now()}
}

// reload reads the settings file and applies what can change without a
// restart, all of it or, on an error, nothing. It logs what it did.
func (r *reloader) reload() ReloadResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := r.load()
	if res.Err != nil {
		r.failed, r.failAt = res.Err, r.now()
		r.log.Error("settings not reloaded: the service runs on with the settings it had; fix the file and reload again",
			"file", datadir.ConfigFile, "err", res.Err)
		return res
	}
	r.failed, r.last = nil, r.now()
	r.restart = res.NeedRestart
	if len(res.Applied) == 0 {
		r.log.Info("settings reloaded: nothing to change", "file", datadir.ConfigFile)
	} else {
		r.log.Info("settings reloaded", "file", datadir.ConfigFile, "applied", strings.Join(res.Applied, " "))
	}
	if len(res.NeedRestart) > 0 {
		r.log.Warn("settings changed that take effect only after a restart (systemctl restart opendus)",
			"file", datadir.ConfigFile, "settings", strings.Join(res.NeedRestart, " "))
	}
	return res
}

// load does reload's work; r.mu is held.
func (r *reloader) load() ReloadResult {
	file, err := datadir.LoadSettings(r.dir)
	if err != nil {
		return ReloadResult{Err: err}
	}
	for _, w := range file.Warnings {
		r.log.Warn("settings file", "warning", w)
	}
	r.override(&file)
	next, err := datadir.Merge(r.running, file, reloadable)
	if err != nil {
		return ReloadResult{Err: err}
	}
	next.Warnings = file.Warnings
	res := ReloadResult{Applied: datadir.Changed(r.running, next)}
	for _, k := range datadir.Changed(r.startWith, file) {
		if !slices.Contains(reloadable, k) {
			res.NeedRestart = append(res.NeedRestart, k)
		}
	}
	if err := r.apply(next); err != nil {
		return ReloadResult{Err: err}
	}
	r.running = next
	return res
}

// settings returns the settings in force: those read at start, with the
// reloadable ones as the last reload left them.
func (r *reloader) settings() datadir.Settings {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running
}

// warnings are what devsvc status says of the reloads.
func (r *reloader) warnings() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.running.Warnings)
	if r.failed != nil {
		out = append(out, fmt.Sprintf("%s could not be reloaded at %s, so the service runs on with the settings it had: %v; fix it and reload again (systemctl reload opendus)",
			datadir.ConfigFile, r.failAt.UTC().Format(time.RFC3339), r.failed))
	}
	if len(r.restart) > 0 {
		out = append(out, fmt.Sprintf("%s changes settings that take effect only after a restart: %s (systemctl restart opendus)",
			datadir.ConfigFile, strings.Join(r.restart, ", ")))
	}
	return out
}

// metricsState is the reloads' state for the metrics.
func (r *reloader) metricsState() metrics.Reload {
	r.mu.Lock()
	defer r.mu.Unlock()
	return metrics.Reload{OK: r.failed == nil, Last: r.last, RestartNeeded: len(r.restart) > 0}
}
