# Checklist #1-#5 and #40: version, discovery, namespaces, CRD, auth.
. "$(dirname "$0")/lib.sh"
start_sim

item 1 "kubectl version"
run kubectl version
expect_rc 0
# Any client of the range this suite is run with (1.27 to 1.33), not the
# exact build one machine happens to carry.
expect_out '^Client Version: v1\.(2[7-9]|3[0-3])\.[0-9]+'
expect_out '^Kustomize Version: v[0-9]+\.'
expect_out '^Server Version: v1\.32\.0-fake$'

item 5 "apply CRD, wait established"
run kubectl apply -f "$DATA/astro-crd.yaml"
expect_rc 0
expect_out '^customresourcedefinition.apiextensions.k8s.io/astros.astertower.kasterism.io created$'
run kubectl wait --for condition=established \
    crd/astros.astertower.kasterism.io
expect_rc 0
expect_out 'astros.astertower.kasterism.io condition met$'

item 2 "kubectl api-resources"
run kubectl api-resources
expect_rc 0
expect_out '^NAME +SHORTNAMES +APIVERSION +NAMESPACED +KIND$'
expect_out '^astros +astro +astertower.kasterism.io/v1alpha1 +true +Astro$'
expect_out '^configmaps +cm +v1 +true +ConfigMap$'

item 3 "kubectl api-versions"
run kubectl api-versions
expect_rc 0
expect_out '^astertower.kasterism.io/v1alpha1$'
expect_out '^v1$'
expect_out '^apps/v1$'

item 4 "kubectl get ns"
run kubectl get ns
expect_rc 0
expect_out '^NAME +STATUS +AGE$'
for ns in default kube-system kube-public kube-node-lease; do
    expect_out "^$ns +Active +[0-9]+s$"
done

item 40 "wrong token"
run kubectl --token wrong get ns
expect_rc 1
expect_err '^error: You must be logged in to the server \(Unauthorized\)$'

finish
