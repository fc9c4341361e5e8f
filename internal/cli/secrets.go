package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/generator/mesh"
	"github.com/meshfleet/meshfleet/generator/plan"
)

func setupSecrets(fs *pflag.FlagSet) runFunc {
	var file string
	fleetFlag(fs, &file, "", "fleet file (.yaml, .yml, .json, .cue or .jsonnet)")
	return func(io IO, _ []string) error {
		if err := required("secrets", "fleet", file); err != nil {
			return err
		}
		f, err := fleet.Load(file)
		if err != nil {
			return err
		}
		if f.Spec.Secrets.Provider == fleet.ProviderExternalSecrets {
			storeKeys(io.Out, f)
		} else {
			secretCommands(io.Out, f)
		}
		return nil
	}
}

// kubeContext is the kubeconfig context meshfleet secrets uses for c.
func kubeContext(c *fleet.Cluster) string {
	if c.KubeContext != "" {
		return c.KubeContext
	}
	return c.Name
}

// reads lists, for every cluster, the clusters whose istiod reads its
// API server through a remote secret: every primary but itself, and the
// external control plane of a remote that is not its config cluster.
func reads(f *fleet.Fleet) map[string][]*fleet.Cluster {
	m := map[string][]*fleet.Cluster{}
	for _, p := range f.Clusters {
		switch p.Role {
		case fleet.Primary:
			for _, c := range f.Clusters {
				if c != p {
					m[c.Name] = append(m[c.Name], p)
				}
			}
		case fleet.ExternalControlPlane:
			for _, c := range f.RemotesOf(p) {
				if !c.ConfigCluster {
					m[c.Name] = append(m[c.Name], p)
				}
			}
		}
	}
	return m
}

// primaries are the clusters that run a mesh istiod, hence a CA: the
// primaries and the external control planes.
func primaries(f *fleet.Fleet) []*fleet.Cluster {
	var ps []*fleet.Cluster
	for _, c := range f.Clusters {
		if c.Role == fleet.Primary || c.Role == fleet.ExternalControlPlane {
			ps = append(ps, c)
		}
	}
	return ps
}

// istioNamespace is where cluster c's mesh istiod keeps its secrets.
func istioNamespace(f *fleet.Fleet, c *fleet.Cluster) string {
	if c.Role == fleet.ExternalControlPlane || f.ExternalControlPlaneOf(c) != nil {
		return fleet.ExternalIstiodNamespace
	}
	return mesh.IstioNamespace
}

// secretCommands prints the shell commands that fill the placeholders of
// the placeholder provider: cacerts in every primary, and in every
// primary a remote secret for every other cluster.
func secretCommands(w io.Writer, f *fleet.Fleet) {
	fmt.Fprintf(w, `# Fill the secret placeholders of fleet %s. meshfleet writes no secret material;
# these commands make it, with each cluster's kubeconfig context (the cluster's
# name unless the fleet sets clusters.<cluster>.kubeContext).
`, f.Metadata.Name)
	ps := primaries(f)
	if f.CertManager() != nil {
		ps = nil // cert-manager issues every primary's cacerts
	}
	if len(ps) > 0 {
		cacertsCommands(w, f, ps)
	}
	remoteSecretCommands(w, f)
	configSecretCommands(w, f)
}

// configSecretCommands puts, into every external control plane, the
// kubeconfig of its config cluster (istioctl create-remote-secret
// --type=config), made from the account meshfleet renders for it.
func configSecretCommands(w io.Writer, f *fleet.Fleet) {
	first := true
	for _, x := range f.Clusters {
		cc := f.ConfigClusterOf(x)
		if x.Role != fleet.ExternalControlPlane || cc == nil {
			continue
		}
		if first {
			fmt.Fprintf(w, `
# 3. Config cluster kubeconfigs: an external control plane's istiod acts on
# its config cluster with the %[1]s account, whose token Secret
# %[1]s-token meshfleet renders into the config cluster's first stage.
# The external control plane's istiod starts once this is filled in.
`, plan.ConfigServiceAccount)
			first = false
		}
		ns := fleet.ExternalIstiodNamespace
		fmt.Fprintf(w, "istioctl create-remote-secret --context=%s --type=config --name=%s --server=%s \\\n  --namespace=%s --service-account=%s --create-service-account=false --secret-name=%s-token \\\n  | kubectl apply --context=%s -n %s -f -\n",
			shellQuote(kubeContext(cc)), cc.Name, shellQuote(cc.APIServer), ns, plan.ConfigServiceAccount, plan.ConfigServiceAccount, shellQuote(kubeContext(x)), ns)
	}
}

// cacertsCommands makes the mesh root and an intermediate CA per primary
// and fills each primary's cacerts with it.
func cacertsCommands(w io.Writer, f *fleet.Fleet, ps []*fleet.Cluster) {
	fmt.Fprintf(w, `
# 1. cacerts, before istiod starts: one root CA for the mesh and an
# intermediate CA per primary, made with the Makefile of Istio's tools/certs
# (https://github.com/istio/istio/tree/master/tools/certs; ISTIO is a checkout
# or release archive of Istio). Keep root-key.pem somewhere safe, offline.
make -f "$ISTIO/tools/certs/Makefile.selfsigned.mk" root-ca
`)
	for _, p := range ps {
		d := shellQuote(p.Name)
		fmt.Fprintf(w, "make -f \"$ISTIO/tools/certs/Makefile.selfsigned.mk\" %s-cacerts\n", d)
		namespaces := []string{istioNamespace(f, p)}
		if p.Role == fleet.ExternalControlPlane {
			// Its own istiod too, so that the ingress gateway it injects
			// trusts the external istiod.
			namespaces = append(namespaces, mesh.IstioNamespace)
		}
		for _, ns := range namespaces {
			fmt.Fprintf(w, `kubectl create secret generic cacerts -n %[3]s \
  --from-file=%[1]s/ca-cert.pem --from-file=%[1]s/ca-key.pem \
  --from-file=%[1]s/root-cert.pem --from-file=%[1]s/cert-chain.pem \
  --dry-run=client -o yaml | kubectl apply --context=%[2]s -f -
`, d, shellQuote(kubeContext(p)), ns)
		}
	}
}

// remoteSecretCommands puts, into every primary, a remote secret for
// every other cluster, made from the reader account meshfleet renders.
func remoteSecretCommands(w io.Writer, f *fleet.Fleet) {
	r := reads(f)
	if len(r) == 0 {
		return
	}
	fmt.Fprintf(w, `
# 2. Remote secrets: the istiod of every primary reads every other cluster's
# API server with that cluster's %[1]s account, whose token
# Secret %[1]s-token meshfleet renders into the cluster's
# first stage. Run each line once that stage is applied.
`, mesh.ReaderServiceAccount)
	for _, c := range f.Clusters {
		for _, p := range r[c.Name] {
			ns := ""
			if n := istioNamespace(f, c); n != mesh.IstioNamespace {
				ns = " --namespace=" + n // the reader account's
			}
			fmt.Fprintf(w, "istioctl create-remote-secret --context=%s --name=%s --server=%s%s \\\n  --service-account=%s --create-service-account=false --secret-name=%s-token \\\n  | kubectl apply --context=%s -n %s -f -\n",
				shellQuote(kubeContext(c)), c.Name, shellQuote(c.APIServer), ns, mesh.ReaderServiceAccount, mesh.ReaderServiceAccount, shellQuote(kubeContext(p)), istioNamespace(f, p))
		}
	}
}

// storeKeys says what the External Secrets store must hold and where
// the values come from.
func storeKeys(w io.Writer, f *fleet.Fleet) {
	s := f.Spec.Secrets
	fmt.Fprintf(w, `# Fleet %s takes its secrets from the External Secrets Operator %s %s.
# The ExternalSecrets meshfleet renders read these keys, each a map of properties:
`, f.Metadata.Name, s.Store.Kind, s.Store.Name)
	ps, r := primaries(f), reads(f)
	for _, p := range ps {
		fmt.Fprintf(w, "#   %s/%s/cacerts: ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem\n", s.KeyPrefix, p.Name)
	}
	for _, x := range f.Clusters {
		if cc := f.ConfigClusterOf(x); x.Role == fleet.ExternalControlPlane && cc != nil {
			fmt.Fprintf(w, "#   %s/%s/config: token, ca.crt (pushed by %s itself; read by external control plane %s)\n", s.KeyPrefix, cc.Name, cc.Name, x.Name)
		}
	}
	for _, c := range f.Clusters {
		var by []string
		for _, p := range r[c.Name] {
			by = append(by, p.Name)
		}
		if len(by) > 0 {
			fmt.Fprintf(w, "#   %s/%s/reader: token, ca.crt (read by the istiod of %s)\n", s.KeyPrefix, c.Name, strings.Join(by, ", "))
		}
	}
	if len(ps) > 0 {
		fmt.Fprintf(w, `
# cacerts: an intermediate CA per primary, signed by the mesh's one root, so
# root-cert.pem is the same in every key. Istio's tools/certs makes them
# (https://github.com/istio/istio/tree/master/tools/certs; ISTIO is a checkout
# or release archive of Istio) into <primary>/*.pem:
make -f "$ISTIO/tools/certs/Makefile.selfsigned.mk" root-ca
`)
		for _, p := range ps {
			fmt.Fprintf(w, "make -f \"$ISTIO/tools/certs/Makefile.selfsigned.mk\" %s-cacerts\n", p.Name)
		}
	}
	if len(r) > 0 {
		fmt.Fprintf(w, `
# reader: every cluster another one reads pushes the token and ca.crt of its
# %s account there itself (a PushSecret meshfleet renders): the
# store must accept those pushes; nothing to run.
`, mesh.ReaderServiceAccount)
	}
}
