package main

import "testing"

// TestE2E runs hack/e2e.sh: every example fleet rendered and judged by a
// real kube-apiserver, kustomize and istioctl, then the self-test. It
// needs minutes (and the tools build, about 10 more, the first time), so
// it runs only when MESHFLEET_E2E is set:
//
//	cd hack/e2e && MESHFLEET_E2E=1 go test -v -timeout 60m
//
// MESHFLEET_E2E may also hold arguments for the script, e.g.
// MESHFLEET_E2E=--self-test.
func TestE2E(t *testing.T) {
	runScript(t, "MESHFLEET_E2E", "e2e.sh", true, "the FAIL lines above name example, cluster, file and object")
}
