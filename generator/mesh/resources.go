package mesh

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/meshfleet/meshfleet/generator/fleet"
)

// IstioNamespace is where istiod, its secrets and the gateways live.
const IstioNamespace = "istio-system"

// ReaderServiceAccount is the service account other clusters' istiod
// read a cluster with, and readerTokenSecret its token.
const (
	ReaderServiceAccount = "meshfleet-reader"
	readerTokenSecret    = ReaderServiceAccount + "-token"
)

// Labels and annotations Istio reads.
const (
	labelNetwork              = "topology.istio.io/network"
	annotationControlPlanes   = "topology.istio.io/controlPlaneClusters"
	labelMultiCluster         = "istio/multiCluster"
	annotationCluster         = "networking.istio.io/cluster"
	annotationServiceAccount  = "kubernetes.io/service-account.name"
	annotationPlaceholder     = "meshfleet.dev/placeholder"
	annotationSecretKeys      = "meshfleet.dev/secret-keys"
	annotationAPIServer       = "meshfleet.dev/api-server"
	eastWestGatewayName       = "istio-eastwestgateway"
	eastWestGatewaySelector   = "eastwestgateway"
	externalSecretsAPIVersion = "external-secrets.io/v1"
)

// keepFilledIn are the annotations that stop Flux and Argo CD from ever
// overwriting a secret an operator fills in by hand. Flux creates the
// object only if it is absent and never applies it again; Argo CD applies
// it server-side, so it owns only the fields the placeholder sets (no
// data). Both still prune it when it leaves the output: a cluster that
// leaves the fleet is detached from every primary.
var keepFilledIn = map[string]any{
	"kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent",
	"argocd.argoproj.io/sync-options": "ServerSideApply=true",
}

// neverDeleted are the annotations of what must outlive the output that
// made it: the istio-system Namespace (deleting it deletes everything in
// it) and the CA (a new one means restarting every workload). Neither
// Flux nor Argo CD prunes them, and Argo CD keeps them when the
// Application is deleted.
var neverDeleted = map[string]any{
	"kustomize.toolkit.fluxcd.io/prune": "disabled",
	"argocd.argoproj.io/sync-options":   "Prune=false,Delete=false",
}

// neverOverwrittenNorDeleted combines both, for the cacerts placeholder.
var neverOverwrittenNorDeleted = map[string]any{
	"kustomize.toolkit.fluxcd.io/ssa":   "IfNotPresent",
	"kustomize.toolkit.fluxcd.io/prune": "disabled",
	"argocd.argoproj.io/sync-options":   "ServerSideApply=true,Prune=false,Delete=false",
}

// AnnotationWaitForKeys marks a Secret that is not ready until it holds
// one of the listed sets of keys, each non-empty: sets separated by "|",
// keys by ",". The Flux health check expressions and the Argo CD health
// check meshfleet renders read it, so the stage holding the Secret, and
// every stage after it, waits until an operator filled it in.
const AnnotationWaitForKeys = "meshfleet.dev/wait-for-keys"

// CAKeySets are the two layouts of istiod's plugged-in CA bundle: istiod's
// own, and kubernetes.io/tls (chosen when tls.crt exists; ca.crt is the
// root), which cert-manager writes.
const CAKeySets = "ca-cert.pem,ca-key.pem,root-cert.pem,cert-chain.pem|tls.crt,tls.key,ca.crt"

// caKeys are the keys of istiod's plugged-in CA bundle.
const caKeys = "ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem"

func meta(name string, extra ...map[string]any) map[string]any {
	m := map[string]any{"name": name, "namespace": IstioNamespace}
	for _, e := range extra {
		for k, v := range e {
			m[k] = v
		}
	}
	return m
}

func merged(ms ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func namespace(c *fleet.Cluster) Object {
	md := map[string]any{
		"name":   IstioNamespace,
		"labels": map[string]any{labelNetwork: c.Network},
	}
	annotations := merged(neverDeleted)
	if c.Role == fleet.Remote {
		annotations[annotationControlPlanes] = c.ControlPlane
	}
	md["annotations"] = annotations
	return Object{"apiVersion": "v1", "kind": "Namespace", "metadata": md}
}

// caCerts is the shared root of trust: a cert-manager Certificate, a
// Secret placeholder the operator fills, or an ExternalSecret that fills
// it from the store.
func caCerts(f *fleet.Fleet, c *fleet.Cluster) Object {
	if cm := f.CertManager(); cm != nil {
		return caCertificate(f, c, cm)
	}
	s := f.Spec.Secrets
	if s.Provider == fleet.ProviderExternalSecrets {
		var data []any
		for _, k := range []string{"ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"} {
			data = append(data, map[string]any{
				"secretKey": k,
				"remoteRef": map[string]any{"key": fmt.Sprintf("%s/%s/cacerts", s.KeyPrefix, c.Name), "property": k},
			})
		}
		return externalSecret(s, "cacerts", map[string]any{
			"name":           "cacerts",
			"creationPolicy": "Orphan", // deleting the ExternalSecret must not take the CA away from istiod
			"deletionPolicy": "Retain",
		}, data)
	}
	return Object{
		"apiVersion": "v1",
		"kind":       "Secret",
		"metadata": meta("cacerts", map[string]any{"annotations": merged(neverOverwrittenNorDeleted, map[string]any{
			annotationPlaceholder: "intermediate CA of cluster " + c.Name + ", signed by the mesh root; root-cert.pem is the same in every cluster. The control plane waits until it is filled: istiod that starts without it signs with a self-made root",
			annotationSecretKeys:  caKeys,
			AnnotationWaitForKeys: CAKeySets,
		})}),
	}
}

// caCertificate has cert-manager issue cluster c's intermediate CA from the
// mesh root issuer into Secret cacerts, which istiod reads in the
// kubernetes.io/tls layout: tls.crt and tls.key sign workload
// certificates, ca.crt (the issuer's CA, the mesh root) is the root of
// trust. The Certificate is Ready, and the stage with it, only once the
// Secret holds all three.
func caCertificate(f *fleet.Fleet, c *fleet.Cluster, cm *fleet.CertManager) Object {
	return Object{
		"apiVersion": "cert-manager.io/v1",
		"kind":       "Certificate",
		"metadata":   meta("cacerts", map[string]any{"annotations": merged(neverDeleted)}),
		"spec": map[string]any{
			"secretName":  "cacerts",
			"isCA":        true,
			"commonName":  "Intermediate CA",
			"subject":     map[string]any{"organizations": []any{"Istio"}, "localities": []any{c.Name}},
			"dnsNames":    []any{"istiod." + IstioNamespace + ".svc"},
			"duration":    cm.Duration,
			"renewBefore": cm.RenewBefore,
			"privateKey":  map[string]any{"algorithm": "RSA", "size": 4096},
			"usages":      []any{"cert sign", "crl sign", "digital signature", "key encipherment"},
			"issuerRef":   map[string]any{"name": cm.Issuer.Name, "kind": cm.Issuer.Kind, "group": cm.Issuer.Group},
		},
	}
}

// remoteSecret lets a primary's istiod read cluster c's API server.
func remoteSecret(f *fleet.Fleet, c *fleet.Cluster) Object {
	name := "istio-remote-secret-" + c.Name
	labels := map[string]any{labelMultiCluster: "true"}
	s := f.Spec.Secrets
	if s.Provider == fleet.ProviderExternalSecrets {
		ref := fmt.Sprintf("%s/%s/reader", s.KeyPrefix, c.Name)
		return externalSecret(s, name, map[string]any{
			"name": name,
			"template": map[string]any{
				"engineVersion": "v2",
				"metadata": map[string]any{
					"labels":      labels,
					"annotations": map[string]any{annotationCluster: c.Name},
				},
				"data": map[string]any{c.Name: kubeconfig(c)},
			},
		}, []any{
			map[string]any{"secretKey": "token", "remoteRef": map[string]any{"key": ref, "property": "token"}},
			map[string]any{"secretKey": "ca", "remoteRef": map[string]any{"key": ref, "property": "ca.crt"}},
		})
	}
	return Object{
		"apiVersion": "v1",
		"kind":       "Secret",
		"metadata": meta(name, map[string]any{
			"labels": labels,
			"annotations": merged(keepFilledIn, map[string]any{
				annotationCluster:     c.Name,
				annotationAPIServer:   c.APIServer,
				annotationPlaceholder: fmt.Sprintf("kubeconfig of %s's %s under key %s: istioctl create-remote-secret --name=%s --server=%s --service-account=%s --create-service-account=false --secret-name=%s", c.Name, ReaderServiceAccount, c.Name, c.Name, c.APIServer, ReaderServiceAccount, readerTokenSecret),
				annotationSecretKeys:  c.Name,
			}),
		}),
	}
}

// kubeconfig is the template External Secrets fills with the reader's
// token and CA; istiod accepts only token authentication here.
func kubeconfig(c *fleet.Cluster) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: %[1]s
  cluster:
    server: %[2]s
    certificate-authority-data: "{{ .ca | b64enc }}"
contexts:
- name: %[1]s
  context:
    cluster: %[1]s
    user: %[1]s
current-context: %[1]s
users:
- name: %[1]s
  user:
    token: "{{ .token }}"
`, templateScalar(c.Name), templateScalar(c.APIServer))
}

// templateScalar makes s safe to paste into the kubeconfig template as a
// YAML scalar: as it is when it is plain URL characters (the fleet rules
// allow nothing else in names and API server URLs), else double-quoted,
// with "{{" written so that the template prints it instead of running it.
func templateScalar(s string) string {
	if safeTemplateScalar.MatchString(s) {
		return s
	}
	// Go's ASCII quoting uses only escapes YAML's double quotes share.
	return strings.ReplaceAll(strconv.QuoteToASCII(s), "{{", `{{ "{{" }}`)
}

var safeTemplateScalar = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~:/@!&()*+,;=%\[\]-]*$`)

func externalSecret(s fleet.Secrets, name string, target map[string]any, data []any) Object {
	return Object{
		"apiVersion": externalSecretsAPIVersion,
		"kind":       "ExternalSecret",
		"metadata":   meta(name),
		"spec": map[string]any{
			"refreshInterval": s.RefreshInterval,
			"secretStoreRef":  map[string]any{"kind": s.Store.Kind, "name": s.Store.Name},
			"target":          target,
			"data":            data,
		},
	}
}

// reader is what another cluster's istiod reads this cluster with: a
// service account meshfleet owns, bound to the reader ClusterRole that the
// istiod chart installs (reader rights, plus on a remote the rights to
// patch its webhooks and write istio-ca-root-cert), and a long-lived token
// Kubernetes mints for it, so nothing secret is in git. It is not the
// charts' istio-reader-service-account, which arrives with the control
// plane: this account exists from the first stage on, before anything
// that waits for another cluster, and no installer (Helm, Sail, Argo CD)
// claims it too. The binding may name the ClusterRole before it exists.
// With External Secrets a PushSecret pushes the token and CA to
// <prefix>/<cluster>/reader, where the primaries' ExternalSecrets read it.
func reader(f *fleet.Fleet, c *fleet.Cluster) []Object {
	// The binding is named after the ClusterRole's revision: roleRef is
	// immutable, so a new revision gets a new binding and the old one is
	// pruned.
	suffix := IstioNamespace
	if rev := f.Spec.Istio.Revision; rev != "" {
		suffix = rev + "-" + IstioNamespace
	}
	role := "istio-reader-clusterrole-" + suffix
	objs := []Object{
		{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(ReaderServiceAccount)},
		{
			"apiVersion": "rbac.authorization.k8s.io/v1",
			"kind":       "ClusterRoleBinding",
			"metadata":   map[string]any{"name": ReaderServiceAccount + "-" + suffix},
			"roleRef":    map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
			"subjects":   []any{map[string]any{"kind": "ServiceAccount", "name": ReaderServiceAccount, "namespace": IstioNamespace}},
		},
		{
			"apiVersion": "v1",
			"kind":       "Secret",
			"type":       "kubernetes.io/service-account-token",
			"metadata": meta(readerTokenSecret, map[string]any{
				"annotations": map[string]any{annotationServiceAccount: ReaderServiceAccount},
			}),
		},
	}
	if s := f.Spec.Secrets; s.Provider == fleet.ProviderExternalSecrets {
		key := fmt.Sprintf("%s/%s/reader", s.KeyPrefix, c.Name)
		push := func(secretKey string) map[string]any {
			return map[string]any{"match": map[string]any{
				"secretKey": secretKey,
				"remoteRef": map[string]any{"remoteKey": key, "property": secretKey},
			}}
		}
		objs = append(objs, Object{
			"apiVersion": "external-secrets.io/v1alpha1",
			"kind":       "PushSecret",
			"metadata":   meta(ReaderServiceAccount),
			"spec": map[string]any{
				"refreshInterval": s.RefreshInterval,
				"updatePolicy":    "Replace",
				"deletionPolicy":  "Delete", // a cluster that leaves the fleet takes its token out of the store
				"secretStoreRefs": []any{map[string]any{"kind": s.Store.Kind, "name": s.Store.Name}},
				"selector":        map[string]any{"secret": map[string]any{"name": readerTokenSecret}},
				"data":            []any{push("token"), push("ca.crt")},
			},
		})
	}
	return objs
}

// istioOperator is the common frame of every IstioOperator we write.
func istioOperator(f *fleet.Fleet, name string, spec map[string]any) Object {
	spec["hub"] = f.Spec.Istio.Hub
	spec["tag"] = f.Spec.Istio.Version
	if rev := f.Spec.Istio.Revision; rev != "" {
		spec["revision"] = rev
	}
	return Object{
		"apiVersion": "install.istio.io/v1alpha1",
		"kind":       "IstioOperator",
		"metadata":   meta(name),
		"spec":       spec,
	}
}

// controlPlaneValues are the istiod values of cluster c. The same tree is
// spec.values of the IstioOperator, the values of the Helm istiod release
// and spec.values of the Sail Istio resource, so every installer gets the
// same meshID, clusterName, network and remote settings.
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
	global["remotePilotAddress"] = f.Cluster(c.ControlPlane).EastWestGateway.Address
	values["istiodRemote"] = map[string]any{"injectionPath": fmt.Sprintf("/inject/cluster/%s/net/%s", c.Name, c.Network)}
	return values
}

func meshConfig(f *fleet.Fleet) map[string]any {
	return map[string]any{"trustDomain": f.Spec.Mesh.TrustDomain}
}

func istioOperatorControlPlane(f *fleet.Fleet, c *fleet.Cluster) Object {
	spec := map[string]any{"values": controlPlaneValues(f, c)}
	if c.Role == fleet.Remote {
		spec["profile"] = "remote"
	} else {
		spec["meshConfig"] = meshConfig(f)
	}
	return istioOperator(f, "controlplane", spec)
}

// eastWestGatewayOperator is what samples/multicluster/gen-eastwest-gateway.sh
// prints for --network <network> [--revision <revision>].
func eastWestGatewayOperator(f *fleet.Fleet, c *fleet.Cluster) Object {
	port := func(name string, n int) map[string]any {
		return map[string]any{"name": name, "port": n, "targetPort": n}
	}
	spec := map[string]any{
		"revision": "",
		"profile":  "empty",
		"components": map[string]any{"ingressGateways": []any{map[string]any{
			"name":    eastWestGatewayName,
			"enabled": true,
			"label":   eastWestLabels(c),
			"k8s": map[string]any{
				"env": []any{map[string]any{"name": "ISTIO_META_REQUESTED_NETWORK_VIEW", "value": c.Network}},
				"service": merged(gatewayServiceSpec(c), map[string]any{"ports": []any{
					port("status-port", 15021),
					port("tls", 15443),
					port("tls-istiod", 15012),
					port("tls-webhook", 15017),
				}}),
			},
		}}},
		"values": map[string]any{
			"gateways": map[string]any{"istio-ingressgateway": map[string]any{"injectionTemplate": "gateway"}},
			"global":   map[string]any{"network": c.Network},
		},
	}
	if a := gatewayServiceAnnotations(c); a != nil {
		ig := spec["components"].(map[string]any)["ingressGateways"].([]any)[0].(map[string]any)
		ig["k8s"].(map[string]any)["serviceAnnotations"] = a
	}
	return istioOperator(f, "eastwest", spec)
}

// gatewayServiceSpec binds the east-west gateway Service to the address
// the fleet declares, which remotes and other networks are wired to: its
// type, and spec.loadBalancerIP for an IP address unless the fleet binds
// the address through the Service's annotations. A host name is bound by
// DNS pointing at the load balancer.
func gatewayServiceSpec(c *fleet.Cluster) map[string]any {
	gw := c.EastWestGateway
	svc := fleet.GatewayService{Type: "LoadBalancer", BindAddress: fleet.BindLoadBalancerIP}
	if gw != nil && gw.Service != nil {
		svc = *gw.Service
	}
	spec := map[string]any{"type": svc.Type}
	if gw == nil || svc.Type != "LoadBalancer" || svc.BindAddress != fleet.BindLoadBalancerIP {
		return spec
	}
	if ip, err := netip.ParseAddr(gw.Address); err == nil {
		spec["loadBalancerIP"] = ip.String()
	}
	return spec
}

// gatewayServiceAnnotations are the east-west gateway Service's
// annotations from the fleet, or nil.
func gatewayServiceAnnotations(c *fleet.Cluster) map[string]any {
	gw := c.EastWestGateway
	if gw == nil || gw.Service == nil || len(gw.Service.Annotations) == 0 {
		return nil
	}
	a := map[string]any{}
	for k, v := range gw.Service.Annotations {
		a[k] = v
	}
	return a
}

// eastWestLabels select the east-west gateway's pods: expose-istiod and
// expose-services select istio=eastwestgateway, and istiod finds the
// network's gateway by the network label.
func eastWestLabels(c *fleet.Cluster) map[string]any {
	return map[string]any{
		"istio":      eastWestGatewaySelector,
		"app":        eastWestGatewayName,
		labelNetwork: c.Network,
	}
}

// crossNetworkGateway is samples/multicluster/expose-services.yaml: it
// passes mTLS traffic from other networks through to this network's pods.
func crossNetworkGateway() Object {
	return Object{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "Gateway",
		"metadata":   meta("cross-network-gateway"),
		"spec": map[string]any{
			"selector": map[string]any{"istio": eastWestGatewaySelector},
			"servers": []any{map[string]any{
				"port":  map[string]any{"number": 15443, "name": "tls", "protocol": "TLS"},
				"tls":   map[string]any{"mode": "AUTO_PASSTHROUGH"},
				"hosts": []any{"*.local"},
			}},
		},
	}
}

// exposeIstiod is samples/multicluster/expose-istiod.yaml, or its
// revision template expose-istiod-rev.yaml.tmpl filled with rev: it lets
// remotes reach istiod's xDS/CA port and injection webhook.
func exposeIstiod(rev string) []Object {
	server := func(name string, port int) map[string]any {
		return map[string]any{
			"port":  map[string]any{"name": name, "number": port, "protocol": "tls"},
			"tls":   map[string]any{"mode": "PASSTHROUGH"},
			"hosts": []any{"*"},
		}
	}
	istiod, vsName, sni := "istiod", "istiod-vs", []any{"*"}
	if rev != "" {
		istiod, vsName = "istiod-"+rev, "istiod-vs-"+rev
		sni = []any{istiod + "." + IstioNamespace + ".svc", istiod + "." + IstioNamespace + ".svc.cluster.local"}
	}
	host := istiod + "." + IstioNamespace + ".svc.cluster.local"
	route := func(port, target int) map[string]any {
		return map[string]any{
			"match": []any{map[string]any{"port": port, "sniHosts": sni}},
			"route": []any{map[string]any{"destination": map[string]any{"host": host, "port": map[string]any{"number": target}}}},
		}
	}
	return []Object{
		{
			"apiVersion": "networking.istio.io/v1",
			"kind":       "Gateway",
			"metadata":   meta("istiod-gateway"),
			"spec": map[string]any{
				"selector": map[string]any{"istio": eastWestGatewaySelector},
				"servers":  []any{server("tls-istiod", 15012), server("tls-istiodwebhook", 15017)},
			},
		},
		{
			"apiVersion": "networking.istio.io/v1",
			"kind":       "VirtualService",
			"metadata":   meta(vsName),
			"spec": map[string]any{
				"hosts":    []any{"*"},
				"gateways": []any{"istiod-gateway"},
				"tls":      []any{route(15012, 15012), route(15017, 443)},
			},
		},
	}
}
