//! Library-level tests of `verify_bundle`: one negative twin per check, limits at N and N+1, and
//! properties that mutating any byte of a valid bundle's signature, certificate, log entry or
//! artifact makes verification fail.
//!
//! Inputs are real Sigstore bundles from the conformance corpus (not minted by custody); each
//! negative case changes exactly one thing and asserts the check that catches it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use custody::Limits;
use custody::evidence::parse_bundle;
use custody::trust::{StaticKey, TrustRoot};
use custody::verify::{
    ArtifactInput, Check, Signer, TimeSource, VerifiedFacts, VerifyError, verify_bundle,
};
use proptest::prelude::*;
use serde_json::Value;

fn corpus(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/sigstore-conformance/bundle-verify")
        .join(path)
}

fn bundle(case: &str) -> Value {
    serde_json::from_slice(&std::fs::read(corpus(case).join("bundle.sigstore.json")).unwrap())
        .unwrap()
}

fn artifact() -> Vec<u8> {
    std::fs::read(corpus("a.txt")).unwrap()
}

fn now() -> jiff::Timestamp {
    "2026-11-25T00:00:00Z".parse().unwrap()
}

fn production() -> TrustRoot {
    TrustRoot::production().unwrap()
}

fn verify_with(
    b: &Value,
    artifact: &[u8],
    trust: &TrustRoot,
    key: Option<&StaticKey>,
    now: jiff::Timestamp,
) -> Result<VerifiedFacts, VerifyError> {
    let bytes = serde_json::to_vec(b).unwrap();
    let parsed = parse_bundle(&bytes, &Limits::default())?;
    verify_bundle(
        &parsed,
        ArtifactInput::Bytes(artifact),
        trust,
        key,
        now,
        &Limits::default(),
    )
}

fn verify(b: &Value) -> Result<VerifiedFacts, VerifyError> {
    verify_with(b, &artifact(), &production(), None, now())
}

fn check_of(r: Result<VerifiedFacts, VerifyError>) -> Check {
    match r {
        Ok(_) => panic!("expected a rejection, got verified"),
        Err(e) => e.check(),
    }
}

/// Decodes a base64 field, applies `f`, re-encodes.
fn edit_b64(v: &mut Value, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = B64.decode(v.as_str().unwrap()).unwrap();
    f(&mut bytes);
    *v = Value::String(B64.encode(bytes));
}

fn managed_key() -> StaticKey {
    StaticKey::from_pem(
        &std::fs::read(corpus("managed-key-happy-path/key.pub")).unwrap(),
        &Limits::default(),
    )
    .unwrap()
}

// ---------------------------------------------------------------- positive baselines ----

#[test]
fn keyless_v03_verifies_with_facts() {
    let facts = verify(&bundle("happy-path-v0.3")).unwrap();
    let Signer::Certificate(c) = facts.signer() else {
        panic!("keyless")
    };
    assert_eq!(
        c.issuer.as_deref(),
        Some("https://token.actions.githubusercontent.com")
    );
    assert_eq!(
        c.claims.runner_environment.as_deref(),
        Some("github-hosted")
    );
    assert_eq!(
        c.claims.source_repository_ref.as_deref(),
        Some("refs/heads/main")
    );
    assert_eq!(
        c.claims.source_repository_digest.as_deref(),
        Some("c7b3dfb335f051e1c86bda4c716fac97df62ad81")
    );
    assert_eq!(c.claims.build_trigger.as_deref(), Some("workflow_dispatch"));
    assert_eq!(c.subject_alternative_names.len(), 1);
    assert_eq!(facts.timestamps().len(), 1);
    assert!(matches!(
        facts.timestamps()[0].source,
        TimeSource::TransparencyLog {
            log_index: 79571823,
            ..
        }
    ));
    assert_eq!(facts.log_entries()[0].kind, "hashedrekord");
    assert!(facts.log_entries()[0].inclusion_proof && facts.log_entries()[0].inclusion_promise);
    assert_eq!(
        facts.trust_root().content_hash,
        *production().content_hash()
    );
}

#[test]
fn managed_key_verifies_and_names_the_key() {
    let facts = verify_with(
        &bundle("managed-key-happy-path"),
        &artifact(),
        &production(),
        Some(&managed_key()),
        now(),
    )
    .unwrap();
    let Signer::Key {
        key_digest,
        algorithm,
        ..
    } = facts.signer()
    else {
        panic!("key")
    };
    assert_eq!(*algorithm, "ecdsa-p256");
    assert_eq!(key_digest, managed_key().content_hash());
}

#[test]
fn dsse_bundle_yields_the_in_toto_statement() {
    let dir = corpus("intoto-with-custom-trust-root");
    let trust = TrustRoot::from_json(
        "custom",
        &std::fs::read(dir.join("trusted_root.json")).unwrap(),
        &Limits::default(),
    )
    .unwrap();
    let art = std::fs::read(dir.join("artifact")).unwrap_or_else(|_| artifact());
    let facts = verify_with(
        &bundle("intoto-with-custom-trust-root"),
        &art,
        &trust,
        None,
        now(),
    )
    .unwrap();
    let s = facts.statement().expect("statement");
    assert!(!s.predicate_type.is_empty());
    assert!(
        s.subjects
            .iter()
            .any(|sub| sub.digest.get("sha256").map(String::as_str)
                == Some(facts.artifact_digest().hex()))
    );
}

// ---------------------------------------------------------------- one twin per check ----

#[test]
fn artifact_binding_a_different_artifact_is_rejected() {
    let r = verify_with(
        &bundle("happy-path-v0.3"),
        b"not the artifact",
        &production(),
        None,
        now(),
    );
    assert_eq!(check_of(r), Check::ArtifactBinding);
}

#[test]
fn signature_a_flipped_signature_bit_is_rejected() {
    let mut b = bundle("happy-path-v0.3");
    // Keep the message digest honest; break only the signature. The log entry also records the
    // signature, so the first check to notice may be the signature or the log-entry match.
    edit_b64(&mut b["messageSignature"]["signature"], |s| {
        let last = s.len() - 1;
        s[last] ^= 1;
    });
    let c = check_of(verify(&b));
    assert!(
        matches!(c, Check::Signature | Check::LogEntryMatch),
        "{c:?}"
    );
}

#[test]
fn inclusion_promise_a_shifted_integrated_time_is_rejected() {
    let mut b = bundle("happy-path-v0.3");
    let t: i64 = b["verificationMaterial"]["tlogEntries"][0]["integratedTime"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    b["verificationMaterial"]["tlogEntries"][0]["integratedTime"] =
        Value::String((t + 1).to_string());
    assert_eq!(check_of(verify(&b)), Check::InclusionPromise);
}

#[test]
fn inclusion_promise_a_corrupted_set_is_rejected() {
    let mut b = bundle("happy-path-v0.3");
    edit_b64(
        &mut b["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]["signedEntryTimestamp"],
        |s| s[10] ^= 0x40,
    );
    assert_eq!(check_of(verify(&b)), Check::InclusionPromise);
}

#[test]
fn transparency_log_key_an_unknown_log_id_is_rejected() {
    let mut b = bundle("happy-path-v0.3");
    b["verificationMaterial"]["tlogEntries"][0]["logId"]["keyId"] =
        Value::String(B64.encode([7u8; 32]));
    let c = check_of(verify(&b));
    assert!(
        matches!(c, Check::TransparencyLogKey | Check::InclusionPromise),
        "{c:?}"
    );
}

#[test]
fn inclusion_proof_a_corrupted_path_hash_is_rejected() {
    let mut b = bundle("happy-path-v0.3");
    edit_b64(
        &mut b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"][0],
        |h| h[0] ^= 1,
    );
    assert_eq!(check_of(verify(&b)), Check::InclusionProof);
}

#[test]
fn inclusion_proof_a_wrong_tree_size_is_rejected() {
    let mut b = bundle("happy-path-v0.3");
    let p = &mut b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"];
    let size: u64 = p["treeSize"].as_str().unwrap().parse().unwrap();
    p["treeSize"] = Value::String((size * 2).to_string());
    let c = check_of(verify(&b));
    assert!(
        matches!(c, Check::InclusionProof | Check::Checkpoint),
        "{c:?}"
    );
}

#[test]
fn checkpoint_a_corrupted_signature_is_rejected() {
    let mut b = bundle("happy-path-v0.3");
    let env =
        b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]["envelope"]
            .as_str()
            .unwrap()
            .to_owned();
    // The signature line is "— <origin> <base64(keyhint || sig)>"; flip one character of it.
    let (head, sig_line) = env.trim_end().rsplit_once('\n').unwrap();
    let (prefix, sig) = sig_line.rsplit_once(' ').unwrap();
    let mut raw = B64.decode(sig).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    let edited = format!("{head}\n{prefix} {}\n", B64.encode(raw));
    b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]["envelope"] =
        Value::String(edited);
    assert_eq!(check_of(verify(&b)), Check::Checkpoint);
}

#[test]
fn log_entry_match_a_body_from_another_entry_is_rejected() {
    // The v0.1 happy path's body describes a different signature (same artifact).
    let mut b = bundle("happy-path-v0.3");
    b["verificationMaterial"]["tlogEntries"][0]["canonicalizedBody"] =
        bundle("happy-path-v0.1")["verificationMaterial"]["tlogEntries"][0]["canonicalizedBody"]
            .clone();
    let c = check_of(verify(&b));
    // Either the Merkle proof or the SET no longer covers the swapped body.
    assert!(
        matches!(
            c,
            Check::InclusionProof | Check::InclusionPromise | Check::LogEntryMatch
        ),
        "{c:?}"
    );
}

#[test]
fn certificate_chain_a_root_in_the_chain_is_rejected_but_an_intermediate_is_not() {
    let root: Value = serde_json::from_str(custody::trust::PRODUCTION_TRUSTED_ROOT).unwrap();
    let chain = &root["certificateAuthorities"][1]["certChain"]["certificates"];
    let (intermediate, root_ca) = (chain[0].clone(), chain[1].clone());

    let mut with_intermediate = bundle("happy-path-v0.1");
    with_intermediate["verificationMaterial"]["x509CertificateChain"]["certificates"]
        .as_array_mut()
        .unwrap()
        .push(intermediate.clone());
    verify(&with_intermediate).expect("leaf + intermediate is a valid chain");

    let mut with_root = with_intermediate.clone();
    with_root["verificationMaterial"]["x509CertificateChain"]["certificates"]
        .as_array_mut()
        .unwrap()
        .push(root_ca);
    let err = verify(&with_root).unwrap_err();
    assert!(
        matches!(err, VerifyError::RootInChain { position: 2, .. }),
        "{err}"
    );
}

#[test]
fn certificate_chain_a_self_signed_leaf_is_rejected() {
    // The Fulcio root itself, presented as the signing certificate.
    let root: Value = serde_json::from_str(custody::trust::PRODUCTION_TRUSTED_ROOT).unwrap();
    let mut b = bundle("happy-path-v0.3");
    b["verificationMaterial"]["certificate"] =
        root["certificateAuthorities"][1]["certChain"]["certificates"][1].clone();
    assert!(matches!(
        verify(&b).unwrap_err(),
        VerifyError::RootInChain { position: 0, .. }
    ));
}

#[test]
fn certificate_chain_an_unknown_critical_extension_is_rejected_and_named() {
    use der::{Decode, Encode};
    let mut b = bundle("happy-path-v0.3");
    edit_b64(
        &mut b["verificationMaterial"]["certificate"]["rawBytes"],
        |der| {
            let mut cert = x509_cert::Certificate::from_der(der).unwrap();
            let exts = cert.tbs_certificate.extensions.as_mut().unwrap();
            // Fulcio's OIDC issuer extension, normally non-critical.
            let ext = exts
                .iter_mut()
                .find(|e| e.extn_id.to_string() == "1.3.6.1.4.1.57264.1.8")
                .unwrap();
            ext.critical = true;
            *der = cert.to_der().unwrap();
        },
    );
    let err = verify(&b).unwrap_err();
    assert!(
        matches!(&err, VerifyError::UnknownCriticalExtension { position: 0, oid } if oid == "1.3.6.1.4.1.57264.1.8"),
        "{err}"
    );
    // Twin: the unmodified certificate (whose critical extensions are all known) verifies.
    verify(&bundle("happy-path-v0.3")).unwrap();
}

#[test]
fn certificate_chain_trust_an_untrusted_ca_is_rejected() {
    // Verify the production bundle against the staging root: its Fulcio CA is not trusted there.
    let r = verify_with(
        &bundle("happy-path-v0.3"),
        &artifact(),
        &TrustRoot::staging().unwrap(),
        None,
        now(),
    );
    let c = check_of(r);
    assert!(
        matches!(
            c,
            Check::CertificateChainTrust
                | Check::TransparencyLogKey
                | Check::InclusionPromise
                | Check::Checkpoint
        ),
        "{c:?}"
    );
}

#[test]
fn certificate_chain_a_truncated_certificate_is_rejected() {
    let mut b = bundle("happy-path-v0.3");
    edit_b64(
        &mut b["verificationMaterial"]["certificate"]["rawBytes"],
        |c| c.truncate(c.len() / 2),
    );
    let c = check_of(verify(&b));
    assert!(matches!(c, Check::CertificateChain), "{c:?}");
}

#[test]
fn integrated_time_later_than_the_verification_time_is_rejected() {
    let long_ago: jiff::Timestamp = "2020-01-01T00:00:00Z".parse().unwrap();
    let err = verify_with(
        &bundle("happy-path-v0.3"),
        &artifact(),
        &production(),
        None,
        long_ago,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::TimeInFuture {
                check: Check::IntegratedTime,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn verification_material_key_and_certificate_must_match_what_was_asked() {
    let err = verify(&bundle("managed-key-happy-path")).unwrap_err();
    assert!(matches!(err, VerifyError::KeyRequired { .. }));
    let err = verify_with(
        &bundle("happy-path-v0.3"),
        &artifact(),
        &production(),
        Some(&managed_key()),
        now(),
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::CertificateInsteadOfKey));
}

#[test]
fn signature_a_different_key_is_rejected() {
    let other = StaticKey::from_pem(
        b"-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2G2Y+2tabdTV5BcGiBIx0a9fAFwr
kBbmLSGtks4L3qX6yYY0zufBnhC8Ur/iy55GhWP/9A/bY2LhC30M9+RYtw==
-----END PUBLIC KEY-----",
        &Limits::default(),
    )
    .unwrap();
    let c = check_of(verify_with(
        &bundle("managed-key-happy-path"),
        &artifact(),
        &production(),
        Some(&other),
        now(),
    ));
    assert!(
        matches!(c, Check::Signature | Check::LogEntryMatch),
        "{c:?}"
    );
}

#[test]
fn verified_time_a_bundle_without_any_time_source_is_rejected() {
    let mut b = bundle("happy-path-v0.3");
    // Without the SET there is no verified time (v0.3 bundles rely on it or on a TSA).
    b["verificationMaterial"]["tlogEntries"][0]
        .as_object_mut()
        .unwrap()
        .remove("inclusionPromise");
    let c = check_of(verify(&b));
    assert!(matches!(c, Check::VerifiedTime), "{c:?}");
}

// ---------------------------------------------------------------- bad input & limits ----

#[test]
fn unknown_media_type_and_missing_media_type_are_rejected_as_format() {
    let mut b = bundle("happy-path-v0.3");
    b["mediaType"] = Value::String("application/vnd.dev.sigstore.bundle+json;version=0.4".into());
    assert_eq!(check_of(verify(&b)), Check::BundleFormat);
    b.as_object_mut().unwrap().remove("mediaType");
    assert_eq!(check_of(verify(&b)), Check::BundleFormat);
}

#[test]
fn tlog_entry_limit_n_passes_parsing_and_n_plus_one_is_rejected() {
    let b = bundle("happy-path-v0.3");
    let entry = b["verificationMaterial"]["tlogEntries"][0].clone();
    let with = |n: usize| {
        let mut b = b.clone();
        b["verificationMaterial"]["tlogEntries"] = Value::Array(vec![entry.clone(); n]);
        serde_json::to_vec(&b).unwrap()
    };
    let limits = Limits {
        max_tlog_entries: 3,
        ..Limits::default()
    };
    assert!(parse_bundle(&with(3), &limits).is_ok());
    let err = parse_bundle(&with(4), &limits).unwrap_err();
    assert!(err.to_string().contains("max_tlog_entries"), "{err}");
}

#[test]
fn bundle_size_limit_n_passes_and_n_plus_one_is_rejected() {
    let bytes = std::fs::read(corpus("happy-path-v0.3/bundle.sigstore.json")).unwrap();
    let n = bytes.len() as u64;
    assert!(
        parse_bundle(
            &bytes,
            &Limits {
                max_bundle_bytes: n,
                ..Limits::default()
            }
        )
        .is_ok()
    );
    let err = parse_bundle(
        &bytes,
        &Limits {
            max_bundle_bytes: n - 1,
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("max_bundle_bytes"), "{err}");
}

#[test]
fn chain_length_limit_is_enforced() {
    let mut b = bundle("happy-path-v0.1");
    let leaf = b["verificationMaterial"]["x509CertificateChain"]["certificates"][0].clone();
    b["verificationMaterial"]["x509CertificateChain"]["certificates"] =
        Value::Array(vec![leaf; 11]);
    let err = parse_bundle(&serde_json::to_vec(&b).unwrap(), &Limits::default()).unwrap_err();
    assert!(err.to_string().contains("max_chain_certificates"), "{err}");
}

#[test]
fn deep_json_is_rejected_before_serde_sees_it() {
    let deep = format!("{{\"mediaType\":{}1{}}}", "[".repeat(200), "]".repeat(200));
    let err = parse_bundle(deep.as_bytes(), &Limits::default()).unwrap_err();
    assert!(err.to_string().contains("max_json_depth"), "{err}");
}

#[test]
fn garbage_never_panics_and_never_verifies() {
    for input in [
        &b""[..],
        b"null",
        b"[]",
        b"{}",
        b"{\"mediaType\":5}",
        b"\xff\xfe",
        b"{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\"}",
    ] {
        assert!(parse_bundle(input, &Limits::default()).is_err());
    }
}

// ---------------------------------------------------------------- properties ----

fn mutate_and_verify(
    case: &str,
    pointer: &str,
    index: prop::sample::Index,
    mask: u8,
) -> Result<VerifiedFacts, VerifyError> {
    let mut b = bundle(case);
    let key = if case.starts_with("managed-key") {
        Some(managed_key())
    } else {
        None
    };
    edit_b64(b.pointer_mut(pointer).unwrap(), |bytes| {
        let i = index.index(bytes.len());
        bytes[i] ^= mask;
    });
    let bytes = serde_json::to_vec(&b).unwrap();
    let parsed = parse_bundle(&bytes, &Limits::default())?;
    verify_bundle(
        &parsed,
        ArtifactInput::Bytes(&artifact()),
        &production(),
        key.as_ref(),
        now(),
        &Limits::default(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn mutating_any_signature_byte_fails(index: prop::sample::Index, mask in 1u8..) {
        prop_assert!(mutate_and_verify("happy-path-v0.3", "/messageSignature/signature", index, mask).is_err());
    }

    #[test]
    fn mutating_any_certificate_byte_fails(index: prop::sample::Index, mask in 1u8..) {
        prop_assert!(mutate_and_verify("happy-path-v0.3", "/verificationMaterial/certificate/rawBytes", index, mask).is_err());
    }

    #[test]
    fn mutating_any_log_entry_body_byte_fails(index: prop::sample::Index, mask in 1u8..) {
        prop_assert!(mutate_and_verify("happy-path-v0.3", "/verificationMaterial/tlogEntries/0/canonicalizedBody", index, mask).is_err());
    }

    #[test]
    fn mutating_any_set_byte_fails(index: prop::sample::Index, mask in 1u8..) {
        prop_assert!(mutate_and_verify("happy-path-v0.3", "/verificationMaterial/tlogEntries/0/inclusionPromise/signedEntryTimestamp", index, mask).is_err());
    }

    #[test]
    fn mutating_any_artifact_byte_fails(index: prop::sample::Index, mask in 1u8..) {
        let mut art = artifact();
        let i = index.index(art.len());
        art[i] ^= mask;
        prop_assert_eq!(check_of(verify_with(&bundle("happy-path-v0.3"), &art, &production(), None, now())), Check::ArtifactBinding);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parser(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_bundle(&bytes, &Limits::default());
    }
}

// ---------------------------------------------------------------- real-world cosign layers ----

mod real_world_cosign {
    use super::*;
    use custody::evidence::cosign::layer_to_bundle;
    use custody::policy::{IdentityPolicy, Matcher};
    use custody::reference::{Digest, ImageRef};
    use custody::verify::cosign::verify_cosign_layer;
    use std::collections::BTreeMap;

    fn dir(case: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/real-world/cosign")
            .join(case)
    }

    struct Case {
        image: ImageRef,
        digest: Digest,
        media_type: String,
        annotations: BTreeMap<String, String>,
        payload: Vec<u8>,
        case: Value,
    }

    fn load(case: &str) -> Case {
        let c: Value =
            serde_json::from_slice(&std::fs::read(dir(case).join("case.json")).unwrap()).unwrap();
        let layer: Value =
            serde_json::from_slice(&std::fs::read(dir(case).join("layer.json")).unwrap()).unwrap();
        let digest: Digest = c["digest"].as_str().unwrap().parse().unwrap();
        Case {
            image: format!("{}@{digest}", c["image"].as_str().unwrap())
                .parse()
                .unwrap(),
            digest,
            media_type: layer["mediaType"].as_str().unwrap().to_owned(),
            annotations: serde_json::from_value(layer["annotations"].clone()).unwrap(),
            payload: std::fs::read(dir(case).join("payload.json")).unwrap(),
            case: c,
        }
    }

    fn verify_case(c: &Case, key: Option<&StaticKey>) -> Result<VerifiedFacts, VerifyError> {
        let layer = layer_to_bundle(
            &c.media_type,
            &c.annotations,
            &c.payload,
            key.is_some(),
            &Limits::default(),
        )?;
        verify_cosign_layer(
            &layer,
            &c.image,
            &c.digest,
            &production(),
            key,
            now(),
            &Limits::default(),
        )
        .map(|f| f.facts)
    }

    fn policy_of(c: &Case) -> IdentityPolicy {
        IdentityPolicy {
            identity: Some(Matcher::Exact(
                c.case["expected_identity"].as_str().unwrap().into(),
            )),
            issuer: Some(Matcher::Exact(
                c.case["expected_issuer"].as_str().unwrap().into(),
            )),
            ..IdentityPolicy::default()
        }
    }

    #[test]
    fn github_actions_and_cloud_build_keyless_signatures_verify_against_the_production_root() {
        for case in ["gh-actions-keyless-server-image", "gcb-keyless-securebuild"] {
            let c = load(case);
            let facts = verify_case(&c, None).unwrap_or_else(|e| panic!("{case}: {e}"));
            policy_of(&c)
                .evaluate(&facts)
                .unwrap_or_else(|m| panic!("{case}: {m:?}"));
            assert_eq!(
                facts.log_entries()[0].log_index,
                c.case["rekor"]["logIndex"].as_u64().unwrap(),
                "{case}"
            );
        }
    }

    #[test]
    fn the_same_signature_for_another_digest_or_repository_is_rejected() {
        let c = load("gh-actions-keyless-server-image");
        let other = Digest::sha256_of(b"another image");
        let mut moved = load("gh-actions-keyless-server-image");
        moved.digest = other.clone();
        moved.image = c.image.with_digest(other);
        assert_eq!(
            verify_case(&moved, None).unwrap_err().check(),
            Check::ImageDigest
        );
        let mut renamed = load("gh-actions-keyless-server-image");
        renamed.image = format!("index.docker.io/someone/else@{}", c.digest)
            .parse()
            .unwrap();
        assert_eq!(
            verify_case(&renamed, None).unwrap_err().check(),
            Check::ImageReference
        );
        // Another registry host with the same repository path is the same image (mirrors).
        let mut mirrored = load("gh-actions-keyless-server-image");
        mirrored.image = format!("mirror.example/salrashid123/server_image@{}", c.digest)
            .parse()
            .unwrap();
        verify_case(&mirrored, None).unwrap();
    }

    #[test]
    fn a_flipped_payload_byte_or_wrong_identity_is_rejected() {
        let mut c = load("gcb-keyless-securebuild");
        let policy = policy_of(&c);
        let facts = verify_case(&c, None).unwrap();
        let mut wrong = policy.clone();
        wrong.identity = Some(Matcher::Exact(
            "someone-else@example.iam.gserviceaccount.com".into(),
        ));
        let m = wrong.evaluate(&facts).unwrap_err();
        assert_eq!(m[0].found.as_deref(), c.case["expected_identity"].as_str());
        let last = c.payload.len() - 2;
        c.payload[last] ^= 1;
        let e = verify_case(&c, None).unwrap_err();
        assert!(
            matches!(
                e.check(),
                Check::Signature | Check::ArtifactBinding | Check::LogEntryMatch
            ),
            "{e}"
        );
    }

    #[test]
    fn key_signed_layers_without_a_log_entry_are_refused_naming_the_missing_annotation() {
        for case in ["gcb-kms-key-securebuild", "sigstore-rs-key-busybox"] {
            let c = load(case);
            let key = StaticKey::from_pem(
                &std::fs::read(dir(case).join("key.pub")).unwrap(),
                &Limits::default(),
            )
            .unwrap();
            let e = verify_case(&c, Some(&key)).unwrap_err();
            assert!(
                e.to_string().contains("dev.sigstore.cosign/bundle")
                    && e.to_string().contains("transparency-log entry"),
                "{case}: {e}"
            );
        }
    }

    #[test]
    fn a_2021_rekord_entry_is_rejected_as_an_unsupported_entry_kind() {
        let c = load("sigstore-rs-keyless-2021");
        let e = verify_case(&c, None).unwrap_err();
        assert_eq!(e.check(), Check::BundleFormat, "{e}");
        assert!(e.to_string().contains("rekord"), "{e}");
    }
}
