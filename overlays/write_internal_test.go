package overlays

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A file that cannot be removed after the renames (an immutable file,
// say) must not leave an orphan: the new tree is complete, the file
// stays listed in the manifest so the next render tries again, and the
// render fails naming it.
func TestWriteFailedRemovalStaysOwned(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, Tree{"clusters/a/kustomization.yaml": []byte("a\n"), "clusters/b/kustomization.yaml": []byte("b\n")}); err != nil {
		t.Fatal(err)
	}
	removeFile = func(r *os.Root, p string) error {
		if p == "clusters/b/kustomization.yaml" {
			return &os.PathError{Op: "unlinkat", Path: p, Err: errors.New("operation not permitted")}
		}
		return r.Remove(p)
	}
	defer func() { removeFile = (*os.Root).Remove }()
	_, err := Write(dir, Tree{"clusters/a/kustomization.yaml": []byte("a2\n"), "clusters/c/kustomization.yaml": []byte("c\n")})
	if err == nil || !strings.Contains(err.Error(), "clusters/b/kustomization.yaml: operation not permitted") {
		t.Fatalf("Write = %v", err)
	}
	owned, err := Owned(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"clusters/a/kustomization.yaml", "clusters/b/kustomization.yaml", "clusters/c/kustomization.yaml"}; !slices.Equal(owned, want) {
		t.Errorf("Owned = %q, want %q", owned, want)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "clusters/a/kustomization.yaml")); string(b) != "a2\n" {
		t.Errorf("new tree not in place: %q", b)
	}
	if _, err := os.Lstat(filepath.Join(dir, StagingDir)); !os.IsNotExist(err) {
		t.Errorf("staging directory left: %v", err)
	}
	// Once the file can go, the next render removes it.
	removeFile = (*os.Root).Remove
	res, err := Write(dir, Tree{"clusters/a/kustomization.yaml": []byte("a2\n"), "clusters/c/kustomization.yaml": []byte("c\n")})
	if err != nil || res.Removed != 1 {
		t.Fatalf("retry: %+v %v", res, err)
	}
}

// A rename that fails half way (after the first file is in place) leaves
// no temporary files and a manifest that names every file on disk; the
// next render finishes the tree.
func TestWriteFailedRenameKeepsOwnership(t *testing.T) {
	dir := t.TempDir()
	old := Tree{"clusters/a/kustomization.yaml": []byte("a\n"), "clusters/b/kustomization.yaml": []byte("b\n")}
	if _, err := Write(dir, old); err != nil {
		t.Fatal(err)
	}
	n := 0
	place = func(s *stage, m move) error {
		if n++; n == 2 {
			return &os.LinkError{Op: "renameat", Old: m.tmp, New: m.target, Err: errors.New("input/output error")}
		}
		return s.place(m)
	}
	defer func() { place = (*stage).place }()
	next := Tree{"clusters/a/kustomization.yaml": []byte("a2\n"), "clusters/c/kustomization.yaml": []byte("c\n"), "clusters/d/kustomization.yaml": []byte("d\n")}
	_, err := Write(dir, next)
	if err == nil || !strings.Contains(err.Error(), "input/output error; the directory is half written") {
		t.Fatalf("Write = %v", err)
	}
	owned, err := Owned(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for p := range got {
		if p != Manifest && !slices.Contains(owned, p) {
			t.Errorf("%s is on disk but not owned", p)
		}
	}
	place = (*stage).place
	if _, err := Write(dir, next); err != nil {
		t.Fatal(err)
	}
	got, _ = ReadDir(dir)
	delete(got, Manifest)
	if len(got) != 3 || string(got["clusters/d/kustomization.yaml"]) != "d\n" || string(got["clusters/a/kustomization.yaml"]) != "a2\n" {
		t.Errorf("tree after the repair: %q", got)
	}
}

// Files of a directory that does not exist yet are written into a staged
// copy of its whole tree, which one rename puts in place; files of
// existing directories are staged one by one. Should something appear
// where a new tree goes after staging, it is refused, not replaced.
func TestStageMovesNewTreesWhole(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, Tree{"clusters/a/kustomization.yaml": []byte("a\n")}); err != nil {
		t.Fatal(err)
	}
	next := Tree{
		"clusters/a/kustomization.yaml":      []byte("a2\n"),
		"clusters/b/kustomization.yaml":      []byte("b\n"),
		"clusters/b/ns/namespace.yaml":       []byte("ns\n"),
		"shared/x/kustomization.yaml":        []byte("x\n"),
		"shared/x/y/deep/kustomization.yaml": []byte("y\n"),
	}
	out, err := OpenForRender(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	c, err := Compare(out, "", next)
	if err != nil {
		t.Fatal(err)
	}
	st := &stage{out: out}
	if err := st.prepare(c, func() bool { return false }); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range st.moves {
		got = append(got, fmt.Sprintf("%s tree=%v files=%d", m.target, m.tree, m.files))
	}
	want := []string{"clusters/a/kustomization.yaml tree=false files=1", "clusters/b tree=true files=2", "shared tree=true files=2"}
	if !slices.Equal(got, want) {
		t.Errorf("moves:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := os.Mkdir(filepath.Join(dir, "shared"), 0o755); err != nil {
		t.Fatal(err)
	}
	err = st.place(st.moves[2])
	st.done()
	if err == nil || !strings.Contains(err.Error(), "appeared while meshfleet was writing") {
		t.Errorf("place onto a new directory: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, StagingDir)); !os.IsNotExist(err) {
		t.Errorf("staging directory left: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "clusters/b")); !os.IsNotExist(err) {
		t.Errorf("an aborted stage left clusters/b: %v", err)
	}
}
