package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/overlays"
)

// deliveryWarnings compares the output directory with where the fleet's
// delivery says Flux or Argo CD read it: delivery.flux.path and
// delivery.argocd.path are paths in the repository, so an output
// directory elsewhere in the same repository makes every Flux
// Kustomization or Argo CD Application meshfleet wrote point at nothing.
//
// These are warnings, not errors: a mismatch does not always break
// delivery. A render into a scratch directory (a preview, a CI job that
// diffs, a directory copied or pushed elsewhere afterwards) is fine, and
// what the repository root is for the GitOps tool is not always what it is
// on disk (a Flux source that is an OCI artifact or a bucket, a
// GitRepository that includes another repository). The output directory
// is compared only when it is inside a git working tree (a parent holds
// .git) and Flux reads a GitRepository.
func deliveryWarnings(f *fleet.Fleet, out string) []string {
	abs, err := filepath.Abs(out)
	if err != nil {
		return nil
	}
	root, ok := repoRoot(abs)
	if !ok {
		return nil
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil {
		return nil
	}
	rel = filepath.ToSlash(rel)
	var warnings []string
	check := func(tool, want string, at ...string) {
		want = path.Clean(strings.TrimPrefix(want, "/"))
		if want == rel {
			return
		}
		fix := filepath.Join(root, filepath.FromSlash(want))
		if wd, err := os.Getwd(); err == nil {
			if r, err := filepath.Rel(wd, fix); err == nil {
				fix = r
			}
		}
		warnings = append(warnings, fmt.Sprintf("%s: warning: %s: %s reads the output from %s of the repository, not from %s where -o puts it: render with -o %s, or change the path",
			f.Pos(at...), strings.Join(at, "."), tool, quote(want), quote(rel), shellQuote(fix)))
	}
	d := f.Spec.Delivery
	if d.Flux != nil && d.Flux.SourceRef.Kind == "GitRepository" {
		check("Flux", d.Flux.Path, "spec", "delivery", "flux", "path")
	}
	if d.ArgoCD != nil {
		check("Argo CD", d.ArgoCD.Path, "spec", "delivery", "argocd", "path")
	}
	return warnings
}

// repoRoot finds the git working tree dir is in: the closest of dir and
// its parents that holds .git (a directory, or the file of a worktree or
// submodule).
func repoRoot(dir string) (string, bool) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return d, true
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", false
		}
		if filepath.Dir(d) == d {
			return "", false
		}
	}
}

// fluxBootstrapAbove refuses an output directory inside a Flux bootstrap
// path: a parent, up to the repository's root, that holds flux-system/
// (what `flux bootstrap --path` writes) and no kustomization.yaml. Flux's
// own Kustomization then builds that directory with a kustomization it
// generates from every manifest and overlay under it, so it would apply
// every cluster's overlay (and the Flux and Argo CD ones) to the one
// cluster it runs in. A kustomization.yaml there lists what Flux applies,
// and meshfleet's tree is applied only if it lists it. (A flux-system
// directory beside a kustomization.yaml meshfleet writes is refused by
// [overlays.Compare].)
func fluxBootstrapAbove(out string) error {
	abs, err := filepath.Abs(out)
	if err != nil {
		return nil
	}
	root, ok := repoRoot(abs)
	if !ok {
		return nil
	}
	for d := filepath.Dir(abs); strings.HasPrefix(d, root); d = filepath.Dir(d) {
		if fi, err := os.Lstat(filepath.Join(d, overlays.FluxSystemDir)); err == nil && fi.IsDir() {
			if _, err := os.Lstat(filepath.Join(d, overlays.Kustomize)); errors.Is(err, fs.ErrNotExist) {
				rel, _ := filepath.Rel(abs, d)
				return fmt.Errorf("%s: inside the Flux bootstrap path %s (it holds %s/ and no %s): Flux would apply every overlay under it, of every cluster, to its own cluster. Render the mesh outside it (e.g. -o mesh/rendered), or list what Flux applies there in a %s",
					quote(out), quote(filepath.Join(out, rel)), overlays.FluxSystemDir, overlays.Kustomize, overlays.Kustomize)
			}
		}
		if d == root || filepath.Dir(d) == d {
			break
		}
	}
	return nil
}
