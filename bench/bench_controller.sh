#!/usr/bin/env bash
# The controller benchmark (not a test): time from creating Astros to
# Success for the paper's shapes (4, 6 and 10 nodes at 1, 3 and 5 Astros
# at once), with no pod start delay and with a modelled one; reconcile
# throughput with many Astros; the controller's RSS. Writes the
# "## Controller" section of docs/benchmarks.md (other sections are kept).
#
# bench/bench_controller.sh [--reps N] [--delay-ms MS] [--many N]
#                           [--out FILE] [--no-build] [--quick]
#
# BENCH_SIZES and BENCH_CONCS narrow the grid (e.g. "10" and "5").
# Everything runs on loopback against sim-apiserver (plain HTTP) and its
# simulated cluster, with build/bin/astertower at its default settings.
# Phase times come from one watch on the Astros, each event stamped with
# the wall clock when it arrives (status timestamps have whole seconds).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
reps=3
delay_ms=1000
many=1000
out=$root/docs/benchmarks.md
build=1
sizes=${BENCH_SIZES:-4 6 10}
concs=${BENCH_CONCS:-1 3 5}

while [ $# -gt 0 ]; do
    case "$1" in
    --reps) reps=$2; shift ;;
    --delay-ms) delay_ms=$2; shift ;;
    --many) many=$2; shift ;;
    --out) out=$2; shift ;;
    --no-build) build=0 ;;
    --quick) reps=1; many=100 ;;
    *) echo "usage: $0 [--reps N] [--delay-ms MS] [--many N]" \
            "[--out FILE] [--no-build] [--quick]" >&2; exit 2 ;;
    esac
    shift
done

if [ "$build" = 1 ]; then
    cmake -S "$root" -B "$root/build" >/dev/null
    cmake --build "$root/build" -j2 --target astertower sim-apiserver \
        astermule test-service >/dev/null
fi

tmp=$(mktemp -d)
sim_pid=
ctl_pid=
watch_pid=
export KUBECONFIG=$tmp/kubeconfig KUBECACHEDIR=$tmp/kubecache

cleanup() {
    local rc=$?
    [ -n "$ctl_pid" ] && kill "$ctl_pid" 2>/dev/null && wait "$ctl_pid" || true
    [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" || true
    [ -n "$watch_pid" ] && wait "$watch_pid" 2>/dev/null || true
    if [ "$rc" -ne 0 ]; then
        echo "--- controller log (tail)" >&2
        tail -n 30 "$tmp/ctl.err" >&2 2>/dev/null || true
        echo "--- sim log (tail)" >&2
        tail -n 10 "$tmp/sim.err" >&2 2>/dev/null || true
        echo "--- logs and events kept in $tmp" >&2
        return
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

die() {
    echo "bench_controller: $*" >&2
    exit 1
}

now() {
    echo "$EPOCHREALTIME"
}

# Copies of the binaries, so a rebuild during the run changes nothing.
mkdir -p "$tmp/bin" "$tmp/body"
for b in sim-apiserver astertower astermule test-service; do
    cp "$root/build/bin/$b" "$tmp/bin/" || die "build/bin/$b missing"
done

started=$(date -u '+%Y-%m-%d %H:%M UTC')
t_begin=$(now)
load0=$(cut -d' ' -f1 /proc/loadavg)
clk=$(getconf CLK_TCK)

# ---- the apiserver, the CRD, the Astro watch, the controller ----

"$tmp/bin/sim-apiserver" --listen 127.0.0.1:0 --kubeconfig "$KUBECONFIG" \
    --crash-backoff-ms 200 >"$tmp/sim.out" 2>"$tmp/sim.err" &
sim_pid=$!
for _ in $(seq 1 100); do
    grep -q 'ready on' "$tmp/sim.out" 2>/dev/null && break
    sleep 0.05
done
srv=$(sed -n 's/.*ready on \([^ ]*\) .*/\1/p' "$tmp/sim.out")
[ -n "$srv" ] || die "sim-apiserver did not start"
api=$srv/apis/astertower.kasterism.io/v1alpha1/namespaces/default/astros
managed=labelSelector=app.kubernetes.io%2Fmanaged-by%3Dastertower

kubectl apply -f "$root/deploy/crds/astros.yaml" >/dev/null
kubectl wait --for condition=established --timeout=10s \
    crd/astros.astertower.kasterism.io >/dev/null

# One line per Astro event: arrival time, type, name, phase. The loop
# reopens the watch should the server end it; a replayed ADDED changes
# nothing because only the first time of each (name, phase) counts.
(
    while kill -0 "$sim_pid" 2>/dev/null; do
        curl -sN "$api?watch=1" 2>/dev/null |
            jq --unbuffered -r '[.type, .object.metadata.name,
                                (.object.status.phase // "-")] | @tsv' |
            while IFS=$'\t' read -r ty name phase; do
                printf '%s %s %s %s\n' "$EPOCHREALTIME" "$ty" "$name" "$phase"
            done
    done
) >"$tmp/events" 2>/dev/null &
watch_pid=$!

"$tmp/bin/astertower" --kubeconfig "$KUBECONFIG" \
    --metrics-address 127.0.0.1:0 2>"$tmp/ctl.err" &
ctl_pid=$!
mport=
for _ in $(seq 1 400); do
    mport=$(sed -n 's/.*metrics on port \([0-9]*\);.*/\1/p' "$tmp/ctl.err")
    [ -n "$mport" ] &&
        curl -sf "http://127.0.0.1:$mport/readyz" >/dev/null && break
    kill -0 "$ctl_pid" 2>/dev/null || die "astertower exited"
    sleep 0.05
done
[ -n "$mport" ] || die "astertower did not become ready"

# ---- helpers ----

faults() {
    curl -sf -X PUT -H 'Content-Type: application/json' -d "$1" \
        "$srv/_sim/faults" >/dev/null || die "cannot set faults $1"
}

metric() {
    curl -sf "http://127.0.0.1:$mport/metrics" |
        awk -v m="$1" '$1 == m { print $2 }'
}

proc_kib() {
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

proc_cpu() {
    awk -v t="$clk" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"
}

count() {
    curl -sf "$1" | jq '.items | length'
}

# shape N: the stars of an N-node workflow, one "name:dep,dep" a line.
shape() {
    case "$1" in
    4) printf '%s\n' a: b:a c:a d:b,c ;;
    6) printf '%s\n' n1: n2:n1 n3:n1 n4:n1 n5:n2,n3 n6:n4,n5 ;;
    10) printf '%s\n' s: p1:s p2:s p3:s p4:s q1:p1,p2 q2:p2,p3 q3:p3,p4 \
            j:q1,q2,q3 t:j ;;
    esac
}

# body NAME SIZE [IMAGE]: the Astro as JSON; stars on ports 8000..,
# target /test, GET for the entry and POST for the others.
body() {
    local name=$1 size=$2 image=${3:-} port=8000 sep= line s deps d dj
    printf '{"apiVersion":"astertower.kasterism.io/v1alpha1","kind":"Astro",'
    printf '"metadata":{"name":"%s","namespace":"default"},' "$name"
    printf '"spec":{"stars":['
    while IFS= read -r line; do
        s=${line%%:*}
        deps=${line#*:}
        dj=
        for d in ${deps//,/ }; do
            dj="$dj${dj:+,}\"$d\""
        done
        printf '%s{"name":"%s","type":"docker","action":"%s",' \
            "$sep" "$s" "$([ -z "$deps" ] && echo GET || echo POST)"
        printf '"image":"%s","port":%d,"target":"/test"' \
            "${image:-kasterism/test_$s}" "$port"
        [ -n "$dj" ] && printf ',"dependencies":[%s]' "$dj"
        printf '}'
        sep=,
        port=$((port + 1))
    done < <(shape "$size")
    printf ']}}\n'
}

create() {
    local code
    code=$(curl -s -o "$tmp/create.out" -w '%{http_code}' -X POST \
        -H 'Content-Type: application/json' --data-binary "@$2" "$api")
    [ "$code" = 201 ] || die "creating $1 answered $code: $(cat "$tmp/create.out")"
}

# finals PREFIX: how many Astros named PREFIX* reached a final phase.
finals() {
    awk -v p="$1" 'index($3, p) == 1 && $4 ~ /^(Success|Wrong|DeployFailed|EngineFailed)$/ {
        if (!($3 in seen)) { seen[$3] = 1; n++ } } END { print n + 0 }' \
        "$tmp/events"
}

# phases PREFIX T0: per Astro, seconds from T0 to the first event in each
# phase, and the final phase: "name init waited ready final phase".
phases() {
    awk -v p="$1" -v t0="$2" '
    index($3, p) == 1 {
        n = $3
        if (!(n in seen)) { seen[n] = 1; order[++k] = n }
        key = n SUBSEP $4
        if (!(key in at)) at[key] = $1 - t0
        if ($4 ~ /^(Success|Wrong|DeployFailed|EngineFailed)$/ && !(n in fin)) {
            fin[n] = $4; tf[n] = $1 - t0
        }
    }
    function g(n, ph) { return ((n SUBSEP ph) in at) ? at[n SUBSEP ph] : "-" }
    END {
        for (i = 1; i <= k; i++) {
            n = order[i]
            printf "%s %s %s %s %s %s\n", n, g(n, "Initialized"),
                g(n, "Waited"), g(n, "Ready"),
                (n in fin) ? tf[n] : "-", (n in fin) ? fin[n] : "none"
        }
    }' "$tmp/events"
}

# wait_gone: no Astros and no children left (processes are stopped with
# their pods).
wait_gone() {
    local k
    for k in $(seq 1 "${1:-600}"); do
        [ "$(count "$api")" = 0 ] &&
            [ "$(count "$srv/api/v1/pods?$managed")" = 0 ] &&
            [ "$(count "$srv/apis/apps/v1/deployments?$managed")" = 0 ] &&
            [ "$(count "$srv/api/v1/services?$managed")" = 0 ] &&
            [ "$(count "$srv/api/v1/configmaps?$managed")" = 0 ] && return 0
        sleep 0.1
    done
    return 1
}

# reap_orphans PREFIX: the simulated Deployment controller can create a
# Pod for a Deployment deleted at that moment; the sim's garbage collector
# only looks at it on the next removal. Such Pods are deleted here and
# counted, so the next round starts clean.
reap_orphans() {
    local p
    for p in $(curl -sf "$srv/api/v1/namespaces/default/pods?$managed" |
               jq -r '.items[].metadata.name'); do
        echo "$1 $p" >>"$tmp/orphans"
        echo "  deleting Pod $p: its Deployment is gone" >&2
        curl -sf -X DELETE "$srv/api/v1/namespaces/default/pods/$p" \
            >/dev/null || true
    done
    wait_gone || die "children of $1* not gone after 60 s"
}

# stats: median and max of numbers on stdin, 2 decimals ("- -" if none).
stats() {
    sort -g | awk '{ v[++n] = $1 } END {
        if (!n) { print "- -"; exit }
        m = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
        printf "%.2f %.2f\n", m, v[n] }'
}

rss_idle=$(proc_kib "$ctl_pid" VmRSS)
hwm_idle=$(proc_kib "$ctl_pid" VmHWM)

# ---- latency cells ----

# cell DELAY SIZE CONC: REPS rounds of CONC Astros created at once; adds
# one row per Astro to $tmp/rows: "delay size conc rep name init waited
# ready final phase cleanup".
cell() {
    local d=$1 size=$2 conc=$3 r i t0 t1 k pre pid
    local -a pids
    for r in $(seq 1 "$reps"); do
        pre=d$d-n$size-c$conc-r$r-
        for i in $(seq 1 "$conc"); do
            body "$pre$i" "$size" >"$tmp/body/$pre$i.json"
        done
        pids=()
        t0=$(now)
        for i in $(seq 1 "$conc"); do
            create "$pre$i" "$tmp/body/$pre$i.json" &
            pids+=($!)
        done
        for pid in "${pids[@]}"; do
            wait "$pid" || die "a create of round $pre failed"
        done
        for k in $(seq 1 2400); do
            [ "$(finals "$pre")" -ge "$conc" ] && break
            sleep 0.05
        done
        t1=$(now)
        curl -sf -X DELETE "$api" >/dev/null || die "cannot delete Astros"
        wait_gone 100 || reap_orphans "$pre"
        phases "$pre" "$t0" | while read -r line; do
            echo "$d $size $conc $r $line $(awk -v a="$t1" -v b="$(now)" \
                'BEGIN { printf "%.2f", b - a }')"
        done >>"$tmp/rows"
        printf '  delay %s ms, %2s nodes, %s at once, round %s: %s\n' \
            "$d" "$size" "$conc" "$r" \
            "$(phases "$pre" "$t0" | awk '{ printf "%s=%.2fs ", $6, $5 }')" >&2
    done
}

: >"$tmp/rows"
: >"$tmp/orphans"
t_lat=$(now)
for d in 0 "$delay_ms"; do
    faults "{\"podStartDelayMs\": $d}"
    for size in $sizes; do
        for conc in $concs; do
            cell "$d" "$size" "$conc"
        done
    done
done
faults '{}'
t_lat_end=$(now)
rss_after_cells=$(proc_kib "$ctl_pid" VmRSS)

# ---- many Astros: reconcile throughput and RSS ----

# One star each whose image is not in the simulated image table: its pod
# waits in ErrImagePull, no process starts, and the controller takes the
# Astro through finalizer, children, Initialized and DeployFailed.
echo "  $many Astros with an unpullable image ..." >&2
: >"$tmp/many.curl"
for i in $(seq -w 1 "$many"); do
    body "m-$i" 1 bench/no-such-image:1 >"$tmp/body/m-$i.json"
    printf 'next\nurl = "%s"\nrequest = "POST"\n' "$api" >>"$tmp/many.curl"
    printf 'header = "Content-Type: application/json"\n' >>"$tmp/many.curl"
    printf 'data-binary = "@%s"\noutput = "/dev/null"\n' \
        "$tmp/body/m-$i.json" >>"$tmp/many.curl"
    printf 'write-out = "%%{http_code}\\n"\n' >>"$tmp/many.curl"
done
sed -i '1d' "$tmp/many.curl"

rec0=$(metric astertower_reconciles_total)
err0=$(metric astertower_reconcile_errors_total)
cpu0=$(proc_cpu "$ctl_pid")
scpu0=$(proc_cpu "$sim_pid")
t0=$(now)
created=$(curl -s -K "$tmp/many.curl" | grep -c '^201$' || true)
t_created=$(now)
[ "$created" = "$many" ] || die "only $created of $many Astros created"
for k in $(seq 1 3000); do
    [ "$(finals m-)" -ge "$many" ] && break
    sleep 0.2
done
t1=$(now)
n_final=$(finals m-)
rec1=$(metric astertower_reconciles_total)
err1=$(metric astertower_reconcile_errors_total)
cpu1=$(proc_cpu "$ctl_pid")
scpu1=$(proc_cpu "$sim_pid")
rss_many=$(proc_kib "$ctl_pid" VmRSS)
many_phases=$(phases m- "$t0" | awk '{ print $6 }' | sort | uniq -c |
    awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }')
many_final_stats=$(phases m- "$t0" | awk '$5 != "-" { print $5 }' | stats)
# The last final phase as the watch saw it, not the 200 ms poll above.
span=$(phases m- "$t0" | awk '$5 != "-" && $5 > m { m = $5 } END { print m + 0 }')

# Settled: every Astro final, their pods still retrying the pull.
sleep 10
rec2=$(metric astertower_reconciles_total)
t2=$(now)
rss_settled=$(proc_kib "$ctl_pid" VmRSS)
hwm_many=$(proc_kib "$ctl_pid" VmHWM)

# Deleting them all: the controller deletes children, drops finalizers.
t3=$(now)
curl -sf -X DELETE "$api" >/dev/null || die "cannot delete the Astros"
gone=yes
wait_gone 1800 || gone=no
t4=$(now)
rss_end=$(proc_kib "$ctl_pid" VmRSS)
hwm_end=$(proc_kib "$ctl_pid" VmHWM)
t_end=$(now)

# ---- the section ----

f2() { awk -v a="$1" 'BEGIN { printf "%.2f", a }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
sub2() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }
div2() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b > 0) ? a / b : 0 }'; }

# col D SIZE CONC FIELD: median and max of a rows column for one cell.
col() {
    awk -v d="$1" -v s="$2" -v c="$3" -v f="$4" \
        '$1 == d && $2 == s && $3 == c && $f != "-" { print $f }' \
        "$tmp/rows" | stats
}

latency_table() {
    local d=$1 size conc m x n bad
    echo "| nodes | Astros at once | samples | Initialized | Waited | Ready | Success median | Success max | not Success |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for size in $sizes; do
        for conc in $concs; do
            n=$(awk -v d="$d" -v s="$size" -v c="$conc" \
                '$1 == d && $2 == s && $3 == c' "$tmp/rows" | wc -l)
            bad=$(awk -v d="$d" -v s="$size" -v c="$conc" \
                '$1 == d && $2 == s && $3 == c && $10 != "Success"' \
                "$tmp/rows" | wc -l)
            read -r m x < <(awk -v d="$d" -v s="$size" -v c="$conc" \
                '$1 == d && $2 == s && $3 == c && $10 == "Success" { print $9 }' \
                "$tmp/rows" | stats)
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
                "$size" "$conc" "$n" \
                "$(col "$d" "$size" "$conc" 6 | cut -d' ' -f1)" \
                "$(col "$d" "$size" "$conc" 7 | cut -d' ' -f1)" \
                "$(col "$d" "$size" "$conc" 8 | cut -d' ' -f1)" \
                "$m" "$x" "$bad"
        done
    done
}

success_median() {
    awk -v d="$1" -v s="$2" -v c="$3" \
        '$1 == d && $2 == s && $3 == c && $10 == "Success" { print $9 }' \
        "$tmp/rows" | stats | cut -d' ' -f1
}

not_success=$(awk '$10 != "Success"' "$tmp/rows" | wc -l)
orphans=$(wc -l <"$tmp/orphans")
rounds=$(awk '!s[$1 " " $2 " " $3 " " $4]++' "$tmp/rows" | wc -l)
cleanup_stats=$(awk '!s[$1 " " $2 " " $3 " " $4]++ { print $11 }' \
    "$tmp/rows" | stats)
lo0=$(success_median 0 4 1)
hi0=$(success_median 0 10 5)
lo1=$(success_median "$delay_ms" 4 1)
hi1=$(success_median "$delay_ms" 10 5)

# stage D FROM TO: median seconds between two columns of the rows of
# delay D (5 is the create, at 0).
stage() {
    awk -v d="$1" -v a="$2" -v b="$3" '$1 == d && $10 == "Success" {
        print (a == 5 ? $b : $b - $a) }' "$tmp/rows" | stats | cut -d' ' -f1
}

stage_table() {
    local d
    echo "| pod start delay | create -> Initialized | -> Waited | -> Ready | -> Success |"
    echo "|---:|---:|---:|---:|---:|"
    for d in 0 "$delay_ms"; do
        printf '| %s ms | %s | %s | %s | %s |\n' "$d" "$(stage "$d" 5 6)" \
            "$(stage "$d" 6 7)" "$(stage "$d" 7 8)" "$(stage "$d" 8 9)"
    done
}
run_step=$(stage 0 8 9)
churn=$(div2 $((rec2 - rec1)) "$(sub2 "$t2" "$t1")")
if awk -v c="$churn" 'BEGIN { exit !(c < 1) }'; then
    churn_text="Once all were final the controller ran $churn reconciles per
  second over the next 10 s while their pods kept retrying the pull: a
  final Astro is not reconciled again on its children's status changes."
else
    churn_text="Once all were final the controller still ran $churn reconciles
  per second over the next 10 s: the pods' retried pulls
  (ErrImagePull <-> ImagePullBackOff) re-queue their final Astros."
fi

if [ "$orphans" -eq 0 ]; then
    orphan_text="No star Pod outlived its deleted Deployment in $rounds
  rounds: the simulated cluster collects a Pod created after its owner's
  deletion at once, as a real garbage collector does."
else
    orphan_text="Simulator race: in $orphans case(s) over $rounds rounds a star
  Pod outlived its deleted Deployment. The script waits about 15 s, then
  deletes such Pods itself (its log names them); those rounds give the
  long delete-to-gone max. The Success times are not affected."
fi

section() {
    cat <<EOF
## Controller

Measured $started; the whole run took $(f2 "$(sub2 "$t_end" "$t_begin")") s
(latency cells $(f2 "$(sub2 "$t_lat_end" "$t_lat")") s).

- Machine: $(nproc) CPUs online ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(uname -sr); 1-minute load average $load0 when the run began.
- The fake apiserver (\`sim-apiserver\`, plain HTTP on loopback), its
  simulated cluster (every star and engine pod a local process), the
  controller (\`astertower\`, default flags: 2 workers), the engines and
  the measuring script all share those CPUs, and so do whatever
  colleagues run at the time. Figures compare settings with each other;
  they are not a real cluster's.
- Time from create to a phase: the script takes the wall clock, POSTs
  the Astros at once (one curl each, in parallel), and stamps every
  event of one watch on the Astros as it arrives (status times have
  whole seconds only). Each cell runs $reps rounds; Astros are deleted
  between rounds and the next round starts once every Astro, Deployment,
  Service, ConfigMap and Pod is gone (median $(echo "$cleanup_stats" | cut -d' ' -f1) s, max
  $(echo "$cleanup_stats" | cut -d' ' -f2) s from delete to gone).
- Shapes: 4 nodes is \`tests/data/astro-diamond.yaml\`; 6 and 10 are
  \`tests/data/dag-six.yaml\` and \`dag-ten.yaml\` as Astros (images
  \`kasterism/test_<star>\`, ports 8000.., target \`/test\`, GET for the
  entry node, POST for the others). Each star is one Deployment, one
  Service and one \`test-service\` process; the engine is one more pod.
- Modelled pod start: \`podStartDelayMs\` $delay_ms, i.e. every pod
  (stars and engine) stays \`ContainerCreating\` for $delay_ms ms before
  its process starts: about what a kubelet needs to create the sandbox
  and start a container whose image is already on the node. Image pulls
  would add seconds more, the same for every cell. With no delay a pod
  starts at the simulated kubelet's next 50 ms tick.

Rerun with \`bench/bench_controller.sh\` (builds astertower, sim-apiserver,
astermule and test-service first; \`--no-build\`, \`--reps N\`,
\`--delay-ms MS\`, \`--many N\`, \`--quick\` for one round and 100 Astros).

### Create to Success, no pod start delay

Seconds from create to the first watch event showing each phase;
medians over every Astro of every round, and the max for Success.

$(latency_table 0)

### Create to Success, pod start delay $delay_ms ms

$(latency_table "$delay_ms")

### Where the time goes

Medians over every Astro of all cells, seconds between the first
events showing each phase.

$(stage_table)

### Reconcile throughput, $many Astros

Each Astro has one star whose image is not in the simulated image table
(\`bench/no-such-image:1\`): its pod waits in \`ErrImagePull\`, no
process starts, and the controller takes the Astro through the
finalizer, a Deployment and a Service, \`Initialized\`, then
\`DeployFailed\` when the pod's wait reason shows. This keeps the 2 CPUs
on the controller and the apiserver: $many Astros running real stars
would mean $((many * 2)) processes (stars and engines), each probed by
the simulated kubelet every 100 ms, and would measure process start-up.
The $many creates go through one keep-alive curl, one after another.

| measure | value |
|---|---:|
| creates sent ($many POSTs) | $(f2 "$(sub2 "$t_created" "$t0")") s |
| create of the first to final phase of the last | $(f2 "$span") s |
| final phases reached | $many_phases (of $many) |
| first create to each Astro's final phase, median / max | $(echo "$many_final_stats" | sed 's| | s / |') s |
| Astros reaching a final phase per second | $(div2 "$n_final" "$span") |
| reconciles in that time (\`astertower_reconciles_total\`) | $((rec1 - rec0)) |
| reconciles per second | $(div2 $((rec1 - rec0)) "$span") |
| reconciles per Astro | $(div2 $((rec1 - rec0)) "$n_final") |
| passes retried (\`reconcile_errors_total\`) | $((err1 - err0)) |
| controller CPU in that time | $(f2 "$(sub2 "$cpu1" "$cpu0")") s |
| apiserver and cluster CPU in that time | $(f2 "$(sub2 "$scpu1" "$scpu0")") s |
| reconciles per second over the next 10 s, all final, pods retrying the pull | $(div2 $((rec2 - rec1)) "$(sub2 "$t2" "$t1")") |
| deleting all $many (one DELETE of the collection) until every child is gone | $(f2 "$(sub2 "$t4" "$t3")") s$( [ "$gone" = yes ] || echo ' (not all gone: stopped waiting)') |

### Controller memory

| state | VmRSS | VmHWM |
|---|---:|---:|
| idle after start (caches synced, no Astros) | $(mib "$rss_idle") | $(mib "$hwm_idle") |
| after the latency cells (no Astros left) | $(mib "$rss_after_cells") | |
| $many Astros, all final | $(mib "$rss_many") | |
| $many Astros, 10 s later | $(mib "$rss_settled") | $(mib "$hwm_many") |
| after deleting them | $(mib "$rss_end") | $(mib "$hwm_end") |

### Reading

- One diamond alone reaches Success $lo0 s after its create with no pod
  start delay; five 10-node Astros at once take $hi0 s (median). With a
  $delay_ms ms pod start these are $lo1 s and $hi1 s: the delay is paid
  twice in sequence (the stars' pods, then the engine pod, which the
  controller creates only once every star is available), so about
  $((2 * delay_ms)) ms of every figure in the second table is the
  modelled start.
- With no delay, the step that grows with load is Initialized ->
  Waited: it holds the start of every star process, and 5 x 10 nodes
  means 55 processes started (and probed every 100 ms) on 2 CPUs. The
  controller's own steps (create to Initialized, Waited to Ready) stay
  small.
- Ready -> Success takes $run_step s (median, no delay); the engine
  runs these workflows in about a millisecond (see Engine). The
  controller triggers the run asynchronously and asks for its result
  10 ms later, then at doubling intervals up to 300 ms
  (\`CTL_POLL_FIRST_MS\`, \`CTL_POLL_MS\`), so a run that ends within
  milliseconds is read at one of the first polls.
- $many Astros: $(div2 "$n_final" "$span") reached a final phase per second,
  at $(div2 $((rec1 - rec0)) "$span") reconciles per second ($(div2 $((rec1 - rec0)) "$n_final") per Astro). The creates alone
  took $(f2 "$(sub2 "$t_created" "$t0")") s, so the rate is bounded by how fast Astros arrive as
  much as by the controller, which used $(f2 "$(sub2 "$cpu1" "$cpu0")") s of CPU against
  $(f2 "$(sub2 "$scpu1" "$scpu0")") s for the apiserver and its cluster.
- $churn_text
- Memory: $(mib "$rss_idle") idle, $(mib "$rss_settled") holding $many Astros and their
  children in its caches, about $(awk -v a="$rss_settled" -v b="$rss_after_cells" -v n="$many" 'BEGIN { printf "%.1f", (a - b) / n }') KiB per Astro over the level after the
  latency cells.
- The paper's experiment has the same grid (4, 6 and 10 nodes; 1, 3 and
  5 workflows at once) on a real cluster, where image pulls and
  container starts dominate. Here the pods are local processes, so the
  first table shows the controller's and the simulation's own overhead
  and the second what a fixed per-pod start adds. No paper figures are
  copied into this file; compare shapes (how time grows with nodes and
  concurrency), not absolute seconds.
- $not_success of the latency runs ended in another phase than Success.
- $orphan_text
EOF
}

section >"$tmp/section.md"
if [ -f "$out" ] && grep -q '^## Controller$' "$out"; then
    awk -v sec="$tmp/section.md" '
        /^## Controller$/ { while ((getline l < sec) > 0) print l; skip = 1; next }
        skip && /^## / { skip = 0; print ""; }
        !skip { print }' "$out" >"$tmp/out.md"
else
    { cat "$out" 2>/dev/null && echo; cat "$tmp/section.md"; } >"$tmp/out.md"
fi
cp "$tmp/out.md" "$out"
echo "bench_controller: wrote the Controller section of $out" >&2
