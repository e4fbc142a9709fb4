//! The composite GitHub Action (`action.yml`): its step is run the way the runner runs it —
//! `${{ inputs.* }}` and `${{ github.* }}` substituted into the step's `env`, the `run` line
//! executed by bash — on real delivery repositories and the real registry.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::registry::{TempDir, tools_available};
use crate::support::{CONFIG, Delivery, OLD, OLDER, digest, registry};

fn action() -> Value {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml")).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// Replaces `${{ inputs.x }}` with the input's value (given, else its default) and
/// `${{ github.action_path }}` with the repository root.
fn substitute(value: &str, inputs: &[(&str, &str)], action: &Value) -> String {
    let re = regex::Regex::new(r"\$\{\{\s*([a-z_.\-]+)\s*\}\}").unwrap();
    re.replace_all(value, |c: &regex::Captures<'_>| {
        let expr = &c[1];
        if let Some(name) = expr.strip_prefix("inputs.") {
            if let Some((_, v)) = inputs.iter().find(|(k, _)| *k == name) {
                return (*v).to_owned();
            }
            let default = action["inputs"][name]["default"]
                .as_str()
                .unwrap_or_default();
            assert!(!default.contains("${{"), "test must give input {name}");
            return default.to_owned();
        }
        assert_eq!(expr, "github.action_path", "unexpected expression {expr}");
        env!("CARGO_MANIFEST_DIR").to_owned()
    })
    .into_owned()
}

struct Run {
    code: i32,
    stdout: String,
    summary: String,
    output: String,
}

fn run_action(d: &Delivery, base: &str) -> Run {
    let action = action();
    assert_eq!(action["runs"]["using"], "composite");
    let step = &action["runs"]["steps"][0];
    assert_eq!(step["shell"], "bash");
    let files = TempDir::new("custody-action");
    let summary = files.0.join("summary.md");
    let output = files.0.join("output");
    let args = format!("--insecure-registry {}", d.host);
    let bin = env!("CARGO_BIN_EXE_custody");
    let path = d.path().display().to_string();
    let inputs = [
        ("base", base),
        ("head", "HEAD"),
        ("path", path.as_str()),
        ("custody", bin),
        ("args", args.as_str()),
    ];
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(substitute(step["run"].as_str().unwrap(), &inputs, &action));
    for (k, v) in step["env"].as_object().unwrap() {
        cmd.env(k, substitute(v.as_str().unwrap(), &inputs, &action));
    }
    let out = cmd
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_OUTPUT", &output)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap() + &String::from_utf8_lossy(&out.stderr),
        summary: std::fs::read_to_string(&summary).unwrap_or_default(),
        output: std::fs::read_to_string(&output).unwrap_or_default(),
    }
}

#[test]
fn the_action_annotates_a_refused_promotion_and_writes_the_summary() {
    if !tools_available() {
        return;
    }
    let reg = registry();
    let d = Delivery::new(&reg.host(), CONFIG);
    let a = digest("demo/app");
    d.write("env/dev/values.yaml", &d.values(&a));
    d.write("env/staging/values.yaml", &d.values(OLD));
    d.write("env/prod/values.yaml", &d.values(OLDER));
    let base = d.commit("base");
    d.branch("pr");
    d.write("env/prod/values.yaml", &d.values(&a));
    d.commit("dev straight to prod");
    let r = run_action(&d, &base);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains(
            "::error file=env/prod/values.yaml,line=5,col=10,title=custody not-from-source::"
        ),
        "{}",
        r.stdout
    );
    assert!(r.summary.contains("❌"), "{}", r.summary);
    assert_eq!(r.output.trim(), "passed=false");
}

#[test]
fn the_action_passes_a_clean_promotion_with_notices() {
    if !tools_available() {
        return;
    }
    let reg = registry();
    let d = Delivery::new(&reg.host(), CONFIG);
    let a = digest("demo/app");
    d.write("env/dev/values.yaml", &d.values(&a));
    d.write("env/staging/values.yaml", &d.values(OLD));
    let base = d.commit("base");
    d.branch("pr");
    d.write("env/staging/values.yaml", &d.values(&a));
    d.commit("promote to staging");
    let r = run_action(&d, &base);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("::notice file=env/staging/values.yaml,line=5"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("::error"), "{}", r.stdout);
    assert!(
        r.summary.contains("✅") && r.summary.contains("release.yml"),
        "{}",
        r.summary
    );
    assert_eq!(r.output.trim(), "passed=true");
}

#[test]
fn the_action_fails_when_the_check_cannot_run() {
    let d = Delivery::new("127.0.0.1:9", CONFIG);
    let r = run_action(&d, "no-such-revision");
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("::error title=custody::the promotion check could not run")
    );
    assert_eq!(r.output.trim(), "passed=false");
}
