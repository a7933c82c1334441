#!/usr/bin/env bash
# The conformance suite: checks Astro phases on any cluster, black box,
# with kubectl only. See docs/deploy.md.
#
#   conformance/run.sh KUBECONFIG [--namespace NS] [--keep] [--timeout S]
#                     [--only NAME[,NAME...]]
#
# Uses the kubeconfig's current context. Installs the CRD, then runs each
# check with its own deadline and prints one PASS or FAIL line per check
# and a summary "N passed, M failed". Exits 0 when all passed, 1 when a
# check failed, 2 on a usage or set-up error.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CRD="$ROOT/deploy/crds/astros.yaml"
DIAMOND="$ROOT/tests/data/astro-diamond.yaml"
ASTROS="$HERE/astros"
CHECKS="diamond failing unpullable deleted"
LABEL=astertower.kasterism.io/astro

usage() {
    sed -n 's/^#   //p' "$0" >&2
    exit 2
}

TIMEOUT=120
KEEP=0
FIXED_NS=
ONLY=
[ $# -ge 1 ] || usage
case $1 in -*) usage ;; esac
export KUBECONFIG=$1
shift
while [ $# -gt 0 ]; do
    case $1 in
    --namespace) [ $# -ge 2 ] || usage; FIXED_NS=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --timeout) [ $# -ge 2 ] || usage; TIMEOUT=$2; shift 2 ;;
    --only) [ $# -ge 2 ] || usage; ONLY=${2//,/ }; shift 2 ;;
    -h|--help) usage ;;
    *) echo "run.sh: unknown argument $1" >&2; usage ;;
    esac
done
case $TIMEOUT in
''|*[!0-9]*|0) echo "run.sh: --timeout needs a positive number of" \
                     "seconds" >&2; exit 2 ;;
esac
for c in $ONLY; do
    case " $CHECKS " in
    *" $c "*) ;;
    *) echo "run.sh: unknown check $c (checks: $CHECKS)" >&2; exit 2 ;;
    esac
done
[ -n "$ONLY" ] && CHECKS=$ONLY
if [ ! -r "$KUBECONFIG" ]; then
    echo "run.sh: cannot read kubeconfig $KUBECONFIG" >&2
    exit 2
fi
command -v kubectl >/dev/null || { echo "run.sh: kubectl not found" >&2
                                   exit 2; }

# kubectl caches discovery per server address; a private cache keeps a
# stale one (another sim on the same port) out of the way.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/aster-conformance.XXXXXX")
export KUBECACHEDIR="$WORK/kubecache"
CREATED_NS=()
CREATED_ASTROS=()

k() {
    kubectl --request-timeout=15s "$@"
}

log() {
    echo "run.sh: $*" >&2
}

# cleanup: deletes what the run created unless --keep. Namespaces are
# deleted first; an Astro whose finalizer nobody removes (the controller
# gone) would hold its namespace forever, so after 60 s the finalizers of
# what is left are dropped.
cleanup() {
    local ns a left
    if [ "$KEEP" = 1 ]; then
        [ ${#CREATED_NS[@]} -gt 0 ] && log "kept namespaces ${CREATED_NS[*]}"
        rm -rf "$WORK"
        return
    fi
    for a in "${CREATED_ASTROS[@]:-}"; do
        [ -n "$a" ] && k delete astro -n "${a%%/*}" "${a#*/}" \
            --ignore-not-found --wait=false >/dev/null 2>&1
    done
    for ns in "${CREATED_NS[@]:-}"; do
        [ -n "$ns" ] && k delete namespace "$ns" --ignore-not-found \
            --wait=false >/dev/null 2>&1
    done
    # In a namespace we keep, wait for the Astros themselves.
    if [ -n "$FIXED_NS" ] && [ ${#CREATED_ASTROS[@]} -gt 0 ]; then
        left=()
        for a in "${CREATED_ASTROS[@]}"; do
            left+=("astro/${a#*/}")
        done
        k wait -n "$FIXED_NS" --for=delete "${left[@]}" --timeout=60s \
            >/dev/null 2>&1 ||
            log "Astros in $FIXED_NS not gone after 60 s (is the" \
                "controller removing its finalizer?)"
    fi
    left=()
    for ns in "${CREATED_NS[@]:-}"; do
        [ -n "$ns" ] && left+=("namespace/$ns")
    done
    if [ ${#left[@]} -gt 0 ] &&
       ! k wait --for=delete "${left[@]}" --timeout=60s >/dev/null 2>&1; then
        for ns in "${CREATED_NS[@]}"; do
            k get namespace "$ns" >/dev/null 2>&1 || continue
            log "namespace $ns still there after 60 s; dropping the" \
                "finalizers of its Astros"
            for a in $(k get astros -n "$ns" -o name 2>/dev/null); do
                k patch -n "$ns" "$a" --type=merge \
                    -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
            done
        done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# new_ns CHECK: prints the namespace for a check: --namespace's, or a
# fresh one created for it.
new_ns() {
    local ns
    if [ -n "$FIXED_NS" ]; then
        echo "$FIXED_NS"
        return 0
    fi
    ns="aster-conf-$1-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
    k create -f - >/dev/null <<EOF || return 1
apiVersion: v1
kind: Namespace
metadata:
  name: $ns
  labels:
    astertower.kasterism.io/conformance: "true"
EOF
    echo "$ns"
}

# apply_astro FILE NS: applies the Astro in FILE into NS, replacing a
# namespace the file names (the original sample says "default").
apply_astro() {
    local out
    out=$(sed -e '/^metadata:/,/^[^ ]/{/^  namespace:/d}' "$1" \
          | k apply -n "$2" -f - 2>&1) || { echo "$out"; return 1; }
}

# get NS NAME JSONPATH: one field of an Astro, "" when unset or absent.
get() {
    k get astro -n "$1" "$2" -o "jsonpath=$3" 2>/dev/null
}

conditions() {
    get "$1" "$2" '{range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}'
}

# wait_phase NS NAME WANT DEADLINE: waits until the Astro's phase is WANT
# (returns 0) or another final phase, or DEADLINE (epoch seconds) passes
# (returns 1 with the reason in REASON).
wait_phase() {
    local ns=$1 name=$2 want=$3 deadline=$4 phase=
    while :; do
        phase=$(get "$ns" "$name" '{.status.phase}')
        [ "$phase" = "$want" ] && return 0
        case $phase in
        Success|Wrong|DeployFailed|EngineFailed)
            REASON="phase $phase, want $want; conditions: $(conditions "$ns" "$name" | tr '\n' ';')"
            return 1 ;;
        esac
        if [ "$(date +%s)" -ge "$deadline" ]; then
            REASON="phase '${phase}' after ${TIMEOUT}s, want $want"
            [ -z "$phase" ] && REASON="$REASON (no status at all: is the controller running?)"
            return 1
        fi
        sleep 1
    done
}

# children NS NAME: the names of everything left that carries the Astro's
# label, one "kind/name" per line.
# A failed listing prints its error instead, so it never reads as "none".
children() {
    local out
    if ! out=$(k get deployments,services,configmaps,pods -n "$1" \
               -l "$LABEL=$2" -o name 2>&1); then
        echo "error: $out"
        return
    fi
    grep -v '^No resources found' <<<"$out"
}

astro_events() {
    k get events -n "$1" -o name \
        --field-selector "involvedObject.kind=Astro,involvedObject.name=$2" \
        2>/dev/null
}

# check_diamond NS DEADLINE: the original sample reaches Success with
# four nodes, a healthy result, a condition and Events.
check_diamond() {
    local ns=$1 deadline=$2 name=astro-demo v
    REASON=$(apply_astro "$DIAMOND" "$ns") || return 1
    CREATED_ASTROS+=("$ns/$name")
    wait_phase "$ns" "$name" Success "$deadline" || return 1

    v=$(get "$ns" "$name" '{.status.nodeNumber}/{.status.readyNodeNumber}')
    [ "$v" = "4/4" ] || { REASON="nodeNumber/readyNodeNumber $v, want 4/4"
                          return 1; }
    v=$(get "$ns" "$name" '{.status.result.status.health}')
    [ "$v" = "true" ] || { REASON="status.result.status.health '$v'"
                           return 1; }
    v=$(get "$ns" "$name" '{.status.result.data}')
    [ -n "$v" ] || { REASON="status.result.data is empty"; return 1; }
    v=$(conditions "$ns" "$name")
    [ -n "$v" ] || { REASON="no condition in status"; return 1; }
    v=$(children "$ns" "$name" | grep -c '^deployment')
    [ "$v" = 4 ] || { REASON="$v Deployments labelled $LABEL=$name, want 4"
                      return 1; }
    v=$(children "$ns" "$name" | grep -c '^service/')
    [ "$v" = 4 ] || { REASON="$v Services labelled $LABEL=$name, want 4"
                      return 1; }

    # The controller may record its Events just after the status write.
    while [ -z "$(astro_events "$ns" "$name")" ]; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            REASON="no Event about Astro $name"
            return 1
        fi
        sleep 1
    done
    REASON="Success, 4 nodes, healthy result, conditions and Events"
}

# check_failing NS DEADLINE: a node answering 500 ends the run Wrong and
# the result names it as failed, and only it.
check_failing() {
    local ns=$1 deadline=$2 name=astro-failing v
    REASON=$(apply_astro "$ASTROS/failing.yaml" "$ns") || return 1
    CREATED_ASTROS+=("$ns/$name")
    wait_phase "$ns" "$name" Wrong "$deadline" || return 1

    v=$(get "$ns" "$name" '{.status.result.status.health}')
    [ "$v" = "false" ] || { REASON="status.result.status.health '$v'"
                            return 1; }
    v=$(get "$ns" "$name" '{.status.result.failed[*]}')
    [ "$v" = "c" ] || { REASON="status.result.failed '$v', want c"
                        return 1; }
    v=$(conditions "$ns" "$name")
    [ -n "$v" ] || { REASON="no condition says why"; return 1; }
    REASON="Wrong, failed: c"
}

# check_unpullable NS DEADLINE: a star whose image cannot be pulled ends
# the Astro DeployFailed with a condition naming the star.
check_unpullable() {
    local ns=$1 deadline=$2 name=astro-unpullable v
    REASON=$(apply_astro "$ASTROS/unpullable.yaml" "$ns") || return 1
    CREATED_ASTROS+=("$ns/$name")
    wait_phase "$ns" "$name" DeployFailed "$deadline" || return 1

    v=$(get "$ns" "$name" '{range .status.conditions[*]}{.message}{"\n"}{end}')
    grep -qw ghost <<<"$v" || { REASON="no condition message names star ghost: $v"
                               return 1; }
    REASON="DeployFailed, condition names ghost"
}

# check_deleted NS DEADLINE: an Astro deleted while its stars are being
# deployed goes away with all its children.
check_deleted() {
    local ns=$1 deadline=$2 name=astro-deleted v phase
    REASON=$(apply_astro "$ASTROS/deleted.yaml" "$ns") || return 1
    CREATED_ASTROS+=("$ns/$name")

    # Delete once the controller has acted (a child or a phase), so the
    # finalizer and the children exist; not later than Waited.
    while :; do
        phase=$(get "$ns" "$name" '{.status.phase}')
        if [ -n "$phase" ] || [ -n "$(children "$ns" "$name")" ]; then
            break
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            REASON="the controller never acted on $name (no phase, no child)"
            return 1
        fi
        sleep 0.5
    done
    v=$(k delete astro -n "$ns" "$name" --wait=false 2>&1) \
        || { REASON="kubectl delete: $v"; return 1; }

    while k get astro -n "$ns" "$name" -o name >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            REASON="Astro still there after ${TIMEOUT}s; finalizers: $(get "$ns" "$name" '{.metadata.finalizers}')"
            return 1
        fi
        sleep 1
    done
    while :; do
        v=$(children "$ns" "$name")
        [ -z "$v" ] && break
        if [ "$(date +%s)" -ge "$deadline" ]; then
            REASON="left behind: $(echo $v)"
            return 1
        fi
        sleep 1
    done
    REASON="deleted in phase '${phase}', no children left"
}

# Set-up errors stop the run before any check.
out=$(k apply -f "$CRD" 2>&1) || { log "installing the CRD failed: $out"
                                   exit 2; }
out=$(k wait --for condition=established --timeout=60s \
      crd/astros.astertower.kasterism.io 2>&1) \
    || { log "the CRD did not become established: $out"; exit 2; }
if [ -n "$FIXED_NS" ] && ! k get namespace "$FIXED_NS" >/dev/null 2>&1; then
    out=$(printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n' \
              "$FIXED_NS" | k create -f - 2>&1) \
        || { log "creating namespace $FIXED_NS failed: $out"; exit 2; }
    CREATED_NS+=("$FIXED_NS")
fi

passed=0
failed=0
for c in $CHECKS; do
    REASON=
    start=$(date +%s)
    if ns=$(new_ns "$c"); then
        [ -z "$FIXED_NS" ] && CREATED_NS+=("$ns")
        if "check_$c" "$ns" $((start + TIMEOUT)); then
            echo "PASS $c ($(( $(date +%s) - start ))s): $REASON"
            passed=$((passed + 1))
            continue
        fi
    else
        REASON="could not create a namespace"
    fi
    echo "FAIL $c ($(( $(date +%s) - start ))s, namespace ${ns:-?}): $REASON"
    failed=$((failed + 1))
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
