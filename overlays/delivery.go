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

// argoStageOrder is the order of the stages in Argo CD's sync waves. One
// app-of-apps holds every cluster's Applications and syncs them wave by
// wave across clusters, so a wave waits for every cluster: the primaries'
// remote secrets come before any gateways, whose pods on a remote need the
// primary to hold the remote's secret. (Flux applies each cluster's
// stages on their own, in mesh.Stages order.)
var argoStageOrder = []string{mesh.StageNamespace, mesh.StageControlPlane, mesh.StageRemoteSecrets, mesh.StageGateways, mesh.StageExtensions}

// stageWave is the Argo CD sync wave of a stage, two waves apart so that
// the charts of a stage (base, then istiod) fit in between.
func stageWave(stage string) int { return 2 * slices.Index(argoStageOrder, stage) }

// fluxHelmReleases writes the Flux objects that run a stage's charts into
// dir and returns the file's name. Releases of a stage depend on each
// other in order (istiod waits for base).
func (l *layout) fluxHelmReleases(dir string, s mesh.Stage, withRepo bool, repoNamespace string) string {
	var objs []mesh.Object
	if withRepo {
		spec := map[string]any{"interval": "1h", "url": s.Charts[0].Repo}
		if strings.HasPrefix(s.Charts[0].Repo, "oci://") {
			spec["type"] = "oci"
		}
		objs = append(objs, mesh.Object{
			"apiVersion": "source.toolkit.fluxcd.io/v1",
			"kind":       "HelmRepository",
			"metadata":   map[string]any{"name": helmRepository, "namespace": repoNamespace},
			"spec":       spec,
		})
	}
	for i, ch := range s.Charts {
		// The HelmRepository is in the namespace of the cluster's first
		// release; name it for releases in another namespace.
		repoRef := map[string]any{"kind": "HelmRepository", "name": helmRepository}
		if ch.Namespace != repoNamespace {
			repoRef["namespace"] = repoNamespace
		}
		spec := map[string]any{
			"interval":    "10m",
			"releaseName": ch.Release,
			"chart": map[string]any{"spec": map[string]any{
				"chart":     ch.Chart,
				"version":   ch.Version,
				"sourceRef": repoRef,
			}},
			"values": ch.Values,
			// Retry a failed install or upgrade without end: a remote's
			// east-west gateway becomes ready only once its primary
			// attached the remote, which may come later.
			"install": map[string]any{"remediation": map[string]any{"retries": -1}},
			"upgrade": map[string]any{"remediation": map[string]any{"retries": -1}},
		}
		if i > 0 {
			// Revisions side by side (istiod-<revision>) each wait for
			// base, not for one another: a canary that fails does not
			// hold the running revision back.
			j := i - 1
			for j > 0 && sideBySide(ch) && sideBySide(s.Charts[j]) {
				j--
			}
			dep := map[string]any{"name": s.Charts[j].Release}
			if prev := s.Charts[j].Namespace; prev != ch.Namespace {
				dep["namespace"] = prev
			}
			spec["dependsOn"] = []any{dep}
		}
		objs = append(objs, mesh.Object{
			"apiVersion": "helm.toolkit.fluxcd.io/v2",
			"kind":       "HelmRelease",
			"metadata":   map[string]any{"name": ch.Release, "namespace": ch.Namespace},
			"spec":       spec,
		})
	}
	name := "helm-releases.yaml"
	l.file(path.Join(dir, name), "", objs)
	return name
}

// fluxKustomizations are the Flux Kustomizations that apply a cluster's
// stages in order: each waits for the one before it to be ready. A stage
// that waits for another cluster (a remote's gateways wait for the
// primary's attach) fails its health check after the timeout and is tried
// again every retryInterval until it succeeds.
func fluxKustomizations(fx *fleet.Flux, c mesh.Cluster, stages []string) []mesh.Object {
	var objs []mesh.Object
	for i, s := range stages {
		spec := map[string]any{
			"interval":      fx.Interval,
			"retryInterval": "1m",
			"path":          strings.TrimSuffix(fx.Path, "/") + "/" + path.Join(ClusterDir(c.Name), s),
			"prune":         true,
			"wait":          true, // ready means every object is: HelmReleases installed, gateways rolled out
			"timeout":       "10m",
			"sourceRef":     map[string]any{"kind": fx.SourceRef.Kind, "name": fx.SourceRef.Name, "namespace": fx.SourceRef.Namespace},
		}
		if i > 0 {
			spec["dependsOn"] = []any{map[string]any{"name": fluxName(c.Name, stages[i-1])}}
		}
		if st := c.Stage(s); st != nil && waitsForKeys(st) {
			// wait: true skips the health of objects Flux did not apply
			// this time, and an IfNotPresent placeholder that exists is
			// not applied again: the gate would hold only once. Listed
			// health checks are checked every time.
			spec["wait"] = false
			spec["healthChecks"] = healthChecks(st)
			spec["healthCheckExprs"] = []any{secretKeysHealthCheck}
		}
		objs = append(objs, mesh.Object{
			"apiVersion": "kustomize.toolkit.fluxcd.io/v1",
			"kind":       "Kustomization",
			"metadata":   map[string]any{"name": fluxName(c.Name, s), "namespace": fx.SourceRef.Namespace},
			"spec":       spec,
		})
	}
	return objs
}

// healthChecks lists every object of a stage for Flux to check.
func healthChecks(s *mesh.Stage) []any {
	var refs []any
	for _, f := range s.Files {
		for _, o := range f.Objects {
			md, _ := o["metadata"].(map[string]any)
			ref := map[string]any{"apiVersion": o["apiVersion"], "kind": o["kind"], "name": md["name"]}
			if ns, ok := md["namespace"]; ok {
				ref["namespace"] = ns
			}
			refs = append(refs, ref)
		}
	}
	return refs
}

// waitsForKeys reports whether a stage holds a Secret that is ready only
// once it holds its keys.
func waitsForKeys(s *mesh.Stage) bool {
	for _, f := range s.Files {
		for _, o := range f.Objects {
			if o["kind"] != "Secret" {
				continue
			}
			if a, _ := o["metadata"].(map[string]any)["annotations"].(map[string]any); a[mesh.AnnotationWaitForKeys] != nil {
				return true
			}
		}
	}
	return false
}

// secretKeysHealthCheck is the Flux health check of a Secret that carries
// mesh.AnnotationWaitForKeys: it is current once it holds every key of
// one of the listed sets, each non-empty. Other Secrets are current as
// they are. Until an operator fills the Secret in, it has no data and the
// expression cannot evaluate, which Flux reports as not ready.
var secretKeysHealthCheck = map[string]any{
	"apiVersion": "v1",
	"kind":       "Secret",
	"current": "!has(metadata.annotations) || !('" + mesh.AnnotationWaitForKeys + "' in metadata.annotations) || " +
		"metadata.annotations['" + mesh.AnnotationWaitForKeys + "'].split('|').exists(keys, keys.split(',').all(k, k in data && data[k] != ''))",
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

// argoRetry retries a failed sync without end, backing off to 5 minutes:
// what a remote needs from its primary may come later.
var argoRetry = map[string]any{
	"limit":   -1,
	"backoff": map[string]any{"duration": "10s", "factor": 2, "maxDuration": "5m"},
}

// ArgoCDHealthFile is the argocd-cm patch that the Argo CD installation
// needs for the app-of-apps to keep meshfleet's order: the Application
// health check (without it Argo CD does not wait for a wave's
// Applications) and the Secret health check that holds the control plane
// back until cacerts is filled in.
const ArgoCDHealthFile = "argocd-cm-health-checks.yaml"

// argoHealthChecks is the argocd-cm ConfigMap patch of [ArgoCDHealthFile].
func argoHealthChecks(namespace string) mesh.Object {
	return mesh.Object{
		"apiVersion": "v1",
		"kind":       "ConfigMap",
		"metadata": map[string]any{
			"name":      "argocd-cm",
			"namespace": namespace,
			"labels":    map[string]any{"app.kubernetes.io/name": "argocd-cm", "app.kubernetes.io/part-of": "argocd"},
		},
		"data": map[string]any{
			"resource.customizations.health.argoproj.io_Application": argoApplicationHealth,
			"resource.customizations.health.Secret":                  argoSecretHealth,
		},
	}
}

// argoApplicationHealth is the Application health check Argo CD's
// documentation gives for app-of-apps with sync waves.
const argoApplicationHealth = `hs = {}
hs.status = "Progressing"
hs.message = ""
if obj.status ~= nil then
  if obj.status.health ~= nil then
    hs.status = obj.status.health.status
    if obj.status.health.message ~= nil then
      hs.message = obj.status.health.message
    end
  end
end
return hs
`

// argoSecretHealth: a Secret with the meshfleet.dev/wait-for-keys
// annotation (the cacerts placeholder, an external control plane's
// istio-kubeconfig) is Progressing until it holds every key of one of the
// layouts the annotation names, each non-empty; every other Secret is
// Healthy. Argo CD runs health checks without Lua's string library, so
// the key sets are spelt out here, per annotation value, rather than read
// from the annotation.
var argoSecretHealth = `hs = {status = "Healthy", message = ""}
if obj.metadata.annotations == nil or obj.metadata.annotations["` + mesh.AnnotationWaitForKeys + `"] == nil then
  return hs
end
local wanted = {
` + luaWanted(mesh.WaitForKeySets) + `}
local w = wanted[obj.metadata.annotations["` + mesh.AnnotationWaitForKeys + `"]]
if w == nil then
  w = wanted["` + mesh.CAKeySets + `"]
end
for _, keys in ipairs(w.layouts) do
  local complete = true
  for _, k in ipairs(keys) do
    if obj.data == nil or obj.data[k] == nil or obj.data[k] == "" then
      complete = false
    end
  end
  if complete then
    return hs
  end
end
hs.status = "Progressing"
hs.message = w.message
return hs
`

// luaWanted writes, per annotation value, its layouts and the message
// while they are incomplete.
func luaWanted(values []string) string {
	var b strings.Builder
	for _, v := range values {
		fmt.Fprintf(&b, "  [%q] = {layouts = {%s}, message = %q},\n", v, luaKeySets(v), "waiting for "+strings.ReplaceAll(v, "|", " or ")+" to be filled in")
	}
	return b.String()
}

// luaKeySets writes "a,b|c" as the Lua table entries {"a", "b"}, {"c"}.
func luaKeySets(sets string) string {
	var out []string
	for set := range strings.SplitSeq(sets, "|") {
		var keys []string
		for k := range strings.SplitSeq(set, ",") {
			keys = append(keys, fmt.Sprintf("%q", k))
		}
		out = append(out, "{"+strings.Join(keys, ", ")+"}")
	}
	return strings.Join(out, ", ")
}

// argoApplications are the Argo CD Applications of one cluster: one per
// stage directory and one per Helm chart, ordered by sync waves. They
// belong in an app-of-apps that Argo CD syncs wave by wave.
func argoApplications(a *fleet.ArgoCD, c mesh.Cluster, stages []string) []mesh.Object {
	app := func(name, namespace string, wave int, source map[string]any, ignore []any) mesh.Object {
		spec := map[string]any{
			"project":     a.Project,
			"source":      source,
			"destination": map[string]any{"name": c.Name, "namespace": namespace},
			"syncPolicy": map[string]any{
				"automated":   map[string]any{"prune": true, "selfHeal": true},
				"syncOptions": []any{"RespectIgnoreDifferences=true", "ServerSideApply=true"},
				"retry":       argoRetry,
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
			var ignore []any
			if hasWebhooks(s) {
				ignore = webhookDifferences // revision tags' webhooks
			}
			objs = append(objs, app(s.Name, mesh.IstioNamespace, stageWave(s.Name), map[string]any{
				"repoURL":        a.RepoURL,
				"targetRevision": a.TargetRevision,
				"path":           strings.TrimSuffix(a.Path, "/") + "/" + path.Join(ClusterDir(c.Name), s.Name),
			}, ignore))
		}
		for i, ch := range s.Charts {
			var ignore []any
			if ch.Chart != "gateway" {
				ignore = webhookDifferences
			}
			objs = append(objs, app(ch.Release, ch.Namespace, stageWave(s.Name)+i, map[string]any{
				"repoURL":        ch.Repo,
				"chart":          ch.Chart,
				"targetRevision": ch.Version,
				"helm":           map[string]any{"releaseName": ch.Release, "valuesObject": ch.Values},
			}, ignore))
		}
	}
	return objs
}

// sideBySide reports whether ch is one of the istiod releases of
// revisions that run side by side.
func sideBySide(ch mesh.Chart) bool {
	return ch.Chart == "istiod" && strings.HasPrefix(ch.Release, mesh.ReleaseIstiod+"-")
}

// hasWebhooks reports whether a stage applies webhook configurations,
// which istiod patches at run time.
func hasWebhooks(s mesh.Stage) bool {
	for _, f := range s.Files {
		for _, o := range f.Objects {
			if k := o["kind"]; k == "MutatingWebhookConfiguration" || k == "ValidatingWebhookConfiguration" {
				return true
			}
		}
	}
	return false
}
