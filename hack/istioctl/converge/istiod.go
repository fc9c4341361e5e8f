package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Istiod is a real pilot-discovery run for an istiod Deployment.
type Istiod struct {
	cluster   *Cluster
	ns, name  string
	root      string      // its "/" : mounts live under it, and it runs there
	ip        string      // its pod address (podnet.go)
	ports     map[int]int // container port -> port it listens on (the same at ip; 8080 moved)
	http      string      // 127.0.0.1:port of --httpAddr (debug, /ready)
	cports    []corev1.ContainerPort
	plugged   bool // cacerts had keys when it started
	cmd       *exec.Cmd
	log       string
	startedAt time.Time
	labels    map[string]string // its pod's labels
	ready     bool
	env       map[string]string // its container's environment, resolved
}

// clusterID is the cluster ID istiod runs as: CLUSTER_ID (an external
// istiod runs as its config cluster), else the cluster it runs in.
func (ist *Istiod) clusterID() string {
	if id := ist.env["CLUSTER_ID"]; id != "" {
		return id
	}
	return ist.cluster.name
}

// external: an external istiod (EXTERNAL_ISTIOD), whose config cluster is
// another cluster, read through the kubeconfig it mounts.
func (ist *Istiod) external() bool { return ist.env["EXTERNAL_ISTIOD"] == "true" }

// id names it in check lines: cluster/name, with the namespace when it is
// not istio-system (an external control plane runs two istiods).
func (ist *Istiod) id() string {
	if ist.ns != "istio-system" {
		return "istiod " + ist.cluster.name + "/" + ist.ns + "/" + ist.name
	}
	return "istiod " + ist.cluster.name + "/" + ist.name
}

// The container ports istiod listens on and the flag that moves each.
var istiodPortFlags = map[int]string{
	8080:  "--httpAddr",
	15010: "--grpcAddr",
	15012: "--secureGRPCAddr",
	15017: "--httpsAddr",
	15014: "--monitoringAddr",
}

// istiodPod runs (once) and judges the istiod of Deployment d.
func (h *Harness) istiodPod(ctx context.Context, c *Cluster, d *appsv1.Deployment) (bool, string) {
	key := d.Namespace + "/" + d.Name
	// The stand-ins' loop and the driver both run the kubelet stand-in:
	// one of them starts a Deployment's istiod, once.
	c.startMu.Lock()
	defer c.startMu.Unlock()
	c.mu.Lock()
	ist := c.istiods[key]
	c.mu.Unlock()
	if ist == nil {
		// Its pod goes through admission like any other.
		if why := h.admitPod(ctx, c, d); why != "" {
			return false, why
		}
		var err error
		ist, err = h.startIstiod(ctx, c, d)
		if err != nil {
			return false, "starting pilot-discovery: " + err.Error()
		}
		c.mu.Lock()
		c.istiods[key] = ist
		c.mu.Unlock()
	}
	if ist.cmd.ProcessState != nil {
		return false, "pilot-discovery exited: " + lastLines(readFile(ist.log), 3)
	}
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + ist.http + "/ready")
	if err != nil {
		return false, "istiod /ready: " + err.Error()
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return false, fmt.Sprintf("istiod /ready: %d", resp.StatusCode)
	}
	ist.ready = true
	return true, ""
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// startIstiod runs pilot-discovery with the Deployment's args and env, its
// volumes materialised under a directory it runs in (the mount paths made
// relative: istiod's defaults, ./etc/cacerts and ./etc/istio/config/mesh,
// are the mount paths seen from /), its ports moved to free local ones, and
// a kubeconfig with its ServiceAccount's token for the local API server in
// place of the in-cluster config. It listens on a pod address of its own
// (podnet.go) at its container ports, so that its Service's EndpointSlice
// can name it and the API server calls its webhooks there.
func (h *Harness) startIstiod(ctx context.Context, c *Cluster, d *appsv1.Deployment) (*Istiod, error) {
	var ct *corev1.Container
	for i := range d.Spec.Template.Spec.Containers {
		if x := &d.Spec.Template.Spec.Containers[i]; len(x.Args) > 0 && x.Args[0] == "discovery" {
			ct = x
		}
	}
	// Named with the namespace: an external control plane's cluster runs
	// two Deployments named istiod.
	base := c.name + "-" + d.Namespace + "-" + d.Name
	ist := &Istiod{cluster: c, ns: d.Namespace, name: d.Name, ports: map[int]int{}, startedAt: time.Now(),
		root: filepath.Join(h.work, "istiod", base), labels: d.Spec.Template.Labels, env: map[string]string{}}
	if err := os.MkdirAll(ist.root, 0o755); err != nil {
		return nil, err
	}
	ip, err := h.pods.alloc(h)
	if err != nil {
		return nil, err
	}
	ist.ip, ist.cports = ip, ct.Ports
	sa := d.Spec.Template.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	// Volumes, as the kubelet mounts them now.
	vols := map[string]corev1.Volume{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		vols[v.Name] = v
	}
	for _, m := range ct.VolumeMounts {
		v, ok := vols[m.Name]
		if !ok {
			return nil, fmt.Errorf("volume %s is not defined", m.Name)
		}
		dir := filepath.Join(ist.root, m.MountPath)
		files, err := h.volumeFiles(ctx, c, d.Namespace, sa, v)
		if err != nil {
			return nil, fmt.Errorf("volume %s: %w", m.Name, err)
		}
		if files == nil {
			continue // optional and absent: not mounted
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		for name, b := range files {
			if m.SubPath != "" && name != m.SubPath {
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				return nil, err
			}
		}
		if v.Secret != nil && v.Secret.SecretName == "cacerts" && len(files) > 0 {
			ist.plugged = true
		}
	}
	// In-cluster config: the pod's ServiceAccount token for the local API server.
	tok, err := c.saToken(ctx, d.Namespace, sa, nil)
	if err != nil {
		return nil, fmt.Errorf("token for ServiceAccount %s: %w", sa, err)
	}
	kc := filepath.Join(ist.root, "in-cluster.kubeconfig")
	if err := os.WriteFile(kc, kubeconfig(c.name, c.url, c.caPEM, tok), 0o600); err != nil {
		return nil, err
	}
	// The ServiceAccount's token where the kubelet mounts it, and the
	// in-cluster API server's address, as every pod has them: an external
	// istiod reads its own cluster's remote secrets through them
	// (LOCAL_CLUSTER_SECRET_WATCHER), while KUBECONFIG names its config
	// cluster. The absolute path is seen only by this process (inCluster).
	if !ptr.Deref(d.Spec.Template.Spec.AutomountServiceAccountToken, true) {
		tok = ""
	}
	if tok != "" {
		sadir := filepath.Join(ist.root, "var/run/secrets/kubernetes.io/serviceaccount")
		if err := os.MkdirAll(sadir, 0o755); err != nil {
			return nil, err
		}
		for name, b := range map[string][]byte{"token": []byte(tok), "ca.crt": c.caPEM, "namespace": []byte(d.Namespace)} {
			if err := os.WriteFile(filepath.Join(sadir, name), b, 0o600); err != nil {
				return nil, err
			}
		}
	}
	// Environment.
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + ist.root}
	if u, err := url.Parse(c.url); err == nil && tok != "" {
		env = append(env, "KUBERNETES_SERVICE_HOST="+u.Hostname(), "KUBERNETES_SERVICE_PORT="+u.Port())
	}
	for _, e := range ct.Env {
		val := e.Value
		if e.ValueFrom != nil {
			val, err = h.envFrom(ctx, c, d, ct, e.ValueFrom, sa, ip)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
		}
		if e.Name == "KUBECONFIG" {
			if _, err := os.Stat(filepath.Join(ist.root, val)); err != nil {
				val = kc // the mount is absent: in-cluster config
			} else {
				// A kubeconfig the output mounts (external control plane):
				// its fleet apiServer URLs mapped to the local API servers.
				val = filepath.Join(ist.root, val)
				if b, err := os.ReadFile(val); err == nil {
					_ = os.WriteFile(val, []byte(h.mapAPIServers(string(b))), 0o600)
				}
			}
		}
		env = append(env, e.Name+"="+val)
		ist.env[e.Name] = val
	}
	if !hasEnv(ct.Env, "KUBECONFIG") {
		env = append(env, "KUBECONFIG="+kc)
	}
	// Args, with every listener on the pod address, but the debug port
	// on 127.0.0.1 at a free port: istiod answers /debug only to loopback
	// callers (as through kubectl port-forward).
	args := append([]string(nil), ct.Args...)
	for cp, flag := range istiodPortFlags {
		host, p := ip, cp
		if cp == 8080 {
			host = "127.0.0.1"
			if p, err = freePort(); err != nil {
				return nil, err
			}
		}
		ist.ports[cp] = p
		args = append(args, fmt.Sprintf("%s=%s:%d", flag, host, p))
	}
	ist.http = fmt.Sprintf("127.0.0.1:%d", ist.ports[8080])
	ist.log = filepath.Join(h.work, "istiod-"+base+".log")
	cmd := h.inCluster(ctx, ist.root, filepath.Join(h.bin, "pilot-discovery"), args)
	cmd.Dir, cmd.Env = ist.root, env
	if err := h.startLogged(cmd, ist.log); err != nil {
		return nil, err
	}
	ist.cmd = cmd
	h.logf("cluster %s: istiod %s started (pid %d, http %s, plugged CA: %v)", c.name, d.Name, cmd.Process.Pid, ist.http, ist.plugged)
	return ist, nil
}

func hasEnv(env []corev1.EnvVar, name string) bool {
	for _, e := range env {
		if e.Name == name {
			return true
		}
	}
	return false
}

// volumeFiles is what the kubelet would put in the volume now; nil for an
// optional Secret or ConfigMap that does not exist.
func (h *Harness) volumeFiles(ctx context.Context, c *Cluster, ns, sa string, v corev1.Volume) (map[string][]byte, error) {
	switch {
	case v.EmptyDir != nil:
		return map[string][]byte{}, nil
	case v.ConfigMap != nil:
		cm, err := c.kc.CoreV1().ConfigMaps(ns).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && ptr.Deref(v.ConfigMap.Optional, false) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		out := map[string][]byte{}
		for k, s := range cm.Data {
			out[k] = []byte(s)
		}
		return out, nil
	case v.Secret != nil:
		s, err := c.kc.CoreV1().Secrets(ns).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && ptr.Deref(v.Secret.Optional, false) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return s.Data, nil
	case v.Projected != nil:
		out := map[string][]byte{}
		for _, src := range v.Projected.Sources {
			if t := src.ServiceAccountToken; t != nil {
				var aud []string
				if t.Audience != "" {
					aud = []string{t.Audience}
				}
				tok, err := c.saToken(ctx, ns, sa, aud)
				if err != nil {
					return nil, err
				}
				out[t.Path] = []byte(tok)
			}
			if cm := src.ConfigMap; cm != nil {
				m, err := c.kc.CoreV1().ConfigMaps(ns).Get(ctx, cm.Name, metav1.GetOptions{})
				if err == nil {
					for k, s := range m.Data {
						out[k] = []byte(s)
					}
				}
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("volume type not stood in")
}

func (h *Harness) envFrom(ctx context.Context, c *Cluster, d *appsv1.Deployment, ct *corev1.Container, src *corev1.EnvVarSource, sa, podIP string) (string, error) {
	switch {
	case src.FieldRef != nil:
		switch src.FieldRef.FieldPath {
		case "metadata.name":
			return d.Name + "-converge", nil
		case "metadata.namespace":
			return d.Namespace, nil
		case "spec.serviceAccountName":
			return sa, nil
		case "spec.nodeName":
			return "converge-node", nil
		case "status.podIP":
			return podIP, nil
		case "status.hostIP":
			return "127.0.0.1", nil
		}
		return "", fmt.Errorf("fieldRef %s not stood in", src.FieldRef.FieldPath)
	case src.ResourceFieldRef != nil:
		q, ok := ct.Resources.Limits[corev1.ResourceName(strings.TrimPrefix(src.ResourceFieldRef.Resource, "limits."))]
		switch src.ResourceFieldRef.Resource {
		case "limits.cpu", "requests.cpu":
			if !ok {
				return "2", nil // no limit: the node's allocatable (this machine's cores)
			}
			v := q.MilliValue()
			return strconv.FormatInt((v+999)/1000, 10), nil
		case "limits.memory", "requests.memory":
			if !ok {
				return strconv.FormatInt(8<<30, 10), nil
			}
			return strconv.FormatInt(q.Value(), 10), nil
		}
		return "", fmt.Errorf("resourceFieldRef %s not stood in", src.ResourceFieldRef.Resource)
	case src.SecretKeyRef != nil:
		s, err := c.kc.CoreV1().Secrets(d.Namespace).Get(ctx, src.SecretKeyRef.Name, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		return string(s.Data[src.SecretKeyRef.Key]), nil
	case src.ConfigMapKeyRef != nil:
		cm, err := c.kc.CoreV1().ConfigMaps(d.Namespace).Get(ctx, src.ConfigMapKeyRef.Name, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		return cm.Data[src.ConfigMapKeyRef.Key], nil
	}
	return "", fmt.Errorf("env source not stood in")
}

// inCluster is the command that runs bin with args as the kubelet runs a
// container, as far as istiod can tell: in a mount namespace of its own
// (unshare(1)), with /run (where /var/run points) bound to the pod's
// var/run under root, so that the ServiceAccount token and the Secrets
// mounted under /var/run are where the pod finds them. Nothing outside
// that process sees the mount. Where unshare cannot make the namespace
// (no CAP_SYS_ADMIN), it runs as it is and only the relative mounts exist.
func (h *Harness) inCluster(ctx context.Context, root, bin string, args []string) *exec.Cmd {
	h.unshareOnce.Do(func() {
		h.unshareErr = exec.Command("unshare", "--mount", "--propagation", "private", "true").Run()
		if h.unshareErr != nil {
			fmt.Printf("unshare --mount fails here (%v): istiods run without their /var/run mounts, and an external istiod cannot read its own cluster's remote secrets\n", h.unshareErr)
		}
	})
	run := filepath.Join(root, "var", "run")
	if h.unshareErr != nil || os.MkdirAll(run, 0o755) != nil {
		return exec.CommandContext(ctx, bin, args...)
	}
	// The paths and args reach sh as positional parameters: no quoting.
	script := `mount --bind "$1" /run && shift && exec "$@"`
	return exec.CommandContext(ctx, "unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "sh", run, bin}, args...)...)
}
