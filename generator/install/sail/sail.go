// Package sail expresses control planes as Sail Operator resources (an
// Istio, and an IstioRevisionTag for each revision tag; on a remote,
// where Sail renders no tags, the tags' webhooks) and gateways as plain
// objects, since Sail deploys no gateways.
package sail

import (
	"maps"

	"github.com/meshfleet/meshfleet/generator/install/tags"
	"github.com/meshfleet/meshfleet/generator/plan"
)

// Installer is the Sail Operator installer.
type Installer struct{}

// ControlPlane is istio.yaml: the Istio resource, named after the
// control plane (Sail names the IstioRevision after it with the InPlace
// strategy), and its revision tags (for a revisioned default control
// plane tag default).
func (in Installer) ControlPlane(cp *plan.ControlPlane) plan.Output {
	values := plan.Clone(cp.Values)
	if cp.Role == plan.RoleExternal && cp.Revision == "" {
		revisionNames(values, in.ChartRevision(cp))
	}
	// Sail makes a revision the default one with an IstioRevisionTag
	// (below), not with the charts' defaultRevision.
	delete(values, "defaultRevision")
	spec := map[string]any{
		"version":        "v" + cp.Version,
		"namespace":      cp.Namespace,
		"updateStrategy": map[string]any{"type": "InPlace"},
		"values":         values,
	}
	if cp.Profile != "" {
		spec["profile"] = cp.Profile
	}
	if cp.Role == plan.RoleExternal {
		spec["profile"] = "empty"
		values["pilot"].(map[string]any)["enabled"] = true
	}
	if cp.MeshConfig != nil {
		values["meshConfig"] = plan.Clone(cp.MeshConfig)
	}
	objs := []plan.Object{{
		"apiVersion": "sailoperator.io/v1",
		"kind":       "Istio",
		"metadata":   map[string]any{"name": cp.Name},
		"spec":       spec,
	}}
	var tagNames []string
	switch {
	case cp.Suffix != "":
		tagNames = cp.Tags
	case cp.Name != "default" && cp.Default && (cp.Role == plan.RolePrimary || cp.Role == plan.RoleRemote):
		tagNames = []string{"default"}
	}
	for _, t := range tagNames {
		if cp.Role == plan.RoleRemote {
			// Sail refuses an IstioRevisionTag that targets a remote
			// Istio (istiorevisiontag_controller.go), and its values
			// have no revisionTags: the tag's injection webhook as
			// istioctl renders it, which the serving istiod patches,
			// for the revision Sail names after the Istio.
			rev := *cp
			rev.Revision = in.ChartRevision(cp)
			objs = append(objs, tags.Objects(&rev, t)...)
			continue
		}
		// Sail renders the tag's webhooks (and for default the default
		// validator) for the Istio's revision.
		objs = append(objs, revisionTag(t, cp.Name))
	}
	file := "istio" + cp.Suffix + ".yaml"
	switch cp.Role {
	case plan.RoleExternal:
		file = "external-istiod.yaml"
	case plan.RoleLocal:
		file = "istio-local.yaml"
	}
	return plan.Output{Manifests: []plan.File{{Name: file, Objects: objs}}}
}

// revisionNames: Sail names an Istio's revision after it, and with it the
// ConfigMaps istiod reads and the webhooks of the config cluster's Istio
// of the same name, which the external istiod patches.
func revisionNames(values map[string]any, rev string) {
	pilot := values["pilot"].(map[string]any)
	env := pilot["env"].(map[string]any)
	for _, k := range []string{"INJECTION_WEBHOOK_CONFIG_NAME", "VALIDATION_WEBHOOK_CONFIG_NAME"} {
		if name, _ := env[k].(string); name != "" {
			env[k] = name + "-" + rev
		}
	}
	for _, v := range pilot["volumes"].([]any) {
		cm := v.(map[string]any)["configMap"].(map[string]any)
		cm["name"] = cm["name"].(string) + "-" + rev
	}
}

// revisionTag is an IstioRevisionTag that follows the active revision of
// Istio istio. Tag default makes a revisioned control plane the default
// one: Sail installs the base chart (the default validation webhook) and
// the istio-injection=enabled webhook only for a revision named default
// or for an IstioRevisionTag named default.
func revisionTag(tag, istio string) plan.Object {
	return plan.Object{
		"apiVersion": "sailoperator.io/v1",
		"kind":       "IstioRevisionTag",
		"metadata":   map[string]any{"name": tag},
		"spec":       map[string]any{"targetRef": map[string]any{"kind": "Istio", "name": istio}},
	}
}

// ChartRevision: Sail names the revision after the Istio resource (the
// InPlace strategy), and gives the charts none for an Istio named default.
func (Installer) ChartRevision(cp *plan.ControlPlane) string {
	if cp.Name == "default" {
		return ""
	}
	return cp.Name
}

// Gateway is eastwest-gateway.yaml: what istioctl renders for
// gen-eastwest-gateway.sh's IstioOperator, without the autoscaler. The
// pods get their proxy from istiod's gateway injection template.
func (Installer) Gateway(gw *plan.Gateway) plan.Output {
	ns := gw.Namespace
	labels := plan.Clone(gw.Labels)
	sa := gw.Name + "-service-account"
	podLabels := maps.Clone(labels)
	podLabels["sidecar.istio.io/inject"] = "true"
	if gw.Revision != "" {
		podLabels["istio.io/rev"] = gw.Revision
	}
	var ports, containerPorts []any
	for _, p := range gw.Ports {
		ports = append(ports, map[string]any{"name": p.Name, "port": p.Port, "targetPort": p.Port, "protocol": "TCP"})
		containerPorts = append(containerPorts, map[string]any{"containerPort": p.Port, "protocol": "TCP"})
	}
	sds := gw.Name + "-sds"
	serviceMeta := plan.Meta(gw.Name, ns, map[string]any{"labels": labels})
	if gw.Service.Annotations != nil {
		serviceMeta["annotations"] = plan.Clone(gw.Service.Annotations)
	}
	serviceSpec := map[string]any{"type": gw.Service.Type, "selector": labels, "ports": ports}
	if gw.Service.LoadBalancerIP != "" {
		serviceSpec["loadBalancerIP"] = gw.Service.LoadBalancerIP
	}
	objs := []plan.Object{
		{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": plan.Meta(sa, ns, map[string]any{"labels": labels})},
		{
			"apiVersion": "apps/v1",
			"kind":       "Deployment",
			"metadata":   plan.Meta(gw.Name, ns, map[string]any{"labels": labels}),
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
		{"apiVersion": "v1", "kind": "Service", "metadata": serviceMeta, "spec": serviceSpec},
		{
			"apiVersion": "rbac.authorization.k8s.io/v1",
			"kind":       "Role",
			"metadata":   plan.Meta(sds, ns),
			"rules": []any{map[string]any{
				"apiGroups": []any{""},
				"resources": []any{"secrets"},
				"verbs":     []any{"get", "watch", "list"},
			}},
		},
		{
			"apiVersion": "rbac.authorization.k8s.io/v1",
			"kind":       "RoleBinding",
			"metadata":   plan.Meta(sds, ns),
			"roleRef":    map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": sds},
			"subjects":   []any{map[string]any{"kind": "ServiceAccount", "name": sa}},
		},
	}
	deployment := objs[1]["spec"].(map[string]any)
	container := deployment["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	if gw.Replicas > 0 {
		deployment["replicas"] = gw.Replicas
	}
	if gw.Resources != nil {
		container["resources"] = plan.Clone(gw.Resources)
	}
	// As Sail's own gateway sample: an autoscaler and a disruption
	// budget beside the Deployment.
	if a := gw.Autoscaling; a != nil {
		objs = append(objs, plan.Object{
			"apiVersion": "autoscaling/v2",
			"kind":       "HorizontalPodAutoscaler",
			"metadata":   plan.Meta(gw.Name, ns, map[string]any{"labels": plan.Clone(labels)}),
			"spec": map[string]any{
				"scaleTargetRef": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": gw.Name},
				"minReplicas":    a.MinReplicas,
				"maxReplicas":    a.MaxReplicas,
				"metrics": []any{map[string]any{"type": "Resource", "resource": map[string]any{
					"name": "cpu", "target": map[string]any{"type": "Utilization", "averageUtilization": a.TargetCPUUtilizationPercentage},
				}}},
			},
		})
	}
	if gw.MinAvailable > 0 {
		objs = append(objs, plan.Object{
			"apiVersion": "policy/v1",
			"kind":       "PodDisruptionBudget",
			"metadata":   plan.Meta(gw.Name, ns, map[string]any{"labels": plan.Clone(labels)}),
			"spec":       map[string]any{"minAvailable": gw.MinAvailable, "selector": map[string]any{"matchLabels": plan.Clone(labels)}},
		})
	}
	if gw.Network != "" {
		container["env"] = []any{map[string]any{"name": "ISTIO_META_REQUESTED_NETWORK_VIEW", "value": gw.Network}}
		return plan.Output{Manifests: []plan.File{{Name: "eastwest-gateway.yaml", Objects: objs}}}
	}
	return plan.Output{Manifests: []plan.File{{Name: "ingress-gateway.yaml", Objects: objs}}}
}
