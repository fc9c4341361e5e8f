// Package extensions runs a fleet's Jsonnet extensions: per cluster, each
// extension may add objects and patch the objects meshfleet planned, so
// teams extend the overlays without forking meshfleet.
//
// An extension is a Jsonnet file evaluated once per cluster, with the
// top-level arguments cluster (the name), role, network and mesh (id,
// trustDomain, version, revision and the names of all clusters). It
// evaluates to an object with two optional lists:
//
//	function(cluster, role, network, mesh) {
//	  resources: [ /* objects added to the cluster's extensions stage */ ],
//	  patches: [ { target: { kind: 'Namespace', name: 'istio-system' },
//	               patch: { metadata: { labels: { team: 'mesh' } } } } ],
//	}
//
// A patch is a JSON merge patch (RFC 7386): objects merge, null removes
// a field, anything else replaces it. It applies to every planned object
// of the target's kind and name (and namespace, if given), including the
// IstioOperator files and the Helm releases, which a patch targets as
// kind HelmRelease by release name and changes through spec.values,
// whether Flux or Argo CD runs them; a patch that matches nothing is an
// error.
package extensions

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/generator/mesh"
)

// result is what an extension evaluates to.
type result struct {
	Resources []mesh.Object `json:"resources"`
	Patches   []patch       `json:"patches"`
}

type patch struct {
	Target struct {
		Kind      string `json:"kind"`
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"target"`
	Patch map[string]any `json:"patch"`
}

// Apply runs every extension of the fleet for every cluster of p. The
// Jsonnet is evaluated through [fleet.EvalJsonnet], so under the limits
// of the fleet's [fleet.Isolator]. Extensions may not add secret material
// (Secrets with data, private keys, tokens, credentials in URLs) nor patch
// it into planned objects; such a refusal names the extension file and
// the position in it of the offending value.
func Apply(p *mesh.Plan) error {
	f := p.Fleet
	if len(f.Spec.Extensions) == 0 {
		return nil
	}
	meshArg, err := json.Marshal(meshArgument(f))
	if err != nil {
		return err
	}
	var jobs []fleet.JsonnetJob
	for i := range p.Clusters {
		c := &p.Clusters[i]
		for _, ext := range f.Spec.Extensions {
			jobs = append(jobs, fleet.JsonnetJob{
				File:    ext.Jsonnet, // resolved in f.Dir
				TLAVars: map[string]string{"cluster": c.Name, "role": string(c.Role), "network": c.Network},
				TLACode: map[string]string{"mesh": string(meshArg)},
			})
		}
	}
	outs, err := fleet.EvalJsonnet(f.Dir, jobs)
	if err != nil {
		var je *fleet.JsonnetError
		if errors.As(err, &je) && je.Job < len(jobs) {
			return fmt.Errorf("%s (extension evaluated for cluster %s)", je.Msg, fleet.Quote(jobs[je.Job].TLAVars["cluster"]))
		}
		return err
	}
	for i := range p.Clusters {
		c := &p.Clusters[i]
		for j, ext := range f.Spec.Extensions {
			file := filepath.Join(f.Dir, ext.Jsonnet)
			out := outs[i*len(f.Spec.Extensions)+j]
			var r result
			dec := json.NewDecoder(strings.NewReader(out))
			dec.UseNumber()
			dec.DisallowUnknownFields()
			if err := dec.Decode(&r); err != nil {
				return fmt.Errorf("%s: want an object with resources and patches: %s (cluster %s)", fleet.Escape(file), fleet.Escape(err.Error()), c.Name)
			}
			if err := apply(c, file, r); err != nil {
				return fmt.Errorf("%s%s (cluster %s)", fleet.Escape(file), fleet.Escape(locate(file, err)), c.Name)
			}
		}
	}
	return nil
}

func meshArgument(f *fleet.Fleet) map[string]any {
	names := make([]string, len(f.Clusters))
	for i, c := range f.Clusters {
		names[i] = c.Name
	}
	m := map[string]any{
		"id":          f.Spec.Mesh.ID,
		"trustDomain": f.Spec.Mesh.TrustDomain,
		"version":     f.Spec.Istio.Version,
		"revision":    f.Spec.Istio.Revision,
		"clusters":    names,
	}
	if f.MultiRevision() {
		revs := map[string]any{}
		for r, spec := range f.Spec.Istio.Revisions {
			revs[r] = spec.Version
		}
		tags := map[string]any{}
		for t, r := range f.Spec.Istio.Tags {
			tags[t] = r
		}
		m["revisions"], m["tags"] = revs, tags
	}
	return m
}

func apply(c *mesh.Cluster, file string, r result) error {
	for i, o := range r.Resources {
		if s, _ := o["kind"].(string); s == "" {
			return fmt.Errorf("resources[%d] has no kind", i)
		}
		normalize(o)
		if err := refuseSecrets(fmt.Sprintf("resources[%d]", i), o); err != nil {
			return err
		}
	}
	for i, pt := range r.Patches {
		if pt.Target.Kind == "" || pt.Target.Name == "" {
			return fmt.Errorf("patches[%d]: target needs kind and name", i)
		}
		normalize(pt.Patch)
		if err := refusePatch(fmt.Sprintf("patches[%d]", i), pt); err != nil {
			return err
		}
		matched := 0
		each(c, func(o mesh.Object) mesh.Object {
			md, _ := o["metadata"].(map[string]any)
			if o["kind"] != pt.Target.Kind || md["name"] != pt.Target.Name ||
				pt.Target.Namespace != "" && md["namespace"] != pt.Target.Namespace {
				return o
			}
			matched++
			return mergePatch(o, pt.Patch).(map[string]any)
		})
		if matched == 0 {
			return fmt.Errorf("patches[%d]: matches no object: the cluster has no %s %s", i, pt.Target.Kind, pt.Target.Name)
		}
	}
	if len(r.Resources) > 0 {
		name := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file)) + ".yaml"
		st := c.Stage(mesh.StageExtensions)
		if st == nil {
			c.Stages = append(c.Stages, mesh.Stage{Name: mesh.StageExtensions})
			st = &c.Stages[len(c.Stages)-1]
		}
		st.Files = append(st.Files, mesh.File{Name: name, Objects: r.Resources})
	}
	return nil
}

// each replaces every planned object of the cluster with fn's result.
func each(c *mesh.Cluster, fn func(mesh.Object) mesh.Object) {
	visit := func(files []mesh.File) {
		for _, f := range files {
			for i, o := range f.Objects {
				f.Objects[i] = fn(o)
			}
		}
	}
	for _, s := range c.Stages {
		visit(s.Files)
		for i := range s.Charts {
			ch := &s.Charts[i]
			o := fn(ReleaseObject(*ch))
			values, _ := get(o, "spec", "values").(map[string]any)
			if values == nil {
				values = map[string]any{}
			}
			ch.Values = values
		}
	}
	visit(c.Istioctl)
}

// ReleaseObject is a Helm release as extensions see and patch it,
// whichever the delivery: a Flux HelmRelease whose spec.values are the
// release's values (Argo CD gets them as the Application's
// helm.valuesObject).
func ReleaseObject(ch mesh.Chart) mesh.Object {
	return mesh.Object{
		"apiVersion": "helm.toolkit.fluxcd.io/v2",
		"kind":       "HelmRelease",
		"metadata":   map[string]any{"name": ch.Release, "namespace": ch.Namespace},
		"spec":       map[string]any{"values": ch.Values},
	}
}

func get(o any, path ...string) any {
	for _, k := range path {
		m, _ := o.(map[string]any)
		o = m[k]
	}
	return o
}

// mergePatch applies a JSON merge patch to a copy of target.
func mergePatch(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	tm, _ := target.(map[string]any)
	out := make(map[string]any, len(tm))
	for k, v := range tm {
		out[k] = v
	}
	for k, v := range pm {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = mergePatch(out[k], v)
	}
	return out
}

// normalize turns JSON numbers into ints where they are whole and floats
// otherwise, the types the YAML writer prints.
func normalize(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = normalize(e)
		}
	case []any:
		for i, e := range v {
			v[i] = normalize(e)
		}
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return int(n)
		}
		f, _ := v.Float64()
		return f
	}
	return v
}
