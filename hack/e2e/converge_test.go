package main

import "testing"

// TestConverge runs hack/converge.sh: every example fleet brought up
// against local API servers with real istiod processes, then the negative
// self-test. It runs only when MESHFLEET_CONVERGE is set:
//
//	cd hack/e2e && MESHFLEET_CONVERGE=1 go test -run TestConverge -v -timeout 80m
//
// MESHFLEET_CONVERGE may also hold arguments for the script, e.g.
// MESHFLEET_CONVERGE="-f /path/to/fleet.yaml" or "--self-test". Only the
// script gets SIGTERM: its trap stops the harness, which stops every
// process it started by PID.
func TestConverge(t *testing.T) {
	runScript(t, "MESHFLEET_CONVERGE", "converge.sh", false, "the FAIL lines above name the check and what it saw")
}

// TestConvergeUpgrade runs hack/converge.sh --upgrade: every step fleet of
// the documented upgrade (overlays/testdata/upgrade) with each installer,
// each step converged from scratch. It runs only when
// MESHFLEET_CONVERGE_UPGRADE is set; "1" runs every installer, anything
// else names them:
//
//	cd hack/e2e && MESHFLEET_CONVERGE_UPGRADE=istioctl go test -run TestConvergeUpgrade -v -timeout 30m
func TestConvergeUpgrade(t *testing.T) {
	runScript(t, "MESHFLEET_CONVERGE_UPGRADE", "converge.sh", false, "the FAIL lines above name the step, the check and what it saw", "--upgrade")
}
