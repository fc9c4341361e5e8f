// Labels every mesh object of the platform team carries.
{
  labels(cluster):: {
    'example.net/team': 'platform-mesh',
    'example.net/cluster': cluster,
  },
}
