//go:build !linux

package sandbox

import (
	"os"
	"os/exec"
)

// supported is false: without Linux's rlimits and parent-death signal,
// evaluation happens in-process.
const supported = false

func configure(*exec.Cmd) {}

func limit(Limits) error { return nil }

func peakRSS(*os.ProcessState) uint64 { return 0 }
