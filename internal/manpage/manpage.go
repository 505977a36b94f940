// Package manpage writes manual pages (man(7) roff) from the text a
// command already has: its --help. Sections hold plain text that is set as
// written (no filling, no hyphenation), so a page reads like the help it
// comes from; the text is escaped, so no line of help can become a roff
// request, and dashes stay the ASCII minus a flag needs to be pasted.
//
// The packages' man pages are made with it at build time (`devsvc man`,
// `device-sim man`, see packaging/), so they cannot drift from --help.
package manpage

import (
	"bufio"
	"fmt"
	"io"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// Page is one manual page.
type Page struct {
	Name     string // the command: "devsvc"
	Section  string // "1" for commands
	Date     string // "2026-12-06"; see Date
	Source   string // what it documents: "OpenDUS 1.2.0"
	Manual   string // the manual it belongs to: "OpenDUS Manual"
	Summary  string // the NAME line after the dash: "run and manage OpenDUS"
	Synopsis []string
	Sections []Section
}

// Section is a section (.SH) or subsection (.SS) of a page.
type Section struct {
	Title       string
	Text        string // set as written
	Subsections []Section
}

// Write writes the page as roff for man(7).
func (p *Page) Write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, ".TH %s %s %s %s %s\n", arg(strings.ToUpper(p.Name)), arg(p.Section), arg(p.Date), arg(p.Source), arg(p.Manual))
	// Plain ASCII quotes and no hyphenation or justification: help text.
	bw.WriteString(".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n.nh\n.ad l\n")
	fmt.Fprintf(bw, ".SH NAME\n%s \\- %s\n", escape(p.Name), escape(p.Summary))
	if len(p.Synopsis) > 0 {
		bw.WriteString(".SH SYNOPSIS\n")
		literal(bw, strings.Join(p.Synopsis, "\n"))
	}
	for _, s := range p.Sections {
		section(bw, ".SH", s)
	}
	return bw.Flush()
}

func section(w *bufio.Writer, macro string, s Section) {
	fmt.Fprintf(w, "%s %s\n", macro, arg(s.Title))
	if strings.TrimSpace(s.Text) != "" {
		literal(w, s.Text)
	}
	for _, sub := range s.Subsections {
		section(w, ".SS", sub)
	}
}

// literal writes text in no-fill mode, line by line; blank lines at either
// end are dropped, the ones between kept.
func literal(w *bufio.Writer, text string) {
	text = strings.Trim(text, "\n")
	w.WriteString(".nf\n")
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimRight(line, " \t")
		if line == "" {
			w.WriteString(".sp\n")
			continue
		}
		w.WriteString(escape(strings.ReplaceAll(line, "\t", "        ")) + "\n")
	}
	w.WriteString(".fi\n")
}

// escape makes a line of text safe as roff text: backslashes and dashes
// printed as themselves, quotes ASCII, and a leading dot or quote not read
// as a request.
func escape(s string) string {
	s = strings.NewReplacer(`\`, `\e`, "-", `\-`, "'", `\*(Aq`, "`", `\(ga`).Replace(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, `\*(Aq`) {
		s = `\&` + s
	}
	return s
}

// arg quotes a macro argument.
func arg(s string) string {
	return `"` + strings.ReplaceAll(escape(s), `"`, `\(dq`) + `"`
}

// Date returns the date for a page, for reproducible builds: from
// $SOURCE_DATE_EPOCH (read through getenv) when set, else the time of the
// commit the binary was built from, else "".
func Date(getenv func(string) string) string {
	if e := getenv("SOURCE_DATE_EPOCH"); e != "" {
		if sec, err := strconv.ParseInt(e, 10, 64); err == nil {
			return time.Unix(sec, 0).UTC().Format(time.DateOnly)
		}
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.time" {
				if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
					return t.UTC().Format(time.DateOnly)
				}
			}
		}
	}
	return ""
}
