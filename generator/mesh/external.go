package mesh

import (
	"fmt"
	"strings"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/generator/plan"
)

// ConfigKubeconfigSecret is the Secret an external istiod reads its
// config cluster with, and ConfigKubeconfigKey its key: what istioctl
// create-remote-secret --type=config makes.
const (
	ConfigKubeconfigSecret = "istio-kubeconfig"
	ConfigKubeconfigKey    = "config"
)

// WaitForKeySets are the values AnnotationWaitForKeys takes.
var WaitForKeySets = []string{CAKeySets, ConfigKubeconfigKey}

// exposeExternalIstiod routes the external cluster's ingress gateway to
// the external istiod: ports 15012 (xDS and CA) and 15017 (webhooks, to
// istiod's 443). For an IP address the gateway passes TLS through to
// istiod, for any SNI; for a host name it terminates TLS with the
// certificate for that name and originates TLS to istiod (the
// DestinationRule), as Istio's external control plane guide does.
func exposeExternalIstiod(f *fleet.Fleet, in *plan.IstiodIngress) []Object {
	route := func(port, target int) map[string]any {
		return map[string]any{"destination": map[string]any{"host": in.Istiod, "port": map[string]any{"number": target}}}
	}
	if !in.Host {
		server := func(name string, port int) map[string]any {
			return map[string]any{
				"port":  map[string]any{"name": name, "number": port, "protocol": "tls"},
				"tls":   map[string]any{"mode": "PASSTHROUGH"},
				"hosts": []any{"*"},
			}
		}
		match := func(port, target int) map[string]any {
			m := route(port, target)
			return map[string]any{"match": []any{map[string]any{"port": port, "sniHosts": []any{"*"}}}, "route": []any{m}}
		}
		return []Object{
			{
				"apiVersion": "networking.istio.io/v1",
				"kind":       "Gateway",
				"metadata":   meta("external-istiod-gw", in.Namespace),
				"spec": map[string]any{
					"selector": plan.Clone(in.Selector),
					"servers":  []any{server("tls-xds", 15012), server("tls-webhook", 15017)},
				},
			},
			{
				"apiVersion": "networking.istio.io/v1",
				"kind":       "VirtualService",
				"metadata":   meta("external-virtualsvc", in.Namespace),
				"spec": map[string]any{
					"hosts":    []any{"*"},
					"gateways": []any{"external-istiod-gw"},
					"tls":      []any{match(15012, 15012), match(15017, 443)},
				},
			},
		}
	}
	server := func(name string, port int) map[string]any {
		return map[string]any{
			"port":  map[string]any{"name": name, "number": port, "protocol": "https"},
			"tls":   map[string]any{"mode": "SIMPLE", "credentialName": in.Certificate},
			"hosts": []any{in.Address},
		}
	}
	match := func(port, target int) map[string]any {
		return map[string]any{"match": []any{map[string]any{"port": port}}, "route": []any{route(port, target)}}
	}
	objs := []Object{
		{
			"apiVersion": "networking.istio.io/v1",
			"kind":       "Gateway",
			"metadata":   meta("external-istiod-gw", in.Namespace),
			"spec": map[string]any{
				"selector": plan.Clone(in.Selector),
				"servers":  []any{server("https-xds", 15012), server("https-webhook", 15017)},
			},
		},
		{
			"apiVersion": "networking.istio.io/v1",
			"kind":       "VirtualService",
			"metadata":   meta("external-virtualsvc", in.Namespace),
			"spec": map[string]any{
				"hosts":    []any{in.Address},
				"gateways": []any{"external-istiod-gw"},
				"http":     []any{match(15012, 15012), match(15017, 443)},
			},
		},
		{
			"apiVersion": "networking.istio.io/v1",
			"kind":       "DestinationRule",
			"metadata":   meta("external-istiod-dr", in.Namespace),
			"spec": map[string]any{
				"host": in.Istiod,
				"trafficPolicy": map[string]any{"portLevelSettings": []any{
					map[string]any{
						"port":           map[string]any{"number": 15012},
						"tls":            istiodTLS(in.Istiod),
						"connectionPool": map[string]any{"http": map[string]any{"h2UpgradePolicy": "UPGRADE"}},
					},
					map[string]any{
						"port": map[string]any{"number": 443},
						"tls":  istiodTLS(in.Istiod),
					},
				}},
			},
		},
	}
	return append(objs, gatewayCertificate(in))
}

// gatewayCertificate is the certificate a gateway presents for istiod's
// host name: issued by cert-manager, or a placeholder to fill in. For an
// external istiod, proxies and API servers trust it through their system
// roots; for a primary's east-west gateway, through the mesh root.
func gatewayCertificate(in *plan.IstiodIngress) Object {
	if is := in.Issuer; is != nil {
		return Object{
			"apiVersion": "cert-manager.io/v1",
			"kind":       "Certificate",
			"metadata":   meta(in.Certificate, in.GatewayNamespace),
			"spec": map[string]any{
				"secretName": in.Certificate,
				"dnsNames":   []any{in.Address},
				"issuerRef":  map[string]any{"name": is.Name, "kind": is.Kind, "group": is.Group},
			},
		}
	}
	what := "TLS certificate and key for " + in.Address + ", from a CA the proxies' and API servers' system roots trust: the external istiod's ingress gateway presents it on ports 15012 and 15017"
	if in.MeshRoot {
		what = "TLS certificate and key for " + in.Address + ", chaining to the mesh root (istiod writes it into the remotes' webhooks as their CA bundle): the east-west gateway presents it on port 15017 to the remotes' API servers"
	}
	return Object{
		"apiVersion": "v1",
		"kind":       "Secret",
		"type":       "kubernetes.io/tls",
		"metadata": meta(in.Certificate, in.GatewayNamespace, map[string]any{"annotations": merged(keepFilledIn, map[string]any{
			annotationPlaceholder: what,
			annotationSecretKeys:  "tls.crt, tls.key",
		})}),
	}
}

// configAccount is the account an external istiod acts on its config
// cluster with: bound to the ClusterRoles and the Role of istiod that the
// remote profile with configCluster installs (the bindings may name them
// before they exist), and a long-lived token Kubernetes mints for it.
func configAccount(f *fleet.Fleet, c *plan.Cluster, in plan.Installer) []Object {
	ns, sa := c.Namespace(), c.ConfigAccount
	suffix := ""
	if cp := c.MeshControlPlane(); cp != nil && in.ChartRevision(cp) != "" {
		suffix = "-" + in.ChartRevision(cp)
	}
	subjects := []any{map[string]any{"kind": "ServiceAccount", "name": sa, "namespace": ns}}
	binding := func(kind, role string) Object {
		md := map[string]any{"name": sa + "-" + role}
		if kind == "ClusterRole" {
			md["name"] = sa + "-" + role + "-" + ns
			role += "-" + ns
		} else {
			md["namespace"] = ns
		}
		return Object{
			"apiVersion": "rbac.authorization.k8s.io/v1",
			"kind":       kind + "Binding",
			"metadata":   md,
			"roleRef":    map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
			"subjects":   subjects,
		}
	}
	objs := []Object{
		{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(sa, ns)},
		binding("ClusterRole", "istiod-clusterrole"+suffix),
		binding("ClusterRole", "istiod-gateway-controller"+suffix),
		binding("ClusterRole", "istiod-waypoint-controller"+suffix),
		binding("Role", "istiod"+suffix),
		{
			"apiVersion": "v1",
			"kind":       "Secret",
			"type":       "kubernetes.io/service-account-token",
			"metadata":   meta(sa+"-token", ns, map[string]any{"annotations": map[string]any{annotationServiceAccount: sa}}),
		},
	}
	if s := f.Spec.Secrets; s.Provider == fleet.ProviderExternalSecrets {
		objs = append(objs, pushToken(s, sa, ns, configStoreKey(s, c.Cluster)))
	}
	return objs
}

// configStoreKey is where a config cluster publishes the token and CA of
// the account its external control plane acts on it with.
func configStoreKey(s fleet.Secrets, c *fleet.Cluster) string {
	return fmt.Sprintf("%s/%s/config", s.KeyPrefix, c.Name)
}

// configKubeconfig is the placeholder of the config cluster's kubeconfig
// that the external istiod reads (Secret istio-kubeconfig, key config,
// as istioctl create-remote-secret --type=config makes it). The stage
// holding it is ready only once it is filled in, so the external istiod
// never starts without it.
func configKubeconfig(f *fleet.Fleet, k *plan.ConfigKubeconfig) Object {
	c := k.Cluster
	if s := f.Spec.Secrets; s.Provider == fleet.ProviderExternalSecrets {
		// Filled from what the config cluster's PushSecret published; the
		// ExternalSecret is ready, and the stage with it, once it is.
		ref := configStoreKey(s, c)
		return externalSecret(s, ConfigKubeconfigSecret, k.Namespace, map[string]any{
			"name": ConfigKubeconfigSecret,
			"template": map[string]any{
				"engineVersion": "v2",
				"metadata":      map[string]any{"annotations": map[string]any{annotationCluster: c.Name}},
				"data":          map[string]any{ConfigKubeconfigKey: kubeconfig(c)},
			},
		}, []any{
			map[string]any{"secretKey": "token", "remoteRef": map[string]any{"key": ref, "property": "token"}},
			map[string]any{"secretKey": "ca", "remoteRef": map[string]any{"key": ref, "property": "ca.crt"}},
		})
	}
	return Object{
		"apiVersion": "v1",
		"kind":       "Secret",
		"metadata": meta(ConfigKubeconfigSecret, k.Namespace, map[string]any{
			"annotations": merged(keepFilledIn, map[string]any{
				annotationCluster:     c.Name,
				annotationAPIServer:   c.APIServer,
				annotationPlaceholder: fmt.Sprintf("kubeconfig of config cluster %s's %s account under key %s: %s", c.Name, k.ServiceAccount, ConfigKubeconfigKey, ConfigSecretCommand(c, k.Namespace, k.ServiceAccount)),
				annotationSecretKeys:  ConfigKubeconfigKey,
				AnnotationWaitForKeys: ConfigKubeconfigKey,
			}),
		}),
	}
}

// ConfigSecretCommand is the istioctl command that prints the config
// cluster's kubeconfig Secret.
func ConfigSecretCommand(c *fleet.Cluster, namespace, account string) string {
	return fmt.Sprintf("istioctl create-remote-secret --type=config --name=%s --server=%s --namespace=%s --service-account=%s --create-service-account=false --secret-name=%s-token", c.Name, c.APIServer, namespace, account, account)
}

// exposeHostIstiod lets remotes reach a primary's istiod through its
// east-west gateway at a host name: xDS and CA on 15012 passed through to
// istiod (the remotes' proxies verify istiod's own certificate, as with
// expose-istiod), and the webhooks on 15017 terminated with the
// certificate for the name and sent on to istiod's 443 over TLS verified
// with the mesh root the gateway's proxy holds.
func exposeHostIstiod(in *plan.IstiodIngress) []Object {
	objs := []Object{
		{
			"apiVersion": "networking.istio.io/v1",
			"kind":       "Gateway",
			"metadata":   meta("istiod-gateway", in.Namespace),
			"spec": map[string]any{
				"selector": plan.Clone(in.Selector),
				"servers": []any{
					map[string]any{
						"port":  map[string]any{"name": "tls-istiod", "number": 15012, "protocol": "tls"},
						"tls":   map[string]any{"mode": "PASSTHROUGH"},
						"hosts": []any{"*"},
					},
					map[string]any{
						"port":  map[string]any{"name": "https-webhook", "number": 15017, "protocol": "https"},
						"tls":   map[string]any{"mode": "SIMPLE", "credentialName": in.Certificate},
						"hosts": []any{in.Address},
					},
				},
			},
		},
		{
			"apiVersion": "networking.istio.io/v1",
			"kind":       "VirtualService",
			"metadata":   meta("istiod-vs", in.Namespace),
			"spec": map[string]any{
				"hosts":    []any{"*"},
				"gateways": []any{"istiod-gateway"},
				"tls": []any{map[string]any{
					"match": []any{map[string]any{"port": 15012, "sniHosts": []any{"*"}}},
					"route": []any{map[string]any{"destination": map[string]any{"host": in.Istiod, "port": map[string]any{"number": 15012}}}},
				}},
			},
		},
		{
			"apiVersion": "networking.istio.io/v1",
			"kind":       "VirtualService",
			"metadata":   meta("istiod-webhook-vs", in.Namespace),
			"spec": map[string]any{
				"hosts":    []any{in.Address},
				"gateways": []any{"istiod-gateway"},
				"http": []any{map[string]any{
					"match": []any{map[string]any{"port": 15017}},
					"route": []any{map[string]any{"destination": map[string]any{"host": in.Istiod, "port": map[string]any{"number": 443}}}},
				}},
			},
		},
		{
			"apiVersion": "networking.istio.io/v1",
			"kind":       "DestinationRule",
			"metadata":   meta("istiod-webhook-dr", in.Namespace),
			"spec": map[string]any{
				"host": in.Istiod,
				"trafficPolicy": map[string]any{"portLevelSettings": []any{map[string]any{
					"port": map[string]any{"number": 443},
					"tls":  istiodTLS(in.Istiod),
				}}},
			},
		},
	}
	return append(objs, gatewayCertificate(in))
}

// istiodTLS is TLS from a gateway to istiod, verified with the mesh root
// the gateway's proxy holds (its istiod has the mesh CA) against the name
// istiod's certificate carries.
func istiodTLS(host string) map[string]any {
	name := strings.TrimSuffix(host, ".cluster.local")
	return map[string]any{
		"mode":            "SIMPLE",
		"caCertificates":  "/var/run/secrets/istio/root-cert.pem",
		"sni":             name,
		"subjectAltNames": []any{name},
	}
}
