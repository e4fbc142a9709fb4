#!/usr/bin/env python3
"""vsa-verify.py — verify a custody verification summary with tools custody did not write.

usage: vsa-verify.py ENVELOPE PUBLIC_KEY_PEM [--digest sha256:HEX] [--name REGISTRY/REPO]
                     [--resource-uri URI] [--policy-digest sha256:HEX] [--verifier-id URI]
                     [--environment ENV] [--result PASSED|FAILED]

Checks, in order:
  1. the DSSE signature, with PyPI in-toto's `in_toto.models.metadata.Envelope` (securesystemslib's
     DSSE implementation: PAE, base64, ecdsa-sha2-nistp256) and an SSlibKey made from the PEM,
     whose keyid is recomputed here the way custody documents it: "sha256:" + SHA-256 of the DER
     SubjectPublicKeyInfo (securesystemslib only tries a key whose keyid the signature names, so
     this also checks custody's keyid);
  2. the payload type, and the in-toto Statement v1 with in-toto-attestation's protobuf model
     (`Statement.validate()`, every ResourceDescriptor);
  3. the SLSA VSA v1 predicate: required fields and types, PASSED|FAILED, SLSA_BUILD_LEVEL_* at most
     one per track, RFC 3339 timeVerified, DigestSets of lower-case hex;
  4. the given expectations (subject digest and name, resourceUri, policy digest, verifier id,
     environment in custody's decision context, result).
Prints a JSON report on stdout. Exit status: 0 verified, 1 rejected (reason on stderr),
2 usage, 3 the tools could not be installed (see vsa-setup.sh).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vsa_bootstrap import bootstrap  # noqa: E402

bootstrap(__file__)

import argparse  # noqa: E402
import base64  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
from datetime import datetime  # noqa: E402

import google.protobuf.json_format as pb_json  # noqa: E402
import in_toto_attestation.v1.statement_pb2 as spb  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from in_toto.models.metadata import Envelope  # noqa: E402
from in_toto_attestation.v1.statement import Statement  # noqa: E402
from securesystemslib.signer import SSlibKey  # noqa: E402

VSA = "https://slsa.dev/verification_summary/v1"
CONTEXT = "https://custody.dev/vsa/context/v1"
HEX = re.compile(r"^[0-9a-f]+$")


def fail(msg):
    print(f"vsa-verify: REJECTED: {msg}", file=sys.stderr)
    sys.exit(1)


def custody_keyid(pem: bytes) -> str:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        fail("the public key is not ECDSA P-256")
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest(), key


def check_digest_set(where, d):
    if not isinstance(d, dict) or not d:
        fail(f"{where}: digest must be a non-empty object")
    for alg, value in d.items():
        if not isinstance(value, str) or not HEX.match(value):
            fail(f"{where}: digest {alg} is not lower-case hex: {value!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("envelope")
    ap.add_argument("public_key")
    ap.add_argument("--digest")
    ap.add_argument("--name")
    ap.add_argument("--resource-uri")
    ap.add_argument("--policy-digest")
    ap.add_argument("--verifier-id")
    ap.add_argument("--environment")
    ap.add_argument("--result", default="PASSED")
    a = ap.parse_args()

    raw = json.load(open(a.envelope))
    pem = open(a.public_key, "rb").read()
    keyid, crypto_key = custody_keyid(pem)
    key = SSlibKey.from_crypto(crypto_key, keyid=keyid, scheme="ecdsa-sha2-nistp256")

    # 1. Signature (in-toto's DSSE envelope over securesystemslib).
    env = Envelope.from_dict(dict(raw))
    if env.payload_type != "application/vnd.in-toto+json":
        fail(f"payloadType is {env.payload_type!r}")
    verification_key = key.to_dict()
    verification_key["keyid"] = keyid
    try:
        env.verify_signature(verification_key)
    except Exception as e:  # SignatureVerificationError and friends
        fail(f"signature: {type(e).__name__}: {e}")

    # 2. Statement v1 (in-toto-attestation).
    payload = json.loads(env.payload)
    pb = spb.Statement()
    pb_json.Parse(json.dumps(payload), pb, ignore_unknown_fields=True)
    try:
        Statement.copy_from_pb(pb).validate()
    except ValueError as e:
        fail(f"statement: {e}")
    if payload.get("predicateType") != VSA:
        fail(f"predicateType is {payload.get('predicateType')!r}")
    for i, s in enumerate(payload["subject"]):
        check_digest_set(f"subject {i}", s.get("digest"))

    # 3. VSA v1 predicate.
    p = payload["predicate"]
    for field, typ in [("verifier", dict), ("timeVerified", str), ("resourceUri", str),
                       ("policy", dict), ("verificationResult", str), ("verifiedLevels", list)]:
        if not isinstance(p.get(field), typ):
            fail(f"predicate.{field} is missing or not a {typ.__name__}")
    if not isinstance(p["verifier"].get("id"), str) or not p["verifier"]["id"]:
        fail("predicate.verifier.id is missing")
    try:
        t = datetime.fromisoformat(p["timeVerified"].replace("Z", "+00:00"))
    except ValueError:
        fail(f"timeVerified {p['timeVerified']!r} is not RFC 3339")
    if t.utcoffset() is None:
        fail("timeVerified has no time zone")
    if not p["policy"].get("uri"):
        fail("predicate.policy.uri is missing (the spec requires it)")
    check_digest_set("policy", p["policy"].get("digest"))
    for i, ia in enumerate(p.get("inputAttestations", [])):
        check_digest_set(f"inputAttestations {i}", ia.get("digest"))
    if p["verificationResult"] not in ("PASSED", "FAILED"):
        fail(f"verificationResult is {p['verificationResult']!r}")
    tracks = {}
    for level in p["verifiedLevels"]:
        m = re.match(r"^SLSA_([A-Z]+)_LEVEL_([0-9])$", level) if isinstance(level, str) else None
        if level != "FAILED" and not m and (not isinstance(level, str) or level.startswith("SLSA_")):
            fail(f"verifiedLevels has {level!r}")
        if m:
            if m.group(1) in tracks:
                fail(f"verifiedLevels has two {m.group(1)} levels")
            tracks[m.group(1)] = int(m.group(2))
    if "slsaVersion" in p and not re.match(r"^[0-9]+\.[0-9]+$", p["slsaVersion"]):
        fail(f"slsaVersion {p['slsaVersion']!r} is not MAJOR.MINOR")

    # 4. Expectations.
    if a.digest:
        alg, hexval = a.digest.split(":", 1)
        if not any(s["digest"].get(alg) == hexval for s in payload["subject"]):
            fail(f"no subject has {a.digest}")
    if a.name and not any(s.get("name") == a.name for s in payload["subject"]):
        fail(f"no subject is named {a.name}")
    if a.resource_uri and p["resourceUri"] != a.resource_uri:
        fail(f"resourceUri is {p['resourceUri']!r}, expected {a.resource_uri!r}")
    if a.policy_digest:
        alg, hexval = a.policy_digest.split(":", 1)
        if p["policy"]["digest"].get(alg) != hexval:
            fail(f"policy digest is {p['policy']['digest']}, expected {a.policy_digest}")
    if a.verifier_id and p["verifier"]["id"] != a.verifier_id:
        fail(f"verifier.id is {p['verifier']['id']!r}, expected {a.verifier_id!r}")
    if a.environment is not None and (p.get(CONTEXT) or {}).get("environment") != a.environment:
        fail(f"decision context environment is {(p.get(CONTEXT) or {}).get('environment')!r}")
    if p["verificationResult"] != a.result:
        fail(f"verificationResult is {p['verificationResult']}, expected {a.result}")

    import in_toto
    import securesystemslib
    print(json.dumps({
        "verified": True,
        "keyid": keyid,
        "subject": payload["subject"],
        "resourceUri": p["resourceUri"],
        "policy": p["policy"],
        "verifierId": p["verifier"]["id"],
        "timeVerified": p["timeVerified"],
        "verificationResult": p["verificationResult"],
        "verifiedLevels": p["verifiedLevels"],
        "inputAttestations": len(p.get("inputAttestations", [])),
        "tools": {"in-toto": in_toto.__version__, "securesystemslib": securesystemslib.__version__},
    }, indent=2))


if __name__ == "__main__":
    main()
