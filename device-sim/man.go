package main

import (
	"bytes"
	"io"
	"os"

	"github.com/opendus/opendus/internal/manpage"
)

// manCmd writes device-sim(1), made from its --help and its firmware
// subcommand's: `device-sim man` (for packagers; not in the usage).
func manCmd(stdout io.Writer) error {
	var main, fw bytes.Buffer
	parseFlags([]string{"--help"}, &main)
	firmwareCmd([]string{"--help"}, io.Discard, &fw)
	p := &manpage.Page{
		Name: "device-sim", Section: "1", Date: manpage.Date(os.Getenv), Source: "OpenDUS", Manual: "OpenDUS Manual",
		Summary: "run simulated UC desk phones and conference units against an OpenDUS service",
		Synopsis: []string{
			"device-sim [flags]",
			"device-sim firmware -o DIR [--size BYTES] MODEL=VERSION...",
		},
		Sections: []manpage.Section{
			{Title: "DESCRIPTION", Text: main.String()},
			{Title: "FIRMWARE", Text: fw.String()},
			{Title: "SEE ALSO", Text: "devsvc(1)"},
		},
	}
	return p.Write(stdout)
}
