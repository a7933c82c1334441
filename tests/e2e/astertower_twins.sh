#!/usr/bin/env bash
# Three Astros with the same star names, applied at once in one
# namespace, run side by side: each reaches Success with its own result,
# its own children (owned by it, none shared), a DAG that calls only its
# own Services, and one run that called each of its own stars once.
source "$(dirname "$0")/../controller/lib.sh"

twins="astro-t1 astro-t2 astro-t3"

ct_start_sim
ct_start_ctl --workers 3

for a in $twins; do
    ct_astro "$a"
    echo ---
done | kubectl apply -f - >/dev/null
for a in $twins; do
    ct_wait_phase "$a" Success 60
done
pass "three Astros with the same star names applied at once: Success"

for a in $twins; do
    ct_no_duplicates "$a"
    [ "$(ct_json "$a" 'd["status"]["result"]["status"]["health"]')" = True ] ||
        fail "$a: result not healthy"
    # The exit node d answers with its pod's name.
    ct_json "$a" 'd["status"]["result"]["data"]["name"]' |
        grep -q "^$a-d-" || fail "$a: the result came from another Astro"
    for s in b:8001 c:8002 d:8003; do
        [ "$(ct_hits "$a" "${s%:*}" "${s#*:}")" = 1 ] ||
            fail "$a: star ${s%:*} not called exactly once"
    done
done
[ "$(ct_count deployments app.kubernetes.io/managed-by=astertower)" = 12 ] ||
    fail "not 12 Deployments for three Astros"
[ "$(ct_count services app.kubernetes.io/managed-by=astertower)" = 12 ] ||
    fail "not 12 Services for three Astros"
[ "$(ct_count configmaps app.kubernetes.io/managed-by=astertower)" = 3 ] ||
    fail "not 3 ConfigMaps for three Astros"
pass "each has its own result and its own stars, each called once"

# Every managed child names exactly one of the Astros as its controller,
# the one its label and its name say; star pods belong to their
# Deployment's ReplicaSet and are matched by label and name only.
ct_get deployments,services,configmaps,pods \
    -l app.kubernetes.io/managed-by=astertower -o json >"$CT_TMP/children.json"
ct_get astros -o json >"$CT_TMP/astros.json"
python3 - "$CT_TMP/children.json" "$CT_TMP/astros.json" <<'EOF' ||
import json, sys
kids = json.load(open(sys.argv[1]))["items"]
uids = {a["metadata"]["uid"]: a["metadata"]["name"]
        for a in json.load(open(sys.argv[2]))["items"]}
bad = []
for k in kids:
    m = k["metadata"]
    owners = [o for o in m.get("ownerReferences", []) if o.get("controller")]
    label = m["labels"]["astertower.kasterism.io/astro"]
    star_pod = m["labels"].get("astertower.kasterism.io/role") == "star" \
        and k["kind"] == "Pod"
    owned = len(owners) == 1 and (star_pod or
                                  uids.get(owners[0]["uid"]) == label)
    if not owned or not m["name"].startswith(label + "-"):
        bad.append(k["kind"] + " " + m["name"])
if bad:
    sys.exit("children with the wrong owner: " + ", ".join(bad))
EOF
    fail "a child is not owned by the Astro it belongs to"
pass "every child is controlled by its own Astro"

# Each DAG calls the cluster IPs of its own Services, and no two Astros
# share one.
all=
for a in $twins; do
    ips=$(ct_json "$a" \
        '" ".join(s["clusterIP"] for s in d["status"]["serviceRef"])')
    dag=$(ct_get configmap "$a-dag" -o jsonpath='{.data.dag\.json}')
    for ip in $ips; do
        echo "$dag" | grep -q "\"url\":\"http://$ip:" ||
            fail "$a: the DAG does not call its Service at $ip"
    done
    n=$(echo "$dag" | grep -o '"url":"http://[0-9.]*' | sort -u | wc -l)
    [ "$n" = 4 ] ||
        fail "$a: the DAG does not call exactly 4 Services"
    all="$all $ips"
done
[ "$(echo "$all" | tr ' ' '\n' | grep -c .)" = 12 ] ||
    fail "not 12 cluster IPs: $all"
[ "$(echo "$all" | tr ' ' '\n' | grep . | sort -u | wc -l)" = 12 ] ||
    fail "two Astros share a Service IP: $all"
pass "each DAG calls only its own Services"

ct_stop_ctl TERM
[ "$CT_CTL_RC" = 0 ] || fail "astertower exited $CT_CTL_RC on SIGTERM"
pass "astertower stops cleanly on SIGTERM"
