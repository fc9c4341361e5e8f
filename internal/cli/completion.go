package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// shells are the shells meshfleet completion writes scripts for.
var shells = []string{"bash", "zsh", "fish"}

// fleetExts are the extensions of fleet files, for file completion.
var fleetExts = []string{"yaml", "yml", "json", "cue", "jsonnet"}

func setupCompletion(*pflag.FlagSet) runFunc {
	return func(io IO, args []string) error {
		if len(args) == 0 {
			return usagef("completion: name a shell: %s", strings.Join(shells, ", "))
		}
		switch args[0] {
		case "bash":
			bashCompletion(io.Out)
		case "zsh":
			zshCompletion(io.Out)
		case "fish":
			fishCompletion(io.Out)
		default:
			return usagef("completion: unknown shell %q (want %s)", args[0], strings.Join(shells, ", "))
		}
		return nil
	}
}

// flagInfo is what a completion script needs to know about a flag.
type flagInfo struct {
	short, long, usage string
	takesValue         bool
	values             []string // "file", "dir" or words
}

// commandFlags declares c's flags and describes them, --help included.
func commandFlags(c *command) []flagInfo {
	fs := newFlagSet(c)
	c.setup(fs)
	var out []flagInfo
	fs.VisitAll(func(f *pflag.Flag) {
		out = append(out, flagInfo{
			short:      f.Shorthand,
			long:       f.Name,
			usage:      f.Usage,
			takesValue: f.NoOptDefVal == "",
			values:     f.Annotations[complete],
		})
	})
	return append(out, flagInfo{short: "h", long: "help", usage: "help for " + c.name})
}

func names() []string {
	var ns []string
	for _, c := range commands() {
		ns = append(ns, c.name)
	}
	return ns
}

func bashCompletion(w io.Writer) {
	fmt.Fprintf(w, `# bash completion for meshfleet. Load it with
#   source <(meshfleet completion bash)
# or write it to a file in /etc/bash_completion.d or ~/.local/share/bash-completion/completions.

_meshfleet_fleet_files() {
	local f
	COMPREPLY=()
	while IFS= read -r f; do
		if [[ -d $f ]]; then
			COMPREPLY+=("$f/")
		else
			case $f in
			*.%s) COMPREPLY+=("$f") ;;
			esac
		fi
	done < <(compgen -f -- "$1")
	compopt -o nospace -o filenames 2>/dev/null
}

_meshfleet() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	if [[ $COMP_CWORD -eq 1 ]]; then
		COMPREPLY=($(compgen -W %q -- "$cur"))
		return
	fi
	case ${COMP_WORDS[1]}:$prev in
`, strings.Join(fleetExts, "|*."), strings.Join(names(), " "))
	var perCommand []string
	cs := commands()
	for i := range cs {
		c := &cs[i]
		var all []string
		for _, f := range commandFlags(c) {
			opts := []string{c.name + ":--" + f.long}
			all = append(all, "--"+f.long)
			if f.short != "" {
				opts = append(opts, c.name+":-"+f.short)
				all = append(all, "-"+f.short)
			}
			if !f.takesValue || f.long == "help" {
				continue
			}
			var action string
			switch {
			case len(f.values) == 1 && f.values[0] == "file":
				action = `_meshfleet_fleet_files "$cur"`
			case len(f.values) == 1 && f.values[0] == "dir":
				action = `COMPREPLY=($(compgen -d -- "$cur")); compopt -o filenames 2>/dev/null`
			case len(f.values) > 0:
				action = fmt.Sprintf(`COMPREPLY=($(compgen -W %q -- "$cur"))`, strings.Join(f.values, " "))
			default:
				action = "COMPREPLY=()"
			}
			fmt.Fprintf(w, "\t%s)\n\t\t%s\n\t\treturn\n\t\t;;\n", strings.Join(opts, "|"), action)
		}
		line := fmt.Sprintf("\t%s) words=%q", c.name, strings.Join(all, " "))
		if c.args != nil {
			line += fmt.Sprintf("; [[ $COMP_CWORD -eq 2 ]] && args=%q", strings.Join(c.args, " "))
		}
		perCommand = append(perCommand, line+" ;;\n")
	}
	fmt.Fprintf(w, "\tesac\n\tlocal words args\n\tcase ${COMP_WORDS[1]} in\n%s", strings.Join(perCommand, ""))
	fmt.Fprint(w, `	esac
	if [[ $cur == -* || -z $args ]]; then
		COMPREPLY=($(compgen -W "$words" -- "$cur"))
	else
		COMPREPLY=($(compgen -W "$args" -- "$cur"))
	fi
}

complete -F _meshfleet meshfleet
`)
}

// zshQuote escapes s for the description part of an _arguments spec in
// single quotes.
func zshQuote(s string) string {
	return strings.NewReplacer(`'`, `'\''`, `[`, `\[`, `]`, `\]`, `:`, `\:`).Replace(s)
}

func zshCompletion(w io.Writer) {
	fmt.Fprint(w, `#compdef meshfleet
# zsh completion for meshfleet. Load it with
#   source <(meshfleet completion zsh)
# or write it as _meshfleet into a directory of your $fpath.

_meshfleet() {
	local -a commands
	commands=(
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "\t\t'%s:%s'\n", c.name, zshQuote(c.summary))
	}
	fmt.Fprint(w, `	)
	if (( CURRENT == 2 )); then
		_describe -t commands 'meshfleet command' commands
		return
	fi
	local cmd=$words[2]
	shift words
	(( CURRENT-- ))
	case $cmd in
`)
	cs := commands()
	for i := range cs {
		c := &cs[i]
		fmt.Fprintf(w, "\t%s)\n\t\t_arguments -s", c.name)
		for _, f := range commandFlags(c) {
			names := "--" + f.long
			excl := ""
			if f.short != "" {
				names = fmt.Sprintf("{-%s,--%s}", f.short, f.long)
				excl = fmt.Sprintf("'(-%s --%s)'", f.short, f.long)
			}
			spec := fmt.Sprintf("%s%s'[%s]", excl, names, zshQuote(f.usage))
			if f.takesValue && f.long != "help" {
				switch {
				case len(f.values) == 1 && f.values[0] == "file":
					spec += fmt.Sprintf(`:fleet file:_files -g "*.(%s)"`, strings.Join(fleetExts, "|"))
				case len(f.values) == 1 && f.values[0] == "dir":
					spec += ":directory:_files -/"
				case len(f.values) > 0:
					spec += fmt.Sprintf(":%s:(%s)", f.long, strings.Join(f.values, " "))
				default:
					spec += ":" + f.long + ":"
				}
			}
			fmt.Fprintf(w, " \\\n\t\t\t%s'", spec)
		}
		if c.args != nil {
			fmt.Fprintf(w, " \\\n\t\t\t'1:%s:(%s)'", c.name, strings.Join(c.args, " "))
		}
		fmt.Fprint(w, "\n\t\t;;\n")
	}
	fmt.Fprint(w, `	esac
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
	_meshfleet "$@"
else
	compdef _meshfleet meshfleet
fi
`)
}

// fishQuote quotes s for fish.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func fishCompletion(w io.Writer) {
	fmt.Fprint(w, `# fish completion for meshfleet. Load it with
#   meshfleet completion fish | source
# or write it to ~/.config/fish/completions/meshfleet.fish.

complete -c meshfleet -f
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "complete -c meshfleet -n __fish_use_subcommand -a %s -d %s\n", c.name, fishQuote(c.summary))
	}
	cs := commands()
	for i := range cs {
		c := &cs[i]
		cond := fishQuote("__fish_seen_subcommand_from " + c.name)
		for _, f := range commandFlags(c) {
			line := "complete -c meshfleet -n " + cond
			if f.short != "" {
				line += " -s " + f.short
			}
			line += " -l " + f.long
			if f.takesValue && f.long != "help" {
				switch {
				case len(f.values) == 1 && f.values[0] == "file":
					line += " -r -F"
				case len(f.values) == 1 && f.values[0] == "dir":
					line += " -x -a '(__fish_complete_directories)'"
				case len(f.values) > 0:
					line += " -x -a " + fishQuote(strings.Join(f.values, " "))
				default:
					line += " -x"
				}
			}
			fmt.Fprintf(w, "%s -d %s\n", line, fishQuote(f.usage))
		}
		if c.args != nil {
			fmt.Fprintf(w, "complete -c meshfleet -n %s -a %s\n", cond, fishQuote(strings.Join(c.args, " ")))
		}
	}
}
