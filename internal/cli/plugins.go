package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/overlays"
)

func setupKRM(fs *pflag.FlagSet) runFunc {
	cluster := fs.String("cluster", "", "cluster whose objects to emit (else spec.cluster of the ClusterOverlay, or the meshfleet.dev/cluster annotation of an inline MeshFleet)")
	return func(io IO, _ []string) error {
		dir, err := os.Getwd()
		if err != nil {
			return err
		}
		return overlays.KRM(io.In, io.Out, dir, *cluster)
	}
}

// cmpParams are the plugin parameters meshfleet cmp takes, each also a
// flag and an ARGOCD_ENV_MESHFLEET_<NAME> variable.
var cmpParams = []string{"cluster", "fleet"}

// runCMP is Argo CD's config-management-plugin generate step: it prints
// one cluster's manifests, run in the application's source directory.
// Settings come, each overriding the one before, from flags, from
// ARGOCD_ENV_MESHFLEET_CLUSTER / _FLEET and from the plugin parameters in
// ARGOCD_APP_PARAMETERS. Without a cluster, the application's name picks
// it: a cluster of that name, or the one the name ends with after a '-'.
func setupCMP(fs *pflag.FlagSet) runFunc {
	file := new(string)
	fleetFlag(fs, file, "fleet.yaml", "fleet file, relative to the application's source directory and inside it")
	cluster := fs.String("cluster", "", "cluster whose manifests to print (default: derived from ARGOCD_APP_NAME)")
	return func(io IO, _ []string) error { return runCMP(io, fs, file, cluster) }
}

func runCMP(io IO, fs *pflag.FlagSet, file, cluster *string) error {
	if err := cmpSettings(fs); err != nil {
		return err
	}
	// The path comes from the Application, which may be hostile: it must
	// stay inside the source directory.
	f, err := fleet.LoadConfined(".", *file)
	if err != nil {
		return err
	}
	if *cluster == "" {
		if *cluster, err = clusterFromApp(f, os.Getenv("ARGOCD_APP_NAME")); err != nil {
			return err
		}
	}
	m, err := overlays.ClusterManifests(f, *cluster, overlays.ArgoCDPlugin)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(m)) == 0 { // Argo CD would prune everything
		return fmt.Errorf("cluster %s of fleet %s has no objects; refusing to print an empty manifest", *cluster, f.Metadata.Name)
	}
	_, err = io.Out.Write(m)
	return err
}

// cmpSettings maps Argo CD's environment onto the flags.
func cmpSettings(fs *pflag.FlagSet) error {
	for _, name := range cmpParams {
		if v := os.Getenv("ARGOCD_ENV_MESHFLEET_" + strings.ToUpper(name)); v != "" {
			if err := fs.Set(name, v); err != nil {
				return err
			}
		}
	}
	return cmpParameters(fs, os.Getenv("ARGOCD_APP_PARAMETERS"))
}

// cmpParameters applies Argo CD's plugin parameters, the JSON of
// ARGOCD_APP_PARAMETERS, to the flags. Names and values from it appear
// in errors quoted.
func cmpParameters(fs *pflag.FlagSet, raw string) error {
	if raw == "" {
		return nil
	}
	var params []struct {
		Name   string            `json:"name"`
		String *string           `json:"string"`
		Array  []string          `json:"array"`
		Map    map[string]string `json:"map"`
	}
	if err := json.Unmarshal([]byte(raw), &params); err != nil {
		return fmt.Errorf("ARGOCD_APP_PARAMETERS: %s", fleet.Escape(err.Error()))
	}
	for _, p := range params {
		switch {
		case !slices.Contains(cmpParams, p.Name):
			return usagef("cmp: unknown plugin parameter %q (meshfleet takes %s)", p.Name, strings.Join(cmpParams, ", "))
		case p.String == nil:
			return usagef("cmp: plugin parameter %q takes a string", p.Name)
		}
		if err := fs.Set(p.Name, *p.String); err != nil {
			return fmt.Errorf("cmp: plugin parameter %q: %s", p.Name, fleet.Escape(err.Error()))
		}
	}
	return nil
}

// clusterFromApp finds the cluster an Argo CD application is for.
func clusterFromApp(f *fleet.Fleet, app string) (string, error) {
	if app == "" {
		return "", usagef("cmp: no cluster: set ARGOCD_ENV_MESHFLEET_CLUSTER, the cluster parameter, or name the application after the cluster")
	}
	app = app[strings.LastIndexAny(app, "/_")+1:] // drop a namespace qualifier
	best := ""
	for _, c := range f.Clusters {
		if c.Name == app {
			return c.Name, nil
		}
		if strings.HasSuffix(app, "-"+c.Name) && len(c.Name) > len(best) {
			best = c.Name
		}
	}
	if best == "" {
		return "", fmt.Errorf("application %s matches no cluster of fleet %s: name it <cluster> or <prefix>-<cluster>, or set ARGOCD_ENV_MESHFLEET_CLUSTER", app, f.Metadata.Name)
	}
	return best, nil
}
