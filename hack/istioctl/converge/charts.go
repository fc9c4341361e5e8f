package main

import (
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	commonutil "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	loaderv2 "helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"istio.io/istio/manifests"
)

// Istio's charts as published (https://istio-release.storage.googleapis.com/charts)
// are the charts under manifests/charts of the pinned istio.io/istio module;
// the harness templates the one the module holds, whatever version a
// HelmRelease or Application asks for (no network but the module proxy).
var chartDirs = map[string]string{
	"base":     "charts/base",
	"istiod":   "charts/istio-control/istio-discovery",
	"gateway":  "charts/gateway",
	"cni":      "charts/istio-cni",
	"ztunnel":  "charts/ztunnel",
	"gateways": "charts/gateways/istio-ingress",
}

// templateChart renders an Istio chart with the given values as `helm
// template` (and helm install, which the Flux helm-controller and Argo CD
// run) would: CRDs of the chart's crds/ directory first, then the templates.
func templateChart(chart, release, namespace string, values map[string]any) ([]*unstructured.Unstructured, error) {
	dir, ok := chartDirs[chart]
	if !ok {
		return nil, fmt.Errorf("chart %q is not one of Istio's charts (%v)", chart, keys(chartDirs))
	}
	f := manifests.BuiltinOrDir("")
	var files []*archive.BufferedFile
	err := fs.WalkDir(f, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(f, p)
		if err != nil {
			return err
		}
		files = append(files, &archive.BufferedFile{Name: strings.TrimPrefix(p, dir+"/"), Data: b})
		return nil
	})
	if err != nil {
		return nil, err
	}
	ch, err := loaderv2.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("loading chart %s: %w", chart, err)
	}
	caps := *common.DefaultCapabilities
	kv, _ := common.ParseKubeVersion("v1.36.3")
	caps.KubeVersion = *kv
	if values == nil {
		values = map[string]any{}
	}
	vals, err := commonutil.ToRenderValues(ch, values, common.ReleaseOptions{Name: release, Namespace: namespace, IsInstall: true}, &caps)
	if err != nil {
		return nil, fmt.Errorf("chart %s values: %w", chart, err)
	}
	rendered, err := engine.Render(ch, vals)
	if err != nil {
		return nil, fmt.Errorf("templating chart %s: %w", chart, err)
	}
	var out []*unstructured.Unstructured
	for _, crd := range ch.CRDObjects() {
		objs, err := decodeObjects(crd.File.Data)
		if err != nil {
			return nil, fmt.Errorf("chart %s %s: %w", chart, crd.Name, err)
		}
		out = append(out, objs...)
	}
	names := make([]string, 0, len(rendered))
	for k := range rendered {
		if strings.HasSuffix(k, ".txt") || strings.Contains(k, "/tests/") {
			continue
		}
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		objs, err := decodeObjects([]byte(rendered[k]))
		if err != nil {
			return nil, fmt.Errorf("chart %s %s: %w", chart, k, err)
		}
		out = append(out, objs...)
	}
	return out, nil
}

var _ = chartv2.Chart{}

func keys[V any](m map[string]V) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}
