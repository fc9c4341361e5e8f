// Package fleetgen writes synthetic fleet files of any size, for
// benchmarks and load tests.
package fleetgen

import (
	"fmt"
	"strings"
)

// Layouts fleetgen can write.
const (
	MultiPrimaryMultiNetwork = "multi-primary-multi-network"
	PrimaryRemote            = "primary-remote"
)

// YAML returns a fleet file of n clusters. For MultiPrimaryMultiNetwork
// every cluster is a primary on its own network; for PrimaryRemote one
// primary in ten serves the nine clusters after it, all on one network per
// group.
func YAML(layout string, n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata:
  name: bench-%d
spec:
  mesh:
    id: mesh1
  istio:
    version: 1.31.1
  clusters:
`, n)
	for i := range n {
		name := fmt.Sprintf("cluster-%03d", i)
		addr := fmt.Sprintf("198.51.%d.%d", 100+i/250, 1+i%250)
		role, network, cp := "primary", fmt.Sprintf("net-%03d", i), ""
		if layout == PrimaryRemote {
			network = fmt.Sprintf("net-%03d", i/10)
			if i%10 != 0 {
				role, cp = "remote", fmt.Sprintf("cluster-%03d", i-i%10)
			}
		}
		fmt.Fprintf(&b, "    %s:\n      role: %s\n      network: %s\n      apiServer: https://%s.k8s.example.net:6443\n", name, role, network, name)
		if cp != "" {
			fmt.Fprintf(&b, "      controlPlane: %s\n", cp)
		} else {
			fmt.Fprintf(&b, "      eastWestGateway:\n        address: %s\n", addr)
		}
	}
	return []byte(b.String())
}
