//go:build !linux

package overlays

// rename moves tmp, a name in StagingDir, to p in the output directory.
func (s *stage) rename(tmp, p string) error {
	return s.out.root.Rename(StagingDir+"/"+tmp, p)
}
