// Package testtool finds what tests need from outside the repository: the
// external programs they use as independent checks and real peers
// (cabextract, gcab, curl, slapd, nginx, rpmbuild), with Need, and the
// cabinet conformance corpus, with Corpus.
//
// A test that needs a missing tool or the missing corpus is skipped with a
// message saying how to get it (the Debian package, the environment
// variable), except under CI (CI=true), where it is a failure: CI installs
// every tool through scripts/install-deps.sh and runs with the corpus.
package testtool

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// packages maps a program to the Debian package that provides it.
var packages = map[string]string{
	"cabextract": "cabextract",
	"gcab":       "gcab",
	"curl":       "curl",
	"slapd":      "slapd",
	"slapadd":    "slapd",
	"ldapadd":    "ldap-utils",
	"ldapsearch": "ldap-utils",
	"nginx":      "nginx-light",
	"rpmbuild":   "rpm",
	"protoc":     "protobuf-compiler",
	"gpg":        "gnupg",
	"rpmsign":    "rpm",
	"openssl":    "openssl",
	"argon2":     "argon2",
	"chromium":   "chromium",

	// Packaging: the unit, the Debian package, man pages, completion.
	"systemd-analyze": "systemd",
	"lintian":         "lintian",
	"dpkg":            "dpkg",
	"groff":           "groff-base",
	"bash":            "bash",
	"zsh":             "zsh",
	"fish":            "fish",

	// Metrics: promtool checks them and the rules; a real Prometheus
	// server scrapes the service.
	"promtool":   "prometheus",
	"prometheus": "prometheus",
}

// Need returns the path of program name, looking in PATH and in /usr/sbin
// and /sbin (where slapd and nginx live). When it is missing the test is
// skipped, or failed under CI=true.
func Need(tb testing.TB, name string) string {
	tb.Helper()
	if p, err := Find(name); err == nil {
		return p
	}
	hint := "install it"
	if pkg := packages[name]; pkg != "" {
		hint = "install the Debian package " + pkg + " (scripts/install-deps.sh does)"
	}
	missing(tb, name+" is not installed", hint)
	return ""
}

// CorpusEnv is the environment variable that names the directory of the
// cabinet conformance corpus (shared/testdata/cab beside the checkout: real
// cabinets from libmspack and libarchive, kept outside the repository).
// `make test` defaults it to ../shared/testdata/cab; .ci/run sets it.
const CorpusEnv = "OPENDUS_CAB_CORPUS"

// Corpus returns the directory of the cabinet conformance corpus, named by
// $OPENDUS_CAB_CORPUS (CorpusEnv). When the variable is unset or does not
// name a directory the test is skipped, or failed under CI=true. Every test
// that needs the corpus calls it; there is no default path, so that `go
// test` runs the same wherever it is started.
func Corpus(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv(CorpusEnv)
	hint := "point " + CorpusEnv + " at the cabinet corpus (make test sets it to ../shared/testdata/cab)"
	if dir == "" {
		missing(tb, CorpusEnv+" is not set", hint)
		return ""
	}
	fi, err := os.Stat(dir)
	if err == nil && fi.IsDir() {
		return dir
	}
	if err == nil {
		err = errors.New("not a directory")
	}
	missing(tb, fmt.Sprintf("cabinet corpus %s=%s: %v", CorpusEnv, dir, err), hint)
	return ""
}

// missing skips the test because of what, or fails it under CI=true.
func missing(tb testing.TB, what, hint string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s and CI=true: %s", what, hint)
	}
	tb.Skipf("%s: %s", what, hint)
}

// Find looks for program name in PATH, then in /usr/sbin and /sbin.
func Find(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		q := dir + "/" + name
		if fi, statErr := os.Stat(q); statErr == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return q, nil
		}
	}
	return "", err
}
