package plan_test

import (
	"fmt"
	"testing"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/generator/plan"
)

// Settings merge cluster over fleet over meshfleet's own, key by key, into
// every control plane of the cluster.
func TestSettingsMerge(t *testing.T) {
	f, err := fleet.Parse("fleet.yaml", []byte(`apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata: {name: t}
spec:
  mesh: {id: mesh1, trustDomain: example.org}
  istio:
    revisions: {1-30-3: {version: 1.30.3}, 1-31-1: {version: 1.31.1}}
    tags: {default: 1-30-3}
    values: {pilot: {resources: {requests: {cpu: 500m, memory: 2Gi}}}, global: {logging: {level: "default:info"}}}
    meshConfig: {accessLogFile: /dev/stdout, defaultConfig: {holdApplicationUntilProxyStarts: true}}
  clusters:
    a:
      role: primary
      network: n1
      istio:
        values: {pilot: {resources: {requests: {cpu: "1"}}}}
        meshConfig: {accessLogFile: /tmp/log}
`))
	if err != nil {
		t.Fatal(err)
	}
	p := plan.Build(f)
	cps := p.Clusters[0].ControlPlanes
	if len(cps) != 2 {
		t.Fatalf("%d control planes", len(cps))
	}
	for _, cp := range cps {
		got := fmt.Sprintf("%v %v %v", cp.Values["pilot"], cp.Values["global"].(map[string]any)["logging"], cp.Values["global"].(map[string]any)["meshID"])
		if want := "map[resources:map[requests:map[cpu:1 memory:2Gi]]] map[level:default:info] mesh1"; got != want {
			t.Errorf("%s values: %s, want %s", cp.Revision, got, want)
		}
		if got, want := fmt.Sprint(cp.MeshConfig), "map[accessLogFile:/tmp/log defaultConfig:map[holdApplicationUntilProxyStarts:true] trustDomain:example.org]"; got != want {
			t.Errorf("%s meshConfig: %s, want %s", cp.Revision, got, want)
		}
	}
	if f.Spec.Istio.Values["pilot"].(map[string]any)["resources"].(map[string]any)["requests"].(map[string]any)["cpu"] != "500m" {
		t.Error("merging changed the fleet's values")
	}
}
