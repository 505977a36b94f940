package devsvc

import (
	"runtime/debug"
	"strings"
)

// version, when set at link time (-ldflags "-X
// github.com/opendus/opendus/devsvc.version=1.2.3", as a package build
// does), is the version; otherwise it comes from the build info.
var version string

// Build describes the running binary.
type Build struct {
	// Version is the module version: a release ("v1.2.0"), or the
	// pseudo-version go build makes from the commit ("v0.0.0-20261206
	// 021500-47586c8abcde", "+dirty" with uncommitted changes); "dev" when
	// the build recorded neither (go run, go test).
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"` // the VCS commit
	Time      string `json:"time,omitempty"`     // the commit's time
	Modified  bool   `json:"modified,omitempty"` // built with uncommitted changes
	GoVersion string `json:"goVersion"`
}

// BuildInfo returns what the binary knows of its own build.
func BuildInfo() Build {
	b := Build{Version: version}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if b.Version == "" {
			b.Version = "dev"
		}
		return b
	}
	b.GoVersion = bi.GoVersion
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.Version = bi.Main.Version
	}
	if b.Version == "" && b.Revision != "" {
		b.Version = "dev-" + b.Revision[:min(12, len(b.Revision))]
		if b.Modified {
			b.Version += "+dirty"
		}
	}
	if b.Version == "" {
		b.Version = "dev"
	}
	return b
}

// Version returns the binary's version (see Build.Version).
func Version() string { return BuildInfo().Version }

// String is the one-line form devsvc version prints.
func (b Build) String() string {
	var extra []string
	if b.Revision != "" {
		r := "revision " + b.Revision[:min(12, len(b.Revision))]
		if b.Modified {
			r += " (modified)"
		}
		extra = append(extra, r)
	}
	if b.Time != "" {
		extra = append(extra, b.Time)
	}
	if b.GoVersion != "" {
		extra = append(extra, b.GoVersion)
	}
	if len(extra) == 0 {
		return b.Version
	}
	return b.Version + " (" + strings.Join(extra, ", ") + ")"
}
