package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/overlays"
	"github.com/meshfleet/meshfleet/schemas"
)

// prepare parses the flags of a command that renders a fleet into an
// output directory, loads the fleet, opens the directory (render: for
// writing, check: for reading; either way locked against a render running
// at the same time) and works out the changes. The caller closes out.
func prepare(name, outUsage string, io IO, args []string) (f *fleet.Fleet, c *overlays.Changes, out *overlays.Output, file, dir string, err error) {
	fs := flags(name, io.Out)
	fs.StringVarP(&file, "fleet", "f", "", "fleet file (.yaml, .yml, .json, .cue or .jsonnet)")
	fs.StringVarP(&dir, "out", "o", "", outUsage)
	if err = parse(fs, args); err == nil {
		err = required(name, "fleet", file, "out", dir)
	}
	if err == nil {
		f, err = fleet.Load(file)
	}
	if err == nil {
		if name == "render" {
			out, err = overlays.OpenForRender(dir)
		} else {
			out, err = overlays.OpenForCheck(dir)
		}
	}
	if err == nil {
		if c, err = overlays.Prepare(f, out); err != nil {
			out.Close()
			out = nil
		}
	}
	return f, c, out, file, dir, err
}

func runRender(io IO, args []string) error {
	f, c, out, _, dir, err := prepare("render", "output directory", io, args)
	if err != nil {
		return err
	}
	defer out.Close()
	if out.Recovered() {
		fmt.Fprintf(io.Err, "meshfleet: an earlier render into %s was interrupted; removed what it left behind\n", quote(dir))
	}
	res, err := c.Apply()
	if err != nil {
		return err
	}
	fmt.Fprintf(io.Out, "rendered %s into %s: %d files written, %d removed, %d unchanged\n",
		plural(len(f.Clusters), "cluster"), dir, res.Written, res.Removed, res.Unchanged)
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
	_, c, outDir, file, out, err := prepare("check", "output directory to compare with", io, args)
	if err != nil {
		return err
	}
	defer outDir.Close()
	if c.Empty() {
		return nil
	}
	io.Out.Write(c.Diff())
	fmt.Fprintf(io.Err, "%s is out of date with %s; to fix it, run:\n  meshfleet render -f %s -o %s\n", quote(out), quote(file), shellQuote(file), shellQuote(out))
	return errDrift
}

const plainChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@+"

// shellQuote quotes s for a POSIX shell when it needs it. A name with
// control characters (a newline, an escape) gets bash's $'...' quoting,
// so that it stays on one line and cannot forge output.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, plainChars) == "" {
		return s
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		q := strconv.Quote(s)
		return "$'" + strings.ReplaceAll(q[1:len(q)-1], "'", `\'`) + "'"
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// quote returns s as it is when it is plain, else quoted (%q), so that a
// name cannot forge lines in a message.
func quote(s string) string {
	if s != "" && strings.Trim(s, plainChars) == "" {
		return s
	}
	return strconv.Quote(s)
}
