package main

// Argo CD health, as Argo CD computes it (argo-cd controller/health.go,
// gitops-engine pkg/health and pkg/sync, util/lua, util/settings):
//
//   - A resource's health comes from the first of: "Progressing" while it
//     is being deleted; the Lua script of argocd-cm key
//     resource.customizations.health.<group>_<Kind> (<Kind> for the core
//     group); Argo CD's built-in check for its kind; else none. A resource
//     without health does not count.
//   - An Application is as healthy as its worst resource (Healthy <
//     Suspended < Progressing < Missing < Degraded < Unknown).
//   - A sync with several waves starts a wave only when every resource of
//     the waves before is Healthy (or has no health). For the
//     app-of-apps, whose resources are Applications, that needs an
//     argoproj.io_Application health script: Argo CD has no built-in
//     Application health since 1.8, so without one the waves follow each
//     other as soon as they are applied.
//
// The Lua scripts come from the ConfigMap argocd-cm that meshfleet renders
// next to the Applications (argocd/*.yaml, applied by a person into the
// Argo CD installation), and run in gopher-lua, the interpreter Argo CD
// embeds, with the libraries Argo CD opens (base, table, package; os is
// Argo CD's reduced one and is left out here: a script using it fails
// loudly), `obj` bound to the live object and Argo CD's one-second limit.
//
// Built-in checks: for the kinds gitops-engine checks in Go (apps
// Deployment, StatefulSet, DaemonSet and ReplicaSet; Service, Pod,
// PersistentVolumeClaim; batch Job; autoscaling HorizontalPodAutoscaler;
// APIService; Ingress) and the CRDs Argo CD ships health.lua for that the
// output uses (cert-manager.io Certificate, Issuer, ClusterIssuer;
// external-secrets.io kinds), kstatus stands in: for what these objects
// carry here (a rollout's replica counts and observedGeneration, a Ready
// condition, a LoadBalancer's ingress) Current, InProgress and Failed
// are Healthy, Progressing and Degraded. Every other kind has no health in
// Argo CD and does not hold a wave.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// Argo CD's health codes, best first (gitops-engine's healthOrder).
var argoHealthOrder = []string{"Healthy", "Suspended", "Progressing", "Missing", "Degraded", "Unknown"}

func argoWorse(cur, next string) bool {
	rank := func(s string) int {
		for i, c := range argoHealthOrder {
			if c == s {
				return i
			}
		}
		return 0 // Argo CD ranks an unknown code like Healthy
	}
	return rank(next) > rank(cur)
}

// ArgoHealthScript is one resource.customizations.health key of argocd-cm.
type ArgoHealthScript struct {
	Lua         string
	UseOpenLibs bool
}

// ArgoCM is what the harness reads of argocd-cm: health scripts by
// "group/Kind" (or "Kind" for the core group), and where they came from.
type ArgoCM struct {
	Health map[string]ArgoHealthScript
	Source string // the file, for messages; "" when none was rendered
}

// readArgoCM reads every ConfigMap argocd-cm among the YAML files directly
// in dir (meshfleet's argocd/argocd-cm-health-checks.yaml) the way Argo
// CD's settings manager reads split keys: resource.customizations.<type>.<group_kind>.
func readArgoCM(dir string) (*ArgoCM, error) {
	cm := &ArgoCM{Health: map[string]ArgoHealthScript{}}
	err := eachYAMLFile(dir, func(f string, objs []*unstructured.Unstructured) error {
		for _, o := range objs {
			if o.GetKind() != "ConfigMap" || o.GetAPIVersion() != "v1" || o.GetName() != "argocd-cm" {
				continue
			}
			data, _, _ := unstructured.NestedStringMap(o.Object, "data")
			if _, ok := data["resource.customizations"]; ok {
				return fmt.Errorf("%s: argocd-cm key resource.customizations (the single-key form) is not read by the harness", f)
			}
			for _, k := range slices.Sorted(maps.Keys(data)) {
				parts := strings.SplitN(k, ".", 4)
				if len(parts) < 4 || parts[0] != "resource" || parts[1] != "customizations" {
					continue
				}
				gk, err := argoOverrideKey(parts[3])
				if err != nil {
					return fmt.Errorf("%s: %s: %w", f, k, err)
				}
				s := cm.Health[gk]
				switch parts[2] {
				case "health":
					s.Lua = data[k]
				case "useOpenLibs":
					s.UseOpenLibs = data[k] == "true"
				default:
					continue // actions, ignoreDifferences, ...: not health
				}
				cm.Health[gk] = s
				cm.Source = filepath.Base(f)
			}
		}
		return nil
	})
	return cm, err
}

// argoOverrideKey turns <group>_<Kind> or <Kind> into Argo CD's override
// key, as util/settings does; "all" is its wildcard, which the harness
// does not match.
func argoOverrideKey(gk string) (string, error) {
	parts := strings.Split(gk, "_")
	switch {
	case gk == "all":
		return "", fmt.Errorf("the wildcard key \"all\" is not read by the harness")
	case len(parts) == 2:
		return parts[0] + "/" + parts[1], nil
	case len(parts) == 1 && gk != "":
		return gk, nil
	}
	return "", fmt.Errorf("not <group>_<Kind> or <Kind>")
}

// script is the custom health script for an object, if argocd-cm has one.
func (cm *ArgoCM) script(o *unstructured.Unstructured) (ArgoHealthScript, bool) {
	if cm == nil {
		return ArgoHealthScript{}, false
	}
	gvk := o.GroupVersionKind()
	key := gvk.Kind
	if gvk.Group != "" {
		key = gvk.Group + "/" + gvk.Kind
	}
	s, ok := cm.Health[key]
	return s, ok && s.Lua != ""
}

// runArgoHealthLua runs a health script on obj as Argo CD's VM does and
// returns the status and message the returned table holds.
func runArgoHealthLua(script ArgoHealthScript, obj map[string]any) (string, string, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: !script.UseOpenLibs})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), Protect: true}, lua.LString(lib.name)); err != nil {
			return "", "", err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", luaValue(l, obj))
	fn, err := l.LoadString(script.Lua)
	if err == nil {
		l.Push(fn)
		err = l.PCall(0, lua.MultRet, nil)
	}
	if err != nil {
		return "", "", err
	}
	ret := l.Get(-1)
	switch ret.Type() {
	case lua.LTNil:
		return "", "", nil
	case lua.LTTable:
	default:
		return "", "", fmt.Errorf("the health script returned a %s, not a table", ret.Type())
	}
	t := ret.(*lua.LTable)
	str := func(k string) (string, error) {
		v := t.RawGetString(k)
		switch v.Type() {
		case lua.LTNil:
			return "", nil
		case lua.LTString:
			return v.String(), nil
		}
		return "", fmt.Errorf("the health script's %s is a %s, not a string", k, v.Type())
	}
	st, err := str("status")
	if err != nil {
		return "", "", err
	}
	msg, err := str("message")
	if err != nil {
		return "", "", err
	}
	if st == "" && msg == "" {
		return "", "", nil // an empty table: no status
	}
	for _, c := range argoHealthOrder {
		if st == c {
			return st, msg, nil
		}
	}
	return "Unknown", "Lua returned an invalid health status", nil
}

// luaValue converts a live object (JSON values) into Lua values the way
// Argo CD's decodeValue does: numbers as numbers, objects as tables,
// arrays as sequences, null as nil.
func luaValue(l *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case bool:
		return lua.LBool(x)
	case float64:
		return lua.LNumber(x)
	case int64:
		return lua.LNumber(x)
	case int:
		return lua.LNumber(x)
	case int32:
		return lua.LNumber(x)
	case string:
		return lua.LString(x)
	case json.Number:
		return lua.LString(x)
	case []any:
		t := l.CreateTable(len(x), 0)
		for _, e := range x {
			t.Append(luaValue(l, e))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(x))
		for k, e := range x {
			t.RawSetH(lua.LString(k), luaValue(l, e))
		}
		return t
	}
	return lua.LNil
}

// argoBuiltin are the kinds Argo CD has a built-in health check for that
// the harness judges with kstatus (see the file comment).
var argoBuiltin = map[string]bool{
	"apps/Deployment": true, "apps/StatefulSet": true, "apps/DaemonSet": true, "apps/ReplicaSet": true,
	"Service": true, "Pod": true, "PersistentVolumeClaim": true, "batch/Job": true,
	"autoscaling/HorizontalPodAutoscaler": true, "apiregistration.k8s.io/APIService": true,
	"networking.k8s.io/Ingress": true, "extensions/Ingress": true,
	"cert-manager.io/Certificate": true, "cert-manager.io/Issuer": true, "cert-manager.io/ClusterIssuer": true,
	"external-secrets.io/ExternalSecret": true, "external-secrets.io/SecretStore": true,
	"external-secrets.io/ClusterSecretStore": true, "external-secrets.io/PushSecret": true,
	"external-secrets.io/ClusterExternalSecret": true,
}

// argoResourceHealth is the live object's Argo CD health: "" when it has
// none, else a code and a message.
func (h *Harness) argoResourceHealth(live *unstructured.Unstructured) (string, string) {
	if live.GetDeletionTimestamp() != nil {
		return "Progressing", "Pending deletion"
	}
	if s, ok := h.argoCM.script(live); ok {
		st, msg, err := runArgoHealthLua(s, live.Object)
		if err != nil {
			return "Unknown", "health script of " + h.argoCM.Source + ": " + err.Error()
		}
		return st, msg
	}
	gvk := live.GroupVersionKind()
	key := gvk.Kind
	if gvk.Group != "" {
		key = gvk.Group + "/" + gvk.Kind
	}
	if !argoBuiltin[key] {
		return "", ""
	}
	r, err := status.Compute(live)
	if err != nil {
		return "Unknown", err.Error()
	}
	switch r.Status {
	case status.CurrentStatus:
		return "Healthy", r.Message
	case status.FailedStatus:
		return "Degraded", r.Message
	}
	return "Progressing", r.Message
}

// argoReadiness is the applied object's health in Argo CD's terms ("" when
// it has none) and, unless it is Healthy or has none, what its
// Application waits for.
func (h *Harness) argoReadiness(ctx context.Context, c *Cluster, o *unstructured.Unstructured, defaultNS string) (string, string) {
	m, ns, err := h.resource(c, o, defaultNS)
	if err != nil {
		return "Unknown", objKey(o) + ": " + err.Error()
	}
	live, err := c.dyn.Resource(m.Resource).Namespace(ns).Get(ctx, o.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "Missing", objKey(o) + " is gone"
	}
	if err != nil {
		return "Unknown", objKey(o) + ": " + err.Error()
	}
	st, msg := h.argoResourceHealth(live)
	if st == "" || st == "Healthy" {
		return st, ""
	}
	if msg != "" {
		return st, fmt.Sprintf("%s %s (%s)", objKey(live), st, msg)
	}
	return st, fmt.Sprintf("%s %s", objKey(live), st)
}

// argoAppHealthy runs argocd-cm's Application health script on the
// Application as the app-of-apps sees it (status.health: the worst health
// of its resources, as Argo CD's controller sets it): its sync wave is
// done when that says Healthy. "" when it does, else why not.
func (h *Harness) argoAppHealthy(s *Step, worst string) string {
	sc, _ := h.argoCM.script(&unstructured.Unstructured{Object: map[string]any{"apiVersion": "argoproj.io/v1alpha1", "kind": "Application"}})
	app := map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
		"metadata": map[string]any{"name": strings.TrimPrefix(s.Name, "Argo CD Application "), "namespace": "argocd"},
		"status":   map[string]any{"health": map[string]any{"status": worst}},
	}
	st, msg, err := runArgoHealthLua(sc, app)
	if err != nil {
		return fmt.Sprintf("the Application health script of %s: %v", h.argoCM.Source, err)
	}
	if st == "Healthy" {
		return ""
	}
	return fmt.Sprintf("Application %s by the Application health script of %s for resources %s (%s)", st, h.argoCM.Source, worst, msg)
}
