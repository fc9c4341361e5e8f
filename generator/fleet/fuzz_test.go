package fleet_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-jsonnet"

	"github.com/meshfleet/meshfleet/generator/fleet"
)

// fuzzNames are the file names FuzzParse feeds its input under. Jsonnet is
// left out: it can import files and run unbounded computations.
var fuzzNames = []string{"fleet.yaml", "fleet.json", "fleet.cue"}

// FuzzParse checks that Parse never panics, that every error it reports
// about the content of a YAML, JSON or CUE file is a positioned entry of
// Errors in that file, and that a fleet it accepts is indexed.
func FuzzParse(f *testing.F) {
	examples, err := filepath.Glob(filepath.Join("..", "..", "examples", "*", "fleet.yaml"))
	if err != nil || len(examples) == 0 {
		f.Fatalf("no example fleets: %v", err)
	}
	for _, path := range append(examples, filepath.Join("testdata", "formats", "fleet.yaml")) {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(0), b)
	}
	for i, name := range fuzzNames[1:] {
		b, err := os.ReadFile(filepath.Join("testdata", "formats", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i+1), b)
	}
	for _, s := range []string{
		validFleet,
		"",
		"---\n",
		"# a comment\n",
		"[]\n",
		"a: [b\n",
		"apiVersion: meshfleet.dev/v1alpha1\nkind: MeshFleet\n---\nkind: MeshFleet\n",
		"apiVersion: meshfleet.dev/v1alpha1\napiVersion: meshfleet.dev/v1alpha1\n",
		"a: &x {b: 1}\nc: *x\n",
		"spec:\n  clusters:\n    east: {role: primary, network: n}\n    east: {}\n",
		"spec:\n  clusters: {a.b: {role: primary}}\n",
		strings.Replace(validFleet, "role: remote", "role: secondary", 1),
		strings.Replace(validFleet, "      network: net1\n", "", 1),
		strings.Replace(validFleet, "192.0.2.10", "ew.example.net", 1),
		strings.Replace(validFleet, "controlPlane: east", "controlPlane: west", 1),
		strings.Replace(validFleet, "  istio:", "  installer: helm\n  delivery:\n    flux: {path: ./out}\n    argocd: {repoURL: x, path: out}\n  istio:", 1),
	} {
		f.Add(uint8(0), src(s))
	}
	f.Add(uint8(2), []byte(`spec: clusters: [N=string]: apiServer: "https://\(N)"`))
	// CR line breaks made CUE's YAML decoder panic (issue 10).
	f.Add(uint8(0), []byte(" \r\r::\r\r"))
	f.Add(uint8(0), []byte("a:\r b\r\n- c\r"))
	f.Add(uint8(0), []byte("a: \"\u2028\"\nb: \u0085\n"))
	f.Add(uint8(1), []byte("{\"a\": \"\u2028\u0085\"}"))
	f.Add(uint8(0), []byte("a: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n"))
	f.Add(uint8(0), []byte("\xff\xfe"))
	f.Add(uint8(2), []byte(`apiVersion: 1 & 2`))

	f.Fuzz(func(t *testing.T, kind uint8, in []byte) {
		name := fuzzNames[int(kind)%len(fuzzNames)]
		fl, err := fleet.Parse(name, in)
		if err == nil {
			if fl == nil {
				t.Fatal("Parse returned neither a fleet nor an error")
			}
			if len(fl.Clusters) != len(fl.Spec.Clusters) {
				t.Fatalf("%d Clusters, %d Spec.Clusters", len(fl.Clusters), len(fl.Spec.Clusters))
			}
			if !sort.SliceIsSorted(fl.Clusters, func(i, j int) bool { return fl.Clusters[i].Name < fl.Clusters[j].Name }) {
				t.Error("Clusters are not sorted by name")
			}
			for _, c := range fl.Clusters {
				if fl.Spec.Clusters[c.Name] != c {
					t.Errorf("Clusters holds %q, which is not Spec.Clusters[%[1]q]", c.Name)
				}
			}
			return
		}
		var errs fleet.Errors
		if !errors.As(err, &errs) {
			t.Fatalf("Parse error is a %T, not fleet.Errors: %v", err, err)
		}
		if len(errs) == 0 {
			t.Fatal("Parse returned an empty fleet.Errors")
		}
		// An upper bound of the number of lines: YAML also breaks lines
		// at a lone CR, NEL, LS and PS, and puts the empty document of
		// "---" (no newline) on line 2 (testdata/fuzz/FuzzParse/854c467c7b4d5cb0).
		lines := 2
		for _, brk := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
			lines += strings.Count(string(in), brk)
		}
		for _, e := range errs {
			if e == nil {
				t.Fatalf("nil entry in %q", err)
			}
			if e.Pos.File != name {
				t.Errorf("error %q is in file %q, want %q", e, e.Pos.File, name)
			}
			if e.Msg == "" {
				t.Errorf("error %q has no message", e)
			}
			if e.Pos.Line < 0 || e.Pos.Line > lines || e.Pos.Column < 0 {
				t.Errorf("error %q is outside the %d lines of the file", e, lines)
			}
			if line := e.Error(); strings.ContainsAny(line, "\n\r\u0085\u2028\u2029\x1b") {
				t.Errorf("error %q is not one escaped line", line)
			}
		}
	})
}

// FuzzParseJsonnet checks Jsonnet fleet files: the parser on every input,
// the whole of Parse on inputs that cannot loop or allocate without bound
// (no functions, locals, comprehensions, imports or standard library),
// since in-process evaluation is bounded only by the process (meshfleet
// evaluates in a child process with limits, package sandbox).
func FuzzParseJsonnet(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "formats", "fleet.jsonnet"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(validJsonnet))
	for _, s := range []string{"{", "}", "[]", "{a: 'x' + 1}", "{a: error 'e\\nfleet.jsonnet:1:1: forged'}", "local x = 1; x", "{a: |||\n  x\n|||}", "{['a\\u2028']: 1}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 4096 {
			return
		}
		_, _ = jsonnet.SnippetToAST("fleet.jsonnet", string(in)) // must not panic
		for _, unbounded := range []string{"function", "local", "for", "import", "std", "$", "self", "super", "::", "%", "*"} {
			if bytes.Contains(in, []byte(unbounded)) {
				return
			}
		}
		_, err := fleet.Parse("fleet.jsonnet", in)
		if err == nil {
			return
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, "fleet.jsonnet") {
				t.Errorf("error line %q does not name the file", line)
			}
			if strings.Contains(line, "INTERNAL ERROR") {
				t.Errorf("error line %q", line)
			}
		}
	})
}

const validJsonnet = `{
  apiVersion: 'meshfleet.dev/v1alpha1',
  kind: 'MeshFleet',
  metadata: { name: 'demo' },
  spec: {
    mesh: { id: 'mesh1' },
    istio: { version: '1.31.1' },
    clusters: {
      east: { role: 'primary', network: 'net1', apiServer: 'https://east.example.net:6443' },
      west: { role: 'primary', network: 'net1', apiServer: 'https://west.example.net:6443' },
    },
  },
}
`
