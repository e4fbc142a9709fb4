#!/usr/bin/env python3
"""vsa-sign.py — sign a SLSA VSA v1 with securesystemslib, for custody's fast path to accept or
refuse (the independent signer on the acceptance side).

usage: vsa-sign.py --key PRIVATE_KEY_PEM --name REGISTRY/REPO --digest sha256:HEX
                   --policy-digest sha256:HEX --trust-root-hash sha256:HEX
                   [--authority-key sha256:HEX ...] [--environment ENV] [--verifier-id URI]
                   [--time RFC3339] [--result PASSED|FAILED] [--level SLSA_BUILD_LEVEL_1]
                   [--resource-uri URI] [--policy-name NAME]

Builds the in-toto Statement v1 and VSA predicate itself (json.dumps, not custody's code), with
custody's documented decision context (docs/attest.md), and signs it as a DSSE envelope with
securesystemslib's CryptoSigner (ecdsa-sha2-nistp256). The keyid is securesystemslib's own
default (not custody's convention): custody must not depend on it. Prints the envelope JSON.
Exit status: 0, 2 usage, 3 the tools could not be installed (see vsa-setup.sh).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vsa_bootstrap import bootstrap  # noqa: E402

bootstrap(__file__)

import argparse  # noqa: E402
import json  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

from cryptography.hazmat.primitives import serialization  # noqa: E402
from securesystemslib.dsse import Envelope  # noqa: E402
from securesystemslib.signer import CryptoSigner, SSlibKey  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--key", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--digest", required=True)
    ap.add_argument("--policy-digest", required=True)
    ap.add_argument("--policy-name", default="policy")
    ap.add_argument("--trust-root-hash", required=True)
    ap.add_argument("--trust-root-name", default="trust root")
    ap.add_argument("--authority-key", action="append", default=[])
    ap.add_argument("--environment")
    ap.add_argument("--rule")
    ap.add_argument("--verifier-id", default="https://independent.example/vsa-sign")
    ap.add_argument("--time")
    ap.add_argument("--result", default="PASSED")
    ap.add_argument("--level", default="SLSA_BUILD_LEVEL_1")
    ap.add_argument("--resource-uri")
    a = ap.parse_args()

    alg, hexval = a.digest.split(":", 1)
    palg, phex = a.policy_digest.split(":", 1)
    time = a.time or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": a.name, "digest": {alg: hexval}}],
        "predicateType": "https://slsa.dev/verification_summary/v1",
        "predicate": {
            "verifier": {"id": a.verifier_id},
            "timeVerified": time,
            "resourceUri": a.resource_uri or f"oci://{a.name}@{a.digest}",
            "policy": {"uri": f"custody:policy/{a.policy_name}", "digest": {palg: phex}},
            "inputAttestations": [],
            "verificationResult": a.result,
            "verifiedLevels": [a.level],
            "slsaVersion": "1.0",
            "https://custody.dev/vsa/context/v1": {
                "environment": a.environment,
                "rule": a.rule,
                "trustRoot": {"name": a.trust_root_name, "contentHash": a.trust_root_hash},
                "authorityKeys": a.authority_key,
            },
        },
    }
    private = serialization.load_pem_private_key(open(a.key, "rb").read(), password=None)
    public = SSlibKey.from_crypto(private.public_key(), scheme="ecdsa-sha2-nistp256")
    signer = CryptoSigner(private, public)
    env = Envelope(json.dumps(statement).encode(), "application/vnd.in-toto+json", {})
    env.sign(signer)
    print(json.dumps(env.to_dict()))


if __name__ == "__main__":
    main()
