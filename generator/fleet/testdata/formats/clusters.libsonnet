// Helpers for fleet.jsonnet.
{
  // cluster builds one entry of spec.clusters; its API server follows
  // from its name.
  cluster(name, role, network, gateway=null, controlPlane=null):: {
    role: role,
    network: network,
    apiServer: 'https://%s.k8s.example.net:6443' % name,
  } + (if gateway == null then {} else { eastWestGateway: { address: gateway } })
    + (if controlPlane == null then {} else { controlPlane: controlPlane }),
}
