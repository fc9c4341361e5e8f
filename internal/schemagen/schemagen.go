// Package schemagen turns the MeshFleet CUE schema into the JSON Schema
// that editors use (schemas/meshfleet.schema.json). `go generate
// ./schemas` writes it; a test fails when the committed file is stale.
package schemagen

import (
	"bytes"
	"encoding/json"
	"fmt"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/encoding/jsonschema"

	"github.com/meshfleet/meshfleet/schemas"
)

// ID is where the JSON Schema is published: the committed file on the
// main branch, which is what the README's yaml-language-server line
// points at.
const ID = "https://raw.githubusercontent.com/meshfleet/meshfleet/main/schemas/meshfleet.schema.json"

// JSONSchema generates the JSON Schema (draft 2020-12) of #MeshFleet from
// the embedded CUE schema, with cuelang.org/go/encoding/jsonschema.
// Fields with a default get a "default" annotation, which the CUE
// generator leaves out and editors show.
func JSONSchema() ([]byte, error) {
	ctx := cuecontext.New()
	v := ctx.CompileBytes(schemas.MeshFleet, cue.Filename(schemas.Filename))
	if err := v.Err(); err != nil {
		return nil, fmt.Errorf("compiling %s: %w", schemas.Filename, err)
	}
	root := v.LookupPath(cue.ParsePath("#MeshFleet"))
	expr, err := jsonschema.Generate(root, nil)
	if err != nil {
		return nil, fmt.Errorf("generating JSON Schema: %w", err)
	}
	js := ctx.BuildExpr(expr)
	if err := js.Err(); err != nil {
		return nil, fmt.Errorf("generating JSON Schema: %w", err)
	}
	raw, err := js.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encoding JSON Schema: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	doc["$id"] = ID
	doc["title"] = "MeshFleet"
	doc["description"] = "A meshfleet fleet file: one Istio mesh over several Kubernetes clusters. Generated from schemas/meshfleet.cue; do not edit."
	addDefaults(doc, root)
	defs, _ := doc["$defs"].(map[string]any)
	for name, d := range defs {
		if ds, ok := d.(map[string]any); ok {
			addDefaults(ds, v.LookupPath(cue.MakePath(cue.Def(name))))
		}
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// addDefaults walks the JSON Schema s beside the CUE value v and sets
// "default" on every property whose CUE field has a concrete scalar
// default. It does not follow "$ref": every definition is walked on its
// own.
func addDefaults(s map[string]any, v cue.Value) {
	props, _ := s["properties"].(map[string]any)
	for name, p := range props {
		ps, ok := p.(map[string]any)
		if !ok {
			continue
		}
		fv := v.LookupPath(cue.MakePath(cue.Str(name).Optional()))
		if !fv.Exists() {
			continue
		}
		if d, ok := fv.Default(); ok && d.IsConcrete() && d.Kind() != cue.StructKind && d.Kind() != cue.ListKind {
			var x any
			if err := d.Decode(&x); err == nil {
				ps["default"] = x
			}
		}
		addDefaults(ps, fv)
	}
	if ap, ok := s["additionalProperties"].(map[string]any); ok {
		addDefaults(ap, v.LookupPath(cue.MakePath(cue.AnyString)))
	}
}
