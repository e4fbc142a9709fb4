//! The sigstore-conformance `bundle-verify` cases, run through the `custody verify-bundle` binary
//! exactly as the suite's harness would, asserting the exit status *and* the failed check.
//!
//! A right verdict for the wrong reason is a latent bug, so each rejection names the check code
//! it must fail on (`failure.check` in `--output json`). The table must list every case directory
//! and nothing else, so a new case cannot be silently skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Verified,
    /// Rejected (exit 1) by this check.
    Rejected(&'static str),
    /// Refused as unusable input (exit 2): the case's key.pub is not valid PEM.
    InputError,
}
use Expect::*;

// Notes on reasons:
// - invalid-inclusion-proof_fail: the bundle's inclusion proof has no checkpoint, which the
//   verifier requires before computing the Merkle path; the case's stale proof is never reached.
// - rekor2-timestamp-with-incorrect-time_fail: its TSA token is line-wrapped base64, which custody
//   accepts (as the Go and Python clients do), so it fails on what it tests: the certificate is
//   not valid at the (wrong) timestamped time.
// - managed-key-wrong-key_fail: the key file is not valid PEM (bad base64 padding bits); custody
//   refuses it as input (exit 2), which the conformance protocol counts as a rejection.
const CASES: &[(&str, Expect)] = &[
    (
        "bundle-empty-certificate-chain_fail",
        Rejected("certificate-chain"),
    ),
    (
        "bundle-invalid-base64-signature_fail",
        Rejected("bundle-format"),
    ),
    ("bundle-malformed-json_fail", Rejected("bundle-format")),
    ("bundle-negative-log-index_fail", Rejected("bundle-format")),
    ("bundle-unknown-version_fail", Rejected("bundle-format")),
    ("bundle-with-root-cert_fail", Rejected("certificate-chain")),
    ("checkpoint-bad-keyhint_fail", Rejected("checkpoint")),
    ("dsse-invalid-sig_fail", Rejected("signature")),
    ("dsse-mismatch-sig_fail", Rejected("log-entry-match")),
    ("happy-path-v0.1", Verified),
    ("happy-path-v0.3", Verified),
    ("incorrect-public-key_fail", Rejected("inclusion-promise")),
    (
        "intoto-expired-certificate_fail",
        Rejected("certificate-chain-trust"),
    ),
    (
        "intoto-log-entry-mismatch_fail",
        Rejected("log-entry-match"),
    ),
    (
        "intoto-missing-inclusion-proof_fail",
        Rejected("inclusion-proof"),
    ),
    (
        "intoto-set-outside-signing-cert-validity_fail",
        Rejected("certificate-chain-trust"),
    ),
    (
        "intoto-tsa-timestamp-outside-cert-validity_fail",
        Rejected("certificate-chain-trust"),
    ),
    ("intoto-with-custom-trust-root", Verified),
    ("invalid-checkpoint-signature_fail", Rejected("checkpoint")),
    ("invalid-inclusion-proof_fail", Rejected("inclusion-proof")),
    ("managed-key-and-trusted-root", Verified),
    ("managed-key-happy-path", Verified),
    ("managed-key-no-key_fail", Rejected("verification-material")),
    ("managed-key-wrong-key_fail", InputError),
    ("message-digest-mismatch_fail", Rejected("artifact-binding")),
    ("rekor2-checkpoint-cosigned", Verified),
    (
        "rekor2-checkpoint-missing-log-signature_fail",
        Rejected("bundle-format"),
    ),
    (
        "rekor2-checkpoint-missing-origin_fail",
        Rejected("bundle-format"),
    ),
    (
        "rekor2-checkpoint-missing-root-hash_fail",
        Rejected("bundle-format"),
    ),
    (
        "rekor2-checkpoint-missing-size_fail",
        Rejected("bundle-format"),
    ),
    ("rekor2-checkpoint-multiple-cosigs", Verified),
    (
        "rekor2-checkpoint-no-matching-signature_fail",
        Rejected("checkpoint"),
    ),
    ("rekor2-checkpoint-origin-not-first", Verified),
    ("rekor2-checkpoint-two-sigs-cosigned", Verified),
    ("rekor2-checkpoint-two-sigs-from-origin", Verified),
    ("rekor2-dsse-invalid-sig_fail", Rejected("signature")),
    (
        "rekor2-dsse-mismatch-envelope_fail",
        Rejected("artifact-binding"),
    ),
    ("rekor2-dsse-mismatch-sig_fail", Rejected("log-entry-match")),
    (
        "rekor2-no-inclusion-proof_fail",
        Rejected("inclusion-proof"),
    ),
    ("rekor2-no-timestamp_fail", Rejected("verified-time")),
    (
        "rekor2-timestamp-outside-trust-root-tsa-validity_fail",
        Rejected("timestamp"),
    ),
    (
        "rekor2-timestamp-outside-tsa-cert-validity_fail",
        Rejected("timestamp"),
    ),
    (
        "rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail",
        Rejected("timestamp"),
    ),
    (
        "rekor2-timestamp-untrusted-tsa-without-embedded-cert_fail",
        Rejected("timestamp"),
    ),
    ("rekor2-timestamp-with-embedded-cert", Verified),
    (
        "rekor2-timestamp-with-incorrect-time_fail",
        Rejected("certificate-chain-trust"),
    ),
    ("rekor2-timestamp-without-embedded-cert", Verified),
    ("signature-mismatch_fail", Rejected("signature")),
    ("trust-root-tsa-validity-end-inclusive", Verified),
    (
        "wrong-hashedrekord-artifact_fail",
        Rejected("artifact-binding"),
    ),
    (
        "wrong-hashedrekord-cert-and-sig_fail",
        Rejected("log-entry-match"),
    ),
    ("wrong-material_fail", Rejected("artifact-binding")),
];

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sigstore-conformance/bundle-verify")
}

fn run_case(dir: &Path) -> (i32, serde_json::Value, String) {
    let artifact = if dir.join("artifact").exists() {
        dir.join("artifact")
    } else {
        corpus().join("a.txt")
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_custody"));
    cmd.arg("verify-bundle")
        .arg("--output")
        .arg("json")
        .arg("--bundle")
        .arg(dir.join("bundle.sigstore.json"));
    if dir.join("key.pub").exists() {
        cmd.arg("--key").arg(dir.join("key.pub"));
    } else {
        cmd.args([
            "--certificate-identity",
            IDENTITY,
            "--certificate-oidc-issuer",
            ISSUER,
        ]);
    }
    if dir.join("trusted_root.json").exists() {
        cmd.arg("--trusted-root").arg(dir.join("trusted_root.json"));
    }
    cmd.arg(artifact);
    let out = cmd.output().expect("run custody");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn table_lists_every_case_exactly_once() {
    let mut dirs: Vec<String> = std::fs::read_dir(corpus())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("bundle.sigstore.json").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut listed: Vec<String> = CASES.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(dirs, listed);
    assert_eq!(dirs.len(), 52);
    for (name, expect) in CASES {
        assert_eq!(
            name.ends_with("_fail"),
            *expect != Verified,
            "{name}: _fail suffix and expectation disagree"
        );
    }
}

#[test]
fn every_conformance_case_gives_the_right_answer_for_the_right_reason() {
    let mut wrong = Vec::new();
    for (name, expect) in CASES {
        let (code, json, stderr) = run_case(&corpus().join(name));
        let ok = match expect {
            Verified => {
                code == 0 && json["verified"] == true && !json["facts"]["artifactDigest"].is_null()
            }
            Rejected(check) => {
                code == 1
                    && json["verified"] == false
                    && json["failure"]["check"] == *check
                    && !stderr.trim().is_empty()
            }
            InputError => code == 2 && stderr.contains("public key is not valid PEM"),
        };
        if !ok {
            wrong.push(format!(
                "{name}: expected {expect:?}, got exit {code}, failure {}, stderr {}",
                json["failure"],
                stderr.trim()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} case(s) wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn a_wrong_identity_or_issuer_rejects_a_good_bundle_with_both_values_named() {
    let dir = corpus().join("happy-path-v0.3");
    let out = Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(["verify-bundle", "--output", "json", "--bundle"])
        .arg(dir.join("bundle.sigstore.json"))
        .args([
            "--certificate-identity",
            "https://github.com/evil/repo/.github/workflows/x.yml@refs/heads/main",
        ])
        .args(["--certificate-oidc-issuer", "https://accounts.google.com"])
        .arg(corpus().join("a.txt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mismatches = json["failure"]["mismatches"].as_array().unwrap();
    assert_eq!(json["failure"]["stage"], "policy");
    assert_eq!(mismatches.len(), 2);
    assert_eq!(mismatches[0]["field"], "certificate-identity");
    assert_eq!(mismatches[0]["found"], IDENTITY);
    assert_eq!(mismatches[1]["field"], "certificate-oidc-issuer");
    assert_eq!(mismatches[1]["found"], ISSUER);
}

#[test]
fn digest_artifact_form_verifies_like_the_file() {
    let dir = corpus().join("happy-path-v0.3");
    let bytes = std::fs::read(corpus().join("a.txt")).unwrap();
    let digest = custody::reference::Digest::sha256_of(&bytes);
    let out = Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(["verify-bundle", "--bundle"])
        .arg(dir.join("bundle.sigstore.json"))
        .args([
            "--certificate-identity",
            IDENTITY,
            "--certificate-oidc-issuer",
            ISSUER,
        ])
        .arg(digest.to_string())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And a different digest is rejected on the artifact binding.
    let other = custody::reference::Digest::sha256_of(b"something else");
    let out = Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(["verify-bundle", "--output", "json", "--bundle"])
        .arg(dir.join("bundle.sigstore.json"))
        .args([
            "--certificate-identity",
            IDENTITY,
            "--certificate-oidc-issuer",
            ISSUER,
        ])
        .arg(other.to_string())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["failure"]["check"], "artifact-binding");
}

// ------------------------------------------------------------ identity policy flags ----

fn verify_v03(extra: &[&str]) -> (i32, serde_json::Value, String) {
    let dir = corpus().join("happy-path-v0.3");
    let out = Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(["verify-bundle", "--output", "json", "--bundle"])
        .arg(dir.join("bundle.sigstore.json"))
        .args(extra)
        .arg(corpus().join("a.txt"))
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const BASE: [&str; 4] = [
    "--certificate-identity",
    IDENTITY,
    "--certificate-oidc-issuer",
    ISSUER,
];

#[test]
fn each_claim_flag_accepts_the_true_value_and_rejects_a_false_one_naming_both() {
    // (flag, value the certificate carries, a value it does not)
    let flags: &[(&str, &str, &str)] = &[
        (
            "--certificate-github-workflow-repository",
            "sigstore-conformance/extremely-dangerous-public-oidc-beacon",
            "sigstore-conformance/other",
        ),
        (
            "--certificate-github-workflow-ref",
            "refs/heads/main",
            "refs/heads/dev",
        ),
        (
            "--certificate-github-workflow-sha",
            "c7b3dfb335f051e1c86bda4c716fac97df62ad81",
            "0000000000000000000000000000000000000000",
        ),
        (
            "--certificate-github-workflow-trigger",
            "workflow_dispatch",
            "push",
        ),
        (
            "--certificate-github-workflow-name",
            "Extremely dangerous OIDC beacon",
            "Release",
        ),
        ("--source-ref", "refs/heads/main", "refs/tags/v1"),
        (
            "--source-digest",
            "c7b3dfb335f051e1c86bda4c716fac97df62ad81",
            "c7b3dfb335f051e1c86bda4c716fac97df62ad82",
        ),
        (
            "--signer-workflow",
            "sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml",
            "sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/release.yml",
        ),
    ];
    for (flag, good, bad) in flags {
        let mut args = BASE.to_vec();
        args.extend([*flag, *good]);
        let (code, _, stderr) = verify_v03(&args);
        assert_eq!(code, 0, "{flag} {good}: {stderr}");

        let mut args = BASE.to_vec();
        args.extend([*flag, *bad]);
        let (code, json, _) = verify_v03(&args);
        assert_eq!(code, 1, "{flag} {bad} should reject");
        let m = &json["failure"]["mismatches"][0];
        assert_eq!(m["field"], flag.trim_start_matches("--"), "{flag}");
        assert!(
            m["expected"]
                .as_str()
                .unwrap()
                .contains(bad.rsplit('/').next().unwrap()),
            "{flag}: {m}"
        );
        assert!(
            m["found"].is_string(),
            "{flag}: found value must be reported"
        );
    }
}

#[test]
fn deny_self_hosted_runners_passes_a_github_hosted_signature() {
    let mut args = BASE.to_vec();
    args.push("--deny-self-hosted-runners");
    assert_eq!(verify_v03(&args).0, 0);
    // Its negative twin needs a self-hosted certificate: the managed-key bundle has no
    // certificate at all, and policy checks on it are covered in tests/verify.rs.
}

#[test]
fn regexps_are_anchored() {
    // A prefix of the identity is not a match…
    let (code, json, _) = verify_v03(&[
        "--certificate-identity-regexp",
        "https://github.com/sigstore-conformance",
        "--certificate-oidc-issuer",
        ISSUER,
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        json["failure"]["mismatches"][0]["field"],
        "certificate-identity"
    );
    // …nor is a suffix of the issuer…
    let (code, _, _) = verify_v03(&[
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer-regexp",
        "githubusercontent.com",
    ]);
    assert_eq!(code, 1);
    // …but a whole-value pattern is.
    let (code, _, stderr) = verify_v03(&[
        "--certificate-identity-regexp",
        r"https://github\.com/sigstore-conformance/.*@refs/heads/main",
        "--certificate-oidc-issuer-regexp",
        r"https://token\.actions\.githubusercontent\.com",
    ]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn all_mismatches_are_reported_not_only_the_first() {
    let (code, json, _) = verify_v03(&[
        "--certificate-identity",
        "x",
        "--certificate-oidc-issuer",
        "y",
        "--source-ref",
        "refs/heads/z",
        "--certificate-github-workflow-trigger",
        "push",
    ]);
    assert_eq!(code, 1);
    assert_eq!(json["failure"]["mismatches"].as_array().unwrap().len(), 4);
}

// ------------------------------------------------------------ usage and input errors ----

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

#[test]
fn input_errors_exit_2_with_a_reason() {
    let bundle = corpus().join("happy-path-v0.3/bundle.sigstore.json");
    let bundle = bundle.to_str().unwrap();
    let a = corpus().join("a.txt");
    let a = a.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["verify-bundle", "--bundle", bundle, a],
            "needs a certificate identity",
        ),
        (
            &[
                "verify-bundle",
                "--bundle",
                bundle,
                "--certificate-identity",
                IDENTITY,
                a,
            ],
            "needs an OIDC issuer",
        ),
        (
            &[
                "verify-bundle",
                "--bundle",
                "/nonexistent.json",
                "--certificate-identity",
                "x",
                "--certificate-oidc-issuer",
                "y",
                a,
            ],
            "cannot read bundle",
        ),
        (
            &[
                "verify-bundle",
                "--bundle",
                bundle,
                "--certificate-identity",
                "x",
                "--certificate-oidc-issuer",
                "y",
                "/nonexistent",
            ],
            "cannot read artifact",
        ),
        (
            &[
                "verify-bundle",
                "--bundle",
                bundle,
                "--certificate-identity",
                "x",
                "--certificate-oidc-issuer",
                "y",
                "sha256:abc",
            ],
            "64 lower-case hex",
        ),
        (
            &[
                "verify-bundle",
                "--bundle",
                bundle,
                "--certificate-identity-regexp",
                "(",
                "--certificate-oidc-issuer",
                "y",
                a,
            ],
            "not a valid regular expression",
        ),
        (
            &[
                "verify-bundle",
                "--bundle",
                bundle,
                "--certificate-identity",
                "x",
                "--certificate-oidc-issuer",
                "y",
                "--trusted-root",
                bundle,
                a,
            ],
            "not a valid Sigstore trusted_root.json",
        ),
        (
            &["verify-bundle", "--bundle", bundle, "--key", a, a],
            "not valid PEM",
        ),
        (
            &[
                "verify-bundle",
                "--bundle",
                bundle,
                "--key",
                a,
                "--certificate-identity",
                "x",
                a,
            ],
            "cannot be used with",
        ),
        (
            &["verify-bundle", "--bundle", bundle, "--no-such-flag", a],
            "unexpected argument",
        ),
    ];
    for (args, reason) in cases {
        let (code, _, stderr) = custody(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains(reason),
            "{args:?}: expected {reason:?} in {stderr}"
        );
    }
}

#[test]
fn trust_root_command_shows_the_embedded_roots_with_hashes() {
    let (code, out, _) = custody(&["trust-root", "--output", "json"]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["name"], "sigstore-production");
    assert!(json["contentHash"].as_str().unwrap().starts_with("sha256:"));
    assert!(!json["transparencyLogs"].as_array().unwrap().is_empty());
    let (code, staging, _) = custody(&["trust-root", "--staging"]);
    assert_eq!(code, 0);
    assert!(staging.contains("sigstore-staging"));
}
