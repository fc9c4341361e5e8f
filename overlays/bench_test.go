package overlays_test

import (
	"fmt"
	"testing"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/internal/fleetgen"
	"github.com/meshfleet/meshfleet/overlays"
)

// BenchmarkRender measures the whole render path short of disk writes:
// parse and validate the fleet, plan, lay out and verify every overlay.
func BenchmarkRender(b *testing.B) {
	for _, layout := range []string{fleetgen.MultiPrimaryMultiNetwork, fleetgen.PrimaryRemote} {
		for _, n := range []int{10, 100} {
			src := fleetgen.YAML(layout, n)
			b.Run(fmt.Sprintf("%s/%d", layout, n), func(b *testing.B) {
				for b.Loop() {
					f, err := fleet.Parse("fleet.yaml", src)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := overlays.Render(f); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
