package main

import (
	"context"
	"strings"
	"testing"

	admv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// A cluster's own tags go over the fleet's.
func TestTagsOf(t *testing.T) {
	h := &Harness{}
	h.fleet.Spec.Istio.Tags = map[string]string{"default": "1-30-3", "canary": "1-31-1"}
	north := &FleetCluster{}
	north.Istio.Tags = map[string]string{"default": "1-31-1"}
	h.fleet.Spec.Clusters = map[string]*FleetCluster{"east": {}, "north": north}
	if got := h.tagsOf("east"); got["default"] != "1-30-3" || got["canary"] != "1-31-1" || len(got) != 2 {
		t.Errorf("east: %v", got)
	}
	if got := h.tagsOf("north"); got["default"] != "1-31-1" || got["canary"] != "1-31-1" || len(got) != 2 {
		t.Errorf("north: %v", got)
	}
	if tag, rev, other := h.tagToBreak("east"); tag != "canary" || rev != "1-31-1" || other != "1-30-3" {
		t.Errorf("tagToBreak(east) = %s %s %s", tag, rev, other)
	}
	if tag, _, _ := h.tagToBreak("north"); tag != "" {
		t.Errorf("tagToBreak(north) = %s, want none: every tag names 1-31-1", tag)
	}
}

func injector(name, tag string, ns *metav1.LabelSelector) *admv1.MutatingWebhookConfiguration {
	l := map[string]string{}
	if tag != "" {
		l["istio.io/tag"] = tag
	}
	return &admv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l},
		Webhooks: []admv1.MutatingWebhook{{
			Name:              "namespace.sidecar-injector.istio.io",
			NamespaceSelector: ns,
			Rules: []admv1.RuleWithOperations{{Operations: []admv1.OperationType{admv1.Create},
				Rule: admv1.Rule{Resources: []string{"pods"}}}},
		}},
	}
}

// Only the tag's webhooks may select the tag's namespaces: a revision's
// own injector that also selects istio-injection=enabled would inject
// twice.
func TestTagSelects(t *testing.T) {
	enabled := &metav1.LabelSelector{MatchLabels: map[string]string{"istio-injection": "enabled"}}
	rev := &metav1.LabelSelector{MatchLabels: map[string]string{"istio.io/rev": "1-31-1"}}
	for _, tc := range []struct {
		name string
		objs []*admv1.MutatingWebhookConfiguration
		want string // "" passes
	}{
		{"tag only", []*admv1.MutatingWebhookConfiguration{
			injector("istio-revision-tag-default", "default", enabled),
			injector("istio-sidecar-injector-1-31-1", "", rev)}, ""},
		{"no tag", []*admv1.MutatingWebhookConfiguration{
			injector("istio-sidecar-injector-1-31-1", "", rev)}, "no webhook of tag default"},
		{"another selects them too", []*admv1.MutatingWebhookConfiguration{
			injector("istio-revision-tag-default", "default", enabled),
			injector("istio-sidecar-injector", "", enabled)}, "other webhooks select them too: istio-sidecar-injector"},
	} {
		kc := fake.NewClientset()
		for _, o := range tc.objs {
			if _, err := kc.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(context.Background(), o, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		ok, msg := (&Harness{}).tagSelects(context.Background(), &Cluster{kc: kc}, "default", tagNamespaceLabels("default"))
		if tc.want == "" && !ok {
			t.Errorf("%s: failed: %s", tc.name, msg)
		}
		if tc.want != "" && (ok || !strings.Contains(msg, tc.want)) {
			t.Errorf("%s: got ok=%v %q, want failure with %q", tc.name, ok, msg, tc.want)
		}
	}
}
