package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestConverge runs hack/converge.sh: every example fleet brought up
// against local API servers with real istiod processes, then the negative
// self-test. It runs only when MESHFLEET_CONVERGE is set:
//
//	cd hack/e2e && MESHFLEET_CONVERGE=1 go test -run TestConverge -v -timeout 80m
//
// MESHFLEET_CONVERGE may also hold arguments for the script, e.g.
// MESHFLEET_CONVERGE="-f /path/to/fleet.yaml" or "--self-test".
func TestConverge(t *testing.T) {
	arg := os.Getenv("MESHFLEET_CONVERGE")
	if arg == "" {
		t.Skip("set MESHFLEET_CONVERGE=1 to run hack/converge.sh (local API servers and real istiod)")
	}
	script, err := filepath.Abs("../converge.sh")
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	if arg != "1" {
		args = strings.Fields(arg)
	}
	ctx := t.Context()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-time.Minute))
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
	// SIGTERM to the script only: its trap stops the harness, which stops
	// every process it started by PID.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("hack/converge.sh: %v (the FAIL lines above name the check and what it saw)", err)
	}
}
