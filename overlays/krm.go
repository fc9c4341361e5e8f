package overlays

import (
	"errors"
	"fmt"
	"io"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/meshfleet/meshfleet/generator/fleet"
)

// ClusterOverlayKind is the functionConfig kind that names a fleet file
// and a cluster, for use as a KRM function:
//
//	apiVersion: meshfleet.dev/v1alpha1
//	kind: ClusterOverlay
//	spec:
//	  fleetFile: fleet.yaml   # relative to the kustomization that declares the function, inside its directory
//	  cluster: east
const ClusterOverlayKind = "ClusterOverlay"

// annotationCluster picks the cluster when the functionConfig is an inline
// MeshFleet.
const annotationCluster = "meshfleet.dev/cluster"

// KRM runs meshfleet as a KRM function: it reads a ResourceList from in and
// writes one to out with the input items followed by every object of one
// cluster. The functionConfig is a ClusterOverlay or an inline MeshFleet;
// dir is where relative fleet files are looked up (kustomize runs exec
// functions in the directory of the kustomization that declares them);
// cluster, if not empty, picks the cluster. On failure the ResourceList
// carries the errors as results and the same errors are returned, because
// kustomize drops results and shows only stderr.
func KRM(in io.Reader, out io.Writer, dir, cluster string) error {
	p := framework.ResourceListProcessorFunc(func(rl *framework.ResourceList) error {
		objs, err := krmObjects(rl.FunctionConfig, dir, cluster)
		if err != nil {
			rl.Results = append(rl.Results, results(err)...)
			return err
		}
		rl.Items = append(rl.Items, objs...)
		return nil
	})
	return framework.Execute(p, &kio.ByteReadWriter{Reader: in, Writer: out, KeepReaderAnnotations: true})
}

func krmObjects(cfg *yaml.RNode, dir, cluster string) ([]*yaml.RNode, error) {
	if cfg == nil {
		return nil, errors.New("the ResourceList has no functionConfig: give a ClusterOverlay or a MeshFleet")
	}
	var f *fleet.Fleet
	var err error
	switch kind := cfg.GetKind(); kind {
	case ClusterOverlayKind:
		var spec struct {
			FleetFile string `yaml:"fleetFile"`
			Cluster   string `yaml:"cluster"`
		}
		if n := cfg.Field("spec"); n != nil {
			if err := n.Value.YNode().Decode(&spec); err != nil {
				return nil, fmt.Errorf("%s %s: spec: %w", kind, show(cfg.GetName()), err)
			}
		}
		if spec.FleetFile == "" {
			return nil, fmt.Errorf("%s %s: spec.fleetFile is required", kind, show(cfg.GetName()))
		}
		cluster = pick(cluster, spec.Cluster)
		// The kustomization may be hostile: like kustomize's own load
		// restrictor, the fleet file must be inside its directory.
		f, err = fleet.LoadConfined(dir, spec.FleetFile)
	case "MeshFleet":
		cluster = pick(cluster, cfg.GetAnnotations()[annotationCluster])
		var src string
		if src, err = cfg.String(); err == nil {
			f, err = fleet.Parse("functionConfig.yaml", []byte(src))
		}
	default:
		return nil, fmt.Errorf("functionConfig is a %s; want %s or MeshFleet", show(kind), ClusterOverlayKind)
	}
	if err != nil {
		return nil, err
	}
	if cluster == "" {
		return nil, fmt.Errorf("no cluster chosen: set spec.cluster of the %s, the %s annotation of the MeshFleet, or --cluster", ClusterOverlayKind, annotationCluster)
	}
	m, err := ClusterManifests(f, cluster, KRMFunction)
	if err != nil {
		return nil, err
	}
	return kio.FromBytes(m)
}

func pick(flag, field string) string {
	if flag != "" {
		return flag
	}
	return field
}

// results turns errors into KRM results, one per fleet error, with the
// file and field they concern.
func results(err error) framework.Results {
	var fe fleet.Errors
	if !errors.As(err, &fe) {
		return framework.Results{{Message: err.Error(), Severity: framework.Error}}
	}
	var rs framework.Results
	for _, e := range fe {
		r := &framework.Result{Message: e.Error(), Severity: framework.Error, File: &framework.File{Path: e.Pos.File}}
		if e.Path != "" {
			r.Field = &framework.Field{Path: e.Path}
		}
		rs = append(rs, r)
	}
	return rs
}
