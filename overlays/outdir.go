package overlays

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// An output directory is treated as hostile: a pull request can commit
// symbolic links, and anything else may sit where meshfleet wants to
// read or write. Every access goes through an [os.Root], which never
// resolves a path to a place outside the directory, and meshfleet
// refuses, before it reads or writes anything, any path with a symbolic
// link in it or that is not a regular file (named pipes, devices and
// sockets are never opened).

// StagingDir is the directory inside the output directory where render
// writes new files before it moves them into place. It exists only while
// a render runs; one left behind is the trace of a render that was
// killed, which the next render removes and check reports.
const StagingDir = ".meshfleet-staging"

// maxFileSize bounds what meshfleet reads from an output directory: no
// file it writes comes near it, and a larger one is not read into memory.
const maxFileSize = 64 << 20

// LockTimeout is how long render and check wait for another meshfleet
// process that works in the same output directory.
var LockTimeout = 2 * time.Minute

// Output is an output directory opened by render or check. It holds a
// lock on the directory until it is closed: render's lock is exclusive,
// check's shared, so two renders into one directory run one after the
// other and check never sees a render half way.
type Output struct {
	dir  string   // as the user named it, for messages
	root *os.Root // nil for check of a directory that does not exist
	// dirs are the directories inside root opened so far, by path, each
	// an os.Root of its own: a path with several components costs one
	// open per component on every os.Root call, and a tree of thousands
	// of files is read and written a few directories at a time.
	dirs      map[string]*os.Root
	files     map[string]*os.File // the same directories as files, for renameat
	lock      *os.File
	prefetch  *prefetch
	created   []string // directories render created for dir, dir last
	recovered bool     // an interrupted render's staging directory was removed
	applied   bool
	render    bool // opened for render
}

// OpenForRender opens dir for writing, creating it if needed, waits for
// other meshfleet processes working in it, and removes what a render
// that was killed left behind.
func OpenForRender(dir string) (*Output, error) {
	o := &Output{dir: dir, render: true}
	if err := checkParents(dir); err != nil {
		return nil, err
	}
	exists, err := outputDirExists(dir)
	if err != nil {
		return nil, err
	}
	if !exists {
		if o.created, err = mkdirAll(dir); err != nil {
			o.Close()
			return nil, err
		}
	}
	if err := o.open(true); err != nil {
		return nil, err
	}
	fi, err := o.root.Lstat(StagingDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		o.Close()
		return nil, o.pathErr(StagingDir, err)
	case !fi.IsDir():
		o.Close()
		return nil, o.refusal(StagingDir, describe(fi)+", where meshfleet keeps unfinished work; remove it")
	default:
		if err := o.root.RemoveAll(StagingDir); err != nil {
			o.Close()
			return nil, fmt.Errorf("%s: removing what an interrupted render left: %w", o.show(StagingDir), err)
		}
		o.recovered = true
	}
	return o, nil
}

// outputDirExists reports whether the output directory dir exists, and
// refuses it when it is a symbolic link or not a directory.
func outputDirExists(dir string) (bool, error) {
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	case fi.Mode()&fs.ModeSymlink != 0:
		return false, fmt.Errorf("%s: the output directory is a symbolic link; give the directory it points to, if you trust it", show(dir))
	case !fi.IsDir():
		return false, fmt.Errorf("%s: the output directory is not a directory", show(dir))
	}
	return true, nil
}

// OpenForCheck opens dir for reading. A directory that does not exist
// reads as empty. A directory where a render was killed half way is an
// error: it is not up to date, whatever its files say.
func OpenForCheck(dir string) (*Output, error) {
	o := &Output{dir: dir}
	if err := checkParents(dir); err != nil {
		return nil, err
	}
	if exists, err := outputDirExists(dir); err != nil || !exists {
		return o, err
	}
	if err := o.open(false); err != nil {
		return nil, err
	}
	if _, err := o.root.Lstat(StagingDir); !errors.Is(err, fs.ErrNotExist) {
		o.Close()
		return nil, fmt.Errorf("%s: a render into this directory was interrupted and left %s behind, so the tree may be half written; run meshfleet render to finish it", show(dir), StagingDir)
	}
	return o, nil
}

// checkParents refuses a relative output directory with a symbolic link
// among its parents: inside a repository, where pre-commit and CI run,
// such a link can come with a pull request and lead anywhere. An
// absolute path, or one that climbs with "..", is the caller's own
// choice.
func checkParents(dir string) error {
	if !filepath.IsLocal(dir) {
		return nil
	}
	parts := strings.Split(filepath.Clean(dir), string(filepath.Separator))
	for i := 1; i < len(parts); i++ {
		sub := filepath.Join(parts[:i]...)
		fi, err := os.Lstat(sub)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s: a parent of the output directory %s is a symbolic link; give the directory it points to, if you trust it", show(sub), show(dir))
		}
	}
	return nil
}

func (o *Output) open(exclusive bool) error {
	root, err := os.OpenRoot(o.dir)
	if err != nil {
		return err
	}
	o.root = root
	if o.lock, err = root.Open("."); err == nil {
		err = lockDir(o.lock, exclusive, LockTimeout)
	}
	if err != nil {
		o.Close()
		return fmt.Errorf("%s: %w", show(o.dir), err)
	}
	return nil
}

// prefetch is the manifest and the files it lists, read in the
// background.
type prefetch struct {
	done  chan struct{}
	files map[string][]byte // what was read without an error
}

// Prefetch starts reading the manifest and every file it lists in the
// background, so that [Compare] finds them read: reading a thousand
// files takes as long as loading the fleet, which leaves a CPU idle.
// Nothing else may use o until Compare or Close, which wait for it.
// A file that cannot be read is left for Compare to read and report.
func (o *Output) Prefetch() {
	if o.root == nil || o.prefetch != nil {
		return
	}
	pf := &prefetch{done: make(chan struct{}), files: map[string][]byte{}}
	o.prefetch = pf
	go func() {
		defer close(pf.done)
		b, err := o.read(Manifest)
		if err != nil {
			return
		}
		pf.files[Manifest] = b
		for _, p := range parseManifest(b).owned {
			if b, err := o.read(p); err == nil {
				pf.files[p] = b
			}
		}
	}()
}

// settle waits for a prefetch to finish.
func (o *Output) settle() {
	if o.prefetch != nil {
		<-o.prefetch.done
	}
}

// cachedRead is read, answered from the prefetched files when it can be;
// each is answered once.
func (o *Output) cachedRead(p string) ([]byte, error) {
	if pf := o.prefetch; pf != nil {
		<-pf.done
		if b, ok := pf.files[p]; ok {
			delete(pf.files, p)
			return b, nil
		}
	}
	return o.read(p)
}

// Close releases the lock. Directories render created for the output
// directory and wrote nothing into are removed again.
func (o *Output) Close() error {
	o.settle()
	o.forget(".")
	if o.lock != nil {
		o.lock.Close() // releases the lock
		o.lock = nil
	}
	if o.root != nil {
		o.root.Close()
		o.root = nil
	}
	if !o.applied {
		for i := len(o.created) - 1; i >= 0; i-- {
			os.Remove(o.created[i]) // only succeeds while empty
		}
	}
	return nil
}

// mkdirAll creates dir and its missing parents and returns the ones it
// created, parents first.
func mkdirAll(dir string) ([]string, error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	var created []string
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return created, err
		}
		created = append(created, missing[i])
	}
	return created, nil
}

// Dir is the directory as it was named when opened.
func (o *Output) Dir() string { return o.dir }

// Recovered reports whether opening removed the unfinished work of an
// earlier render that was killed.
func (o *Output) Recovered() bool { return o.recovered }

// show quotes a name for an error message when it holds anything but
// plain characters, so a name with a newline cannot forge lines.
func show(name string) string {
	if name != "" && strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./+@:=,~") == "" {
		return name
	}
	return strconv.Quote(name)
}

// show names p, a slash-separated path inside the output directory.
func (o *Output) show(p string) string { return show(filepath.Join(o.dir, filepath.FromSlash(p))) }

func (o *Output) refusal(p, what string) error {
	return fmt.Errorf("%s: %s", o.show(p), what)
}

// pathErr names p in an error from the os package, whose own message
// would name the path unquoted.
func (o *Output) pathErr(p string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		err = le.Err
	}
	return fmt.Errorf("%s: %w", o.show(p), err)
}

func describe(fi fs.FileInfo) string {
	switch m := fi.Mode(); {
	case m&fs.ModeSymlink != 0:
		return "is a symbolic link"
	case m.IsDir():
		return "is a directory"
	case m&fs.ModeNamedPipe != 0:
		return "is a named pipe"
	case m&fs.ModeDevice != 0:
		return "is a device"
	case m&fs.ModeSocket != 0:
		return "is a socket"
	case m.IsRegular():
		return "is a file"
	default:
		return "is not a regular file"
	}
}

const noLinks = "; meshfleet does not follow symbolic links in its output directory: replace it with a real directory or file"

// lstat returns what p is, refusing a path with a symbolic link or a
// non-directory in it. A missing file or directory gives fs.ErrNotExist.
func (o *Output) lstat(p string) (fs.FileInfo, error) {
	d, err := o.openDir(path.Dir(p))
	if err != nil {
		return nil, err
	}
	return o.noLink(p)(d.Lstat(path.Base(p)))
}

// noLink returns a check of what Lstat gave for p: a missing entry is
// fs.ErrNotExist, and a symbolic link is refused.
func (o *Output) noLink(p string) func(fs.FileInfo, error) (fs.FileInfo, error) {
	return func(fi fs.FileInfo, err error) (fs.FileInfo, error) {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fs.ErrNotExist
		case err != nil:
			return nil, o.pathErr(p, err)
		case fi.Mode()&fs.ModeSymlink != 0:
			return nil, o.refusal(p, "is a symbolic link"+noLinks)
		}
		return fi, nil
	}
}

// openDir returns the directory p (slash-separated, clean, "." for the
// output directory itself) as an os.Root, opened once and kept until
// Close or forget. Every component of p is checked as lstat checks it: a
// symbolic link or a file in the way is refused, and a missing one gives
// fs.ErrNotExist.
func (o *Output) openDir(p string) (*os.Root, error) {
	if o.root == nil {
		return nil, fs.ErrNotExist
	}
	if p == "." {
		return o.root, nil
	}
	if d, ok := o.dirs[p]; ok {
		return d, nil
	}
	parent, err := o.openDir(path.Dir(p))
	if err != nil {
		return nil, err
	}
	base := path.Base(p)
	fi, err := o.noLink(p)(parent.Lstat(base))
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, o.refusal(p, describe(fi)+", not a directory")
	}
	d, err := parent.OpenRoot(base)
	if err != nil {
		return nil, o.pathErr(p, err)
	}
	// Should a link have been swapped in since the Lstat, OpenRoot
	// followed it, still inside the parent: refuse what was opened.
	if st, err := d.Stat("."); err != nil || !os.SameFile(fi, st) {
		d.Close()
		return nil, o.refusal(p, "changed while meshfleet opened it"+noLinks)
	}
	if o.dirs == nil {
		o.dirs = map[string]*os.Root{}
	}
	o.dirs[p] = d
	return d, nil
}

// dirFile returns the directory p, opened as openDir opens it, as a file.
func (o *Output) dirFile(p string) (*os.File, error) {
	if f, ok := o.files[p]; ok {
		return f, nil
	}
	d, err := o.openDir(p)
	if err != nil {
		return nil, err
	}
	f, err := d.Open(".")
	if err != nil {
		return nil, o.pathErr(p, err)
	}
	if o.files == nil {
		o.files = map[string]*os.File{}
	}
	o.files[p] = f
	return f, nil
}

// forget closes the cached directory p and those under it, after p was
// removed or may have been.
func (o *Output) forget(p string) {
	under := func(q string) bool { return p == "." || q == p || strings.HasPrefix(q, p+"/") }
	for q, d := range o.dirs {
		if under(q) {
			d.Close()
			delete(o.dirs, q)
		}
	}
	for q, f := range o.files {
		if under(q) {
			f.Close()
			delete(o.files, q)
		}
	}
}

// read returns the contents of the regular file p, or fs.ErrNotExist.
// It never opens anything but a regular file, never blocks on a named
// pipe and never reads outside the output directory.
func (o *Output) read(p string) ([]byte, error) {
	fi, err := o.lstat(p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, o.refusal(p, describe(fi)+", not a regular file; meshfleet reads and writes only regular files")
	}
	// O_NONBLOCK: should a named pipe be swapped in after the check,
	// opening it does not wait for a writer, and the check below refuses.
	d, err := o.openDir(path.Dir(p))
	if err != nil {
		return nil, err
	}
	f, err := d.OpenFile(path.Base(p), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, o.pathErr(p, err)
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, o.pathErr(p, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, o.refusal(p, describe(fi)+", not a regular file; meshfleet reads and writes only regular files")
	}
	if n := links(fi); n > 1 {
		// A hard link can share an outside file's contents; nothing
		// meshfleet or git writes has more than one link.
		return nil, o.refusal(p, fmt.Sprintf("has %d hard links; meshfleet writes files with one, and does not read files that may be shared with another directory", n))
	}
	if fi.Size() > maxFileSize {
		return nil, o.refusal(p, fmt.Sprintf("%d bytes, larger than any file meshfleet writes", fi.Size()))
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, o.pathErr(p, err)
	}
	if len(b) > maxFileSize {
		return nil, o.refusal(p, "larger than any file meshfleet writes")
	}
	return b, nil
}

// removeEmptyParents removes the directory p and its parents while they
// are empty.
func (o *Output) removeEmptyParents(p string) {
	for p != "." && p != "" {
		o.forget(p)
		if fi, err := o.root.Lstat(p); err != nil || !fi.IsDir() {
			return
		}
		if o.root.Remove(p) != nil {
			return
		}
		p = path.Dir(p)
	}
}

// writable reports whether meshfleet can create and remove entries in
// the directory p, so that a read-only directory is found before
// anything is changed rather than half way through.
func (o *Output) writable(p string) error {
	full := filepath.Join(o.dir, filepath.FromSlash(p))
	if err := access(full); err != nil {
		return fmt.Errorf("%s: cannot write here: %w", show(full), err)
	}
	return nil
}
