package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/opendus/opendus/simulator"
)

// progressLine shows a run's progress: one line rewritten in place on a
// terminal, a line every few seconds elsewhere.
type progressLine struct {
	w     io.Writer
	start time.Time
	tty   bool
	width int
}

func (p *progressLine) show(pr simulator.Progress) {
	el := pr.Now.Sub(p.start)
	line := fmt.Sprintf("%s (+%dd%02dh%02dm)  checked in %d/%d  downloading %d  waiting for idle %d  rebooting %d  updated %d  failed %d  refused %d",
		pr.Now.Format("Mon 15:04"), int(el.Hours())/24, int(el.Hours())%24, int(el.Minutes())%60,
		pr.CheckedIn, pr.Devices, pr.Downloading, pr.WaitingIdle, pr.Rebooting, pr.Updated, pr.Failed, pr.Refused)
	if !p.tty {
		fmt.Fprintln(p.w, line)
		return
	}
	pad := ""
	if n := p.width - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	p.width = len(line)
	fmt.Fprint(p.w, "\r"+line+pad)
}

// end finishes the line on a terminal.
func (p *progressLine) end() {
	if p.tty && p.width > 0 {
		fmt.Fprintln(p.w)
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
