// Package fleet loads a MeshFleet file (YAML, JSON, CUE or Jsonnet),
// validates it against the embedded CUE schema and the cross-cluster rules
// of an Istio multi-cluster mesh, and returns the typed model the rest of
// meshfleet works from. Every problem is reported with the file, line,
// column and field path it concerns.
package fleet

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Role is what a cluster does in the mesh.
type Role string

// The cluster roles.
const (
	Primary Role = "primary" // runs istiod
	Remote  Role = "remote"  // served by a primary's istiod or an external control plane's
	// ExternalControlPlane runs istiod, in namespace external-istiod, for
	// clusters it is not part of: a config cluster and further remotes.
	ExternalControlPlane Role = "external-controlplane"
)

// ExternalIstiodNamespace is where an external control plane runs istiod,
// and where its config cluster and remotes install the remote profile.
const ExternalIstiodNamespace = "external-istiod"

// Control-plane and network layouts of a mesh.
const (
	MultiPrimary  = "multi-primary"
	PrimaryRemote = "primary-remote"
	// ExternalControlPlaneLayout: istiod runs outside the mesh's clusters.
	ExternalControlPlaneLayout = "external-control-plane"
	SingleNetwork              = "single-network"
	MultiNetwork               = "multi-network"
)

// Secret providers.
const (
	ProviderPlaceholder     = "placeholder"
	ProviderExternalSecrets = "external-secrets"
)

// Fleet is a validated MeshFleet.
type Fleet struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       Spec     `json:"spec"`

	// Clusters are the clusters of Spec.Clusters sorted by name, with
	// their names filled in.
	Clusters []*Cluster `json:"-"`
	// Dir is the directory of the fleet file: extensions are relative to it.
	Dir string `json:"-"`

	remotes map[string][]*Cluster // by controlPlane, sorted by name
	// fields are where the fields of [PositionedFields] are in the fleet
	// file, for [Fleet.Pos].
	fields map[string]FieldPos
}

// Metadata names the fleet.
type Metadata struct {
	Name string `json:"name"`
}

// Spec is the mesh and its clusters.
type Spec struct {
	Mesh       Mesh                `json:"mesh"`
	Istio      Istio               `json:"istio"`
	Installer  string              `json:"installer"`
	Delivery   Delivery            `json:"delivery"`
	Extensions []Extension         `json:"extensions"`
	Topology   *Topology           `json:"topology,omitempty"`
	Secrets    Secrets             `json:"secrets"`
	CA         *CA                 `json:"ca,omitempty"`
	Clusters   map[string]*Cluster `json:"clusters"`
}

// Installers of the control plane.
const (
	InstallerIstioctl = "istioctl"
	InstallerHelm     = "helm"
	InstallerSail     = "sail"
)

// Delivery says how Flux and Argo CD find the rendered output; either,
// both or neither may be set.
type Delivery struct {
	Flux   *Flux   `json:"flux,omitempty"`
	ArgoCD *ArgoCD `json:"argocd,omitempty"`
}

// Flux locates the output directory in the source Flux reads.
type Flux struct {
	Path      string    `json:"path"`
	Interval  string    `json:"interval"`
	SourceRef SourceRef `json:"sourceRef"`
}

// SourceRef names a Flux source.
type SourceRef struct {
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

// ArgoCD locates the output directory in the repository Argo CD reads.
type ArgoCD struct {
	RepoURL        string `json:"repoURL"`
	Path           string `json:"path"`
	TargetRevision string `json:"targetRevision"`
	Project        string `json:"project"`
	Namespace      string `json:"namespace"`
}

// Extension is a Jsonnet file that adds or patches objects per cluster.
type Extension struct {
	Jsonnet string `json:"jsonnet"`
}

// Mesh holds the identifiers every cluster must agree on.
type Mesh struct {
	ID          string `json:"id"`
	TrustDomain string `json:"trustDomain"`
}

// Istio is the release and revision installed in every cluster, or the
// revisions that run side by side, their tags and the settings of every
// control plane.
type Istio struct {
	Version  string `json:"version"`
	Hub      string `json:"hub"`
	Revision string `json:"revision"`
	Charts   string `json:"charts"`
	// Revisions: revision name -> release, several control planes side
	// by side; replaces Version and Revision when present.
	Revisions map[string]RevisionSpec `json:"revisions,omitempty"`
	// Tags: revision tag -> revision.
	Tags map[string]string `json:"tags,omitempty"`
	// GatewayRevision is the revision or tag the gateways run with.
	GatewayRevision string         `json:"gatewayRevision,omitempty"`
	Values          map[string]any `json:"values,omitempty"`
	MeshConfig      map[string]any `json:"meshConfig,omitempty"`
}

// RevisionSpec is one revision's release.
type RevisionSpec struct {
	Version string `json:"version"`
}

// ClusterIstio is a cluster's own control plane settings, merged over the
// fleet's.
type ClusterIstio struct {
	Revisions       []string          `json:"revisions,omitempty"`
	Tags            map[string]string `json:"tags,omitempty"`
	GatewayRevision string            `json:"gatewayRevision,omitempty"`
	Values          map[string]any    `json:"values,omitempty"`
	MeshConfig      map[string]any    `json:"meshConfig,omitempty"`
}

// MultiRevision reports whether the fleet runs control planes side by
// side (spec.istio.revisions).
func (f *Fleet) MultiRevision() bool { return len(f.Spec.Istio.Revisions) > 0 }

// RevisionsOf returns the revisions that run in cluster c, sorted: those
// it lists, or all of the fleet's. For a remote, the list defaults to its
// control plane's.
func (f *Fleet) RevisionsOf(c *Cluster) []string {
	if !f.MultiRevision() {
		return nil
	}
	if c.Istio != nil && c.Istio.Revisions != nil {
		revs := slices.Clone(c.Istio.Revisions)
		slices.Sort(revs)
		return slices.Compact(revs)
	}
	if c.Role == Remote {
		if cp := f.Cluster(c.ControlPlane); cp != nil && cp.Role == Primary && cp.Istio != nil && cp.Istio.Revisions != nil {
			return f.RevisionsOf(cp)
		}
	}
	revs := make([]string, 0, len(f.Spec.Istio.Revisions))
	for r := range f.Spec.Istio.Revisions {
		revs = append(revs, r)
	}
	slices.Sort(revs)
	return revs
}

// OldestVersion is the oldest Istio release the fleet runs: its version,
// or the oldest of its revisions'.
func (f *Fleet) OldestVersion() string {
	oldest := f.Spec.Istio.Version
	for _, r := range sortedKeys(f.Spec.Istio.Revisions) {
		v := f.Spec.Istio.Revisions[r].Version
		if oldest == "" || CompareVersions(v, oldest) < 0 {
			oldest = v
		}
	}
	return oldest
}

// CompareVersions compares two Istio releases like 1.31.1 (or
// 1.31.0-beta.1) by their numbers, then as text.
func CompareVersions(a, b string) int {
	num := func(v string) []int {
		v, _, _ = strings.Cut(v, "-")
		var out []int
		for _, p := range strings.Split(v, ".") {
			n, _ := strconv.Atoi(p)
			out = append(out, n)
		}
		return out
	}
	if c := slices.Compare(num(a), num(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// TagsOf returns cluster c's revision tags: the fleet's, overridden by
// the cluster's own.
func (f *Fleet) TagsOf(c *Cluster) map[string]string {
	tags := map[string]string{}
	for k, v := range f.Spec.Istio.Tags {
		tags[k] = v
	}
	if c.Istio != nil {
		for k, v := range c.Istio.Tags {
			tags[k] = v
		}
	}
	return tags
}

// GatewayRevisionOf returns the revision or tag cluster c's gateways run
// with ("" when not given).
func (f *Fleet) GatewayRevisionOf(c *Cluster) string {
	if c.Istio != nil && c.Istio.GatewayRevision != "" {
		return c.Istio.GatewayRevision
	}
	return f.Spec.Istio.GatewayRevision
}

// Topology is the layout a fleet declares for itself.
type Topology struct {
	ControlPlane string `json:"controlPlane,omitempty"`
	Network      string `json:"network,omitempty"`
}

// Secrets says where remote secrets and the CA bundle come from.
type Secrets struct {
	Provider        string `json:"provider"`
	Store           Store  `json:"store"`
	RefreshInterval string `json:"refreshInterval"`
	KeyPrefix       string `json:"keyPrefix"`
}

// CA says where the primaries' intermediate CAs come from when not from
// Secrets.
type CA struct {
	CertManager *CertManager `json:"certManager,omitempty"`
}

// CertManager issues each primary's intermediate CA into Secret cacerts.
type CertManager struct {
	Issuer      IssuerRef `json:"issuer"`
	Duration    string    `json:"duration"`
	RenewBefore string    `json:"renewBefore"`
}

// IssuerRef names a cert-manager issuer.
type IssuerRef struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"`
	Group string `json:"group"`
}

// CertManager returns the fleet's cert-manager settings, or nil when
// cacerts does not come from cert-manager.
func (f *Fleet) CertManager() *CertManager {
	if f.Spec.CA == nil {
		return nil
	}
	return f.Spec.CA.CertManager
}

// Store is an External Secrets Operator store.
type Store struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
}

// Cluster is one Kubernetes cluster of the mesh.
type Cluster struct {
	Name            string         `json:"-"`
	Role            Role           `json:"role"`
	Network         string         `json:"network"`
	APIServer       string         `json:"apiServer"`
	ControlPlane    string         `json:"controlPlane"`
	ConfigCluster   bool           `json:"configCluster,omitempty"`
	KubeContext     string         `json:"kubeContext,omitempty"`
	Istio           *ClusterIstio  `json:"istio,omitempty"`
	EastWestGateway *Gateway       `json:"eastWestGateway,omitempty"`
	IstiodGateway   *IstiodGateway `json:"istiodGateway,omitempty"`
}

// IstiodGateway is an external control plane's ingress gateway.
type IstiodGateway struct {
	Address     string          `json:"address"`
	Service     *GatewayService `json:"service,omitempty"`
	Certificate *Certificate    `json:"certificate,omitempty"`
}

// Certificate is the TLS certificate a host-named gateway presents.
type Certificate struct {
	SecretName string     `json:"secretName"`
	Issuer     *IssuerRef `json:"issuer,omitempty"`
}

// Gateway is a cluster's east-west gateway.
type Gateway struct {
	Address             string          `json:"address"`
	Service             *GatewayService `json:"service,omitempty"`
	Certificate         *Certificate    `json:"certificate,omitempty"`
	Replicas            int             `json:"replicas,omitempty"`
	Autoscaling         *Autoscaling    `json:"autoscaling,omitempty"`
	PodDisruptionBudget *PDB            `json:"podDisruptionBudget,omitempty"`
	Resources           map[string]any  `json:"resources,omitempty"`
}

// Autoscaling is a gateway's HorizontalPodAutoscaler.
type Autoscaling struct {
	MinReplicas                    int `json:"minReplicas"`
	MaxReplicas                    int `json:"maxReplicas"`
	TargetCPUUtilizationPercentage int `json:"targetCPUUtilizationPercentage"`
}

// PDB is a gateway's PodDisruptionBudget.
type PDB struct {
	MinAvailable int `json:"minAvailable"`
}

// GatewayService is what the gateway's Service needs from the fleet.
type GatewayService struct {
	Type        string            `json:"type"`
	Annotations map[string]string `json:"annotations,omitempty"`
	BindAddress string            `json:"bindAddress"`
}

// How a gateway Service is bound to its address.
const (
	BindLoadBalancerIP = "loadBalancerIP"
	BindAnnotations    = "annotations"
)

// index fills in Clusters from Spec.Clusters.
func (f *Fleet) index() {
	f.Clusters = f.Clusters[:0]
	for name, c := range f.Spec.Clusters {
		c.Name = name
		f.Clusters = append(f.Clusters, c)
	}
	sort.Slice(f.Clusters, func(i, j int) bool { return f.Clusters[i].Name < f.Clusters[j].Name })
	f.remotes = nil
	f.indexRemotes()
}

// indexRemotes finds every primary's remotes once: asking each cluster
// of a large fleet for them would take n² steps.
func (f *Fleet) indexRemotes() {
	if f.remotes != nil {
		return
	}
	f.remotes = map[string][]*Cluster{}
	for _, c := range f.Clusters {
		if c.Role == Remote {
			f.remotes[c.ControlPlane] = append(f.remotes[c.ControlPlane], c)
		}
	}
}

// PositionedFields are the fields whose place in the fleet file commands
// report on after loading (the plugin modes' installer check, the
// delivery paths that render compares with its output directory). Their
// positions are found while the file is parsed and travel with the
// [Fleet], also from an [Isolator].
var PositionedFields = [][]string{
	{"spec", "installer"},
	{"spec", "delivery", "flux", "path"},
	{"spec", "delivery", "argocd", "path"},
}

// FieldPos is where a field of [PositionedFields] is in the fleet file:
// the start of its value, or, for a field the file leaves out (one that
// takes its default), the key of the closest field it holds.
type FieldPos struct {
	Pos     Position `json:"pos"`
	Written bool     `json:"written,omitempty"` // the file holds the field
}

// Fields returns the positions of [PositionedFields], by dotted path.
func (f *Fleet) Fields() map[string]FieldPos { return f.fields }

// SetFields sets what [Fleet.Fields] returns, for an [Isolator] that
// decodes a Fleet.
func (f *Fleet) SetFields(fields map[string]FieldPos) { f.fields = fields }

// Pos returns where the field at path, one of [PositionedFields], is in
// the fleet file (see [FieldPos]), or the zero Position.
func (f *Fleet) Pos(path ...string) Position { return f.fields[joinPath(path)].Pos }

// Written reports whether the fleet file writes the field at path, one of
// [PositionedFields], rather than leaving it to its default.
func (f *Fleet) Written(path ...string) bool { return f.fields[joinPath(path)].Written }

// Errorf returns an error about the field at path, at its position in the
// fleet file, for the checks that only a use of the fleet makes (the
// plugin modes): it reads like the fleet's own validation errors.
func (f *Fleet) Errorf(path []string, format string, args ...any) error {
	return Errors{{Pos: f.Pos(path...), Path: joinPath(path), Msg: fmt.Sprintf(format, args...), labels: path}}
}

// Cluster returns the cluster with the given name, or nil.
func (f *Fleet) Cluster(name string) *Cluster { return f.Spec.Clusters[name] }

// RemotesOf returns the remotes served by control plane p (a primary or
// an external control plane), sorted by name.
func (f *Fleet) RemotesOf(p *Cluster) []*Cluster {
	f.indexRemotes()
	return slices.Clone(f.remotes[p.Name])
}

// ServesRemotes reports whether c is a primary with at least one remote.
// An external control plane serves its remotes through its istiod
// gateway, not an east-west gateway.
func (f *Fleet) ServesRemotes(c *Cluster) bool {
	f.indexRemotes()
	return c.Role == Primary && len(f.remotes[c.Name]) > 0
}

// ReadByOthers reports whether another cluster's istiod reads c with the
// reader account: every primary reads every other cluster of the mesh,
// and an external control plane reads its remotes but the config cluster
// (which it reads with its own istiod account).
func (f *Fleet) ReadByOthers(c *Cluster) bool {
	if cp := f.ExternalControlPlaneOf(c); cp != nil && !c.ConfigCluster {
		return true
	}
	return slices.ContainsFunc(f.Clusters, func(p *Cluster) bool {
		return p.Role == Primary && p != c
	})
}

// ExternalControlPlaneOf returns the external control plane that serves
// remote c, or nil.
func (f *Fleet) ExternalControlPlaneOf(c *Cluster) *Cluster {
	if c.Role != Remote {
		return nil
	}
	if cp := f.Cluster(c.ControlPlane); cp != nil && cp.Role == ExternalControlPlane {
		return cp
	}
	return nil
}

// ConfigClusterOf returns the config cluster of external control plane
// x, or nil.
func (f *Fleet) ConfigClusterOf(x *Cluster) *Cluster {
	for _, r := range f.RemotesOf(x) {
		if r.ConfigCluster {
			return r
		}
	}
	return nil
}

// External reports whether the fleet has an external control plane.
func (f *Fleet) External() bool {
	return slices.ContainsFunc(f.Clusters, func(c *Cluster) bool { return c.Role == ExternalControlPlane })
}

// NeedsEastWestGateway reports whether c runs an east-west gateway: a
// primary serving remotes exposes istiod through it, and in a
// multi-network mesh every primary and every remote on another network
// than its primary's has one. A remote on its primary's network shares
// the primary's gateway. Every remote of an external control plane in a
// multi-network mesh has one; the external cluster never has one.
func (f *Fleet) NeedsEastWestGateway(c *Cluster) bool {
	switch {
	case c.Role == ExternalControlPlane:
		return false
	case f.ServesRemotes(c):
		return true
	case !f.MultiNetwork():
		return false
	case f.ExternalControlPlaneOf(c) != nil:
		return true
	case c.Role == Remote:
		cp := f.Cluster(c.ControlPlane)
		return cp == nil || cp.Network != c.Network
	}
	return true
}

// ControlPlane is the control-plane layout the clusters imply:
// external-control-plane when a cluster is one, primary-remote when any
// cluster is a remote, multi-primary otherwise.
func (f *Fleet) ControlPlane() string {
	if f.External() {
		return ExternalControlPlaneLayout
	}
	for _, c := range f.Clusters {
		if c.Role == Remote {
			return PrimaryRemote
		}
	}
	return MultiPrimary
}

// Network is the network layout the clusters imply: multi-network when
// the clusters that run mesh workloads (all but external control planes)
// name more than one network.
func (f *Fleet) Network() string {
	first := ""
	for _, c := range f.Clusters {
		if c.Role == ExternalControlPlane {
			continue
		}
		if first == "" {
			first = c.Network
		} else if c.Network != first {
			return MultiNetwork
		}
	}
	return SingleNetwork
}

// MultiNetwork reports whether the clusters span more than one network.
func (f *Fleet) MultiNetwork() bool { return f.Network() == MultiNetwork }
