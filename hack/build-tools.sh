#!/usr/bin/env bash
# Builds the real tools hack/e2e.sh judges meshfleet's output with, once,
# into a cache directory keyed by the tool modules, and prints that
# directory's bin/ on stdout:
#
#   etcd, kube-apiserver, kubectl   hack/kubetools (k8s.io/kubernetes v1.36.3)
#   istioctl, pilot-discovery       hack/istioctl  (istio.io/istio 1.31-dev)
#   kustomize                       hack/tools     (the CLI the examples test)
#   cert-manager-controller         hack/certmanager (cert-manager's controllers,
#   cert-manager-crds.yaml          github.com/cert-manager/cert-manager v1.21.2,
#                                   and the CRDs of that module's deploy/crds)
#   converge                        hack/istioctl/converge (hack/converge.sh's
#                                   harness; keyed by its own sources too)
#
# The cache is ${MESHFLEET_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/meshfleet-tools}/<key>/bin,
# where <key> hashes the four modules' go.mod and go.sum, the wrapper
# mains, the build flags and the Go version. A complete bin/ there is
# reused as is; otherwise the tools are built into a temporary directory
# that is renamed into place only when every build succeeded: 8 to 13
# minutes on 2 cores with empty Go caches (about 2 GB RSS, 4.4 GB of build
# cache, 1.4 GB of modules; the binaries take 370 MB), plus about 12 for
# cert-manager-controller (729 s alone with empty module and build caches
# on 2 cores shared with other builds, load 17 to 20; 1.1 GB of build
# cache, 370 MB of modules, a 65 MB binary).
#
# Needs only Go and the Go module proxy. Build logs go to stderr.
set -o errexit -o nounset -o pipefail
cd "$(dirname "$0")/.."

tools=(etcd kube-apiserver kubectl istioctl pilot-discovery kustomize cert-manager-controller)
cache=${MESHFLEET_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/meshfleet-tools}
# Build flags; part of the cache key.
kv=v1.36.3
kube_ldflags="-s -w
 -X k8s.io/component-base/version.gitVersion=$kv
 -X k8s.io/component-base/version.gitMajor=1
 -X k8s.io/component-base/version.gitMinor=36
 -X k8s.io/component-base/version.gitTreeState=clean
 -X k8s.io/client-go/pkg/version.gitVersion=$kv
 -X k8s.io/client-go/pkg/version.gitMajor=1
 -X k8s.io/client-go/pkg/version.gitMinor=36"
istioctl_ldflags="-s -w"
kustomize_ldflags="-s -w"
certmanager_ldflags="-s -w"
key=$(cat hack/tools/go.mod hack/tools/go.sum \
	hack/kubetools/go.mod hack/kubetools/go.sum hack/kubetools/cmd/*/main.go \
	hack/istioctl/go.mod hack/istioctl/go.sum \
	hack/certmanager/go.mod hack/certmanager/go.sum hack/certmanager/main.go \
	<(echo "-trimpath|$kube_ldflags|$istioctl_ldflags|$kustomize_ldflags|$certmanager_ldflags") \
	<(go env GOVERSION GOOS GOARCH) | sha256sum | cut -c1-16)
bin=$cache/$key/bin

complete() {
	local t
	for t in "${tools[@]}"; do [[ -x $1/$t ]] || return 1; done
	[[ -s $1/cert-manager-crds.yaml ]]
}

# The harness changes more often than the tools: it is rebuilt into bin/
# whenever its sources change, without rebuilding the tools.
hkey=$(cat hack/istioctl/converge/*.go hack/istioctl/go.mod hack/istioctl/go.sum \
	<(echo "-trimpath|$istioctl_ldflags") <(go env GOVERSION GOOS GOARCH) | sha256sum | cut -c1-16)
harness() {
	[[ -x $bin/converge && $(cat "$bin/converge.key" 2>/dev/null) == "$hkey" ]] && return 0
	exec 8>"$cache/$key/.harness.lock"
	flock 8
	if ! [[ -x $bin/converge && $(cat "$bin/converge.key" 2>/dev/null) == "$hkey" ]]; then
		local t0=$SECONDS
		(cd hack/istioctl && go build -trimpath -ldflags "$istioctl_ldflags" -o "$bin/converge.tmp" ./converge) >&2
		mv "$bin/converge.tmp" "$bin/converge"
		echo "$hkey" >"$bin/converge.key"
		echo "build-tools: converge built in $((SECONDS - t0))s" >&2
	fi
	flock -u 8
}

if complete "$bin"; then
	harness
	echo "$bin"
	exit 0
fi

mkdir -p "$cache/$key"
# One build at a time per key (a go test and a script may race).
exec 9>"$cache/$key/.lock"
flock 9
if complete "$bin"; then
	harness
	echo "$bin"
	exit 0
fi

tmp=$(mktemp -d "$cache/$key/bin.tmp.XXXXXX")
logs=$(mktemp -d)
trap 'rm -rf "$tmp" "$logs"' EXIT
echo "build-tools: building ${tools[*]} into $bin (20 to 25 minutes from cold)" >&2
start=$SECONDS

# The kube tools and istioctl share almost no package versions, so their
# builds overlap (each one's long single-threaded link runs beside the
# other's compiles). kustomize is small and built after them.
build() { # name dir args...
	local name=$1 dir=$2 t0=$SECONDS
	shift 2
	if (cd "$dir" && go build -trimpath "$@") >"$logs/$name.log" 2>&1; then
		echo "build-tools: $name built in $((SECONDS - t0))s" >&2
	else
		echo "build-tools: building $name failed:" >&2
		cat "$logs/$name.log" >&2
		return 1
	fi
}
build kubetools hack/kubetools -ldflags "$kube_ldflags" -o "$tmp/" ./cmd/... &
kube_pid=$!
build istioctl hack/istioctl -ldflags "$istioctl_ldflags" -o "$tmp/" istio.io/istio/istioctl/cmd/istioctl istio.io/istio/pilot/cmd/pilot-discovery &
istioctl_pid=$!
rc=0
wait "$kube_pid" || rc=1
wait "$istioctl_pid" || rc=1
[[ $rc == 0 ]] || exit 1
build kustomize hack/tools -ldflags "$kustomize_ldflags" -o "$tmp/kustomize" sigs.k8s.io/kustomize/kustomize/v5
build cert-manager-controller hack/certmanager -ldflags "$certmanager_ldflags" -o "$tmp/cert-manager-controller" .
# The CRDs of the same module version (deploy/crds: what cert-manager's
# release cert-manager.crds.yaml is made from).
cmdir=$(cd hack/certmanager && go list -m -f '{{.Dir}}' github.com/cert-manager/cert-manager)
for f in "$cmdir"/deploy/crds/*.yaml; do
	echo "---"
	cat "$f"
done >"$tmp/cert-manager-crds.yaml"

complete "$tmp" || { echo "build-tools: missing binaries in $tmp" >&2; exit 1; }
chmod 755 "$tmp"
rm -rf "$bin"
mv "$tmp" "$bin"
echo "build-tools: done in $((SECONDS - start))s" >&2
harness
echo "$bin"
