package overlays

import (
	"errors"
	"fmt"
	"path"
	"runtime"
	"sync"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Verify builds the overlay of every cluster in t with kustomize, exactly
// as `kustomize build` would (default load restrictions, no plugins), and
// checks that every namespaced object has its namespace set. It returns
// the built manifests of each cluster.
func Verify(t Tree, clusters []string) (map[string][]byte, error) {
	fs := filesys.MakeFsInMemory()
	for p, b := range t {
		if err := fs.WriteFile("/"+p, b); err != nil {
			return nil, err
		}
	}
	built := make([][]byte, len(clusters))
	errs := make([]error, len(clusters))
	var wg sync.WaitGroup
	work := make(chan int)
	for range min(runtime.GOMAXPROCS(0), len(clusters)) {
		wg.Go(func() {
			for i := range work {
				built[i], errs[i] = build(fs, clusters[i])
			}
		})
	}
	for i := range clusters {
		work <- i
	}
	close(work)
	wg.Wait()
	out := map[string][]byte{}
	for i, c := range clusters {
		out[c] = built[i]
	}
	return out, errors.Join(errs...)
}

// BuildOptions are the options of the kustomize CLI's `build`: plugins
// off, files only from within the kustomization root, and the legacy
// order that puts Namespaces first.
func BuildOptions() *krusty.Options {
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionLegacy
	return opts
}

func build(fs filesys.FileSystem, cluster string) ([]byte, error) {
	dir := "/" + ClusterDir(cluster)
	m, err := krusty.MakeKustomizer(BuildOptions()).Run(fs, dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", path.Join(ClustersDir, cluster), err)
	}
	var errs []error
	for _, r := range m.Resources() {
		if r.GetGvk().IsClusterScoped() || r.GetNamespace() != "" {
			continue
		}
		errs = append(errs, fmt.Errorf("kustomize build %s: %s %s has no namespace", path.Join(ClustersDir, cluster), r.GetKind(), r.GetName()))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return m.AsYaml()
}
