package cli

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"

	"github.com/opendus/opendus/devsvc"
	"github.com/opendus/opendus/internal/manpage"
)

// manCmd prints devsvc(1), made from the usage and every command's --help;
// the package and make install run it (hidden: it is for packagers).
var manCmd = &command{
	name: "man", args: "", hidden: true,
	summary: "print the devsvc(1) manual page (roff), made from the help texts",
	setup: noFlags(func(ctx context.Context, e *env, args []string) error {
		if len(args) > 0 {
			return usagef("unexpected argument %q", args[0])
		}
		return manPage(os.Getenv).Write(e.stdout)
	}),
}

// manEnvironment and manFiles are the sections of devsvc(1) no help text
// holds.
const manEnvironment = `OPENDUS_DATA
    the data directory when --data is not given (else ./data)
OPENDUS_ADMIN_PASSWORD
    the directory password for --user, instead of a prompt
NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID
    set by systemd for the opendus unit (Type=notify, WatchdogSec=):
    devsvc serve tells systemd when it is ready and when it stops, and
    pings the watchdog at half its interval`

const manFiles = `/var/lib/opendus
    the packaged data directory (owned by the opendus user): devsvc.conf
    (the settings, every one listed with its default), certs/ (the CA, the
    server and admin certificates), the store, run/serve.json (where a
    running server listens)
/lib/systemd/system/opendus.service
    the systemd unit: devsvc serve --data /var/lib/opendus as the opendus
    user; change it with systemctl edit opendus
/usr/share/doc/opendus/
    README.md and docs/ (operations.md: install, upgrade, logs, backup)`

// manPage builds devsvc(1).
func manPage(getenv func(string) string) *manpage.Page {
	var head bytes.Buffer
	usage(&head)
	p := &manpage.Page{
		Name: "devsvc", Section: "1", Date: manpage.Date(getenv), Source: "OpenDUS " + devsvc.Version(),
		Manual:   "OpenDUS Manual",
		Summary:  "run and manage OpenDUS, the device update service",
		Synopsis: []string{"devsvc [--data DIR] <command> [arguments]"},
	}
	commandsSection := manpage.Section{Title: "COMMANDS"}
	for _, c := range commands {
		if c.hidden {
			continue
		}
		p.Synopsis = append(p.Synopsis, "devsvc "+c.name+" "+c.args)
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		(&env{}).register(fs)
		c.setup(fs)
		var b bytes.Buffer
		c.usage(&b, fs)
		commandsSection.Subsections = append(commandsSection.Subsections, manpage.Section{Title: c.name, Text: b.String()})
	}
	p.Sections = []manpage.Section{
		{Title: "DESCRIPTION", Text: head.String()},
		commandsSection,
		{Title: "ENVIRONMENT", Text: manEnvironment},
		{Title: "FILES", Text: manFiles},
		{Title: "EXIT STATUS", Text: "0 on success, 1 on failure, 2 on misuse (a usage message follows)."},
		{Title: "SEE ALSO", Text: "device-sim(1), systemd.service(5), journalctl(1)"},
	}
	return p
}
