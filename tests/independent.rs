//! custody against independent implementations.
//!
//! * Bundles signed by sigstore-js (with `@sigstore/mock` services), committed under
//!   `fixtures/independent/sigstore-js/` and, when `scripts/test` has made them, freshly signed
//!   in this run (`CUSTODY_FRESH_FIXTURES`).
//! * custody's verdicts cross-checked with sigstore-python's on the conformance cases and the
//!   sigstore-js bundles (`CUSTODY_XCHECK_TSV`, `CUSTODY_XCHECK_JS_TSV`, written by
//!   `scripts/independent/xcheck-python.sh`).
//!
//! The environment-driven tests need tools installed from npm/PyPI; `scripts/test` provides
//! them. Run bare (`cargo test`) they skip with a message, but under `CI=true` a missing input
//! is a failure, so CI cannot go green without actually running the cross-checks.

// Tests and benches may print and read the clock; the bans are for the library.
#![allow(clippy::disallowed_macros, clippy::disallowed_methods)]

use std::path::{Path, PathBuf};

use custody::Limits;
use custody::evidence::parse_bundle;
use custody::policy::{IdentityPolicy, Matcher};
use custody::trust::TrustRoot;
use custody::verify::{ArtifactInput, verify_bundle};
use serde_json::Value;

const CONFORMANCE_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// Cases where custody and sigstore-python 4.5.1 knowingly disagree, with the reason.
const KNOWN_DISAGREEMENTS: &[(&str, &str)] = &[(
    "trust-root-tsa-validity-end-inclusive",
    "sigstore-python treats a TSA's validFor.end as exclusive; the conformance suite (and custody) treat it as inclusive",
)];

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The value of an environment variable the test script sets, or `None` (skip) outside CI.
fn required_env(name: &str) -> Option<PathBuf> {
    match std::env::var_os(name) {
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{name} is not set: run the tests through scripts/test")
        }
        #[allow(clippy::disallowed_macros)] // tests may speak
        _ => {
            eprintln!(
                "skipping: {name} is not set (scripts/test sets it after installing the peer tools)"
            );
            None
        }
    }
}

/// custody's verdict on one case: `Ok(())` verified, `Err(reason)` rejected.
fn custody_verdict(
    bundle: &Path,
    artifact: &Path,
    trusted_root: &Path,
    key: Option<&Path>,
    identity: &str,
    issuer: &str,
) -> Result<(), String> {
    let limits = Limits::default();
    let trust = TrustRoot::from_json("case", &std::fs::read(trusted_root).unwrap(), &limits)
        .map_err(|e| e.to_string())?;
    let key = match key {
        Some(k) => Some(
            custody::trust::StaticKey::from_pem(&std::fs::read(k).unwrap(), &limits)
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let parsed =
        parse_bundle(&std::fs::read(bundle).unwrap(), &limits).map_err(|e| e.to_string())?;
    let art = std::fs::read(artifact).unwrap();
    // Fresh bundles are signed during the test run, so verify at the real current time.
    #[allow(clippy::disallowed_methods)]
    let now = jiff::Timestamp::now();
    let facts = verify_bundle(
        &parsed,
        ArtifactInput::Bytes(&art),
        &trust,
        key.as_ref(),
        now,
        &limits,
    )
    .map_err(|e| e.to_string())?;
    if key.is_none() {
        let policy = IdentityPolicy {
            identity: Some(Matcher::Exact(identity.into())),
            issuer: Some(Matcher::Exact(issuer.into())),
            ..IdentityPolicy::default()
        };
        policy.evaluate(&facts).map_err(|m| format!("{m:?}"))?;
    }
    Ok(())
}

/// Runs every case of a manifest (`fixtures/independent/*` layout) and returns the failures.
fn check_manifest(dir: &Path) -> Vec<String> {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let root = dir.join(manifest["trusted_root"].as_str().unwrap());
    let cases = manifest["cases"].as_array().unwrap();
    assert!(cases.len() >= 10, "manifest has too few cases");
    let mut wrong = Vec::new();
    for c in cases {
        let s = |k: &str| c[k].as_str().unwrap();
        let got = custody_verdict(
            &dir.join(s("bundle")),
            &dir.join(s("artifact")),
            &root,
            None,
            s("identity"),
            s("issuer"),
        );
        let ok = match s("expected") {
            "verified" => got.is_ok(),
            "rejected" => got.as_ref().is_err_and(|why| !why.is_empty()),
            other => panic!("unknown expectation {other}"),
        };
        if !ok {
            wrong.push(format!(
                "{}: expected {}, got {got:?} ({})",
                s("name"),
                s("expected"),
                s("why")
            ));
        }
    }
    wrong
}

#[test]
fn committed_sigstore_js_bundles_get_the_verdicts_their_manifest_expects() {
    let wrong = check_manifest(&manifest_dir().join("fixtures/independent/sigstore-js"));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn freshly_signed_sigstore_js_bundles_get_the_expected_verdicts() {
    let Some(dir) = required_env("CUSTODY_FRESH_FIXTURES") else {
        return;
    };
    let wrong = check_manifest(&dir);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Reads `case<TAB>verdict<TAB>reason` lines.
fn read_tsv(path: &Path) -> Vec<(String, String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut parts = l.splitn(3, '\t');
            let mut next = || parts.next().unwrap_or_default().to_owned();
            (next(), next(), next())
        })
        .collect()
}

#[test]
fn sigstore_python_agrees_on_every_conformance_case_both_support() {
    let Some(tsv) = required_env("CUSTODY_XCHECK_TSV") else {
        return;
    };
    let corpus = manifest_dir().join("fixtures/sigstore-conformance/bundle-verify");
    let production = manifest_dir().join("trust-roots/sigstore-public-good.trusted_root.json");
    let rows = read_tsv(&tsv);
    assert_eq!(
        rows.len(),
        52,
        "sigstore-python did not report on every case"
    );
    let mut compared = 0;
    let mut disagreements = Vec::new();
    for (case, python, reason) in &rows {
        if python == "unsupported" {
            continue;
        }
        let dir = corpus.join(case);
        let artifact = if dir.join("artifact").exists() {
            dir.join("artifact")
        } else {
            corpus.join("a.txt")
        };
        let root = if dir.join("trusted_root.json").exists() {
            dir.join("trusted_root.json")
        } else {
            production.clone()
        };
        let key = dir.join("key.pub");
        let ours = custody_verdict(
            &dir.join("bundle.sigstore.json"),
            &artifact,
            &root,
            key.exists().then_some(key.as_path()),
            CONFORMANCE_IDENTITY,
            GITHUB_ISSUER,
        );
        compared += 1;
        let ours = if ours.is_ok() { "verified" } else { "rejected" };
        if ours != python {
            disagreements.push((
                case.clone(),
                format!("custody {ours}, sigstore-python {python} ({reason})"),
            ));
        }
    }
    assert!(compared >= 40, "only {compared} cases were comparable");
    let unexpected: Vec<_> = disagreements
        .iter()
        .filter(|(c, _)| !KNOWN_DISAGREEMENTS.iter().any(|(k, _)| k == c))
        .collect();
    assert!(
        unexpected.is_empty(),
        "unexpected disagreements: {unexpected:#?}"
    );
    // A listed disagreement that disappeared means sigstore-python changed: update the list.
    for (known, why) in KNOWN_DISAGREEMENTS {
        assert!(
            disagreements.iter().any(|(c, _)| c == known),
            "{known} no longer disagrees ({why}): remove it from the list"
        );
    }
}

#[test]
fn sigstore_python_agrees_on_the_sigstore_js_bundles() {
    let Some(tsv) = required_env("CUSTODY_XCHECK_JS_TSV") else {
        return;
    };
    let dir = required_env("CUSTODY_FRESH_FIXTURES")
        .unwrap_or_else(|| manifest_dir().join("fixtures/independent/sigstore-js"));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let root = dir.join(manifest["trusted_root"].as_str().unwrap());
    let rows = read_tsv(&tsv);
    assert!(rows.len() >= 10);
    for (case, python, reason) in rows {
        let c = manifest["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == case.as_str())
            .unwrap();
        let s = |k: &str| c[k].as_str().unwrap();
        let ours = custody_verdict(
            &dir.join(s("bundle")),
            &dir.join(s("artifact")),
            &root,
            None,
            s("identity"),
            s("issuer"),
        );
        let ours = if ours.is_ok() { "verified" } else { "rejected" };
        assert_eq!(
            ours, python,
            "{case}: sigstore-python says {python} ({reason})"
        );
    }
}
