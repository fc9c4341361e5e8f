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

// BenchmarkCheck measures `meshfleet check` on an up-to-date tree: what
// the pre-commit and CI drift check pay on every run.
func BenchmarkCheck(b *testing.B) {
	for _, n := range []int{10, 100} {
		src := fleetgen.YAML(fleetgen.MultiPrimaryMultiNetwork, n)
		f, err := fleet.Parse("fleet.yaml", src)
		if err != nil {
			b.Fatal(err)
		}
		tree, err := overlays.Render(f)
		if err != nil {
			b.Fatal(err)
		}
		dir := b.TempDir()
		if _, err := overlays.WriteFleet(dir, f.Metadata.Name, tree); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				f, err := fleet.Parse("fleet.yaml", src)
				if err != nil {
					b.Fatal(err)
				}
				out, err := overlays.OpenForCheck(dir)
				if err != nil {
					b.Fatal(err)
				}
				c, err := overlays.Prepare(f, out)
				out.Close()
				if err != nil || !c.Empty() {
					b.Fatalf("drift on an up-to-date tree: %v", err)
				}
			}
		})
	}
}

// BenchmarkRenderLarge is BenchmarkRender at the sizes of the performance
// targets, writing into a new directory each time: 300 multi-primary
// clusters and 1,000 primary-remote clusters. It is skipped with -short.
func BenchmarkRenderLarge(b *testing.B) {
	if testing.Short() {
		b.Skip("large fleets")
	}
	for _, tc := range []struct {
		layout string
		n      int
	}{{fleetgen.MultiPrimaryMultiNetwork, 300}, {fleetgen.PrimaryRemote, 1000}} {
		src := fleetgen.YAML(tc.layout, tc.n)
		b.Run(fmt.Sprintf("%s/%d", tc.layout, tc.n), func(b *testing.B) {
			for b.Loop() {
				f, err := fleet.Parse("fleet.yaml", src)
				if err != nil {
					b.Fatal(err)
				}
				out, err := overlays.OpenForRender(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				c, err := overlays.Prepare(f, out)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Apply(); err != nil {
					b.Fatal(err)
				}
				out.Close()
			}
		})
	}
}
