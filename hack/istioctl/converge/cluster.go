package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// Cluster is one fleet cluster: its own etcd and kube-apiserver.
type Cluster struct {
	name       string
	fc         *FleetCluster
	dir        string
	url        string // https://127.0.0.1:PORT
	caPEM      []byte
	token      string // admin bearer token
	kubeconfig string // admin kubeconfig
	rest       *rest.Config
	kc         kubernetes.Interface
	dyn        dynamic.Interface
	mapper     *restmapper.DeferredDiscoveryRESTMapper
	saKey      *rsa.PrivateKey

	startMu  sync.Mutex // held while an istiod is looked up and started
	mu       sync.Mutex
	steps    []*Step
	istiods  map[string]*Istiod // by namespace/name of the Deployment
	notes    map[string]string  // stand-in notes shown when a step times out
	admitted map[string]int64   // Deployment UID -> generation whose pod was admitted
	settled  bool               // the delivery waits: nothing was applied for a tick

	certManager bool       // cert-manager's CRDs applied and its controllers started
	kubelet     sync.Mutex // one deployments pass at a time: an istiod is started once
}

// Procs holds every process the harness started, to stop them by PID.
type Procs struct {
	mu    sync.Mutex
	procs []*exec.Cmd
	done  bool
}

// Start starts cmd in its own process group and remembers it.
func (p *Procs) Start(cmd *exec.Cmd) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return fmt.Errorf("stopping")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	p.procs = append(p.procs, cmd)
	go cmd.Wait() //nolint:errcheck // reaped; exit is seen through ProcessState
	return nil
}

// StopAll sends SIGTERM to every started process (by PID), then SIGKILL to
// those still running after 5 seconds.
func (p *Procs) StopAll() {
	p.mu.Lock()
	p.done = true
	procs := p.procs
	p.mu.Unlock()
	for _, c := range procs {
		_ = c.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, c := range procs {
		for time.Now().Before(deadline) && c.Process.Signal(syscall.Signal(0)) == nil {
			time.Sleep(50 * time.Millisecond)
		}
		_ = c.Process.Kill()
	}
}

// freePort returns a port on 127.0.0.1 nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (h *Harness) startClusters(ctx context.Context) error {
	// One CA for every apiserver's serving certificate: a kubeconfig made
	// for one cluster carries the CA the way a real one does.
	caKey, caCert, caPEM, err := newCA("converge apiserver CA")
	if err != nil {
		return err
	}
	errs := make(chan error, len(h.names))
	for _, n := range h.names {
		c := &Cluster{name: n, fc: h.fleet.Spec.Clusters[n], dir: filepath.Join(h.work, "clusters", n), caPEM: caPEM,
			istiods: map[string]*Istiod{}, notes: map[string]string{}, admitted: map[string]int64{}}
		h.clusters[n] = c
		go func() { errs <- h.startCluster(ctx, c, caKey, caCert) }()
	}
	var first error
	for range h.names {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (h *Harness) startCluster(ctx context.Context, c *Cluster, caKey *rsa.PrivateKey, caCert *x509.Certificate) error {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	ports := make([]int, 3)
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return err
		}
		ports[i] = p
	}
	etcdPort, peerPort, apiPort := ports[0], ports[1], ports[2]
	c.url = fmt.Sprintf("https://127.0.0.1:%d", apiPort)

	// Serving certificate, service-account signing key, admin token.
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "kube-apiserver " + c.name},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(c.dir, name)
		_ = os.WriteFile(p, b, 0o600)
		return p
	}
	crt := write("apiserver.crt", pemBlock("CERTIFICATE", der))
	keyFile := write("apiserver.key", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key)))
	c.saKey, _ = rsa.GenerateKey(rand.Reader, 2048)
	saKey := write("sa.key", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(c.saKey)))
	pubDER, _ := x509.MarshalPKIXPublicKey(&c.saKey.PublicKey)
	saPub := write("sa.pub", pemBlock("PUBLIC KEY", pubDER))
	c.token = randHex(16)
	tokens := write("tokens.csv", []byte(c.token+",admin,admin,system:masters\n"))

	etcd := exec.CommandContext(ctx, filepath.Join(h.bin, "etcd"), "--name", c.name, "--data-dir", filepath.Join(c.dir, "etcd"),
		"--listen-client-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdPort), "--advertise-client-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdPort),
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peerPort), "--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peerPort),
		"--initial-cluster", fmt.Sprintf("%s=http://127.0.0.1:%d", c.name, peerPort),
		"--listen-metrics-urls", "", "--log-level", "warn", "--unsafe-no-fsync", "--quota-backend-bytes", "1073741824")
	if err := h.startLogged(etcd, filepath.Join(c.dir, "etcd.log")); err != nil {
		return fmt.Errorf("cluster %s: etcd: %w", c.name, err)
	}
	api := exec.CommandContext(ctx, filepath.Join(h.bin, "kube-apiserver"),
		"--etcd-servers", fmt.Sprintf("http://127.0.0.1:%d", etcdPort),
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", strconv.Itoa(apiPort),
		"--tls-cert-file", crt, "--tls-private-key-file", keyFile,
		"--token-auth-file", tokens,
		"--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", saPub, "--service-account-signing-key-file", saKey,
		"--service-account-max-token-expiration", "48h",
		"--service-cluster-ip-range", "10.96.0.0/16",
		"--endpoint-reconciler-type", "none",
		// Webhook Services resolve through their EndpointSlices, to pod
		// addresses (podnet.go): no kube-proxy makes ClusterIPs routable
		// here. kube-proxy would forward a ClusterIP to the same endpoint.
		"--enable-aggregator-routing=true",
		"--disable-admission-plugins", "ServiceAccount",
		"--allow-privileged=true", "--profiling=false")
	// The public CA's root is a system root of every API server (Go reads
	// SSL_CERT_FILE on Linux), as a cloud's API server trusts public CAs:
	// a webhook without caBundle is verified with it.
	api.Env = append(os.Environ(), "SSL_CERT_FILE="+h.publicCA().file)
	if err := h.startLogged(api, filepath.Join(c.dir, "apiserver.log")); err != nil {
		return fmt.Errorf("cluster %s: kube-apiserver: %w", c.name, err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.caPEM)
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	deadline := time.Now().Add(90 * time.Second)
	for {
		req, _ := http.NewRequest("GET", c.url+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("cluster %s: kube-apiserver not ready after 90s (log: %s)", c.name, filepath.Join(c.dir, "apiserver.log"))
		}
		time.Sleep(300 * time.Millisecond)
	}
	c.kubeconfig = filepath.Join(c.dir, "kubeconfig")
	if err := os.WriteFile(c.kubeconfig, kubeconfig(c.name, c.url, c.caPEM, c.token), 0o600); err != nil {
		return err
	}
	c.rest = &rest.Config{Host: c.url, BearerToken: c.token, TLSClientConfig: rest.TLSClientConfig{CAData: c.caPEM}, QPS: 200, Burst: 400}
	c.kc = kubernetes.NewForConfigOrDie(c.rest)
	c.dyn = dynamic.NewForConfigOrDie(c.rest)
	c.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(c.rest)))
	h.logf("cluster %s: kube-apiserver ready at %s", c.name, c.url)
	return nil
}

func (h *Harness) startLogged(cmd *exec.Cmd, logFile string) error {
	f, err := os.Create(logFile)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = f, f
	return h.procs.Start(cmd)
}

// kubeconfig is a kubeconfig for one cluster with a bearer token.
func kubeconfig(name, url string, ca []byte, token string) []byte {
	return []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: %[1]s
  cluster:
    server: %[2]s
    certificate-authority-data: %[3]s
users:
- name: %[1]s
  user:
    token: %[4]s
contexts:
- name: %[1]s
  context: {cluster: %[1]s, user: %[1]s}
current-context: %[1]s
`, name, url, b64(ca), token))
}

func (c *Cluster) resetMapper() { c.mapper.Reset() }

var _ meta.RESTMapper = (*restmapper.DeferredDiscoveryRESTMapper)(nil)
