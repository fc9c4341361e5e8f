// Command genfleet prints a synthetic fleet file, for benchmarks:
//
//	go run ./hack/genfleet -n 100 -layout multi-primary-multi-network > fleet.yaml
package main

import (
	"flag"
	"os"

	"github.com/meshfleet/meshfleet/internal/fleetgen"
)

func main() {
	n := flag.Int("n", 10, "number of clusters")
	layout := flag.String("layout", fleetgen.MultiPrimaryMultiNetwork, "multi-primary-multi-network or primary-remote")
	flag.Parse()
	os.Stdout.Write(fleetgen.YAML(*layout, *n))
}
