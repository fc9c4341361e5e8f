// Command converge is the convergence harness behind hack/converge.sh. It
// takes a fleet (as hack/fleetinfo prints it) and the tree `meshfleet
// render` wrote for it, and shows whether the mesh comes up:
//
//   - one etcd and one kube-apiserver per cluster, on 127.0.0.1 of a
//     network namespace of its own (netns.go);
//   - each cluster's output applied in its delivery's order (plan.go,
//     drive.go), objects made by Istio's real charts (charts.go) or by
//     `istioctl manifest generate`, readiness computed with kstatus as Flux
//     computes it, or as Argo CD's health with argocd-cm's Lua scripts
//     (argohealth.go), every wait bounded;
//   - with ca.certManager, cert-manager's real controllers and the fleet's
//     issuer (certmanager.go);
//   - a real istiod (pilot-discovery) for every istiod Deployment that
//     gets applied, configured from that Deployment (istiod.go), on a
//     pod address of its own (podnet.go), where the API servers call its
//     webhooks through its Service's EndpointSlice (endpoints.go);
//   - the controllers and people a real cluster has, where they matter to
//     the mesh, stood in for in standins.go, and only there;
//   - checks on what every istiod reports (checks.go; an external control
//     plane's own in external.go; revision tags' webhooks in tags.go): one
//     line each, then `N passed, M failed`.
//
// Usage: converge -fleet fleet.json -rendered DIR -bin TOOLS_BIN [-break CASE]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Fleet is the part of the fleet (hack/fleetinfo's JSON) the harness reads.
type Fleet struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Mesh struct {
			ID          string `json:"id"`
			TrustDomain string `json:"trustDomain"`
		} `json:"mesh"`
		Istio struct {
			Version  string            `json:"version"`
			Revision string            `json:"revision"`
			Tags     map[string]string `json:"tags"` // revision tag -> revision
		} `json:"istio"`
		Installer string `json:"installer"`
		Delivery  struct {
			Flux *struct {
				Path string `json:"path"`
			} `json:"flux"`
			ArgoCD *struct {
				Path string `json:"path"`
			} `json:"argocd"`
		} `json:"delivery"`
		CA struct {
			CertManager *struct {
				Issuer struct {
					Name  string `json:"name"`
					Kind  string `json:"kind"`
					Group string `json:"group"`
				} `json:"issuer"`
			} `json:"certManager"`
		} `json:"ca"`
		Secrets struct {
			Provider  string `json:"provider"`
			KeyPrefix string `json:"keyPrefix"`
		} `json:"secrets"`
		Clusters map[string]*FleetCluster `json:"clusters"`
	} `json:"spec"`
}

// FleetCluster is one cluster as the fleet declares it.
type FleetCluster struct {
	Role            string        `json:"role"`
	Network         string        `json:"network"`
	APIServer       string        `json:"apiServer"`
	ControlPlane    string        `json:"controlPlane"`
	ConfigCluster   bool          `json:"configCluster"`
	EastWestGateway *FleetGateway `json:"eastWestGateway"`
	IstiodGateway   *FleetGateway `json:"istiodGateway"`
	Istio           struct {
		Tags map[string]string `json:"tags"` // over the fleet's tags
	} `json:"istio"`
}

// FleetGateway is a gateway the fleet declares: its address (an IP or a
// host name the owner keeps a DNS record for, dns.go) and the certificate
// it terminates TLS with.
type FleetGateway struct {
	Address     string `json:"address"`
	Certificate *struct {
		SecretName string `json:"secretName"`
		Issuer     *struct {
			Name  string `json:"name"`
			Kind  string `json:"kind"`
			Group string `json:"group"`
		} `json:"issuer"`
	} `json:"certificate"`
}

// Harness is one run.
type Harness struct {
	fleet    Fleet
	rendered string
	bin      string
	work     string
	brk      string
	delivery string  // flux, argocd or none
	argoCM   *ArgoCM // Argo CD's health customizations (argohealth.go)

	pluginDir, meshfleet string // -argocd-plugin, -meshfleet

	stepTimeout  time.Duration
	checkTimeout time.Duration

	names    []string
	clusters map[string]*Cluster
	procs    *Procs
	pods     *podNet
	ops      *Operator

	mu      sync.Mutex
	results []Result

	unshareOnce sync.Once
	unshareErr  error // unshare(1) cannot make a mount namespace here

	publicOnce sync.Once
	public     *publicCA

	mentionOnce sync.Once
	mentionText string
	logf        func(format string, args ...any)
}

// Result is one check's outcome.
type Result struct {
	OK   bool
	Skip string // non-empty: a known finding, reported as SKIP with the reason
	Name string
	Msg  string
}

func main() {
	var (
		fleetFile = flag.String("fleet", "", "the fleet as JSON (hack/fleetinfo)")
		rendered  = flag.String("rendered", "", "the directory `meshfleet render` wrote")
		bin       = flag.String("bin", "", "directory with etcd, kube-apiserver, kubectl, istioctl, kustomize, pilot-discovery")
		work      = flag.String("work", "", "work directory (default: a new temporary one, removed at the end)")
		brk       = flag.String("break", "", "negative case to inject: "+strings.Join(breakCases, ", "))
		delivery  = flag.String("delivery", "", "flux, argocd or none (default: flux when rendered, else argocd when rendered, else none)")
		plugin    = flag.String("argocd-plugin", "", "directory an Argo CD Application per cluster renders with the meshfleet plugin (`meshfleet cmp`, run there as Argo CD runs it); its argocd-cm patch gives the health checks")
		meshfleet = flag.String("meshfleet", "", "the meshfleet binary, for -argocd-plugin")
		stepTO    = flag.Duration("step-timeout", 90*time.Second, "bound on each apply step's readiness")
		checkTO   = flag.Duration("check-timeout", 45*time.Second, "bound on each check")
		known     = flag.String("known", "", "file of known findings: lines `CHECK-PREFIX<TAB>reason`; a failing check that matches is reported as SKIP with the reason")
		verbose   = flag.Bool("v", false, "log progress to stderr")
	)
	flag.Parse()
	if err := enterNetns(); err != nil {
		fmt.Fprintln(os.Stderr, "converge:", err)
		os.Exit(2)
	}
	h := &Harness{rendered: *rendered, bin: *bin, brk: *brk, stepTimeout: *stepTO, checkTimeout: *checkTO,
		clusters: map[string]*Cluster{}, procs: &Procs{}, pods: &podNet{}}
	start := time.Now()
	h.logf = func(format string, args ...any) {
		if *verbose {
			fmt.Fprintf(os.Stderr, "converge %5.1fs: %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
		}
	}
	if *fleetFile == "" || *rendered == "" || *bin == "" {
		flag.Usage()
		os.Exit(2)
	}
	if h.brk != "" && !validBreak(h.brk) {
		fmt.Fprintf(os.Stderr, "converge: unknown -break %q (want one of %s)\n", h.brk, strings.Join(breakCases, ", "))
		os.Exit(2)
	}
	b, err := os.ReadFile(*fleetFile)
	if err == nil {
		err = json.Unmarshal(b, &h.fleet)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "converge: reading the fleet:", err)
		os.Exit(2)
	}
	knownFindings, err := readKnown(*known)
	if err != nil {
		fmt.Fprintln(os.Stderr, "converge:", err)
		os.Exit(2)
	}
	for n := range h.fleet.Spec.Clusters {
		h.names = append(h.names, n)
	}
	sort.Strings(h.names)
	h.delivery = *delivery
	if *plugin != "" {
		if *meshfleet == "" {
			fmt.Fprintln(os.Stderr, "converge: -argocd-plugin needs -meshfleet")
			os.Exit(2)
		}
		h.delivery, h.pluginDir, h.meshfleet = "argocd-plugin", *plugin, *meshfleet
	}
	if h.delivery == "" {
		h.delivery = "none"
		if isDir(filepath.Join(h.rendered, "flux")) {
			h.delivery = "flux"
		} else if isDir(filepath.Join(h.rendered, "argocd")) {
			h.delivery = "argocd"
		}
	}
	h.work = *work
	own := h.work == ""
	if own {
		h.work, err = os.MkdirTemp("", "converge.")
	} else {
		err = os.MkdirAll(h.work, 0o755)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "converge:", err)
		os.Exit(2)
	}

	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "converge: %v: stopping\n", s)
		cancel()
		h.procs.StopAll()
		if own {
			os.RemoveAll(h.work)
		}
		os.Exit(130)
	}()

	rc := h.run(ctx, knownFindings)
	cancel()
	h.procs.StopAll()
	if own {
		os.RemoveAll(h.work) // a -work directory is the caller's to keep or remove
	}
	os.Exit(rc)
}

func (h *Harness) run(ctx context.Context, known []knownFinding) int {
	fmt.Printf("fleet %s: %d clusters, installer %s, delivery %s, secrets %s%s\n", h.fleet.Metadata.Name, len(h.names),
		h.fleet.Spec.Installer, h.delivery, h.fleet.Spec.Secrets.Provider, map[bool]string{true: ", negative case " + h.brk, false: ""}[h.brk != ""])
	if h.fleet.Spec.Installer == "sail" {
		fmt.Println("installer sail: the Sail operator cannot be had here (not on the Go module proxy); each Istio and IstioRevisionTag is stood in for by the charts Sail installs for it (istiod over Sail's default profile values and spec.values; a tag's webhook and Service; base for Istio default and tag default)")
	}
	if err := h.applyBreak(); err != nil {
		fmt.Printf("FAIL setup: -break %s: %v\n0 passed, 1 failed\n", h.brk, err)
		return 1
	}
	if err := h.startClusters(ctx); err != nil {
		fmt.Printf("FAIL setup: %v\n0 passed, 1 failed\n", err)
		return 1
	}
	h.ops = newOperator(h)
	if h.fleet.Spec.CA.CertManager != nil {
		for _, n := range h.names {
			if err := h.startCertManager(ctx, h.clusters[n]); err != nil {
				fmt.Printf("FAIL setup: cluster %s: cert-manager: %v\n0 passed, 1 failed\n", n, err)
				return 1
			}
		}
	}
	for _, n := range h.names {
		if err := h.startPublicIssuers(ctx, h.clusters[n]); err != nil {
			fmt.Printf("FAIL setup: cluster %s: public CA: %v\n0 passed, 1 failed\n", n, err)
			return 1
		}
	}
	for _, n := range h.names {
		c := h.clusters[n]
		if err := h.plan(c); err != nil {
			h.record(Result{Name: "plan " + n, Msg: err.Error()})
		}
	}
	// Stand-ins and the apply drivers of every cluster run side by side: a
	// cluster's step may wait on another cluster's progress.
	sctx, stopStandins := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, n := range h.names {
		c := h.clusters[n]
		wg.Add(1)
		go func() { defer wg.Done(); h.standins(sctx, c) }()
	}
	var dwg sync.WaitGroup
	for _, n := range h.names {
		c := h.clusters[n]
		dwg.Add(1)
		go func() { defer dwg.Done(); h.drive(ctx, c) }()
	}
	dwg.Wait()
	h.checks(ctx)
	stopStandins()
	wg.Wait()

	passed, failed, skipped := 0, 0, 0
	used := make([]bool, len(known))
	for i := range h.results {
		r := &h.results[i]
		if r.OK {
			continue
		}
		for j, k := range known {
			if strings.HasPrefix(r.Name, k.prefix) {
				r.Skip = k.reason
				used[j] = true
				break
			}
		}
	}
	if h.brk == "" {
		for j, k := range known {
			if !used[j] {
				h.results = append(h.results, Result{Name: "known finding " + k.prefix,
					Msg: "no longer fails: remove it from the known findings (" + k.reason + ")"})
			}
		}
	}
	for _, r := range h.results {
		switch {
		case r.OK:
			passed++
			fmt.Printf("PASS %s%s\n", r.Name, suffix(r.Msg))
		case r.Skip != "":
			skipped++
			fmt.Printf("SKIP %s: known finding (%s)%s\n", r.Name, r.Skip, suffix(r.Msg))
		default:
			failed++
			fmt.Printf("FAIL %s%s\n", r.Name, suffix(r.Msg))
		}
	}
	if skipped > 0 {
		fmt.Printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	} else {
		fmt.Printf("%d passed, %d failed\n", passed, failed)
	}
	if failed > 0 {
		return 1
	}
	return 0
}

func suffix(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + msg
}

func (h *Harness) record(r Result) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.results = append(h.results, r)
}

type knownFinding struct{ prefix, reason string }

func readKnown(path string) ([]knownFinding, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []knownFinding
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		p, r, ok := strings.Cut(l, "\t")
		if !ok {
			return nil, fmt.Errorf("%s: want CHECK-PREFIX<TAB>reason: %q", path, l)
		}
		out = append(out, knownFinding{p, r})
	}
	return out, nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
