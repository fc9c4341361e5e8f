package main

// Stand-ins: every part of a real cluster, and every manual step, that the
// harness plays itself, and nothing else. Everything here acts only on
// what the rendered output put into the local API servers, never changes a
// rendered object's spec, and maps a real-world address to a local one
// mechanically (a table), so a wrong rendered value still shows.
//
//   token controller   a kubernetes.io/service-account-token Secret gets a
//                      token (TokenRequest bound to the Secret), ca.crt
//                      and namespace when its ServiceAccount exists, and is
//                      deleted when it does not, as kube-controller-manager
//                      does.
//   cloud load balancer  a LoadBalancer Service gets an ingress address:
//                      spec.loadBalancerIP, or the address a known load
//                      balancer annotation binds, or else an arbitrary one
//                      from 192.0.2.0/24 (nothing bound it: a cloud picks).
//   owner's DNS        dns.go: a gateway the fleet declares by host name
//                      resolves to the addresses the LoadBalancer Services
//                      of its cluster exposing the gateway's port (15443
//                      east-west, 15012 istiod) got, as the record its
//                      owner keeps; any other name resolves to nothing.
//                      The stand-ins and the checks resolve through it
//                      (no process here calls a host-named gateway:
//                      istiod resolves only load balancer host names,
//                      through a DNS server, and the Services here carry
//                      addresses).
//   public CA          dns.go, certmanager.go: a gateway certificate whose
//                      issuer the fleet names (meant to be publicly
//                      trusted) is issued by cert-manager's real
//                      controllers from that issuer, which the harness
//                      provides as a CA issuer under a "public" root; the
//                      API servers trust that root as their system roots
//                      (SSL_CERT_FILE). The mesh root is never a system
//                      root.
//   deployment controller + kubelet  a Deployment becomes available when
//                      its pod could be created. When every admission
//                      webhook that intercepts the pod is served by a
//                      Service with a selector, the pod is created with dry
//                      run and the API server itself calls those webhooks
//                      (injection, validation); its answer is the verdict.
//                      A webhook reached through a URL or a Service without
//                      selector (a remote's: through its primary's
//                      east-west gateway, not run here) cannot be called
//                      from here; then each one that fails closed must have
//                      something that answers at its service (a caBundle
//                      and a ready istiod its selector picks, or endpoint
//                      addresses some load balancer of the fleet really
//                      got) or URL (its host, through the owner's DNS, is
//                      such an address with the URL's port; where an Istio
//                      Gateway there terminates TLS for the host, its
//                      credentialName certificate verifies for the host
//                      against the caBundle, or without caBundle against
//                      the public CA's root: a webhook without caBundle
//                      needs such a gateway). A pod once admitted stays,
//                      until the Deployment's next generation. An istiod
//                      Deployment is run for real (istiod.go) and is
//                      available when its /ready says so. Its pod's
//                      ServiceAccount token, ca.crt and namespace are
//                      mounted where every pod has them,
//                      /var/run/secrets/kubernetes.io/serviceaccount, with
//                      KUBERNETES_SERVICE_HOST/PORT naming its local API
//                      server, in a mount namespace of its own (unshare):
//                      an external istiod reads its own cluster's remote
//                      secrets with them.
//   pod network        podnet.go: each istiod listens on a pod address of
//                      its own, a /32 added to the lo of the harness's own
//                      network namespace (netns.go; EndpointSlices refuse
//                      loopback addresses), at its container ports; only
//                      its debug port stays on 127.0.0.1, as istiod answers
//                      /debug to loopback callers only. Needs root.
//   EndpointSlice controller  endpoints.go: a Service whose selector
//                      picks a running istiod gets an EndpointSlice with
//                      its pod address and the container ports its
//                      targetPorts name. The API servers run with
//                      --enable-aggregator-routing, so they resolve a
//                      webhook's Service through it (there is no kube-proxy
//                      to route a ClusterIP; it would forward to the same
//                      endpoint): an Istio object applied goes through
//                      istiod's validating webhook for real, and istiod's
//                      own check before it switches to fail-closed passes.
//   operator           a person filling placeholders: `cacerts` gets an
//                      intermediate CA under the run's mesh root, and a
//                      remote-secret placeholder, and an external control
//                      plane's istio-kubeconfig, gets the output of exactly
//                      the command its annotation documents (`istioctl
//                      create-remote-secret ...`, for the latter with
//                      --type=config, as Istio's guide has it), run against
//                      the local API server its --server maps to. A person is slower
//                      than a controller: a placeholder is filled only
//                      when the cluster's delivery has settled (a whole
//                      tick in which nothing could be applied: it waits on
//                      readiness, another cluster, or is done); with
//                      installer istioctl the person also fills cacerts
//                      (and istio-kubeconfig, waiting for the config
//                      cluster's token) before running istioctl, as the
//                      annotations and the IstioOperator files' headers ask.
//                      This is deterministic: the kubelet stand-in runs
//                      right after each apply, so an istiod whose
//                      Deployment was applied has started before then.
//   External Secrets   eso.go: a fake provider (an in-memory store) and
//                      the ExternalSecret / PushSecret semantics the output
//                      uses (data by remoteRef key and property, the
//                      target template with engineVersion v2, creation
//                      and deletion policies ignored). The store holds only
//                      what a PushSecret pushed, plus, put there by the
//                      operator before the delivery starts, each cluster's
//                      intermediate CA under <prefix>/<cluster>/cacerts.
//                      The real ESO controller is not built: its module
//                      pulls in every cloud SDK; the stand-in is small.
//   Sail operator      drive.go sailStep: an Istio and its
//                      IstioRevisionTags become the charts Sail installs
//                      for them, with Sail's default profile values under
//                      spec.values; a tag that targets a remote Istio is
//                      refused, as Sail refuses it. Sail's module is not
//                      on the Go module proxy.
//
// Not stood in: cert-manager. For a fleet with ca.certManager, or a
// gateway certificate with an issuer, its real controllers run
// (certmanager.go, hack/certmanager); the operator only provides what the
// README leaves to the owner, before the delivery starts: cert-manager's
// CRDs and the fleet's issuers, CA issuers holding the run's mesh root or
// the public CA's root. Argo CD's health is not stood in either: the
// argocd-cm Lua scripts run in Argo CD's interpreter (argohealth.go).

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	admv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// standins runs the cluster's stand-ins every tick until ctx ends.
func (h *Harness) standins(ctx context.Context, c *Cluster) {
	for ctx.Err() == nil {
		h.tokenController(ctx, c)
		h.loadBalancer(ctx, c)
		h.deployments(ctx, c)
		h.endpointSlices(ctx, c)
		c.mu.Lock()
		settled := c.settled
		c.mu.Unlock()
		if settled {
			h.ops.fill(ctx, c)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (h *Harness) note(c *Cluster, key, msg string) {
	c.mu.Lock()
	c.notes[key] = msg
	c.mu.Unlock()
}

func (h *Harness) noteFor(c *Cluster, key string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.notes[key]
}

// ---- token controller -------------------------------------------------------

func (h *Harness) tokenController(ctx context.Context, c *Cluster) {
	secrets, err := c.kc.CoreV1().Secrets("").List(ctx, metav1.ListOptions{FieldSelector: "type=kubernetes.io/service-account-token"})
	if err != nil {
		return
	}
	for _, s := range secrets.Items {
		sa := s.Annotations["kubernetes.io/service-account.name"]
		if len(s.Data["token"]) > 0 {
			continue
		}
		acct, err := c.kc.CoreV1().ServiceAccounts(s.Namespace).Get(ctx, sa, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			h.logf("cluster %s: token controller: deleting Secret %s/%s: ServiceAccount %s does not exist", c.name, s.Namespace, s.Name, sa)
			h.note(c, "Secret/"+s.Namespace+"/"+s.Name, "the token controller deletes it while ServiceAccount "+sa+" does not exist")
			_ = c.kc.CoreV1().Secrets(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &s.UID}})
			continue
		}
		if err != nil {
			continue
		}
		tr, err := c.kc.CoreV1().ServiceAccounts(s.Namespace).CreateToken(ctx, sa, &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{
			ExpirationSeconds: ptr.To[int64](24 * 3600),
			BoundObjectRef:    &authv1.BoundObjectReference{Kind: "Secret", APIVersion: "v1", Name: s.Name, UID: s.UID},
		}}, metav1.CreateOptions{})
		if err != nil {
			continue
		}
		s.Data = map[string][]byte{"token": []byte(tr.Status.Token), "ca.crt": c.caPEM, "namespace": []byte(s.Namespace)}
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations["kubernetes.io/service-account.uid"] = string(acct.UID)
		_, _ = c.kc.CoreV1().Secrets(s.Namespace).Update(ctx, &s, metav1.UpdateOptions{})
	}
}

// saToken mints a token for a ServiceAccount, as the kubelet does for a
// projected token volume.
func (c *Cluster) saToken(ctx context.Context, ns, sa string, aud []string) (string, error) {
	tr, err := c.kc.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{
		ExpirationSeconds: ptr.To[int64](24 * 3600), Audiences: aud,
	}}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return tr.Status.Token, nil
}

// ---- cloud load balancer ----------------------------------------------------

// Load balancer annotations that bind an address, by cloud or implementation.
var lbAddressAnnotations = []string{
	"metallb.universe.tf/loadBalancerIPs",
	"metallb.io/loadBalancerIPs",
	"service.beta.kubernetes.io/azure-load-balancer-ipv4",
	"service.beta.kubernetes.io/azure-load-balancer-ipv6",
	"io.cilium/lb-ipam-ips",
	"lbipam.cilium.io/ips",
	"kube-vip.io/loadbalancerIPs",
}

var lbMu sync.Mutex
var lbNext = 10

func (h *Harness) loadBalancer(ctx context.Context, c *Cluster) {
	svcs, err := c.kc.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, s := range svcs.Items {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer || len(s.Status.LoadBalancer.Ingress) > 0 {
			continue
		}
		addr := s.Spec.LoadBalancerIP
		how := "spec.loadBalancerIP"
		for _, a := range lbAddressAnnotations {
			if v := s.Annotations[a]; addr == "" && v != "" {
				addr, how = strings.TrimSpace(strings.Split(v, ",")[0]), "annotation "+a
			}
		}
		if addr == "" {
			// Never one the fleet or the output names: an arbitrary
			// address must not pass for the declared one by chance.
			lbMu.Lock()
			for addr == "" || h.mentioned(addr) {
				addr = fmt.Sprintf("192.0.2.%d", lbNext)
				lbNext++
			}
			lbMu.Unlock()
			how = "nothing binds an address: an arbitrary one"
		}
		ing := corev1.LoadBalancerIngress{IP: addr}
		if net.ParseIP(addr) == nil {
			ing = corev1.LoadBalancerIngress{Hostname: addr}
		}
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{ing}
		if _, err := c.kc.CoreV1().Services(s.Namespace).UpdateStatus(ctx, &s, metav1.UpdateOptions{}); err == nil {
			h.logf("cluster %s: load balancer: Service %s/%s gets %s (%s)", c.name, s.Namespace, s.Name, addr, how)
			h.note(c, "Service/"+s.Namespace+"/"+s.Name, "its load balancer address "+addr+" comes from "+how)
		}
	}
}

// mentioned reports whether addr appears in the fleet or the rendered tree.
func (h *Harness) mentioned(addr string) bool {
	h.mentionOnce.Do(func() {
		var b strings.Builder
		raw, _ := json.Marshal(h.fleet)
		b.Write(raw)
		_ = filepath.Walk(h.rendered, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				x, _ := os.ReadFile(p)
				b.Write(x)
			}
			return nil
		})
		h.mentionText = b.String()
	})
	return regexp.MustCompile(`(^|[^0-9.])` + regexp.QuoteMeta(addr) + `($|[^0-9])`).MatchString(h.mentionText)
}

// lbAddresses are the addresses every LoadBalancer Service of the fleet got,
// with the cluster and Service that got them and their ports.
type lbAddr struct {
	cluster *Cluster
	svc     corev1.Service
}

func (h *Harness) lbAddresses(ctx context.Context) map[string][]lbAddr {
	out := map[string][]lbAddr{}
	for _, n := range h.names {
		c := h.clusters[n]
		svcs, err := c.kc.CoreV1().Services("").List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		for _, s := range svcs.Items {
			for _, ing := range s.Status.LoadBalancer.Ingress {
				a := ing.IP
				if a == "" {
					a = ing.Hostname
				}
				out[a] = append(out[a], lbAddr{c, s})
			}
		}
	}
	return out
}

// ---- deployment controller and kubelet ---------------------------------------

func (h *Harness) deployments(ctx context.Context, c *Cluster) {
	// The delivery (right after an apply) and the stand-in loop both run
	// this; apart, both could start the same istiod.
	c.kubelet.Lock()
	defer c.kubelet.Unlock()
	ds, err := c.kc.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, d := range ds.Items {
		var ready bool
		var why string
		if isIstiod(&d) {
			ready, why = h.istiodPod(ctx, c, &d)
		} else {
			// A pod once created stays: admission is judged again only
			// for a new generation of the Deployment.
			key := string(d.UID)
			c.mu.Lock()
			gen, ok := c.admitted[key]
			c.mu.Unlock()
			if !ok || gen != d.Generation {
				why = h.admitPod(ctx, c, &d)
			}
			ready = why == ""
			if ready {
				c.mu.Lock()
				c.admitted[key] = d.Generation
				c.mu.Unlock()
			}
		}
		h.setDeploymentStatus(ctx, c, &d, ready, why)
	}
}

func isIstiod(d *appsv1.Deployment) bool {
	for _, ct := range d.Spec.Template.Spec.Containers {
		if len(ct.Args) > 0 && ct.Args[0] == "discovery" {
			return true
		}
	}
	return false
}

func (h *Harness) setDeploymentStatus(ctx context.Context, c *Cluster, d *appsv1.Deployment, ready bool, why string) {
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	st := appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: replicas, UpdatedReplicas: replicas}
	now := metav1.Now()
	if ready {
		st.ReadyReplicas, st.AvailableReplicas = replicas, replicas
		st.Conditions = []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable", LastUpdateTime: now, LastTransitionTime: now},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable", LastUpdateTime: now, LastTransitionTime: now},
		}
	} else {
		st.UnavailableReplicas = replicas
		st.Conditions = []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, Reason: "MinimumReplicasUnavailable", LastUpdateTime: now, LastTransitionTime: now},
			{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate", Message: why, LastUpdateTime: now, LastTransitionTime: now},
		}
		h.note(c, "Deployment/"+d.Namespace+"/"+d.Name, "its pods: "+why)
	}
	same := d.Status.ObservedGeneration == st.ObservedGeneration && d.Status.AvailableReplicas == st.AvailableReplicas &&
		len(d.Status.Conditions) == len(st.Conditions)
	if same && (ready || (len(d.Status.Conditions) == 2 && d.Status.Conditions[1].Message == why)) {
		return
	}
	d.Status = st
	_, _ = c.kc.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
}

// admitPod says why Deployment d's pod could not be created ("" when it
// could). When every admission webhook that intercepts the pod names a
// Service of this cluster with a selector (an istiod), or one that does
// not exist (the API server's call then fails on its own), the pod is
// created for real with dry run, so the API server itself calls those
// webhooks (the injector mutates it, a validator may refuse it) and its
// answer is the verdict. A webhook reached through a URL or a Service
// without selector (a remote's, through its primary's east-west gateway,
// which is not run here) cannot be called from here: then each one that
// fails closed must have a caBundle and something answering (a ready
// istiod its Service picks, or endpoint addresses some load balancer of
// the fleet really got).
func (h *Harness) admitPod(ctx context.Context, c *Cluster, d *appsv1.Deployment) string {
	ns, podLabels := d.Namespace, d.Spec.Template.Labels
	nsObj, err := c.kc.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		return "namespace " + ns + ": " + err.Error()
	}
	type hook struct {
		cfg, name     string
		rules         []admv1.RuleWithOperations
		nsSel, objSel *metav1.LabelSelector
		failure       *admv1.FailurePolicyType
		client        admv1.WebhookClientConfig
	}
	var hooks []hook
	if l, err := c.kc.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{}); err == nil {
		for _, w := range l.Items {
			for _, x := range w.Webhooks {
				hooks = append(hooks, hook{"MutatingWebhookConfiguration/" + w.Name, x.Name, x.Rules, x.NamespaceSelector, x.ObjectSelector, x.FailurePolicy, x.ClientConfig})
			}
		}
	}
	if l, err := c.kc.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{}); err == nil {
		for _, w := range l.Items {
			for _, x := range w.Webhooks {
				hooks = append(hooks, hook{"ValidatingWebhookConfiguration/" + w.Name, x.Name, x.Rules, x.NamespaceSelector, x.ObjectSelector, x.FailurePolicy, x.ClientConfig})
			}
		}
	}
	intercepting, local := 0, true
	for _, w := range hooks {
		if !interceptsPodCreate(w.rules) || !selects(w.nsSel, nsObj.Labels) || !selects(w.objSel, podLabels) {
			continue
		}
		intercepting++
		if s := w.client.Service; s == nil || h.withoutSelector(ctx, c, s.Namespace, s.Name) {
			local = false
		}
	}
	if intercepting > 0 && local {
		pod := &corev1.Pod{ObjectMeta: *d.Spec.Template.ObjectMeta.DeepCopy(), Spec: *d.Spec.Template.Spec.DeepCopy()}
		pod.Name, pod.Namespace = d.Name+"-converge", ns
		_, err := c.kc.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return "the API server refuses it: " + err.Error()
		}
		return ""
	}
	var addrs map[string][]lbAddr
	for _, w := range hooks {
		if w.failure != nil && *w.failure == admv1.Ignore {
			continue
		}
		if !interceptsPodCreate(w.rules) || !selects(w.nsSel, nsObj.Labels) || !selects(w.objSel, podLabels) {
			continue
		}
		id := w.cfg + " webhook " + w.name
		if s := w.client.Service; s != nil {
			if len(w.client.CABundle) == 0 {
				return id + " fails closed and has no caBundle (nothing patched it)"
			}
			if why := h.serviceAnswers(ctx, c, s.Namespace, s.Name, s.Port); why != "" {
				return id + " fails closed and " + why
			}
			continue
		}
		if w.client.URL != nil {
			u, err := url.Parse(*w.client.URL)
			if err != nil {
				return id + ": " + err.Error()
			}
			if addrs == nil {
				addrs = h.lbAddresses(ctx)
			}
			port := u.Port()
			if port == "" {
				port = "443"
			}
			if why := h.urlAnswers(ctx, addrs, u.Hostname(), port, w.client.CABundle); why != "" {
				return fmt.Sprintf("%s fails closed and %s (its URL %s)", id, why, *w.client.URL)
			}
		}
	}
	return ""
}

// urlAnswers says why an API server cannot call host:port ("" when it
// can): the owner's DNS resolves host to an address some load balancer of
// the fleet got with the port (dns.go), and where that gateway terminates
// TLS its certificate verifies for host against the caBundle, or, without
// caBundle, against the system roots (the public CA's). Without caBundle
// a gateway that passes TLS through does not do: istiod's own certificate
// is not publicly trusted.
func (h *Harness) urlAnswers(ctx context.Context, addrs map[string][]lbAddr, host, port string, caBundle []byte) string {
	lbs := h.lbFor(ctx, addrs, host, port)
	if len(lbs) == 0 {
		return fmt.Sprintf("no load balancer got address %s with port %s (the owner's DNS resolves it to %v)", host, port, h.resolveName(ctx, host))
	}
	roots := x509.NewCertPool()
	if len(caBundle) > 0 {
		roots.AppendCertsFromPEM(caBundle)
	} else {
		roots.AddCert(h.publicCA().cert)
	}
	for _, lb := range lbs {
		found, why := h.gatewayCert(ctx, lb, host, port, roots)
		if why != "" {
			return why
		}
		if !found && len(caBundle) == 0 {
			return fmt.Sprintf("has no caBundle, and no Gateway of cluster %s terminates TLS for %s:%s with a certificate the system roots trust", lb.cluster.name, host, port)
		}
	}
	return ""
}

// withoutSelector reports whether Service ns/name exists without a
// selector (its endpoints are set by hand: a remote's istiod Service).
func (h *Harness) withoutSelector(ctx context.Context, c *Cluster, ns, name string) bool {
	svc, err := c.kc.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	return err == nil && len(svc.Spec.Selector) == 0
}

// serviceAnswers says why nothing answers behind a webhook's Service (""
// when something does): a running, ready istiod its selector picks, or,
// for a Service without selector (the remote profile's istiod Service),
// EndpointSlice addresses that are load balancer addresses some Service of
// the fleet really got, with the endpoint's port.
func (h *Harness) serviceAnswers(ctx context.Context, c *Cluster, ns, name string, port *int32) string {
	svc, err := c.kc.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "Service " + ns + "/" + name + ": " + err.Error()
	}
	if len(svc.Spec.Selector) > 0 {
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, ist := range c.istiods {
			if ist.ready && ist.ns == ns && sel.Matches(labels.Set(ist.labels)) {
				return ""
			}
		}
		return "no ready pod backs Service " + ns + "/" + name
	}
	sl, err := c.kc.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + name})
	if err != nil || len(sl.Items) == 0 {
		return "Service " + ns + "/" + name + " has no selector and no EndpointSlice"
	}
	want := int32(443)
	if port != nil {
		want = *port
	}
	var sport string
	for _, p := range svc.Spec.Ports {
		if p.Port == want {
			sport = p.Name
		}
	}
	addrs := h.lbAddresses(ctx)
	var tried []string
	for _, s := range sl.Items {
		epPort := ""
		for _, p := range s.Ports {
			if p.Name != nil && *p.Name == sport && p.Port != nil {
				epPort = fmt.Sprint(*p.Port)
			}
		}
		for _, e := range s.Endpoints {
			for _, a := range e.Addresses {
				if exposes(addrs[a], epPort) {
					return ""
				}
				tried = append(tried, a+":"+epPort)
			}
		}
	}
	return fmt.Sprintf("Service %s/%s's endpoints %v are no address a load balancer of the fleet got", ns, name, tried)
}

func exposes(as []lbAddr, port string) bool {
	for _, a := range as {
		for _, p := range a.svc.Spec.Ports {
			if fmt.Sprint(p.Port) == port {
				return true
			}
		}
	}
	return false
}

func interceptsPodCreate(rules []admv1.RuleWithOperations) bool {
	for _, r := range rules {
		op := false
		for _, o := range r.Operations {
			if o == admv1.Create || o == admv1.OperationAll {
				op = true
			}
		}
		res := false
		for _, x := range r.Resources {
			if x == "pods" || x == "*" || x == "*/*" {
				res = true
			}
		}
		grp := false
		for _, g := range r.APIGroups {
			if g == "" || g == "*" {
				grp = true
			}
		}
		if op && res && grp {
			return true
		}
	}
	return false
}

func selects(sel *metav1.LabelSelector, l map[string]string) bool {
	if sel == nil {
		return true
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(l))
}

// ---- operator ----------------------------------------------------------------

// Operator is the person who fills the placeholders.
type Operator struct {
	h        *Harness
	rootKey  *rsa.PrivateKey
	root     *x509.Certificate
	rootPEM  []byte
	mu       sync.Mutex
	seen     map[string]time.Time
	done     map[string]bool
	commands map[string]string // placeholder -> problem with its documented command ("" ok)
	esoSeen  map[string][]string
	filledCA bool
	store    *esoStore
}

func newOperator(h *Harness) *Operator {
	k, cert, p, err := newCA("meshfleet converge mesh root")
	if err != nil {
		panic(err)
	}
	o := &Operator{h: h, rootKey: k, root: cert, rootPEM: p, seen: map[string]time.Time{}, done: map[string]bool{},
		commands: map[string]string{}, esoSeen: map[string][]string{}, store: &esoStore{data: map[string]map[string][]byte{}}}
	o.seedCACerts()
	return o
}

func (o *Operator) eso(c *Cluster, u *unstructured.Unstructured) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.esoSeen[c.name] = append(o.esoSeen[c.name], objKey(u))
}

// filledBeforeInstall: before `istioctl install`, the person fills the
// cluster's cacerts placeholder (its annotation says to fill it before
// istiod starts). Never refuses: a missing placeholder is not its problem.
func (o *Operator) filledBeforeInstall(c *Cluster) (bool, string) {
	if o.h.brk == "late-cacerts" {
		return true, ""
	}
	ctx := context.Background()
	l, err := c.kc.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, "listing Secrets: " + err.Error()
	}
	var waiting []string
	for _, s := range l.Items {
		switch {
		case !isPlaceholder(&s) || isRemoteSecret(&s):
		case documentsCommand(&s):
			// The external control plane's istio-kubeconfig: its istiod
			// reads it only when it starts, so the person runs the
			// documented command first, once the config cluster's
			// account has its token.
			if !o.fillRemoteSecret(ctx, c, &s) {
				why := "the operator fills " + s.Namespace + "/" + s.Name + " first"
				if n := o.h.noteFor(c, "Secret/"+s.Namespace+"/"+s.Name); n != "" {
					why += ": " + n
				}
				waiting = append(waiting, why)
			}
		default:
			o.fillCA(ctx, c, &s)
		}
	}
	if len(waiting) > 0 {
		return false, strings.Join(waiting, "; ")
	}
	return true, ""
}

// documentsCommand: a placeholder filled with the output of the istioctl
// command its annotation documents (`istioctl create-remote-secret`, also
// with --type=config for an external control plane's istio-kubeconfig).
func documentsCommand(s *corev1.Secret) bool {
	return strings.Contains(s.Annotations["meshfleet.dev/placeholder"], "istioctl create-remote-secret")
}

func isPlaceholder(s *corev1.Secret) bool {
	return s.Annotations["meshfleet.dev/placeholder"] != "" && len(s.Data) == 0
}

func isRemoteSecret(s *corev1.Secret) bool {
	return s.Labels["istio/multiCluster"] == "true"
}

func (o *Operator) fill(ctx context.Context, c *Cluster) {
	l, err := c.kc.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, s := range l.Items {
		if !isPlaceholder(&s) {
			continue
		}
		key := c.name + "/" + s.Namespace + "/" + s.Name
		o.mu.Lock()
		first, ok := o.seen[key]
		if !ok {
			o.seen[key] = time.Now()
			first = time.Now()
		}
		o.mu.Unlock()
		_ = first
		if isRemoteSecret(&s) || documentsCommand(&s) {
			o.fillRemoteSecret(ctx, c, &s)
			continue
		}
		if o.h.brk == "late-cacerts" && !o.h.istiodStarted(c) {
			continue
		}
		o.fillCA(ctx, c, &s)
	}
}

func (h *Harness) istiodStarted(c *Cluster) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.istiods) > 0
}

// fillCA fills a CA placeholder with an intermediate CA under the mesh root,
// under the key names the placeholder lists.
func (o *Operator) fillCA(ctx context.Context, c *Cluster, s *corev1.Secret) {
	keyPEM, certPEM, err := newIntermediate("intermediate CA "+c.name, o.rootKey, o.root)
	if err != nil {
		return
	}
	data := map[string][]byte{}
	for _, k := range strings.Split(s.Annotations["meshfleet.dev/secret-keys"], ",") {
		switch k = strings.TrimSpace(k); k {
		case "ca-cert.pem", "tls.crt":
			data[k] = certPEM
		case "ca-key.pem", "tls.key":
			data[k] = keyPEM
		case "root-cert.pem", "ca.crt":
			data[k] = o.rootPEM
		case "cert-chain.pem":
			data[k] = append(append([]byte{}, certPEM...), o.rootPEM...)
		case "":
		default:
			o.h.note(c, "Secret/"+s.Namespace+"/"+s.Name, "the operator does not know what key "+k+" holds")
			return
		}
	}
	if len(data) == 0 {
		return
	}
	s.Data = data
	if _, err := c.kc.CoreV1().Secrets(s.Namespace).Update(ctx, s, metav1.UpdateOptions{}); err == nil {
		o.mu.Lock()
		o.filledCA = true
		o.mu.Unlock()
		o.h.logf("cluster %s: operator: filled %s/%s (%d keys)", c.name, s.Namespace, s.Name, len(data))
	}
}

// fillRemoteSecret runs the command the placeholder documents, with its
// --server mapped to the local API server of the fleet cluster that has
// that apiServer, against that cluster, and applies its output to c. It
// reports whether the placeholder holds keys now.
func (o *Operator) fillRemoteSecret(ctx context.Context, c *Cluster, s *corev1.Secret) bool {
	key := c.name + "/" + s.Namespace + "/" + s.Name
	target, args, problems := o.h.documentedCommand(s)
	o.setCommand(key, strings.Join(problems, "; "))
	if target == nil {
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, filepath.Join(o.h.bin, "istioctl"), append(args, "--kubeconfig", target.kubeconfig)...)
	out, err := cmd.Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg = lastLines(string(ee.Stderr), 2)
		}
		o.h.note(c, "Secret/"+s.Namespace+"/"+s.Name, "the operator's `istioctl "+strings.Join(args, " ")+"` against "+target.name+" fails: "+msg)
		return false
	}
	objs, err := decodeObjects(out)
	if err != nil || len(objs) == 0 {
		return false
	}
	for _, u := range objs {
		if u.GetKind() == "Secret" && u.GetName() != s.Name {
			// Applied as it is: the placeholder stays empty, as it would.
			o.h.note(c, "Secret/"+s.Namespace+"/"+s.Name, "the operator's command makes Secret "+u.GetName()+", not "+s.Name)
		}
		if err := o.h.applyAs(ctx, c, u, s.Namespace, "operator"); err != nil {
			o.h.note(c, "Secret/"+s.Namespace+"/"+s.Name, "applying the operator's remote secret: "+err.Error())
			return false
		}
	}
	o.mu.Lock()
	o.done[key] = true
	o.mu.Unlock()
	o.h.logf("cluster %s: operator: filled %s/%s with `istioctl %s`", c.name, s.Namespace, s.Name, strings.Join(args, " "))
	cur, err := c.kc.CoreV1().Secrets(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
	return err == nil && len(cur.Data) > 0
}

// documentedCommand reads the command a remote-secret placeholder
// documents, with its --server mapped to the local API server of the fleet
// cluster whose apiServer it names; problems says what is wrong with the
// rendered command (nil: nothing).
func (h *Harness) documentedCommand(s *corev1.Secret) (target *Cluster, args []string, problems []string) {
	ann := s.Annotations["meshfleet.dev/placeholder"]
	i := strings.Index(ann, "istioctl ")
	if i < 0 {
		return nil, nil, []string{"its placeholder documents no istioctl command: " + ann}
	}
	args = strings.Fields(strings.SplitN(ann[i+len("istioctl "):], "\n", 2)[0])
	for j, a := range args {
		v, ok := strings.CutPrefix(a, "--server=")
		if !ok {
			continue
		}
		for _, n := range h.names {
			if h.fleet.Spec.Clusters[n].APIServer == v {
				target = h.clusters[n]
			}
		}
		if target == nil {
			problems = append(problems, "--server="+v+" is no fleet cluster's apiServer")
			continue
		}
		args[j] = "--server=" + target.url
	}
	if target == nil {
		if len(problems) == 0 {
			problems = append(problems, "the command has no --server")
		}
		return nil, args, problems
	}
	if want := s.Annotations["networking.istio.io/cluster"]; want != "" && want != target.name {
		problems = append(problems, fmt.Sprintf("--server is cluster %s's apiServer but the Secret is for cluster %s", target.name, want))
	}
	if api := s.Annotations["meshfleet.dev/api-server"]; api != "" && api != target.fc.APIServer {
		problems = append(problems, "annotation meshfleet.dev/api-server "+api+" is not cluster "+target.name+"'s apiServer "+target.fc.APIServer)
	}
	return target, args, problems
}

func (o *Operator) setCommand(key, problem string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.commands[key] = problem
}

var _ = types.UID("")
