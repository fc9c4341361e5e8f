package main

// The owner's DNS and the public CA: what a fleet with host-named gateways
// (README "Host-named gateways", "External control plane") relies on
// outside its clusters.
//
// DNS: a gateway the fleet declares by host name (eastWestGateway.address,
// istiodGateway.address) is reached through a record its owner keeps,
// pointing the name at the load balancer the gateway's Service got. The
// load balancer stand-in gives that Service an address as before (an
// arbitrary one when nothing binds it: on EKS the NLB gets one too,
// behind its own host name); the record is the fleet's name -> the
// addresses of the LoadBalancer Services of the declaring cluster that
// expose the gateway's port (15443 for an east-west gateway, 15012 for an
// istiod gateway). Only the fleet's own names resolve, and only to those
// addresses: a URL or remotePilotAddress with another name, or a name
// whose cluster has no such gateway, resolves to nothing and fails.
// Istio itself resolves load balancer host names only through the DNS
// servers of /etc/resolv.conf (pilot/pkg/model/network.go), and the
// Services here carry addresses, so istiod needs no record; the API
// servers call a host name only through a gateway, which does not run
// here, so the stand-ins and the checks resolve it (resolveName).
//
// Public CA: a gateway certificate the fleet has issued by a named issuer
// (certificate.issuer) is meant to be publicly trusted: the webhooks are
// left without caBundle and the API servers verify it with their system
// roots. The harness plays that CA: the issuer holds the public root
// (certmanager.go startPublicIssuers), every API server has it as its
// system roots (SSL_CERT_FILE), and a webhook without caBundle passes only
// when the certificate the gateway terminates its URL with verifies
// against it for the URL's host name (gatewayCert).

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// publicCA is the CA the harness plays for publicly trusted certificates.
type publicCA struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
	pem  []byte
	file string // the root as a PEM file: the API servers' SSL_CERT_FILE
}

func (h *Harness) publicCA() *publicCA {
	h.publicOnce.Do(func() {
		k, c, p, err := newCA("meshfleet converge public root")
		if err != nil {
			panic(err)
		}
		f := filepath.Join(h.work, "public-roots.pem")
		if err := os.WriteFile(f, p, 0o644); err != nil {
			panic(err)
		}
		h.public = &publicCA{key: k, cert: c, pem: p, file: f}
	})
	return h.public
}

// resolveName is the owner's DNS: the addresses host resolves to (host
// itself for an IP address; nothing for a name the fleet does not declare
// or whose gateway has no load balancer address yet).
func (h *Harness) resolveName(ctx context.Context, host string) []string {
	if net.ParseIP(host) != nil {
		return []string{host}
	}
	var out []string
	for _, n := range h.names {
		c := h.clusters[n]
		for _, g := range []struct {
			gw   *FleetGateway
			port int32
		}{{c.fc.EastWestGateway, 15443}, {c.fc.IstiodGateway, 15012}} {
			if g.gw == nil || !strings.EqualFold(g.gw.Address, host) {
				continue
			}
			svcs, err := c.kc.CoreV1().Services("").List(ctx, metav1.ListOptions{})
			if err != nil {
				continue
			}
			for _, s := range svcs.Items {
				if s.Spec.Type != corev1.ServiceTypeLoadBalancer || !hasPort(s, g.port) {
					continue
				}
				for _, ing := range s.Status.LoadBalancer.Ingress {
					if ing.IP != "" {
						out = append(out, ing.IP)
					}
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func hasPort(s corev1.Service, port int32) bool {
	for _, p := range s.Spec.Ports {
		if p.Port == port {
			return true
		}
	}
	return false
}

// lbFor: the load balancers of the fleet behind host (resolved by the
// owner's DNS) that expose port.
func (h *Harness) lbFor(ctx context.Context, addrs map[string][]lbAddr, host, port string) []lbAddr {
	var out []lbAddr
	for _, a := range h.resolveName(ctx, host) {
		for _, lb := range addrs[a] {
			for _, p := range lb.svc.Spec.Ports {
				if strconv.Itoa(int(p.Port)) == port {
					out = append(out, lb)
					break
				}
			}
		}
	}
	return out
}

var gatewayGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "gateways"}

// gatewayCert says why a caller that trusts roots cannot verify host on
// the gateway behind lb ("" when it can): an Istio Gateway of lb's cluster
// that selects lb's pods terminates TLS on port for host with the
// credentialName Secret in lb's namespace (where the gateway pods read
// it), and that certificate verifies against roots for host. A server
// that passes TLS through is not judged here (the caller then verifies the
// istiod behind it). found reports whether some server terminates TLS.
func (h *Harness) gatewayCert(ctx context.Context, lb lbAddr, host, port string, roots *x509.CertPool) (found bool, why string) {
	l, err := lb.cluster.dyn.Resource(gatewayGVR).Namespace("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, ""
	}
	for _, gw := range l.Items {
		sel, _, _ := unstructured.NestedStringMap(gw.Object, "spec", "selector")
		if len(sel) == 0 || !labels.SelectorFromSet(sel).Matches(labels.Set(lb.svc.Spec.Selector)) {
			continue
		}
		servers, _, _ := unstructured.NestedSlice(gw.Object, "spec", "servers")
		for _, sv := range servers {
			m, _ := sv.(map[string]any)
			pm, _ := m["port"].(map[string]any)
			if fmt.Sprint(pm["number"]) != port || !hostMatches(m["hosts"], host) {
				continue
			}
			tlsm, _ := m["tls"].(map[string]any)
			mode, _ := tlsm["mode"].(string)
			cred, _ := tlsm["credentialName"].(string)
			if mode != "SIMPLE" && mode != "MUTUAL" {
				continue
			}
			found = true
			sec, err := lb.cluster.kc.CoreV1().Secrets(lb.svc.Namespace).Get(ctx, cred, metav1.GetOptions{})
			if err != nil {
				return true, fmt.Sprintf("Gateway %s/%s terminates TLS for %s:%s with Secret %s/%s: %v", gw.GetNamespace(), gw.GetName(), host, port, lb.svc.Namespace, cred, err)
			}
			var chain []*x509.Certificate
			rest := sec.Data["tls.crt"]
			for {
				var b *pem.Block
				b, rest = pem.Decode(rest)
				if b == nil {
					break
				}
				if x, err := x509.ParseCertificate(b.Bytes); err == nil {
					chain = append(chain, x)
				}
			}
			if len(chain) == 0 {
				return true, fmt.Sprintf("Secret %s/%s of cluster %s holds no certificate", lb.svc.Namespace, cred, lb.cluster.name)
			}
			inter := x509.NewCertPool()
			for _, x := range chain[1:] {
				inter.AddCert(x)
			}
			if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host}); err != nil {
				return true, fmt.Sprintf("the certificate in Secret %s/%s of cluster %s does not verify for %s: %v", lb.svc.Namespace, cred, lb.cluster.name, host, err)
			}
			return true, ""
		}
	}
	return false, ""
}

// hostMatches: a Gateway server's hosts (each [namespace/]host, "*" or
// "*.suffix") admit host.
func hostMatches(hosts any, host string) bool {
	l, _ := hosts.([]any)
	for _, x := range l {
		s := fmt.Sprint(x)
		if i := strings.Index(s, "/"); i >= 0 {
			s = s[i+1:]
		}
		if s == "*" || strings.EqualFold(s, host) || (strings.HasPrefix(s, "*.") && strings.HasSuffix(strings.ToLower(host), strings.ToLower(s[1:]))) {
			return true
		}
	}
	return false
}
