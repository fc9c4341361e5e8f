// Command fleetinfo loads and validates a fleet file (any format meshfleet
// reads) and prints it as JSON, with the schema's defaults filled in. The
// convergence harness (hack/converge.sh) reads the fleet's declared values
// from it, so the harness works on any valid fleet, whatever its format:
//
//	go run ./hack/fleetinfo -f fleet.cue > fleet.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/meshfleet/meshfleet/generator/fleet"
)

func main() {
	file := flag.String("f", "fleet.yaml", "fleet file")
	flag.Parse()
	f, err := fleet.Load(*file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
