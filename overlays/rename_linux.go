package overlays

import (
	"os"
	"path"
	"syscall"
)

// rename moves tmp, a name in StagingDir, to p in the output directory
// with one renameat between the two directories' descriptors: os.Root
// would open every directory of both paths on each call.
func (s *stage) rename(tmp, p string) error {
	if s.dirFile == nil {
		f, err := s.dir.Open(".")
		if err != nil {
			return err
		}
		s.dirFile = f
	}
	to, err := s.out.dirFile(path.Dir(p))
	if err != nil {
		return err
	}
	err = syscall.Renameat(int(s.dirFile.Fd()), tmp, int(to.Fd()), path.Base(p))
	if err != nil {
		return &os.LinkError{Op: "renameat", Old: tmp, New: p, Err: err}
	}
	return nil
}
