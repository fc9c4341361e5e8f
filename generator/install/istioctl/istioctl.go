// Package istioctl expresses control planes and gateways as IstioOperator
// files for `istioctl install -f`: since Istio 1.24 no controller acts on
// an applied IstioOperator, so they sit beside the overlay.
package istioctl

import (
	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/generator/install/tags"
	"github.com/meshfleet/meshfleet/generator/plan"
)

// Installer is the istioctl installer.
type Installer struct{}

// ControlPlane is controlplane.yaml: the profile, values and meshConfig
// of the control plane.
//
// An external istiod is external-istiod.yaml: the empty profile with
// istiod only. The external cluster's own istiod, which only injects the
// ingress gateway, is the minimal profile.
func (Installer) ControlPlane(cp *plan.ControlPlane) plan.Output {
	spec := map[string]any{"values": plan.Clone(cp.Values)}
	if cp.Profile != "" {
		spec["profile"] = cp.Profile
	}
	if cp.MeshConfig != nil {
		spec["meshConfig"] = plan.Clone(cp.MeshConfig)
	}
	if cp.Suffix != "" {
		// Side by side, each install is istiod alone (the default
		// profile would install an ingress gateway with every
		// revision, which the installs then fight over), and only one
		// installs the base chart: the CRDs of the newest release.
		if cp.Role == plan.RolePrimary {
			spec["profile"] = "minimal"
		}
		if !cp.Base {
			spec["components"] = map[string]any{"base": map[string]any{"enabled": false}}
		}
	}
	name := "controlplane" + cp.Suffix
	switch cp.Role {
	case plan.RoleExternal:
		name = "external-istiod"
		spec["profile"] = "empty"
		spec["components"] = map[string]any{"pilot": map[string]any{"enabled": true}}
	case plan.RoleLocal:
		spec["profile"] = "minimal"
	}
	out := plan.Output{Istioctl: []plan.File{{Name: name + ".yaml", Objects: []plan.Object{
		istioOperator(cp.Release, cp.Revision, name, cp.Namespace, spec),
	}}}}
	if len(cp.Tags) > 0 {
		// Tags are GitOps objects, not istioctl inputs: moving a tag is a
		// change in git, not a new istioctl install.
		var objs []plan.Object
		for _, t := range cp.Tags {
			objs = append(objs, tags.Objects(cp, t)...)
		}
		out.Manifests = []plan.File{{Name: "revision-tags" + cp.Suffix + ".yaml", Objects: objs}}
	}
	return out
}

// ChartRevision: the charts are given the control plane's revision.
func (Installer) ChartRevision(cp *plan.ControlPlane) string { return cp.Revision }

// Gateway is eastwest-gateway.yaml: what
// samples/multicluster/gen-eastwest-gateway.sh prints for --network
// <network> [--revision <revision>].
func (Installer) Gateway(gw *plan.Gateway) plan.Output {
	var ports []any
	for _, p := range gw.Ports {
		ports = append(ports, map[string]any{"name": p.Name, "port": p.Port, "targetPort": p.Port})
	}
	service := map[string]any{"type": gw.Service.Type, "ports": ports}
	if gw.Service.LoadBalancerIP != "" {
		service["loadBalancerIP"] = gw.Service.LoadBalancerIP
	}
	k8s := map[string]any{"service": service}
	if gw.Network != "" {
		k8s["env"] = []any{map[string]any{"name": "ISTIO_META_REQUESTED_NETWORK_VIEW", "value": gw.Network}}
	}
	if gw.Service.Annotations != nil {
		k8s["serviceAnnotations"] = plan.Clone(gw.Service.Annotations)
	}
	autoscale := true
	if gw.Replicas > 0 {
		k8s["replicaCount"] = gw.Replicas
		autoscale = false // istioctl refuses replicaCount beside the autoscaler
	}
	if a := gw.Autoscaling; a != nil {
		k8s["hpaSpec"] = map[string]any{"minReplicas": a.MinReplicas, "maxReplicas": a.MaxReplicas, "metrics": cpuMetric(a)}
	}
	if gw.MinAvailable > 0 {
		k8s["podDisruptionBudget"] = map[string]any{"minAvailable": gw.MinAvailable}
	}
	if gw.Resources != nil {
		k8s["resources"] = plan.Clone(gw.Resources)
	}
	component := map[string]any{
		"name":    gw.Name,
		"enabled": true,
		"label":   plan.Clone(gw.Labels),
		"k8s":     k8s,
	}
	if gw.Namespace != plan.IstioNamespace {
		component["namespace"] = gw.Namespace
	}
	spec := map[string]any{
		"revision":   "",
		"profile":    "empty",
		"components": map[string]any{"ingressGateways": []any{component}},
		"values": map[string]any{
			"gateways": map[string]any{"istio-ingressgateway": map[string]any{"injectionTemplate": "gateway"}},
		},
	}
	if !autoscale {
		spec["values"].(map[string]any)["gateways"].(map[string]any)["istio-ingressgateway"].(map[string]any)["autoscaleEnabled"] = false
	}
	file, name := "eastwest-gateway.yaml", "eastwest"
	if gw.Network != "" {
		spec["values"].(map[string]any)["global"] = map[string]any{"network": gw.Network}
	} else {
		file, name = "ingress-gateway.yaml", "ingress"
	}
	return plan.Output{Istioctl: []plan.File{{Name: file, Objects: []plan.Object{
		istioOperator(gw.Release, gw.Revision, name, gw.Namespace, spec),
	}}}}
}

// istioOperator is the common frame of every IstioOperator we write.
func istioOperator(r plan.Release, revision, name, namespace string, spec map[string]any) plan.Object {
	spec["hub"] = r.Hub
	spec["tag"] = r.Version
	if revision != "" {
		spec["revision"] = revision
	}
	return plan.Object{
		"apiVersion": "install.istio.io/v1alpha1",
		"kind":       "IstioOperator",
		"metadata":   plan.Meta(name, namespace),
		"spec":       spec,
	}
}

// cpuMetric is the autoscaler's CPU target, in autoscaling/v2 terms.
func cpuMetric(a *fleet.Autoscaling) []any {
	return []any{map[string]any{"type": "Resource", "resource": map[string]any{
		"name": "cpu", "target": map[string]any{"type": "Utilization", "averageUtilization": a.TargetCPUUtilizationPercentage},
	}}}
}
