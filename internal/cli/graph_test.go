package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshfleet/meshfleet/internal/cli"
)

// TestGraphGoldens renders the graph of every example in both formats and
// compares it with testdata/graph/<example>.{mmd,dot}. Run with
// MESHFLEET_UPDATE=1 to rewrite them.
func TestGraphGoldens(t *testing.T) {
	t.Parallel()
	fleets, err := filepath.Glob("../../examples/*/fleet.yaml")
	if err != nil || len(fleets) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, file := range fleets {
		name := filepath.Base(filepath.Dir(file))
		for format, ext := range map[string]string{"mermaid": ".mmd", "dot": ".dot"} {
			t.Run(name+ext, func(t *testing.T) {
				t.Parallel()
				var out, errOut bytes.Buffer
				if code := cli.Run([]string{"graph", "-f", file, "--format", format}, cli.IO{In: strings.NewReader(""), Out: &out, Err: &errOut}); code != 0 {
					t.Fatalf("meshfleet graph -f %s --format %s: exit %d: %s", file, format, code, errOut.String())
				}
				golden := filepath.Join("testdata", "graph", name+ext)
				if os.Getenv("MESHFLEET_UPDATE") != "" {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with MESHFLEET_UPDATE=1 to create it)", err)
				}
				if !bytes.Equal(out.Bytes(), want) {
					t.Errorf("meshfleet graph -f %s --format %s differs from %s (MESHFLEET_UPDATE=1 rewrites it):\n%s", file, format, golden, out.String())
				}
			})
		}
	}
}

// TestREADMEGraph checks that the Mermaid graph in the README is the one
// meshfleet draws for its example.
func TestREADMEGraph(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile("testdata/graph/primary-remote-multi-network.mmd")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, []byte("```mermaid\n"+string(golden)+"```\n")) {
		t.Errorf("README.md does not embed testdata/graph/primary-remote-multi-network.mmd in a mermaid block; copy it there")
	}
}
