#!/usr/bin/env bash
# Measures meshfleet on synthetic fleets (10 and 100 multi-primary
# multi-network clusters, 100 primary-remote clusters): wall time (median
# of BENCH_RUNS runs, default 5) and peak RSS (largest of those runs) of
#   render  new   meshfleet render into an empty directory
#   render  same  meshfleet render again over an unchanged tree
#   check         meshfleet check against that unchanged tree
#   validate      meshfleet validate
#   cue export    the hand-written template hack/bench/mesh.cue on the
#                 same fleet, for comparison (multi-primary fleets only)
# then runs the Go render benchmarks of ./overlays unless BENCH_GO=0.
# Peak RSS needs GNU time at /usr/bin/time; without it RSS shows n/a.
set -o errexit -o nounset -o pipefail
cd "$(dirname "$0")/.."

runs=${BENCH_RUNS:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gnutime=/usr/bin/time
[[ -x $gnutime ]] || gnutime=

go build -o "$tmp/meshfleet" .
go -C hack/tools build -o "$tmp/cue" cuelang.org/go/cmd/cue

# measure DIR CMD...: runs CMD $runs times, removing DIR (if not empty)
# before each run, and prints "<median wall> ms <max RSS> MB".
measure() {
	local dir=$1 i t0 t1 rss maxrss=0 walls=()
	shift
	for ((i = 0; i < runs; i++)); do
		[[ -z $dir ]] || rm -rf "$dir"
		t0=${EPOCHREALTIME//[.,]/}
		if [[ -n $gnutime ]]; then
			"$gnutime" -f %M -o "$tmp/rss" "$@" >"$tmp/stdout"
			rss=$(tail -n 1 "$tmp/rss")
			((rss > maxrss)) && maxrss=$rss
		else
			"$@" >"$tmp/stdout"
		fi
		t1=${EPOCHREALTIME//[.,]/}
		walls+=($(((t1 - t0) / 1000)))
	done
	local median
	median=$(printf '%s\n' "${walls[@]}" | sort -n | sed -n "$((runs / 2 + 1))p")
	if [[ -n $gnutime ]]; then
		printf '%6d ms %4d MB' "$median" $((maxrss / 1024))
	else
		printf '%6d ms  n/a MB' "$median"
	fi
}

echo "median of $runs runs; $(nproc) CPUs; $(go env GOVERSION); $("$tmp/cue" version | head -n 1)"
printf '%-32s %-18s %-18s %-18s %-18s %s\n' fleet "render (new)" "render (same)" check validate "cue export"
for fleet in multi-primary-multi-network:10 multi-primary-multi-network:100 primary-remote:100; do
	layout=${fleet%:*} n=${fleet#*:}
	f=$tmp/$layout-$n.yaml
	go run ./hack/genfleet -n "$n" -layout "$layout" >"$f"

	new=$(measure "$tmp/new" "$tmp/meshfleet" render -f "$f" -o "$tmp/new")
	"$tmp/meshfleet" render -f "$f" -o "$tmp/same" >/dev/null
	same=$(measure "" "$tmp/meshfleet" render -f "$f" -o "$tmp/same")
	grep -q ' 0 files written, 0 removed' "$tmp/stdout" || { echo "second render changed files: $(<"$tmp/stdout")" >&2; exit 1; }
	check=$(measure "" "$tmp/meshfleet" check -f "$f" -o "$tmp/same")
	validate=$(measure "" "$tmp/meshfleet" validate -f "$f")
	cue="n/a"
	if "$tmp/cue" export hack/bench/mesh.cue "$f" -e rendered --out yaml >/dev/null 2>&1; then
		cue=$(measure "" "$tmp/cue" export hack/bench/mesh.cue "$f" -e rendered --out yaml)
	fi
	printf '%-32s %-18s %-18s %-18s %-18s %s\n' "$layout/$n" "$new" "$same" "$check" "$validate" "$cue"
	rm -rf "$tmp/same"
done

if [[ ${BENCH_GO:-1} != 0 ]]; then
	echo
	go test -run XXX -bench . -benchtime 3x -benchmem ./overlays/
fi
