package overlays_test

import (
	"strings"
	"testing"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/generator/mesh"
	"github.com/meshfleet/meshfleet/overlays"
)

// Flux substitutes ${var} in everything it applies, so no output may
// carry one.
func TestLayoutRejectsFluxSubstitutions(t *testing.T) {
	f, err := fleet.Load("../examples/multi-primary-single-network/fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := mesh.Build(f)
	ns := p.Clusters[0].Stages[0].Files[0].Objects[0]
	ns["metadata"].(map[string]any)["annotations"] = map[string]any{"note": "owner ${TEAM}"}
	_, err = overlays.Layout(p)
	want := `clusters/cluster1/namespace/namespace.yaml:10: contains "${", which Flux post-build substitution would replace: ${TEAM}"`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Layout = %v, want %q", err, want)
	}
}

// No example output contains "${".
func TestExamplesHaveNoFluxSubstitutions(t *testing.T) {
	tree := readTree(t, "../examples")
	for _, p := range tree.Paths() {
		if strings.Contains(p, "/rendered/") && strings.Contains(string(tree[p]), "${") {
			t.Errorf("%s contains ${", p)
		}
	}
}
