// Package plan says what every cluster of a validated fleet needs, without
// saying how any installer expresses it: the namespaces, the control
// planes (role, revision, namespace, values), the east-west gateways
// (ports, network, how their Service is bound), the CA, the reader
// account, the remote secrets and the exposures of istiod and services.
//
// The data flows one way:
//
//	fleet (validated model)
//	  → plan (this package: what each cluster needs)
//	  → installers (generator/install/istioctl, helm, sail: how each one says it)
//	  → mesh (stages of files and charts, in apply order)
//	  → overlays (kustomize trees)
//
// An installer is a small package that implements [Installer]; it reads
// a plan and never the fleet.
package plan

import (
	"net"
	"net/netip"
	"slices"

	"github.com/meshfleet/meshfleet/generator/fleet"
)

// Object is one Kubernetes object as nested maps, ready to be marshalled.
type Object = map[string]any

// File is one YAML file of objects.
type File struct {
	Name    string
	Objects []Object
}

// Chart is a Helm release of one of Istio's charts.
type Chart struct {
	Release   string // also the name of the release's objects
	Chart     string // base, istiod or gateway
	Version   string
	Repo      string
	Namespace string // where the release is installed
	Values    map[string]any
}

// Output is what an installer makes of one control plane or gateway:
// manifests the GitOps tool applies, Helm releases it runs, or inputs for
// `istioctl install -f`.
type Output struct {
	Manifests []File
	Charts    []Chart
	Istioctl  []File
}

// Installer expresses control planes and gateways in one installer's
// terms. It must not change what it is given.
type Installer interface {
	ControlPlane(cp *ControlPlane) Output
	Gateway(gw *Gateway) Output
	// ChartRevision is the revision the charts the installer runs name
	// a control plane's RBAC and webhooks after ("" for none), which
	// objects outside the installer's (the reader and config accounts'
	// bindings) must name too.
	ChartRevision(cp *ControlPlane) string
}

// IstioNamespace is the namespace of a primary's or remote's control
// plane, its secrets and its gateways.
const IstioNamespace = "istio-system"

// Role is what a control plane does.
type Role string

// The control plane roles.
const (
	// RolePrimary: istiod, serving this cluster and maybe remotes.
	RolePrimary Role = "primary"
	// RoleRemote: the remote profile, an injection webhook and an istiod
	// Service pointing at the istiod that serves this cluster; on the
	// config cluster of an external control plane also the mesh
	// configuration (Values: global.configCluster).
	RoleRemote Role = "remote"
	// RoleExternal: istiod of an external control plane, serving the
	// config cluster (its CLUSTER_ID) and further remotes from outside.
	RoleExternal Role = "external"
	// RoleLocal: the external cluster's own istiod, outside the mesh: it
	// injects only the ingress gateway that exposes the external istiod.
	RoleLocal Role = "local"
)

// Release is the Istio release a component runs.
type Release struct {
	Version string // image tag and chart version
	Hub     string // image registry
	Charts  string // Helm repository of the charts
}

// ControlPlane is one Istio control plane installation in a cluster.
type ControlPlane struct {
	Release
	// Name names the installation (the Sail Istio resource): the
	// revision, or default.
	Name      string
	Role      Role
	Revision  string // "" for none
	Namespace string // where istiod (or the remote's webhook Service) lives
	// Default: the revision serves istio-injection=enabled and the
	// default validation webhook (only meaningful with a revision).
	Default bool
	// Profile is Istio's install profile ("" for the default one).
	Profile string
	// Values is the Istio values tree, without meshConfig.
	Values map[string]any
	// MeshConfig is the mesh configuration, nil where istiod does not run.
	MeshConfig map[string]any
	// Suffix names this control plane's files and releases beside the
	// others of its cluster: "" for a fleet's one control plane,
	// "-<revision>" where several run side by side.
	Suffix string
	// Base: side by side, this control plane installs what one cluster
	// needs once (the base chart: CRDs, the default validator): the
	// newest release's. A cluster's one control plane (Suffix "") always
	// does.
	Base bool
	// DefaultRevision is the revision tag default points at in this
	// cluster, side by side ("" for none): the base chart's
	// defaultRevision.
	DefaultRevision string
	// Tags are the revision tags of this cluster that point at this
	// control plane, sorted; default serves istio-injection=enabled.
	Tags []string
	// Injection is where this control plane's injection webhook sends
	// requests: the istiod Service's path, or a URL (remotes of a
	// host-named primary). Revision tags send theirs there too.
	InjectionPath string
	InjectionURL  string
	// Validates: this control plane's istiod patches the caBundle of the
	// cluster's validating webhooks labelled with its revision. Istio's
	// validation controller acts only on the cluster istiod reads its
	// configuration from (pilot/pkg/bootstrap/validation.go); for the
	// remotes it serves istiod patches the injection webhooks alone
	// (serviceregistry/kube/controller/multicluster.go). So a primary,
	// or an external control plane's config cluster; a remote that is no
	// config cluster gets no default validator, which would stay without
	// a caBundle (and whose configuration no istiod reads).
	Validates bool
}

// Port is a port a gateway listens on.
type Port struct {
	Name string
	Port int
}

// Expose names a shared base a cluster applies with its gateways, and
// the namespace its objects go to.
type Expose struct {
	Base      string
	Namespace string
	// Revisions: side by side, the revisions whose istiod expose-istiod
	// routes to (by SNI).
	Revisions []string
}

// IstiodIngress is what an external cluster exposes its istiod with:
// Gateway, VirtualService and, when the gateway terminates TLS for a host
// name, a DestinationRule and the certificate.
type IstiodIngress struct {
	Address   string
	Host      bool   // Address is a DNS name: the gateway terminates TLS
	Namespace string // of the Gateway, VirtualService and DestinationRule
	// Selector selects the ingress gateway's pods.
	Selector map[string]any
	// Istiod is the istiod Service's host.
	Istiod string
	// Certificate is the certificate's Secret, in GatewayNamespace, and
	// the issuer that issues it (nil: a placeholder).
	Certificate      string
	Issuer           *fleet.IssuerRef
	GatewayNamespace string
	// MeshRoot: the certificate must chain to the mesh root (which istiod
	// writes into the webhooks as their CA bundle); otherwise to a CA the
	// system roots trust.
	MeshRoot bool
}

// ConfigKubeconfig is the Secret an external istiod reads its config
// cluster with (istioctl create-remote-secret --type=config).
type ConfigKubeconfig struct {
	Cluster        *fleet.Cluster // the config cluster
	Namespace      string         // of the Secret, and of istiod's account in the config cluster
	ServiceAccount string         // istiod's account in the config cluster
}

// Service is how a gateway's Service is exposed.
type Service struct {
	Type           string
	LoadBalancerIP string // "" for none
	Annotations    map[string]any
}

// Gateway is a gateway Deployment and Service.
type Gateway struct {
	Release
	Name      string
	Namespace string
	Revision  string
	Network   string
	// Labels select the gateway's pods.
	Labels  map[string]any
	Ports   []Port
	Service Service
	// Size: a fixed number of pods (0: the installer's default), or an
	// autoscaler; a disruption budget (MinAvailable 0: none); the
	// proxy's resources.
	Replicas     int
	Autoscaling  *fleet.Autoscaling
	MinAvailable int
	Resources    map[string]any
}

// Namespace is a namespace a cluster needs, with its labels and
// annotations.
type Namespace struct {
	Name        string
	Labels      map[string]any
	Annotations map[string]any
}

// Cluster is what one cluster needs.
type Cluster struct {
	*fleet.Cluster
	Namespaces    []Namespace
	ControlPlanes []ControlPlane
	Gateways      []Gateway
	// CA: the cluster runs istiod and needs the mesh's intermediate CA in
	// Secret cacerts of Namespace.
	CA bool
	// LocalCA: on an external cluster, the namespace of its own istiod,
	// which takes the mesh CA too: the ingress gateway it injects then
	// trusts the external istiod's certificate.
	LocalCA string
	// Reader: another cluster's istiod reads this one with the reader
	// account, bound to the reader ClusterRole of its control plane.
	Reader bool
	// Reads are the clusters whose API servers this cluster's istiod
	// reads through remote secrets.
	Reads []*fleet.Cluster
	// Exposes are the shared bases the cluster applies with its gateways.
	Exposes []Expose
	// MeshNamespace is where the cluster's mesh control plane keeps its
	// CA, reader account and secrets.
	MeshNamespace string
	// IstiodIngress: on an external cluster, how its istiod is exposed.
	IstiodIngress *IstiodIngress
	// HostIstiod: on a primary serving remotes at a host name, how its
	// east-west gateway exposes istiod (instead of the shared
	// expose-istiod base).
	HostIstiod *IstiodIngress
	// ConfigKubeconfig: on an external cluster, the config cluster's
	// kubeconfig placeholder.
	ConfigKubeconfig *ConfigKubeconfig
	// ConfigAccount: on a config cluster, the account (bound to istiod's
	// roles) whose token the external control plane's ConfigKubeconfig
	// is made from.
	ConfigAccount string
}

// Namespace returns the namespace of the cluster's mesh control plane.
func (c *Cluster) Namespace() string {
	if c.MeshNamespace != "" {
		return c.MeshNamespace
	}
	return IstioNamespace
}

// Revision returns the revision of the cluster's mesh control plane.
func (c *Cluster) Revision() string {
	if cp := c.MeshControlPlane(); cp != nil {
		return cp.Revision
	}
	return ""
}

// MeshControlPlane returns the cluster's (first) mesh control plane, not
// the local one of an external control plane's cluster, or nil.
func (c *Cluster) MeshControlPlane() *ControlPlane {
	for i := range c.ControlPlanes {
		if c.ControlPlanes[i].Role != RoleLocal {
			return &c.ControlPlanes[i]
		}
	}
	return nil
}

// The shared bases.
const (
	BaseExposeServices = "expose-services"
	BaseExposeIstiod   = "expose-istiod"
)

// Plan is what every cluster of a fleet needs, sorted by cluster name.
type Plan struct {
	Fleet    *fleet.Fleet
	Clusters []Cluster
}

// Labels and names Istio reads.
const (
	LabelNetwork            = "topology.istio.io/network"
	AnnotationControlPlanes = "topology.istio.io/controlPlaneClusters"
	EastWestGatewayName     = "istio-eastwestgateway"
	EastWestGatewaySelector = "eastwestgateway"
)

// NeverDeleted are the annotations of what must outlive the output that
// made it: the istio-system Namespace (deleting it deletes everything in
// it) and the CA (a new one means restarting every workload). Neither
// Flux nor Argo CD prunes them, and Argo CD keeps them when the
// Application is deleted.
var NeverDeleted = map[string]any{
	"kustomize.toolkit.fluxcd.io/prune": "disabled",
	"argocd.argoproj.io/sync-options":   "Prune=false,Delete=false",
}

// Build plans every cluster of f.
func Build(f *fleet.Fleet) *Plan {
	p := &Plan{Fleet: f}
	for _, c := range f.Clusters {
		p.Clusters = append(p.Clusters, planCluster(f, c))
	}
	return p
}

func planCluster(f *fleet.Fleet, c *fleet.Cluster) Cluster {
	if c.Role == fleet.ExternalControlPlane {
		return planExternal(f, c)
	}
	ns := IstioNamespace
	x := f.ExternalControlPlaneOf(c)
	if x != nil {
		ns = fleet.ExternalIstiodNamespace
	}
	pc := Cluster{Cluster: c, MeshNamespace: ns}
	annotations := Merged(NeverDeleted)
	switch {
	case x != nil && !c.ConfigCluster:
		if cc := f.ConfigClusterOf(x); cc != nil {
			annotations[AnnotationControlPlanes] = cc.Name
		}
	case c.Role == fleet.Remote && x == nil:
		annotations[AnnotationControlPlanes] = c.ControlPlane
	}
	pc.Namespaces = append(pc.Namespaces, Namespace{Name: ns, Labels: map[string]any{LabelNetwork: c.Network}, Annotations: annotations})
	pc.CA = c.Role == fleet.Primary
	pc.Reader = f.ReadByOthers(c)
	if f.MultiRevision() {
		pc.ControlPlanes = append(pc.ControlPlanes, revisionControlPlanes(f, c, ns)...)
	} else {
		cp := controlPlane(f, c, ns, f.Spec.Istio.Revision, release(f))
		cp.Base = true
		pc.ControlPlanes = append(pc.ControlPlanes, cp)
	}
	for i := range pc.ControlPlanes {
		applySettings(f, c, &pc.ControlPlanes[i])
	}
	if f.NeedsEastWestGateway(c) {
		pc.Gateways = append(pc.Gateways, eastWestGateway(f, c, ns))
	}
	if f.ServesRemotes(c) {
		if addr := c.EastWestGateway.Address; isIP(addr) {
			pc.Exposes = append(pc.Exposes, Expose{Base: BaseExposeIstiod, Namespace: ns, Revisions: f.RevisionsOf(c)})
		} else {
			pc.HostIstiod = hostIstiod(f, c, ns)
		}
	}
	if (c.Role == fleet.Primary || c.ConfigCluster) && f.MultiNetwork() {
		// The cluster whose configuration istiod reads: the Gateway
		// programs every network's gateway.
		pc.Exposes = append(pc.Exposes, Expose{Base: BaseExposeServices, Namespace: ns})
	}
	if x != nil && c.ConfigCluster {
		pc.ConfigAccount = ConfigServiceAccount
	}
	if c.Role == fleet.Primary {
		for _, other := range f.Clusters {
			if other != c {
				pc.Reads = append(pc.Reads, other)
			}
		}
	}
	return pc
}

func release(f *fleet.Fleet) Release {
	return Release{Version: f.Spec.Istio.Version, Hub: f.Spec.Istio.Hub, Charts: f.Spec.Istio.Charts}
}

// revisionRelease is the release of one of spec.istio.revisions.
func revisionRelease(f *fleet.Fleet, rev string) Release {
	r := release(f)
	r.Version = f.Spec.Istio.Revisions[rev].Version
	return r
}

// revisionControlPlanes are cluster c's control planes side by side: one
// per revision that runs there, each with the tags that point at it.
func revisionControlPlanes(f *fleet.Fleet, c *fleet.Cluster, ns string) []ControlPlane {
	tags := f.TagsOf(c)
	revs := f.RevisionsOf(c)
	def := tags["default"]
	// The base chart (CRDs) comes with the newest release that runs,
	// first: CRDs are upgraded before a canary starts, as Istio's Helm
	// upgrade does.
	newest := ""
	for _, rev := range revs {
		if newest == "" || fleet.CompareVersions(f.Spec.Istio.Revisions[rev].Version, f.Spec.Istio.Revisions[newest].Version) > 0 {
			newest = rev
		}
	}
	revs = append([]string{newest}, slices.DeleteFunc(slices.Clone(revs), func(r string) bool { return r == newest })...)
	var cps []ControlPlane
	for _, rev := range revs {
		cp := controlPlane(f, c, ns, rev, revisionRelease(f, rev))
		cp.Suffix = "-" + rev
		cp.Default = rev == def
		cp.Base = rev == newest
		cp.DefaultRevision = def
		for _, t := range sortedKeys(tags) {
			if tags[t] == rev {
				cp.Tags = append(cp.Tags, t)
			}
		}
		cps = append(cps, cp)
	}
	return cps
}

// applySettings merges the fleet's and then the cluster's values and
// meshConfig over what meshfleet sets (the rules refuse the keys
// meshfleet owns, so nothing of its own is overridden).
func applySettings(f *fleet.Fleet, c *fleet.Cluster, cp *ControlPlane) {
	if cp.Role == RoleLocal {
		return
	}
	in := f.Spec.Istio
	var cv, cm map[string]any
	if c.Istio != nil {
		cv, cm = c.Istio.Values, c.Istio.MeshConfig
	}
	if len(in.Values) > 0 || len(cv) > 0 {
		cp.Values = DeepMerged(cp.Values, in.Values, cv)
	}
	if cp.MeshConfig != nil && (len(in.MeshConfig) > 0 || len(cm) > 0) {
		cp.MeshConfig = DeepMerged(cp.MeshConfig, in.MeshConfig, cm)
	}
}

// DeepMerged is a new values tree with the trees of ms merged, later
// ones winning; maps merge key by key, anything else is replaced.
func DeepMerged(ms ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range ms {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok {
				if have, ok := out[k].(map[string]any); ok {
					out[k] = DeepMerged(have, sub)
					continue
				}
				out[k] = Clone(sub)
				continue
			}
			out[k] = cloneValue(v)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// controlPlane is cluster c's control plane of revision rev: istiod on a
// primary, the remote profile pointing at its primary's east-west gateway
// on a remote.
func controlPlane(f *fleet.Fleet, c *fleet.Cluster, ns, rev string, r Release) ControlPlane {
	cp := ControlPlane{
		Release:   r,
		Name:      rev,
		Revision:  rev,
		Namespace: ns,
		Default:   true, // the only revision is the default one
	}
	if cp.Name == "" {
		cp.Name = "default"
	}
	if x := f.ExternalControlPlaneOf(c); x != nil {
		cp.Role = RoleRemote
		cp.Profile = "remote"
		cp.Values = externalRemoteValues(f, c, x)
		if rev == "" {
			cp.Name = ns // as the external istiod's
		}
		cp.Validates = c.ConfigCluster
	} else if c.Role == fleet.Remote {
		cp.Role = RoleRemote
		cp.Profile = "remote"
		cp.Values = controlPlaneValues(f, c)
	} else {
		cp.Role = RolePrimary
		cp.Values = controlPlaneValues(f, c)
		cp.MeshConfig = map[string]any{"trustDomain": f.Spec.Mesh.TrustDomain}
		cp.Validates = true
	}
	cp.InjectionPath = "/inject"
	if r, ok := cp.Values["istiodRemote"].(map[string]any); ok {
		cp.InjectionPath, _ = r["injectionPath"].(string)
		cp.InjectionURL, _ = r["injectionURL"].(string)
	}
	return cp
}

// InjectionPath is the path a remote's injection webhook calls its
// primary's istiod at: it names the cluster and its network.
func InjectionPath(c *fleet.Cluster) string {
	return "/inject/cluster/" + c.Name + "/net/" + c.Network
}

// controlPlaneValues are the istiod values of cluster c. Every installer
// writes the same tree (spec.values of the IstioOperator, the values of
// the Helm istiod release, spec.values of the Sail Istio resource), so
// every installer gets the same meshID, clusterName, network and remote
// settings.
func controlPlaneValues(f *fleet.Fleet, c *fleet.Cluster) map[string]any {
	global := map[string]any{
		"meshID":       f.Spec.Mesh.ID,
		"multiCluster": map[string]any{"clusterName": c.Name},
		"network":      c.Network,
	}
	values := map[string]any{"global": global}
	if c.Role == fleet.Primary {
		if f.ServesRemotes(c) {
			global["externalIstiod"] = true
		}
		return values
	}
	addr := f.Cluster(c.ControlPlane).EastWestGateway.Address
	global["remotePilotAddress"] = addr
	path := InjectionPath(c)
	if isIP(addr) {
		values["istiodRemote"] = map[string]any{"injectionPath": path}
		return values
	}
	// A host name: the remote's istiod Service is an ExternalName for
	// it, which proxies reach istiod through (port 15012, TLS passed
	// through); the API server calls the injection webhook at the name,
	// where the gateway presents the certificate for it. No
	// validationURL: a remote gets no validation webhook (Validates).
	base := "https://" + net.JoinHostPort(addr, "15017")
	values["istiodRemote"] = map[string]any{"injectionURL": base + path}
	return values
}

// eastWestGateway is cluster c's east-west gateway: what
// samples/multicluster/gen-eastwest-gateway.sh installs for its network.
func eastWestGateway(f *fleet.Fleet, c *fleet.Cluster, ns string) Gateway {
	status := "status-port"
	if ns != IstioNamespace {
		// Outside the istio namespace Istio wants protocol-named Service
		// ports (istioctl validate refuses status-port there).
		status = "http-status"
	}
	r := release(f)
	if f.MultiRevision() {
		rev := gatewayRevision(f, c)
		if t, ok := f.TagsOf(c)[rev]; ok {
			rev = t
		}
		r = revisionRelease(f, rev)
	}
	gw := Gateway{
		Release:   r,
		Name:      EastWestGatewayName,
		Namespace: ns,
		Revision:  gatewayRevision(f, c),
		Network:   c.Network,
		Labels:    map[string]any{"istio": EastWestGatewaySelector, "app": EastWestGatewayName, LabelNetwork: c.Network},
		Ports:     []Port{{status, 15021}, {"tls", 15443}, {"tls-istiod", 15012}, {"tls-webhook", 15017}},
		Service:   gatewayService(c),
	}
	if g := c.EastWestGateway; g != nil {
		gw.Replicas, gw.Autoscaling, gw.Resources = g.Replicas, g.Autoscaling, Clone(g.Resources)
		if g.PodDisruptionBudget != nil {
			gw.MinAvailable = g.PodDisruptionBudget.MinAvailable
		}
	}
	return gw
}

// gatewayRevision is the revision (or tag) cluster c's gateways run
// with: the fleet's one revision, or side by side the one the fleet
// names, or the only one that runs in the cluster.
func gatewayRevision(f *fleet.Fleet, c *fleet.Cluster) string {
	if !f.MultiRevision() {
		return f.Spec.Istio.Revision
	}
	if r := f.GatewayRevisionOf(c); r != "" {
		return r
	}
	if revs := f.RevisionsOf(c); len(revs) > 0 {
		return revs[0]
	}
	return ""
}

// gatewayService binds the east-west gateway Service to the address the
// fleet declares, which remotes and other networks are wired to: its
// type, and spec.loadBalancerIP for an IP address unless the fleet binds
// the address through the Service's annotations. A host name is bound by
// DNS pointing at the load balancer.
func gatewayService(c *fleet.Cluster) Service {
	if gw := c.EastWestGateway; gw != nil {
		return service(gw.Address, gw.Service)
	}
	return service("", nil)
}

// service binds a gateway Service to addr ("" for none).
func service(addr string, fs *fleet.GatewayService) Service {
	svc := fleet.GatewayService{Type: "LoadBalancer", BindAddress: fleet.BindLoadBalancerIP}
	if fs != nil {
		svc = *fs
	}
	s := Service{Type: svc.Type}
	if addr != "" && len(svc.Annotations) > 0 {
		s.Annotations = map[string]any{}
		for k, v := range svc.Annotations {
			s.Annotations[k] = v
		}
	}
	if addr != "" && svc.Type == "LoadBalancer" && svc.BindAddress == fleet.BindLoadBalancerIP && isIP(addr) {
		s.LoadBalancerIP = canonicalIP(addr)
	}
	return s
}

func gatewayServiceOf(gw *fleet.IstiodGateway) *fleet.GatewayService {
	if gw == nil {
		return nil
	}
	return gw.Service
}

// Meta is an object's metadata: its name and namespace, and more fields.
func Meta(name, namespace string, extra ...map[string]any) map[string]any {
	m := map[string]any{"name": name, "namespace": namespace}
	for _, e := range extra {
		for k, v := range e {
			m[k] = v
		}
	}
	return m
}

// Merged is a new map with the entries of ms, later ones winning.
func Merged(ms ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// Clone copies a values tree deeply, so an installer can add to it.
func Clone(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return Clone(v)
	case []any:
		out := slices.Clone(v)
		for i := range out {
			out[i] = cloneValue(out[i])
		}
		return out
	}
	return v
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// canonicalIP writes an IP address in its canonical form.
func canonicalIP(s string) string {
	ip, _ := netip.ParseAddr(s)
	return ip.String()
}
