package examples_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
// gets what `meshfleet render` wrote for the same cluster.
func TestKRMFunctionInKustomize(t *testing.T) {
	got := mustKustomize(t, "build", "--enable-alpha-plugins", "--enable-exec", filepath.Join(root, "examples/krm"))
	want := mustKustomize(t, "build", filepath.Join(root, "examples/krm/rendered/clusters/east"))
	if got != want {
		t.Errorf("KRM output differs from the rendered overlay:\n%s\nwant:\n%s", got, want)
	}
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
// render rewrites it (which fails the commit) and check fails.
func TestPreCommitHooks(t *testing.T) {
	var hooks []struct {
		ID            string `json:"id"`
		Entry         string `json:"entry"`
		PassFilenames *bool  `json:"pass_filenames"`
	}
	b, err := os.ReadFile(filepath.Join(root, ".pre-commit-hooks.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &hooks); err != nil {
		t.Fatal(err)
	}
	var config struct {
		Repos []struct {
			Hooks []struct {
				ID   string   `json:"id"`
				Args []string `json:"args"`
			} `json:"hooks"`
		} `json:"repos"`
	}
	b, err = os.ReadFile(filepath.Join(root, "examples/pre-commit/.pre-commit-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &config); err != nil {
		t.Fatal(err)
	}
	entry := map[string]string{}
	for _, h := range hooks {
		if h.PassFilenames == nil || *h.PassFilenames {
			t.Errorf("hook %s must set pass_filenames: false: it writes one shared tree", h.ID)
		}
		entry[h.ID] = h.Entry
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
			if out != want {
				t.Errorf("%v: generate printed\n%s\nwant\n%s", env, out, want)
			}
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
