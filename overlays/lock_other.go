//go:build !unix

package overlays

import (
	"os"
	"time"
)

// lockDir does nothing where there is no flock: concurrent renders into
// one directory are not serialised there.
func lockDir(d *os.File, exclusive bool, timeout time.Duration) error { return nil }

func access(dir string) error { return nil }

func links(fi os.FileInfo) uint64 { return 1 }
