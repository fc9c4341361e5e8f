package overlays

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
	sigsyaml "sigs.k8s.io/yaml"
)

// hostileStrings are strings that YAML could read as something else, or
// that could break a line or a document, when written carelessly.
var hostileStrings = []string{
	"", " ", "  ", "\t", "\n", "\r", "\r\n", "a\rb", "\u0085", "a\u0085b", "\u2028", "a\u2029b", "\ufeff", "\ufeffa",
	"\x00", "\x01\x02", "\x1b[31mred\x1b[0m", "\x7f", "\u0080", "\u009f", "\u00a0", "\u200b", "\u202e", "\ufffe", "\uffff", "\U0001F600",
	"null", "Null", "NULL", "~", "yes", "Yes", "no", "on", "off", "y", "n", "Y", "N", "true", "False",
	"0x1", "0o7", "07", "1e3", "1E3", "1_000", "1:20", ".inf", "-.inf", ".nan", ".NaN", "+1", "-1", "1.", ".5", "2001-12-14", "2001-12-14t21:59:43.10-05:00",
	"- x", "-", "--", "---", "...", "--- a", "... a", "? ", "?", "? a", ": ", ":", "a:", "a: b", "a:b", "#", "# c", "a #b", "a#b",
	" a", "a ", " a ", "a  b", "a\tb", "\ta", "a\t", "'", "\"", "''", "\"\"", "\\", "\\n", "\\u2028", "&a", "*a", "!a", "!!str", "%YAML", "@a", "`a",
	"{", "}", "[", "]", "{}", "[]", ",", "|", ">", "|-", ">+", "=", "<<", "${x}", "{{ .token }}",
	"a\nb", "a\nb\n", "a\n\nb\n", "\na\n", " a\nb\n", "a\n b\n", "a \nb\n", "a\n\n", "a\n---\nb\n", "a\n...\n", "a\n- b\n", "a\n\tb\n",
	"kind: ClusterRoleBinding\n", "x\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n",
	strings.Repeat("k", 1020), strings.Repeat("é", 600),
}

// roundTrip marshals {key: value} and a list holding value, and reads the
// result back with a strict YAML 1.2 parser (yaml.v3, which kyaml and
// kustomize use) and with sigs.k8s.io/yaml (YAML 1.1, Kubernetes' JSON
// conversion). Both must give back exactly what was written.
func roundTrip(t *testing.T, key string, value any) {
	t.Helper()
	in := map[string]any{key: value, "list": []any{value, map[string]any{key: value}}}
	var b bytes.Buffer
	if err := marshal(&b, in); err != nil {
		if !utf8.ValidString(key) || len(scalar(key)) > maxKey || key == "<<" {
			return // refused, as it must be
		}
		if s, ok := value.(string); ok && !utf8.ValidString(s) {
			return
		}
		t.Fatalf("marshal(%q: %q): %v", key, value, err)
	}
	var got any
	dec := yaml.NewDecoder(bytes.NewReader(b.Bytes()))
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("yaml.v3 cannot read back %q: %v\n%s", in, err, b.Bytes())
	}
	var extra any
	if err := dec.Decode(&extra); err == nil {
		t.Fatalf("%q was written as more than one document:\n%s", in, b.Bytes())
	}
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("yaml.v3 read back %#v, want %#v\n%s", got, in, b.Bytes())
	}
	j, err := sigsyaml.YAMLToJSON(b.Bytes())
	if err != nil {
		t.Fatalf("sigs.k8s.io/yaml cannot read back %q: %v\n%s", in, err, b.Bytes())
	}
	want, _ := json.Marshal(in)
	var g, w any
	_ = json.Unmarshal(j, &g)
	_ = json.Unmarshal(want, &w)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("sigs.k8s.io/yaml read back %s, want %s\n%s", j, want, b.Bytes())
	}
}

func TestMarshalHostileStrings(t *testing.T) {
	for _, s := range hostileStrings {
		roundTrip(t, "k", s)
		roundTrip(t, s, "v")
		roundTrip(t, s, s)
	}
	for _, v := range []any{0, -1, 1 << 40, 0.5, 1e21, 1e-7, -2.5e-300, true, false, nil} {
		roundTrip(t, "k", v)
	}
}

func TestMarshalRefuses(t *testing.T) {
	for _, in := range []map[string]any{
		{"k": "\xff"},
		{"\xfe": "v"},
		{strings.Repeat("k", 1001): "v"},
		{"<<": "v"},
		{"k": []any{"ok", "a\xc0"}},
	} {
		var b bytes.Buffer
		if err := marshal(&b, in); err == nil {
			t.Errorf("marshal(%q) = nil error, want a refusal; wrote\n%s", in, b.Bytes())
		}
	}
}

// FuzzMarshalRoundTrip checks that every string the emitter writes, as a
// key or a value, reads back exactly.
func FuzzMarshalRoundTrip(f *testing.F) {
	for _, s := range hostileStrings {
		f.Add("k", s)
		f.Add(s, "v")
	}
	f.Fuzz(func(t *testing.T, key, value string) {
		roundTrip(t, key, value)
	})
}
