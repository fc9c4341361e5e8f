package fleet_test

import (
	"strings"
	"testing"

	"github.com/meshfleet/meshfleet/generator/fleet"
)

// revFleet runs two revisions side by side in two primaries and a remote;
// it parses cleanly.
const revFleet = `
apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: test
spec:
  mesh:
    id: mesh1
  istio:
    revisions:
      1-30-3: {version: 1.30.3}
      1-31-1: {version: 1.31.1}
    tags:
      default: 1-30-3
    gatewayRevision: default
  clusters:
    east:
      role: primary
      network: net-east
      apiServer: https://east.example.net:6443
      eastWestGateway:
        address: 192.0.2.10
    north:
      role: primary
      network: net-north
      apiServer: https://north.example.net:6443
      istio:
        tags: {default: 1-31-1}
    west:
      role: remote
      network: net-west
      controlPlane: east
      apiServer: https://west.example.net:6443
`

func TestRevisionsValid(t *testing.T) {
	t.Parallel()
	f, err := fleet.Parse("fleet.yaml", src(revFleet))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.RevisionsOf(f.Cluster("west")); strings.Join(got, ",") != "1-30-3,1-31-1" {
		t.Errorf("RevisionsOf(west) = %v", got)
	}
	if got := f.TagsOf(f.Cluster("north"))["default"]; got != "1-31-1" {
		t.Errorf("north's default tag = %s", got)
	}
}

// Each rule of revisions, tags and settings, with its exact message.
func TestRevisionRules(t *testing.T) {
	t.Parallel()
	edit := func(pairs ...string) string {
		s := revFleet
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
			name: "tag at a revision that does not run in the cluster",
			src:  edit("      istio:\n        tags: {default: 1-31-1}\n", "      istio:\n        revisions: [1-30-3]\n        tags: {default: 1-31-1}\n"),
			want: `fleet.yaml:28:25: spec.clusters.north.istio.tags.default: tag default of cluster north points at revision 1-31-1, which does not run there (it runs 1-30-3)`,
		},
		{
			name: "fleet tag at a revision a cluster does not run",
			src:  edit("      istio:\n        tags: {default: 1-31-1}\n", "      istio:\n        revisions: [1-31-1]\n"),
			want: `fleet.yaml:13:16: spec.istio.tags.default: tag default of cluster north points at revision 1-30-3, which does not run there (it runs 1-31-1)`,
		},
		{
			name: "revision removed while a tag still points at it",
			src:  edit("      1-30-3: {version: 1.30.3}\n", ""),
			want: `fleet.yaml:12:16: spec.istio.tags.default: tag default points at revision 1-30-3, which is not in spec.istio.revisions, and east, west still take it: the workloads it injects would lose their control plane; move the tag to a running revision first, and remove 1-30-3 in a later step`,
		},
		{
			name: "remote lists a revision its primary does not run",
			src:  edit("        address: 192.0.2.10\n", "        address: 192.0.2.10\n      istio:\n        revisions: [1-30-3]\n", "      controlPlane: east\n", "      controlPlane: east\n      istio: {revisions: [1-31-1, 1-30-3]}\n"),
			want: `fleet.yaml:34:26: spec.clusters.west.istio.revisions: remote west runs revision 1-31-1, which its primary east does not run (it runs 1-30-3): the remote's webhooks and istiod Service would point at an istiod that is not there`,
		},
		{
			name: "gateway revision not explicit",
			src:  edit("    gatewayRevision: default\n", ""),
			want: "fleet.yaml:16:7: spec.clusters.east: cluster east runs revisions 1-30-3, 1-31-1 and an east-west gateway: say which one the gateway runs with (spec.istio.gatewayRevision or the cluster's istio.gatewayRevision; a tag lets it follow the tag)\n" +
				"fleet.yaml:22:7: spec.clusters.north: cluster north runs revisions 1-30-3, 1-31-1 and an east-west gateway: say which one the gateway runs with (spec.istio.gatewayRevision or the cluster's istio.gatewayRevision; a tag lets it follow the tag)\n" +
				`fleet.yaml:28:7: spec.clusters.west: cluster west runs revisions 1-30-3, 1-31-1 and an east-west gateway: say which one the gateway runs with (spec.istio.gatewayRevision or the cluster's istio.gatewayRevision; a tag lets it follow the tag)`,
		},
		{
			name: "gateway revision that does not run",
			src:  edit("    gatewayRevision: default\n", "    gatewayRevision: canary\n"),
			want: `fleet.yaml:14:22: spec.istio.gatewayRevision: the east-west gateways of east, north, west would run with canary, which is neither a revision that runs there nor one of their tags`,
		},
		{
			name: "unknown revision in a cluster's list",
			src:  edit("      istio:\n        tags: {default: 1-31-1}\n", "      istio:\n        revisions: [1-31-1, 1-32-0]\n        tags: {default: 1-31-1}\n"),
			want: `fleet.yaml:27:29: spec.clusters.north.istio.revisions.1: "1-32-0" is not in spec.istio.revisions (1-30-3, 1-31-1)`,
		},
		{
			name: "tag named like a revision",
			src:  edit("      default: 1-30-3\n", "      default: 1-30-3\n      1-31-1: 1-31-1\n"),
			want: `fleet.yaml:14:7: spec.istio.tags.1-31-1: tag 1-31-1 has the name of a revision: istio.io/rev=1-31-1 would select both`,
		},
		{
			name: "revision named default",
			src:  edit("      1-30-3: {version: 1.30.3}\n", "      1-30-3: {version: 1.30.3}\n      default: {version: 1.31.1}\n"),
			want: "fleet.yaml:11:7: spec.istio.revisions.default: revision \"default\" is reserved for the default control plane; name revisions after their release (e.g. \"1-31-1\") and point tag default at one\n" +
				"fleet.yaml:14:7: spec.istio.tags.default: tag default has the name of a revision: istio.io/rev=default would select both\n" +
				`fleet.yaml:28:16: spec.clusters.north.istio.tags.default: tag default has the name of a revision: istio.io/rev=default would select both`,
		},
		{
			name: "version beside revisions",
			src:  edit("    revisions:\n", "    version: 1.31.1\n    revisions:\n"),
			want: `fleet.yaml:9:14: spec.istio.version: spec.istio.revisions gives every control plane its version: remove version`,
		},
		{
			name: "unsupported revision version",
			src:  edit("{version: 1.30.3}", "{version: 1.23.6}"),
			want: `fleet.yaml:10:25: spec.istio.revisions.1-30-3.version: Istio 1.23.6 is not supported: meshfleet renders for Istio 1.24 and later`,
		},
		{
			name: "tags without revisions",
			src:  strings.Replace(strings.Replace(revFleet, "    revisions:\n      1-30-3: {version: 1.30.3}\n      1-31-1: {version: 1.31.1}\n", "    version: 1.31.1\n", 1), "      istio:\n        tags: {default: 1-31-1}\n", "", 1),
			want: "fleet.yaml:11:7: spec.istio.tags: revision tags need spec.istio.revisions: with one control plane it is the default one\n" +
				`fleet.yaml:12:22: spec.istio.gatewayRevision: gatewayRevision needs spec.istio.revisions: with one control plane the gateways run its revision`,
		},
		{
			name: "meshfleet's own keys in values and meshConfig",
			src: edit("    gatewayRevision: default\n", "    gatewayRevision: default\n    values:\n      global: {meshID: other, logging: {level: debug}}\n      revision: x\n    meshConfig: {trustDomain: other.local}\n",
				"        tags: {default: 1-31-1}\n", "        tags: {default: 1-31-1}\n        values: {global: {network: other}}\n"),
			want: "fleet.yaml:16:16: spec.istio.values.global.meshID: meshfleet sets global.meshID from spec.mesh.id: set it there\n" +
				"fleet.yaml:17:7: spec.istio.values.revision: meshfleet sets revision from spec.istio.revision or spec.istio.revisions: set it there\n" +
				"fleet.yaml:18:18: spec.istio.meshConfig.trustDomain: meshfleet sets trustDomain from spec.mesh.trustDomain: set it there\n" +
				`fleet.yaml:32:27: spec.clusters.north.istio.values.global.network: meshfleet sets global.network from the cluster's network: set it there`,
		},
		{
			name: "gateway replicas beside autoscaling",
			src:  edit("        address: 192.0.2.10\n", "        address: 192.0.2.10\n        replicas: 2\n        autoscaling: {maxReplicas: 4}\n"),
			want: `fleet.yaml:22:19: spec.clusters.east.eastWestGateway.replicas: give replicas or autoscaling, not both: the autoscaler would change the replicas`,
		},
		{
			name: "gateway autoscaling min above max",
			src:  edit("        address: 192.0.2.10\n", "        address: 192.0.2.10\n        autoscaling: {minReplicas: 5, maxReplicas: 4}\n"),
			want: `fleet.yaml:22:36: spec.clusters.east.eastWestGateway.autoscaling.minReplicas: minReplicas 5 is more than maxReplicas 4`,
		},
		{
			name: "gateway disruption budget that blocks drains",
			src:  edit("        address: 192.0.2.10\n", "        address: 192.0.2.10\n        replicas: 2\n        podDisruptionBudget: {minAvailable: 2}\n"),
			want: `fleet.yaml:23:45: spec.clusters.east.eastWestGateway.podDisruptionBudget.minAvailable: minAvailable 2 of 2 pods (replicas) would block every node drain: keep it below the number of pods`,
		},
		{
			name: "gateway disruption budget with the default autoscaler",
			src:  edit("        address: 192.0.2.10\n", "        address: 192.0.2.10\n        podDisruptionBudget: {minAvailable: 1}\n"),
			want: `fleet.yaml:22:45: spec.clusters.east.eastWestGateway.podDisruptionBudget.minAvailable: minAvailable 1 of 1 pods (the default autoscaling.minReplicas) would block every node drain: keep it below the number of pods`,
		},
		{
			name: "no version at all",
			src:  edit("    revisions:\n      1-30-3: {version: 1.30.3}\n      1-31-1: {version: 1.31.1}\n    tags:\n      default: 1-30-3\n    gatewayRevision: default\n", "    hub: registry.istio.io/release\n", "      istio:\n        tags: {default: 1-31-1}\n", ""),
			want: `fleet.yaml:9:5: spec.istio: field version is required: the Istio release every control plane runs (or spec.istio.revisions for several side by side)`,
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
			}
		})
	}
}
