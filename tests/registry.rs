//! `custody verify` / `custody evidence` against a real OCI registry (Debian's docker-registry,
//! Distribution 2.8, started per test on a free loopback port) filled by skopeo with evidence made
//! by sigstore-js + @sigstore/mock (fixtures/registry, see its README). Distribution 2.8 has no
//! referrers API, so the tag-schema fallback is exercised directly; the referrers API path and
//! every misbehaving-registry case go through an in-test proxy in front of the real registry.

mod common;

use std::time::Duration;

use common::proxy::{Action, Proxy};
use common::registry::{Registry, fixtures, tools_available};
use custody::Limits;
use custody::engine::{ImageRequest, PredicateRequirement, verify_image};
use custody::policy::{IdentityPolicy, Matcher};
use custody::reference::ImageRef;
use custody::registry::discovery::{DiscoveryOptions, EvidenceKind, FoundVia};
use custody::registry::{RegistryClient, RegistryConfig};
use custody::trust::{StaticKey, TrustRoot};
use custody::verdict::{ImageVerification, Outcome};
use serde_json::Value;

fn scenario() -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("scenario.json")).unwrap()).unwrap()
}

fn image(repo: &str) -> Value {
    scenario()["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["repository"] == repo)
        .unwrap()
        .clone()
}

fn digest(repo: &str) -> String {
    image(repo)["digest"].as_str().unwrap().to_owned()
}

fn identity() -> IdentityPolicy {
    let s = scenario();
    IdentityPolicy {
        identity: Some(Matcher::Exact(
            s["policy"]["identity"].as_str().unwrap().into(),
        )),
        issuer: Some(Matcher::Exact(
            s["policy"]["issuer"].as_str().unwrap().into(),
        )),
        ..IdentityPolicy::default()
    }
}

fn trust() -> TrustRoot {
    TrustRoot::from_json(
        "fixtures",
        &std::fs::read(fixtures().join("trusted_root.json")).unwrap(),
        &Limits::default(),
    )
    .unwrap()
}

fn request(reference: &str) -> ImageRequest {
    ImageRequest {
        reference: reference.parse().unwrap(),
        resolve: false,
        identity: identity(),
        key: None,
        required_predicate_types: Vec::new(),
        platforms: false,
        discovery: DiscoveryOptions::default(),
        deadline: Duration::from_secs(20),
    }
}

fn client(host: &str) -> RegistryClient {
    client_with(host, |_| {})
}

fn client_with(host: &str, f: impl FnOnce(&mut RegistryConfig)) -> RegistryClient {
    let mut config = RegistryConfig {
        insecure_registries: vec![host.to_owned()],
        ..RegistryConfig::default()
    };
    f(&mut config);
    RegistryClient::new(config).unwrap()
}

fn run(client: &RegistryClient, req: &ImageRequest) -> ImageVerification {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    #[allow(clippy::disallowed_methods)]
    let now = jiff::Timestamp::now();
    rt.block_on(verify_image(client, &trust(), req, now, &Limits::default()))
}

macro_rules! need_tools {
    () => {
        if !tools_available() {
            eprintln!(
                "skipping: docker-registry or skopeo not installed (scripts/test installs them)"
            );
            return;
        }
    };
}

fn registry_with(repos: &[&str]) -> Registry {
    let r = Registry::start();
    r.push(repos);
    r
}

// ------------------------------------------------------------------ discovery paths ----

#[test]
fn keyless_signature_attestation_and_sboms_via_cosign_tags_and_the_tag_schema() {
    need_tools!();
    let reg = registry_with(&["demo/app"]);
    let mut req = request(&format!("{}/demo/app@{}", reg.host(), digest("demo/app")));
    req.required_predicate_types = vec![PredicateRequirement::parse("slsaprovenance").unwrap()];
    let v = run(&client(&reg.host()), &req);
    assert_eq!(v.outcome, Outcome::Verified, "{}", v.to_text());
    // cosign .sig
    assert!(v.signatures.iter().any(|s| s.accepted
        && matches!(&s.evidence.found, FoundVia::CosignTag { tag } if tag.ends_with(".sig"))));
    // cosign .att and the Sigstore bundle referrer (found through the tag schema), both SLSA v1
    let slsa: Vec<_> = v
        .attestations
        .iter()
        .filter(|a| {
            a.accepted && a.predicate_type.as_deref() == Some("https://slsa.dev/provenance/v1")
        })
        .collect();
    assert!(
        slsa.iter()
            .any(|a| matches!(&a.evidence.found, FoundVia::CosignTag { .. })),
        "{}",
        v.to_text()
    );
    assert!(
        slsa.iter()
            .any(|a| a.evidence.kind == EvidenceKind::SigstoreBundle
                && matches!(&a.evidence.found, FoundVia::ReferrersTagSchema { .. })),
        "{}",
        v.to_text()
    );
    // SPDX via cosign .sbom, CycloneDX via referrer
    assert!(v.sboms.iter().any(|s| s.kind == EvidenceKind::CosignSbom));
    assert!(v.sboms.iter().any(|s| s.kind == EvidenceKind::Sbom
        && s.artifact_type.as_deref() == Some("application/vnd.cyclonedx+json")));
    assert!(v.reasons.is_empty());
}

#[test]
fn referrers_api_path_is_used_when_the_registry_implements_it() {
    need_tools!();
    let reg = registry_with(&["demo/app"]);
    let proxy = Proxy::start(&reg.host(), true);
    let req = request(&format!("{}/demo/app@{}", proxy.host(), digest("demo/app")));
    let v = run(&client(&proxy.host()), &req);
    assert_eq!(v.outcome, Outcome::Verified, "{}", v.to_text());
    assert!(v.attestations.iter().any(|a| a.accepted
        && a.evidence.kind == EvidenceKind::SigstoreBundle
        && a.evidence.found == FoundVia::ReferrersApi));
    assert!(v.sboms.iter().any(|s| s.found == FoundVia::ReferrersApi));
    // The fallback tag was not needed.
    let tag = digest("demo/app").replace(':', "-");
    assert!(
        !proxy
            .paths()
            .iter()
            .any(|p| p.ends_with(&format!("/manifests/{tag}"))),
        "{:?}",
        proxy.paths()
    );
}

#[test]
fn multi_arch_index_and_each_platform_are_verified_and_reported() {
    need_tools!();
    let reg = registry_with(&["demo/multi"]);
    let mut req = request(&format!(
        "{}/demo/multi@{}",
        reg.host(),
        digest("demo/multi")
    ));
    let v = run(&client(&reg.host()), &req);
    assert_eq!(v.outcome, Outcome::Verified, "{}", v.to_text());
    assert!(v.is_index);
    assert!(v.platforms.is_empty(), "platforms only on request");
    req.platforms = true;
    let v = run(&client(&reg.host()), &req);
    assert_eq!(v.outcome, Outcome::Verified, "{}", v.to_text());
    let platforms: Vec<_> = v
        .platforms
        .iter()
        .map(|p| (p.platform.as_str(), p.outcome))
        .collect();
    assert_eq!(
        platforms,
        vec![
            ("linux/amd64", Outcome::Verified),
            ("linux/arm64/v8", Outcome::Verified)
        ]
    );
}

#[test]
fn an_unsigned_platform_fails_the_index_when_platforms_are_requested() {
    need_tools!();
    let reg = Registry::start();
    // Push the index and only the index's own signature, not the platforms'.
    let plan: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("push-plan.json")).unwrap()).unwrap();
    let index_sig = format!("{}.sig", digest("demo/multi").replace(':', "-"));
    for e in plan
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["repository"] == "demo/multi")
    {
        if e["tag"] == "v2" || e["tag"] == index_sig.as_str() {
            reg.push_entry(e, "demo/multi");
        }
    }
    let mut req = request(&format!(
        "{}/demo/multi@{}",
        reg.host(),
        digest("demo/multi")
    ));
    req.platforms = true;
    let v = run(&client(&reg.host()), &req);
    assert_eq!(v.outcome, Outcome::Rejected, "{}", v.to_text());
    assert_eq!(v.platforms.len(), 2);
    assert!(v.platforms.iter().all(|p| p.outcome == Outcome::Rejected));
    assert!(
        v.reasons.iter().any(|r| r.contains("platform linux/amd64")),
        "{:?}",
        v.reasons
    );
}

#[test]
fn signatures_in_another_repository_are_found_with_the_override() {
    need_tools!();
    let reg = Registry::start();
    let plan: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("push-plan.json")).unwrap()).unwrap();
    let sig_tag = format!("{}.sig", digest("demo/app").replace(':', "-"));
    for e in plan.as_array().unwrap() {
        if e["repository"] == "demo/app" && e["tag"] == "v1" {
            reg.push_entry(e, "demo/app");
        }
        if e["repository"] == "demo/app" && e["tag"] == sig_tag.as_str() {
            reg.push_entry(e, "signatures/demo-app");
        }
    }
    let mut req = request(&format!("{}/demo/app@{}", reg.host(), digest("demo/app")));
    let v = run(&client(&reg.host()), &req);
    assert_eq!(
        v.outcome,
        Outcome::Rejected,
        "no signature in the image's own repository"
    );
    req.discovery.signature_repository = Some(
        format!("{}/signatures/demo-app", reg.host())
            .parse::<ImageRef>()
            .unwrap(),
    );
    let v = run(&client(&reg.host()), &req);
    assert_eq!(v.outcome, Outcome::Verified, "{}", v.to_text());
    assert!(
        v.signatures[0]
            .evidence
            .repository
            .ends_with("signatures/demo-app")
    );
}

// ------------------------------------------------------------------ judgements ----

#[test]
fn unsigned_image_is_rejected_naming_where_custody_looked() {
    need_tools!();
    let reg = registry_with(&["demo/unsigned"]);
    let v = run(
        &client(&reg.host()),
        &request(&format!(
            "{}/demo/unsigned@{}",
            reg.host(),
            digest("demo/unsigned")
        )),
    );
    assert_eq!(v.outcome, Outcome::Rejected);
    assert!(
        v.reasons[0].starts_with("no signatures or attestations found"),
        "{:?}",
        v.reasons
    );
    assert!(
        v.reasons[0].contains(".sig") && v.reasons[0].contains("referrers of"),
        "{:?}",
        v.reasons
    );
}

#[test]
fn wrong_signer_is_rejected_with_the_identity_found() {
    need_tools!();
    let reg = registry_with(&["demo/wrong"]);
    let v = run(
        &client(&reg.host()),
        &request(&format!(
            "{}/demo/wrong@{}",
            reg.host(),
            digest("demo/wrong")
        )),
    );
    assert_eq!(v.outcome, Outcome::Rejected);
    let sig = &v.signatures[0];
    assert!(!sig.accepted);
    assert_eq!(sig.mismatches[0].field, "certificate-identity");
    assert!(
        sig.mismatches[0]
            .found
            .as_deref()
            .unwrap()
            .contains("other.yml"),
        "{:?}",
        sig.mismatches
    );
}

#[test]
fn key_signed_image_verifies_with_its_key_and_not_keyless_or_with_another_key() {
    need_tools!();
    let reg = registry_with(&["demo/keyed"]);
    let reference = format!("{}/demo/keyed@{}", reg.host(), digest("demo/keyed"));
    let key = StaticKey::from_pem(
        &std::fs::read(fixtures().join("keys/cosign.pub")).unwrap(),
        &Limits::default(),
    )
    .unwrap();
    let mut req = request(&reference);
    req.key = Some(key);
    let v = run(&client(&reg.host()), &req);
    assert_eq!(v.outcome, Outcome::Verified, "{}", v.to_text());
    assert!(
        v.signatures[0]
            .signer
            .as_deref()
            .unwrap()
            .starts_with("key sha256:")
    );

    // Keyless policy: the layer has no certificate.
    let v = run(&client(&reg.host()), &request(&reference));
    assert_eq!(v.outcome, Outcome::Rejected);
    assert!(
        v.signatures[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("certificate"),
        "{:?}",
        v.signatures[0]
    );

    // Another key.
    let other = StaticKey::from_pem(
        &std::fs::read(
            "fixtures/sigstore-conformance/bundle-verify/managed-key-happy-path/key.pub",
        )
        .unwrap(),
        &Limits::default(),
    )
    .unwrap();
    req.key = Some(other);
    let v = run(&client(&reg.host()), &req);
    assert_eq!(v.outcome, Outcome::Rejected);
    assert!(
        matches!(v.signatures[0].check, Some("signature" | "log-entry-match")),
        "{:?}",
        v.signatures[0]
    );
}

#[test]
fn a_required_attestation_type_that_is_absent_is_named() {
    need_tools!();
    let reg = registry_with(&["demo/app"]);
    let mut req = request(&format!("{}/demo/app@{}", reg.host(), digest("demo/app")));
    req.required_predicate_types = vec![PredicateRequirement::parse("vuln").unwrap()];
    let v = run(&client(&reg.host()), &req);
    assert_eq!(v.outcome, Outcome::Rejected);
    assert!(
        v.reasons
            .iter()
            .any(|r| r.contains("no accepted attestation of type vuln")
                && r.contains("https://slsa.dev/provenance/v1")),
        "{:?}",
        v.reasons
    );
}

#[test]
fn a_signature_for_another_digest_is_rejected_on_image_digest() {
    need_tools!();
    let reg = Registry::start();
    let plan: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("push-plan.json")).unwrap()).unwrap();
    // demo/app's signature placed as the signature of demo/unsigned's digest.
    let unsigned = digest("demo/unsigned");
    let app_sig = format!("{}.sig", digest("demo/app").replace(':', "-"));
    for e in plan.as_array().unwrap() {
        if e["repository"] == "demo/unsigned" && e["tag"] == "v1" {
            reg.push_entry(e, "demo/unsigned");
        }
        if e["tag"] == app_sig.as_str() {
            let mut moved = e.clone();
            moved["tag"] = Value::String(format!("{}.sig", unsigned.replace(':', "-")));
            reg.push_entry(&moved, "demo/unsigned");
        }
    }
    let v = run(
        &client(&reg.host()),
        &request(&format!("{}/demo/unsigned@{unsigned}", reg.host())),
    );
    assert_eq!(v.outcome, Outcome::Rejected);
    assert_eq!(
        v.signatures[0].check,
        Some("image-digest"),
        "{:?}",
        v.signatures[0]
    );
}

// ------------------------------------------------------------------ CLI ----

fn custody(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_verify_requires_a_digest_unless_resolve_and_prints_what_it_resolved() {
    need_tools!();
    let reg = registry_with(&["demo/app"]);
    let s = scenario();
    let root = fixtures().join("trusted_root.json");
    let common = [
        "--insecure-registry",
        &reg.host(),
        "--trusted-root",
        root.to_str().unwrap(),
        "--certificate-identity",
        s["policy"]["identity"].as_str().unwrap(),
        "--certificate-oidc-issuer",
        s["policy"]["issuer"].as_str().unwrap(),
    ];
    let tagged = format!("{}/demo/app:v1", reg.host());
    let mut args = vec!["verify", tagged.as_str()];
    args.extend(common);
    let (code, _, stderr) = custody(&args);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not digest-pinned"), "{stderr}");

    args.push("--resolve");
    args.extend(["--output", "json"]);
    let (code, stdout, stderr) = custody(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "resolved {}/demo/app:v1 to {}/demo/app@{}",
            reg.host(),
            reg.host(),
            digest("demo/app")
        )),
        "{stderr}"
    );
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["outcome"], "verified");
    assert_eq!(json["resolvedFromTag"], "v1");
    assert!(json["httpRequests"].as_u64().unwrap() >= 5);

    let unsigned = format!("{}/demo/app@sha256:{}", reg.host(), "a".repeat(64));
    let mut args = vec!["verify", unsigned.as_str()];
    args.extend(common);
    let (code, _, stderr) = custody(&args);
    assert_eq!(
        code, 2,
        "a digest the registry does not have is an error: {stderr}"
    );
    assert!(stderr.contains("not found"), "{stderr}");
}

#[test]
fn cli_evidence_lists_every_piece_without_judging() {
    need_tools!();
    let reg = registry_with(&["demo/app"]);
    let reference = format!("{}/demo/app@{}", reg.host(), digest("demo/app"));
    let (code, stdout, stderr) = custody(&[
        "evidence",
        &reference,
        "--insecure-registry",
        &reg.host(),
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let json: Value = serde_json::from_str(&stdout).unwrap();
    let kinds: Vec<&str> = json["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for k in [
        "cosign-signature",
        "cosign-attestation",
        "cosign-sbom",
        "sigstore-bundle",
        "sbom",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    for e in json["evidence"].as_array().unwrap() {
        assert!(e["digest"].as_str().unwrap().starts_with("sha256:"));
        assert!(e["size"].as_u64().unwrap() > 0);
        assert!(e["repository"].as_str().unwrap().ends_with("demo/app"));
        assert!(e["found"]["via"].is_string());
    }
}
