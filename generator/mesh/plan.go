// Package mesh decides what every cluster of a validated fleet needs to
// join the mesh, as Kubernetes objects grouped into files. It is a pure
// function of the fleet: it knows nothing about directories, kustomize or
// how the files are written.
package mesh

import (
	"github.com/meshfleet/meshfleet/generator/fleet"
)

// Object is one Kubernetes object as nested maps, ready to be marshalled.
type Object = map[string]any

// File is one YAML file of objects.
type File struct {
	Name    string
	Objects []Object
}

// Base is a group of files that several clusters share unchanged.
type Base struct {
	Name  string
	Files []File
}

// The shared bases.
const (
	BaseExposeServices = "expose-services"
	BaseExposeIstiod   = "expose-istiod"
)

// Cluster is everything one cluster needs.
type Cluster struct {
	*fleet.Cluster
	// Resources are applied to the cluster, in apply order.
	Resources []File
	// Bases names the shared bases the cluster also applies.
	Bases []string
	// Istioctl holds the IstioOperator files for `istioctl install -f`:
	// since Istio 1.24 no controller acts on an applied IstioOperator.
	Istioctl []File
}

// Plan is the whole mesh: shared bases and one entry per cluster, sorted
// by cluster name.
type Plan struct {
	Fleet    *fleet.Fleet
	Bases    []Base
	Clusters []Cluster
}

// Build plans every cluster of f.
func Build(f *fleet.Fleet) *Plan {
	p := &Plan{Fleet: f}
	used := map[string]bool{}
	for _, c := range f.Clusters {
		pc := planCluster(f, c)
		for _, b := range pc.Bases {
			used[b] = true
		}
		p.Clusters = append(p.Clusters, pc)
	}
	rev := f.Spec.Istio.Revision
	if used[BaseExposeIstiod] {
		p.Bases = append(p.Bases, Base{BaseExposeIstiod, []File{{"expose-istiod.yaml", exposeIstiod(rev)}}})
	}
	if used[BaseExposeServices] {
		p.Bases = append(p.Bases, Base{BaseExposeServices, []File{{"expose-services.yaml", []Object{crossNetworkGateway()}}}})
	}
	return p
}

func planCluster(f *fleet.Fleet, c *fleet.Cluster) Cluster {
	pc := Cluster{Cluster: c}
	add := func(name string, objs ...Object) {
		if len(objs) > 0 {
			pc.Resources = append(pc.Resources, File{name, objs})
		}
	}
	add("namespace.yaml", namespace(f, c))
	needsGateway := f.MultiNetwork() || f.ServesRemotes(c)
	if c.Role == fleet.Primary {
		add("cacerts.yaml", caCerts(f, c))
		pc.Istioctl = append(pc.Istioctl, File{"controlplane.yaml", []Object{primaryControlPlane(f, c)}})
		if f.ServesRemotes(c) {
			pc.Bases = append(pc.Bases, BaseExposeIstiod)
		}
		if f.MultiNetwork() {
			pc.Bases = append(pc.Bases, BaseExposeServices)
		}
		var secrets []Object
		for _, other := range f.Clusters {
			if other != c {
				secrets = append(secrets, remoteSecret(f, other))
			}
		}
		add("remote-secrets.yaml", secrets...)
	} else {
		pc.Istioctl = append(pc.Istioctl, File{"controlplane.yaml", []Object{remoteControlPlane(f, c)}})
	}
	if len(f.Clusters) > 1 {
		add("reader-token.yaml", readerToken())
	}
	if needsGateway {
		pc.Istioctl = append(pc.Istioctl, File{"eastwest-gateway.yaml", []Object{eastWestGateway(f, c)}})
	}
	return pc
}
