package schemagen_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	cuejson "cuelang.org/go/encoding/json"
	cueyaml "cuelang.org/go/encoding/yaml"
	"github.com/rogpeppe/go-internal/txtar"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/internal/schemagen"
	"github.com/meshfleet/meshfleet/schemas"
)

// TestJSONSchemaCurrent fails when schemas/meshfleet.schema.json is not
// what `go generate ./schemas` writes from schemas/meshfleet.cue. With
// MESHFLEET_UPDATE=1 it rewrites the file.
func TestJSONSchemaCurrent(t *testing.T) {
	got, err := schemagen.JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(got, schemas.JSONSchema) {
		return
	}
	const file = "../../schemas/meshfleet.schema.json"
	if os.Getenv("MESHFLEET_UPDATE") != "" {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("schemas/meshfleet.schema.json is stale: run go generate ./schemas (or MESHFLEET_UPDATE=1 go test ./internal/schemagen)")
}

// testCase is one document both schemas judge.
type testCase struct {
	name  string
	field string // the field a mutation changed
	json  []byte // the document, as JSON
}

// corpus is every document the agreement tests judge, with the CUE
// schema's verdict on each.
type corpus struct {
	cases    []testCase
	mutated  int      // how many of cases are mutations of the examples
	examples int      // how many example fleets
	skipped  []string // sources that are not data
	cueErrs  []error  // the CUE schema's verdict on each case
}

var loadCorpus = sync.OnceValues(func() (*corpus, error) {
	ctx := cuecontext.New()
	schema := ctx.CompileBytes(schemas.MeshFleet, cue.Filename(schemas.Filename)).LookupPath(cue.ParsePath("#MeshFleet"))
	if err := schema.Err(); err != nil {
		return nil, err
	}
	unify := func(doc []byte) (cue.Value, error) {
		expr, err := cuejson.Extract("doc.json", doc)
		if err != nil {
			return cue.Value{}, err
		}
		return schema.Unify(ctx.BuildExpr(expr)), nil
	}
	cases, skipped, err := fleetCases(ctx)
	if err != nil {
		return nil, err
	}
	examples := map[string][]byte{}
	for _, c := range cases {
		if strings.HasPrefix(c.name, "examples/") {
			examples[c.name] = c.json
		}
	}
	mutated, err := mutations(examples, func(doc []byte, path []string) []string {
		v, err := unify(doc)
		if err != nil {
			return nil
		}
		sels := make([]cue.Selector, len(path))
		for i, p := range path {
			sels[i] = cue.Str(p)
		}
		it, err := v.LookupPath(cue.MakePath(sels...)).Fields(cue.Optional(true))
		if err != nil {
			return nil
		}
		var names []string
		for it.Next() {
			names = append(names, it.Selector().Unquoted())
		}
		return names
	})
	if err != nil {
		return nil, err
	}
	c := &corpus{cases: append(cases, mutated...), mutated: len(mutated), examples: len(examples), skipped: skipped}
	for _, tc := range c.cases {
		v, err := unify(tc.json)
		if err == nil {
			err = v.Validate(cue.Concrete(true))
		}
		c.cueErrs = append(c.cueErrs, err)
	}
	return c, nil
})

// disagreement is a document the two schemas judge differently.
type disagreement struct {
	tc  testCase
	msg string
}

// compare judges every document of c with the JSON Schema and returns the
// ones the schemas disagree on, and how many both accept and reject.
func compare(c *corpus, jsonSchema []byte) (diff []disagreement, accepted, rejected int, err error) {
	v, err := newValidator(jsonSchema)
	if err != nil {
		return nil, 0, 0, err
	}
	for i, tc := range c.cases {
		var x any
		if err := decode(tc.json, &x); err != nil {
			return nil, 0, 0, err
		}
		cueErr, jsErr := c.cueErrs[i], v.validate(any(v.doc), x, "")
		switch {
		case cueErr == nil && jsErr != nil:
			diff = append(diff, disagreement{tc, fmt.Sprintf("CUE accepts, JSON Schema rejects: %v", jsErr)})
		case cueErr != nil && jsErr == nil:
			diff = append(diff, disagreement{tc, fmt.Sprintf("CUE rejects, JSON Schema accepts; CUE says: %v", cueErr)})
		case cueErr == nil:
			accepted++
		default:
			rejected++
		}
	}
	return diff, accepted, rejected, nil
}

// TestSchemasAgree checks that the JSON Schema accepts exactly the
// documents the CUE schema accepts: every example fleet, every fleet
// file of the fleet package's tests (its testdata and the sources in its
// table tests), every fleet in the CLI scripts, and a mutation of every
// field of the examples and of every field the schema allows beside them
// into values of every kind.
func TestSchemasAgree(t *testing.T) {
	t.Parallel()
	c, err := loadCorpus()
	if err != nil {
		t.Fatal(err)
	}
	diff, accepted, rejected, err := compare(c, schemas.JSONSchema)
	if err != nil {
		t.Fatal(err)
	}
	reported := map[string]int{} // one report per field and verdict
	for _, d := range diff {
		key := d.tc.field + ": " + d.msg[:10]
		if reported[key]++; reported[key] == 1 {
			t.Errorf("%s: %s\n%s", d.tc.name, d.msg, d.tc.json)
		}
	}
	for key, n := range reported {
		if n > 1 {
			t.Logf("%d more disagreements like %s…", n-1, key)
		}
	}
	t.Logf("%d fleets (%d mutations of the examples): %d accepted by both, %d rejected by both; %d sources are not data (syntax errors, non-concrete CUE, failing Jsonnet): %v",
		len(c.cases), c.mutated, accepted, rejected, len(c.skipped), c.skipped)
	if c.examples < 10 || len(c.cases)-c.mutated < 80 {
		t.Errorf("found only %d examples and %d fleets: is the harvest broken?", c.examples, len(c.cases)-c.mutated)
	}
	if accepted == 0 || rejected == 0 {
		t.Errorf("accepted %d, rejected %d: the cases do not exercise both verdicts", accepted, rejected)
	}
}

// TestAgreementCatchesWeakening checks the agreement test itself: a JSON
// Schema with one constraint taken out, or one made stricter, must
// disagree with the CUE schema somewhere in the corpus.
func TestAgreementCatchesWeakening(t *testing.T) {
	t.Parallel()
	c, err := loadCorpus()
	if err != nil {
		t.Fatal(err)
	}
	edits := map[string]func(doc map[string]any){
		"no pattern on names": func(doc map[string]any) {
			delete(def(doc, "Name"), "pattern")
		},
		"no pattern on istio.hub": func(doc map[string]any) {
			delete(prop(def(doc, "Spec"), "istio", "hub"), "pattern")
		},
		"cluster open to unknown fields": func(doc map[string]any) {
			delete(def(doc, "Cluster"), "additionalProperties")
		},
		"network not required": func(doc map[string]any) {
			def(doc, "Cluster")["required"] = []any{"role"}
		},
		"kubeContext required": func(doc map[string]any) {
			def(doc, "Cluster")["required"] = []any{"kubeContext", "network", "role"}
		},
		"no remote role": func(doc map[string]any) {
			prop(def(doc, "Cluster"), "role")["enum"] = []any{"primary"}
		},
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var doc map[string]any
			if err := json.Unmarshal(schemas.JSONSchema, &doc); err != nil {
				t.Fatal(err)
			}
			edit(doc)
			b, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			diff, _, _, err := compare(c, b)
			if err != nil {
				t.Fatal(err)
			}
			if len(diff) == 0 {
				t.Errorf("the JSON Schema with %s agrees with the CUE schema on every fleet", name)
			}
		})
	}
}

// def returns the definition name of a JSON Schema document.
func def(doc map[string]any, name string) map[string]any {
	return doc["$defs"].(map[string]any)[name].(map[string]any)
}

// prop returns the schema of a nested property.
func prop(s map[string]any, path ...string) map[string]any {
	for _, p := range path {
		s = s["properties"].(map[string]any)[p].(map[string]any)
	}
	return s
}

// fleetCases finds every fleet the repository's tests and examples use —
// fleet files, files in txtar archives (the CLI scripts) and `src` fields
// of table tests — and returns each as JSON, plus the names of sources
// that are not data.
func fleetCases(ctx *cue.Context) (cases []testCase, skipped []string, err error) {
	add := func(name, filename string, src []byte) {
		doc, err := toJSON(ctx, filename, src)
		if err != nil {
			skipped = append(skipped, name)
			return
		}
		cases = append(cases, testCase{name, name, doc})
	}
	fleetExts := []string{".yaml", ".yml", ".json", ".cue", ".jsonnet"}
	for _, root := range []string{"../../examples", "../../generator", "../../overlays", "../../internal"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			switch {
			case err != nil:
				return err
			case d.IsDir() && (d.Name() == "rendered" || d.Name() == "fuzz"):
				return filepath.SkipDir
			case d.IsDir():
				return nil
			}
			name := strings.TrimPrefix(path, "../../")
			// Every source of the fleet package's tests is a fleet, broken
			// ones included; elsewhere, fleets name their kind.
			fleetPkg := strings.HasPrefix(name, "generator/fleet/")
			src, err := os.ReadFile(path)
			if err != nil || !fleetPkg && !bytes.Contains(src, []byte("MeshFleet")) {
				return err // kustomizations, plugin files, other tests
			}
			switch ext := filepath.Ext(path); {
			case slices.Contains(fleetExts, ext):
				add(name, path, src)
			case ext == ".txtar":
				for _, file := range txtar.Parse(src).Files {
					if bytes.Contains(file.Data, []byte("MeshFleet")) && !strings.HasPrefix(file.Name, "want") {
						add(name+":"+file.Name, filepath.Join(filepath.Dir(path), file.Name), file.Data)
					}
				}
			case strings.HasSuffix(path, "_test.go") && !strings.HasPrefix(name, "internal/schemagen/"):
				srcs, err := goSources(path)
				if err != nil {
					return err
				}
				for _, s := range srcs {
					if fleetPkg || strings.Contains(s.src, "MeshFleet") {
						add(fmt.Sprintf("%s:%d", name, s.line), filepath.Join(filepath.Dir(path), s.filename), []byte(s.src))
					}
				}
			}
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	return cases, skipped, nil
}

// toJSON evaluates a fleet source to the JSON document it stands for.
func toJSON(ctx *cue.Context, filename string, src []byte) ([]byte, error) {
	var v cue.Value
	switch filepath.Ext(filename) {
	case ".yaml", ".yml", ".json":
		f, err := cueyaml.Extract(filename, src)
		if err != nil {
			return nil, err
		}
		v = ctx.BuildFile(f)
	case ".cue":
		v = ctx.CompileBytes(src, cue.Filename(filename))
	case ".jsonnet":
		vm, err := fleet.JsonnetVM(filepath.Dir(filename))
		if err != nil {
			return nil, err
		}
		out, err := vm.EvaluateAnonymousSnippet(filename, string(src))
		if err != nil {
			return nil, err
		}
		return []byte(out), nil
	default:
		return nil, fmt.Errorf("not a fleet file")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return v.MarshalJSON()
}

// goSource is a fleet file written inline in a Go test.
type goSource struct {
	line          int
	filename, src string
}

// goSources finds the `src` fields of the table tests in a Go file whose
// value is a constant string expression (literals, package constants and
// +), with the `filename` field beside them (fleet.yaml by default). The
// inline fleets drop their leading newline, as the tests do.
func goSources(path string) ([]goSource, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		return nil, err
	}
	consts := map[string]ast.Expr{}
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						consts[n.Name] = vs.Values[i]
					}
				}
			}
		}
	}
	var eval func(e ast.Expr) (string, bool)
	eval = func(e ast.Expr) (string, bool) {
		switch e := e.(type) {
		case *ast.BasicLit:
			if e.Kind == token.STRING {
				s, err := strconv.Unquote(e.Value)
				return s, err == nil
			}
		case *ast.Ident:
			if c, ok := consts[e.Name]; ok {
				return eval(c)
			}
		case *ast.ParenExpr:
			return eval(e.X)
		case *ast.BinaryExpr:
			if e.Op == token.ADD {
				x, ok1 := eval(e.X)
				y, ok2 := eval(e.Y)
				return x + y, ok1 && ok2
			}
		}
		return "", false
	}
	var out []goSource
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.CompositeLit)
		if !ok {
			return true
		}
		s := goSource{filename: "fleet.yaml"}
		found := false
		for _, e := range lit.Elts {
			kv, ok := e.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			key, ok := kv.Key.(*ast.Ident)
			if !ok {
				continue
			}
			switch key.Name {
			case "src":
				if v, ok := eval(kv.Value); ok {
					s.src, s.line, found = strings.TrimPrefix(v, "\n"), fset.Position(kv.Pos()).Line, true
				}
			case "filename":
				if v, ok := eval(kv.Value); ok && v != "" {
					s.filename = v
				}
			}
		}
		if found {
			out = append(out, s)
		}
		return true
	})
	return out, nil
}

// probes are the values every field of the examples is replaced with: a
// value of each JSON type, strings that break each pattern of the schema
// and strings that satisfy them.
var probes = []any{
	nil, true, 0, 1.31, -1, "", " ", "UPPER", "has space", "x$y", "${VAR}", "-lead", "trail-",
	"a_b", "a.b", "1.31", "1.31.1", "1.31.1-rc.0", "v1.31.1", "10m", "1h", "ten", "./out", "out",
	"/abs", "../up", "https://ok.example.net", "http://plain.example.net", "oci://r.example.net/c",
	"git@host:repo", "registry.example.net/istio", "Registry.Example", "a/b//c",
	"ext.jsonnet", "ext.libsonnet", "ext.json", "primary", "remote", "helm", "sail", "istioctl",
	"placeholder", "external-secrets", "multi-primary", "multi-network", "SecretStore", "OCIRepository",
	strings.Repeat("a", 64), strings.Repeat("a", 63), "x", map[string]any{}, []any{},
	[]any{map[string]any{"jsonnet": "a.jsonnet"}}, map[string]any{"provider": "placeholder"},
	map[string]any{"name": "n"}, map[string]any{"address": "192.0.2.1"},
}

// mutations returns, for every field of the examples and every field the
// CUE schema allows beside them (each schema path once), the example with
// that field set to every probe, removed, and with an unknown field
// beside it. fields lists the fields the CUE schema has at a path of a
// document.
func mutations(examples map[string][]byte, fields func(doc []byte, path []string) []string) ([]testCase, error) {
	var names []string
	for n := range examples {
		names = append(names, n)
	}
	sort.Strings(names)
	seen := map[string]bool{}
	var out []testCase
	for _, name := range names {
		var doc any
		if err := json.Unmarshal(examples[name], &doc); err != nil {
			return nil, err
		}
		var walk func(x any, path []string)
		walk = func(x any, path []string) {
			obj, ok := x.(map[string]any)
			if !ok {
				return
			}
			keys := make([]string, 0, len(obj))
			for k := range obj {
				keys = append(keys, k)
			}
			b, err := json.Marshal(doc)
			if err != nil {
				panic(err) // our own JSON values
			}
			for _, k := range fields(b, path) {
				if !slices.Contains(keys, k) {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			for _, k := range keys {
				p := append(slices.Clone(path), k)
				shape := schemaPath(p)
				if !seen[shape] {
					seen[shape] = true
					orig, present := obj[k]
					for _, pr := range append(slices.Clone(probes), "__delete__", "__unknown__") {
						switch pr {
						case "__delete__":
							delete(obj, k)
						case "__unknown__":
							obj["zz"+k] = "x"
						default:
							obj[k] = pr
						}
						b, err := json.Marshal(doc)
						if err != nil {
							panic(err) // our own JSON values
						}
						out = append(out, testCase{fmt.Sprintf("%s with %s = %s", name, strings.Join(p, "."), show(pr)), shape, b})
						delete(obj, "zz"+k)
						delete(obj, k)
						if present {
							obj[k] = orig
						}
					}
				}
				if v, ok := obj[k]; ok {
					walk(v, p)
				}
			}
		}
		walk(doc, nil)
	}
	return out, nil
}

// schemaPath names the field a path is: cluster names and other map keys
// are replaced with *.
func schemaPath(p []string) string {
	out := slices.Clone(p)
	for i := range out {
		if i > 0 && (out[i-1] == "clusters" || out[i-1] == "annotations" || out[i-1] == "labels") {
			out[i] = "*"
		}
	}
	return strings.Join(out, ".")
}
