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
// violation it can find. It returns the unified value and the clusters of
// the document's chunks, decoded. When there are errors, it also returns
// the data with every field that has one taken out (salvage) and those
// fields' paths, so that the cross-cluster rules can still judge the rest.
func validateSchema(ctx *cue.Context, doc *document) (v cue.Value, clusters map[string]*Cluster, salvage any, pruned *fieldSet, errs Errors) {
	schema := ctx.CompileBytes(schemas.MeshFleet, cue.Filename(schemas.Filename))
	if err := schema.Err(); err != nil {
		panic(fmt.Sprintf("embedded schema does not compile: %v", err)) // a build bug
	}
	locate := doc.locator()
	v, clusters, errs = validateValues(ctx, schema, doc.filename, locate, doc.main, doc.chunks)
	if len(errs) == 0 {
		return v, clusters, nil, nil, nil
	}
	// CUE reports a missing required field only once every other error
	// in the same object is gone: take the fields with errors out and
	// validate again, until nothing new shows.
	salvage, ok := doc.decode()
	if !ok {
		return v, nil, nil, nil, errs
	}
	pruned = &fieldSet{}
	fresh := errs
	for round := 0; round < 8 && len(fresh) > 0; round++ {
		for _, e := range fresh {
			pruned.add(e.labels)
			salvage = without(salvage, e.labels)
		}
		main, chunks := splitValue(ctx, salvage)
		_, _, again := validateValues(ctx, schema, doc.filename, locate, main, chunks)
		fresh = nil
		for _, e := range again {
			if !pruned.under(e.labels) {
				fresh = append(fresh, e)
			}
		}
		errs = append(errs, fresh...)
	}
	return v, nil, salvage, pruned, errs
}

// validateValues validates the fleet's data given as main (the large maps
// emptied) and chunks of the large maps' entries.
func validateValues(ctx *cue.Context, schema cue.Value, filename string, locate locator, main cue.Value, chunks []chunk) (cue.Value, map[string]*Cluster, Errors) {
	fleetSchema := schema.LookupPath(cue.ParsePath("#MeshFleet"))
	v := main.Unify(fleetSchema)

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
			errs = append(errs, convert(filename, locate, nil, err).(Errors)...)
		}
	}
	// Every entry of a chunk, on its own, against the schema of its map's
	// entries.
	clusters := map[string]*Cluster{}
	for _, c := range chunks {
		elem := schema.LookupPath(cue.ParsePath("#Cluster"))
		isClusters := slices.Equal(c.path, []string{"spec", "clusters"})
		if !isClusters {
			elem = ctx.CompileString("string")
		}
		it, err := c.value.Fields(cue.Optional(true))
		if err != nil {
			errs = append(errs, convert(filename, locate, c.path, err).(Errors)...)
			continue
		}
		for it.Next() {
			ev := it.Value().Unify(elem)
			if err := ev.Validate(cue.Concrete(true), cue.All()); err != nil {
				entry := append(slices.Clip(c.path), it.Selector().Unquoted())
				errs = append(errs, convert(filename, locate, entry, err).(Errors)...)
			} else if isClusters && len(errs) == 0 {
				// Decoded now, so that the unified value can go.
				cl := new(Cluster)
				if err := ev.Decode(cl); err != nil {
					errs = append(errs, &Error{Pos: Position{File: filename}, Msg: fmt.Sprintf("decoding validated cluster %s: %v", Quote(it.Selector().Unquoted()), err)})
					continue
				}
				clusters[it.Selector().Unquoted()] = cl
			}
		}
	}
	return v, clusters, errs
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
// fieldSet is a set of field paths that answers, in the length of a
// path, whether the path is one of them or lies under one: a file with
// thousands of errors must not take thousands squared comparisons.
type fieldSet struct {
	list [][]string
	keys map[string]bool
}

func (s *fieldSet) add(path []string) {
	if s.keys == nil {
		s.keys = map[string]bool{}
	}
	s.list = append(s.list, path)
	s.keys[pathKey(path)] = true
}

// under reports whether path or one of its parents is in s.
func (s *fieldSet) under(path []string) bool {
	if s == nil || len(s.keys) == 0 {
		return false
	}
	for i := range path {
		if s.keys[pathKey(path[:i+1])] {
			return true
		}
	}
	return false
}

// paths lists the paths of s in the order they were added.
func (s *fieldSet) paths() [][]string {
	if s == nil {
		return nil
	}
	return s.list
}

// pathKey is a path as one string, each label prefixed with its length
// so that no two paths share a key.
func pathKey(path []string) string {
	var k strings.Builder
	for _, l := range path {
		k.WriteString(strconv.Itoa(len(l)) + ":" + l)
	}
	return k.String()
}

// convert turns CUE errors into Errors that point into the user's file,
// in words: no regular expressions or schema definitions. CUE reports a
// failed disjunction arm by arm; the arms become one error per field:
// the form the value should take, or the values allowed, never the
// default the value also differs from.
//
// The errors' paths are relative to prefix (the path of a chunk's map);
// locate finds positions for errors that carry none in the user's file
// (nil: none known).
func convert(filename string, locate locator, prefix []string, err error) error {
	var errs Errors
	cerrs := cueerrors.Errors(err)
	disjunction := map[string]bool{}
	for _, e := range cerrs {
		if format, _ := e.Msg(); strings.HasSuffix(format, "errors in empty disjunction:") {
			disjunction[strings.Join(withPrefix(prefix, e), ".")] = true
		}
	}
	groups := map[string][]cueerrors.Error{} // arms by disjunction
	var order []string
	for _, e := range cerrs {
		labels := withPrefix(prefix, e)
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
		errs = append(errs, convertOne(filename, locate, prefix, e, labels, format, args))
	}
	for _, d := range order {
		if slices.ContainsFunc(order, func(inner string) bool { return strings.HasPrefix(inner, d+".") }) && allLiteral(groups[d]) {
			// A disjunction inside this one failed too, and says more: the
			// arms of this one differ from the value in a literal, like a
			// provider name, that the value does match in the arm it meant.
			continue
		}
		errs = append(errs, armsErrors(filename, locate, prefix, groups[d])...)
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
func convertOne(filename string, locate locator, prefix []string, e cueerrors.Error, labels []string, format string, args []any) *Error {
	pos := position(filename, locate, prefix, e)
	msg := message(locate, labels, format, args, pos.Line)
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
	return &Error{Pos: pos, Path: joinPath(labels), Msg: msg, labels: labels}
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
func armsErrors(filename string, locate locator, prefix []string, arms []cueerrors.Error) Errors {
	var errs Errors
	byPath := map[string][]cueerrors.Error{}
	var paths []string
	for _, e := range arms {
		format, args := e.Msg()
		if literalArm(format, args) {
			p := strings.Join(withPrefix(prefix, e), ".")
			if _, seen := byPath[p]; !seen {
				paths = append(paths, p)
			}
			byPath[p] = append(byPath[p], e)
			continue
		}
		errs = append(errs, convertOne(filename, locate, prefix, e, withPrefix(prefix, e), format, args))
	}
	if len(errs) > 0 {
		return errs
	}
	for _, p := range paths {
		es := byPath[p]
		labels := withPrefix(prefix, es[0])
		errs = append(errs, &Error{Pos: position(filename, locate, prefix, es[0]), Path: joinPath(labels), Msg: disjunctionMsg(es), labels: labels})
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

// withPrefix is the full path of a CUE error found in the value at
// prefix, a large map's entry or chunk. CUE names the entry in the paths
// of most of its errors but not in those of missing required fields,
// which the schema reports relative to the entry.
func withPrefix(prefix []string, e cueerrors.Error) []string {
	path := unquote(e.Path())
	if len(prefix) > 0 && len(path) > 0 && path[0] == prefix[len(prefix)-1] {
		path = path[1:]
	}
	return append(slices.Clip(prefix), path...)
}

// message words one CUE error, or returns "" to keep CUE's own.
func message(locate locator, path []string, format string, args []any, line int) string {
	switch {
	case format == "field not allowed" && len(path) > 0:
		return unknownField(locate, path, line)
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
