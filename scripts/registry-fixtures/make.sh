#!/usr/bin/env bash
# make.sh [OUTDIR] — regenerate fixtures/registry/ (default) with make.mjs, then
# check it with verify.sh (fresh docker-registry push round trip, sigstore-python,
# openssl, Rekor SET checks; its output goes to OUTDIR/verification.log).
# Installs the tools on first use:
# scripts/independent/setup.sh (Node 22, sigstore-js 5.0.1, @sigstore/mock
# 0.13.0, sigstore-python 4.5.1) plus @sigstore/oci 0.7.2 (npm) here.
# Needs docker-registry and skopeo (Debian packages docker-registry, skopeo).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:-$ROOT/fixtures/registry}
CACHE=${CUSTODY_TOOLS_CACHE:-$HOME/.cache/custody-tools}
OCI_VERSION=0.7.2
for t in docker-registry skopeo; do
  command -v $t >/dev/null || { echo "make.sh: $t missing (apt-get install docker-registry skopeo)" >&2; exit 2; }
done
"$ROOT/scripts/independent/setup.sh" >/dev/null
# shellcheck disable=SC1091
. "$CACHE/env.sh"
OCIDIR=$CACHE/js-oci-$OCI_VERSION
if [ ! -f "$OCIDIR/node_modules/@sigstore/oci/package.json" ]; then
  mkdir -p "$OCIDIR"
  [ -f "$OCIDIR/package.json" ] || echo '{"name":"custody-registry-fixture-tools","private":true}' >"$OCIDIR/package.json"
  (cd "$OCIDIR" && npm install --no-audit --no-fund --loglevel=error --save-exact "@sigstore/oci@$OCI_VERSION" >&2)
fi
export OCI_NODE_PATH=$OCIDIR/node_modules
mkdir -p "$OUT"
timeout 600 "$NODE22" "$HERE/make.mjs" "$OUT"
# verification.log: what verify.sh found, committed beside the fixtures
"$HERE/verify.sh" "$OUT" 2>&1 | sed "s|$OUT/||g" | tee "$OUT/verification.log"
