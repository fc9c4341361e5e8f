// Package schemas embeds the MeshFleet CUE schema, the single source of
// truth for the shape of a fleet file.
package schemas

import _ "embed"

// MeshFleet is the CUE source of the MeshFleet v1alpha1 schema.
//
//go:embed meshfleet.cue
var MeshFleet []byte

// Filename is the name positions in the schema are reported under.
const Filename = "schemas/meshfleet.cue"
