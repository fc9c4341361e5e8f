package fleet_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/meshfleet/meshfleet/generator/fleet"
)

// checkFormatsFleet checks the fields the files in testdata/formats set
// (schema defaults, which change as the schema grows, are left to the
// comparison between formats).
func checkFormatsFleet(t *testing.T, f *fleet.Fleet) {
	t.Helper()
	east := &fleet.Cluster{
		Name:            "east",
		Role:            fleet.Primary,
		Network:         "net-east",
		APIServer:       "https://east.k8s.example.net:6443",
		EastWestGateway: &fleet.Gateway{Address: "203.0.113.10"},
	}
	west := &fleet.Cluster{
		Name:            "west",
		Role:            fleet.Remote,
		Network:         "net-west",
		APIServer:       "https://west.k8s.example.net:6443",
		ControlPlane:    "east",
		EastWestGateway: &fleet.Gateway{Address: "203.0.113.20"},
	}
	for _, c := range []struct {
		field     string
		got, want any
	}{
		{"APIVersion", f.APIVersion, "meshfleet.dev/v1alpha1"},
		{"Kind", f.Kind, "MeshFleet"},
		{"Metadata", f.Metadata, fleet.Metadata{Name: "formats"}},
		{"Spec.Mesh", f.Spec.Mesh, fleet.Mesh{ID: "mesh1", TrustDomain: "mesh1.example.net"}},
		{"Spec.Istio.Version", f.Spec.Istio.Version, "1.31.1"},
		{"Spec.Istio.Revision", f.Spec.Istio.Revision, "1-31-1"},
		{"Spec.Istio.Hub (default)", f.Spec.Istio.Hub, "registry.istio.io/release"},
		{"Spec.Topology", f.Spec.Topology, &fleet.Topology{ControlPlane: fleet.PrimaryRemote, Network: fleet.MultiNetwork}},
		{"Spec.Secrets", f.Spec.Secrets, fleet.Secrets{
			Provider:        fleet.ProviderExternalSecrets,
			Store:           fleet.Store{Name: "vault", Kind: "SecretStore"},
			RefreshInterval: "30m",
			KeyPrefix:       "istio", // the default
		}},
		{"Spec.Clusters", f.Spec.Clusters, map[string]*fleet.Cluster{"east": east, "west": west}},
		{"Clusters", f.Clusters, []*fleet.Cluster{east, west}},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %s, want %s", c.field, dumpValue(c.got), dumpValue(c.want))
		}
	}
}

// dumpValue shows v as JSON, following pointers.
func dumpValue(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// dump shows a fleet with its clusters' names, which JSON leaves out.
func dump(f *fleet.Fleet) string {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err.Error()
	}
	var names []string
	for _, c := range f.Clusters {
		names = append(names, c.Name)
	}
	return string(b) + "\nClusters: " + strings.Join(names, ", ") + "\nDir: " + f.Dir
}

// TestFormatsDecodeAlike loads the same fleet written in each format and
// compares the results, schema defaults included, with the YAML one.
func TestFormatsDecodeAlike(t *testing.T) {
	t.Parallel()
	load := func(t *testing.T, name string) *fleet.Fleet {
		t.Helper()
		f, err := fleet.Load(filepath.Join("testdata", "formats", name))
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		return f
	}
	want := load(t, "fleet.yaml")
	checkFormatsFleet(t, want)
	for _, name := range []string{"fleet.json", "fleet.cue", "fleet.jsonnet"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := load(t, name); !reflect.DeepEqual(fleet.WithoutSource(got), fleet.WithoutSource(want)) {
				t.Errorf("%s decodes to\n%s\nfleet.yaml to\n%s", name, dump(got), dump(want))
			}
		})
	}
}

// TestJSONFixtureIsTabIndented keeps the JSON fixture what it is meant
// to be: JSON (not YAML), indented with tabs, which YAML forbids in block
// indentation but JSON's flow syntax allows.
func TestJSONFixtureIsTabIndented(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("testdata", "formats", "fleet.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) {
		t.Error("fleet.json is not valid JSON")
	}
	if want := []byte("\n\t\t\"mesh\": {\n\t\t\t\"id\""); !bytes.Contains(b, want) {
		t.Errorf("fleet.json is not indented with tabs: no %q in it", want)
	}
}

func TestFormatErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		filename string
		src      string
		want     string
		errors   bool // the error is a fleet.Errors
	}{
		{
			name:     "CUE type error",
			filename: "fleet.cue",
			src: `apiVersion: "meshfleet.dev/v1alpha1"
kind:       "MeshFleet"
metadata: name: "formats"
spec: {
	mesh: id: "mesh1"
	istio: version: 1.31
	clusters: east: {role: "primary", network: "net-east"}
}
`,
			want:   `fleet.cue:6:18: spec.istio.version: 1.31 is a number; want an Istio release like "1.31.1": quote it`,
			errors: true,
		},
		{
			name:     "CUE conflict within the file",
			filename: "fleet.cue",
			src: `apiVersion: "meshfleet.dev/v1alpha1"
kind:       "MeshFleet"
metadata: name: "formats"
spec: {
	mesh: id: "mesh1"
	istio: version: "1.31.1"
	clusters: east: {role: "primary", network: "net-east"}
	clusters: east: network: "net-west"
}
`,
			want:   `fleet.cue:7:45: spec.clusters.east.network: conflicting values "net-west" and "net-east"`,
			errors: true,
		},
		{
			name:     "CUE syntax error",
			filename: "fleet.cue",
			src: `apiVersion: "meshfleet.dev/v1alpha1"
kind: "MeshFleet" +
`,
			want:   `fleet.cue:2:21: expected operand, found 'EOF'`,
			errors: true,
		},
		{
			// Jsonnet's own errors are passed on as go-jsonnet words them.
			name:     "Jsonnet syntax error",
			filename: "fleet.jsonnet",
			src: `{
  apiVersion: 'meshfleet.dev/v1alpha1',
  kind: 'MeshFleet'
  metadata: { name: 'formats' },
}
`,
			want: `fleet.jsonnet:4:3: Expected a comma before next field`,
		},
		{
			name:     "Jsonnet runtime error",
			filename: "fleet.jsonnet",
			src: `local cluster(role) =
  assert role == 'primary' || role == 'remote' : 'unknown role ' + role;
  { role: role };
{
  apiVersion: 'meshfleet.dev/v1alpha1',
  spec: { clusters: { east: cluster('secondary') } },
}
`,
			want: "fleet.jsonnet:2:3: unknown role secondary",
		},
		{
			name:     "Jsonnet that is not an object",
			filename: "fleet.jsonnet",
			src:      `[{ apiVersion: 'meshfleet.dev/v1alpha1' }]`,
			want:     `fleet.jsonnet: a Jsonnet fleet file must evaluate to an object`,
			errors:   true,
		},
		{
			// Positions of schema errors point into the JSON the Jsonnet
			// file evaluates to (zone is on line 8 of the source).
			name:     "Jsonnet schema error",
			filename: "fleet.jsonnet",
			src: `{
  apiVersion: 'meshfleet.dev/v1alpha1',
  kind: 'MeshFleet',
  metadata: { name: 'formats' },
  spec: {
    mesh: { id: 'mesh1' },
    istio: { version: '1.31.1' },
    clusters: { east: { role: 'primary', network: 'net-east', zone: 'a' } },
  },
}
`,
			want:   `fleet.jsonnet:12:13: spec.clusters.east.zone: unknown field "zone" (allowed here: role, network, apiServer, controlPlane, configCluster, kubeContext, eastWestGateway, istiodGateway, istio)`,
			errors: true,
		},
		{
			name:     "JSON schema errors",
			filename: "fleet.json",
			src: "{\n" +
				"\t\"apiVersion\": \"meshfleet.dev/v1alpha1\",\n" +
				"\t\"kind\": \"MeshFleet\",\n" +
				"\t\"metadata\": {\"name\": \"formats\"},\n" +
				"\t\"spec\": {\n" +
				"\t\t\"mesh\": {\"id\": \"mesh1\"},\n" +
				"\t\t\"istio\": {\"version\": \"1.31.1\"},\n" +
				"\t\t\"clusters\": {\n" +
				"\t\t\t\"east\": {\n" +
				"\t\t\t\t\"role\": \"primary\",\n" +
				"\t\t\t\t\"network\": \"net-east\",\n" +
				"\t\t\t\t\"zone\": \"a\"\n" +
				"\t\t\t},\n" +
				"\t\t\t\"west\": {\n" +
				"\t\t\t\t\"role\": \"secondary\",\n" +
				"\t\t\t\t\"network\": \"net-west\"\n" +
				"\t\t\t}\n" +
				"\t\t}\n" +
				"\t}\n" +
				"}\n",
			want: `fleet.json:9:4: spec.clusters.east.apiServer: field is required: the other clusters of the mesh read this cluster's API server through its remote secret
fleet.json:12:5: spec.clusters.east.zone: unknown field "zone" (allowed here: role, network, apiServer, controlPlane, configCluster, kubeContext, eastWestGateway, istiodGateway, istio)
fleet.json:14:4: spec.clusters.west.apiServer: field is required: the other clusters of the mesh read this cluster's API server through its remote secret
fleet.json:15:13: spec.clusters.west.role: invalid value "secondary" (want one of "external-controlplane", "primary", "remote")`,
			errors: true,
		},
		{
			name:     "JSON duplicate key",
			filename: "fleet.json",
			src: "{\n" +
				"\t\"apiVersion\": \"meshfleet.dev/v1alpha1\",\n" +
				"\t\"kind\": \"MeshFleet\",\n" +
				"\t\"kind\": \"MeshFleet\"\n" +
				"}\n",
			want:   `fleet.json:4:2: kind: duplicate key "kind" (first defined at line 3)`,
			errors: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := fleet.Parse(tc.filename, []byte(tc.src))
			if err == nil {
				t.Fatalf("Parse succeeded with %d clusters; want error:\n%s", len(f.Clusters), tc.want)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("Parse error:\n%s\nwant:\n%s", got, tc.want)
				t.Logf("GOT[%s]=%q", tc.name, got)
			}
			var errs fleet.Errors
			if errors.As(err, &errs) != tc.errors {
				t.Errorf("Parse error is %T; want fleet.Errors: %v", err, tc.errors)
			}
		})
	}
}
