package mesh_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/generator/mesh"
	"github.com/meshfleet/meshfleet/generator/plan"
)

func ecpFleet(installer, address string) string {
	return fmt.Sprintf(`apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata: {name: t}
spec:
  mesh: {id: mesh1}
  istio: {version: 1.30.3}
  installer: %s
  delivery: {flux: {path: ./out}}
  clusters:
    cp: {role: external-controlplane, network: net-cp, apiServer: "https://cp.example.net", istiodGateway: {address: %s}}
    config: {role: remote, controlPlane: cp, configCluster: true, network: net-a, apiServer: "https://config.example.net"}
    r2: {role: remote, controlPlane: cp, network: net-b, apiServer: "https://r2.example.net", eastWestGateway: {address: 192.0.2.20}}
`, installer, address)
}

func cluster(p *mesh.Plan, name string) mesh.Cluster {
	for _, c := range p.Clusters {
		if c.Name == name {
			return c
		}
	}
	return mesh.Cluster{}
}

// What the external control plane's clusters need, and in which stage,
// whatever the installer: nothing a cluster needs first waits for another.
func TestExternalControlPlaneStages(t *testing.T) {
	for _, installer := range installers {
		for _, addr := range []string{"192.0.2.50", "istiod.cp.example.net"} {
			t.Run(installer+"/"+addr, func(t *testing.T) {
				p := mesh.Build(parse(t, ecpFleet(installer, addr)))
				cp, config, r2 := cluster(p, "cp"), cluster(p, "config"), cluster(p, "r2")
				for _, o := range []struct {
					c                 mesh.Cluster
					kind, name, stage string
					namespace         string
				}{
					{cp, "Secret", mesh.ConfigKubeconfigSecret, mesh.StageNamespace, "external-istiod"},
					{cp, "Secret", "cacerts", mesh.StageNamespace, "external-istiod"},
					{cp, "Gateway", "external-istiod-gw", mesh.StageGateways, "external-istiod"},
					{cp, "VirtualService", "external-virtualsvc", mesh.StageGateways, "external-istiod"},
					{cp, "Secret", "istio-remote-secret-r2", mesh.StageRemoteSecrets, "external-istiod"},
					{config, "ServiceAccount", plan.ConfigServiceAccount, mesh.StageNamespace, "external-istiod"},
					{config, "Secret", plan.ConfigServiceAccount + "-token", mesh.StageNamespace, "external-istiod"},
					{r2, "ServiceAccount", mesh.ReaderServiceAccount, mesh.StageNamespace, "external-istiod"},
				} {
					if got := stageOf(o.c, o.kind, o.name); got != o.stage {
						t.Errorf("%s: %s/%s in stage %q, want %q", o.c.Name, o.kind, o.name, got, o.stage)
					}
					if got := get(find(o.c, o.kind, o.name), "metadata", "namespace"); got != o.namespace {
						t.Errorf("%s: %s/%s in namespace %v, want %s", o.c.Name, o.kind, o.name, got, o.namespace)
					}
				}
				if find(cp, "Secret", "istio-remote-secret-config") != nil {
					t.Errorf("cp holds a remote secret of its config cluster: it reads it with istio-kubeconfig")
				}
				kc := find(cp, "Secret", mesh.ConfigKubeconfigSecret)
				if got := get(kc, "metadata", "annotations", mesh.AnnotationWaitForKeys); got != mesh.ConfigKubeconfigKey {
					t.Errorf("istio-kubeconfig %s = %v: the external istiod must not start before it is filled in", mesh.AnnotationWaitForKeys, got)
				}
				if got := get(find(r2, "Namespace", "external-istiod"), "metadata", "annotations", "topology.istio.io/controlPlaneClusters"); got != "config" {
					t.Errorf("r2: controlPlaneClusters = %v, want the config cluster", got)
				}
				host := addr != "192.0.2.50"
				if got := find(cp, "DestinationRule", "external-istiod-dr") != nil; got != host {
					t.Errorf("cp: DestinationRule present = %v, want %v (the certificate form only)", got, host)
				}
				if got := find(cp, "Secret", "istiod-gateway-tls") != nil; got != host {
					t.Errorf("cp: certificate placeholder present = %v, want %v", got, host)
				}
			})
		}
	}
}

// The plan's control planes of an external control plane's clusters, as
// the guide has them.
func TestExternalControlPlaneValues(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want map[string]map[string]any // cluster -> values path -> value
	}{
		{"192.0.2.50", map[string]map[string]any{
			"cp/external": {
				"global.caAddress": "192.0.2.50:15012", "global.istioNamespace": "external-istiod",
				"global.multiCluster.clusterName": "config", "global.operatorManageWebhooks": true, "global.configValidation": false,
				"pilot.env.EXTERNAL_ISTIOD": "true", "pilot.env.SHARED_MESH_CONFIG": "istio", "pilot.env.LOCAL_CLUSTER_SECRET_WATCHER": "true",
				"pilot.env.INJECTION_WEBHOOK_CONFIG_NAME":  "istio-sidecar-injector-external-istiod",
				"pilot.env.VALIDATION_WEBHOOK_CONFIG_NAME": "istio-validator-external-istiod",
			},
			"config/remote": {
				"global.configCluster": true, "global.istioNamespace": "external-istiod", "pilot.configMap": true,
				"global.remotePilotAddress": "192.0.2.50", "istiodRemote.injectionPath": "/inject/cluster/config/net/net-a",
			},
			"r2/remote": {"global.istioNamespace": "external-istiod", "global.remotePilotAddress": "192.0.2.50", "global.configCluster": nil},
		}},
		{"istiod.cp.example.net", map[string]map[string]any{
			"cp/external": {
				"global.caAddress":                        "istiod.cp.example.net:15012",
				"pilot.env.INJECTION_WEBHOOK_CONFIG_NAME": "",
			},
			"config/remote": {
				"istiodRemote.injectionURL": "https://istiod.cp.example.net:15017/inject/cluster/config/net/net-a",
				"base.validationURL":        "https://istiod.cp.example.net:15017/validate",
				"global.remotePilotAddress": nil,
			},
			"r2/remote": {"istiodRemote.injectionURL": "https://istiod.cp.example.net:15017/inject/cluster/r2/net/net-b", "base": nil},
		}},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			pl := plan.Build(parse(t, ecpFleet(fleet.InstallerIstioctl, tc.addr)))
			for _, c := range pl.Clusters {
				for _, cp := range c.ControlPlanes {
					want := tc.want[c.Name+"/"+string(cp.Role)]
					for path, v := range want {
						if got := get(cp.Values, splitPath(path)...); got != v {
							t.Errorf("%s %s: %s = %#v, want %#v", c.Name, cp.Role, path, got, v)
						}
					}
					if cp.Role == plan.RoleExternal {
						if got := get(cp.MeshConfig, "defaultConfig", "discoveryAddress"); got != want["global.caAddress"] {
							t.Errorf("discoveryAddress %v, want %v", got, want["global.caAddress"])
						}
						if got := get(cp.MeshConfig, "rootNamespace"); got != "external-istiod" {
							t.Errorf("rootNamespace %v", got)
						}
					}
				}
			}
		})
	}
}

func splitPath(p string) []string {
	var out []string
	start := 0
	for i := 0; i < len(p); i++ {
		if p[i] == '.' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return append(out, p[start:])
}

// A primary serving remotes at a host name: the remotes call the injection
// webhook at the name (and get no validator, so no validationURL), and the
// primary exposes istiod itself, with the certificate, instead of through
// the shared expose-istiod base.
func TestHostNamedPrimary(t *testing.T) {
	src := fmt.Sprintf(`apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata: {name: t}
spec:
  mesh: {id: mesh1}
  istio: {version: 1.31.1}
  ca: {certManager: {issuer: {name: mesh-root}}}
  clusters:
    a: {role: primary, network: n1, apiServer: "https://a.example.net", eastWestGateway: {address: ew.a.example.net}}
    r: {role: remote, network: n1, controlPlane: a, apiServer: "https://r.example.net"}
`)
	for _, installer := range installers {
		f := parse(t, src)
		f.Spec.Installer = installer
		f.Spec.Delivery.Flux = &fleet.Flux{Path: "./out", Interval: "10m"}
		p := mesh.Build(f)
		a, r := cluster(p, "a"), cluster(p, "r")
		if len(p.Bases) != 0 {
			t.Errorf("%s: shared bases %v: a host-named primary exposes istiod itself", installer, p.Bases)
		}
		for _, o := range [][2]string{{"Gateway", "istiod-gateway"}, {"VirtualService", "istiod-vs"}, {"VirtualService", "istiod-webhook-vs"}, {"DestinationRule", "istiod-webhook-dr"}, {"Certificate", "istiod-gateway-tls"}} {
			if got := stageOf(a, o[0], o[1]); got != mesh.StageGateways {
				t.Errorf("%s: %s/%s in stage %q", installer, o[0], o[1], got)
			}
		}
		if got := get(find(a, "Certificate", "istiod-gateway-tls"), "spec", "issuerRef", "name"); got != "mesh-root" {
			t.Errorf("%s: certificate issuer %v, want the mesh root issuer", installer, got)
		}
		id := read(t, installer, r, "")
		if id.injectionURL != "https://ew.a.example.net:15017/inject/cluster/r/net/n1" || id.validationURL != nil || id.injectionPath != nil {
			t.Errorf("%s: remote webhooks %+v", installer, id)
		}
	}
}

// With External Secrets the config cluster publishes its account's token
// and the external cluster's istio-kubeconfig fills from it by itself.
func TestExternalControlPlaneExternalSecrets(t *testing.T) {
	src := strings.Replace(ecpFleet(fleet.InstallerHelm, "192.0.2.50"), "  clusters:\n", "  secrets: "+eso+"\n  clusters:\n", 1)
	p := mesh.Build(parse(t, src))
	cp, config := cluster(p, "cp"), cluster(p, "config")
	if got := stageOf(cp, "ExternalSecret", mesh.ConfigKubeconfigSecret); got != mesh.StageNamespace {
		t.Errorf("cp: ExternalSecret istio-kubeconfig in stage %q", got)
	}
	if got := get(find(cp, "ExternalSecret", mesh.ConfigKubeconfigSecret), "spec", "data"); fmt.Sprint(got) == "" || !strings.Contains(fmt.Sprint(got), "mesh/prod/config/config") {
		t.Errorf("cp: istio-kubeconfig reads %v, want mesh/prod/config/config", got)
	}
	ps := find(config, "PushSecret", plan.ConfigServiceAccount)
	if got := stageOf(config, "PushSecret", plan.ConfigServiceAccount); got != mesh.StageNamespace {
		t.Errorf("config: PushSecret in stage %q", got)
	}
	if got := get(ps, "spec", "selector", "secret", "name"); got != plan.ConfigServiceAccount+"-token" {
		t.Errorf("config: PushSecret pushes %v", got)
	}
}

// With Helm, a remote of an external control plane installs the base chart
// into external-istiod; the chart puts its reader account into
// global.istioNamespace, so the release must carry it (there is no
// istio-system there for the chart's default).
func TestExternalControlPlaneHelmBaseNamespace(t *testing.T) {
	p := mesh.Build(parse(t, ecpFleet(fleet.InstallerHelm, "192.0.2.50")))
	for _, name := range []string{"config", "r2"} {
		found := false
		for _, s := range cluster(p, name).Stages {
			for _, ch := range s.Charts {
				if ch.Chart != "base" {
					continue
				}
				found = true
				if ch.Namespace != "external-istiod" || get(ch.Values, "global", "istioNamespace") != "external-istiod" {
					t.Errorf("%s: base release in %s with global.istioNamespace %v, want both external-istiod", name, ch.Namespace, get(ch.Values, "global", "istioNamespace"))
				}
			}
		}
		if !found {
			t.Errorf("%s: no base release", name)
		}
	}
}

// The config account and the reader bind the ClusterRoles the installer's
// charts make, which Sail names after the Istio (external-istiod) even
// without a fleet revision; a binding to a role nothing makes leaves the
// external istiod forbidden on its config cluster.
func TestExternalControlPlaneBindingsFollowChartRevision(t *testing.T) {
	for installer, want := range map[string]string{
		fleet.InstallerIstioctl: "istiod-clusterrole-external-istiod",
		fleet.InstallerHelm:     "istiod-clusterrole-external-istiod",
		fleet.InstallerSail:     "istiod-clusterrole-external-istiod-external-istiod",
	} {
		p := mesh.Build(parse(t, ecpFleet(installer, "192.0.2.50")))
		var roles []string
		for _, s := range cluster(p, "config").Stages {
			for _, f := range s.Files {
				for _, o := range f.Objects {
					if o["kind"] == "ClusterRoleBinding" {
						roles = append(roles, get(o, "roleRef", "name").(string))
					}
				}
			}
		}
		if !slices.Contains(roles, want) {
			t.Errorf("%s: config cluster binds ClusterRoles %v, want one of them %s", installer, roles, want)
		}
	}
}
