package main

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// certManagerNS is where the harness installs cert-manager, and the
// namespace of the Secrets its ClusterIssuers refer to
// (--cluster-resource-namespace), as cert-manager's chart sets it.
const certManagerNS = "cert-manager"

// startCertManager: with ca.certManager, every cluster gets what the fleet
// says its owner provides before the delivery starts: cert-manager (its
// CRDs and its real controllers, hack/certmanager, built from cert-manager's
// module) and the fleet's issuer holding the run's mesh root: one
// ClusterIssuer in every cluster (its CA Secret in cert-manager's
// namespace), or an Issuer in istio-system of every primary, as the README
// asks. Nothing else: a Certificate that names another issuer, or lives
// where its Issuer is not, is not issued, as in a cluster.
func (h *Harness) startCertManager(ctx context.Context, c *Cluster) error {
	is := h.fleet.Spec.CA.CertManager.Issuer
	kind, err := issuerKind(is.Group, is.Kind)
	if err != nil {
		return err
	}
	if err := h.installCertManager(ctx, c); err != nil {
		return err
	}
	if kind == "Issuer" && c.fc.Role != "primary" {
		return nil
	}
	return h.caIssuer(ctx, c, is.Name, kind, h.ops.rootKey, h.ops.rootPEM)
}

// installCertManager applies cert-manager's CRDs and starts its
// controllers against the cluster, once.
func (h *Harness) installCertManager(ctx context.Context, c *Cluster) error {
	if c.certManager {
		return nil
	}
	crds, err := os.ReadFile(filepath.Join(h.bin, "cert-manager-crds.yaml"))
	if err != nil {
		return fmt.Errorf("cert-manager's CRDs (hack/build-tools.sh puts them next to the tools): %w", err)
	}
	objs, err := decodeObjects(crds)
	if err != nil {
		return fmt.Errorf("cert-manager-crds.yaml: %w", err)
	}
	if err := h.apply(ctx, c, objs, ""); err != nil {
		return fmt.Errorf("cert-manager's CRDs: %w", err)
	}
	if err := h.waitCRDs(ctx, c, objs); err != nil {
		return err
	}
	if err := h.runCertManager(ctx, c, filepath.Join(h.bin, "cert-manager-controller")); err != nil {
		return err
	}
	c.certManager = true
	return nil
}

// caIssuer creates cert-manager issuer name of kind (ClusterIssuer, its CA
// Secret in cert-manager's namespace, or Issuer in istio-system) as a CA
// issuer signing with key under the root rootPEM.
func (h *Harness) caIssuer(ctx context.Context, c *Cluster, name, kind string, key *rsa.PrivateKey, rootPEM []byte) error {
	ns := certManagerNS
	if kind == "Issuer" {
		ns = "istio-system"
	}
	if _, err := c.kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	secret := name + "-ca"
	keyPEM := pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
	if _, err := c.kc.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: secret, Namespace: ns},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": rootPEM, "tls.key": keyPEM},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	issuer := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cert-manager.io/v1", "kind": kind,
		"metadata": map[string]any{"name": name},
		"spec":     map[string]any{"ca": map[string]any{"secretName": secret}},
	}}
	if kind == "Issuer" {
		issuer.SetNamespace(ns)
	}
	if err := h.applyAs(ctx, c, issuer, ns, "operator"); err != nil {
		return fmt.Errorf("%s %s: %w", kind, name, err)
	}
	return nil
}

// startPublicIssuers: a gateway certificate whose issuer the fleet names
// (certificate.issuer, meant to be publicly trusted: Istio's guide leaves
// the webhooks without caBundle then) is issued by cert-manager from that
// issuer, which its owner runs as a public CA would: the harness plays the
// public CA, whose root (publicRoot) every API server trusts as a system
// root. The mesh root's issuer (ca.certManager) is left to
// startCertManager.
func (h *Harness) startPublicIssuers(ctx context.Context, c *Cluster) error {
	for _, g := range []*FleetGateway{c.fc.EastWestGateway, c.fc.IstiodGateway} {
		if g == nil || g.Certificate == nil || g.Certificate.Issuer == nil || g.Certificate.Issuer.Name == "" {
			continue
		}
		is := g.Certificate.Issuer
		if cm := h.fleet.Spec.CA.CertManager; cm != nil && cm.Issuer.Name == is.Name {
			continue
		}
		kind, err := issuerKind(is.Group, is.Kind)
		if err != nil {
			return err
		}
		if err := h.installCertManager(ctx, c); err != nil {
			return err
		}
		pub := h.publicCA()
		if err := h.caIssuer(ctx, c, is.Name, kind, pub.key, pub.pem); err != nil {
			return err
		}
		h.logf("cluster %s: %s %s signs as the public CA", c.name, kind, is.Name)
	}
	return nil
}

func (h *Harness) runCertManager(ctx context.Context, c *Cluster, bin string) error {
	cmd := exec.CommandContext(ctx, bin, "--kubeconfig", c.kubeconfig, "--cluster-resource-namespace", certManagerNS, "-v", "2")
	if err := h.startLogged(cmd, filepath.Join(c.dir, "cert-manager.log")); err != nil {
		return fmt.Errorf("cert-manager controller: %w", err)
	}
	h.logf("cluster %s: cert-manager controller started", c.name)
	return nil
}

// issuerKind is the kind of an issuer reference (ClusterIssuer when the
// fleet gives none); only cert-manager's own issuers run here.
func issuerKind(group, kind string) (string, error) {
	if group != "" && group != "cert-manager.io" {
		return "", fmt.Errorf("issuer group %s: only cert-manager's own issuers are run here", group)
	}
	if kind == "" {
		return "ClusterIssuer", nil
	}
	return kind, nil
}
