package overlays

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path"
	"slices"
	"strings"
	"syscall"
	"unicode"

	"github.com/rogpeppe/go-internal/diff"
)

// Manifest is the file in the output directory that lists, one path a
// line, every file meshfleet wrote there. A later render deletes the
// listed files it no longer produces and never touches any other file.
const Manifest = ".meshfleet-files"

const manifestHeader = "# Files written by meshfleet render. It deletes them when the fleet no longer needs them; it never touches other files.\n"

// fleetPrefix starts the manifest line that names the fleet whose output
// the directory holds.
const fleetPrefix = "# fleet: "

// Result counts what Write did.
type Result struct {
	Written, Removed, Unchanged int
}

// manifest is what a manifest says.
type manifest struct {
	fleet string   // "" in manifests from before fleets were recorded
	owned []string // clean relative paths
}

// parseManifest reads a manifest. Lines that are not clean relative paths
// are ignored, so a tampered manifest cannot point outside the directory
// (and every access goes through an os.Root anyway).
func parseManifest(b []byte) manifest {
	var m manifest
	for line := range strings.Lines(string(b)) {
		p := strings.TrimSpace(line)
		if name, ok := strings.CutPrefix(p, fleetPrefix); ok && m.fleet == "" {
			m.fleet = name
		}
		if p == "" || strings.HasPrefix(p, "#") || !fs.ValidPath(p) || p == Manifest || p == StagingDir || strings.HasPrefix(p, StagingDir+"/") ||
			strings.ContainsFunc(p, unicode.IsControl) { // meshfleet writes no such names; they could forge lines of check's diff
			continue
		}
		m.owned = append(m.owned, p)
	}
	return m
}

// Owned returns the paths listed in dir's manifest, if it has one.
func Owned(dir string) ([]string, error) {
	o, err := OpenForCheck(dir)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	m, err := o.manifest()
	return m.owned, err
}

func (o *Output) manifest() (manifest, error) {
	b, err := o.cachedRead(Manifest)
	if errors.Is(err, fs.ErrNotExist) {
		return manifest{}, nil
	} else if err != nil {
		return manifest{}, err
	}
	return parseManifest(b), nil
}

// ReadDir reads every file under dir into a Tree. It refuses symbolic
// links and anything else that is not a regular file or a directory.
func ReadDir(dir string) (Tree, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	o := &Output{dir: dir, root: root}
	t := Tree{}
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := o.read(p)
		t[p] = b
		return err
	})
	return t, err
}

// ManifestFor returns the manifest that records the files of t.
func ManifestFor(t Tree) []byte { return ManifestForFleet("", t) }

// ManifestForFleet returns the manifest that records the files of t as
// the output of the named fleet.
func ManifestForFleet(fleet string, t Tree) []byte {
	return manifestOf(fleet, t.Paths())
}

func manifestOf(fleet string, paths []string) []byte {
	var b bytes.Buffer
	b.WriteString(manifestHeader)
	if fleet != "" {
		b.WriteString(fleetPrefix + fleet + "\n")
	}
	for _, p := range paths {
		if p != Manifest {
			b.WriteString(p + "\n")
		}
	}
	return b.Bytes()
}

// Changes is how an output directory differs from a rendered tree: the
// files to write, the files to remove and their current contents. It is
// computed once and then verified, shown (check) or applied (render).
type Changes struct {
	out       *Output
	fleet     string
	want      Tree              // the rendered tree plus its manifest
	owned     []string          // what the manifest on disk lists
	changed   []string          // paths to (re)write, sorted
	removed   []string          // owned paths no longer rendered, still on disk
	current   map[string][]byte // contents on disk of changed and removed paths
	leftovers []string          // temporary files earlier versions left beside targets
	unchanged int
}

// Compare reads the output directory and works out what making it hold
// t, the output of the named fleet, takes. A file of t that would replace
// a file meshfleet did not write is an error, unless their contents are
// identical; so is a directory that holds another fleet's output.
// Symbolic links, named pipes, devices and other files that are not
// regular are refused wherever meshfleet would read or write.
func Compare(out *Output, fleet string, t Tree) (*Changes, error) {
	defer func() { out.prefetch = nil }() // what it did not answer is stale
	m, err := out.manifest()
	if err != nil {
		return nil, err
	}
	if fleet != "" && m.fleet != "" && m.fleet != fleet {
		return nil, fmt.Errorf("%s holds the output of fleet %s (see %s); refusing to render fleet %s into it: use another directory, or remove the old output first",
			show(out.dir), show(m.fleet), out.show(Manifest), show(fleet))
	}
	if err := checkFluxBootstrap(out, t); err != nil {
		return nil, err
	}
	isOwned := map[string]bool{}
	for _, p := range m.owned {
		isOwned[p] = true
	}
	c := &Changes{out: out, fleet: fleet, owned: m.owned, want: Tree{Manifest: ManifestForFleet(fleet, t)}, current: map[string][]byte{}}
	for p, b := range t {
		if p == StagingDir || strings.HasPrefix(p, StagingDir+"/") || !fs.ValidPath(p) {
			return nil, fmt.Errorf("rendered tree holds %s, which meshfleet may not write", show(p))
		}
		if p != Manifest {
			c.want[p] = b
		}
	}
	var conflicts []string
	for _, p := range c.want.Paths() {
		cur, err := out.cachedRead(p)
		switch {
		case err == nil && bytes.Equal(cur, c.want[p]):
			if p != Manifest {
				c.unchanged++
			}
		case err == nil && !isOwned[p] && p != Manifest:
			conflicts = append(conflicts, show(p))
		case err == nil:
			c.current[p] = cur
			c.changed = append(c.changed, p)
		case errors.Is(err, fs.ErrNotExist):
			c.changed = append(c.changed, p)
		default:
			return nil, err
		}
	}
	if len(conflicts) > 0 {
		return nil, fmt.Errorf("%s: refusing to replace files meshfleet did not write (move them away or delete them):\n  %s", show(out.dir), strings.Join(conflicts, "\n  "))
	}
	for _, p := range m.owned {
		if _, keep := t[p]; keep {
			continue
		}
		cur, err := out.cachedRead(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, err
		}
		c.current[p] = cur
		c.removed = append(c.removed, p)
	}
	if err := c.findLeftovers(); err != nil {
		return nil, err
	}
	return c, nil
}

// FluxSystemDir is the directory `flux bootstrap` writes into the path it
// is given (clusters/<cluster>/flux-system in Flux's own layout).
const FluxSystemDir = "flux-system"

// checkFluxBootstrap refuses a tree that would put a kustomization.yaml
// beside a flux-system directory: that directory is a Flux bootstrap path,
// which Flux's own Kustomization applies. Without a kustomization.yaml
// there, Flux builds one from every manifest in it; with meshfleet's,
// Flux applies the mesh in place of its own manifests and prunes itself.
// With Flux's layout (clusters/<cluster>/flux-system) that is exactly what
// rendering into the repository's root does.
func checkFluxBootstrap(out *Output, t Tree) error {
	for _, p := range t.Paths() {
		if path.Base(p) != Kustomize {
			continue
		}
		sys := path.Join(path.Dir(p), FluxSystemDir)
		if _, err := out.lstat(sys); errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return err
		}
		return fmt.Errorf("%s: a Flux bootstrap tree; refusing to write %s beside it: Flux would apply that kustomization in place of its own manifests and prune itself. Render the mesh into a directory of its own (e.g. -o mesh/rendered)",
			out.show(sys), out.show(p))
	}
	return nil
}

// findLeftovers looks for the temporary files earlier versions of
// meshfleet staged beside their targets, which a killed render left
// behind. render removes them (they are only ever removed, never read
// or followed); check refuses to call such a tree up to date.
func (c *Changes) findLeftovers() error {
	seen := map[string]bool{}
	for _, p := range slices.Concat(c.want.Paths(), c.owned) {
		tmp := path.Join(path.Dir(p), "."+path.Base(p)+".meshfleet-tmp")
		if seen[tmp] {
			continue
		}
		seen[tmp] = true
		d, err := c.out.openDir(path.Dir(tmp))
		if err != nil {
			continue // a refusal, if any, comes from the target itself
		}
		if fi, err := d.Lstat(path.Base(tmp)); err == nil && !fi.IsDir() {
			c.leftovers = append(c.leftovers, tmp)
		}
	}
	if len(c.leftovers) > 0 && !c.out.render {
		return fmt.Errorf("%s: a render into this directory was interrupted and left temporary files behind (%s), so the tree may be half written; run meshfleet render to finish it",
			show(c.out.dir), show(c.leftovers[0]))
	}
	return nil
}

// Empty reports whether dir already holds the tree.
func (c *Changes) Empty() bool {
	return len(c.changed) == 0 && len(c.removed) == 0 && len(c.leftovers) == 0
}

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

// Write makes dir hold t; see [Compare] and [Changes.Apply]. No fleet is
// recorded in the manifest; see [WriteFleet].
func Write(dir string, t Tree) (Result, error) { return WriteFleet(dir, "", t) }

// WriteFleet makes dir hold t, the output of the named fleet.
func WriteFleet(dir, fleet string, t Tree) (Result, error) {
	out, err := OpenForRender(dir)
	if err != nil {
		return Result{}, err
	}
	defer out.Close()
	c, err := Compare(out, fleet, t)
	if err != nil {
		return Result{}, err
	}
	return c.Apply()
}

// errInterrupted is returned when SIGINT or SIGTERM arrives while files
// are being staged; nothing has changed then.
var errInterrupted = errors.New("interrupted; the output directory was not changed")

// Apply writes the changes:
//
//  1. Every new or changed file is written into StagingDir: one bound
//     for an existing directory on its own, the files of a directory that
//     does not exist yet inside a staged copy of that whole new directory
//     tree. Any failure or interrupt up to here takes everything back:
//     the directory is as it was.
//  2. If the tree adds files, the manifest is first replaced by one that
//     lists the old and the new files, so that whatever happens next, no
//     file meshfleet writes is ever unrecorded.
//  3. The staged files and directory trees are renamed into place, with
//     SIGINT and SIGTERM held: one rename per new directory tree, so a
//     render into a new directory moves a handful of entries rather than
//     every file. Then the files no longer rendered are removed, and the
//     manifest of the new tree goes last. A file that cannot be removed
//     stays in the manifest, and Apply reports it.
//  4. StagingDir is removed.
//
// A render killed at any point leaves StagingDir behind: the next render
// removes it and finishes the job (the manifest covers every file), and
// check refuses to call the directory up to date until then.
func (c *Changes) Apply() (Result, error) {
	res := Result{Unchanged: c.unchanged}
	if c.Empty() {
		return res, nil
	}
	o := c.out
	if o.root == nil || !o.render {
		return res, fmt.Errorf("%s: not opened for render", show(o.dir))
	}
	o.applied = true
	for _, p := range c.leftovers {
		if err := o.root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return res, o.pathErr(p, err)
		}
	}
	if len(c.changed) == 0 && len(c.removed) == 0 {
		return res, nil
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	interrupted := func() bool {
		select {
		case <-sig:
			return true
		default:
			return false
		}
	}

	st := &stage{out: o}
	if err := st.prepare(c, interrupted); err != nil {
		st.done()
		return res, err
	}

	// From here on the directory changes. Every failure below leaves a
	// manifest that names every file meshfleet wrote.
	owned := map[string]bool{}
	for _, p := range c.owned {
		owned[p] = true
	}
	union := slices.Clone(c.owned)
	for _, p := range c.changed {
		if !owned[p] && p != Manifest {
			union = append(union, p)
		}
	}
	var installed []byte // the manifest on disk, if Apply wrote it
	if len(union) > len(c.owned) {
		slices.Sort(union)
		installed = manifestOf(c.fleet, slices.Compact(union))
		if err := st.install(Manifest, installed); err != nil {
			st.done()
			return res, err
		}
	}
	for _, m := range st.moves {
		if err := place(st, m); err != nil {
			st.done()
			return res, fmt.Errorf("%s; the directory is half written and its manifest names every file meshfleet wrote: run meshfleet render again once this is fixed", o.pathErr(m.target, err))
		}
		res.Written += m.files
	}
	var failed []string
	var errs []error
	for _, p := range c.removed {
		if _, err := o.lstat(p); errors.Is(err, fs.ErrNotExist) {
			res.Removed++
			continue
		} else if err != nil {
			failed, errs = append(failed, p), append(errs, err)
			continue
		}
		if err := removeFile(o.root, p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			failed, errs = append(failed, p), append(errs, o.pathErr(p, err))
			continue
		}
		res.Removed++
		o.removeEmptyParents(path.Dir(p))
	}
	final := c.want[Manifest]
	if len(failed) > 0 {
		final = manifestOf(c.fleet, slices.Sorted(slices.Values(slices.Concat(c.want.Paths(), failed))))
	}
	// The manifest of the old and new files is the final one when
	// nothing was removed, as in a render into a new directory.
	if (installed != nil || len(failed) > 0 || slices.Contains(c.changed, Manifest)) && !bytes.Equal(installed, final) {
		if err := st.install(Manifest, final); err != nil {
			st.done()
			return res, err
		}
	}
	st.done()
	syncDir(o.lock)
	if len(errs) > 0 {
		return res, fmt.Errorf("could not remove files meshfleet no longer renders; they stay listed in %s, and the next render tries again:\n%w", o.show(Manifest), errors.Join(errs...))
	}
	return res, nil
}

// removeFile removes a file no longer rendered; tests make it fail.
var removeFile = (*os.Root).Remove

// syncDir flushes a directory's entries to disk, best effort.
func syncDir(d *os.File) {
	if d != nil {
		d.Sync()
	}
}
