package cli

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/opendus/opendus/internal/testtool"
)

// TestManPage renders devsvc(1) as man does: groff reads it without a
// warning, and every listed command has its section with its help.
func TestManPage(t *testing.T) {
	groff := testtool.Need(t, "groff")
	var page, errOut bytes.Buffer
	if code := Main(t.Context(), []string{"man"}, strings.NewReader(""), &page, &errOut); code != 0 {
		t.Fatalf("devsvc man = %d: %s", code, errOut.String())
	}
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-P-cbou")
	cmd.Stdin = &page
	var out bytes.Buffer
	errOut.Reset()
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil || errOut.Len() > 0 {
		t.Fatalf("groff: %v\n%s", err, errOut.String())
	}
	text := out.String()
	for _, c := range commands {
		if c.hidden {
			if strings.Contains(text, "\n   "+c.name+"\n") {
				t.Errorf("devsvc(1) documents the hidden command %s", c.name)
			}
			continue
		}
		if !strings.Contains(text, "\n   "+c.name+"\n       Usage: devsvc "+c.name) {
			t.Errorf("devsvc(1) has no section for %s with its usage", c.name)
		}
	}
	for _, want := range []string{"devsvc - run and manage OpenDUS", "Common flags (before or after the command):", "--data DIR", "NOTIFY_SOCKET", "/var/lib/opendus"} {
		if !strings.Contains(text, want) {
			t.Errorf("devsvc(1) lacks %q", want)
		}
	}
}

func TestUsageListsNoHiddenCommand(t *testing.T) {
	var out bytes.Buffer
	usage(&out)
	if strings.Contains(out.String(), "  man ") || !strings.Contains(out.String(), "  completion ") {
		t.Errorf("usage lists man, or not completion:\n%s", out.String())
	}
}
