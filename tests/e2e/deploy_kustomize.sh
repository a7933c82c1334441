# deploy/kustomization.yaml: `kubectl kustomize deploy/` renders offline;
# the output holds every object of the control plane with the namespace,
# RBAC, probes and security settings docs/deploy.md promises; and it
# applies to sim-apiserver, creating every object the server serves.
source "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/conformance/lib/sim.sh"

command -v kubectl >/dev/null || fail "kubectl is not installed"
R="$E2E_TMP/rendered.yaml"
export HOME="$E2E_TMP/home" KUBECACHEDIR="$E2E_TMP/kubecache"
mkdir -p "$HOME"

kubectl kustomize "$ROOT/deploy" >"$R" 2>"$E2E_TMP/kustomize.err" \
    || fail "kubectl kustomize deploy/: $(cat "$E2E_TMP/kustomize.err")"

# Every object, its namespace, and the settings that matter, checked on
# the parsed documents; prints one "KIND NAMESPACE NAME" line per object.
python3 - "$R" >"$E2E_TMP/objects" <<'PY' || fail "rendered output: see above"
import sys, yaml

docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
errors = []

def check(cond, what):
    if not cond:
        errors.append(what)

want = [("Namespace", "astertower-system"),
        ("CustomResourceDefinition", "astros.astertower.kasterism.io"),
        ("ServiceAccount", "astertower"),
        ("ClusterRole", "astertower"),
        ("ClusterRoleBinding", "astertower"),
        ("Role", "astertower-leader-election"),
        ("RoleBinding", "astertower-leader-election"),
        ("Deployment", "astertower"),
        ("Service", "astertower-metrics")]
for key in want:
    check(key in by, "missing %s/%s" % key)
check(len(docs) == len(want), "%d objects, want %d" % (len(docs), len(want)))
if errors:
    sys.exit("\n".join(errors))

cluster = {"Namespace", "CustomResourceDefinition", "ClusterRole",
           "ClusterRoleBinding"}
for d in docs:
    ns = d["metadata"].get("namespace")
    if d["kind"] in cluster:
        check(ns is None, "%s has a namespace" % d["kind"])
    else:
        check(ns == "astertower-system",
              "%s/%s in namespace %s" % (d["kind"], d["metadata"]["name"], ns))

# Least privilege: exactly these (group, resource) -> verbs, nothing else.
rw = {"get", "list", "watch", "create", "update", "patch", "delete"}
want_rules = {("astertower.kasterism.io", "astros"):
                  {"get", "list", "watch", "update", "patch"},
              ("astertower.kasterism.io", "astros/status"):
                  {"get", "update", "patch"},
              ("astertower.kasterism.io", "astros/finalizers"): {"update"},
              ("apps", "deployments"): rw, ("", "services"): rw,
              ("", "configmaps"): rw, ("", "pods"): rw,
              ("", "events"): {"create", "patch"}}
def grants(role):
    got = {}
    for r in role["rules"]:
        check(not r.get("resourceNames") and not r.get("nonResourceURLs"),
              "unexpected rule %r" % r)
        for g in r["apiGroups"]:
            for res in r["resources"]:
                got.setdefault((g, res), set()).update(r["verbs"])
    return got
got = grants(by[("ClusterRole", "astertower")])
check(got == want_rules, "ClusterRole grants %r" % got)
lease = grants(by[("Role", "astertower-leader-election")])
check(lease == {("coordination.k8s.io", "leases"): {"get", "create", "update"}},
      "leader election Role grants %r" % lease)
for kind in ("ClusterRoleBinding", "RoleBinding"):
    b = [d for d in docs if d["kind"] == kind][0]
    check(b["subjects"] == [{"kind": "ServiceAccount", "name": "astertower",
                             "namespace": "astertower-system"}],
          "%s subjects %r" % (kind, b["subjects"]))

dep = by[("Deployment", "astertower")]
pod = dep["spec"]["template"]["spec"]
c = pod["containers"][0]
check(pod.get("serviceAccountName") == "astertower", "serviceAccountName")
check(c["image"] == "astertower/astertower:latest", "image %s" % c["image"])
check(c["args"] == ["--metrics-address", "0.0.0.0:8081", "--leader-elect"],
      "args %r" % c["args"])
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
check(ports.get("metrics") == 8081, "ports %r" % ports)
for probe, path in (("livenessProbe", "/healthz"),
                    ("readinessProbe", "/readyz")):
    h = c.get(probe, {}).get("httpGet", {})
    check(h.get("path") == path and h.get("port") in (8081, "metrics"),
          "%s %r" % (probe, h))
check(pod["securityContext"].get("runAsNonRoot") is True, "runAsNonRoot")
sc = c["securityContext"]
check(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
check(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation")
for k in ("requests", "limits"):
    check(set(c["resources"].get(k, {})) == {"cpu", "memory"}, "resources")

if errors:
    sys.exit("\n".join(errors))
for d in docs:
    print(d["kind"], d["metadata"].get("namespace", "-"), d["metadata"]["name"])
PY

sim_start "$ASTER_BIN" "$E2E_TMP/sim" || fail "sim-apiserver did not start"
E2E_PIDS+=("$SIM_PID")

out=$(kubectl apply -f - <"$R" 2>&1) \
    || fail "kubectl apply -f - of the rendered output: $out"
kubectl wait --for condition=established --timeout=20s \
    crd/astros.astertower.kasterism.io >/dev/null \
    || fail "the CRD did not become established"

n=0
while read -r kind ns name; do
    grep -Eq "^[a-z0-9.]+/$name (created|configured|unchanged)$" <<<"$out" \
        || fail "kubectl apply did not report $kind/$name: $out"
    if [ "$ns" = "-" ]; then
        got=$(kubectl get "$kind" "$name" -o name 2>&1)
    else
        got=$(kubectl get -n "$ns" "$kind" "$name" -o name 2>&1)
    fi
    [ -n "$got" ] && [[ "$got" != *rror* ]] \
        || fail "$kind/$name was not created: $got"
    n=$((n + 1))
done <"$E2E_TMP/objects"
[ "$n" -ge 9 ] || fail "only $n objects checked"

# Applying again changes nothing.
out=$(kubectl apply -f - <"$R" 2>&1) \
    || fail "second apply: $out"
if grep -Eq ' (created|configured)$' <<<"$out"; then
    fail "second apply changed objects: $out"
fi
echo "PASS deploy_kustomize ($n objects applied)"
