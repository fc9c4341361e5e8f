package main

// Revision tags: whichever installer rendered them (istioctl tag webhooks,
// Helm revisionTags, Sail IstioRevisionTag stood in for by the charts),
// a tag is a MutatingWebhookConfiguration labelled istio.io/tag=<tag>
// whose webhooks call the istiod of the revision the tag names. These
// checks judge what the API server holds, and in a primary let its API
// server inject a dry-run pod through the tag, so a tag that moved in the
// fleet but not in the cluster, or points at the other revision, shows.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"

	admv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

// tagsOf is the revision tags cluster n must have: the fleet's, with the
// cluster's own over them.
func (h *Harness) tagsOf(n string) map[string]string {
	out := map[string]string{}
	for t, r := range h.fleet.Spec.Istio.Tags {
		out[t] = r
	}
	if fc := h.fleet.Spec.Clusters[n]; fc != nil {
		for t, r := range fc.Istio.Tags {
			out[t] = r
		}
	}
	return out
}

// tagNamespaceLabels is the label of the namespaces tag t serves.
func tagNamespaceLabels(t string) map[string]string {
	if t == "default" {
		return map[string]string{"istio-injection": "enabled"}
	}
	return map[string]string{"istio.io/rev": t}
}

func istiodService(rev string) string {
	if rev == "" || rev == "default" {
		return "istiod"
	}
	return "istiod-" + rev
}

// tagChecks are the checks of every cluster's tags.
func (h *Harness) tagChecks() []check {
	var cs []check
	for _, n := range h.names {
		c := h.clusters[n]
		tags := h.tagsOf(n)
		for _, t := range sortedKeys(tags) {
			t, rev := t, tags[t]
			cs = append(cs, check{fmt.Sprintf("tag %s of %s: its webhook calls istiod revision %s, with a caBundle", t, n, rev), func(ctx context.Context) (bool, string) {
				return h.tagWebhook(ctx, c, t, rev)
			}})
			sel := tagNamespaceLabels(t)
			cs = append(cs, check{fmt.Sprintf("tag %s of %s: only its webhook selects %s namespaces", t, n, labels.Set(sel)), func(ctx context.Context) (bool, string) {
				return h.tagSelects(ctx, c, t, sel)
			}})
			if c.fc.Role == "primary" {
				cs = append(cs, check{fmt.Sprintf("tag %s of %s: a pod in a namespace labelled %s is injected by revision %s", t, n, labels.Set(sel), rev), func(ctx context.Context) (bool, string) {
					return h.tagInjects(ctx, c, t, rev, sel)
				}})
			}
		}
	}
	return cs
}

// tagWebhook: cluster c has tag t's MutatingWebhookConfiguration, and every
// webhook in it has a caBundle and reaches the istiod of revision rev: in
// a primary, Service istiod-<rev> picks a running istiod of that revision;
// in a remote (selector-less Service, or URL) it calls an address a load
// balancer of its primary got, the primary runs that revision's istiod,
// and (for a Service) a VirtualService of the primary routes the server
// name the API server sends, <service>.<namespace>.svc, to that istiod:
// the expose-istiod route the call takes through the gateway.
func (h *Harness) tagWebhook(ctx context.Context, c *Cluster, t, rev string) (bool, string) {
	l, err := c.kc.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{LabelSelector: "istio.io/tag=" + t})
	if err != nil {
		return false, err.Error()
	}
	if len(l.Items) == 0 {
		return false, "no MutatingWebhookConfiguration labelled istio.io/tag=" + t
	}
	var problems []string
	for _, w := range l.Items {
		if got := w.Labels["istio.io/rev"]; got != rev {
			problems = append(problems, fmt.Sprintf("%s is labelled istio.io/rev=%s", w.Name, got))
		}
		if len(w.Webhooks) == 0 {
			problems = append(problems, w.Name+" has no webhooks")
		}
		for _, x := range w.Webhooks {
			if len(x.ClientConfig.CABundle) == 0 {
				problems = append(problems, w.Name+" "+x.Name+" has no caBundle")
			}
			if p := h.webhookReaches(ctx, c, x.ClientConfig, rev); p != "" {
				problems = append(problems, w.Name+" "+x.Name+" "+p)
			}
		}
	}
	sort.Strings(problems)
	return len(problems) == 0, strings.Join(dedup(problems), "; ")
}

// webhookReaches says why cc does not reach revision rev's istiod ("" when
// it does).
func (h *Harness) webhookReaches(ctx context.Context, c *Cluster, cc admv1.WebhookClientConfig, rev string) string {
	want := istiodService(rev)
	if s := cc.Service; s != nil {
		if s.Name != want {
			return fmt.Sprintf("calls Service %s/%s, not %s", s.Namespace, s.Name, want)
		}
		svc, err := c.kc.CoreV1().Services(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
		if err != nil {
			return "calls Service " + s.Namespace + "/" + s.Name + ": " + err.Error()
		}
		if len(svc.Spec.Selector) > 0 {
			if svc.Spec.Selector["istio.io/rev"] != rev {
				return fmt.Sprintf("calls Service %s/%s, whose selector %s is not revision %s's", s.Namespace, s.Name, labels.Set(svc.Spec.Selector), rev)
			}
			sel := labels.SelectorFromSet(svc.Spec.Selector)
			for _, ist := range h.istiodList() {
				if ist.cluster == c && ist.ready && sel.Matches(labels.Set(ist.labels)) {
					return ""
				}
			}
			return fmt.Sprintf("calls Service %s/%s, which picks no ready istiod", s.Namespace, s.Name)
		}
		// Selector-less: a remote's, to its primary's gateway.
		sl, err := c.kc.DiscoveryV1().EndpointSlices(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + s.Name})
		if err != nil {
			return err.Error()
		}
		var addrs []string
		for _, e := range sl.Items {
			for _, ep := range e.Endpoints {
				addrs = append(addrs, ep.Addresses...)
			}
		}
		if svc.Spec.ExternalName != "" {
			addrs = append(addrs, svc.Spec.ExternalName)
		}
		if p := h.remoteReaches(ctx, c, addrs, rev, "Service "+s.Namespace+"/"+s.Name); p != "" {
			return p
		}
		return h.routesSNI(ctx, h.clusters[c.fc.ControlPlane], s.Name+"."+s.Namespace+".svc", rev)
	}
	if cc.URL == nil {
		return "has neither a Service nor a URL"
	}
	u, err := url.Parse(*cc.URL)
	if err != nil {
		return err.Error()
	}
	return h.remoteReaches(ctx, c, []string{u.Hostname()}, rev, "URL "+*cc.URL)
}

// remoteReaches: addrs are load-balancer addresses of c's primary, which
// runs a ready istiod of revision rev.
func (h *Harness) remoteReaches(ctx context.Context, c *Cluster, addrs []string, rev, what string) string {
	p := h.clusters[c.fc.ControlPlane]
	if p == nil {
		return "calls " + what + " outside any primary (the cluster has no controlPlane)"
	}
	if len(addrs) == 0 {
		return "calls " + what + ", which has no address"
	}
	got, gotList := h.primaryLBs(ctx, p)
	for _, a := range addrs {
		if !got[a] {
			return fmt.Sprintf("calls %s at %s, but the load balancers of %s got [%s]", what, a, p.name, strings.Join(gotList, " "))
		}
	}
	for _, ist := range h.istiodList() {
		if ist.cluster == p && ist.ready && ist.labels["istio.io/rev"] == rev {
			return ""
		}
	}
	return "calls " + p.name + ", which runs no ready istiod of revision " + rev
}

// routesSNI: a VirtualService of primary p routes TLS with server name sni
// (what the API server sends when it calls a webhook Service) to revision
// rev's istiod: the expose-istiod route the remote's call takes.
func (h *Harness) routesSNI(ctx context.Context, p *Cluster, sni, rev string) string {
	gvr := schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}
	l, err := p.dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "VirtualServices of " + p.name + ": " + err.Error()
	}
	var seen []string
	for _, vs := range l.Items {
		routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "tls")
		for _, r := range routes {
			rm, _ := r.(map[string]any)
			matches, _, _ := unstructured.NestedSlice(rm, "match")
			hit := false
			for _, m := range matches {
				mm, _ := m.(map[string]any)
				hosts, _, _ := unstructured.NestedStringSlice(mm, "sniHosts")
				for _, x := range hosts {
					hit = hit || x == sni
				}
			}
			if !hit {
				continue
			}
			dests, _, _ := unstructured.NestedSlice(rm, "route")
			for _, d := range dests {
				dm, _ := d.(map[string]any)
				host, _, _ := unstructured.NestedString(dm, "destination", "host")
				if strings.HasPrefix(host, istiodService(rev)+".") {
					return ""
				}
				seen = append(seen, vs.GetNamespace()+"/"+vs.GetName()+" -> "+host)
			}
		}
	}
	return fmt.Sprintf("is sent as %s, which no VirtualService of %s routes to %s (routes of that name: [%s])", sni, p.name, istiodService(rev), strings.Join(seen, " "))
}

// primaryLBs are the addresses p's load balancers got.
func (h *Harness) primaryLBs(ctx context.Context, p *Cluster) (map[string]bool, []string) {
	got := map[string]bool{}
	var list []string
	for a, xs := range h.lbAddresses(ctx) {
		for _, x := range xs {
			if x.cluster == p {
				got[a] = true
				list = append(list, x.svc.Namespace+"/"+x.svc.Name+"="+a)
			}
		}
	}
	sort.Strings(list)
	return got, list
}

// tagSelects: a pod without labels in a namespace labelled nsLabels is
// intercepted by tag t's webhooks and by no other injection webhook (two
// would inject twice, or the wrong revision).
func (h *Harness) tagSelects(ctx context.Context, c *Cluster, t string, nsLabels map[string]string) (bool, string) {
	l, err := c.kc.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err.Error()
	}
	var mine, others []string
	for _, w := range l.Items {
		for _, x := range w.Webhooks {
			if !selects(x.NamespaceSelector, nsLabels) || !selects(x.ObjectSelector, nil) || !interceptsPods(x.Rules) {
				continue
			}
			if w.Labels["istio.io/tag"] == t {
				mine = append(mine, w.Name+" "+x.Name)
			} else {
				others = append(others, w.Name+" "+x.Name)
			}
		}
	}
	switch {
	case len(mine) == 0:
		return false, "no webhook of tag " + t + " selects them"
	case len(others) > 0:
		return false, "other webhooks select them too: " + strings.Join(others, ", ")
	}
	return true, ""
}

func interceptsPods(rules []admv1.RuleWithOperations) bool {
	for _, r := range rules {
		for _, res := range r.Resources {
			if res == "pods" || res == "*" {
				for _, op := range r.Operations {
					if op == admv1.Create || op == admv1.OperationAll {
						return true
					}
				}
			}
		}
	}
	return false
}

// tagInjects creates, with dry run, a pod in a namespace labelled nsLabels
// (converge-tag-<t>); the API server calls the injection webhooks for
// real. The injected pod's sidecar.istio.io/status must name revision rev
// and its proxy's discoveryAddress be istiod-<rev>'s.
func (h *Harness) tagInjects(ctx context.Context, c *Cluster, t, rev string, nsLabels map[string]string) (bool, string) {
	ns := "converge-tag-" + t
	if _, err := c.kc.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		if _, err := c.kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: nsLabels}}, metav1.CreateOptions{}); err != nil {
			return false, "namespace " + ns + ": " + err.Error()
		}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "tag-probe", Labels: map[string]string{"app": "tag-probe"}},
		Spec: corev1.PodSpec{
			// The injector mounts a projected token, which needs a
			// ServiceAccount named (the ServiceAccount admission plugin,
			// which would default it, is off).
			ServiceAccountName:           "default",
			AutomountServiceAccountToken: ptr.To(false),
			Containers:                   []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}},
		},
	}
	got, err := c.kc.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return false, "dry-run pod: " + err.Error()
	}
	var proxy *corev1.Container
	for i := range got.Spec.Containers {
		if got.Spec.Containers[i].Name == "istio-proxy" {
			proxy = &got.Spec.Containers[i]
		}
	}
	for i := range got.Spec.InitContainers {
		if got.Spec.InitContainers[i].Name == "istio-proxy" { // native sidecar
			proxy = &got.Spec.InitContainers[i]
		}
	}
	if proxy == nil {
		return false, "the pod was not injected"
	}
	disc := ""
	for _, e := range proxy.Env {
		if e.Name == "PROXY_CONFIG" {
			var pc struct {
				DiscoveryAddress string `json:"discoveryAddress"`
			}
			_ = json.Unmarshal([]byte(e.Value), &pc)
			disc = pc.DiscoveryAddress
		}
	}
	// The injector records its own revision in the status annotation.
	var st struct {
		Revision string `json:"revision"`
	}
	_ = json.Unmarshal([]byte(got.Annotations["sidecar.istio.io/status"]), &st)
	if st.Revision != rev || !strings.HasPrefix(disc, istiodService(rev)+".") {
		return false, fmt.Sprintf("injected by revision %q (sidecar.istio.io/status) with discoveryAddress %q", st.Revision, disc)
	}
	return true, ""
}

func dedup(s []string) []string {
	var out []string
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}
