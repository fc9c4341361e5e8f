package mesh

import (
	"maps"

	"github.com/meshfleet/meshfleet/generator/fleet"
)

// Helm release names. The east-west gateway's must be
// istio-eastwestgateway: the gateway chart derives the pods' istio label
// from it, and expose-istiod and expose-services select that label.
const (
	ReleaseBase     = "istio-base"
	ReleaseIstiod   = "istiod"
	ReleaseEastWest = eastWestGatewayName
)

func chart(f *fleet.Fleet, release, name string, values map[string]any) Chart {
	return Chart{Release: release, Chart: name, Version: f.Spec.Istio.Version, Repo: f.Spec.Istio.Charts, Values: values}
}

// baseChart installs Istio's CRDs and cluster roles.
func baseChart(f *fleet.Fleet, c *fleet.Cluster) Chart {
	values := map[string]any{}
	if c.Role == fleet.Remote {
		values["profile"] = "remote"
	}
	if rev := f.Spec.Istio.Revision; rev != "" {
		values["defaultRevision"] = rev // the only revision is the default one
	}
	return chart(f, ReleaseBase, "base", values)
}

// istiodChart installs istiod, or on a remote the remote profile: the
// injector webhook and the istiod Service that point at the primary.
func istiodChart(f *fleet.Fleet, c *fleet.Cluster) Chart {
	values := controlPlaneValues(f, c)
	global := values["global"].(map[string]any)
	global["hub"] = f.Spec.Istio.Hub
	global["tag"] = f.Spec.Istio.Version
	if rev := f.Spec.Istio.Revision; rev != "" {
		values["revision"] = rev
	}
	if c.Role == fleet.Remote {
		// The remote profile, as the IstioOperator and Sail remotes get
		// it. Not global.configCluster, which some Helm guides add: in
		// primary-remote the primary is the config cluster, and it would
		// only add an istiod account, roles and a validation webhook that
		// nothing in the remote uses.
		values["profile"] = "remote"
	} else {
		values["meshConfig"] = meshConfig(f)
	}
	return chart(f, ReleaseIstiod, "istiod", values)
}

// eastWestChart is the gateway chart as a network gateway: networkGateway
// labels the Service and pods with the network, sets
// ISTIO_META_REQUESTED_NETWORK_VIEW and opens ports 15021, 15443, 15012
// and 15017; the chart's service.type, service.loadBalancerIP and
// service.annotations bind the Service to the fleet's address.
func eastWestChart(f *fleet.Fleet, c *fleet.Cluster) Chart {
	service := gatewayServiceSpec(c)
	if a := gatewayServiceAnnotations(c); a != nil {
		service["annotations"] = a
	}
	values := map[string]any{"networkGateway": c.Network, "service": service}
	if rev := f.Spec.Istio.Revision; rev != "" {
		values["revision"] = rev
	}
	return chart(f, ReleaseEastWest, "gateway", values)
}

// sailIstio is the Sail Operator's Istio resource. Its name is the
// revision (Sail names the IstioRevision after it with the InPlace
// strategy), or default.
func sailIstio(f *fleet.Fleet, c *fleet.Cluster) Object {
	values := controlPlaneValues(f, c)
	spec := map[string]any{
		"version":        "v" + f.Spec.Istio.Version,
		"namespace":      IstioNamespace,
		"updateStrategy": map[string]any{"type": "InPlace"},
		"values":         values,
	}
	if c.Role == fleet.Remote {
		spec["profile"] = "remote"
	} else {
		values["meshConfig"] = meshConfig(f)
	}
	name := f.Spec.Istio.Revision
	if name == "" {
		name = "default"
	}
	return Object{
		"apiVersion": "sailoperator.io/v1",
		"kind":       "Istio",
		"metadata":   map[string]any{"name": name},
		"spec":       spec,
	}
}

// sailDefaultTag makes a revisioned Sail control plane the default one:
// Sail installs the base chart (the default validation webhook) and the
// istio-injection=enabled webhook only for a revision named default or
// for an IstioRevisionTag named default, which follows the Istio's
// active revision.
func sailDefaultTag(istio Object) Object {
	return Object{
		"apiVersion": "sailoperator.io/v1",
		"kind":       "IstioRevisionTag",
		"metadata":   map[string]any{"name": "default"},
		"spec":       map[string]any{"targetRef": map[string]any{"kind": "Istio", "name": istio["metadata"].(map[string]any)["name"]}},
	}
}

// eastWestGatewayManifests is the east-west gateway as plain objects, for
// the Sail Operator, which deploys no gateways: what istioctl renders for
// gen-eastwest-gateway.sh's IstioOperator, without the autoscaler. The
// pods get their proxy from istiod's gateway injection template.
func eastWestGatewayManifests(f *fleet.Fleet, c *fleet.Cluster) []Object {
	labels := eastWestLabels(c)
	sa := eastWestGatewayName + "-service-account"
	podLabels := maps.Clone(labels)
	podLabels["sidecar.istio.io/inject"] = "true"
	if rev := f.Spec.Istio.Revision; rev != "" {
		podLabels["istio.io/rev"] = rev
	}
	var ports, containerPorts []any
	for _, p := range []struct {
		name string
		port int
	}{{"status-port", 15021}, {"tls", 15443}, {"tls-istiod", 15012}, {"tls-webhook", 15017}} {
		ports = append(ports, map[string]any{"name": p.name, "port": p.port, "targetPort": p.port, "protocol": "TCP"})
		containerPorts = append(containerPorts, map[string]any{"containerPort": p.port, "protocol": "TCP"})
	}
	sds := eastWestGatewayName + "-sds"
	serviceMeta := meta(eastWestGatewayName, map[string]any{"labels": labels})
	if a := gatewayServiceAnnotations(c); a != nil {
		serviceMeta["annotations"] = a
	}
	return []Object{
		{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(sa, map[string]any{"labels": labels})},
		{
			"apiVersion": "apps/v1",
			"kind":       "Deployment",
			"metadata":   meta(eastWestGatewayName, map[string]any{"labels": labels}),
			"spec": map[string]any{
				"selector": map[string]any{"matchLabels": labels},
				"template": map[string]any{
					"metadata": map[string]any{
						"labels":      podLabels,
						"annotations": map[string]any{"inject.istio.io/templates": "gateway"},
					},
					"spec": map[string]any{
						"serviceAccountName": sa,
						"containers": []any{map[string]any{
							"name":  "istio-proxy",
							"image": "auto", // filled in by the injection webhook
							"env":   []any{map[string]any{"name": "ISTIO_META_REQUESTED_NETWORK_VIEW", "value": c.Network}},
							"ports": containerPorts,
							"securityContext": map[string]any{
								"allowPrivilegeEscalation": false,
								"capabilities":             map[string]any{"drop": []any{"ALL"}},
								"privileged":               false,
								"readOnlyRootFilesystem":   true,
							},
						}},
					},
				},
			},
		},
		{
			"apiVersion": "v1",
			"kind":       "Service",
			"metadata":   serviceMeta,
			"spec": merged(gatewayServiceSpec(c), map[string]any{
				"selector": labels,
				"ports":    ports,
			}),
		},
		{
			"apiVersion": "rbac.authorization.k8s.io/v1",
			"kind":       "Role",
			"metadata":   meta(sds),
			"rules": []any{map[string]any{
				"apiGroups": []any{""},
				"resources": []any{"secrets"},
				"verbs":     []any{"get", "watch", "list"},
			}},
		},
		{
			"apiVersion": "rbac.authorization.k8s.io/v1",
			"kind":       "RoleBinding",
			"metadata":   meta(sds),
			"roleRef":    map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": sds},
			"subjects":   []any{map[string]any{"kind": "ServiceAccount", "name": sa}},
		},
	}
}
