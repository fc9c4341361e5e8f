package fleet_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/meshfleet/meshfleet/generator/fleet"
)

// validFleet is the fleet every broken case in TestParseErrors starts
// from: a primary serving a remote on one network. It must parse cleanly
// (see TestParseValid), so every error a case reports comes from the edit
// that case made.
const validFleet = `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`

// src drops the newline that opens every inline fleet, so that line 1 of
// the file is the line after the opening backquote.
func src(s string) []byte { return []byte(strings.TrimPrefix(s, "\n")) }

func TestParseValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		src      string
		clusters []string
	}{
		{"base fleet of the error cases", validFleet, []string{"east", "west"}},
		{"trailing empty documents", validFleet + "---\n# end\n---\n", []string{"east", "west"}},
		{
			// apiServer is only required when another cluster reads it.
			name: "single primary without apiServer",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.24.0
  clusters:
    solo:
      role: primary
      network: net1
`,
			clusters: []string{"solo"},
		},
		{
			name: "IP API servers, IPv6 and DNS gateway addresses, revision",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.24.0-rc.1
    revision: canary
  topology:
    controlPlane: multi-primary
    network: multi-network
  clusters:
    b:
      role: primary
      network: net-b
      apiServer: https://[2001:db8::10]:6443/k8s
      eastWestGateway:
        address: 2001:db8::1
    a:
      role: primary
      network: net-a
      apiServer: https://192.0.2.1
      eastWestGateway:
        address: ew.a.example.net
`,
			clusters: []string{"a", "b"},
		},
		{
			// Istio 1.30 takes an IPv6 remotePilotAddress; a NodePort
			// gateway that serves no remote may bind through annotations.
			name: "IPv6 address of a primary serving remotes from Istio 1.30, NodePort gateway elsewhere",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.30.0
  clusters:
    a:
      role: primary
      network: net-a
      apiServer: https://a.example.net
      eastWestGateway:
        address: 2001:db8::10
    a1:
      role: remote
      network: net-a
      controlPlane: a
      apiServer: https://a1.example.net
    b:
      role: primary
      network: net-b
      apiServer: https://b.example.net
      eastWestGateway:
        address: 192.0.2.20
        service:
          type: NodePort
          bindAddress: annotations
          annotations: {example.net/ip: 192.0.2.20}
`,
			clusters: []string{"a", "a1", "b"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := fleet.Parse("fleet.yaml", src(tc.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var names []string
			for _, c := range f.Clusters {
				names = append(names, c.Name)
				if f.Cluster(c.Name) != c {
					t.Errorf("Cluster(%q) is not the entry of Clusters", c.Name)
				}
			}
			if strings.Join(names, ",") != strings.Join(tc.clusters, ",") {
				t.Errorf("Clusters = %v, want %v (sorted by name)", names, tc.clusters)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		filename string // fleet.yaml when empty
		src      string
		want     string
		// notErrors marks the cases where Parse returns an error that
		// is not a fleet.Errors (see the comment of each such case).
		notErrors bool
	}{
		// Rules of rules.go.
		{
			name: "cluster name not a DNS-1123 label",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    West_1:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:17:5: spec.clusters.West_1: cluster name "West_1" is not a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters); Istio uses it as the cluster ID`,
		},
		{
			name: "cluster name longer than 63 characters",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west-01234567890123456789012345678901234567890123456789012345678:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:17:5: spec.clusters.west-01234567890123456789012345678901234567890123456789012345678: cluster name "west-01234567890123456789012345678901234567890123456789012345678" is not a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters); Istio uses it as the cluster ID`,
		},
		{
			name: "primary with controlPlane",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      controlPlane: east
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:14:21: spec.clusters.east.controlPlane: only a remote has a controlPlane; east is a primary`,
		},
		{
			name: "remote without controlPlane",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:17:5: spec.clusters.west.controlPlane: field is required: a remote names the primary or external control plane whose istiod serves it`,
		},
		{
			name: "controlPlane names an unknown cluster",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: north
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:20:21: spec.clusters.west.controlPlane: "north" is not a cluster of this fleet (clusters: east, west)`,
		},
		{
			name: "controlPlane names a remote",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: west
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:20:21: spec.clusters.west.controlPlane: "west" is a remote; a remote's controlPlane must be a primary or an external control plane`,
		},
		{
			name: "apiServer missing with two clusters",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
`,
			want: `fleet.yaml:17:5: spec.clusters.west.apiServer: field is required: the other clusters of the mesh read this cluster's API server through its remote secret`,
		},
		{
			name: "apiServer over http",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: http://west.example.net:6443
`,
			want: `fleet.yaml:21:18: spec.clusters.west.apiServer: scheme "http": the API server must be reached over https`,
		},
		{
			name: "apiServer with credentials",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://admin:s3cret@west.example.net:6443
`,
			want: `fleet.yaml:21:18: spec.clusters.west.apiServer: the URL carries credentials; remote secrets take a service account token instead`,
		},
		{
			name: "apiServer with query string",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443/?timeout=5s
`,
			want: `fleet.yaml:21:18: spec.clusters.west.apiServer: the URL carries a query or fragment; give only scheme, host, port and path`,
		},
		{
			name: "apiServer on localhost",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://localhost:6443
`,
			want: `fleet.yaml:21:18: spec.clusters.west.apiServer: localhost is not reachable from other clusters`,
		},
		{
			name: "apiServer on 127.0.0.1",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://127.0.0.1:6443
`,
			want: `fleet.yaml:21:18: spec.clusters.west.apiServer: 127.0.0.1 is not reachable from other clusters`,
		},
		{
			name: "apiServer with an in-cluster name",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://kubernetes.default.svc.cluster.local
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://kubernetes.default.svc:443
`,
			want: `fleet.yaml:14:18: spec.clusters.east.apiServer: kubernetes.default.svc.cluster.local is an in-cluster name, not reachable from other clusters
fleet.yaml:21:18: spec.clusters.west.apiServer: kubernetes.default.svc is an in-cluster name, not reachable from other clusters`,
		},
		{
			name: "apiServer named kubernetes, with a trailing dot",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://kubernetes:443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: primary
      network: net2
      apiServer: https://kubernetes.default.:443
`,
			want: `fleet.yaml:14:18: spec.clusters.east.apiServer: kubernetes is an in-cluster name, not reachable from other clusters
fleet.yaml:20:18: spec.clusters.west.apiServer: kubernetes.default is an in-cluster name, not reachable from other clusters`,
		},
		{
			name: "apiServer duplicates that differ in case, port and slash",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://EAST.example.net/
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: primary
      network: net2
      apiServer: https://east.example.net:443
`,
			want: `fleet.yaml:20:18: spec.clusters.west.apiServer: https://east.example.net:443 is also the API server of cluster east`,
		},
		{
			name: "apiServer on a multicast address",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://224.0.0.1:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: primary
      network: net2
      apiServer: https://west.example.net
`,
			want: `fleet.yaml:14:18: spec.clusters.east.apiServer: 224.0.0.1 is not reachable from other clusters`,
		},
		{
			name: "gateway duplicates that differ in IPv6 spelling",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net
      eastWestGateway:
        address: 2001:db8::1
    west:
      role: primary
      network: net2
      apiServer: https://west.example.net
      eastWestGateway:
        address: 2001:DB8:0::1
`,
			want: `fleet.yaml:22:18: spec.clusters.west.eastWestGateway.address: 2001:DB8:0::1 is also the east-west gateway address of cluster east`,
		},
		{
			name: "gateway address that is a broken IPv4 address",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net
      eastWestGateway:
        address: 999.1.1.1
    west:
      role: primary
      network: net2
      apiServer: https://west.example.net
`,
			want: `fleet.yaml:16:18: spec.clusters.east.eastWestGateway.address: "999.1.1.1" is neither an IP address nor a DNS name`,
		},
		{
			name: "apiServer port out of range",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:0
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:65536
`,
			want: `fleet.yaml:14:18: spec.clusters.east.apiServer: port 0 is out of range
fleet.yaml:21:18: spec.clusters.west.apiServer: port 65536 is out of range`,
		},
		{
			name: "apiServer not a URL",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:port
`,
			want: `fleet.yaml:14:18: spec.clusters.east.apiServer: "east.example.net:6443" is not a URL like https://api.example.net:6443
fleet.yaml:21:18: spec.clusters.west.apiServer: "https://west.example.net:port" is not a URL like https://api.example.net:6443`,
		},
		{
			name: "apiServer shared by two clusters",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://east.example.net:6443
`,
			want: `fleet.yaml:21:18: spec.clusters.west.apiServer: https://east.example.net:6443 is also the API server of cluster east`,
		},
		{
			name: "eastWestGateway on a loopback address",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 127.0.0.1
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:16:18: spec.clusters.east.eastWestGateway.address: 127.0.0.1 is not reachable from other clusters`,
		},
		{
			name: "eastWestGateway address neither IP nor DNS name",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net2
      controlPlane: east
      apiServer: https://west.example.net:6443
      eastWestGateway:
        address: ew_west.example.net
`,
			want: `fleet.yaml:23:18: spec.clusters.west.eastWestGateway.address: "ew_west.example.net" is neither an IP address nor a DNS name`,
		},
		{
			name: "eastWestGateway address shared by two clusters",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net2
      controlPlane: east
      apiServer: https://west.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
`,
			want: `fleet.yaml:23:18: spec.clusters.west.eastWestGateway.address: 192.0.2.10 is also the east-west gateway address of cluster east`,
		},
		{
			name: "primary serving a remote without eastWestGateway",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:11:5: spec.clusters.east.eastWestGateway: field is required: primary east serves west, which reaches istiod through its east-west gateway at a static address`,
		},
		{
			name: "certificate on an IP east-west gateway",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
        certificate: {secretName: ew-tls}
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:17:22: spec.clusters.east.eastWestGateway.certificate: 192.0.2.10 is an IP address: the gateway passes TLS through to istiod and presents no certificate; give a DNS name to terminate TLS`,
		},
		{
			name: "IPv6 address of a primary serving remotes before Istio 1.30",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.29.2
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 2001:db8::10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:16:18: spec.clusters.east.eastWestGateway.address: IPv6 address 2001:db8::10 needs Istio 1.30 or later (the fleet has 1.29.2): before, the remote profile renders an ExternalName Service with no endpoints for an IPv6 remotePilotAddress, and remotes cannot reach istiod`,
		},
		{
			name: "IPv4 address in IPv6 notation on a primary serving remotes",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: ::ffff:192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:16:18: spec.clusters.east.eastWestGateway.address: ::ffff:192.0.2.10 embeds an IPv4 address in IPv6 notation, which Istio's charts take for a host name (an ExternalName Service that sidecar injection cannot call): write it as 192.0.2.10`,
		},
		{
			name: "NodePort gateway on a primary serving remotes",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
        service:
          type: NodePort
          bindAddress: annotations
          annotations: {example.net/ip: 192.0.2.10}
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:18:17: spec.clusters.east.eastWestGateway.service.type: primary east serves remotes, which reach istiod at 192.0.2.10 on ports 15012 and 15017: the gateway Service must be a LoadBalancer, a NodePort Service does not listen there`,
		},
		{
			name: "bindAddress annotations without annotations",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
        service:
          bindAddress: annotations
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:18:24: spec.clusters.east.eastWestGateway.service.bindAddress: bindAddress annotations needs service.annotations that give the Service its address`,
		},
		{
			name: "remote on its primary's network with a gateway of its own",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
      eastWestGateway:
        address: 192.0.2.20
`,
			want: `fleet.yaml:23:9: spec.clusters.west.eastWestGateway: remote west is on the network of its primary east and has no east-west gateway of its own: remove the field`,
		},
		{
			name: "no primary",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: remote
      network: net1
      controlPlane: west
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:11:5: spec.clusters: a mesh needs at least one primary cluster or external control plane to run istiod
fleet.yaml:14:21: spec.clusters.east.controlPlane: "west" is a remote; a remote's controlPlane must be a primary or an external control plane
fleet.yaml:21:21: spec.clusters.west.controlPlane: "east" is a remote; a remote's controlPlane must be a primary or an external control plane`,
		},
		{
			name: "no clusters",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters: {}
`,
			want: `fleet.yaml:10:13: spec.clusters: a fleet needs at least one cluster`,
		},
		{
			name: "Istio older than 1.24",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.23.6
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:9:14: spec.istio.version: Istio 1.23.6 is not supported: meshfleet renders for Istio 1.24 and later`,
		},
		{
			name: "Istio 2.x",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 2.0.0
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:9:14: spec.istio.version: Istio 2.0.0 is not supported: meshfleet renders for Istio 1.x`,
		},
		{
			name: "revision default",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
    revision: default
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:10:15: spec.istio.revision: revision "default" is reserved for the default control plane: leave revision empty instead`,
		},
		{
			name: "declared multi-primary with a remote",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  topology:
    controlPlane: multi-primary
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:11:19: spec.topology.controlPlane: declared multi-primary, but west is a remote, which makes the mesh primary-remote`,
		},
		{
			name: "declared primary-remote without a remote",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  topology:
    controlPlane: primary-remote
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: primary
      network: net1
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:11:19: spec.topology.controlPlane: declared primary-remote, but no cluster is a remote, which makes the mesh multi-primary`,
		},
		{
			name: "declared single-network on two networks",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  topology:
    network: single-network
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net2
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:11:14: spec.topology.network: declared single-network, but the clusters are on networks net1, net2`,
		},
		{
			name: "declared multi-network on one network",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  topology:
    network: multi-network
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:11:14: spec.topology.network: declared multi-network, but every cluster is on network net1`,
		},
		{
			name: "installer helm without delivery",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  installer: helm
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:8:14: spec.installer: installer helm needs spec.delivery.flux or spec.delivery.argocd: Flux or Argo CD runs the Helm releases`,
		},
		{
			name: "delivery by both Flux and Argo CD",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  delivery:
    flux:
      path: ./clusters
    argocd:
      repoURL: https://git.example.net/fleet.git
      path: clusters
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:9:5: spec.delivery: choose one of flux and argocd: both would apply the same objects`,
		},

		// Schema errors (schema.go) and file errors (load.go).
		{
			name: "unknown field",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      region: eu-west-1
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:19:7: spec.clusters.west.region: unknown field "region" (allowed here: role, network, apiServer, controlPlane, configCluster, kubeContext, eastWestGateway, istiodGateway, istio)`,
		},
		{
			name: "role not in the enum",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: secondary
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:18:13: spec.clusters.west.role: invalid value "secondary" (want one of "external-controlplane", "primary", "remote")`,
		},
		{
			name: "role of the wrong type",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: 1
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:18:13: spec.clusters.west.role: invalid value 1 (want one of "external-controlplane", "primary", "remote")`,
		},
		{
			name: "secrets provider not in the enum",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  secrets:
    provider: vault
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:11:15: spec.secrets.provider: invalid value "vault" (want one of "external-secrets", "placeholder")`,
		},
		{
			name: "topology controlPlane not in the enum",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  topology:
    controlPlane: primary-primary
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:11:19: spec.topology.controlPlane: invalid value "primary-primary" (want one of "external-control-plane", "multi-primary", "primary-remote")`,
		},
		{
			name: "values that do not match the schema patterns",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: Test
spec:
  mesh:
    id: mesh1
  istio:
    version: latest
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net 1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:4:9: metadata.name: invalid value "Test": want lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (e.g. "east" or "1-31-1")
fleet.yaml:9:14: spec.istio.version: invalid value "latest": want an Istio release like "1.31.1"
fleet.yaml:19:16: spec.clusters.west.network: invalid value "net 1": want letters, digits, '_', '.' and '-', starting and ending with a letter or digit, at most 63 characters (e.g. "net-east")`,
		},
		{
			name: "missing required field reported at its parent",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:17:5: spec.clusters.west.network: field is required but not present`,
		},
		{
			name: "missing required field next to a hard error in another cluster",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: 42
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:13:16: spec.clusters.east.network: 42 is a number; want letters, digits, '_', '.' and '-', starting and ending with a letter or digit, at most 63 characters (e.g. "net-east"): quote it
fleet.yaml:17:5: spec.clusters.west.network: field is required but not present`,
		},
		{
			// CUE hides the missing fields of an object behind any other
			// error in it; the fields with errors are taken out and the
			// object validated again, so both are reported.
			name: "missing required field next to a hard error in the same cluster",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: 1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:17:5: spec.clusters.west.network: field is required but not present
fleet.yaml:18:13: spec.clusters.west.role: invalid value 1 (want one of "external-controlplane", "primary", "remote")`,
		},
		{
			name: "missing mesh",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:5:1: spec.mesh: field is required but not present
fleet.yaml:5:1: spec.mesh.id: field is required but not present`,
		},
		{
			name: "missing spec",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
`,
			want: `fleet.yaml:1:1: spec: field is required but not present`,
		},
		{
			name: "external-secrets without store",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  secrets:
    provider: external-secrets
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:10:3: spec.secrets.store: field is required but not present`,
		},
		{
			name: "wrong apiVersion and kind",
			src: `
apiVersion: meshfleet.dev/v1
kind: Fleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:1:13: apiVersion: conflicting values "meshfleet.dev/v1alpha1" and "meshfleet.dev/v1"
fleet.yaml:2:7: kind: conflicting values "MeshFleet" and "Fleet"`,
		},
		{
			name: "document is not a mapping",
			src: `
- apiVersion: meshfleet.dev/v1alpha1
`,
			want: `fleet.yaml:1:1: a fleet file is a mapping with apiVersion, kind, metadata and spec`,
		},
		{
			name: "duplicate keys",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
    east:
      role: remote
      network: net1
      network: net2
`,
			want: `fleet.yaml:22:5: spec.clusters.east: duplicate key "east" (first defined at line 11)`,
		},
		{
			name: "second YAML document",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
---
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
`,
			want: `fleet.yaml:22:1: a fleet file holds one document; found a second one`,
		},
		{
			name: "empty file",
			src:  "",
			want: `fleet.yaml: the file is empty`,
		},
		{
			name: "only a comment",
			src: `
# nothing here yet
`,
			want: `fleet.yaml: the file is empty`,
		},
		{
			name: "YAML syntax error",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: "net1
`,
			want: `fleet.yaml:13: found unexpected end of stream`,
		},
		{
			name: "YAML unclosed flow sequence",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: [1.31.1
  clusters: {}
`,
			want: `fleet.yaml:8: did not find expected ',' or ']'`,
		},
		{
			name:     "unknown file extension",
			filename: "fleet.toml",
			src:      validFleet,
			want:     `fleet.toml: unknown fleet file format ".toml": want .yaml, .yml, .json, .cue or .jsonnet`,
		},

		// Current behaviour that is wrong or unhelpful; see the comments.
		{
			name: "cluster name with a dot",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    west.1:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:17:5: spec.clusters."west.1": cluster name "west.1" is not a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters); Istio uses it as the cluster ID`,
		},
		{
			name: "empty eastWestGateway address",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: ""
    west:
      role: remote
      network: net1
      controlPlane: east
      apiServer: https://west.example.net:6443
`,
			want: `fleet.yaml:16:18: spec.clusters.east.eastWestGateway.address: "" is neither an IP address nor a DNS name`,
		},
		{
			// CUE has no number for a YAML .nan or .inf.
			name: "non-finite YAML number",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: .nan
  clusters:
    east:
      role: primary
      network: net1
`,
			want: `fleet.yaml:9:14: spec.istio.version: parse error: illegal number start "NaN"`,
		},
		{
			// YAML parser errors have a line but no column.
			name: "YAML complex key",
			src: `
? [a, b]
: c
`,
			want: `fleet.yaml:1: invalid map key: !!seq`,
		},
		{
			name: "only a document marker",
			src:  "---",
			want: `fleet.yaml: the file is empty`,
		},
		{
			// "---st" inside a quoted string is not a document marker, and
			// the file is valid YAML; but the trailing empty document makes
			// Parse cut the file at that line before CUE reads it.
			name: "quoted string line starting with three dashes, trailing document marker",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: "te
---st"
---
`,
			want: `fleet.yaml:4: found unexpected end of stream`,
		},
		{
			// No line number.
			name: "YAML unknown alias",
			src: `
apiVersion: meshfleet.dev/v1alpha1
kind: *kind
`,
			want: `fleet.yaml: unknown anchor 'kind' referenced`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			filename := tc.filename
			if filename == "" {
				filename = "fleet.yaml"
			}
			f, err := fleet.Parse(filename, src(tc.src))
			if err == nil {
				t.Fatalf("Parse succeeded with %d clusters; want error:\n%s", len(f.Clusters), tc.want)
			}
			var errs fleet.Errors
			if errors.As(err, &errs) == tc.notErrors {
				t.Errorf("Parse error is a %T; want fleet.Errors: %v", err, !tc.notErrors)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("Parse error:\n%s\nwant:\n%s", got, tc.want)
				t.Logf("GOT[%s]=%q", tc.name, got)
			}
		})
	}
}

// TestParseErrorsAllReported checks that independent problems, found by
// the schema and by the rules, are all reported in one run, in the order
// they appear in the file.
func TestParseErrorsAllReported(t *testing.T) {
	t.Parallel()
	const in = `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
    revision: default
  topology:
    network: multi-network
  clusters:
    west:
      role: remote
      network: net1
      controlPlane: north
      apiServer: http://west.example.net:6443
    east:
      role: primary
      network: net1
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 0.0.0.0
    Mid:
      role: primary
      network: net1
      controlPlane: east
`
	f, err := fleet.Parse("fleet.yaml", src(in))
	if err == nil {
		t.Fatalf("Parse succeeded with %d clusters", len(f.Clusters))
	}
	want := `fleet.yaml:10:15: spec.istio.revision: revision "default" is reserved for the default control plane: leave revision empty instead
fleet.yaml:12:14: spec.topology.network: declared multi-network, but every cluster is on network net1
fleet.yaml:17:21: spec.clusters.west.controlPlane: "north" is not a cluster of this fleet (clusters: Mid, east, west)
fleet.yaml:18:18: spec.clusters.west.apiServer: scheme "http": the API server must be reached over https
fleet.yaml:24:18: spec.clusters.east.eastWestGateway.address: 0.0.0.0 is not reachable from other clusters
fleet.yaml:25:5: spec.clusters.Mid: cluster name "Mid" is not a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters); Istio uses it as the cluster ID
fleet.yaml:25:5: spec.clusters.Mid.apiServer: field is required: the other clusters of the mesh read this cluster's API server through its remote secret
fleet.yaml:28:21: spec.clusters.Mid.controlPlane: only a remote has a controlPlane; Mid is a primary`
	if got := err.Error(); got != want {
		t.Errorf("Parse error:\n%s\nwant:\n%s", got, want)
		t.Logf("GOT[all]=%q", got)
	}

	// Schema errors are reported all at once, with the rule errors of
	// what the schema accepted; a field with a schema error is left to it.
	const schemaErrs = `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
  owner: me
spec:
  mesh:
    id: Mesh1
  istio:
    version: "1.31"
  clusters:
    east:
      role: primary
      network: net1
      gateway: 192.0.2.10
    west:
      role: remote
      controlPlane: east
`
	_, err = fleet.Parse("fleet.yaml", src(schemaErrs))
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	want = `fleet.yaml:5:3: metadata.owner: unknown field "owner" (allowed here: name, annotations, labels)
fleet.yaml:8:9: spec.mesh.id: invalid value "Mesh1": want lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (e.g. "east" or "1-31-1")
fleet.yaml:10:14: spec.istio.version: invalid value "1.31": want an Istio release like "1.31.1"
fleet.yaml:12:5: spec.clusters.east.apiServer: field is required: the other clusters of the mesh read this cluster's API server through its remote secret
fleet.yaml:12:5: spec.clusters.east.eastWestGateway: field is required: primary east serves west, which reaches istiod through its east-west gateway at a static address
fleet.yaml:15:7: spec.clusters.east.gateway: unknown field "gateway" (allowed here: role, network, apiServer, controlPlane, configCluster, kubeContext, eastWestGateway, istiodGateway, istio)
fleet.yaml:16:5: spec.clusters.west.apiServer: field is required: the other clusters of the mesh read this cluster's API server through its remote secret
fleet.yaml:16:5: spec.clusters.west.network: field is required but not present`
	if got := err.Error(); got != want {
		t.Errorf("Parse error:\n%s\nwant:\n%s", got, want)
		t.Logf("GOT[schema]=%q", got)
	}
}
