package fleet

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
)

// MinIstioMinor is the oldest Istio 1.x minor release meshfleet renders
// for: 1.24 removed the in-cluster operator and the istiod-remote chart,
// and the output follows the install model that came with it.
const MinIstioMinor = 24

var (
	dnsLabel  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	dnsDomain = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$`)
)

// problems collects rule violations, each placed at the field it concerns.
type problems struct {
	filename string
	data     cue.Value
	errs     Errors
}

func (p *problems) add(path string, format string, args ...any) {
	p.errs = append(p.errs, &Error{
		Pos:  lookupPos(p.filename, p.data, strings.Split(path, ".")),
		Path: path,
		Msg:  fmt.Sprintf(format, args...),
	})
}

// check applies the rules that the schema cannot express: those that span
// several fields or clusters, and those that need Istio's view of a value.
func check(f *Fleet, p *problems) Errors {
	checkIstio(f, p)
	if len(f.Clusters) == 0 {
		p.add("spec.clusters", "a fleet needs at least one cluster")
		return p.errs
	}
	primaries := 0
	apiServers := map[string]string{}
	gateways := map[string]string{}
	for _, c := range f.Clusters {
		at := "spec.clusters." + c.Name
		if !dnsLabel.MatchString(c.Name) {
			p.add(at, "cluster name %q is not a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters); Istio uses it as the cluster ID", c.Name)
		}
		switch c.Role {
		case Primary:
			primaries++
			if c.ControlPlane != "" {
				p.add(at+".controlPlane", "only a remote has a controlPlane; %s is a primary", c.Name)
			}
		case Remote:
			checkControlPlane(f, c, p)
		}
		if c.APIServer != "" {
			checkAPIServer(c, p)
			if other, dup := apiServers[c.APIServer]; dup {
				p.add(at+".apiServer", "%s is also the API server of cluster %s", c.APIServer, other)
			}
			apiServers[c.APIServer] = c.Name
		} else if len(f.Clusters) > 1 {
			p.add(at+".apiServer", "field is required: the other clusters of the mesh read this cluster's API server through its remote secret")
		}
		if gw := c.EastWestGateway; gw != nil {
			checkAddress(at+".eastWestGateway.address", gw.Address, p)
			if other, dup := gateways[gw.Address]; dup {
				p.add(at+".eastWestGateway.address", "%s is also the east-west gateway address of cluster %s", gw.Address, other)
			}
			gateways[gw.Address] = c.Name
		}
		if f.ServesRemotes(c) {
			checkServingGateway(f, c, p)
		}
	}
	if primaries == 0 {
		p.add("spec.clusters", "a mesh needs at least one primary cluster to run istiod")
	}
	checkTopology(f, p)
	if d := f.Spec.Delivery; d.Flux != nil && d.ArgoCD != nil {
		p.add("spec.delivery", "choose one of flux and argocd: both would apply the same objects")
	}
	if f.Spec.Installer == InstallerHelm && f.Spec.Delivery.Flux == nil && f.Spec.Delivery.ArgoCD == nil {
		p.add("spec.installer", "installer helm needs spec.delivery.flux or spec.delivery.argocd: Flux or Argo CD runs the Helm releases")
	}
	return p.errs
}

func checkIstio(f *Fleet, p *problems) {
	v := f.Spec.Istio.Version
	major, rest, _ := strings.Cut(v, ".")
	minor, _, _ := strings.Cut(rest, ".")
	if n, err := strconv.Atoi(minor); major == "1" && err == nil && n < MinIstioMinor {
		p.add("spec.istio.version", "Istio %s is not supported: meshfleet renders for Istio 1.%d and later", v, MinIstioMinor)
	} else if major != "1" {
		p.add("spec.istio.version", "Istio %s is not supported: meshfleet renders for Istio 1.x", v)
	}
	if f.Spec.Istio.Revision == "default" {
		p.add("spec.istio.revision", `revision "default" is reserved for the default control plane: leave revision empty instead`)
	}
}

func checkControlPlane(f *Fleet, c *Cluster, p *problems) {
	at := "spec.clusters." + c.Name + ".controlPlane"
	switch cp := f.Cluster(c.ControlPlane); {
	case c.ControlPlane == "":
		p.add(at, "field is required: a remote names the primary whose istiod serves it")
	case cp == nil:
		p.add(at, "%q is not a cluster of this fleet", c.ControlPlane)
	case cp.Role != Primary:
		p.add(at, "%q is a remote; a remote's controlPlane must be a primary", c.ControlPlane)
	}
}

// checkServingGateway: remotes reach istiod through the east-west gateway
// of their primary, at an address fixed in their own configuration.
func checkServingGateway(f *Fleet, c *Cluster, p *problems) {
	at := "spec.clusters." + c.Name + ".eastWestGateway"
	var names []string
	for _, r := range f.RemotesOf(c) {
		names = append(names, r.Name)
	}
	if c.EastWestGateway == nil {
		p.add(at, "field is required: primary %s serves %s, which reach istiod through its east-west gateway at a static address", c.Name, strings.Join(names, ", "))
		return
	}
	if _, err := netip.ParseAddr(c.EastWestGateway.Address); err != nil {
		p.add(at+".address", "%q must be an IP address: remotes use it as remotePilotAddress, and for a host name Istio creates an ExternalName Service that sidecar injection cannot call", c.EastWestGateway.Address)
	}
}

// checkAddress accepts a routable IP address or a DNS name.
func checkAddress(at, addr string, p *problems) {
	if ip, err := netip.ParseAddr(addr); err == nil {
		if ip.IsLoopback() || ip.IsUnspecified() || ip.IsLinkLocalUnicast() || ip.IsMulticast() {
			p.add(at, "%s is not reachable from other clusters", addr)
		}
		return
	}
	if !dnsDomain.MatchString(addr) || len(addr) > 253 {
		p.add(at, "%q is neither an IP address nor a DNS name", addr)
	}
}

// checkAPIServer: the URL ends up in a kubeconfig that istiod in another
// cluster uses, so it must be https, reachable from outside, and it must
// not carry credentials.
func checkAPIServer(c *Cluster, p *problems) {
	at := "spec.clusters." + c.Name + ".apiServer"
	u, err := url.Parse(c.APIServer)
	if err != nil || u.Host == "" || u.Opaque != "" {
		p.add(at, "%q is not a URL like https://api.example.net:6443", c.APIServer)
		return
	}
	switch host := strings.ToLower(u.Hostname()); {
	case u.Scheme != "https":
		p.add(at, "scheme %q: the API server must be reached over https", u.Scheme)
	case u.User != nil:
		p.add(at, "the URL carries credentials; remote secrets take a service account token instead")
	case u.RawQuery != "" || u.Fragment != "":
		p.add(at, "the URL carries a query or fragment; give only scheme, host, port and path")
	case host == "localhost" || strings.HasSuffix(host, ".localhost"):
		p.add(at, "%s is not reachable from other clusters", host)
	case host == "kubernetes.default" || strings.HasSuffix(host, ".svc") || strings.Contains(host, ".svc."):
		p.add(at, "%s is an in-cluster name, not reachable from other clusters", host)
	default:
		if ip := net.ParseIP(host); ip != nil {
			if ip.IsLoopback() || ip.IsUnspecified() || ip.IsLinkLocalUnicast() {
				p.add(at, "%s is not reachable from other clusters", host)
			}
		} else if !dnsDomain.MatchString(host) {
			p.add(at, "%q is not a valid host name", host)
		}
		if port := u.Port(); port != "" {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				p.add(at, "port %s is out of range", port)
			}
		}
	}
}

func checkTopology(f *Fleet, p *problems) {
	t := f.Spec.Topology
	if t == nil {
		return
	}
	if t.ControlPlane != "" && t.ControlPlane != f.ControlPlane() {
		if t.ControlPlane == MultiPrimary {
			var remotes []string
			for _, c := range f.Clusters {
				if c.Role == Remote {
					remotes = append(remotes, c.Name)
				}
			}
			what := "is a remote"
			if len(remotes) > 1 {
				what = "are remotes"
			}
			p.add("spec.topology.controlPlane", "declared multi-primary, but %s %s, which makes the mesh primary-remote", strings.Join(remotes, ", "), what)
		} else {
			p.add("spec.topology.controlPlane", "declared primary-remote, but no cluster is a remote, which makes the mesh multi-primary")
		}
	}
	if t.Network != "" && t.Network != f.Network() {
		var nets []string
		for _, c := range f.Clusters {
			if !slices.Contains(nets, c.Network) {
				nets = append(nets, c.Network)
			}
		}
		if t.Network == SingleNetwork {
			p.add("spec.topology.network", "declared single-network, but the clusters are on networks %s", strings.Join(nets, ", "))
		} else {
			p.add("spec.topology.network", "declared multi-network, but every cluster is on network %s", nets[0])
		}
	}
}
