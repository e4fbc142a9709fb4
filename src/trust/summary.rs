//! A serialisable description of what a trust root trusts.

use serde::Serialize;

use super::TrustRoot;
use crate::reference::Digest;

/// What a [`TrustRoot`] trusts, each item with its validity window.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustRootSummary {
    /// How verdicts refer to the root.
    pub name: String,
    /// SHA-256 of the canonical JSON.
    pub content_hash: Digest,
    /// Fulcio (code-signing) certificate authorities.
    pub certificate_authorities: Vec<AuthoritySummary>,
    /// Timestamp authorities (RFC 3161).
    pub timestamp_authorities: Vec<AuthoritySummary>,
    /// Transparency logs (Rekor v1 and v2).
    pub transparency_logs: Vec<LogSummary>,
    /// Certificate-transparency logs (SCTs).
    pub ct_logs: Vec<LogSummary>,
}

/// A certificate authority (Fulcio or TSA).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthoritySummary {
    /// Subject common name and organisation, as declared in the root.
    pub subject: String,
    /// The authority's URI.
    pub uri: String,
    /// Number of certificates in its chain.
    pub certificates: usize,
    /// When it is trusted.
    pub valid_for: Option<Window>,
}

/// A log (Rekor or CT).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogSummary {
    /// Base URL.
    pub base_url: String,
    /// Log ID (hex of the key ID).
    pub log_id: String,
    /// Key type, as declared (`PKIX_ECDSA_P256_SHA_256`, `PKIX_ED25519`, …).
    pub key_details: String,
    /// When its key is trusted.
    pub valid_for: Option<Window>,
}

/// A validity window; `end: None` means open-ended.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    /// Start (inclusive), RFC 3339.
    pub start: String,
    /// End (inclusive), RFC 3339.
    pub end: Option<String>,
}

fn window(range: Option<sigstore_verify::types::TimeRange>) -> Option<Window> {
    range.map(|r| Window {
        start: r.start.to_string(),
        end: r.end.map(|e| e.to_string()),
    })
}

pub(super) fn summarize(root: &TrustRoot) -> TrustRootSummary {
    let r = root.trusted_root();
    let subject = |s: &sigstore_verify::trust_root::trusted_root::CertificateSubject| {
        [s.common_name.as_deref(), s.organization.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ")
    };
    TrustRootSummary {
        name: root.name().to_owned(),
        content_hash: root.content_hash().clone(),
        certificate_authorities: r
            .certificate_authorities
            .iter()
            .map(|ca| AuthoritySummary {
                subject: subject(&ca.subject),
                uri: ca.uri.clone(),
                certificates: ca.cert_chain.certificates.len(),
                valid_for: window(ca.valid_for),
            })
            .collect(),
        timestamp_authorities: r
            .timestamp_authorities
            .iter()
            .map(|tsa| AuthoritySummary {
                subject: subject(&tsa.subject),
                uri: tsa.uri.clone().unwrap_or_default(),
                certificates: tsa.cert_chain.certificates.len(),
                valid_for: window(tsa.valid_for),
            })
            .collect(),
        transparency_logs: r
            .tlogs
            .iter()
            .map(|log| LogSummary {
                base_url: log.base_url.clone(),
                log_id: hex::encode(log.log_id.key_id.as_bytes()),
                key_details: log.public_key.key_details.as_str().to_owned(),
                valid_for: window(log.public_key.valid_for),
            })
            .collect(),
        ct_logs: r
            .ctlogs
            .iter()
            .map(|log| LogSummary {
                base_url: log.base_url.clone(),
                log_id: hex::encode(log.log_id.key_id.as_bytes()),
                key_details: log.public_key.key_details.as_str().to_owned(),
                valid_for: window(log.public_key.valid_for),
            })
            .collect(),
    }
}
