package overlays_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshfleet/meshfleet/overlays"
)

// The output directory is hostile: a pull request can commit symbolic
// links, and anything may sit where meshfleet reads or writes. Each case
// prepares dir (and outside, a directory beside it that must stay
// untouched), then renders tree into dir; the render must fail with an
// error naming want, leave outside as it was, and never print the
// contents of an outside file.

const secret = "TOP-SECRET-OUTSIDE"

var tree = overlays.Tree{
	"clusters/a/kustomization.yaml": []byte("a\n"),
	"clusters/a/ns/namespace.yaml":  []byte("ns\n"),
	"shared/x/kustomization.yaml":   []byte("x\n"),
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func mkfifo(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
}

// snapshot reads every file under dir, following nothing.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			got[rel] = "-> " + l
		case fi.Mode().IsRegular() && fi.Size() > 1<<20:
			got[rel] = fmt.Sprint(fi.Size(), " bytes")
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			got[rel] = string(b)
		case fi.IsDir():
			got[rel+"/"] = ""
		default:
			got[rel] = fi.Mode().Type().String()
		}
		return nil
	})
	return got
}

func sameSnapshot(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// withTimeout fails the test when fn blocks, as opening a named pipe
// would.
func withTimeout(t *testing.T, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { fn(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("blocked (on a named pipe?)")
	}
}

func TestHostileOutputDirectory(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir, outside string)
		tree  overlays.Tree // default: tree
		want  string        // the refusal names this path inside dir
		check string        // check's refusal, if not want
	}{{
		name:  "symlinked cluster directory",
		setup: func(t *testing.T, dir, outside string) { symlink(t, outside, filepath.Join(dir, "clusters/a")) },
		want:  "clusters/a: is a symbolic link",
	}, {
		name:  "symlinked clusters directory",
		setup: func(t *testing.T, dir, outside string) { symlink(t, outside, filepath.Join(dir, "clusters")) },
		want:  "clusters: is a symbolic link",
	}, {
		name:  "relative symlink climbing out",
		setup: func(t *testing.T, dir, outside string) { symlink(t, "../../outside", filepath.Join(dir, "clusters/a")) },
		want:  "clusters/a: is a symbolic link",
	}, {
		name: "symlink inside the directory",
		setup: func(t *testing.T, dir, outside string) {
			os.MkdirAll(filepath.Join(dir, "elsewhere"), 0o755)
			symlink(t, "../elsewhere", filepath.Join(dir, "clusters/a"))
		},
		want: "clusters/a: is a symbolic link",
	}, {
		name: "owned path is now a symlinked directory",
		setup: func(t *testing.T, dir, outside string) {
			mustWrite(t, dir, overlays.Tree{"clusters/b/kustomization.yaml": []byte("b\n")})
			os.RemoveAll(filepath.Join(dir, "clusters/b"))
			writeFile(t, filepath.Join(outside, "kustomization.yaml"), secret)
			symlink(t, outside, filepath.Join(dir, "clusters/b"))
		},
		want: "clusters/b: is a symbolic link",
	}, {
		name: "owned file is now a symlink to a secret",
		setup: func(t *testing.T, dir, outside string) {
			mustWrite(t, dir, overlays.Tree{"clusters/a/kustomization.yaml": []byte("old\n")})
			os.Remove(filepath.Join(dir, "clusters/a/kustomization.yaml"))
			symlink(t, filepath.Join(outside, "secret"), filepath.Join(dir, "clusters/a/kustomization.yaml"))
		},
		want: "clusters/a/kustomization.yaml: is a symbolic link",
	}, {
		name: "stale owned file is a symlink",
		setup: func(t *testing.T, dir, outside string) {
			mustWrite(t, dir, overlays.Tree{"clusters/z/kustomization.yaml": []byte("z\n")})
			os.Remove(filepath.Join(dir, "clusters/z/kustomization.yaml"))
			symlink(t, filepath.Join(outside, "secret"), filepath.Join(dir, "clusters/z/kustomization.yaml"))
		},
		want: "clusters/z/kustomization.yaml: is a symbolic link",
	}, {
		name: "foreign file is a symlink",
		setup: func(t *testing.T, dir, outside string) {
			symlink(t, filepath.Join(outside, "secret"), filepath.Join(dir, "shared/x/kustomization.yaml"))
		},
		want: "shared/x/kustomization.yaml: is a symbolic link",
	}, {
		name: "dangling symlink where a file goes",
		setup: func(t *testing.T, dir, outside string) {
			symlink(t, filepath.Join(outside, "new"), filepath.Join(dir, "shared/x/kustomization.yaml"))
		},
		want: "shared/x/kustomization.yaml: is a symbolic link",
	}, {
		name: "manifest is a symlink",
		setup: func(t *testing.T, dir, outside string) {
			symlink(t, filepath.Join(outside, "secret"), filepath.Join(dir, overlays.Manifest))
		},
		want: overlays.Manifest + ": is a symbolic link",
	}, {
		name:  "staging directory is a symlink",
		setup: func(t *testing.T, dir, outside string) { symlink(t, outside, filepath.Join(dir, overlays.StagingDir)) },
		want:  overlays.StagingDir + ": is a symbolic link",
		check: "a render into this directory was interrupted",
	}, {
		name:  "staging directory is a file",
		setup: func(t *testing.T, dir, outside string) { writeFile(t, filepath.Join(dir, overlays.StagingDir), "x") },
		want:  overlays.StagingDir + ": is a file",
		check: "a render into this directory was interrupted",
	}, {
		name: "named pipe where a file goes",
		setup: func(t *testing.T, dir, outside string) {
			mkfifo(t, filepath.Join(dir, "clusters/a/kustomization.yaml"))
		},
		want: "clusters/a/kustomization.yaml: is a named pipe",
	}, {
		name:  "named pipe as the manifest",
		setup: func(t *testing.T, dir, outside string) { mkfifo(t, filepath.Join(dir, overlays.Manifest)) },
		want:  overlays.Manifest + ": is a named pipe",
	}, {
		name: "owned file is now a named pipe",
		setup: func(t *testing.T, dir, outside string) {
			mustWrite(t, dir, overlays.Tree{"clusters/z/kustomization.yaml": []byte("z\n")})
			os.Remove(filepath.Join(dir, "clusters/z/kustomization.yaml"))
			mkfifo(t, filepath.Join(dir, "clusters/z/kustomization.yaml"))
		},
		want: "clusters/z/kustomization.yaml: is a named pipe",
	}, {
		name: "device where a file goes",
		setup: func(t *testing.T, dir, outside string) {
			os.MkdirAll(filepath.Join(dir, "clusters/a"), 0o755)
			// /dev/null's numbers: 1, 3.
			if err := syscall.Mknod(filepath.Join(dir, "clusters/a/kustomization.yaml"), syscall.S_IFCHR|0o644, 1<<8|3); err != nil {
				t.Skipf("mknod (needs root): %v", err)
			}
		},
		want: "clusters/a/kustomization.yaml: is a device",
	}, {
		name: "directory where a file goes",
		setup: func(t *testing.T, dir, outside string) {
			os.MkdirAll(filepath.Join(dir, "shared/x/kustomization.yaml"), 0o755)
		},
		want: "shared/x/kustomization.yaml: is a directory",
	}, {
		name:  "file where a directory goes",
		setup: func(t *testing.T, dir, outside string) { writeFile(t, filepath.Join(dir, "clusters"), "x") },
		want:  "clusters: is a file, not a directory",
	}, {
		name: "huge owned file",
		setup: func(t *testing.T, dir, outside string) {
			mustWrite(t, dir, overlays.Tree{"clusters/a/kustomization.yaml": []byte("a0\n")})
			if err := os.Truncate(filepath.Join(dir, "clusters/a/kustomization.yaml"), 1<<30); err != nil {
				t.Fatal(err)
			}
		},
		want: "clusters/a/kustomization.yaml: 1073741824 bytes, larger than any file meshfleet writes",
	}, {
		name: "manifest lists a path through a symlink",
		setup: func(t *testing.T, dir, outside string) {
			writeFile(t, filepath.Join(outside, "kustomization.yaml"), secret)
			symlink(t, outside, filepath.Join(dir, "link"))
			writeFile(t, filepath.Join(dir, overlays.Manifest), "link/kustomization.yaml\n")
		},
		want: "link: is a symbolic link",
	}, {
		name: "owned file is a hard link to an outside file",
		setup: func(t *testing.T, dir, outside string) {
			mustWrite(t, dir, overlays.Tree{"clusters/a/kustomization.yaml": []byte("old\n")})
			os.Remove(filepath.Join(dir, "clusters/a/kustomization.yaml"))
			if err := os.Link(filepath.Join(outside, "secret"), filepath.Join(dir, "clusters/a/kustomization.yaml")); err != nil {
				t.Skip(err)
			}
		},
		want: "clusters/a/kustomization.yaml: has 2 hard links",
	}, {
		name: "name with a newline",
		setup: func(t *testing.T, dir, outside string) {
			symlink(t, outside, filepath.Join(dir, "clusters/a\nmeshfleet: forged"))
		},
		tree: overlays.Tree{"clusters/a\nmeshfleet: forged/kustomization.yaml": []byte("a\n")},
		want: `clusters/a\nmeshfleet: forged": is a symbolic link`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dir, outside := filepath.Join(parent, "out"), filepath.Join(parent, "outside")
			writeFile(t, filepath.Join(outside, "secret"), secret)
			os.MkdirAll(dir, 0o755)
			tt.setup(t, dir, outside)
			render := tt.tree
			if render == nil {
				render = tree
			}
			beforeOut, beforeIn := snapshot(t, outside), snapshot(t, dir)
			for _, mode := range []string{"check", "render"} {
				var err error
				withTimeout(t, func() {
					if mode == "check" {
						var out *overlays.Output
						if out, err = overlays.OpenForCheck(dir); err == nil {
							var c *overlays.Changes
							if c, err = overlays.Compare(out, "", render); err == nil {
								os.Stdout.Write(c.Diff()) // not reached; shows what leaked
							}
							out.Close()
						}
					} else {
						_, err = overlays.Write(dir, render)
					}
				})
				want := tt.want
				if mode == "check" && tt.check != "" {
					want = tt.check
				}
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("%s: %v, want an error containing %q", mode, err, want)
				}
				if err != nil && strings.Contains(err.Error(), secret) {
					t.Errorf("%s: the error shows an outside file: %v", mode, err)
				}
				if err != nil && strings.Count(err.Error(), "\n") > 0 && !strings.Contains(err.Error(), "refusing to replace") {
					t.Errorf("%s: error of several lines: %q", mode, err)
				}
			}
			if after := snapshot(t, outside); !sameSnapshot(beforeOut, after) {
				t.Errorf("outside changed:\nbefore %q\nafter  %q", beforeOut, after)
			}
			if after := snapshot(t, dir); !sameSnapshot(beforeIn, after) {
				t.Errorf("output directory changed by a refused render:\nbefore %q\nafter  %q", beforeIn, after)
			}
		})
	}
}

func TestOutputDirectoryIsASymlink(t *testing.T) {
	parent := t.TempDir()
	os.MkdirAll(filepath.Join(parent, "real"), 0o755)
	symlink(t, "real", filepath.Join(parent, "out"))
	_, err := overlays.Write(filepath.Join(parent, "out"), tree)
	if err == nil || !strings.Contains(err.Error(), "the output directory is a symbolic link") {
		t.Fatalf("Write = %v", err)
	}
	if _, err := overlays.OpenForCheck(filepath.Join(parent, "out")); err == nil {
		t.Fatal("check opened a symlinked output directory")
	}
	if entries, _ := os.ReadDir(filepath.Join(parent, "real")); len(entries) > 0 {
		t.Errorf("wrote through the link: %v", entries)
	}
}

// A killed render leaves the staging directory with staged files (some
// of them links to files outside) and possibly a half-renamed tree and
// the manifest listing old and new files. check refuses to call it up to
// date; the next render removes the leftovers, follows none of the links
// and brings the tree up to date.
func TestRenderRepairsAKilledRender(t *testing.T) {
	parent := t.TempDir()
	dir, outside := filepath.Join(parent, "out"), filepath.Join(parent, "outside")
	writeFile(t, filepath.Join(outside, "secret"), secret)
	old := overlays.Tree{"clusters/a/kustomization.yaml": []byte("old\n"), "clusters/gone/kustomization.yaml": []byte("gone\n")}
	mustWrite(t, dir, old)
	// What a render of tree killed after two renames leaves.
	writeFile(t, filepath.Join(dir, overlays.StagingDir, "3"), "x\n")
	symlink(t, filepath.Join(outside, "secret"), filepath.Join(dir, overlays.StagingDir, "4"))
	mkfifo(t, filepath.Join(dir, overlays.StagingDir, "5"))
	writeFile(t, filepath.Join(dir, "clusters/a/kustomization.yaml"), "a\n")
	writeFile(t, filepath.Join(dir, "clusters/a/ns/namespace.yaml"), "ns\n")
	writeFile(t, filepath.Join(dir, overlays.Manifest), string(overlays.ManifestFor(overlays.Tree{
		"clusters/a/kustomization.yaml": nil, "clusters/a/ns/namespace.yaml": nil,
		"clusters/gone/kustomization.yaml": nil, "shared/x/kustomization.yaml": nil,
	})))

	if _, err := overlays.OpenForCheck(dir); err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("check of a half-written tree: %v, want a refusal", err)
	}
	out, err := overlays.OpenForRender(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Recovered() {
		t.Error("Recovered() = false")
	}
	c, err := overlays.Compare(out, "", tree)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Apply()
	out.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res != (overlays.Result{Written: 1, Removed: 1, Unchanged: 2}) {
		t.Errorf("repair: %+v", res)
	}
	assertTree(t, dir, map[string]string{"clusters/a/kustomization.yaml": "a\n", "clusters/a/ns/namespace.yaml": "ns\n", "shared/x/kustomization.yaml": "x\n"})
	if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != secret {
		t.Error("outside file changed")
	}
	if _, err := os.Lstat(filepath.Join(dir, overlays.StagingDir)); !os.IsNotExist(err) {
		t.Errorf("staging directory left: %v", err)
	}
}

// A directory holding another fleet's output is refused; one from before
// fleets were recorded is taken over.
func TestAnotherFleetsOutput(t *testing.T) {
	dir := t.TempDir()
	if _, err := overlays.WriteFleet(dir, "prod", tree); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	_, err := overlays.WriteFleet(dir, "staging", tree)
	if err == nil || !strings.Contains(err.Error(), "holds the output of fleet prod") || !strings.Contains(err.Error(), "refusing to render fleet staging") {
		t.Fatalf("WriteFleet of another fleet = %v", err)
	}
	if !sameSnapshot(before, snapshot(t, dir)) {
		t.Error("refused render changed the directory")
	}
	if res, err := overlays.WriteFleet(dir, "prod", tree); err != nil || res != (overlays.Result{Unchanged: 3}) {
		t.Errorf("same fleet again: %+v %v", res, err)
	}

	old := t.TempDir()
	mustWrite(t, old, tree) // no fleet recorded
	if res, err := overlays.WriteFleet(old, "prod", tree); err != nil || res != (overlays.Result{Unchanged: 3}) {
		t.Errorf("taking over an old manifest: %+v %v", res, err)
	}
	if b, _ := os.ReadFile(filepath.Join(old, overlays.Manifest)); !bytes.Contains(b, []byte("\n# fleet: prod\n")) {
		t.Errorf("fleet not recorded:\n%s", b)
	}
}

// Renders into one directory at the same time run one after the other:
// the tree is always exactly one of them.
func TestConcurrentWrites(t *testing.T) {
	dir := t.TempDir()
	trees := []overlays.Tree{{}, {}}
	for i := range 40 {
		p := filepath.Join("clusters", string(rune('a'+i%26))+string(rune('a'+i/26)), "kustomization.yaml")
		trees[0][p] = []byte("zero\n")
		trees[1][p] = []byte("one\n")
	}
	trees[1]["shared/only-one.yaml"] = []byte("one\n")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { _, errs[i] = overlays.Write(dir, trees[i%2]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	got := readTree(t, dir)
	delete(got, overlays.Manifest)
	match := func(want overlays.Tree) bool {
		if len(got) != len(want) {
			return false
		}
		for p, b := range want {
			if !bytes.Equal(got[p], b) {
				return false
			}
		}
		return true
	}
	if !match(trees[0]) && !match(trees[1]) {
		t.Errorf("the tree is a mix of two renders")
	}
}

// Read-only directories are found before anything changes (as root,
// permissions do not stop writes, so this runs only without it).
func TestReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions; the whole-process suite covers a read-only mount")
	}
	dir := t.TempDir()
	mustWrite(t, dir, overlays.Tree{"clusters/a/kustomization.yaml": []byte("old\n"), "clusters/b/kustomization.yaml": []byte("b\n")})
	os.Chmod(filepath.Join(dir, "clusters/b"), 0o555)
	defer os.Chmod(filepath.Join(dir, "clusters/b"), 0o755)
	before := snapshot(t, dir)
	_, err := overlays.Write(dir, overlays.Tree{"clusters/a/kustomization.yaml": []byte("new\n")})
	if err == nil || !strings.Contains(err.Error(), "clusters/b: cannot write here") {
		t.Fatalf("Write = %v", err)
	}
	if !sameSnapshot(before, snapshot(t, dir)) {
		t.Error("a refused render changed the directory")
	}
}

// Temporary files that versions before the staging directory left
// beside their targets: check refuses, render removes them (a link among
// them is removed, never followed).
func TestLegacyTemporaryFiles(t *testing.T) {
	parent := t.TempDir()
	dir, outside := filepath.Join(parent, "out"), filepath.Join(parent, "outside")
	writeFile(t, filepath.Join(outside, "secret"), secret)
	mustWrite(t, dir, tree)
	writeFile(t, filepath.Join(dir, "clusters/a/.kustomization.yaml.meshfleet-tmp"), "half")
	symlink(t, filepath.Join(outside, "secret"), filepath.Join(dir, "shared/x/.kustomization.yaml.meshfleet-tmp"))
	out, err := overlays.OpenForCheck(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = overlays.Compare(out, "", tree)
	out.Close()
	if err == nil || !strings.Contains(err.Error(), "interrupted and left temporary files behind") {
		t.Fatalf("check: %v", err)
	}
	mustWrite(t, dir, tree)
	assertTree(t, dir, map[string]string{"clusters/a/kustomization.yaml": "a\n", "clusters/a/ns/namespace.yaml": "ns\n", "shared/x/kustomization.yaml": "x\n"})
	if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != secret {
		t.Error("outside file changed")
	}
}

// A second render waits for the first; past LockTimeout it gives up.
func TestLockTimeout(t *testing.T) {
	dir := t.TempDir()
	first, err := overlays.OpenForRender(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func(d time.Duration) { overlays.LockTimeout = d }(overlays.LockTimeout)
	overlays.LockTimeout = 300 * time.Millisecond
	for _, open := range []func(string) (*overlays.Output, error){overlays.OpenForRender, overlays.OpenForCheck} {
		if _, err := open(dir); err == nil || !strings.Contains(err.Error(), "another meshfleet render or check has been working in this directory") {
			t.Errorf("second open while locked: %v", err)
		}
	}
	first.Close()
	second, err := overlays.OpenForCheck(dir)
	if err != nil {
		t.Fatalf("open after the first closed: %v", err)
	}
	second.Close()
}

// A render that stops before writing removes the directories it created
// for the output directory; a manifest line with a control character is
// ignored (it could forge lines of check's diff).
func TestNothingLeftByAFailedRender(t *testing.T) {
	parent := t.TempDir()
	out, err := overlays.OpenForRender(filepath.Join(parent, "a/b/out"))
	if err != nil {
		t.Fatal(err)
	}
	out.Close()
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}

	dir := filepath.Join(parent, "m")
	writeFile(t, filepath.Join(dir, overlays.Manifest), "clusters/x\r\x1b[2Kforged/kustomization.yaml\n")
	writeFile(t, filepath.Join(dir, "clusters/x\r\x1b[2Kforged/kustomization.yaml"), "mine")
	if owned, err := overlays.Owned(dir); err != nil || len(owned) != 0 {
		t.Errorf("Owned = %q, %v", owned, err)
	}
}
