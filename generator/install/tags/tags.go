// Package tags renders revision tags as plain objects, as `istioctl tag
// generate` prints them: the istioctl installer's tags, and a Sail
// remote's, which the Sail operator refuses to render (an
// IstioRevisionTag cannot target a remote Istio).
package tags

import "github.com/meshfleet/meshfleet/generator/plan"

// Objects are what `istioctl tag generate <tag> --revision <rev>`
// prints (istioctl/pkg/tag/generate.go): the tag's
// MutatingWebhookConfiguration, rendered from the istiod chart's
// revision-tags-mwc.yaml (rev.namespace and rev.object webhooks for
// istio.io/rev=<tag>, and for tag default the namespace and object
// webhooks for istio-injection=enabled and sidecar.istio.io/inject=true);
// for tag default the base chart's istiod-default-validator where istiod
// patches it (cp.Validates: not on a remote); and on a cluster that runs
// istiod the tag's Service (revision-tags-svc.yaml). istiod patches the
// caBundle of the webhooks labelled with its revision: in its own cluster
// all of them, in the remotes it serves the injection webhooks.
func Objects(cp *plan.ControlPlane, tag string) []plan.Object {
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
	if tag == "default" && cp.Validates {
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
