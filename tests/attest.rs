//! Signed verification summaries (SLSA VSA v1 in DSSE): `custody attest`, pushing them as OCI 1.1
//! referrers, and the admission fast path that accepts them — against a real registry (Debian's
//! docker-registry 2.8, which has no referrers API, so the tag-schema index is what custody
//! reads and writes), with P-256 keys made here by `openssl`.
//!
//! Emission and acceptance are also judged by code custody did not write:
//! `scripts/independent/vsa-verify.py` (PyPI in-toto / securesystemslib DSSE, in-toto-attestation)
//! verifies custody's envelopes, and `scripts/independent/vsa-sign.py` (securesystemslib's
//! CryptoSigner) signs summaries for custody to accept or refuse. Those scripts install their
//! tools into a venv under `~/.cache/custody-tools`; without PyPI they exit 3 and the tests skip,
//! unless `CI` is set, where that is a failure.

// Tests may print and read the clock; the bans are for the library.
#![allow(clippy::disallowed_macros, clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::registry::{Registry, TempDir, fixtures, tools_available};
use custody::attest::{
    AttestRequest, Attested, DEFAULT_VERIFIER_ID, Envelope, IN_TOTO_PAYLOAD_TYPE, SigningKey,
    VSA_ARTIFACT_TYPE, attest, push_summary,
};
use custody::engine::policies::{LoadedPolicy, load_file};
use custody::engine::{full_policy_verdict, policy_verdict};
use custody::evidence::oci::OCI_INDEX;
use custody::reference::ImageRef;
use custody::registry::discovery::DiscoveryOptions;
use custody::registry::{Deadline, RegistryClient, RegistryConfig};
use custody::verdict::{Verdict, VerdictDecision};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(30);

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

fn digest(repo: &str) -> String {
    let s: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("scenario.json")).unwrap()).unwrap();
    s["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["repository"] == repo)
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn custody(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An ECDSA P-256 key pair made by openssl: (PKCS#8 private PEM, SPKI public PEM).
fn keypair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let ok = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&private)
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl genpkey");
    let ok = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl pkey -pubout");
    (private, public)
}

fn signing_key(path: &Path) -> SigningKey {
    SigningKey::from_pkcs8_pem(&std::fs::read(path).unwrap(), &custody::Limits::default()).unwrap()
}

/// The example policy (deploy/policies/gitops.yaml) with absolute paths, plus `extra` appended to
/// `spec` (the verificationSummaries block), written to `dir/name`.
fn write_policy(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("deploy/policies/gitops.yaml"))
        .unwrap()
        .replace(
            "../../fixtures/registry/",
            &format!("{}/", fixtures().display()),
        );
    let path = dir.join(name);
    std::fs::write(&path, format!("{text}{extra}")).unwrap();
    path
}

fn summaries_block(public: &Path, max_age: &str, verifier: Option<&str>) -> String {
    let mut b = format!(
        "  verificationSummaries:\n    keys:\n      - name: ci-attestor\n        file: {}\n    maxAge: {max_age}\n",
        public.display()
    );
    if let Some(v) = verifier {
        b.push_str(&format!("    verifierId: {v}\n"));
    }
    b
}

fn client(host: &str) -> RegistryClient {
    RegistryClient::new(RegistryConfig {
        insecure_registries: vec![host.to_owned()],
        ..RegistryConfig::default()
    })
    .unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

fn request(reference: &str, env: &str, verifier: &str, push: bool) -> AttestRequest {
    AttestRequest {
        reference: reference.parse().unwrap(),
        environment: Some(env.to_owned()),
        verifier_id: verifier.to_owned(),
        level: None,
        push,
        discovery: DiscoveryOptions::default(),
        deadline: DEADLINE,
    }
}

fn do_attest(
    c: &RegistryClient,
    loaded: &LoadedPolicy,
    key: &SigningKey,
    req: &AttestRequest,
    at: jiff::Timestamp,
) -> Attested {
    rt().block_on(attest(c, loaded, key, req, at))
        .unwrap_or_else(|e| panic!("attest: {e}"))
}

/// The verdict through the fast path (when the policy has one), and the registry requests made.
fn judged(
    c: &RegistryClient,
    loaded: &LoadedPolicy,
    reference: &str,
    env: &str,
    at: jiff::Timestamp,
) -> (Verdict, u64) {
    let before = c.request_count();
    let v = rt().block_on(policy_verdict(
        c,
        loaded,
        &reference.parse().unwrap(),
        Some(env),
        &DiscoveryOptions::default(),
        DEADLINE,
        at,
    ));
    (v, c.request_count() - before)
}

/// Full verification only, and the registry requests made.
fn judged_fully(
    c: &RegistryClient,
    loaded: &LoadedPolicy,
    reference: &str,
    env: &str,
) -> (Verdict, u64) {
    let before = c.request_count();
    let (v, _) = rt().block_on(full_policy_verdict(
        c,
        loaded,
        &reference.parse().unwrap(),
        Some(env),
        &DiscoveryOptions::default(),
        DEADLINE,
        now(),
    ));
    (v, c.request_count() - before)
}

fn push_envelope(c: &RegistryClient, reference: &str, envelope: &[u8]) {
    let image: ImageRef = reference.parse().unwrap();
    rt().block_on(push_summary(
        c,
        &image,
        envelope,
        &now().to_string(),
        &Deadline::after(DEADLINE),
    ))
    .unwrap();
}

/// The referrers tag-schema index of a digest-pinned reference, to restore between cases.
fn tag_index(c: &RegistryClient, reference: &str) -> (ImageRef, String, Vec<u8>) {
    let image: ImageRef = reference.parse().unwrap();
    let tag = image.digest().unwrap().to_string().replace(':', "-");
    let tagged = image.with_tag(&tag).unwrap();
    let bytes = rt()
        .block_on(c.manifest(&tagged, &Deadline::after(DEADLINE)))
        .unwrap()
        .bytes;
    (image, tag, bytes)
}

fn restore_index(c: &RegistryClient, saved: &(ImageRef, String, Vec<u8>)) {
    rt().block_on(c.push_manifest(
        &saved.0,
        &saved.1,
        OCI_INDEX,
        &saved.2,
        &Deadline::after(DEADLINE),
    ))
    .unwrap();
}

fn trace(v: &Verdict) -> String {
    v.trace.join("\n")
}

/// Whether the independent tools are (or can be) installed: vsa-setup.sh exits 3 when not.
fn python_tools() -> bool {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/independent/vsa-setup.sh");
    let out = Command::new(&script).output().unwrap();
    if out.status.success() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "scripts/independent/vsa-setup.sh could not install in-toto: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "skipping: the in-toto venv cannot be made here (no PyPI?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts/independent")
        .join(name)
}

fn registry() -> Registry {
    let r = Registry::start();
    r.push(&["demo/app", "demo/unsigned", "demo/keyed"]);
    r
}

// ------------------------------------------------------------------ custody attest (CLI) ----

#[test]
fn attest_signs_an_allow_refuses_a_deny_and_pushes_a_referrer_evidence_lists() {
    need_tools!();
    let reg = registry();
    let host = reg.host();
    let dir = TempDir::new("custody-attest-cli");
    let (private, public) = keypair(&dir.0, "attestor");
    let policy = write_policy(&dir.0, "policy.yaml", "");
    let app = format!("{host}/demo/app@{}", digest("demo/app"));
    let common = [
        "--key",
        private.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--insecure-registry",
        &host,
    ];

    // Allow: the envelope on stdout, a summary on stderr.
    let mut args = vec!["attest", app.as_str(), "--env", "production"];
    args.extend(common);
    let (code, stdout, stderr) = custody(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("attested") && stderr.contains("SLSA_BUILD_LEVEL_1"),
        "{stderr}"
    );
    let env: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(env["payloadType"], IN_TOTO_PAYLOAD_TYPE);
    let key = custody::trust::StaticKey::from_pem(
        &std::fs::read(&public).unwrap(),
        &custody::Limits::default(),
    )
    .unwrap();
    assert_eq!(
        env["signatures"][0]["keyid"],
        key.content_hash().to_string()
    );
    let parsed = custody::attest::dsse::parse_envelope(
        stdout.trim().as_bytes(),
        &custody::Limits::default(),
    )
    .unwrap();
    assert_eq!(parsed.verified_by(&[&key]), Some(0));
    let statement: Value = serde_json::from_slice(&parsed.payload).unwrap();
    let p = &statement["predicate"];
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        statement["predicateType"],
        "https://slsa.dev/verification_summary/v1"
    );
    assert_eq!(statement["subject"][0]["name"], format!("{host}/demo/app"));
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        digest("demo/app").trim_start_matches("sha256:")
    );
    assert_eq!(p["verifier"]["id"], DEFAULT_VERIFIER_ID);
    assert_eq!(p["resourceUri"], format!("oci://{app}"));
    assert_eq!(p["verificationResult"], "PASSED");
    assert_eq!(
        p["verifiedLevels"],
        serde_json::json!(["SLSA_BUILD_LEVEL_1"])
    );
    assert_eq!(p["slsaVersion"], "1.0");
    let policy_hash = custody::reference::Digest::sha256_of(&std::fs::read(&policy).unwrap());
    assert_eq!(p["policy"]["digest"]["sha256"], policy_hash.hex());
    assert_eq!(
        p["https://custody.dev/vsa/context/v1"]["environment"],
        "production"
    );
    assert_eq!(
        p["https://custody.dev/vsa/context/v1"]["rule"],
        "production"
    );
    // The inputs are the accepted signature and attestations plus the SBOMs production requires,
    // each located by the manifest that holds it.
    let inputs = p["inputAttestations"].as_array().unwrap();
    assert!(inputs.len() >= 4, "{inputs:?}");
    assert!(inputs.iter().all(|i| {
        i["uri"]
            .as_str()
            .unwrap()
            .starts_with(&format!("oci://{host}/demo/app@sha256:"))
            && i["digest"]["sha256"].as_str().unwrap().len() == 64
    }));
    assert!(
        inputs
            .iter()
            .any(|i| i["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json")
    );
    assert!(
        inputs
            .iter()
            .any(|i| i["mediaType"] == "application/vnd.dsse.envelope.v1+json")
    );

    // Levels: _2 may be vouched for where provenance was checked; not where it was not.
    let mut args = vec![
        "attest",
        app.as_str(),
        "--env",
        "production",
        "--level",
        "SLSA_BUILD_LEVEL_2",
    ];
    args.extend(common);
    let (code, stdout, stderr) = custody(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("eyJ"), "an envelope");
    let mut args = vec![
        "attest",
        app.as_str(),
        "--env",
        "dev",
        "--level",
        "SLSA_BUILD_LEVEL_2",
    ];
    args.extend(common);
    let (code, stdout, stderr) = custody(&args);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("cannot claim SLSA_BUILD_LEVEL_2"),
        "{stderr}"
    );
    let mut args = vec!["attest", app.as_str(), "--env", "dev"];
    args.extend(common);
    let (code, _, stderr) = custody(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("SLSA_BUILD_LEVEL_0"),
        "dev requires no provenance: {stderr}"
    );

    // Deny: exit 1, the reasons, no envelope.
    let unsigned = format!("{host}/demo/unsigned@{}", digest("demo/unsigned"));
    let mut args = vec!["attest", unsigned.as_str(), "--env", "production"];
    args.extend(common);
    let (code, stdout, stderr) = custody(&args);
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("DENY") && stderr.contains("authorities"),
        "{stderr}"
    );

    // Not digest-pinned: exit 2.
    let tagged = format!("{host}/demo/app:v1");
    let mut args = vec!["attest", tagged.as_str(), "--env", "production"];
    args.extend(common);
    let (code, _, stderr) = custody(&args);
    assert_eq!(code, 2, "{stderr}");

    // Push, to a file: `custody evidence` lists the referrer with custody's artifact type.
    let out = dir.0.join("vsa.json");
    let mut args = vec![
        "attest",
        app.as_str(),
        "--env",
        "production",
        "--push",
        "--output",
        out.to_str().unwrap(),
    ];
    args.extend(common);
    let (code, stdout, stderr) = custody(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("pushed as referrer") && stderr.contains("referrers-tag-schema"),
        "{stderr}"
    );
    let written = std::fs::read(&out).unwrap();
    let blob_digest = custody::reference::Digest::sha256_of(written.trim_ascii_end());
    let (code, stdout, stderr) = custody(&[
        "evidence",
        &app,
        "--insecure-registry",
        &host,
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let listed: Value = serde_json::from_str(&stdout).unwrap();
    let vsa: Vec<&Value> = listed["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["artifactType"] == VSA_ARTIFACT_TYPE)
        .collect();
    assert_eq!(vsa.len(), 1, "{stdout}");
    assert_eq!(vsa[0]["found"]["via"], "referrers-tag-schema");
    // Listed under its own kind, not `other`.
    assert_eq!(vsa[0]["kind"], "verification-summary", "{stdout}");
    // The fixture's referrers are still listed next to it (read-modify-write kept them).
    assert!(
        listed["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "sigstore-bundle")
    );
    // The pushed blob is the envelope written.
    let image: ImageRef = app.parse().unwrap();
    let c = client(&host);
    let blob = rt()
        .block_on(c.blob(&image, &blob_digest, 1 << 20, &Deadline::after(DEADLINE)))
        .unwrap();
    assert_eq!(blob.bytes, written.trim_ascii_end());
}

// ------------------------------------------------------------------ the fast path ----

#[test]
fn a_fresh_summary_is_accepted_with_fewer_registry_requests_and_says_so() {
    need_tools!();
    let reg = registry();
    let host = reg.host();
    let dir = TempDir::new("custody-attest-fast");
    let (private, public) = keypair(&dir.0, "attestor");
    let policy = write_policy(&dir.0, "policy.yaml", &summaries_block(&public, "1h", None));
    let loaded = load_file(&policy).unwrap();
    let key = signing_key(&private);
    let c = client(&host);
    let app = format!("{host}/demo/app@{}", digest("demo/app"));

    // Before any summary: full verification (allow), after the fast path found none.
    let (v, first) = judged(&c, &loaded, &app, "production", now());
    assert_eq!(v.decision, VerdictDecision::Allow, "{}", v.to_text());
    assert!(
        trace(&v).contains("verification summary: none attached"),
        "{}",
        trace(&v)
    );

    let made = do_attest(
        &c,
        &loaded,
        &key,
        &request(&app, "production", DEFAULT_VERIFIER_ID, true),
        now(),
    );
    let pushed = made.pushed.unwrap();

    let (full, full_requests) = judged_fully(&c, &loaded, &app, "production");
    assert_eq!(full.decision, VerdictDecision::Allow);
    let (v, fast_requests) = judged(&c, &loaded, &app, "production", now());
    assert_eq!(v.decision, VerdictDecision::Allow, "{}", v.to_text());
    assert!(v.admit);
    assert_eq!(v.rule.as_deref(), Some("production"));
    assert!(v.reasons.is_empty());
    let t = trace(&v);
    assert!(
        t.contains(&format!(
            "verification summary {} accepted",
            pushed.envelope_digest
        )) && t.contains("summary key \"ci-attestor\"")
            && t.contains(&key.key_id().to_string())
            && t.contains(&made.statement.predicate.time_verified)
            && t.contains("full verification skipped"),
        "{t}"
    );
    assert_eq!(v.evidence.len(), 1);
    assert_eq!(v.evidence[0].digest, pushed.envelope_digest);
    assert_eq!(
        v.evidence[0].predicate_type.as_deref(),
        Some("https://slsa.dev/verification_summary/v1")
    );
    assert_eq!(
        v.evidence[0].accepted_by,
        vec!["verification summary key ci-attestor"]
    );
    assert_eq!(v.deferred.len(), 1, "promotedFrom stays deferred");
    eprintln!(
        "registry requests: fast path {fast_requests}, full verification {full_requests}, full after an empty fast path {first}"
    );
    assert!(
        fast_requests < full_requests,
        "fast {fast_requests} vs full {full_requests}"
    );
    assert!(fast_requests <= 4, "{fast_requests}");

    // The reference rules still judge the reference as deployed: a floating tag next to the
    // digest is not taken from the summary, and full verification denies it.
    let floating = format!("{host}/demo/app:latest@{}", digest("demo/app"));
    let (v, _) = judged(&c, &loaded, &floating, "production", now());
    assert_eq!(v.decision, VerdictDecision::Deny);
    assert!(
        trace(&v).contains("reference-floating-tag"),
        "{}",
        trace(&v)
    );
    // Another environment's rule: the summary was for production.
    let (v, _) = judged(&c, &loaded, &app, "staging", now());
    assert_eq!(v.decision, VerdictDecision::Allow);
    assert!(
        trace(&v).contains("summary-context") && trace(&v).contains("full verification follows"),
        "{}",
        trace(&v)
    );
}

/// One refused summary per case; each falls back to full verification, whose verdict stands.
#[test]
fn refused_summaries_fall_back_to_full_verification() {
    need_tools!();
    let reg = registry();
    let host = reg.host();
    let dir = TempDir::new("custody-attest-refused");
    let (private, public) = keypair(&dir.0, "attestor");
    let (stranger_private, _) = keypair(&dir.0, "stranger");
    let policy = write_policy(&dir.0, "policy.yaml", &summaries_block(&public, "1h", None));
    let edited = write_policy(
        &dir.0,
        "edited.yaml",
        &format!(
            "{}# edited after the summary was made\n",
            summaries_block(&public, "1h", None)
        ),
    );
    let strict = write_policy(
        &dir.0,
        "strict.yaml",
        &summaries_block(&public, "1h", Some("https://ci.acme.example/custody")),
    );
    let loaded = load_file(&policy).unwrap();
    let key = signing_key(&private);
    let stranger = signing_key(&stranger_private);
    let c = client(&host);
    let app = format!("{host}/demo/app@{}", digest("demo/app"));
    let keyed = format!("{host}/demo/keyed@{}", digest("demo/keyed"));
    let saved = tag_index(&c, &app);
    let t0 = now();
    let good = do_attest(
        &c,
        &loaded,
        &key,
        &request(&app, "production", DEFAULT_VERIFIER_ID, false),
        t0,
    );
    let (_, full_requests) = judged_fully(&c, &loaded, &app, "production");

    let resign = |mutate: &dyn Fn(&mut custody::attest::VsaStatement)| {
        let mut s = good.statement.clone();
        mutate(&mut s);
        Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &s.to_bytes(), &key)
            .unwrap()
            .to_bytes()
    };
    let tampered = {
        let mut s = good.statement.clone();
        s.predicate.verified_levels = vec!["SLSA_BUILD_LEVEL_3".into()];
        let mut e = good.envelope.clone();
        e.payload =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s.to_bytes());
        e.to_bytes()
    };
    let keyed_digest: custody::reference::Digest = digest("demo/keyed").parse().unwrap();
    let other_digest = resign(&|s| {
        s.subject[0].digest = custody::attest::vsa::digest_set(&keyed_digest);
    });
    let other_resource = resign(&|s| {
        s.predicate.resource_uri = format!("oci://{keyed}");
    });
    let failed = resign(&|s| s.predicate.verification_result = "FAILED".into());
    let future = do_attest(
        &c,
        &loaded,
        &key,
        &request(&app, "production", DEFAULT_VERIFIER_ID, false),
        t0 + jiff::SignedDuration::from_hours(1),
    )
    .envelope_bytes;
    let wrong_key = do_attest(
        &c,
        &loaded,
        &stranger,
        &request(&app, "production", DEFAULT_VERIFIER_ID, false),
        t0,
    )
    .envelope_bytes;
    let strict_loaded = load_file(&strict).unwrap();
    let unknown_verifier = do_attest(
        &c,
        &strict_loaded,
        &key,
        &request(&app, "production", "https://laptop.example/custody", false),
        t0,
    )
    .envelope_bytes;
    let other_environment = do_attest(
        &c,
        &loaded,
        &key,
        &request(&app, "dev", DEFAULT_VERIFIER_ID, false),
        t0,
    )
    .envelope_bytes;
    let edited_loaded = load_file(&edited).unwrap();
    let stale_at = t0 + jiff::SignedDuration::from_hours(1) + jiff::SignedDuration::from_secs(1);

    let cases: Vec<(&str, Vec<u8>, &LoadedPolicy, jiff::Timestamp, &str)> = vec![
        ("wrong key", wrong_key, &loaded, now(), "summary-signature"),
        (
            "tampered payload",
            tampered,
            &loaded,
            now(),
            "summary-signature",
        ),
        (
            "other digest",
            other_digest,
            &loaded,
            now(),
            "summary-subject",
        ),
        (
            "other resource",
            other_resource,
            &loaded,
            now(),
            "summary-resource-uri",
        ),
        (
            "policy edited",
            good.envelope_bytes.clone(),
            &edited_loaded,
            now(),
            "summary-policy-digest",
        ),
        (
            "stale",
            good.envelope_bytes.clone(),
            &loaded,
            stale_at,
            "summary-stale",
        ),
        ("FAILED", failed, &loaded, now(), "summary-result"),
        ("future", future, &loaded, now(), "summary-future"),
        (
            "unknown verifier",
            unknown_verifier,
            &strict_loaded,
            now(),
            "summary-verifier-id",
        ),
        (
            "other environment",
            other_environment,
            &loaded,
            now(),
            "summary-context",
        ),
    ];
    for (name, envelope, judge_with, at, code) in cases {
        push_envelope(&c, &app, &envelope);
        let (v, requests) = judged(&c, judge_with, &app, "production", at);
        let t = trace(&v);
        assert_eq!(
            v.decision,
            VerdictDecision::Allow,
            "{name}: full verification allows\n{}",
            v.to_text()
        );
        assert!(t.contains(&format!("({code})")), "{name}: {t}");
        assert!(t.contains("full verification follows"), "{name}: {t}");
        assert!(!t.contains("full verification skipped"), "{name}: {t}");
        assert!(v.evidence.len() > 1, "{name}: the full evidence list");
        assert!(
            requests > full_requests,
            "{name}: {requests} requests, full alone {full_requests}"
        );
        restore_index(&c, &saved);
    }
    // And the good one, once restored and pushed, is accepted at t0's freshness.
    push_envelope(&c, &app, &good.envelope_bytes);
    let (v, _) = judged(&c, &loaded, &app, "production", now());
    assert!(
        trace(&v).contains("full verification skipped"),
        "{}",
        trace(&v)
    );
}

#[test]
fn an_unsigned_image_stays_denied_with_forged_summaries() {
    need_tools!();
    let reg = registry();
    let host = reg.host();
    let dir = TempDir::new("custody-attest-forged");
    let (private, public) = keypair(&dir.0, "attestor");
    let (stranger_private, _) = keypair(&dir.0, "stranger");
    let policy = write_policy(&dir.0, "policy.yaml", &summaries_block(&public, "1h", None));
    let loaded = load_file(&policy).unwrap();
    let key = signing_key(&private);
    let stranger = signing_key(&stranger_private);
    let c = client(&host);
    let app = format!("{host}/demo/app@{}", digest("demo/app"));
    let unsigned = format!("{host}/demo/unsigned@{}", digest("demo/unsigned"));
    let good = do_attest(
        &c,
        &loaded,
        &key,
        &request(&app, "production", DEFAULT_VERIFIER_ID, false),
        now(),
    );

    // 1. The app's genuine summary attached to the unsigned image.
    push_envelope(&c, &unsigned, &good.envelope_bytes);
    // 2. A summary for the unsigned image, signed by a key the policy does not trust.
    let mut forged = good.statement.clone();
    let d: custody::reference::Digest = digest("demo/unsigned").parse().unwrap();
    forged.subject[0].name = format!("{host}/demo/unsigned");
    forged.subject[0].digest = custody::attest::vsa::digest_set(&d);
    forged.predicate.resource_uri = format!("oci://{unsigned}");
    push_envelope(
        &c,
        &unsigned,
        &Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &forged.to_bytes(), &stranger)
            .unwrap()
            .to_bytes(),
    );
    let (v, _) = judged(&c, &loaded, &unsigned, "production", now());
    assert_eq!(v.decision, VerdictDecision::Deny, "{}", v.to_text());
    assert!(!v.admit);
    assert!(
        v.reasons.iter().any(|r| r.check == "authorities"),
        "{}",
        v.to_text()
    );
    let t = trace(&v);
    assert!(
        t.contains("(summary-subject)") && t.contains("(summary-signature)"),
        "{t}"
    );
    // attest refuses it too.
    let e = rt()
        .block_on(attest(
            &c,
            &loaded,
            &key,
            &request(&unsigned, "production", DEFAULT_VERIFIER_ID, false),
            now(),
        ))
        .unwrap_err();
    assert!(e.to_string().contains("deny"), "{e}");
}

// ------------------------------------------------------------------ custody verify --policy ----

/// `custody verify --policy … --output json`: (exit code, verdict).
fn cli_verdict(reference: &str, policy: &Path, host: &str, extra: &[&str]) -> (i32, Value) {
    let mut args = vec![
        "verify",
        reference,
        "--policy",
        policy.to_str().unwrap(),
        "--env",
        "production",
        "--insecure-registry",
        host,
        "--output",
        "json",
    ];
    args.extend(extra);
    let (code, stdout, stderr) = custody(&args);
    let v: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (code, v)
}

/// `custody policy explain`: its numbered evaluation steps (the verdict's trace).
fn cli_explain(reference: &str, policy: &Path, host: &str) -> String {
    let (code, stdout, stderr) = custody(&[
        "policy",
        "explain",
        reference,
        "--policy",
        policy.to_str().unwrap(),
        "--env",
        "production",
        "--insecure-registry",
        host,
    ]);
    assert!(code == 0 || code == 1, "{stdout}\n{stderr}");
    stdout
}

fn took_the_fast_path(v: &Value) -> bool {
    let evidence = v["evidence"].as_array().unwrap();
    evidence.len() == 1
        && evidence[0]["acceptedBy"] == serde_json::json!(["verification summary key ci-attestor"])
        && evidence[0]["predicateType"] == "https://slsa.dev/verification_summary/v1"
}

#[test]
fn cli_verify_with_a_policy_takes_the_summary_fast_path_and_falls_back_on_a_refused_summary() {
    need_tools!();
    let reg = registry();
    let host = reg.host();
    let dir = TempDir::new("custody-attest-cli-fast");
    let (private, public) = keypair(&dir.0, "attestor");
    let policy = write_policy(&dir.0, "policy.yaml", &summaries_block(&public, "1h", None));
    let edited = write_policy(
        &dir.0,
        "edited.yaml",
        &format!(
            "{}# edited after the summary was made\n",
            summaries_block(&public, "1h", None)
        ),
    );
    let loaded = load_file(&policy).unwrap();
    let key = signing_key(&private);
    let c = client(&host);
    let app = format!("{host}/demo/app@{}", digest("demo/app"));
    let saved = tag_index(&c, &app);

    // No summary yet: full verification, after looking for one.
    let (code, v) = cli_verdict(&app, &policy, &host, &[]);
    assert_eq!(code, 0, "{v:#}");
    assert!(!took_the_fast_path(&v), "{v:#}");
    let full_requests = v["httpRequests"].as_u64().unwrap();
    assert!(cli_explain(&app, &policy, &host).contains("verification summary: none attached"),);

    // A fresh summary from the trusted key: the verdict's one piece of evidence.
    let made = do_attest(
        &c,
        &loaded,
        &key,
        &request(&app, "production", DEFAULT_VERIFIER_ID, true),
        now(),
    );
    let pushed = made.pushed.unwrap();
    let (code, v) = cli_verdict(&app, &policy, &host, &[]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["decision"], "allow");
    assert!(took_the_fast_path(&v), "{v:#}");
    assert_eq!(
        v["evidence"][0]["digest"],
        pushed.envelope_digest.to_string()
    );
    assert_eq!(v["rule"], "production");
    let fast_requests = v["httpRequests"].as_u64().unwrap();
    assert!(
        fast_requests <= 4 && fast_requests < full_requests,
        "fast {fast_requests}, full {full_requests}"
    );
    let explained = cli_explain(&app, &policy, &host);
    assert!(
        explained.contains("full verification skipped"),
        "{explained}"
    );
    // --platforms: a summary speaks for one digest only, so it is not used.
    let (code, v) = cli_verdict(&app, &policy, &host, &["--platforms"]);
    assert_eq!(code, 0, "{v:#}");
    assert!(!took_the_fast_path(&v), "{v:#}");

    // A summary made under another policy: refused, full verification decides.
    let (code, v) = cli_verdict(&app, &edited, &host, &[]);
    assert_eq!(code, 0, "{v:#}");
    assert!(!took_the_fast_path(&v), "{v:#}");
    assert!(v["evidence"].as_array().unwrap().len() > 1, "{v:#}");
    let explained = cli_explain(&app, &edited, &host);
    assert!(
        explained.contains("(summary-policy-digest)")
            && explained.contains("full verification follows")
            && !explained.contains("full verification skipped"),
        "{explained}"
    );

    // A stale one (made two hours ago, maxAge 1h): refused, full verification decides.
    restore_index(&c, &saved);
    let old = do_attest(
        &c,
        &loaded,
        &key,
        &request(&app, "production", DEFAULT_VERIFIER_ID, false),
        now() - jiff::SignedDuration::from_hours(2),
    );
    push_envelope(&c, &app, &old.envelope_bytes);
    let (code, v) = cli_verdict(&app, &policy, &host, &[]);
    assert_eq!(code, 0, "{v:#}");
    assert!(!took_the_fast_path(&v), "{v:#}");
    let explained = cli_explain(&app, &policy, &host);
    assert!(
        explained.contains("(summary-stale)") && explained.contains("full verification follows"),
        "{explained}"
    );

    // The app's genuine summary attached to the unsigned image does not allow it.
    let unsigned = format!("{host}/demo/unsigned@{}", digest("demo/unsigned"));
    push_envelope(&c, &unsigned, &made.envelope_bytes);
    let (code, v) = cli_verdict(&unsigned, &policy, &host, &[]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["decision"], "deny");
    assert!(!took_the_fast_path(&v), "{v:#}");
}

// ------------------------------------------------------------------ independent tools ----

#[test]
fn the_independent_verifier_accepts_custodys_summary_and_rejects_altered_ones() {
    need_tools!();
    if !python_tools() {
        return;
    }
    let reg = registry();
    let host = reg.host();
    let dir = TempDir::new("custody-attest-xverify");
    let (private, public) = keypair(&dir.0, "attestor");
    let (_, other_public) = keypair(&dir.0, "other");
    let policy = write_policy(&dir.0, "policy.yaml", "");
    let app = format!("{host}/demo/app@{}", digest("demo/app"));
    let out = dir.0.join("vsa.json");
    let (code, _, stderr) = custody(&[
        "attest",
        &app,
        "--key",
        private.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--env",
        "production",
        "--verifier-id",
        "https://ci.acme.example/custody",
        "--insecure-registry",
        &host,
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let policy_hash = custody::reference::Digest::sha256_of(&std::fs::read(&policy).unwrap());
    let verify = |envelope: &Path, key: &Path| {
        Command::new(script("vsa-verify.py"))
            .arg(envelope)
            .arg(key)
            .args([
                "--digest",
                &digest("demo/app"),
                "--name",
                &format!("{host}/demo/app"),
            ])
            .args(["--resource-uri", &format!("oci://{app}")])
            .args(["--policy-digest", &policy_hash.to_string()])
            .args([
                "--verifier-id",
                "https://ci.acme.example/custody",
                "--environment",
                "production",
            ])
            .output()
            .unwrap()
    };
    let ok = verify(&out, &public);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let report: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(report["verified"], true);
    assert_eq!(
        report["verifiedLevels"],
        serde_json::json!(["SLSA_BUILD_LEVEL_1"])
    );
    eprintln!(
        "independent verifier: {}",
        String::from_utf8_lossy(&ok.stdout)
    );

    // Another key: rejected.
    let bad = verify(&out, &other_public);
    assert_eq!(
        bad.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    // A changed payload under the old signature: rejected.
    let mut env: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = base64::Engine::decode(&b64, env["payload"].as_str().unwrap()).unwrap();
    let changed = String::from_utf8(payload)
        .unwrap()
        .replace("SLSA_BUILD_LEVEL_1", "SLSA_BUILD_LEVEL_3");
    env["payload"] = Value::String(base64::Engine::encode(&b64, changed));
    let tampered = dir.0.join("tampered.json");
    std::fs::write(&tampered, env.to_string()).unwrap();
    let bad = verify(&tampered, &public);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("signature"));
}

#[test]
fn summaries_signed_by_securesystemslib_are_accepted_or_refused_by_the_fast_path() {
    need_tools!();
    if !python_tools() {
        return;
    }
    let reg = registry();
    let host = reg.host();
    let dir = TempDir::new("custody-attest-xsign");
    let (private, public) = keypair(&dir.0, "attestor");
    let policy = write_policy(&dir.0, "policy.yaml", &summaries_block(&public, "1h", None));
    let loaded = load_file(&policy).unwrap();
    let c = client(&host);
    let app = format!("{host}/demo/app@{}", digest("demo/app"));
    let saved = tag_index(&c, &app);
    let keys: Vec<String> = loaded
        .keys
        .iter()
        .map(|k| k.content_hash().to_string())
        .collect();
    let sign = |extra: &[&str]| {
        let mut cmd = Command::new(script("vsa-sign.py"));
        cmd.args(["--key", private.to_str().unwrap()])
            .args([
                "--name",
                &format!("{host}/demo/app"),
                "--digest",
                &digest("demo/app"),
            ])
            .args(["--policy-digest", &loaded.policy.content_hash.to_string()])
            .args([
                "--trust-root-hash",
                &loaded.trust.content_hash().to_string(),
            ])
            .args(["--environment", "production"]);
        for k in &keys {
            cmd.args(["--authority-key", k]);
        }
        let out = cmd.args(extra).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };

    let accepted = sign(&[]);
    let env: Value = serde_json::from_slice(&accepted).unwrap();
    let sslib_keyid = env["signatures"][0]["keyid"].as_str().unwrap().to_owned();
    assert!(
        !sslib_keyid.starts_with("sha256:"),
        "securesystemslib's own keyid: {sslib_keyid}"
    );
    push_envelope(&c, &app, accepted.trim_ascii_end());
    let (v, requests) = judged(&c, &loaded, &app, "production", now());
    assert_eq!(v.decision, VerdictDecision::Allow);
    assert!(
        trace(&v).contains("full verification skipped"),
        "{}",
        trace(&v)
    );
    assert!(
        trace(&v).contains("https://independent.example/vsa-sign"),
        "{}",
        trace(&v)
    );
    assert!(requests <= 4, "{requests}");
    restore_index(&c, &saved);

    for (extra, code) in [
        (vec!["--result", "FAILED"], "summary-result"),
        (vec!["--time", "2020-01-01T00:00:00Z"], "summary-stale"),
        (vec!["--environment", "dev"], "summary-context"),
        (vec!["--digest", &digest("demo/keyed")], "summary-subject"),
    ] {
        let envelope = sign(&extra);
        push_envelope(&c, &app, envelope.trim_ascii_end());
        let (v, _) = judged(&c, &loaded, &app, "production", now());
        assert_eq!(v.decision, VerdictDecision::Allow, "{extra:?}");
        assert!(
            trace(&v).contains(&format!("({code})")),
            "{extra:?}: {}",
            trace(&v)
        );
        assert!(trace(&v).contains("full verification follows"));
        restore_index(&c, &saved);
    }
}
