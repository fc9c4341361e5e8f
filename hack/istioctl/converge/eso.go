package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"text/template"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// esoStore is the fake provider's store: key -> property -> value.
type esoStore struct {
	mu   sync.Mutex
	data map[string]map[string][]byte
}

func (s *esoStore) get(key, prop string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.data[key][prop]
	return v, ok
}

func (s *esoStore) put(key, prop string, v []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data[key] == nil {
		s.data[key] = map[string][]byte{}
	}
	s.data[key][prop] = v
}

// seedCACerts: the operator puts each primary's intermediate CA, under the
// mesh root, into the store before the delivery starts, at the key the
// fleet's secrets.keyPrefix names.
func (o *Operator) seedCACerts() {
	prefix := o.h.fleet.Spec.Secrets.KeyPrefix
	if o.h.fleet.Spec.Secrets.Provider != "external-secrets" || prefix == "" {
		return
	}
	for _, n := range o.h.names {
		keyPEM, certPEM, err := newIntermediate("intermediate CA "+n, o.rootKey, o.root)
		if err != nil {
			continue
		}
		k := prefix + "/" + n + "/cacerts"
		o.store.put(k, "ca-cert.pem", certPEM)
		o.store.put(k, "ca-key.pem", keyPEM)
		o.store.put(k, "root-cert.pem", o.rootPEM)
		o.store.put(k, "cert-chain.pem", append(append([]byte{}, certPEM...), o.rootPEM...))
		o.store.put(k, "tls.crt", certPEM)
		o.store.put(k, "tls.key", keyPEM)
		o.store.put(k, "ca.crt", o.rootPEM)
	}
	o.filledCA = true
}

// esoStep turns an External Secrets object into a child step the stand-in
// reconciles; nil for kinds it only takes note of (stores).
func (h *Harness) esoStep(c *Cluster, u *unstructured.Unstructured) *Step {
	switch u.GetKind() {
	case "ExternalSecret":
		s := &Step{Name: "ExternalSecret " + u.GetNamespace() + "/" + u.GetName() + " (External Secrets stood in)", wait: true}
		s.build = func() ([]*unstructured.Unstructured, error) { return nil, nil }
		s.readyFn = func() string { return h.reconcileExternalSecret(c, u) }
		return s
	case "PushSecret":
		s := &Step{Name: "PushSecret " + u.GetNamespace() + "/" + u.GetName() + " (External Secrets stood in)", wait: true}
		s.build = func() ([]*unstructured.Unstructured, error) { return nil, nil }
		s.readyFn = func() string { return h.reconcilePushSecret(c, u) }
		return s
	case "SecretStore", "ClusterSecretStore":
		return nil // the fake provider is the store
	}
	h.ops.eso(c, u)
	return nil
}

// reconcilePushSecret pushes the selected Secret's data to the store.
func (h *Harness) reconcilePushSecret(c *Cluster, u *unstructured.Unstructured) string {
	ctx := context.Background()
	name, _, _ := unstructured.NestedString(u.Object, "spec", "selector", "secret", "name")
	sec, err := c.kc.CoreV1().Secrets(u.GetNamespace()).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Sprintf("PushSecret %s: source Secret %s: %v", u.GetName(), name, err)
	}
	items, _, _ := unstructured.NestedSlice(u.Object, "spec", "data")
	for _, it := range items {
		m, _ := it.(map[string]any)
		match, _ := m["match"].(map[string]any)
		secretKey, _ := match["secretKey"].(string)
		rr, _ := match["remoteRef"].(map[string]any)
		key, _ := rr["remoteKey"].(string)
		prop, _ := rr["property"].(string)
		v, ok := sec.Data[secretKey]
		if !ok || len(v) == 0 {
			return fmt.Sprintf("PushSecret %s: Secret %s has no %s yet", u.GetName(), name, secretKey)
		}
		if prop == "" {
			prop = secretKey
		}
		h.ops.store.put(key, prop, v)
	}
	return ""
}

// reconcileExternalSecret makes the target Secret from the store, or says
// what it waits for.
func (h *Harness) reconcileExternalSecret(c *Cluster, u *unstructured.Unstructured) string {
	ctx := context.Background()
	vals := map[string]string{}
	items, _, _ := unstructured.NestedSlice(u.Object, "spec", "data")
	for _, it := range items {
		m, _ := it.(map[string]any)
		sk, _ := m["secretKey"].(string)
		rr, _ := m["remoteRef"].(map[string]any)
		key, _ := rr["key"].(string)
		prop, _ := rr["property"].(string)
		v, ok := h.ops.store.get(key, prop)
		if !ok {
			return fmt.Sprintf("ExternalSecret %s: the store has no %s property %s (nothing pushed it)", u.GetName(), key, prop)
		}
		vals[sk] = string(v)
	}
	target, _, _ := unstructured.NestedString(u.Object, "spec", "target", "name")
	if target == "" {
		target = u.GetName()
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: target, Namespace: u.GetNamespace()}, Data: map[string][]byte{}}
	tmpl, hasTmpl, _ := unstructured.NestedMap(u.Object, "spec", "target", "template")
	if hasTmpl {
		if md, ok := tmpl["metadata"].(map[string]any); ok {
			if l, ok := md["labels"].(map[string]any); ok {
				sec.Labels = map[string]string{}
				for k, v := range l {
					sec.Labels[k] = fmt.Sprint(v)
				}
			}
			if a, ok := md["annotations"].(map[string]any); ok {
				sec.Annotations = map[string]string{}
				for k, v := range a {
					sec.Annotations[k] = fmt.Sprint(v)
				}
			}
		}
		data, _ := tmpl["data"].(map[string]any)
		funcs := template.FuncMap{
			"b64enc": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
			"b64dec": func(s string) string { b, _ := base64.StdEncoding.DecodeString(s); return string(b) },
			"trim":   strings.TrimSpace,
		}
		for k, v := range data {
			t, err := template.New(k).Funcs(funcs).Option("missingkey=error").Parse(fmt.Sprint(v))
			if err != nil {
				return fmt.Sprintf("ExternalSecret %s: template %s: %v", u.GetName(), k, err)
			}
			var b bytes.Buffer
			if err := t.Execute(&b, vals); err != nil {
				return fmt.Sprintf("ExternalSecret %s: template %s: %v", u.GetName(), k, err)
			}
			sec.Data[k] = b.Bytes()
		}
		if len(data) == 0 {
			for k, v := range vals {
				sec.Data[k] = []byte(v)
			}
		}
	} else {
		for k, v := range vals {
			sec.Data[k] = []byte(v)
		}
	}
	// Map the fleet's apiServer URLs in the kubeconfig data to the local
	// API servers, as the operator's remote secrets do (the rendered value
	// was compared when it was found).
	for k, v := range sec.Data {
		sec.Data[k] = []byte(h.mapAPIServers(string(v)))
	}
	cur, err := c.kc.CoreV1().Secrets(sec.Namespace).Get(ctx, target, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := c.kc.CoreV1().Secrets(sec.Namespace).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
			return fmt.Sprintf("ExternalSecret %s: creating Secret %s: %v", u.GetName(), target, err)
		}
		h.logf("cluster %s: external secrets: created Secret %s/%s", c.name, sec.Namespace, target)
		return ""
	}
	if err != nil {
		return err.Error()
	}
	if len(cur.Data) == 0 {
		cur.Data = sec.Data
		for k, v := range sec.Labels {
			if cur.Labels == nil {
				cur.Labels = map[string]string{}
			}
			cur.Labels[k] = v
		}
		for k, v := range sec.Annotations {
			if cur.Annotations == nil {
				cur.Annotations = map[string]string{}
			}
			cur.Annotations[k] = v
		}
		if _, err := c.kc.CoreV1().Secrets(sec.Namespace).Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return err.Error()
		}
	}
	return ""
}

// mapAPIServers replaces every fleet cluster's apiServer URL with its local
// API server's URL, and records, for the checks, which fleet URLs were
// found.
func (h *Harness) mapAPIServers(s string) string {
	for _, n := range h.names {
		api := h.fleet.Spec.Clusters[n].APIServer
		if api != "" && strings.Contains(s, "server: "+api) {
			s = strings.ReplaceAll(s, "server: "+api, "server: "+h.clusters[n].url)
		}
	}
	return s
}
