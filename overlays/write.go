package overlays

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// Manifest is the file in the output directory that lists, one path a
// line, every file meshfleet wrote there. A later render deletes the
// listed files it no longer produces and never touches any other file.
const Manifest = ".meshfleet-files"

const manifestHeader = "# Files written by meshfleet render. It deletes them when the fleet no longer needs them; it never touches other files.\n"

// Result counts what Write did.
type Result struct {
	Written, Removed, Unchanged int
}

// Owned returns the paths listed in dir's manifest, if it has one. Lines
// that are not clean relative paths are ignored, so a tampered manifest
// cannot point outside dir.
func Owned(dir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, Manifest))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var owned []string
	for line := range strings.Lines(string(b)) {
		p := strings.TrimSpace(line)
		if p == "" || strings.HasPrefix(p, "#") || !fs.ValidPath(p) || p == Manifest {
			continue
		}
		owned = append(owned, p)
	}
	return owned, nil
}

// ManifestFor returns the manifest that records the files of t.
func ManifestFor(t Tree) []byte {
	var b bytes.Buffer
	b.WriteString(manifestHeader)
	for _, p := range t.Paths() {
		b.WriteString(p + "\n")
	}
	return b.Bytes()
}

// Write makes dir hold t. Files of an earlier render that t no longer has
// are removed; files meshfleet did not write are never touched, and a file
// of t that would replace one of them is an error. Every new file is
// first written beside its target; only when all of them are on disk are
// they renamed into place, so a failure leaves dir as it was.
func Write(dir string, t Tree) (Result, error) {
	var res Result
	owned, err := Owned(dir)
	if err != nil {
		return res, err
	}
	isOwned := map[string]bool{}
	for _, p := range owned {
		isOwned[p] = true
	}

	want := Tree{Manifest: ManifestFor(t)}
	for p, b := range t {
		want[p] = b
	}
	var changed, conflicts []string
	for _, p := range want.Paths() {
		cur, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		switch {
		case err == nil && bytes.Equal(cur, want[p]):
			if p != Manifest {
				res.Unchanged++
			}
		case err == nil && !isOwned[p] && p != Manifest:
			conflicts = append(conflicts, p)
		case err == nil || errors.Is(err, fs.ErrNotExist):
			changed = append(changed, p)
		default:
			conflicts = append(conflicts, fmt.Sprintf("%s (%v)", p, err))
		}
	}
	if len(conflicts) > 0 {
		return res, fmt.Errorf("%s: refusing to replace files meshfleet did not write (move them away or delete them):\n  %s", dir, strings.Join(conflicts, "\n  "))
	}

	st := stage{root: dir}
	for _, p := range changed {
		if err := st.add(p, want[p]); err != nil {
			st.abort()
			return res, err
		}
	}

	// From here on only renames and removals remain. Hold SIGINT and
	// SIGTERM until they are done so an interrupt cannot leave half a tree.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)

	// The manifest goes last: until it is in place, the old one still
	// names every file an interrupted run could have left behind.
	slices.SortStableFunc(st.files, func(a, b staged) int {
		return boolInt(a.target == Manifest) - boolInt(b.target == Manifest)
	})
	for _, f := range st.files {
		if err := os.Rename(f.tmp, filepath.Join(dir, filepath.FromSlash(f.target))); err != nil {
			st.abort()
			return res, err
		}
		if f.target != Manifest {
			res.Written++
		}
	}
	for _, p := range owned {
		if _, keep := t[p]; keep {
			continue
		}
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.Remove(full); err == nil {
			res.Removed++
			removeEmptyParents(dir, filepath.Dir(full))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return res, err
		}
	}
	return res, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

type staged struct{ tmp, target string }

// stage writes files next to their targets and remembers what it
// created, so that it can take everything back.
type stage struct {
	root  string
	files []staged
	dirs  []string // directories created, parents first
}

func (s *stage) add(p string, b []byte) error {
	target := filepath.Join(s.root, filepath.FromSlash(p))
	if err := s.mkdirAll(filepath.Dir(target)); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(target), "."+filepath.Base(target)+".meshfleet-tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	s.files = append(s.files, staged{tmp, p})
	return nil
}

func (s *stage) mkdirAll(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := s.mkdirAll(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	s.dirs = append(s.dirs, dir)
	return nil
}

// abort removes staged files that were not renamed yet and the
// directories created for them.
func (s *stage) abort() {
	for _, f := range s.files {
		os.Remove(f.tmp)
	}
	for i := len(s.dirs) - 1; i >= 0; i-- {
		os.Remove(s.dirs[i]) // only succeeds while empty
	}
}

// removeEmptyParents removes dir and its parents up to root while they
// are empty.
func removeEmptyParents(root, dir string) {
	root = filepath.Clean(root)
	for dir != root && strings.HasPrefix(dir, root+string(filepath.Separator)) {
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}
