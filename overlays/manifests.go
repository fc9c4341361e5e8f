package overlays

import (
	"fmt"
	"strings"

	"github.com/meshfleet/meshfleet/generator/fleet"
)

// ClusterManifests renders f and returns what `kustomize build` prints for
// the overlay of one cluster: every object the cluster applies. Only that
// overlay is built, which keeps the plugin modes fast.
func ClusterManifests(f *fleet.Fleet, cluster string) ([]byte, error) {
	if f.Cluster(cluster) == nil {
		names := make([]string, len(f.Clusters))
		for i, c := range f.Clusters {
			names[i] = c.Name
		}
		return nil, fmt.Errorf("cluster %q is not in fleet %s (it has %s)", cluster, f.Metadata.Name, strings.Join(names, ", "))
	}
	t, err := layOut(f)
	if err != nil {
		return nil, err
	}
	return Build(t, ClusterDir(cluster))
}
