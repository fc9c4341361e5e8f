#!/usr/bin/env bash
# Convergence harness: does the mesh a fleet renders actually come up?
#
#   hack/converge.sh -f FLEET [-v]     one fleet (any format meshfleet reads)
#   hack/converge.sh                   every examples/*/fleet.*, then the self-test
#   hack/converge.sh EXAMPLE...        these examples (names under examples/)
#   hack/converge.sh --self-test       only the self-test (the negative suite)
#   hack/converge.sh --no-self-test    the examples without the self-test
#   hack/converge.sh --upgrade [INSTALLER...]
#                                      the upgrade steps of overlays/testdata/upgrade
#                                      (step-N.yaml, INSTALLER replaced by istioctl,
#                                      helm, sail or those named), each from scratch
#
# For each fleet it renders the output with meshfleet, starts one etcd and
# kube-apiserver per cluster on 127.0.0.1, applies every cluster's output in
# its delivery's order (Flux Kustomizations by dependsOn and wait, judged by
# kstatus; Argo CD Applications by sync wave, judged by Argo CD's health
# with the argocd-cm Lua health scripts the output renders; or the README's
# order for output applied by hand, with `istioctl manifest generate` of the
# istioctl/ files), runs cert-manager's controllers for a fleet with
# ca.certManager, runs a real istiod (pilot-discovery) for every istiod
# Deployment, on a pod address of its own in the run's network namespace,
# which the API servers call its webhooks at (an Istio object applied and a
# pod admitted go through istiod's validation and injection for real), and
# checks
# what every istiod reports: every other cluster synced, the webhooks
# patched, a probe Service of every cluster with the right cluster ID and
# network, every network's gateway at the declared address, the remotes'
# remotePilotAddress, one mesh ID and one root of trust, every revision
# tag's webhook calling the istiod of the revision it names and alone
# selecting the tag's namespaces (in a primary, a dry-run pod there is
# injected by that revision); with an external
# control plane, that its istiod reads the config cluster and the remotes
# (not its own cluster) and that their webhooks call the ingress gateway's
# address with the CA bundle the external istiod serves. A gateway the
# fleet declares by host name is reached through the owner's DNS record
# (the name -> the address its Service's load balancer got), and a
# gateway certificate from an issuer the fleet names is issued by
# cert-manager from a public CA the harness plays, whose root the API
# servers trust as their system roots (webhooks without caBundle are
# verified with it). The stand-ins for
# the parts of a cluster it has no real one of are documented in
# hack/istioctl/converge/standins.go.
#
# Every line is PASS, FAIL or SKIP; the last is `N passed, M failed` (and
# `, K skipped`). SKIP is a known finding against today's output, listed
# with its reason in hack/converge-findings.tsv (examples only); a known
# finding that no longer fails is a FAIL, so the list stays true. Exit 0
# only when nothing failed.
#
# The self-test breaks examples/primary-remote-multi-network on purpose
# (hack/istioctl/converge/break.go: a wrong network label, a missing remote
# secret, a mismatched meshID, cacerts filled only after istiod started, a
# gateway Service that asks for another address, a fail-closed webhook
# whose Service nothing serves), examples/argocd-helm with argocd-cm's
# Secret health check left out, examples/external-control-plane (the
# config cluster's webhooks call another address than the external
# istiod's gateway), examples/external-control-plane-sail twice (the
# config cluster's webhooks call another host name than the fleet's; the
# gateway's publicly trusted certificate is issued for another name), and
# examples/revisions with its canary tag's webhook calling the other
# revision's istiod (a pod of an istio.io/rev=canary namespace is then
# injected by the wrong revision), and checks that each is caught by the
# check that should catch it.
#
# --upgrade converges every step fleet of the documented upgrade (README
# "Revisions side by side, tags and upgrades") on fresh clusters: each
# step's output is brought up from nothing, not applied over the previous
# step's clusters as Flux would; the lines are prefixed with
# upgrade-INSTALLER-step-N, and the time of each installer is logged.
#
# Tools come from hack/build-tools.sh (cached), or from $MESHFLEET_TOOLS_BIN.
# Each run lives in a network namespace of its own (unshare --net; root is
# needed), so its listeners and pod addresses never touch the machine's
# network. Every process is stopped by PID at the end or on SIGINT/SIGTERM,
# and the work directory is removed (kept with --keep).
set -o errexit -o nounset -o pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

fleet=""
verbose=""
keep=0
run_examples=1
run_self_test=1
examples=()
upgrade=0
while (($#)); do
	case $1 in
	-f | --fleet) fleet=$2; shift ;;
	-v) verbose=-v ;;
	--keep) keep=1 ;;
	--self-test) run_examples=0 ;;
	--no-self-test) run_self_test=0 ;;
	--upgrade) upgrade=1 run_examples=0 run_self_test=0 ;;
	-h | --help) sed -n '2,/^set -o/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) echo "converge: unknown flag $1" >&2; exit 2 ;;
	*) examples+=("$1") ;;
	esac
	shift
done

log() { echo "converge: $*" >&2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/converge.XXXXXX")
child=""
cleanup() {
	if [[ -n $child ]] && kill -0 "$child" 2>/dev/null; then
		kill -TERM "$child" 2>/dev/null || true
		wait "$child" 2>/dev/null || true
	fi
	if ((keep)); then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -n ${MESHFLEET_TOOLS_BIN:-} ]]; then
	BIN=$MESHFLEET_TOOLS_BIN
else
	BIN=$(bash hack/build-tools.sh)
fi
for t in etcd kube-apiserver istioctl kustomize pilot-discovery cert-manager-controller converge; do
	[[ -x $BIN/$t ]] || { log "missing $BIN/$t (hack/build-tools.sh builds it)"; exit 1; }
done
go build -o "$WORK/meshfleet" . && go build -o "$WORK/fleetinfo" ./hack/fleetinfo

total_pass=0
total_fail=0
total_skip=0

# converge_one NAME FLEET [ARGS...]: render FLEET and run the harness on it;
# the harness's lines are prefixed with NAME.
converge_one() {
	local name=$1 file=$2 dir out rc=0
	shift 2
	dir=$WORK/$name
	rm -rf "$dir"
	mkdir -p "$dir"
	if ! "$WORK/fleetinfo" -f "$file" >"$dir/fleet.json" 2>"$dir/err"; then
		echo "FAIL $name: the fleet does not validate: $(head -3 "$dir/err")"
		total_fail=$((total_fail + 1))
		return
	fi
	if ! "$WORK/meshfleet" render -f "$file" -o "$dir/rendered" >/dev/null 2>"$dir/err"; then
		echo "FAIL $name: meshfleet render: $(head -3 "$dir/err")"
		total_fail=$((total_fail + 1))
		return
	fi
	local t0=$SECONDS
	"$BIN/converge" -fleet "$dir/fleet.json" -rendered "$dir/rendered" -bin "$BIN" -work "$dir/work" $verbose "$@" >"$dir/out" &
	child=$!
	wait "$child" || rc=$?
	child=""
	sed "s/^\(PASS\|FAIL\|SKIP\) /\1 $name: /" "$dir/out" | grep -v '^[0-9]* passed' || true
	out=$(tail -1 "$dir/out")
	if [[ $out =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)? ]]; then
		total_pass=$((total_pass + BASH_REMATCH[1]))
		total_fail=$((total_fail + BASH_REMATCH[2]))
		total_skip=$((total_skip + ${BASH_REMATCH[4]:-0}))
	else
		echo "FAIL $name: the harness ended without a summary (exit $rc)"
		total_fail=$((total_fail + 1))
	fi
	log "$name: $out ($((SECONDS - t0))s)"
}

if [[ -n $fleet ]]; then
	converge_one "$(basename "$(dirname "$fleet")")" "$fleet"
	echo "$total_pass passed, $total_fail failed$( ((total_skip)) && echo ", $total_skip skipped")"
	((total_fail == 0))
	exit
fi

# known_for EXAMPLE: its lines of hack/converge-findings.tsv as the
# harness's -known file.
known_for() {
	awk -F'\t' -v ex="$1" '$1 == ex { print $2 "\t" $3 }' hack/converge-findings.tsv >"$WORK/known-$1.tsv"
	echo "$WORK/known-$1.tsv"
}

if ((upgrade)); then
	installers=("${examples[@]}")
	((${#installers[@]})) || installers=(istioctl helm sail)
	for inst in "${installers[@]}"; do
		[[ $inst =~ ^(istioctl|helm|sail)$ ]] || { echo "FAIL upgrade: unknown installer $inst"; total_fail=$((total_fail + 1)); continue; }
		t_inst=$SECONDS
		for f in overlays/testdata/upgrade/step-[0-9]*.yaml; do
			step=$(basename "$f" .yaml)
			mkdir -p "$WORK/fleets"
			sed "s/INSTALLER/$inst/" "$f" >"$WORK/fleets/upgrade-$inst-$step.yaml"
			converge_one "upgrade-$inst-$step" "$WORK/fleets/upgrade-$inst-$step.yaml" \
				-known "$(known_for "upgrade-$inst-$step")"
		done
		log "upgrade $inst: every step in $((SECONDS - t_inst))s"
	done
	examples=()
fi

if ((run_examples)); then
	if ((${#examples[@]} == 0)); then
		for f in examples/*/fleet.*; do examples+=("$(basename "$(dirname "$f")")"); done
	fi
	for ex in "${examples[@]}"; do
		f=$(ls examples/"$ex"/fleet.* 2>/dev/null | head -1)
		[[ -n $f ]] || { echo "FAIL $ex: no examples/$ex/fleet.*"; total_fail=$((total_fail + 1)); continue; }
		plugin=()
		if grep -qs '^kind: ConfigManagementPlugin' examples/"$ex"/*.yaml; then
			# Argo CD renders it with the meshfleet plugin: one
			# Application per cluster, synced by sync wave.
			plugin=(-argocd-plugin "$ROOT/examples/$ex" -meshfleet "$WORK/meshfleet")
		fi
		converge_one "$ex" "$f" -known "$(known_for "$ex")" "${plugin[@]}"
	done
fi

if ((run_self_test)); then
	# Each case must make the check that should catch it fail.
	for c in network-label missing-remote-secret mesh-id late-cacerts gateway-address argocd-secret-health config-webhook-address unanswered-webhook config-webhook-host gateway-cert-name tag-revision; do
		ex=primary-remote-multi-network
		case $c in
		network-label) want="probe endpoint" ;;
		missing-remote-secret) want="synced" ;;
		mesh-id) want="mesh ID" ;;
		late-cacerts) want="same root" ;;
		gateway-address) want="gateway at" ;;
		argocd-secret-health) want="same root" ex=argocd-helm ;;
		config-webhook-address) want="call the external istiod at an address" ex=external-control-plane ;;
		unanswered-webhook) want="failed calling webhook" ;;
		config-webhook-host | gateway-cert-name) want="call the external istiod at an address" ex=external-control-plane-sail ;;
		tag-revision) want="is injected by revision" ex=revisions ;;
		esac
		saved_pass=$total_pass saved_fail=$total_fail saved_skip=$total_skip
		converge_one "self-test-$c" "examples/$ex/fleet.yaml" -break "$c" \
			-known "$(known_for "$ex")" >"$WORK/self-test-$c.out"
		total_pass=$saved_pass total_fail=$saved_fail total_skip=$saved_skip
		if grep -q "^SKIP self-test-$c: .*$want" "$WORK/self-test-$c.out" && ! grep -q "^FAIL self-test-$c: .*$want" "$WORK/self-test-$c.out"; then
			# The check already fails on today's output: this case cannot
			# show anything until that finding is fixed.
			echo "SKIP self-test $c: the check that should catch it already fails on today's output: $(grep "^SKIP self-test-$c: .*$want" "$WORK/self-test-$c.out" | head -1 | cut -c6-)"
			total_skip=$((total_skip + 1))
		elif grep -q "^FAIL self-test-$c: .*$want" "$WORK/self-test-$c.out"; then
			echo "PASS self-test $c: caught by: $(grep "^FAIL self-test-$c: .*$want" "$WORK/self-test-$c.out" | head -1 | cut -c6-)"
			total_pass=$((total_pass + 1))
		else
			echo "FAIL self-test $c: no failing check mentions \"$want\"; the run said:"
			sed 's/^/    /' "$WORK/self-test-$c.out"
			total_fail=$((total_fail + 1))
		fi
	done
fi

echo "$total_pass passed, $total_fail failed$( ((total_skip)) && echo ", $total_skip skipped")"
((total_fail == 0))
