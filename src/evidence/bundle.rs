//! Sigstore bundles (media types v0.1, v0.2, v0.3), parsed with bounds.

use serde::Serialize;
use sigstore_verify::types::bundle::VerificationMaterialContent;
use sigstore_verify::types::{Bundle, SignatureContent};

use super::{EvidenceError, check_count, check_json_depth, limit};
use crate::limits::Limits;
use crate::reference::Digest;

/// The media types custody accepts. `bundle+json;version=0.3` is the legacy spelling of v0.3
/// that some clients wrote; it is accepted as the Sigstore clients accept it.
const KNOWN_MEDIA_TYPES: &[&str] = &[
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle.v0.3+json",
];

/// What a bundle signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BundleKind {
    /// A signature over the artifact's bytes (Rekor `hashedrekord`).
    MessageSignature,
    /// A DSSE envelope, normally carrying an in-toto statement about the artifact.
    Dsse,
}

/// A bundle that passed the size, depth and media-type checks and parsed.
#[derive(Debug, Clone)]
pub struct ParsedBundle {
    bundle: Bundle,
    media_type: String,
    digest: Digest,
}

impl ParsedBundle {
    /// The parsed bundle.
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    /// The media type exactly as written in the document.
    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    /// SHA-256 of the bundle document's bytes, so a verdict can name the evidence it used.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Whether the bundle signs bytes or carries a DSSE envelope.
    pub fn kind(&self) -> BundleKind {
        match self.bundle.content {
            SignatureContent::DsseEnvelope(_) => BundleKind::Dsse,
            _ => BundleKind::MessageSignature,
        }
    }

    /// The DER certificates the bundle carries (leaf first), empty for managed-key bundles.
    pub fn certificates(&self) -> Vec<&[u8]> {
        match &self.bundle.verification_material.content {
            VerificationMaterialContent::Certificate(c) => vec![c.raw_bytes.as_bytes()],
            VerificationMaterialContent::X509CertificateChain { certificates } => certificates
                .iter()
                .map(|c| c.raw_bytes.as_bytes())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The public-key hint of a managed-key bundle, if that is what it carries.
    pub fn public_key_hint(&self) -> Option<&str> {
        match &self.bundle.verification_material.content {
            VerificationMaterialContent::PublicKey(k) => Some(k.hint.as_str()),
            _ => None,
        }
    }
}

/// Parses a Sigstore bundle document.
///
/// Checks, in order: size, JSON nesting depth, `mediaType` (must be a known bundle version),
/// then the full parse (base64 fields, required fields), then counts of log entries,
/// timestamps and certificates, and the DSSE payload size.
///
/// # Errors
/// [`EvidenceError::LimitExceeded`], [`EvidenceError::UnsupportedMediaType`] or
/// [`EvidenceError::Malformed`] with the parser's reason.
pub fn parse_bundle(json: &[u8], limits: &Limits) -> Result<ParsedBundle, EvidenceError> {
    let size = u64::try_from(json.len()).unwrap_or(u64::MAX);
    if size > limits.max_bundle_bytes {
        return Err(limit(
            "bundle size in bytes",
            "max_bundle_bytes",
            limits.max_bundle_bytes,
            json.len(),
        ));
    }
    check_json_depth(json, limits.max_json_depth)?;
    let malformed = |detail: String| EvidenceError::Malformed {
        what: "bundle",
        detail,
    };

    // Read the media type first so an unknown version is reported as such, not as whatever
    // field the typed parser trips over.
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    let head: Head = serde_json::from_slice(json).map_err(|e| malformed(e.to_string()))?;
    let media_type = match head.media_type {
        Some(m) if KNOWN_MEDIA_TYPES.contains(&m.as_str()) => m,
        Some(m) => return Err(EvidenceError::UnsupportedMediaType { found: m }),
        None => {
            return Err(EvidenceError::UnsupportedMediaType {
                found: String::new(),
            });
        }
    };

    let text = std::str::from_utf8(json).map_err(|e| malformed(e.to_string()))?;
    let bundle = match Bundle::from_json(text) {
        Ok(bundle) => bundle,
        // Line-wrapped base64 (RFC 2045 style) is accepted by the Go and Python Sigstore clients
        // (their decoders skip newlines), and some producers write it. Retry once with the
        // line breaks removed from base64-looking strings, so such a bundle is judged on its
        // content rather than rejected for its formatting; the bundle digest stays that of the
        // original bytes.
        Err(first) => match unwrap_base64_lines(json) {
            Some(normalized) => {
                Bundle::from_json(&normalized).map_err(|e| malformed(e.to_string()))?
            }
            None => return Err(malformed(first.to_string())),
        },
    };

    let material = &bundle.verification_material;
    check_count(
        "number of transparency log entries",
        "max_tlog_entries",
        limits.max_tlog_entries,
        material.tlog_entries.len(),
    )?;
    check_count(
        "number of RFC 3161 timestamps",
        "max_timestamps",
        limits.max_timestamps,
        material
            .timestamp_verification_data
            .rfc3161_timestamps
            .len(),
    )?;
    if let VerificationMaterialContent::X509CertificateChain { certificates } = &material.content {
        check_count(
            "number of certificates in the chain",
            "max_chain_certificates",
            limits.max_chain_certificates,
            certificates.len(),
        )?;
    }
    if let SignatureContent::DsseEnvelope(envelope) = &bundle.content {
        let len = envelope.payload.as_bytes().len();
        if u64::try_from(len).unwrap_or(u64::MAX) > limits.max_dsse_payload_bytes {
            return Err(limit(
                "DSSE payload size in bytes",
                "max_dsse_payload_bytes",
                limits.max_dsse_payload_bytes,
                len,
            ));
        }
    }
    Ok(ParsedBundle {
        bundle,
        media_type,
        digest: Digest::sha256_of(json),
    })
}

/// Removes CR/LF from every JSON string that is base64 apart from its line breaks.
/// Returns `None` when there is nothing to change.
fn unwrap_base64_lines(json: &[u8]) -> Option<String> {
    fn is_wrapped_base64(s: &str) -> bool {
        s.contains('\n')
            && s.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_' | b'\n' | b'\r')
            })
    }
    fn walk(v: &mut serde_json::Value, changed: &mut bool) {
        match v {
            serde_json::Value::String(s) if is_wrapped_base64(s) => {
                s.retain(|c| c != '\n' && c != '\r');
                *changed = true;
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|i| walk(i, changed)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|i| walk(i, changed)),
            _ => {}
        }
    }
    let mut value: serde_json::Value = serde_json::from_slice(json).ok()?;
    let mut changed = false;
    walk(&mut value, &mut changed);
    if !changed {
        return None;
    }
    serde_json::to_string(&value).ok()
}
