//! `custody-gitops.yaml`: the delivery repository's environments and rules.
//!
//! ```yaml
//! apiVersion: custody.dev/v1alpha1
//! kind: GitOpsConfig
//! environments:                 # in promotion order
//!   - name: dev
//!     paths: ["env/dev/**"]
//!     autoUpdate: true          # image-automation pull requests allowed here
//!   - name: staging
//!     paths: ["env/staging/**"]
//!   - name: prod
//!     paths: ["env/prod/**"]
//!     policyEnvironment: production   # the environment the trust policy is asked about
//!     freeze: env/prod/freeze.yaml
//! shared: ["values/env/_shared/**"]  # files every environment reads
//! policy: policies/trust.yaml        # trust policy (in the repository, read at the base revision)
//! references: { firstParty: ["ghcr.io/acme/**"] }   # same block as a trust policy's
//! ```

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::policy::document::References;
use crate::policy::{Diagnostic, Severity};
use crate::reference::{DEFAULT_DENIED_TAGS, Glob, ReferenceRules};

/// The config file's name at the repository root.
pub const CONFIG_FILE: &str = "custody-gitops.yaml";
/// `apiVersion`.
pub const API_VERSION: &str = "custody.dev/v1alpha1";
/// `kind`.
pub const KIND: &str = "GitOpsConfig";
/// Largest config file.
pub const MAX_CONFIG_BYTES: usize = 256 << 10;
/// Most environments.
pub const MAX_ENVIRONMENTS: usize = 32;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Document {
    api_version: Spanned<String>,
    kind: Spanned<String>,
    environments: Vec<EnvironmentDocument>,
    #[serde(default)]
    shared: Vec<Spanned<String>>,
    #[serde(default)]
    ignore: Vec<Spanned<String>>,
    #[serde(default)]
    policy: Option<Spanned<String>>,
    #[serde(default)]
    references: Option<References>,
    #[serde(default)]
    pull_policy: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EnvironmentDocument {
    name: Spanned<String>,
    paths: Vec<Spanned<String>>,
    #[serde(default)]
    auto_update: bool,
    #[serde(default)]
    policy_environment: Option<String>,
    #[serde(default)]
    freeze: Option<Spanned<String>>,
}

/// One environment.
#[derive(Debug, Clone)]
pub struct Environment {
    /// Its name in the config (`staging`).
    pub name: String,
    /// Files that belong to it.
    pub paths: Vec<Glob>,
    /// Whether automatic image-update changes (new builds) may land here.
    pub auto_update: bool,
    /// The environment name the trust policy is asked about (default: `name`).
    pub policy_environment: String,
    /// The freeze file, relative to the repository root.
    pub freeze: Option<String>,
}

/// A compiled config.
#[derive(Debug, Clone)]
pub struct Config {
    /// Environments in promotion order.
    pub environments: Vec<Environment>,
    /// Files every environment reads (`_shared/**`).
    pub shared: Vec<Glob>,
    /// Files never scanned.
    pub ignore: Vec<Glob>,
    /// The trust policy's path in the repository, if the gate verifies images.
    pub policy: Option<String>,
    /// How images must be referenced.
    pub references: ReferenceRules,
    /// The required `imagePullPolicy` (default `IfNotPresent`).
    pub pull_policy: String,
}

/// Where a file belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One environment (its index in promotion order).
    Environment(usize),
    /// Every environment.
    Shared,
}

impl Config {
    /// The environment named `name`.
    pub fn environment(&self, name: &str) -> Option<(usize, &Environment)> {
        self.environments
            .iter()
            .enumerate()
            .find(|(_, e)| e.name == name)
    }

    /// The names, in order (for messages).
    pub fn names(&self) -> Vec<&str> {
        self.environments.iter().map(|e| e.name.as_str()).collect()
    }

    /// Where `path` belongs, if anywhere. An ignored path belongs nowhere; the first
    /// environment whose globs match wins (the loader refuses overlaps it can see).
    pub fn scope(&self, path: &str) -> Option<Scope> {
        if self.ignore.iter().any(|g| g.matches(path)) {
            return None;
        }
        if let Some(i) = self
            .environments
            .iter()
            .position(|e| e.paths.iter().any(|g| g.matches(path)))
        {
            return Some(Scope::Environment(i));
        }
        self.shared
            .iter()
            .any(|g| g.matches(path))
            .then_some(Scope::Shared)
    }

    /// The environment before `index` in promotion order: where its promotions come from.
    pub fn source_of(&self, index: usize) -> Option<&Environment> {
        index.checked_sub(1).and_then(|i| self.environments.get(i))
    }
}

fn default_references() -> ReferenceRules {
    ReferenceRules {
        require_digest: true,
        first_party: Vec::new(),
        denied_tags: DEFAULT_DENIED_TAGS
            .iter()
            .filter_map(|t| Glob::tag(t).ok())
            .collect(),
        third_party: Vec::new(),
    }
}

fn error<T>(code: &'static str, message: String, at: Option<&Spanned<T>>) -> Diagnostic {
    Diagnostic::error(code, message, at)
}

/// Parses and checks a config.
///
/// # Errors
/// Every problem found, with its position: syntax, unknown keys, an empty or oversized
/// environment list, duplicate names, bad globs, a path claimed by two environments, a
/// freeze file outside the environment's paths is allowed (it is often next to them).
pub fn load(yaml: &str) -> Result<Config, Vec<Diagnostic>> {
    if yaml.len() > MAX_CONFIG_BYTES {
        return Err(vec![error::<()>(
            "too-large",
            format!(
                "{CONFIG_FILE} is {} bytes, more than {MAX_CONFIG_BYTES}",
                yaml.len()
            ),
            None,
        )]);
    }
    let doc: Document = crate::policy::parse_document(yaml)?;
    let mut errors = Vec::new();
    if doc.api_version.value != API_VERSION {
        errors.push(error(
            "api-version",
            format!(
                "apiVersion is {:?}, expected {API_VERSION:?}",
                doc.api_version.value
            ),
            Some(&doc.api_version),
        ));
    }
    if doc.kind.value != KIND {
        errors.push(error(
            "kind",
            format!("kind is {:?}, expected {KIND:?}", doc.kind.value),
            Some(&doc.kind),
        ));
    }
    if doc.environments.is_empty() || doc.environments.len() > MAX_ENVIRONMENTS {
        errors.push(error::<()>(
            "environments",
            format!(
                "environments must list 1 to {MAX_ENVIRONMENTS} environments in promotion order, found {}",
                doc.environments.len()
            ),
            None,
        ));
    }
    let path_glob = |g: &Spanned<String>, errors: &mut Vec<Diagnostic>| {
        Glob::path(&g.value)
            .map_err(|e| errors.push(error("bad-glob", e, Some(g))))
            .ok()
    };
    let mut environments: Vec<Environment> = Vec::new();
    for e in &doc.environments {
        let name = e.name.value.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            errors.push(error(
                "environment-name",
                format!(
                    "environment name {:?} must be letters, digits, '-', '_' or '.'",
                    e.name.value
                ),
                Some(&e.name),
            ));
        }
        if environments.iter().any(|x| x.name == name) {
            errors.push(error(
                "duplicate-environment",
                format!("environment {name:?} is listed twice"),
                Some(&e.name),
            ));
        }
        if e.paths.is_empty() {
            errors.push(error(
                "environment-paths",
                format!("environment {name:?} has no paths: nothing would belong to it"),
                Some(&e.name),
            ));
        }
        let paths: Vec<Glob> = e
            .paths
            .iter()
            .filter_map(|g| path_glob(g, &mut errors))
            .collect();
        for p in &e.paths {
            if let Some(other) = environments
                .iter()
                .find(|x| x.paths.iter().any(|g| g.source() == p.value))
            {
                errors.push(error(
                    "overlapping-paths",
                    format!(
                        "path {:?} is claimed by both {:?} and {name:?}",
                        p.value, other.name
                    ),
                    Some(p),
                ));
            }
        }
        let freeze = match &e.freeze {
            Some(f) if Glob::path(&f.value).is_err() || f.value.contains('*') => {
                errors.push(error(
                    "freeze-path",
                    format!(
                        "freeze file {:?} must be a relative path without wildcards, '.' or '..'",
                        f.value
                    ),
                    Some(f),
                ));
                None
            }
            Some(f) => Some(f.value.clone()),
            None => None,
        };
        environments.push(Environment {
            name: name.to_owned(),
            paths,
            auto_update: e.auto_update,
            policy_environment: e
                .policy_environment
                .clone()
                .unwrap_or_else(|| name.to_owned()),
            freeze,
        });
    }
    let shared = doc
        .shared
        .iter()
        .filter_map(|g| path_glob(g, &mut errors))
        .collect();
    let ignore = doc
        .ignore
        .iter()
        .filter_map(|g| path_glob(g, &mut errors))
        .collect();
    let references = match &doc.references {
        None => default_references(),
        Some(r) => crate::policy::compile_references(r).unwrap_or_else(|mut e| {
            errors.append(&mut e);
            default_references()
        }),
    };
    let pull_policy = match &doc.pull_policy {
        None => "IfNotPresent".to_owned(),
        Some(p) if matches!(p.value.as_str(), "IfNotPresent" | "Always" | "Never") => {
            p.value.clone()
        }
        Some(p) => {
            errors.push(error(
                "pull-policy",
                format!(
                    "pullPolicy {:?} is not IfNotPresent, Always or Never",
                    p.value
                ),
                Some(p),
            ));
            String::new()
        }
    };
    let policy = match &doc.policy {
        Some(p) if Glob::path(&p.value).is_err() || p.value.contains('*') => {
            errors.push(error(
                "policy-path",
                format!(
                    "policy {:?} must be a relative path in the repository",
                    p.value
                ),
                Some(p),
            ));
            None
        }
        p => p.as_ref().map(|p| p.value.clone()),
    };
    if errors.iter().any(|d| d.severity == Severity::Error) {
        return Err(errors);
    }
    Ok(Config {
        environments,
        shared,
        ignore,
        policy,
        references,
        pull_policy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"apiVersion: custody.dev/v1alpha1
kind: GitOpsConfig
environments:
  - name: local
    paths: ["values/env/local/**"]
    autoUpdate: true
  - name: dev
    paths: ["values/env/dev/**"]
    autoUpdate: true
  - name: staging
    paths: ["values/env/staging/**"]
  - name: production
    paths: ["values/env/production/**"]
    freeze: values/env/production/freeze.yaml
shared: ["values/env/_shared/**"]
ignore: ["**/README.md"]
references:
  firstParty: ["ghcr.io/acme/**"]
"#;

    #[test]
    fn the_field_layout_loads_and_scopes_paths() {
        let c = load(GOOD).unwrap();
        assert_eq!(c.names(), ["local", "dev", "staging", "production"]);
        assert_eq!(
            c.scope("values/env/staging/app/values.yaml"),
            Some(Scope::Environment(2))
        );
        assert_eq!(
            c.scope("values/env/_shared/values.yaml"),
            Some(Scope::Shared)
        );
        assert_eq!(c.scope("values/env/production/README.md"), None);
        assert_eq!(c.scope("charts/app/values.yaml"), None);
        assert_eq!(c.source_of(3).map(|e| e.name.as_str()), Some("staging"));
        assert!(c.source_of(0).is_none());
        assert!(c.environments[1].auto_update && !c.environments[2].auto_update);
        assert_eq!(c.pull_policy, "IfNotPresent");
    }

    fn codes(yaml: &str) -> Vec<&'static str> {
        load(yaml).unwrap_err().iter().map(|d| d.code).collect()
    }

    #[test]
    fn unknown_keys_and_wrong_kind_are_refused_with_a_position() {
        let e = load(&GOOD.replace(
            "autoUpdate: true\n  - name: dev",
            "autoUpdates: true\n  - name: dev",
        ))
        .unwrap_err();
        assert_eq!(e[0].code, "schema");
        assert!(e[0].line.is_some(), "{e:?}");
        assert_eq!(codes(&GOOD.replace("GitOpsConfig", "Policy")), ["kind"]);
    }

    #[test]
    fn duplicate_environments_and_overlapping_paths_are_refused() {
        let dup = GOOD.replace("name: dev\n", "name: local\n");
        assert!(codes(&dup).contains(&"duplicate-environment"));
        let overlap = GOOD.replace("values/env/dev/**", "values/env/local/**");
        assert!(codes(&overlap).contains(&"overlapping-paths"));
    }

    #[test]
    fn bad_globs_freeze_and_policy_paths_are_refused() {
        assert!(codes(&GOOD.replace("values/env/dev/**", "/abs/**")).contains(&"bad-glob"));
        assert!(
            codes(&GOOD.replace("values/env/production/freeze.yaml", "../freeze.yaml"))
                .contains(&"freeze-path")
        );
        assert!(codes(&format!("{GOOD}policy: \"*.yaml\"\n")).contains(&"policy-path"));
        assert!(codes(&format!("{GOOD}pullPolicy: Sometimes\n")).contains(&"pull-policy"));
    }

    #[test]
    fn an_empty_environment_list_is_refused() {
        let y = "apiVersion: custody.dev/v1alpha1\nkind: GitOpsConfig\nenvironments: []\n";
        assert_eq!(codes(y), ["environments"]);
    }

    #[test]
    fn a_duplicate_yaml_key_is_refused() {
        let y = GOOD.replace(
            "kind: GitOpsConfig\n",
            "kind: GitOpsConfig\nkind: GitOpsConfig\n",
        );
        assert_eq!(codes(&y), ["schema"]);
    }
}
