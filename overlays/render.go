package overlays

import (
	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/generator/mesh"
)

// Render plans every cluster of f, lays the plan out as overlays and
// verifies that each overlay builds. Nothing is written.
func Render(f *fleet.Fleet) (Tree, error) {
	t, err := Layout(mesh.Build(f))
	if err != nil {
		return nil, err
	}
	names := make([]string, len(f.Clusters))
	for i, c := range f.Clusters {
		names[i] = c.Name
	}
	if err := Verify(t, names); err != nil {
		return nil, err
	}
	return t, nil
}
