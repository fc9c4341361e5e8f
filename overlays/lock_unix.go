//go:build unix

package overlays

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockDir takes a lock on the open directory d: exclusive for render,
// shared for check. It waits up to timeout for another meshfleet
// process to finish. The lock goes with the file descriptor, so a killed
// process never leaves a stale lock behind.
func lockDir(d *os.File, exclusive bool, timeout time.Duration) error {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	fd := int(d.Fd())
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(fd, how|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case !errors.Is(err, syscall.EWOULDBLOCK):
			return fmt.Errorf("locking the output directory: %w", err)
		case time.Now().After(deadline):
			return fmt.Errorf("another meshfleet render or check has been working in this directory for more than %s; refusing to run at the same time", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// access reports whether the directory dir is writable.
func access(dir string) error {
	const wOK = 2
	return syscall.Access(dir, wOK)
}

// links returns the number of hard links of a file.
func links(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}
