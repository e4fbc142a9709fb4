//! Signed verification summaries: `custody attest` and the admission fast path.
//!
//! For an allow verdict, custody writes an in-toto Statement v1 carrying a SLSA Verification
//! Summary Attestation v1 ([`vsa`]), signs it as a DSSE envelope with an ECDSA P-256 key
//! ([`dsse`], [`key`]) and can attach it to the image as an OCI 1.1 referrer ([`push`]). A
//! trust policy with `spec.verificationSummaries` then accepts such a summary in place of
//! re-verifying everything ([`accept`], used by [`crate::engine::policy_verdict`]), but only when
//! it is signed by a trusted key, names this digest and resource, was made under this very policy,
//! environment, trust root and key set, PASSED, and is fresh. A summary that fails any check is
//! ignored: full verification runs, so a bad summary can neither allow nor deny.
//!
//! Where it sits: after `verdict` on the verification path. [`vsa`], [`dsse`], [`key`] and
//! [`accept`] are pure (time is an argument); [`push`] and [`attest()`] talk to the registry
//! through [`crate::registry`] and verify through [`crate::engine`]. See docs/attest.md.

#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub mod accept;
pub mod dsse;
pub mod key;
pub mod push;
pub mod vsa;

use std::time::Duration;

use thiserror::Error;

pub use accept::{AcceptedSummary, Expected, Refusal, accept_summary};
pub use dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE};
pub use key::SigningKey;
pub use push::{PushedSummary, VSA_ARTIFACT_TYPE, push_summary};
pub use vsa::{BuildLevel, DEFAULT_VERIFIER_ID, VSA_PREDICATE_TYPE, VsaStatement};

use crate::engine::policies::LoadedPolicy;
use crate::reference::ImageRef;
use crate::registry::discovery::DiscoveryOptions;
use crate::registry::{Deadline, RegistryClient, RegistryError};
use crate::verdict::{Verdict, VerdictDecision};

/// Why no summary was made.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum AttestError {
    /// Occurs when the reference carries no digest: a summary is about one digest.
    #[error("{reference} is not digest-pinned: attest repo@sha256:<digest>")]
    NotPinned {
        /// The reference given.
        reference: String,
    },
    /// Occurs when the verdict is a deny or an error: custody summarises allow verdicts only.
    #[error(
        "the verdict is {}, not allow: no summary is made",
        decision_name(verdict)
    )]
    NotAllowed {
        /// The verdict, with its reasons.
        verdict: Box<Verdict>,
    },
    /// Occurs when the requested level claims more than was verified.
    #[error("cannot claim {requested}: {detail}")]
    Level {
        /// The level asked for.
        requested: String,
        /// Why it is not supported by what was verified.
        detail: String,
    },
    /// Occurs when the signing key cannot be used.
    #[error("signing key: {detail}")]
    Key {
        /// What is wrong with it.
        detail: String,
    },
    /// Occurs when the signing primitive fails.
    #[error("signing failed: {0}")]
    Signing(String),
    /// Occurs when the verdict and what the engine collected disagree (a bug, not input).
    #[error("inconsistent input: {0}")]
    Input(String),
    /// Occurs when pushing the summary to the registry fails (the envelope itself is fine).
    #[error("pushing the summary failed: {0}")]
    Push(RegistryError),
}

fn decision_name(v: &Verdict) -> &'static str {
    match v.decision {
        VerdictDecision::Allow => "allow",
        VerdictDecision::Deny => "deny",
        VerdictDecision::Error => "error",
    }
}

/// What to attest and how.
#[derive(Debug, Clone)]
pub struct AttestRequest {
    /// The image, digest-pinned (a tag next to the digest is judged by the reference rules).
    pub reference: ImageRef,
    /// The environment (selects policy rules; recorded in the summary).
    pub environment: Option<String>,
    /// `verifier.id` ([`DEFAULT_VERIFIER_ID`] when the operator names none).
    pub verifier_id: String,
    /// The build level to claim; `None`: what was verified ([`vsa::build_level`]).
    pub level: Option<BuildLevel>,
    /// Also attach the summary to the image in its registry.
    pub push: bool,
    /// Discovery options for the verification.
    pub discovery: DiscoveryOptions,
    /// Deadline for the registry work: the verification and the push share it (the push gets
    /// what the verification left), so a caller's timeout bounds the whole request.
    pub deadline: Duration,
}

/// A summary made (and possibly pushed).
#[derive(Debug, Clone)]
pub struct Attested {
    /// The signed envelope.
    pub envelope: Envelope,
    /// Its bytes, as printed and pushed (compact JSON).
    pub envelope_bytes: Vec<u8>,
    /// The statement inside.
    pub statement: VsaStatement,
    /// The verdict it summarises (always an allow).
    pub verdict: Verdict,
    /// Where it was pushed, with `push`.
    pub pushed: Option<PushedSummary>,
}

/// Verifies `request.reference` with `loaded` (full verification, never the summary fast path),
/// and for an allow verdict builds, signs and optionally pushes its summary.
///
/// # Errors
/// [`AttestError::NotPinned`]; [`AttestError::NotAllowed`] with the deny or error verdict;
/// [`AttestError::Level`]; [`AttestError::Signing`]; [`AttestError::Push`] when the registry
/// refuses the summary.
pub async fn attest(
    client: &RegistryClient,
    loaded: &LoadedPolicy,
    key: &SigningKey,
    request: &AttestRequest,
    now: jiff::Timestamp,
) -> Result<Attested, AttestError> {
    if request.reference.digest().is_none() {
        return Err(AttestError::NotPinned {
            reference: request.reference.to_string(),
        });
    }
    // One deadline for the verification and the push: the service answers within its caller's
    // timeout only if the push cannot start a fresh one.
    let shared = Deadline::after(request.deadline);
    let (verdict, collected) = crate::engine::full_policy_verdict(
        client,
        loaded,
        &request.reference,
        request.environment.as_deref(),
        &request.discovery,
        request.deadline,
        now,
    )
    .await;
    let Some(collected) = collected.filter(|_| verdict.decision == VerdictDecision::Allow) else {
        return Err(AttestError::NotAllowed {
            verdict: Box::new(verdict),
        });
    };
    let level = vsa::build_level(&loaded.policy, verdict.rule.as_deref(), request.level)?;
    let locations: Vec<crate::verdict::EvidenceRef> =
        collected.items.iter().map(|c| c.evidence.clone()).collect();
    let authority_keys: Vec<_> = loaded
        .keys
        .iter()
        .map(|k| k.content_hash().clone())
        .collect();
    let statement = vsa::build_statement(&vsa::SummaryInput {
        verdict: &verdict,
        evidence: &locations,
        policy: &loaded.policy,
        authority_keys: &authority_keys,
        verifier_id: &request.verifier_id,
        level,
        time_verified: now,
    })?;
    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement.to_bytes(), key)?;
    let envelope_bytes = envelope.to_bytes();
    let pushed = if request.push {
        Some(
            push_summary(
                client,
                &collected.image,
                &envelope_bytes,
                &statement.predicate.time_verified,
                &shared,
            )
            .await
            .map_err(AttestError::Push)?,
        )
    } else {
        None
    };
    Ok(Attested {
        envelope,
        envelope_bytes,
        statement,
        verdict,
        pushed,
    })
}
