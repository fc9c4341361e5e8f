// Package schemas embeds the MeshFleet CUE schema, the single source of
// truth for the shape of a fleet file, and the JSON Schema generated from
// it for editors.
package schemas

import _ "embed"

//go:generate go run ../internal/schemagen/gen

// MeshFleet is the CUE source of the MeshFleet v1alpha1 schema.
//
//go:embed meshfleet.cue
var MeshFleet []byte

// Filename is the name positions in the schema are reported under.
const Filename = "schemas/meshfleet.cue"

// JSONSchema is the JSON Schema (draft 2020-12) of the fleet file,
// generated from [MeshFleet] by `go generate`.
//
//go:embed meshfleet.schema.json
var JSONSchema []byte
