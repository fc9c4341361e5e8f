package fleet

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"

	"github.com/meshfleet/meshfleet/schemas"
)

// validateSchema unifies the user's data with #MeshFleet and reports every
// violation it can find. It returns the unified value and, for each chunk
// cluster of the document's chunks, decoded.
func validateSchema(ctx *cue.Context, doc *document) (cue.Value, map[string]*Cluster, error) {
	schema := ctx.CompileBytes(schemas.MeshFleet, cue.Filename(schemas.Filename))
	if err := schema.Err(); err != nil {
		panic(fmt.Sprintf("embedded schema does not compile: %v", err)) // a build bug
	}
	fleetSchema := schema.LookupPath(cue.ParsePath("#MeshFleet"))
	v := doc.main.Unify(fleetSchema)
	// CUE hides "required but not present" errors behind any other error
	// in the same value, so each cluster and each part of the spec is
	// validated on its own as well: a typo in one cluster does not hide a
	// missing field in another.
	parts := []cue.Value{v}
	if spec := v.LookupPath(cue.ParsePath("spec")); spec.Exists() {
		if it, err := spec.Fields(cue.Optional(true)); err == nil {
			for it.Next() {
				parts = append(parts, it.Value())
			}
		}
		if it, err := spec.LookupPath(cue.ParsePath("clusters")).Fields(); err == nil {
			for it.Next() {
				parts = append(parts, it.Value())
			}
		}
	}
	var errs Errors
	for _, p := range parts {
		if err := p.Validate(cue.Concrete(true), cue.All()); err != nil {
			errs = append(errs, convert(doc.filename, doc.locator(), nil, err).(Errors)...)
		}
	}
	// Every entry of a chunk, on its own, against the schema of its map's
	// entries.
	clusters := map[string]*Cluster{}
	for _, c := range doc.chunks {
		elem := schema.LookupPath(cue.ParsePath("#Cluster"))
		isClusters := slices.Equal(c.path, []string{"spec", "clusters"})
		if !isClusters {
			elem = ctx.CompileString("string")
		}
		it, err := c.value.Fields(cue.Optional(true))
		if err != nil {
			errs = append(errs, convert(doc.filename, doc.locator(), c.path, err).(Errors)...)
			continue
		}
		for it.Next() {
			ev := it.Value().Unify(elem)
			if err := ev.Validate(cue.Concrete(true), cue.All()); err != nil {
				errs = append(errs, convert(doc.filename, doc.locator(), c.path, err).(Errors)...)
			} else if isClusters && len(errs) == 0 {
				// Decoded now, so that the unified value can go.
				cl := new(Cluster)
				if err := ev.Decode(cl); err != nil {
					return v, nil, fmt.Errorf("%s: decoding validated cluster %s: %w", doc.filename, Quote(it.Selector().Unquoted()), err)
				}
				clusters[it.Selector().Unquoted()] = cl
			}
		}
	}
	return v, clusters, errs.orNil()
}

// convert turns CUE errors into Errors that point into the user's file.
// Disjunction failures, which CUE reports as one error per arm, become a
// single error that lists the allowed values.
//
// The errors' paths are relative to prefix (the path of a chunk's map);
// locate finds positions for errors that carry none in the user's file
// (nil: none known).
func convert(filename string, locate locator, prefix []string, err error) error {
	var errs Errors
	arms := map[string][]cueerrors.Error{}
	for _, e := range cueerrors.Errors(err) {
		path := joinPath(append(slices.Clip(prefix), unquote(e.Path())...))
		format, args := e.Msg()
		switch {
		case strings.HasSuffix(format, "errors in empty disjunction:"):
			continue
		case strings.HasPrefix(format, "conflicting values") && len(args) >= 2 && hasSchemaPos(e):
			if _, seen := arms[path]; !seen {
				errs = append(errs, &Error{Path: path}) // filled in below
			}
			arms[path] = append(arms[path], e)
			continue
		}
		msg := fmt.Sprintf(format, args...)
		pos := position(filename, locate, prefix, e)
		if msg == "" {
			msg = e.Error()
			// Parser errors carry their position in the text:
			// "fleet.yaml:3: did not find expected key".
			var line int
			if rest, ok := strings.CutPrefix(msg, filename+":"); ok {
				if n, _ := fmt.Sscanf(rest, "%d:", &line); n == 1 {
					pos = Position{File: filename, Line: line}
					msg = strings.TrimSpace(rest[strings.Index(rest, ":")+1:])
				}
			}
		}
		errs = append(errs, &Error{Pos: pos, Path: path, Msg: msg})
	}
	for _, ue := range errs {
		if es, ok := arms[ue.Path]; ok && ue.Msg == "" {
			ue.Pos = position(filename, locate, prefix, es[0])
			ue.Msg = disjunctionMsg(es)
		}
	}
	return errs
}

// disjunctionMsg says which value was given and which were allowed. Each
// arm's error names the arm's value and the user's; the user's value is
// the one every arm names.
func disjunctionMsg(arms []cueerrors.Error) string {
	count := map[string]int{}
	var order []string
	for _, e := range arms {
		_, args := e.Msg()
		for _, a := range args[:2] { // the two values; mismatched types follow
			s := fmt.Sprint(a)
			if count[s] == 0 {
				order = append(order, s)
			}
			count[s]++
		}
	}
	var got string
	var want []string
	for _, s := range order {
		if count[s] == len(arms) && got == "" && len(arms) > 1 {
			got = s
		} else {
			want = append(want, s)
		}
	}
	if got == "" {
		format, args := arms[0].Msg()
		return fmt.Sprintf(format, args...)
	}
	return fmt.Sprintf("invalid value %s (want one of %s)", got, strings.Join(want, ", "))
}

func hasSchemaPos(e cueerrors.Error) bool {
	return slices.ContainsFunc(cueerrors.Positions(e), func(p token.Pos) bool { return p.Filename() == schemas.Filename })
}

// position finds where an error belongs in the user's file: its own
// position there if CUE has one, else the closest enclosing field the user
// wrote (a missing field is reported at its parent).
func position(filename string, locate locator, prefix []string, e cueerrors.Error) Position {
	for _, p := range cueerrors.Positions(e) {
		if p.Filename() == filename {
			return Position{filename, p.Line(), p.Column()}
		}
	}
	if locate == nil {
		return Position{File: filename}
	}
	return locate(append(slices.Clip(prefix), unquote(e.Path())...), false)
}

// lookupPos returns where path is in data: the start of its value, or of
// its key when key is set. A path that does not exist (a missing field) is
// placed at the key of its closest existing parent.
func lookupPos(filename string, data cue.Value, path []string, key bool) Position {
	if !data.Exists() {
		return Position{File: filename}
	}
	// Walk down once, so each level is looked up in its parent: a path
	// of n labels costs n lookups, not n².
	vals := []cue.Value{data}
	for _, s := range path {
		parent := vals[len(vals)-1]
		sel := cue.Str(s)
		if i, err := strconv.Atoi(s); err == nil && parent.IncompleteKind() == cue.ListKind {
			sel = cue.Index(i)
		}
		v := parent.LookupPath(cue.MakePath(sel))
		if !v.Exists() {
			break
		}
		vals = append(vals, v)
	}
	for n := len(path); n >= 0; n-- {
		if n >= len(vals) {
			continue
		}
		v := vals[n]
		p := valuePos(v)
		if key || n < len(path) {
			p = keyPos(v)
		}
		if p.IsValid() && p.Filename() == filename {
			return Position{filename, p.Line(), p.Column()}
		}
	}
	return Position{File: filename, Line: 1, Column: 1}
}

// unquote turns CUE path labels like "\"a.b\"" into a.b.
func unquote(path []string) []string {
	out := make([]string, len(path))
	for i, s := range path {
		if u, err := strconv.Unquote(s); err == nil {
			s = u
		}
		out[i] = s
	}
	return out
}

// keyPos is where v's field name is, or where v starts for the root.
func keyPos(v cue.Value) token.Pos {
	if f, ok := v.Source().(*ast.Field); ok && f.Label != nil && f.Label.Pos().IsValid() {
		return f.Label.Pos()
	}
	return v.Pos()
}

// valuePos is where v's value starts: for a field, past its key, so that
// positions agree with the ones CUE gives for conflicts.
func valuePos(v cue.Value) token.Pos {
	if f, ok := v.Source().(*ast.Field); ok && f.Value != nil && f.Value.Pos().IsValid() {
		return f.Value.Pos()
	}
	return v.Pos()
}
