// Command gen writes meshfleet.schema.json, the JSON Schema of the fleet
// file, into the current directory. It is run by `go generate ./schemas`.
package main

import (
	"fmt"
	"os"

	"github.com/meshfleet/meshfleet/internal/schemagen"
)

func main() {
	b, err := schemagen.JSONSchema()
	if err == nil {
		err = os.WriteFile("meshfleet.schema.json", b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
