// The fleet of fleet.yaml, built with an imported helper and a local
// function.
local clusters = import 'clusters.libsonnet';
local gateway(n) = '203.0.113.%d' % n;
local mesh = 'mesh1';

{
  apiVersion: 'meshfleet.dev/v1alpha1',
  kind: 'MeshFleet',
  metadata: { name: 'formats' },
  spec: {
    mesh: { id: mesh, trustDomain: mesh + '.example.net' },
    istio: { version: '1.31.1', revision: std.strReplace(self.version, '.', '-') },
    topology: { controlPlane: 'primary-remote', network: 'multi-network' },
    secrets: {
      provider: 'external-secrets',
      store: { name: 'vault', kind: 'SecretStore' },
      refreshInterval: '30m',
    },
    clusters: {
      east: clusters.cluster('east', 'primary', 'net-east', gateway(10)),
      west: clusters.cluster('west', 'remote', 'net-west', gateway(20), controlPlane='east'),
    },
  },
}
