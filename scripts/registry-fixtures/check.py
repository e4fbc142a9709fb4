"""check.py — independent checks of fixtures/registry (no custody, no Node).

usage: check.py --registry http://127.0.0.1:PORT FIXDIR   (after verify.sh pushed)
       check.py --evidence FIXDIR

Run with the sigstore-python venv's interpreter (it has `cryptography`); the
sigstore CLI of that venv does the bundle verification.
"""
import base64
import datetime
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

FAILS = []
LINES = []


def ok(cond, what):
    LINES.append(f"{'ok  ' if cond else 'FAIL'} {what}")
    if not cond:
        FAILS.append(what)
    return cond


def sha256(b):
    return hashlib.sha256(b).hexdigest()


class Layout:
    def __init__(self, fix):
        self.dir = os.path.join(fix, "layout")
        self.index = json.load(open(os.path.join(self.dir, "index.json")))
        self.refs = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in self.index["manifests"]}

    def path(self, digest):
        return os.path.join(self.dir, "blobs", "sha256", digest.split(":", 1)[1])

    def blob(self, digest):
        b = open(self.path(digest), "rb").read()
        assert "sha256:" + sha256(b) == digest, f"blob {digest} corrupt"
        return b

    def json(self, digest):
        return json.loads(self.blob(digest))


# --- registry -----------------------------------------------------------------
def check_registry(base, fix):
    plan = json.load(open(os.path.join(fix, "push-plan.json")))
    accept = ",".join(["application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json"])

    def get(path, method="GET"):
        req = urllib.request.Request(base + path, method=method, headers={"Accept": accept})
        with urllib.request.urlopen(req) as r:
            return r.status, dict(r.headers), r.read()

    seen = set()

    def walk(repo, digest):
        if (repo, digest) in seen:
            return
        seen.add((repo, digest))
        st, h, body = get(f"/v2/{repo}/manifests/{digest}")
        ok(st == 200 and "sha256:" + sha256(body) == digest, f"registry {repo}@{digest[:19]}: manifest by digest")
        m = json.loads(body)
        for child in m.get("manifests", []):
            walk(repo, child["digest"])
        for d in ([m["config"]] if "config" in m else []) + m.get("layers", []):
            st, h, _ = get(f"/v2/{repo}/blobs/{d['digest']}", "HEAD")
            ok(st == 200 and int(h.get("Content-Length", -1)) == d["size"], f"registry {repo} blob {d['digest'][:19]} ({d['mediaType']})")

    for p in plan:
        walk(p["repository"], p["digest"])
    try:
        st = get(f"/v2/demo/app/referrers/{plan[0]['digest']}")[0]
    except urllib.error.HTTPError as e:
        st = e.code
    ok(st == 404, f"registry has no referrers API (GET /v2/demo/app/referrers/<digest> -> {st}): the tag schema is the only way")
    finish("registry")


# --- evidence -----------------------------------------------------------------
OID_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
OID_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")


def der_utf8(v):  # Fulcio v2 extensions are DER UTF8String
    assert v[0] == 0x0C and v[1] < 0x80
    return v[2:2 + v[1]].decode()


def cert_identity(cert):
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    exts = {e.oid.dotted_string: e.value.value for e in cert.extensions if isinstance(e.value, x509.UnrecognizedExtension)}
    iss = der_utf8(exts[OID_ISSUER_V2.dotted_string])
    ok(exts[OID_ISSUER_V1.dotted_string].decode() == iss, "  issuer extensions v1 and v2 agree")
    return uris[0], iss, exts


def check_evidence(fix):
    L = Layout(fix)
    sc = json.load(open(os.path.join(fix, "scenario.json")))
    tr = json.load(open(os.path.join(fix, sc["trusted_root"])))
    rekor_der = base64.b64decode(tr["tlogs"][0]["publicKey"]["rawBytes"])
    rekor_key = serialization.load_der_public_key(rekor_der)
    root = x509.load_der_x509_certificate(base64.b64decode(tr["certificateAuthorities"][0]["certChain"]["certificates"][0]["rawBytes"]))
    policy = sc["policy"]
    plan = {(p["repository"], p["tag"]): p for p in json.load(open(os.path.join(fix, "push-plan.json")))}
    tc = make_trust_config(fix, tr)
    cosign_pub = serialization.load_pem_public_key(open(os.path.join(fix, "keys", "cosign.pub"), "rb").read())

    def check_set(ann, what):
        cb = json.loads(ann)
        p = cb["Payload"]
        canon = json.dumps({"body": p["body"], "integratedTime": p["integratedTime"], "logID": p["logID"], "logIndex": p["logIndex"]},
                           sort_keys=True, separators=(",", ":")).encode()
        try:
            rekor_key.verify(base64.b64decode(cb["SignedEntryTimestamp"]), canon, ec.ECDSA(hashes.SHA256()))
            good = True
        except Exception:
            good = False
        ok(good, f"  {what}: SET verifies over canonical {{body,integratedTime,logID,logIndex}} with the Rekor key")
        ok(p["logID"] == hashlib.sha256(rekor_der).hexdigest(), f"  {what}: logID = sha256(Rekor key)")
        return json.loads(base64.b64decode(p["body"])), p

    def check_cert(ann, chain, integrated, what):
        cert = x509.load_pem_x509_certificate(ann.encode())
        try:
            cert.verify_directly_issued_by(root)
            issued = True
        except Exception:
            issued = False
        ok(issued, f"  {what}: certificate issued by the trusted root's Fulcio CA")
        ok(x509.load_pem_x509_certificate(chain.encode()) == root, f"  {what}: chain annotation = the Fulcio root")
        t = datetime.datetime.fromtimestamp(integrated, datetime.timezone.utc)
        ok(cert.not_valid_before_utc <= t <= cert.not_valid_after_utc, f"  {what}: integratedTime within the certificate's validity")
        return cert

    def verify_sig(key, sig, data):
        try:
            key.verify(sig, data, ec.ECDSA(hashes.SHA256()))
            return True
        except Exception:
            return False

    def layer_of(ev):
        m = L.json(ev["manifest_digest"])
        ref = f"{ev_repo.replace('/', '-')}--{ev['tag']}"
        ok(L.refs.get(ref, {}).get("digest") == ev["manifest_digest"], f"  layout ref {ref} -> {ev['manifest_digest'][:19]}")
        ok(plan.get((ev_repo, ev["tag"]), {}).get("digest") == ev["manifest_digest"], f"  push plan {ev_repo}:{ev['tag'][:24]}...")
        cfg = L.json(m["config"]["digest"])
        ok(cfg["rootfs"]["diff_ids"] == [x["digest"] for x in m["layers"]], "  cosign config lists the layers' diff IDs")
        (layer,) = m["layers"]
        ok(layer["digest"] == ev["layer_digest"] and layer["mediaType"] == ev["layer_media_type"], f"  layer {layer['mediaType']}")
        return layer, L.blob(layer["digest"])

    for img in sc["images"]:
        ev_repo = img["repository"]
        LINES.append(f"== {ev_repo}:{img['tag']} {img['digest']} (expected {img['expected']['outcome']})")
        ok(L.refs[f"{ev_repo.replace('/', '-')}--{img['tag']}"]["digest"] == img["digest"], "  image ref in layout")
        signed = {img["digest"]} | {p["digest"] for p in img.get("platforms", [])}
        if not img["evidence"]:
            tags = [r for r in L.refs if r.startswith(ev_repo.replace("/", "-") + "--sha256-")]
            ok(not tags, "  no evidence refs at all")
        for ev in img["evidence"]:
            kind = ev["kind"]
            if kind == "cosign-signature":
                layer, payload = layer_of(ev)
                ss = json.loads(payload)
                ok(ss["critical"]["image"]["docker-manifest-digest"] == ev["signs"] and ev["signs"] in signed
                   and ss["critical"]["identity"]["docker-reference"] == f"{sc['payload_registry_host']}/{ev_repo}"
                   and ss["critical"]["type"] == "cosign container image signature" and ss["optional"] is None,
                   f"  simple-signing payload names {ev['signs'][:19]}")
                a = layer["annotations"]
                sig = base64.b64decode(a["dev.cosignproject.cosign/signature"])
                body, p = check_set(a["dev.sigstore.cosign/bundle"], "signature")
                ok(body["kind"] == "hashedrekord" and body["spec"]["data"]["hash"]["value"] == sha256(payload)
                   and body["spec"]["signature"]["content"] == a["dev.cosignproject.cosign/signature"],
                   "  Rekor hashedrekord: hash = sha256(payload), signature = annotation")
                logged_pem = base64.b64decode(body["spec"]["signature"]["publicKey"]["content"])
                if "key" in ev["signer"]:
                    ok(logged_pem == open(os.path.join(fix, ev["signer"]["key"]), "rb").read(), "  Rekor entry's publicKey = keys/cosign.pub")
                    ok(verify_sig(cosign_pub, sig, payload), "  ECDSA signature verifies with keys/cosign.pub (cryptography)")
                    with tempfile.TemporaryDirectory() as t:
                        open(f"{t}/sig", "wb").write(sig)
                        r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", os.path.join(fix, ev["signer"]["key"]),
                                            "-signature", f"{t}/sig", L.path(layer["digest"])], capture_output=True, text=True)
                    ok(r.returncode == 0 and "Verified OK" in r.stdout, "  openssl dgst -sha256 -verify keys/cosign.pub: Verified OK")
                    ok("dev.sigstore.cosign/certificate" not in a, "  no certificate annotation (key-pair signature)")
                    LINES.append("  sigstore-python: not run (4.5.1 CLI has no public-key verification)")
                else:
                    cert = check_cert(a["dev.sigstore.cosign/certificate"], a["dev.sigstore.cosign/chain"], p["integratedTime"], "signature")
                    ok(x509.load_pem_x509_certificate(logged_pem) == cert, "  Rekor entry's publicKey = the certificate")
                    ok(verify_sig(cert.public_key(), sig, payload), "  ECDSA signature over the payload verifies with the certificate key")
                    san, iss, _ = cert_identity(cert)
                    ok(san == ev["signer"]["identity"] and iss == ev["signer"]["issuer"], f"  certificate SAN {san}")
                    matches = san == policy["identity"] and iss == policy["issuer"]
                    ok(matches == (img["expected"]["outcome"] != "identity-mismatch"), f"  policy identity {'matches' if matches else 'does NOT match'}, as expected")
                    sp(tc, fix, ev["bundle"], L.path(layer["digest"]), san, iss, "verified", ev["bundle"])
                    if not matches:
                        sp(tc, fix, ev["bundle"], L.path(layer["digest"]), policy["identity"], policy["issuer"], "rejected", ev["bundle"] + " [policy identity]")
                    bundle_matches(fix, ev["bundle"], sig, cert, p)
            elif kind == "cosign-attestation":
                layer, env_b = layer_of(ev)
                env = json.loads(env_b)
                a = layer["annotations"]
                ok(a["dev.cosignproject.cosign/signature"] == "" and a["predicateType"] == ev["predicate_type"], "  annotations: empty signature, predicateType")
                body, p = check_set(a["dev.sigstore.cosign/bundle"], "attestation")
                cert = check_cert(a["dev.sigstore.cosign/certificate"], a["dev.sigstore.cosign/chain"], p["integratedTime"], "attestation")
                payload = base64.b64decode(env["payload"])
                s = body["spec"]
                ok(body["kind"] == "dsse" and s["envelopeHash"]["value"] == sha256(env_b) and s["payloadHash"]["value"] == sha256(payload)
                   and s["signatures"][0]["signature"] == env["signatures"][0]["sig"]
                   and x509.load_pem_x509_certificate(base64.b64decode(s["signatures"][0]["verifier"])) == cert,
                   "  Rekor dsse 0.0.1: envelopeHash = sha256(layer), payloadHash, signature, verifier = certificate")
                pt = env["payloadType"].encode()
                pae = b"DSSEv1 %d %s %d %s" % (len(pt), pt, len(payload), payload)
                ok(verify_sig(cert.public_key(), base64.b64decode(env["signatures"][0]["sig"]), pae), "  DSSE signature (PAE) verifies with the certificate key")
                st = json.loads(payload)
                ok(st["_type"] == "https://in-toto.io/Statement/v1" and st["predicateType"] == ev["predicate_type"]
                   and any("sha256:" + x["digest"]["sha256"] == img["digest"] for x in st["subject"]), "  in-toto Statement v1, subject = image digest")
                bd = st["predicate"]["buildDefinition"]
                ok(bd["externalParameters"]["workflow"]["repository"] == policy["source_repository"]
                   and bd["resolvedDependencies"][0]["digest"]["gitCommit"] == policy["source_commit"]
                   and st["predicate"]["runDetails"]["builder"]["id"] == policy["identity"], "  SLSA v1 predicate: workflow, commit, builder.id")
                san, iss, exts = cert_identity(cert)
                ok(san == policy["identity"] and iss == policy["issuer"], f"  certificate SAN {san}")
                sp(tc, fix, ev["bundle"], L.path(img["digest"]), san, iss, "verified", ev["bundle"])
                bundle_matches(fix, ev["bundle"], None, cert, p, envelope=env)
            elif kind == "cosign-sbom":
                layer, doc = layer_of(ev)
                d = json.loads(doc)
                ok(d["spdxVersion"] == "SPDX-2.3" and any(c["checksumValue"] == img["digest"][7:] for pk in d["packages"] for c in pk.get("checksums", [])),
                   "  SPDX 2.3 document, image package checksum = image digest")
                ok("annotations" not in layer, "  unsigned (no annotations)")
            elif kind in ("sigstore-bundle-referrer", "sbom-referrer"):
                idx = L.json(plan[(ev_repo, ev["referrers_tag"])]["digest"])
                entry = [m for m in idx["manifests"] if m["digest"] == ev["referrer_manifest"]]
                ok(len(entry) == 1 and entry[0]["artifactType"] == ev["artifact_type"], f"  referrers index {ev['referrers_tag'][:20]}... lists {ev['referrer_manifest'][:19]}")
                ok(ev["referrers_tag"] == img["digest"].replace(":", "-"), "  referrers tag = <alg>-<hex> of the subject")
                m = L.json(ev["referrer_manifest"])
                ok(m["artifactType"] == ev["artifact_type"] and m["subject"]["digest"] == img["digest"]
                   and m["config"]["mediaType"] == "application/vnd.oci.empty.v1+json" and L.blob(m["config"]["digest"]) == b"{}",
                   "  artifact manifest: artifactType, subject = image, empty config {}")
                ok(m["annotations"] == entry[0]["annotations"], "  index entry annotations = manifest annotations")
                (layer,) = m["layers"]
                data = L.blob(layer["digest"])
                if kind == "sbom-referrer":
                    d = json.loads(data)
                    ok(d["bomFormat"] == "CycloneDX" and d["specVersion"] == "1.5" and d["metadata"]["component"]["version"] == img["digest"],
                       "  CycloneDX 1.5, metadata.component = image digest")
                else:
                    ok(m["annotations"]["dev.sigstore.bundle.predicateType"] == ev["predicate_type"], "  dev.sigstore.bundle.predicateType annotation")
                    ok(json.loads(data) == json.load(open(os.path.join(fix, ev["bundle"]))), f"  layer = {ev['bundle']}")
                    b = json.loads(data)
                    ok(b["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
                       and len(b["verificationMaterial"].get("timestampVerificationData", {}).get("rfc3161Timestamps", [])) == 1,
                       "  bundle v0.3 with one RFC 3161 timestamp")
                    sp(tc, fix, ev["bundle"], L.path(img["digest"]), ev["signer"]["identity"], ev["signer"]["issuer"], "verified", ev["bundle"])
    finish("evidence")


def bundle_matches(fix, name, sig, cert, p, envelope=None):
    """The cosign annotations carry the same signature/certificate/log entry as the sigstore-js bundle."""
    b = json.load(open(os.path.join(fix, name)))
    vm = b["verificationMaterial"]
    leaf = (vm.get("certificate") or vm["x509CertificateChain"]["certificates"][0])["rawBytes"]
    e = vm["tlogEntries"][0]
    same = (x509.load_der_x509_certificate(base64.b64decode(leaf)) == cert and e["canonicalizedBody"] == p["body"]
            and int(e["logIndex"]) == p["logIndex"] and int(e["integratedTime"]) == p["integratedTime"])
    if sig is not None:
        same = same and base64.b64decode(b["messageSignature"]["signature"]) == sig
    if envelope is not None:
        same = same and b["dsseEnvelope"] == envelope
    ok(same, f"  annotations = {name} (signature, certificate, Rekor entry)")


def make_trust_config(fix, tr):
    # sigstore-python takes a custom root only as a ClientTrustConfig; the
    # signing config is not used to verify: point it at the mock services.
    start = tr["certificateAuthorities"][0]["validFor"]
    svc = lambda url, v: {"url": url, "majorApiVersion": v, "validFor": start, "operator": "sigstore-mock"}
    tc = {"mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json", "trustedRoot": tr,
          "signingConfig": {"mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
                            "caUrls": [svc(tr["certificateAuthorities"][0]["uri"], 1)], "oidcUrls": [],
                            "rekorTlogUrls": [svc(tr["tlogs"][0]["baseUrl"], 1)],
                            "tsaUrls": [svc(tr["timestampAuthorities"][0]["uri"] + "/api/v1/timestamp", 1)],
                            "rekorTlogConfig": {"selector": "ANY"}, "tsaConfig": {"selector": "ANY"}}}
    f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(tc, f)
    f.close()
    return f.name


def sp(tc, fix, bundle, artifact, identity, issuer, expected, what):
    cli = os.environ.get("SIGSTORE_CLI") or os.path.join(os.path.dirname(sys.executable), "sigstore")
    r = subprocess.run([cli, "--trust-config", tc, "verify", "identity", "--offline", "--bundle", os.path.join(fix, bundle),
                        "--cert-identity", identity, "--cert-oidc-issuer", issuer, artifact],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "500"}, stdin=subprocess.DEVNULL)
    got = "verified" if r.returncode == 0 else "rejected"
    msgs = [l.split("ERROR", 1)[-1].strip() for l in r.stderr.splitlines() if l.strip() and "FAIL:" not in l]
    why = "" if r.returncode == 0 else " (" + " ".join(" ".join(msgs).split())[:200] + ")"
    ok(got == expected, f"  sigstore-python verify identity --offline {what}: {got}{why}")


def finish(what):
    print("\n".join(LINES))
    n = sum(1 for l in LINES if l.startswith(("ok", "FAIL")))
    print(f"check.py {what}: {n - len(FAILS)} passed, {len(FAILS)} failed", file=sys.stderr)
    LINES.clear()
    if FAILS:
        sys.exit(1)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--registry":
        check_registry(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "--evidence":
        check_evidence(sys.argv[2])
    else:
        sys.exit(__doc__)
