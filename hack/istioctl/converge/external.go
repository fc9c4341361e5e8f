package main

// The external control plane (Istio's "Install Istio with an external
// control plane" guide): the cluster of role external-controlplane runs
// an istiod of its own in istio-system, outside the mesh (it only injects
// the ingress gateway that exposes the next one), and the external istiod
// in external-istiod, which runs as its config cluster (CLUSTER_ID), reads
// that cluster through the kubeconfig Secret istio-kubeconfig and its own
// cluster's remote secrets through its in-cluster account. The config
// cluster's and the further remotes' webhooks call it through the ingress
// gateway's address.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	admv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// outsideMesh: the istiod an external control plane's cluster runs for
// itself. It serves no mesh cluster, so only the one-root check judges it
// (it injects the ingress gateway, which must trust the external istiod).
func (h *Harness) outsideMesh(ist *Istiod) bool {
	return ist.cluster.fc.Role == "external-controlplane" && !ist.external()
}

// meshClusters are the clusters of the mesh's data plane: every cluster
// but an external control plane's.
func (h *Harness) meshClusters() []string {
	var out []string
	for _, n := range h.names {
		if h.fleet.Spec.Clusters[n].Role != "external-controlplane" {
			out = append(out, n)
		}
	}
	return out
}

// externalIstiod is the external istiod running in cluster p (the first by
// namespace and name when there are several).
func (h *Harness) externalIstiod(p *Cluster) *Istiod {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range keysOf(p.istiods) {
		if ist := p.istiods[k]; ist.external() {
			return ist
		}
	}
	return nil
}

// lacksProbe: cluster n's probe endpoint is not in the istiod's registry.
func (ist *Istiod) lacksProbe(ctx context.Context, h *Harness, n string) (bool, string) {
	shards, ip, err := ist.probeShards(ctx, h, n)
	if err != nil {
		return false, err.Error()
	}
	for host, byNS := range shards {
		if strings.HasPrefix(host, "probe."+probeNS+".svc.") && strings.Contains(fmt.Sprint(byNS), ip) {
			return false, fmt.Sprintf("its endpoint shards of %s hold %s, cluster %s's probe endpoint: it reads cluster %s as a mesh cluster", host, ip, n, n)
		}
	}
	return true, ""
}

// externalWebhooks: every admission webhook of remote c calls an address
// that a load balancer of its external control plane's cluster p got, on a
// port it exposes, and its caBundle verifies the certificate the external
// istiod serves webhooks with (for a Service reference, for the name the
// API server asks for; for a URL, TLS ends at the gateway, whose
// certificate the harness does not issue, so only the chain to the
// istiod's root is verified).
func (h *Harness) externalWebhooks(ctx context.Context, c, p *Cluster) (bool, string) {
	ist := h.externalIstiod(p)
	if ist == nil {
		return false, "no external istiod runs in cluster " + p.name
	}
	conn, err := tls.Dial("tcp", net.JoinHostPort(ist.ip, strconv.Itoa(ist.ports[15017])), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // verified below against each caBundle
	if err != nil {
		return false, ist.id() + " webhook port: " + err.Error()
	}
	chain := conn.ConnectionState().PeerCertificates
	conn.Close()
	if len(chain) == 0 {
		return false, ist.id() + " serves no certificate on its webhook port"
	}
	type hook struct {
		id string
		cc admv1.WebhookClientConfig
	}
	var hooks []hook
	if l, err := c.kc.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{}); err == nil {
		for _, w := range l.Items {
			for _, x := range w.Webhooks {
				hooks = append(hooks, hook{"MutatingWebhookConfiguration/" + w.Name + " " + x.Name, x.ClientConfig})
			}
		}
	}
	if l, err := c.kc.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{}); err == nil {
		for _, w := range l.Items {
			for _, x := range w.Webhooks {
				hooks = append(hooks, hook{"ValidatingWebhookConfiguration/" + w.Name + " " + x.Name, x.ClientConfig})
			}
		}
	}
	if len(hooks) == 0 {
		return false, "the cluster has no admission webhook"
	}
	addrs := h.lbAddresses(ctx)
	var bad []string
	for _, w := range hooks {
		targets, serverName, why := h.webhookTargets(ctx, c, w.cc)
		if why != "" {
			bad = append(bad, w.id+": "+why)
			continue
		}
		for _, t := range targets {
			host, port, _ := net.SplitHostPort(t)
			ok := false
			for _, a := range h.resolveName(ctx, host) {
				ok = ok || exposedBy(addrs[a], p, port)
			}
			if !ok {
				bad = append(bad, fmt.Sprintf("%s calls %s (the owner's DNS resolves it to %v), which no load balancer of %s got with port %s", w.id, t, h.resolveName(ctx, host), p.name, port))
			}
		}
		if len(w.cc.CABundle) == 0 {
			// A publicly trusted gateway certificate (the URL's host
			// name): judged at the gateway, with the system roots.
			if w.cc.URL == nil {
				bad = append(bad, w.id+" has no caBundle")
			} else if u, err := url.Parse(*w.cc.URL); err == nil {
				port := u.Port()
				if port == "" {
					port = "443"
				}
				if why := h.urlAnswers(ctx, addrs, u.Hostname(), port, nil); why != "" {
					bad = append(bad, w.id+" "+why)
				}
			}
			continue
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(w.cc.CABundle) {
			bad = append(bad, w.id+"'s caBundle holds no certificate")
			continue
		}
		inter := x509.NewCertPool()
		for _, x := range chain[1:] {
			inter.AddCert(x)
		}
		if _, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: serverName}); err != nil {
			bad = append(bad, fmt.Sprintf("%s's caBundle does not verify the certificate %s serves: %v", w.id, ist.id(), err))
		}
	}
	if len(bad) > 0 {
		return false, strings.Join(bad, "; ")
	}
	return true, ""
}

// webhookTargets are the host:port addresses a webhook's client config
// makes the API server call, and the name it verifies the certificate for
// ("" for a URL: checked at the gateway, see externalWebhooks).
func (h *Harness) webhookTargets(ctx context.Context, c *Cluster, cc admv1.WebhookClientConfig) ([]string, string, string) {
	if cc.URL != nil {
		u, err := url.Parse(*cc.URL)
		if err != nil {
			return nil, "", err.Error()
		}
		port := u.Port()
		if port == "" {
			port = "443"
		}
		return []string{net.JoinHostPort(u.Hostname(), port)}, "", ""
	}
	s := cc.Service
	if s == nil {
		return nil, "", "neither URL nor Service"
	}
	want := int32(443)
	if s.Port != nil {
		want = *s.Port
	}
	svc, err := c.kc.CoreV1().Services(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
	if err != nil {
		return nil, "", "Service " + s.Namespace + "/" + s.Name + ": " + err.Error()
	}
	serverName := s.Name + "." + s.Namespace + ".svc"
	if len(svc.Spec.Selector) > 0 {
		return nil, "", "Service " + s.Namespace + "/" + s.Name + " selects pods of this cluster, not the external istiod"
	}
	if svc.Spec.ExternalName != "" {
		return []string{net.JoinHostPort(svc.Spec.ExternalName, strconv.Itoa(int(want)))}, serverName, ""
	}
	var sport string
	for _, p := range svc.Spec.Ports {
		if p.Port == want {
			sport = p.Name
		}
	}
	sl, err := c.kc.DiscoveryV1().EndpointSlices(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + s.Name})
	if err != nil || len(sl.Items) == 0 {
		return nil, "", "Service " + s.Namespace + "/" + s.Name + " has no selector and no EndpointSlice"
	}
	var out []string
	for _, e := range sl.Items {
		port := ""
		for _, p := range e.Ports {
			if p.Name != nil && *p.Name == sport && p.Port != nil {
				port = strconv.Itoa(int(*p.Port))
			}
		}
		for _, ep := range e.Endpoints {
			for _, a := range ep.Addresses {
				out = append(out, net.JoinHostPort(a, port))
			}
		}
	}
	if len(out) == 0 {
		return nil, "", "Service " + s.Namespace + "/" + s.Name + "'s EndpointSlices have no address"
	}
	return out, serverName, ""
}

// exposedBy: one of these load balancer addresses belongs to a Service of
// cluster p with the port.
func exposedBy(as []lbAddr, p *Cluster, port string) bool {
	for _, a := range as {
		if a.cluster != p {
			continue
		}
		for _, sp := range a.svc.Spec.Ports {
			if strconv.Itoa(int(sp.Port)) == port {
				return true
			}
		}
	}
	return false
}
