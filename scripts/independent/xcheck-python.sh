#!/usr/bin/env bash
# xcheck-python.sh — run sigstore-python's verifier, offline, over bundle cases
# and write one line per case: case<TAB>verified|rejected|unsupported<TAB>reason
#
# usage: xcheck-python.sh CASES_DIR OUT_TSV
#          conformance layout: CASES_DIR/<case>/bundle.sigstore.json, optional
#          artifact (else CASES_DIR/a.txt), key.pub, trusted_root.json; a case
#          named *_fail is expected to be rejected.
#        xcheck-python.sh --manifest FIXTURE_DIR OUT_TSV
#          fixtures/independent/* layout: FIXTURE_DIR/manifest.json lists the
#          cases (bundle, artifact, identity, issuer, expected).
# The default trusted root and the signing config come from the repository's
# own trust-roots/ (never from outside the clone, so a bare CI clone works).
# Environment: CUSTODY_TOOLS_CACHE as for setup.sh (run first, once); XCHECK_TIMEOUT
# seconds per case (default 60).
# Exit status: 0 when every verdict matches the expectation (unsupported is
# not counted as a mismatch), 1 otherwise; a summary goes to stderr.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MODE=conformance
if [ "${1:-}" = --manifest ]; then MODE=manifest; shift; fi
[ $# -eq 2 ] || { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2; exit 2; }
CASES=$(cd "$1" && pwd)
OUT=$2
TRUST=$ROOT/trust-roots
CACHE=${CUSTODY_TOOLS_CACHE:-$HOME/.cache/custody-tools}
TMO=${XCHECK_TIMEOUT:-60}
[ -f "$CACHE/env.sh" ] || "$HERE/setup.sh" >/dev/null
# shellcheck disable=SC1091
. "$CACHE/env.sh"

ID_DEFAULT=https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main
ISS_DEFAULT=https://token.actions.githubusercontent.com
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT

# sigstore-python takes a custom trust root only as a ClientTrustConfig
# (--trust-config): trusted root + signing config. The signing config is never
# used when verifying, so the public-good one serves for any root. Given
# --trust-config, sigstore-python does no TUF fetch; --offline additionally
# forbids online log look-ups. (No network exists here anyway; timeout guards
# against a hang.)
trust_config() { # TRUSTED_ROOT OUT
  "$SIGSTORE_PY" - "$1" "$TRUST/sigstore-public-good.signing_config.v0.2.json" "$2" <<'PY'
import json, sys
tr, sc, out = sys.argv[1:]
json.dump({"mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
           "trustedRoot": json.load(open(tr)), "signingConfig": json.load(open(sc))}, open(out, "w"))
PY
}

# One case -> "verdict<TAB>reason".
run_case() { # BUNDLE ARTIFACT TRUSTED_ROOT IDENTITY ISSUER KEY
  local b=$1 a=$2 tr=$3 id=$4 iss=$5 key=$6 tc err rc
  # sigstore-python 4.5.1's CLI has `verify identity` / `verify github` only:
  # no way to verify a bundle against a given public key (managed-key bundles).
  if [ -n "$key" ]; then
    printf 'unsupported\tsigstore-python CLI has no --key option for bundle verification\n'; return
  fi
  tc=$WORK/tc-$(printf %s "$tr" | cksum | cut -d' ' -f1).json
  [ -f "$tc" ] || trust_config "$tr" "$tc"
  err=$WORK/err
  rc=0
  # COLUMNS: rich (its logger) would otherwise wrap messages at 80 columns.
  COLUMNS=500 timeout "$TMO" "$SIGSTORE_CLI" --trust-config "$tc" verify identity --offline \
    --bundle "$b" --cert-identity "$id" --cert-oidc-issuer "$iss" "$a" >/dev/null 2>"$err" </dev/null || rc=$?
  if [ "$rc" = 0 ]; then printf 'verified\tOK\n'; return; fi
  if [ "$rc" = 124 ]; then printf 'unsupported\tsigstore-python timed out after %ss\n' "$TMO"; return; fi
  # First error message, without rich's time/level columns, "FAIL: <file>",
  # the source-location column and boilerplate; a bundle-parse error gets its
  # "Additional context" line appended, which says what was wrong.
  local why
  why=$(sed -E 's/^(\[[0-9:]+\])? *(ERROR|WARNING|CRITICAL) +//; s/ +[a-z_]+\.py:[0-9]+ *$//; s/^ +//; s/ +$//' "$err" |
        grep -v -e '^FAIL:' -e '^$' -e 'run sigstore with the' -e 'A certificate chain was not valid' \
                -e '^The provided bundle is malformed' -e '^Additional context:' | head -2 |
        sed -E 'N; s/^(An issue occurred while parsing the Sigstore bundle)\.\n/\1: /; s/\n.*//' | cut -c1-200)
  # "unsupported" only when sigstore-python says it cannot handle the input
  # (as opposed to judging it invalid): e.g. 4.5.1 reads the integrated time
  # only from dsse/hashedrekord 0.0.1 entries, so any bundle whose log entry is
  # intoto 0.0.2 fails with "Integrated time only supported for ..." whatever
  # else is right or wrong with it.
  if grep -qiE 'not (yet )?supported|unsupported|only supported for|NotImplementedError' "$err"; then
    printf 'unsupported\t%s\n' "$why"
  else
    printf 'rejected\t%s\n' "${why:-exit $rc}"
  fi
}

: >"$OUT"
n=0 bad=0 unsup=0
check() { # NAME EXPECTED VERDICT<TAB>REASON
  local v=${3%%$'\t'*}
  printf '%s\t%s\n' "$1" "$3" >>"$OUT"
  n=$((n + 1))
  if [ "$v" = unsupported ]; then unsup=$((unsup + 1))
  elif [ "$v" != "$2" ]; then bad=$((bad + 1)); echo "xcheck-python: MISMATCH $1: expected $2, got $3" >&2; fi
}

if [ "$MODE" = conformance ]; then
  for d in "$CASES"/*/; do
    d=${d%/}; c=$(basename "$d")
    [ -f "$d/bundle.sigstore.json" ] || continue
    a=$CASES/a.txt; [ -f "$d/artifact" ] && a=$d/artifact
    tr=$TRUST/sigstore-public-good.trusted_root.json; [ -f "$d/trusted_root.json" ] && tr=$d/trusted_root.json
    k=; [ -f "$d/key.pub" ] && k=$d/key.pub
    case $c in *_fail) exp=rejected ;; *) exp=verified ;; esac
    check "$c" "$exp" "$(run_case "$d/bundle.sigstore.json" "$a" "$tr" "$ID_DEFAULT" "$ISS_DEFAULT" "$k")"
  done
else
  TR_REL=$("$SIGSTORE_PY" -c 'import json,sys;print(json.load(open(sys.argv[1]))["trusted_root"])' "$CASES/manifest.json")
  # name, bundle, artifact, identity, issuer, expected per line, tab-separated
  while IFS=$'\t' read -r c b a id iss exp; do
    check "$c" "$exp" "$(run_case "$CASES/$b" "$CASES/$a" "$CASES/$TR_REL" "$id" "$iss" "")"
  done < <("$SIGSTORE_PY" -c '
import json, sys
m = json.load(open(sys.argv[1]))
for k in m["cases"]:
    print("\t".join([k["name"], k["bundle"], k["artifact"], k["identity"], k["issuer"], k["expected"]]))
' "$CASES/manifest.json")
fi
echo "xcheck-python: $n cases, $bad mismatches, $unsup unsupported (sigstore-python $("$SIGSTORE_PY" -c 'import sigstore;print(sigstore.__version__)')) -> $OUT" >&2
[ "$bad" = 0 ]
