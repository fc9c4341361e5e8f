package overlays_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/overlays"
)

// update rewrites golden files instead of comparing with them.
var update = os.Getenv("MESHFLEET_UPDATE") != ""

// TestExamples renders every examples/*/fleet.yaml and compares the result
// with the tree committed beside it in rendered/, byte for byte. Run with
// MESHFLEET_UPDATE=1 to rewrite the committed trees.
func TestExamples(t *testing.T) {
	fleets, err := filepath.Glob("../examples/*/fleet.yaml")
	if err != nil || len(fleets) == 0 {
		t.Fatalf("no example fleets found: %v", err)
	}
	for _, file := range fleets {
		dir := filepath.Dir(file)
		if filepath.Base(dir) == "argocd" {
			continue // Argo CD renders this one at sync time, through the plugin
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			f, err := fleet.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			tree, err := overlays.Render(f)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "rendered")
			if update {
				if _, err := overlays.WriteFleet(out, f.Metadata.Name, tree); err != nil {
					t.Fatal(err)
				}
			}
			want := tree
			want[overlays.Manifest] = overlays.ManifestForFleet(f.Metadata.Name, tree)
			got := readTree(t, out)
			for _, p := range want.Paths() {
				if !bytes.Equal(got[p], want[p]) {
					t.Errorf("%s is stale or missing; run MESHFLEET_UPDATE=1 go test ./overlays/", filepath.Join(out, p))
				}
			}
			for _, p := range got.Paths() {
				if _, ok := want[p]; !ok {
					t.Errorf("%s is no longer rendered; run MESHFLEET_UPDATE=1 go test ./overlays/", filepath.Join(out, p))
				}
			}
		})
	}
}

// TestDeterministic renders the same fleet twice in one process and
// expects the same bytes.
func TestDeterministic(t *testing.T) {
	f, err := fleet.Load("../examples/multi-primary-with-remotes/fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, err := overlays.Render(f)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		b, err := overlays.Render(f)
		if err != nil {
			t.Fatal(err)
		}
		for p := range a {
			if !bytes.Equal(a[p], b[p]) {
				t.Fatalf("%s differs between two renders", p)
			}
		}
	}
}

func readTree(t *testing.T, dir string) overlays.Tree {
	t.Helper()
	tree, err := overlays.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return tree
}
