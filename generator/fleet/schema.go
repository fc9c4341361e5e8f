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
// violation it can find. When there are any, it also returns the data with
// every field that has an error taken out (salvage) and those fields'
// paths, so that the cross-cluster rules can still judge the rest.
func validateSchema(ctx *cue.Context, filename string, data cue.Value) (v cue.Value, salvage any, pruned [][]string, errs Errors) {
	schema := ctx.CompileBytes(schemas.MeshFleet, cue.Filename(schemas.Filename))
	if err := schema.Err(); err != nil {
		panic(fmt.Sprintf("embedded schema does not compile: %v", err)) // a build bug
	}
	def := schema.LookupPath(cue.ParsePath("#MeshFleet"))
	v = data.Unify(def)
	errs = validateParts(filename, data, v)
	if len(errs) == 0 {
		return v, nil, nil, nil
	}
	// CUE reports a missing required field only once every other error
	// in the same object is gone: take the fields with errors out and
	// validate again, until nothing new shows.
	if err := data.Decode(&salvage); err != nil {
		return v, nil, nil, errs
	}
	fresh := errs
	for round := 0; round < 8 && len(fresh) > 0; round++ {
		for _, e := range fresh {
			pruned = append(pruned, e.labels)
			salvage = without(salvage, e.labels)
		}
		fresh = nil
		for _, e := range validateParts(filename, data, ctx.Encode(salvage).Unify(def)) {
			if !under(e.labels, pruned) {
				fresh = append(fresh, e)
			}
		}
		errs = append(errs, fresh...)
	}
	return v, salvage, pruned, errs
}

// validateParts validates v, and each cluster and each part of the spec
// on its own as well: CUE hides "required but not present" errors behind
// any other error in the same value, so a typo in one cluster must not
// hide a missing field in another.
func validateParts(filename string, data, v cue.Value) Errors {
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
			errs = append(errs, convert(filename, data, err).(Errors)...)
		}
	}
	return errs
}

// without returns x with the value at path removed, as far as path leads
// through maps.
func without(x any, path []string) any {
	if len(path) == 0 {
		return nil
	}
	m, ok := x.(map[string]any)
	if !ok {
		return x
	}
	if len(path) == 1 {
		delete(m, path[0])
		return m
	}
	if child, ok := m[path[0]]; ok {
		m[path[0]] = without(child, path[1:])
		if m[path[0]] == nil {
			delete(m, path[0])
		}
	}
	return m
}

// under reports whether path is one of paths or inside one of them.
func under(path []string, paths [][]string) bool {
	for _, p := range paths {
		if len(path) >= len(p) && slices.Equal(path[:len(p)], p) {
			return true
		}
	}
	return false
}

// convert turns CUE errors into Errors that point into the user's file,
// in words: no regular expressions or schema definitions. CUE reports a
// failed disjunction arm by arm; the arms become one error per field:
// the form the value should take, or the values allowed, never the
// default the value also differs from.
func convert(filename string, data cue.Value, err error) error {
	var errs Errors
	cerrs := cueerrors.Errors(err)
	disjunction := map[string]bool{}
	for _, e := range cerrs {
		if format, _ := e.Msg(); strings.HasSuffix(format, "errors in empty disjunction:") {
			disjunction[strings.Join(unquote(e.Path()), ".")] = true
		}
	}
	groups := map[string][]cueerrors.Error{} // arms by disjunction
	var order []string
	for _, e := range cerrs {
		labels := unquote(e.Path())
		format, args := e.Msg()
		if strings.HasSuffix(format, "errors in empty disjunction:") {
			continue
		}
		if d, ok := enclosing(disjunction, labels); ok && hasSchemaPos(e) {
			if _, seen := groups[d]; !seen {
				order = append(order, d)
			}
			groups[d] = append(groups[d], e)
			continue
		}
		errs = append(errs, convertOne(filename, data, e, labels, format, args))
	}
	for _, d := range order {
		if slices.ContainsFunc(order, func(inner string) bool { return strings.HasPrefix(inner, d+".") }) {
			// A disjunction inside this one failed too, and says more: the
			// arms of this one differ from the value in a literal, like a
			// provider name, that the value does match in the arm it meant.
			if all := armsErrors(filename, data, groups[d]); !allLiteral(groups[d]) {
				errs = append(errs, all...)
			}
			continue
		}
		errs = append(errs, armsErrors(filename, data, groups[d])...)
	}
	return errs
}

func allLiteral(arms []cueerrors.Error) bool {
	for _, e := range arms {
		if format, args := e.Msg(); !literalArm(format, args) {
			return false
		}
	}
	return true
}

// convertOne words one CUE error at its place in the user's file.
func convertOne(filename string, data cue.Value, e cueerrors.Error, labels []string, format string, args []any) *Error {
	pos := position(filename, data, e)
	msg := message(data, labels, format, args, pos.Line)
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
	return &Error{Pos: pos, Path: strings.Join(labels, "."), Msg: msg, labels: labels}
}

// enclosing finds the failed disjunction that holds the value at path.
func enclosing(disjunction map[string]bool, path []string) (string, bool) {
	for n := len(path); n >= 0; n-- {
		if d := strings.Join(path[:n], "."); disjunction[d] {
			return d, true
		}
	}
	return "", false
}

// armsErrors words the failed arms of one disjunction. An arm that failed
// on something other than a literal (a pattern, a type, a field) is the
// one the user meant; the literal arms, defaults among them, are noise
// then. When every arm is a literal, the field takes one of them.
func armsErrors(filename string, data cue.Value, arms []cueerrors.Error) Errors {
	var errs Errors
	byPath := map[string][]cueerrors.Error{}
	var paths []string
	for _, e := range arms {
		format, args := e.Msg()
		if literalArm(format, args) {
			p := strings.Join(unquote(e.Path()), ".")
			if _, seen := byPath[p]; !seen {
				paths = append(paths, p)
			}
			byPath[p] = append(byPath[p], e)
			continue
		}
		errs = append(errs, convertOne(filename, data, e, unquote(e.Path()), format, args))
	}
	if len(errs) > 0 {
		return errs
	}
	for _, p := range paths {
		es := byPath[p]
		errs = append(errs, &Error{Pos: position(filename, data, es[0]), Path: p, Msg: disjunctionMsg(es), labels: unquote(es[0].Path())})
	}
	return errs
}

// literalArm: the arm was a literal value the user's value differs from.
func literalArm(format string, args []any) bool {
	switch {
	case format == "conflicting values %s and %s" && len(args) == 2:
		return true
	case strings.Contains(format, "(mismatched types") && len(args) == 4:
		return isLiteral(fmt.Sprint(args[0])) && isLiteral(fmt.Sprint(args[1]))
	}
	return false
}

// message words one CUE error, or returns "" to keep CUE's own.
func message(data cue.Value, path []string, format string, args []any, line int) string {
	switch {
	case format == "field not allowed" && len(path) > 0:
		return unknownField(data, path, line)
	case strings.HasPrefix(format, "invalid value %v (out of bound") && len(args) == 2:
		return fmt.Sprintf("invalid value %v: want %s", args[0], boundWords(fmt.Sprint(args[1])))
	case strings.Contains(format, "(mismatched types") && len(args) == 4:
		return mismatchedTypes(path, args, line)
	case format == "":
		return ""
	}
	return fmt.Sprintf(format, args...)
}

// isLiteral tells a concrete value (a quoted string, a number, true,
// false, null) from a type such as string or a struct.
func isLiteral(s string) bool {
	switch {
	case s == "true" || s == "false" || s == "null", strings.HasPrefix(s, `"`):
		return true
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
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
func position(filename string, data cue.Value, e cueerrors.Error) Position {
	for _, p := range cueerrors.Positions(e) {
		if p.Filename() == filename {
			return Position{filename, p.Line(), p.Column()}
		}
	}
	return lookupPos(filename, data, unquote(e.Path()), false)
}

// lookupPos returns where path is in data: the start of its value, or of
// its key when key is set. A path that does not exist (a missing field) is
// placed at the key of its closest existing parent.
func lookupPos(filename string, data cue.Value, path []string, key bool) Position {
	if !data.Exists() {
		return Position{File: filename}
	}
	for n := len(path); n >= 0; n-- {
		sels := make([]cue.Selector, n)
		for i, s := range path[:n] {
			sels[i] = cue.Str(s)
			if k, err := strconv.Atoi(s); err == nil && k >= 0 && data.LookupPath(cue.MakePath(sels[:i]...)).Kind() == cue.ListKind {
				sels[i] = cue.Index(k)
			}
		}
		v := data.LookupPath(cue.MakePath(sels...))
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
