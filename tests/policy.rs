//! The trust policy: load-time errors with positions, lint findings, every single condition of
//! the example policy failing on its own with the exact reason, properties, and the CLI end to
//! end against the real registry.
//!
//! Evidence: `deploy/policies/tests/evidence/*`, saved with `custody evidence --save` from the
//! registry fixtures (signed by sigstore-js + @sigstore/mock; see fixtures/registry/README.md).

// Tests may print and read the clock; the bans are for the library.
#![allow(clippy::disallowed_macros, clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};

use custody::Limits;
use custody::engine::{Collected, check_items, judge_policy, policy_keys, saved};
use custody::policy::{Policy, Severity, TrustRootChoice, load_policy};
use custody::reference::ImageRef;
use custody::trust::TrustRoot;
use custody::verdict::{Verdict, VerdictDecision};
use proptest::prelude::*;

const APP: &str = "sha256:062e96531192934368726e8a972be8cd35f1af0834722409465a5b8be53493bb";
const KEYED: &str = "sha256:8ab0896a375448c97d81875e14e5326fa2c597aac40f7fdaf28b4be67bd39e81";

fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/policies")
}

fn example() -> String {
    std::fs::read_to_string(policies().join("gitops.yaml")).unwrap()
}

fn resolve(rel: &str) -> Result<Vec<u8>, String> {
    std::fs::read(policies().join(rel)).map_err(|e| e.to_string())
}

fn load(text: &str) -> Policy {
    load_policy(text, &resolve).unwrap_or_else(|d| panic!("{:#?}", d))
}

fn errors(text: &str) -> Vec<(String, Option<u64>)> {
    match load_policy(text, &resolve) {
        Ok(_) => panic!("expected load errors"),
        Err(d) => d.into_iter().map(|d| (d.code.to_owned(), d.line)).collect(),
    }
}

fn trust(policy: &Policy) -> TrustRoot {
    let TrustRootChoice::File(f) = &policy.trust_root else {
        panic!("example uses a file root")
    };
    TrustRoot::from_json("fixtures", &resolve(f).unwrap(), &Limits::default()).unwrap()
}

/// Judges `image` in `env` with saved evidence `evidence`.
fn judge(policy: &Policy, image: &str, env: Option<&str>, evidence: &str) -> Verdict {
    let trust = trust(policy);
    let reference: ImageRef = image.parse().unwrap();
    let (saved_image, items) =
        saved::load(&policies().join("tests/evidence").join(evidence)).unwrap();
    let digest = reference.digest().or(saved_image.digest()).unwrap().clone();
    let img = reference.with_digest(digest.clone());
    let collected = Collected {
        reference: reference.clone(),
        image: img.clone(),
        resolved_from_tag: None,
        is_index: false,
        items: check_items(
            &items,
            &img,
            &digest,
            &trust,
            &policy_keys(policy),
            jiff::Timestamp::now(),
            &Limits::default(),
        ),
        platforms: Vec::new(),
        notes: Vec::new(),
        looked_at: Vec::new(),
    };
    judge_policy(
        &collected,
        policy,
        env,
        &trust,
        "2026-11-25T00:00:00Z".into(),
    )
}

fn app(env: &str) -> String {
    let _ = env;
    format!("registry.custody.test/demo/app@{APP}")
}

fn reasons(v: &Verdict) -> Vec<&'static str> {
    v.reasons.iter().map(|r| r.check).collect()
}

// ------------------------------------------------------------------ the example works ----

#[test]
fn the_example_policy_allows_the_release_build_in_every_environment() {
    let p = load(&example());
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    for env in ["dev", "staging", "production"] {
        let v = judge(&p, &app(env), Some(env), "app");
        assert_eq!(v.decision, VerdictDecision::Allow, "{env}: {}", v.to_text());
        assert_eq!(v.rule.as_deref(), Some(env));
        assert!(v.admit);
        assert_eq!(v.policy.content_hash, p.content_hash);
        assert!(v.evidence.iter().any(|e| !e.accepted_by.is_empty()));
    }
    let v = judge(&p, &app("production"), Some("production"), "app");
    assert!(
        v.deferred
            .iter()
            .any(|d| d.contains("\"staging\"") && d.contains("promotion gate")),
        "{:?}",
        v.deferred
    );
}

// ------------------------------------------------------------------ each condition fails alone ----

/// The example with one replacement; asserts the replacement happened.
fn mutate(from: &str, to: &str) -> Policy {
    let text = example();
    assert!(text.contains(from), "example no longer contains {from:?}");
    load(&text.replacen(from, to, 1))
}

#[test]
fn a_wrong_issuer_denies_on_authorities_naming_the_issuer_found() {
    let p = mutate(
        "issuer: https://token.actions.githubusercontent.com\n            subjectRegExp: 'https://github\\.com/custody-fixtures/[^/]+/\\.github/workflows/release\\.yml@refs/heads/main'\n            claims:\n              sourceRepositoryRef: refs/heads/main\n              runnerEnvironment",
        "issuer: https://accounts.google.com\n            subjectRegExp: 'https://github\\.com/custody-fixtures/[^/]+/\\.github/workflows/release\\.yml@refs/heads/main'\n            claims:\n              sourceRepositoryRef: refs/heads/main\n              runnerEnvironment",
    );
    let v = judge(&p, &app("production"), Some("production"), "app");
    assert_eq!(v.decision, VerdictDecision::Deny);
    assert_eq!(reasons(&v)[0], "authorities");
    assert!(v.reasons[0].found.contains("issuer: expected https://accounts.google.com, found https://token.actions.githubusercontent.com"), "{}", v.reasons[0]);
}

#[test]
fn a_wrong_subject_denies_on_authorities() {
    let p = mutate(
        "workflows/release\\.yml@refs/heads/main'\n            claims:\n              sourceRepositoryRef: refs/heads/main\n              runnerEnvironment",
        "workflows/deploy\\.yml@refs/heads/main'\n            claims:\n              sourceRepositoryRef: refs/heads/main\n              runnerEnvironment",
    );
    let v = judge(&p, &app("production"), Some("production"), "app");
    assert!(reasons(&v).contains(&"authorities"), "{}", v.to_text());
    assert!(
        v.reasons[0].found.contains("subject: expected"),
        "{}",
        v.reasons[0]
    );
}

#[test]
fn a_wrong_claim_denies_naming_the_claim() {
    let p = mutate(
        "runnerEnvironment: github-hosted",
        "runnerEnvironment: self-hosted",
    );
    let v = judge(&p, &app("production"), Some("production"), "app");
    assert!(
        v.reasons[0]
            .found
            .contains("runnerEnvironment: expected self-hosted, found github-hosted"),
        "{}",
        v.reasons[0]
    );
}

#[test]
fn a_threshold_of_two_with_one_signer_denies() {
    let p = mutate(
        "      authorities:\n        threshold: 1\n",
        "      authorities:\n        threshold: 2\n",
    );
    let v = judge(&p, &app("dev"), Some("dev"), "app");
    assert_eq!(reasons(&v), vec!["authorities"]);
    assert!(
        v.reasons[0].expected.starts_with("2 of:")
            && v.reasons[0].found.starts_with("1 authority signed"),
        "{}",
        v.reasons[0]
    );
}

#[test]
fn a_missing_attestation_type_denies_listing_what_was_found() {
    let p = mutate(
        "predicateType: slsaprovenance1\n          conditions:\n            - 'predicate.buildDefinition.externalParameters",
        "predicateType: vuln\n          conditions:\n            - 'predicate.buildDefinition.externalParameters",
    );
    let v = judge(&p, &app("staging"), Some("staging"), "app");
    assert_eq!(reasons(&v), vec!["attestation-missing"]);
    assert!(
        v.reasons[0]
            .found
            .contains("https://slsa.dev/provenance/v1"),
        "{}",
        v.reasons[0]
    );
}

#[test]
fn a_false_condition_denies_quoting_it() {
    let p = mutate(
        "startsWith(\"https://github.com/custody-fixtures/\")",
        "startsWith(\"https://github.com/other-org/\")",
    );
    let v = judge(&p, &app("production"), Some("production"), "app");
    assert_eq!(reasons(&v), vec!["attestation"]);
    assert!(
        v.reasons[0]
            .found
            .contains("startsWith(\"https://github.com/other-org/\")` is false"),
        "{}",
        v.reasons[0]
    );
}

#[test]
fn a_non_boolean_or_failing_condition_denies_never_allows() {
    let p = mutate(
        "'predicate.buildDefinition.externalParameters.workflow.path == \".github/workflows/release.yml\"'",
        "'predicate.buildDefinition.externalParameters.workflow.path'",
    );
    let v = judge(&p, &app("staging"), Some("staging"), "app");
    assert_eq!(v.decision, VerdictDecision::Deny);
    assert!(
        v.reasons[0].found.contains("not a boolean"),
        "{}",
        v.reasons[0]
    );
    let p = mutate(
        "'predicate.buildDefinition.externalParameters.workflow.path == \".github/workflows/release.yml\"'",
        "'predicate.no.such.key == 1'",
    );
    let v = judge(&p, &app("staging"), Some("staging"), "app");
    assert_eq!(v.decision, VerdictDecision::Deny);
    assert!(v.reasons[0].found.contains("failed"), "{}", v.reasons[0]);
}

#[test]
fn an_attested_sbom_requirement_denies_when_only_unsigned_sboms_exist() {
    let p = mutate("sbom: present", "sbom: attested");
    let v = judge(&p, &app("production"), Some("production"), "app");
    assert_eq!(reasons(&v), vec!["sbom"]);
    assert!(
        v.reasons[0].found.starts_with("2 unsigned SBOM(s)"),
        "{}",
        v.reasons[0]
    );
}

#[test]
fn warn_mode_reports_the_deny_and_admits() {
    let p = mutate("mode: enforce", "mode: warn");
    assert!(p.warnings.iter().any(|w| w.code == "mode-warn"));
    let v = judge(
        &p,
        &format!("registry.custody.test/demo/keyed@{KEYED}"),
        Some("production"),
        "keyed",
    );
    assert_eq!(v.decision, VerdictDecision::Deny);
    assert!(v.admit);
}

#[test]
fn reference_rules_deny_floating_tags_and_missing_digests() {
    let p = load(&example());
    let v = judge(
        &p,
        &format!("registry.custody.test/demo/app:main@{APP}"),
        Some("dev"),
        "app",
    );
    assert_eq!(reasons(&v), vec!["reference-floating-tag"]);
    let v = judge(
        &p,
        "registry.custody.test/demo/app:develop-v1.2.3-abc123-1700000000",
        Some("dev"),
        "app",
    );
    assert_eq!(
        reasons(&v),
        vec!["reference-digest", "reference-floating-tag"]
    );
    let v = judge(
        &p,
        &format!("registry.custody.test/demo/app:v1.2.3@{APP}"),
        Some("dev"),
        "app",
    );
    assert_eq!(v.decision, VerdictDecision::Allow, "{}", v.to_text());
}

#[test]
fn verdict_renderings_carry_the_reasons() {
    let p = load(&example());
    let v = judge(
        &p,
        &format!("registry.custody.test/demo/keyed@{KEYED}"),
        Some("production"),
        "keyed",
    );
    let json: serde_json::Value = serde_json::from_str(&v.to_json()).unwrap();
    assert_eq!(json["mediaType"], "application/vnd.custody.verdict.v1+json");
    assert_eq!(json["decision"], "deny");
    assert_eq!(json["policy"]["contentHash"], p.content_hash.to_string());
    assert!(
        json["trustRoot"]["contentHash"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(json["reasons"][0]["rule"], "production");
    assert!(
        json["evidence"][0]["signer"]
            .as_str()
            .unwrap()
            .starts_with("key sha256:")
    );
    let sarif: serde_json::Value = serde_json::from_str(&v.to_sarif()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), v.reasons.len());
    assert_eq!(results[0]["level"], "error");
    assert!(v.to_text().starts_with("DENY: "));
}

// ------------------------------------------------------------------ load-time errors ----

#[test]
fn load_errors_name_the_problem_and_its_line() {
    let cases: &[(&str, &str, &str, Option<u64>)] = &[
        (
            "unknown key",
            "    - name: dev\n",
            "    - name: dev\n      colour: blue\n",
            None,
        ),
        (
            "bad regexp",
            "subjectRegExp: 'https://github\\.com/custody-fixtures/.+'",
            "subjectRegExp: 'https://github.com/(unclosed'",
            None,
        ),
        (
            "CEL syntax",
            "'predicate.runDetails.builder.id.startsWith(\"https://github.com/custody-fixtures/\")'",
            "'predicate.runDetails.builder.id.startsWith('",
            None,
        ),
        (
            "CEL unknown variable",
            "'predicate.runDetails.builder.id.startsWith(\"https://github.com/custody-fixtures/\")'",
            "'secrets.token == \"x\"'",
            None,
        ),
        (
            "CEL too costly",
            "'predicate.runDetails.builder.id.startsWith(\"https://github.com/custody-fixtures/\")'",
            "'subjects.all(a, subjects.all(b, subjects.all(c, true)))'",
            None,
        ),
        (
            "api version",
            "apiVersion: custody.dev/v1",
            "apiVersion: custody.dev/v9",
            Some(6),
        ),
        (
            "unknown claim",
            "runnerEnvironment: github-hosted",
            "runnerEnvironmnet: github-hosted",
            None,
        ),
    ];
    let expected_codes = [
        "schema",
        "bad-regex",
        "cel-syntax",
        "cel-unknown-variable",
        "cel-too-costly",
        "api-version",
        "unknown-claim",
    ];
    for ((what, from, to, line), code) in cases.iter().zip(expected_codes) {
        let text = example().replacen(from, to, 1);
        assert_ne!(text, example(), "{what}: replacement did not apply");
        let errs = errors(&text);
        assert!(
            errs.iter()
                .any(|(c, l)| c == code && l.is_some() && (line.is_none() || l == line)),
            "{what}: expected {code} with a line, got {errs:?}"
        );
    }
    // The unknown key is named.
    let text = example().replacen(
        "    - name: dev\n",
        "    - name: dev\n      colour: blue\n",
        1,
    );
    let d = load_policy(&text, &resolve).unwrap_err();
    assert!(
        d[0].message.contains("unknown field `colour`"),
        "{}",
        d[0].message
    );
}

#[test]
fn structural_mistakes_are_load_errors() {
    let no_auth = "apiVersion: custody.dev/v1\nkind: TrustPolicy\nmetadata: {name: x}\nspec:\n  rules:\n    - name: a\n      images: [\"**\"]\n      authorities: {}\n";
    assert!(
        errors(no_auth)
            .iter()
            .any(|(c, l)| c == "no-authorities" && *l == Some(6))
    );
    let threshold = no_auth.replace("authorities: {}", "authorities:\n        threshold: 3\n        keyless:\n          - {name: k, issuer: i, subject: s}");
    assert!(errors(&threshold).iter().any(|(c, _)| c == "threshold"));
    let dup =
        format!("{no_auth}    - name: a\n      images: [\"x/**\"]\n      authorities: {{}}\n");
    assert!(errors(&dup).iter().any(|(c, _)| c == "duplicate-rule"));
    assert!(
        errors("spec: [")
            .iter()
            .any(|(c, l)| c == "schema" && l.is_some())
    );
    assert!(errors("apiVersion: custody.dev/v1\nkind: TrustPolicy\nmetadata: {name: x}\nspec:\n  rules: []\n").iter().any(|(c, _)| c == "no-rules"));
    let contradiction = example().replacen(
        "images: [\"docker.io/library/**\", \"quay.io/prometheus/**\"]",
        "images: [\"*/demo/**\"]",
        1,
    );
    assert!(
        errors(&contradiction)
            .iter()
            .any(|(c, _)| c == "contradiction")
    );
    let both = no_auth.replace("authorities: {}", "authorities:\n        keyless:\n          - {name: k, issuer: i, issuerRegExp: j, subject: s}");
    assert!(errors(&both).iter().any(|(c, _)| c == "authority-issuer"));
    let alias_bomb = format!(
        "a: &a [{}]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n",
        vec!["x"; 50].join(",")
    );
    assert!(!errors(&alias_bomb).is_empty());
}

#[test]
fn lint_finds_unreachable_rules_and_regexps_that_match_anything() {
    let text = example().replacen("  rules:\n", "  rules:\n    - name: catch-all\n      images: [\"**\"]\n      authorities:\n        keyless:\n          - name: anyone\n            issuerRegExp: '.*'\n            subjectRegExp: '.*'\n", 1);
    let p = load(&text);
    let codes: Vec<&str> = p.warnings.iter().map(|w| w.code).collect();
    assert!(codes.contains(&"regex-matches-anything"), "{codes:?}");
    assert_eq!(
        codes.iter().filter(|c| **c == "unreachable-rule").count(),
        3,
        "{codes:?}"
    );
    assert!(
        p.warnings
            .iter()
            .all(|w| w.severity == Severity::Warning && w.line.is_some())
    );
}

// ------------------------------------------------------------------ properties ----

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, .. ProptestConfig::default() })]

    /// Adding a rule that does not match the image, anywhere in the list, keeps an allow an allow.
    #[test]
    fn an_unrelated_rule_never_changes_an_allow(position in 0usize..4, repo in "[a-z]{3,10}", env in prop::sample::select(vec!["dev", "staging", "production"])) {
        let rule = format!("    - name: unrelated-{repo}\n      images: [\"other.example/{repo}/**\"]\n      authorities:\n        keyless:\n          - name: x\n            issuer: https://issuer.example\n            subject: someone\n");
        let text = example();
        let starts: Vec<usize> = text.match_indices("\n    - name: ").map(|(i, _)| i + 1).collect();
        let at = if position < starts.len() { starts[position] } else { text.len() };
        let mut mutated = text.clone();
        mutated.insert_str(at, &rule);
        let p = load(&mutated);
        let v = judge(&p, &app(env), Some(env), "app");
        prop_assert_eq!(v.decision, VerdictDecision::Allow, "{}", v.to_text());
    }

    /// Replacing the authority that signed by any other identity never allows.
    #[test]
    fn removing_the_matching_authority_never_allows(org in "[a-z]{4,12}", env in prop::sample::select(vec!["staging", "production"])) {
        prop_assume!(org != "custody");
        let p = load(&example().replace("custody-fixtures/[^/]+/", &format!("{org}/[^/]+/")));
        let v = judge(&p, &app(env), Some(env), "app");
        prop_assert_eq!(v.decision, VerdictDecision::Deny);
        prop_assert!(reasons(&v).contains(&"authorities"));
    }
}

// ------------------------------------------------------------------ CLI, end to end ----

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
fn cli_policy_lint_and_test() {
    let file = policies().join("gitops.yaml");
    let (code, _, stderr) = custody(&["policy", "lint", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("0 error(s), 0 warning(s)"));
    let (code, stdout, _) = custody(&[
        "policy",
        "test",
        file.to_str().unwrap(),
        "--cases",
        policies().join("tests").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("policy test: 10 passed, 0 failed"),
        "{stdout}"
    );

    let dir = common::registry::TempDir::new("custody-policy-lint");
    let bad = dir.0.join("bad.yaml");
    std::fs::write(
        &bad,
        example().replacen("mode: enforce", "mode: enforce\n  colour: blue", 1),
    )
    .unwrap();
    let (code, _, stderr) = custody(&["policy", "lint", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("bad.yaml:13:3: error[schema]: unknown field `colour`, expected one of mode, trustRoot, references, rules, verificationSummaries\n"), "{stderr}");
}

#[test]
fn cli_verify_with_policy_against_the_real_registry() {
    if !common::registry::tools_available() {
        return;
    }
    let reg = common::registry::Registry::start();
    reg.push(&["demo/app", "demo/keyed"]);
    let file = policies().join("gitops.yaml");
    let host = reg.host();
    let app = format!("{host}/demo/app:v1.0.0@{APP}");
    let (code, stdout, stderr) = custody(&[
        "verify",
        &app,
        "--policy",
        file.to_str().unwrap(),
        "--env",
        "production",
        "--insecure-registry",
        &host,
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["rule"], "production");
    assert!(v["httpRequests"].as_u64().unwrap() >= 6);

    let keyed = format!("{host}/demo/keyed@{KEYED}");
    let (code, stdout, stderr) = custody(&[
        "verify",
        &keyed,
        "--policy",
        file.to_str().unwrap(),
        "--env",
        "production",
        "--insecure-registry",
        &host,
        "--output",
        "sarif",
    ]);
    assert_eq!(code, 1, "{stderr}");
    let sarif: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let ids: Vec<&str> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ruleId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["authorities", "attestation-missing", "sbom"]);
    assert!(stderr.contains("DENY"), "{stderr}");

    let (code, stdout, _) = custody(&[
        "policy",
        "explain",
        &app,
        "--policy",
        file.to_str().unwrap(),
        "--env",
        "staging",
        "--insecure-registry",
        &host,
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("rule \"production\" does not match")
            && stdout.contains("rule \"staging\" matches"),
        "{stdout}"
    );
    assert!(
        stdout.contains("attestation \"provenance\" satisfied by"),
        "{stdout}"
    );

    // A registry that is not there: an error verdict, exit 2, never an allow.
    let gone = format!("127.0.0.1:{}/demo/app@{APP}", common::registry::free_port());
    let (code, stdout, _) = custody(&[
        "verify",
        &gone,
        "--policy",
        file.to_str().unwrap(),
        "--env",
        "dev",
        "--insecure-registry",
        gone.split('/').next().unwrap(),
        "--timeout",
        "3",
        "--output",
        "json",
    ]);
    assert_eq!(code, 2);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["decision"], "error");
    assert_eq!(v["admit"], false);
}

#[test]
fn the_published_schema_is_current_and_the_example_validates_against_it() {
    let (code, generated, _) = custody(&["policy", "schema"]);
    assert_eq!(code, 0);
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/policy.schema.json"),
    )
    .unwrap();
    assert_eq!(
        generated.trim(),
        committed.trim(),
        "docs/policy.schema.json is stale: run `custody policy schema > docs/policy.schema.json`"
    );
    let schema: serde_json::Value = serde_json::from_str(&committed).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let example: serde_json::Value = serde_saphyr::from_str(&example()).unwrap();
    let errs: Vec<String> = validator
        .iter_errors(&example)
        .map(|e| e.to_string())
        .collect();
    assert!(errs.is_empty(), "{errs:?}");
    // And the schema rejects what the loader rejects: an unknown key.
    let mut bad = example.clone();
    bad["spec"]["colour"] = serde_json::json!("blue");
    assert!(!validator.is_valid(&bad));
}

// ------------------------------------------------------------------ real-world evidence ----

mod real_world {
    use super::*;
    use custody::registry::discovery::{EvidenceItem, EvidenceKind, FoundVia};

    const GH_POLICY: &str = r#"apiVersion: custody.dev/v1
kind: TrustPolicy
metadata: {name: real-world}
spec:
  trustRoot: production
  rules:
    - name: server-image
      images: ["*/salrashid123/server_image"]
      authorities:
        keyless:
          - name: release
            issuer: https://token.actions.githubusercontent.com
            subjectRegExp: 'https://github\.com/salrashid123/go-bazel-github-workflow/\.github/workflows/release\.yaml@refs/tags/v.*'
            claims:
              sourceRepositoryRef: refs/tags/v0.0.30
              runnerEnvironment: github-hosted
"#;

    fn gh_case(policy: &str) -> Verdict {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/real-world/cosign/gh-actions-keyless-server-image");
        let case: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("case.json")).unwrap()).unwrap();
        let layer: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("layer.json")).unwrap()).unwrap();
        let payload = std::fs::read(dir.join("payload.json")).unwrap();
        let digest: custody::reference::Digest = case["digest"].as_str().unwrap().parse().unwrap();
        let item = EvidenceItem {
            kind: EvidenceKind::CosignSignature,
            media_type: layer["mediaType"].as_str().unwrap().into(),
            artifact_type: None,
            digest: custody::reference::Digest::sha256_of(&payload),
            size: payload.len() as u64,
            repository: "index.docker.io/salrashid123/server_image".into(),
            manifest_digest: digest.clone(),
            found: FoundVia::CosignTag {
                tag: format!("{}.sig", digest.to_string().replace(':', "-")),
            },
            annotations: serde_json::from_value(layer["annotations"].clone()).unwrap(),
            content: payload,
        };
        let p = load_policy(policy, &resolve).unwrap();
        let trust = match p.trust_root {
            TrustRootChoice::Staging => TrustRoot::staging().unwrap(),
            _ => TrustRoot::production().unwrap(),
        };
        let image: ImageRef = format!("index.docker.io/salrashid123/server_image@{digest}")
            .parse()
            .unwrap();
        let collected = Collected {
            reference: image.clone(),
            image: image.clone(),
            resolved_from_tag: None,
            is_index: true,
            items: check_items(
                &[item],
                &image,
                &digest,
                &trust,
                &[],
                jiff::Timestamp::now(),
                &Limits::default(),
            ),
            platforms: Vec::new(),
            notes: Vec::new(),
            looked_at: Vec::new(),
        };
        judge_policy(&collected, &p, None, &trust, "2026-11-25T00:00:00Z".into())
    }

    #[test]
    fn a_github_actions_signed_image_passes_its_policy_and_fails_each_condition_alone() {
        let v = gh_case(GH_POLICY);
        assert_eq!(v.decision, VerdictDecision::Allow, "{}", v.to_text());
        for (from, to, needle) in [
            (
                "issuer: https://token.actions.githubusercontent.com",
                "issuer: https://accounts.google.com",
                "issuer: expected",
            ),
            (
                "go-bazel-github-workflow/",
                "other-repo/",
                "subject: expected",
            ),
            (
                "sourceRepositoryRef: refs/tags/v0.0.30",
                "sourceRepositoryRef: refs/heads/main",
                "sourceRepositoryRef: expected refs/heads/main, found refs/tags/v0.0.30",
            ),
            (
                "runnerEnvironment: github-hosted",
                "runnerEnvironment: self-hosted",
                "runnerEnvironment",
            ),
        ] {
            let v = gh_case(&GH_POLICY.replacen(from, to, 1));
            assert_eq!(v.decision, VerdictDecision::Deny, "{from}");
            assert!(
                v.reasons[0].found.contains(needle),
                "{from}: {}",
                v.reasons[0]
            );
        }
        let v = gh_case(
            &GH_POLICY
                .replace(
                    "  rules:",
                    "  references:\n    requireDigest: true\n  rules:",
                )
                .replace("trustRoot: production", "trustRoot: staging"),
        );
        assert_eq!(
            v.decision,
            VerdictDecision::Deny,
            "a production signature does not verify against the staging root"
        );
    }
}
