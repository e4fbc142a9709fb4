//! `gitops check`: the promotion gate for a pull request, from a real Git repository.
//!
//! Reads the base and head revisions (never the work tree: what is checked is what would
//! merge), takes the config and the trust policy from the BASE revision (a pull request cannot
//! loosen the rules that judge it), finds every image reference that changed in an environment,
//! classifies it ([`super::classify`]), and has each new digest judged by the target
//! environment's trust policy through a [`Verifier`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::classify::{self, ChangeKind, Freeze, History, Problem, Proposed};
use super::config::{self, CONFIG_FILE, Config, Scope};
use super::git::{EntryKind, GitError, Repo, TreeEntry};
use super::report::{ChangeReport, CheckReport, REPORT_MEDIA_TYPE, VerificationSummary};
use super::scan::{self, Content, ImageSite, MAX_FILE_BYTES, Scan, SourceFile};
use crate::engine::policies::LoadedPolicy;
use crate::reference::ImageRef;

/// Most commits walked to find what an environment ran before.
pub const DEFAULT_MAX_HISTORY: usize = 5_000;

/// Judges digests with a trust policy (the CLI: registry + optional disk cache; the service:
/// its verdict cache).
pub trait Verifier {
    /// The verdict for `image` (digest-pinned) in the trust policy's `environment`.
    fn verify(
        &self,
        image: &ImageRef,
        environment: &str,
    ) -> impl std::future::Future<Output = VerificationSummary> + Send;

    /// Registry requests made so far.
    fn requests(&self) -> u64;
}

/// Why the check could not run (exit 2, not a verdict).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Git failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The config is missing or broken.
    #[error("{0}")]
    Config(String),
    /// The trust policy is missing or broken.
    #[error("{0}")]
    Policy(String),
}

/// A revision's files, read once.
pub struct Tree {
    /// The commit.
    pub commit: String,
    entries: BTreeMap<String, TreeEntry>,
}

impl Tree {
    /// Lists a revision.
    ///
    /// # Errors
    /// Git errors.
    pub fn read(repo: &Repo, commit: &str) -> Result<Self, GitError> {
        let entries = repo
            .list_files(commit)?
            .into_iter()
            .map(|e| (e.path.clone(), e))
            .collect();
        Ok(Self {
            commit: commit.to_owned(),
            entries,
        })
    }

    /// Reads the given paths as scanner input (symlinks reported, never followed; large and
    /// binary files marked).
    ///
    /// # Errors
    /// Git errors.
    pub fn files(&self, repo: &Repo, paths: &[&str]) -> Result<Vec<SourceFile>, GitError> {
        let wanted: Vec<&TreeEntry> = paths.iter().filter_map(|p| self.entries.get(*p)).collect();
        let oids: Vec<&str> = wanted
            .iter()
            .filter(|e| e.kind != EntryKind::Submodule)
            .map(|e| e.oid.as_str())
            .collect();
        let mut blobs = repo.read_blobs(&oids, MAX_FILE_BYTES)?.into_iter();
        let mut out = Vec::new();
        for e in wanted {
            if e.kind == EntryKind::Submodule {
                continue;
            }
            let blob = blobs.next().flatten();
            let content = match (&e.kind, blob) {
                (_, None) => Content::TooLarge(e.size),
                (EntryKind::Symlink, Some(b)) => {
                    Content::Symlink(String::from_utf8_lossy(&b).into_owned())
                }
                (_, Some(b)) => Content::from_bytes(b),
            };
            out.push(SourceFile {
                path: e.path.clone(),
                content,
            });
        }
        Ok(out)
    }

    /// One file's text, if it exists and is a small UTF-8 regular file.
    ///
    /// # Errors
    /// Git errors.
    pub fn text(
        &self,
        repo: &Repo,
        path: &str,
    ) -> Result<Option<Result<String, String>>, GitError> {
        let Some(e) = self.entries.get(path) else {
            return Ok(None);
        };
        if e.kind == EntryKind::Symlink || e.kind == EntryKind::Submodule {
            return Ok(Some(Err(format!(
                "{path} is a symbolic link or submodule at {}; custody does not follow it",
                short(&self.commit)
            ))));
        }
        Ok(Some(
            match repo.read_blobs(&[&e.oid], MAX_FILE_BYTES)?.pop().flatten() {
                None => Err(format!("{path} is larger than {MAX_FILE_BYTES} bytes")),
                Some(b) => String::from_utf8(b).map_err(|_| format!("{path} is not UTF-8")),
            },
        ))
    }

    /// Every path in the revision.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }
}

/// Everything the check needs from the repository, read before any verification.
pub struct Prepared {
    /// The config (base revision).
    pub config: Config,
    /// The base tree.
    pub base: Tree,
    /// The head tree.
    pub head: Tree,
    /// References at the head revision in every environment file.
    pub head_scan: Scan,
    /// Changed references.
    pub changes: Vec<(Scope, Option<ImageSite>, ImageSite)>,
    /// Removed references (`file key reference`).
    pub removed: Vec<String>,
    /// Findings in the changed files at the head revision.
    pub findings: Vec<scan::Finding>,
    /// Notes for reviewers.
    pub notes: Vec<String>,
}

/// Reads the config from the base revision.
///
/// # Errors
/// A missing or broken config.
pub fn base_config(repo: &Repo, base: &Tree, head: &Tree) -> Result<Config, CheckError> {
    match base.text(repo, CONFIG_FILE)? {
        None => Err(CheckError::Config(
            if head.entries.contains_key(CONFIG_FILE) {
                format!(
                    "{CONFIG_FILE} is added by this change; the gate reads its config from the base revision ({}), so merge the config on its own first",
                    short(&base.commit)
                )
            } else {
                format!(
                    "no {CONFIG_FILE} at the repository root at {}: the gate needs the environments in promotion order (see docs/gitops.md)",
                    short(&base.commit)
                )
            },
        )),
        Some(Err(e)) => Err(CheckError::Config(e)),
        Some(Ok(text)) => config::load(&text).map_err(|d| {
            CheckError::Config(
                d.iter()
                    .map(|d| d.render(CONFIG_FILE))
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        }),
    }
}

/// Loads the trust policy named by the config from the base revision (files it names are read
/// from the same revision, relative to it).
///
/// # Errors
/// No policy configured, or one that does not load.
pub fn base_policy(repo: &Repo, base: &Tree, config: &Config) -> Result<LoadedPolicy, CheckError> {
    let Some(path) = &config.policy else {
        return Err(CheckError::Policy(format!(
            "no trust policy: set `policy:` in {CONFIG_FILE} or pass --policy FILE"
        )));
    };
    let text = match base.text(repo, path)? {
        None => {
            return Err(CheckError::Policy(format!(
                "policy {path} (from {CONFIG_FILE}) does not exist at {}",
                short(&base.commit)
            )));
        }
        Some(t) => t.map_err(CheckError::Policy)?,
    };
    let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or_default();
    let read = |rel: &str, max: u64| -> Result<(String, Vec<u8>), String> {
        let joined = if dir.is_empty() {
            rel.to_owned()
        } else {
            format!("{dir}/{rel}")
        };
        let e = base
            .entries
            .get(&joined)
            .filter(|e| matches!(e.kind, EntryKind::File | EntryKind::Executable))
            .ok_or_else(|| {
                format!(
                    "{joined} (named by {path}) is not a file at {}",
                    short(&base.commit)
                )
            })?;
        let bytes = repo
            .read_blobs(&[&e.oid], max)
            .map_err(|e| e.to_string())?
            .pop()
            .flatten()
            .ok_or_else(|| format!("{joined} is larger than {max} bytes"))?;
        Ok((format!("{joined}@{}", short(&base.commit)), bytes))
    };
    crate::engine::policies::load_text(
        &text,
        &format!("{path}@{}", short(&base.commit)),
        &read,
        crate::Limits::default().max_trust_root_bytes,
    )
    .map_err(CheckError::Policy)
}

/// Reads both revisions and finds what changed.
///
/// # Errors
/// Git errors, a missing or broken config.
pub fn prepare(repo: &Repo, base: &str, head: &str) -> Result<Prepared, CheckError> {
    let base_id = repo.resolve(base)?;
    let head_id = repo.resolve(head)?;
    let base = Tree::read(repo, &base_id)?;
    let head = Tree::read(repo, &head_id)?;
    let config = base_config(repo, &base, &head)?;
    let mut notes = Vec::new();
    let changed = repo.changed_files(&base_id, &head_id)?;
    if changed.iter().any(|c| c.path == CONFIG_FILE) {
        notes.push(format!(
            "{CONFIG_FILE} changes in this pull request; it was checked with the base revision's config, the new one applies once merged"
        ));
    }
    if let Some(p) = &config.policy
        && changed.iter().any(|c| &c.path == p)
    {
        notes.push(format!(
            "the trust policy {p} changes in this pull request; images were judged by the base revision's policy"
        ));
    }
    // Every environment file at head (the source environments' digests), and the changed ones
    // at base.
    let in_scope = |p: &&str| config.scope(p).is_some();
    let head_paths: Vec<&str> = head.paths().filter(in_scope).collect();
    let head_files = head.files(repo, &head_paths)?;
    let head_scan = scan::scan(&config, &head_files);
    let changed_paths: BTreeSet<&str> = changed
        .iter()
        .map(|c| c.path.as_str())
        .filter(|p| config.scope(p).is_some())
        .collect();
    let base_paths: Vec<&str> = changed_paths.iter().copied().collect();
    let base_files = base.files(repo, &base_paths)?;
    let base_scan = scan::scan(&config, &base_files);
    let findings = head_scan
        .findings
        .iter()
        .filter(|f| changed_paths.contains(f.file.as_str()))
        .cloned()
        .collect();
    let before: BTreeMap<(&str, &str), &ImageSite> = base_scan
        .sites
        .iter()
        .map(|s| ((s.file.as_str(), s.key.as_str()), s))
        .collect();
    let mut after_keys = BTreeSet::new();
    let mut changes = Vec::new();
    for site in &head_scan.sites {
        if !changed_paths.contains(site.file.as_str()) {
            continue;
        }
        after_keys.insert((site.file.as_str(), site.key.as_str()));
        let previous = before.get(&(site.file.as_str(), site.key.as_str()));
        if previous.is_some_and(|p| p.reference == site.reference) {
            continue;
        }
        let Some(scope) = config.scope(&site.file) else {
            continue;
        };
        changes.push((scope, previous.map(|p| (*p).clone()), site.clone()));
    }
    let removed = base_scan
        .sites
        .iter()
        .filter(|s| !after_keys.contains(&(s.file.as_str(), s.key.as_str())))
        .map(|s| format!("{} {} {}", s.file, s.key, s.reference))
        .collect();
    Ok(Prepared {
        config,
        base,
        head,
        head_scan,
        changes,
        removed,
        findings,
        notes,
    })
}

/// What an environment ran before the base revision, from its files' history.
fn history(repo: &Repo, config: &Config, env: usize, base: &str, max: usize) -> History {
    let pathspecs: Vec<String> = config.environments[env]
        .paths
        .iter()
        .map(|g| g.source().to_owned())
        .collect();
    match repo.digest_history(base, &pathspecs, max) {
        Ok(h) => History {
            digests: h.digests,
            incomplete: if h.shallow {
                Some("this is a shallow clone, so the history of earlier deployments is cut off (fetch the full history: actions/checkout with fetch-depth: 0, or git fetch --unshallow)".into())
            } else if h.truncated {
                Some(format!(
                    "the history walk stopped after {max} commits (--max-history)"
                ))
            } else {
                None
            },
        },
        Err(e) => History {
            digests: BTreeMap::new(),
            incomplete: Some(format!("reading the history failed: {e}")),
        },
    }
}

/// The active freeze of environment `env`: frozen if the base OR the head revision says so (a
/// pull request cannot lift a freeze and promote in the same change).
fn freeze(
    repo: &Repo,
    prepared: &Prepared,
    env: usize,
    now: jiff::Timestamp,
) -> Option<Result<Freeze, String>> {
    let file = prepared.config.environments[env].freeze.as_ref()?;
    let mut found = None;
    for tree in [&prepared.base, &prepared.head] {
        let state = match tree.text(repo, file) {
            Err(e) => Some(Err(e.to_string())),
            Ok(None) => None,
            Ok(Some(Err(e))) => Some(Err(e)),
            Ok(Some(Ok(text))) => classify::read_freeze(file, &text, now).transpose(),
        };
        match state {
            Some(Err(e)) => return Some(Err(e)),
            Some(Ok(f)) => found = Some(Ok(f)),
            None => {}
        }
    }
    found
}

/// Runs the check.
pub async fn check<V: Verifier>(
    repo: &Repo,
    prepared: Prepared,
    verifier: &V,
    now: jiff::Timestamp,
    max_history: usize,
) -> CheckReport {
    let config = &prepared.config;
    let mut histories: BTreeMap<usize, History> = BTreeMap::new();
    let mut freezes: BTreeMap<usize, Option<Result<Freeze, String>>> = BTreeMap::new();
    let sources: BTreeMap<usize, Vec<ImageRef>> = prepared
        .head_scan
        .sites
        .iter()
        .filter_map(|s| match config.scope(&s.file) {
            Some(Scope::Environment(i)) => s.image().map(|r| (i, r)),
            _ => None,
        })
        .fold(BTreeMap::new(), |mut m, (i, r)| {
            m.entry(i).or_insert_with(Vec::new).push(r);
            m
        });
    // Digests this pull request itself brings into an environment: they have not run there yet,
    // so they cannot be promoted onwards in the same change.
    let entering: BTreeSet<(usize, String, String)> = prepared
        .changes
        .iter()
        .filter_map(|(scope, _, site)| match scope {
            Scope::Environment(i) => {
                let r = site.image()?;
                Some((*i, r.name(), r.digest()?.to_string()))
            }
            Scope::Shared => None,
        })
        .collect();
    let empty = Vec::new();
    let mut reports = Vec::new();
    for (scope, previous, site) in &prepared.changes {
        let reference = site.image();
        let prev_ref = previous.as_ref().and_then(ImageSite::image);
        let mut report = ChangeReport {
            environment: match scope {
                Scope::Environment(i) => config.environments[*i].name.clone(),
                Scope::Shared => "shared".into(),
            },
            file: site.file.clone(),
            line: site.pos.line,
            column: site.pos.column,
            key: site.key.clone(),
            previous: previous.as_ref().map(|p| p.reference.clone()),
            reference: site.reference.clone(),
            digest: reference
                .as_ref()
                .and_then(|r| r.digest().map(ToString::to_string)),
            kind: ChangeKind::Violation,
            label: String::new(),
            source_environment: None,
            rollback_to: None,
            verification: None,
            problems: Vec::new(),
        };
        let Some(reference) = reference else {
            report.label = "refused".into();
            report.problems.push(Problem::new(
                "malformed-reference",
                format!("{:?} is not an image reference", site.reference),
            ));
            reports.push(report);
            continue;
        };
        match scope {
            Scope::Shared if !config.environments.iter().all(|e| e.auto_update) => {
                report.label = "refused".into();
                report.problems.push(Problem::new(
                    "shared-image-change",
                    format!(
                        "{} is in a shared file, so this change reaches every environment at once ({}) without promotion",
                        site.reference,
                        config.names().join(", ")
                    ),
                ));
            }
            Scope::Shared => {
                report.kind = ChangeKind::AutoUpdate;
                report.label =
                    "new build into the shared files (every environment accepts automatic updates)"
                        .into();
            }
            Scope::Environment(i) => {
                let needs_history = !sources.get(&(i.wrapping_sub(1))).is_some_and(|s| {
                    s.iter()
                        .any(|r| r.digest() == reference.digest() && r.name() == reference.name())
                });
                let history = if needs_history {
                    histories
                        .entry(*i)
                        .or_insert_with(|| {
                            history(repo, config, *i, &prepared.base.commit, max_history)
                        })
                        .clone()
                } else {
                    History::default()
                };
                let frozen = freezes
                    .entry(*i)
                    .or_insert_with(|| freeze(repo, &prepared, *i, now))
                    .clone();
                let source = if *i == 0 {
                    &empty
                } else {
                    sources.get(&(i - 1)).unwrap_or(&empty)
                };
                let c = classify::classify(
                    config,
                    &Proposed {
                        environment: *i,
                        reference: &reference,
                        previous: prev_ref.as_ref(),
                    },
                    source,
                    &history,
                    frozen.as_ref(),
                );
                let mut c = c;
                if c.kind == ChangeKind::Promotion
                    && let Some(d) = reference.digest()
                    && entering.contains(&(i - 1, reference.name(), d.to_string()))
                {
                    let src = &config.environments[i - 1].name;
                    c.problems.push(Problem::new(
                        "promotion-skips-environment",
                        format!(
                            "{d} enters {src} in this same pull request, so it has not run there yet: merge the {src} change first, then promote"
                        ),
                    ));
                    c.kind = ChangeKind::Violation;
                }
                report.kind = c.kind;
                report.label = c.label;
                report.source_environment = c.source_environment;
                report.rollback_to = c.rollback_to;
                report.problems = c.problems;
            }
        }
        reports.push(report);
    }
    verify_changes(config, &mut reports, verifier).await;
    let mut report = CheckReport {
        media_type: REPORT_MEDIA_TYPE,
        custody_version: crate::VERSION,
        passed: false,
        base: Some(prepared.base.commit.clone()),
        head: Some(prepared.head.commit.clone()),
        changes: reports,
        removed: prepared.removed,
        findings: prepared.findings,
        notes: prepared.notes,
        registry_requests: verifier.requests(),
    };
    report.finish();
    report
}

/// Has every changed digest judged by its environment's trust policy (each distinct digest and
/// environment once, concurrently; the registry client bounds the requests in flight), and
/// records what the policy says, including its `promotedFrom` (which this gate enforces).
pub async fn verify_changes<V: Verifier>(
    config: &Config,
    reports: &mut [ChangeReport],
    verifier: &V,
) {
    let mut wanted: BTreeMap<(String, String), ImageRef> = BTreeMap::new();
    for r in reports.iter() {
        if r.kind == ChangeKind::Retag {
            continue;
        }
        if let (Ok(image), Some(env)) = (
            r.reference.parse::<ImageRef>(),
            policy_environment(config, &r.environment),
        ) && image.digest().is_some()
        {
            wanted.insert((image.to_string(), env), image);
        }
    }
    let verdicts: BTreeMap<(String, String), Arc<VerificationSummary>> =
        futures_util::future::join_all(wanted.into_iter().map(|(k, image)| async move {
            let v = verifier.verify(&image, &k.1).await;
            (k, Arc::new(v))
        }))
        .await
        .into_iter()
        .collect();
    for r in reports.iter_mut() {
        let Some(env) = policy_environment(config, &r.environment) else {
            continue;
        };
        let Some(v) = r
            .reference
            .parse::<ImageRef>()
            .ok()
            .and_then(|i| verdicts.get(&(i.to_string(), env)))
        else {
            continue;
        };
        if !v.allowed() {
            r.problems.push(Problem::new(
                if v.decision == "error" {
                    "trust-policy-error"
                } else {
                    "trust-policy"
                },
                format!(
                    "trust policy {} for {} says {}: {}",
                    v.policy,
                    v.environment,
                    v.decision,
                    v.reasons.join("; ")
                ),
            ));
        }
        // The policy's `promotedFrom` is deferred to this gate: the digest must come from that
        // environment (or be one this environment ran before).
        if let Some(from) = &v.promoted_from {
            let source_policy_env = r
                .source_environment
                .as_deref()
                .and_then(|s| config.environment(s))
                .map(|(_, e)| e.policy_environment.as_str());
            let ok = match r.kind {
                ChangeKind::Promotion => source_policy_env == Some(from.as_str()),
                ChangeKind::Rollback | ChangeKind::Retag => true,
                ChangeKind::AutoUpdate | ChangeKind::Violation => false,
            };
            if !ok && r.kind != ChangeKind::Violation {
                r.problems.push(Problem::new(
                    "promoted-from",
                    format!(
                        "trust policy rule {} requires the digest to be promoted from {from:?}; this change is {} ({})",
                        v.rule.as_deref().unwrap_or("?"),
                        serde_json::to_value(r.kind)
                            .ok()
                            .and_then(|k| k.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        r.label
                    ),
                ));
            }
        }
        if !r.problems.is_empty() {
            r.kind = ChangeKind::Violation;
        }
        r.verification = Some((**v).clone());
    }
}

/// The trust-policy environment for a report's environment (shared files: the last, strictest
/// environment).
fn policy_environment(config: &Config, env: &str) -> Option<String> {
    if env == "shared" {
        return config
            .environments
            .last()
            .map(|e| e.policy_environment.clone());
    }
    config
        .environment(env)
        .map(|(_, e)| e.policy_environment.clone())
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}
