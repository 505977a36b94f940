// Package testtool finds the external programs that tests use as independent
// checks and real peers (cabextract, gcab, curl, slapd, nginx, rpmbuild).
//
// A test that needs a missing tool is skipped with a message naming the
// Debian package, except under CI (CI=true), where a missing tool is a
// failure: CI installs every tool through scripts/install-deps.sh.
package testtool

import (
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
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s is not installed and CI=true: %s", name, hint)
	}
	tb.Skipf("%s is not installed: %s", name, hint)
	return ""
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
