//! Loading trust policies from files (or the embedded example) together with their trust roots.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::files::read_bounded;
use crate::limits::Limits;
use crate::policy::{Policy, TrustRootChoice, load_policy};
use crate::trust::{StaticKey, TrustRoot};

/// The example policy shipped in `deploy/policies/gitops.yaml`, embedded for `custody serve`
/// without configuration. It trusts only the test Sigstore that signed `fixtures/registry`.
pub const EXAMPLE_POLICY: &str = include_str!("../../deploy/policies/gitops.yaml");
const EXAMPLE_TRUST_ROOT: &[u8] = include_bytes!("../../fixtures/registry/trusted_root.json");
const EXAMPLE_KEY: &[u8] = include_bytes!("../../fixtures/registry/keys/cosign.pub");

/// A policy ready to judge with: compiled, its trust root loaded, its keys extracted.
#[derive(Debug)]
pub struct LoadedPolicy {
    /// The policy.
    pub policy: Policy,
    /// Its trust root.
    pub trust: TrustRoot,
    /// Static keys it names (tried on evidence without a certificate).
    pub keys: Vec<StaticKey>,
    /// Where it came from.
    pub source: String,
}

fn finish(
    policy: Policy,
    trust_bytes: impl FnOnce(&str) -> Result<(String, Vec<u8>), String>,
    source: String,
) -> Result<LoadedPolicy, String> {
    let limits = Limits::default();
    let trust = match &policy.trust_root {
        TrustRootChoice::Production => TrustRoot::production().map_err(|e| e.to_string())?,
        TrustRootChoice::Staging => TrustRoot::staging().map_err(|e| e.to_string())?,
        TrustRootChoice::File(f) => {
            let (name, bytes) = trust_bytes(f)?;
            TrustRoot::from_json(&name, &bytes, &limits).map_err(|e| e.to_string())?
        }
    };
    let keys = super::policy_keys(&policy);
    Ok(LoadedPolicy {
        policy,
        trust,
        keys,
        source,
    })
}

/// Loads a policy file; files it names are resolved relative to it. Diagnostics are rendered
/// `path:line:col: error[code]: message`, one per line.
///
/// # Errors
/// Unreadable files, policy diagnostics, unusable trust roots or keys.
pub fn load_file(path: &Path) -> Result<LoadedPolicy, String> {
    let text = String::from_utf8(read_bounded(
        path,
        crate::policy::MAX_POLICY_BYTES as u64,
        "policy",
        "1 MiB",
    )?)
    .map_err(|_| format!("{}: not UTF-8", path.display()))?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let limits = Limits::default();
    load_text(
        &text,
        &path.display().to_string(),
        &|rel, max| {
            let p = dir.join(rel);
            Ok((
                p.display().to_string(),
                read_bounded(&p, max, "file", "its size limit")?,
            ))
        },
        limits.max_trust_root_bytes,
    )
}

/// Reads a file a policy names, relative to the policy, at most `max` bytes: its display name and
/// bytes.
pub type FileReader<'a> = &'a dyn Fn(&str, u64) -> Result<(String, Vec<u8>), String>;

/// Loads a policy from its text, reading the files it names (keys, a trust root) through `read`
/// (the file system, or a Git revision for `gitops check`).
///
/// # Errors
/// Policy diagnostics (rendered with `label`), unreadable or unusable trust roots or keys.
pub fn load_text(
    text: &str,
    label: &str,
    read: FileReader<'_>,
    max_trust_root_bytes: u64,
) -> Result<LoadedPolicy, String> {
    let resolve = |rel: &str| read(rel, 1 << 20).map(|(_, b)| b);
    let policy = load_policy(text, &resolve).map_err(|d| {
        d.iter()
            .map(|d| d.render(label))
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    finish(policy, |f| read(f, max_trust_root_bytes), label.to_owned())
}

/// The embedded example policy (see [`EXAMPLE_POLICY`]).
///
/// # Errors
/// Only if the embedded files are broken, which the tests rule out.
pub fn load_example() -> Result<LoadedPolicy, String> {
    let resolve = |rel: &str| -> Result<Vec<u8>, String> {
        if rel.ends_with("keys/cosign.pub") {
            Ok(EXAMPLE_KEY.to_vec())
        } else {
            Err(format!("{rel}: not embedded"))
        }
    };
    let policy = load_policy(EXAMPLE_POLICY, &resolve).map_err(|d| {
        d.iter()
            .map(|d| d.render("embedded example"))
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    finish(
        policy,
        |_| {
            Ok((
                "embedded fixtures/registry/trusted_root.json".into(),
                EXAMPLE_TRUST_ROOT.to_vec(),
            ))
        },
        "embedded example".into(),
    )
}

/// Every `*.yaml`/`*.yml` policy in `dir`, by `metadata.name`.
///
/// # Errors
/// The first file that does not load (a service must not start half-configured), or two
/// policies with the same name.
pub fn load_dir(dir: &Path) -> Result<BTreeMap<String, Arc<LoadedPolicy>>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read policies directory {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml") && p.is_file())
        .collect();
    files.sort();
    let mut out = BTreeMap::new();
    for f in files {
        let loaded = load_file(&f)?;
        let name = loaded.policy.name.clone();
        if out.insert(name.clone(), Arc::new(loaded)).is_some() {
            return Err(format!(
                "two policies in {} are named {name:?}",
                dir.display()
            ));
        }
    }
    if out.is_empty() {
        return Err(format!("no policy (*.yaml) in {}", dir.display()));
    }
    Ok(out)
}
