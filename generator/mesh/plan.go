// Package mesh decides what every cluster of a validated fleet needs to
// join the mesh, as Kubernetes objects grouped into files and apply
// stages, plus the Helm releases a GitOps tool runs. It is a pure function
// of the fleet: it knows nothing about directories, kustomize or how the
// files are written.
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

// The apply stages of a cluster, in the order Istio needs them.
const (
	// StageNamespace: istio-system with its network label and the CA,
	// which istiod reads when it starts.
	StageNamespace = "namespace"
	// StageControlPlane: base (CRDs) and istiod.
	StageControlPlane = "control-plane"
	// StageGateways: the east-west gateway, expose-istiod and
	// expose-services; the gateway's pods need istiod's injection webhook.
	StageGateways = "gateways"
	// StageRemoteSecrets: the secrets istiod reads other clusters with.
	StageRemoteSecrets = "remote-secrets"
	// StageExtensions: objects added by the fleet's Jsonnet extensions.
	StageExtensions = "extensions"
)

// Stages lists the stages in apply order.
var Stages = []string{StageNamespace, StageControlPlane, StageGateways, StageRemoteSecrets, StageExtensions}

// Stage is what a cluster applies at one step.
type Stage struct {
	Name  string
	Files []File
	// Bases names the shared bases the stage also applies.
	Bases []string
	// Charts are Helm releases a GitOps tool runs at this stage.
	Charts []Chart
}

// Chart is a Helm release of one of Istio's charts.
type Chart struct {
	Release string // also the name of the release's objects
	Chart   string // base, istiod or gateway
	Version string
	Repo    string
	Values  map[string]any
}

// Cluster is everything one cluster needs.
type Cluster struct {
	*fleet.Cluster
	// Stages holds the cluster's non-empty stages, in apply order.
	Stages []Stage
	// Istioctl holds the IstioOperator files for `istioctl install -f`:
	// since Istio 1.24 no controller acts on an applied IstioOperator.
	Istioctl []File
}

// Stage returns the cluster's stage of that name, or nil.
func (c *Cluster) Stage(name string) *Stage {
	for i := range c.Stages {
		if c.Stages[i].Name == name {
			return &c.Stages[i]
		}
	}
	return nil
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
		for _, s := range pc.Stages {
			for _, b := range s.Bases {
				used[b] = true
			}
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

// stages collects a cluster's stages as they are filled in.
type stages map[string]*Stage

func (s stages) get(name string) *Stage {
	if s[name] == nil {
		s[name] = &Stage{Name: name}
	}
	return s[name]
}

func (s stages) add(stage, file string, objs ...Object) {
	if len(objs) > 0 {
		st := s.get(stage)
		st.Files = append(st.Files, File{file, objs})
	}
}

func planCluster(f *fleet.Fleet, c *fleet.Cluster) Cluster {
	pc := Cluster{Cluster: c}
	s := stages{}
	s.add(StageNamespace, "namespace.yaml", namespace(c))
	primary := c.Role == fleet.Primary
	if primary {
		s.add(StageNamespace, "cacerts.yaml", caCerts(f, c))
	}
	switch f.Spec.Installer {
	case fleet.InstallerHelm:
		cp := s.get(StageControlPlane)
		cp.Charts = append(cp.Charts, baseChart(f, c), istiodChart(f, c))
	case fleet.InstallerSail:
		s.add(StageControlPlane, "istio.yaml", sailIstio(f, c))
	default:
		pc.Istioctl = append(pc.Istioctl, File{"controlplane.yaml", []Object{istioOperatorControlPlane(f, c)}})
	}
	if f.MultiNetwork() || f.ServesRemotes(c) {
		switch f.Spec.Installer {
		case fleet.InstallerHelm:
			gw := s.get(StageGateways)
			gw.Charts = append(gw.Charts, eastWestChart(f, c))
		case fleet.InstallerSail:
			s.add(StageGateways, "eastwest-gateway.yaml", eastWestGatewayManifests(f, c)...)
		default:
			pc.Istioctl = append(pc.Istioctl, File{"eastwest-gateway.yaml", []Object{eastWestGatewayOperator(f, c)}})
		}
	}
	if f.ServesRemotes(c) {
		s.get(StageGateways).Bases = append(s.get(StageGateways).Bases, BaseExposeIstiod)
	}
	if primary && f.MultiNetwork() {
		s.get(StageGateways).Bases = append(s.get(StageGateways).Bases, BaseExposeServices)
	}
	if primary {
		var secrets []Object
		for _, other := range f.Clusters {
			if other != c {
				secrets = append(secrets, remoteSecret(f, other))
			}
		}
		s.add(StageRemoteSecrets, "remote-secrets.yaml", secrets...)
	}
	if len(f.Clusters) > 1 {
		s.add(StageRemoteSecrets, "reader-token.yaml", readerToken())
	}
	for _, name := range Stages {
		if st := s[name]; st != nil {
			pc.Stages = append(pc.Stages, *st)
		}
	}
	return pc
}
