package fleet

import (
	"slices"
	"strconv"
	"strings"
)

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkRevisions: the revisions, tags and gateway revisions of every
// cluster name control planes that run there.
//
// Removing a revision is refused while a tag in any cluster still points
// at it: the namespaces labelled with the tag would get their sidecars
// from an istiod that is gone (new pods fail injection, running ones
// lose their control plane when it is deleted). The tag moves first, the
// revision goes in a later step.
func checkRevisions(f *Fleet, p *problems) {
	in := f.Spec.Istio
	if !f.MultiRevision() {
		if len(in.Tags) > 0 {
			p.add(field{"spec", "istio", "tags"}, "revision tags need spec.istio.revisions: with one control plane it is the default one")
		}
		if in.GatewayRevision != "" {
			p.add(field{"spec", "istio", "gatewayRevision"}, "gatewayRevision needs spec.istio.revisions: with one control plane the gateways run its revision")
		}
		for _, c := range f.Clusters {
			if c.Istio != nil && (c.Istio.Revisions != nil || len(c.Istio.Tags) > 0 || c.Istio.GatewayRevision != "") {
				p.add(clusterField(c, "istio"), "revisions, tags and gatewayRevision of a cluster need spec.istio.revisions: the fleet runs one control plane")
			}
		}
		return
	}
	if f.External() {
		p.add(field{"spec", "istio", "revisions"}, "revisions side by side are not supported with an external control plane yet: give spec.istio.version (and revision)")
		return
	}
	for _, r := range sortedKeys(in.Revisions) {
		if !dnsLabel.MatchString(r) {
			p.addKey(field{"spec", "istio", "revisions", r}, "revision name %q is not a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters): it names istiod-%s", r, r)
		}
	}
	for _, t := range sortedKeys(in.Tags) {
		if !dnsLabel.MatchString(t) {
			p.addKey(field{"spec", "istio", "tags", t}, "tag name %q is not a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters): namespaces select it with istio.io/rev", t)
		}
		if _, ok := in.Revisions[t]; ok {
			p.addKey(field{"spec", "istio", "tags", t}, "tag %s has the name of a revision: istio.io/rev=%s would select both", t, t)
		}
	}
	// A fleet-wide tag or gateway revision that fails in several
	// clusters is reported once, naming them.
	var removed, gateways = map[string][]string{}, []string{}
	defer func() {
		for _, t := range sortedKeys(removed) {
			rev := in.Tags[t]
			p.add(field{"spec", "istio", "tags", t}, "tag %s points at revision %s, which is not in spec.istio.revisions, and %s still take%s it: the workloads it injects would lose their control plane; move the tag to a running revision first, and remove %s in a later step", t, rev, strings.Join(removed[t], ", "), map[bool]string{true: "", false: "s"}[len(removed[t]) > 1], rev)
		}
		if len(gateways) > 0 {
			p.add(field{"spec", "istio", "gatewayRevision"}, "the east-west gateways of %s would run with %s, which is neither a revision that runs there nor one of their tags", strings.Join(gateways, ", "), in.GatewayRevision)
		}
	}()
	for _, c := range f.Clusters {
		at := clusterField(c, "istio")
		if c.Role == ExternalControlPlane || f.ExternalControlPlaneOf(c) != nil {
			if c.Istio != nil && (c.Istio.Revisions != nil || len(c.Istio.Tags) > 0) {
				p.add(at, "an external control plane and its remotes run every revision of spec.istio.revisions")
			}
			continue
		}
		if c.Istio != nil && c.Istio.Revisions != nil {
			if len(c.Istio.Revisions) == 0 {
				p.add(at.dot("revisions"), "cluster %s runs no revision: list at least one of %s", c.Name, strings.Join(sortedKeys(in.Revisions), ", "))
			}
			for i, r := range c.Istio.Revisions {
				if _, ok := in.Revisions[r]; !ok {
					p.add(at.dot("revisions", strconv.Itoa(i)), "%q is not in spec.istio.revisions (%s)", r, strings.Join(sortedKeys(in.Revisions), ", "))
				}
			}
		}
		runs := f.RevisionsOf(c)
		if c.Role == Remote {
			checkRemoteRevisions(f, c, runs, p)
		}
		tags := f.TagsOf(c)
		for _, t := range sortedKeys(tags) {
			rev := tags[t]
			tagAt := field{"spec", "istio", "tags", t}
			if c.Istio != nil && c.Istio.Tags[t] != "" {
				tagAt = at.dot("tags", t)
			}
			switch {
			case !hasKey(in.Revisions, rev) && tagAt[1] == "istio":
				removed[t] = append(removed[t], c.Name)
			case !hasKey(in.Revisions, rev):
				p.add(tagAt, "tag %s of cluster %s points at revision %s, which is not in spec.istio.revisions: the workloads it injects would lose their control plane; move the tag to a running revision first, and remove %s in a later step", t, c.Name, rev, rev)
			case !slices.Contains(runs, rev):
				p.add(tagAt, "tag %s of cluster %s points at revision %s, which does not run there (it runs %s)", t, c.Name, rev, strings.Join(runs, ", "))
			}
			if _, ok := in.Revisions[t]; ok && tagAt[1] == "clusters" {
				p.addKey(tagAt, "tag %s has the name of a revision: istio.io/rev=%s would select both", t, t)
			}
		}
		if f.NeedsEastWestGateway(c) && !checkGatewayRevision(f, c, runs, tags, p) {
			gateways = append(gateways, c.Name)
		}
	}
}

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}

// checkRemoteRevisions: a remote's webhooks and istiod Services point at
// its primary's istiod of the same revision.
func checkRemoteRevisions(f *Fleet, c *Cluster, runs []string, p *problems) {
	cp := f.Cluster(c.ControlPlane)
	if cp == nil || cp.Role != Primary {
		return
	}
	primary := f.RevisionsOf(cp)
	at := clusterField(c, "istio", "revisions")
	if c.Istio == nil || c.Istio.Revisions == nil {
		at = clusterField(c)
	}
	for _, r := range runs {
		if !slices.Contains(primary, r) {
			p.add(at, "remote %s runs revision %s, which its primary %s does not run (it runs %s): the remote's webhooks and istiod Service would point at an istiod that is not there", c.Name, r, cp.Name, strings.Join(primary, ", "))
		}
	}
}

// checkGatewayRevision: where several revisions run, the east-west
// gateway's is said explicitly, and names a revision or tag that runs. It
// returns false when the fleet's gatewayRevision fails in c, which the
// caller reports for all clusters at once.
func checkGatewayRevision(f *Fleet, c *Cluster, runs []string, tags map[string]string, p *problems) bool {
	gw := f.GatewayRevisionOf(c)
	at := field{"spec", "istio", "gatewayRevision"}
	if c.Istio != nil && c.Istio.GatewayRevision != "" {
		at = clusterField(c, "istio", "gatewayRevision")
	}
	switch {
	case gw == "" && len(runs) > 1:
		p.add(clusterField(c), "cluster %s runs revisions %s and an east-west gateway: say which one the gateway runs with (spec.istio.gatewayRevision or the cluster's istio.gatewayRevision; a tag lets it follow the tag)", c.Name, strings.Join(runs, ", "))
	case gw == "":
	case slices.Contains(runs, gw):
	case tags[gw] != "":
		// A tag: the tag's own rule says whether its revision runs.
	case at[1] == "istio":
		return false
	default:
		p.add(at, "the east-west gateway of cluster %s runs with %s, which is neither a revision that runs there (%s) nor one of its tags", c.Name, gw, strings.Join(runs, ", "))
	}
	return true
}

// owned are the settings meshfleet sets itself, and the fleet field that
// sets each one.
var ownedValues = map[string]string{
	"global.meshID":                   "spec.mesh.id",
	"global.multiCluster.clusterName": "the cluster's name",
	"global.network":                  "the cluster's network",
	"global.remotePilotAddress":       "the primary's eastWestGateway.address",
	"global.externalIstiod":           "the clusters' roles",
	"global.configCluster":            "the cluster's configCluster",
	"global.hub":                      "spec.istio.hub",
	"global.tag":                      "spec.istio.version or spec.istio.revisions",
	"istiodRemote":                    "the cluster's controlPlane",
	"base.validationURL":              "the cluster's controlPlane",
	"revision":                        "spec.istio.revision or spec.istio.revisions",
	"revisionTags":                    "spec.istio.tags or the cluster's istio.tags",
	"defaultRevision":                 "spec.istio.tags.default",
	"profile":                         "the cluster's role",
	"meshConfig":                      "spec.istio.meshConfig",
}

var ownedMeshConfig = map[string]string{
	"trustDomain": "spec.mesh.trustDomain",
}

// checkSettings refuses, in values and meshConfig, the keys meshfleet
// sets itself.
func checkSettings(f *Fleet, p *problems) {
	in := f.Spec.Istio
	checkOwned(field{"spec", "istio", "values"}, in.Values, ownedValues, p)
	checkOwned(field{"spec", "istio", "meshConfig"}, in.MeshConfig, ownedMeshConfig, p)
	for _, c := range f.Clusters {
		if c.Istio != nil {
			checkOwned(clusterField(c, "istio", "values"), c.Istio.Values, ownedValues, p)
			checkOwned(clusterField(c, "istio", "meshConfig"), c.Istio.MeshConfig, ownedMeshConfig, p)
		}
	}
}

func checkOwned(at field, m map[string]any, owned map[string]string, p *problems) {
	for _, key := range sortedKeys(owned) {
		path := strings.Split(key, ".")
		if has(m, path) {
			p.addKey(at.dot(path...), "meshfleet sets %s from %s: set it there", key, owned[key])
		}
	}
}

func has(m map[string]any, path []string) bool {
	v, ok := m[path[0]]
	if !ok {
		return false
	}
	if len(path) == 1 {
		return true
	}
	sub, _ := v.(map[string]any)
	return sub != nil && has(sub, path[1:])
}
