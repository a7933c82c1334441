# deploy/helm/astertower: the chart's files parse, its CRD is the same as
# deploy/crds/astros.yaml, and its RBAC rules match deploy/rbac's. When a
# `helm` binary is on PATH it also renders the chart offline (helm
# template) and checks the objects. Debian bookworm has no helm package,
# so on our CI only the static part runs (see docs/deploy.md).
source "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CHART="$ROOT/deploy/helm/astertower"

cmp -s "$ROOT/deploy/crds/astros.yaml" "$CHART/crds/astros.yaml" \
    || fail "the chart's crds/astros.yaml differs from deploy/crds/astros.yaml"
for f in Chart.yaml values.yaml templates/NOTES.txt templates/_helpers.tpl \
         templates/deployment.yaml templates/rbac.yaml \
         templates/service.yaml templates/serviceaccount.yaml; do
    [ -f "$CHART/$f" ] || fail "chart file $f is missing"
done

python3 - "$ROOT" <<'PY' || fail "chart checks failed"
import re, sys, yaml
root = sys.argv[1]
chart = root + "/deploy/helm/astertower"
errors = []

c = yaml.safe_load(open(chart + "/Chart.yaml"))
for k in ("apiVersion", "name", "version", "appVersion"):
    if not c.get(k):
        errors.append("Chart.yaml has no " + k)
if c.get("apiVersion") != "v2" or c.get("name") != "astertower":
    errors.append("Chart.yaml: apiVersion v2, name astertower expected")

v = yaml.safe_load(open(chart + "/values.yaml"))
for path in ("image.repository", "image.tag", "image.pullPolicy",
             "imagePullSecrets", "engine.image.repository",
             "deadlines.deploy", "deadlines.engineStart", "resources",
             "leaderElect"):
    d = v
    for part in path.split("."):
        if not isinstance(d, dict) or part not in d:
            errors.append("values.yaml has no " + path)
            break
        d = d[part]

# Every .Values reference in the templates names a value that exists.
for name in ("deployment.yaml", "rbac.yaml", "service.yaml",
             "serviceaccount.yaml", "NOTES.txt", "_helpers.tpl"):
    text = open(chart + "/templates/" + name).read()
    if text.count("{{") != text.count("}}"):
        errors.append(name + ": unbalanced {{ }}")
    for ref in re.findall(r"\.Values\.([A-Za-z0-9_.]+)", text):
        d = v
        for part in ref.split("."):
            if not isinstance(d, dict) or part not in d:
                errors.append("%s uses .Values.%s, not in values.yaml"
                              % (name, ref))
                break
            d = d[part]

# The chart grants what deploy/rbac grants, rule for rule.
def rules(text):
    doc = [d for d in yaml.safe_load_all(text) if d and d["kind"] == "ClusterRole"][0]
    return doc["rules"]
plain = open(root + "/deploy/rbac/cluster_role.yaml").read()
tmpl = open(chart + "/templates/rbac.yaml").read()
tmpl = "\n".join(l for l in tmpl.splitlines() if not l.lstrip().startswith("{{"))
tmpl = re.sub(r"\{\{[^}]*\}\}", "x", tmpl)
if rules(plain) != rules(tmpl):
    errors.append("ClusterRole rules differ between deploy/rbac and the chart")

if errors:
    sys.exit("\n".join(errors))
PY

if ! command -v helm >/dev/null; then
    echo "PASS deploy_helm (static checks; no helm binary to render with)"
    exit 0
fi

out="$E2E_TMP/rendered.yaml"
helm template astertower "$CHART" -n astertower-system --include-crds \
    >"$out" 2>"$E2E_TMP/helm.err" \
    || fail "helm template: $(cat "$E2E_TMP/helm.err")"
python3 - "$out" <<'PY' || fail "rendered chart"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = sorted(d["kind"] for d in docs)
want = sorted(["CustomResourceDefinition", "ServiceAccount", "ClusterRole",
               "ClusterRoleBinding", "Role", "RoleBinding", "Deployment",
               "Service"])
if kinds != want:
    sys.exit("rendered kinds %r, want %r" % (kinds, want))
dep = [d for d in docs if d["kind"] == "Deployment"][0]
c = dep["spec"]["template"]["spec"]["containers"][0]
if c["args"][:3] != ["--metrics-address", "0.0.0.0:8081", "--leader-elect"]:
    sys.exit("args %r" % c["args"])
PY
echo "PASS deploy_helm (rendered with $(helm version --short 2>/dev/null))"
