package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// HealthExpr is a Flux Kustomization's spec.healthCheckExprs entry: CEL
// expressions over `self` (the live object) for objects of one kind.
type HealthExpr struct {
	APIVersion, Kind, Current, InProgress, Failed string
}

// healthExprs applies the step's custom health checks to the live object,
// as Flux does: failed wins, then current, else in progress. "" when the
// object is healthy or no expression covers it.
func (h *Harness) healthExprs(ctx context.Context, c *Cluster, s *Step, o *unstructured.Unstructured) string {
	for _, e := range s.health {
		if e.APIVersion != o.GetAPIVersion() || e.Kind != o.GetKind() {
			continue
		}
		m, ns, err := h.resource(c, o, s.ns)
		if err != nil {
			return err.Error()
		}
		live, err := c.dyn.Resource(m.Resource).Namespace(ns).Get(ctx, o.GetName(), metav1.GetOptions{})
		if err != nil {
			return objKey(o) + ": " + err.Error()
		}
		eval := func(expr string) (bool, error) {
			if strings.TrimSpace(expr) == "" {
				return false, nil
			}
			env, err := cel.NewEnv(cel.Variable("self", cel.DynType))
			if err != nil {
				return false, err
			}
			ast, iss := env.Compile(expr)
			if iss != nil && iss.Err() != nil {
				return false, iss.Err()
			}
			prg, err := env.Program(ast)
			if err != nil {
				return false, err
			}
			out, _, err := prg.Eval(map[string]any{"self": live.Object})
			if err != nil {
				return false, nil // a missing field: not (yet) true
			}
			b, ok := out.Value().(bool)
			return ok && b, nil
		}
		if f, err := eval(e.Failed); err != nil {
			return fmt.Sprintf("%s: healthCheckExprs: %v", objKey(o), err)
		} else if f {
			return fmt.Sprintf("%s failed by its health check %q", objKey(o), e.Failed)
		}
		if ok, err := eval(e.Current); err != nil {
			return fmt.Sprintf("%s: healthCheckExprs: %v", objKey(o), err)
		} else if !ok {
			return fmt.Sprintf("%s not current by its health check %q", objKey(o), e.Current)
		}
	}
	return ""
}
