package mesh_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/generator/mesh"
)

// The tests in this file check what a mesh needs to come up when Flux or
// Argo CD apply it as rendered, with nothing done by hand in between.

func parse(t *testing.T, src string) *fleet.Fleet {
	t.Helper()
	f, err := fleet.Parse("fleet.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// mixedFleet is two primaries on their own networks, each serving a remote
// on its network, with installer, secrets and CA filled in.
func mixedFleet(installer, revision, secrets, ca string) string {
	return fmt.Sprintf(`apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata: {name: t}
spec:
  mesh: {id: mesh1}
  istio: {version: 1.31.1, revision: %q}
  installer: %s
  delivery: {flux: {path: ./out}}
  secrets: %s
%s  clusters:
    a: {role: primary, network: n1, apiServer: "https://a.example.net", eastWestGateway: {address: 192.0.2.1}}
    a1: {role: remote, network: n1, controlPlane: a, apiServer: "https://a1.example.net"}
    b: {role: primary, network: n2, apiServer: "https://b.example.net", eastWestGateway: {address: 192.0.2.2}}
    b1: {role: remote, network: n2, controlPlane: b, apiServer: "https://b1.example.net"}
`, revision, installer, secrets, ca)
}

const (
	placeholder = "{provider: placeholder}"
	eso         = "{provider: external-secrets, store: {name: vault}, keyPrefix: mesh/prod}"
	certManager = "  ca: {certManager: {issuer: {name: mesh-root}}}\n"
)

var installers = []string{fleet.InstallerIstioctl, fleet.InstallerHelm, fleet.InstallerSail}

// stageOf returns the name of the stage that holds an object of that kind
// and name in c, or "".
func stageOf(c mesh.Cluster, kind, name string) string {
	for _, s := range c.Stages {
		for _, f := range s.Files {
			for _, o := range f.Objects {
				if o["kind"] == kind && get(o, "metadata", "name") == name {
					return s.Name
				}
			}
		}
	}
	return ""
}

func find(c mesh.Cluster, kind, name string) mesh.Object {
	for _, s := range c.Stages {
		for _, f := range s.Files {
			for _, o := range f.Objects {
				if o["kind"] == kind && get(o, "metadata", "name") == name {
					return o
				}
			}
		}
	}
	return nil
}

// Point 1: the reader account, its binding and token are in the first
// stage of every cluster another cluster reads, whatever the installer, so
// they never wait for anything that needs the primary's attach; they are
// not the charts' istio-reader-service-account, which no installer would
// let another owner create first. The binding names the reader
// ClusterRole of the revision.
func TestReaderInFirstStage(t *testing.T) {
	for _, installer := range installers {
		for _, rev := range []string{"", "canary"} {
			t.Run(installer+"/"+rev, func(t *testing.T) {
				p := mesh.Build(parse(t, mixedFleet(installer, rev, placeholder, "")))
				for _, c := range p.Clusters {
					// roleRef is immutable: the binding's name changes with
					// the revision it binds.
					binding := mesh.ReaderServiceAccount + "-istio-system"
					if rev != "" {
						binding = mesh.ReaderServiceAccount + "-" + rev + "-istio-system"
					}
					for _, o := range [][2]string{
						{"ServiceAccount", mesh.ReaderServiceAccount},
						{"ClusterRoleBinding", binding},
						{"Secret", mesh.ReaderServiceAccount + "-token"},
					} {
						if got := stageOf(c, o[0], o[1]); got != mesh.StageNamespace {
							t.Errorf("%s: %s/%s is in stage %q, want %q", c.Name, o[0], o[1], got, mesh.StageNamespace)
						}
					}
					if c.Stages[0].Name != mesh.StageNamespace {
						t.Errorf("%s: first stage is %s", c.Name, c.Stages[0].Name)
					}
					crb := find(c, "ClusterRoleBinding", binding)
					want := "istio-reader-clusterrole-istio-system"
					if rev != "" {
						want = "istio-reader-clusterrole-" + rev + "-istio-system"
					}
					if got := get(crb, "roleRef", "name"); got != want {
						t.Errorf("%s: reader binding roleRef = %v, want %s", c.Name, got, want)
					}
					token := find(c, "Secret", mesh.ReaderServiceAccount+"-token")
					if got := get(token, "metadata", "annotations", "kubernetes.io/service-account.name"); got != mesh.ReaderServiceAccount {
						t.Errorf("%s: token of %v", c.Name, got)
					}
				}
			})
		}
	}
}

// Point 2: in every cluster another cluster reads, a PushSecret pushes the
// reader token's token and ca.crt to exactly the key and properties the
// primaries' ExternalSecrets read; every key a primary reads is pushed.
func TestPushSecretsFeedExternalSecrets(t *testing.T) {
	p := mesh.Build(parse(t, mixedFleet(fleet.InstallerHelm, "", eso, "")))
	type ref struct{ key, property string }
	pushed := map[string]map[ref]bool{}
	for _, c := range p.Clusters {
		ps := find(c, "PushSecret", mesh.ReaderServiceAccount)
		if ps == nil {
			t.Errorf("%s: no PushSecret", c.Name)
			continue
		}
		if got := stageOf(c, "PushSecret", mesh.ReaderServiceAccount); got != mesh.StageNamespace {
			t.Errorf("%s: PushSecret in stage %q", c.Name, got)
		}
		if got := get(ps, "spec", "selector", "secret", "name"); got != mesh.ReaderServiceAccount+"-token" {
			t.Errorf("%s: PushSecret pushes Secret %v", c.Name, got)
		}
		if got := get(ps, "spec", "secretStoreRefs").([]any)[0]; get(got, "name") != "vault" || get(got, "kind") != "ClusterSecretStore" {
			t.Errorf("%s: PushSecret store %v", c.Name, got)
		}
		pushed[c.Name] = map[ref]bool{}
		for _, d := range get(ps, "spec", "data").([]any) {
			m := get(d, "match")
			rk, prop := get(m, "remoteRef", "remoteKey").(string), get(m, "remoteRef", "property").(string)
			if sk := get(m, "secretKey"); sk != prop {
				t.Errorf("%s: pushes token key %v as property %s", c.Name, sk, prop)
			}
			pushed[c.Name][ref{rk, prop}] = true
		}
		if want := (map[ref]bool{{"mesh/prod/" + c.Name + "/reader", "token"}: true, {"mesh/prod/" + c.Name + "/reader", "ca.crt"}: true}); fmt.Sprint(pushed[c.Name]) != fmt.Sprint(want) {
			t.Errorf("%s: pushes %v, want %v", c.Name, pushed[c.Name], want)
		}
	}
	reads := 0
	for _, c := range p.Clusters {
		for _, s := range c.Stages {
			for _, f := range s.Files {
				for _, o := range f.Objects {
					name, _ := get(o, "metadata", "name").(string)
					other, ok := strings.CutPrefix(name, "istio-remote-secret-")
					if o["kind"] != "ExternalSecret" || !ok {
						continue
					}
					for _, d := range get(o, "spec", "data").([]any) {
						r := ref{get(d, "remoteRef", "key").(string), get(d, "remoteRef", "property").(string)}
						reads++
						if !pushed[other][r] {
							t.Errorf("%s reads %v for %s, which %s does not push", c.Name, r, other, other)
						}
					}
				}
			}
		}
	}
	if reads != 12 { // two primaries read three clusters each, two properties per cluster
		t.Errorf("primaries read %d properties, want 12", reads)
	}
}

// Point 3: the placeholder cacerts says which keys the stage waits for,
// and with cert-manager each primary's cacerts is a Certificate from the
// fleet's issuer, in the first stage, never in a remote.
func TestCACertsGate(t *testing.T) {
	p := mesh.Build(parse(t, mixedFleet(fleet.InstallerHelm, "", placeholder, "")))
	ca := find(p.Clusters[0], "Secret", "cacerts")
	if got := get(ca, "metadata", "annotations", mesh.AnnotationWaitForKeys); got != mesh.CAKeySets {
		t.Errorf("cacerts placeholder %s = %v, want %s", mesh.AnnotationWaitForKeys, got, mesh.CAKeySets)
	}
	for _, remote := range []string{"tls.crt,tls.key,ca.crt", "ca-cert.pem,ca-key.pem,root-cert.pem,cert-chain.pem"} {
		if !slices.Contains(strings.Split(mesh.CAKeySets, "|"), remote) {
			t.Errorf("CAKeySets %q lacks istiod's layout %q", mesh.CAKeySets, remote)
		}
	}

	p = mesh.Build(parse(t, mixedFleet(fleet.InstallerHelm, "", eso, certManager)))
	for _, c := range p.Clusters {
		cert := find(c, "Certificate", "cacerts")
		if c.Role == fleet.Remote {
			if cert != nil {
				t.Errorf("remote %s has a CA", c.Name)
			}
			continue
		}
		if find(c, "ExternalSecret", "cacerts") != nil || find(c, "Secret", "cacerts") != nil {
			t.Errorf("%s: cacerts comes from cert-manager and from secrets", c.Name)
		}
		if got := stageOf(c, "Certificate", "cacerts"); got != mesh.StageNamespace {
			t.Errorf("%s: Certificate in stage %q", c.Name, got)
		}
		for path, want := range map[string]any{
			"apiVersion":              "cert-manager.io/v1",
			"metadata.namespace":      "istio-system",
			"spec.secretName":         "cacerts",
			"spec.isCA":               true,
			"spec.issuerRef.name":     "mesh-root",
			"spec.issuerRef.kind":     "ClusterIssuer",
			"spec.issuerRef.group":    "cert-manager.io",
			"spec.duration":           "8760h",
			"spec.renewBefore":        "720h",
			"spec.privateKey.size":    4096,
			"spec.subject.localities": nil, // checked below
		} {
			if want == nil {
				continue
			}
			if got := get(cert, strings.Split(path, ".")...); got != want {
				t.Errorf("%s: Certificate %s = %v, want %v", c.Name, path, got, want)
			}
		}
		if got := get(cert, "spec", "subject", "localities").([]any); len(got) != 1 || got[0] != c.Name {
			t.Errorf("%s: Certificate localities %v", c.Name, got)
		}
		if !slices.Contains(get(cert, "spec", "usages").([]any), "cert sign") {
			t.Errorf("%s: intermediate cannot sign", c.Name)
		}
	}
}

// gatewayService returns the east-west gateway Service's type,
// loadBalancerIP and annotations as an installer writes them.
func gatewayService(t *testing.T, installer string, c mesh.Cluster) (typ, ip any, annotations map[string]any) {
	t.Helper()
	switch installer {
	case fleet.InstallerIstioctl:
		gw := objects(c, "eastwest-gateway.yaml")[0]
		ig := get(gw, "spec", "components").(map[string]any)["ingressGateways"].([]any)[0]
		a, _ := get(ig, "k8s", "serviceAnnotations").(map[string]any)
		return get(ig, "k8s", "service", "type"), get(ig, "k8s", "service", "loadBalancerIP"), a
	case fleet.InstallerHelm:
		for _, s := range c.Stages {
			for _, ch := range s.Charts {
				if ch.Release == mesh.ReleaseEastWest {
					a, _ := get(ch.Values, "service", "annotations").(map[string]any)
					return get(ch.Values, "service", "type"), get(ch.Values, "service", "loadBalancerIP"), a
				}
			}
		}
	case fleet.InstallerSail:
		for _, o := range objects(c, "eastwest-gateway.yaml") {
			if o["kind"] == "Service" {
				a, _ := get(o, "metadata", "annotations").(map[string]any)
				return get(o, "spec", "type"), get(o, "spec", "loadBalancerIP"), a
			}
		}
	}
	t.Fatalf("%s: %s wrote no east-west gateway", c.Name, installer)
	return nil, nil, nil
}

// Point 4: every installer binds the east-west gateway Service to the
// fleet's address: spec.loadBalancerIP by default (canonical form), the
// fleet's annotations instead when it binds through them, nothing for a
// host name; the Service type is the fleet's.
func TestGatewayServiceBound(t *testing.T) {
	src := `apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata: {name: t}
spec:
  mesh: {id: mesh1}
  istio: {version: 1.31.1}
  delivery: {flux: {path: ./out}}
  clusters:
    a: {role: primary, network: n1, apiServer: "https://a.example.net", eastWestGateway: {address: "2001:DB8::1"}}
    b:
      role: primary
      network: n2
      apiServer: https://b.example.net
      eastWestGateway:
        address: 192.0.2.2
        service:
          bindAddress: annotations
          annotations: {metallb.io/loadBalancerIPs: 192.0.2.2, example.net/lb: internal}
    c: {role: primary, network: n3, apiServer: "https://c.example.net", eastWestGateway: {address: ew.c.example.net}}
    d:
      role: primary
      network: n4
      apiServer: https://d.example.net
      eastWestGateway: {address: 192.0.2.4, service: {type: NodePort, bindAddress: annotations, annotations: {x.example.net/ip: 192.0.2.4}}}
`
	want := map[string]struct {
		typ, ip     any
		annotations map[string]any
	}{
		"a": {"LoadBalancer", "2001:db8::1", nil},
		"b": {"LoadBalancer", nil, map[string]any{"metallb.io/loadBalancerIPs": "192.0.2.2", "example.net/lb": "internal"}},
		"c": {"LoadBalancer", nil, nil},
		"d": {"NodePort", nil, map[string]any{"x.example.net/ip": "192.0.2.4"}},
	}
	for _, installer := range installers {
		f := parse(t, src)
		f.Spec.Installer = installer
		for _, c := range mesh.Build(f).Clusters {
			typ, ip, a := gatewayService(t, installer, c)
			w := want[c.Name]
			if typ != w.typ || ip != w.ip || fmt.Sprint(a) != fmt.Sprint(w.annotations) {
				t.Errorf("%s %s: Service type %v, loadBalancerIP %v, annotations %v; want %v, %v, %v", installer, c.Name, typ, ip, a, w.typ, w.ip, w.annotations)
			}
		}
	}
}

// Point 5: a revisioned Sail control plane gets an IstioRevisionTag named
// default pointing at its Istio, so Sail installs the base chart and the
// istio-injection=enabled webhook; without a revision the Istio itself is
// named default and a tag of that name would conflict with it. Sail
// refuses a tag that targets a remote Istio: a remote gets the tag's
// injection webhook for the revision instead, and no validator (no istiod
// patches a remote's validating webhooks).
func TestSailDefaultTag(t *testing.T) {
	for _, rev := range []string{"", "stable"} {
		p := mesh.Build(parse(t, mixedFleet(fleet.InstallerSail, rev, placeholder, "")))
		for _, c := range p.Clusters {
			tag := find(c, "IstioRevisionTag", "default")
			if rev == "" {
				if tag != nil {
					t.Errorf("%s: tag default beside the Istio named default", c.Name)
				}
				continue
			}
			if c.Role == fleet.Remote {
				if tag != nil {
					t.Errorf("%s: IstioRevisionTag default targets a remote Istio, which Sail refuses", c.Name)
				}
				wh := find(c, "MutatingWebhookConfiguration", "istio-revision-tag-default")
				if got := stageOf(c, "MutatingWebhookConfiguration", "istio-revision-tag-default"); got != mesh.StageControlPlane {
					t.Errorf("%s: tag webhook in stage %q", c.Name, got)
				}
				if get(wh, "metadata", "labels", "istio.io/rev") != rev {
					t.Errorf("%s: tag webhook %v", c.Name, wh)
				}
				if find(c, "ValidatingWebhookConfiguration", "istiod-default-validator") != nil {
					t.Errorf("%s: a default validator on a remote", c.Name)
				}
				continue
			}
			if got := stageOf(c, "IstioRevisionTag", "default"); got != mesh.StageControlPlane {
				t.Errorf("%s: tag in stage %q", c.Name, got)
			}
			if get(tag, "apiVersion") != "sailoperator.io/v1" || get(tag, "spec", "targetRef", "kind") != "Istio" || get(tag, "spec", "targetRef", "name") != rev {
				t.Errorf("%s: tag %v", c.Name, tag)
			}
			if find(c, "Istio", rev) == nil {
				t.Errorf("%s: no Istio named %s", c.Name, rev)
			}
		}
	}
}

// Point 7: what a removed cluster leaves in the primaries (its remote
// secrets) is pruned, yet a placeholder is never overwritten; the CA and
// the istio-system Namespace are never pruned or deleted.
func TestPruning(t *testing.T) {
	const (
		fluxSSA   = "kustomize.toolkit.fluxcd.io/ssa"
		fluxPrune = "kustomize.toolkit.fluxcd.io/prune"
		argo      = "argocd.argoproj.io/sync-options"
	)
	annotations := func(o mesh.Object) map[string]any {
		a, _ := get(o, "metadata", "annotations").(map[string]any)
		return a
	}
	keeps := func(t *testing.T, what string, o mesh.Object) {
		t.Helper()
		a := annotations(o)
		if a[fluxPrune] != "disabled" || !strings.Contains(fmt.Sprint(a[argo]), "Prune=false") || !strings.Contains(fmt.Sprint(a[argo]), "Delete=false") {
			t.Errorf("%s can be pruned or deleted: %v", what, a)
		}
	}
	for _, ca := range []string{"", certManager} {
		p := mesh.Build(parse(t, mixedFleet(fleet.InstallerHelm, "", placeholder, ca)))
		for _, c := range p.Clusters {
			keeps(t, c.Name+" Namespace", find(c, "Namespace", "istio-system"))
			if c.Role == fleet.Primary {
				kind := "Secret"
				if ca != "" {
					kind = "Certificate"
				}
				keeps(t, c.Name+" cacerts "+kind, find(c, kind, "cacerts"))
			}
			for _, other := range p.Clusters {
				rs := find(c, "Secret", "istio-remote-secret-"+other.Name)
				if rs == nil {
					continue
				}
				a := annotations(rs)
				if a[fluxSSA] != "IfNotPresent" || !strings.Contains(fmt.Sprint(a[argo]), "ServerSideApply=true") {
					t.Errorf("%s: placeholder %s could be overwritten: %v", c.Name, other.Name, a)
				}
				if a[fluxPrune] != nil || strings.Contains(fmt.Sprint(a[argo]), "Prune=false") || strings.Contains(fmt.Sprint(a[argo]), "Delete=false") {
					t.Errorf("%s: placeholder %s is never pruned, so a removed cluster stays attached: %v", c.Name, other.Name, a)
				}
			}
		}
	}
}
