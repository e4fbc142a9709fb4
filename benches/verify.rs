//! Verification cost, in process: a keyless hashedrekord bundle and a keyless DSSE bundle, and
//! the floor: the raw signature checks verification cannot avoid, done directly with aws-lc-rs.
//!
//! Floor for the hashedrekord bundle (happy-path-v0.3, production root): the artifact signature
//! (ECDSA P-256), the SET (P-256), the checkpoint (P-256), the leaf certificate's signature by the
//! Fulcio intermediate (P-384) and the intermediate's by the root (P-384). The SCT signature is not
//! in the floor (rebuilding the precertificate is itself verification work), so the floor is an
//! underestimate and the ratio to it an overestimate.
//!
//! Run: `cargo bench --bench verify`. Figures and the machine they came from: docs/benchmarks.md.

use std::hint::black_box;
use std::path::Path;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use criterion::{Criterion, criterion_group, criterion_main};
use custody::Limits;
use custody::evidence::parse_bundle;
use custody::policy::{IdentityPolicy, Matcher};
use custody::trust::TrustRoot;
use custody::verify::{ArtifactInput, verify_bundle};
use der::{Decode, Encode};

fn read(p: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(p)).unwrap()
}

fn policy(identity: &str) -> IdentityPolicy {
    IdentityPolicy {
        identity: Some(Matcher::Exact(identity.into())),
        issuer: Some(Matcher::Exact(
            "https://token.actions.githubusercontent.com".into(),
        )),
        ..IdentityPolicy::default()
    }
}

fn bench_verify(c: &mut Criterion) {
    let limits = Limits::default();
    let now: jiff::Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
    let prod = TrustRoot::production().unwrap();

    let bundle =
        read("fixtures/sigstore-conformance/bundle-verify/happy-path-v0.3/bundle.sigstore.json");
    let artifact = read("fixtures/sigstore-conformance/bundle-verify/a.txt");
    let id = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
    let p = policy(id);
    c.bench_function("hashedrekord: parse + verify + identity policy", |b| {
        b.iter(|| {
            let parsed = parse_bundle(black_box(&bundle), &limits).unwrap();
            let facts = verify_bundle(
                &parsed,
                ArtifactInput::Bytes(&artifact),
                &prod,
                None,
                now,
                &limits,
            )
            .unwrap();
            p.evaluate(&facts).unwrap();
        })
    });

    let dsse = read("fixtures/independent/sigstore-js/dsse.sigstore.json");
    let dsse_artifact = read("fixtures/independent/sigstore-js/artifact.txt");
    let js_root = TrustRoot::from_json(
        "sigstore-js-mock",
        &read("fixtures/independent/sigstore-js/trusted_root.json"),
        &limits,
    )
    .unwrap();
    let p = policy(
        "https://github.com/custody-fixtures/independent-signer/.github/workflows/sign.yml@refs/heads/main",
    );
    c.bench_function("dsse: parse + verify + identity policy", |b| {
        b.iter(|| {
            let parsed = parse_bundle(black_box(&dsse), &limits).unwrap();
            let facts = verify_bundle(
                &parsed,
                ArtifactInput::Bytes(&dsse_artifact),
                &js_root,
                None,
                now,
                &limits,
            )
            .unwrap();
            p.evaluate(&facts).unwrap();
        })
    });

    c.bench_function("trust root load (production)", |b| {
        b.iter(|| TrustRoot::production().unwrap())
    });

    let floor = Floor::new(&bundle, &artifact);
    c.bench_function(
        "floor: 5 raw signature checks of the hashedrekord bundle",
        |b| b.iter(|| floor.check()),
    );
}

/// One raw check: algorithm, public key, message, signature.
type Check = (
    &'static dyn aws_lc_rs::signature::VerificationAlgorithm,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
);

/// The raw signature checks of happy-path-v0.3, prepared once.
struct Floor {
    checks: Vec<Check>,
}

impl Floor {
    fn new(bundle: &[u8], artifact: &[u8]) -> Self {
        let b: serde_json::Value = serde_json::from_slice(bundle).unwrap();
        let d = |v: &serde_json::Value| B64.decode(v.as_str().unwrap()).unwrap();
        let leaf_der = d(&b["verificationMaterial"]["certificate"]["rawBytes"]);
        let leaf = x509_cert::Certificate::from_der(&leaf_der).unwrap();
        let leaf_key = leaf
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes()
            .to_vec();
        let root: serde_json::Value =
            serde_json::from_str(custody::trust::PRODUCTION_TRUSTED_ROOT).unwrap();
        let chain = &root["certificateAuthorities"][1]["certChain"]["certificates"];
        let inter = x509_cert::Certificate::from_der(&d(&chain[0]["rawBytes"])).unwrap();
        let rootc = x509_cert::Certificate::from_der(&d(&chain[1]["rawBytes"])).unwrap();
        let key_of = |c: &x509_cert::Certificate| {
            c.tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes()
                .to_vec()
        };
        let sig_of = |c: &x509_cert::Certificate| c.signature.raw_bytes().to_vec();

        let entry = &b["verificationMaterial"]["tlogEntries"][0];
        let rekor_spki = d(&root["tlogs"][0]["publicKey"]["rawBytes"]);
        let rekor_key = spki_point(&rekor_spki);
        let set_payload = format!(
            r#"{{"body":"{}","integratedTime":{},"logID":"{}","logIndex":{}}}"#,
            entry["canonicalizedBody"].as_str().unwrap(),
            entry["integratedTime"].as_str().unwrap(),
            hex::encode(d(&entry["logId"]["keyId"])),
            entry["logIndex"].as_str().unwrap()
        );
        let envelope = entry["inclusionProof"]["checkpoint"]["envelope"]
            .as_str()
            .unwrap();
        let (note, sigs) = envelope.split_once("\n\n").unwrap();
        let sig_line = sigs.lines().next().unwrap();
        let raw = B64.decode(sig_line.rsplit_once(' ').unwrap().1).unwrap();

        let checks: Vec<Check> = vec![
            (
                &ECDSA_P256_SHA256_ASN1,
                leaf_key,
                artifact.to_vec(),
                d(&b["messageSignature"]["signature"]),
            ),
            (
                &ECDSA_P256_SHA256_ASN1,
                rekor_key.clone(),
                set_payload.into_bytes(),
                d(&entry["inclusionPromise"]["signedEntryTimestamp"]),
            ),
            (
                &ECDSA_P256_SHA256_ASN1,
                rekor_key,
                format!("{note}\n").into_bytes(),
                raw[4..].to_vec(),
            ),
            (
                &ECDSA_P384_SHA384_ASN1,
                key_of(&inter),
                leaf.tbs_certificate.to_der().unwrap(),
                sig_of(&leaf),
            ),
            (
                &ECDSA_P384_SHA384_ASN1,
                key_of(&rootc),
                inter.tbs_certificate.to_der().unwrap(),
                sig_of(&inter),
            ),
        ];
        let floor = Self { checks };
        assert!(
            floor.check(),
            "the floor's checks must pass on the real bundle"
        );
        floor
    }

    fn check(&self) -> bool {
        self.checks.iter().all(|(alg, key, msg, sig)| {
            UnparsedPublicKey::new(*alg, key)
                .verify(black_box(msg), sig)
                .is_ok()
        })
    }
}

/// The EC point of a DER SubjectPublicKeyInfo.
fn spki_point(spki: &[u8]) -> Vec<u8> {
    let info = spki::SubjectPublicKeyInfoRef::from_der(spki).unwrap();
    info.subject_public_key.raw_bytes().to_vec()
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
