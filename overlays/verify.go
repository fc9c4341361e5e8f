package overlays

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/meshfleet/meshfleet/generator/fleet"
)

// Verify builds the overlays in dirs of t exactly as `kustomize build`
// would (default load restrictions, no plugins), and checks that every
// namespaced object has its namespace set. Overlays are built in
// parallel, one per CPU: with [fastBuild] when the overlay is of the
// shape meshfleet writes, else with kustomize itself (krusty).
func Verify(t Tree, dirs []string) error { return verify(t, dirs, nil) }

// verify is [Verify]; progress, if not nil, is called after each overlay
// with the number done.
func verify(t Tree, dirs []string, progress func(done, total int)) error {
	var kfs krustyFS
	docs := newDocCache()
	errs := make([]error, len(dirs))
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	work := make(chan int)
	for range min(runtime.GOMAXPROCS(0), len(dirs)) {
		wg.Go(func() {
			for i := range work {
				if objs, ok := fastBuild(t, dirs[i], docs); ok {
					errs[i] = checkNamespaces(dirs[i], objs)
				} else if fs, err := kfs.get(t); err != nil {
					errs[i] = err
				} else {
					_, errs[i] = build(fs, dirs[i])
				}
				if progress != nil {
					mu.Lock()
					done++
					progress(done, len(dirs))
					mu.Unlock()
				}
			}
		})
	}
	for i := range dirs {
		work <- i
	}
	close(work)
	wg.Wait()
	return errors.Join(errs...)
}

// krustyFS is the tree as kustomize's in-memory file system, made the
// first time an overlay needs kustomize itself.
type krustyFS struct {
	once sync.Once
	fs   filesys.FileSystem
	err  error
}

func (k *krustyFS) get(t Tree) (filesys.FileSystem, error) {
	k.once.Do(func() { k.fs, k.err = memFS(t) })
	return k.fs, k.err
}

// Build builds the overlay in dir of t and returns its manifests as a
// YAML stream, as `kustomize build` prints them.
func Build(t Tree, dir string) ([]byte, error) {
	if objs, ok := fastBuild(t, dir, nil); ok {
		if err := checkNamespaces(dir, objs); err != nil {
			return nil, err
		}
		return asYAML(objs)
	}
	return KrustyBuild(t, dir)
}

// KrustyBuild builds the overlay in dir of t with kustomize itself.
func KrustyBuild(t Tree, dir string) ([]byte, error) {
	fs, err := memFS(t)
	if err != nil {
		return nil, err
	}
	return build(fs, dir)
}

func memFS(t Tree) (filesys.FileSystem, error) {
	fs := filesys.MakeFsInMemory()
	for p, b := range t {
		if err := fs.WriteFile("/"+p, b); err != nil {
			return nil, err
		}
	}
	return fs, nil
}

// BuildOptions are the options of the kustomize CLI's `build`: plugins
// off, files only from within the kustomization root, and the legacy
// order that puts Namespaces first.
func BuildOptions() *krusty.Options {
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionLegacy
	return opts
}

// clusterScopedCRDs are the cluster-scoped custom kinds meshfleet writes;
// kustomize knows only the built-in kinds' scope.
var clusterScopedCRDs = map[string]bool{"sailoperator.io/Istio": true, "sailoperator.io/IstioRevisionTag": true}

// build builds the overlay in dir and prints it, as `kustomize build`
// does: kustomize can build objects whose printed YAML it cannot produce
// (a NEL character in a key), and that is a failed build too.
func build(fs filesys.FileSystem, dir string) (y []byte, err error) {
	// kustomize panics on some input (an empty annotation key); that is
	// a refusal, not a crash of meshfleet.
	defer func() {
		if r := recover(); r != nil {
			y, err = nil, fmt.Errorf("kustomize build %s: kustomize failed on this overlay: %s", dir, fleet.Escape(fmt.Sprint(r)))
		}
	}()
	m, err := krusty.MakeKustomizer(BuildOptions()).Run(fs, "/"+dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var errs []error
	for _, r := range m.Resources() {
		if gvk := r.GetGvk(); gvk.IsClusterScoped() || clusterScopedCRDs[gvk.Group+"/"+gvk.Kind] || r.GetNamespace() != "" {
			continue
		}
		errs = append(errs, noNamespace(dir, r.GetKind(), r.GetName()))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if y, err = m.AsYaml(); err != nil {
		return nil, fmt.Errorf("kustomize build %s: kustomize cannot print the result: %s", dir, fleet.Escape(err.Error()))
	}
	return y, nil
}

func noNamespace(dir, kind, name string) error {
	return fmt.Errorf("kustomize build %s: %s %s has no namespace", dir, kind, name)
}
