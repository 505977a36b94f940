package datadir

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"
)

// Names inside the data directory.
const (
	CertsDir = "certs"
	// KeysDir holds the signing keys of the update metadata and the root
	// chain (package updatemeta): root.key (may be moved offline),
	// targets.key, snapshot.key, timestamp.key (0600) and root/N.root.json.
	KeysDir = "keys"
	RunDir  = "run"
	TmpDir  = "tmp"
	RunFile = "serve.json"
	// ReplicaDir is, on a replica, where the files being fetched from the
	// primary wait until the change that needs them is applied.
	ReplicaDir = "replica"
	// ClockFile, in RunDir, is the simulated clock of a rehearsal
	// (devsvc serve --simulated-clock, package internal/simclock).
	ClockFile = "clock"
)

// Where the device side keeps its logs in the data directory.
var (
	AuditDir      = filepath.Join("Logs", "Server", "Audit", "imageUpdates")
	DeviceLogsDir = filepath.Join("Logs", "Client")
)

// RunInfo is what a running server writes to DIR/run/serve.json, so the
// command line finds the admin API even on ports chosen at start (":0").
type RunInfo struct {
	PID      int       `json:"pid"`
	Started  time.Time `json:"started"`
	Internal string    `json:"internal"`
	External string    `json:"external"`
	Admin    string    `json:"admin"`
	// Console is the web console's address; empty when it is off.
	Console string `json:"console,omitempty"`
	// Metrics is the metrics listener's address; empty when there is none.
	Metrics string `json:"metrics,omitempty"`
	// SimulatedClock says the server runs on the simulated clock in
	// DIR/run/clock (ClockFile), which a simulator drives: a rehearsal,
	// never production (devsvc serve --simulated-clock).
	SimulatedClock bool `json:"simulatedClock,omitempty"`
}

// ReadRunInfo reads DIR/run/serve.json.
func ReadRunInfo(dir string) (RunInfo, error) {
	var ri RunInfo
	data, err := os.ReadFile(filepath.Join(dir, RunDir, RunFile))
	if err != nil {
		return ri, err
	}
	err = json.Unmarshal(data, &ri)
	return ri, err
}

// WriteRunInfo writes DIR/run/serve.json atomically.
func WriteRunInfo(dir string, ri RunInfo) error {
	data, err := json.MarshalIndent(ri, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, RunDir), 0o750); err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(dir, RunDir, RunFile), append(data, '\n'), 0o640)
}

// WriteFileAtomic writes data to name through a temporary file, fsynced and
// renamed, so a crash leaves the old file or the new one.
func WriteFileAtomic(name string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return err
	}
	return syncDir(filepath.Dir(name))
}

// SyncDir makes the entries created, renamed or removed in dir durable.
func SyncDir(dir string) error { return syncDir(dir) }

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
