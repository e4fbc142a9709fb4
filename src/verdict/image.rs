//! The result of verifying an image digest against its registry evidence.

use serde::Serialize;

use crate::policy::Mismatch;
use crate::reference::{Digest, ImageRef};
use crate::registry::discovery::{EvidenceItem, EvidenceKind, FoundVia};
use crate::verify::TrustRootRef;

/// Media type of the JSON rendering of an [`ImageVerification`].
pub const IMAGE_VERIFICATION_MEDIA_TYPE: &str =
    "application/vnd.custody.image-verification.v1+json";

/// Verified, rejected, or could not decide. `Error` is never an allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The evidence satisfies the request.
    Verified,
    /// The evidence is missing, invalid, or from the wrong signer.
    Rejected,
    /// custody could not decide (registry unreachable, deadline, bad input).
    Error,
}

/// A piece of evidence as reported (no content).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceRef {
    /// Kind.
    pub kind: EvidenceKind,
    /// Media type of the blob.
    pub media_type: String,
    /// Artifact type of the referrer, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Digest of the blob.
    pub digest: Digest,
    /// Size of the blob.
    pub size: u64,
    /// Repository it was found in.
    pub repository: String,
    /// Manifest holding it.
    pub manifest_digest: Digest,
    /// How it was found.
    pub found: FoundVia,
}

impl From<&EvidenceItem> for EvidenceRef {
    fn from(i: &EvidenceItem) -> Self {
        Self {
            kind: i.kind,
            media_type: i.media_type.clone(),
            artifact_type: i.artifact_type.clone(),
            digest: i.digest.clone(),
            size: i.size,
            repository: i.repository.clone(),
            manifest_digest: i.manifest_digest.clone(),
            found: i.found.clone(),
        }
    }
}

/// One signature or attestation, checked.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceCheck {
    /// The evidence.
    pub evidence: EvidenceRef,
    /// Whether it verified and satisfied the identity policy (or key).
    pub accepted: bool,
    /// Signer identity (SAN) or key digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// OIDC issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Predicate type, for attestations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
    /// Transparency-log index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_index: Option<u64>,
    /// Earliest verified signing time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<String>,
    /// The failed check's code, when rejected by verification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<&'static str>,
    /// Why it was not accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Identity-policy mismatches, when it verified but from the wrong signer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mismatches: Vec<Mismatch>,
}

/// The verification of one platform manifest of an index.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformVerification {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// The platform manifest's digest.
    pub digest: Digest,
    /// Outcome for this platform.
    pub outcome: Outcome,
    /// Why, when not verified.
    pub reasons: Vec<String>,
    /// Signatures checked.
    pub signatures: Vec<EvidenceCheck>,
    /// Attestations checked.
    pub attestations: Vec<EvidenceCheck>,
}

/// The result of `custody verify REF`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageVerification {
    /// Media type of this document.
    pub media_type: &'static str,
    /// custody's version.
    pub custody_version: &'static str,
    /// When it was made.
    pub verified_at: String,
    /// The reference as given.
    pub reference: String,
    /// The digest-pinned image verified (`None` when the reference could not be resolved).
    pub image: Option<ImageRef>,
    /// The tag the digest was resolved from (`--resolve`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_from_tag: Option<String>,
    /// Whether the manifest is an index.
    pub is_index: bool,
    /// The outcome.
    pub outcome: Outcome,
    /// Why, when not verified (one line each).
    pub reasons: Vec<String>,
    /// Signatures checked.
    pub signatures: Vec<EvidenceCheck>,
    /// Attestations checked.
    pub attestations: Vec<EvidenceCheck>,
    /// SBOMs found (unsigned SBOM documents; signed ones appear among attestations).
    pub sboms: Vec<EvidenceRef>,
    /// Other referrers found (not judged).
    pub other: Vec<EvidenceRef>,
    /// Per-platform results, when requested for an index.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformVerification>,
    /// Discovery notes (skipped referrers and why).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// HTTP requests made to registries.
    pub http_requests: u64,
    /// The trust root used.
    pub trust_root: TrustRootRef,
}

impl ImageVerification {
    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Human-readable text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let target = self
            .image
            .as_ref()
            .map_or_else(|| self.reference.clone(), ToString::to_string);
        let verdict = match self.outcome {
            Outcome::Verified => "Verified",
            Outcome::Rejected => "Rejected",
            Outcome::Error => "Error (could not decide)",
        };
        out.push_str(&format!("{verdict}: {target}\n"));
        if let Some(tag) = &self.resolved_from_tag {
            out.push_str(&format!("  resolved from tag {tag}\n"));
        }
        for r in &self.reasons {
            out.push_str(&format!("  - {r}\n"));
        }
        describe_checks("signature", &self.signatures, &mut out);
        describe_checks("attestation", &self.attestations, &mut out);
        for s in &self.sboms {
            out.push_str(&format!(
                "  sbom         {} {} ({} bytes, unsigned)\n",
                s.media_type, s.digest, s.size
            ));
        }
        for p in &self.platforms {
            out.push_str(&format!(
                "  platform {} {}: {:?}\n",
                p.platform, p.digest, p.outcome
            ));
            for r in &p.reasons {
                out.push_str(&format!("    - {r}\n"));
            }
        }
        for n in &self.notes {
            out.push_str(&format!("  note: {n}\n"));
        }
        out.push_str(&format!(
            "  trust root   {} {}\n  requests     {}\n",
            self.trust_root.name, self.trust_root.content_hash, self.http_requests
        ));
        out
    }
}

fn describe_checks(label: &str, checks: &[EvidenceCheck], out: &mut String) {
    for c in checks {
        let status = if c.accepted { "ok" } else { "REJECTED" };
        out.push_str(&format!(
            "  {label:<12} {status} {} via {}\n",
            c.evidence.digest,
            found_text(&c.evidence.found)
        ));
        if let Some(s) = &c.signer {
            out.push_str(&format!(
                "               signer {s}{}\n",
                c.issuer
                    .as_deref()
                    .map(|i| format!(" ({i})"))
                    .unwrap_or_default()
            ));
        }
        if let Some(p) = &c.predicate_type {
            out.push_str(&format!("               predicate {p}\n"));
        }
        if let Some(r) = &c.reason {
            out.push_str(&format!("               {r}\n"));
        }
        for m in &c.mismatches {
            out.push_str(&format!("               {m}\n"));
        }
    }
}

fn found_text(f: &FoundVia) -> String {
    match f {
        FoundVia::ReferrersApi => "referrers API".into(),
        FoundVia::ReferrersTagSchema { tag } => format!("referrers tag {tag}"),
        FoundVia::CosignTag { tag } => format!("tag {tag}"),
    }
}
