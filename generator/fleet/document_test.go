package fleet_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/internal/fleetgen"
)

// TestLargeFleetPositions: clusters are validated in chunks; errors in
// any chunk, from the schema or the rules, point at the right line.
func TestLargeFleetPositions(t *testing.T) {
	src := string(fleetgen.YAML(fleetgen.PrimaryRemote, 300))
	lineOf := func(s string) int {
		i := strings.Index(src, s)
		if i < 0 {
			t.Fatalf("%q not in the generated fleet", s)
		}
		return 1 + strings.Count(src[:i], "\n")
	}
	check := func(src string, want ...string) {
		t.Helper()
		_, err := fleet.Parse("fleet.yaml", []byte(src))
		var es fleet.Errors
		if !errors.As(err, &es) {
			t.Fatalf("Parse = %v, want fleet.Errors", err)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("errors lack %q:\n%s", w, err)
			}
		}
	}
	// The schema, in the third chunk.
	check(strings.Replace(src, "    cluster-257:\n      role: remote", "    cluster-257:\n      role: primery", 1),
		fmt.Sprintf("fleet.yaml:%d:13: spec.clusters.cluster-257.role: invalid value \"primery\"", 1+lineOf("    cluster-257:")))
	// The rules, in the first and the last chunk.
	rules := strings.Replace(src, "apiServer: https://cluster-003", "apiServer: http://cluster-003", 1)
	rules = strings.Replace(rules, "controlPlane: cluster-290", "controlPlane: cluster-999", 1)
	check(rules,
		fmt.Sprintf("fleet.yaml:%d:18: spec.clusters.cluster-003.apiServer: scheme \"http\"", lineOf("apiServer: https://cluster-003")),
		fmt.Sprintf("fleet.yaml:%d:21: spec.clusters.cluster-291.controlPlane: \"cluster-999\" is not a cluster", lineOf("controlPlane: cluster-290")))
}

// TestHugeMappingRefused: a mapping the schema has no room for is refused
// before CUE spends quadratic time on it.
func TestHugeMappingRefused(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: meshfleet.dev/v1alpha1\nkind: MeshFleet\nmetadata: {name: x}\nspec:\n  mesh:\n")
	for i := range 5000 {
		fmt.Fprintf(&b, "    k%d: v\n", i)
	}
	_, err := fleet.Parse("fleet.yaml", []byte(b.String()))
	if want := "fleet.yaml:6:5: spec.mesh: 5000 fields; no part of a fleet has more than 1000"; err == nil || err.Error() != want {
		t.Errorf("Parse = %v, want %s", err, want)
	}
}
