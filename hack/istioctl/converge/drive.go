package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

const tick = time.Second

// drive applies a cluster's steps in their order until every step is ready
// or has failed. A step that cannot start or get ready within the step
// bound fails, naming what it waited for.
func (h *Harness) drive(ctx context.Context, c *Cluster) {
	t0 := time.Now()
	for ctx.Err() == nil {
		c.mu.Lock()
		steps := append([]*Step(nil), c.steps...)
		c.mu.Unlock()
		busy, changed := false, false
		for _, s := range steps {
			if s.state == "ready" || s.state == "failed" {
				continue
			}
			busy = true
			before := s.state
			h.advance(ctx, c, s)
			changed = changed || s.state != before
		}
		// Settled: a whole tick without anything applied; the delivery
		// waits. Only then does the operator (a person) act.
		c.mu.Lock()
		c.settled = !changed
		c.mu.Unlock()
		if !busy {
			break
		}
		time.Sleep(tick)
	}
	c.mu.Lock()
	c.settled = true
	c.mu.Unlock()
	var ok, bad []string
	for _, s := range c.steps {
		if s.state == "ready" {
			ok = append(ok, fmt.Sprintf("%s %.0fs", s.Name, s.readyAt.Sub(t0).Seconds()))
		} else {
			bad = append(bad, fmt.Sprintf("%s: %s", s.Name, s.waiting))
		}
	}
	if len(bad) == 0 {
		h.record(Result{OK: true, Name: fmt.Sprintf("apply %s: %d steps ready within %s each", c.name, len(ok), h.stepTimeout), Msg: strings.Join(ok, ", ")})
	}
	for _, b := range bad {
		h.record(Result{Name: fmt.Sprintf("apply %s: %s", c.name, strings.SplitN(b, ":", 2)[0]), Msg: strings.SplitN(b, ": ", 2)[1]})
	}
}

func (h *Harness) advance(ctx context.Context, c *Cluster, s *Step) {
	// Can it start?
	if s.state == "" || s.state == "pending" {
		s.state = "pending"
		for _, d := range s.deps {
			if d.state == "failed" {
				s.state, s.waiting = "failed", "never started: "+d.Name+" failed"
				return
			}
			if !d.ready() {
				s.waiting = "waiting for " + d.Name
				return
			}
		}
		if s.parent != nil && s.parent.state == "pending" {
			s.waiting = "waiting for " + s.parent.Name + " to apply"
			return
		}
		if s.since.IsZero() {
			s.since = time.Now()
		}
		if s.pre != nil {
			if ok, why := s.pre(); !ok {
				s.waiting = why
				h.timeout(c, s)
				return
			}
		}
		objs, err := s.build()
		if err != nil {
			s.waiting = "building: " + err.Error()
			h.timeout(c, s)
			return
		}
		objs = h.breakObjects(c, objs)
		applied, children, err := h.consume(c, s, objs)
		if err == nil {
			err = h.apply(ctx, c, applied, s.ns)
		}
		if err != nil {
			s.waiting = "applying: " + err.Error()
			h.timeout(c, s)
			return
		}
		s.objs = applied
		s.children = children
		c.mu.Lock()
		c.steps = append(c.steps, children...)
		c.mu.Unlock()
		s.state = "applied"
		// The deployment controller and kubelet act at once on what was
		// applied (an istiod starts with the cacerts it finds now).
		h.deployments(ctx, c)
		h.logf("cluster %s: applied %s (%d objects, %d child steps)", c.name, s.Name, len(applied), len(children))
	}
	if s.state == "applied" {
		if !s.wait && len(s.checks) == 0 {
			s.state, s.readyAt = "ready", time.Now()
			return
		}
		var notReady []string
		worst := "Healthy"
		if s.wait {
			// Everything it applied: by Argo CD's health, or by the Flux
			// health check expression that covers its kind, else kstatus.
			for _, o := range s.objs {
				var msg string
				switch {
				case s.argo:
					var st string
					st, msg = h.argoReadiness(ctx, c, o, s.ns)
					if argoWorse(worst, st) {
						worst = st
					}
				case s.healthExpr(o) != nil:
					if msg := h.checkStatus(ctx, c, s, o); msg != "" {
						notReady = append(notReady, msg)
					}
					continue
				default:
					msg = h.readiness(ctx, c, o, s.ns)
				}
				if msg != "" {
					notReady = append(notReady, msg)
					if strings.HasSuffix(msg, " is gone") {
						// Flux and Argo CD (selfHeal) apply it again.
						_ = h.applyOne(ctx, c, o, s.ns)
					}
				}
			}
		} else {
			// Flux without wait: only the objects spec.healthChecks names.
			for _, o := range s.checks {
				if msg := h.checkStatus(ctx, c, s, o); msg != "" {
					notReady = append(notReady, msg)
				}
			}
		}
		if s.argoApp && len(notReady) == 0 {
			if msg := h.argoAppHealthy(s, worst); msg != "" {
				notReady = append(notReady, msg)
			}
		}
		if s.readyFn != nil {
			if msg := s.readyFn(); msg != "" {
				notReady = append(notReady, msg)
			}
		}
		for _, ch := range s.children {
			if ch.state == "failed" {
				s.state, s.waiting = "failed", ch.Name+" failed: "+ch.waiting
				return
			}
			if !ch.ready() && !ch.noArgoHealth {
				notReady = append(notReady, ch.Name+" not ready")
			}
		}
		if len(notReady) == 0 {
			s.state, s.readyAt = "ready", time.Now()
			h.logf("cluster %s: %s ready", c.name, s.Name)
			return
		}
		s.waiting = "waiting for " + strings.Join(notReady, "; ")
		h.timeout(c, s)
	}
}

func (h *Harness) timeout(c *Cluster, s *Step) {
	if time.Since(s.since) > h.stepTimeout {
		s.state = "failed"
		s.waiting = fmt.Sprintf("not ready after %s: %s", h.stepTimeout, s.waiting)
		c.mu.Lock()
		for k, v := range c.notes {
			if strings.Contains(s.waiting, k) {
				s.waiting += " (" + v + ")"
			}
		}
		c.mu.Unlock()
	}
}

// consume takes out the objects whose controller the harness plays (Flux
// helm-controller, the Sail operator, External Secrets) and turns them into
// child steps or stand-in work; the rest is applied as it is.
func (h *Harness) consume(c *Cluster, s *Step, objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, []*Step, error) {
	var apply []*unstructured.Unstructured
	var children []*Step
	hrs := map[string]*Step{}
	hrDeps := map[*Step][]string{}
	tags := map[string]string{} // IstioRevisionTag -> the Istio it targets
	for _, o := range objs {
		if o.GetKind() == "IstioRevisionTag" && strings.HasPrefix(o.GetAPIVersion(), "sailoperator.io/") {
			tags[o.GetName()], _, _ = unstructured.NestedString(o.Object, "spec", "targetRef", "name")
		}
	}
	for _, o := range objs {
		group := strings.SplitN(o.GetAPIVersion(), "/", 2)[0]
		switch {
		case group == "source.toolkit.fluxcd.io" || group == "kustomize.toolkit.fluxcd.io" || group == "argoproj.io":
			// Sources and nested deliveries: the harness reads the
			// rendered tree itself.
		case group == "helm.toolkit.fluxcd.io" && o.GetKind() == "HelmRelease":
			ch := h.helmReleaseStep(c, o)
			ch.parent = s
			hrs[o.GetName()] = ch
			ds, _, _ := unstructured.NestedSlice(o.Object, "spec", "dependsOn")
			for _, d := range ds {
				if m, ok := d.(map[string]any); ok {
					hrDeps[ch] = append(hrDeps[ch], fmt.Sprint(m["name"]))
				}
			}
			children = append(children, ch)
		case group == "sailoperator.io" && o.GetKind() == "Istio":
			ch := h.sailStep(c, o, tags)
			ch.parent = s
			// Argo CD has no health check for an Istio (none built in):
			// unless argocd-cm has one, it does not hold the wave.
			_, script := h.argoCM.script(o)
			ch.noArgoHealth = s.argo && !script
			children = append(children, ch)
		case group == "sailoperator.io":
			// IstioRevisionTag: read above; IstioCNI: not stood in.
		case group == "external-secrets.io" || group == "generators.external-secrets.io":
			if ch := h.esoStep(c, o); ch != nil {
				ch.parent = s
				children = append(children, ch)
			}
		default:
			apply = append(apply, o)
		}
	}
	for ch, ds := range hrDeps {
		for _, d := range ds {
			dep, ok := hrs[d]
			if !ok {
				// A HelmRelease in another stage of the cluster.
				for _, other := range c.steps {
					if other.Name == "Flux HelmRelease "+d {
						dep = other
					}
				}
			}
			if dep == nil {
				return nil, nil, fmt.Errorf("HelmRelease %s depends on %s, which the cluster does not have", ch.Name, d)
			}
			ch.deps = append(ch.deps, dep)
		}
	}
	return apply, children, nil
}

// helmReleaseStep: what Flux's helm-controller does with a HelmRelease:
// install the chart with the release's values and (by default) wait for
// every object to be ready.
func (h *Harness) helmReleaseStep(c *Cluster, hr *unstructured.Unstructured) *Step {
	chart, _, _ := unstructured.NestedString(hr.Object, "spec", "chart", "spec", "chart")
	release, _, _ := unstructured.NestedString(hr.Object, "spec", "releaseName")
	if release == "" {
		release = hr.GetName()
	}
	ns, _, _ := unstructured.NestedString(hr.Object, "spec", "targetNamespace")
	if ns == "" {
		ns = hr.GetNamespace()
	}
	values, _, _ := unstructured.NestedMap(hr.Object, "spec", "values")
	disableWait, _, _ := unstructured.NestedBool(hr.Object, "spec", "install", "disableWait")
	s := &Step{Name: "Flux HelmRelease " + hr.GetName(), wait: !disableWait, ns: ns}
	s.build = func() ([]*unstructured.Unstructured, error) { return templateChart(chart, release, ns, values) }
	return s
}

// sailStep: what the Sail operator does with an Istio and the
// IstioRevisionTags that target it (pkg/reconcile/istiod.go,
// controllers/istiorevisiontag): the istiod chart with Sail's default
// profile values (defaultRevision "", configValidation) under
// spec.values, the revision named after the Istio (none for `default`);
// the base chart with the same values only for an Istio named default;
// for each tag the revisiontags chart (the istiod chart's tag webhook and
// Service, revisionTags [tag]) and for tag default the base chart with
// defaultRevision set to the revision. A tag that targets a remote Istio
// is refused, as Sail refuses it. The Sail operator itself cannot be had
// here (it is not on the Go module proxy).
func (h *Harness) sailStep(c *Cluster, ist *unstructured.Unstructured, tags map[string]string) *Step {
	ns, _, _ := unstructured.NestedString(ist.Object, "spec", "namespace")
	if ns == "" {
		ns = "istio-system"
	}
	user, _, _ := unstructured.NestedMap(ist.Object, "spec", "values")
	values := mergeValues(map[string]any{
		"defaultRevision": "",
		"global":          map[string]any{"configValidation": true},
	}, user)
	profile, _, _ := unstructured.NestedString(ist.Object, "spec", "profile")
	rev := ist.GetName()
	if rev != "default" {
		values["revision"] = rev
	}
	// Sail's own profiles (resources/<version>/profiles): each sets the
	// chart's profile of its name, except empty and default, which set
	// none, and openshift, which sets global.platform instead.
	switch profile {
	case "", "default", "empty":
	case "openshift":
		setIfAbsent(values, "openshift", "global", "platform")
	case "openshift-ambient":
		setIfAbsent(values, "ambient", "profile")
		setIfAbsent(values, "openshift", "global", "platform")
	default:
		values["profile"] = profile
	}
	g, _ := values["global"].(map[string]any)
	g["istioNamespace"] = ns
	var mine []string
	for t, target := range tags {
		if target == rev {
			mine = append(mine, t)
		}
	}
	sort.Strings(mine)
	s := &Step{Name: "Sail Istio " + ist.GetName() + " (stood in: its charts)", wait: true, ns: ns}
	s.build = func() ([]*unstructured.Unstructured, error) {
		var out []*unstructured.Unstructured
		base, err := templateChart("base", rev+"-base", ns, values)
		if err != nil {
			return nil, err
		}
		for _, o := range base {
			// base's CRDs come with the Sail operator in any case.
			if rev == "default" || o.GetKind() == "CustomResourceDefinition" {
				out = append(out, o)
			}
		}
		objs, err := templateChart("istiod", rev+"-istiod", ns, values)
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
		for _, t := range mine {
			if profile == "remote" {
				return nil, fmt.Errorf("the Sail operator refuses IstioRevisionTag %s: it targets Istio %s, whose profile is remote", t, rev)
			}
			tv := mergeValues(values, map[string]any{"revisionTags": []any{t}})
			objs, err := templateChart("istiod", t+"-revisiontags", ns, tv)
			if err != nil {
				return nil, err
			}
			for _, o := range objs {
				if (o.GetKind() == "MutatingWebhookConfiguration" && strings.HasPrefix(o.GetName(), "istio-revision-tag-")) ||
					(o.GetKind() == "Service" && strings.HasPrefix(o.GetName(), "istiod-revision-tag-")) {
					out = append(out, o)
				}
			}
			if t == "default" {
				objs, err := templateChart("base", t+"-base", ns, mergeValues(values, map[string]any{"defaultRevision": rev}))
				if err != nil {
					return nil, err
				}
				for _, o := range objs {
					if o.GetKind() != "CustomResourceDefinition" {
						out = append(out, o)
					}
				}
			}
		}
		return dedupe(out), nil
	}
	return s
}

// mergeValues is a new values tree: b over a, maps key by key.
func mergeValues(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = mergeValues(am, bm)
				continue
			}
			out[k] = mergeValues(map[string]any{}, bm)
			continue
		}
		out[k] = v
	}
	return out
}

// dedupe keeps the last of objects of the same kind, namespace and name
// (the charts each bring the reader account, for one).
func dedupe(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	last := map[string]int{}
	for i, o := range objs {
		last[objKey(o)] = i
	}
	var out []*unstructured.Unstructured
	for i, o := range objs {
		if last[objKey(o)] == i {
			out = append(out, o)
		}
	}
	return out
}

// apply applies objects server-side: Namespaces and CRDs first (waiting
// for CRDs to be established), then the rest.
func (h *Harness) apply(ctx context.Context, c *Cluster, objs []*unstructured.Unstructured, defaultNS string) error {
	rank := func(o *unstructured.Unstructured) int {
		switch o.GetKind() {
		case "Namespace":
			return 0
		case "CustomResourceDefinition":
			return 1
		}
		return 2
	}
	sorted := append([]*unstructured.Unstructured(nil), objs...)
	sort.SliceStable(sorted, func(i, j int) bool { return rank(sorted[i]) < rank(sorted[j]) })
	var errs []string
	crds := false
	for _, o := range sorted {
		if rank(o) == 2 && crds {
			c.resetMapper()
			if err := h.waitCRDs(ctx, c, sorted); err != nil {
				return err
			}
			crds = false
		}
		if rank(o) == 1 {
			crds = true
		}
		if err := h.applyOne(ctx, c, o, defaultNS); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", objKey(o), err))
		}
	}
	if crds {
		c.resetMapper()
	}
	if len(errs) > 0 {
		if len(errs) > 3 {
			errs = append(errs[:3], fmt.Sprintf("and %d more", len(errs)-3))
		}
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func (h *Harness) resource(c *Cluster, o *unstructured.Unstructured, defaultNS string) (*meta.RESTMapping, string, error) {
	gvk := o.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		c.resetMapper()
		return nil, "", fmt.Errorf("no API for %s (is its CRD installed?)", gvk)
	}
	ns := o.GetNamespace()
	if m.Scope.Name() == meta.RESTScopeNameNamespace && ns == "" {
		ns = defaultNS
		if ns == "" {
			ns = "default"
		}
	}
	if m.Scope.Name() != meta.RESTScopeNameNamespace {
		ns = ""
	}
	return m, ns, nil
}

func (h *Harness) applyOne(ctx context.Context, c *Cluster, o *unstructured.Unstructured, defaultNS string) error {
	return h.applyAs(ctx, c, o, defaultNS, "converge")
}

// applyAs applies with a field manager of its own: the delivery's and the
// operator's fields stay apart, as they do in a cluster.
func (h *Harness) applyAs(ctx context.Context, c *Cluster, o *unstructured.Unstructured, defaultNS, manager string) error {
	m, ns, err := h.resource(c, o, defaultNS)
	if err != nil {
		return err
	}
	o = o.DeepCopy()
	o.SetNamespace(ns)
	unstructured.RemoveNestedField(o.Object, "status")
	_, err = c.dyn.Resource(m.Resource).Namespace(ns).Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: manager, Force: true})
	return err
}

func (h *Harness) waitCRDs(ctx context.Context, c *Cluster, objs []*unstructured.Unstructured) error {
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	deadline := time.Now().Add(60 * time.Second)
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		for {
			u, err := c.dyn.Resource(crdGVR).Get(ctx, o.GetName(), metav1.GetOptions{})
			if err == nil {
				if r, err := status.Compute(u); err == nil && r.Status == status.CurrentStatus {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("CRD %s not established after 60s", o.GetName())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	c.resetMapper()
	return nil
}

// readiness is "" when the live object is Current by kstatus, else what it
// waits for.
func (h *Harness) readiness(ctx context.Context, c *Cluster, o *unstructured.Unstructured, defaultNS string) string {
	m, ns, err := h.resource(c, o, defaultNS)
	if err != nil {
		return objKey(o) + ": " + err.Error()
	}
	u, err := c.dyn.Resource(m.Resource).Namespace(ns).Get(ctx, o.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return objKey(o) + " is gone"
	}
	if err != nil {
		return objKey(o) + ": " + err.Error()
	}
	r, err := status.Compute(u)
	if err != nil {
		return objKey(o) + ": " + err.Error()
	}
	if r.Status == status.CurrentStatus {
		return ""
	}
	return fmt.Sprintf("%s %s (%s)", objKey(u), r.Status, r.Message)
}

// setIfAbsent sets values[path...] to v unless the user's values set it
// (Sail's profile values lie under the Istio's spec.values).
func setIfAbsent(values map[string]any, v any, path ...string) {
	m := values
	for _, k := range path[:len(path)-1] {
		n, _ := m[k].(map[string]any)
		if n == nil {
			n = map[string]any{}
			m[k] = n
		}
		m = n
	}
	if _, ok := m[path[len(path)-1]]; !ok {
		m[path[len(path)-1]] = v
	}
}
