//! Delivery repositories made with the real `git` CLI, a real registry holding the signed
//! fixture images, and a way to run the custody binary on them.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::registry::{Registry, TempDir, fixtures};

/// The digests of the fixture images (scenario.json).
pub fn digest(repo: &str) -> String {
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

/// A digest no registry has (for values that are never verified: unchanged lines).
pub const OLD: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
/// Another such digest.
pub const OLDER: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000002";

/// A registry with demo/app (signed, provenance, SBOM), demo/unsigned, and demo/wrong's image
/// also pushed into demo/app (a "rebuild" signed by the wrong workflow).
pub fn registry() -> Registry {
    let r = Registry::start();
    r.push(&["demo/app", "demo/unsigned", "demo/wrong"]);
    let plan: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("push-plan.json")).unwrap()).unwrap();
    for entry in plan.as_array().unwrap() {
        if entry["repository"] == "demo/wrong" {
            r.push_entry(entry, "demo/app");
        }
    }
    r
}

/// A delivery repository in a temporary directory.
pub struct Delivery {
    pub dir: TempDir,
    pub host: String,
}

pub const CONFIG: &str = r#"apiVersion: custody.dev/v1alpha1
kind: GitOpsConfig
environments:
  - name: dev
    paths: ["env/dev/**"]
    autoUpdate: true
  - name: staging
    paths: ["env/staging/**"]
  - name: prod
    paths: ["env/prod/**"]
    policyEnvironment: production
    freeze: env/prod/freeze.yaml
shared: ["env/_shared/**"]
policy: policy/trust.yaml
references:
  firstParty: ["*/demo/**"]
  thirdParty:
    - images: ["docker.io/library/**"]
      allowSemverTag: true
"#;

/// The example trust policy with its files next to it.
fn install_policy(root: &Path) {
    let policy = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/policies/gitops.yaml"),
    )
    .unwrap()
    .replace(
        "../../fixtures/registry/trusted_root.json",
        "trusted_root.json",
    )
    .replace("../../fixtures/registry/keys/cosign.pub", "cosign.pub");
    std::fs::create_dir_all(root.join("policy")).unwrap();
    std::fs::write(root.join("policy/trust.yaml"), policy).unwrap();
    std::fs::copy(
        fixtures().join("trusted_root.json"),
        root.join("policy/trusted_root.json"),
    )
    .unwrap();
    std::fs::copy(
        fixtures().join("keys/cosign.pub"),
        root.join("policy/cosign.pub"),
    )
    .unwrap();
}

impl Delivery {
    /// An empty repository on branch `main` with the config and the policy committed.
    pub fn new(host: &str, config: &str) -> Self {
        let d = Self {
            dir: TempDir::new("custody-delivery"),
            host: host.to_owned(),
        };
        d.git(&["init", "-q", "-b", "main"]);
        d.write("custody-gitops.yaml", config);
        install_policy(&d.dir.0);
        d.commit("config and trust policy");
        d
    }

    pub fn path(&self) -> &Path {
        &self.dir.0
    }

    /// `<host>/demo/<name>@<digest>`.
    pub fn image(&self, name: &str, digest: &str) -> String {
        format!("{}/demo/{name}@{digest}", self.host)
    }

    /// Helm values with one `image.ref`.
    pub fn values(&self, digest: &str) -> String {
        format!(
            "# app values\napp:\n  replicas: 2\n  image:\n    ref: {}  # pinned\n    pullPolicy: IfNotPresent\n",
            self.image("app", digest)
        )
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.dir.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.0.join(rel)).unwrap()
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=Test",
                "-c",
                "user.email=test@example.invalid",
            ])
            .args([
                "-c",
                "commit.gpgsign=false",
                "-c",
                "init.defaultBranch=main",
            ])
            .arg("-C")
            .arg(&self.dir.0)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Commits everything; returns the commit id.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// Starts a pull-request branch from main.
    pub fn branch(&self, name: &str) {
        self.git(&["checkout", "-q", "-b", name, "main"]);
    }

    /// `custody gitops check --base main --head HEAD --output json` against the registry.
    pub fn check(&self, extra: &[&str]) -> (i32, Value, String) {
        let (code, out, err) = self.custody(
            &[
                &[
                    "gitops", "check", "--base", "main", "--head", "HEAD", "--output", "json",
                ][..],
                extra,
            ]
            .concat(),
        );
        let v = serde_json::from_str(&out).unwrap_or(Value::Null);
        (code, v, format!("{out}\n{err}"))
    }

    /// Runs custody in the repository with the registry reachable over plain HTTP.
    pub fn custody(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_custody"))
            .args(args)
            .arg(&self.dir.0)
            .args(["--insecure-registry", &self.host])
            .env_remove("CUSTODY_CACHE_DIR")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    /// Runs custody with arguments as given (no path or registry flags added).
    pub fn custody_raw(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_custody"))
            .args(args)
            .current_dir(&self.dir.0)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }
}

/// The change reports for `environment`.
pub fn changes<'a>(report: &'a Value, environment: &str) -> Vec<&'a Value> {
    report["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no changes in {report:#}"))
        .iter()
        .filter(|c| c["environment"] == environment)
        .collect()
}

/// The rule ids of a change's problems.
pub fn rules(change: &Value) -> Vec<String> {
    change["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["rule"].as_str().unwrap().to_owned())
        .collect()
}

/// The rule ids of the findings.
pub fn finding_rules(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["rule"].as_str().unwrap().to_owned())
        .collect()
}
