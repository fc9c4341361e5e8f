#!/usr/bin/env bash
# End-to-end check of every example fleet against the real tools: a real
# kube-apiserver (with etcd) on 127.0.0.1, the real kustomize CLI and a
# real istioctl, all built from the Go module proxy by hack/build-tools.sh.
#
#   hack/e2e.sh                  every examples/*/fleet.*, then the self-test
#   hack/e2e.sh EXAMPLE...       only these examples (names under examples/)
#   hack/e2e.sh --self-test      only the self-test
#   hack/e2e.sh --no-self-test   the examples without the self-test
#
# For every example it renders the fleet with this repository's meshfleet
# and checks every overlay of the output: clusters/<c>/ (what cluster <c>
# applies) and the delivery overlays beside it (e.g. flux/<c>/, argocd/):
#   build     kustomize build <overlay>
#   generate  istioctl manifest generate -f F, for every file F under
#             clusters/<c>/istioctl/ (IstioOperator files are istioctl
#             input: they are never applied as objects)
#   validate  istioctl validate over everything the overlay gets (built
#             objects and generated manifests) and over every istioctl file;
#             any output but "is valid" (warnings too) fails
#   analyze   istioctl analyze --use-kube=false -A over everything the
#             overlay gets; any message at all, Info included, fails
#   apply     kubectl apply --server-side of everything the overlay gets
#             (apiserver warnings fail too), against the apiserver reset to
#             its CRDs-only snapshot (a fresh
#             etcd per overlay, so overlays never see each other's objects):
#             Namespaces first, then CRDs, then the rest; the built objects
#             first, then each generated manifest. Objects that would make
#             the apiserver call a service that does not run here (admission
#             webhook configurations, APIServices) go through
#             --dry-run=server. A delivery overlay's objects live in its
#             tool's namespace (flux-system, argocd), which the tool's own
#             installation creates: those namespaces are created first.
# CRDs: before any overlay, the apiserver gets the CRD of every kind in the
# output that it does not serve, read from Go module zips (CRD_SOURCES). A
# kind with none fails, naming the kind, unless NO_CRD says why no
# registry reachable here has it; its objects are then reported as SKIP
# (and still go through istioctl validate and analyze).
#
# The self-test copies one rendered example, breaks one cluster (a Gateway
# with an unknown TLS mode, a VirtualService bound to a Gateway that does
# not exist, an IstioOperator with a misspelt field, an object of a kind
# that has no CRD, an object the apiserver accepts with a warning), runs
# the same checks and fails unless each mistake is
# reported by the tool that should catch it, with its file and object, and
# the other cluster still passes and does not see the first one's objects.
#
# Every failure is one line
#   FAIL example=<ex> cluster=<c> file=<file> object=<Kind/name>: <tool output>
# (file relative to the rendered output; "-" or "*" when no single one).
# The last line is "N passed, M failed[, K skipped]": checks are one per
# overlay and step, skips one per object not applied. Exit status 1 when
# anything failed.
#
# Everything listens on 127.0.0.1 only; ports: MESHFLEET_E2E_ETCD_PORT
# (23791), MESHFLEET_E2E_ETCD_PEER_PORT (23801), MESHFLEET_E2E_API_PORT
# (16443). The processes started here are stopped by PID on exit.
# MESHFLEET_E2E_KEEP=1 keeps the work directory (printed at the start).
set -o errexit -o nounset -o pipefail
cd "$(dirname "$0")/.."

ETCD_PORT=${MESHFLEET_E2E_ETCD_PORT:-23791}
ETCD_PEER_PORT=${MESHFLEET_E2E_ETCD_PEER_PORT:-23801}
API_PORT=${MESHFLEET_E2E_API_PORT:-16443}

# Where the CRDs of kinds the apiserver does not serve come from:
# module@version:path inside the module zip (a directory ends in /), all
# through the Go module proxy. The Istio CRDs come from the istio.io/istio
# version hack/istioctl builds, the Gateway API CRDs from the version its
# go.mod requires; Flux's are those of Flux 2.9 (source-controller 1.9,
# kustomize-controller 1.9, helm-controller 1.6), Argo CD's of 3.5,
# cert-manager's (Certificate, for spec.ca.certManager) of 1.21.
CRD_SOURCES=(
	"istio.io/istio@ISTIO_VERSION:manifests/charts/base/files/crd-all.gen.yaml"
	"sigs.k8s.io/gateway-api@v1.6.0:config/crd/standard/"
	"github.com/external-secrets/external-secrets@v1.3.2:config/crds/bases/"
	"github.com/fluxcd/source-controller@v1.9.6:config/crd/bases/"
	"github.com/fluxcd/kustomize-controller@v1.9.6:config/crd/bases/"
	"github.com/fluxcd/helm-controller@v1.6.0:config/crd/bases/"
	"github.com/argoproj/argo-cd/v3@v3.5.7:manifests/crds/"
	"github.com/cert-manager/cert-manager@v1.21.2:deploy/crds/"
)
# API groups whose CRDs no registry reachable here has, and why. Their
# objects are reported as SKIP instead of applied; any other kind without
# a CRD fails.
declare -A NO_CRD=(
	[sailoperator.io]="the Sail operator's module (github.com/istio-ecosystem/sail-operator, which holds its CRDs) is refused by the Go module proxy (403 for every version)"
)

run_examples=1 run_self_test=1
examples=()
for arg in "$@"; do
	case $arg in
	--self-test) run_examples=0 ;;
	--no-self-test) run_self_test=0 ;;
	-h | --help)
		sed -n '2,/^set -o/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	-*)
		echo "e2e: unknown flag $arg" >&2
		exit 2
		;;
	*) examples+=("${arg%/}") ;;
	esac
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/meshfleet-e2e.XXXXXX")
RESULTS=$WORK/results # PASS <check> | FAIL <check> | SKIP <object> | FAILLINE ...
: >"$RESULTS"

stop_pid() { # PIDFILE: SIGTERM, up to 10 s, then SIGKILL
	local pid
	[[ -f $1 ]] || return 0
	pid=$(cat "$1")
	rm -f "$1"
	kill "$pid" 2>/dev/null || return 0
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
}
stop_servers() {
	stop_pid "$WORK/apiserver.pid"
	stop_pid "$WORK/etcd.pid"
}
cleanup() {
	stop_servers
	if [[ ${MESHFLEET_E2E_KEEP:-} == 1 ]]; then
		echo "e2e: work directory kept: $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t_start=$SECONDS
log() { echo "e2e: $*" >&2; }
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
secs() { printf '%d.%01ds' $(($1 / 1000)) $(($1 % 1000 / 100)); } # MS
log "work directory $WORK"

BIN=$(bash hack/build-tools.sh)
log "tools in $BIN ($((SECONDS - t_start))s)"
mkdir -p "$WORK/bin"
go build -o "$WORK/bin/meshfleet" .
go build -C hack/e2e -o "$WORK/bin/e2ekit" .
MESHFLEET=$WORK/bin/meshfleet
E2EKIT=$WORK/bin/e2ekit
KUSTOMIZE=$BIN/kustomize
# istioctl never talks to a cluster here: it gets no kubeconfig at all.
istioctl() { KUBECONFIG=$WORK/no-kubeconfig "$BIN/istioctl" "$@"; }
kubectl() { "$BIN/kubectl" --kubeconfig "$WORK/kubeconfig" --cache-dir "$WORK/kubecache" "$@"; }

# ---- results -------------------------------------------------------------------

# oneline TEXT: tool output on one line.
oneline() { printf '%s' "$1" | sed -e 's/\x1b\[[0-9;]*m//g' | tr -s '\n\t' '  ' | sed 's/ *$//'; }

# fail EXAMPLE OVERLAY FILE OBJECT OUTPUT: print and record one failure.
fail() {
	printf 'FAIL example=%s cluster=%s file=%s object=%s: %s\n' "$1" "$2" "$3" "$4" "$(oneline "$5")"
	echo "FAILLINE $1 $2 $3 $4" >>"$RESULTS"
}
# skip EXAMPLE OVERLAY FILE OBJECT REASON: an object not applied.
skip() {
	printf 'SKIP example=%s cluster=%s file=%s object=%s: %s\n' "$1" "$2" "$3" "$4" "$5"
	echo "SKIP $1 $2 $3 $4" >>"$RESULTS"
}
# check NAME PASS|FAIL: record one check.
check() { echo "$2 $1" >>"$RESULTS"; }

# Index rows (from e2ekit split): objfile phase apiVersion kind namespace name origin
obj_name() { echo "$4/$6"; } # Kind/name of an index row given as "$@"

# ---- etcd and kube-apiserver ---------------------------------------------------

ETCD_DIR=$WORK/etcd
start_servers() {
	"$BIN/etcd" --name e2e --data-dir "$ETCD_DIR" \
		--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster "e2e=http://127.0.0.1:$ETCD_PEER_PORT" \
		--listen-metrics-urls "" --log-level warn \
		--unsafe-no-fsync --quota-backend-bytes 1073741824 >>"$WORK/etcd.log" 2>&1 &
	echo $! >"$WORK/etcd.pid"
	disown # stopped by PID (stop_servers, reset_servers), not as a job
	local i
	for i in $(seq 100); do
		curl -sf "http://127.0.0.1:$ETCD_PORT/health" >/dev/null 2>&1 && break
		if ! kill -0 "$(cat "$WORK/etcd.pid")" 2>/dev/null; then
			log "etcd exited; tail of its log:"
			tail -20 "$WORK/etcd.log" >&2
			return 1
		fi
		sleep 0.1
	done
	"$BIN/kube-apiserver" \
		--etcd-servers "http://127.0.0.1:$ETCD_PORT" \
		--bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
		--cert-dir "$WORK/certs" \
		--token-auth-file "$WORK/tokens.csv" \
		--authorization-mode RBAC \
		--service-account-issuer https://kubernetes.default.svc.cluster.local \
		--service-account-key-file "$WORK/sa.pub" --service-account-signing-key-file "$WORK/sa.key" \
		--service-cluster-ip-range 10.96.0.0/16 \
		--endpoint-reconciler-type none \
		--disable-admission-plugins ServiceAccount \
		--allow-privileged=true \
		--profiling=false \
		>>"$WORK/apiserver.log" 2>&1 &
	echo $! >"$WORK/apiserver.pid"
	disown
	for i in $(seq 600); do
		if ! kill -0 "$(cat "$WORK/apiserver.pid")" 2>/dev/null; then
			log "kube-apiserver exited; tail of its log:"
			tail -30 "$WORK/apiserver.log" >&2
			return 1
		fi
		if [[ -f $WORK/certs/apiserver.crt ]] &&
			curl -sf --cacert "$WORK/certs/apiserver.crt" -H "Authorization: Bearer $TOKEN" \
				"https://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	log "kube-apiserver not ready after 60s; tail of its log:"
	tail -30 "$WORK/apiserver.log" >&2
	return 1
}

init_servers() {
	local port
	for port in "$ETCD_PORT" "$ETCD_PEER_PORT" "$API_PORT"; do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			log "127.0.0.1:$port is in use; choose other ports with MESHFLEET_E2E_ETCD_PORT, MESHFLEET_E2E_ETCD_PEER_PORT, MESHFLEET_E2E_API_PORT"
			return 1
		fi
	done
	mkdir -p "$WORK/certs"
	openssl genrsa -out "$WORK/sa.key" 2048 2>/dev/null
	openssl rsa -in "$WORK/sa.key" -pubout -out "$WORK/sa.pub" 2>/dev/null
	TOKEN=$(openssl rand -hex 16)
	echo "$TOKEN,admin,admin,system:masters" >"$WORK/tokens.csv"
	cat >"$WORK/kubeconfig" <<-EOF
		apiVersion: v1
		kind: Config
		clusters:
		- name: e2e
		  cluster:
		    server: https://127.0.0.1:$API_PORT
		    certificate-authority: $WORK/certs/apiserver.crt
		users:
		- name: admin
		  user:
		    token: $TOKEN
		contexts:
		- name: e2e
		  context: {cluster: e2e, user: admin}
		current-context: e2e
	EOF
}

# reset_servers: restart etcd and the apiserver on a copy of the snapshot
# taken once the CRDs were installed. Nothing of the state is kept, so the
# old processes are killed outright.
reset_servers() {
	local p
	for p in apiserver etcd; do
		if [[ -f $WORK/$p.pid ]]; then
			kill -9 "$(cat "$WORK/$p.pid")" 2>/dev/null || true
			while kill -0 "$(cat "$WORK/$p.pid")" 2>/dev/null; do sleep 0.05; done
			rm -f "$WORK/$p.pid"
		fi
	done
	rm -rf "$ETCD_DIR" "$WORK/kubecache"
	cp -a "$WORK/etcd.snapshot" "$ETCD_DIR"
	start_servers
}

# served APIVERSION KIND: does the apiserver serve this kind?
served() {
	local path=/apis/$1
	[[ $1 == v1 ]] && path=/api/v1
	local list
	list=$(kubectl get --raw "$path" 2>/dev/null) || return 1
	[[ $list == *"\"kind\":\"$2\""* ]]
}

# ---- overlays ------------------------------------------------------------------

# overlays_of RENDERDIR: "<name> <dir relative to RENDERDIR> <cluster|delivery>"
# per overlay: clusters/<c>/, then the delivery overlays: every other
# top-level directory X (but shared/) with a kustomization, or else X/<y>/
# with one.
overlays_of() {
	local d x
	for d in "$1"/clusters/*/; do
		[[ -d $d ]] && echo "$(basename "$d") clusters/$(basename "$d") cluster"
	done
	for x in "$1"/*/; do
		x=$(basename "$x")
		[[ $x == clusters || $x == shared ]] && continue
		if has_kustomization "$1/$x"; then
			echo "$x $x delivery"
			continue
		fi
		for d in "$1/$x"/*/; do
			[[ -d $d ]] && has_kustomization "$d" && echo "$x/$(basename "$d") $x/$(basename "$d") delivery"
		done
	done
	return 0
}
has_kustomization() { [[ -f $1/kustomization.yaml || -f $1/kustomization.yml || -f $1/Kustomization ]]; }

workdir() { echo "$WORK/out/$1/${2//\//_}"; } # EX OVERLAY

# offline_overlay EX RENDERDIR NAME DIR KIND: build, generate, validate,
# analyze. Leaves in workdir one directory per set of objects (k: the built
# overlay; gN: istioctl's output for the Nth istioctl file) and the file
# "sets" listing them as "<set> <istioctl file>".
offline_overlay() {
	local ex=$1 rdir=$2 name=$3 odir=$4 okind=$5
	local cw
	cw=$(workdir "$ex" "$name")
	local kfile=$odir/kustomization.yaml
	mkdir -p "$cw"
	echo "$okind" >"$cw/kind"
	local out
	if ! out=$("$KUSTOMIZE" build "$rdir/$odir" 2>&1 >"$cw/build.yaml"); then
		fail "$ex" "$name" "$kfile" "-" "kustomize build: $out"
		check "$ex/$name/build" FAIL
		return 0
	fi
	# The same build with origin annotations, only to tell which file each
	# object came from.
	local wrap=$rdir/.e2e-origins/${name//\//_}
	mkdir -p "$wrap"
	printf 'resources:\n- ../../%s\nbuildMetadata: [originAnnotations]\n' "$odir" >"$wrap/kustomization.yaml"
	"$KUSTOMIZE" build "$wrap" >"$cw/origins.yaml" 2>/dev/null || : >"$cw/origins.yaml"
	if ! out=$("$E2EKIT" split -o "$cw/k" -label "$kfile" -origins "$cw/origins.yaml" -origin-base "$wrap" -root "$rdir" "$cw/build.yaml" 2>&1); then
		fail "$ex" "$name" "$kfile" "-" "$out"
		check "$ex/$name/build" FAIL
		return 0
	fi
	check "$ex/$name/build" PASS
	echo "k" >"$cw/sets"

	# generate, for every file under istioctl/
	local -a iopfiles=() iopnames=()
	local f rel i
	if [[ $okind == cluster && -d $rdir/$odir/istioctl ]]; then
		while IFS= read -r -d '' f; do iopfiles+=("$f"); done < <(find "$rdir/$odir/istioctl" -type f -print0 | sort -z)
	fi
	for i in "${!iopfiles[@]}"; do
		f=${iopfiles[$i]} rel=${iopfiles[$i]#"$rdir"/}
		iopnames[i]=-
		if "$E2EKIT" split -o "$cw/iop$i" -label "$rel" "$f" >/dev/null 2>&1; then
			iopnames[i]=$(cut -f4,6 "$cw/iop$i/index.tsv" | tr '\t' / | paste -sd, -)
		fi
		if ! out=$(istioctl manifest generate -f "$f" 2>&1 >"$cw/gen$i.yaml"); then
			fail "$ex" "$name" "$rel" "${iopnames[i]}" "istioctl manifest generate: $out"
			check "$ex/$name/generate:$rel" FAIL
			continue
		fi
		if ! out=$("$E2EKIT" split -o "$cw/g$i" -label "$rel" "$cw/gen$i.yaml" 2>&1); then
			fail "$ex" "$name" "$rel" "${iopnames[i]}" "istioctl manifest generate output: $out"
			check "$ex/$name/generate:$rel" FAIL
			continue
		fi
		echo "g$i $rel" >>"$cw/sets"
		check "$ex/$name/generate:$rel" PASS
	done

	# validate everything the overlay gets (istioctl checks Istio objects,
	# and Services and Deployments against mesh rules) in one call, then
	# one object at a time to name the culprits; and every istioctl file.
	local -a sets=() args=() indexes=()
	local set ok=1 row o named
	mapfile -t sets < <(cut -d' ' -f1 "$cw/sets")
	for set in "${sets[@]}"; do
		indexes+=("$cw/$set/index.tsv")
		while IFS=$'\t' read -r -a row; do args+=(-f "${row[0]}"); done <"$cw/$set/index.tsv"
	done
	if ((${#args[@]})) && ! out=$(validate "${args[@]}"); then
		named=0
		while IFS=$'\t' read -r -a row; do
			if ! o=$(validate -f "${row[0]}"); then
				fail "$ex" "$name" "${row[6]}" "$(obj_name "${row[@]}")" "istioctl validate: $o"
				named=1
			fi
		done < <(cat "${indexes[@]}")
		[[ $named == 1 ]] || fail "$ex" "$name" "$kfile" "*" "istioctl validate: $out"
		ok=0
	fi
	for i in "${!iopfiles[@]}"; do
		if ! out=$(validate -f "${iopfiles[$i]}"); then
			fail "$ex" "$name" "${iopfiles[$i]#"$rdir"/}" "${iopnames[i]}" "istioctl validate: $out"
			ok=0
		fi
	done
	if [[ $ok == 1 ]]; then check "$ex/$name/validate" PASS; else check "$ex/$name/validate" FAIL; fi

	# analyze everything the overlay gets, all namespaces, no cluster; any
	# message (Info included) and any file istioctl cannot read fails.
	local -a files=()
	local file object msg rc=0
	mapfile -t files < <(cat "${indexes[@]}" | cut -f1)
	istioctl analyze --use-kube=false -A --output-threshold Info -o json "${files[@]}" >"$cw/analyze.out" 2>"$cw/analyze.err" || rc=$?
	if out=$("$E2EKIT" analyze -out "$cw/analyze.out" -err "$cw/analyze.err" "${indexes[@]}" 2>&1) && [[ $rc == 0 ]]; then
		check "$ex/$name/analyze" PASS
	else
		named=0
		while IFS=$'\t' read -r file object msg; do
			[[ -n $msg ]] || continue
			fail "$ex" "$name" "$file" "$object" "istioctl analyze: $msg"
			named=1
		done <<<"$out"
		[[ $named == 1 ]] || fail "$ex" "$name" "$kfile" "*" "istioctl analyze (exit $rc): $out $(cat "$cw/analyze.err")"
		check "$ex/$name/analyze" FAIL
	fi
}

# validate ARGS...: istioctl validate; fails on a non-zero exit and on any
# output but its '"<file>" is valid' lines (warnings included).
validate() {
	local out rc=0
	out=$(istioctl validate "$@" 2>&1) || rc=$?
	printf '%s' "$out"
	[[ $rc == 0 ]] && ! grep -qv -e '^".*" is valid$' -e '^[[:space:]]*$' <<<"$out"
}

# no_crd_reason APIVERSION KIND: why objects of this kind are not applied.
no_crd_reason() {
	local group=${1%/*}
	[[ $1 == */* ]] || group=""
	grep -qxF "$1 $2" "$WORK/missing-kinds" 2>/dev/null || return 0
	if [[ -n ${NO_CRD[$group]:-} ]]; then
		echo "not applied: no CRD for $2 ($1): ${NO_CRD[$group]}"
	elif [[ $2 == IstioOperator ]]; then
		echo "IstioOperator has no CRD (Istio removed it with the in-cluster operator): it is istioctl input and must not be applied"
	else
		echo "no CRD for $2 ($1): it is not built in and no module in hack/e2e.sh's CRD_SOURCES has it"
	fi
}

# server_side_apply ARGS...: kubectl apply --server-side; fails on an error
# and on any warning the apiserver sends back.
server_side_apply() {
	local out rc=0
	out=$(kubectl apply --server-side "$@" 2>&1) || rc=$?
	printf '%s' "$out"
	[[ $rc == 0 ]] && ! grep -q '^Warning:' <<<"$out"
}

# kubectl_apply EX NAME FIELDMANAGER SETDIR PHASE [kubectl flags]: apply one
# phase of one set in one call. An apiserver warning fails the object it
# is about: kubectl prints an object's warnings just before its
# "<kind>.<group>/<name> serverside-applied" line. On an error, the objects
# are applied again one at a time (the ones applied already are no-ops) to
# name the ones the apiserver rejects.
kubectl_apply() {
	local ex=$1 name=$2 manager=$3 dir=$4 phase=$5
	shift 5
	local -a rows=() r=()
	local row out rc=0 bad=0
	mapfile -t rows < <(awk -F'\t' -v p="$phase" '$2==p' "$dir/apply.tsv")
	((${#rows[@]})) || return 0
	: >"$dir/$phase.yaml"
	for row in "${rows[@]}"; do
		{
			cat "${row%%$'\t'*}"
			echo ---
		} >>"$dir/$phase.yaml"
	done
	out=$(kubectl apply --server-side --field-manager "$manager" "$@" -f "$dir/$phase.yaml" 2>&1) || rc=$?
	local res warning
	while IFS=$'\t' read -r res warning; do
		bad=1
		row=$(printf '%s\n' "${rows[@]}" | awk -F'\t' -v res="$res" '{
			g = $3; if (index(g, "/") == 0) g = ""; else sub(/\/[^\/]*$/, "", g)
			if (tolower($4) (g == "" ? "" : "." g) "/" $6 == res) { print; exit }
		}')
		if [[ -n $row ]]; then
			IFS=$'\t' read -r -a r <<<"$row"
			fail "$ex" "$name" "${r[6]}" "$(obj_name "${r[@]}")" "kubectl apply: $warning"
		else
			fail "$ex" "$name" "$(printf '%s\n' "${rows[@]}" | cut -f7 | sort -u | paste -sd, -)" "$res" "kubectl apply: $warning"
		fi
	done < <(awk '
		/^Warning: / { w = w (w == "" ? "" : " | ") $0; next }
		/ serverside-applied( \(server dry run\))?$/ { if (w != "") print $1 "\t" w; w = "" }
		END { if (w != "") print "-\t" w }' <<<"$out")
	[[ $rc == 0 ]] && return $bad
	local named=0 o
	for row in "${rows[@]}"; do
		IFS=$'\t' read -r -a r <<<"$row"
		if ! o=$(server_side_apply --field-manager "$manager" "$@" -f "${r[0]}"); then
			local reason
			reason=$(no_crd_reason "${r[2]}" "${r[3]}")
			fail "$ex" "$name" "${r[6]}" "$(obj_name "${r[@]}")" "kubectl apply: ${reason:+$reason: }$o"
			named=1
		fi
	done
	if [[ $named == 0 ]]; then
		fail "$ex" "$name" "$(printf '%s\n' "${rows[@]}" | cut -f7 | sort -u | paste -sd, -)" "*" "kubectl apply: $out"
	fi
	return 1
}

# apply_overlay EX NAME: everything the overlay gets, in a fresh apiserver.
apply_overlay() {
	local ex=$1 name=$2
	local cw
	cw=$(workdir "$ex" "$name")
	[[ -f $cw/sets ]] || return 0
	local t0 t1
	t0=$(now_ms)
	if ! reset_servers; then
		fail "$ex" "$name" "-" "-" "could not restart etcd and kube-apiserver"
		check "$ex/$name/apply" FAIL
		return 0
	fi
	t1=$(now_ms)
	local ok=1 line set rel phase manager
	local -a sets=() row=()
	mapfile -t sets <"$cw/sets"
	# What gets applied: everything but the objects of kinds that have no
	# CRD for a known reason (NO_CRD).
	local g
	: >"$cw/skip-kinds"
	while read -r line; do
		g=${line%% *}
		g=${g%/*}
		if [[ -n ${NO_CRD[$g]:-} ]]; then echo "$line" >>"$cw/skip-kinds"; fi
	done <"$WORK/missing-kinds"
	for line in "${sets[@]}"; do
		read -r set rel <<<"$line"
		awk -F'\t' 'FILENAME==ARGV[1]{skip[$0]=1; next} !(($3" "$4) in skip)' "$cw/skip-kinds" "$cw/$set/index.tsv" >"$cw/$set/apply.tsv"
		while IFS=$'\t' read -r -a row; do
			skip "$ex" "$name" "${row[6]}" "$(obj_name "${row[@]}")" "$(no_crd_reason "${row[2]}" "${row[3]}")"
		done < <(awk -F'\t' 'FILENAME==ARGV[1]{skip[$0]=1; next} (($3" "$4) in skip)' "$cw/skip-kinds" "$cw/$set/index.tsv")
	done
	# A delivery overlay's objects live in the namespace of its tool (Flux,
	# Argo CD), which that tool's installation creates.
	if [[ $(cat "$cw/kind") == delivery ]]; then
		local ns
		for ns in $(comm -23 <(cat "$cw"/*/apply.tsv | cut -f5 | sed '/^-$/d' | sort -u) \
			<(cat "$cw"/*/apply.tsv | awk -F'\t' '$4=="Namespace"{print $6}' | sort -u)); do
			kubectl create namespace "$ns" >/dev/null
			log "$ex/$name: created namespace $ns first (the delivery tool's own)"
		done
	fi
	for phase in ns crd obj dry; do
		for line in "${sets[@]}"; do
			read -r set rel <<<"$line"
			manager=kustomize
			[[ $set == k ]] || manager="istioctl-$(basename "$rel" | tr -c 'a-zA-Z0-9\n-' -)"
			case $phase in
			crd) kubectl_apply "$ex" "$name" "$manager" "$cw/$set" crd --force-conflicts || ok=0 ;;
			dry) kubectl_apply "$ex" "$name" "$manager" "$cw/$set" dry --dry-run=server || ok=0 ;;
			*) kubectl_apply "$ex" "$name" "$manager" "$cw/$set" "$phase" || ok=0 ;;
			esac
		done
		if [[ $phase == crd ]] && awk -F'\t' '$2=="crd"{f=1} END{exit !f}' "$cw"/*/apply.tsv; then
			kubectl wait --for condition=established crd --all --timeout=60s >/dev/null 2>&1 || true
		fi
	done
	if [[ $ok == 1 ]]; then check "$ex/$name/apply" PASS; else check "$ex/$name/apply" FAIL; fi
	log "$ex/$name: $(cat "$cw"/*/apply.tsv | wc -l) objects applied (fresh apiserver in $(secs $((t1 - t0))), applies in $(secs $(($(now_ms) - t1))))"
}

# install_crds: install the CRD of every kind in the output that the
# apiserver does not serve, from the module zips; list the kinds left with
# none in $WORK/missing-kinds ("<apiVersion> <kind>").
install_crds() {
	local istio_version out
	istio_version=$(go -C hack/istioctl list -m -f '{{.Version}}' istio.io/istio)
	local -a sources=("${CRD_SOURCES[@]/ISTIO_VERSION/$istio_version}")
	if ! out=$("$E2EKIT" crds -o "$WORK/crds" "${sources[@]}" 2>&1); then
		log "reading CRDs from module zips failed: $out"
		return 1
	fi
	[[ -z $out ]] || log "$out"
	{ cat "$WORK"/out/*/*/k/index.tsv "$WORK"/out/*/*/g*/index.tsv 2>/dev/null || true; } | awk -F'\t' '$2!="crd"{print $3" "$4}' | sort -u >"$WORK/kinds"
	{ cat "$WORK"/out/*/*/k/provides.tsv "$WORK"/out/*/*/g*/provides.tsv 2>/dev/null || true; } | sort -u >"$WORK/provided"
	local apiVersion kind group f
	local -a args=()
	: >"$WORK/missing-kinds"
	while read -r apiVersion kind; do
		served "$apiVersion" "$kind" && continue
		group=""
		[[ $apiVersion == */* ]] && group=${apiVersion%/*}
		f=$(awk -F'\t' -v g="$group" -v k="$kind" '$1==g && $2==k {print $4; exit}' "$WORK/crds/index.tsv")
		if [[ -n $f ]]; then
			args+=(-f "$f")
		elif ! grep -qxF "$group"$'\t'"$kind" "$WORK/provided"; then
			echo "$apiVersion $kind" >>"$WORK/missing-kinds"
		fi
	done <"$WORK/kinds"
	if ((${#args[@]})); then
		log "installing $((${#args[@]} / 2)) CRDs: $(printf '%s\n' "${args[@]}" | grep -v '^-f$' | xargs -n1 basename | sed 's/\.yaml$//' | paste -sd' ' -)"
		kubectl apply --server-side --field-manager e2e-crds "${args[@]}" >/dev/null
		kubectl wait --for condition=established crd --all --timeout=120s >/dev/null
	fi
	# A CRD may serve other versions than an object's: check again.
	while read -r apiVersion kind; do
		grep -qxF "$apiVersion $kind" "$WORK/missing-kinds" && continue
		group=""
		[[ $apiVersion == */* ]] && group=${apiVersion%/*}
		grep -qxF "$group"$'\t'"$kind" "$WORK/provided" && continue
		served "$apiVersion" "$kind" || echo "$apiVersion $kind" >>"$WORK/missing-kinds"
	done <"$WORK/kinds"
	if [[ -s $WORK/missing-kinds ]]; then
		log "kinds with no CRD: $(paste -sd, - <"$WORK/missing-kinds")"
	fi
}

# ---- self-test -----------------------------------------------------------------

SELF=self-test
# break_copy RENDERDIR C: five mistakes in cluster C of a rendered copy.
break_copy() {
	local cdir=$1/clusters/$2
	cat >"$cdir/broken-gateway.yaml" <<-'EOF'
		apiVersion: networking.istio.io/v1
		kind: Gateway
		metadata:
		  name: broken-gateway
		  namespace: istio-system
		spec:
		  selector:
		    istio: eastwestgateway
		  servers:
		  - hosts:
		    - "*.local"
		    port:
		      name: tls
		      number: 15443
		      protocol: TLS
		    tls:
		      mode: AUTO_PASSTHROUGHX
	EOF
	cat >"$cdir/dangling-virtualservice.yaml" <<-'EOF'
		apiVersion: networking.istio.io/v1
		kind: VirtualService
		metadata:
		  name: dangling
		  namespace: istio-system
		spec:
		  hosts:
		  - dangling.example.net
		  gateways:
		  - no-such-gateway
		  http:
		  - route:
		    - destination:
		        host: istiod.istio-system.svc.cluster.local
	EOF
	mkdir -p "$cdir/istioctl"
	cat >"$cdir/istioctl/broken-iop.yaml" <<-'EOF'
		apiVersion: install.istio.io/v1alpha1
		kind: IstioOperator
		metadata:
		  name: broken
		  namespace: istio-system
		spec:
		  hub: registry.istio.io/release
		  tag: "1.31.1"
		  profile: empty
		  values:
		    global:
		      meshId: mesh1
	EOF
	cat >"$cdir/unknown-kind.yaml" <<-'EOF'
		apiVersion: widgets.example.com/v1
		kind: Widget
		metadata:
		  name: no-crd
		  namespace: istio-system
	EOF
	cat >"$cdir/warned-deployment.yaml" <<-'EOF'
		apiVersion: apps/v1
		kind: Deployment
		metadata:
		  name: warned
		  namespace: istio-system
		spec:
		  selector:
		    matchLabels: {app: warned}
		  template:
		    metadata:
		      labels: {app: warned}
		    spec:
		      nodeSelector:
		        beta.kubernetes.io/arch: amd64
		      containers:
		      - name: app
		        image: registry.example.net/app:1
	EOF
	printf -- '- %s\n' broken-gateway.yaml dangling-virtualservice.yaml unknown-kind.yaml warned-deployment.yaml >>"$cdir/kustomization.yaml"
}

# self_test_offline: render an example into a copy, break its first
# cluster and run the offline checks on its first two clusters, with the
# self-test's own results file and output.
self_clusters=()
self_test_offline() {
	local fleet rdir=$WORK/render/$SELF out c
	fleet=$(ls examples/multi-primary-multi-network/fleet.* 2>/dev/null | head -1) || true
	[[ -n $fleet ]] || fleet=$(ls examples/*/fleet.* | head -1)
	log "self-test: breaking a copy of $(dirname "$fleet")"
	if ! out=$("$MESHFLEET" render -f "$fleet" -o "$rdir" 2>&1); then
		fail "$SELF" "-" "$fleet" "-" "meshfleet render: $out"
		return 1
	fi
	mapfile -t self_clusters < <(overlays_of "$rdir" | awk '$3=="cluster"{print $1}' | head -2)
	break_copy "$rdir" "${self_clusters[0]}"
	(
		RESULTS=$WORK/self-test.results
		for c in "${self_clusters[@]}"; do offline_overlay "$SELF" "$rdir" "$c" "clusters/$c" cluster; done
	) >"$WORK/self-test.out" 2>&1
}

# self_test_check: apply; then every mistake must have been reported with
# its file and object, and the untouched cluster must pass and must not
# see the broken cluster's objects.
self_test_check() {
	local c victim=${self_clusters[0]} other=${self_clusters[1]:-}
	local -a want=()
	(
		RESULTS=$WORK/self-test.results
		for c in "${self_clusters[@]}"; do apply_overlay "$SELF" "$c"; done
		if [[ -n $other ]]; then
			# The state is now the untouched cluster's.
			if kubectl get -n istio-system virtualservice dangling >/dev/null 2>&1; then
				echo "LEAK: VirtualService istio-system/dangling of cluster $victim is visible while checking $other"
			fi
		fi
	) >>"$WORK/self-test.out" 2>&1
	sed 's/^/e2e: self-test| /' "$WORK/self-test.out" | cut -c1-300 >&2
	local prefix="FAIL example=$SELF cluster=$victim file=clusters/$victim"
	want=(
		"$prefix/broken-gateway.yaml object=Gateway/broken-gateway: kubectl apply:"
		"$prefix/broken-gateway.yaml object=Gateway/broken-gateway: istioctl validate:"
		"$prefix/dangling-virtualservice.yaml object=VirtualService/dangling: istioctl analyze: Error [IST0101]"
		"$prefix/istioctl/broken-iop.yaml object=IstioOperator/broken: istioctl manifest generate:"
		"$prefix/istioctl/broken-iop.yaml object=IstioOperator/broken: istioctl validate:"
		"$prefix/unknown-kind.yaml object=Widget/no-crd: kubectl apply: no CRD for Widget (widgets.example.com/v1)"
		"$prefix/warned-deployment.yaml object=Deployment/warned: kubectl apply: Warning:"
	)
	local ok=1 w
	for w in "${want[@]}"; do
		if ! grep -qF -- "$w" "$WORK/self-test.out"; then
			fail "$SELF" "$victim" "-" "-" "the harness did not report: $w"
			ok=0
		fi
	done
	if [[ -n $other ]] && grep -q "^FAIL example=$SELF cluster=$other \|^LEAK" "$WORK/self-test.out"; then
		fail "$SELF" "$other" "-" "-" "the cluster the self-test did not break failed: $(grep "^FAIL example=$SELF cluster=$other \|^LEAK" "$WORK/self-test.out")"
		ok=0
	fi
	if [[ $ok == 1 ]]; then
		log "self-test: all ${#want[@]} injected mistakes reported with file and object; cluster $other untouched"
		check "$SELF" PASS
	else
		check "$SELF" FAIL
	fi
}

# ---- main ----------------------------------------------------------------------

if [[ $run_examples == 1 ]] && ((${#examples[@]} == 0)); then
	for d in examples/*/; do
		ls "$d"fleet.* >/dev/null 2>&1 && examples+=("$(basename "$d")")
	done
fi
[[ $run_examples == 1 ]] || examples=()

# 1. Render, and everything that needs no apiserver.
declare -A rendered=()
for ex in ${examples[@]+"${examples[@]}"}; do
	fleet=$(ls "examples/$ex"/fleet.* 2>/dev/null | head -1) || true
	if [[ -z $fleet ]]; then
		fail "$ex" "-" "examples/$ex" "-" "no fleet file"
		check "$ex/render" FAIL
		continue
	fi
	rdir=$WORK/render/$ex
	if ! out=$("$MESHFLEET" render -f "$fleet" -o "$rdir" 2>&1); then
		fail "$ex" "-" "$fleet" "-" "meshfleet render: $out"
		check "$ex/render" FAIL
		continue
	fi
	mapfile -t ovs < <(overlays_of "$rdir")
	if ! printf '%s\n' "${ovs[@]}" | grep -q ' cluster$'; then
		fail "$ex" "-" "$fleet" "-" "the rendered output has no clusters/<cluster>/ directory"
		check "$ex/render" FAIL
		continue
	fi
	check "$ex/render" PASS
	rendered[$ex]=$rdir
	t0=$SECONDS
	for ov in "${ovs[@]}"; do
		read -r name odir okind <<<"$ov"
		offline_overlay "$ex" "$rdir" "$name" "$odir" "$okind"
	done
	log "$ex: built and checked with istioctl: $(printf '%s\n' "${ovs[@]}" | cut -d' ' -f1 | paste -sd' ' -) ($((SECONDS - t0))s)"
done
self_ok=0
if [[ $run_self_test == 1 ]]; then
	if self_test_offline; then self_ok=1; else check "$SELF" FAIL; fi
fi

# 2. The apiserver, its CRDs, and the snapshot every overlay starts from.
init_servers
t0=$SECONDS
start_servers
log "etcd and kube-apiserver ready on 127.0.0.1:$ETCD_PORT and 127.0.0.1:$API_PORT ($((SECONDS - t0))s)"
t0=$SECONDS
install_crds
stop_servers
cp -a "$ETCD_DIR" "$WORK/etcd.snapshot"
log "CRDs installed and snapshot taken ($((SECONDS - t0))s)"

# 3. Apply every overlay in a fresh state.
for ex in ${examples[@]+"${examples[@]}"}; do
	[[ -n ${rendered[$ex]:-} ]] || continue
	t0=$SECONDS
	n=0
	while read -r name _; do
		apply_overlay "$ex" "$name"
		n=$((n + 1))
	done < <(overlays_of "${rendered[$ex]}")
	log "$ex: $n overlays applied ($((SECONDS - t0))s)"
done
if [[ $self_ok == 1 ]]; then
	self_test_check
fi
stop_servers

# ---- summary -------------------------------------------------------------------
passed=$(grep -c '^PASS ' "$RESULTS" || true)
failed=$(grep -c '^FAIL ' "$RESULTS" || true)
skipped=$(grep -c '^SKIP ' "$RESULTS" || true)
log "done in $((SECONDS - t_start))s"
if [[ $skipped == 0 ]]; then
	echo "$passed passed, $failed failed"
else
	echo "$passed passed, $failed failed, $skipped skipped"
fi
[[ $failed == 0 ]]
