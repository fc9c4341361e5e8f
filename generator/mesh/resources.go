package mesh

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/meshfleet/meshfleet/generator/fleet"
)

// IstioNamespace is where istiod, its secrets and the gateways live.
const IstioNamespace = "istio-system"

// Labels and annotations Istio reads.
const (
	labelNetwork              = "topology.istio.io/network"
	annotationControlPlanes   = "topology.istio.io/controlPlaneClusters"
	labelMultiCluster         = "istio/multiCluster"
	annotationCluster         = "networking.istio.io/cluster"
	annotationServiceAccount  = "kubernetes.io/service-account.name"
	readerServiceAccount      = "istio-reader-service-account"
	annotationPlaceholder     = "meshfleet.dev/placeholder"
	annotationSecretKeys      = "meshfleet.dev/secret-keys"
	annotationAPIServer       = "meshfleet.dev/api-server"
	eastWestGatewayName       = "istio-eastwestgateway"
	eastWestGatewaySelector   = "eastwestgateway"
	externalSecretsAPIVersion = "external-secrets.io/v1"
)

// keepFilledIn are the annotations that stop Flux and Argo CD from ever
// overwriting or deleting a secret an operator filled in by hand. Flux
// creates the object only if it is absent and never prunes it; Argo CD
// applies it server-side, so it owns only the fields the placeholder sets
// (no data), and never prunes or deletes it.
var keepFilledIn = map[string]any{
	"kustomize.toolkit.fluxcd.io/ssa":   "IfNotPresent",
	"kustomize.toolkit.fluxcd.io/prune": "disabled",
	"argocd.argoproj.io/sync-options":   "ServerSideApply=true,Prune=false,Delete=false",
}

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
	if c.Role == fleet.Remote {
		md["annotations"] = map[string]any{annotationControlPlanes: c.ControlPlane}
	}
	return Object{"apiVersion": "v1", "kind": "Namespace", "metadata": md}
}

// caCerts is the shared root of trust: a Secret placeholder the operator
// fills, or an ExternalSecret that fills it from the store.
func caCerts(f *fleet.Fleet, c *fleet.Cluster) Object {
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
		"metadata": meta("cacerts", map[string]any{"annotations": merged(keepFilledIn, map[string]any{
			annotationPlaceholder: "intermediate CA of cluster " + c.Name + ", signed by the mesh root; root-cert.pem is the same in every cluster. Fill it before istiod starts, or istiod signs with a self-made root",
			annotationSecretKeys:  caKeys,
		})}),
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
				annotationPlaceholder: fmt.Sprintf("kubeconfig of %s's %s under key %s: istioctl create-remote-secret --name=%s --server=%s", c.Name, readerServiceAccount, c.Name, c.Name, c.APIServer),
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

// readerToken asks Kubernetes to mint a long-lived token for the service
// account that other clusters' istiod use to read this one: the input of
// a remote secret, with no secret in git.
func readerToken() Object {
	return Object{
		"apiVersion": "v1",
		"kind":       "Secret",
		"type":       "kubernetes.io/service-account-token",
		"metadata": meta(readerServiceAccount+"-istio-remote-secret-token", map[string]any{
			"annotations": map[string]any{annotationServiceAccount: readerServiceAccount},
		}),
	}
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
				"service": map[string]any{"ports": []any{
					port("status-port", 15021),
					port("tls", 15443),
					port("tls-istiod", 15012),
					port("tls-webhook", 15017),
				}},
			},
		}}},
		"values": map[string]any{
			"gateways": map[string]any{"istio-ingressgateway": map[string]any{"injectionTemplate": "gateway"}},
			"global":   map[string]any{"network": c.Network},
		},
	}
	return istioOperator(f, "eastwest", spec)
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
