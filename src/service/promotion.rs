//! `POST /v1/promotion`: the promotion gate for bots that hold the delivery repository
//! themselves and ask about the references a change touches.
//!
//! The service knows the environments from its `gitops` config file (order, automatic updates,
//! the trust-policy environment of each); the caller states what the repository says: the
//! changed references, what the source environment runs at the head revision, the digests the
//! target ran before, and its freeze. Classification is the same pure function `gitops check`
//! uses ([`crate::gitops::classify`]); verification goes through the service's verdict cache.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::AppState;
use super::verdicts::Verdicts;
use crate::engine::policies::LoadedPolicy;
use crate::gitops::check::{Verifier, verify_changes};
use crate::gitops::classify::{self, ChangeKind, Freeze, History, Proposed};
use crate::gitops::report::{ChangeReport, CheckReport, REPORT_MEDIA_TYPE, VerificationSummary};
use crate::reference::ImageRef;

/// The request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromotionRequest {
    /// The target environment (a name from the gitops config).
    pub environment: String,
    /// The trust policy (default: the configured default).
    #[serde(default)]
    pub policy: Option<String>,
    /// The changed references.
    pub changes: Vec<ChangeInput>,
    /// What the source environment runs at the head revision (digest-pinned references).
    #[serde(default)]
    pub source: Vec<String>,
    /// Digests the target environment ran before (from its history).
    #[serde(default)]
    pub history: Vec<String>,
    /// Whether `history` is the whole history (false: a change that is neither a promotion nor
    /// an automatic update fails with `history-unavailable`).
    #[serde(default)]
    pub history_complete: bool,
    /// The target's freeze, as its freeze file says.
    #[serde(default)]
    pub freeze: Option<FreezeInput>,
}

/// One changed reference.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeInput {
    /// After the change.
    pub reference: String,
    /// Before, if it existed.
    #[serde(default)]
    pub previous: Option<String>,
    /// Where (for annotations).
    #[serde(default)]
    pub file: Option<String>,
    /// Line (for annotations).
    #[serde(default)]
    pub line: Option<usize>,
}

/// A freeze.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FreezeInput {
    /// Whether frozen.
    pub frozen: bool,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
    /// Until when (RFC 3339).
    #[serde(default)]
    pub until: Option<String>,
}

/// Why a promotion request cannot be answered (a 4xx).
#[derive(Debug, thiserror::Error)]
pub enum PromotionError {
    /// The service has no gitops config.
    #[error("promotion checks need `gitops:` (a custody-gitops.yaml) in the service configuration")]
    NotConfigured,
    /// Bad request.
    #[error("{0}")]
    BadRequest(String),
}

struct ServiceVerifier<'a> {
    verdicts: &'a Verdicts,
    policy: Option<&'a str>,
    loaded: Arc<LoadedPolicy>,
    deadline: Duration,
}

impl Verifier for ServiceVerifier<'_> {
    async fn verify(&self, image: &ImageRef, environment: &str) -> VerificationSummary {
        match self
            .verdicts
            .verdict(
                &image.to_string(),
                self.policy,
                Some(environment),
                self.deadline,
            )
            .await
        {
            Ok(v) => VerificationSummary::of(&v, environment, &self.loaded.policy),
            Err(e) => VerificationSummary {
                decision: "error".into(),
                policy: self.loaded.policy.name.clone(),
                policy_hash: self.loaded.policy.content_hash.to_string(),
                environment: environment.to_owned(),
                reasons: vec![e.to_string()],
                rule: None,
                promoted_from: None,
                signer: None,
                issuer: None,
                source_commit: None,
                workflow: None,
                checked_at: String::new(),
                cached: false,
            },
        }
    }

    fn requests(&self) -> u64 {
        0
    }
}

fn parse(what: &str, text: &str) -> Result<ImageRef, PromotionError> {
    text.parse().map_err(|e| {
        PromotionError::BadRequest(format!(
            "{what} {:?} is not an image reference: {e}",
            text.chars().take(200).collect::<String>()
        ))
    })
}

/// Answers a promotion request.
///
/// # Errors
/// No gitops config, an unknown environment or policy, malformed references, too many items.
pub async fn check(
    state: &AppState,
    req: PromotionRequest,
    now: jiff::Timestamp,
) -> Result<CheckReport, PromotionError> {
    let config = state.gitops.as_ref().ok_or(PromotionError::NotConfigured)?;
    let max = state.config.limits.max_images_per_request;
    if req.changes.is_empty() {
        return Err(PromotionError::BadRequest("changes is empty".into()));
    }
    if req.changes.len() > max || req.source.len() > max * 16 || req.history.len() > 100_000 {
        return Err(PromotionError::BadRequest(format!(
            "too many items: at most {max} changes, {} source references and 100000 history digests",
            max * 16
        )));
    }
    let (index, env) = config.environment(&req.environment).ok_or_else(|| {
        PromotionError::BadRequest(format!(
            "environment {:?} is not in the gitops config ({})",
            req.environment,
            config.names().join(", ")
        ))
    })?;
    let set = state.verdicts.policies();
    let loaded = set.get(req.policy.as_deref()).cloned().ok_or_else(|| {
        PromotionError::BadRequest(format!(
            "unknown policy {:?}; known policies: {:?}",
            req.policy.as_deref().unwrap_or(&set.default),
            set.policies.keys().collect::<Vec<_>>()
        ))
    })?;
    let source = req
        .source
        .iter()
        .map(|s| parse("source reference", s))
        .collect::<Result<Vec<_>, _>>()?;
    let history = History {
        digests: req
            .history
            .iter()
            .map(|d| (d.clone(), "(history given by the caller)".to_owned()))
            .collect::<BTreeMap<_, _>>(),
        incomplete: (!req.history_complete).then(|| {
            "the request did not say its history is complete (historyComplete)".to_owned()
        }),
    };
    let freeze: Option<Result<Freeze, String>> = match &req.freeze {
        Some(f) if f.frozen => {
            let expired = match &f.until {
                Some(u) => match u.parse::<jiff::Timestamp>() {
                    Ok(t) => t <= now,
                    Err(e) => {
                        return Err(PromotionError::BadRequest(format!(
                            "freeze.until {u:?} is not an RFC 3339 time: {e}"
                        )));
                    }
                },
                None => false,
            };
            (!expired).then(|| {
                Ok(Freeze {
                    file: "(freeze given by the caller)".into(),
                    reason: f.reason.clone(),
                    until: f.until.clone(),
                })
            })
        }
        _ => None,
    };
    let mut reports = Vec::new();
    for c in &req.changes {
        let reference = parse("reference", &c.reference)?;
        let previous = c
            .previous
            .as_deref()
            .map(|p| parse("previous", p))
            .transpose()?;
        let out = classify::classify(
            config,
            &Proposed {
                environment: index,
                reference: &reference,
                previous: previous.as_ref(),
            },
            &source,
            &history,
            freeze.as_ref(),
        );
        reports.push(ChangeReport {
            environment: env.name.clone(),
            file: c.file.clone().unwrap_or_default(),
            line: c.line.unwrap_or(0),
            column: 0,
            key: String::new(),
            previous: c.previous.clone(),
            reference: reference.to_string(),
            digest: reference.digest().map(ToString::to_string),
            kind: out.kind,
            label: out.label,
            source_environment: out.source_environment,
            rollback_to: out.rollback_to,
            verification: None,
            problems: out.problems,
        });
    }
    let verifier = ServiceVerifier {
        verdicts: &state.verdicts,
        policy: req.policy.as_deref(),
        loaded,
        deadline: super::ServiceConfig::ms(state.config.deadlines.verify_ms),
    };
    verify_changes(config, &mut reports, &verifier).await;
    for r in &mut reports {
        if r.kind != ChangeKind::Violation && !r.problems.is_empty() {
            r.kind = ChangeKind::Violation;
        }
    }
    let mut report = CheckReport {
        media_type: REPORT_MEDIA_TYPE,
        custody_version: crate::VERSION,
        passed: false,
        base: None,
        head: None,
        changes: reports,
        removed: Vec::new(),
        findings: Vec::new(),
        notes: Vec::new(),
        registry_requests: 0,
    };
    report.finish();
    Ok(report)
}
