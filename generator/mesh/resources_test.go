package mesh

import (
	"strings"
	"testing"
)

// TestKubeconfigTemplateCannotBeSteered: whatever reaches the External
// Secrets template comes out of it as one YAML scalar, with no template
// action of its own.
func TestKubeconfigTemplateCannotBeSteered(t *testing.T) {
	for _, s := range []string{
		"https://east.example.net:6443",
		"https://e.example.net/{{ .token }}",
		"https://e.example.net\nusers: []",
		"a: b",
		"\"quoted\"",
		"x\u2028y",
	} {
		got := templateScalar(s)
		if strings.Contains(strings.ReplaceAll(got, `{{ "{{" }}`, ""), "{{") || strings.ContainsAny(got, "\n\u2028") {
			t.Errorf("templateScalar(%q) = %s, which a template or YAML could act on", s, got)
		}
		if s != "a: b" && s == got && !safeTemplateScalar.MatchString(s) {
			t.Errorf("templateScalar(%q) left it unquoted", s)
		}
	}
}
