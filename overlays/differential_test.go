package overlays

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	yaml "go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/krusty"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/internal/fleetgen"
)

// The differential tests judge fastBuild by the real kustomize CLI (the
// one pinned in hack/tools/go.mod, which users and GitOps controllers
// run; the same kustomize release as the krusty we link): for every
// overlay root of every tree, either fastBuild accepts it and prints
// exactly what `kustomize build` prints, or fastBuild declines and
// kustomize's own build (krusty) decides, and Verify rejects whatever the
// CLI rejects. MESHFLEET_DIFF_FLEETS sets how many random fleets to try
// (default 24); MESHFLEET_KUSTOMIZE names a kustomize binary to use.

var kustomizeBin = sync.OnceValues(func() (string, error) {
	if p := os.Getenv("MESHFLEET_KUSTOMIZE"); p != "" {
		return p, nil
	}
	out, err := exec.Command("go", "tool", "-n", "-modfile=../hack/tools/go.mod", "kustomize").Output()
	return strings.TrimSpace(string(out)), err
})

func kustomizeCLI(t *testing.T) string {
	t.Helper()
	p, err := kustomizeBin()
	if err != nil {
		t.Skipf("no kustomize CLI (go tool -n kustomize: %v); set MESHFLEET_KUSTOMIZE", err)
	}
	return p
}

// diffStats counts how the roots were decided, to show the fast path is
// what runs on meshfleet's own trees.
type diffStats struct {
	mu                              sync.Mutex
	fast, fallback, rejected, roots int
}

// checkTree writes t to disk and checks every root of it (or roots, if
// given) against the kustomize CLI.
func checkTree(t *testing.T, tree Tree, st *diffStats, roots ...string) {
	t.Helper()
	bin := kustomizeCLI(t)
	dir := t.TempDir()
	for p, b := range tree {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if len(roots) == 0 {
		roots = Roots(tree)
	}
	docs := newDocCache() // shared by the roots, as in verify
	for _, root := range roots {
		cmd := exec.Command(bin, "build", filepath.Join(dir, filepath.FromSlash(root)))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cliErr := cmd.Run()
		objs, fast := fastBuild(tree, root, docs)
		verifyErr := Verify(tree, []string{root})
		st.mu.Lock()
		st.roots++
		switch {
		case cliErr != nil:
			st.rejected++
		case fast:
			st.fast++
		default:
			st.fallback++
			t.Logf("%s: left to krusty", root)
		}
		st.mu.Unlock()
		if cliErr != nil {
			if fast {
				t.Errorf("%s: fastBuild accepted an overlay kustomize rejects: %s", root, stderr.String())
			}
			if verifyErr == nil {
				t.Errorf("%s: Verify accepted an overlay kustomize rejects: %s", root, stderr.String())
			}
			continue
		}
		var got []byte
		var err error
		if fast {
			got, err = asYAML(objs)
		} else {
			got, err = krustyOnly(tree, root)
		}
		if err != nil {
			t.Errorf("%s: %v", root, err)
			continue
		}
		if !bytes.Equal(got, stdout.Bytes()) {
			t.Errorf("%s: fast=%v build differs from kustomize build:\n%s", root, fast, firstDiff(got, stdout.Bytes()))
		}
		if verifyErr != nil && !strings.Contains(verifyErr.Error(), "has no namespace") {
			t.Errorf("%s: Verify rejects an overlay kustomize builds: %v", root, verifyErr)
		}
	}
}

// krustyOnly is kustomize's own build of an overlay, without meshfleet's
// namespace rule.
func krustyOnly(tree Tree, root string) ([]byte, error) {
	fs, err := memFS(tree)
	if err != nil {
		return nil, err
	}
	m, err := krusty.MakeKustomizer(BuildOptions()).Run(fs, "/"+root)
	if err != nil {
		return nil, err
	}
	return m.AsYaml()
}

func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n  meshfleet: %q\n  kustomize: %q", i+1, gl, wl)
		}
	}
	return "(equal lines, different bytes)"
}

func (st *diffStats) report(t *testing.T) {
	t.Logf("%d roots: %d built by fastBuild, %d by krusty, %d rejected by kustomize", st.roots, st.fast, st.fallback, st.rejected)
}

// TestFastBuildMatchesKustomize: every example and generated fleets of
// every layout fleetgen writes.
func TestFastBuildMatchesKustomize(t *testing.T) {
	var st diffStats
	fleets, _ := filepath.Glob("../examples/*/fleet.yaml")
	for _, file := range fleets {
		t.Run(filepath.Base(filepath.Dir(file)), func(t *testing.T) {
			f, err := fleet.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			tree, err := layOut(f)
			if err != nil {
				t.Fatal(err)
			}
			checkTree(t, tree, &st)
		})
	}
	for _, layout := range []string{fleetgen.MultiPrimaryMultiNetwork, fleetgen.PrimaryRemote} {
		t.Run(layout, func(t *testing.T) {
			f, err := fleet.Parse("fleet.yaml", fleetgen.YAML(layout, 23))
			if err != nil {
				t.Fatal(err)
			}
			tree, err := layOut(f)
			if err != nil {
				t.Fatal(err)
			}
			checkTree(t, tree, &st)
		})
	}
	st.report(t)
	if st.fallback > 0 || st.rejected > 0 {
		t.Errorf("meshfleet's own trees should all take the fast path")
	}
}

// TestFastBuildMatchesKustomizeRandom: random valid fleets of all four
// topologies, every installer, delivery and secret provider, with a
// Jsonnet extension adding random objects (odd strings, numbers, nulls,
// workloads, kustomize's own annotations, duplicates of planned objects,
// objects without namespace) and patching planned ones.
func TestFastBuildMatchesKustomizeRandom(t *testing.T) {
	n := 24
	if s := os.Getenv("MESHFLEET_DIFF_FLEETS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	var st diffStats
	valid := map[string]int{}
	for i := range n {
		r := rand.New(rand.NewPCG(uint64(i), 13))
		dir := t.TempDir()
		src, topology := randomFleet(r, dir)
		f, err := fleet.Parse(filepath.Join(dir, "fleet.yaml"), src)
		if err != nil {
			t.Logf("fleet %d (%s) is invalid, skipped: %v", i, topology, err)
			continue
		}
		tree, err := layOut(f)
		if err != nil {
			t.Logf("fleet %d (%s): %v", i, topology, err)
			continue
		}
		valid[topology]++
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkTree(t, tree, &st) })
	}
	t.Logf("valid fleets by topology: %v", valid)
	st.report(t)
	if n >= 24 && len(valid) < 4 {
		t.Errorf("random fleets cover only %v", valid)
	}
}

func randomFleet(r *rand.Rand, dir string) (src []byte, topology string) {
	multiPrimary, multiNetwork := r.IntN(2) == 0, r.IntN(2) == 0
	topology = map[bool]string{true: "multi-primary", false: "primary-remote"}[multiPrimary] + "/" +
		map[bool]string{true: "multi-network", false: "single-network"}[multiNetwork]
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: meshfleet.dev/v1alpha1\nkind: MeshFleet\nmetadata:\n  name: rnd\nspec:\n  mesh:\n    id: mesh1\n  istio:\n    version: 1.31.1\n")
	if r.IntN(2) == 0 {
		b.WriteString("    revision: canary\n")
	}
	installer := []string{"istioctl", "helm", "sail"}[r.IntN(3)]
	fmt.Fprintf(&b, "  installer: %s\n", installer)
	delivery := r.IntN(3)
	if installer == "helm" && delivery == 0 {
		delivery = 1 + r.IntN(2) // Flux or Argo CD runs the Helm releases
	}
	switch delivery {
	case 1:
		b.WriteString("  delivery:\n    flux:\n      path: ./out\n")
	case 2:
		b.WriteString("  delivery:\n    argocd:\n      repoURL: https://git.example.net/mesh.git\n      path: out\n")
	}
	if r.IntN(2) == 0 {
		b.WriteString("  secrets:\n    provider: external-secrets\n    store:\n      name: vault\n")
	}
	b.WriteString("  extensions:\n  - jsonnet: ext.jsonnet\n  clusters:\n")
	n := 1 + r.IntN(5)
	primaries := n
	if !multiPrimary {
		n++ // at least one remote
		primaries = 1 + r.IntN(2)
		if primaries >= n {
			primaries = n - 1
		}
	}
	for i := range n {
		name := fmt.Sprintf("c%d", i)
		network := "net0"
		if multiNetwork {
			network = fmt.Sprintf("net%d", i)
		}
		fmt.Fprintf(&b, "    %s:\n      network: %s\n      apiServer: https://%s.example.net:6443\n", name, network, name)
		if i < primaries {
			b.WriteString("      role: primary\n")
		} else {
			fmt.Fprintf(&b, "      role: remote\n      controlPlane: c%d\n", r.IntN(primaries))
		}
		if multiNetwork || !multiPrimary && i < primaries {
			fmt.Fprintf(&b, "      eastWestGateway:\n        address: 198.51.100.%d\n", 10+i)
		}
	}
	os.WriteFile(filepath.Join(dir, "ext.jsonnet"), randomExtension(r), 0o644)
	return []byte(b.String()), topology
}

// tricky are strings YAML writers and readers get wrong.
var tricky = []string{
	"plain", "yes", "No", "on", "OFF", "y", "null", "Null", "~", "true", "False", "1", "0o17", "0x1F", "1.0",
	"1e3", "+1", "-1", ".inf", "-.Inf", ".nan", "2026-01-01", "2026-01-01T10:00:00Z", "12:30:00", "<<", "=",
	"", " ", " lead", "trail ", "a: b", "a:b", "a #b", "a#b", "#x", "&anchor", "*alias", "!tag", "%dir", "@at",
	"`tick", "- x", "-x", "? x", "[x]", "{x}", "'q'", `"dq"`, `back\slash`, "tab\there", "cr\rlf", "line\n",
	"two\nlines\n", "\nleading newline\n", "  indented\nblock\n", "trailing\n\n", "ünïcødé ☃", "\u0085nel",
	"\u2028ls", "\ufeffbom", "\u00a0nbsp", "\x7fdel", "\x01ctl", "./rel", "/abs/path", "C:\\win", "http://x/y?a=b&c=d",
	"a,b", "k=v", "x@y.z", "a+b", "很好", "emoji 😀", "a  b", "…", "-", "--", "---", "...",
}

func randomValue(r *rand.Rand, depth int) any {
	switch k := r.IntN(10); {
	case k < 4 || depth > 3:
		return tricky[r.IntN(len(tricky))]
	case k == 4:
		return []any{1, 0, -7, 123456789012, 1.5, 2.0, 1e21, 0.1, -0.0, 3.14159}[r.IntN(10)]
	case k == 5:
		return r.IntN(2) == 0
	case k == 6:
		if r.IntN(4) == 0 {
			return nil
		}
		return tricky[r.IntN(len(tricky))]
	case k == 7:
		var l []any
		for range r.IntN(4) {
			l = append(l, randomValue(r, depth+1))
		}
		return l
	default:
		m := map[string]any{}
		for range r.IntN(4) {
			m[tricky[r.IntN(len(tricky))]] = randomValue(r, depth+1)
		}
		return m
	}
}

func randomExtension(r *rand.Rand) []byte {
	var resources []any
	for i := range r.IntN(4) {
		data := map[string]any{}
		for range 1 + r.IntN(4) {
			data[fmt.Sprintf("k%d", r.IntN(100))] = tricky[r.IntN(len(tricky))]
		}
		resources = append(resources, map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": fmt.Sprintf("ext-%d", i), "namespace": "istio-system",
				"labels": map[string]any{"team": "mesh"}},
			"data": data,
		})
	}
	if r.IntN(2) == 0 {
		resources = append(resources, map[string]any{
			"apiVersion": "example.com/v1", "kind": "Widget",
			"metadata": map[string]any{"name": "w", "namespace": "istio-system",
				"annotations": map[string]any{"note": tricky[r.IntN(len(tricky))]}},
			"spec": randomValue(r, 0),
		})
	}
	switch r.IntN(8) {
	case 0: // a workload: commonAnnotations reach its pod template
		resources = append(resources, map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "d", "namespace": "istio-system"},
			"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
				"containers": []any{map[string]any{"name": "c", "image": "busybox"}}}}},
		})
	case 1: // kustomize drops local-config objects
		resources = append(resources, map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": "local", "namespace": "istio-system",
				"annotations": map[string]any{"config.kubernetes.io/local-config": "true"}},
		})
	case 2: // a duplicate of a planned object: kustomize refuses the overlay
		resources = append(resources, map[string]any{
			"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "istio-system"},
		})
	case 3: // no namespace: kustomize builds it, meshfleet refuses it
		resources = append(resources, map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "nons"},
		})
	case 4: // cluster-scoped, and a kind that ends in List
		resources = append(resources, map[string]any{
			"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
			"metadata": map[string]any{"name": "ext-reader"},
			"rules":    []any{map[string]any{"apiGroups": []any{""}, "resources": []any{"pods"}, "verbs": []any{"get"}}},
		}, map[string]any{
			"apiVersion": "example.com/v1", "kind": "WidgetList",
			"metadata": map[string]any{"name": "wl", "namespace": "istio-system"},
		})
	case 5: // empty annotations and a null
		resources = append(resources, map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": "empty", "namespace": "istio-system", "annotations": map[string]any{}},
			"data":     map[string]any{"a": nil},
		})
	}
	res, _ := json.Marshal(resources)
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{
		"ext/note": tricky[r.IntN(len(tricky))]}}})
	return fmt.Appendf(nil, `function(cluster, role, network, mesh) {
  resources: %s,
  patches: [{ target: { kind: 'Namespace', name: 'istio-system' }, patch: %s }],
}
`, res, patch)
}

// TestVerifyRejectsWhatKustomizeRejects breaks rendered trees in the ways
// kustomize refuses and checks that the CLI refuses them, that fastBuild
// declines them and that Verify rejects them.
func TestVerifyRejectsWhatKustomizeRejects(t *testing.T) {
	f, err := fleet.Load("../examples/multi-primary-with-remotes/fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base, err := layOut(f)
	if err != nil {
		t.Fatal(err)
	}
	root := ClusterDir("eu-primary")
	kust := root + "/namespace/" + Kustomize
	ns := root + "/namespace/namespace.yaml"
	edits := map[string]func(Tree){
		"duplicate object": func(t Tree) { t[ns] = append(t[ns], bytes.TrimPrefix(base[ns], []byte(firstLine(base[ns])))...) },
		"missing file":     func(t Tree) { t[kust] = append(t[kust], "- gone.yaml\n"...) },
		"missing base":     func(t Tree) { t[kust] = append(t[kust], "- ../../../shared/gone\n"...) },
		"file outside the root": func(t Tree) {
			t["shared/x.yaml"] = []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: a\n")
			t[kust] = append(t[kust], "- ../../../shared/x.yaml\n"...)
		},
		"cycle": func(t Tree) { t[kust] = append(t[kust], "- ..\n"...) },
		"directory without kustomization": func(t Tree) {
			t[root+"/namespace/sub/x.yaml"] = []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: a\n")
			t[kust] = append(t[kust], "- sub\n"...)
		},
		"malformed YAML": func(t Tree) { t[ns] = append(t[ns], "---\nkind: [\n"...) },
		"object without name": func(t Tree) {
			t[ns] = append(t[ns], "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: a\n"...)
		},
		"unknown kustomize field": func(t Tree) { t[kust] = append(t[kust], "bogus: 1\n"...) },
		"absolute resource path":  func(t Tree) { t[kust] = append(t[kust], "- /etc/passwd\n"...) },
		"kustomization is a list": func(t Tree) { t[kust] = []byte("- resources\n") },
		"non-string annotation":   func(t Tree) { t[kust] = append(t[kust], "commonAnnotations:\n  a: {b: c}\n"...) },
		"duplicate key in object": func(t Tree) {
			t[ns] = append(t[ns], "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: k\n  name: k\n  namespace: a\n"...)
		},
	}
	var st diffStats
	for name, edit := range edits {
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			tree := Tree{}
			for p, b := range base {
				tree[p] = bytes.Clone(b)
			}
			edit(tree)
			before := st.rejected
			checkTree(t, tree, &st, root)
			if st.rejected == before {
				t.Errorf("kustomize builds the tree with %s; the case tests nothing", name)
			}
		})
	}
	st.report(t)
}

func firstLine(b []byte) string {
	i := bytes.IndexByte(b, '\n')
	return string(b[:i+1])
}

// TestParseStreamMatchesYAMLv3: whenever the fast reader accepts a file,
// it reads what yaml.v3 reads. Every file of every example, and files of
// random objects through the writer.
func TestParseStreamMatchesYAMLv3(t *testing.T) {
	var files [][]byte
	fleets, _ := filepath.Glob("../examples/*/fleet.yaml")
	for _, file := range fleets {
		f, err := fleet.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		tree, err := layOut(f)
		if err != nil {
			t.Fatal(err)
		}
		for p, b := range tree {
			if strings.HasSuffix(p, ".yaml") && !strings.HasSuffix(p, Kustomize) {
				files = append(files, b)
			}
		}
	}
	examples := len(files)
	r := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		var b bytes.Buffer
		b.WriteString("# header\n")
		for range 1 + r.IntN(3) {
			b.WriteString("---\n")
			m := map[string]any{"kind": "X", "apiVersion": "v1"}
			if r.IntN(2) == 0 {
				m["metadata"] = map[string]any{"name": "n"} // so that accept, after the reader, takes it
			}
			for range r.IntN(5) {
				m[tricky[r.IntN(len(tricky))]] = randomValue(r, 0)
			}
			if err := marshal(&b, m); err != nil {
				continue // a key the writer refuses, like "<<"
			}
		}
		files = append(files, b.Bytes())
	}
	yamlv3 := func(b []byte) []map[string]any {
		var want []map[string]any
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var m map[string]any
			if err := dec.Decode(&m); err == io.EOF {
				return want
			} else if err != nil {
				t.Fatalf("the fast reader accepts what yaml.v3 rejects (%v):\n%s", err, b)
			}
			want = append(want, m)
		}
	}
	accepted, streamed := 0, 0
	for i, b := range files {
		got, ok := parseStream(b)
		if !ok {
			if i < examples {
				t.Errorf("the fast reader declines a file meshfleet wrote:\n%s", b)
			}
			continue
		}
		accepted++
		want := yamlv3(b)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("the fast reader reads\n%#v\nyaml.v3 reads\n%#v\nfrom\n%s", got, want, b)
		}
		// What verification runs: document by document, through a cache.
		objs, ok := newDocCache().stream(b)
		if !ok {
			if i < examples {
				t.Errorf("the document reader declines a file meshfleet wrote:\n%s", b)
			}
			continue
		}
		streamed++
		var ms []map[string]any
		for _, o := range objs {
			ms = append(ms, o.m)
		}
		if !reflect.DeepEqual(ms, want) {
			t.Errorf("the document reader reads\n%#v\nyaml.v3 reads\n%#v\nfrom\n%s", ms, want, b)
		}
	}
	t.Logf("%d files, %d accepted by the fast reader, %d by the document reader", len(files), accepted, streamed)
}

// A document two overlays hold is read once; the annotations one
// overlay sets must not reach the other's object.
func TestSharedDocumentsKeepTheirOverlaysApart(t *testing.T) {
	doc := "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: a\n"
	tree := Tree{
		"one/kustomization.yaml": []byte("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\ncommonAnnotations:\n  wave: \"1\"\nresources:\n- x.yaml\n"),
		"one/x.yaml":             []byte("# one\n" + doc),
		"two/kustomization.yaml": []byte("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- x.yaml\n"),
		"two/x.yaml":             []byte("# two\n" + doc),
	}
	docs := newDocCache()
	for _, c := range []struct{ root, want string }{
		{"one", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  annotations:\n    wave: \"1\"\n  name: x\n  namespace: a\n"},
		{"two", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: a\n"},
		{"one", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  annotations:\n    wave: \"1\"\n  name: x\n  namespace: a\n"},
	} {
		objs, ok := fastBuild(tree, c.root, docs)
		if !ok {
			t.Fatalf("%s: fastBuild declined", c.root)
		}
		got, err := asYAML(objs)
		if err != nil || string(got) != c.want {
			t.Errorf("%s:\n%s\nwant:\n%s (%v)", c.root, got, c.want, err)
		}
	}
	if len(docs.m) != 1 {
		t.Errorf("%d documents cached, want 1", len(docs.m))
	}
}

// A comment line with a character yaml.v3 takes for a line break is not
// skipped as a comment by the fast reader.
func TestFastReaderChecksCommentLines(t *testing.T) {
	doc := "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: a\n"
	for _, header := range []string{"# a\u0085b: c\n", "# a\u2028b: c\n", "# a\x1bb\n"} {
		if _, ok := newDocCache().stream([]byte(header + doc)); ok {
			t.Errorf("%q: read as a comment", header)
		}
	}
	if _, ok := newDocCache().stream([]byte("# plain comment\n" + doc)); !ok {
		t.Error("a plain comment line declined")
	}
}
