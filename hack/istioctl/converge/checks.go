package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	admv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

const probeNS = "converge-probe"

// check is one assertion, tried until it passes or the check bound ends.
type check struct {
	name string
	fn   func(ctx context.Context) (bool, string)
}

func (h *Harness) checks(ctx context.Context) {
	h.probe(ctx)
	var cs []check
	primaries := h.istiodList()
	multiNetwork := h.networks() > 1

	// Every remote-secret placeholder the output applied, and an external
	// control plane's istio-kubeconfig (some may be filled by now: the
	// annotation stays).
	for _, n := range h.names {
		l, err := h.clusters[n].kc.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		for i := range l.Items {
			s := &l.Items[i]
			if s.Annotations["meshfleet.dev/placeholder"] == "" || (!isRemoteSecret(s) && !documentsCommand(s)) {
				continue
			}
			_, _, problems := h.documentedCommand(s)
			cs = append(cs, check{"placeholder " + n + "/" + s.Namespace + "/" + s.Name + ": its documented command names the fleet's apiServer", func(context.Context) (bool, string) {
				return len(problems) == 0, strings.Join(problems, "; ")
			}})
		}
	}
	for _, n := range h.names {
		if objs := h.ops.esoSeen[n]; len(objs) > 0 {
			objs := objs
			cs = append(cs, check{"external-secrets " + n + ": External Secrets objects are served", func(context.Context) (bool, string) {
				return false, "the harness does not stand in for External Secrets yet: " + strings.Join(objs, ", ")
			}})
		}
	}
	if len(primaries) == 0 {
		cs = append(cs, check{"istiod: at least one istiod runs", func(context.Context) (bool, string) {
			return false, "no istiod Deployment became available in any cluster"
		}})
	}
	for _, ist := range primaries {
		if h.outsideMesh(ist) {
			continue // judged only by the one-root check below
		}
		ist := ist
		id := ist.id()
		for _, other := range h.meshClusters() {
			what := "cluster " + other
			if other == ist.clusterID() {
				if !ist.external() {
					continue
				}
				// Its config cluster: listed by its cluster ID whatever
				// API server it reads; the probe checks tell which.
				what = "its config cluster " + other
			}
			other := other
			cs = append(cs, check{id + " sees " + what + " synced", func(ctx context.Context) (bool, string) {
				var cl []struct {
					ID         string `json:"id"`
					SyncStatus string `json:"syncStatus"`
				}
				if err := ist.debug(ctx, "clusterz", &cl); err != nil {
					return false, err.Error()
				}
				var seen []string
				for _, x := range cl {
					if x.ID == other && x.SyncStatus == "synced" {
						return true, ""
					}
					seen = append(seen, x.ID+"="+x.SyncStatus)
				}
				return false, "remote clusters it reports: [" + strings.Join(seen, " ") + "]"
			}})
		}
		cs = append(cs, check{id + " runs with mesh ID " + h.fleet.Spec.Mesh.ID, func(ctx context.Context) (bool, string) {
			var m map[string]any
			if err := ist.debug(ctx, "mesh", &m); err != nil {
				return false, err.Error()
			}
			dc, _ := m["defaultConfig"].(map[string]any)
			got, _ := dc["meshId"].(string)
			return got == h.fleet.Spec.Mesh.ID, "its mesh config has defaultConfig.meshId " + fmt.Sprintf("%q", got)
		}})
		for _, n := range h.meshClusters() {
			n := n
			fc := h.fleet.Spec.Clusters[n]
			cs = append(cs, check{fmt.Sprintf("%s has cluster %s's probe endpoint with cluster ID %s and network %s", id, n, n, fc.Network), func(ctx context.Context) (bool, string) {
				return ist.hasProbe(ctx, h, n, fc.Network)
			}})
		}
		for _, n := range h.names {
			if ist.external() && h.fleet.Spec.Clusters[n].Role == "external-controlplane" {
				// An external istiod that took the cluster it runs in for
				// its config cluster (istio-kubeconfig empty when it
				// started) shows that cluster's probe endpoint.
				n := n
				cs = append(cs, check{fmt.Sprintf("%s does not read cluster %s, outside the mesh", id, n), func(ctx context.Context) (bool, string) {
					return ist.lacksProbe(ctx, h, n)
				}})
			}
		}
		if multiNetwork {
			for _, n := range h.names {
				fc := h.fleet.Spec.Clusters[n]
				if fc.EastWestGateway == nil || fc.EastWestGateway.Address == "" {
					continue
				}
				addr, network := fc.EastWestGateway.Address, fc.Network
				cs = append(cs, check{fmt.Sprintf("%s knows network %s's gateway at %s", id, network, addr), func(ctx context.Context) (bool, string) {
					var gws []map[string]any
					if err := ist.debug(ctx, "networkz", &gws); err != nil {
						return false, err.Error()
					}
					var seen []string
					for _, g := range gws {
						if fmt.Sprint(g["Network"]) == network && (fmt.Sprint(g["Addr"]) == addr || slices.Contains(h.resolveName(ctx, addr), fmt.Sprint(g["Addr"]))) {
							return true, ""
						}
						seen = append(seen, fmt.Sprintf("%v@%v:%v(cluster %v)", g["Network"], g["Addr"], g["Port"], g["Cluster"]))
					}
					return false, "its network gateways: [" + strings.Join(seen, " ") + "]"
				}})
			}
		}
	}
	for _, n := range h.names {
		c := h.clusters[n]
		cs = append(cs, check{"webhooks of " + n + " have a caBundle (or call a gateway with a publicly trusted certificate)", func(ctx context.Context) (bool, string) { return h.webhooksPatched(ctx, c) }})
		cs = append(cs, check{"injector values of " + n + " carry mesh ID " + h.fleet.Spec.Mesh.ID, func(ctx context.Context) (bool, string) {
			return h.injectorMeshID(ctx, c)
		}})
		if h.fleet.Spec.Clusters[n].Role == "remote" {
			cs = append(cs, check{"remote " + n + "'s remotePilotAddress is the address its primary's gateway got", func(ctx context.Context) (bool, string) {
				return h.remotePilotAddress(ctx, c)
			}})
			if p := h.clusters[c.fc.ControlPlane]; p != nil && p.fc.Role == "external-controlplane" {
				cs = append(cs, check{"webhooks of " + n + " call the external istiod at an address " + p.name + "'s gateway got, with the CA bundle it serves", func(ctx context.Context) (bool, string) {
					return h.externalWebhooks(ctx, c, p)
				}})
			}
		}
	}
	cs = append(cs, h.tagChecks()...)
	cs = append(cs, check{"every istiod and every cluster's istio-ca-root-cert carry the same root", func(ctx context.Context) (bool, string) {
		return h.sameRoot(ctx, primaries)
	}})

	deadline := time.Now().Add(h.checkTimeout)
	passed := make([]bool, len(cs))
	msgs := make([]string, len(cs))
	for {
		all := true
		for i, ch := range cs {
			if passed[i] {
				continue
			}
			passed[i], msgs[i] = ch.fn(ctx)
			all = all && passed[i]
		}
		if all || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(2 * time.Second)
	}
	for i, ch := range cs {
		if passed[i] {
			h.record(Result{OK: true, Name: ch.name})
		} else {
			h.record(Result{Name: ch.name, Msg: msgs[i] + fmt.Sprintf(" (within %s)", h.checkTimeout)})
		}
	}
}

func sortedKeys(m map[string]string) []string {
	var k []string
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}

func (h *Harness) networks() int {
	n := map[string]bool{}
	for _, c := range h.fleet.Spec.Clusters {
		n[c.Network] = true
	}
	return len(n)
}

func (h *Harness) istiodList() []*Istiod {
	var out []*Istiod
	for _, n := range h.names {
		c := h.clusters[n]
		c.mu.Lock()
		for _, k := range keysOf(c.istiods) {
			out = append(out, c.istiods[k])
		}
		c.mu.Unlock()
	}
	return out
}

func keysOf[V any](m map[string]V) []string {
	var k []string
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}

func (ist *Istiod) debug(ctx context.Context, what string, into any) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ist.http+"/debug/"+what, nil)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("/debug/%s: %v", what, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("/debug/%s: %d %s", what, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if err := json.Unmarshal(b, into); err != nil {
		return fmt.Errorf("/debug/%s: %v", what, err)
	}
	return nil
}

// probeIP is the address of cluster i's probe endpoint.
func probeIP(i int) string { return fmt.Sprintf("10.244.%d.7", i+1) }

// probeShards returns the istiod's endpoint shards and the address of
// cluster n's probe endpoint.
func (ist *Istiod) probeShards(ctx context.Context, h *Harness, n string) (map[string]map[string]any, string, error) {
	var shards map[string]map[string]any
	if err := ist.debug(ctx, "endpointShardz", &shards); err != nil {
		return nil, "", err
	}
	return shards, probeIP(slices.Index(h.names, n)), nil
}

// probe creates, in every cluster, Service converge-probe/probe and an
// EndpointSlice with one endpoint of that cluster's own address.
func (h *Harness) probe(ctx context.Context) {
	for i, n := range h.names {
		c := h.clusters[n]
		_, _ = c.kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: probeNS}}, metav1.CreateOptions{})
		_, _ = c.kc.CoreV1().Services(probeNS).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "probe"},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
		}, metav1.CreateOptions{})
		_, err := c.kc.DiscoveryV1().EndpointSlices(probeNS).Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: "probe-" + n, Labels: map[string]string{"kubernetes.io/service-name": "probe"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{probeIP(i)}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8080)), Protocol: ptr.To(corev1.ProtocolTCP)}},
		}, metav1.CreateOptions{})
		if err != nil {
			h.logf("cluster %s: probe: %v", n, err)
		}
	}
}

// hasProbe: the istiod's registry has the probe Service with cluster n's
// VIP, and its endpoint shards hold n's probe endpoint with cluster ID n
// and the network n declares.
func (ist *Istiod) hasProbe(ctx context.Context, h *Harness, n, network string) (bool, string) {
	var svcs []map[string]any
	if err := ist.debug(ctx, "registryz", &svcs); err != nil {
		return false, err.Error()
	}
	host := ""
	for _, s := range svcs {
		hn := fmt.Sprint(s["hostname"])
		if strings.HasPrefix(hn, "probe."+probeNS+".svc.") {
			host = hn
			vips, _ := json.Marshal(s["clusterVIPs"])
			if !strings.Contains(string(vips), `"`+n+`"`) {
				return false, "its registry has " + hn + " without cluster " + n + ": clusterVIPs " + string(vips)
			}
		}
	}
	if host == "" {
		return false, "its registry has no probe." + probeNS + " Service"
	}
	shards, ip, err := ist.probeShards(ctx, h, n)
	if err != nil {
		return false, err.Error()
	}
	byNS := shards[host]
	if byNS == nil {
		return false, "its endpoint shards have no " + host
	}
	var found []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if addrs, ok := field(x, "addresses"); ok && strings.Contains(fmt.Sprint(addrs), ip) {
				net, _ := field(x, "network")
				cid := ""
				if loc, ok := field(x, "locality"); ok {
					if lm, ok := loc.(map[string]any); ok {
						c, _ := field(lm, "clusterid")
						cid = fmt.Sprint(c)
					}
				}
				found = append(found, fmt.Sprintf("cluster=%s network=%v", cid, net))
				return
			}
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	walk(byNS)
	want := fmt.Sprintf("cluster=%s network=%s", n, network)
	for _, f := range found {
		if f == want {
			return true, ""
		}
	}
	if len(found) == 0 {
		return false, "its endpoint shards of " + host + " have no endpoint " + ip + " from cluster " + n
	}
	return false, "endpoint " + ip + " from cluster " + n + " has " + strings.Join(found, ", ") + ", want " + want
}

func field(m map[string]any, name string) (any, bool) {
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

func (h *Harness) webhooksPatched(ctx context.Context, c *Cluster) (bool, string) {
	var missing []string
	total := 0
	var addrs map[string][]lbAddr
	// unpatched: a webhook without caBundle, unless it calls a URL at a
	// gateway whose certificate the API server's system roots trust for
	// the URL's host (a publicly trusted certificate, where the output
	// leaves the caBundle out on purpose; dns.go).
	unpatched := func(cc admv1.WebhookClientConfig) bool {
		if len(cc.CABundle) > 0 {
			return false
		}
		if cc.URL == nil {
			return true
		}
		u, err := url.Parse(*cc.URL)
		if err != nil {
			return true
		}
		port := u.Port()
		if port == "" {
			port = "443"
		}
		if addrs == nil {
			addrs = h.lbAddresses(ctx)
		}
		return h.urlAnswers(ctx, addrs, u.Hostname(), port, nil) != ""
	}
	if l, err := c.kc.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{}); err == nil {
		for _, w := range l.Items {
			for _, x := range w.Webhooks {
				total++
				if unpatched(x.ClientConfig) {
					missing = append(missing, "MutatingWebhookConfiguration/"+w.Name+" "+x.Name)
				}
			}
		}
	}
	if l, err := c.kc.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{}); err == nil {
		for _, w := range l.Items {
			for _, x := range w.Webhooks {
				total++
				if unpatched(x.ClientConfig) {
					missing = append(missing, "ValidatingWebhookConfiguration/"+w.Name+" "+x.Name)
				}
			}
		}
	}
	if total == 0 {
		return false, "the cluster has no admission webhook (no injection webhook was installed)"
	}
	if len(missing) > 0 {
		return false, "no caBundle in " + strings.Join(missing, ", ")
	}
	return true, ""
}

func (h *Harness) injectorMeshID(ctx context.Context, c *Cluster) (bool, string) {
	l, err := c.kc.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err.Error()
	}
	// The injector of an external control plane's own istiod serves only
	// that cluster's ingress gateway, outside the mesh (Istio's guide gives
	// it no meshID either).
	outside := map[string]bool{}
	for _, ist := range h.istiodList() {
		if ist.cluster == c && h.outsideMesh(ist) {
			outside[ist.ns] = true
		}
	}
	n := 0
	for _, cm := range l.Items {
		if !strings.HasPrefix(cm.Name, "istio-sidecar-injector") || cm.Data["values"] == "" || outside[cm.Namespace] {
			continue
		}
		n++
		var v struct {
			Global struct {
				MeshID string `json:"meshID"`
			} `json:"global"`
		}
		if err := yaml.Unmarshal([]byte(cm.Data["values"]), &v); err != nil {
			return false, cm.Name + ": " + err.Error()
		}
		if v.Global.MeshID != h.fleet.Spec.Mesh.ID {
			return false, fmt.Sprintf("ConfigMap %s/%s has global.meshID %q", cm.Namespace, cm.Name, v.Global.MeshID)
		}
	}
	if n == 0 && h.fleet.Spec.Clusters[c.name].Role != "remote" {
		return false, "no istio-sidecar-injector ConfigMap"
	}
	return true, ""
}

// remotePilotAddress: the host of every URL webhook in the remote (the
// chart writes remotePilotAddress there) is an address a LoadBalancer
// Service of its primary really got, exposing the webhook's port.
func (h *Harness) remotePilotAddress(ctx context.Context, c *Cluster) (bool, string) {
	p := h.clusters[c.fc.ControlPlane]
	if p == nil {
		return false, "its controlPlane " + c.fc.ControlPlane + " is not a fleet cluster"
	}
	// Where the remote's webhooks call: URL hosts, or the endpoint
	// addresses of a selector-less Service (the remote profile's istiod
	// Service, whose EndpointSlice holds remotePilotAddress).
	var targets []string
	if l, err := c.kc.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{}); err == nil {
		for _, w := range l.Items {
			for _, x := range w.Webhooks {
				if x.ClientConfig.URL != nil {
					if u, err := url.Parse(*x.ClientConfig.URL); err == nil {
						targets = append(targets, u.Hostname())
					}
				}
				if s := x.ClientConfig.Service; s != nil {
					svc, err := c.kc.CoreV1().Services(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
					if err != nil || len(svc.Spec.Selector) > 0 {
						continue
					}
					sl, _ := c.kc.DiscoveryV1().EndpointSlices(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + s.Name})
					if sl != nil {
						for _, e := range sl.Items {
							for _, ep := range e.Endpoints {
								targets = append(targets, ep.Addresses...)
							}
						}
					}
					if svc.Spec.ExternalName != "" {
						targets = append(targets, svc.Spec.ExternalName)
					}
				}
			}
		}
	}
	if len(targets) == 0 {
		return false, "the remote has no injection webhook that calls an address outside it"
	}
	svcs, err := p.kc.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err.Error()
	}
	got := map[string]bool{}
	var gotList []string
	for _, s := range svcs.Items {
		for _, ing := range s.Status.LoadBalancer.Ingress {
			a := ing.IP + ing.Hostname
			got[a] = true
			gotList = append(gotList, s.Namespace+"/"+s.Name+"="+a)
		}
	}
	for _, t := range targets {
		ok := false
		for _, a := range h.resolveName(ctx, t) {
			ok = ok || got[a]
		}
		if !ok {
			return false, fmt.Sprintf("its injection webhook calls %s (the owner's DNS resolves it to %v), but the load balancers of %s got [%s]", t, h.resolveName(ctx, t), p.name, strings.Join(gotList, " "))
		}
	}
	return true, ""
}

// istioNamespaces are the namespaces of the cluster's Istio installs that
// exist: istio-system, and external-istiod, which an external control
// plane's clusters use instead (or beside it).
func (h *Harness) istioNamespaces(ctx context.Context, c *Cluster) []string {
	var out []string
	for _, ns := range []string{"istio-system", "external-istiod"} {
		if _, err := c.kc.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err == nil {
			out = append(out, ns)
		}
	}
	if len(out) == 0 {
		out = []string{"istio-system"} // reported missing below
	}
	return out
}

func (h *Harness) sameRoot(ctx context.Context, istiods []*Istiod) (bool, string) {
	roots := map[string][]string{}
	for _, n := range h.names {
		c := h.clusters[n]
		for _, ns := range append(h.istioNamespaces(ctx, c), probeNS) {
			cm, err := c.kc.CoreV1().ConfigMaps(ns).Get(ctx, "istio-ca-root-cert", metav1.GetOptions{})
			if err != nil {
				return false, fmt.Sprintf("cluster %s has no ConfigMap %s/istio-ca-root-cert", n, ns)
			}
			r := cm.Data["root-cert.pem"]
			roots[fingerprint(r)] = append(roots[fingerprint(r)], n+":"+ns)
		}
	}
	for _, ist := range istiods {
		conn, err := tls.Dial("tcp", fmt.Sprintf("%s:%d", ist.ip, ist.ports[15012]), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // judged below
		if err != nil {
			return false, fmt.Sprintf("istiod %s/%s: %v", ist.cluster.name, ist.name, err)
		}
		chain := conn.ConnectionState().PeerCertificates
		conn.Close()
		matched := ""
		for fp := range roots {
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM([]byte(rootByFP(fp, h)))
			inter := x509.NewCertPool()
			for _, c := range chain[1:] {
				inter.AddCert(c)
			}
			if _, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
				matched = fp
			}
		}
		if matched == "" {
			matched = "a root no ConfigMap has"
		}
		roots[matched] = append(roots[matched], "istiod "+ist.cluster.name+"/"+ist.name)
	}
	if len(roots) == 1 {
		for fp := range roots {
			if h.ops.usedRoot() && fp != fingerprint(string(h.ops.rootPEM)) {
				return false, "every cluster has root " + fp + ", not the mesh root the operator filled into cacerts"
			}
		}
		return true, ""
	}
	var parts []string
	for _, fp := range keysOf(roots) {
		parts = append(parts, fp+": "+strings.Join(roots[fp], " "))
	}
	return false, fmt.Sprintf("%d roots: %s", len(roots), strings.Join(parts, "; "))
}

var rootPEMs = map[string]string{}

func fingerprint(p string) string {
	b, _ := pem.Decode([]byte(p))
	if b == nil {
		return "none"
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return "unparsable"
	}
	fp := fmt.Sprintf("root %q serial %.8x", c.Subject.CommonName+"/"+strings.Join(c.Subject.Organization, ","), c.SerialNumber.Bytes())
	rootPEMs[fp] = p
	return fp
}

func rootByFP(fp string, _ *Harness) string { return rootPEMs[fp] }

func (o *Operator) usedRoot() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.filledCA
}
