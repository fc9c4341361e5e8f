// Package cli is the meshfleet command line: it parses flags, runs one
// command and prints its errors, once, on stderr.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
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

type command struct {
	name, summary string
	run           func(io IO, args []string) error
}

var commands = []command{
	{"render", "validate the fleet file and write every cluster's overlay", runRender},
	{"check", "render in memory and show how the output directory differs", runCheck},
	{"validate", "validate the fleet file; print every error", runValidate},
	{"krm", "run as a KRM function: ResourceList on stdin, ResourceList on stdout", runKRM},
	{"cmp", "run as Argo CD plugin: print one cluster's manifests", runCMP},
	{"schema", "print the embedded CUE schema of the fleet file", runSchema},
	{"version", "print meshfleet's version", runVersion},
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
	if name == "help" || name == "-h" || name == "--help" {
		usage(io.Out)
		return nil
	}
	for _, c := range commands {
		if c.name == name {
			return c.run(io, args[1:])
		}
	}
	return usagef("unknown command %q", name)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "meshfleet renders an Istio multi-cluster fleet file into per-cluster kustomize overlays.")
	fmt.Fprintln(w, "\nUsage: meshfleet <command> [flags]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'meshfleet <command> --help' for a command's flags.")
}

// flags returns a flag set for a command that prints its usage to w.
func flags(name string, w io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(w)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintf(w, "Usage: meshfleet %s [flags]\n\nFlags:\n%s", name, fs.FlagUsages())
	}
	return fs
}

// parse parses args and wraps flag mistakes as usage errors.
func parse(fs *pflag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard) // Run prints the error once
	err := fs.Parse(args)
	switch {
	case errors.Is(err, pflag.ErrHelp):
		fs.Usage()
		return err
	case err != nil:
		return usagef("%s: %v", fs.Name(), err)
	case fs.NArg() > 0:
		return usagef("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
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

func runVersion(io IO, args []string) error {
	if err := parse(flags("version", io.Out), args); err != nil {
		return err
	}
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	fmt.Fprintf(io.Out, "meshfleet %s\n", v)
	return nil
}
