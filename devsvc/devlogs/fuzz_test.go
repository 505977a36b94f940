package devlogs

import (
	"path"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkName fails unless name is a safe stored name.
func checkName(t *testing.T, raw, name string) {
	t.Helper()
	switch {
	case name == "" || len(name) > MaxNameBytes:
		t.Fatalf("sanitizeName(%q) = %q: length %d", raw, name, len(name))
	case !utf8.ValidString(name):
		t.Fatalf("sanitizeName(%q) = %q: invalid UTF-8", raw, name)
	case strings.HasPrefix(name, ".") || strings.HasSuffix(name, "."):
		t.Fatalf("sanitizeName(%q) = %q: leading or trailing dot", raw, name)
	case strings.ContainsAny(name, "/\\\x00") || name == "..":
		t.Fatalf("sanitizeName(%q) = %q: separator or NUL", raw, name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == ' ' || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError {
			t.Fatalf("sanitizeName(%q) = %q: holds %U", raw, name, r)
		}
	}
	if again, err := sanitizeName(name); err != nil || again != name {
		t.Fatalf("sanitizeName(%q) = %q, but sanitizeName(%q) = %q, %v", raw, name, name, again, err)
	}
}

// FuzzParse feeds arbitrary query strings to the upload request parser
// (and so to the name sanitiser): it must refuse them or return a known
// type, a safe name with an accepted extension, and a MAC of 12 hex digits.
func FuzzParse(f *testing.F) {
	h, err := NewHandler(Config{Dir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	defer h.Close()
	for _, s := range []string{
		"type=CELog&name=phone.clg&mac=00-04-F2-12-34-56",
		"type=Watson&name=..%2F..%2Fetc%2Fpasswd.dmp",
		"type=celog&name=..%5C..%5Cx.txt",
		"type=Config&name=%2Fabs.xml",
		"type=CELog&name=a%00b.txt",
		"type=CELog&name=.hidden.txt",
		"type=CELog&name=" + strings.Repeat("%D0%B6", 200) + ".txt",
		"type=CELog&name=a%E2%80%AEb.txt",
		"type=CELog&name=%FF.txt&mac=0004.f212.3456",
		"type=CELog&name=a.txt&name=b.txt",
		"type=CELog&name=a%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if len(raw) > 1<<14 {
			return
		}
		lim := h.limits()
		up, err := h.parse(lim, raw)
		if err != nil {
			return
		}
		if lim.types[strings.ToLower(up.typ)] != up.typ {
			t.Fatalf("parse(%q): type %q not configured", raw, up.typ)
		}
		checkName(t, raw, up.name)
		if !lim.exts[strings.ToLower(path.Ext(up.name))] {
			t.Fatalf("parse(%q): name %q has an extension not accepted", raw, up.name)
		}
		if up.mac != "" {
			if len(up.mac) != 12 || strings.Trim(up.mac, "0123456789abcdef") != "" {
				t.Fatalf("parse(%q): mac %q", raw, up.mac)
			}
		}
		if n := len(remoteName("[::1]:1")) + 1 + len(tsLayout) + 1 + 4 + len(up.name); n > 255 {
			t.Fatalf("parse(%q): stored name could be %d bytes", raw, n)
		}
	})
}

// FuzzSanitizeName checks every name the sanitiser accepts.
func FuzzSanitizeName(f *testing.F) {
	for _, s := range []string{"phone.clg", "../../etc/passwd", `..\..\x`, "/abs", "a\x00b.txt", ".hidden.txt",
		strings.Repeat("x", 300) + ".txt", "журнал.txt", "..", "a" + strings.Repeat(".", 200) + ".txt", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		name, err := sanitizeName(raw)
		if err != nil {
			return
		}
		checkName(t, raw, name)
	})
}
