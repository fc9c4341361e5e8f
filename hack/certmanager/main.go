// Command cert-manager-controller runs cert-manager's own controllers for
// hack/converge.sh: the Certificate controllers, the CertificateRequest
// approver and its CA and self-signed signers, and the Issuer and
// ClusterIssuer controllers, built from github.com/cert-manager/cert-manager
// (pkg/...). cert-manager's cmd/controller is a module of its own that the
// Go module proxy does not serve, so this is the wiring it does: the same
// controller constructors and context, without leader election, metrics,
// ACME, Vault, Venafi or the ingress and gateway shims.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/cert-manager/cert-manager/pkg/controller"
	"golang.org/x/sync/errgroup"
	"k8s.io/klog/v2"

	// Each registers its controller with controller.Known().
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	// The issuer types the Issuer controllers can set up.
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// enabled are the controllers run: every one of cert-manager's defaults
// that the issuers above need. cert-manager's own defaults live in its
// cmd/controller/app/options.
var enabled = map[string]bool{
	"certificaterequests-approver":          true,
	"certificaterequests-issuer-ca":         true,
	"certificaterequests-issuer-selfsigned": true,
	"certificates-issuing":                  true,
	"certificates-key-manager":              true,
	"certificates-readiness":                true,
	"certificates-request-manager":          true,
	"certificates-revision-manager":         true,
	"certificates-trigger":                  true,
	"clusterissuers":                        true,
	"issuers":                               true,
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the API server")
	crNS := flag.String("cluster-resource-namespace", "cert-manager", "namespace of the Secrets ClusterIssuers refer to")
	workers := flag.Int("workers", 5, "workers per controller")
	klog.InitFlags(nil)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *kubeconfig, *crNS, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "cert-manager-controller:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, kubeconfig, crNS string, workers int) error {
	f, err := controller.NewContextFactory(ctx, controller.ContextOptions{
		Kubeconfig:    kubeconfig,
		IssuerOptions: controller.IssuerOptions{ClusterResourceNamespace: crNS},
		CertificateOptions: controller.CertificateOptions{
			// cert-manager's defaults (--certificate-request-minimum/maximum-backoff-duration).
			CertificateRequestMinimumBackoffDuration: time.Hour,
			CertificateRequestMaximumBackoffDuration: 32 * time.Hour,
		},
	})
	if err != nil {
		return err
	}
	base, err := f.Build()
	if err != nil {
		return err
	}
	var names []string
	for n := range controller.Known() {
		names = append(names, n)
	}
	sort.Strings(names)
	g, gctx := errgroup.WithContext(ctx)
	started := 0
	for _, n := range names {
		if !enabled[n] {
			continue
		}
		c, err := controller.Known()[n](f)
		if err != nil {
			return fmt.Errorf("controller %s: %w", n, err)
		}
		g.Go(func() error { return c.Run(workers, gctx) })
		started++
	}
	if started != len(enabled) {
		return fmt.Errorf("started %d of %d controllers", started, len(enabled))
	}
	base.SharedInformerFactory.Start(gctx.Done())
	base.KubeSharedInformerFactory.Start(gctx.Done())
	base.HTTP01ResourceMetadataInformersFactory.Start(gctx.Done())
	return g.Wait()
}
