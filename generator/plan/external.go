package plan

import (
	"net"
	"strconv"

	"github.com/meshfleet/meshfleet/generator/fleet"
)

// ConfigServiceAccount is the account an external istiod reads and
// writes its config cluster with: meshfleet's, bound to the roles of
// istiod that the remote profile with global.configCluster installs. It
// exists from the config cluster's first stage on, before anything that
// waits for the external istiod (not istiod's own account, which comes
// with the control plane, and with Sail only once istiod answers).
const ConfigServiceAccount = "meshfleet-istiod"

// IngressGatewayName is the external cluster's ingress gateway, which
// exposes the external istiod: the name gives its pods istio=ingressgateway.
const (
	IngressGatewayName     = "istio-ingressgateway"
	IngressGatewaySelector = "ingressgateway"
)

// planExternal is what an external control plane's cluster needs: in
// istio-system its own istiod (outside the mesh) and the ingress gateway
// that exposes the external istiod; in external-istiod the external
// istiod, the mesh CA, the Gateway, VirtualService (and DestinationRule)
// that route to it, the config cluster's kubeconfig and the remote
// secrets of the further remotes.
func planExternal(f *fleet.Fleet, x *fleet.Cluster) Cluster {
	ns := fleet.ExternalIstiodNamespace
	pc := Cluster{Cluster: x, MeshNamespace: ns, CA: true, LocalCA: IstioNamespace}
	for _, name := range []string{IstioNamespace, ns} {
		pc.Namespaces = append(pc.Namespaces, Namespace{Name: name, Labels: map[string]any{LabelNetwork: x.Network}, Annotations: Merged(NeverDeleted)})
	}
	r := release(f)
	pc.ControlPlanes = append(pc.ControlPlanes,
		ControlPlane{Release: r, Name: "default", Role: RoleLocal, Namespace: IstioNamespace, Values: map[string]any{}, Validates: true},
		externalIstiod(f, x, ns))
	gw := x.IstiodGateway
	addr := ""
	if gw != nil {
		addr = gw.Address
	}
	labels := map[string]any{"istio": IngressGatewaySelector, "app": IngressGatewayName}
	pc.Gateways = append(pc.Gateways, Gateway{
		Release:   r,
		Name:      IngressGatewayName,
		Namespace: IstioNamespace,
		Labels:    labels,
		Ports:     []Port{{"status-port", 15021}, {"tls-xds", 15012}, {"tls-webhook", 15017}},
		Service:   service(addr, gatewayServiceOf(gw)),
	})
	in := &IstiodIngress{
		Address:          addr,
		Host:             addr != "" && !isIP(addr),
		Namespace:        ns,
		Selector:         map[string]any{"istio": IngressGatewaySelector},
		Istiod:           "istiod." + ns + ".svc.cluster.local",
		GatewayNamespace: IstioNamespace,
	}
	if in.Host {
		in.Certificate = "istiod-gateway-tls"
		if gw.Certificate != nil {
			in.Certificate = gw.Certificate.SecretName
			in.Issuer = gw.Certificate.Issuer
		}
	}
	pc.IstiodIngress = in
	if cc := f.ConfigClusterOf(x); cc != nil {
		pc.ConfigKubeconfig = &ConfigKubeconfig{Cluster: cc, Namespace: ns, ServiceAccount: ConfigServiceAccount}
	}
	for _, r := range f.RemotesOf(x) {
		if !r.ConfigCluster {
			pc.Reads = append(pc.Reads, r)
		}
	}
	return pc
}

// pilotAddress is host:15012 of an external control plane's istiod.
func pilotAddress(x *fleet.Cluster) string {
	if x.IstiodGateway == nil {
		return ""
	}
	return net.JoinHostPort(x.IstiodGateway.Address, strconv.Itoa(15012))
}

// externalIstiod is the external control plane's istiod: it runs in the
// external cluster and acts on the config cluster (CLUSTER_ID, which the
// istiod chart sets from global.multiCluster.clusterName, its
// kubeconfig in Secret istio-kubeconfig, its mesh configuration in
// ConfigMap istio: SHARED_MESH_CONFIG), reads the remotes' secrets from
// its own cluster (LOCAL_CLUSTER_SECRET_WATCHER), and mounts the
// configuration the config cluster's remote profile does not give it.
// With an IP address istiod patches the config cluster's webhooks with
// its CA; with a host name the gateway's certificate is trusted through
// the system roots and the webhooks are left alone.
func externalIstiod(f *fleet.Fleet, x *fleet.Cluster, ns string) ControlPlane {
	cc := f.ConfigClusterOf(x)
	clusterID, network := "", x.Network
	if cc != nil {
		clusterID, network = cc.Name, cc.Network
	}
	addr := pilotAddress(x)
	host := x.IstiodGateway != nil && !isIP(x.IstiodGateway.Address)
	// The charts name the config cluster's webhooks and istiod's
	// ConfigMaps after the revision.
	rev := ""
	if r := f.Spec.Istio.Revision; r != "" {
		rev = "-" + r
	}
	injection := "istio-sidecar-injector" + rev + "-" + ns
	validation := "istio-validator" + rev + "-" + ns
	defaultConfig := map[string]any{"discoveryAddress": addr}
	if host {
		injection, validation = "", ""
		defaultConfig["proxyMetadata"] = map[string]any{
			"XDS_ROOT_CA": "/etc/ssl/certs/ca-certificates.crt",
			"CA_ROOT_CA":  "/etc/ssl/certs/ca-certificates.crt",
		}
	}
	values := map[string]any{
		"global": map[string]any{
			"meshID":                 f.Spec.Mesh.ID,
			"multiCluster":           map[string]any{"clusterName": clusterID},
			"network":                network,
			"caAddress":              addr,
			"istioNamespace":         ns,
			"operatorManageWebhooks": true,
			"configValidation":       false,
		},
		"pilot": map[string]any{
			"env": map[string]any{
				"INJECTION_WEBHOOK_CONFIG_NAME":  injection,
				"VALIDATION_WEBHOOK_CONFIG_NAME": validation,
				"EXTERNAL_ISTIOD":                "true",
				"LOCAL_CLUSTER_SECRET_WATCHER":   "true",
				"SHARED_MESH_CONFIG":             "istio",
			},
			"volumes": []any{
				map[string]any{"name": "config-volume", "configMap": map[string]any{"name": "istio" + rev}},
				map[string]any{"name": "inject-volume", "configMap": map[string]any{"name": "istio-sidecar-injector" + rev}},
			},
			"volumeMounts": []any{
				map[string]any{"name": "config-volume", "mountPath": "/etc/istio/config"},
				map[string]any{"name": "inject-volume", "mountPath": "/var/lib/istio/inject"},
			},
		},
	}
	name := f.Spec.Istio.Revision
	if name == "" {
		name = ns
	}
	return ControlPlane{
		Release:   release(f),
		Name:      name,
		Role:      RoleExternal,
		Revision:  f.Spec.Istio.Revision,
		Namespace: ns,
		Default:   true,
		Values:    values,
		MeshConfig: map[string]any{
			"trustDomain":   f.Spec.Mesh.TrustDomain,
			"rootNamespace": ns,
			"defaultConfig": defaultConfig,
		},
	}
}

// externalRemoteValues are the remote profile's values of a cluster an
// external control plane serves: its identity, istioNamespace
// external-istiod, and how it reaches the external istiod: for a host
// name the injection and validation URLs, for an IP address the
// injection path and remotePilotAddress. The config cluster also holds
// the mesh configuration (global.configCluster, pilot.configMap).
func externalRemoteValues(f *fleet.Fleet, c, x *fleet.Cluster) map[string]any {
	global := map[string]any{
		"meshID":         f.Spec.Mesh.ID,
		"multiCluster":   map[string]any{"clusterName": c.Name},
		"network":        c.Network,
		"istioNamespace": fleet.ExternalIstiodNamespace,
	}
	values := map[string]any{"global": global}
	path := "/inject/cluster/" + c.Name + "/net/" + c.Network
	var addr string
	if x.IstiodGateway != nil {
		addr = x.IstiodGateway.Address
	}
	if addr != "" && !isIP(addr) {
		base := "https://" + net.JoinHostPort(addr, "15017")
		values["istiodRemote"] = map[string]any{"injectionURL": base + path}
		if c.ConfigCluster {
			values["base"] = map[string]any{"validationURL": base + "/validate"}
		}
	} else {
		global["remotePilotAddress"] = addr
		values["istiodRemote"] = map[string]any{"injectionPath": path}
	}
	if c.ConfigCluster {
		global["configCluster"] = true
		values["pilot"] = map[string]any{"configMap": true}
		// The default revision's webhooks (istio-injection=enabled, the
		// default validator) in the config cluster.
		values["defaultRevision"] = "default"
	}
	return values
}

// hostIstiod is how primary p's east-west gateway exposes istiod when its
// address is a host name: it passes xDS and CA (15012) through to istiod
// as expose-istiod does, and terminates TLS on 15017 with the certificate
// for the name, so that the remotes' API servers can call the injection
// webhook at injectionURL. The certificate must chain to the mesh
// root, which istiod writes into the remotes' webhooks as their CA
// bundle: by default cert-manager issues it from the mesh root issuer.
func hostIstiod(f *fleet.Fleet, p *fleet.Cluster, ns string) *IstiodIngress {
	istiod := "istiod"
	if rev := f.Spec.Istio.Revision; rev != "" {
		istiod += "-" + rev
	}
	in := &IstiodIngress{
		Address:          p.EastWestGateway.Address,
		Host:             true,
		Namespace:        ns,
		Selector:         map[string]any{"istio": EastWestGatewaySelector},
		Istiod:           istiod + "." + ns + ".svc.cluster.local",
		Certificate:      "istiod-gateway-tls",
		GatewayNamespace: ns,
		MeshRoot:         true,
	}
	if cm := f.CertManager(); cm != nil {
		is := cm.Issuer
		in.Issuer = &is
	}
	if c := p.EastWestGateway.Certificate; c != nil {
		in.Certificate = c.SecretName
		if c.Issuer != nil {
			in.Issuer = c.Issuer
		}
	}
	return in
}
