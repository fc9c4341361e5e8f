package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

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
	arg := os.Getenv("MESHFLEET_E2E")
	if arg == "" {
		t.Skip("set MESHFLEET_E2E=1 to run hack/e2e.sh (real kube-apiserver, kustomize and istioctl)")
	}
	script, err := filepath.Abs("../e2e.sh")
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	if arg != "1" {
		args = append(args, arg)
	}
	// Stop the script a minute before the test times out, with SIGTERM, so
	// that its trap stops etcd and kube-apiserver.
	ctx := t.Context()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-time.Minute))
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
	// Its own process group, so that SIGTERM reaches the tool builds and the
	// servers too (the script's trap stops the servers by PID as well).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("hack/e2e.sh: %v (the FAIL lines above name example, cluster, file and object)", err)
	}
}
