package manpage

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/opendus/opendus/internal/testtool"
)

var page = Page{
	Name: "devsvc", Section: "1", Date: "2026-12-06", Source: `OpenDUS "v1.2.0"`, Manual: "OpenDUS Manual",
	Summary:  "run and manage OpenDUS, the device update service",
	Synopsis: []string{"devsvc [--data DIR] <command> [arguments]"},
	Sections: []Section{
		{Title: "DESCRIPTION", Text: "\nUsage:\n  devsvc init --data ./dus --domain contoso.com\n\n.not a request\n'nor this\n\tC:\\Program Files\\OpenDUS `quoted' text-with-dashes \n\n"},
		{Title: "COMMANDS", Subsections: []Section{
			{Title: "devsvc init --data DIR", Text: "Flags:\n  --force\n      replace"},
		}},
	},
}

func TestWriteEscapes(t *testing.T) {
	var b bytes.Buffer
	if err := page.Write(&b); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{
		`.TH "DEVSVC" "1" "2026\-12\-06" "OpenDUS \(dqv1.2.0\(dq" "OpenDUS Manual"` + "\n",
		".SH NAME\ndevsvc \\- run and manage OpenDUS, the device update service\n",
		".SH SYNOPSIS\n.nf\ndevsvc [\\-\\-data DIR] <command> [arguments]\n.fi\n",
		".SH \"DESCRIPTION\"\n.nf\nUsage:\n  devsvc init \\-\\-data ./dus \\-\\-domain contoso.com\n.sp\n\\&.not a request\n\\&\\*(Aqnor this\n        C:\\eProgram Files\\eOpenDUS \\(gaquoted\\*(Aq text\\-with\\-dashes\n.fi\n",
		".SS \"devsvc init \\-\\-data DIR\"\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("page lacks %q:\n%s", want, got)
		}
	}
}

// TestGroffReadsIt formats the page with groff, as man does: no warnings,
// and the text comes out as written, ASCII dashes and quotes included.
func TestGroffReadsIt(t *testing.T) {
	groff := testtool.Need(t, "groff")
	var b bytes.Buffer
	if err := page.Write(&b); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-P-cbou", "-rLL=100n")
	cmd.Stdin = &b
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil || errOut.Len() > 0 {
		t.Fatalf("groff: %v\n%s", err, errOut.String())
	}
	for _, want := range []string{
		"devsvc - run and manage OpenDUS, the device update service",
		"       devsvc [--data DIR] <command> [arguments]",
		"         devsvc init --data ./dus --domain contoso.com\n\n       .not a request\n       'nor this\n               C:\\Program Files\\OpenDUS `quoted' text-with-dashes\n",
		"   devsvc init --data DIR\n       Flags:\n         --force\n             replace\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("groff output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestDate(t *testing.T) {
	for _, tt := range []struct{ env, want string }{
		{"1765000000", "2025-12-06"},
		{"0", "1970-01-01"},
	} {
		if got := Date(func(string) string { return tt.env }); got != tt.want {
			t.Errorf("Date with SOURCE_DATE_EPOCH=%s = %q, want %q", tt.env, got, tt.want)
		}
	}
}
