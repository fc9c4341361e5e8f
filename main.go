// Command meshfleet renders an Istio multi-cluster fleet file into
// per-cluster kustomize overlays.
package main

import (
	"os"

	"github.com/meshfleet/meshfleet/internal/cli"
)

func main() { os.Exit(cli.Main()) }
