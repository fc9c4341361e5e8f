package main

import (
	"context"
	"reflect"
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// endpointSlices stands in for the EndpointSlice controller, for the only
// pods that run here: a Service whose selector picks a running istiod gets
// an EndpointSlice with that istiod's pod address and, for each Service
// port, the container port its targetPort names (a pod without it is left
// out, as the controller does), ready when the istiod's /ready says so.
// The API server resolves a webhook's Service through it
// (--enable-aggregator-routing). Services that pick no istiod are left
// alone: their pods do not run, and a Service without selector (the remote
// profile's istiod) keeps the EndpointSlice the output gives it.
func (h *Harness) endpointSlices(ctx context.Context, c *Cluster) {
	svcs, err := c.kc.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	c.mu.Lock()
	var ists []*Istiod
	for _, ist := range c.istiods {
		if ist.cmd.ProcessState == nil {
			ists = append(ists, ist)
		}
	}
	c.mu.Unlock()
	sort.Slice(ists, func(i, j int) bool { return ists[i].name < ists[j].name })
	for _, s := range svcs.Items {
		if len(s.Spec.Selector) == 0 {
			continue
		}
		sel := labels.SelectorFromSet(s.Spec.Selector)
		var eps []discoveryv1.Endpoint
		var ports []discoveryv1.EndpointPort
		for _, ist := range ists {
			if ist.ns != s.Namespace || !sel.Matches(labels.Set(ist.labels)) {
				continue
			}
			ps := endpointPorts(&s, ist.cports)
			if len(ps) == 0 {
				continue
			}
			ports = ps // one istiod Deployment per Service here: same ports
			eps = append(eps, discoveryv1.Endpoint{Addresses: []string{ist.ip},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ist.ready)},
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ist.ns, Name: ist.name + "-converge"}})
		}
		if len(eps) == 0 {
			continue
		}
		want := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: s.Name + "-converge", Namespace: s.Namespace, Labels: map[string]string{
				discoveryv1.LabelServiceName: s.Name, discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}},
			AddressType: discoveryv1.AddressTypeIPv4, Endpoints: eps, Ports: ports,
		}
		cur, err := c.kc.DiscoveryV1().EndpointSlices(s.Namespace).Get(ctx, want.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = c.kc.DiscoveryV1().EndpointSlices(s.Namespace).Create(ctx, want, metav1.CreateOptions{})
		case err == nil && (!reflect.DeepEqual(cur.Endpoints, eps) || !reflect.DeepEqual(cur.Ports, ports)):
			cur.Endpoints, cur.Ports = eps, ports
			_, err = c.kc.DiscoveryV1().EndpointSlices(s.Namespace).Update(ctx, cur, metav1.UpdateOptions{})
		default:
			continue
		}
		if err == nil {
			h.logf("cluster %s: endpoints: Service %s/%s -> %d istiod(s)", c.name, s.Namespace, s.Name, len(eps))
		} else {
			h.note(c, "Service/"+s.Namespace+"/"+s.Name, "its EndpointSlice: "+err.Error())
		}
	}
}

// endpointPorts resolves each Service port's targetPort against a pod's
// container ports.
func endpointPorts(s *corev1.Service, cports []corev1.ContainerPort) []discoveryv1.EndpointPort {
	var out []discoveryv1.EndpointPort
	for _, p := range s.Spec.Ports {
		var n int32
		switch {
		case p.TargetPort.Type == intstr.String:
			for _, cp := range cports {
				if cp.Name == p.TargetPort.StrVal {
					n = cp.ContainerPort
				}
			}
		case p.TargetPort.IntVal != 0:
			n = p.TargetPort.IntVal
		default:
			n = p.Port
		}
		if n == 0 {
			continue
		}
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		out = append(out, discoveryv1.EndpointPort{Name: ptr.To(p.Name), Port: ptr.To(n), Protocol: ptr.To(proto), AppProtocol: p.AppProtocol})
	}
	return out
}
