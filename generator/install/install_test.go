package install_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/generator/install"
	"github.com/meshfleet/meshfleet/generator/plan"
)

// Where the default validator and the tags go, for every installer: a
// primary gets the default validator (its istiod patches it) and tags as
// its installer renders them; a remote gets no validator (no istiod
// patches a remote's validating webhooks) and, with Sail, its tags as
// webhooks (Sail refuses an IstioRevisionTag that targets a remote).
func TestDefaultValidatorAndTags(t *testing.T) {
	const src = `apiVersion: meshfleet.dev/v1alpha1
kind: MeshFleet
metadata: {name: t}
spec:
  mesh: {id: mesh1}
  istio:
    revisions: {1-30-3: {version: 1.30.3}, 1-31-1: {version: 1.31.1}}
    tags: {default: 1-30-3, canary: 1-31-1}
    gatewayRevision: default
  installer: INSTALLER
  delivery: {flux: {path: ./out}}
  clusters:
    east: {role: primary, network: n1, apiServer: "https://east.example.net:6443", eastWestGateway: {address: 203.0.113.10}}
    west: {role: remote, network: n1, controlPlane: east, apiServer: "https://west.example.net:6443"}
`
	cases := []struct {
		installer, cluster string
		want               string // what the control planes' output holds, summarised
	}{
		{"istioctl", "east", "validator:1-30-3 tags:canary,default"},
		{"istioctl", "west", "tags:canary,default"},
		{"helm", "east", "defaultRevision:1-30-3 revisionTags:canary,default"},
		{"helm", "west", `defaultRevision:"" revisionTags:canary,default`},
		{"sail", "east", "IstioRevisionTags:canary,default"},
		{"sail", "west", "tags:canary,default"},
	}
	for _, tc := range cases {
		t.Run(tc.installer+"/"+tc.cluster, func(t *testing.T) {
			f, err := fleet.Parse("fleet.yaml", []byte(strings.Replace(src, "INSTALLER", tc.installer, 1)))
			if err != nil {
				t.Fatal(err)
			}
			var pc *plan.Cluster
			p := plan.Build(f)
			for i := range p.Clusters {
				if p.Clusters[i].Name == tc.cluster {
					pc = &p.Clusters[i]
				}
			}
			in := install.For(tc.installer)
			var validators, tags, irts, defRevs, revTags []string
			for i := range pc.ControlPlanes {
				out := in.ControlPlane(&pc.ControlPlanes[i])
				for _, file := range out.Manifests {
					for _, o := range file.Objects {
						name := o["metadata"].(map[string]any)["name"].(string)
						switch o["kind"] {
						case "ValidatingWebhookConfiguration":
							validators = append(validators, o["metadata"].(map[string]any)["labels"].(map[string]any)["istio.io/rev"].(string))
						case "MutatingWebhookConfiguration":
							tags = append(tags, strings.TrimPrefix(name, "istio-revision-tag-"))
						case "IstioRevisionTag":
							irts = append(irts, name)
						}
					}
				}
				for _, ch := range out.Charts {
					if v, ok := ch.Values["defaultRevision"]; ok && ch.Chart == "base" {
						defRevs = append(defRevs, fmt.Sprintf("%q", v))
					}
					for _, t := range asStrings(ch.Values["revisionTags"]) {
						revTags = append(revTags, t)
					}
				}
			}
			var got []string
			add := func(k string, v []string) {
				if len(v) > 0 {
					got = append(got, k+":"+strings.Join(sorted(v), ","))
				}
			}
			add("validator", validators)
			add("tags", tags)
			add("IstioRevisionTags", irts)
			add("defaultRevision", defRevs)
			add("revisionTags", revTags)
			if g := strings.ReplaceAll(strings.Join(got, " "), `"1-30-3"`, "1-30-3"); g != tc.want {
				t.Errorf("got %s, want %s", g, tc.want)
			}
		})
	}
}

func asStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
