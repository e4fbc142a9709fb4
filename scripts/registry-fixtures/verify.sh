#!/usr/bin/env bash
# verify.sh [FIXDIR] — check fixtures/registry/ (default) without custody:
# 1. start a fresh docker-registry on a free loopback port (temp storage, no
#    auth), push every push-plan.json entry with
#      skopeo copy --preserve-digests [--all] --dest-tls-verify=false \
#        oci:FIXDIR/layout:REF docker://127.0.0.1:PORT/REPO:TAG
#    and check with curl that GET /v2/REPO/manifests/TAG returns the exact bytes
#    (sha256 = planned digest, Docker-Content-Digest, Content-Type), then that
#    every child manifest and blob is served (check.py --registry);
# 2. check.py --evidence: sigstore-python 4.5.1 `verify identity --offline` on
#    every keyless bundle in bundles/ (payload = the layer blob in the layout),
#    openssl for the static-key signature, and the cosign annotations (Rekor SET
#    over the canonical {body,integratedTime,logID,logIndex} with the trusted
#    root's Rekor key, signature with the certificate key, certificate issued
#    by the trusted root's Fulcio CA, Rekor body vs layer/annotations).
# Exit 0 only when everything matches scenario.json.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
FIX=$(cd "${1:-$ROOT/fixtures/registry}" && pwd)
CACHE=${CUSTODY_TOOLS_CACHE:-$HOME/.cache/custody-tools}
[ -f "$CACHE/env.sh" ] || "$ROOT/scripts/independent/setup.sh" >/dev/null
# shellcheck disable=SC1091
. "$CACHE/env.sh"

WORK=$(mktemp -d)
REG_PID=
cleanup() {
  local rc=$?
  if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$WORK/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/data
http:
  addr: 127.0.0.1:$PORT
YML
docker-registry serve "$WORK/config.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://127.0.0.1:$PORT/v2/" >/dev/null

n=0
while IFS=$'\t' read -r ref repo tag digest mt all method blob; do
  # tag "-": pushed by digest (an untagged OCI 1.1 referrer manifest)
  reference=$tag; [ "$tag" = - ] && reference=$digest
  sep=:; [ "$tag" = - ] && sep=@
  if [ "$method" = http-put-manifest ]; then
    curl -fsS -X PUT -H "Content-Type: $mt" --data-binary "@$FIX/$blob" "http://127.0.0.1:$PORT/v2/$repo/manifests/$reference"
  else
    args=(--quiet --preserve-digests --dest-tls-verify=false)
    [ "$all" = True ] && args+=(--all)
    skopeo copy "${args[@]}" "oci:$FIX/layout:$ref" "docker://127.0.0.1:$PORT/$repo$sep$reference"
  fi
  curl -fsS -H "Accept: $mt" -D "$WORK/h" -o "$WORK/b" "http://127.0.0.1:$PORT/v2/$repo/manifests/$reference"
  got=sha256:$(sha256sum "$WORK/b" | cut -d' ' -f1)
  hdr=$(tr -d '\r' <"$WORK/h" | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
  ct=$(tr -d '\r' <"$WORK/h" | sed -n 's/^[Cc]ontent-[Tt]ype: //p')
  if [ "$got" != "$digest" ] || [ "$hdr" != "$digest" ] || [ "$ct" != "$mt" ]; then
    echo "verify: MISMATCH $repo$sep$reference: body $got, header $hdr, type $ct; planned $digest $mt" >&2; exit 1
  fi
  n=$((n + 1))
done < <(python3 -c '
import json, sys
for p in json.load(open(sys.argv[1])):
    print("\t".join([p["ref_name"], p["repository"], p["tag"] or "-", p["digest"], p["media_type"], str(p["all"]),
                     p["method"], p.get("blob", "-")]))
' "$FIX/push-plan.json")
echo "verify: pushed $n refs with skopeo $(skopeo --version | cut -d' ' -f3) --preserve-digests to docker-registry $(docker-registry --version 2>&1 | awk '{print $3}') at 127.0.0.1:$PORT; every GET /v2/<repo>/manifests/<tag or digest> returned the planned bytes" >&2
"$SIGSTORE_PY" "$HERE/check.py" --registry "http://127.0.0.1:$PORT" "$FIX"
"$SIGSTORE_PY" "$HERE/check.py" --evidence "$FIX"
