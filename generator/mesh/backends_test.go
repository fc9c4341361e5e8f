package mesh_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/generator/install/helm"
	"github.com/meshfleet/meshfleet/generator/mesh"
	"github.com/meshfleet/meshfleet/generator/plan"
)

// identity is what Istio matches across clusters, read back from whatever
// an installer writes.
type identity struct {
	meshID, clusterName, network, trustDomain, revision, profile any
	externalIstiod, remotePilotAddress, injectionPath            any
	configCluster                                                any
	istioNamespace, injectionURL, validationURL, caAddress       any
	externalEnv, discoveryAddress                                any
	gatewayNetwork, gatewayType, gatewayIP                       any
	// Side by side: the revision's release and tags; and the settings
	// of spec.istio.values/meshConfig and the cluster's.
	version, tags, settings any
	// The east-west gateway's size: replicas, autoscaler, disruption
	// budget, resources.
	gatewaySize any
}

// gatewaySize reads the east-west gateway's size back from what an
// installer wrote.
func gatewaySize(installer string, c mesh.Cluster) any {
	var replicas, minR, maxR, cpu, minAvailable, resources any
	switch installer {
	case fleet.InstallerIstioctl:
		gw := objects(c, "eastwest-gateway.yaml")[0]
		k8s := get(get(gw, "spec", "components").(map[string]any)["ingressGateways"].([]any)[0], "k8s")
		replicas, resources = get(k8s, "replicaCount"), get(k8s, "resources")
		minR, maxR = get(k8s, "hpaSpec", "minReplicas"), get(k8s, "hpaSpec", "maxReplicas")
		if m, ok := get(k8s, "hpaSpec", "metrics").([]any); ok {
			cpu = get(m[0], "resource", "target", "averageUtilization")
		}
		minAvailable = get(k8s, "podDisruptionBudget", "minAvailable")
	case fleet.InstallerHelm:
		for _, s := range c.Stages {
			for _, ch := range s.Charts {
				if ch.Release == mesh.ReleaseEastWest {
					replicas, resources = ch.Values["replicaCount"], ch.Values["resources"]
					if get(ch.Values, "autoscaling", "enabled") == true {
						minR, maxR = get(ch.Values, "autoscaling", "minReplicas"), get(ch.Values, "autoscaling", "maxReplicas")
						cpu = get(ch.Values, "autoscaling", "targetCPUUtilizationPercentage")
					}
					minAvailable = get(ch.Values, "podDisruptionBudget", "minAvailable")
				}
			}
		}
	case fleet.InstallerSail:
		for _, o := range objects(c, "eastwest-gateway.yaml") {
			switch o["kind"] {
			case "Deployment":
				replicas = get(o, "spec", "replicas")
				resources = get(get(o, "spec", "template", "spec", "containers").([]any)[0], "resources")
			case "HorizontalPodAutoscaler":
				minR, maxR = get(o, "spec", "minReplicas"), get(o, "spec", "maxReplicas")
				cpu = get(get(o, "spec", "metrics").([]any)[0], "resource", "target", "averageUtilization")
			case "PodDisruptionBudget":
				minAvailable = get(o, "spec", "minAvailable")
			}
		}
	}
	return fmt.Sprint(replicas, minR, maxR, cpu, minAvailable, resources)
}

// settings reads back the fleet's and cluster's settings of the examples
// (pilot resources and env, meshConfig access log) from a values tree and
// a meshConfig.
func settings(values, meshConfig any) any {
	return fmt.Sprint(get(values, "pilot", "resources"), get(values, "pilot", "env", "PILOT_ENABLE_STATUS"),
		get(meshConfig, "accessLogFile"), get(meshConfig, "accessLogEncoding"))
}

func fromValues(values map[string]any) identity {
	return identity{
		meshID:             get(values, "global", "meshID"),
		clusterName:        get(values, "global", "multiCluster", "clusterName"),
		network:            get(values, "global", "network"),
		externalIstiod:     get(values, "global", "externalIstiod"),
		remotePilotAddress: get(values, "global", "remotePilotAddress"),
		injectionPath:      get(values, "istiodRemote", "injectionPath"),
		configCluster:      get(values, "global", "configCluster"),
		istioNamespace:     get(values, "global", "istioNamespace"),
		injectionURL:       get(values, "istiodRemote", "injectionURL"),
		validationURL:      get(values, "base", "validationURL"),
		caAddress:          get(values, "global", "caAddress"),
		externalEnv:        get(values, "pilot", "env", "EXTERNAL_ISTIOD"),
	}
}

func read(t *testing.T, installer string, c mesh.Cluster, suffix string) identity {
	t.Helper()
	var id identity
	switch installer {
	case fleet.InstallerIstioctl:
		file := "controlplane" + suffix + ".yaml"
		if objects(c, "external-istiod.yaml") != nil {
			file = "external-istiod.yaml" // the external istiod, not the cluster's own
		}
		cp := objects(c, file)[0]
		id = fromValues(get(cp, "spec", "values").(map[string]any))
		id.trustDomain = get(cp, "spec", "meshConfig", "trustDomain")
		id.discoveryAddress = get(cp, "spec", "meshConfig", "defaultConfig", "discoveryAddress")
		id.revision = get(cp, "spec", "revision")
		id.profile = get(cp, "spec", "profile")
		if id.profile == "empty" || suffix != "" && id.profile == "minimal" {
			id.profile = nil // istiod only, as the istiod chart and Sail's Istio
		}
		id.version = get(cp, "spec", "tag")
		id.settings = settings(get(cp, "spec", "values"), get(cp, "spec", "meshConfig"))
		var tags []any
		for _, o := range objects(c, "revision-tags"+suffix+".yaml") {
			if o["kind"] == "MutatingWebhookConfiguration" {
				tags = append(tags, get(o, "metadata", "labels", "istio.io/tag"))
			}
		}
		id.tags = fmt.Sprint(tags)
		if gw := objects(c, "eastwest-gateway.yaml"); gw != nil {
			ig := get(gw[0], "spec", "components").(map[string]any)["ingressGateways"].([]any)[0]
			id.gatewayNetwork = get(ig, "label", "topology.istio.io/network")
		}
	case fleet.InstallerHelm:
		var gatewayNetwork any
		for _, s := range c.Stages {
			for _, ch := range s.Charts {
				switch ch.Release {
				case mesh.ReleaseIstiod + suffix, helm.ReleaseExternalIstiod:
					if ch.Release == mesh.ReleaseIstiod && hasChart(c, helm.ReleaseExternalIstiod) {
						continue
					}
					id = fromValues(ch.Values)
					id.discoveryAddress = get(ch.Values, "meshConfig", "defaultConfig", "discoveryAddress")
					id.trustDomain = get(ch.Values, "meshConfig", "trustDomain")
					id.revision = ch.Values["revision"]
					id.profile = ch.Values["profile"]
					id.version = ch.Version
					id.settings = settings(ch.Values, ch.Values["meshConfig"])
					tags, _ := ch.Values["revisionTags"].([]any)
					id.tags = fmt.Sprint(tags)
				case mesh.ReleaseEastWest:
					gatewayNetwork = ch.Values["networkGateway"]
				}
			}
		}
		id.gatewayNetwork = gatewayNetwork
	case fleet.InstallerSail:
		file := "istio" + suffix + ".yaml"
		if objects(c, "external-istiod.yaml") != nil {
			file = "external-istiod.yaml"
		}
		istio := objects(c, file)[0]
		id = fromValues(get(istio, "spec", "values").(map[string]any))
		id.trustDomain = get(istio, "spec", "values", "meshConfig", "trustDomain")
		id.discoveryAddress = get(istio, "spec", "values", "meshConfig", "defaultConfig", "discoveryAddress")
		// Sail names a revision after its Istio; the external control
		// plane's Istio resources, on both sides, are external-istiod.
		if name := get(istio, "metadata", "name"); name != "default" && name != fleet.ExternalIstiodNamespace {
			id.revision = name
		}
		id.profile = get(istio, "spec", "profile")
		if id.profile == "empty" {
			id.profile = nil
		}
		id.version = strings.TrimPrefix(get(istio, "spec", "version").(string), "v")
		id.settings = settings(get(istio, "spec", "values"), get(istio, "spec", "values", "meshConfig"))
		var tags []any
		if suffix != "" {
			// IstioRevisionTags, and on a remote the tags' webhooks.
			for _, o := range objects(c, file)[1:] {
				switch o["kind"] {
				case "IstioRevisionTag":
					tags = append(tags, get(o, "metadata", "name"))
				case "MutatingWebhookConfiguration":
					tags = append(tags, get(o, "metadata", "labels", "istio.io/tag"))
				}
			}
		}
		id.tags = fmt.Sprint(tags)
		for _, o := range objects(c, "eastwest-gateway.yaml") {
			if o["kind"] == "Service" {
				id.gatewayNetwork = get(o, "metadata", "labels", "topology.istio.io/network")
			}
		}
	}
	if objects(c, "eastwest-gateway.yaml") != nil || installer == fleet.InstallerHelm && hasChart(c, mesh.ReleaseEastWest) {
		id.gatewayType, id.gatewayIP, _ = gatewayService(t, installer, c)
		id.gatewaySize = gatewaySize(installer, c)
	}
	return id
}

func hasChart(c mesh.Cluster, release string) bool {
	for _, s := range c.Stages {
		for _, ch := range s.Charts {
			if ch.Release == release {
				return true
			}
		}
	}
	return false
}

// One model feeds every installer: for every example fleet, IstioOperator,
// Helm and Sail output carry the same identifiers for every cluster, the
// same remote (no global.configCluster in any of them) and the same
// east-west gateway Service.
func TestInstallersAgree(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*/fleet.yaml")
	if len(files) < 5 {
		t.Fatalf("found %d example fleets", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(filepath.Dir(file)), func(t *testing.T) {
			want := map[string]identity{}
			for _, installer := range []string{fleet.InstallerIstioctl, fleet.InstallerHelm, fleet.InstallerSail} {
				f, err := fleet.Load(file)
				if err != nil {
					t.Fatal(err)
				}
				f.Spec.Installer = installer
				for _, c := range mesh.Build(f).Clusters {
					for _, cp := range c.Needs.ControlPlanes {
						if cp.Role == plan.RoleLocal {
							continue
						}
						got := read(t, installer, c, cp.Suffix)
						if cp.Suffix != "" && (got.version != cp.Version || got.revision != cp.Revision) {
							t.Errorf("%s %s: revision %v runs %v; want %s %s", installer, c.Name, got.revision, got.version, cp.Revision, cp.Version)
						}
						// An external istiod takes its config cluster's name
						// and network.
						name, network := c.Name, c.Network
						if c.Role == fleet.ExternalControlPlane {
							cc := f.ConfigClusterOf(c.Cluster)
							name, network = cc.Name, cc.Network
						}
						if got.meshID != f.Spec.Mesh.ID || got.clusterName != name || got.network != network {
							t.Errorf("%s %s: identity %+v does not match the fleet", installer, c.Name, got)
						}
						if w, ok := want[c.Name+cp.Suffix]; !ok {
							want[c.Name+cp.Suffix] = got
						} else if got != w {
							t.Errorf("cluster %s%s: %s writes %+v, istioctl %+v", c.Name, cp.Suffix, installer, got, w)
						}
					}
				}
			}
		})
	}
}
