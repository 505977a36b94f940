package archtest

import (
	"bufio"
	"bytes"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/opendus/opendus"

// floors orders the packages of the module: a package may import only
// packages on its own floor or a lower one, so every arrow points down.
// A new package must be given a floor here (and in docs/ARCHITECTURE.md).
var floors = []struct {
	name string
	pkgs []string // paths relative to the module; "dir/..." is a subtree
}{
	{"vocabulary", []string{"firmware"}},
	{"libraries", []string{"signin", "passhash", "ntlm", "pieces", "updatemeta", "certs/...", "datadir", "deviceproto", "provisioning", "cabingest/...", "internal/testtool", "internal/clocktest", "internal/simclock", "internal/freespace", "internal/sdnotify", "internal/manpage", "internal/devsvctest", "internal/archtest"}},
	{"devices", []string{"simulator", "device-sim"}},
	{"service parts", []string{"devsvc/store", "devsvc/rollout", "devsvc/audit", "devsvc/devlogs", "devsvc/directory/...", "devsvc/deviceapi", "devsvc/peers", "devsvc/signer", "devsvc/metrics", "devsvc/adminapi/adminpb", "devsvc/replica"}},
	{"service layer", []string{"devsvc/service"}},
	{"transports", []string{"devsvc/adminapi", "devsvc/console"}},
	{"composition", []string{"devsvc"}},
	{"commands", []string{"devsvc/cli", "cmd/..."}},
	{"end-to-end tests", []string{"e2e"}},
}

// owners names, for each outside module our packages may import, the
// packages that may import it (tests excepted): one owner per dependency.
var owners = map[string][]string{
	"go.etcd.io/bbolt":                    {"devsvc/store"},
	"google.golang.org/grpc":              {"devsvc/adminapi", "devsvc/adminapi/adminpb"},
	"google.golang.org/protobuf":          {"devsvc/adminapi", "devsvc/adminapi/adminpb"},
	"github.com/go-ldap/ldap/v3":          {"devsvc/directory"},
	"github.com/miekg/dns":                {"simulator"},
	"github.com/Azure/go-ntlmssp":         {"simulator"},
	"github.com/sassoftware/go-rpmutils":  {"cabingest/rpm", "cabingest/rpm/rpmtest"},
	"github.com/ProtonMail/go-crypto":     {"cabingest/rpm", "cabingest/rpm/rpmtest"},
	"golang.org/x/term":                   {"devsvc/cli"},
	"golang.org/x/crypto":                 {"passhash"},
	"github.com/prometheus/client_golang": {"devsvc/metrics"},
	// Signed update metadata (TUF): the server signs, devices verify,
	// both through updatemeta. sigstore's signature package is go-tuf's
	// signer interface.
	"github.com/theupdateframework/go-tuf/v2": {"updatemeta"},
	"github.com/sigstore/sigstore":            {"updatemeta"},
	// Tests only: the browser tests drive Chromium through it.
	"github.com/chromedp": {"e2e"},
}

// Packages a device must never link: the server's store, API and
// directory libraries and the cabinet codecs.
var serverOnly = []string{
	"go.etcd.io/bbolt", "google.golang.org/grpc", "github.com/go-ldap/ldap",
	module + "/devsvc", module + "/cabingest",
}

type pkg struct {
	path    string // relative to the module
	imports []string
}

// list runs go list in the module for patterns with a template printing
// the import path, then space-separated paths.
func list(t *testing.T, field string, patterns ...string) []pkg {
	t.Helper()
	args := append([]string{"list", "-f", "{{.ImportPath}} {{join ." + field + " \" \"}}"}, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	var pkgs []pkg
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		pkgs = append(pkgs, pkg{path: rel(f[0]), imports: f[1:]})
	}
	return pkgs
}

// rel returns p relative to the module, or p when it is outside it.
func rel(p string) string {
	if p == module {
		return "."
	}
	if r, ok := strings.CutPrefix(p, module+"/"); ok {
		return r
	}
	return p
}

func ours(p string) bool { return p == module || strings.HasPrefix(p, module+"/") }

// match reports whether the relative path p is pattern or under a
// "dir/..." pattern.
func match(pattern, p string) bool {
	if dir, ok := strings.CutSuffix(pattern, "/..."); ok {
		return p == dir || strings.HasPrefix(p, dir+"/")
	}
	return p == pattern
}

// floorOf returns the index of p's floor, or -1.
func floorOf(p string) int {
	best, bestLen := -1, -1
	for i, f := range floors {
		for _, pat := range f.pkgs {
			// The most specific pattern wins (devsvc/adminapi/adminpb over
			// devsvc/adminapi).
			if match(pat, p) && len(pat) > bestLen {
				best, bestLen = i, len(pat)
			}
		}
	}
	return best
}

func TestArrowsPointDown(t *testing.T) {
	for _, p := range list(t, "Imports", "./...") {
		from := floorOf(p.path)
		if from < 0 {
			t.Errorf("%s has no floor: place it in internal/archtest's floors and in docs/ARCHITECTURE.md", p.path)
			continue
		}
		for _, imp := range p.imports {
			if !ours(imp) {
				continue
			}
			to := floorOf(rel(imp))
			if to > from {
				t.Errorf("%s (%s) imports %s (%s): an arrow pointing up", p.path, floors[from].name, rel(imp), floors[to].name)
			}
		}
	}
}

func TestVocabularyImportsNothingOfOurs(t *testing.T) {
	for _, p := range list(t, "Deps", "./firmware") {
		for _, d := range p.imports {
			if ours(d) {
				t.Errorf("firmware depends on %s: the vocabulary imports nothing of ours", rel(d))
			}
		}
	}
}

func TestNothingOutsideTheServiceImportsIt(t *testing.T) {
	for _, p := range list(t, "Imports", "./...") {
		if match("devsvc/...", p.path) || match("cmd/...", p.path) {
			continue
		}
		for _, imp := range p.imports {
			if match("devsvc/...", rel(imp)) {
				t.Errorf("%s imports %s: only devsvc/ and cmd/ may import the service", p.path, rel(imp))
			}
		}
	}
}

func TestOneOwnerPerDependency(t *testing.T) {
	for _, p := range list(t, "Imports", "./...") {
		for _, imp := range p.imports {
			if ours(imp) || !strings.Contains(strings.Split(imp, "/")[0], ".") {
				continue // ours, or the standard library
			}
			allowed, known := ownersOf(imp)
			if !known {
				t.Errorf("%s imports %s, a module with no owner: name its one owner in internal/archtest's owners", p.path, imp)
				continue
			}
			if !slices.Contains(allowed, p.path) {
				t.Errorf("%s imports %s, which only %v may import", p.path, imp, allowed)
			}
		}
	}
}

func ownersOf(imp string) ([]string, bool) {
	for mod, o := range owners {
		if imp == mod || strings.HasPrefix(imp, mod+"/") {
			return o, true
		}
	}
	return nil, false
}

// TestDevicesLinkNoServer checks what the device side links: a device
// speaks the protocol packages and never needs the server built.
func TestDevicesLinkNoServer(t *testing.T) {
	for _, p := range list(t, "Deps", "./simulator", "./device-sim") {
		for _, d := range p.imports {
			for _, bad := range serverOnly {
				if d == bad || strings.HasPrefix(d, bad+"/") {
					t.Errorf("%s links %s: devices must not link the server or the cabinet codecs", p.path, rel(d))
				}
			}
		}
	}
}

// TestLibrariesLinkNoService checks that the libraries below the service
// (bundles, provisioning, certificates, the vocabulary and the protocols)
// link nothing of the service's tree.
func TestLibrariesLinkNoService(t *testing.T) {
	for _, p := range list(t, "Deps", "./cabingest/...", "./provisioning", "./certs", "./firmware", "./signin", "./ntlm", "./deviceproto", "./datadir") {
		for _, d := range p.imports {
			if match("devsvc/...", rel(d)) {
				t.Errorf("%s links %s", p.path, rel(d))
			}
		}
	}
}

// TestServerLinksNoDNSLibrary checks that the DNS library is the
// simulator's alone.
func TestServerLinksNoDNSLibrary(t *testing.T) {
	for _, p := range list(t, "Deps", "./cmd/devsvc") {
		for _, d := range p.imports {
			if strings.HasPrefix(d, "github.com/miekg/dns") {
				t.Errorf("%s links %s", p.path, d)
			}
		}
	}
}

// TestServerEmbedsTimeZones checks that the server carries the time
// zone database (time/tzdata), so that sites' zones load on systems
// without one.
func TestServerEmbedsTimeZones(t *testing.T) {
	for _, p := range list(t, "Deps", "./cmd/devsvc") {
		if !slices.Contains(p.imports, "time/tzdata") {
			t.Errorf("%s does not link time/tzdata: import it in its main package", p.path)
		}
	}
}

// TestFloorsNameRealPackages keeps the floor list honest: every pattern
// names at least one package.
func TestFloorsNameRealPackages(t *testing.T) {
	pkgs := list(t, "Imports", "./...")
	for _, f := range floors {
		for _, pat := range f.pkgs {
			found := false
			for _, p := range pkgs {
				found = found || match(pat, p.path)
			}
			if !found {
				t.Errorf("floor %s names %s, which is no package", f.name, pat)
			}
		}
	}
	for mod, o := range owners {
		for _, p := range o {
			if floorOf(p) < 0 {
				t.Errorf("owner %s of %s is no package", p, path.Base(mod))
			}
		}
	}
}
