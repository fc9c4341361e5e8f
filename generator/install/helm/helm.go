// Package helm expresses control planes and gateways as releases of
// Istio's charts base, istiod and gateway, which Flux or Argo CD run.
package helm

import (
	"github.com/meshfleet/meshfleet/generator/plan"
)

// Release names. The east-west gateway's must be istio-eastwestgateway:
// the gateway chart derives the pods' istio label from it, and
// expose-istiod and expose-services select that label.
const (
	ReleaseBase     = "istio-base"
	ReleaseIstiod   = "istiod"
	ReleaseEastWest = plan.EastWestGatewayName
	// ReleaseExternalIstiod is an external control plane's istiod, beside
	// the external cluster's own istiod release.
	ReleaseExternalIstiod = "external-istiod"
)

// Installer is the Helm installer.
type Installer struct{}

func chart(r plan.Release, release, name, namespace string, values map[string]any) plan.Chart {
	return plan.Chart{Release: release, Chart: name, Version: r.Version, Repo: r.Charts, Namespace: namespace, Values: values}
}

// ControlPlane is the base chart (Istio's CRDs and cluster roles) and
// the istiod chart: istiod, or with the remote profile the injector
// webhook and the istiod Service that point at the serving istiod.
func (Installer) ControlPlane(cp *plan.ControlPlane) plan.Output {
	base := map[string]any{}
	if cp.Profile != "" {
		base["profile"] = cp.Profile
	}
	switch {
	case !cp.Validates:
		// No istiod patches a remote's validating webhooks: no default
		// validator (the chart's defaultRevision is "default").
		base["defaultRevision"] = ""
	case cp.Suffix != "":
		// Side by side: the base chart's default validator follows tag
		// default (the istiod releases' revisionTags hold the tag's
		// injection webhooks).
		if cp.DefaultRevision != "" {
			base["defaultRevision"] = cp.DefaultRevision
		}
	case cp.Revision != "" && cp.Default:
		base["defaultRevision"] = cp.Revision
	}
	values := plan.Clone(cp.Values)
	if v, ok := values["base"]; ok {
		base["base"] = plan.Clone(v.(map[string]any)) // validationURL of the default validator
	}
	global, _ := values["global"].(map[string]any)
	if global == nil {
		global = map[string]any{}
		values["global"] = global
	}
	if ns, ok := global["istioNamespace"]; ok {
		// The base chart puts the reader account into istioNamespace
		// (istio-system unless told): a remote of an external control
		// plane has no istio-system, and the release would fail.
		base["global"] = map[string]any{"istioNamespace": ns}
	}
	global["hub"] = cp.Hub
	global["tag"] = cp.Version
	if cp.Revision != "" {
		values["revision"] = cp.Revision
	}
	if len(cp.Tags) > 0 {
		var tags []any
		for _, t := range cp.Tags {
			tags = append(tags, t)
		}
		values["revisionTags"] = tags
	}
	// The remote profile, as the IstioOperator and Sail remotes get it.
	// Not global.configCluster, which some Helm guides add: in
	// primary-remote the primary is the config cluster, and it would only
	// add an istiod account, roles and a validation webhook that nothing
	// in the remote uses.
	if cp.Profile != "" {
		values["profile"] = cp.Profile
	}
	if cp.MeshConfig != nil {
		values["meshConfig"] = plan.Clone(cp.MeshConfig)
	}
	if cp.Role == plan.RoleExternal {
		// The local control plane's base chart holds the CRDs; the
		// external istiod renders no webhooks (operatorManageWebhooks,
		// configValidation false).
		return plan.Output{Charts: []plan.Chart{chart(cp.Release, ReleaseExternalIstiod, "istiod", cp.Namespace, values)}}
	}
	var charts []plan.Chart
	if cp.Base || cp.Suffix == "" { // a cluster's one control plane always brings base
		charts = append(charts, chart(cp.Release, ReleaseBase, "base", cp.Namespace, base))
	}
	// Side by side, one istiod-<revision> release per revision: a new
	// revision is a new release, never an upgrade in place.
	charts = append(charts, chart(cp.Release, ReleaseIstiod+cp.Suffix, "istiod", cp.Namespace, values))
	return plan.Output{Charts: charts}
}

// ChartRevision: the charts are given the control plane's revision.
func (Installer) ChartRevision(cp *plan.ControlPlane) string { return cp.Revision }

// Gateway is the gateway chart as a network gateway: networkGateway
// labels the Service and pods with the network, sets
// ISTIO_META_REQUESTED_NETWORK_VIEW and opens ports 15021, 15443, 15012
// and 15017; the chart's service.type, service.loadBalancerIP and
// service.annotations bind the Service to the fleet's address.
func (Installer) Gateway(gw *plan.Gateway) plan.Output {
	service := map[string]any{"type": gw.Service.Type}
	if gw.Service.LoadBalancerIP != "" {
		service["loadBalancerIP"] = gw.Service.LoadBalancerIP
	}
	if gw.Service.Annotations != nil {
		service["annotations"] = plan.Clone(gw.Service.Annotations)
	}
	values := map[string]any{"service": service}
	if gw.Network != "" {
		values["networkGateway"] = gw.Network
	} else {
		// The ports the chart's default Service lacks.
		var ports []any
		for _, p := range gw.Ports {
			ports = append(ports, map[string]any{"name": p.Name, "port": p.Port, "targetPort": p.Port, "protocol": "TCP"})
		}
		service["ports"] = ports
	}
	if gw.Revision != "" {
		values["revision"] = gw.Revision
	}
	// Sized and protected as the chart takes it (it renders the
	// PodDisruptionBudget only for more than one pod, which the rules
	// make sure of).
	if gw.Replicas > 0 {
		values["replicaCount"] = gw.Replicas
		values["autoscaling"] = map[string]any{"enabled": false}
	}
	if a := gw.Autoscaling; a != nil {
		values["autoscaling"] = map[string]any{"enabled": true, "minReplicas": a.MinReplicas, "maxReplicas": a.MaxReplicas, "targetCPUUtilizationPercentage": a.TargetCPUUtilizationPercentage}
	}
	if gw.MinAvailable > 0 {
		values["podDisruptionBudget"] = map[string]any{"minAvailable": gw.MinAvailable}
	}
	if gw.Resources != nil {
		values["resources"] = plan.Clone(gw.Resources)
	}
	return plan.Output{Charts: []plan.Chart{chart(gw.Release, gw.Name, "gateway", gw.Namespace, values)}}
}
