package overlays

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/generator/mesh"
)

const syncWave = "argocd.argoproj.io/sync-wave"

// helmRepository is the name of the Flux HelmRepository of Istio's charts.
const helmRepository = "istio"

// stageWave is the Argo CD sync wave of a stage: stages apply in the
// order mesh.Stages lists them, two waves apart so that the charts of a
// stage (base, then istiod) fit in between.
func stageWave(stage string) int { return 2 * slices.Index(mesh.Stages, stage) }

// fluxHelmReleases writes the Flux objects that run a stage's charts into
// dir and returns the file's name. Releases of a stage depend on each
// other in order (istiod waits for base).
func (l *layout) fluxHelmReleases(dir string, s mesh.Stage, withRepo bool) string {
	var objs []mesh.Object
	if withRepo {
		spec := map[string]any{"interval": "1h", "url": s.Charts[0].Repo}
		if strings.HasPrefix(s.Charts[0].Repo, "oci://") {
			spec["type"] = "oci"
		}
		objs = append(objs, mesh.Object{
			"apiVersion": "source.toolkit.fluxcd.io/v1",
			"kind":       "HelmRepository",
			"metadata":   map[string]any{"name": helmRepository, "namespace": mesh.IstioNamespace},
			"spec":       spec,
		})
	}
	for i, ch := range s.Charts {
		spec := map[string]any{
			"interval":    "10m",
			"releaseName": ch.Release,
			"chart": map[string]any{"spec": map[string]any{
				"chart":     ch.Chart,
				"version":   ch.Version,
				"sourceRef": map[string]any{"kind": "HelmRepository", "name": helmRepository},
			}},
			"values": ch.Values,
		}
		if i > 0 {
			spec["dependsOn"] = []any{map[string]any{"name": s.Charts[i-1].Release}}
		}
		objs = append(objs, mesh.Object{
			"apiVersion": "helm.toolkit.fluxcd.io/v2",
			"kind":       "HelmRelease",
			"metadata":   map[string]any{"name": ch.Release, "namespace": mesh.IstioNamespace},
			"spec":       spec,
		})
	}
	name := "helm-releases.yaml"
	l.file(path.Join(dir, name), "", objs)
	return name
}

// fluxKustomizations are the Flux Kustomizations that apply a cluster's
// stages in order: each waits for the one before it to be ready.
func fluxKustomizations(fx *fleet.Flux, cluster string, stages []string) []mesh.Object {
	var objs []mesh.Object
	for i, s := range stages {
		spec := map[string]any{
			"interval":  fx.Interval,
			"path":      strings.TrimSuffix(fx.Path, "/") + "/" + path.Join(ClusterDir(cluster), s),
			"prune":     true,
			"wait":      true, // ready means every object is: HelmReleases installed, gateways rolled out
			"timeout":   "10m",
			"sourceRef": map[string]any{"kind": fx.SourceRef.Kind, "name": fx.SourceRef.Name, "namespace": fx.SourceRef.Namespace},
		}
		if i > 0 {
			spec["dependsOn"] = []any{map[string]any{"name": fluxName(cluster, stages[i-1])}}
		}
		objs = append(objs, mesh.Object{
			"apiVersion": "kustomize.toolkit.fluxcd.io/v1",
			"kind":       "Kustomization",
			"metadata":   map[string]any{"name": fluxName(cluster, s), "namespace": fx.SourceRef.Namespace},
			"spec":       spec,
		})
	}
	return objs
}

func fluxName(cluster, stage string) string { return "mesh-" + cluster + "-" + stage }

// webhookDifferences are the fields istiod patches into webhook
// configurations at run time, on remotes too; Argo CD must neither show
// them as drift nor revert them.
var webhookDifferences = []any{
	map[string]any{
		"group":             "admissionregistration.k8s.io",
		"kind":              "ValidatingWebhookConfiguration",
		"jqPathExpressions": []any{".webhooks[]?.failurePolicy", ".webhooks[]?.clientConfig.caBundle"},
	},
	map[string]any{
		"group":             "admissionregistration.k8s.io",
		"kind":              "MutatingWebhookConfiguration",
		"jqPathExpressions": []any{".webhooks[]?.clientConfig.caBundle"},
	},
}

// argoApplications are the Argo CD Applications of one cluster: one per
// stage directory and one per Helm chart, ordered by sync waves. They
// belong in an app-of-apps that Argo CD syncs wave by wave.
func argoApplications(a *fleet.ArgoCD, c mesh.Cluster, stages []string) []mesh.Object {
	app := func(name string, wave int, source map[string]any, ignore []any) mesh.Object {
		spec := map[string]any{
			"project":     a.Project,
			"source":      source,
			"destination": map[string]any{"name": c.Name, "namespace": mesh.IstioNamespace},
			"syncPolicy": map[string]any{
				"automated":   map[string]any{"prune": true, "selfHeal": true},
				"syncOptions": []any{"RespectIgnoreDifferences=true", "ServerSideApply=true"},
			},
		}
		if ignore != nil {
			spec["ignoreDifferences"] = ignore
		}
		return mesh.Object{
			"apiVersion": "argoproj.io/v1alpha1",
			"kind":       "Application",
			"metadata": map[string]any{
				"name":        "mesh-" + c.Name + "-" + name,
				"namespace":   a.Namespace,
				"annotations": map[string]any{syncWave: fmt.Sprint(wave)},
			},
			"spec": spec,
		}
	}
	var objs []mesh.Object
	for _, s := range c.Stages {
		if slices.Contains(stages, s.Name) {
			objs = append(objs, app(s.Name, stageWave(s.Name), map[string]any{
				"repoURL":        a.RepoURL,
				"targetRevision": a.TargetRevision,
				"path":           strings.TrimSuffix(a.Path, "/") + "/" + path.Join(ClusterDir(c.Name), s.Name),
			}, nil))
		}
		for i, ch := range s.Charts {
			var ignore []any
			if ch.Chart != "gateway" {
				ignore = webhookDifferences
			}
			objs = append(objs, app(ch.Release, stageWave(s.Name)+i, map[string]any{
				"repoURL":        ch.Repo,
				"chart":          ch.Chart,
				"targetRevision": ch.Version,
				"helm":           map[string]any{"releaseName": ch.Release, "valuesObject": ch.Values},
			}, ignore))
		}
	}
	return objs
}
