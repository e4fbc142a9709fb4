//! `custody verify` / `custody evidence` against a real OCI registry (Debian's docker-registry,
//! Distribution 2.8, started per test on a free loopback port) filled by skopeo with evidence made
//! by sigstore-js + @sigstore/mock (fixtures/registry, see its README). Distribution 2.8 has no
//! referrers API, so the tag-schema fallback is exercised directly; the referrers API path and
//! every misbehaving-registry case go through an in-test proxy in front of the real registry.

// Tests and benches may print and read the clock; the bans are for the library.
#![allow(clippy::disallowed_macros, clippy::disallowed_methods)]

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

// ------------------------------------------------------------------ a registry that misbehaves ----

/// A registry with demo/app, behind a proxy; returns (registry, proxy, request through the proxy).
fn misbehaving() -> Option<(Registry, Proxy, ImageRequest)> {
    if !tools_available() {
        return None;
    }
    let reg = registry_with(&["demo/app"]);
    let proxy = Proxy::start(&reg.host(), false);
    let req = request(&format!("{}/demo/app@{}", proxy.host(), digest("demo/app")));
    Some((reg, proxy, req))
}

fn status(code: u16, headers: &[(&str, &str)]) -> Action {
    Action::Status {
        code,
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        body: format!("{{\"errors\":[{{\"code\":\"TEST\",\"message\":\"injected {code}\"}}]}}"),
    }
}

fn assert_error(v: &ImageVerification, needle: &str) {
    assert_eq!(v.outcome, Outcome::Error, "{}", v.to_text());
    assert!(
        v.reasons.iter().any(|r| r.contains(needle)),
        "expected {needle:?} in {:?}",
        v.reasons
    );
}

#[test]
fn unauthorized_without_a_challenge_is_an_error_not_an_allow() {
    let Some((_r, proxy, req)) = misbehaving() else {
        return;
    };
    proxy.rule("/manifests/", status(401, &[]), None);
    assert_error(
        &run(&client(&proxy.host()), &req),
        "401 without a usable WWW-Authenticate challenge",
    );
}

#[test]
fn bearer_challenge_is_answered_with_a_token_and_bad_credentials_fail() {
    let Some((_r, proxy, req)) = misbehaving() else {
        return;
    };
    // First manifest request: a bearer challenge whose realm is the proxy's token endpoint.
    let realm = format!("http://{}/token", proxy.host());
    proxy.rule(
        "/manifests/",
        status(
            401,
            &[(
                "WWW-Authenticate",
                &format!("Bearer realm=\"{realm}\",service=\"test\""),
            )],
        ),
        Some(1),
    );
    proxy.rule(
        "/token",
        Action::Body {
            content_type: "application/json".into(),
            body: br#"{"token":"t0k3n"}"#.to_vec(),
        },
        Some(1),
    );
    let v = run(&client(&proxy.host()), &req);
    assert_eq!(v.outcome, Outcome::Verified, "{}", v.to_text());
    assert!(proxy.paths().iter().any(|p| p.starts_with("/token?") && p.contains("scope=repository%3Ademo%2Fapp%3Apull")), "{:?}", proxy.paths());

    // A token endpoint that refuses.
    proxy.clear();
    proxy.rule(
        "/manifests/",
        status(
            401,
            &[("WWW-Authenticate", &format!("Bearer realm=\"{realm}\""))],
        ),
        Some(1),
    );
    proxy.rule("/token", status(403, &[]), None);
    assert_error(&run(&client(&proxy.host()), &req), "token endpoint");
}

#[test]
fn forbidden_and_not_found_evidence_are_reported() {
    let Some((_r, proxy, req)) = misbehaving() else {
        return;
    };
    proxy.rule("/manifests/sha256:", status(403, &[]), None);
    assert_error(&run(&client(&proxy.host()), &req), "403 Forbidden");
}

#[test]
fn rate_limits_are_retried_after_retry_after_and_give_up_after_the_bound() {
    let Some((_r, proxy, req)) = misbehaving() else {
        return;
    };
    // Two 429s then success: verified, after waiting ~1 s each.
    proxy.rule(".sig", status(429, &[("Retry-After", "1")]), Some(2));
    let v = run(&client(&proxy.host()), &req);
    assert_eq!(v.outcome, Outcome::Verified, "{}", v.to_text());
    assert_eq!(
        proxy.paths().iter().filter(|p| p.ends_with(".sig")).count(),
        3
    );

    // Always 429: an error after max_retries + 1 attempts, naming the wait asked for.
    proxy.clear();
    proxy.rule(".sig", status(429, &[("Retry-After", "1")]), None);
    let before = proxy.paths().iter().filter(|p| p.ends_with(".sig")).count();
    let v = run(&client(&proxy.host()), &req);
    assert_error(&v, "rate-limited");
    assert!(
        v.reasons[0].contains("after 3 attempts") && v.reasons[0].contains("wait 1 s"),
        "{:?}",
        v.reasons
    );
    assert_eq!(
        proxy.paths().iter().filter(|p| p.ends_with(".sig")).count() - before,
        3
    );
}

#[test]
fn server_errors_are_retried_a_bounded_number_of_times() {
    let Some((_r, proxy, req)) = misbehaving() else {
        return;
    };
    proxy.rule(".att", status(503, &[]), Some(1));
    assert_eq!(
        run(&client(&proxy.host()), &req).outcome,
        Outcome::Verified,
        "one 503 is retried"
    );
    proxy.clear();
    proxy.rule(".att", status(500, &[]), None);
    let v = run(&client(&proxy.host()), &req);
    assert_error(&v, "answered 500");
    assert!(
        v.reasons[0].contains("after 3 attempt(s)"),
        "{:?}",
        v.reasons
    );
    // A 400 is not transient: one attempt.
    proxy.clear();
    proxy.rule(".att", status(400, &[]), None);
    let before = proxy.paths().iter().filter(|p| p.ends_with(".att")).count();
    let v = run(&client(&proxy.host()), &req);
    assert_error(&v, "answered 400");
    assert!(
        v.reasons[0].contains("after 1 attempt(s)"),
        "{:?}",
        v.reasons
    );
    let after = proxy.paths().iter().filter(|p| p.ends_with(".att")).count();
    assert_eq!(after - before, 1, "a 400 is not retried");
}

#[test]
fn connection_resets_end_in_an_error_after_retries() {
    let Some((_r, proxy, req)) = misbehaving() else {
        return;
    };
    proxy.rule("/manifests/sha256:", Action::Reset, None);
    assert_error(&run(&client(&proxy.host()), &req), "cannot reach");
}

#[test]
fn a_slow_registry_hits_the_request_timeout_and_then_the_deadline() {
    let Some((_r, proxy, mut req)) = misbehaving() else {
        return;
    };
    proxy.rule(".sbom", Action::Delay(Duration::from_secs(5)), None);
    let c = client_with(&proxy.host(), |c| {
        c.request_timeout = Duration::from_millis(300);
        c.max_retries = 1;
    });
    let v = run(&c, &req);
    assert_error(&v, "did not answer within 300 ms");
    // An overall deadline shorter than the retries: the deadline is what is reported.
    req.deadline = Duration::from_millis(500);
    let c = client_with(&proxy.host(), |c| {
        c.request_timeout = Duration::from_secs(10);
    });
    let started = std::time::Instant::now();
    let v = run(&c, &req);
    assert_error(&v, "deadline of 500 ms exceeded");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "never hangs: {:?}",
        started.elapsed()
    );
}

#[test]
fn truncated_bodies_are_detected() {
    let Some((_r, proxy, req)) = misbehaving() else {
        return;
    };
    proxy.rule("/blobs/", Action::Truncate, None);
    assert_error(&run(&client(&proxy.host()), &req), "truncated");
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_refused() {
    let Some((_r, proxy, req)) = misbehaving() else {
        return;
    };
    proxy.rule("/blobs/", Action::Corrupt, None);
    assert_error(
        &run(&client(&proxy.host()), &req),
        "does not match its digest",
    );
}

#[test]
fn a_manifest_with_another_digest_is_refused() {
    let Some((_r, proxy, req)) = misbehaving() else {
        return;
    };
    // By digest: the body no longer hashes to the digest asked for.
    proxy.rule(
        &format!("/manifests/{}", digest("demo/app")),
        Action::Corrupt,
        None,
    );
    assert_error(
        &run(&client(&proxy.host()), &req),
        "does not match its digest",
    );
    // By tag: the registry announces a digest the body does not have.
    proxy.clear();
    proxy.rule(".sig", Action::WrongDigestHeader, None);
    assert_error(
        &run(&client(&proxy.host()), &req),
        "does not match its digest",
    );
}

#[test]
fn an_endless_or_huge_evidence_blob_stops_at_the_limit() {
    let Some((_r, proxy, req)) = misbehaving() else {
        return;
    };
    proxy.rule("/blobs/", Action::Endless, None);
    let started = std::time::Instant::now();
    let v = run(
        &client_with(&proxy.host(), |c| c.max_blob_bytes = 1 << 20),
        &req,
    );
    assert_error(&v, "larger than the limit of 1048576 bytes");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_layer_announced_at_2_gib_is_refused_before_download() {
    let Some((_r, proxy, req)) = misbehaving() else {
        return;
    };
    // A signature manifest whose layer claims 2 GiB.
    let sig_tag = format!("{}.sig", digest("demo/app").replace(':', "-"));
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{z}","size":2}},"layers":[{{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":"sha256:{z}","size":2147483648}}]}}"#,
        z = "0".repeat(64)
    );
    proxy.rule(
        &sig_tag,
        Action::Body {
            content_type: "application/vnd.oci.image.manifest.v1+json".into(),
            body: manifest.into_bytes(),
        },
        None,
    );
    let v = run(&client(&proxy.host()), &req);
    assert_error(&v, "2147483648 bytes announced");
    assert!(
        !proxy
            .paths()
            .iter()
            .any(|p| p.contains(&format!("/blobs/sha256:{}", "0".repeat(64))))
    );
}

#[test]
fn ten_thousand_referrers_are_refused_at_the_limit() {
    let Some((_r, proxy, req)) = misbehaving() else {
        return;
    };
    let entry = format!(
        r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{}","size":1,"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"}}"#,
        "1".repeat(64)
    );
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
        vec![entry.clone(); 10_000].join(",")
    );
    assert!(index.len() < 4 << 20);
    proxy.rule(
        "/referrers/",
        Action::Body {
            content_type: "application/vnd.oci.image.index.v1+json".into(),
            body: index.into_bytes(),
        },
        Some(1),
    );
    assert_error(
        &run(&client(&proxy.host()), &req),
        "number of index entries is 10000, above the limit of 1024",
    );
    // Below the parser's bound, the discovery bound (128 referrers) applies.
    let entry = entry.replace(&"1".repeat(64), &"2".repeat(64));
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
        vec![entry; 129].join(",")
    );
    proxy.rule(
        "/referrers/",
        Action::Body {
            content_type: "application/vnd.oci.image.index.v1+json".into(),
            body: index.into_bytes(),
        },
        None,
    );
    assert_error(
        &run(&client(&proxy.host()), &req),
        "129 entries, more than the limit of 128",
    );
}

#[test]
fn a_referrer_naming_another_subject_is_ignored_with_a_note() {
    need_tools!();
    // demo/unsigned, plus demo/app's referrer manifests copied into its repository; a registry
    // that lists them as referrers of demo/unsigned is lying: their subject is demo/app.
    let reg = registry_with(&["demo/unsigned"]);
    let plan: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("push-plan.json")).unwrap()).unwrap();
    let entries = plan.as_array().unwrap();
    for e in entries
        .iter()
        .filter(|e| e["repository"] == "demo/app" && e["tag"].is_null())
    {
        reg.push_entry(e, "demo/unsigned");
    }
    let index_entry = entries
        .iter()
        .find(|e| e["method"] == "http-put-manifest")
        .unwrap();
    let index = std::fs::read(
        fixtures().join("layout/blobs/sha256").join(
            index_entry["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:"),
        ),
    )
    .unwrap();
    let proxy = Proxy::start(&reg.host(), false);
    proxy.rule(
        "/referrers/",
        Action::Body {
            content_type: "application/vnd.oci.image.index.v1+json".into(),
            body: index,
        },
        None,
    );
    let v = run(
        &client(&proxy.host()),
        &request(&format!(
            "{}/demo/unsigned@{}",
            proxy.host(),
            digest("demo/unsigned")
        )),
    );
    assert_eq!(v.outcome, Outcome::Rejected, "{}", v.to_text());
    assert!(
        v.attestations.is_empty() && v.sboms.is_empty(),
        "{}",
        v.to_text()
    );
    let notes: Vec<_> = v
        .notes
        .iter()
        .filter(|n| n.contains(&format!("names subject {}", digest("demo/app"))))
        .collect();
    assert_eq!(notes.len(), 2, "{:?}", v.notes);
}

#[test]
fn a_tag_that_moves_during_verification_does_not_change_what_was_verified() {
    let Some((_r, proxy, mut req)) = misbehaving() else {
        return;
    };
    req.reference = format!("{}/demo/app:v1", proxy.host()).parse().unwrap();
    req.resolve = true;
    // After the first resolution, the tag answers with demo/unsigned's manifest.
    let unsigned_manifest = std::fs::read(
        fixtures()
            .join("layout/blobs/sha256")
            .join(digest("demo/unsigned").trim_start_matches("sha256:")),
    )
    .unwrap();
    proxy.rule("/manifests/v1", Action::Delay(Duration::ZERO), Some(1));
    proxy.rule(
        "/manifests/v1",
        Action::Body {
            content_type: "application/vnd.oci.image.manifest.v1+json".into(),
            body: unsigned_manifest,
        },
        None,
    );
    let v = run(&client(&proxy.host()), &req);
    assert_eq!(v.outcome, Outcome::Verified, "{}", v.to_text());
    assert_eq!(
        v.image.as_ref().unwrap().digest().unwrap().to_string(),
        digest("demo/app")
    );
    assert_eq!(
        proxy
            .paths()
            .iter()
            .filter(|p| p.ends_with("/manifests/v1"))
            .count(),
        1,
        "the tag is resolved once"
    );
}

#[test]
fn registries_outside_the_allow_list_are_not_contacted() {
    let Some((_r, proxy, req)) = misbehaving() else {
        return;
    };
    let c = client_with(&proxy.host(), |c| {
        c.allowed_registries = Some(vec!["registry.example".into()])
    });
    assert_error(&run(&c, &req), "not in the registry allow-list");
    assert_eq!(proxy.requests(), 0);
}

#[test]
fn plain_http_is_used_only_for_listed_insecure_registries() {
    let Some((_r, _proxy, req)) = misbehaving() else {
        return;
    };
    let c = RegistryClient::new(RegistryConfig::default()).unwrap();
    let v = run(&c, &req);
    assert_eq!(v.outcome, Outcome::Error);
    assert!(v.reasons[0].contains("https://"), "{:?}", v.reasons);
}
