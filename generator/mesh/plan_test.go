package mesh_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/generator/mesh"
)

// fleetYAML builds a fleet from "name:role:network[:controlPlane]" specs.
func fleetYAML(t *testing.T, revision string, specs ...string) *fleet.Fleet {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: meshfleet.dev/v1alpha1\nkind: MeshFleet\nmetadata: {name: t}\nspec:\n  mesh: {id: mesh1}\n  istio: {version: 1.31.1, revision: %q}\n  clusters:\n", revision)
	for i, s := range specs {
		p := strings.Split(s, ":")
		fmt.Fprintf(&b, "    %s:\n      role: %s\n      network: %s\n      apiServer: https://%s.example.net\n", p[0], p[1], p[2], p[0])
		if len(p) > 3 {
			fmt.Fprintf(&b, "      controlPlane: %s\n", p[3])
		} else {
			fmt.Fprintf(&b, "      eastWestGateway: {address: 192.0.2.%d}\n", i+1)
		}
	}
	f, err := fleet.Parse("fleet.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// summary describes a cluster's plan: its files, bases and the names of
// the remote secrets it holds.
func summary(c mesh.Cluster) string {
	var parts, secrets []string
	for _, s := range c.Stages {
		for _, f := range s.Files {
			parts = append(parts, s.Name+"/"+f.Name)
			if f.Name == "remote-secrets.yaml" {
				for _, o := range f.Objects {
					secrets = append(secrets, o["metadata"].(map[string]any)["name"].(string))
				}
			}
		}
		for _, b := range s.Bases {
			parts = append(parts, s.Name+"/base:"+b)
		}
		for _, ch := range s.Charts {
			parts = append(parts, s.Name+"/chart:"+ch.Release)
		}
	}
	for _, f := range c.Istioctl {
		parts = append(parts, "istioctl:"+f.Name)
	}
	if secrets != nil {
		parts = append(parts, "secrets:"+strings.Join(secrets, ","))
	}
	return strings.Join(parts, " ")
}

// TestBuildPerTopology: what each cluster gets, and in which stage. The
// reader account and token are in the first stage, before anything that
// waits for another cluster, and only in clusters another cluster reads; a
// remote on its primary's network has no east-west gateway.
func TestBuildPerTopology(t *testing.T) {
	const (
		primary = "namespace/namespace.yaml namespace/cacerts.yaml"
		read    = " namespace/reader.yaml"
		secrets = " remote-secrets/remote-secrets.yaml"
		remote  = "namespace/namespace.yaml namespace/reader.yaml istioctl:controlplane.yaml"
		cp      = " istioctl:controlplane.yaml"
		gw      = " istioctl:eastwest-gateway.yaml"
	)
	tests := []struct {
		name  string
		specs []string
		want  map[string]string
		bases []string
	}{{
		name:  "multi-primary single-network: no gateways, secrets both ways",
		specs: []string{"a:primary:n1", "b:primary:n1"},
		want: map[string]string{
			"a": primary + read + secrets + cp + " secrets:istio-remote-secret-b",
			"b": primary + read + secrets + cp + " secrets:istio-remote-secret-a",
		},
	}, {
		name:  "multi-primary multi-network: gateway and expose-services everywhere",
		specs: []string{"a:primary:n1", "b:primary:n2"},
		want: map[string]string{
			"a": primary + read + " gateways/base:expose-services" + secrets + cp + gw + " secrets:istio-remote-secret-b",
			"b": primary + read + " gateways/base:expose-services" + secrets + cp + gw + " secrets:istio-remote-secret-a",
		},
		bases: []string{"expose-services"},
	}, {
		name:  "primary-remote single-network: gateway and expose-istiod in the primary, which nobody reads",
		specs: []string{"a:primary:n1", "r:remote:n1:a"},
		want: map[string]string{
			"a": primary + " gateways/base:expose-istiod" + secrets + cp + gw + " secrets:istio-remote-secret-r",
			"r": remote,
		},
		bases: []string{"expose-istiod"},
	}, {
		name:  "primary-remote multi-network: remote gets a gateway but no expose-services",
		specs: []string{"a:primary:n1", "r:remote:n2:a"},
		want: map[string]string{
			"a": primary + " gateways/base:expose-istiod gateways/base:expose-services" + secrets + cp + gw + " secrets:istio-remote-secret-r",
			"r": remote + gw,
		},
		bases: []string{"expose-istiod", "expose-services"},
	}, {
		name:  "two primaries with remotes: every primary reads every other cluster",
		specs: []string{"a:primary:n1", "a1:remote:n1:a", "b:primary:n1", "b1:remote:n1:b"},
		want: map[string]string{
			"a":  primary + read + " gateways/base:expose-istiod" + secrets + cp + gw + " secrets:istio-remote-secret-a1,istio-remote-secret-b,istio-remote-secret-b1",
			"a1": remote,
			"b":  primary + read + " gateways/base:expose-istiod" + secrets + cp + gw + " secrets:istio-remote-secret-a,istio-remote-secret-a1,istio-remote-secret-b1",
			"b1": remote,
		},
		bases: []string{"expose-istiod"},
	}, {
		name:  "two networks, each a primary with a remote on its network: the remotes share their primary's gateway",
		specs: []string{"a:primary:n1", "a1:remote:n1:a", "b:primary:n2", "b1:remote:n2:b"},
		want: map[string]string{
			"a":  primary + read + " gateways/base:expose-istiod gateways/base:expose-services" + secrets + cp + gw + " secrets:istio-remote-secret-a1,istio-remote-secret-b,istio-remote-secret-b1",
			"a1": remote,
			"b":  primary + read + " gateways/base:expose-istiod gateways/base:expose-services" + secrets + cp + gw + " secrets:istio-remote-secret-a,istio-remote-secret-a1,istio-remote-secret-b1",
			"b1": remote,
		},
		bases: []string{"expose-istiod", "expose-services"},
	}, {
		name:  "a single primary needs no remote secrets and no reader",
		specs: []string{"a:primary:n1"},
		want:  map[string]string{"a": primary + cp},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mesh.Build(fleetYAML(t, "", tt.specs...))
			for _, c := range p.Clusters {
				if got := summary(c); got != tt.want[c.Name] {
					t.Errorf("cluster %s:\n got %s\nwant %s", c.Name, got, tt.want[c.Name])
				}
			}
			var bases []string
			for _, b := range p.Bases {
				bases = append(bases, b.Name)
			}
			if !slices.Equal(bases, tt.bases) {
				t.Errorf("bases = %q, want %q", bases, tt.bases)
			}
		})
	}
}

// get follows a path of map keys through an object.
func get(o any, path ...string) any {
	for _, k := range path {
		m, ok := o.(map[string]any)
		if !ok {
			return nil
		}
		o = m[k]
	}
	return o
}

func objects(c mesh.Cluster, file string) []mesh.Object {
	files := slices.Clone(c.Istioctl)
	for _, s := range c.Stages {
		files = append(files, s.Files...)
	}
	for _, f := range files {
		if f.Name == file {
			return f.Objects
		}
	}
	return nil
}

// The identifiers Istio matches across clusters agree everywhere they
// appear (rules 1–6 and 18 of the reference).
func TestIdentifiersAgree(t *testing.T) {
	p := mesh.Build(fleetYAML(t, "canary", "a:primary:n1", "r:remote:n2:a"))
	a, r := p.Clusters[0], p.Clusters[1]

	cp := objects(a, "controlplane.yaml")[0]
	for path, want := range map[string]any{
		"spec.revision":               "canary",
		"spec.tag":                    "1.31.1",
		"spec.hub":                    "registry.istio.io/release",
		"spec.meshConfig.trustDomain": "cluster.local",
		"spec.values.global.meshID":   "mesh1",
		"spec.values.global.multiCluster.clusterName": "a",
		"spec.values.global.network":                  "n1",
		"spec.values.global.externalIstiod":           true,
	} {
		if got := get(cp, strings.Split(path, ".")...); got != want {
			t.Errorf("primary controlplane %s = %v, want %v", path, got, want)
		}
	}
	rcp := objects(r, "controlplane.yaml")[0]
	for path, want := range map[string]any{
		"spec.profile":                                "remote",
		"spec.revision":                               "canary",
		"spec.values.global.remotePilotAddress":       "192.0.2.1",
		"spec.values.global.multiCluster.clusterName": "r",
		"spec.values.global.network":                  "n2",
		"spec.values.istiodRemote.injectionPath":      "/inject/cluster/r/net/n2",
	} {
		if got := get(rcp, strings.Split(path, ".")...); got != want {
			t.Errorf("remote controlplane %s = %v, want %v", path, got, want)
		}
	}
	ns := objects(r, "namespace.yaml")[0]
	if got := get(ns, "metadata", "annotations", "topology.istio.io/controlPlaneClusters"); got != "a" {
		t.Errorf("remote namespace controlPlaneClusters = %v, want a", got)
	}
	if got := get(ns, "metadata", "labels", "topology.istio.io/network"); got != "n2" {
		t.Errorf("remote namespace network = %v, want n2", got)
	}
	gw := objects(r, "eastwest-gateway.yaml")[0]
	ig := get(gw, "spec", "components").(map[string]any)["ingressGateways"].([]any)[0]
	if got := get(ig, "label", "topology.istio.io/network"); got != "n2" {
		t.Errorf("gateway network label = %v, want n2", got)
	}
	if got := get(ig, "k8s", "env").([]any)[0]; get(got, "value") != "n2" {
		t.Errorf("ISTIO_META_REQUESTED_NETWORK_VIEW = %v, want n2", got)
	}
	if got := get(gw, "spec", "revision"); got != "canary" {
		t.Errorf("gateway revision = %v, want canary", got)
	}

	secret := objects(a, "remote-secrets.yaml")[0]
	for path, want := range map[string]any{
		"metadata.name":                                        "istio-remote-secret-r",
		"metadata.namespace":                                   "istio-system",
		"metadata.labels.istio/multiCluster":                   "true",
		"metadata.annotations.networking.istio.io/cluster":     "r",
		"metadata.annotations.meshfleet.dev/secret-keys":       "r",
		"metadata.annotations.kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent",
	} {
		keys := strings.SplitN(path, ".", 3)
		if got := get(secret, keys...); got != want {
			t.Errorf("remote secret %s = %v, want %v", path, got, want)
		}
	}
	if secret["data"] != nil || secret["stringData"] != nil {
		t.Errorf("placeholder carries data: it would overwrite what an operator filled in")
	}

	vs := p.Bases[0].Files[0].Objects[1]
	if got := get(vs, "metadata", "name"); got != "istiod-vs-canary" {
		t.Errorf("expose-istiod VirtualService = %v, want istiod-vs-canary", got)
	}
	route := get(vs, "spec", "tls").([]any)[0]
	if got := get(get(route, "route").([]any)[0], "destination", "host"); got != "istiod-canary.istio-system.svc.cluster.local" {
		t.Errorf("expose-istiod destination = %v", got)
	}
}
