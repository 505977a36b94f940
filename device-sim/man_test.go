package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/opendus/opendus/internal/testtool"
)

// TestManPage renders device-sim(1) as man does: no groff warnings, and
// the flags and the firmware subcommand are in it.
func TestManPage(t *testing.T) {
	groff := testtool.Need(t, "groff")
	var page, errOut bytes.Buffer
	if code := run(t.Context(), []string{"man"}, &page, &errOut); code != 0 {
		t.Fatalf("device-sim man = %d: %s", code, errOut.String())
	}
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-P-cbou")
	cmd.Stdin = &page
	var out bytes.Buffer
	errOut.Reset()
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil || errOut.Len() > 0 {
		t.Fatalf("groff: %v\n%s", err, errOut.String())
	}
	for _, want := range []string{"device-sim - run simulated UC desk phones", "-group GROUP", "Usage: device-sim firmware -o DIR", "-size BYTES"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("device-sim(1) lacks %q:\n%s", want, out.String())
		}
	}
}
