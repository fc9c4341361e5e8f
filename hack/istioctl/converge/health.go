package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// HealthExpr is a Flux Kustomization's spec.healthCheckExprs entry: CEL
// expressions for the objects of one kind (or, with no kind, of one API
// group).
type HealthExpr struct {
	APIVersion, Kind, Current, InProgress, Failed string
}

// healthExpr is the expression that covers o, as Flux picks it (by
// GroupKind, else by group), or nil: then kstatus judges o.
func (s *Step) healthExpr(o *unstructured.Unstructured) *HealthExpr {
	gk := o.GroupVersionKind().GroupKind()
	var group *HealthExpr
	for i := range s.health {
		e := &s.health[i]
		egk := schema.FromAPIVersionAndKind(e.APIVersion, e.Kind).GroupKind()
		if e.Kind == "" && egk.Group == gk.Group {
			group = e
		} else if egk == gk {
			return e
		}
	}
	return group
}

// exprStatus judges the live object by its health check expressions as
// Flux's kustomize-controller does (fluxcd/pkg runtime/cel, RFC 0009): an
// observedGeneration behind the generation is in progress; then inProgress,
// failed and current are evaluated in that order and the first true one
// wins; none true is in progress. The expressions are parsed, not
// compiled, and see the object's top-level fields (metadata, data, status,
// ...) as variables, with Flux's CEL extensions. "" when current.
func exprStatus(e *HealthExpr, live *unstructured.Unstructured) string {
	obj := live.UnstructuredContent()
	if og, ok, err := unstructured.NestedInt64(obj, "status", "observedGeneration"); err == nil && ok {
		if g, ok, err := unstructured.NestedInt64(obj, "metadata", "generation"); err == nil && ok && og != g {
			return objKey(live) + " in progress (observedGeneration behind generation)"
		}
	}
	env, err := cel.NewEnv(cel.HomogeneousAggregateLiterals(), cel.EagerlyValidateDeclarations(true),
		cel.DefaultUTCTimeZone(true), cel.CrossTypeNumericComparisons(true), cel.OptionalTypes(),
		ext.Strings(), ext.Sets(), ext.Encoders())
	if err != nil {
		return objKey(live) + ": healthCheckExprs: " + err.Error()
	}
	for _, x := range []struct{ expr, status string }{{e.InProgress, "in progress"}, {e.Failed, "failed"}, {e.Current, "current"}} {
		if strings.TrimSpace(x.expr) == "" {
			continue
		}
		ast, iss := env.Parse(x.expr)
		if iss != nil && iss.Err() != nil {
			return fmt.Sprintf("%s: healthCheckExprs: %v", objKey(live), iss.Err())
		}
		prg, err := env.Program(ast)
		if err != nil {
			return fmt.Sprintf("%s: healthCheckExprs: %v", objKey(live), err)
		}
		out, _, err := prg.Eval(obj)
		if err != nil {
			// Flux reports the error and the object stays unhealthy.
			return fmt.Sprintf("%s not healthy: its health check %q: %v", objKey(live), x.expr, err)
		}
		if b, ok := out.(types.Bool); ok && bool(b) {
			if x.status == "current" {
				return ""
			}
			return fmt.Sprintf("%s %s by its health check %q", objKey(live), x.status, x.expr)
		}
	}
	return fmt.Sprintf("%s in progress: its health check %q is not true", objKey(live), e.Current)
}

// checkStatus is "" when the object a Flux healthChecks entry names is
// healthy, else why not. Unlike readiness, an absent object is only
// waited for: the entry names it, Flux does not apply it.
func (h *Harness) checkStatus(ctx context.Context, c *Cluster, s *Step, ref *unstructured.Unstructured) string {
	if e := s.healthExpr(ref); e != nil {
		m, ns, err := h.resource(c, ref, s.ns)
		if err != nil {
			return objKey(ref) + ": " + err.Error()
		}
		live, err := c.dyn.Resource(m.Resource).Namespace(ns).Get(ctx, ref.GetName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return objKey(ref) + " not found"
		}
		if err != nil {
			return objKey(ref) + ": " + err.Error()
		}
		return exprStatus(e, live)
	}
	msg := h.readiness(ctx, c, ref, s.ns)
	if strings.HasSuffix(msg, " is gone") {
		return objKey(ref) + " not found"
	}
	return msg
}
