package overlays_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/generator/mesh"
	"github.com/meshfleet/meshfleet/overlays"
)

// deliveryFleet is a primary on net1 serving a remote on net2, delivered
// by delivery, its CA from ca ("" for the placeholder).
func deliveryFleet(t *testing.T, installer, delivery, ca string) overlays.Tree {
	t.Helper()
	src := fmt.Sprintf(`apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata: {name: t}
spec:
  mesh: {id: mesh1}
  istio: {version: 1.31.1}
  installer: %s
  delivery: %s
%s  clusters:
    p: {role: primary, network: net1, apiServer: "https://p.example.net", eastWestGateway: {address: 192.0.2.1}}
    r: {role: remote, network: net2, controlPlane: p, apiServer: "https://r.example.net"}
`, installer, delivery, ca)
	f, err := fleet.Parse("fleet.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := overlays.Layout(mesh.Build(f))
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// docs splits a YAML stream into objects.
func docs(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, d := range bytes.Split(b, []byte("\n---\n")) {
		var o map[string]any
		if err := yaml.Unmarshal(d, &o); err != nil {
			t.Fatal(err)
		}
		if o != nil {
			out = append(out, o)
		}
	}
	return out
}

func dig(o any, path ...string) any {
	for _, k := range path {
		m, ok := o.(map[string]any)
		if !ok {
			return nil
		}
		o = m[k]
	}
	return o
}

// Points 1 and 3 with Flux: every stage retries; HelmReleases retry a
// failed install or upgrade without end; only the stage holding the
// cacerts placeholder waits for its keys, with cert-manager the
// Certificate's own readiness holds the stage.
func TestFluxWaitsAndRetries(t *testing.T) {
	for _, ca := range []string{"", "  ca: {certManager: {issuer: {name: root}}}\n"} {
		tree := deliveryFleet(t, fleet.InstallerHelm, "{flux: {path: ./out}}", ca)
		for _, cluster := range []string{"p", "r"} {
			for _, k := range docs(t, tree["flux/"+cluster+"/stages.yaml"]) {
				name := dig(k, "metadata", "name").(string)
				if dig(k, "spec", "retryInterval") != "1m" {
					t.Errorf("%s: retryInterval %v", name, dig(k, "spec", "retryInterval"))
				}
				exprs, _ := dig(k, "spec", "healthCheckExprs").([]any)
				gated := name == "mesh-p-namespace" && ca == ""
				if gated != (len(exprs) == 1) {
					t.Errorf("%s (ca %q): healthCheckExprs %v", name, ca, exprs)
				}
				if gated {
					// wait: true would skip the placeholder once it exists
					// (IfNotPresent): the stage lists its objects instead.
					checks := fmt.Sprint(dig(k, "spec", "healthChecks"))
					if dig(k, "spec", "wait") != false || !strings.Contains(checks, "kind:Secret name:cacerts namespace:istio-system") || !strings.Contains(checks, "kind:Namespace name:istio-system") {
						t.Errorf("%s: wait %v, healthChecks %s", name, dig(k, "spec", "wait"), checks)
					}
				} else if dig(k, "spec", "wait") != true {
					t.Errorf("%s: wait %v", name, dig(k, "spec", "wait"))
				}
				if len(exprs) == 1 {
					e := exprs[0]
					cur, _ := dig(e, "current").(string)
					if dig(e, "apiVersion") != "v1" || dig(e, "kind") != "Secret" || !strings.Contains(cur, mesh.AnnotationWaitForKeys) || !strings.Contains(cur, "k in data && data[k] != ''") {
						t.Errorf("%s: health check %v", name, e)
					}
				}
			}
		}
		for _, p := range tree.Paths() {
			if !strings.HasSuffix(p, "helm-releases.yaml") {
				continue
			}
			for _, o := range docs(t, tree[p]) {
				if o["kind"] != "HelmRelease" {
					continue
				}
				for _, action := range []string{"install", "upgrade"} {
					if got := dig(o, "spec", action, "remediation", "retries"); got != float64(-1) {
						t.Errorf("%s %v: %s retries %v, want -1", p, dig(o, "metadata", "name"), action, got)
					}
				}
			}
		}
	}
}

// Points 1 and 3 with Argo CD: every Application retries without end, and
// the argocd-cm patch carries the Application health check and the Secret
// health check that keys on the placeholder's annotation.
func TestArgoCDWaitsAndRetries(t *testing.T) {
	tree := deliveryFleet(t, fleet.InstallerHelm, "{argocd: {repoURL: https://git.example.net/m.git, path: out}}", "")
	apps := 0
	for _, cluster := range []string{"p", "r"} {
		for _, a := range docs(t, tree["argocd/"+cluster+".yaml"]) {
			apps++
			if got := dig(a, "spec", "syncPolicy", "retry", "limit"); got != float64(-1) {
				t.Errorf("%v: retry limit %v", dig(a, "metadata", "name"), got)
			}
		}
	}
	if apps == 0 {
		t.Fatal("no Applications")
	}
	cm := docs(t, tree["argocd/"+overlays.ArgoCDHealthFile])
	if len(cm) != 1 || dig(cm[0], "metadata", "name") != "argocd-cm" || dig(cm[0], "metadata", "namespace") != "argocd" {
		t.Fatalf("health checks: %v", cm)
	}
	secret, _ := dig(cm[0], "data", "resource.customizations.health.Secret").(string)
	for _, want := range []string{mesh.AnnotationWaitForKeys, `"tls.crt", "tls.key", "ca.crt"`, `"ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"`, `hs.status = "Progressing"`} {
		if !strings.Contains(secret, want) {
			t.Errorf("Secret health check lacks %q:\n%s", want, secret)
		}
	}
	if strings.Contains(secret, "string.") || strings.Contains(secret, ":gmatch") {
		t.Errorf("Secret health check uses Lua's string library, which Argo CD does not open:\n%s", secret)
	}
	if dig(cm[0], "data", "resource.customizations.health.argoproj.io_Application") == nil {
		t.Error("no Application health check")
	}
	if strings.Contains(string(tree["argocd/"+overlays.Kustomize]), overlays.ArgoCDHealthFile) {
		t.Error("the app-of-apps applies the argocd-cm patch itself")
	}
}

// Point 1 with Argo CD: one app-of-apps syncs every cluster's Applications
// wave by wave, so every primary's remote secrets must come in an earlier
// wave than any cluster's gateways (a remote's gateway waits for its
// primary to hold its secret), and every reader in an earlier one still.
func TestArgoCDWavesAcrossClusters(t *testing.T) {
	for _, installer := range []string{fleet.InstallerIstioctl, fleet.InstallerHelm, fleet.InstallerSail} {
		tree := deliveryFleet(t, installer, "{argocd: {repoURL: https://git.example.net/m.git, path: out}}", "")
		wave := map[string]int{}
		for _, cluster := range []string{"p", "r"} {
			for _, a := range docs(t, tree["argocd/"+cluster+".yaml"]) {
				var w int
				fmt.Sscan(dig(a, "metadata", "annotations", "argocd.argoproj.io/sync-wave").(string), &w)
				wave[dig(a, "metadata", "name").(string)] = w
			}
		}
		if wave["mesh-r-namespace"] >= wave["mesh-p-remote-secrets"] {
			t.Errorf("%s: waves %v: r's reader comes after p's remote secrets", installer, wave)
		}
		gateways := 0
		for _, name := range []string{"mesh-p-gateways", "mesh-r-gateways", "mesh-p-istio-eastwestgateway", "mesh-r-istio-eastwestgateway"} {
			if w, ok := wave[name]; ok {
				gateways++
				if w <= wave["mesh-p-remote-secrets"] {
					t.Errorf("%s: waves %v: %s is not after p's remote secrets", installer, wave, name)
				}
			}
		}
		if gateways == 0 {
			t.Errorf("%s: no gateway Application", installer)
		}
	}
}

// With istioctl, revision tags are plain webhook configurations in stage
// control-plane: its Argo CD Application ignores what istiod patches
// into them, as the charts' Applications do.
func TestArgoIgnoresTagWebhooks(t *testing.T) {
	f, err := fleet.Parse("fleet.yaml", []byte(`apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata: {name: t}
spec:
  mesh: {id: mesh1}
  istio:
    revisions: {1-30-3: {version: 1.30.3}, 1-31-1: {version: 1.31.1}}
    tags: {default: 1-30-3}
  delivery: {argocd: {repoURL: "https://git.example.net/mesh.git", path: out}}
  clusters:
    p: {role: primary, network: net1, apiServer: "https://p.example.net"}
`))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := overlays.Layout(mesh.Build(f))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range docs(t, tree["argocd/p.yaml"]) {
		name := dig(a, "metadata", "name")
		ignore := dig(a, "spec", "ignoreDifferences")
		switch name {
		case "mesh-p-control-plane":
			found = true
			if ignore == nil {
				t.Errorf("%s ignores nothing istiod patches into the tag webhooks", name)
			}
		case "mesh-p-namespace":
			if ignore != nil {
				t.Errorf("%s ignores %v", name, ignore)
			}
		}
	}
	if !found {
		t.Error("no control-plane Application")
	}
}
