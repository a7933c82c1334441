# The conformance suite (conformance/run.sh) on the simulated cluster with
# the controller: the diamond, a failing node, an unpullable image and an
# Astro deleted while running, each checked through kubectl only.
set -euo pipefail
: "${ASTER_BIN:?ASTER_BIN must name the directory of the built binaries}"
root=$(cd "$(dirname "$0")/../.." && pwd)
export ASTER_BIN HOME=$(mktemp -d)
trap 'rm -rf "$HOME"' EXIT
bash "$root/conformance/sim.sh" --timeout 60
