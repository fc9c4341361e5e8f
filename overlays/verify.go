package overlays

import (
	"errors"
	"fmt"
	"path"
	"runtime"
	"sync"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Verify builds the overlay of every cluster in t with kustomize, exactly
// as `kustomize build` would (default load restrictions, no plugins), and
// checks that every namespaced object has its namespace set. Clusters are
// built in parallel, one per CPU.
func Verify(t Tree, clusters []string) error {
	fs, err := memFS(t)
	if err != nil {
		return err
	}
	errs := make([]error, len(clusters))
	var wg sync.WaitGroup
	work := make(chan int)
	for range min(runtime.GOMAXPROCS(0), len(clusters)) {
		wg.Go(func() {
			for i := range work {
				_, errs[i] = build(fs, clusters[i])
			}
		})
	}
	for i := range clusters {
		work <- i
	}
	close(work)
	wg.Wait()
	return errors.Join(errs...)
}

// Build builds one cluster's overlay in t and returns its manifests as a
// YAML stream, as `kustomize build` prints them.
func Build(t Tree, cluster string) ([]byte, error) {
	fs, err := memFS(t)
	if err != nil {
		return nil, err
	}
	m, err := build(fs, cluster)
	if err != nil {
		return nil, err
	}
	return m.AsYaml()
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

func build(fs filesys.FileSystem, cluster string) (resmap.ResMap, error) {
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
	return m, nil
}
