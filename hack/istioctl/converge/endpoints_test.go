package main

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The istiod Service's ports resolve as the EndpointSlice controller
// resolves them: a named targetPort through the container's port names, a
// number as is, none as the Service port; a name the pod lacks is left out.
func TestEndpointPorts(t *testing.T) {
	svc := &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
		{Name: "https-webhook", Port: 443, TargetPort: intstr.FromInt32(15017)},
		{Name: "grpc-xds", Port: 15010, TargetPort: intstr.FromString("grpc-xds")},
		{Name: "http-monitoring", Port: 15014},
		{Name: "missing", Port: 9999, TargetPort: intstr.FromString("nope")},
	}}}
	cports := []corev1.ContainerPort{{Name: "grpc-xds", ContainerPort: 15010}, {ContainerPort: 15017}}
	got := endpointPorts(svc, cports)
	want := map[string]int32{"https-webhook": 15017, "grpc-xds": 15010, "http-monitoring": 15014}
	if len(got) != len(want) {
		t.Fatalf("got %d ports, want %d", len(got), len(want))
	}
	for _, p := range got {
		if want[*p.Name] != *p.Port || *p.Protocol != corev1.ProtocolTCP {
			t.Errorf("port %s: got %d/%s, want %d/TCP", *p.Name, *p.Port, *p.Protocol, want[*p.Name])
		}
	}
}
