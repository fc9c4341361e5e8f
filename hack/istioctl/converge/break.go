package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// The negative cases: each breaks the mesh the way a real mistake would,
// and names the check that must catch it (hack/converge.sh --self-test).
var breakCases = []string{"network-label", "missing-remote-secret", "mesh-id", "late-cacerts", "gateway-address", "argocd-secret-health", "config-webhook-address", "unanswered-webhook", "config-webhook-host", "gateway-cert-name", "tag-revision"}

// BreakCatchers maps each case to the check (a substring of its name) that
// must fail.
var BreakCatchers = map[string]string{
	"network-label":         "probe endpoint",
	"missing-remote-secret": "synced",
	"mesh-id":               "mesh ID",
	"late-cacerts":          "same root",
	"gateway-address":       "gateway at",
	// Run on an Argo CD fleet: argocd-cm without the Secret health check
	// no longer holds the control-plane wave until cacerts is filled.
	"argocd-secret-health": "same root",
	// An external control plane's config cluster whose webhooks call
	// another address than its ingress gateway's.
	"config-webhook-address": "call the external istiod at an address",
	"unanswered-webhook":     "failed calling webhook",
	// Run on a host-named external control plane: the config cluster's
	// webhooks call another host name than the fleet's (the owner's DNS
	// has no record for it), and the gateway's publicly trusted
	// certificate is issued for another name.
	"config-webhook-host": "call the external istiod at an address",
	"gateway-cert-name":   "call the external istiod at an address",
	// Run on a fleet with revision tags: the primary's first tag other
	// than default calls another revision's istiod.
	"tag-revision": "is injected by revision",
}

func validBreak(b string) bool {
	for _, c := range breakCases {
		if c == b {
			return true
		}
	}
	return false
}

// victim is the cluster a case breaks: the first remote, else the last
// cluster; primary is the first primary.
func (h *Harness) victim() (victim, primary string) {
	for _, n := range h.names {
		fc := h.fleet.Spec.Clusters[n]
		if fc.Role == "remote" && victim == "" {
			victim = n
		}
		if fc.Role == "primary" && primary == "" {
			primary = n
		}
	}
	if victim == "" {
		victim = h.names[len(h.names)-1]
	}
	return victim, primary
}

// applyBreak changes the rendered tree, for the cases that are edits of it.
func (h *Harness) applyBreak() error {
	if h.brk == "argocd-secret-health" {
		return h.dropArgoSecretHealth()
	}
	if h.brk != "mesh-id" {
		return nil
	}
	// The primary: a remote's own meshID reaches nothing istiod reports.
	_, v := h.victim()
	old := "meshID: " + h.fleet.Spec.Mesh.ID
	n := 0
	err := filepath.Walk(h.rendered, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(h.rendered, p)
		if !strings.HasPrefix(rel, filepath.Join("clusters", v)+"/") && !strings.HasPrefix(rel, "argocd/") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s := string(b)
		if strings.HasPrefix(rel, "argocd/") {
			// only the victim's Applications: their documents name it.
			docs := strings.Split(s, "\n---\n")
			for i, d := range docs {
				if strings.Contains(d, "name: "+v+"\n") && strings.Contains(d, old) {
					docs[i] = strings.ReplaceAll(d, old, old+"-other")
					n++
				}
			}
			s = strings.Join(docs, "\n---\n")
		} else if strings.Contains(s, old) {
			s = strings.ReplaceAll(s, old, old+"-other")
			n++
		}
		return os.WriteFile(p, []byte(s), fi.Mode())
	})
	if err == nil && n == 0 {
		err = fmt.Errorf("no %q in cluster %s's output", old, v)
	}
	return err
}

// breakObjects changes the objects a step applies, for the cases that are
// edits of objects.
func (h *Harness) breakObjects(c *Cluster, objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	v, p := h.victim()
	switch h.brk {
	case "network-label":
		if c.name != v {
			return objs
		}
		for _, o := range objs {
			if o.GetKind() == "Namespace" {
				if l := o.GetLabels(); l["topology.istio.io/network"] != "" {
					l["topology.istio.io/network"] = "wrong-network"
					o.SetLabels(l)
				}
			}
		}
	case "missing-remote-secret":
		if c.name != p {
			return objs
		}
		var out []*unstructured.Unstructured
		for _, o := range objs {
			if o.GetKind() == "Secret" && o.GetLabels()["istio/multiCluster"] == "true" && o.GetAnnotations()["networking.istio.io/cluster"] == v {
				continue
			}
			out = append(out, o)
		}
		return out
	case "config-webhook-address", "config-webhook-host":
		// The config cluster's istiod EndpointSlice (remotePilotAddress)
		// and webhook URLs name another address (or host name) than the
		// gateway's.
		fc := h.fleet.Spec.Clusters[c.name]
		x := h.fleet.Spec.Clusters[fc.ControlPlane]
		if !fc.ConfigCluster || x == nil || x.IstiodGateway == nil {
			return objs
		}
		addr, other := x.IstiodGateway.Address, "203.0.113.254"
		if h.brk == "config-webhook-host" {
			other = "other-" + addr
		}
		for _, o := range objs {
			switch o.GetKind() {
			case "EndpointSlice", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "Service":
				swapString(o.Object, addr, other)
			}
		}
	case "gateway-cert-name":
		// The istiod gateway's certificate is issued for another name.
		fc := h.fleet.Spec.Clusters[c.name]
		if fc.IstiodGateway == nil {
			return objs
		}
		for _, o := range objs {
			if o.GetKind() == "Certificate" {
				swapString(o.Object, fc.IstiodGateway.Address, "other-"+fc.IstiodGateway.Address)
			}
		}
	case "unanswered-webhook":
		// The primary's webhooks fail closed from the start and name a
		// Service nothing serves: istiod still patches their caBundle, and
		// the API server's call finds no istiod, so its east-west gateway's
		// pod (which the injector intercepts) is refused, as in a cluster.
		if c.name != p {
			return objs
		}
		for _, o := range objs {
			if k := o.GetKind(); k != "ValidatingWebhookConfiguration" && k != "MutatingWebhookConfiguration" {
				continue
			}
			hooks, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
			for i := range hooks {
				w, ok := hooks[i].(map[string]any)
				if !ok {
					continue
				}
				w["failurePolicy"] = "Fail"
				if _, ok, _ := unstructured.NestedMap(w, "clientConfig", "service"); ok {
					_ = unstructured.SetNestedField(w, "istiod-nobody", "clientConfig", "service", "name")
				}
			}
			_ = unstructured.SetNestedSlice(o.Object, hooks, "webhooks")
		}
	case "tag-revision":
		if c.name != p {
			return objs
		}
		t, rev, other := h.tagToBreak(p)
		if t == "" {
			return objs
		}
		for _, o := range objs {
			if o.GetKind() == "MutatingWebhookConfiguration" && o.GetLabels()["istio.io/tag"] == t {
				hooks, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
				for i := range hooks {
					if w, ok := hooks[i].(map[string]any); ok {
						if name, _, _ := unstructured.NestedString(w, "clientConfig", "service", "name"); name == istiodService(rev) {
							_ = unstructured.SetNestedField(w, istiodService(other), "clientConfig", "service", "name")
						}
					}
				}
				_ = unstructured.SetNestedSlice(o.Object, hooks, "webhooks")
			}
		}
	case "gateway-address":
		// The gateway Service asks for another address than the fleet declares.
		fc := h.fleet.Spec.Clusters[c.name]
		if fc.EastWestGateway == nil {
			return objs
		}
		for _, o := range objs {
			if o.GetKind() != "Service" {
				continue
			}
			if ip, _, _ := unstructured.NestedString(o.Object, "spec", "loadBalancerIP"); ip == fc.EastWestGateway.Address {
				_ = unstructured.SetNestedField(o.Object, "203.0.113.254", "spec", "loadBalancerIP")
			}
			a := o.GetAnnotations()
			for k, val := range a {
				if strings.Contains(val, fc.EastWestGateway.Address) {
					a[k] = strings.ReplaceAll(val, fc.EastWestGateway.Address, "203.0.113.254")
				}
			}
			o.SetAnnotations(a)
		}
	}
	return objs
}

// tagToBreak is the first tag of cluster n other than default, its
// revision, and another revision a tag of n names ("" when there is none).
func (h *Harness) tagToBreak(n string) (tag, rev, other string) {
	tags := h.tagsOf(n)
	for _, t := range sortedKeys(tags) {
		if t == "default" {
			continue
		}
		for _, u := range sortedKeys(tags) {
			if tags[u] != tags[t] {
				return t, tags[t], tags[u]
			}
		}
	}
	return "", "", ""
}

// swapString replaces old by repl in every string of an object's tree.
func swapString(v any, old, repl string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, y := range x {
			x[k] = swapString(y, old, repl)
		}
	case []any:
		for i, y := range x {
			x[i] = swapString(y, old, repl)
		}
	case string:
		return strings.ReplaceAll(x, old, repl)
	}
	return v
}

// dropArgoSecretHealth removes the Secret health check from the argocd-cm
// the output renders, as if the person merging it had left it out.
func (h *Harness) dropArgoSecretHealth() error {
	const key = "resource.customizations.health.Secret"
	n := 0
	err := eachYAMLFile(filepath.Join(h.rendered, "argocd"), func(f string, objs []*unstructured.Unstructured) error {
		var out []byte
		hit := false
		for _, o := range objs {
			if o.GetKind() == "ConfigMap" && o.GetName() == "argocd-cm" {
				if _, ok, _ := unstructured.NestedString(o.Object, "data", key); ok {
					unstructured.RemoveNestedField(o.Object, "data", key)
					hit = true
					n++
				}
			}
			y, err := yaml.Marshal(o.Object)
			if err != nil {
				return err
			}
			out = append(append(out, "---\n"...), y...)
		}
		if hit {
			return os.WriteFile(f, out, 0o644)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("no argocd-cm with %s under argocd/", key)
	}
	return nil
}
