package overlays_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshfleet/meshfleet/overlays"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, dir string, tree overlays.Tree) overlays.Result {
	t.Helper()
	res, err := overlays.Write(dir, tree)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// assertTree checks that dir holds exactly want (plus the manifest).
func assertTree(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	got := readTree(t, dir)
	delete(got, overlays.Manifest)
	for p, w := range want {
		if string(got[p]) != w {
			t.Errorf("%s = %q, want %q", p, got[p], w)
		}
	}
	for _, p := range got.Paths() {
		if _, ok := want[p]; !ok {
			t.Errorf("unexpected file %s", p)
		}
	}
}

func TestWriteRemovesOnlyWhatItOwns(t *testing.T) {
	dir := t.TempDir()
	res := mustWrite(t, dir, overlays.Tree{
		"clusters/a/kustomization.yaml": []byte("a"),
		"clusters/b/kustomization.yaml": []byte("b"),
		"shared/x/kustomization.yaml":   []byte("x"),
	})
	if res != (overlays.Result{Written: 3}) {
		t.Errorf("first write: %+v", res)
	}
	// The operator adds files of their own, one in a directory we write to.
	writeFile(t, filepath.Join(dir, "clusters/b/flux-system/gotk-sync.yaml"), "flux")
	writeFile(t, filepath.Join(dir, "README.md"), "mine")

	res = mustWrite(t, dir, overlays.Tree{
		"clusters/a/kustomization.yaml": []byte("a"),
		"clusters/c/kustomization.yaml": []byte("c"),
	})
	if res != (overlays.Result{Written: 1, Removed: 2, Unchanged: 1}) {
		t.Errorf("second write: %+v", res)
	}
	assertTree(t, dir, map[string]string{
		"clusters/a/kustomization.yaml":         "a",
		"clusters/c/kustomization.yaml":         "c",
		"clusters/b/flux-system/gotk-sync.yaml": "flux",
		"README.md":                             "mine",
	})
	if _, err := os.Stat(filepath.Join(dir, "shared")); !os.IsNotExist(err) {
		t.Errorf("emptied directory shared/ was left behind: %v", err)
	}
	owned, err := overlays.Owned(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"clusters/a/kustomization.yaml", "clusters/c/kustomization.yaml"}; !slices.Equal(owned, want) {
		t.Errorf("Owned = %q, want %q", owned, want)
	}
}

func TestWriteRefusesToReplaceForeignFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "clusters/a/kustomization.yaml"), "hand-written")
	_, err := overlays.Write(dir, overlays.Tree{
		"clusters/a/kustomization.yaml": []byte("a"),
		"clusters/a/namespace.yaml":     []byte("ns"),
	})
	if err == nil || !strings.Contains(err.Error(), "refusing to replace files meshfleet did not write") ||
		!strings.Contains(err.Error(), "clusters/a/kustomization.yaml") {
		t.Fatalf("Write = %v, want a refusal naming clusters/a/kustomization.yaml", err)
	}
	assertTree(t, dir, map[string]string{"clusters/a/kustomization.yaml": "hand-written"})
	if _, err := os.Stat(filepath.Join(dir, overlays.Manifest)); !os.IsNotExist(err) {
		t.Errorf("a failed write left a manifest behind")
	}
}

func TestWriteAdoptsIdenticalFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "clusters/a/kustomization.yaml"), "a")
	res := mustWrite(t, dir, overlays.Tree{"clusters/a/kustomization.yaml": []byte("a")})
	if res != (overlays.Result{Unchanged: 1}) {
		t.Errorf("Write: %+v", res)
	}
	if owned, _ := overlays.Owned(dir); !slices.Equal(owned, []string{"clusters/a/kustomization.yaml"}) {
		t.Errorf("identical file not adopted: %q", owned)
	}
}

// A failure while staging (here a file stands where a directory must go)
// leaves the previous tree exactly as it was, with no temporary files.
func TestWriteFailureLeavesTreeAsItWas(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, dir, overlays.Tree{"clusters/a/kustomization.yaml": []byte("old")})
	writeFile(t, filepath.Join(dir, "clusters/zz"), "a file, not a directory")
	_, err := overlays.Write(dir, overlays.Tree{
		"clusters/a/kustomization.yaml":      []byte("new"),
		"clusters/b/kustomization.yaml":      []byte("b"),
		"clusters/zz/sub/kustomization.yaml": []byte("z"),
	})
	if err == nil {
		t.Fatal("Write succeeded, want an error")
	}
	assertTree(t, dir, map[string]string{
		"clusters/a/kustomization.yaml": "old",
		"clusters/zz":                   "a file, not a directory",
	})
	if _, err := os.Stat(filepath.Join(dir, "clusters/b")); !os.IsNotExist(err) {
		t.Errorf("directory created for the failed write was left behind")
	}
}

func TestWriteLeavesUnchangedFilesAlone(t *testing.T) {
	dir := t.TempDir()
	tree := overlays.Tree{"clusters/a/kustomization.yaml": []byte("a")}
	mustWrite(t, dir, tree)
	p := filepath.Join(dir, "clusters/a/kustomization.yaml")
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	if res := mustWrite(t, dir, tree); res != (overlays.Result{Unchanged: 1}) {
		t.Errorf("Write: %+v", res)
	}
	if fi, err := os.Stat(p); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("unchanged file was rewritten")
	}
}

// A manifest edited to point outside the output directory is ignored.
func TestWriteIgnoresEscapingManifestEntries(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "out")
	writeFile(t, filepath.Join(parent, "precious"), "keep")
	writeFile(t, filepath.Join(dir, overlays.Manifest), "../precious\n/etc/passwd\nclusters/../../precious\n")
	mustWrite(t, dir, overlays.Tree{"clusters/a/kustomization.yaml": []byte("a")})
	if b, err := os.ReadFile(filepath.Join(parent, "precious")); err != nil || string(b) != "keep" {
		t.Errorf("file outside the output directory was touched: %q %v", b, err)
	}
}

// Only the overlays a change touches need verifying; a shared base
// touches every cluster.
func TestChangesDirs(t *testing.T) {
	dir := t.TempDir()
	base := overlays.Tree{
		"clusters/a/kustomization.yaml": []byte("a"),
		"clusters/b/kustomization.yaml": []byte("b"),
		"clusters/c/kustomization.yaml": []byte("c"),
		"shared/x/kustomization.yaml":   []byte("x"),
	}
	mustWrite(t, dir, base)
	with := func(changes map[string]string, drop ...string) overlays.Tree {
		out := overlays.Tree{}
		for p, b := range base {
			out[p] = b
		}
		for p, b := range changes {
			out[p] = []byte(b)
		}
		for _, p := range drop {
			delete(out, p)
		}
		return out
	}
	tests := []struct {
		name string
		tree overlays.Tree
		want []string
	}{
		{"nothing changed", base, nil},
		{"one cluster's file", with(map[string]string{"clusters/b/namespace/namespace.yaml": "ns"}), []string{"clusters/b"}},
		{"istioctl input", with(map[string]string{"clusters/c/istioctl/controlplane.yaml": "iop"}), []string{"clusters/c"}},
		{"shared base", with(map[string]string{"shared/x/kustomization.yaml": "x2"}), []string{"clusters/a", "clusters/b", "clusters/c"}},
		{"removed cluster", with(nil, "clusters/c/kustomization.yaml"), nil},
	}
	for _, tt := range tests {
		out, err := overlays.OpenForCheck(dir)
		if err != nil {
			t.Fatal(err)
		}
		c, err := overlays.Compare(out, "", tt.tree)
		out.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Dirs(); !slices.Equal(got, tt.want) {
			t.Errorf("%s: Dirs() = %q, want %q", tt.name, got, tt.want)
		}
		if c.Empty() != (tt.name == "nothing changed") {
			t.Errorf("%s: Empty() = %v", tt.name, c.Empty())
		}
	}
}

func TestVerifyRejectsBrokenOverlays(t *testing.T) {
	tests := []struct {
		name string
		tree overlays.Tree
		want string
	}{{
		name: "missing resource",
		tree: overlays.Tree{"clusters/a/kustomization.yaml": []byte("resources:\n- gone.yaml\n")},
		want: "kustomize build clusters/a: ",
	}, {
		name: "object without namespace",
		tree: overlays.Tree{
			"clusters/a/kustomization.yaml": []byte("resources:\n- s.yaml\n"),
			"clusters/a/s.yaml":             []byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n"),
		},
		want: "kustomize build clusters/a: Secret s has no namespace",
	}, {
		name: "file outside the kustomization root",
		tree: overlays.Tree{
			"clusters/a/kustomization.yaml": []byte("resources:\n- ../../shared/s.yaml\n"),
			"shared/s.yaml":                 []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: s\n"),
		},
		want: "security; file",
	}}
	for _, tt := range tests {
		err := overlays.Verify(tt.tree, []string{"clusters/a"})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Verify = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}
