package overlays_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	"github.com/meshfleet/meshfleet/overlays"
)

const krmFleet = `apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: demo
  annotations:
    meshfleet.dev/cluster: east
spec:
  mesh: {id: mesh1}
  istio: {version: 1.31.1}
  clusters:
    east: {role: primary, network: net1, apiServer: "https://east.example.net:6443"}
    west: {role: primary, network: net2, apiServer: "https://west.example.net:6443"}
`

// FuzzKRM feeds ResourceLists to the KRM function: it never panics, and
// what it writes on success is one YAML document, a ResourceList that a
// strict parser reads.
func FuzzKRM(f *testing.F) {
	inline := "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: []\nfunctionConfig:\n" + indent(krmFleet)
	f.Add(inline)
	f.Add("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: x}\nfunctionConfig:\n  apiVersion: meshfleet.dev/v1alpha1\n  kind: ClusterOverlay\n  metadata: {name: o}\n  spec: {fleetFile: fleet.yaml, cluster: west}\n")
	f.Add("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nfunctionConfig:\n  kind: ClusterOverlay\n  spec: {fleetFile: /dev/zero, cluster: west}\n")
	f.Add("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nfunctionConfig:\n  kind: ClusterOverlay\n  spec: {fleetFile: \"a\\nb\", cluster: \"\\u2028\"}\n")
	f.Add("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: [\n")
	f.Add("kind: ResourceList\r\nfunctionConfig: {kind: MeshFleet}\r\n")
	f.Add("")
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "fleet.yaml"), []byte(krmFleet), 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if len(in) > 1<<16 {
			return
		}
		var out bytes.Buffer
		if err := overlays.KRM(strings.NewReader(in), &out, dir, ""); err != nil {
			return
		}
		dec := yaml.NewDecoder(&out)
		var rl map[string]any
		if err := dec.Decode(&rl); err != nil {
			t.Fatalf("output does not parse: %v\n%s", err, out.String())
		}
		if rl["kind"] != "ResourceList" {
			t.Fatalf("output is a %v, not a ResourceList", rl["kind"])
		}
		var more any
		if dec.Decode(&more) == nil {
			t.Fatal("output holds more than one document")
		}
	})
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n  ") + "\n"
}
