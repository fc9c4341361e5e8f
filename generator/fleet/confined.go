package fleet

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// maxFileSize bounds the fleet files and imports read through
// [LoadConfined]: far above any real fleet, far below what would exhaust
// memory.
const maxFileSize = 32 << 20

// LoadConfined loads the fleet file name, a path relative to dir, and
// refuses any name that leads out of dir: absolute paths, paths with
// "..", and symbolic links that point outside. It reads regular files
// only (never a named pipe or a device), and its errors never quote the
// contents of a file outside dir. The plugin modes use it: the path comes
// from an Argo CD application or a kustomization, which may be hostile.
func LoadConfined(dir, name string) (*Fleet, error) {
	switch {
	case name == "":
		return nil, errors.New("no fleet file given")
	case filepath.IsAbs(name):
		return nil, fmt.Errorf("fleet file %s: an absolute path; it must be a path relative to %s and inside it", quote(name), quote(dir))
	case !filepath.IsLocal(name):
		return nil, fmt.Errorf("fleet file %s: leaves %s; it must be a path inside it", quote(name), quote(dir))
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	src, err := readRegular(root, name)
	if err != nil {
		return nil, fmt.Errorf("fleet file %s: %w", quote(name), err)
	}
	return Parse(filepath.Join(dir, name), src)
}

// readRegular reads the regular file name inside root. Symbolic links are
// followed only while they stay inside root.
func readRegular(root *os.Root, name string) ([]byte, error) {
	// O_NONBLOCK: opening a named pipe does not wait for a writer; the
	// check below then refuses it.
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		if strings.Contains(err.Error(), "escapes") {
			return nil, errors.New("a symbolic link leads out of the directory it must stay in")
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", fileType(fi.Mode()))
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("larger than %d MiB", maxFileSize>>20)
	}
	return b, nil
}

// quote returns s as it is when it holds only plain characters, else
// quoted, so that a name cannot forge lines in an error.
func quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./+@:=,~") == "" {
		return s
	}
	return strconv.Quote(s)
}
