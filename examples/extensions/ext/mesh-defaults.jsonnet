// Called by meshfleet once per cluster.
local team = import 'team.libsonnet';

function(cluster, role, network, mesh) {
  resources: if role == 'primary' then [
    {
      apiVersion: 'telemetry.istio.io/v1',
      kind: 'Telemetry',
      metadata: { name: 'mesh-default', namespace: 'istio-system', labels: team.labels(cluster) },
      spec: { accessLogging: [{ providers: [{ name: 'envoy' }] }] },
    },
  ] else [],
  patches: [
    {
      target: { kind: 'Namespace', name: 'istio-system' },
      patch: { metadata: { labels: team.labels(cluster) } },
    },
  ] + if role == 'primary' then [
    {
      target: { kind: 'IstioOperator', name: 'controlplane' },
      patch: { spec: { components: { pilot: { k8s: { resources: { requests: { cpu: '500m', memory: '2Gi' } } } } } } },
    },
  ] else [],
}
