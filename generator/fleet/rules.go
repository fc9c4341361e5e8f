package fleet

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// IPv6RemotePilotMinor is the first Istio 1.x minor release whose istiod
// chart takes an IPv6 remotePilotAddress: before 1.30 the remote profile
// matches only IPv4 addresses and renders an ExternalName Service with no
// endpoints for anything else (istio/istio#58828).
const IPv6RemotePilotMinor = 30

// MinIstioMinor is the oldest Istio 1.x minor release meshfleet renders
// for: 1.24 removed the in-cluster operator and the istiod-remote chart,
// and the output follows the install model that came with it.
const MinIstioMinor = 24

var (
	dnsLabel  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	dnsDomain = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$`)
)

// field is a path to a field of the fleet, one element per label: cluster
// names may contain dots.
type field []string

func (f field) dot(labels ...string) field { return append(f[:len(f):len(f)], labels...) }

func clusterField(c *Cluster, labels ...string) field {
	return append(field{"spec", "clusters", c.Name}, labels...)
}

// problems collects rule violations, each placed at the field it concerns.
type problems struct {
	filename string
	locate   locator
	errs     Errors
	// pruned are the fields the schema rejected, when the rules judge
	// the rest of a fleet that failed it: nothing is reported about them
	// or about rules that would need them.
	pruned *fieldSet
}

// add reports a problem with the value of a field.
func (p *problems) add(f field, format string, args ...any) {
	if p.pruned.under(f) {
		return
	}
	p.errs = append(p.errs, &Error{
		Pos:    p.locate(f, false),
		Path:   joinPath(f),
		Msg:    fmt.Sprintf(format, args...),
		labels: f,
	})
}

// addKey reports a problem with a field's name.
func (p *problems) addKey(f field, format string, args ...any) {
	n := len(p.errs)
	p.add(f, format, args...)
	if len(p.errs) > n {
		p.errs[n].Pos = p.locate(f, true)
	}
}

// known reports whether the schema accepted what the rules know about
// the named clusters: their names, roles, networks and control planes.
func (p *problems) known(names ...string) bool {
	for _, q := range p.pruned.paths() {
		if len(q) < 3 && len(q) >= 1 && q[0] == "spec" {
			return false // spec or spec.clusters itself
		}
		if len(q) >= 3 && q[0] == "spec" && q[1] == "clusters" && (len(q) == 3 || q[3] == "role" || q[3] == "network" || q[3] == "controlPlane") {
			if len(names) == 0 || slices.Contains(names, q[2]) {
				return false
			}
		}
	}
	return true
}

// check applies the rules that the schema cannot express: those that span
// several fields or clusters, and those that need Istio's view of a value.
func check(f *Fleet, p *problems) Errors {
	checkIstio(f, p)
	checkStrings(reflect.ValueOf(f.Spec), field{"spec"}, p)
	checkURL(field{"spec", "istio", "charts"}, f.Spec.Istio.Charts, p)
	if a := f.Spec.Delivery.ArgoCD; a != nil {
		checkURL(field{"spec", "delivery", "argocd", "repoURL"}, a.RepoURL, p)
	}
	checkExtensions(f, p)
	if len(f.Clusters) == 0 {
		if p.known() {
			p.add(field{"spec", "clusters"}, "a fleet needs at least one cluster")
		}
		return p.errs
	}
	primaries := 0
	apiServers := map[string]string{}
	gateways := map[string]string{}
	for _, c := range f.Clusters {
		at := clusterField(c)
		if !dnsLabel.MatchString(c.Name) {
			p.addKey(at, "cluster name %q is not a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters); Istio uses it as the cluster ID", c.Name)
		}
		switch c.Role {
		case Primary:
			primaries++
			if c.ControlPlane != "" {
				p.add(at.dot("controlPlane"), "only a remote has a controlPlane; %s is a primary", c.Name)
			}
		case Remote:
			if p.known(c.ControlPlane) {
				checkControlPlane(f, c, p)
			}
		case ExternalControlPlane:
			checkExternal(f, c, p)
		}
		if c.ConfigCluster && p.known(c.Name, c.ControlPlane) && f.ExternalControlPlaneOf(c) == nil {
			what := "a " + string(c.Role)
			if cp := f.Cluster(c.ControlPlane); c.Role == Remote && cp != nil {
				what = "a remote of " + string(cp.Role) + " " + cp.Name
			}
			p.add(at.dot("configCluster"), "only a remote of an external control plane is a config cluster; %s is %s", c.Name, what)
		}
		if c.IstiodGateway != nil && c.Role != ExternalControlPlane && p.known(c.Name) {
			p.add(at.dot("istiodGateway"), "only an external control plane has an istiodGateway; %s is a %s (a primary exposes istiod through its eastWestGateway)", c.Name, c.Role)
		}
		if c.APIServer != "" {
			if key := checkAPIServer(c, p); key != "" {
				if other, dup := apiServers[key]; dup {
					p.add(at.dot("apiServer"), "%s is also the API server of cluster %s", c.APIServer, other)
				}
				apiServers[key] = c.Name
			}
		} else if len(f.Clusters) > 1 {
			p.add(at.dot("apiServer"), "field is required: the other clusters of the mesh read this cluster's API server through its remote secret")
		}
		if gw := c.EastWestGateway; gw != nil && c.Role == ExternalControlPlane {
			p.add(at.dot("eastWestGateway"), "external control plane %s runs no mesh workloads and has no east-west gateway: remotes reach its istiod through istiodGateway", c.Name)
		} else if gw != nil {
			checkGatewayService(f, c, p)
			if checkAddress(at.dot("eastWestGateway", "address"), gw.Address, p) {
				key := canonicalAddress(gw.Address)
				if other, dup := gateways[key]; dup {
					p.add(at.dot("eastWestGateway", "address"), "%s is also the east-west gateway address of cluster %s", gw.Address, other)
				} else if f.ServesRemotes(c) {
					checkServingGateway(f, c, p)
				}
				gateways[key] = c.Name
			}
		} else if f.ServesRemotes(c) {
			checkServingGateway(f, c, p)
		}
	}
	if !p.known() {
		return p.errs // the rules below count roles and networks
	}
	if primaries == 0 && !f.External() {
		p.add(field{"spec", "clusters"}, "a mesh needs at least one primary cluster or external control plane to run istiod")
	}
	checkExternalMesh(f, p)
	checkRevisions(f, p)
	checkTopology(f, p)
	if d := f.Spec.Delivery; d.Flux != nil && d.ArgoCD != nil {
		p.add(field{"spec", "delivery"}, "choose one of flux and argocd: both would apply the same objects")
	}
	if f.Spec.Installer == InstallerHelm && f.Spec.Delivery.Flux == nil && f.Spec.Delivery.ArgoCD == nil {
		p.add(field{"spec", "installer"}, "installer helm needs spec.delivery.flux or spec.delivery.argocd: Flux or Argo CD runs the Helm releases")
	}
	return p.errs
}

// checkStrings refuses secret material in every string of the fleet:
// everything meshfleet reads ends up in files that go to git.
func checkStrings(v reflect.Value, at field, p *problems) {
	switch v.Kind() {
	case reflect.String:
		// URL fields have their own checks, which report credentials.
		isURL := slices.Contains([]string{"apiServer", "charts", "repoURL"}, at[len(at)-1])
		what := URLCredentials(v.String())
		if isURL && what != "" {
			return
		}
		if k := keyMaterial(v.String()); k != "" || isURL {
			what = k
		}
		if what != "" {
			p.add(at, "holds %s; meshfleet writes no secret material: reference it from a secret store instead", what)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			checkStrings(v.Elem(), at, p)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			if name == "" || name == "-" || !t.Field(i).IsExported() {
				continue
			}
			checkStrings(v.Field(i), at.dot(name), p)
		}
	case reflect.Slice:
		for i := range v.Len() {
			checkStrings(v.Index(i), at.dot(strconv.Itoa(i)), p)
		}
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		for _, k := range keys {
			checkStrings(v.MapIndex(k), at.dot(k.String()), p)
		}
	}
}

// urlChars are the characters a URL may hold as meshfleet writes it:
// RFC 3986's, without the braces, quotes, backslash and '$' that
// templates (External Secrets, Flux substitution) would interpret.
var urlChars = regexp.MustCompile(`^[A-Za-z0-9._~:/?#\[\]@!&'()*+,;=%-]*$`)

// checkURL refuses repository URLs with credentials, queries or
// characters a template would interpret.
func checkURL(at field, s string, p *problems) {
	switch {
	case s == "":
	case !urlChars.MatchString(s):
		p.add(at, "%q holds characters a URL does not need (spaces, quotes, braces, '$', '\\' or non-ASCII); percent-encode them", s)
	case URLCredentials(s) != "":
		p.add(at, "the URL carries credentials (%s); give the credentials to Flux or Argo CD as a secret instead", URLCredentials(s))
	case strings.ContainsAny(s, "?#"):
		p.add(at, "the URL carries a query or fragment; give only scheme, host, port and path")
	}
}

// extensionPath is what an extension file may be called: a relative
// path of plain names.
var extensionPath = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$`)

func checkExtensions(f *Fleet, p *problems) {
	for i, e := range f.Spec.Extensions {
		at := field{"spec", "extensions", strconv.Itoa(i), "jsonnet"}
		if !extensionPath.MatchString(e.Jsonnet) || slices.Contains(strings.Split(e.Jsonnet, "/"), "..") {
			p.add(at, "%q is not a relative path of plain names (letters, digits, '_', '-', '.') below the fleet file's directory", e.Jsonnet)
			continue
		}
		st, err := os.Stat(filepath.Join(f.Dir, filepath.FromSlash(e.Jsonnet)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			where := "the fleet file's directory"
			if f.Dir != "." {
				where += " " + Quote(f.Dir)
			}
			p.add(at, "%s does not exist (extensions are relative to %s)", Quote(e.Jsonnet), where)
		case err != nil:
			p.add(at, "%s: %v", e.Jsonnet, unwrapPath(err))
		case !st.Mode().IsRegular():
			p.add(at, "%s is not a regular file (%s)", e.Jsonnet, fileType(st.Mode()))
		}
	}
}

func checkIstio(f *Fleet, p *problems) {
	in := f.Spec.Istio
	if f.MultiRevision() {
		if in.Version != "" {
			p.add(field{"spec", "istio", "version"}, "spec.istio.revisions gives every control plane its version: remove version")
		}
		if in.Revision != "" {
			p.add(field{"spec", "istio", "revision"}, "spec.istio.revisions names the control planes: remove revision")
		}
		for _, r := range sortedKeys(in.Revisions) {
			checkVersion(field{"spec", "istio", "revisions", r, "version"}, in.Revisions[r].Version, p)
			if r == "default" {
				p.addKey(field{"spec", "istio", "revisions", r}, `revision "default" is reserved for the default control plane; name revisions after their release (e.g. "1-31-1") and point tag default at one`)
			}
		}
	} else {
		if in.Version == "" && !p.pruned.under(field{"spec", "istio", "version"}) {
			p.add(field{"spec", "istio"}, "field version is required: the Istio release every control plane runs (or spec.istio.revisions for several side by side)")
		} else {
			checkVersion(field{"spec", "istio", "version"}, in.Version, p)
		}
		if in.Revision == "default" {
			p.add(field{"spec", "istio", "revision"}, `revision "default" is reserved for the default control plane: leave revision empty instead`)
		}
	}
	checkSettings(f, p)
}

func checkVersion(at field, v string, p *problems) {
	major, rest, _ := strings.Cut(v, ".")
	minor, _, _ := strings.Cut(rest, ".")
	if n, err := strconv.Atoi(minor); major == "1" && err == nil && n < MinIstioMinor {
		p.add(at, "Istio %s is not supported: meshfleet renders for Istio 1.%d and later", v, MinIstioMinor)
	} else if major != "1" {
		p.add(at, "Istio %s is not supported: meshfleet renders for Istio 1.x", v)
	}
}

func checkControlPlane(f *Fleet, c *Cluster, p *problems) {
	at := clusterField(c, "controlPlane")
	switch cp := f.Cluster(c.ControlPlane); {
	case c.ControlPlane == "":
		p.add(at, "field is required: a remote names the primary or external control plane whose istiod serves it")
	case cp == nil:
		p.add(at, "%q is not a cluster of this fleet%s", c.ControlPlane, suggestCluster(f, c.ControlPlane))
	case cp.Role == Remote:
		p.add(at, "%q is a remote; a remote's controlPlane must be a primary or an external control plane", c.ControlPlane)
	}
}

// checkExternal: an external control plane is reached at its istiod
// gateway and serves at least one remote; it has no controlPlane itself.
func checkExternal(f *Fleet, c *Cluster, p *problems) {
	at := clusterField(c)
	if c.ControlPlane != "" {
		p.add(at.dot("controlPlane"), "only a remote has a controlPlane; %s is an external control plane", c.Name)
	}
	remotes := f.RemotesOf(c)
	var names []string
	for _, r := range remotes {
		names = append(names, r.Name)
	}
	if len(remotes) == 0 {
		p.add(at.dot("role"), "external control plane %s serves no cluster: a remote names it as its controlPlane, and one of them is its configCluster", c.Name)
	}
	if c.IstiodGateway == nil {
		if len(remotes) > 0 {
			p.add(at.dot("istiodGateway"), "field is required: %s reach%s the istiod of external control plane %s through its istiod gateway at a static address", strings.Join(names, ", "), map[bool]string{true: "", false: "es"}[len(names) > 1], c.Name)
		}
		return
	}
	gw := c.IstiodGateway
	addrAt := at.dot("istiodGateway", "address")
	if !checkAddress(addrAt, gw.Address, p) {
		return
	}
	if ip, err := netip.ParseAddr(gw.Address); err == nil {
		if gw.Certificate != nil {
			p.add(at.dot("istiodGateway", "certificate"), "%s is an IP address: the gateway passes TLS through to istiod and presents no certificate; give a DNS name to terminate TLS", gw.Address)
		}
		checkPilotIP(f, addrAt, gw.Address, ip, p)
	}
	if s := gw.Service; s != nil {
		if s.Type != "" && s.Type != "LoadBalancer" {
			p.add(at.dot("istiodGateway", "service", "type"), "remotes reach istiod at %s on ports 15012 and 15017: the gateway Service must be a LoadBalancer, a %s Service does not listen there", gw.Address, s.Type)
		}
		if s.BindAddress == BindAnnotations && len(s.Annotations) == 0 {
			p.add(at.dot("istiodGateway", "service", "bindAddress"), "bindAddress annotations needs service.annotations that give the Service its address")
		}
	}
}

// checkExternalMesh: every external control plane has exactly one config
// cluster, and no primary serves its remotes too.
func checkExternalMesh(f *Fleet, p *problems) {
	for _, x := range f.Clusters {
		if x.Role != ExternalControlPlane {
			continue
		}
		var configs []*Cluster
		var names []string
		for _, r := range f.RemotesOf(x) {
			names = append(names, r.Name)
			if r.ConfigCluster {
				configs = append(configs, r)
			}
		}
		switch {
		case len(names) > 0 && len(configs) == 0:
			p.add(clusterField(x), "external control plane %s serves %s, but none of them is its config cluster: set configCluster: true on the one that holds the mesh configuration", x.Name, strings.Join(names, ", "))
		case len(configs) > 1:
			for _, c := range configs[1:] {
				p.add(clusterField(c, "configCluster"), "external control plane %s already has config cluster %s: it has exactly one", x.Name, configs[0].Name)
			}
		}
		for _, c := range f.Clusters {
			if c.Role == Primary {
				p.add(clusterField(c, "role"), "primary %s would read the remotes of external control plane %s (%s) through remote secrets and serve them too: a fleet with an external control plane has no primaries", c.Name, x.Name, strings.Join(names, ", "))
			}
		}
	}
}

// checkServingGateway: remotes reach istiod through the east-west gateway
// of their primary, at an address fixed in their own configuration.
func checkServingGateway(f *Fleet, c *Cluster, p *problems) {
	at := clusterField(c, "eastWestGateway")
	var names []string
	for _, r := range f.RemotesOf(c) {
		names = append(names, r.Name)
	}
	if c.EastWestGateway == nil {
		verb := "reaches"
		if len(names) > 1 {
			verb = "reach"
		}
		p.add(at, "field is required: primary %s serves %s, which %s istiod through its east-west gateway at a static address", c.Name, strings.Join(names, ", "), verb)
		return
	}
	addr := c.EastWestGateway.Address
	if ip, err := netip.ParseAddr(addr); err == nil {
		// Remotes use it as remotePilotAddress and reach injection
		// through the istiod Service it fills in. (A host name makes them
		// use injectionURL at that name instead, with the certificate the
		// gateway presents for it.)
		checkPilotIP(f, at.dot("address"), addr, ip, p)
		if c.EastWestGateway.Certificate != nil {
			p.add(at.dot("certificate"), "%s is an IP address: the gateway passes TLS through to istiod and presents no certificate; give a DNS name to terminate TLS", addr)
		}
	}
	if s := c.EastWestGateway.Service; s != nil && s.Type != "" && s.Type != "LoadBalancer" {
		p.add(at.dot("service", "type"), "primary %s serves remotes, which reach istiod at %s on ports 15012 and 15017: the gateway Service must be a LoadBalancer, a %s Service does not listen there", c.Name, addr, s.Type)
	}
}

// checkPilotIP: an IP address remotes use as remotePilotAddress must be
// one Istio's charts take for an IP address.
func checkPilotIP(f *Fleet, at field, addr string, ip netip.Addr, p *problems) {
	switch {
	case ip.Is6() && strings.Contains(addr, "."):
		p.add(at, "%s embeds an IPv4 address in IPv6 notation, which Istio's charts take for a host name (an ExternalName Service that sidecar injection cannot call): write it as %s", addr, ip.Unmap())
	case ip.Is6():
		if v := f.OldestVersion(); v != "" {
			if minor, ok := istioMinor(v); ok && minor < IPv6RemotePilotMinor {
				p.add(at, "IPv6 address %s needs Istio 1.%d or later (the fleet has %s): before, the remote profile renders an ExternalName Service with no endpoints for an IPv6 remotePilotAddress, and remotes cannot reach istiod", addr, IPv6RemotePilotMinor, v)
			}
		}
	}
}

// checkGatewayService: the Service must be able to carry the address.
func checkGatewayService(f *Fleet, c *Cluster, p *problems) {
	at := clusterField(c, "eastWestGateway")
	if cp := f.Cluster(c.ControlPlane); c.Role == Remote && cp != nil && cp.Role == Primary && !f.NeedsEastWestGateway(c) {
		p.add(at, "remote %s is on the network of its primary %s and has no east-west gateway of its own: remove the field", c.Name, c.ControlPlane)
		return
	}
	if f.ExternalControlPlaneOf(c) != nil && !f.NeedsEastWestGateway(c) {
		p.add(at, "remote %s is on the one network of the mesh and needs no east-west gateway: remove the field", c.Name)
		return
	}
	checkGatewaySize(at, c.EastWestGateway, p)
	if c.EastWestGateway.Certificate != nil && !f.ServesRemotes(c) {
		p.add(at.dot("certificate"), "only the east-west gateway of a primary that serves remotes presents a certificate (for the remotes' injection and validation webhooks); %s serves none", c.Name)
	}
	s := c.EastWestGateway.Service
	if s == nil {
		return
	}
	if s.BindAddress == BindAnnotations && len(s.Annotations) == 0 {
		p.add(at.dot("service", "bindAddress"), "bindAddress annotations needs service.annotations that give the Service its address")
	}
	if s.BindAddress == BindLoadBalancerIP && s.Type == "NodePort" {
		p.add(at.dot("service", "bindAddress"), "a NodePort Service has no loadBalancerIP: give bindAddress annotations, or type LoadBalancer")
	}
}

// istioMinor returns the minor release of a 1.x version.
func istioMinor(v string) (int, bool) {
	major, rest, _ := strings.Cut(v, ".")
	minor, _, _ := strings.Cut(rest, ".")
	n, err := strconv.Atoi(minor)
	return n, major == "1" && err == nil
}

// checkAddress accepts a routable IP address or a DNS name and reports
// whether addr is one.
func checkAddress(at field, addr string, p *problems) bool {
	if ip, err := netip.ParseAddr(addr); err == nil {
		if ip.Zone() != "" {
			p.add(at, "%q has an IPv6 zone, which is local to one host", addr)
			return false
		}
		if unreachable(ip) {
			p.add(at, "%s is not reachable from other clusters", addr)
			return false
		}
		return true
	}
	if !isDNSName(addr) {
		p.add(at, "%q is neither an IP address nor a DNS name", addr)
		return false
	}
	return true
}

func unreachable(ip netip.Addr) bool {
	return ip.IsLoopback() || ip.IsUnspecified() || ip.IsLinkLocalUnicast() || ip.IsMulticast()
}

// isDNSName accepts host names; an all-numeric dotted name like 999.1.1.1
// is a broken IP address, not a name.
func isDNSName(s string) bool {
	if !dnsDomain.MatchString(s) || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(s, "."), ".") {
		if strings.Trim(label, "0123456789") != "" {
			return true
		}
	}
	return false
}

// canonicalAddress makes equal addresses compare equal: 2001:DB8:0::1 is
// 2001:db8::1, and host names are case-insensitive.
func canonicalAddress(addr string) string {
	if ip, err := netip.ParseAddr(addr); err == nil {
		return ip.String()
	}
	return strings.TrimSuffix(strings.ToLower(addr), ".")
}

// inCluster names resolve only inside a Kubernetes cluster.
func inCluster(host string) bool {
	return host == "kubernetes" || host == "kubernetes.default" || strings.HasSuffix(host, ".svc") || strings.Contains(host, ".svc.")
}

// checkAPIServer: the URL ends up in a kubeconfig that istiod in another
// cluster uses, so it must be https, reachable from outside, and it must
// not carry credentials. It returns the server's canonical form, for
// finding duplicates, or "" when the URL is unusable.
func checkAPIServer(c *Cluster, p *problems) string {
	at := clusterField(c, "apiServer")
	if !urlChars.MatchString(c.APIServer) || strings.ContainsAny(c.APIServer, "[]") && !strings.HasPrefix(c.APIServer, "https://[") {
		p.add(at, "%q holds characters a URL does not need (spaces, quotes, braces, '$', '\\' or non-ASCII)", c.APIServer)
		return ""
	}
	u, err := url.Parse(c.APIServer)
	if err != nil || u.Host == "" || u.Opaque != "" {
		p.add(at, "%q is not a URL like https://api.example.net:6443", c.APIServer)
		return ""
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	ip, ipErr := netip.ParseAddr(host)
	switch {
	case u.Scheme != "https":
		p.add(at, "scheme %q: the API server must be reached over https", u.Scheme)
	case u.User != nil:
		p.add(at, "the URL carries credentials; remote secrets take a service account token instead")
	case u.RawQuery != "" || u.Fragment != "":
		p.add(at, "the URL carries a query or fragment; give only scheme, host, port and path")
	case host == "localhost" || strings.HasSuffix(host, ".localhost"):
		p.add(at, "%s is not reachable from other clusters", host)
	case inCluster(host):
		p.add(at, "%s is an in-cluster name, not reachable from other clusters", host)
	case ipErr == nil && ip.Zone() != "":
		p.add(at, "%s has an IPv6 zone, which is local to one host", host)
	case ipErr == nil && unreachable(ip):
		p.add(at, "%s is not reachable from other clusters", host)
	case ipErr != nil && !isDNSName(host):
		p.add(at, "%q is not a valid host name", host)
	case u.Port() != "" && !validPort(u.Port()):
		p.add(at, "port %s is out of range", u.Port())
	default:
		port := u.Port()
		if port == "" {
			port = "443"
		}
		return canonicalAddress(host) + ":" + port + strings.TrimSuffix(u.EscapedPath(), "/")
	}
	return ""
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}

func checkTopology(f *Fleet, p *problems) {
	t := f.Spec.Topology
	if t == nil {
		return
	}
	if t.ControlPlane != "" && t.ControlPlane != f.ControlPlane() {
		if t.ControlPlane == ExternalControlPlaneLayout || f.External() {
			p.add(field{"spec", "topology", "controlPlane"}, "declared %s, but the clusters make the mesh %s", t.ControlPlane, f.ControlPlane())
		} else if t.ControlPlane == MultiPrimary {
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
			p.add(field{"spec", "topology", "controlPlane"}, "declared multi-primary, but %s %s, which makes the mesh primary-remote", strings.Join(remotes, ", "), what)
		} else {
			p.add(field{"spec", "topology", "controlPlane"}, "declared primary-remote, but no cluster is a remote, which makes the mesh multi-primary")
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
			p.add(field{"spec", "topology", "network"}, "declared single-network, but the clusters are on networks %s", strings.Join(nets, ", "))
		} else {
			p.add(field{"spec", "topology", "network"}, "declared multi-network, but every cluster is on network %s", nets[0])
		}
	}
}

// suggestCluster names the cluster a reference probably meant, or lists
// the clusters.
func suggestCluster(f *Fleet, name string) string {
	names := make([]string, len(f.Clusters))
	for i, c := range f.Clusters {
		names[i] = c.Name
	}
	if s := closest(name, names); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return " (clusters: " + strings.Join(names, ", ") + ")"
}

// checkGatewaySize: a fixed size or an autoscaler, and a disruption
// budget that leaves node drains possible.
func checkGatewaySize(at field, gw *Gateway, p *problems) {
	if gw.Replicas > 0 && gw.Autoscaling != nil {
		p.add(at.dot("replicas"), "give replicas or autoscaling, not both: the autoscaler would change the replicas")
	}
	pods := gw.Replicas
	what := "replicas"
	if a := gw.Autoscaling; a != nil {
		if a.MinReplicas > a.MaxReplicas {
			p.add(at.dot("autoscaling", "minReplicas"), "minReplicas %d is more than maxReplicas %d", a.MinReplicas, a.MaxReplicas)
		}
		pods, what = a.MinReplicas, "autoscaling.minReplicas"
	}
	if b := gw.PodDisruptionBudget; b != nil {
		if pods == 0 {
			pods, what = 1, "the default autoscaling.minReplicas"
		}
		if b.MinAvailable >= pods {
			p.add(at.dot("podDisruptionBudget", "minAvailable"), "minAvailable %d of %d pods (%s) would block every node drain: keep it below the number of pods", b.MinAvailable, pods, what)
		}
	}
}
