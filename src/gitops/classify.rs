//! The promotion decision for one changed image reference: pure, from what the repository says
//! (the target environment, what its source environment runs at the head revision, what the
//! target ran before, its freeze) to a classification and the rules it breaks.
//!
//! The trust-policy step is separate (it needs the registry); this module is what both the CLI
//! (`gitops check`, reading Git) and the service (`POST /v1/promotion`, told by a bot) share.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::config::Config;
use crate::reference::ImageRef;

/// What a change is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// The digest the previous environment runs at the head revision: same digest forward.
    Promotion,
    /// A digest this environment ran before (found in its history).
    Rollback,
    /// A new build into an environment that accepts automatic updates.
    AutoUpdate,
    /// Only the tag next to an unchanged digest changed.
    Retag,
    /// None of the above: refused.
    Violation,
}

/// A broken promotion rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// Stable rule id (docs/gitops.md).
    pub rule: String,
    /// What was required and what was found.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(rule: &str, message: String) -> Self {
        Self {
            rule: rule.to_owned(),
            message,
        }
    }
}

/// An environment's freeze, as read from its freeze file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Freeze {
    /// The freeze file.
    pub file: String,
    /// Why.
    pub reason: Option<String>,
    /// Until when (RFC 3339), if it expires.
    pub until: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FreezeDocument {
    frozen: bool,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    until: Option<String>,
}

/// Reads a freeze file: `Ok(Some)` when it freezes now, `Ok(None)` when it does not (not frozen,
/// or expired).
///
/// # Errors
/// A file that does not parse, or whose `until` is not an RFC 3339 time; the caller treats that
/// as frozen (a freeze that cannot be read must not be lifted by accident).
pub fn read_freeze(file: &str, text: &str, now: jiff::Timestamp) -> Result<Option<Freeze>, String> {
    let doc: FreezeDocument = crate::policy::parse_document(text).map_err(|d| {
        d.iter()
            .map(|d| d.render(file))
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    if !doc.frozen {
        return Ok(None);
    }
    if let Some(until) = &doc.until {
        let t: jiff::Timestamp = until
            .parse()
            .map_err(|e| format!("{file}: until {until:?} is not an RFC 3339 time: {e}"))?;
        if t <= now {
            return Ok(None);
        }
    }
    Ok(Some(Freeze {
        file: file.to_owned(),
        reason: doc.reason,
        until: doc.until,
    }))
}

/// What an environment ran before: every digest seen in its files' history.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    /// Digest → the newest commit that put it there.
    pub digests: BTreeMap<String, String>,
    /// Why the history may be missing something (shallow clone, commit limit), if it may.
    pub incomplete: Option<String>,
}

/// One image reference, new or changed, in one environment.
#[derive(Debug, Clone)]
pub struct Proposed<'a> {
    /// The target environment (index in promotion order).
    pub environment: usize,
    /// The reference after the change.
    pub reference: &'a ImageRef,
    /// Before the change, if it existed.
    pub previous: Option<&'a ImageRef>,
}

/// The decision for one change, before the trust policy.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Classified {
    /// What it is.
    pub kind: ChangeKind,
    /// A line for people ("promotion from staging", "rollback during freeze").
    pub label: String,
    /// The environment the digest was promoted from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_environment: Option<String>,
    /// For a rollback: the commit that had put this digest in the environment before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<String>,
    /// Rules broken (empty: allowed, subject to the trust policy).
    pub problems: Vec<Problem>,
}

/// Classifies one change.
///
/// `source`: the image references the previous environment has at the head revision.
/// `history`: what the target environment ran before. `freeze`: its active freeze, or an error
/// reading the freeze file (treated as frozen).
pub fn classify(
    config: &Config,
    change: &Proposed<'_>,
    source: &[ImageRef],
    history: &History,
    freeze: Option<&Result<Freeze, String>>,
) -> Classified {
    let Some(env) = config.environments.get(change.environment) else {
        return violation(
            "unknown-environment",
            format!(
                "environment #{} is not in the config ({})",
                change.environment,
                config.names().join(", ")
            ),
        );
    };
    let Some(digest) = change.reference.digest() else {
        return violation(
            "reference-digest",
            format!(
                "{} has no digest: the environment would run whatever the tag points to",
                change.reference
            ),
        );
    };
    let digest_text = digest.to_string();
    if let Some(prev) = change.previous
        && prev.digest() == Some(digest)
        && prev.name() == change.reference.name()
    {
        return Classified {
            kind: ChangeKind::Retag,
            label: "tag changed, digest unchanged".into(),
            source_environment: None,
            rollback_to: None,
            problems: Vec::new(),
        };
    }
    let name = change.reference.name();
    let source_env = config.source_of(change.environment);
    let promoted = source_env.is_some()
        && source
            .iter()
            .any(|s| s.digest() == Some(digest) && s.name() == name);
    let rolled_back = history.digests.get(&digest_text);
    let (mut out, allowed_while_frozen) = if promoted {
        (
            Classified {
                kind: ChangeKind::Promotion,
                label: format!(
                    "promotion from {}",
                    source_env.map_or("?", |e| e.name.as_str())
                ),
                source_environment: source_env.map(|e| e.name.clone()),
                rollback_to: None,
                problems: Vec::new(),
            },
            false,
        )
    } else if let Some(commit) = rolled_back {
        (
            Classified {
                kind: ChangeKind::Rollback,
                label: format!(
                    "rollback to a digest {} ran before (commit {})",
                    env.name,
                    short(commit)
                ),
                source_environment: None,
                rollback_to: Some(commit.clone()),
                problems: Vec::new(),
            },
            true,
        )
    } else if env.auto_update {
        (
            Classified {
                kind: ChangeKind::AutoUpdate,
                label: format!("new build into {} (automatic updates allowed)", env.name),
                source_environment: None,
                rollback_to: None,
                problems: Vec::new(),
            },
            false,
        )
    } else {
        let mut message = match source_env {
            Some(src) => {
                let there: Vec<String> = source
                    .iter()
                    .filter(|s| s.name() == name)
                    .filter_map(|s| s.digest().map(ToString::to_string))
                    .collect();
                format!(
                    "{digest_text} is not what {} runs at the head revision ({}) and {} never ran it: only the digest the previous environment runs may be promoted (same digest forward, never a rebuild)",
                    src.name,
                    if there.is_empty() {
                        format!("{} has no {name}", src.name)
                    } else {
                        format!("{} has {}", src.name, there.join(", "))
                    },
                    env.name
                )
            }
            None => format!(
                "{} is the first environment and does not accept automatic updates, and it never ran {digest_text}",
                env.name
            ),
        };
        let rule = if let Some(why) = &history.incomplete {
            message.push_str(&format!(
                "; whether {} ran it before cannot be told: {why}",
                env.name
            ));
            "history-unavailable"
        } else {
            "not-from-source"
        };
        return violation(rule, message);
    };
    match freeze {
        Some(Ok(f)) if !allowed_while_frozen => out.problems.push(Problem::new(
            "frozen",
            format!(
                "{} is frozen ({}{}{}): only rollbacks to a digest it ran before are allowed",
                env.name,
                f.file,
                f.reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default(),
                f.until
                    .as_ref()
                    .map(|u| format!(", until {u}"))
                    .unwrap_or_default()
            ),
        )),
        Some(Ok(_)) => out.label.push_str(", during freeze"),
        Some(Err(e)) if !allowed_while_frozen => out.problems.push(Problem::new(
            "frozen",
            format!(
                "the freeze file cannot be read, so {} is treated as frozen: {e}",
                env.name
            ),
        )),
        Some(Err(_)) => out
            .label
            .push_str(", during freeze (unreadable freeze file)"),
        None => {}
    }
    if !out.problems.is_empty() {
        out.kind = ChangeKind::Violation;
    }
    out
}

fn violation(rule: &str, message: String) -> Classified {
    Classified {
        kind: ChangeKind::Violation,
        label: "refused".into(),
        source_environment: None,
        rollback_to: None,
        problems: vec![Problem::new(rule, message)],
    }
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"apiVersion: custody.dev/v1alpha1
kind: GitOpsConfig
environments:
  - {name: dev, paths: ["env/dev/**"], autoUpdate: true}
  - {name: staging, paths: ["env/staging/**"]}
  - {name: prod, paths: ["env/prod/**"], freeze: env/prod/freeze.yaml}
"#;
    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

    fn r(d: &str) -> ImageRef {
        format!("ghcr.io/acme/app@{d}").parse().unwrap()
    }

    fn run(
        env: usize,
        new: &str,
        prev: Option<&str>,
        source: &[&str],
        seen: &[&str],
        freeze: Option<Result<Freeze, String>>,
    ) -> Classified {
        let config = super::super::config::load(CONFIG).unwrap();
        let reference = r(new);
        let previous = prev.map(r);
        let source: Vec<ImageRef> = source.iter().map(|d| r(d)).collect();
        let history = History {
            digests: seen
                .iter()
                .map(|d| ((*d).to_owned(), "0123456789abcdef".into()))
                .collect(),
            incomplete: None,
        };
        classify(
            &config,
            &Proposed {
                environment: env,
                reference: &reference,
                previous: previous.as_ref(),
            },
            &source,
            &history,
            freeze.as_ref(),
        )
    }

    fn frozen() -> Option<Result<Freeze, String>> {
        Some(Ok(Freeze {
            file: "env/prod/freeze.yaml".into(),
            reason: Some("release week".into()),
            until: None,
        }))
    }

    #[test]
    fn the_source_environments_digest_is_a_promotion() {
        let c = run(2, A, Some(B), &[A], &[], None);
        assert_eq!(c.kind, ChangeKind::Promotion);
        assert_eq!(c.source_environment.as_deref(), Some("staging"));
        assert!(c.problems.is_empty());
    }

    #[test]
    fn a_digest_the_source_never_had_is_refused_naming_what_it_has() {
        let c = run(2, C, Some(B), &[A], &[], None);
        assert_eq!(c.kind, ChangeKind::Violation);
        assert_eq!(c.problems[0].rule, "not-from-source");
        assert!(
            c.problems[0].message.contains(A),
            "{}",
            c.problems[0].message
        );
    }

    #[test]
    fn the_same_digest_under_another_image_name_is_not_a_promotion() {
        let config = super::super::config::load(CONFIG).unwrap();
        let other: ImageRef = format!("ghcr.io/acme/other@{A}").parse().unwrap();
        let new = r(A);
        let c = classify(
            &config,
            &Proposed {
                environment: 2,
                reference: &new,
                previous: None,
            },
            &[other],
            &History::default(),
            None,
        );
        assert_eq!(c.kind, ChangeKind::Violation);
    }

    #[test]
    fn a_digest_the_environment_ran_before_is_a_rollback() {
        let c = run(2, C, Some(A), &[A], &[C], None);
        assert_eq!(c.kind, ChangeKind::Rollback);
        assert_eq!(c.rollback_to.as_deref(), Some("0123456789abcdef"));
    }

    #[test]
    fn a_new_build_is_allowed_only_where_automatic_updates_are() {
        assert_eq!(
            run(0, C, Some(A), &[], &[], None).kind,
            ChangeKind::AutoUpdate
        );
        let c = run(1, C, Some(A), &[A], &[], None);
        assert_eq!(c.kind, ChangeKind::Violation);
    }

    #[test]
    fn a_freeze_blocks_promotions_and_labels_rollbacks() {
        let c = run(2, A, Some(B), &[A], &[], frozen());
        assert_eq!(c.kind, ChangeKind::Violation);
        assert_eq!(c.problems[0].rule, "frozen");
        assert!(c.problems[0].message.contains("release week"));
        let c = run(2, C, Some(A), &[A], &[C], frozen());
        assert_eq!(c.kind, ChangeKind::Rollback);
        assert!(c.label.contains("during freeze"), "{}", c.label);
        assert!(c.problems.is_empty());
    }

    #[test]
    fn an_unreadable_freeze_file_freezes() {
        let c = run(2, A, Some(B), &[A], &[], Some(Err("bad".into())));
        assert_eq!(c.problems[0].rule, "frozen");
    }

    #[test]
    fn incomplete_history_fails_closed_and_says_why() {
        let config = super::super::config::load(CONFIG).unwrap();
        let new = r(C);
        let history = History {
            digests: BTreeMap::new(),
            incomplete: Some("shallow clone".into()),
        };
        let c = classify(
            &config,
            &Proposed {
                environment: 2,
                reference: &new,
                previous: None,
            },
            &[r(A)],
            &history,
            None,
        );
        assert_eq!(c.problems[0].rule, "history-unavailable");
        assert!(c.problems[0].message.contains("shallow clone"));
    }

    #[test]
    fn a_tag_only_reference_is_refused() {
        let config = super::super::config::load(CONFIG).unwrap();
        let new: ImageRef = "ghcr.io/acme/app:latest".parse().unwrap();
        let c = classify(
            &config,
            &Proposed {
                environment: 0,
                reference: &new,
                previous: None,
            },
            &[],
            &History::default(),
            None,
        );
        assert_eq!(c.problems[0].rule, "reference-digest");
    }

    #[test]
    fn a_retag_of_the_same_digest_is_not_a_promotion() {
        let config = super::super::config::load(CONFIG).unwrap();
        let new: ImageRef = format!("ghcr.io/acme/app:v2@{A}").parse().unwrap();
        let old: ImageRef = format!("ghcr.io/acme/app:v1@{A}").parse().unwrap();
        let c = classify(
            &config,
            &Proposed {
                environment: 2,
                reference: &new,
                previous: Some(&old),
            },
            &[],
            &History::default(),
            None,
        );
        assert_eq!(c.kind, ChangeKind::Retag);
    }

    #[test]
    fn freeze_files_parse_expire_and_refuse_garbage() {
        let now: jiff::Timestamp = "2026-11-25T00:00:00Z".parse().unwrap();
        let f = read_freeze("f.yaml", "frozen: true\nreason: audit\n", now).unwrap();
        assert_eq!(f.unwrap().reason.as_deref(), Some("audit"));
        assert!(
            read_freeze("f.yaml", "frozen: false\n", now)
                .unwrap()
                .is_none()
        );
        let expired = "frozen: true\nuntil: 2026-11-01T00:00:00Z\n";
        assert!(read_freeze("f.yaml", expired, now).unwrap().is_none());
        let later = "frozen: true\nuntil: 2026-12-01T00:00:00Z\n";
        assert!(read_freeze("f.yaml", later, now).unwrap().is_some());
        assert!(read_freeze("f.yaml", "frozen: yes please\n", now).is_err());
        assert!(read_freeze("f.yaml", "frozen: true\nuntil: soon\n", now).is_err());
        assert!(read_freeze("f.yaml", "frozen: true\nfrozzen: false\n", now).is_err());
    }
}
