//! The result of `gitops check` and `POST /v1/promotion`, and its renderings.

use serde::{Deserialize, Serialize};

use super::classify::{ChangeKind, Problem};
use super::scan::{Finding, Severity};

/// Media type of the JSON report (docs/gitops.md).
pub const REPORT_MEDIA_TYPE: &str = "application/vnd.custody.promotion-check.v1+json";

/// What the trust policy said about one digest, with the facts a reviewer wants to see.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VerificationSummary {
    /// `allow`, `deny` or `error`.
    pub decision: String,
    /// The policy that decided (`metadata.name`).
    pub policy: String,
    /// Its content hash.
    pub policy_hash: String,
    /// The environment the policy was asked about.
    pub environment: String,
    /// Every failed requirement, or the error.
    pub reasons: Vec<String>,
    /// The policy rule that decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The environment that rule requires the digest to be promoted from (`promotedFrom`): the
    /// promotion gate checks it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<String>,
    /// Who signed (certificate identity or `key sha256:…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// OIDC issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Source commit claimed by the signing certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_commit: Option<String>,
    /// Build workflow claimed by the signing certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// When the verdict was made (RFC 3339).
    pub checked_at: String,
    /// Whether it came from the verdict cache.
    pub cached: bool,
}

impl VerificationSummary {
    /// Whether the policy allowed it.
    pub fn allowed(&self) -> bool {
        self.decision == "allow"
    }

    /// The summary of a verdict made with `policy`.
    pub fn of(
        v: &crate::verdict::Verdict,
        environment: &str,
        policy: &crate::policy::Policy,
    ) -> Self {
        let mut reasons: Vec<String> = v.reasons.iter().map(ToString::to_string).collect();
        if let Some(e) = &v.error {
            reasons.push(e.clone());
        }
        // The signature (else any accepted evidence) names the signer and the build.
        let accepted: Vec<_> = v
            .evidence
            .iter()
            .filter(|e| e.verified == Some(true) && !e.accepted_by.is_empty())
            .collect();
        let pick = |f: &dyn Fn(&crate::verdict::VerdictEvidence) -> Option<String>| {
            accepted.iter().find_map(|e| f(e))
        };
        Self {
            decision: match v.decision {
                crate::verdict::VerdictDecision::Allow => "allow",
                crate::verdict::VerdictDecision::Deny => "deny",
                crate::verdict::VerdictDecision::Error => "error",
            }
            .into(),
            policy: v.policy.name.clone(),
            policy_hash: v.policy.content_hash.to_string(),
            environment: environment.to_owned(),
            reasons,
            rule: v.rule.clone(),
            promoted_from: v
                .rule
                .as_ref()
                .and_then(|r| policy.rules.iter().find(|x| &x.name == r))
                .and_then(|r| r.promoted_from.clone()),
            signer: pick(&|e| e.signer.clone()),
            issuer: pick(&|e| e.issuer.clone()),
            source_commit: pick(&|e| e.source_commit.clone()),
            workflow: pick(&|e| e.workflow.clone()),
            checked_at: v.created_at.clone(),
            cached: false,
        }
    }
}

/// One changed image reference and everything decided about it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeReport {
    /// Target environment (`shared` for the shared files).
    pub environment: String,
    /// File, line, column of the new value.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Place in the file.
    pub key: String,
    /// Before the change (absent: a new reference).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// After the change.
    pub reference: String,
    /// Its digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// promotion | rollback | auto-update | retag | violation.
    pub kind: ChangeKind,
    /// For people.
    pub label: String,
    /// Where it was promoted from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_environment: Option<String>,
    /// For a rollback: the commit that had it before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<String>,
    /// The trust policy's verdict on the digest (absent when there is no digest to verify).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationSummary>,
    /// Every rule broken, the trust policy's included (empty: allowed).
    pub problems: Vec<Problem>,
}

impl ChangeReport {
    /// Whether this change may merge.
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The whole check.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// [`REPORT_MEDIA_TYPE`].
    pub media_type: &'static str,
    /// custody's version.
    pub custody_version: &'static str,
    /// Whether every change may merge and no file breaks a rule.
    pub passed: bool,
    /// The base revision (commit id), when checked from Git.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// The head revision (commit id), when checked from Git.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// Each changed reference.
    pub changes: Vec<ChangeReport>,
    /// References removed (not checked: removing an image is not a promotion).
    pub removed: Vec<String>,
    /// Delivery-rule findings in the changed files at the head revision.
    pub findings: Vec<Finding>,
    /// Things a reviewer should know that are not failures.
    pub notes: Vec<String>,
    /// Registry requests made.
    pub registry_requests: u64,
}

impl CheckReport {
    /// Recomputes `passed`.
    pub fn finish(&mut self) {
        self.passed = self.changes.iter().all(ChangeReport::passed)
            && !self.findings.iter().any(|f| f.severity == Severity::Error);
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}
