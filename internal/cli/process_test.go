package cli_test

// Whole-process hostile tests: the meshfleet binary, built once, killed
// in the middle of renders, run twice at once, and pointed at full and
// read-only file systems.

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshfleet/meshfleet/internal/fleetgen"
	"github.com/meshfleet/meshfleet/overlays"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// meshfleet builds the binary once per test process.
func meshfleet(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "meshfleet-bin")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "meshfleet")
		out, err := exec.Command("go", "build", "-o", binary, "github.com/meshfleet/meshfleet").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

type result struct {
	stdout, stderr string
	code           int
}

func run(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(meshfleet(t), args...)
	cmd.Dir = dir
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	r := result{o.String(), e.String(), 0}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

// fixture writes two fleets of the same name whose trees differ in
// nearly every file (changed, added and removed files) and renders each
// once as the reference.
type fixture struct {
	work         string
	refA, refB   map[string]string
	fleetA       string
	fleetB       string
	refADir      string
	clustersEach int
}

func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	f := &fixture{work: t.TempDir(), clustersEach: n}
	f.fleetA, f.fleetB = filepath.Join(f.work, "a.yaml"), filepath.Join(f.work, "b.yaml")
	os.WriteFile(f.fleetA, fleetgen.YAML(fleetgen.MultiPrimaryMultiNetwork, n), 0o644)
	os.WriteFile(f.fleetB, fleetgen.YAML(fleetgen.PrimaryRemote, n), 0o644)
	f.refADir = filepath.Join(f.work, "ref-a")
	refBDir := filepath.Join(f.work, "ref-b")
	for _, r := range []struct{ fleet, dir string }{{f.fleetA, f.refADir}, {f.fleetB, refBDir}} {
		if res := run(t, f.work, "render", "-f", r.fleet, "-o", r.dir); res.code != 0 {
			t.Fatalf("reference render: %+v", res)
		}
	}
	f.refA, f.refB = files(t, f.refADir), files(t, refBDir)
	return f
}

// files reads a tree without following anything; links, pipes and other
// non-regular files show as such.
func files(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.IsDir():
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[filepath.ToSlash(rel)] = string(b)
		default:
			got[filepath.ToSlash(rel)] = d.Type().String()
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return got
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	os.RemoveAll(to)
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

// checkOwnership fails when the tree holds a file of either reference
// that its manifest does not list: an orphan that no later render would
// remove.
func (f *fixture) checkOwnership(t *testing.T, out string) {
	t.Helper()
	got := files(t, out)
	owned := map[string]bool{overlays.Manifest: true}
	for line := range strings.Lines(got[overlays.Manifest]) {
		owned[strings.TrimSpace(line)] = true
	}
	for p := range got {
		if strings.HasPrefix(p, overlays.StagingDir+"/") {
			continue
		}
		if !owned[p] {
			t.Errorf("%s is on disk but not in the manifest: an orphan", p)
		}
	}
}

// TestKilledRenders kills renders that move a tree from fleet A to fleet
// B at many points, most of them while files are being staged or renamed,
// and then checks what the issue asks: nothing outside the output
// directory changes, every file on disk is owned, check never calls a
// half-written tree up to date, and the next render repairs the tree
// exactly.
func TestKilledRenders(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: many whole renders")
	}
	f := newFixture(t, 12)
	parent := filepath.Join(f.work, "kill")
	out := filepath.Join(parent, "out")
	sentinel := filepath.Join(parent, "sentinel")
	counts := map[string]int{}
	const kills = 16
	for i := range kills {
		os.MkdirAll(parent, 0o755)
		os.WriteFile(sentinel, []byte("keep"), 0o644)
		copyTree(t, f.refADir, out)

		sig := syscall.SIGKILL
		switch i % 8 {
		case 3, 7:
			sig = syscall.SIGTERM
		case 5:
			sig = syscall.SIGINT
		}
		cmd := exec.Command(meshfleet(t), "render", "-f", f.fleetB, "-o", out)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait for the staging directory (the writing phase), then a
		// little more, so that kills land while staging, while renaming
		// and after.
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := os.Lstat(filepath.Join(out, overlays.StagingDir)); err == nil {
				break
			}
			if cmd.ProcessState != nil {
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
		time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond * time.Duration(i%3))
		cmd.Process.Signal(sig)
		err := cmd.Wait()

		tree := files(t, out)
		_, staging := os.Lstat(filepath.Join(out, overlays.StagingDir))
		switch {
		case equal(tree, f.refA):
			counts["untouched"]++
		case equal(tree, f.refB):
			counts["finished"]++
		case staging == nil:
			counts["half written, staging left"]++
		default:
			// Every half-written state is marked by the staging
			// directory, which the next render removes.
			t.Errorf("kill %d left a half-written tree without %s", i, overlays.StagingDir)
		}
		if b, _ := os.ReadFile(sentinel); string(b) != "keep" {
			t.Fatal("a file beside the output directory changed")
		}
		if entries, _ := os.ReadDir(parent); len(entries) != 2 {
			t.Fatalf("files appeared beside the output directory: %v", entries)
		}
		f.checkOwnership(t, out)
		if sig != syscall.SIGKILL {
			// SIGINT or SIGTERM while staging takes everything back;
			// during the renames it is held until the tree is complete.
			if !equal(tree, f.refA) && !equal(tree, f.refB) {
				t.Errorf("%v left a half-written tree (%v): %s", sig, err, stderr.String())
			}
		}

		check := run(t, f.work, "check", "-f", f.fleetB, "-o", out)
		if check.code == 0 && (!equal(tree, f.refB) || staging == nil) {
			t.Fatalf("kill %d: check calls a tree up to date that is not:\n%s", i, check.stderr)
		}
		if check.code != 0 && equal(tree, f.refB) && staging != nil {
			t.Errorf("kill %d: check fails on a complete tree: %s", i, check.stderr)
		}
		// Alternate which fleet the repairing render is for.
		fleet, want := f.fleetB, f.refB
		if i%2 == 1 {
			fleet, want = f.fleetA, f.refA
		}
		if r := run(t, f.work, "render", "-f", fleet, "-o", out); r.code != 0 {
			t.Fatalf("kill %d: render after the kill: %+v", i, r)
		}
		if got := files(t, out); !equal(got, want) {
			t.Fatalf("kill %d: render after the kill did not repair the tree", i)
		}
		if r := run(t, f.work, "check", "-f", fleet, "-o", out); r.code != 0 {
			t.Fatalf("kill %d: check after the repair: %+v", i, r)
		}
	}
	t.Logf("outcomes of %d kills: %v", kills, counts)
	if counts["half written, staging left"] == 0 {
		t.Log("no kill landed while the tree was half written; the timing of this machine missed the window")
	}
}

// TestConcurrentRenders runs two renders of different trees into one
// directory at the same time: both succeed, one after the other, and the
// tree is exactly one of them.
func TestConcurrentRenders(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: many whole renders")
	}
	f := newFixture(t, 10)
	for i := range 4 {
		out := filepath.Join(f.work, fmt.Sprint("out", i))
		if i%2 == 1 {
			copyTree(t, f.refADir, out)
		}
		var wg sync.WaitGroup
		res := make([]result, 3)
		args := [][]string{
			{"render", "-f", f.fleetA, "-o", out},
			{"render", "-f", f.fleetB, "-o", out},
			{"render", "-f", f.fleetB, "-o", out},
		}
		for j := range args {
			wg.Go(func() { res[j] = run(t, f.work, args[j]...) })
		}
		wg.Wait()
		for j, r := range res {
			if r.code != 0 {
				t.Errorf("render %d of %d at once: %+v", j, len(res), r)
			}
		}
		tree := files(t, out)
		if !equal(tree, f.refA) && !equal(tree, f.refB) {
			t.Fatalf("round %d: the tree is a mix of concurrent renders", i)
		}
	}
}

// mountTmpfs mounts a small tmpfs, or skips when this process may not.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	os.MkdirAll(dir, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
}

// TestFullDisk renders into a file system too small for the tree: the
// render fails naming the problem, and the directory is exactly as it
// was, with no temporary files.
func TestFullDisk(t *testing.T) {
	f := newFixture(t, 30)
	small := filepath.Join(f.work, "small.yaml")
	disk := filepath.Join(f.work, "disk")
	mountTmpfs(t, disk, "600k")
	out := filepath.Join(disk, "out")
	// A fleet of the same name that fits: only the first primary group.
	fits := strings.SplitAfter(string(fleetgen.YAML(fleetgen.PrimaryRemote, 30)), "    cluster-003:")[0]
	fits = strings.TrimSuffix(fits, "    cluster-003:")
	os.WriteFile(small, []byte(fits), 0o644)
	if r := run(t, f.work, "render", "-f", small, "-o", out); r.code != 0 {
		t.Fatalf("render of a fleet that fits: %+v", r)
	}
	before := files(t, out)
	r := run(t, f.work, "render", "-f", f.fleetB, "-o", out)
	if r.code != 1 || !strings.Contains(r.stderr, "no space left on device") {
		t.Fatalf("render onto a full disk: %+v", r)
	}
	if strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("error of several lines: %q", r.stderr)
	}
	if after := files(t, out); !equal(before, after) {
		t.Errorf("a render that ran out of space changed the directory")
	}
	if r := run(t, f.work, "check", "-f", small, "-o", out); r.code != 0 {
		t.Errorf("check after the failed render: %+v", r)
	}
}

// TestReadOnlyTree renders into a read-only mount: refused with the
// path named, nothing changes, and check still works.
func TestReadOnlyTree(t *testing.T) {
	f := newFixture(t, 3)
	disk := filepath.Join(f.work, "ro")
	mountTmpfs(t, disk, "4m")
	out := filepath.Join(disk, "out")
	if r := run(t, f.work, "render", "-f", f.fleetA, "-o", out); r.code != 0 {
		t.Fatal(r)
	}
	if b, err := exec.Command("mount", "-o", "remount,ro", disk).CombinedOutput(); err != nil {
		t.Skipf("cannot remount read-only: %v %s", err, b)
	}
	before := files(t, out)
	r := run(t, f.work, "render", "-f", f.fleetB, "-o", out)
	if r.code != 1 || !strings.Contains(r.stderr, out) || !strings.Contains(r.stderr, "read-only file system") {
		t.Fatalf("render into a read-only tree: %+v", r)
	}
	if !equal(before, files(t, out)) {
		t.Error("the read-only tree changed")
	}
	if r := run(t, f.work, "check", "-f", f.fleetA, "-o", out); r.code != 0 {
		t.Errorf("check of a read-only tree: %+v", r)
	}
	if r := run(t, f.work, "check", "-f", f.fleetB, "-o", out); r.code != 1 || r.stdout == "" {
		t.Errorf("check of a read-only tree that is out of date: code %d", r.code)
	}
}

// TestForgedLines: names with newlines and escape characters cannot
// forge lines of meshfleet's messages.
func TestForgedLines(t *testing.T) {
	work := t.TempDir()
	fleet := filepath.Join(work, "fleet.yaml")
	os.WriteFile(fleet, fleetgen.YAML(fleetgen.PrimaryRemote, 2), 0o644)
	evil := "out\nmeshfleet: all good\x1b[2K"
	os.Symlink("elsewhere", filepath.Join(work, evil))
	r := run(t, work, "render", "-f", "fleet.yaml", "-o", evil)
	if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, `"out\nmeshfleet: all good\x1b[2K": the output directory is a symbolic link`) {
		t.Errorf("render into a symlink with a newline in its name: %+v", r)
	}
	os.Remove(filepath.Join(work, evil))
	os.Mkdir(filepath.Join(work, evil), 0o755)
	r = run(t, work, "check", "-f", "fleet.yaml", "-o", evil)
	if r.code != 1 || strings.Count(r.stderr, "\n") != 2 || !strings.Contains(r.stderr, `  meshfleet render -f fleet.yaml -o $'out\nmeshfleet: all good\x1b[2K'`) {
		t.Errorf("check of a directory with a newline in its name: %+v", r)
	}
}
