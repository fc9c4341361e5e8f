package plan_test

import (
	"fmt"
	"slices"
	"strings"
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

// Validates: where an istiod patches the default validator. Istio's
// validation controller acts on istiod's own (config) cluster only.
func TestValidates(t *testing.T) {
	cases := []struct {
		fleet string
		want  string // cluster:role:validates of every control plane
	}{
		{"../../examples/primary-remote-multi-network/fleet.yaml", "cluster1:primary:true cluster2:remote:false"},
		{"../../examples/revisions/fleet.yaml", "east:primary:true east:primary:true north:primary:true north:primary:true west:remote:false west:remote:false"},
		{"../../examples/external-control-plane/fleet.yaml", "config:remote:true cp:external:false cp:local:true r2:remote:false"},
	}
	for _, tc := range cases {
		f, err := fleet.Load(tc.fleet)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range plan.Build(f).Clusters {
			for _, cp := range c.ControlPlanes {
				got = append(got, fmt.Sprintf("%s:%s:%v", c.Name, cp.Role, cp.Validates))
			}
		}
		slices.Sort(got)
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("%s: got %s, want %s", tc.fleet, g, tc.want)
		}
	}
}
