package mesh

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/generator/plan"
)

// IstioNamespace is the namespace of a primary's or remote's control
// plane (see plan.ControlPlane.Namespace).
const IstioNamespace = plan.IstioNamespace

// ReaderServiceAccount is the service account other clusters' istiod
// read a cluster with, and readerTokenSecret its token.
const (
	ReaderServiceAccount = "meshfleet-reader"
	readerTokenSecret    = ReaderServiceAccount + "-token"
)

// Labels and annotations Istio reads.
const (
	labelMultiCluster         = "istio/multiCluster"
	annotationCluster         = "networking.istio.io/cluster"
	annotationServiceAccount  = "kubernetes.io/service-account.name"
	annotationPlaceholder     = "meshfleet.dev/placeholder"
	annotationSecretKeys      = "meshfleet.dev/secret-keys"
	annotationAPIServer       = "meshfleet.dev/api-server"
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

// neverDeleted: see plan.NeverDeleted.
var neverDeleted = plan.NeverDeleted

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

var (
	meta   = plan.Meta
	merged = plan.Merged
)

func namespace(ns plan.Namespace) Object {
	md := map[string]any{"name": ns.Name}
	if ns.Labels != nil {
		md["labels"] = plan.Clone(ns.Labels)
	}
	if ns.Annotations != nil {
		md["annotations"] = plan.Clone(ns.Annotations)
	}
	return Object{"apiVersion": "v1", "kind": "Namespace", "metadata": md}
}

// caCerts is the shared root of trust: a cert-manager Certificate, a
// Secret placeholder the operator fills, or an ExternalSecret that fills
// it from the store.
func caCerts(f *fleet.Fleet, c *plan.Cluster, ns string) Object {
	if cm := f.CertManager(); cm != nil {
		return caCertificate(c, cm, ns)
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
		return externalSecret(s, "cacerts", ns, map[string]any{
			"name":           "cacerts",
			"creationPolicy": "Orphan", // deleting the ExternalSecret must not take the CA away from istiod
			"deletionPolicy": "Retain",
		}, data)
	}
	return Object{
		"apiVersion": "v1",
		"kind":       "Secret",
		"metadata": meta("cacerts", ns, map[string]any{"annotations": merged(neverOverwrittenNorDeleted, map[string]any{
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
func caCertificate(c *plan.Cluster, cm *fleet.CertManager, ns string) Object {
	return Object{
		"apiVersion": "cert-manager.io/v1",
		"kind":       "Certificate",
		"metadata":   meta("cacerts", ns, map[string]any{"annotations": merged(neverDeleted)}),
		"spec": map[string]any{
			"secretName":  "cacerts",
			"isCA":        true,
			"commonName":  "Intermediate CA",
			"subject":     map[string]any{"organizations": []any{"Istio"}, "localities": []any{c.Name}},
			"dnsNames":    []any{"istiod." + ns + ".svc"},
			"duration":    cm.Duration,
			"renewBefore": cm.RenewBefore,
			"privateKey":  map[string]any{"algorithm": "RSA", "size": 4096},
			"usages":      []any{"cert sign", "crl sign", "digital signature", "key encipherment"},
			"issuerRef":   map[string]any{"name": cm.Issuer.Name, "kind": cm.Issuer.Kind, "group": cm.Issuer.Group},
		},
	}
}

// remoteSecret lets the istiod in namespace ns read cluster c's API server.
func remoteSecret(f *fleet.Fleet, c *fleet.Cluster, ns string) Object {
	name := "istio-remote-secret-" + c.Name
	labels := map[string]any{labelMultiCluster: "true"}
	s := f.Spec.Secrets
	if s.Provider == fleet.ProviderExternalSecrets {
		ref := fmt.Sprintf("%s/%s/reader", s.KeyPrefix, c.Name)
		return externalSecret(s, name, ns, map[string]any{
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
		"metadata": meta(name, ns, map[string]any{
			"labels": labels,
			"annotations": merged(keepFilledIn, map[string]any{
				annotationCluster:     c.Name,
				annotationAPIServer:   c.APIServer,
				annotationPlaceholder: fmt.Sprintf("kubeconfig of %s's %s under key %s: istioctl create-remote-secret --name=%s --server=%s%s --service-account=%s --create-service-account=false --secret-name=%s", c.Name, ReaderServiceAccount, c.Name, c.Name, c.APIServer, readerNamespaceFlag(f, c), ReaderServiceAccount, readerTokenSecret),
				annotationSecretKeys:  c.Name,
			}),
		}),
	}
}

// readerNamespaceFlag names the namespace of c's reader account for
// istioctl create-remote-secret, when it is not istio-system.
func readerNamespaceFlag(f *fleet.Fleet, c *fleet.Cluster) string {
	if f.ExternalControlPlaneOf(c) != nil {
		return " --namespace=" + fleet.ExternalIstiodNamespace
	}
	return ""
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

func externalSecret(s fleet.Secrets, name, ns string, target map[string]any, data []any) Object {
	return Object{
		"apiVersion": externalSecretsAPIVersion,
		"kind":       "ExternalSecret",
		"metadata":   meta(name, ns),
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
func reader(f *fleet.Fleet, c *plan.Cluster, in plan.Installer) []Object {
	ns := c.Namespace()
	// The binding is named after the ClusterRole's revision: roleRef is
	// immutable, so a new revision gets a new binding and the old one is
	// pruned.
	// Side by side, one binding per revision: the account keeps reading
	// while any of them runs.
	var suffixes []string
	for _, cp := range c.ControlPlanes {
		if cp.Role == plan.RoleLocal {
			continue
		}
		rev := in.ChartRevision(&cp)
		if cp.Suffix == "" {
			suffixes = []string{ns}
			if rev != "" {
				suffixes = []string{rev + "-" + ns}
			}
			break
		}
		suffixes = append(suffixes, rev+"-"+ns)
	}
	if len(suffixes) == 0 {
		suffixes = []string{ns}
	}
	objs := []Object{{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(ReaderServiceAccount, ns)}}
	for _, suffix := range suffixes {
		objs = append(objs, Object{
			"apiVersion": "rbac.authorization.k8s.io/v1",
			"kind":       "ClusterRoleBinding",
			"metadata":   map[string]any{"name": ReaderServiceAccount + "-" + suffix},
			"roleRef":    map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "istio-reader-clusterrole-" + suffix},
			"subjects":   []any{map[string]any{"kind": "ServiceAccount", "name": ReaderServiceAccount, "namespace": ns}},
		})
	}
	objs = append(objs, []Object{
		{
			"apiVersion": "v1",
			"kind":       "Secret",
			"type":       "kubernetes.io/service-account-token",
			"metadata": meta(readerTokenSecret, ns, map[string]any{
				"annotations": map[string]any{annotationServiceAccount: ReaderServiceAccount},
			}),
		},
	}...)
	if s := f.Spec.Secrets; s.Provider == fleet.ProviderExternalSecrets {
		objs = append(objs, pushToken(s, ReaderServiceAccount, ns, fmt.Sprintf("%s/%s/reader", s.KeyPrefix, c.Name)))
	}
	return objs
}

// pushToken is the PushSecret that puts the token and CA of service
// account sa (its Secret sa-token) into the store under key, where
// another cluster's ExternalSecret reads them. A cluster that leaves the
// fleet takes them out of the store (deletionPolicy Delete).
func pushToken(s fleet.Secrets, sa, ns, key string) Object {
	push := func(secretKey string) map[string]any {
		return map[string]any{"match": map[string]any{
			"secretKey": secretKey,
			"remoteRef": map[string]any{"remoteKey": key, "property": secretKey},
		}}
	}
	return Object{
		"apiVersion": "external-secrets.io/v1alpha1",
		"kind":       "PushSecret",
		"metadata":   meta(sa, ns),
		"spec": map[string]any{
			"refreshInterval": s.RefreshInterval,
			"updatePolicy":    "Replace",
			"deletionPolicy":  "Delete",
			"secretStoreRefs": []any{map[string]any{"kind": s.Store.Kind, "name": s.Store.Name}},
			"selector":        map[string]any{"secret": map[string]any{"name": sa + "-token"}},
			"data":            []any{push("token"), push("ca.crt")},
		},
	}
}

// crossNetworkGateway is samples/multicluster/expose-services.yaml: it
// passes mTLS traffic from other networks through to this network's pods.
func crossNetworkGateway(ns string) Object {
	return Object{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "Gateway",
		"metadata":   meta("cross-network-gateway", ns),
		"spec": map[string]any{
			"selector": map[string]any{"istio": plan.EastWestGatewaySelector},
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
func exposeIstiod(rev, ns string) []Object {
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
		sni = []any{istiod + "." + ns + ".svc", istiod + "." + ns + ".svc.cluster.local"}
	}
	host := istiod + "." + ns + ".svc.cluster.local"
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
			"metadata":   meta("istiod-gateway", ns),
			"spec": map[string]any{
				"selector": map[string]any{"istio": plan.EastWestGatewaySelector},
				"servers":  []any{server("tls-istiod", 15012), server("tls-istiodwebhook", 15017)},
			},
		},
		{
			"apiVersion": "networking.istio.io/v1",
			"kind":       "VirtualService",
			"metadata":   meta(vsName, ns),
			"spec": map[string]any{
				"hosts":    []any{"*"},
				"gateways": []any{"istiod-gateway"},
				"tls":      []any{route(15012, 15012), route(15017, 443)},
			},
		},
	}
}
