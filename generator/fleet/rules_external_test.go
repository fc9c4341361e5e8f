package fleet_test

import (
	"strings"
	"testing"

	"github.com/meshfleet/meshfleet/generator/fleet"
)

// ecpFleet is an external control plane serving a config cluster and a
// further remote on another network; it parses cleanly.
const ecpFleet = `
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
    cp:
      role: external-controlplane
      network: net-cp
      apiServer: https://cp.example.net:6443
      istiodGateway:
        address: 192.0.2.50
    config:
      role: remote
      controlPlane: cp
      configCluster: true
      network: net-a
      apiServer: https://config.example.net:6443
    r2:
      role: remote
      controlPlane: cp
      network: net-b
      apiServer: https://r2.example.net:6443
      eastWestGateway:
        address: 198.51.100.20
`

func TestExternalControlPlaneValid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, src string }{
		{"IP address", ecpFleet},
		{"host name with a cert-manager certificate", strings.Replace(ecpFleet, "address: 192.0.2.50", "address: istiod.cp.example.net\n        certificate: {issuer: {name: public}}", 1)},
		{"declared topology", strings.Replace(ecpFleet, "  clusters:\n", "  topology: {controlPlane: external-control-plane, network: multi-network}\n  clusters:\n", 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := fleet.Parse("fleet.yaml", src(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			if got := f.ControlPlane(); got != fleet.ExternalControlPlaneLayout {
				t.Errorf("ControlPlane() = %s", got)
			}
			if got := f.Network(); got != fleet.MultiNetwork {
				t.Errorf("Network() = %s (the external cluster's network does not count)", got)
			}
		})
	}
}

// Each rule of the external control plane model, with its exact message.
func TestExternalControlPlaneRules(t *testing.T) {
	t.Parallel()
	edit := func(pairs ...string) string {
		s := ecpFleet
		for i := 0; i < len(pairs); i += 2 {
			if !strings.Contains(s, pairs[i]) {
				t.Fatalf("edit %q: not in the fleet", pairs[i])
			}
			s = strings.Replace(s, pairs[i], pairs[i+1], 1)
		}
		return s
	}
	tests := []struct {
		name, src, want string
	}{
		{
			name: "no config cluster",
			src:  edit("      configCluster: true\n", ""),
			want: `fleet.yaml:12:7: spec.clusters.cp: external control plane cp serves config, r2, but none of them is its config cluster: set configCluster: true on the one that holds the mesh configuration`,
		},
		{
			name: "two config clusters",
			src:  edit("      network: net-b\n", "      network: net-b\n      configCluster: true\n"),
			want: `fleet.yaml:27:22: spec.clusters.r2.configCluster: external control plane cp already has config cluster config: it has exactly one`,
		},
		{
			name: "config cluster of a primary",
			src: edit("    r2:\n", `    east:
      role: primary
      network: net-a
      apiServer: https://east.example.net:6443
      eastWestGateway: {address: 192.0.2.60}
    west:
      role: remote
      controlPlane: east
      configCluster: true
      network: net-a
      apiServer: https://west.example.net:6443
    r2:
`),
			want: "fleet.yaml:24:13: spec.clusters.east.role: primary east would read the remotes of external control plane cp (config, r2) through remote secrets and serve them too: a fleet with an external control plane has no primaries\n" +
				`fleet.yaml:31:22: spec.clusters.west.configCluster: only a remote of an external control plane is a config cluster; west is a remote of primary east`,
		},
		{
			name: "configCluster on a primary",
			src: edit("    r2:\n", `    east:
      role: primary
      configCluster: true
      network: net-a
      apiServer: https://east.example.net:6443
    r2:
`),
			want: "fleet.yaml:24:13: spec.clusters.east.role: primary east would read the remotes of external control plane cp (config, r2) through remote secrets and serve them too: a fleet with an external control plane has no primaries\n" +
				`fleet.yaml:25:22: spec.clusters.east.configCluster: only a remote of an external control plane is a config cluster; east is a primary`,
		},
		{
			name: "external cluster with an east-west gateway",
			src:  edit("      istiodGateway:\n", "      eastWestGateway: {address: 192.0.2.51}\n      istiodGateway:\n"),
			want: `fleet.yaml:15:24: spec.clusters.cp.eastWestGateway: external control plane cp runs no mesh workloads and has no east-west gateway: remotes reach its istiod through istiodGateway`,
		},
		{
			name: "external cluster with a controlPlane",
			src:  edit("      network: net-cp\n", "      network: net-cp\n      controlPlane: config\n"),
			want: `fleet.yaml:14:21: spec.clusters.cp.controlPlane: only a remote has a controlPlane; cp is an external control plane`,
		},
		{
			name: "external cluster without istiodGateway",
			src:  edit("      istiodGateway:\n        address: 192.0.2.50\n", ""),
			want: `fleet.yaml:11:5: spec.clusters.cp.istiodGateway: field is required: config, r2 reach the istiod of external control plane cp through its istiod gateway at a static address`,
		},
		{
			name: "external control plane serving nobody",
			src:  edit("      controlPlane: cp\n      configCluster: true\n", "      controlPlane: cp2\n", "      controlPlane: cp\n", "      controlPlane: cp2\n", "    config:\n", "    cp2: {role: external-controlplane, network: net-x, apiServer: \"https://cp2.example.net\", istiodGateway: {address: 192.0.2.52}}\n    config:\n"),
			want: "fleet.yaml:12:13: spec.clusters.cp.role: external control plane cp serves no cluster: a remote names it as its controlPlane, and one of them is its configCluster\n" +
				`fleet.yaml:17:10: spec.clusters.cp2: external control plane cp2 serves config, r2, but none of them is its config cluster: set configCluster: true on the one that holds the mesh configuration`,
		},
		{
			name: "istiodGateway on a remote",
			src:  edit("      eastWestGateway:\n        address: 198.51.100.20\n", "      eastWestGateway:\n        address: 198.51.100.20\n      istiodGateway: {address: 198.51.100.21}\n"),
			want: `fleet.yaml:30:22: spec.clusters.r2.istiodGateway: only an external control plane has an istiodGateway; r2 is a remote (a primary exposes istiod through its eastWestGateway)`,
		},
		{
			name: "IPv6 istiod gateway before Istio 1.30",
			src:  edit("version: 1.31.1", "version: 1.29.2", "address: 192.0.2.50", "address: 2001:db8::50"),
			want: `fleet.yaml:16:18: spec.clusters.cp.istiodGateway.address: IPv6 address 2001:db8::50 needs Istio 1.30 or later (the fleet has 1.29.2): before, the remote profile renders an ExternalName Service with no endpoints for an IPv6 remotePilotAddress, and remotes cannot reach istiod`,
		},
		{
			name: "certificate for an IP address",
			src:  edit("        address: 192.0.2.50\n", "        address: 192.0.2.50\n        certificate: {secretName: istiod-tls}\n"),
			want: `fleet.yaml:17:22: spec.clusters.cp.istiodGateway.certificate: 192.0.2.50 is an IP address: the gateway passes TLS through to istiod and presents no certificate; give a DNS name to terminate TLS`,
		},
		{
			name: "istiod gateway NodePort",
			src:  edit("        address: 192.0.2.50\n", "        address: 192.0.2.50\n        service: {type: NodePort, bindAddress: annotations, annotations: {a: b}}\n"),
			want: `fleet.yaml:17:25: spec.clusters.cp.istiodGateway.service.type: remotes reach istiod at 192.0.2.50 on ports 15012 and 15017: the gateway Service must be a LoadBalancer, a NodePort Service does not listen there`,
		},
		{
			name: "east-west gateway on a one-network mesh",
			src:  edit("network: net-b", "network: net-a"),
			want: `fleet.yaml:29:9: spec.clusters.r2.eastWestGateway: remote r2 is on the one network of the mesh and needs no east-west gateway: remove the field`,
		},
		{
			name: "declared primary-remote",
			src:  edit("  clusters:\n", "  topology: {controlPlane: primary-remote}\n  clusters:\n"),
			want: `fleet.yaml:10:28: spec.topology.controlPlane: declared primary-remote, but the clusters make the mesh external-control-plane`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fleet.Parse("fleet.yaml", src(tc.src))
			if err == nil {
				t.Fatalf("Parse succeeded; want:\n%s", tc.want)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("Parse error:\n%s\nwant:\n%s", got, tc.want)
				t.Logf("GOT[%s]=%q", tc.name, got)
			}
		})
	}
}

// Host-named east-west gateways of primaries that serve remotes.
func TestHostNamedGateway(t *testing.T) {
	t.Parallel()
	host := strings.Replace(validFleet, "address: 192.0.2.10", "address: ew.east.example.net", 1)
	if _, err := fleet.Parse("fleet.yaml", src(host)); err != nil {
		t.Errorf("host-named gateway of a serving primary: %v", err)
	}
	withCert := strings.Replace(host, "address: ew.east.example.net", "address: ew.east.example.net\n        certificate: {secretName: ew-tls, issuer: {name: mesh-root}}", 1)
	if _, err := fleet.Parse("fleet.yaml", src(withCert)); err != nil {
		t.Errorf("host-named gateway with a certificate: %v", err)
	}
	for _, tc := range []struct{ name, src, want string }{
		{
			name: "certificate on a gateway that serves no remote",
			src: strings.Replace(strings.Replace(validFleet, "      network: net1\n      controlPlane: east\n", "      network: net2\n      controlPlane: east\n", 1),
				"      role: remote\n", "      role: remote\n      eastWestGateway: {address: ew.west.example.net, certificate: {secretName: w}}\n", 1),
			want: `fleet.yaml:19:68: spec.clusters.west.eastWestGateway.certificate: only the east-west gateway of a primary that serves remotes presents a certificate (for the remotes' injection and validation webhooks); west serves none`,
		},
		{
			name: "IPv6 serving gateway before Istio 1.30 (the form Istio's version supports)",
			src:  strings.Replace(strings.Replace(validFleet, "address: 192.0.2.10", "address: 2001:db8::10", 1), "version: 1.31.1", "version: 1.28.0", 1),
			want: `fleet.yaml:16:18: spec.clusters.east.eastWestGateway.address: IPv6 address 2001:db8::10 needs Istio 1.30 or later (the fleet has 1.28.0): before, the remote profile renders an ExternalName Service with no endpoints for an IPv6 remotePilotAddress, and remotes cannot reach istiod`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fleet.Parse("fleet.yaml", src(tc.src))
			if err == nil {
				t.Fatalf("Parse succeeded; want:\n%s", tc.want)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("Parse error:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}
