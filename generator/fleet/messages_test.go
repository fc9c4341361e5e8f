package fleet_test

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/schemas"
)

// TestMessages checks that errors a person makes by hand read as advice:
// the line really at fault, no regular expressions or schema dumps, the
// field or cluster probably meant. Each case edits validFleet.
func TestMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		old, new string
		want     string
	}{
		{
			name: "a key one space out",
			old:  "      controlPlane: east", new: "     controlPlane: east",
			want: "fleet.yaml:20:6: indented by 5 spaces, which lines up with no enclosing block (blocks here start at 0, 2, 4, 6 spaces): check the indentation",
		},
		{
			name: "a key one space in",
			old:  "      controlPlane: east", new: "       controlPlane: east",
			want: "fleet.yaml:20:8: indented deeper than line 19, which already has a value: check the indentation of lines 19 and 20",
		},
		{
			name: "a tab in the indentation",
			old:  "      network: net1\n      controlPlane", new: "\tnetwork: net1\n      controlPlane",
			want: "fleet.yaml:19:1: a tab character: YAML indents with spaces only",
		},
		{
			name: "a release written as a number",
			old:  "version: 1.31.1", new: "version: 1.31",
			want: `fleet.yaml:9:14: spec.istio.version: 1.31 is a number; want an Istio release like "1.31.1": quote it`,
		},
		{
			name: "a pattern in words",
			old:  "version: 1.31.1", new: "version: v1.31.1",
			want: `fleet.yaml:9:14: spec.istio.version: invalid value "v1.31.1": want an Istio release like "1.31.1"`,
		},
		{
			name: "a default does not show as a conflict",
			old:  "version: 1.31.1", new: "version: 1.31.1\n    revision: Canary",
			want: `fleet.yaml:10:15: spec.istio.revision: invalid value "Canary": want lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (e.g. "east" or "1-31-1")`,
		},
		{
			name: "a duration in words",
			old:  "  clusters:", new: "  secrets:\n    provider: external-secrets\n    store: {name: vault}\n    refreshInterval: 1 hour\n  clusters:",
			want: `fleet.yaml:13:22: spec.secrets.refreshInterval: invalid value "1 hour": want a Go duration like "10m" or "1h30m"`,
		},
		{
			name: "a misspelt field",
			old:  "      role: remote", new: "      rol: remote",
			want: `fleet.yaml:18:7: spec.clusters.west.rol: unknown field "rol" (did you mean "role"?)`,
		},
		{
			name: "an unknown field lists the known ones",
			old:  "      role: remote", new: "      role: remote\n      zone: b",
			want: `fleet.yaml:19:7: spec.clusters.west.zone: unknown field "zone" (allowed here: role, network, apiServer, controlPlane, configCluster, kubeContext, eastWestGateway, istiodGateway, istio)`,
		},
		{
			name: "a misspelt cluster reference",
			old:  "controlPlane: east", new: "controlPlane: eats",
			want: `fleet.yaml:20:21: spec.clusters.west.controlPlane: "eats" is not a cluster of this fleet (did you mean "east"?)`,
		},
		{
			name: "a cluster one level too far out",
			old:  "    west:", new: "  west:",
			want: "fleet.yaml:17:3: spec.west: unknown field \"west\"; it looks like a cluster, and clusters go under spec.clusters: check the indentation of line 17",
		},
		{
			name: "a cluster's fields one level too far out",
			old:  "    west:\n      role: remote\n      network: net1\n      controlPlane: east\n      apiServer: https://west.example.net:6443",
			new:  "    west:\n    role: remote\n    network: net1\n    controlPlane: east\n    apiServer: https://west.example.net:6443",
			want: "fleet.yaml:17:10: spec.clusters.west: expected a cluster here, found nothing: check the indentation of the lines after line 17\n" +
				"fleet.yaml:18:11: spec.clusters.role: expected a cluster here, found \"remote\": check the indentation of line 18\n" +
				"fleet.yaml:19:14: spec.clusters.network: expected a cluster here, found \"net1\": check the indentation of line 19\n" +
				"fleet.yaml:20:19: spec.clusters.controlPlane: expected a cluster here, found \"east\": check the indentation of line 20\n" +
				"fleet.yaml:21:16: spec.clusters.apiServer: expected a cluster here, found \"https://west.example.net:6443\": check the indentation of line 21",
		},
		{
			name: "schema and rule errors in one run",
			old:  "      role: primary\n      network: net1\n      apiServer: https://east",
			new:  "      role: primery\n      network: net1\n      apiServer: http://east",
			want: `fleet.yaml:12:13: spec.clusters.east.role: invalid value "primery" (want one of "external-controlplane", "primary", "remote")` + "\n" +
				`fleet.yaml:14:18: spec.clusters.east.apiServer: scheme "http": the API server must be reached over https`,
		},
		{
			name: "a missing extension",
			old:  "  clusters:", new: "  extensions:\n  - jsonnet: ext/missing.jsonnet\n  - jsonnet: ../outside.jsonnet\n  clusters:",
			want: `fleet.yaml:11:14: spec.extensions.0.jsonnet: ext/missing.jsonnet does not exist (extensions are relative to the fleet file's directory)` + "\n" +
				`fleet.yaml:12:14: spec.extensions.1.jsonnet: "../outside.jsonnet" is not a relative path of plain names (letters, digits, '_', '-', '.') below the fleet file's directory`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := strings.TrimPrefix(validFleet, "\n")
			if !strings.Contains(in, tt.old) {
				t.Fatalf("validFleet has no %q", tt.old)
			}
			_, err := fleet.Parse("fleet.yaml", []byte(strings.Replace(in, tt.old, tt.new, 1)))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Parse error:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// TestNoRegexpInMessages: every pattern of the schema has its words, so
// no message shows a regular expression.
func TestNoRegexpInMessages(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(`=~("(?:[^"\\]|\\.)*")`)
	var code strings.Builder
	for line := range strings.Lines(string(schemas.MeshFleet)) {
		if !strings.HasPrefix(strings.TrimSpace(line), "//") {
			code.WriteString(line)
		}
	}
	for _, m := range re.FindAllStringSubmatch(code.String(), -1) {
		pattern, err := strconv.Unquote(m[1])
		if err != nil {
			t.Fatalf("pattern %s: %v", m[1], err)
		}
		if fleet.PatternWords(pattern) == "" {
			t.Errorf("pattern %s has no words in generator/fleet/messages.go", m[1])
		}
	}
	if _, err := os.Stat("messages.go"); err != nil {
		t.Fatal(err)
	}
}
