#!/usr/bin/env bash
# Measures meshfleet, whole process, on synthetic fleets (hack/genfleet)
# beside the hand-written CUE template hack/bench/mesh.cue on the same
# fleet. For each fleet it prints the median wall time and CPU time (user
# + sys) of BENCH_RUNS runs (default 5) and the peak RSS of those runs:
#
#   render      meshfleet render into a new directory
#   cue         cue export of hack/bench/mesh.cue (one YAML stream, no
#               validation, no files written); multi-primary fleets only
#   cue/render  how many times longer cue export takes (wall)
#   cp -r       copying render's own output tree; render/cp is the ratio
#   ms/MB       render's CPU time per MB of output (file contents): flat
#               when render is linear in its output
# then, on the rendered tree:
#   same        render again, nothing changed
#   check       meshfleet check, nothing changed
#   cmp         meshfleet cmp of one cluster (cluster-000, the largest) of
#               the same fleet with installer sail (the only installer
#               the Argo CD plugin delivers), run beside the fleet file as
#               Argo CD runs it; its output is checked to be manifests
#   validate    meshfleet validate
#   kustomize   the kustomize CLI building cluster-000's overlay: what
#               Flux's kustomize-controller or Argo CD's repo-server pays
#               per reconcile of that cluster
#
# BENCH_FLEETS lists layout:clusters pairs (default below); cue export is
# skipped above BENCH_CUE_MAX clusters (default 300: it needs ~4 GB
# there). The Go benchmarks of ./overlays run last unless BENCH_GO=0.
# Peak RSS and CPU time need GNU time at /usr/bin/time. The load average
# is printed first: on a shared machine compare within one run.
set -o errexit -o nounset -o pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

runs=${BENCH_RUNS:-5}
fleets=${BENCH_FLEETS:-multi-primary-multi-network:10 multi-primary-multi-network:100 multi-primary-multi-network:300 primary-remote:1000}
cuemax=${BENCH_CUE_MAX:-300}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gnutime=/usr/bin/time
[[ -x $gnutime ]] || gnutime=

go build -o "$tmp/meshfleet" .
go -C hack/tools build -o "$tmp/cue" cuelang.org/go/cmd/cue
go -C hack/tools build -o "$tmp/kustomize" sigs.k8s.io/kustomize/kustomize/v5

# measure DIR CMD...: runs CMD $runs times, fails if CMD does, and prints
# "<median wall ms> <median cpu ms> <max RSS MB> <median user ms> <median
# sys ms>" (cpu, RSS, user and sys are - without GNU time). With DIR, each
# run has @OUT@ in CMD replaced by a directory that does not exist yet,
# DIR.<run>. Nothing is deleted before the script ends: on ext4 without a
# journal (as on these machines) creating files is several times slower
# for a minute or more after files were deleted (the inode allocator
# skips recently deleted inodes, find_inode_bit/recently_deleted), which
# would time the last deletion rather than render or cp.
measure() {
	local dir=$1 i t0 t1 walls=() cpus=() users=() syss=() maxrss=0 u s rss
	shift
	local cmd=("$@")
	for ((i = 0; i < runs; i++)); do
		[[ -z $dir ]] || cmd=("${@//@OUT@/$dir.$i}")
		t0=${EPOCHREALTIME//[.,]/}
		if [[ -n $gnutime ]]; then
			"$gnutime" -f '%U %S %M' -o "$tmp/time" "${cmd[@]}" >"$tmp/stdout" 2>"$tmp/stderr" || failed "${cmd[@]}"
			read -r u s rss < <(tail -n 1 "$tmp/time")
			cpus+=($(awk -v u="$u" -v s="$s" 'BEGIN { printf "%d", (u + s) * 1000 }'))
			users+=($(awk -v u="$u" 'BEGIN { printf "%d", u * 1000 }'))
			syss+=($(awk -v s="$s" 'BEGIN { printf "%d", s * 1000 }'))
			((rss > maxrss)) && maxrss=$rss
		else
			"${cmd[@]}" >"$tmp/stdout" 2>"$tmp/stderr" || failed "${cmd[@]}"
		fi
		t1=${EPOCHREALTIME//[.,]/}
		walls+=($(((t1 - t0) / 1000)))
	done
	if [[ -n $gnutime ]]; then
		echo "$(median "${walls[@]}") $(median "${cpus[@]}") $((maxrss / 1024)) $(median "${users[@]}") $(median "${syss[@]}")"
	else
		echo "$(median "${walls[@]}") - - - -"
	fi
}

# failed CMD...: says which command failed and how, and exits; measure
# runs in a command substitution, which inherit_errexit makes fail the
# assignment, and so the script.
failed() {
	echo "failed: $*: $(head -c 2000 "$tmp/stderr")" >&2
	exit 1
}

median() { printf '%s\n' "$@" | sort -n | sed -n "$(($# / 2 + 1))p"; }

# cell "<wall> <cpu> <rss> <user> <sys>": "wall ms (user+sys ms, rss MB)".
# On a busy disk sys (writing files) swings between runs; user is
# meshfleet's own work.
cell() {
	local w c r u s
	read -r w c r u s <<<"$1"
	printf '%s ms (%s+%s, %s MB)' "$w" "$u" "$s" "$r"
}

echo "$(date -u +%FT%TZ); $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg); $(go env GOVERSION); $("$tmp/cue" version | head -n 1); kustomize $("$tmp/kustomize" version)"
echo "median of $runs runs: wall ms (user+sys CPU ms, peak RSS MB)"
printf '%-34s %10s %-32s %-32s %10s %-22s %9s %6s\n' fleet "output MB" render "cue export" cue/render "cp -r" render/cp ms/MB
summary=()
for fleet in $fleets; do
	layout=${fleet%:*} n=${fleet#*:}
	f=$tmp/$layout-$n.yaml
	go run ./hack/genfleet -n "$n" -layout "$layout" >"$f"

	new=$(measure "$tmp/new-$layout-$n" "$tmp/meshfleet" render -f "$f" -o @OUT@)
	tree=$tmp/new-$layout-$n.0
	bytes=$(find "$tree" -type f ! -name .meshfleet-files -printf '%s\n' | awk '{ s += $1 } END { print s }')
	mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')
	cp=$(measure "$tmp/copy-$layout-$n" cp -r "$tree" @OUT@)
	cue="n/a" cueratio="n/a"
	if ((n <= cuemax)) && "$tmp/cue" export hack/bench/mesh.cue "$f" -e rendered --out yaml >/dev/null 2>&1; then
		cuem=$(measure "" "$tmp/cue" export hack/bench/mesh.cue "$f" -e rendered --out yaml)
		cue=$(cell "$cuem")
		cueratio=$(awk -v a="${cuem%% *}" -v b="${new%% *}" 'BEGIN { printf "%.1fx", a / (b > 0 ? b : 1) }')
	fi
	cpratio=$(awk -v a="${new%% *}" -v b="${cp%% *}" 'BEGIN { printf "%.1fx", a / (b > 0 ? b : 1) }')
	read -r _ newcpu _ <<<"$new"
	slope=$(awk -v c="$newcpu" -v m="$mb" 'BEGIN { if (c == "-") print "-"; else printf "%.0f", c / m }')
	printf '%-34s %10s %-32s %-32s %10s %-22s %9s %6s\n' "$layout/$n" "$mb" "$(cell "$new")" "$cue" "$cueratio" "$(cell "$cp")" "$cpratio" "$slope"

	same=$(measure "" "$tmp/meshfleet" render -f "$f" -o "$tree")
	grep -q ' 0 files written, 0 removed' "$tmp/stdout" || { echo "second render changed files: $(<"$tmp/stdout")" >&2; exit 1; }
	check=$(measure "" "$tmp/meshfleet" check -f "$f" -o "$tree")
	sed 's/^spec:$/spec:\n  installer: sail/' "$f" >"$tmp/sail.yaml"
	cmp=$(cd "$tmp" && measure "" "$tmp/meshfleet" cmp -f sail.yaml --cluster cluster-000)
	grep -q '^kind: Namespace$' "$tmp/stdout" || { echo "cmp printed no manifests: $(head -c 2000 "$tmp/stderr")" >&2; exit 1; }
	validate=$(measure "" "$tmp/meshfleet" validate -f "$f")
	kust=$(measure "" "$tmp/kustomize" build "$tree/clusters/cluster-000")
	summary+=("$(printf '%-34s %-32s %-32s %-32s %-32s %s' "$layout/$n" "$(cell "$same")" "$(cell "$check")" "$(cell "$cmp")" "$(cell "$validate")" "$(cell "$kust")")")
done
echo
printf '%-34s %-32s %-32s %-32s %-32s %s\n' fleet "render (same)" check "cmp cluster-000" validate "kustomize build cluster-000"
printf '%s\n' "${summary[@]}"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ ${BENCH_GO:-1} != 0 ]]; then
	echo
	go test -run XXX -bench . -benchtime 3x -benchmem ./overlays/
fi
