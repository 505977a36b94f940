package cli

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// flagsOf returns the flags a command parses, as Main registers them.
func flagsOf(c *command) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	(&env{}).register(fs)
	c.setup(fs)
	return fs
}

// globalFlags are the flags Main parses before the command.
func globalFlags() *flag.FlagSet {
	fs := flag.NewFlagSet("devsvc", flag.ContinueOnError)
	(&env{}).register(fs)
	fs.Bool("version", false, "")
	return fs
}

// flagMention finds a flag in a help text: a dash or two and a name,
// after a space, an opening bracket or quote, a bar or a slash
// (--cert/--key), before anything that is not part of a name.
var flagMention = regexp.MustCompile(`(?:^|[\s(\["'|/,])(-{1,2}[A-Za-z][A-Za-z0-9-]*)(?:$|[\s)\]"'|/,.:;=])`)

// flagContext finds the command a flag mentioned at word i of the words
// of a line is one of: the command named before it on the line
// ("approve --at", "rollout start --at", "devsvc init --data DIR --domain
// D"), skipping the other flags and their values; "" when no command is
// named there (a flag that starts its line, as in the Flags list), which
// is the command whose help it is.
//
// A word that is a subcommand of own, the command whose help it is
// ("remove" in devsvc replicas --help), names own's subcommand, not the
// command of that name.
func flagContext(words []string, i int, valueFlags map[string]bool, own string) string {
	var subs []string
	for _, c := range completionModel().Commands {
		if c.Name == own {
			subs = c.Subs
		}
	}
	isCommand := func(w string) bool {
		return !slices.Contains(subs, w) && slices.ContainsFunc(commands, func(c *command) bool { return c.name == w })
	}
	word := func(j int) string { return strings.Trim(words[j], `()[]"',.:;`) }
	for j := i - 1; j >= 0; j-- {
		w := word(j)
		switch {
		case isCommand(w):
			return w
		case strings.HasPrefix(w, "-"):
			continue
		case j > 0 && valueFlags[strings.TrimLeft(word(j-1), "-")] && strings.HasPrefix(word(j-1), "-"):
			j-- // the value of the flag before it
			continue
		case j > 0 && isCommand(word(j-1)):
			return word(j - 1) // a subcommand: rollout start --at
		}
		return ""
	}
	return ""
}

// checkMentions checks that every flag text mentions is a flag of the
// command it is mentioned with (own when none is named), spelt as
// flagSpelling spells it: one dash for a letter, two for a name. It
// returns what is wrong.
func checkMentions(what, text string, own *flag.FlagSet) (problems []string) {
	valueFlags := map[string]bool{}
	for _, c := range completionModel().Commands {
		for _, f := range c.Flags {
			valueFlags[f.Name] = valueFlags[f.Name] || f.Value
		}
	}
	globalFlags().VisitAll(func(f *flag.Flag) { valueFlags[f.Name] = f.Name != "json" && f.Name != "version" })
	for _, line := range strings.Split(text, "\n") {
		problems = append(problems, checkLine(what, line, own, valueFlags)...)
	}
	return problems
}

func checkLine(what, line string, own *flag.FlagSet, valueFlags map[string]bool) (problems []string) {
	words := strings.Fields(line)
	for i, w := range words {
		for _, m := range flagMention.FindAllStringSubmatch(" "+w+" ", -1) {
			spelt := m[1]
			name := strings.TrimLeft(spelt, "-")
			if name == "help" {
				continue
			}
			fs := own
			if ctx := flagContext(words, i, valueFlags, own.Name()); ctx != "" {
				for _, c := range commands {
					if c.name == ctx {
						fs = flagsOf(c)
					}
				}
			}
			if fs.Lookup(name) == nil && globalFlags().Lookup(name) == nil {
				problems = append(problems, fmt.Sprintf("%s mentions %s (in %q), which is no flag of %s", what, spelt, strings.Join(words[max(0, i-3):min(len(words), i+2)], " "), fs.Name()))
				continue
			}
			if spelt != flagSpelling(name) {
				problems = append(problems, fmt.Sprintf("%s spells %s as %s (in %q): write %s", what, name, spelt, strings.Join(words[max(0, i-3):min(len(words), i+2)], " "), flagSpelling(name)))
			}
		}
	}
	return problems
}

// TestHelpMatchesFlags renders every command's --help and checks that it
// shows every flag the command parses, spelt as it is given (-o, --data),
// and that every flag its usage line, help text and flag descriptions
// mention is one the command (or the command the text names) parses. The
// usage of devsvc --help is checked the same way. A flag added, renamed
// or removed without its help fails here.
func TestHelpMatchesFlags(t *testing.T) {
	for _, c := range commands {
		if c.name == "cab" {
			continue // devsvc cab --help is cabcli's usage: cabcli's TestHelpMatchesFlags checks it
		}
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := run(t, c.name, "--help")
			if code != 0 {
				t.Fatalf("devsvc %s --help: exit %d, %s", c.name, code, stderr)
			}
			fs := flagsOf(c)
			lines := strings.Split(stdout, "\n")
			fs.VisitAll(func(f *flag.Flag) {
				if slices.Contains(c.hiddenFlags, f.Name) {
					// Kept out of the usage on purpose; it must stay so.
					if slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "  "+flagSpelling(f.Name)) }) {
						t.Errorf("devsvc %s --help shows its hidden flag %s", c.name, flagSpelling(f.Name))
					}
					return
				}
				if slices.Contains(commonFlags, f.Name) {
					common := lines[len(lines)-2]
					if !strings.HasPrefix(common, "Common flags:") || !regexp.MustCompile(`[ /]`+regexp.QuoteMeta(flagSpelling(f.Name))+`[ ,/]`).MatchString(common) {
						t.Errorf("devsvc %s --help: the common flags line %q lacks %s", c.name, common, flagSpelling(f.Name))
					}
					return
				}
				shown := slices.ContainsFunc(lines, func(l string) bool {
					return l == "  "+flagSpelling(f.Name) || strings.HasPrefix(l, "  "+flagSpelling(f.Name)+" ")
				})
				if !shown {
					t.Errorf("devsvc %s --help does not show its flag %s:\n%s", c.name, flagSpelling(f.Name), stdout)
				}
			})
			for _, p := range checkMentions("devsvc "+c.name+" --help", stdout, fs) {
				t.Error(p)
			}
		})
	}
	t.Run("devsvc", func(t *testing.T) {
		var b bytes.Buffer
		usage(&b)
		for _, p := range checkMentions("devsvc --help", b.String(), globalFlags()) {
			t.Error(p)
		}
	})
}

// TestHelpMentionsAreChecked: the check of TestHelpMatchesFlags finds a
// flag spelt with the wrong dashes and a flag that does not exist, and
// reads a flag named after another command as that command's.
func TestHelpMentionsAreChecked(t *testing.T) {
	var certs *command
	for _, c := range commands {
		if c.name == "certs" {
			certs = c
		}
	}
	fs := flagsOf(certs)
	for _, tt := range []struct {
		text string
		bad  bool
	}{
		{"devsvc certs export -o FILE", false},
		{"devsvc certs export --o FILE", true},
		{"devsvc certs list -offline", true},
		{"devsvc certs list --no-such-flag", true},
		{"(approve --at, rollout start --at)", false},
		{"see devsvc init --data DIR --domain contoso.com", false},
		{"certs has no --at", true},
	} {
		if got := checkMentions("test", tt.text, fs); (len(got) > 0) != tt.bad {
			t.Errorf("checkMentions(%q) = %q, want problems: %v", tt.text, got, tt.bad)
		}
	}
}
