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

// runScript runs the hack/ script name when the environment variable env
// is set: "1" runs it without arguments, anything else is its arguments.
// It stops the script with SIGTERM a minute before the test times out, so
// that the script's trap stops every process it started; with group, the
// script runs in a process group of its own and the whole group gets the
// signal (tool builds included). Arguments in lead come before the
// variable's.
func runScript(t *testing.T, env, name string, group bool, failure string, lead ...string) {
	t.Helper()
	arg := os.Getenv(env)
	if arg == "" {
		t.Skipf("set %s=1 to run hack/%s", env, name)
	}
	script, err := filepath.Abs(filepath.Join("..", name))
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string(nil), lead...)
	if arg != "1" {
		args = append(args, strings.Fields(arg)...)
	}
	ctx := t.Context()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-time.Minute))
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
	if group {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	} else {
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	}
	cmd.WaitDelay = 30 * time.Second
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("hack/%s: %v (%s)", name, err, failure)
	}
}
