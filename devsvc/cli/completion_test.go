package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/internal/testtool"
)

// completionScript writes devsvc completion SHELL to a file and returns its
// path.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := Main(t.Context(), []string{"completion", shell}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("devsvc completion %s = %d: %s", shell, code, errOut.String())
	}
	path := filepath.Join(t.TempDir(), "devsvc."+shell)
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// completionDir makes a directory to complete in: two directories and
// two files.
func completionDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"dus", "drafts"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"dump.cab", "UCUpdates.cab"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// completionCases are command lines (the last word is the one completed)
// and what each shell must offer for them.
var completionCases = []struct {
	line string
	want []string
}{
	{"devsvc ap", []string{"approve"}},
	{"devsvc ce", []string{"certs"}},
	{"devsvc --data ./dus ap", []string{"approve"}},
	{"devsvc --json --data ./dus re", []string{"reject", "remove", "replicas", "restore", "restore-backup"}},
	{"devsvc certs ", []string{"export", "issue", "list", "renew", "revoke"}},
	{"devsvc certs export --format ", []string{"der", "pem"}},
	{"devsvc certs issue helpdesk --role ", []string{"admin", "readonly"}},
	{"devsvc testdevices ", []string{"add", "list", "remove"}},
	{"devsvc testdevices add --m", []string{"--mac"}},
	{"devsvc serve --log-level ", []string{"debug", "error", "info", "warn"}},
	{"devsvc init --do", []string{"--domain"}},
	{"devsvc --data d", []string{"drafts", "dus"}}, // directories only
	{"devsvc import d", []string{"drafts", "dump.cab", "dus"}},
	{"devsvc backup --data dus d", []string{"drafts", "dump.cab", "dus"}},
	{"devsvc completion ", []string{"bash", "fish", "zsh"}},
	{"devsvc help tes", []string{"testdevices"}},
	{"devsvc rules --j", []string{"--json"}},
	{"devsvc --vers", []string{"--version"}},
}

func TestBashCompletion(t *testing.T) {
	bash := testtool.Need(t, "bash")
	script := completionScript(t, "bash")
	if out, err := exec.Command(bash, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	dir := completionDir(t)
	for _, tt := range completionCases {
		t.Run(tt.line, func(t *testing.T) {
			// As bash calls it: the words, the index of the current one.
			words := strings.Fields(tt.line)
			if strings.HasSuffix(tt.line, " ") {
				words = append(words, "")
			}
			var quoted []string
			for _, w := range words {
				quoted = append(quoted, "'"+w+"'")
			}
			prog := `source "$1" || exit 1
COMP_WORDS=(` + strings.Join(quoted, " ") + `)
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE="$2"; COMP_POINT=${#COMP_LINE}
_devsvc devsvc "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"`
			cmd := exec.Command(bash, "--norc", "--noprofile", "-c", prog, "bash", script, tt.line)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("bash: %v\n%s", err, out)
			}
			got := strings.Fields(string(out))
			slices.Sort(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("completing %q (-want +got):\n%s", tt.line, diff)
			}
		})
	}
}

func TestFishCompletion(t *testing.T) {
	fish := testtool.Need(t, "fish")
	script := completionScript(t, "fish")
	if out, err := exec.Command(fish, "--no-execute", script).CombinedOutput(); err != nil {
		t.Fatalf("fish --no-execute: %v\n%s", err, out)
	}
	dir := completionDir(t)
	for _, tt := range completionCases {
		t.Run(tt.line, func(t *testing.T) {
			cmd := exec.Command(fish, "--no-config", "-c", `source $argv[1]; complete -C $argv[2]`, script, tt.line)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("fish: %v\n%s", err, out)
			}
			var got []string
			for line := range strings.Lines(string(out)) {
				// "approve\tdescription"; directories end in "/".
				w, _, _ := strings.Cut(strings.TrimSpace(line), "\t")
				got = append(got, strings.TrimSuffix(w, "/"))
			}
			slices.Sort(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("completing %q (-want +got):\n%s", tt.line, diff)
			}
		})
	}
}

// TestZshCompletion checks the zsh script's syntax, and that loaded into a
// zsh with completion on it registers itself for devsvc.
func TestZshCompletion(t *testing.T) {
	zsh := testtool.Need(t, "zsh")
	script := completionScript(t, "zsh")
	if out, err := exec.Command(zsh, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
	home := t.TempDir()
	cmd := exec.Command(zsh, "-f", "-c", `autoload -U compinit && compinit -u -d "$HOME/.zcompdump" && source "$1" && print -r -- "$_comps[devsvc]"`, "zsh", script)
	cmd.Env = append(os.Environ(), "HOME="+home, "ZDOTDIR="+home)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "_devsvc" {
		t.Errorf("zsh, after sourcing the script: completion for devsvc = %q (%v), want _devsvc", out, err)
	}
}

// TestCompletionReadsTheUsage checks the subcommands and argument kinds
// read from each command's usage line: a usage line changed without
// completion in mind shows up here.
func TestCompletionReadsTheUsage(t *testing.T) {
	want := map[string]compCommand{
		"accounts":       {Subs: []string{"add", "passwd", "list", "disable", "enable", "remove"}},
		"admins":         {Subs: []string{"add", "passwd", "list", "disable", "enable", "remove"}},
		"rollout":        {Subs: []string{"start", "show", "pause", "resume", "stop"}},
		"sites":          {Subs: []string{"add", "update", "list", "remove"}},
		"bundle":         {Subs: []string{"pack", "check", "describe"}, Args: "file"},
		"cab":            {Subs: []string{"list", "extract", "test", "pack"}, Args: "file"},
		"certs":          {Subs: []string{"list", "renew", "export", "issue", "revoke"}},
		"replicas":       {Subs: []string{"add", "list", "remove"}},
		"keys":           {Subs: []string{"list", "init", "rotate", "export"}},
		"completion":     {Subs: []string{"bash", "zsh", "fish"}},
		"testdevices":    {Subs: []string{"add", "list", "remove"}},
		"import":         {Args: "file"},
		"backup":         {Args: "file"},
		"restore-backup": {Args: "file"},
	}
	m := completionModel()
	for _, c := range m.Commands {
		if c.Name == "help" { // devsvc help COMMAND
			if !slices.Equal(c.Subs, m.Names()[:len(m.Names())-1]) {
				t.Errorf("help completes %v, want the commands %v", c.Subs, m.Names())
			}
			continue
		}
		got := compCommand{Subs: c.Subs, Args: c.Args}
		if diff := cmp.Diff(want[c.Name], got, cmp.AllowUnexported(compCommand{})); diff != "" {
			t.Errorf("%s: subcommands and arguments (-want +got):\n%s", c.Name, diff)
		}
		if c.Name == "man" {
			t.Errorf("the hidden man command is completed")
		}
	}
	// A flag that takes a value in one command and not in another would
	// make the scripts skip a word they should not.
	kinds := map[string]bool{}
	for _, c := range m.Commands {
		for _, f := range append(c.Flags, m.Global...) {
			if v, ok := kinds[f.Name]; ok && v != f.Value {
				t.Errorf("flag --%s takes a value in one command and not in another", f.Name)
			}
			kinds[f.Name] = f.Value
		}
	}
}

func TestCompletionRefusesUnknownShells(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main(t.Context(), []string{"completion", "tcsh"}, strings.NewReader(""), &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "bash, zsh or fish") {
		t.Errorf("devsvc completion tcsh = %d, %q; want 2 and the shells to choose from", code, errOut.String())
	}
}
