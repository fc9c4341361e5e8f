package overlays

import (
	"github.com/meshfleet/meshfleet/generator/extensions"
	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/generator/mesh"
)

// Render plans every cluster of f, lays the plan out as overlays and
// verifies that each overlay builds. Nothing is written.
func Render(f *fleet.Fleet) (Tree, error) {
	t, err := layOut(f)
	if err != nil {
		return nil, err
	}
	if err := Verify(t, Roots(t)); err != nil {
		return nil, err
	}
	return t, nil
}

// Prepare renders f for an output directory: it lays out the overlays,
// compares them with what the directory holds, and verifies every overlay
// that differs. Overlays identical to the directory's are not built
// again; what Apply writes has always been verified first. progress, if
// given, is called after each overlay verified with the number done and
// the total.
func Prepare(f *fleet.Fleet, out *Output, progressFn ...func(done, total int)) (*Changes, error) {
	t, err := layOut(f)
	if err != nil {
		return nil, err
	}
	c, err := Compare(out, f.Metadata.Name, t)
	if err != nil {
		return nil, err
	}
	var progress func(done, total int)
	if len(progressFn) > 0 {
		progress = progressFn[0]
	}
	if err := verify(t, c.Dirs(), progress); err != nil {
		return nil, err
	}
	return c, nil
}

// layOut plans every cluster of f, runs the fleet's extensions over the
// plan and lays it out.
func layOut(f *fleet.Fleet) (Tree, error) {
	p, err := plan(f)
	if err != nil {
		return nil, err
	}
	return Layout(p)
}

// plan plans every cluster of f and runs the fleet's extensions over the
// plan.
func plan(f *fleet.Fleet) (*mesh.Plan, error) {
	p := mesh.Build(f)
	if err := extensions.Apply(p); err != nil {
		return nil, err
	}
	return p, nil
}
