#!/usr/bin/env bash
# vsa-setup.sh — the independent DSSE / in-toto tools for custody's verification summaries:
# a Python venv with PyPI in-toto (which brings securesystemslib: DSSE Envelope, SSlibKey,
# CryptoSigner for ecdsa-sha2-nistp256) and in-toto-attestation (Statement / ResourceDescriptor
# validation). Used by vsa-verify.py and vsa-sign.py, which run this themselves.
# Idempotent: installs only when the venv is missing or incomplete. Needs PyPI once.
# Prints the venv's python on stdout. Exit status 3 when the venv cannot be made (no python3
# venv module, no PyPI): tests then skip outside CI and fail under CI.
# Environment: CUSTODY_TOOLS_CACHE (default ~/.cache/custody-tools), as scripts/independent/setup.sh.
set -euo pipefail

CACHE=${CUSTODY_TOOLS_CACHE:-$HOME/.cache/custody-tools}
IN_TOTO_VERSION=3.1.0               # in-toto (PyPI); brings securesystemslib 1.x
ATTESTATION_VERSION=0.9.3           # in-toto-attestation (PyPI)
VENV=$CACHE/venv-in-toto-$IN_TOTO_VERSION-attestation-$ATTESTATION_VERSION
log() { echo "vsa-setup: $*" >&2; }

if [ ! -f "$VENV/.complete" ]; then
  log "creating $VENV (pip install in-toto==$IN_TOTO_VERSION in-toto-attestation==$ATTESTATION_VERSION)"
  mkdir -p "$CACHE"
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" >&2; then
    log "python3 -m venv failed"; rm -rf "$VENV"; exit 3
  fi
  if ! "$VENV/bin/pip" install -q --disable-pip-version-check \
      "in-toto==$IN_TOTO_VERSION" "in-toto-attestation==$ATTESTATION_VERSION" >&2; then
    log "pip install failed"; rm -rf "$VENV"; exit 3
  fi
  "$VENV/bin/python" -c 'import in_toto, securesystemslib, in_toto_attestation' || { rm -rf "$VENV"; exit 3; }
  touch "$VENV/.complete"
fi
echo "$VENV/bin/python"
