package cli_test

import (
	"os"
	"strings"
	"testing"
)

// TestREADMESamples checks that output the README quotes is what a
// testscript case prints, line for line.
func TestREADMESamples(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ script, prefix string }{
		{"cmp.txtar", "fleet.yaml:5:1: spec.installer: "},
		{"delivery.txtar", "mesh/fleet.yaml:12:13: warning: spec.delivery.flux.path: "},
		{"delivery.txtar", "clusters/east/flux-system: a Flux bootstrap tree"},
	} {
		script, err := os.ReadFile("testdata/script/" + c.script)
		if err != nil {
			t.Fatal(err)
		}
		var quoted string
		for line := range strings.Lines(string(readme)) {
			if l := strings.TrimSpace(line); strings.HasPrefix(l, c.prefix) {
				quoted = l
				break
			}
		}
		switch {
		case quoted == "":
			t.Errorf("README.md quotes no line starting with %q", c.prefix)
		case !strings.Contains(string(script), "\n"+quoted+"\n"):
			t.Errorf("README.md quotes\n  %s\nwhich testdata/script/%s does not print", quoted, c.script)
		}
	}
}
