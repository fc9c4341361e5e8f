package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	"github.com/spf13/pflag"

	"github.com/meshfleet/meshfleet/generator/extensions"
	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/generator/mesh"
	"github.com/meshfleet/meshfleet/overlays"
	"github.com/meshfleet/meshfleet/schemas"
)

// outFlags are the flags of the commands that render into a directory.
type outFlags struct {
	file, out      string
	quiet, verbose bool
}

func (o *outFlags) declare(fs *pflag.FlagSet, outUsage string, verbose bool) {
	fleetFlag(fs, &o.file, "", "fleet file (.yaml, .yml, .json, .cue or .jsonnet)")
	fs.StringVarP(&o.out, "out", "o", "", outUsage)
	_ = fs.SetAnnotation("out", complete, []string{"dir"})
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "print nothing on success")
	if verbose {
		fs.BoolVarP(&o.verbose, "verbose", "v", false, "list each file written or removed")
	}
}

// prepare loads the fleet, opens the output directory (render: for
// writing, check: for reading; either way locked against a render running
// at the same time) and works out the changes. The caller closes out.
func (o *outFlags) prepare(name string, io IO) (*fleet.Fleet, *overlays.Changes, *overlays.Output, error) {
	if err := required(name, "fleet", o.file, "out", o.out); err != nil {
		return nil, nil, nil, err
	}
	if o.quiet && o.verbose {
		return nil, nil, nil, usagef("%s: -q and -v exclude each other", name)
	}
	if err := fluxBootstrapAbove(o.out); err != nil {
		return nil, nil, nil, err
	}
	open := overlays.OpenForCheck
	if name == "render" {
		open = overlays.OpenForRender
	}
	out, err := open(o.out)
	if err != nil {
		return nil, nil, nil, err
	}
	// The output directory is read while the fleet loads.
	out.Prefetch()
	f, err := fleet.Load(o.file)
	if err != nil {
		out.Close()
		return nil, nil, nil, err
	}
	// Warnings print even with -q: they say the output may not be
	// delivered at all.
	for _, w := range deliveryWarnings(f, o.out) {
		fmt.Fprintln(io.Err, w)
	}
	var progress func(done, total int)
	if !o.quiet {
		progress = progressTo(io.Err)
	}
	c, err := overlays.Prepare(f, out, progress)
	if err != nil {
		out.Close()
		return nil, nil, nil, err
	}
	return f, c, out, nil
}

func setupRender(fs *pflag.FlagSet) runFunc {
	var o outFlags
	o.declare(fs, "output directory", true)
	return func(io IO, _ []string) error {
		f, c, out, err := o.prepare("render", io)
		if err != nil {
			return err
		}
		defer out.Close()
		if out.Recovered() {
			fmt.Fprintf(io.Err, "meshfleet: an earlier render into %s was interrupted; removed what it left behind\n", quote(o.out))
		}
		var written, removed []string
		if o.verbose {
			written, removed = changedFiles(c.Diff())
		}
		res, err := c.Apply()
		if err != nil {
			return err
		}
		if o.quiet {
			return nil
		}
		for _, p := range written {
			fmt.Fprintf(io.Out, "wrote %s\n", filepath.Join(o.out, filepath.FromSlash(p)))
		}
		for _, p := range removed {
			fmt.Fprintf(io.Out, "removed %s\n", filepath.Join(o.out, filepath.FromSlash(p)))
		}
		fmt.Fprintf(io.Out, "rendered %s into %s: %d files written, %d removed, %d unchanged\n",
			plural(len(f.Clusters), "cluster"), o.out, res.Written, res.Removed, res.Unchanged)
		return nil
	}
}

// changedFiles reads the paths a render writes and removes from the
// per-file headers ("diff a/p b/p") of [overlays.Changes.Diff], leaving out
// the manifest, which [overlays.Result] does not count either. Content
// lines of a unified diff start with ' ', '-', '+' or '\', so a header
// cannot be mistaken for one.
func changedFiles(diff []byte) (written, removed []string) {
	sc := bufio.NewScanner(bytes.NewReader(diff))
	sc.Buffer(nil, len(diff)+1)
	for sc.Scan() {
		names, ok := strings.CutPrefix(sc.Text(), "diff ")
		if !ok {
			continue
		}
		oldName, newName, _ := strings.Cut(names, " ")
		switch {
		case newName == "/dev/null":
			if p := strings.TrimPrefix(oldName, "a/"); p != overlays.Manifest {
				removed = append(removed, p)
			}
		default:
			if p := strings.TrimPrefix(newName, "b/"); p != overlays.Manifest {
				written = append(written, p)
			}
		}
	}
	return written, removed
}

func setupValidate(fs *pflag.FlagSet) runFunc {
	var file string
	var quiet bool
	fleetFlag(fs, &file, "", "fleet file (.yaml, .yml, .json, .cue or .jsonnet)")
	fs.BoolVarP(&quiet, "quiet", "q", false, "print nothing when the fleet is valid")
	return func(io IO, _ []string) error {
		if err := required("validate", "fleet", file); err != nil {
			return err
		}
		f, err := fleet.Load(file)
		if err != nil {
			return err
		}
		// Extensions are part of the fleet: a broken one fails render, so
		// it fails validate too.
		if err := extensions.Apply(mesh.Build(f)); err != nil || quiet {
			return err
		}
		fmt.Fprintf(io.Out, "%s: fleet %s is valid: %s, %s, %s\n", file, f.Metadata.Name, plural(len(f.Clusters), "cluster"), f.ControlPlane(), f.Network())
		return nil
	}
}

// schemaFormats are what meshfleet schema prints.
var schemaFormats = []string{"cue", "jsonschema"}

func setupSchema(fs *pflag.FlagSet) runFunc {
	var format string
	wordsFlag(fs, &format, "format", schemaFormats, "schema language")
	return func(io IO, _ []string) error {
		if err := oneOf("schema", "format", format, schemaFormats); err != nil {
			return err
		}
		src := schemas.MeshFleet
		if format == "jsonschema" {
			src = schemas.JSONSchema
		}
		_, err := io.Out.Write(src)
		return err
	}
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// errDrift says check found differences; they are already printed.
var errDrift = errors.New("drift")

func setupCheck(fs *pflag.FlagSet) runFunc {
	var o outFlags
	o.declare(fs, "output directory to compare with", false)
	fs.Lookup("quiet").Usage = "print no diff, only the command that fixes the drift"
	return func(io IO, _ []string) error {
		_, c, out, err := o.prepare("check", io)
		if err != nil {
			return err
		}
		defer out.Close()
		if c.Empty() {
			return nil
		}
		if !o.quiet {
			io.Out.Write(c.Diff())
		}
		fmt.Fprintf(io.Err, "%s is out of date with %s; to fix it, run:\n  meshfleet render -f %s -o %s\n", quote(o.out), quote(o.file), shellQuote(o.file), shellQuote(o.out))
		return errDrift
	}
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
