//! Bad input to the promotion gate: each gets a clear error and a failed check (or exit 2),
//! never a pass.

use std::process::Command;

use crate::common::registry::{TempDir, tools_available};
use crate::support::{
    CONFIG, Delivery, OLD, OLDER, changes, digest, finding_rules, registry, rules,
};

/// A repository whose checks never reach a registry (nothing to verify).
fn offline() -> Delivery {
    let d = Delivery::new("127.0.0.1:9", CONFIG);
    d.write("env/dev/values.yaml", &d.values(OLD));
    d.write("env/staging/values.yaml", &d.values(OLD));
    d.write("env/prod/values.yaml", &d.values(OLDER));
    d.commit("base");
    d.branch("pr");
    d
}

#[test]
fn unparseable_yaml_fails_with_file_and_line() {
    let d = offline();
    d.write(
        "env/staging/values.yaml",
        "app:\n  image:\n    ref: [unclosed\n  other: 1\n",
    );
    d.commit("broken yaml");
    let (code, report, all) = d.check(&[]);
    assert_eq!(code, 1, "{all}");
    let f = &report["findings"][0];
    assert_eq!(f["rule"], "yaml-syntax");
    assert_eq!(f["file"], "env/staging/values.yaml");
    assert!(f["line"].as_u64().unwrap() >= 3, "{f:#}");
    assert_eq!(report["passed"], false);
}

#[test]
fn duplicate_keys_fail_naming_both_lines() {
    let d = offline();
    d.write(
        "env/staging/values.yaml",
        &format!(
            "app:\n  image:\n    ref: {}\n    ref: {}\n",
            d.image("app", OLD),
            d.image("app", OLDER)
        ),
    );
    d.commit("duplicate key");
    let (code, report, all) = d.check(&[]);
    assert_eq!(code, 1, "{all}");
    let f = &report["findings"][0];
    assert_eq!(f["rule"], "yaml-syntax");
    assert_eq!(f["line"], 4);
    assert!(
        f["message"].as_str().unwrap().contains("first at line 3"),
        "{f:#}"
    );
}

#[test]
fn a_revision_that_does_not_exist_is_an_error_not_a_pass() {
    let d = offline();
    let (code, out, err) = d.custody(&["gitops", "check", "--base", "no-such-branch"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("no-such-branch"), "{err}");
    let (code, _, err) = d.custody(&["gitops", "check", "--base", "main", "--head", "deadbeef"]);
    assert_eq!(code, 2);
    assert!(err.contains("deadbeef"), "{err}");
    // An option-looking revision is refused before git sees it.
    let (code, _, err) = d.custody(&["gitops", "check", "--base=--output=/tmp/x"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_directory_that_is_not_a_repository_is_an_error() {
    let dir = TempDir::new("custody-not-a-repo");
    let out = Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(["gitops", "check", "--base", "main"])
        .arg(&dir.0)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
}

#[test]
fn a_missing_or_broken_config_is_an_error() {
    let d = offline();
    d.git(&["checkout", "-q", "main"]);
    std::fs::remove_file(d.path().join("custody-gitops.yaml")).unwrap();
    d.commit("drop config");
    d.git(&["checkout", "-q", "pr"]);
    d.git(&["rebase", "-q", "main"]);
    let (code, _, err) = d.custody(&["gitops", "check", "--base", "main"]);
    assert_eq!(code, 2);
    assert!(err.contains("custody-gitops.yaml"), "{err}");
    // The pull request adds it back: still read from the base, so still an error, saying why.
    d.write("custody-gitops.yaml", CONFIG);
    d.commit("add config in the PR");
    let (code, _, err) = d.custody(&["gitops", "check", "--base", "main"]);
    assert_eq!(code, 2);
    assert!(err.contains("added by this change"), "{err}");
}

#[test]
fn a_config_change_in_the_pull_request_does_not_judge_it() {
    let d = offline();
    // The PR declares prod auto-updated and pushes a new digest straight there.
    d.write(
        "custody-gitops.yaml",
        &CONFIG.replace(
            "policyEnvironment: production",
            "policyEnvironment: production\n    autoUpdate: true",
        ),
    );
    d.write(
        "env/prod/values.yaml",
        &d.values(OLD.replace('1', "3").as_str()),
    );
    d.commit("loosen config and push to prod");
    let (code, report, all) = d.check(&[]);
    assert_eq!(code, 1, "{all}");
    assert_eq!(rules(changes(&report, "prod")[0])[0], "not-from-source");
    assert!(
        report["notes"][0]
            .as_str()
            .unwrap()
            .contains("base revision's config"),
        "{report:#}"
    );
}

#[test]
fn an_environment_missing_from_the_config_is_named() {
    let d = offline();
    let (code, _, err) = d.custody_raw(&["gitops", "promote", "staging", "qa", "."]);
    assert_eq!(code, 2);
    assert!(
        err.contains("qa") && err.contains("dev, staging, prod"),
        "{err}"
    );
    // Files outside every environment's paths are not environment files: not checked, and a
    // config typo that leaves an environment without files is visible in lint's count.
    d.write("env/qa/values.yaml", &d.values(OLD));
    let (code, out, _) = d.custody_raw(&["gitops", "lint", "."]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("3 files scanned"), "{out}");
}

#[test]
fn a_shallow_clone_fails_closed_when_history_is_needed() {
    if !tools_available() {
        return;
    }
    let reg = registry();
    let d = Delivery::new(&reg.host(), CONFIG);
    let a = digest("demo/app");
    d.write("env/staging/values.yaml", &d.values(&a));
    d.write("env/prod/values.yaml", &d.values(&a));
    d.commit("prod ran A");
    for i in 0..3 {
        d.write("env/staging/values.yaml", &d.values(OLD));
        d.write("env/prod/values.yaml", &d.values(OLD));
        d.write("env/dev/note.yaml", &format!("n: {i}\n"));
        d.commit("moved on");
    }
    d.branch("revert");
    d.write("env/prod/values.yaml", &d.values(&a));
    d.commit("roll back prod to A");
    // The full clone sees the rollback.
    let (code, report, all) = d.check(&[]);
    assert_eq!(code, 0, "{all}");
    assert_eq!(changes(&report, "prod")[0]["kind"], "rollback");
    // A shallow clone of the pull request cannot tell: it says so and fails.
    let shallow = TempDir::new("custody-shallow");
    let url = format!("file://{}", d.path().display());
    let out = Command::new("git")
        .args(["clone", "-q", "--depth", "2", "--no-single-branch", &url])
        .arg(&shallow.0)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_custody"))
        .args([
            "gitops",
            "check",
            "--base",
            "origin/main",
            "--head",
            "origin/revert",
            "--output",
            "json",
        ])
        .arg(&shallow.0)
        .args(["--insecure-registry", &reg.host()])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{report:#} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = changes(&report, "prod");
    assert_eq!(rules(c[0]), ["history-unavailable"]);
    assert!(
        c[0]["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("fetch-depth: 0"),
        "{c:#?}"
    );
}

#[test]
fn binary_files_in_an_environment_fail() {
    let d = offline();
    d.write(
        "env/staging/values.yaml",
        "app:\n  image:\n    ref: \u{0}\u{1}\u{2}\n",
    );
    d.commit("binary");
    let (code, report, all) = d.check(&[]);
    assert_eq!(code, 1, "{all}");
    assert_eq!(finding_rules(&report), ["unreadable-file"]);
}

#[cfg(unix)]
#[test]
fn symlinks_are_never_followed() {
    let d = offline();
    let outside = TempDir::new("custody-outside");
    std::fs::write(
        outside.0.join("values.yaml"),
        format!("app:\n  image:\n    ref: {}/demo/app:latest\n", d.host),
    )
    .unwrap();
    std::fs::remove_file(d.path().join("env/staging/values.yaml")).unwrap();
    std::os::unix::fs::symlink(
        outside.0.join("values.yaml"),
        d.path().join("env/staging/values.yaml"),
    )
    .unwrap();
    d.commit("staging values from outside the repository");
    let (code, report, all) = d.check(&[]);
    assert_eq!(code, 1, "{all}");
    let f = &report["findings"][0];
    assert_eq!(f["rule"], "symlink");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("outside the repository")
    );
    // The link's target was not read: its floating tag is not reported, nothing was verified.
    assert!(!all.contains("latest"), "{all}");
    assert_eq!(report["registryRequests"], 0);
    // lint on the work tree does not follow it either.
    let (code, out, _) = d.custody_raw(&["gitops", "lint", ".", "--output", "json"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("\"symlink\"") && !out.contains("latest"),
        "{out}"
    );
}

#[test]
fn a_reference_in_an_unexpected_place_is_still_checked() {
    let d = offline();
    d.write(
        "env/staging/values.yaml",
        &format!(
            "{}env:\n  - name: SIDECAR\n    value: {}/demo/app:develop@{}\n",
            d.values(OLD),
            d.host,
            OLD
        ),
    );
    d.commit("sidecar in an env var");
    let (code, report, all) = d.check(&[]);
    assert_eq!(code, 1, "{all}");
    let fr = finding_rules(&report);
    assert!(fr.contains(&"unexpected-reference".to_owned()), "{fr:?}");
    assert!(fr.contains(&"reference-floating-tag".to_owned()), "{fr:?}");
}
