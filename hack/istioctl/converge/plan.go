package main

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Step is one unit of a cluster's delivery: a Flux Kustomization, a Flux
// HelmRelease, an Argo CD Application, an `istioctl install -f FILE`, a
// Sail Istio, or a stage of the overlay applied by hand.
type Step struct {
	Name    string
	deps    []*Step // Ready before this step starts (dependsOn, sync waves, stage order)
	parent  *Step   // applied before this step starts (a HelmRelease inside a Kustomization)
	wait    bool    // readiness counts (Flux wait: true, Helm's wait, Argo CD health)
	ns      string  // namespace for namespaced objects that have none (Helm release namespace)
	build   func() ([]*unstructured.Unstructured, error)
	pre     func() (bool, string)        // optional: a person's step before this one (fill placeholders)
	readyFn func() string                // optional: extra readiness ("" when ready), for stood-in controllers
	health  []HealthExpr                 // Flux healthCheckExprs
	checks  []*unstructured.Unstructured // Flux healthChecks: with wait false, the objects judged
	argo    bool                         // readiness is Argo CD health (argohealth.go), not kstatus
	argoApp bool                         // an app-of-apps' Application: its wave also needs the Application health script
	// noArgoHealth: a stood-in controller's object Argo CD has no health
	// for: its step does not hold the Argo CD step it came with.
	noArgoHealth bool

	state    string // pending, applied, ready, failed
	objs     []*unstructured.Unstructured
	children []*Step
	since    time.Time // when it could start
	readyAt  time.Time
	waiting  string
}

func (s *Step) ready() bool { return s.state == "ready" }

// plan reads the cluster's delivery from the rendered tree.
func (h *Harness) plan(c *Cluster) error {
	var err error
	switch h.delivery {
	case "flux":
		err = h.planFlux(c)
	case "argocd":
		err = h.planArgo(c)
	case "argocd-plugin":
		err = h.planArgoPlugin(c)
	default:
		err = h.planStages(c)
	}
	if err != nil {
		return err
	}
	if h.fleet.Spec.Installer == "istioctl" {
		return h.planIstioctl(c)
	}
	return nil
}

// deliveryPath maps a path as Flux or Argo CD sees it in the repository
// (the fleet's delivery path + the layout below it) to the rendered tree.
func (h *Harness) deliveryPath(p, base string) (string, error) {
	clean := func(s string) string { return strings.Trim(filepath.Clean("/"+s), "/") }
	pp, bb := clean(p), clean(base)
	if bb != "" && pp != bb && !strings.HasPrefix(pp, bb+"/") {
		return "", fmt.Errorf("path %q is not under the fleet's delivery path %q", p, base)
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(pp, bb), "/")
	return filepath.Join(h.rendered, rel), nil
}

// kustomizeBuild builds a directory the way Flux's kustomize-controller and
// Argo CD do: kustomize build when it has a kustomization, else every YAML
// file in it.
func (h *Harness) kustomizeBuild(dir string) ([]*unstructured.Unstructured, error) {
	for _, k := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		if _, err := os.Stat(filepath.Join(dir, k)); err == nil {
			out, err := run(filepath.Join(h.bin, "kustomize"), "build", dir)
			if err != nil {
				return nil, err
			}
			return decodeObjects(out)
		}
	}
	var objs []*unstructured.Unstructured
	err := eachYAMLFile(dir, func(_ string, o []*unstructured.Unstructured) error {
		objs = append(objs, o...)
		return nil
	})
	return objs, err
}

// eachYAMLFile calls fn with the objects of every YAML file directly in
// dir, in file name order.
func eachYAMLFile(dir string, fn func(file string, objs []*unstructured.Unstructured) error) error {
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	more, _ := filepath.Glob(filepath.Join(dir, "*.yml"))
	files = append(files, more...)
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		objs, err := decodeObjects(b)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if err := fn(f, objs); err != nil {
			return err
		}
	}
	return nil
}

// planFlux: one step per Flux Kustomization of flux/<cluster>/, chained by
// dependsOn; wait: true makes readiness of everything it applied count.
func (h *Harness) planFlux(c *Cluster) error {
	dir := filepath.Join(h.rendered, "flux", c.name)
	objs, err := h.kustomizeBuild(dir)
	if err != nil {
		return fmt.Errorf("flux/%s: %w", c.name, err)
	}
	base := h.fleet.Spec.Delivery.Flux.Path
	byName := map[string]*Step{}
	type pending struct {
		s    *Step
		deps []string
	}
	var ps []pending
	for _, o := range objs {
		if o.GetKind() != "Kustomization" || !strings.HasPrefix(o.GetAPIVersion(), "kustomize.toolkit.fluxcd.io/") {
			continue
		}
		path, _, _ := unstructured.NestedString(o.Object, "spec", "path")
		local, err := h.deliveryPath(path, base)
		if err != nil {
			return fmt.Errorf("flux Kustomization %s: %w", o.GetName(), err)
		}
		wait, _, _ := unstructured.NestedBool(o.Object, "spec", "wait")
		tns, _, _ := unstructured.NestedString(o.Object, "spec", "targetNamespace")
		s := &Step{Name: "flux Kustomization " + o.GetName(), wait: wait, ns: tns}
		hes, _, _ := unstructured.NestedSlice(o.Object, "spec", "healthCheckExprs")
		for _, x := range hes {
			if m, ok := x.(map[string]any); ok {
				str := func(k string) string { v, _ := m[k].(string); return v }
				s.health = append(s.health, HealthExpr{str("apiVersion"), str("kind"), str("current"), str("inProgress"), str("failed")})
			}
		}
		// Flux judges everything it applied when it waits, else only the
		// objects healthChecks names (kustomize-controller checkHealth);
		// the expressions judge either set.
		hcs, _, _ := unstructured.NestedSlice(o.Object, "spec", "healthChecks")
		for _, x := range hcs {
			if m, ok := x.(map[string]any); ok && !wait {
				ref := &unstructured.Unstructured{Object: map[string]any{}}
				ref.SetAPIVersion(fmt.Sprint(m["apiVersion"]))
				ref.SetKind(fmt.Sprint(m["kind"]))
				ref.SetName(fmt.Sprint(m["name"]))
				if ns, ok := m["namespace"].(string); ok {
					ref.SetNamespace(ns)
				}
				s.checks = append(s.checks, ref)
			}
		}
		s.build = func() ([]*unstructured.Unstructured, error) { return h.kustomizeBuild(local) }
		byName[o.GetName()] = s
		var deps []string
		ds, _, _ := unstructured.NestedSlice(o.Object, "spec", "dependsOn")
		for _, d := range ds {
			if m, ok := d.(map[string]any); ok {
				deps = append(deps, fmt.Sprint(m["name"]))
			}
		}
		ps = append(ps, pending{s, deps})
	}
	if len(ps) == 0 {
		return fmt.Errorf("flux/%s has no Flux Kustomization", c.name)
	}
	for _, p := range ps {
		for _, d := range p.deps {
			ds, ok := byName[d]
			if !ok {
				return fmt.Errorf("%s depends on %s, which flux/%s does not have", p.s.Name, d, c.name)
			}
			p.s.deps = append(p.s.deps, ds)
		}
		c.steps = append(c.steps, p.s)
	}
	return nil
}

// planArgo: one step per Application whose destination is the cluster,
// ordered by sync wave (a wave starts when every earlier wave is healthy).
func (h *Harness) planArgo(c *Cluster) error {
	objs, err := h.kustomizeBuild(filepath.Join(h.rendered, "argocd"))
	if err != nil {
		return fmt.Errorf("argocd: %w", err)
	}
	if h.argoCM == nil {
		if h.argoCM, err = readArgoCM(filepath.Join(h.rendered, "argocd")); err != nil {
			return fmt.Errorf("argocd-cm: %w", err)
		}
	}
	_, appHealth := h.argoCM.script(&unstructured.Unstructured{Object: map[string]any{"apiVersion": "argoproj.io/v1alpha1", "kind": "Application"}})
	base := h.fleet.Spec.Delivery.ArgoCD.Path
	waves := map[int][]*Step{}
	for _, o := range objs {
		if o.GetKind() != "Application" || !strings.HasPrefix(o.GetAPIVersion(), "argoproj.io/") {
			continue
		}
		dest, _, _ := unstructured.NestedString(o.Object, "spec", "destination", "name")
		if dest != c.name {
			continue
		}
		w, _ := strconv.Atoi(o.GetAnnotations()["argocd.argoproj.io/sync-wave"])
		dns, _, _ := unstructured.NestedString(o.Object, "spec", "destination", "namespace")
		// The app-of-apps waits for a wave's Applications to be healthy
		// only with an Application health script in argocd-cm.
		s := &Step{Name: "Argo CD Application " + o.GetName(), wait: appHealth, argo: true, argoApp: true, ns: dns}
		var sources []map[string]any
		if src, ok, _ := unstructured.NestedMap(o.Object, "spec", "source"); ok {
			sources = append(sources, src)
		}
		if srcs, ok, _ := unstructured.NestedSlice(o.Object, "spec", "sources"); ok {
			for _, x := range srcs {
				if m, ok := x.(map[string]any); ok {
					sources = append(sources, m)
				}
			}
		}
		app := o.GetName()
		s.build = func() ([]*unstructured.Unstructured, error) {
			var all []*unstructured.Unstructured
			for _, src := range sources {
				if chart, _ := src["chart"].(string); chart != "" {
					hm, _ := src["helm"].(map[string]any)
					release, _ := hm["releaseName"].(string)
					if release == "" {
						release = app
					}
					vals, err := helmValues(hm["valuesObject"], hm["values"])
					if err != nil {
						return nil, fmt.Errorf("Application %s: %w", app, err)
					}
					objs, err := templateChart(chart, release, dns, vals)
					if err != nil {
						return nil, err
					}
					all = append(all, objs...)
					continue
				}
				if _, ok := src["plugin"]; ok {
					return nil, fmt.Errorf("Application %s uses a config management plugin; render the fleet with the same output instead", app)
				}
				p, _ := src["path"].(string)
				local, err := h.deliveryPath(p, base)
				if err != nil {
					return nil, fmt.Errorf("Application %s: %w", app, err)
				}
				objs, err := h.kustomizeBuild(local)
				if err != nil {
					return nil, err
				}
				all = append(all, objs...)
			}
			return all, nil
		}
		waves[w] = append(waves[w], s)
	}
	var before []*Step
	for _, w := range slices.Sorted(maps.Keys(waves)) {
		for _, s := range waves[w] {
			s.deps = append([]*Step(nil), before...)
			c.steps = append(c.steps, s)
		}
		before = append(before, waves[w]...)
	}
	if len(c.steps) == 0 {
		return fmt.Errorf("argocd/ has no Application for cluster %s", c.name)
	}
	return nil
}

// planArgoPlugin: one Application per cluster, named mesh-<cluster> as
// examples/argocd/applicationset.yaml names it, whose manifests the
// meshfleet plugin prints (`meshfleet cmp`, run in the plugin's directory
// with the environment Argo CD's repo server gives it). Argo CD syncs them
// wave by wave (argocd.argoproj.io/sync-wave, 0 when absent): a wave
// starts when every resource of the waves before is Healthy by Argo CD's
// health, with the argocd-cm patch found in that directory.
func (h *Harness) planArgoPlugin(c *Cluster) error {
	if h.argoCM == nil {
		var err error
		if h.argoCM, err = readArgoCM(h.pluginDir); err != nil {
			return fmt.Errorf("argocd-cm: %w", err)
		}
	}
	app := "mesh-" + c.name
	cmd := exec.Command(h.meshfleet, "cmp")
	cmd.Dir = h.pluginDir
	cmd.Env = append(os.Environ(), "ARGOCD_APP_NAME="+app, "ARGOCD_ENV_MESHFLEET_CLUSTER="+c.name)
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			err = fmt.Errorf("%w: %s", err, lastLines(string(ee.Stderr), 3))
		}
		return fmt.Errorf("meshfleet cmp for %s: %w", app, err)
	}
	objs, err := decodeObjects(out)
	if err != nil {
		return fmt.Errorf("meshfleet cmp for %s: %w", app, err)
	}
	waves := map[int][]*unstructured.Unstructured{}
	for _, o := range objs {
		w := 0
		if v, ok := o.GetAnnotations()["argocd.argoproj.io/sync-wave"]; ok {
			if w, err = strconv.Atoi(v); err != nil {
				return fmt.Errorf("%s: sync-wave %q: %w", objKey(o), v, err)
			}
		}
		waves[w] = append(waves[w], o)
	}
	var prev []*Step
	for _, w := range slices.Sorted(maps.Keys(waves)) {
		mine := waves[w]
		s := &Step{Name: fmt.Sprintf("Argo CD Application %s sync wave %d", app, w), wait: true, argo: true, ns: "istio-system", deps: prev}
		s.build = func() ([]*unstructured.Unstructured, error) { return mine, nil }
		c.steps = append(c.steps, s)
		prev = []*Step{s}
	}
	if len(c.steps) == 0 {
		return fmt.Errorf("meshfleet cmp printed nothing for %s", app)
	}
	return nil
}

func helmValues(obj any, str any) (map[string]any, error) {
	vals := map[string]any{}
	if s, ok := str.(string); ok && s != "" {
		if err := yaml.Unmarshal([]byte(s), &vals); err != nil {
			return nil, fmt.Errorf("helm values: %w", err)
		}
	}
	if m, ok := obj.(map[string]any); ok {
		for k, v := range m {
			vals[k] = v
		}
	}
	return vals, nil
}

// planStages: no delivery: the stages of clusters/<cluster>/kustomization.yaml
// in their order, each applied when the one before is ready (the README's
// order). The whole overlay is built once, as `kustomize build
// clusters/<cluster>` prints it, and each object goes with the stage that
// has it.
func (h *Harness) planStages(c *Cluster) error {
	dir := filepath.Join(h.rendered, "clusters", c.name)
	all, err := h.kustomizeBuild(dir)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return err
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		return err
	}
	taken := map[string]bool{}
	var prev *Step
	for i, r := range k.Resources {
		var objs []*unstructured.Unstructured
		p := filepath.Join(dir, r)
		if isDir(p) {
			objs, err = h.kustomizeBuild(p)
		} else {
			var raw []byte
			raw, err = os.ReadFile(p)
			if err == nil {
				objs, err = decodeObjects(raw)
			}
		}
		if err != nil {
			return fmt.Errorf("stage %s: %w", r, err)
		}
		in := map[string]bool{}
		for _, o := range objs {
			in[objKey(o)] = true
		}
		last := i == len(k.Resources)-1
		var mine []*unstructured.Unstructured
		for _, o := range all {
			if (in[objKey(o)] || last) && !taken[objKey(o)] {
				taken[objKey(o)] = true
				mine = append(mine, o)
			}
		}
		s := &Step{Name: "stage " + r, wait: true}
		s.build = func() ([]*unstructured.Unstructured, error) { return mine, nil }
		if r == "control-plane" {
			// By hand, the person fills cacerts (and istio-kubeconfig)
			// after the namespace stage and before istiod, as the README's
			// apply order and the placeholders' annotations ask.
			s.pre = func() (bool, string) { return h.ops.filledBeforeInstall(c) }
		}
		if prev != nil {
			s.deps = []*Step{prev}
		}
		c.steps = append(c.steps, s)
		prev = s
	}
	return nil
}

// planIstioctl: installer istioctl: `istioctl install -f` of every file in
// clusters/<cluster>/istioctl/ (controlplane.yaml first), after the step
// that creates the control plane's Namespace, and before the stage after it
// when the stages are applied by hand. The objects are what `istioctl
// manifest generate -f FILE` prints. A person runs these, after filling the
// placeholders the files' headers and the Secrets' annotations ask for.
func (h *Harness) planIstioctl(c *Cluster) error {
	files, _ := filepath.Glob(filepath.Join(h.rendered, "clusters", c.name, "istioctl", "*.yaml"))
	if len(files) == 0 {
		return nil
	}
	sort.SliceStable(files, func(i, j int) bool {
		ci, cj := filepath.Base(files[i]) == "controlplane.yaml", filepath.Base(files[j]) == "controlplane.yaml"
		if ci != cj {
			return ci
		}
		return files[i] < files[j]
	})
	// The step holding the Namespace objects: the namespace stage.
	var nsStep *Step
	for _, s := range c.steps {
		objs, err := s.build()
		if err != nil {
			continue
		}
		for _, o := range objs {
			if o.GetKind() == "Namespace" {
				nsStep = s
			}
		}
		if nsStep != nil {
			break
		}
	}
	prev := nsStep
	var ist []*Step
	for _, f := range files {
		s := &Step{Name: "istioctl install -f " + strings.TrimPrefix(f, h.rendered+"/"), wait: true, ns: "istio-system"}
		s.build = func() ([]*unstructured.Unstructured, error) {
			out, err := run(filepath.Join(h.bin, "istioctl"), "manifest", "generate", "-f", f)
			if err != nil {
				return nil, err
			}
			return decodeObjects(out)
		}
		s.pre = func() (bool, string) { return h.ops.filledBeforeInstall(c) }
		if prev != nil {
			s.deps = []*Step{prev}
		}
		prev = s
		ist = append(ist, s)
	}
	if h.delivery == "none" {
		// The stages after the namespace stage come after istioctl.
		after := false
		for _, s := range c.steps {
			if after && len(s.deps) == 1 && s.deps[0] == nsStep {
				s.deps = []*Step{prev}
			}
			if s == nsStep {
				after = true
			}
		}
	}
	c.steps = append(c.steps, ist...)
	return nil
}
