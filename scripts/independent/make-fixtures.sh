#!/usr/bin/env bash
# make-fixtures.sh OUTDIR — freshly sign bundles with sigstore-js against
# @sigstore/mock (sign-js.mjs), then verify every case of the resulting
# manifest with sigstore-python too (xcheck-python.sh --manifest). Exit 0 only
# when both independent verifiers agree with every expected result.
# Installs the tools on first use (setup.sh). Signing and verifying need no
# network: the mocks are in-process; where `unshare -n` is allowed both steps
# run in an empty network namespace to prove it.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
OUT=$1
CACHE=${CUSTODY_TOOLS_CACHE:-$HOME/.cache/custody-tools}
"$HERE/setup.sh" >/dev/null
# shellcheck disable=SC1091
. "$CACHE/env.sh"

NONET=()
if unshare -n true 2>/dev/null; then NONET=(unshare -n); fi
mkdir -p "$OUT"
"${NONET[@]}" timeout 300 "$NODE22" "$HERE/sign-js.mjs" "$OUT"
"${NONET[@]}" "$HERE/xcheck-python.sh" --manifest "$OUT" "$OUT/.xcheck-python.tsv"
sed 's/^/make-fixtures: sigstore-python: /' "$OUT/.xcheck-python.tsv" >&2
rm -f "$OUT/.xcheck-python.tsv"
echo "make-fixtures: ${NONET[*]:+(no network: ${NONET[*]}) }wrote $OUT" >&2
