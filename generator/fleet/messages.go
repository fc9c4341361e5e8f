package fleet

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"

	"github.com/meshfleet/meshfleet/schemas"
)

// patterns says in words what each regular expression of the schema
// accepts, so that no message shows a regular expression. Keys are the
// expressions as the schema writes them; a test checks that every one
// has its words.
var patterns = map[string]string{
	`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`:                                  `an Istio release like "1.31.1"`,
	`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`:                                        `lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (e.g. "east" or "1-31-1")`,
	`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`: `a DNS name like "cluster.local"`,
	`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`:                                   `a Go duration like "10m" or "1h30m"`,
	`^[a-z0-9]([a-z0-9.:/_-]*[a-z0-9])?$`:                                         `an image registry like "registry.istio.io/release" (lowercase)`,
	`^(https|oci)://[^\s$]+$`:                                                     `an https:// or oci:// URL without spaces or '$'`,
	`^[^\s$]+$`:                                                                   `a URL without spaces or '$'`,
	`^\./[^$]*$`:                                                                  `a path that starts with "./" and has no '$'`,
	`^[^./$][^$]*$`:                                                               `a path relative to the repository root, not starting with '.' or '/', without '$'`,
	`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$`:                                        `'/'-separated parts of letters, digits, '_', '.' and '-' (e.g. "istio/prod")`,
	`^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$`:                             `letters, digits, '_', '.' and '-', starting and ending with a letter or digit, at most 63 characters (e.g. "net-east")`,
	`\.(jsonnet|libsonnet)$`:                                                      `a file name ending in .jsonnet or .libsonnet`,
}

// boundWords turns a CUE bound like =~"^[0-9]+$" into words.
func boundWords(bound string) string {
	if re, ok := strings.CutPrefix(bound, "=~"); ok {
		if s, err := strconv.Unquote(re); err == nil {
			if w, ok := patterns[s]; ok {
				return w
			}
		}
		return "a value of the form this field takes (see meshfleet schema)"
	}
	if bound == `!=""` {
		return "a non-empty string"
	}
	return "a value " + bound
}

// schemaDef is #MeshFleet compiled once, for looking up which fields an
// object may have and what a field expects.
var schemaDef = sync.OnceValue(func() cue.Value {
	v := cuecontext.New().CompileBytes(schemas.MeshFleet, cue.Filename(schemas.Filename))
	return v.LookupPath(cue.ParsePath("#MeshFleet"))
})

// schemaAt is the schema of the value at path, following map entries
// such as spec.clusters.<name> through their pattern.
func schemaAt(path []string) cue.Value {
	v := schemaDef()
	for _, label := range path {
		var next cue.Value
		for _, sel := range []cue.Selector{cue.Str(label), cue.Str(label).Required(), cue.Str(label).Optional(), cue.AnyString} {
			if next = v.LookupPath(cue.MakePath(sel)); next.Exists() {
				break
			}
		}
		if !next.Exists() {
			return next
		}
		v = next
	}
	return v
}

// fieldNames lists the fields the schema allows in the object at path.
func fieldNames(path []string) []string {
	it, err := schemaAt(path).Fields(cue.Optional(true))
	if err != nil {
		return nil
	}
	var names []string
	for it.Next() {
		names = append(names, it.Selector().Unquoted())
	}
	return names
}

// things names what the schema expects at a path, for messages about
// misplaced objects.
func thing(path []string) string {
	if len(path) == 3 && path[0] == "spec" && path[1] == "clusters" {
		return "a cluster"
	}
	if names := fieldNames(path); len(names) > 0 {
		return "an object with " + strings.Join(names, ", ")
	}
	return "an object"
}

// unknownField explains a field the schema does not allow: the known
// field it is probably a typo of, a cluster written one level too far
// out, or the fields that are allowed.
func unknownField(locate locator, path []string, line int) string {
	name := path[len(path)-1]
	parent := path[:len(path)-1]
	allowed := fieldNames(parent)
	if s := closest(name, allowed); s != "" {
		return fmt.Sprintf("unknown field %q (did you mean %q?)", name, s)
	}
	if slices.Equal(parent, []string{"spec"}) && looksLikeCluster(locate, path) {
		return fmt.Sprintf("unknown field %q; it looks like a cluster, and clusters go under spec.clusters: check the indentation of line %d", name, line)
	}
	if len(allowed) == 0 {
		return fmt.Sprintf("unknown field %q", name)
	}
	return fmt.Sprintf("unknown field %q (allowed here: %s)", name, strings.Join(allowed, ", "))
}

func looksLikeCluster(locate locator, path []string) bool {
	if locate == nil {
		return false
	}
	// A missing field is placed at its parent's key: a field of its own
	// has another position.
	at := locate(path, true)
	for _, f := range []string{"role", "network"} {
		if locate(append(slices.Clip(path), f), true) != at {
			return true
		}
	}
	return false
}

// closest is the candidate that name is most probably a misspelling of,
// or "" when none is close.
func closest(name string, candidates []string) string {
	best, bestD := "", 0
	for _, c := range candidates {
		d := editDistance(strings.ToLower(name), strings.ToLower(c))
		if d <= max(1, len(c)/3) && (best == "" || d < bestD) {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance of a and b, by
// runes: insertions, deletions, substitutions and swaps of neighbours
// ("eats" for "east") each count one.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// mismatchedTypes explains a value of the wrong kind: a number where a
// string belongs ("quote it"), or a scalar or nothing where an object
// belongs, which is almost always an indentation mistake.
func mismatchedTypes(path []string, args []any, line int) string {
	got, wantKind, gotKind := fmt.Sprint(args[0]), fmt.Sprint(args[3]), fmt.Sprint(args[2])
	if gotKind == "struct" || gotKind == "list" {
		got, gotKind, wantKind = fmt.Sprint(args[1]), fmt.Sprint(args[3]), fmt.Sprint(args[2])
	}
	switch {
	case wantKind == "struct" && gotKind == "null":
		return fmt.Sprintf("expected %s here, found nothing: check the indentation of the lines after line %d", thing(path), line)
	case wantKind == "struct":
		return fmt.Sprintf("expected %s here, found %s: check the indentation of line %d", thing(path), got, line)
	case wantKind == "string" && (gotKind == "int" || gotKind == "float" || gotKind == "number"):
		if w := fieldWords(path); w != "" {
			return fmt.Sprintf("%s is a number; want %s: quote it", got, w)
		}
		return fmt.Sprintf("%s is a number; want a string: quote it (%q)", got, got)
	case wantKind == "string" && gotKind == "bool":
		return fmt.Sprintf("%s is a boolean in YAML; want a string: quote it (%q)", got, got)
	}
	return fmt.Sprintf("%s is a %s; want a %s", got, kindWord(gotKind), kindWord(wantKind))
}

func kindWord(k string) string {
	switch k {
	case "struct":
		return "object"
	case "int", "float":
		return "number"
	}
	return k
}

// fieldWords describes the form of the string the field at path takes,
// from the regular expression the schema gives it, or "".
func fieldWords(path []string) string {
	s := schemaAt(path)
	if !s.Exists() {
		return ""
	}
	var find func(v cue.Value, depth int) string
	find = func(v cue.Value, depth int) string {
		if b := fmt.Sprint(v); strings.HasPrefix(b, "=~") {
			return boundWords(b)
		}
		if op, args := v.Expr(); depth < 3 && (op == cue.AndOp || op == cue.OrOp) {
			for _, a := range args {
				if w := find(a, depth+1); w != "" {
					return w
				}
			}
		}
		return ""
	}
	return find(s, 0)
}
