package overlays_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/overlays"
)

// TestUpgrade walks the documented upgrade from 1.30.3 to 1.31.1 over a
// fleet of two primaries and a remote (testdata/upgrade/step-N.yaml):
// install the canary everywhere, move tag default in cluster north, then
// everywhere, remove the old revision. For every installer, the diff
// meshfleet check shows between one step's output and the next is
// committed in testdata/upgrade/<installer>/step-N.diff; the step that
// removes a revision a tag still serves is refused with the rule's
// message (step-refused.err). MESHFLEET_UPDATE=1 rewrites them.
func TestUpgrade(t *testing.T) {
	load := func(t *testing.T, installer, step string) (*fleet.Fleet, error) {
		t.Helper()
		name := filepath.Join("testdata", "upgrade", step+".yaml")
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		return fleet.Parse(step+".yaml", bytes.ReplaceAll(b, []byte("INSTALLER"), []byte(installer)))
	}
	golden := func(t *testing.T, name string, got []byte) {
		t.Helper()
		if update {
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, got, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		want, err := os.ReadFile(name)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is stale or missing; run MESHFLEET_UPDATE=1 go test ./overlays/ -run TestUpgrade", name)
		}
	}
	for _, installer := range []string{fleet.InstallerIstioctl, fleet.InstallerHelm, fleet.InstallerSail} {
		t.Run(installer, func(t *testing.T) {
			dir := t.TempDir()
			prev, err := load(t, installer, "step-0")
			if err != nil {
				t.Fatal(err)
			}
			tree, err := overlays.Render(prev)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := overlays.WriteFleet(dir, prev.Metadata.Name, tree); err != nil {
				t.Fatal(err)
			}
			for n := 1; ; n++ {
				step := fmt.Sprintf("step-%d", n)
				if _, err := os.Stat(filepath.Join("testdata", "upgrade", step+".yaml")); err != nil {
					if n < 4 {
						t.Fatalf("%s: %v", step, err)
					}
					break
				}
				f, err := load(t, installer, step)
				if err != nil {
					t.Fatalf("%s: %v", step, err)
				}
				out, err := overlays.OpenForCheck(dir)
				if err != nil {
					t.Fatal(err)
				}
				c, err := overlays.Prepare(f, out)
				out.Close() // the render below takes the directory's lock
				if err != nil {
					t.Fatalf("%s: %v", step, err)
				}
				diff := c.Diff()
				if len(diff) == 0 {
					t.Errorf("%s changes nothing", step)
				}
				golden(t, filepath.Join("testdata", "upgrade", installer, step+".diff"), diff)
				tree, err := overlays.Render(f)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := overlays.WriteFleet(dir, f.Metadata.Name, tree); err != nil {
					t.Fatal(err)
				}
			}
			_, err = load(t, installer, "step-refused")
			if err == nil {
				t.Fatal("step-refused was accepted")
			}
			want := "step-refused.yaml:13:16: spec.istio.tags.default: tag default points at revision 1-30-3, which is not in spec.istio.revisions, and east, north, west still take it: the workloads it injects would lose their control plane; move the tag to a running revision first, and remove 1-30-3 in a later step"
			if got := strings.TrimSpace(err.Error()); got != want {
				t.Errorf("step-refused:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
