// Package mesh lays what every cluster of a fleet needs (generator/plan)
// out as Kubernetes objects grouped into files and apply stages, plus the
// Helm releases a GitOps tool runs and the istioctl inputs. The objects
// every installer shares (namespaces, CA, reader account, remote secrets,
// the exposures of istiod and services) are made here; control planes
// and gateways are left to the fleet's installer (generator/install). It
// is a pure function of the fleet: it knows nothing about directories,
// kustomize or how the files are written.
//
//	fleet → plan → installers → mesh (stages) → overlays
package mesh

import (
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/generator/install"
	"github.com/meshfleet/meshfleet/generator/install/helm"
	"github.com/meshfleet/meshfleet/generator/plan"
)

// Object is one Kubernetes object as nested maps, ready to be marshalled.
type Object = plan.Object

// File is one YAML file of objects.
type File = plan.File

// Chart is a Helm release of one of Istio's charts.
type Chart = plan.Chart

// Helm release names (see package helm).
const (
	ReleaseBase     = helm.ReleaseBase
	ReleaseIstiod   = helm.ReleaseIstiod
	ReleaseEastWest = helm.ReleaseEastWest
)

// Base is a group of files that several clusters share unchanged.
type Base struct {
	Name  string
	Files []File
}

// The shared bases.
const (
	BaseExposeServices = plan.BaseExposeServices
	BaseExposeIstiod   = plan.BaseExposeIstiod
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
	// Note says what this cluster's stage waits for beyond StageDoc.
	Note string
}

// Cluster is everything one cluster needs.
type Cluster struct {
	*fleet.Cluster
	// Needs is what the plan says the cluster needs.
	Needs *plan.Cluster
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
	// Shared are objects that several clusters' files hold, the same
	// map each time, such as a cluster's remote secret in every cluster
	// that reads it: written and checked once.
	Shared []Object
}

// Build plans every cluster of f and lays the plan out with the fleet's
// installer.
func Build(f *fleet.Fleet) *Plan {
	return Lay(plan.Build(f), install.For(f.Spec.Installer))
}

// Lay lays a plan out with an installer.
func Lay(pl *plan.Plan, in plan.Installer) *Plan {
	f := pl.Fleet
	p := &Plan{Fleet: f, Clusters: make([]Cluster, len(pl.Clusters))}
	secrets := sharedRemoteSecrets(f, pl)
	p.Shared = secrets.list
	// Clusters are laid out independently, one worker per CPU.
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(pl.Clusters)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(pl.Clusters); i = int(next.Add(1) - 1) {
				p.Clusters[i] = layCluster(f, &pl.Clusters[i], in, secrets)
			}
		})
	}
	wg.Wait()
	used := map[string]plan.Expose{}
	for i := range pl.Clusters {
		for _, e := range pl.Clusters[i].Exposes {
			used[baseName(e)] = e
		}
	}
	rev := f.Spec.Istio.Revision
	for _, name := range sortedKeys(used) {
		e := used[name]
		switch e.Base {
		case BaseExposeIstiod:
			var objs []Object
			if len(e.Revisions) == 0 {
				objs = exposeIstiod(rev, e.Namespace)
			} else {
				// Side by side: one Gateway, one VirtualService per
				// revision routing its istiod's SNI names.
				for i, r := range e.Revisions {
					o := exposeIstiod(r, e.Namespace)
					if i == 0 {
						objs = append(objs, o[0])
					}
					objs = append(objs, o[1])
				}
			}
			p.Bases = append(p.Bases, Base{name, []File{{Name: "expose-istiod.yaml", Objects: objs}}})
		case BaseExposeServices:
			p.Bases = append(p.Bases, Base{name, []File{{Name: "expose-services.yaml", Objects: []Object{crossNetworkGateway(e.Namespace)}}}})
		}
	}
	return p
}

// baseName is the directory of a shared base: its name, followed by its
// namespace when that is not istio-system.
func baseName(e plan.Expose) string {
	name := e.Base
	if len(e.Revisions) > 0 {
		// Side by side, clusters that run other revisions share
		// another base.
		name += "-" + strings.Join(e.Revisions, "_")
	}
	if e.Namespace == plan.IstioNamespace {
		return name
	}
	return name + "-" + e.Namespace
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
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
		st.Files = append(st.Files, File{Name: file, Objects: objs})
	}
}

// put adds what an installer made to a stage (and the istioctl inputs).
func (s stages) put(pc *Cluster, stage string, out plan.Output) {
	for _, f := range out.Manifests {
		s.add(stage, f.Name, f.Objects...)
	}
	if len(out.Charts) > 0 {
		st := s.get(stage)
		st.Charts = append(st.Charts, out.Charts...)
	}
	pc.Istioctl = append(pc.Istioctl, out.Istioctl...)
}

// remoteSecrets holds one remote secret per cluster read and namespace it
// is read into, by those two names. Every cluster that reads cluster X
// holds the same object: the secrets are most of a large mesh's output
// (n×(n-1) in a multi-primary mesh of n clusters), while the distinct
// ones grow with n. Planned objects are never changed in place (an
// extension's patch replaces the object it patches), so sharing them is
// safe, and layout writes and checks a shared object once.
type remoteSecrets struct {
	by   map[[2]string]Object
	list []Object // in the order first read
}

func sharedRemoteSecrets(f *fleet.Fleet, pl *plan.Plan) remoteSecrets {
	rs := remoteSecrets{by: map[[2]string]Object{}}
	for i := range pl.Clusters {
		c := &pl.Clusters[i]
		for _, other := range c.Reads {
			if k := [2]string{other.Name, c.Namespace()}; rs.by[k] == nil {
				rs.by[k] = remoteSecret(f, other, k[1])
				rs.list = append(rs.list, rs.by[k])
			}
		}
	}
	return rs
}

func layCluster(f *fleet.Fleet, c *plan.Cluster, in plan.Installer, shared remoteSecrets) Cluster {
	pc := Cluster{Cluster: c.Cluster, Needs: c}
	s := stages{}
	var namespaces []Object
	for _, ns := range c.Namespaces {
		namespaces = append(namespaces, namespace(ns))
	}
	s.add(StageNamespace, "namespace.yaml", namespaces...)
	if c.CA {
		cas := []Object{caCerts(f, c, c.Namespace())}
		if c.LocalCA != "" {
			cas = append(cas, caCerts(f, c, c.LocalCA))
		}
		s.add(StageNamespace, "cacerts.yaml", cas...)
	}
	if c.Reader {
		s.add(StageNamespace, "reader.yaml", reader(f, c, in)...)
	}
	if c.ConfigAccount != "" {
		s.add(StageNamespace, "config-account.yaml", configAccount(f, c, in)...)
	}
	for i := range c.ControlPlanes {
		s.put(&pc, StageControlPlane, in.ControlPlane(&c.ControlPlanes[i]))
	}
	for i := range c.Gateways {
		s.put(&pc, StageGateways, in.Gateway(&c.Gateways[i]))
	}
	if in := c.IstiodIngress; in != nil {
		s.add(StageGateways, "expose-istiod.yaml", exposeExternalIstiod(f, in)...)
	}
	if in := c.HostIstiod; in != nil {
		s.add(StageGateways, "expose-istiod.yaml", exposeHostIstiod(in)...)
	}
	for _, e := range c.Exposes {
		s.get(StageGateways).Bases = append(s.get(StageGateways).Bases, baseName(e))
	}
	if k := c.ConfigKubeconfig; k != nil {
		// Before the control plane: without it the external istiod
		// would take its own cluster for the config cluster.
		s.add(StageNamespace, "config-kubeconfig.yaml", configKubeconfig(f, k))
		s.get(StageNamespace).Note = "On this external control plane, ready once cacerts (both) and istio-kubeconfig hold their keys: the latter\n" +
			"needs config cluster " + k.Cluster.Name + "'s stage namespace (its " + k.ServiceAccount + " token" + fillHow(f) + ")."
	}
	var secrets []Object
	for _, other := range c.Reads {
		secrets = append(secrets, shared.by[[2]string{other.Name, c.Namespace()}])
	}
	s.add(StageRemoteSecrets, "remote-secrets.yaml", secrets...)
	for _, name := range Stages {
		if st := s[name]; st != nil {
			pc.Stages = append(pc.Stages, *st)
		}
	}
	return pc
}

// fillHow says how a placeholder gets filled.
func fillHow(f *fleet.Fleet) string {
	if f.Spec.Secrets.Provider == fleet.ProviderExternalSecrets {
		return ", which it pushes to the store"
	}
	return "; meshfleet secrets prints the command"
}
