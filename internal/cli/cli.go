// Package cli is the meshfleet command line: it parses flags, runs one
// command and prints its errors, once, on stderr.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/internal/sandbox"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // invalid fleet, drift, failed render
	exitUsage   = 2
)

// IO is where a command reads and writes.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
}

// usageError is a mistake in how meshfleet was called.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// A command declares its flags on a flag set and returns the function that
// runs it once the flags are parsed. Declaring without running is what
// help and shell completion use.
type command struct {
	name, summary string
	// synopsis follows "meshfleet <name>" in the usage line.
	synopsis string
	// args are the values a positional argument takes; a command without
	// them takes no positional arguments.
	args  []string
	setup func(fs *pflag.FlagSet) runFunc
}

// runFunc runs a command with its positional arguments.
type runFunc func(io IO, args []string) error

// commands returns the command table. It is a function, not a variable,
// because help and completion read the table they are part of.
func commands() []command {
	cs := []command{
		{"render", "validate the fleet file and write every cluster's overlay", "-f FLEET -o DIR [-q|-v]", nil, setupRender},
		{"check", "render in memory and show how the output directory differs", "-f FLEET -o DIR [-q]", nil, setupCheck},
		{"validate", "validate the fleet file; print every error", "-f FLEET [-q]", nil, setupValidate},
		{"graph", "print the mesh as a Mermaid or DOT graph", "-f FLEET [--format mermaid|dot]", nil, setupGraph},
		{"secrets", "print the commands that fill every secret placeholder", "-f FLEET", nil, setupSecrets},
		{"krm", "run as a KRM function: ResourceList on stdin, ResourceList on stdout", "[--cluster C]", nil, setupKRM},
		{"cmp", "run as Argo CD plugin: print one cluster's manifests", "[-f FLEET] [--cluster C]", nil, setupCMP},
		{"schema", "print the fleet file's schema (CUE, or JSON Schema for editors)", "[--format cue|jsonschema]", nil, setupSchema},
		{"completion", "print a shell completion script", "bash|zsh|fish", shells, setupCompletion},
		{"version", "print meshfleet's version", "", nil, setupVersion},
		{"help", "print help for meshfleet or one of its commands", "[command]", nil, setupHelp},
	}
	help := &cs[len(cs)-1]
	for _, c := range cs {
		help.args = append(help.args, c.name)
	}
	return cs
}

// Main runs meshfleet with the process's arguments and standard streams
// and returns the exit code.
// Untrusted input (the fleet file, its extensions) is evaluated in a
// child process of meshfleet under time and memory limits (package
// sandbox); Main also serves as that child.
func Main() int {
	if code, child := sandbox.ChildMain(os.Args[1:], os.Stdin, os.Stdout); child {
		return code
	}
	iso, err := sandbox.New()
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshfleet: %v\n", err)
		return exitUsage
	}
	fleet.SetIsolator(iso)
	// A render allocates a tree several times the size of its output and
	// keeps most of it: collecting at every doubling of the heap cost 12%
	// of a 100-cluster check's instructions. Tripling keeps a 1,000-cluster
	// render near 650 MB.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	return Run(os.Args[1:], IO{os.Stdin, os.Stdout, os.Stderr})
}

// Run runs one meshfleet command and returns its exit code. It is the only
// place that prints errors.
func Run(args []string, io IO) int {
	err := dispatch(args, io)
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, pflag.ErrHelp):
		return exitOK
	case errors.Is(err, errDrift):
		return exitFailure
	case errors.As(err, &ue):
		fmt.Fprintf(io.Err, "meshfleet: %s\nRun 'meshfleet help' for usage.\n", ue.msg)
		return exitUsage
	default:
		printError(io.Err, err)
		return exitFailure
	}
}

// printError prints err one line per error: the entries of a
// [fleet.Errors] or of a joined error each on their own line, and every
// line with its control characters escaped, so that no name or value in
// an error can forge more lines.
func printError(w io.Writer, err error) {
	var fe fleet.Errors
	if errors.As(err, &fe) && err.Error() == fe.Error() {
		for _, e := range fe {
			fmt.Fprintln(w, e.Error())
		}
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			printError(w, e)
		}
		return
	}
	fmt.Fprintln(w, fleet.Escape(err.Error()))
}

func dispatch(args []string, io IO) error {
	if len(args) == 0 {
		usage(io.Err)
		return usagef("no command given")
	}
	name := args[0]
	if name == "-h" || name == "--help" {
		usage(io.Out)
		return nil
	}
	c := lookup(name)
	if c == nil {
		return usagef("unknown command %q", name)
	}
	fs := newFlagSet(c)
	run := c.setup(fs)
	if err := parse(fs, c, args[1:], io.Out); err != nil {
		return err
	}
	return run(io, fs.Args())
}

func lookup(name string) *command {
	cs := commands()
	for i := range cs {
		if cs[i].name == name {
			return &cs[i]
		}
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "meshfleet renders an Istio multi-cluster fleet file into per-cluster kustomize overlays.")
	fmt.Fprintln(w, "\nUsage: meshfleet <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'meshfleet help <command>' for a command's flags.")
}

// commandUsage prints a command's synopsis and flags.
func commandUsage(w io.Writer, c *command, fs *pflag.FlagSet) {
	line := "meshfleet " + c.name
	if c.synopsis != "" {
		line += " " + c.synopsis
	}
	fmt.Fprintf(w, "Usage: %s\n\n%s.\n", line, strings.ToUpper(c.summary[:1])+c.summary[1:])
	if fs.HasFlags() {
		fmt.Fprintf(w, "\nFlags:\n%s", fs.FlagUsages())
	}
}

// complete is the pflag annotation that tells the completion scripts
// what a flag's value is: "file" (a fleet file), "dir", or a list of
// words.
const complete = "meshfleet/complete"

func newFlagSet(c *command) *pflag.FlagSet {
	fs := pflag.NewFlagSet(c.name, pflag.ContinueOnError)
	fs.SortFlags = false
	return fs
}

// fleetFlag declares -f/--fleet.
func fleetFlag(fs *pflag.FlagSet, p *string, value, usage string) {
	fs.StringVarP(p, "fleet", "f", value, usage)
	_ = fs.SetAnnotation("fleet", complete, []string{"file"})
}

// wordsFlag declares a flag that takes one of words.
func wordsFlag(fs *pflag.FlagSet, p *string, name string, words []string, usage string) {
	fs.StringVar(p, name, words[0], fmt.Sprintf("%s: %s", usage, strings.Join(words, " or ")))
	_ = fs.SetAnnotation(name, complete, words)
}

// oneOf checks the value of a flag declared with wordsFlag.
func oneOf(cmd, flag, value string, words []string) error {
	if !slices.Contains(words, value) {
		return usagef("%s: --%s must be %s, not %q", cmd, flag, strings.Join(words, " or "), value)
	}
	return nil
}

// parse parses args and wraps flag mistakes as usage errors. --help prints
// the command's usage to w, once.
func parse(fs *pflag.FlagSet, c *command, args []string, w io.Writer) error {
	fs.SetOutput(io.Discard) // Run prints the error once
	fs.Usage = func() {}     // pflag calls it on -h; we print below
	err := fs.Parse(args)
	switch {
	case errors.Is(err, pflag.ErrHelp):
		commandUsage(w, c, fs)
		return err
	case err != nil:
		return usagef("%s: %v", fs.Name(), err)
	case c.args == nil && fs.NArg() > 0:
		return usagef("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	case fs.NArg() > 1:
		return usagef("%s: unexpected argument %q", fs.Name(), fs.Arg(1))
	}
	return nil
}

func required(cmd string, pairs ...string) error {
	var missing []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			missing = append(missing, "--"+pairs[i])
		}
	}
	if len(missing) > 0 {
		return usagef("%s: missing %s", cmd, strings.Join(missing, " and "))
	}
	return nil
}

func setupHelp(*pflag.FlagSet) runFunc {
	return func(io IO, args []string) error {
		if len(args) == 0 {
			usage(io.Out)
			return nil
		}
		c := lookup(args[0])
		if c == nil {
			return usagef("help: unknown command %q", args[0])
		}
		fs := newFlagSet(c)
		c.setup(fs)
		commandUsage(io.Out, c, fs)
		return nil
	}
}

func setupVersion(*pflag.FlagSet) runFunc {
	return func(io IO, _ []string) error {
		v := "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
		fmt.Fprintf(io.Out, "meshfleet %s\n", v)
		return nil
	}
}
