//! The verdict every caller gets when a trust policy judges an image: `allow | deny | error`,
//! every reason, the evidence used, and the hashes of the policy and trust root that decided.

use serde::Serialize;

use crate::policy::document::Mode;
use crate::policy::{Decision, Reason};
use crate::reference::{Digest, ImageRef};
use crate::registry::discovery::FoundVia;
use crate::verify::TrustRootRef;

/// Media type of the JSON verdict (documented in docs/verdict.md and docs/verdict.schema.json).
pub const VERDICT_MEDIA_TYPE: &str = "application/vnd.custody.verdict.v1+json";

/// `allow`, `deny`, or `error` (could not decide). An error is never an allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerdictDecision {
    /// Every requirement met.
    Allow,
    /// A requirement failed (see `reasons`).
    Deny,
    /// custody could not decide (registry unreachable, deadline, …; see `error`).
    Error,
}

impl From<Decision> for VerdictDecision {
    fn from(d: Decision) -> Self {
        match d {
            Decision::Allow => VerdictDecision::Allow,
            Decision::Deny => VerdictDecision::Deny,
        }
    }
}

/// The policy that decided.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRef {
    /// `metadata.name`.
    pub name: String,
    /// SHA-256 of the policy file.
    pub content_hash: Digest,
}

/// A piece of evidence as the verdict reports it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerdictEvidence {
    /// signature | attestation | sbom | other.
    pub role: crate::evidence::Role,
    /// Media type of the evidence blob.
    pub media_type: String,
    /// Digest of the evidence blob.
    pub digest: Digest,
    /// How it was found.
    pub found: FoundVia,
    /// Whether it verified cryptographically (`None`: unsigned document).
    pub verified: Option<bool>,
    /// Failed check code, when it did not verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<&'static str>,
    /// Why it did not verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Signer identity, or `key sha256:…`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// OIDC issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Source commit claimed by the certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_commit: Option<String>,
    /// Source repository claimed by the certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_repository: Option<String>,
    /// Source ref claimed by the certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<String>,
    /// The build workflow claimed by the certificate (build config URI, else build signer URI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// The build run claimed by the certificate (run invocation URI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// The builder named by a provenance attestation (`runDetails.builder.id`, `builder.id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub builder: Option<String>,
    /// Predicate type (attestations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
    /// Transparency-log index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_index: Option<u64>,
    /// Earliest verified signing time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<String>,
    /// Authorities of the matched rule that accepted it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accepted_by: Vec<String>,
}

/// A verdict.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// Media type of this document.
    pub media_type: &'static str,
    /// custody's version.
    pub custody_version: &'static str,
    /// When it was made (RFC 3339).
    pub created_at: String,
    /// allow | deny | error.
    pub decision: VerdictDecision,
    /// The policy's mode.
    pub mode: Mode,
    /// Whether a caller should let the image through: allow, or deny in warn mode. Never true for error.
    pub admit: bool,
    /// The reference as given.
    pub reference: String,
    /// The digest judged.
    pub digest: Option<Digest>,
    /// The tag it was resolved from (`--resolve`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_from_tag: Option<String>,
    /// The environment asked about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The policy.
    pub policy: PolicyRef,
    /// The trust root.
    pub trust_root: TrustRootRef,
    /// The rule that matched.
    pub rule: Option<String>,
    /// Every failed requirement (deny).
    pub reasons: Vec<Reason>,
    /// Why no decision could be made (error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Requirements left to another gate.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deferred: Vec<String>,
    /// The evidence considered.
    pub evidence: Vec<VerdictEvidence>,
    /// Step-by-step account of the evaluation.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trace: Vec<String>,
    /// Registry requests made.
    pub http_requests: u64,
}

impl Verdict {
    /// An error verdict.
    #[allow(clippy::too_many_arguments)]
    pub fn error(
        reference: &ImageRef,
        digest: Option<Digest>,
        environment: Option<&str>,
        policy: PolicyRef,
        mode: Mode,
        trust_root: TrustRootRef,
        created_at: String,
        error: String,
    ) -> Self {
        Self {
            media_type: VERDICT_MEDIA_TYPE,
            custody_version: crate::VERSION,
            created_at,
            decision: VerdictDecision::Error,
            mode,
            admit: false,
            reference: reference.to_string(),
            digest,
            resolved_from_tag: None,
            environment: environment.map(str::to_owned),
            policy,
            trust_root,
            rule: None,
            reasons: Vec::new(),
            error: Some(error),
            deferred: Vec::new(),
            evidence: Vec::new(),
            trace: Vec::new(),
            http_requests: 0,
        }
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Human-readable text.
    pub fn to_text(&self) -> String {
        let d = match self.decision {
            VerdictDecision::Allow => "ALLOW",
            VerdictDecision::Deny if self.admit => "DENY (warn mode: admitted with a warning)",
            VerdictDecision::Deny => "DENY",
            VerdictDecision::Error => "ERROR (could not decide; not admitted)",
        };
        let mut out = format!(
            "{d}: {}\n",
            self.digest.as_ref().map_or_else(
                || self.reference.clone(),
                |g| format!("{} ({g})", self.reference)
            )
        );
        out.push_str(&format!(
            "  policy {} {}, rule {}, environment {}\n",
            self.policy.name,
            self.policy.content_hash,
            self.rule.as_deref().unwrap_or("(none)"),
            self.environment.as_deref().unwrap_or("(none)")
        ));
        if let Some(e) = &self.error {
            out.push_str(&format!("  error: {e}\n"));
        }
        for r in &self.reasons {
            out.push_str(&format!("  - {r}\n"));
        }
        for d in &self.deferred {
            out.push_str(&format!("  deferred: {d}\n"));
        }
        for e in &self.evidence {
            let status = match (e.verified, e.accepted_by.is_empty()) {
                (Some(true), false) => format!("accepted by {}", e.accepted_by.join(", ")),
                (Some(true), true) => "verified, not accepted".into(),
                (Some(false), _) => format!("not verified ({})", e.check.unwrap_or("?")),
                (None, _) => "unsigned".into(),
            };
            out.push_str(&format!(
                "  {:<11} {} {}{}{}\n",
                serde_json::to_value(e.role)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                e.digest,
                status,
                e.signer
                    .as_deref()
                    .map(|s| format!(" — {s}"))
                    .unwrap_or_default(),
                e.predicate_type
                    .as_deref()
                    .map(|p| format!(" [{p}]"))
                    .unwrap_or_default()
            ));
        }
        out.push_str(&format!(
            "  trust root {} {}\n",
            self.trust_root.name, self.trust_root.content_hash
        ));
        out
    }

    /// SARIF 2.1.0 for CI code-scanning: one result per reason (or the error).
    pub fn to_sarif(&self) -> String {
        let level = if self.admit { "warning" } else { "error" };
        let mut rules = Vec::new();
        let mut results = Vec::new();
        let mut push = |id: &str, text: String| {
            if !rules.iter().any(|r: &serde_json::Value| r["id"] == id) {
                rules.push(serde_json::json!({"id": id, "shortDescription": {"text": format!("custody check {id}")}, "helpUri": "https://example.invalid/custody/docs/policy.md"}));
            }
            results.push(serde_json::json!({
                "ruleId": id,
                "level": level,
                "message": {"text": text},
                "locations": [{"logicalLocations": [{"name": self.reference, "kind": "container-image"}]}],
                "properties": {
                    "digest": self.digest.as_ref().map(ToString::to_string),
                    "policy": self.policy.name,
                    "policyHash": self.policy.content_hash.to_string(),
                    "rule": self.rule,
                    "environment": self.environment,
                },
            }));
        };
        if let Some(e) = &self.error {
            push("error", e.clone());
        }
        for r in &self.reasons {
            push(r.check, r.to_string());
        }
        let doc = serde_json::json!({
            "version": "2.1.0",
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "runs": [{
                "tool": {"driver": {"name": "custody", "version": crate::VERSION, "rules": rules}},
                "results": results,
            }],
        });
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    }
}
