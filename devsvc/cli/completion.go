package cli

import (
	"context"
	"flag"
	"regexp"
	"slices"
	"strings"
	"text/template"
)

var completionCmd = &command{
	name: "completion", args: "bash|zsh|fish",
	summary: "print a shell completion script: commands, subcommands, flags, files",
	help: `The script is made from the commands and flags themselves, so it matches
this devsvc. --data completes directories, file arguments files, and flags
with a fixed set of values those values (serve --log-level,
certs export --format, certs issue --role).
The Debian package and make install put the scripts where the shells find
them; by hand:

  bash  source <(devsvc completion bash)              # in ~/.bashrc
  zsh   devsvc completion zsh > "${fpath[1]}/_devsvc"  # then restart zsh
  fish  devsvc completion fish > ~/.config/fish/completions/devsvc.fish`,
	setup: noFlags(func(ctx context.Context, e *env, args []string) error {
		if len(args) != 1 {
			return usagef("say bash, zsh or fish")
		}
		t, ok := completionTemplates[args[0]]
		if !ok {
			return usagef("unknown shell %q: say bash, zsh or fish", args[0])
		}
		return t.Execute(e.stdout, completionModel())
	}),
}

// compFlag is a flag as completion sees it.
type compFlag struct {
	Name   string   // without dashes
	Usage  string   // its help, without the backquotes
	Value  bool     // takes a value (not a bool flag)
	Kind   string   // what its value is: "dir", "file" or "" (anything)
	Values []string // a fixed set of values, from its help
}

// Spelling is the flag as completion offers it: -o, --data.
func (f compFlag) Spelling() string { return flagSpelling(f.Name) }

// compCommand is a command as completion sees it.
type compCommand struct {
	Name, Summary string
	Subs          []string   // subcommands (certs list, testdevices add, ...)
	Flags         []compFlag // its own flags
	Args          string     // what its other arguments are: "file", "dir" or ""
}

// compModel is what the completion scripts are made from.
type compModel struct {
	Global   []compFlag // the common flags, valid before and after the command (--version is before only)
	Commands []compCommand
}

// ValueFlags are the names of every flag that takes a value: the scripts
// skip their values when they look for the command and subcommand.
func (m compModel) ValueFlags() []string {
	var names []string
	for _, f := range m.Global {
		if f.Value {
			names = append(names, f.Name)
		}
	}
	for _, c := range m.Commands {
		for _, f := range c.Flags {
			if f.Value {
				names = append(names, f.Name)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Names are the command names.
func (m compModel) Names() []string {
	var names []string
	for _, c := range m.Commands {
		names = append(names, c.Name)
	}
	return names
}

// commonFlags are the flags env.register adds to every command.
var commonFlags = []string{"data", "server", "cert", "key", "ca", "json", "timeout", "user"}

// completionModel reads the command table: each command's flags from its
// setup, its subcommands and arguments from its usage line.
func completionModel() compModel {
	var m compModel
	global := flag.NewFlagSet("devsvc", flag.ContinueOnError)
	(&env{}).register(global)
	global.VisitAll(func(f *flag.Flag) {
		cf := newCompFlag(f)
		switch f.Name {
		case "data":
			cf.Kind = "dir"
		case "cert", "key", "ca":
			cf.Kind = "file"
		}
		m.Global = append(m.Global, cf)
	})
	for _, c := range commands {
		if c.hidden {
			continue
		}
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		c.setup(fs)
		cc := compCommand{Name: c.name, Summary: c.summary}
		cc.Subs, cc.Args = parseArgs(c.args)
		fs.VisitAll(func(f *flag.Flag) {
			if !slices.Contains(commonFlags, f.Name) && !slices.Contains(c.hiddenFlags, f.Name) {
				cc.Flags = append(cc.Flags, newCompFlag(f))
			}
		})
		m.Commands = append(m.Commands, cc)
	}
	help := compCommand{Name: "help", Summary: "a command's help (devsvc help COMMAND)"}
	for _, c := range m.Commands {
		help.Subs = append(help.Subs, c.Name)
	}
	m.Commands = append(m.Commands, help)
	return m
}

// valueList finds a fixed set of values in a flag's help: "`LEVEL`: debug,
// info, warn or error", "`ROLE`, admin or readonly".
var valueList = regexp.MustCompile("`[A-Z]+`[:,] ([a-z0-9-]+(?:, [a-z0-9-]+)* or [a-z0-9-]+)")

func newCompFlag(f *flag.Flag) compFlag {
	name, usage := flag.UnquoteUsage(f)
	cf := compFlag{Name: f.Name, Usage: usage}
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
		cf.Value = true
	}
	switch name {
	case "DIR":
		cf.Kind = "dir"
	case "FILE", "PATH", "PREFIX":
		cf.Kind = "file"
	}
	if m := valueList.FindStringSubmatch(f.Usage); m != nil {
		cf.Values = strings.FieldsFunc(strings.Replace(m[1], " or ", ",", 1), func(r rune) bool { return r == ',' || r == ' ' })
	}
	return cf
}

// parseArgs reads a usage line ("add (--mac MAC | --serial SERIAL) | list
// | remove MAC|SERIAL"): the subcommands are the lower-case words that
// start its top-level alternatives; the other arguments are files when it
// names a FILE or PATH (or ends in " ..."), directories when it names a
// DIR, outside the flags' values.
func parseArgs(args string) (subs []string, kind string) {
	depth, start := 0, 0
	var alts []string
	for i, r := range args {
		switch r {
		case '(', '[':
			depth++
		case ')', ']':
			depth--
		case '|':
			// A choice of values is no choice of subcommands: FILE|DIR,
			// --role admin|readonly (no spaces around the bar).
			before := strings.Fields(args[start:i])
			value := i > 0 && args[i-1] != ' ' && len(before) > 0 &&
				(strings.ToUpper(before[len(before)-1]) == before[len(before)-1] ||
					len(before) > 1 && strings.HasPrefix(before[len(before)-2], "-"))
			if depth == 0 && !value {
				alts = append(alts, args[start:i])
				start = i + 1
			}
		}
	}
	alts = append(alts, args[start:])
	isWord := regexp.MustCompile(`^[a-z][a-z-]*$`).MatchString
	for _, a := range alts {
		if w := strings.Fields(a); len(w) > 0 && isWord(w[0]) {
			subs = append(subs, w[0])
		}
	}
	if len(subs) != len(alts) {
		subs = nil // not a choice of subcommands
	}
	if m := regexp.MustCompile(`([A-Za-z]+) \.\.\.`).FindStringSubmatch(args); m != nil && isWord(m[1]) {
		kind = "file" // cab list|extract|test|pack ...: cabinets (but not "update NAME ...")
	}
	words := strings.FieldsFunc(args, func(r rune) bool { return strings.ContainsRune(" |()[]", r) })
	for i := 0; i < len(words); i++ {
		switch w := words[i]; {
		case strings.HasPrefix(w, "-"):
			i++ // its value
		case w == "FILE" || w == "PATH":
			kind = "file"
		case w == "DIR" && kind == "":
			kind = "dir"
		}
	}
	return subs, kind
}

var completionTemplates = map[string]*template.Template{
	"bash": template.Must(template.New("bash").Funcs(completionFuncs).Parse(bashCompletion)),
	"zsh":  template.Must(template.New("zsh").Funcs(completionFuncs).Parse(zshCompletion)),
	"fish": template.Must(template.New("fish").Funcs(completionFuncs).Parse(fishCompletion)),
}

var completionFuncs = template.FuncMap{
	"join": strings.Join,
	"spellings": func(fs ...[]compFlag) string {
		var out []string
		for _, l := range fs {
			for _, f := range l {
				out = append(out, f.Spelling())
			}
		}
		return strings.Join(append(out, "--help"), " ")
	},
	// zsh escapes text for single quotes, zshopt also for the [...]
	// of an _arguments option.
	"zsh": func(s string) string { return strings.ReplaceAll(s, "'", `'\''`) },
	"zshopt": func(s string) string {
		return strings.NewReplacer("'", `'\''`, `\`, `\\`, "[", `\[`, "]", `\]`).Replace(s)
	},
	// fish quotes a string in single quotes.
	"fish": func(s string) string {
		return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'"
	},
	"first": func(s string) string { // the first sentence of a help text
		if i := strings.Index(s, "; "); i > 0 {
			s = s[:i]
		}
		return s
	},
}

const bashCompletion = `# bash completion for devsvc; generated by "devsvc completion bash".
# Load it with: source <(devsvc completion bash)

_devsvc_value_flags=" {{join .ValueFlags " "}} "

_devsvc() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev= cmd= sub= i=1 w f
    [ "$COMP_CWORD" -gt 0 ] && prev=${COMP_WORDS[COMP_CWORD-1]}
    # --flag=value: bash splits at the "=".
    if [ "$cur" = "=" ]; then
        cur=
    elif [ "$prev" = "=" ] && [ "$COMP_CWORD" -gt 1 ]; then
        prev=${COMP_WORDS[COMP_CWORD-2]}
    fi
    # The command and subcommand: the first words that are no flag or
    # flag value.
    while [ "$i" -lt "$COMP_CWORD" ]; do
        w=${COMP_WORDS[i]}
        case $w in
        -*)
            f=${w#-}; f=${f#-}
            case $_devsvc_value_flags in
            *" $f "*)
                [ "${COMP_WORDS[i+1]}" = "=" ] && i=$((i+1))
                i=$((i+1)) ;;
            esac ;;
        =) ;;
        *)
            if [ -z "$cmd" ]; then cmd=$w; elif [ -z "$sub" ]; then sub=$w; fi ;;
        esac
        i=$((i+1))
    done

    COMPREPLY=()
    case $prev in
    -*)
        f=${prev#-}; f=${f#-}
        case $_devsvc_value_flags in
        *" $f "*)
            case $cmd:$f in
{{- range $c := .Commands}}{{range .Flags}}{{if .Value}}
            {{$c.Name}}:{{.Name}}){{if .Values}} COMPREPLY=($(compgen -W "{{join .Values " "}}" -- "$cur")) ;;{{else if eq .Kind "dir"}} _devsvc_dirs ;;{{else if eq .Kind "file"}} _devsvc_files ;;{{else}} ;;{{end}}
{{- end}}{{end}}{{end}}
{{- range .Global}}{{if .Value}}
            *:{{.Name}}){{if eq .Kind "dir"}} _devsvc_dirs ;;{{else if eq .Kind "file"}} _devsvc_files ;;{{else}} ;;{{end}}
{{- end}}{{end}}
            esac
            return 0 ;;
        esac ;;
    esac

    if [[ $cur == -* ]]; then
        case $cmd in
        "") COMPREPLY=($(compgen -W "{{spellings .Global}} --version" -- "$cur")) ;;
{{- range .Commands}}
        {{.Name}}) COMPREPLY=($(compgen -W "{{spellings .Flags $.Global}}" -- "$cur")) ;;
{{- end}}
        esac
        return 0
    fi
    case $cmd in
    "") COMPREPLY=($(compgen -W "{{join .Names " "}}" -- "$cur")) ;;
{{- range .Commands}}{{if or .Subs .Args}}
    {{.Name}})
        {{- if .Subs}}
        if [ -z "$sub" ]; then
            COMPREPLY=($(compgen -W "{{join .Subs " "}}" -- "$cur"))
        {{- if .Args}}
        else
            {{if eq .Args "dir"}}_devsvc_dirs{{else}}_devsvc_files{{end}}
        {{- end}}
        fi ;;
        {{- else}} {{if eq .Args "dir"}}_devsvc_dirs{{else}}_devsvc_files{{end}} ;;{{end}}
{{- end}}{{end}}
    esac
    return 0
}

_devsvc_files() {
    compopt -o filenames 2>/dev/null
    COMPREPLY=($(compgen -f -- "$cur"))
}

_devsvc_dirs() {
    compopt -o filenames 2>/dev/null
    COMPREPLY=($(compgen -d -- "$cur"))
}

complete -F _devsvc devsvc
`

const zshCompletion = `#compdef devsvc
# zsh completion for devsvc; generated by "devsvc completion zsh".
# Put it in a directory of $fpath as _devsvc, or: source <(devsvc completion zsh)

_devsvc() {
    local curcontext="$curcontext" state line ret=1
    typeset -A opt_args
    local -a common
    common=(
{{- range .Global}}
        '{{.Spelling}}[{{zshopt (first .Usage)}}]'{{if .Value}}{{if eq .Kind "dir"}}':DIR:_files -/'{{else if eq .Kind "file"}}':FILE:_files'{{else}}':{{.Name}}: '{{end}}{{end}}
{{- end}}
        '(- *)--help[show help]'
    )
    _arguments -C $common \
        '(- *)--version[print the version]' \
        '1:command:->command' \
        '*::argument:->argument' && ret=0
    case $state in
    command)
        local -a commands
        commands=(
{{- range .Commands}}
            '{{.Name}}:{{zsh .Summary}}'
{{- end}}
        )
        _describe -t commands 'devsvc command' commands && ret=0 ;;
    argument)
        curcontext="${curcontext%:*:*}:devsvc-$words[1]:"
        case $words[1] in
{{- range .Commands}}
        {{.Name}})
            _arguments $common
{{- range .Flags}} \
                '{{.Spelling}}[{{zshopt (first .Usage)}}]'{{if .Value}}{{if .Values}}':{{.Name}}:({{join .Values " "}})'{{else if eq .Kind "dir"}}':DIR:_files -/'{{else if eq .Kind "file"}}':FILE:_files'{{else}}':{{.Name}}: '{{end}}{{end}}
{{- end}}
{{- if .Subs}} \
                '1:subcommand:({{join .Subs " "}})'
{{- end}}
{{- if eq .Args "file"}} \
                '*:file:_files'
{{- else if eq .Args "dir"}} \
                '*:directory:_files -/'
{{- end}} && ret=0 ;;
{{- end}}
        esac ;;
    esac
    return ret
}

if [ "$funcstack[1]" = "_devsvc" ]; then
    _devsvc "$@"
else
    compdef _devsvc devsvc
fi
`

const fishCompletion = `# fish completion for devsvc; generated by "devsvc completion fish".
# Put it in ~/.config/fish/completions/devsvc.fish, or: devsvc completion fish | source

# __devsvc_words prints the words typed so far that are no flag or flag
# value: the command, then its subcommand and arguments.
function __devsvc_words
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l skip 0
    for t in $tokens
        if test $skip -eq 1
            set skip 0
            continue
        end
        switch $t
            case {{range .ValueFlags}}'-{{.}}' '--{{.}}' {{end}}
                set skip 1
            case '-*'
            case '*'
                echo $t
        end
    end
end

function __devsvc_needs_command
    test (count (__devsvc_words)) -eq 0
end

function __devsvc_using
    set -l w (__devsvc_words)
    test (count $w) -ge 1; and test "$w[1]" = $argv[1]
end

function __devsvc_needs_sub
    set -l w (__devsvc_words)
    test (count $w) -eq 1; and test "$w[1]" = $argv[1]
end

complete -c devsvc -f
complete -c devsvc -n __devsvc_needs_command -l version -d 'print the version'
{{- range .Global}}
complete -c devsvc {{if eq (len .Name) 1}}-s{{else}}-l{{end}} {{.Name}}{{if .Value}}{{if eq .Kind "dir"}} -x -a '(__fish_complete_directories (commandline -ct))'{{else if eq .Kind "file"}} -r -F{{else}} -x{{end}}{{end}} -d {{fish (first .Usage)}}
{{- end}}
{{- range .Commands}}
complete -c devsvc -n __devsvc_needs_command -a {{.Name}} -d {{fish .Summary}}
{{- end}}
{{- range $c := .Commands}}
{{- range .Flags}}
complete -c devsvc -n '__devsvc_using {{$c.Name}}' {{if eq (len .Name) 1}}-s{{else}}-l{{end}} {{.Name}}{{if .Value}}{{if .Values}} -x -a {{fish (join .Values " ")}}{{else if eq .Kind "dir"}} -x -a '(__fish_complete_directories (commandline -ct))'{{else if eq .Kind "file"}} -r -F{{else}} -x{{end}}{{end}} -d {{fish (first .Usage)}}
{{- end}}
{{- if .Subs}}
complete -c devsvc -n '__devsvc_needs_sub {{$c.Name}}' -a {{fish (join .Subs " ")}}
{{- end}}
{{- if eq .Args "file"}}
complete -c devsvc -n '__devsvc_using {{$c.Name}}' -F
{{- else if eq .Args "dir"}}
complete -c devsvc -n '__devsvc_using {{$c.Name}}' -a '(__fish_complete_directories (commandline -ct))'
{{- end}}
{{- end}}
`
