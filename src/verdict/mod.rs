//! Renderings of outcomes for people (text) and machines (JSON).
//!
//! Rendering is separate from evaluation: these functions take finished outcomes and return
//! strings; they never print and never decide anything.

mod image;
mod policy;

use serde::Serialize;

use crate::policy::Mismatch;
use crate::verify::{Signer, VerifiedFacts, VerifyError};

pub use image::{
    EvidenceCheck, EvidenceRef, IMAGE_VERIFICATION_MEDIA_TYPE, ImageVerification, Outcome,
    PlatformVerification,
};
pub use policy::{PolicyRef, VERDICT_MEDIA_TYPE, Verdict, VerdictDecision, VerdictEvidence};

/// Media type of the JSON rendering of a [`BundleOutcome`].
pub const BUNDLE_OUTCOME_MEDIA_TYPE: &str = "application/vnd.custody.bundle-verification.v1+json";

/// The outcome of `custody verify-bundle`: verified facts, or where and why it failed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleOutcome {
    media_type: &'static str,
    custody_version: &'static str,
    /// Verification time, RFC 3339.
    verified_at: String,
    /// Whether the bundle verified and satisfied the identity policy.
    verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    facts: Option<VerifiedFacts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<Failure>,
}

/// Where and why verification failed.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Failure {
    /// A cryptographic or format check failed.
    Verification {
        /// The check's stable code.
        check: &'static str,
        /// What it found.
        reason: String,
    },
    /// The bundle verified but the identity policy did not accept the signer.
    Policy {
        /// Every requirement that was not met.
        mismatches: Vec<Mismatch>,
    },
}

impl BundleOutcome {
    /// A successful outcome.
    pub fn verified(facts: VerifiedFacts, verified_at: String) -> Self {
        Self {
            media_type: BUNDLE_OUTCOME_MEDIA_TYPE,
            custody_version: crate::VERSION,
            verified_at,
            verified: true,
            facts: Some(facts),
            failure: None,
        }
    }

    /// Verification failed.
    pub fn failed(error: &VerifyError, verified_at: String) -> Self {
        Self {
            media_type: BUNDLE_OUTCOME_MEDIA_TYPE,
            custody_version: crate::VERSION,
            verified_at,
            verified: false,
            facts: None,
            failure: Some(Failure::Verification {
                check: error.check().code(),
                reason: error.to_string(),
            }),
        }
    }

    /// The bundle verified but the identity policy rejected it; the facts are kept so the caller
    /// sees what was found.
    pub fn rejected_by_policy(
        facts: VerifiedFacts,
        mismatches: Vec<Mismatch>,
        verified_at: String,
    ) -> Self {
        Self {
            media_type: BUNDLE_OUTCOME_MEDIA_TYPE,
            custody_version: crate::VERSION,
            verified_at,
            verified: false,
            facts: Some(facts),
            failure: Some(Failure::Policy { mismatches }),
        }
    }

    /// Whether the outcome is a success.
    pub fn is_verified(&self) -> bool {
        self.verified
    }

    /// The failure, if any.
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain data structs with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Human-readable text (several lines, no colour).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        match (&self.failure, &self.facts) {
            (None, Some(facts)) => {
                out.push_str("Verified OK\n");
                describe_facts(facts, &mut out);
            }
            (Some(Failure::Verification { check, reason }), _) => {
                out.push_str(&format!("Rejected: check {check} failed\n  {reason}\n"));
            }
            (Some(Failure::Policy { mismatches }), facts) => {
                out.push_str("Rejected: the signature verified but the signer does not satisfy the identity policy\n");
                for m in mismatches {
                    out.push_str(&format!("  - {m}\n"));
                }
                if let Some(facts) = facts {
                    describe_facts(facts, &mut out);
                }
            }
            (None, None) => out.push_str("No outcome\n"),
        }
        out
    }
}

fn describe_facts(facts: &VerifiedFacts, out: &mut String) {
    let line = |out: &mut String, k: &str, v: &str| out.push_str(&format!("  {k:<18} {v}\n"));
    line(out, "artifact", &facts.artifact_digest().to_string());
    line(
        out,
        "bundle",
        &format!("{} ({})", facts.bundle_digest(), facts.bundle_media_type()),
    );
    match facts.signer() {
        Signer::Certificate(c) => {
            line(out, "identity", c.identity.as_deref().unwrap_or("(none)"));
            line(out, "issuer", c.issuer.as_deref().unwrap_or("(none)"));
            let cl = &c.claims;
            for (k, v) in [
                ("source repository", &cl.source_repository_uri),
                ("source ref", &cl.source_repository_ref),
                ("source commit", &cl.source_repository_digest),
                ("build signer", &cl.build_signer_uri),
                ("build trigger", &cl.build_trigger),
                ("runner", &cl.runner_environment),
                ("run", &cl.run_invocation_uri),
            ] {
                if let Some(v) = v {
                    line(out, k, v);
                }
            }
        }
        Signer::Key {
            key_digest,
            algorithm,
            ..
        } => {
            line(out, "key", &format!("{algorithm} {key_digest}"));
        }
    }
    for t in facts.timestamps() {
        let source = match &t.source {
            crate::verify::TimeSource::TransparencyLog { log_index, .. } => {
                format!("transparency log, index {log_index}")
            }
            crate::verify::TimeSource::Rfc3161 => "RFC 3161 timestamp".to_owned(),
        };
        line(out, "signed at", &format!("{} ({source})", t.time));
    }
    for e in facts.log_entries() {
        line(
            out,
            "log entry",
            &format!(
                "{} {} index {} in log {}",
                e.kind, e.version, e.log_index, &e.log_id
            ),
        );
    }
    if let Some(s) = facts.statement() {
        line(out, "predicate type", &s.predicate_type);
        for subject in &s.subjects {
            let digests: Vec<String> = subject
                .digest
                .iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect();
            line(
                out,
                "subject",
                &format!("{} {}", subject.name, digests.join(" ")),
            );
        }
    }
    line(
        out,
        "trust root",
        &format!(
            "{} {}",
            facts.trust_root().name,
            facts.trust_root().content_hash
        ),
    );
}
