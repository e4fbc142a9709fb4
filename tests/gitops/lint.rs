//! `custody gitops lint [PATH]` on real work trees: exit codes (0 clean or warnings only, 1 an
//! error finding, 2 could not lint), every output format, and `--summary`. No registry: lint
//! never asks one.

use std::process::Command;

use serde_json::Value;

use crate::common::registry::TempDir;
use crate::support::{CONFIG, Delivery, OLD, OLDER};

/// A repository with the config and nothing else (the host is never contacted).
fn repo() -> Delivery {
    Delivery::new("127.0.0.1:9", CONFIG)
}

/// `custody gitops lint . <args>` in the repository.
fn lint(d: &Delivery, args: &[&str]) -> (i32, String, String) {
    d.custody_raw(&[&["gitops", "lint", "."][..], args].concat())
}

/// A clean repository: one pinned `image.ref` in each environment.
fn clean() -> Delivery {
    let d = repo();
    d.write("env/dev/values.yaml", &d.values(OLD));
    d.write("env/staging/values.yaml", &d.values(OLD));
    d.write("env/prod/values.yaml", &d.values(OLDER));
    d.commit("clean");
    d
}

/// Two error findings: prod's pullPolicy (line 6, column 17) and staging's floating tag
/// (line 5, column 10).
fn two_findings() -> Delivery {
    let d = clean();
    d.write(
        "env/prod/values.yaml",
        &d.values(OLDER)
            .replace("pullPolicy: IfNotPresent", "pullPolicy: Always"),
    );
    d.write(
        "env/staging/values.yaml",
        &d.values(OLD).replace("/demo/app@", "/demo/app:latest@"),
    );
    d
}

fn findings(report: &Value) -> Vec<(String, String, u64, u64, String)> {
    report["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings in {report:#}"))
        .iter()
        .map(|f| {
            (
                f["file"].as_str().unwrap().to_owned(),
                f["rule"].as_str().unwrap().to_owned(),
                f["line"].as_u64().unwrap(),
                f["column"].as_u64().unwrap(),
                f["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn expected_two() -> Vec<(String, String, u64, u64, String)> {
    vec![
        (
            "env/prod/values.yaml".into(),
            "pull-policy".into(),
            6,
            17,
            "error".into(),
        ),
        (
            "env/staging/values.yaml".into(),
            "reference-floating-tag".into(),
            5,
            10,
            "error".into(),
        ),
    ]
}

#[test]
fn a_clean_repository_exits_0() {
    let d = clean();
    let (code, out, err) = lint(&d, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("PASS: 0 changes allowed, 0 findings"),
        "{out}"
    );
    assert!(
        out.contains("note: 3 files scanned, 3 image references"),
        "{out}"
    );
    assert!(!out.contains("error["), "{out}");
    assert!(err.is_empty(), "{err}");
    let (code, out, _) = lint(&d, &["--output", "json"]);
    assert_eq!(code, 0, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["passed"], true);
    assert_eq!(report["findings"], Value::Array(Vec::new()));
    assert_eq!(
        report["mediaType"],
        "application/vnd.custody.promotion-check.v1+json"
    );
    assert_eq!(report["registryRequests"], 0);
    // An explicit path works the same as the current directory.
    let (code, out, _) = d.custody_raw(&["gitops", "lint", d.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn text_output_lists_each_finding_as_file_line_col_severity_rule() {
    let d = two_findings();
    let (code, out, err) = lint(&d, &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("FAIL: "), "{out}");
    assert!(out.contains("2 findings"), "{out}");
    assert!(
        out.contains("env/prod/values.yaml:6:17: error[pull-policy]: "),
        "{out}"
    );
    assert!(
        out.contains("env/staging/values.yaml:5:10: error[reference-floating-tag]: "),
        "{out}"
    );
    // In file order, each with its fix.
    let prod = out.find("env/prod/values.yaml:6:17").unwrap();
    let staging = out.find("env/staging/values.yaml:5:10").unwrap();
    assert!(prod < staging, "{out}");
    assert_eq!(out.matches("(fix: ").count(), 2, "{out}");
    // dev is clean and not mentioned.
    assert!(!out.contains("env/dev/"), "{out}");
}

#[test]
fn json_output_parses_and_lists_both_findings() {
    let d = two_findings();
    let (code, out, err) = lint(&d, &["--output", "json"]);
    assert_eq!(code, 1, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["passed"], false);
    assert_eq!(findings(&report), expected_two());
    assert!(
        report["findings"][1]["message"]
            .as_str()
            .unwrap()
            .contains(":latest@"),
        "{report:#}"
    );
    assert!(
        report["findings"][0]["fix"]
            .as_str()
            .unwrap()
            .contains("IfNotPresent")
    );
    assert_eq!(report["changes"], Value::Array(Vec::new()));
    assert!(report.get("base").is_none() && report.get("head").is_none());
}

#[test]
fn sarif_output_parses_with_two_results() {
    let d = two_findings();
    let (code, out, err) = lint(&d, &["--output", "sarif"]);
    assert_eq!(code, 1, "{out}{err}");
    let sarif: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{sarif:#}");
    let got: Vec<(&str, &str, &str, u64, u64)> = results
        .iter()
        .map(|r| {
            let loc = &r["locations"][0]["physicalLocation"];
            (
                r["ruleId"].as_str().unwrap(),
                r["level"].as_str().unwrap(),
                loc["artifactLocation"]["uri"].as_str().unwrap(),
                loc["region"]["startLine"].as_u64().unwrap(),
                loc["region"]["startColumn"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("pull-policy", "error", "env/prod/values.yaml", 6, 17),
            (
                "reference-floating-tag",
                "error",
                "env/staging/values.yaml",
                5,
                10
            ),
        ]
    );
    // Each rule is described once, and results point at it.
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2);
    for r in results {
        let i = usize::try_from(r["ruleIndex"].as_u64().unwrap()).unwrap();
        assert_eq!(rules[i]["id"], r["ruleId"]);
    }
    assert_eq!(run["properties"]["passed"], false);
}

#[test]
fn github_output_is_one_error_command_per_finding() {
    let d = two_findings();
    let (code, out, err) = lint(&d, &["--output", "github"]);
    assert_eq!(code, 1, "{out}{err}");
    let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("::error ")).collect();
    assert_eq!(errors.len(), 2, "{out}");
    assert!(
        errors[0].starts_with(
            "::error file=env/prod/values.yaml,line=6,col=17,title=custody pull-policy::"
        ),
        "{out}"
    );
    assert!(
        errors[1].starts_with(
            "::error file=env/staging/values.yaml,line=5,col=10,title=custody reference-floating-tag::"
        ),
        "{out}"
    );
    // Every line is a workflow command; the scan count is a notice.
    assert!(out.lines().all(|l| l.starts_with("::")), "{out}");
    assert!(
        out.contains("::notice title=custody note::3 files scanned"),
        "{out}"
    );
    assert!(!out.contains("::warning"), "{out}");
}

#[test]
fn markdown_output_has_the_verdict_and_a_findings_list() {
    let d = two_findings();
    let (code, out, err) = lint(&d, &["--output", "markdown"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.starts_with("## ❌ custody: promotion check failed\n"),
        "{out}"
    );
    assert!(out.contains("2 findings (2 errors, 0 warnings)"), "{out}");
    assert!(out.contains("### Findings\n"), "{out}");
    let items: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("- ❌ error "))
        .collect();
    assert_eq!(items.len(), 2, "{out}");
    assert!(
        items[0].contains("<code>pull-policy</code> at <code>env/prod/values.yaml:6</code>"),
        "{out}"
    );
    assert!(
        items[1].contains(
            "<code>reference-floating-tag</code> at <code>env/staging/values.yaml:5</code>"
        ),
        "{out}"
    );
    // lint compares nothing: no change table.
    assert!(out.contains("No image reference changed."), "{out}");
    assert!(!out.contains("| Environment |"), "{out}");
}

#[test]
fn summary_appends_markdown_whatever_the_output() {
    let d = two_findings();
    let dir = TempDir::new("custody-lint-summary");
    let summary = dir.0.join("step-summary.md");
    std::fs::write(&summary, "# earlier step\n").unwrap();
    let s = summary.to_str().unwrap();
    let (code, out, err) = lint(&d, &["--output", "json", "--summary", s]);
    assert_eq!(code, 1, "{out}{err}");
    // stdout is still the JSON report.
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(findings(&report), expected_two());
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(
        text.starts_with("# earlier step\n## ❌ custody: promotion check failed"),
        "{text}"
    );
    assert!(text.contains("<code>pull-policy</code>"), "{text}");
    // Appended, not replaced.
    let (code, _, _) = lint(&d, &["--summary", s]);
    assert_eq!(code, 1);
    let text = std::fs::read_to_string(&summary).unwrap();
    assert_eq!(
        text.matches("## ❌ custody: promotion check failed")
            .count(),
        2
    );
    assert!(text.starts_with("# earlier step\n"), "{text}");
    // A clean repository writes a passing summary (created if missing).
    let c = clean();
    let fresh = dir.0.join("fresh.md");
    let (code, _, _) = lint(&c, &["--summary", fresh.to_str().unwrap()]);
    assert_eq!(code, 0);
    let text = std::fs::read_to_string(&fresh).unwrap();
    assert!(
        text.starts_with("## ✅ custody: promotion check passed"),
        "{text}"
    );
    assert!(!text.contains("### Findings"), "{text}");
}

#[test]
fn a_summary_that_cannot_be_written_exits_2() {
    let d = clean();
    let dir = TempDir::new("custody-lint-summary-dir");
    let (code, out, err) = lint(&d, &["--summary", dir.0.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("cannot write the summary"), "{err}");
}

#[test]
fn only_a_warning_exits_0_and_an_error_exits_1() {
    let d = clean();
    let sidecar = format!(
        "{}env:\n  - name: SIDECAR\n    value: {}\n",
        d.values(OLD),
        d.image("sidecar", OLD)
    );
    d.write("env/staging/values.yaml", &sidecar);
    let (code, out, err) = lint(&d, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("PASS: "), "{out}");
    assert!(
        out.contains("env/staging/values.yaml:9:12: warning[unexpected-reference]: "),
        "{out}"
    );
    let (code, out, _) = lint(&d, &["--output", "json"]);
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["passed"], true);
    assert_eq!(
        findings(&report),
        [(
            "env/staging/values.yaml".to_owned(),
            "unexpected-reference".to_owned(),
            9,
            12,
            "warning".to_owned()
        )]
    );
    let (code, out, _) = lint(&d, &["--output", "github"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("::warning file=env/staging/values.yaml,line=9,col=12,"),
        "{out}"
    );
    // The same place with a floating tag: an error next to the warning.
    d.write(
        "env/staging/values.yaml",
        &sidecar.replace("/demo/sidecar@", "/demo/sidecar:develop@"),
    );
    let (code, out, _) = lint(&d, &["--output", "json"]);
    assert_eq!(code, 1, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let rules: Vec<_> = findings(&report).into_iter().map(|f| (f.1, f.4)).collect();
    assert_eq!(
        rules,
        [
            ("unexpected-reference".to_owned(), "warning".to_owned()),
            ("reference-floating-tag".to_owned(), "error".to_owned())
        ]
    );
}

#[test]
fn an_image_through_a_yaml_alias_is_an_error() {
    let d = clean();
    d.write(
        "env/prod/values.yaml",
        &format!(
            "base: &img {}\napp:\n  image: *img\n",
            d.image("app", OLDER)
        ),
    );
    let (code, out, err) = lint(&d, &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("env/prod/values.yaml:3:10: error[unexpected-reference]: "),
        "{out}"
    );
}

#[test]
fn unparseable_yaml_exits_1_with_its_position() {
    let d = clean();
    d.write(
        "env/prod/values.yaml",
        "app:\n  image:\n    ref: a\n    ref: b\n",
    );
    let (code, out, err) = lint(&d, &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("env/prod/values.yaml:4:5: error[yaml-syntax]: "),
        "{out}"
    );
    // Outside every environment the same file is not linted.
    d.git(&["mv", "env/prod/values.yaml", "notes.yaml"]);
    let (code, out, _) = lint(&d, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 files scanned"), "{out}");
}

#[test]
fn a_missing_config_exits_2_naming_the_file() {
    let dir = TempDir::new("custody-lint-no-config");
    std::fs::create_dir_all(dir.0.join("env/prod")).unwrap();
    std::fs::write(dir.0.join("env/prod/values.yaml"), "image: x:latest\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(["gitops", "lint", "--output", "json"])
        .arg(&dir.0)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("no custody-gitops.yaml in"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    // The same from a Delivery whose config was deleted.
    let d = clean();
    std::fs::remove_file(d.path().join("custody-gitops.yaml")).unwrap();
    let (code, out, err) = lint(&d, &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("custody-gitops.yaml"), "{err}");
    // And a path that does not exist.
    let (code, _, err) = d.custody_raw(&["gitops", "lint", "no/such/dir"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("custody-gitops.yaml"), "{err}");
}

#[test]
fn a_broken_config_exits_2_with_its_position() {
    // The second environment renamed to the first's name (line 7: `  - name: staging`).
    let broken = CONFIG.replacen("- name: staging", "- name: dev", 1);
    assert_ne!(broken, CONFIG);
    let d = Delivery::new("127.0.0.1:9", &broken);
    d.write("env/dev/values.yaml", &d.values(OLD));
    let (code, out, err) = lint(&d, &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("custody-gitops.yaml:7:11: error[duplicate-environment]: "),
        "{err}"
    );
    assert!(err.contains("\"dev\" is listed twice"), "{err}");
    // A YAML error in the config is also exit 2 with a position.
    d.write(
        "custody-gitops.yaml",
        &CONFIG.replace("environments:\n", "environments: [\n"),
    );
    let (code, _, err) = lint(&d, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("custody-gitops.yaml:"), "{err}");
}
