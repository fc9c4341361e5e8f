package extensions_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshfleet/meshfleet/generator/extensions"
	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/generator/mesh"
)

const fleetYAML = `apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata: {name: t}
spec:
  mesh: {id: mesh1}
  istio: {version: 1.31.1}
  extensions: [{jsonnet: ext/x.jsonnet}]
  clusters:
    a: {role: primary, network: n1, apiServer: "https://a.example.net"}
    b: {role: primary, network: n1, apiServer: "https://b.example.net"}
`

// plan writes a fleet with one extension into a temp dir, plus extra
// files, and runs the extension over its plan.
func plan(t *testing.T, ext string, extra map[string]string) (*mesh.Plan, error) {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{"fleet/fleet.yaml": fleetYAML, "fleet/ext/x.jsonnet": ext}
	for k, v := range extra {
		files[k] = v
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := fleet.Load(filepath.Join(root, "fleet/fleet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := mesh.Build(f)
	return p, extensions.Apply(p)
}

func find(c mesh.Cluster, kind, name string) mesh.Object {
	files := c.Istioctl
	for _, s := range c.Stages {
		files = append(files, s.Files...)
	}
	for _, f := range files {
		for _, o := range f.Objects {
			if o["kind"] == kind && o["metadata"].(map[string]any)["name"] == name {
				return o
			}
		}
	}
	return nil
}

func TestApplyAddsAndPatches(t *testing.T) {
	p, err := plan(t, `
local lib = import 'lib/labels.libsonnet';
function(cluster, role, network, mesh) {
  resources: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'info', namespace: 'istio-system' },
                data: { cluster: cluster, role: role, network: network, mesh: mesh.id, peers: std.join(',', mesh.clusters), replicas: 2, ratio: 0.5 } }],
  patches: [
    { target: { kind: 'Namespace', name: 'istio-system' }, patch: { metadata: { labels: lib } } },
    { target: { kind: 'IstioOperator', name: 'controlplane' }, patch: { spec: { meshConfig: null, hub: 'mirror.example.net/istio' } } },
  ],
}`, map[string]string{"fleet/ext/lib/labels.libsonnet": `{ team: 'mesh' }`})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Clusters {
		st := c.Stage(mesh.StageExtensions)
		if st == nil || len(st.Files) != 1 || st.Files[0].Name != "x.yaml" {
			t.Fatalf("cluster %s: extensions stage = %+v", c.Name, st)
		}
		data := st.Files[0].Objects[0]["data"].(map[string]any)
		want := map[string]any{"cluster": c.Name, "role": "primary", "network": "n1", "mesh": "mesh1", "peers": "a,b", "replicas": 2, "ratio": 0.5}
		for k, v := range want {
			if data[k] != v {
				t.Errorf("cluster %s: data.%s = %#v, want %#v", c.Name, k, data[k], v)
			}
		}
		ns := find(c, "Namespace", "istio-system")
		labels := ns["metadata"].(map[string]any)["labels"].(map[string]any)
		if labels["team"] != "mesh" || labels["topology.istio.io/network"] != "n1" {
			t.Errorf("cluster %s: namespace labels = %v", c.Name, labels)
		}
		spec := find(c, "IstioOperator", "controlplane")["spec"].(map[string]any)
		if _, ok := spec["meshConfig"]; ok || spec["hub"] != "mirror.example.net/istio" || spec["tag"] != "1.31.1" {
			t.Errorf("cluster %s: patched IstioOperator spec = %v", c.Name, spec)
		}
	}
}

func TestApplyErrors(t *testing.T) {
	tests := []struct {
		name, ext string
		extra     map[string]string
		want      string
	}{{

		name: "runtime error keeps Jsonnet's position",
		ext:  "function(cluster, role, network, mesh)\n  if role == 'primary' then error 'no primaries here' else {}",
		want: "/fleet/ext/x.jsonnet:2:29: no primaries here (extension evaluated for cluster a)",
	}, {
		name:  "import outside the fleet's directory",
		ext:   `import '../../secret.libsonnet'`,
		extra: map[string]string{"secret.libsonnet": "{}"},
		want:  `secret.libsonnet is outside`,
	}, {
		name: "result of the wrong shape",
		ext:  `{ resource: [] }`,
		want: `want an object with resources and patches: json: unknown field "resource"`,
	}, {
		name: "resource without kind",
		ext:  `{ resources: [{ metadata: { name: 'x' } }] }`,
		want: "resources[0] has no kind",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := plan(t, tt.ext, tt.extra)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Apply = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	_, err := plan(t, `{ patches: [{ target: { kind: 'Namespace', name: 'istio-sytem' }, patch: {} }] }`, nil)
	if want := "/fleet/ext/x.jsonnet: patches[0]: matches no object: the cluster has no Namespace istio-sytem (cluster a)"; err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("Apply = %v, want it to end in %q", err, want)
	}
}

// TestApplyRefusesSecrets: no extension can add or patch secret material,
// and the refusal points into the extension file.
func TestApplyRefusesSecrets(t *testing.T) {
	const key = "-----BEGIN RSA PRIVATE KEY-----\\nMIIEow\\n-----END RSA PRIVATE KEY-----\\n"
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJl"
	tests := []struct{ name, ext, want string }{
		{"Secret with data", "{\n  resources: [{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'istio-system' },\n    data: { k: 'dg==' } }],\n}",
			"x.jsonnet:3:5: resources[0].data: extensions may not add Secrets with data"},
		{"Secret with stringData", "{ resources: [{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'x' }, stringData: { k: 'v' } }] }",
			"x.jsonnet:1:92: resources[0].stringData: extensions may not add Secrets with data"},
		{"ConfigMap with a private key", "{ resources: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'x' },\n  data: { 'tls.key': '" + key + "' } }] }",
			"x.jsonnet:2:22: resources[0].data.tls.key: holds a PEM private key"},
		{"ConfigMap with a base64 private key", "{ resources: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'x' }, binaryData: { k: std.base64('" + key + "') } }] }",
			"resources[0].binaryData.k: holds a PEM private key (base64-encoded)"},
		{"kubeconfig with a token", "{ resources: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'x' }, data: { kubeconfig: 'users:\\n- name: a\\n  user:\\n    token: abc123\\n' } }] }",
			"resources[0].data.kubeconfig: holds a credential"},
		{"JWT in an annotation", "{ resources: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'x', annotations: { t: '" + jwt + "' } } }] }",
			"x.jsonnet:1:111: resources[0].metadata.annotations.t: holds a JSON Web Token"},
		{"URL with credentials", "{ resources: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'x' }, data: { repo: 'https://user:pw@git.example.net/r.git' } }] }",
			"resources[0].data.repo: holds a URL with a password"},
		{"token in a URL query", "{ resources: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'x' }, data: { u: 'https://h.example.net/x?access_token=abc' } }] }",
			"resources[0].data.u: holds a URL with a credential-like query parameter"},
		{"ConfigMap with a token entry", "{ resources: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'x' },\n  data: { 'github-token': 'abc' } }] }",
			"x.jsonnet:2:11: resources[0].data.github-token: a data entry named like a credential"},
		{"ConfigMap patched with a key file", "{ patches: [{ target: { kind: 'Namespace', name: 'istio-system' }, patch: { data: { 'tls.key': 'x' } } }] }",
			"patches[0].patch.data.tls.key: a data entry named like a credential"},
		{"key too long for YAML", "{ resources: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'x' },\n  data: { ['" + strings.Repeat("k", 1100) + "']: 'v' } }] }",
			"x.jsonnet:2:11: resources[0].data: a key of 1100 bytes"},
		{"merge key", "{ resources: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'x' }, data: { '<<': 'v' } }] }",
			"resources[0].data: key \"<<\""},
		{"patch into cacerts", "{ patches: [{ target: { kind: 'Secret', name: 'cacerts' },\n  patch: { stringData: { 'ca-key.pem': 'x' } } }] }",
			"x.jsonnet:2:12: patches[0].patch.stringData: extensions may not patch the stringData of Secret cacerts"},
		{"key material patched anywhere", "{ patches: [{ target: { kind: 'Namespace', name: 'istio-system' }, patch: { metadata: { annotations: { k: '" + key + "' } } } }] }",
			"patches[0].patch.metadata.annotations.k: holds a PEM private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := plan(t, tt.ext, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Apply = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// An extension patches a Helm release as a HelmRelease, through
// spec.values, whether Flux or Argo CD runs it.
func TestApplyPatchesHelmReleases(t *testing.T) {
	root := t.TempDir()
	src := strings.Replace(fleetYAML, "  extensions:", "  installer: helm\n  delivery: {argocd: {repoURL: \"https://git.example.net/mesh.git\", path: out}}\n  extensions:", 1)
	ext := `function(cluster, role, network, mesh) {
  patches: [{target: {kind: 'HelmRelease', name: 'istiod'}, patch: {spec: {values: {pilot: {env: {PILOT_X: cluster}}, global: {proxy: null}}}}}],
}`
	for name, content := range map[string]string{"fleet.yaml": src, "ext/x.jsonnet": ext} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := fleet.Load(filepath.Join(root, "fleet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := mesh.Build(f)
	if err := extensions.Apply(p); err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Clusters {
		found := false
		for _, s := range c.Stages {
			for _, ch := range s.Charts {
				if ch.Release != mesh.ReleaseIstiod {
					continue
				}
				found = true
				env, _ := ch.Values["pilot"].(map[string]any)["env"].(map[string]any)
				if env["PILOT_X"] != c.Name {
					t.Errorf("%s: istiod values %v lack the patch", c.Name, ch.Values)
				}
				if ch.Values["global"].(map[string]any)["meshID"] != "mesh1" {
					t.Errorf("%s: the patch lost meshfleet's values: %v", c.Name, ch.Values)
				}
			}
		}
		if !found {
			t.Errorf("%s: no istiod release", c.Name)
		}
	}
}

// The plan shares one remote secret among the clusters that read its
// cluster: a patch for one cluster must not reach the others' copies.
func TestPatchOfASharedObjectStaysInItsCluster(t *testing.T) {
	three := strings.Replace(fleetYAML, "    b: {role: primary", "    c: {role: primary, network: n1, apiServer: \"https://c.example.net\"}\n    b: {role: primary", 1)
	p, err := plan(t, `
function(cluster, role, network, mesh) {
  patches: if cluster == 'a' then [
    { target: { kind: 'Secret', name: 'istio-remote-secret-c' }, patch: { metadata: { labels: { patched: cluster } } } },
  ] else [],
}`, map[string]string{"fleet/fleet.yaml": three})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Clusters {
		if c.Name == "c" {
			continue
		}
		s := find(c, "Secret", "istio-remote-secret-c")
		if s == nil {
			t.Fatalf("cluster %s has no remote secret of c", c.Name)
		}
		got, want := s["metadata"].(map[string]any)["labels"].(map[string]any)["patched"], map[string]any{"a": "a", "b": nil}[c.Name]
		if got != want {
			t.Errorf("cluster %s: label patched = %v, want %v", c.Name, got, want)
		}
	}
}
