package examples_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/overlays"
)

var (
	root   string // the repository root
	binDir string // holds the meshfleet binary built for these tests
)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		var err error
		if root, err = filepath.Abs(".."); err != nil {
			panic(err)
		}
		if binDir, err = os.MkdirTemp("", "meshfleet-bin"); err != nil {
			panic(err)
		}
		defer os.RemoveAll(binDir)
		build := exec.Command("go", "build", "-o", filepath.Join(binDir, "meshfleet"), ".")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building meshfleet: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}())
}

// run runs a command with the test's meshfleet first on PATH.
func run(t *testing.T, dir string, env []string, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	if name == "meshfleet" {
		name = filepath.Join(binDir, name) // exec.Command looks names up in our PATH, not cmd.Env's
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Env = append(cmd.Env, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// kustomize runs the kustomize CLI pinned in hack/tools/go.mod.
func kustomize(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return run(t, root, nil, "go", append([]string{"tool", "-modfile=" + filepath.Join(root, "hack/tools/go.mod"), "kustomize"}, args...)...)
}

func mustKustomize(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := kustomize(t, args...)
	if err != nil {
		t.Fatalf("kustomize %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

func readTree(t *testing.T, dir string) overlays.Tree {
	t.Helper()
	tree, err := overlays.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return tree
}

// Every committed overlay — each cluster's, and the Flux and Argo CD
// ones — builds with the real kustomize CLI, with no flags, to exactly
// what meshfleet's in-process verification builds.
func TestKustomizeCLIBuildsEveryOverlay(t *testing.T) {
	rendered, _ := filepath.Glob(filepath.Join(root, "examples/*/rendered"))
	n := 0
	for _, r := range rendered {
		tree := readTree(t, r)
		for _, dir := range overlays.Roots(tree) {
			n++
			name, _ := filepath.Rel(root, filepath.Join(r, dir))
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				got := mustKustomize(t, "build", filepath.Join(r, dir))
				want, err := overlays.Build(tree, dir)
				if err != nil {
					t.Fatal(err)
				}
				if got != string(want) {
					t.Errorf("kustomize build %s differs from meshfleet's own build:\n%s\nwant:\n%s", name, got, want)
				}
			})
		}
	}
	if n < 20 {
		t.Fatalf("found only %d rendered overlays", n)
	}
}

// kustomize runs meshfleet as an exec KRM function (examples/krm) and
// gets what `meshfleet render` wrote for the same cluster, each object
// with its stage's sync wave.
func TestKRMFunctionInKustomize(t *testing.T) {
	got := mustKustomize(t, "build", "--enable-alpha-plugins", "--enable-exec", filepath.Join(root, "examples/krm"))
	want := mustKustomize(t, "build", filepath.Join(root, "examples/krm/rendered/clusters/east"))
	comparePluginOutput(t, "KRM output", got, want)
}

// comparePluginOutput checks that a plugin mode's output is the rendered
// overlay's build, want, with the Argo CD sync wave of its stage on every
// object (the rendered overlay carries waves only with delivery.argocd),
// and that the control plane is in it.
func comparePluginOutput(t *testing.T, what, got, want string) {
	t.Helper()
	gotObjs, wantObjs := decodeStream(t, got), decodeStream(t, want)
	waves := map[string]bool{}
	kinds := map[string]bool{}
	for _, o := range gotObjs {
		md, _ := o["metadata"].(map[string]any)
		a, _ := md["annotations"].(map[string]any)
		w, ok := a[syncWave].(string)
		if !ok {
			t.Errorf("%s: %s %s has no %s annotation", what, o["kind"], md["name"], syncWave)
		}
		waves[w] = true
		kinds[fmt.Sprint(o["kind"])] = true
		dropWaves(o) // kustomize's commonAnnotations put them into pod templates too
	}
	for _, o := range wantObjs {
		dropWaves(o) // an overlay rendered with delivery.argocd has them
	}
	if !kinds["Istio"] {
		t.Errorf("%s has no control plane (no Istio resource); kinds: %v", what, kinds)
	}
	if len(waves) < 2 {
		t.Errorf("%s has only the sync waves %v; want one per stage", what, waves)
	}
	g, _ := yaml.Marshal(gotObjs)
	w, _ := yaml.Marshal(wantObjs)
	if !bytes.Equal(g, w) {
		t.Errorf("%s, without its sync waves, differs from the rendered overlay:\n%s\nwant:\n%s", what, g, w)
	}
}

const syncWave = "argocd.argoproj.io/sync-wave"

// dropWaves removes the sync-wave annotation wherever it is in v, and the
// annotations it leaves empty.
func dropWaves(v any) {
	switch v := v.(type) {
	case map[string]any:
		if a, ok := v["annotations"].(map[string]any); ok {
			delete(a, syncWave)
			if len(a) == 0 {
				delete(v, "annotations")
			}
		}
		for _, x := range v {
			dropWaves(x)
		}
	case []any:
		for _, x := range v {
			dropWaves(x)
		}
	}
}

// decodeStream decodes a YAML stream of objects.
func decodeStream(t *testing.T, s string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for doc := range strings.SplitSeq(s, "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var o map[string]any
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("decoding %q: %v", doc, err)
		}
		objs = append(objs, o)
	}
	return objs
}

// A broken fleet fails the kustomize build, and the positioned errors
// reach the user on stderr (kustomize drops the ResourceList's results).
func TestKRMFunctionErrorsReachStderr(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"kustomization.yaml": "generators:\n- gen.yaml\n",
		"gen.yaml":           "apiVersion: meshfleet.dev/v1alpha1\nkind: ClusterOverlay\nmetadata:\n  name: east\n  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: meshfleet\n        args: [krm]\nspec:\n  fleetFile: fleet.yaml\n  cluster: east\n",
		"fleet.yaml":         "apiVersion: meshfleet.dev/v1alpha1\nkind: MeshFleet\nmetadata:\n  name: x\nspec:\n  mesh:\n    id: mesh1\n  istio:\n    version: 1.31.1\n  clusters:\n    east:\n      role: primery\n      network: n1\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, stderr, err := kustomize(t, "build", "--enable-alpha-plugins", "--enable-exec", dir)
	if err == nil {
		t.Fatalf("kustomize build succeeded on a broken fleet:\n%s", out)
	}
	want := filepath.Join(dir, "fleet.yaml") + `:12:13: spec.clusters.east.role: invalid value "primery" (want one of "external-controlplane", "primary", "remote")`
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr does not carry the positioned error %q:\n%s", want, stderr)
	}
}

// The hooks of .pre-commit-hooks.yaml, run the way pre-commit runs them
// for examples/pre-commit: no filenames, entry plus args, in the
// repository root. On a current tree they change nothing; on a stale one
// render rewrites it (which fails the commit) and check fails. The
// `pre-commit run` commands the example and the README document select
// the hook they name (pre-commit runs a hook only in its stages), and the
// rev they pin is a tag of this repository or the documented placeholder.
func TestPreCommitHooks(t *testing.T) {
	var hooks []struct {
		ID            string   `json:"id"`
		Entry         string   `json:"entry"`
		PassFilenames *bool    `json:"pass_filenames"`
		Files         string   `json:"files"`
		Stages        []string `json:"stages"`
	}
	b, err := os.ReadFile(filepath.Join(root, ".pre-commit-hooks.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &hooks); err != nil {
		t.Fatal(err)
	}
	configText, err := os.ReadFile(filepath.Join(root, "examples/pre-commit/.pre-commit-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	config := parsePreCommitConfig(t, configText)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	entry := map[string]string{}
	stages := map[string][]string{} // each hook's stages, the config's over the manifest's
	for _, h := range hooks {
		if h.PassFilenames == nil || *h.PassFilenames {
			t.Errorf("hook %s must set pass_filenames: false: it writes one shared tree", h.ID)
		}
		// pre-commit skips a hook when no file matches files, even with
		// pass_filenames: false; the fleet file must.
		if ok, err := regexp.MatchString(h.Files, "fleet.yaml"); err != nil || !ok {
			t.Errorf("hook %s: files %q does not match fleet.yaml (%v): pre-commit would skip it", h.ID, h.Files, err)
		}
		entry[h.ID] = h.Entry
		stages[h.ID] = h.Stages
	}
	for _, h := range config.Repos[0].Hooks {
		if h.Stages != nil {
			stages[h.ID] = h.Stages
		}
	}

	// The rev shown is real: a tag of this repository, or the placeholder
	// the example explains (there is no release yet).
	for where, rev := range map[string]string{
		"examples/pre-commit/.pre-commit-config.yaml": config.Repos[0].Rev,
		"README.md": parsePreCommitConfig(t, readmeBlock(t, readme, "- repo: https://github.com/meshfleet/meshfleet")).Repos[0].Rev,
	} {
		if rev == revPlaceholder {
			continue
		}
		out, _, err := run(t, root, nil, "git", "tag", "--list", rev)
		if err != nil {
			t.Logf("%s: cannot list the tags (%v); not checking rev %s", where, err, rev)
		} else if strings.TrimSpace(out) != rev {
			t.Errorf("%s: rev %s is no tag of this repository; pin a tag or %s", where, rev, revPlaceholder)
		}
	}
	if !bytes.Contains(configText, []byte("rev: "+revPlaceholder)) || !bytes.Contains(configText, []byte("pre-commit autoupdate")) {
		t.Errorf("the example must say how to fill in rev %s", revPlaceholder)
	}

	// Every documented `pre-commit run` command runs the hook it names.
	commands := regexp.MustCompile(`pre-commit run[^\n`+"`"+`]*`).FindAll(append(configText, readme...), -1)
	checked := 0
	for _, cmd := range commands {
		stage, id := "pre-commit", ""
		f := strings.Fields(string(cmd))[2:]
		for i := 0; i < len(f); i++ {
			switch {
			case f[i] == "--hook-stage" && i+1 < len(f):
				i++
				stage = f[i]
			case !strings.HasPrefix(f[i], "-"):
				id = f[i]
			}
		}
		if id == "" {
			continue // every hook of the stage, or prose about the command
		}
		if _, ok := entry[id]; !ok {
			t.Errorf("%q names no hook of .pre-commit-hooks.yaml", cmd)
		} else if st := stages[id]; st != nil && !slices.Contains(st, stage) {
			t.Errorf("%q runs stage %s, but hook %s is configured for %v only: pre-commit would say it has no such hook", cmd, stage, id, st)
		}
		checked++
	}
	if checked < 2 {
		t.Errorf("checked %d `pre-commit run <hook>` commands; want the CI command of the example and of the README", checked)
	}

	repo := t.TempDir()
	if err := os.CopyFS(repo, os.DirFS(filepath.Join(root, "examples/pre-commit"))); err != nil {
		t.Fatal(err)
	}
	runHook := func(id string) (string, error) {
		for _, h := range config.Repos[0].Hooks {
			if h.ID == id {
				f := strings.Fields(entry[id])
				out, stderr, err := run(t, repo, nil, f[0], append(f[1:], h.Args...)...)
				return out + stderr, err
			}
		}
		t.Fatalf("hook %s is not configured", id)
		return "", nil
	}
	if out, err := runHook("meshfleet-check"); err != nil {
		t.Fatalf("check on the committed example failed: %v\n%s", err, out)
	}
	if out, err := runHook("meshfleet-render"); err != nil || !strings.Contains(out, " 0 files written, 0 removed") {
		t.Fatalf("render on the committed example changed files: %v\n%s", err, out)
	}
	// The fleet changes: check fails with a diff, render rewrites.
	fleetFile := filepath.Join(repo, "fleet.yaml")
	b, _ = os.ReadFile(fleetFile)
	if err := os.WriteFile(fleetFile, bytes.Replace(b, []byte("id: mesh1"), []byte("id: mesh2"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runHook("meshfleet-check"); err == nil || !strings.Contains(out, "+      meshID: mesh2") {
		t.Errorf("check on a stale tree: err %v, want a failure with a diff:\n%s", err, out)
	}
	if out, err := runHook("meshfleet-render"); err != nil || strings.Contains(out, " 0 files written") {
		t.Errorf("render on a stale tree: %v\n%s", err, out)
	}
	if out, err := runHook("meshfleet-check"); err != nil {
		t.Errorf("check after render: %v\n%s", err, out)
	}
}

// revPlaceholder is the rev the documentation shows while meshfleet has
// no release tag.
const revPlaceholder = "COMMIT-SHA"

type preCommitConfig struct {
	Repos []struct {
		Repo  string `json:"repo"`
		Rev   string `json:"rev"`
		Hooks []struct {
			ID     string   `json:"id"`
			Args   []string `json:"args"`
			Stages []string `json:"stages"`
		} `json:"hooks"`
	} `json:"repos"`
}

func parsePreCommitConfig(t *testing.T, b []byte) preCommitConfig {
	t.Helper()
	var c preCommitConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Repos) == 0 || c.Repos[0].Repo != "https://github.com/meshfleet/meshfleet" {
		t.Fatalf("no meshfleet repo in the pre-commit config:\n%s", b)
	}
	return c
}

// readmeBlock returns the fenced code block of the README that holds s.
func readmeBlock(t *testing.T, readme []byte, s string) []byte {
	t.Helper()
	for i, block := range strings.Split(string(readme), "```") {
		if i%2 == 1 && strings.Contains(block, s) {
			_, body, _ := strings.Cut(block, "\n") // the info string
			return []byte(body)
		}
	}
	t.Fatalf("README.md has no code block with %q", s)
	return nil
}

// Argo CD runs `meshfleet cmp` in the Application's source directory with
// its environment; stdout must be exactly the cluster's manifests, as
// the kustomize CLI builds the rendered overlay.
func TestArgoCDPluginGenerate(t *testing.T) {
	src := filepath.Join(root, "examples/argocd")
	f, err := fleet.Load(filepath.Join(src, "fleet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rendered := t.TempDir()
	tree, err := overlays.Render(f)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := overlays.WriteFleet(rendered, f.Metadata.Name, tree); err != nil {
		t.Fatal(err)
	}
	// The generate command of plugin.yaml.
	var plugin struct {
		Spec struct {
			Generate struct {
				Command []string `json:"command"`
			} `json:"generate"`
		} `json:"spec"`
	}
	b, _ := os.ReadFile(filepath.Join(src, "plugin.yaml"))
	if err := yaml.Unmarshal(b, &plugin); err != nil || len(plugin.Spec.Generate.Command) == 0 {
		t.Fatalf("plugin.yaml: %v", err)
	}
	generate := plugin.Spec.Generate.Command
	for _, c := range f.Clusters {
		for _, env := range [][]string{
			{"ARGOCD_APP_NAME=mesh-" + c.Name},
			{"ARGOCD_APP_NAME=anything", "ARGOCD_ENV_MESHFLEET_CLUSTER=" + c.Name},
			{"ARGOCD_APP_NAME=anything", `ARGOCD_APP_PARAMETERS=[{"name":"cluster","string":"` + c.Name + `"}]`},
		} {
			out, stderr, err := run(t, src, env, generate[0], generate[1:]...)
			if err != nil {
				t.Fatalf("%v: %v\n%s", env, err, stderr)
			}
			want := mustKustomize(t, "build", filepath.Join(rendered, "clusters", c.Name))
			comparePluginOutput(t, fmt.Sprintf("%v: generate", env), out, want)
		}
	}
	// Failures print nothing on stdout, so Argo CD never prunes on them.
	for _, env := range [][]string{
		{"ARGOCD_APP_NAME=mesh-north"},
		{`ARGOCD_APP_PARAMETERS=[{"name":"clustre","string":"east"}]`},
		{"ARGOCD_ENV_MESHFLEET_FLEET=missing.yaml", "ARGOCD_APP_NAME=east"},
	} {
		out, stderr, err := run(t, src, env, generate[0], generate[1:]...)
		if err == nil || out != "" || stderr == "" {
			t.Errorf("%v: err %v, stdout %q, stderr %q; want a failure with only stderr", env, err, out, stderr)
		}
	}
	if !slices.Equal(generate, []string{"meshfleet", "cmp"}) {
		t.Errorf("generate command = %q", generate)
	}
}

// examples/argocd is a kustomize Component that installs the plugin into
// Argo CD's own kustomization: it builds there with the real kustomize
// CLI, adds the sidecar, and merges into argocd-cm the health checks
// meshfleet renders with delivery.argocd (kept current here; run with
// MESHFLEET_UPDATE=1 to rewrite them).
func TestArgoCDPluginInstall(t *testing.T) {
	src := filepath.Join(root, "examples/argocd")
	f, err := fleet.Load(filepath.Join(src, "fleet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f.Spec.Delivery.ArgoCD = &fleet.ArgoCD{RepoURL: "https://git.example.net/mesh.git", Path: "mesh", TargetRevision: "HEAD", Project: "default", Namespace: "argocd"}
	tree, err := overlays.Render(f)
	if err != nil {
		t.Fatal(err)
	}
	_, objs, _ := strings.Cut(string(tree[overlays.ArgoCDDir+"/"+overlays.ArgoCDHealthFile]), "---\n")
	objs = strings.Replace(objs, "\n  namespace: argocd\n", "\n", 1)
	file := filepath.Join(src, overlays.ArgoCDHealthFile)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	header, committed, _ := strings.Cut(string(b), "---\n")
	if committed != objs {
		if os.Getenv("MESHFLEET_UPDATE") != "" {
			if err := os.WriteFile(file, []byte(header+"---\n"+objs), 0o644); err != nil {
				t.Fatal(err)
			}
		} else {
			t.Errorf("%s is not the argocd-cm patch meshfleet renders; run with MESHFLEET_UPDATE=1:\n%s", file, objs)
		}
	}

	// Argo CD's installation, reduced to the objects the component patches.
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, src)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"kustomization.yaml": "namespace: argocd\nresources:\n- argocd.yaml\ncomponents:\n- " + filepath.ToSlash(rel) + "\n",
		"argocd.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: argocd-repo-server
spec:
  selector:
    matchLabels: {app.kubernetes.io/name: argocd-repo-server}
  template:
    metadata:
      labels: {app.kubernetes.io/name: argocd-repo-server}
    spec:
      containers:
      - name: argocd-repo-server
        image: quay.io/argoproj/argocd
      volumes:
      - {name: var-files, emptyDir: {}}
      - {name: plugins, emptyDir: {}}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
data:
  url: https://argocd.example.net
`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := decodeStream(t, mustKustomize(t, "build", dir))
	var cm, repoServer, plugin bool
	for _, o := range out {
		md, _ := o["metadata"].(map[string]any)
		if md["namespace"] != "argocd" {
			t.Errorf("%s %s is not in namespace argocd", o["kind"], md["name"])
		}
		switch md["name"] {
		case "argocd-cm":
			data, _ := o["data"].(map[string]any)
			cm = data["url"] != nil && data["resource.customizations.health.Secret"] != nil && data["resource.customizations.health.argoproj.io_Application"] != nil
		case "argocd-repo-server":
			repoServer = strings.Contains(fmt.Sprint(o["spec"]), "name:meshfleet ")
		case "meshfleet-plugin":
			plugin = true
		}
	}
	if !cm || !repoServer || !plugin {
		t.Errorf("examples/argocd in Argo CD's kustomization: argocd-cm merged %v, sidecar %v, plugin.yaml %v; want all", cm, repoServer, plugin)
	}
}
