package overlays

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"math"
	"path"
	"slices"
	"strings"
	"sync"

	yaml "go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/kyaml/resid"
	sigsyaml "sigs.k8s.io/yaml"
)

// A linear `kustomize build` for the kustomizations meshfleet writes.
//
// kustomize's resource map checks every object it adds against every
// object it holds (resWrangler.Append), so building an overlay of n
// objects costs O(n²) CPU and much more per object than the YAML itself:
// a primary of a 1,000-cluster fleet holds about 1,000 remote secrets.
// meshfleet's kustomizations only list resources (files and directories)
// and may set commonAnnotations, so building one of them is: read each
// kustomization, load its files, recurse into its directories, set the
// annotations on everything it accumulated, refuse duplicate IDs, and
// sort the result in kustomize's legacy order.
//
// fastBuild does exactly that and nothing more. Whenever it meets
// anything else — another kustomization field, a file name kustomize
// would treat differently, YAML outside the writer's grammar that yaml.v3
// would have to interpret (anchors, tags, merge keys), an object with
// kustomize's own annotations, an empty or nil value, a List, a duplicate
// ID, a path outside the root, a missing file, a cycle — it gives up and
// the caller runs kustomize itself (krusty), which then builds or rejects
// the overlay exactly as before. So fastBuild only ever accepts; every
// rejection and every unusual tree is kustomize's call.
// TestFastBuildMatchesKustomize checks its output against the kustomize
// CLI on every overlay of the examples, of generated fleets of every
// topology and of random fleets with extensions.

// object is one resource of an overlay being built.
type object struct {
	m        map[string]any
	gvk      resid.Gvk
	name, ns string
}

// fastBuild builds the overlay in dir of t; ok is false when the overlay
// needs kustomize itself.
func fastBuild(t Tree, dir string, docs *docCache) (objs []*object, ok bool) {
	objs, ok = accumulate(t, dir, nil, docs)
	if !ok {
		return nil, false
	}
	type id struct{ g, v, k, name, ns string }
	seen := make(map[id]bool, len(objs))
	for _, o := range objs {
		ns := o.ns
		if o.gvk.IsClusterScoped() {
			ns = resid.TotallyNotANamespace
		} else if ns == "" {
			ns = resid.DefaultNamespace
		}
		k := id{o.gvk.Group, o.gvk.Version, o.gvk.Kind, o.name, ns}
		if seen[k] {
			return nil, false // kustomize: "may not add resource with an already registered id"
		}
		seen[k] = true
	}
	keys := make([]sortKey, len(objs))
	for i, o := range objs {
		keys[i] = sortKey{legacyRank[o.gvk.Kind], legacyGVK(o.gvk), legacyID(o), o}
	}
	slices.SortFunc(keys, legacyCompare)
	for i := range keys {
		objs[i] = keys[i].o
	}
	return objs, true
}

// sortKey is what kustomize's legacy order compares, computed once.
type sortKey struct {
	rank    int
	gvk, id string
	o       *object
}

// legacyCompare is kustomize's legacy sort order (SortOrderTransformer):
// the kinds of defaultOrderFirst, then the others, then webhooks; within
// a kind by group and version, then by namespace and name. accept makes
// sure the strings it compares cannot tie for different objects.
func legacyCompare(a, b sortKey) int {
	if !a.o.gvk.Equals(b.o.gvk) {
		if a.rank != b.rank {
			return cmp.Compare(a.rank, b.rank)
		}
		return cmp.Compare(a.gvk, b.gvk)
	}
	return cmp.Compare(a.id, b.id)
}

func legacyGVK(x resid.Gvk) string {
	return cmp.Or(x.Group, "~G") + "_" + cmp.Or(x.Version, "~V") + "_" + cmp.Or(x.Kind, "~K")
}

func legacyID(o *object) string {
	return o.gvk.String() + "|" + cmp.Or(o.ns, "~X") + "|" + cmp.Or(o.name, "~N")
}

var legacyRank = func() map[string]int {
	first := []string{"Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition",
		"ServiceAccount", "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding",
		"ClusterRoleBinding", "ConfigMap", "Secret", "Endpoints", "Service", "LimitRange",
		"PriorityClass", "PersistentVolume", "PersistentVolumeClaim", "Deployment",
		"StatefulSet", "CronJob", "PodDisruptionBudget"}
	last := []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
	m := map[string]int{}
	for i, k := range first {
		m[k] = -len(first) + i
	}
	for i, k := range last {
		m[k] = 1 + i
	}
	return m
}()

// kustomization is the part of a kustomization file fastBuild handles.
type kustomization struct {
	APIVersion        string         `yaml:"apiVersion"`
	Kind              string         `yaml:"kind"`
	CommonAnnotations map[string]any `yaml:"commonAnnotations"`
	Resources         []string       `yaml:"resources"`
}

// templated are the kinds whose pod templates commonAnnotations also
// annotates.
var templated = map[string]bool{"ReplicationController": true, "Deployment": true, "ReplicaSet": true,
	"DaemonSet": true, "StatefulSet": true, "Job": true, "CronJob": true}

// accumulate loads the kustomization in dir, which chain (the
// kustomizations that led here) must not contain or lie below.
func accumulate(t Tree, dir string, chain []string, docs *docCache) ([]*object, bool) {
	for _, other := range []string{"kustomization.yml", "Kustomization"} {
		if _, ok := t[path.Join(dir, other)]; ok {
			return nil, false
		}
	}
	src, ok := t[path.Join(dir, Kustomize)]
	if !ok {
		return nil, false
	}
	var k kustomization
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if dec.Decode(&k) != nil || dec.Decode(new(any)) != io.EOF ||
		k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		return nil, false
	}
	for key, v := range k.CommonAnnotations {
		if s, isString := v.(string); !isString || s == "" || internalKey(key) {
			return nil, false
		}
	}
	chain = append(chain, dir)
	var objs []*object
	for _, r := range k.Resources {
		if r == "" || path.IsAbs(r) || strings.ContainsAny(r, `\:?#`) {
			return nil, false
		}
		p := path.Join(dir, r)
		if p == ".." || strings.HasPrefix(p, "../") {
			return nil, false
		}
		if b, isFile := t[p]; isFile {
			if !strings.HasPrefix(p, dir+"/") {
				return nil, false // kustomize: "security; file ... is not in or below ..."
			}
			loaded, ok := loadFile(b, docs)
			if !ok {
				return nil, false
			}
			objs = append(objs, loaded...)
			continue
		}
		if _, isDir := t[path.Join(p, Kustomize)]; !isDir {
			return nil, false
		}
		for _, c := range chain {
			if p == c || strings.HasPrefix(c, p+"/") {
				return nil, false // kustomize: "cycle detected"
			}
		}
		sub, ok := accumulate(t, p, chain, docs)
		if !ok {
			return nil, false
		}
		objs = append(objs, sub...)
	}
	if len(k.CommonAnnotations) > 0 {
		for _, o := range objs {
			paths := [][]string{{"metadata"}}
			switch {
			case podTemplated[o.gvk.Kind]:
				paths = append(paths, []string{"spec", "template", "metadata"})
			case templated[o.gvk.Kind]:
				return nil, false
			}
			for _, p := range paths {
				m, ok := annotated(o.m, append(p, "annotations"), k.CommonAnnotations)
				if !ok {
					return nil, false
				}
				o.m = m
			}
		}
	}
	return objs, true
}

// podTemplated are the kinds of templated whose pod template fastBuild
// annotates as kustomize does (spec.template.metadata.annotations,
// created when missing); the others it leaves to kustomize.
var podTemplated = map[string]bool{"Deployment": true, "ReplicaSet": true, "DaemonSet": true, "StatefulSet": true, "Job": true}

// annotated returns m with the annotations set in the map at path,
// created where missing; it declines what is there but is not a map. The
// maps on the way are copied, not changed: a document's object is shared
// by every overlay that holds the document.
func annotated(m map[string]any, path []string, annotations map[string]any) (map[string]any, bool) {
	out := make(map[string]any, len(m)+len(annotations))
	maps.Copy(out, m)
	if len(path) == 0 {
		maps.Copy(out, annotations)
		return out, true
	}
	var next map[string]any
	switch v := m[path[0]].(type) {
	case map[string]any:
		next = v
	case nil:
		if _, present := m[path[0]]; present {
			return nil, false // an explicit null: leave it to kustomize
		}
	default:
		return nil, false
	}
	sub, ok := annotated(next, path[1:], annotations)
	if !ok {
		return nil, false
	}
	out[path[0]] = sub
	return out, true
}

// internalKey reports annotations kustomize sets, reads or removes
// itself (config.kubernetes.io/local-config drops the object, the build
// annotations are stripped from the output).
func internalKey(k string) bool {
	return strings.Contains(k, "config.kubernetes.io/") || strings.Contains(k, "config.k8s.io/")
}

// loadFile reads the objects of a YAML file: document by document with
// the fast reader when the file is in the writer's grammar, else with
// yaml.v3, the library kustomize reads it with, refusing what kyaml
// treats specially.
func loadFile(b []byte, docs *docCache) ([]*object, bool) {
	if objs, ok := docs.stream(b); ok {
		return objs, true
	}
	ms, ok := decodeStream(b)
	if !ok {
		return nil, false
	}
	objs := make([]*object, 0, len(ms))
	for _, m := range ms {
		o, ok := accept(m)
		if !ok {
			return nil, false
		}
		objs = append(objs, o)
	}
	return objs, true
}

// docCache holds the objects of the documents read so far, by the
// document's bytes, for one verification: each distinct document is read
// once, however many overlays hold it (a remote secret is in every
// cluster that reads its cluster). A nil docCache reads every time.
type docCache struct {
	mu sync.Mutex
	m  map[string]*object // nil for a document the fast reader declined
}

func newDocCache() *docCache { return &docCache{m: map[string]*object{}} }

// stream reads a file in the writer's grammar, comment lines and then
// documents each starting with a "---" line, into objects; ok is false
// when a document is outside the fast reader's grammar.
func (c *docCache) stream(b []byte) ([]*object, bool) {
	i := 0
	for i < len(b) && b[i] == '#' {
		n := bytes.IndexByte(b[i:], '\n')
		if n < 0 {
			return nil, false
		}
		i += n + 1
	}
	if !printable(b[:i]) {
		return nil, false // a NEL or LS would end a comment line early for yaml.v3
	}
	var objs []*object
	for i < len(b) {
		if !bytes.HasPrefix(b[i:], []byte("---\n")) {
			return nil, false
		}
		end := len(b)
		if n := bytes.Index(b[i+3:], []byte("\n---\n")); n >= 0 {
			end = i + 3 + n + 1
		}
		o, ok := c.object(b[i:end])
		if !ok {
			return nil, false
		}
		objs = append(objs, o)
		i = end
	}
	return objs, true
}

// object reads one document ("---" and a mapping) into a fresh object;
// the map it holds is shared and must not be changed.
func (c *docCache) object(doc []byte) (*object, bool) {
	var known *object
	cached := false
	if c != nil {
		c.mu.Lock()
		known, cached = c.m[string(doc)]
		c.mu.Unlock()
	}
	if !cached {
		if ms, ok := parseStream(doc); ok && len(ms) == 1 {
			known, _ = accept(ms[0])
		}
		if c != nil {
			c.mu.Lock()
			c.m[string(doc)] = known
			c.mu.Unlock()
		}
	}
	if known == nil {
		return nil, false
	}
	o := *known
	return &o, true
}

func decodeStream(b []byte) ([]map[string]any, bool) {
	var docs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err == io.EOF {
			return docs, true
		} else if err != nil || !plainNode(&n) {
			return nil, false
		}
		var m map[string]any
		if n.Decode(&m) != nil || len(m) == 0 {
			return nil, false
		}
		docs = append(docs, m)
	}
}

// plainNode reports whether n uses no anchors, aliases, explicit tags,
// merge keys or characters kustomize cannot print.
func plainNode(n *yaml.Node) bool {
	if n.Anchor != "" || n.Kind == yaml.AliasNode || n.Style&yaml.TaggedStyle != 0 {
		return false
	}
	if n.Kind == yaml.ScalarNode && strings.ContainsFunc(n.Value, unprintable) {
		return false
	}
	for i, c := range n.Content {
		if n.Kind == yaml.MappingNode && i%2 == 0 && (c.Value == "<<" || c.Kind != yaml.ScalarNode) {
			return false
		}
		if !plainNode(c) {
			return false
		}
	}
	return true
}

// accept checks that a document is an ordinary object: kind, apiVersion
// and name set, annotations and labels string maps, no nulls, no
// kustomize annotations, and identifiers legacyCompare can order.
func accept(m map[string]any) (*object, bool) {
	apiVersion, _ := m["apiVersion"].(string)
	kind, _ := m["kind"].(string)
	md, _ := m["metadata"].(map[string]any)
	if apiVersion == "" || kind == "" || md == nil || strings.HasSuffix(kind, "List") {
		return nil, false
	}
	name, _ := md["name"].(string)
	ns, hasNS := md["namespace"]
	nss, _ := ns.(string)
	if name == "" || hasNS && nss == "" {
		return nil, false
	}
	for _, field := range []string{"annotations", "labels"} {
		v, has := md[field]
		if !has {
			continue
		}
		sm, _ := v.(map[string]any)
		if len(sm) == 0 {
			return nil, false
		}
		for k, v := range sm {
			if _, isString := v.(string); !isString || field == "annotations" && internalKey(k) {
				return nil, false
			}
		}
	}
	if !plainValue(m) {
		return nil, false
	}
	g, v := resid.ParseGroupVersion(apiVersion)
	if g == "kustomize.config.k8s.io" || strings.ContainsAny(g+v+kind, "/_~|") || strings.ContainsAny(name+nss, "~|") ||
		kind == "Namespace" && g != "" {
		return nil, false
	}
	return &object{m: m, gvk: resid.NewGvk(g, v, kind), name: name, ns: nss}, true
}

// plainValue reports whether v holds only what JSON can carry unchanged:
// string-keyed maps, lists, strings, booleans, integers and finite
// floats; no nulls.
func plainValue(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			if !plainValue(e) {
				return false
			}
		}
	case []any:
		for _, e := range v {
			if !plainValue(e) {
				return false
			}
		}
	case string, bool, int, int64, uint64:
	case float64:
		return !math.IsInf(v, 0) && !math.IsNaN(v)
	default:
		return false
	}
	return true
}

// asYAML prints built objects as `kustomize build` does: each object as
// JSON turned into YAML (sorted keys), separated by "---".
func asYAML(objs []*object) ([]byte, error) {
	var b bytes.Buffer
	for i, o := range objs {
		j, err := json.Marshal(o.m)
		if err != nil {
			return nil, err
		}
		y, err := sigsyaml.JSONToYAML(j)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}

// checkNamespaces reports namespaced objects without a namespace, which
// meshfleet refuses although kustomize would build them.
func checkNamespaces(dir string, objs []*object) error {
	var errs []error
	for _, o := range objs {
		if o.gvk.IsClusterScoped() || clusterScopedCRDs[o.gvk.Group+"/"+o.gvk.Kind] || o.ns != "" {
			continue
		}
		errs = append(errs, noNamespace(dir, o.gvk.Kind, o.name))
	}
	return errors.Join(errs...)
}

// unprintable are the characters kustomize cannot print: it prints
// through JSON, which leaves DEL, the C1 controls (NEL among them), the byte
// order mark and the noncharacters U+FFFE and U+FFFF raw, and YAML
// refuses them raw. An overlay holding one
// goes to krusty, which fails as the kustomize CLI does.
func unprintable(r rune) bool {
	return r == 0x7f || r >= 0x80 && r < 0xa0 || r == 0x2028 || r == 0x2029 || r == 0xfeff || r == 0xfffe || r == 0xffff
}
