package overlays

import (
	"fmt"
	"strings"

	"github.com/meshfleet/meshfleet/generator/fleet"
)

// Host is a plugin host that applies what meshfleet prints for one
// cluster as it is, with no rendered tree around it.
type Host string

// The plugin hosts.
const (
	ArgoCDPlugin Host = "the Argo CD plugin"
	KRMFunction  Host = "the KRM function"
)

// ClusterManifests renders f and returns what `kustomize build` prints for
// the overlay of one cluster, for a plugin host to apply: every object the
// cluster applies, each with the Argo CD sync wave of its stage (the host
// applies them all at once, and Argo CD needs the waves to keep Istio's
// order), whether or not the fleet has delivery.argocd. Only that overlay
// is built, which keeps the plugin modes fast.
//
// A fleet whose installer puts the control plane anywhere but into that
// overlay is refused (see [checkPluginInstaller]).
func ClusterManifests(f *fleet.Fleet, cluster string, host Host) ([]byte, error) {
	if f.Cluster(cluster) == nil {
		names := make([]string, len(f.Clusters))
		for i, c := range f.Clusters {
			names[i] = c.Name
		}
		return nil, fmt.Errorf("cluster %q is not in fleet %s (it has %s)", cluster, f.Metadata.Name, strings.Join(names, ", "))
	}
	if err := checkPluginInstaller(f, cluster, host); err != nil {
		return nil, err
	}
	p, err := plan(f)
	if err != nil {
		return nil, err
	}
	// Only this cluster's overlay is built: lay out no other (a cluster's
	// files depend on its own plan and the shared bases alone).
	one := *p
	one.Clusters = nil
	for _, c := range p.Clusters {
		if c.Name == cluster {
			one.Clusters = append(one.Clusters, c)
		}
	}
	t, err := layoutWith(&one, true)
	if err != nil {
		return nil, err
	}
	return Build(t, ClusterDir(cluster))
}

// checkPluginInstaller refuses the installers whose control plane a plugin
// host would not apply. The host applies one cluster's overlay and
// nothing else; printing it without istiod and saying nothing would leave
// a mesh that never comes up. Only Sail puts the control plane into the
// overlay as an object that something in the cluster (the Sail Operator)
// acts on:
//
//   - istioctl: the IstioOperator files under istioctl/ are inputs for
//     `istioctl install`, not objects; applied, nothing acts on them.
//   - helm with delivery.argocd: the charts are Applications of the
//     app-of-apps in argocd/, outside the cluster's overlay.
//   - helm with delivery.flux: the overlay holds Flux HelmReleases, which
//     nothing installs in a cluster that Argo CD (or kubectl) applies to.
//
// No mechanism of the hosts would install the control plane otherwise: a
// plugin runs offline (no chart downloads) and its output goes to the one
// destination cluster (Applications for the Argo CD cluster cannot ride
// along).
func checkPluginInstaller(f *fleet.Fleet, cluster string, host Host) error {
	installer := f.Spec.Installer
	var why string
	switch {
	case installer == fleet.InstallerSail:
		return nil
	case installer == fleet.InstallerIstioctl:
		why = "renders the control plane as istioctl input, which " + string(host) + " cannot apply"
	case installer == fleet.InstallerHelm && f.Spec.Delivery.ArgoCD != nil:
		why = "runs the control plane's charts as Applications of the argocd/ app-of-apps, which " + string(host) + " does not print"
	case installer == fleet.InstallerHelm:
		why = "renders the control plane as Flux HelmReleases, which only Flux installs, not " + string(host)
	default:
		why = "is not one " + string(host) + " knows"
	}
	at := []string{"spec", "installer"}
	if !f.Written(at...) {
		installer += " (the default)"
	}
	return f.Errorf(at, "installer %s %s: cluster %s would get no control plane; use installer sail, whose Istio resource the Sail Operator installs", installer, why, cluster)
}
