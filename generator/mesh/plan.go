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

// The apply stages of a cluster, in the order Istio needs them. Each
// stage waits for the one before it in the same cluster. Across clusters
// the order is: a cluster's reader account and token (stage namespace)
// need nothing from any other cluster; a primary attaches another cluster
// once its remote-secrets stage holds that cluster's secret, which needs
// only that cluster's namespace stage; and what needs the attach (a
// remote's injection webhook, hence its east-west gateway and, with Sail,
// its Istio) comes after the remote's own token and retries until the
// attach happens. So nothing a cluster needs from another is gated behind
// something that needs it back.
const (
	// StageNamespace: istio-system with its network label, the CA
	// (cacerts, which istiod reads once, when it starts: the stage is
	// ready only once cacerts holds its keys) and, in every cluster
	// another cluster reads, the reader service account, its token and,
	// with External Secrets, the PushSecret that publishes them. Needs
	// nothing from other clusters.
	StageNamespace = "namespace"
	// StageControlPlane: base (CRDs) and istiod, or a remote's injection
	// webhook and istiod Service pointing at its primary. A Sail remote's
	// Istio is ready only once the primary attached it.
	StageControlPlane = "control-plane"
	// StageGateways: the east-west gateway, expose-istiod and
	// expose-services. The gateway's pods need an injection webhook: on a
	// remote the primary's, which works only once the primary holds the
	// remote's secret, so on a remote this stage retries until then.
	StageGateways = "gateways"
	// StageRemoteSecrets: the secrets a primary reads other clusters with
	// (placeholders, or ExternalSecrets that read the tokens the other
	// clusters pushed in their namespace stage).
	StageRemoteSecrets = "remote-secrets"
	// StageExtensions: objects added by the fleet's Jsonnet extensions.
	StageExtensions = "extensions"
)

// StageDoc says, per stage, what it holds and what it waits for across
// clusters; it heads the stage's kustomization.
var StageDoc = map[string]string{
	StageNamespace: "Stage namespace: istio-system, the CA and the reader account other clusters read this one with.\n" +
		"Needs nothing from other clusters. On a primary, ready once cacerts holds its keys.",
	StageControlPlane: "Stage control-plane, after namespace: base and istiod, or a remote's webhook and istiod Service.\n" +
		"A Sail remote's Istio is ready only once its primary holds this cluster's secret.",
	StageGateways: "Stage gateways, after control-plane: east-west gateway, expose-istiod, expose-services.\n" +
		"On a remote the gateway's pods need the primary's attach (it holds this cluster's secret,\n" +
		"read with the token of stage namespace); until then this stage fails and is retried.",
	StageRemoteSecrets: "Stage remote-secrets: the secrets this primary reads other clusters with; with External\n" +
		"Secrets they fill from the tokens the other clusters pushed in their stage namespace.\n" +
		"Flux applies it after gateways; Argo CD, syncing all clusters wave by wave, before any gateways.",
	StageExtensions: "Stage extensions, last: objects added by the fleet's Jsonnet extensions.",
}

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
	if f.ReadByOthers(c) {
		s.add(StageNamespace, "reader.yaml", reader(f, c)...)
	}
	switch f.Spec.Installer {
	case fleet.InstallerHelm:
		cp := s.get(StageControlPlane)
		cp.Charts = append(cp.Charts, baseChart(f, c), istiodChart(f, c))
	case fleet.InstallerSail:
		istio := sailIstio(f, c)
		objs := []Object{istio}
		if f.Spec.Istio.Revision != "" {
			objs = append(objs, sailDefaultTag(istio))
		}
		s.add(StageControlPlane, "istio.yaml", objs...)
	default:
		pc.Istioctl = append(pc.Istioctl, File{"controlplane.yaml", []Object{istioOperatorControlPlane(f, c)}})
	}
	if f.NeedsEastWestGateway(c) {
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
	for _, name := range Stages {
		if st := s[name]; st != nil {
			pc.Stages = append(pc.Stages, *st)
		}
	}
	return pc
}
