package overlays

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/rogpeppe/go-internal/diff"
)

// Drift is how dir differs from what Write would make of t: one unified
// diff per file that is missing, changed, or owned by meshfleet but no
// longer rendered. Files meshfleet does not own are not compared.
func Drift(dir string, t Tree) ([]byte, error) {
	owned, err := Owned(dir)
	if err != nil {
		return nil, err
	}
	want := Tree{Manifest: ManifestFor(t)}
	for p, b := range t {
		want[p] = b
	}
	var out bytes.Buffer
	compare := func(p string) error {
		cur, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		exists := err == nil
		b, rendered := want[p]
		if exists == rendered && bytes.Equal(cur, b) {
			return nil
		}
		oldName, newName := path.Join("a", p), path.Join("b", p)
		if !exists {
			oldName = "/dev/null"
		}
		if !rendered {
			newName = "/dev/null"
		}
		out.Write(diff.Diff(oldName, cur, newName, b))
		return nil
	}
	for _, p := range want.Paths() {
		if err := compare(p); err != nil {
			return nil, err
		}
	}
	for _, p := range owned {
		if _, rendered := want[p]; !rendered {
			if err := compare(p); err != nil {
				return nil, err
			}
		}
	}
	return out.Bytes(), nil
}
