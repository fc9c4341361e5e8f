// Package istioctl expresses control planes and gateways as IstioOperator
// files for `istioctl install -f`: since Istio 1.24 no controller acts on
// an applied IstioOperator, so they sit beside the overlay.
package istioctl

import (
	"github.com/meshfleet/meshfleet/generator/fleet"
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
			objs = append(objs, TagObjects(cp, t)...)
		}
		out.Manifests = []plan.File{{Name: "revision-tags" + cp.Suffix + ".yaml", Objects: objs}}
	}
	return out
}

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

// TagObjects are what `istioctl tag generate <tag> --revision <rev>`
// prints (istioctl/pkg/tag/generate.go): the tag's
// MutatingWebhookConfiguration, rendered from the istiod chart's
// revision-tags-mwc.yaml (rev.namespace and rev.object webhooks for
// istio.io/rev=<tag>, and for tag default the namespace and object
// webhooks for istio-injection=enabled and sidecar.istio.io/inject=true);
// for tag default the base chart's istiod-default-validator; and on a
// cluster that runs istiod the tag's Service (revision-tags-svc.yaml).
// istiod patches the caBundle of the webhooks labelled with its revision.
func TagObjects(cp *plan.ControlPlane, tag string) []plan.Object {
	istiod := "istiod-" + cp.Revision
	client := func(path string) map[string]any {
		if cp.InjectionURL != "" {
			return map[string]any{"url": cp.InjectionURL}
		}
		return map[string]any{"service": map[string]any{"name": istiod, "namespace": cp.Namespace, "path": path, "port": 443}}
	}
	notFalse := map[string]any{"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": []any{"false"}}
	webhook := func(prefix string, ns, obj []any) map[string]any {
		return map[string]any{
			"name":                    prefix + "sidecar-injector.istio.io",
			"clientConfig":            client(cp.InjectionPath),
			"sideEffects":             "None",
			"rules":                   []any{map[string]any{"operations": []any{"CREATE"}, "apiGroups": []any{""}, "apiVersions": []any{"v1"}, "resources": []any{"pods"}}},
			"failurePolicy":           "Fail",
			"reinvocationPolicy":      "Never",
			"admissionReviewVersions": []any{"v1"},
			"namespaceSelector":       map[string]any{"matchExpressions": ns},
			"objectSelector":          map[string]any{"matchExpressions": obj},
		}
	}
	exists := func(k string) map[string]any { return map[string]any{"key": k, "operator": "DoesNotExist"} }
	in := func(k string, v ...any) map[string]any {
		return map[string]any{"key": k, "operator": "In", "values": v}
	}
	webhooks := []any{
		webhook("rev.namespace.", []any{in("istio.io/rev", tag), exists("istio-injection")}, []any{notFalse}),
		webhook("rev.object.", []any{exists("istio.io/rev"), exists("istio-injection")}, []any{notFalse, in("istio.io/rev", tag)}),
	}
	if tag == "default" {
		webhooks = append(webhooks,
			webhook("namespace.", []any{in("istio-injection", "enabled")}, []any{notFalse}),
			webhook("object.", []any{exists("istio-injection"), exists("istio.io/rev")}, []any{in("sidecar.istio.io/inject", "true"), exists("istio.io/rev")}),
		)
	}
	name := "istio-revision-tag-" + tag
	if cp.Namespace != plan.IstioNamespace {
		name += "-" + cp.Namespace
	}
	objs := []plan.Object{{
		"apiVersion": "admissionregistration.k8s.io/v1",
		"kind":       "MutatingWebhookConfiguration",
		"metadata": map[string]any{"name": name, "labels": map[string]any{
			"istio.io/tag": tag,
			"istio.io/rev": cp.Revision,
			"app":          "sidecar-injector",
		}},
		"webhooks": webhooks,
	}}
	if tag == "default" {
		// As the base chart writes it: no port (443).
		validate := map[string]any{"service": map[string]any{"name": istiod, "namespace": cp.Namespace, "path": "/validate"}}
		if v, ok := cp.Values["base"].(map[string]any); ok && v["validationURL"] != nil {
			validate = map[string]any{"url": v["validationURL"]}
		}
		objs = append(objs, plan.Object{
			"apiVersion": "admissionregistration.k8s.io/v1",
			"kind":       "ValidatingWebhookConfiguration",
			"metadata": map[string]any{"name": "istiod-default-validator", "labels": map[string]any{
				"app": "istiod", "istio": "istiod", "istio.io/rev": cp.Revision,
			}},
			"webhooks": []any{map[string]any{
				"name":         "validation.istio.io",
				"clientConfig": validate,
				"rules": []any{map[string]any{
					"operations":  []any{"CREATE", "UPDATE"},
					"apiGroups":   []any{"security.istio.io", "networking.istio.io", "telemetry.istio.io", "extensions.istio.io"},
					"apiVersions": []any{"*"},
					"resources":   []any{"*"},
				}},
				// No failurePolicy: the chart's Ignore, which istiod
				// turns into Fail once it serves, would be put back by
				// every GitOps sync. The API server's default, Fail,
				// holds Istio configuration back until istiod serves;
				// the stages retry until then.
				"sideEffects":             "None",
				"admissionReviewVersions": []any{"v1"},
			}},
		})
	}
	if cp.Role == plan.RolePrimary {
		port := func(name string, port, target int) map[string]any {
			p := map[string]any{"name": name, "port": port, "protocol": "TCP"}
			if target != 0 {
				p["targetPort"] = target
			}
			return p
		}
		objs = append(objs, plan.Object{
			"apiVersion": "v1",
			"kind":       "Service",
			"metadata": plan.Meta("istiod-revision-tag-"+tag, cp.Namespace, map[string]any{"labels": map[string]any{
				"istio.io/rev": cp.Revision, "istio.io/tag": tag, "app": "istiod", "istio": "pilot",
			}}),
			"spec": map[string]any{
				"ports": []any{
					port("grpc-xds", 15010, 0), port("https-dns", 15012, 0),
					port("https-webhook", 443, 15017), port("http-monitoring", 15014, 0),
				},
				"selector": map[string]any{"app": "istiod", "istio.io/rev": cp.Revision},
			},
		})
	}
	return objs
}

// cpuMetric is the autoscaler's CPU target, in autoscaling/v2 terms.
func cpuMetric(a *fleet.Autoscaling) []any {
	return []any{map[string]any{"type": "Resource", "resource": map[string]any{
		"name": "cpu", "target": map[string]any{"type": "Utilization", "averageUtilization": a.TargetCPUUtilizationPercentage},
	}}}
}
