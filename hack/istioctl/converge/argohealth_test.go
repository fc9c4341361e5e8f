package main

import (
	"path/filepath"
	"runtime"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The health scripts meshfleet renders for argocd-cm, run as Argo CD runs
// them: the cacerts placeholder holds its wave until a key layout is
// complete, and an Application is as healthy as its status says.
func TestRenderedArgoHealth(t *testing.T) {
	_, self, _, _ := runtime.Caller(0)
	cm, err := readArgoCM(filepath.Join(filepath.Dir(self), "../../../examples/argocd-helm/rendered/argocd"))
	if err != nil {
		t.Fatal(err)
	}
	h := &Harness{argoCM: cm}
	secret := func(data map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Secret",
			"metadata": map[string]any{"name": "cacerts", "namespace": "istio-system", "annotations": map[string]any{
				"meshfleet.dev/wait-for-keys": "ca-cert.pem,ca-key.pem,root-cert.pem,cert-chain.pem|tls.crt,tls.key,ca.crt"}},
			"data": data,
		}}
	}
	for _, tc := range []struct {
		name string
		obj  *unstructured.Unstructured
		want string
	}{
		{"placeholder", secret(nil), "Progressing"},
		{"partly filled", secret(map[string]any{"tls.crt": "eA==", "tls.key": "eA=="}), "Progressing"},
		{"empty key", secret(map[string]any{"tls.crt": "eA==", "tls.key": "eA==", "ca.crt": ""}), "Progressing"},
		{"cert-manager layout", secret(map[string]any{"tls.crt": "eA==", "tls.key": "eA==", "ca.crt": "eA=="}), "Healthy"},
		{"istio layout", secret(map[string]any{"ca-cert.pem": "eA==", "ca-key.pem": "eA==", "root-cert.pem": "eA==", "cert-chain.pem": "eA=="}), "Healthy"},
		{"other Secret", &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "x"}}}, "Healthy"},
		{"ConfigMap: no health", &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "x"}}}, ""},
	} {
		if got, msg := h.argoResourceHealth(tc.obj); got != tc.want {
			t.Errorf("%s: health %q (%s), want %q", tc.name, got, msg, tc.want)
		}
	}
	s := &Step{Name: "Argo CD Application mesh-east-namespace"}
	if msg := h.argoAppHealthy(s, "Healthy"); msg != "" {
		t.Errorf("healthy Application: %s", msg)
	}
	if msg := h.argoAppHealthy(s, "Progressing"); msg == "" {
		t.Errorf("progressing Application counted healthy")
	}
	// Without an Application script, Argo CD has no Application health.
	if _, ok := (&ArgoCM{Health: map[string]ArgoHealthScript{}}).script(&unstructured.Unstructured{Object: map[string]any{"apiVersion": "argoproj.io/v1alpha1", "kind": "Application"}}); ok {
		t.Error("an empty argocd-cm has an Application health script")
	}
}

func TestArgoHealthLuaErrors(t *testing.T) {
	obj := map[string]any{"kind": "Secret"}
	for _, tc := range []struct{ script, want string }{
		{`return {status = "Bogus"}`, "Unknown"},
		{`return nil`, ""},
		{`hs = {} hs.status = "Degraded" return hs`, "Degraded"},
	} {
		got, _, err := runArgoHealthLua(ArgoHealthScript{Lua: tc.script}, obj)
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.script, got, err, tc.want)
		}
	}
	for _, bad := range []string{`return "Healthy"`, `error("x")`, `while true do end`, `return os.time()`} {
		if _, _, err := runArgoHealthLua(ArgoHealthScript{Lua: bad}, obj); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
