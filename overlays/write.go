package overlays

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/rogpeppe/go-internal/diff"
)

// Manifest is the file in the output directory that lists, one path a
// line, every file meshfleet wrote there. A later render deletes the
// listed files it no longer produces and never touches any other file.
const Manifest = ".meshfleet-files"

const manifestHeader = "# Files written by meshfleet render. It deletes them when the fleet no longer needs them; it never touches other files.\n"

// Result counts what Write did.
type Result struct {
	Written, Removed, Unchanged int
}

// Owned returns the paths listed in dir's manifest, if it has one. Lines
// that are not clean relative paths are ignored, so a tampered manifest
// cannot point outside dir.
func Owned(dir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, Manifest))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var owned []string
	for line := range strings.Lines(string(b)) {
		p := strings.TrimSpace(line)
		if p == "" || strings.HasPrefix(p, "#") || !fs.ValidPath(p) || p == Manifest {
			continue
		}
		owned = append(owned, p)
	}
	return owned, nil
}

// ReadDir reads every file under dir into a Tree.
func ReadDir(dir string) (Tree, error) {
	t := Tree{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		t[filepath.ToSlash(rel)] = b
		return err
	})
	return t, err
}

// ManifestFor returns the manifest that records the files of t.
func ManifestFor(t Tree) []byte {
	var b bytes.Buffer
	b.WriteString(manifestHeader)
	for _, p := range t.Paths() {
		b.WriteString(p + "\n")
	}
	return b.Bytes()
}

// Changes is how an output directory differs from a rendered tree: the
// files to write, the files to remove and their current contents. It is
// computed once and then verified, shown (check) or applied (render).
type Changes struct {
	dir       string
	want      Tree              // the rendered tree plus its manifest
	changed   []string          // paths to (re)write, sorted
	removed   []string          // owned paths no longer rendered, still on disk
	current   map[string][]byte // contents on disk of changed and removed paths
	unchanged int
}

// Compare reads dir and works out what making it hold t takes. A file of
// t that would replace a file meshfleet did not write is an error, unless
// their contents are identical.
func Compare(dir string, t Tree) (*Changes, error) {
	owned, err := Owned(dir)
	if err != nil {
		return nil, err
	}
	isOwned := map[string]bool{}
	for _, p := range owned {
		isOwned[p] = true
	}
	c := &Changes{dir: dir, want: Tree{Manifest: ManifestFor(t)}, current: map[string][]byte{}}
	for p, b := range t {
		c.want[p] = b
	}
	var conflicts []string
	for _, p := range c.want.Paths() {
		cur, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		switch {
		case err == nil && bytes.Equal(cur, c.want[p]):
			if p != Manifest {
				c.unchanged++
			}
		case err == nil && !isOwned[p] && p != Manifest:
			conflicts = append(conflicts, p)
		case err == nil:
			c.current[p] = cur
			c.changed = append(c.changed, p)
		case errors.Is(err, fs.ErrNotExist):
			c.changed = append(c.changed, p)
		default:
			conflicts = append(conflicts, fmt.Sprintf("%s (%v)", p, err))
		}
	}
	if len(conflicts) > 0 {
		return nil, fmt.Errorf("%s: refusing to replace files meshfleet did not write (move them away or delete them):\n  %s", dir, strings.Join(conflicts, "\n  "))
	}
	for _, p := range owned {
		if _, keep := t[p]; keep {
			continue
		}
		cur, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, err
		}
		c.current[p] = cur
		c.removed = append(c.removed, p)
	}
	return c, nil
}

// Empty reports whether dir already holds the tree.
func (c *Changes) Empty() bool { return len(c.changed) == 0 && len(c.removed) == 0 }

// Dirs returns the overlays the changes touch: the ones that need
// verifying before the changes are applied. A change to a shared base
// touches every cluster.
func (c *Changes) Dirs() []string {
	roots := Roots(c.want)
	var touched []string
	for _, p := range append(slices.Clone(c.changed), c.removed...) {
		for _, r := range roots {
			if (strings.HasPrefix(p, r+"/") || strings.HasPrefix(p, SharedDir+"/") && strings.HasPrefix(r, ClustersDir+"/")) && !slices.Contains(touched, r) {
				touched = append(touched, r)
			}
		}
	}
	slices.Sort(touched)
	return touched
}

// Roots returns the overlays of t that a GitOps tool applies on their
// own: clusters/<cluster>, flux/<cluster> and argocd.
func Roots(t Tree) []string {
	var roots []string
	for _, p := range t.Paths() {
		dir, file := path.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		if file != Kustomize {
			continue
		}
		switch parent := path.Dir(dir); {
		case dir == ArgoCDDir, parent == ClustersDir, parent == FluxDir:
			roots = append(roots, dir)
		}
	}
	return roots
}

// Diff is a unified diff per file that would be written or removed.
func (c *Changes) Diff() []byte {
	var out bytes.Buffer
	show := func(p string) {
		oldName, newName := path.Join("a", p), path.Join("b", p)
		cur, exists := c.current[p]
		b, rendered := c.want[p]
		if !exists {
			oldName = "/dev/null"
		}
		if !rendered {
			newName = "/dev/null"
		}
		out.Write(diff.Diff(oldName, cur, newName, b))
	}
	for _, p := range c.changed {
		show(p)
	}
	for _, p := range c.removed {
		show(p)
	}
	return out.Bytes()
}

// Write makes dir hold t; see [Compare] and [Changes.Apply].
func Write(dir string, t Tree) (Result, error) {
	c, err := Compare(dir, t)
	if err != nil {
		return Result{}, err
	}
	return c.Apply()
}

// Apply writes the changes. Files of an earlier render that the tree no
// longer has are removed; files meshfleet did not write are never
// touched. Every new file is first written beside its target; only when
// all of them are on disk are they renamed into place, so a failure leaves
// the directory as it was.
func (c *Changes) Apply() (Result, error) {
	res := Result{Unchanged: c.unchanged}
	st := stage{root: c.dir}
	for _, p := range c.changed {
		if err := st.add(p, c.want[p]); err != nil {
			st.abort()
			return res, err
		}
	}

	// From here on only renames and removals remain. Hold SIGINT and
	// SIGTERM until they are done so an interrupt cannot leave half a tree.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)

	// The manifest goes last: until it is in place, the old one still
	// names every file an interrupted run could have left behind.
	slices.SortStableFunc(st.files, func(a, b staged) int {
		return boolInt(a.target == Manifest) - boolInt(b.target == Manifest)
	})
	for _, f := range st.files {
		if err := os.Rename(f.tmp, filepath.Join(c.dir, filepath.FromSlash(f.target))); err != nil {
			st.abort()
			return res, err
		}
		if f.target != Manifest {
			res.Written++
		}
	}
	for _, p := range c.removed {
		full := filepath.Join(c.dir, filepath.FromSlash(p))
		if err := os.Remove(full); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return res, err
		}
		res.Removed++
		removeEmptyParents(c.dir, filepath.Dir(full))
	}
	return res, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

type staged struct{ tmp, target string }

// stage writes files next to their targets and remembers what it
// created, so that it can take everything back.
type stage struct {
	root  string
	files []staged
	dirs  []string // directories created, parents first
}

func (s *stage) add(p string, b []byte) error {
	target := filepath.Join(s.root, filepath.FromSlash(p))
	if err := s.mkdirAll(filepath.Dir(target)); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(target), "."+filepath.Base(target)+".meshfleet-tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	s.files = append(s.files, staged{tmp, p})
	return nil
}

func (s *stage) mkdirAll(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := s.mkdirAll(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	s.dirs = append(s.dirs, dir)
	return nil
}

// abort removes staged files that were not renamed yet and the
// directories created for them.
func (s *stage) abort() {
	for _, f := range s.files {
		os.Remove(f.tmp)
	}
	for i := len(s.dirs) - 1; i >= 0; i-- {
		os.Remove(s.dirs[i]) // only succeeds while empty
	}
}

// removeEmptyParents removes dir and its parents up to root while they
// are empty.
func removeEmptyParents(root, dir string) {
	root = filepath.Clean(root)
	for dir != root && strings.HasPrefix(dir, root+string(filepath.Separator)) {
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}
