package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/overlays"
	"github.com/meshfleet/meshfleet/schemas"
)

// prepare parses the flags of a command that renders a fleet into an
// output directory, loads the fleet and works out the changes.
func prepare(name, outUsage string, io IO, args []string) (f *fleet.Fleet, c *overlays.Changes, file, out string, err error) {
	fs := flags(name, io.Out)
	fs.StringVarP(&file, "fleet", "f", "", "fleet file (.yaml, .yml, .json, .cue or .jsonnet)")
	fs.StringVarP(&out, "out", "o", "", outUsage)
	if err = parse(fs, args); err == nil {
		err = required(name, "fleet", file, "out", out)
	}
	if err == nil {
		f, err = fleet.Load(file)
	}
	if err == nil {
		c, err = overlays.Prepare(f, out, progressTo(io.Err))
	}
	return f, c, file, out, err
}

func runRender(io IO, args []string) error {
	f, c, _, out, err := prepare("render", "output directory", io, args)
	if err != nil {
		return err
	}
	res, err := c.Apply()
	if err != nil {
		return err
	}
	fmt.Fprintf(io.Out, "rendered %s into %s: %d files written, %d removed, %d unchanged\n",
		plural(len(f.Clusters), "cluster"), out, res.Written, res.Removed, res.Unchanged)
	return nil
}

func runValidate(io IO, args []string) error {
	fs := flags("validate", io.Out)
	file := fs.StringP("fleet", "f", "", "fleet file (.yaml, .yml, .json, .cue or .jsonnet)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required("validate", "fleet", *file); err != nil {
		return err
	}
	f, err := fleet.Load(*file)
	if err != nil {
		return err
	}
	fmt.Fprintf(io.Out, "%s: fleet %s is valid: %s, %s, %s\n", *file, f.Metadata.Name, plural(len(f.Clusters), "cluster"), f.ControlPlane(), f.Network())
	return nil
}

func runSchema(io IO, args []string) error {
	if err := parse(flags("schema", io.Out), args); err != nil {
		return err
	}
	_, err := io.Out.Write(schemas.MeshFleet)
	return err
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// errDrift says check found differences; they are already printed.
var errDrift = errors.New("drift")

func runCheck(io IO, args []string) error {
	_, c, file, out, err := prepare("check", "output directory to compare with", io, args)
	if err != nil || c.Empty() {
		return err
	}
	io.Out.Write(c.Diff())
	fmt.Fprintf(io.Err, "%s is out of date with %s; to fix it, run:\n  meshfleet render -f %s -o %s\n", out, file, shellQuote(file), shellQuote(out))
	return errDrift
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
