package fleet

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-jsonnet"
)

// JsonnetVM returns a Jsonnet VM whose imports resolve relative to the
// importing file and may not leave dir, the fleet file's directory tree.
// VMs are not safe for concurrent use.
func JsonnetVM(dir string) (*jsonnet.VM, error) {
	root, err := filepath.Abs(dir)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return nil, err
	}
	vm := jsonnet.MakeVM()
	vm.Importer(&confinedImporter{root: root, shown: dir, cache: map[string]jsonnet.Contents{}})
	return vm, nil
}

// confinedImporter reads imports from files under root only.
type confinedImporter struct {
	root  string // absolute, symlinks resolved
	shown string // root as the user named it, for errors
	cache map[string]jsonnet.Contents
}

func (i *confinedImporter) Import(importedFrom, importedPath string) (jsonnet.Contents, string, error) {
	// Imports are relative to the importing file; a snippet's are
	// relative to the fleet's directory.
	target := importedPath
	if !filepath.IsAbs(importedPath) {
		from := i.shown
		if importedFrom != "" {
			from = filepath.Dir(importedFrom)
		}
		target = filepath.Join(from, importedPath)
	}
	if c, ok := i.cache[target]; ok {
		return c, target, nil
	}
	abs, err := filepath.Abs(target)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return jsonnet.Contents{}, "", fmt.Errorf("import %q: %w", importedPath, err)
	}
	rel, err := filepath.Rel(i.root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return jsonnet.Contents{}, "", fmt.Errorf("import %q: %s is outside %s, the fleet file's directory", importedPath, target, i.shown)
	}
	// Read through an os.Root, so that a link swapped in since the check
	// above still cannot lead out, and only regular files: a named pipe
	// would block the import forever.
	root, err := os.OpenRoot(i.root)
	if err != nil {
		return jsonnet.Contents{}, "", fmt.Errorf("import %q: %w", importedPath, err)
	}
	defer root.Close()
	b, err := readRegular(root, rel)
	if err != nil {
		return jsonnet.Contents{}, "", fmt.Errorf("import %q: %w", importedPath, err)
	}
	c := jsonnet.MakeContentsRaw(b)
	i.cache[target] = c
	return c, target, nil
}
