package overlays

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
)

// move is one rename that puts staged work into place: a file, or a
// whole directory tree that did not exist before.
type move struct {
	tmp    string // name in StagingDir
	target string // path in the output directory
	tree   bool   // a new directory, with everything under it
	files  int    // files it puts into place
}

// freshDir is a directory of a new tree, built inside StagingDir.
type freshDir struct {
	root *os.Root
	move int // index of the move that puts its tree into place
}

// stage writes files into StagingDir and knows how to move them into
// place. Until then nothing in the output directory changes, and
// removing StagingDir takes everything back.
type stage struct {
	out     *Output
	made    bool     // StagingDir exists
	dir     *os.Root // StagingDir, opened
	dirFile *os.File // StagingDir, for renames out of it
	n       int      // names used in StagingDir
	moves   []move
	fresh   map[string]freshDir // by path in the output directory
	checked map[string]bool     // directories found writable
}

// prepare stages every changed file. Nothing visible changes.
func (s *stage) prepare(c *Changes, interrupted func() bool) error {
	o := s.out
	if err := o.root.Mkdir(StagingDir, 0o700); err != nil {
		return o.pathErr(StagingDir, err)
	}
	s.made = true
	dir, err := o.root.OpenRoot(StagingDir)
	if err != nil {
		return o.pathErr(StagingDir, err)
	}
	s.dir = dir
	s.fresh, s.checked = map[string]freshDir{}, map[string]bool{}
	for _, p := range c.changed {
		if interrupted() {
			return errInterrupted
		}
		if p == Manifest {
			continue
		}
		d, err := s.stagedDir(path.Dir(p))
		if err != nil {
			return err
		}
		if d != nil {
			// The directory is new: the file goes straight into its
			// staged copy.
			if err := s.create(d, path.Base(p), p, c.want[p], false); err != nil {
				return err
			}
			s.moves[s.fresh[path.Dir(p)].move].files++
			continue
		}
		// A file's place may have been taken by a directory, a link or a
		// pipe since Compare looked.
		if fi, err := o.lstat(p); err == nil && !fi.Mode().IsRegular() {
			return o.refusal(p, describe(fi)+", not a regular file; meshfleet reads and writes only regular files")
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := s.writable(path.Dir(p)); err != nil {
			return err
		}
		tmp, err := s.write(c.want[p], false)
		if err != nil {
			return err
		}
		s.moves = append(s.moves, move{tmp: tmp, target: p, files: 1})
	}
	for _, p := range c.removed {
		if err := s.writable(path.Dir(p)); err != nil {
			return err
		}
	}
	if interrupted() {
		return errInterrupted
	}
	return nil
}

// stagedDir returns the staged copy of directory p when p does not exist
// in the output directory, creating it (and the new tree it belongs to)
// in StagingDir; nil when p exists. A symbolic link or a file in the way
// is refused.
func (s *stage) stagedDir(p string) (*os.Root, error) {
	if d, ok := s.fresh[p]; ok {
		return d.root, nil
	}
	if _, err := s.out.openDir(p); err == nil {
		return nil, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	parent, err := s.stagedDir(path.Dir(p))
	if err != nil {
		return nil, err
	}
	into, name, m := parent, path.Base(p), 0
	if parent == nil {
		// p is the top of a new tree, which one rename puts in place.
		if err := s.writable(path.Dir(p)); err != nil {
			return nil, err
		}
		into, name, m = s.dir, s.name(), len(s.moves)
		s.moves = append(s.moves, move{tmp: name, target: p, tree: true})
	} else {
		m = s.fresh[path.Dir(p)].move
	}
	show := StagingDir + "/" + s.moves[m].tmp
	if err := into.Mkdir(name, 0o755); err != nil {
		return nil, s.out.pathErr(show, err)
	}
	d, err := into.OpenRoot(name)
	if err != nil {
		return nil, s.out.pathErr(show, err)
	}
	s.fresh[p] = freshDir{d, m}
	return d, nil
}

// writable checks, once per directory, that files can be created and
// removed in directory p of the output directory.
func (s *stage) writable(p string) error {
	if s.checked[p] {
		return nil
	}
	s.checked[p] = true
	return s.out.writable(p)
}

// name returns a name in StagingDir not used before.
func (s *stage) name() string {
	s.n++
	return strconv.Itoa(s.n)
}

// write puts b into a new file in StagingDir and returns its name.
func (s *stage) write(b []byte, sync bool) (string, error) {
	name := s.name()
	return name, s.create(s.dir, name, StagingDir+"/"+name, b, sync)
}

// create writes b into a new file name of d; shown names it in errors.
// With sync the file is on disk when create returns. Only the manifest
// is synced: a killed process loses nothing the kernel has, and syncing
// every file would make a render several times slower. After a power
// loss a file may be empty, which check reports as drift and render
// repairs, while the manifest, which says what meshfleet owns, survives.
func (s *stage) create(d *os.Root, name, shown string, b []byte, sync bool) error {
	f, err := d.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return s.out.pathErr(shown, err)
	}
	_, err = f.Write(b)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return s.out.pathErr(shown, err)
	}
	return nil
}

// install writes b to p through StagingDir.
func (s *stage) install(p string, b []byte) error {
	tmp, err := s.write(b, true)
	if err != nil {
		return err
	}
	if err := s.out.root.Rename(StagingDir+"/"+tmp, p); err != nil {
		return s.out.pathErr(p, err)
	}
	return nil
}

// place puts what m staged into place; tests make it fail.
var place = (*stage).place

func (s *stage) place(m move) error {
	if m.tree {
		// Nothing may have appeared there since prepare looked: a rename
		// would replace an empty directory, and refuse anything else.
		if _, err := s.out.lstat(m.target); err == nil {
			return fmt.Errorf("appeared while meshfleet was writing; run meshfleet render again")
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return s.rename(m.tmp, m.target)
}

// done removes StagingDir with whatever is still in it: nothing once
// everything staged is in place, everything after a failure.
func (s *stage) done() {
	for _, d := range s.fresh {
		d.root.Close()
	}
	s.fresh = nil
	if s.dirFile != nil {
		s.dirFile.Close()
		s.dirFile = nil
	}
	if s.dir != nil {
		s.dir.Close()
		s.dir = nil
	}
	if s.made {
		s.out.root.RemoveAll(StagingDir)
		s.made = false
	}
}
