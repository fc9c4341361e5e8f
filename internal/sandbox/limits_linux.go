package sandbox

import (
	"os"
	"os/exec"
	"runtime/debug"
	"syscall"
)

const supported = true

// configure makes the child die with its parent.
func configure(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// limit applies l to this (child) process. RLIMIT_DATA bounds the
// memory the Go heap can map writable; RLIMIT_AS backs it up with room
// for Go's address-space reservations; RLIMIT_CPU kills a child whose
// parent could not.
func limit(l Limits) error {
	if l.Memory == 0 {
		l = DefaultLimits
	}
	debug.SetMaxStack(l.Stack)
	debug.SetMemoryLimit(int64(l.Memory) / 4 * 3)
	cpu := uint64(cpuLimit(l).Seconds())
	for _, r := range []struct {
		res int
		max uint64
	}{
		{syscall.RLIMIT_DATA, l.Memory},
		{syscall.RLIMIT_AS, l.Memory + 4<<30},
		{syscall.RLIMIT_CPU, cpu},
	} {
		if err := syscall.Setrlimit(r.res, &syscall.Rlimit{Cur: r.max, Max: r.max}); err != nil {
			return err
		}
	}
	return nil
}

// peakRSS is the most memory the child had resident, in bytes.
func peakRSS(ps *os.ProcessState) uint64 {
	if ps == nil {
		return 0
	}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > 0 {
		return uint64(ru.Maxrss) * 1024
	}
	return 0
}
