# Checklist #20-#21: `kubectl get -w` on the collection and on one object.
. "$(dirname "$0")/lib.sh"
start_sim
setup_astro_crd
kubectl apply -f "$DATA/astro-a1.yaml" >/dev/null

timeout 8 kubectl get astros -w >"$WORK/w-all" 2>&1 &
all=$!
timeout 8 kubectl get astro a1 -w >"$WORK/w-one" 2>&1 &
one=$!
# Wait until both watches are open before changing anything.
for _ in $(seq 50); do
    [ "$(requests 'astros\?.*watch=true')" -ge 2 ] && break
    sleep 0.1
done
kubectl patch astro a1 --subresource=status --type=merge \
    -p '{"status":{"phase":"One"}}' >/dev/null
sleep 0.5
kubectl patch astro a1 --subresource=status --type=merge \
    -p '{"status":{"phase":"Two"}}' >/dev/null
sleep 1
wait $all && rc_all=0 || rc_all=$?
wait $one && rc_one=0 || rc_one=$?

item 20 "get astros -w"
OUT=$(cat "$WORK/w-all"); ERR=; RC=$rc_all
# 124: still streaming when timeout killed it.
expect_rc 124
expect_out '^NAME +PHASE +NODENUMBER +READYNODENUMBER +AGE$'
expect_out '^a1 +[0-9]+s$'
expect_out '^a1 +One +[0-9]+s$'
expect_out '^a1 +Two +[0-9]+s$'
[ "$(grep -c '^NAME' <<<"$OUT")" -eq 1 ] || fail "a second header"

item 21 "get astro a1 -w sees both updates"
OUT=$(cat "$WORK/w-one"); RC=$rc_one
expect_rc 124
expect_out '^a1 +One +[0-9]+s$'
expect_out '^a1 +Two +[0-9]+s$'
grep -q 'fieldSelector=metadata.name=a1.*resourceVersion=0.*watch=true' \
    "$WORK/sim.log" || fail "no RV=0 single-object watch seen"

finish
