package overlays

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	"github.com/meshfleet/meshfleet/generator/fleet"
)

// stringFields are the string fields of a fleet, as paths into its JSON,
// and whether their value is written into the output as it is (possibly
// inside a longer string).
var stringFields = []struct {
	path    []string
	written bool
}{
	{[]string{"metadata", "name"}, false}, // only in the header comment
	{[]string{"spec", "mesh", "id"}, true},
	{[]string{"spec", "mesh", "trustDomain"}, true},
	{[]string{"spec", "istio", "version"}, true},
	{[]string{"spec", "istio", "hub"}, true},
	{[]string{"spec", "istio", "revision"}, true},
	{[]string{"spec", "istio", "charts"}, true},
	{[]string{"spec", "installer"}, false},
	{[]string{"spec", "delivery", "argocd", "repoURL"}, true},
	{[]string{"spec", "delivery", "argocd", "path"}, true},
	{[]string{"spec", "delivery", "argocd", "targetRevision"}, true},
	{[]string{"spec", "delivery", "argocd", "project"}, true},
	{[]string{"spec", "delivery", "argocd", "namespace"}, true},
	{[]string{"spec", "delivery", "flux", "path"}, true},
	{[]string{"spec", "delivery", "flux", "interval"}, true},
	{[]string{"spec", "secrets", "store", "name"}, true},
	{[]string{"spec", "secrets", "refreshInterval"}, true},
	{[]string{"spec", "secrets", "keyPrefix"}, true},
	{[]string{"spec", "clusters", "east", "network"}, true},
	{[]string{"spec", "clusters", "east", "apiServer"}, true},
	{[]string{"spec", "clusters", "west", "controlPlane"}, false},
	{[]string{"spec", "clusters", "east", "eastWestGateway", "address"}, true},
	{[]string{"spec", "clusters", "*"}, true}, // the name of cluster east
	{[]string{"spec", "extensions", "0", "jsonnet"}, false},
	{[]string{"ext", "resource"}, true}, // a string an extension writes, see below
}

const hostileFleet = `{
  "apiVersion": "meshfleet.dev/v1alpha1", "kind": "MeshFleet", "metadata": {"name": "demo"},
  "spec": {
    "mesh": {"id": "mesh1", "trustDomain": "mesh1.example.net"},
    "istio": {"version": "1.31.1", "hub": "registry.example.net/istio", "revision": "1-31",
              "charts": "https://charts.example.net/istio"},
    "installer": "helm",
    "delivery": {"argocd": {"repoURL": "https://git.example.net/mesh.git", "path": "mesh/rendered",
                 "targetRevision": "main", "project": "mesh", "namespace": "argocd"}},
    "secrets": {"provider": "external-secrets", "store": {"name": "vault"}, "refreshInterval": "1h", "keyPrefix": "istio"},
    "extensions": [{"jsonnet": "ext.jsonnet"}],
    "clusters": {
      "east": {"role": "primary", "network": "net1", "apiServer": "https://east.example.net:6443",
               "eastWestGateway": {"address": "192.0.2.10"}},
      "west": {"role": "remote", "network": "net1", "controlPlane": "east", "apiServer": "https://west.example.net:6443"}
    }
  }
}`

// renderWith puts s into field i of the fleet (or into the ConfigMap an
// extension adds: as a data key and value, a label value and an
// annotation key) and renders it. It returns the tree, or nil if
// meshfleet refused the input, which it must do with fleet.Errors or a
// positioned extension error, never with a panic.
func renderWith(t *testing.T, i int, s string) (Tree, *fleet.Fleet) {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(hostileFleet), &doc); err != nil {
		t.Fatal(err)
	}
	ext := `{ resources: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'istio-system' }, data: { k: 'v' } }] }`
	switch p := stringFields[i].path; {
	case p[0] == "ext":
		q, _ := json.Marshal(s) // a JSON string is a Jsonnet string
		ext = strings.NewReplacer("STR", string(q)).Replace(`{ resources: [{ apiVersion: 'v1', kind: 'ConfigMap',
  metadata: { name: 'x', namespace: 'istio-system', labels: { l: STR }, annotations: { [STR]: 'v' } },
  data: { [STR]: STR } }] }`)
	case len(p) > 2 && p[2] == "flux":
		v := s
		if p[3] == "path" {
			v = "./" + s // the schema wants a relative path
		}
		doc["spec"].(map[string]any)["delivery"] = map[string]any{"flux": map[string]any{"path": "./mesh", p[3]: v}}
	case p[len(p)-1] == "*":
		cl := doc["spec"].(map[string]any)["clusters"].(map[string]any)
		cl[s] = cl["east"]
		delete(cl, "east")
		cl["west"].(map[string]any)["controlPlane"] = s
	default:
		var m any = doc
		for _, k := range p[:len(p)-1] {
			if l, ok := m.([]any); ok {
				m = l[0]
				continue
			}
			m = m.(map[string]any)[k]
		}
		m.(map[string]any)[p[len(p)-1]] = s
	}
	dir := t.TempDir()
	src, _ := json.Marshal(doc)
	if err := os.WriteFile(filepath.Join(dir, "ext.jsonnet"), []byte(ext), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := fleet.Parse(filepath.Join(dir, "fleet.json"), src)
	if err != nil {
		var es fleet.Errors
		if !errors.As(err, &es) {
			t.Fatalf("field %v = %q: Parse error is a %T: %v", stringFields[i].path, s, err, err)
		}
		return nil, nil
	}
	tree, err := Render(f)
	if err != nil {
		if strings.Contains(err.Error(), "kustomize failed") {
			t.Logf("field %v = %q: %v", stringFields[i].path, s, err)
		}
		return nil, nil
	}
	return tree, f
}

// checkTree reads every file of the tree with a strict YAML parser, and
// the overlays as kustomize builds them; with the extension's string, it
// checks that the ConfigMap holds exactly s, on disk and after kustomize.
func checkTree(t *testing.T, i int, s string, tree Tree, f *fleet.Fleet) {
	t.Helper()
	found := false
	for _, p := range tree.Paths() {
		docs := parseAll(t, p, tree[p])
		if stringFields[i].written && !found {
			found = holds(docs, s)
		}
	}
	if stringFields[i].written && s != "" && !found {
		t.Errorf("field %v = %q: rendered, but no file holds the string", stringFields[i].path, s)
	}
	if stringFields[i].path[0] != "ext" {
		return
	}
	for _, c := range f.Clusters {
		m, err := Build(tree, ClusterDir(c.Name))
		if err != nil {
			t.Fatalf("rendered, but kustomize rejects cluster %s: %v", c.Name, err)
		}
		var cm map[string]any
		for _, d := range parseAll(t, "kustomize build "+c.Name, m) {
			if o, ok := d.(map[string]any); ok && o["kind"] == "ConfigMap" {
				cm = o
			}
		}
		md, _ := cm["metadata"].(map[string]any)
		data, _ := cm["data"].(map[string]any)
		labels, _ := md["labels"].(map[string]any)
		annotations, _ := md["annotations"].(map[string]any)
		if data[s] != s || labels["l"] != s || annotations[s] != "v" {
			t.Errorf("%q after kustomize: data %q, labels %q, annotations %q", s, data, labels, annotations)
		}
	}
}

func parseAll(t *testing.T, name string, b []byte) []any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []any
	for {
		var d any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s does not parse: %v\n%s", name, err, b)
		}
		docs = append(docs, d)
	}
}

// holds reports whether a key or string value in v contains s.
func holds(v any, s string) bool {
	switch v := v.(type) {
	case string:
		return strings.Contains(v, s)
	case map[string]any:
		for k, e := range v {
			if strings.Contains(k, s) || holds(e, s) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if holds(e, s) {
				return true
			}
		}
	}
	return false
}

// TestFleetHostileStrings puts every hostile string into every string
// field: meshfleet either refuses the fleet or writes files that parse
// strictly, hold the string unchanged and build with kustomize.
func TestFleetHostileStrings(t *testing.T) {
	if testing.Short() {
		t.Skip("renders a fleet per string and field")
	}
	tree, f := renderWith(t, 0, "demo")
	if tree == nil {
		t.Fatal("the base fleet does not render")
	}
	checkTree(t, 0, "demo", tree, f)
	rendered := 0
	for i := range stringFields {
		for _, s := range hostileStrings {
			if tree, f := renderWith(t, i, s); tree != nil {
				rendered++
				checkTree(t, i, s, tree, f)
			}
		}
	}
	t.Logf("%d fields × %d strings: %d rendered, the rest refused", len(stringFields), len(hostileStrings), rendered)
}

// FuzzFleetStrings is TestFleetHostileStrings with any string.
func FuzzFleetStrings(f *testing.F) {
	for i := range stringFields {
		for _, s := range []string{"x", "a\u2028b", "- x", "k: v\n---\nkind: ClusterRoleBinding"} {
			f.Add(uint8(i), s)
		}
	}
	f.Fuzz(func(t *testing.T, field uint8, s string) {
		i := int(field) % len(stringFields)
		s = string([]rune(s)) // what a JSON fleet can hold: invalid UTF-8 becomes U+FFFD
		if tree, fl := renderWith(t, i, s); tree != nil {
			checkTree(t, i, s, tree, fl)
		}
	})
}
