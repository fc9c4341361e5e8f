package cli

import (
	"fmt"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/overlays"
	"github.com/meshfleet/meshfleet/schemas"
)

func runRender(io IO, args []string) error {
	fs := flags("render", io.Out)
	file := fs.StringP("fleet", "f", "", "fleet file (.yaml, .yml, .json, .cue or .jsonnet)")
	out := fs.StringP("out", "o", "", "output directory")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required("render", "fleet", *file, "out", *out); err != nil {
		return err
	}
	f, err := fleet.Load(*file)
	if err != nil {
		return err
	}
	t, err := overlays.Render(f)
	if err != nil {
		return err
	}
	res, err := overlays.Write(*out, t)
	if err != nil {
		return err
	}
	fmt.Fprintf(io.Out, "rendered %s into %s: %d files written, %d removed, %d unchanged\n",
		plural(len(f.Clusters), "cluster"), *out, res.Written, res.Removed, res.Unchanged)
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
