// hack/e2e.sh's helper (e2ekit: CRD catalog from module zips, splitting
// and classifying built objects, mapping analyzer findings to files) and
// the Go test that runs hack/e2e.sh when MESHFLEET_E2E is set. A module
// of its own, so `go test ./...` in the repository root does not see it.
module github.com/meshfleet/meshfleet/hack/e2e

go 1.26.0

require go.yaml.in/yaml/v3 v3.0.5
