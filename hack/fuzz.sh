#!/usr/bin/env bash
# Runs every fuzz target for a short time (FUZZTIME, default 10s each):
# the fleet parsers (YAML/JSON/CUE and Jsonnet) and the gate that parses
# plain documents in-process, the KRM ResourceList input, Argo CD's plugin
# parameters and the YAML emitter's round trip.
# The committed corpora under */testdata/fuzz/<Target>/ run first as
# regression tests (go test runs them too). A failure leaves the input in
# testdata/fuzz/<Target>/ of its package; commit it with the fix.
#
#   hack/fuzz.sh                 # all targets, 10s each
#   FUZZTIME=5m hack/fuzz.sh FuzzParse
set -o errexit -o nounset -o pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-10s}
targets=(
  ./generator/fleet:FuzzParse
  ./generator/fleet:FuzzParseJsonnet
  ./generator/fleet:FuzzPlain
  ./overlays:FuzzMarshalRoundTrip
  ./overlays:FuzzKRM
  ./overlays:FuzzFleetStrings
  ./internal/cli:FuzzArgoCDParameters
)
for t in "${targets[@]}"; do
  pkg=${t%%:*} name=${t##*:}
  if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then
    continue
  fi
  echo "== $name ($pkg, $fuzztime)"
  go test "$pkg" -run=NONE -fuzz="^${name}\$" -fuzztime="$fuzztime" -parallel=2
done
