//! cosign's OCI formats: `.sig` simple-signing layers and `.att` DSSE layers, turned into
//! Sigstore bundles so the one verification core checks them.
//!
//! A cosign signature layer is a payload blob plus annotations: the signature
//! (`dev.cosignproject.cosign/signature`), the certificate and chain (`dev.sigstore.cosign/
//! certificate`, `…/chain`) and the Rekor "bundle" (`dev.sigstore.cosign/bundle`: a signed entry
//! timestamp over `{body, integratedTime, logID, logIndex}`). That is exactly a Sigstore bundle
//! v0.1 with a SET-only log entry, and sigstore-go converts it the same way; custody builds that
//! bundle here (pure, no I/O) and verifies it like any other.
//!
//! cosign's chain annotation customarily ends with the root CA; the root is dropped in the
//! conversion (trust anchors come only from the trust root, never from evidence), intermediates
//! are kept.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{EvidenceError, ParsedBundle, parse_bundle};
use crate::limits::Limits;
use crate::reference::Digest;

/// Layer media type of a cosign simple-signing payload.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Layer media type of a cosign attestation (DSSE envelope).
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// Annotation: base64 signature.
pub const ANNOTATION_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
/// Annotation: PEM signing certificate.
pub const ANNOTATION_CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
/// Annotation: PEM certificate chain.
pub const ANNOTATION_CHAIN: &str = "dev.sigstore.cosign/chain";
/// Annotation: Rekor bundle (SET + entry).
pub const ANNOTATION_BUNDLE: &str = "dev.sigstore.cosign/bundle";
/// The `critical.type` of a cosign image signature.
pub const SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";

/// What a cosign layer signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CosignLayerKind {
    /// A simple-signing payload naming an image digest (`.sig`).
    Signature,
    /// A DSSE envelope with an in-toto statement about the image (`.att`).
    Attestation,
}

/// A cosign layer converted into a Sigstore bundle.
#[derive(Debug, Clone)]
pub struct CosignLayer {
    /// Signature or attestation.
    pub kind: CosignLayerKind,
    /// The equivalent Sigstore bundle v0.1.
    pub bundle: ParsedBundle,
    /// The signed payload (signatures: the simple-signing JSON; attestations: the envelope).
    pub payload: Vec<u8>,
}

/// The simple-signing payload cosign signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimpleSigning {
    /// The critical section.
    pub critical: Critical,
    /// Optional annotations (unauthenticated by policy unless a rule asks).
    #[serde(default)]
    pub optional: Option<BTreeMap<String, serde_json::Value>>,
}

/// `critical` of a simple-signing payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Critical {
    /// What was signed.
    pub identity: CriticalIdentity,
    /// Which image digest.
    pub image: CriticalImage,
    /// `cosign container image signature`.
    #[serde(rename = "type")]
    pub type_: String,
}

/// `critical.identity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CriticalIdentity {
    /// The repository the signer named (`registry/repo`).
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

/// `critical.image`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CriticalImage {
    /// The signed manifest digest.
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

/// Parses a simple-signing payload.
///
/// # Errors
/// [`EvidenceError::Malformed`] when it is not the cosign shape.
pub fn parse_simple_signing(
    payload: &[u8],
    limits: &Limits,
) -> Result<SimpleSigning, EvidenceError> {
    super::check_json_depth(payload, limits.max_json_depth)?;
    serde_json::from_slice(payload).map_err(|e| EvidenceError::Malformed {
        what: "cosign simple-signing payload",
        detail: e.to_string(),
    })
}

#[derive(Deserialize)]
struct RekorBundle {
    #[serde(rename = "SignedEntryTimestamp")]
    signed_entry_timestamp: String,
    #[serde(rename = "Payload")]
    payload: RekorPayload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RekorPayload {
    body: serde_json::Value,
    integrated_time: i64,
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

fn malformed(what: &'static str, detail: impl Into<String>) -> EvidenceError {
    EvidenceError::Malformed {
        what,
        detail: detail.into(),
    }
}

/// DER certificates of a PEM bundle, in order.
fn pem_certificates(pem_text: &str, what: &'static str) -> Result<Vec<Vec<u8>>, EvidenceError> {
    let blocks = pem::parse_many(pem_text).map_err(|e| malformed(what, e.to_string()))?;
    Ok(blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.into_contents())
        .collect())
}

fn is_self_issued(der: &[u8]) -> bool {
    use der::Decode;
    x509_cert::Certificate::from_der(der)
        .map(|c| c.tbs_certificate.subject == c.tbs_certificate.issuer)
        .unwrap_or(false)
}

/// Converts one cosign layer (its media type, annotations and blob) into a Sigstore bundle.
///
/// `keyed`: the caller verifies with a static key, so the bundle carries a public-key hint
/// instead of the (absent) certificate.
///
/// # Errors
/// [`EvidenceError::Malformed`] for a missing or malformed annotation, payload or Rekor bundle;
/// [`EvidenceError::Statement`]-free: DSSE contents are judged later. A layer without the Rekor
/// bundle annotation is an error (`no transparency-log entry`): custody requires log evidence.
pub fn layer_to_bundle(
    media_type: &str,
    annotations: &BTreeMap<String, String>,
    blob: &[u8],
    keyed: bool,
    limits: &Limits,
) -> Result<CosignLayer, EvidenceError> {
    let kind = match media_type {
        SIMPLE_SIGNING_MEDIA_TYPE => CosignLayerKind::Signature,
        DSSE_MEDIA_TYPE => CosignLayerKind::Attestation,
        other => {
            return Err(malformed(
                "cosign layer",
                format!(
                    "media type {other:?} is neither a simple-signing payload nor a DSSE envelope"
                ),
            ));
        }
    };

    let material = if keyed {
        json!({"publicKey": {"hint": ""}})
    } else {
        let cert_pem = annotations
            .get(ANNOTATION_CERTIFICATE)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| malformed("cosign layer", format!("no {ANNOTATION_CERTIFICATE} annotation: keyless signatures need a certificate (use --key for key-signed images)")))?;
        let mut certs = pem_certificates(cert_pem, "cosign certificate annotation")?;
        if certs.len() != 1 {
            return Err(malformed(
                "cosign certificate annotation",
                format!("holds {} certificates, expected 1", certs.len()),
            ));
        }
        if let Some(chain) = annotations.get(ANNOTATION_CHAIN).filter(|c| !c.is_empty()) {
            certs.extend(
                pem_certificates(chain, "cosign chain annotation")?
                    .into_iter()
                    .filter(|c| !is_self_issued(c)),
            );
        }
        let certs: Vec<_> = certs
            .iter()
            .map(|c| json!({"rawBytes": B64.encode(c)}))
            .collect();
        json!({"x509CertificateChain": {"certificates": certs}})
    };

    let rekor_json = annotations
        .get(ANNOTATION_BUNDLE)
        .filter(|b| !b.is_empty())
        .ok_or_else(|| malformed("cosign layer", format!("no {ANNOTATION_BUNDLE} annotation: the signature has no transparency-log entry, and custody requires one")))?;
    super::check_json_depth(rekor_json.as_bytes(), limits.max_json_depth)?;
    let rekor: RekorBundle = serde_json::from_str(rekor_json)
        .map_err(|e| malformed("cosign Rekor bundle annotation", e.to_string()))?;
    // The body is base64 of the canonical entry; older cosign wrote it as a JSON string.
    let body_b64 = match &rekor.payload.body {
        serde_json::Value::String(s) => s.clone(),
        other => B64.encode(other.to_string()),
    };
    let body = B64
        .decode(&body_b64)
        .map_err(|e| malformed("cosign Rekor entry body", e.to_string()))?;
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct EntryHead {
        kind: String,
        api_version: String,
    }
    let head: EntryHead = serde_json::from_slice(&body)
        .map_err(|e| malformed("cosign Rekor entry body", e.to_string()))?;
    let log_id = hex::decode(&rekor.payload.log_id)
        .map_err(|e| malformed("cosign Rekor bundle logID", e.to_string()))?;

    let tlog_entry = json!({
        "logIndex": rekor.payload.log_index.to_string(),
        "logId": {"keyId": B64.encode(log_id)},
        "kindVersion": {"kind": head.kind, "version": head.api_version},
        "integratedTime": rekor.payload.integrated_time.to_string(),
        "inclusionPromise": {"signedEntryTimestamp": rekor.signed_entry_timestamp},
        "canonicalizedBody": body_b64,
    });

    let content = match kind {
        CosignLayerKind::Signature => {
            let signature = annotations
                .get(ANNOTATION_SIGNATURE)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    malformed(
                        "cosign layer",
                        format!("no {ANNOTATION_SIGNATURE} annotation"),
                    )
                })?;
            let digest = Digest::sha256_of(blob).to_bytes();
            json!({"messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256", "digest": B64.encode(digest)},
                "signature": signature,
            }})
        }
        CosignLayerKind::Attestation => {
            super::check_json_depth(blob, limits.max_json_depth)?;
            let envelope: serde_json::Value = serde_json::from_slice(blob)
                .map_err(|e| malformed("DSSE envelope", e.to_string()))?;
            json!({"dsseEnvelope": envelope})
        }
    };

    let mut bundle = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": material,
    });
    if let (Some(obj), Some(extra)) = (bundle.as_object_mut(), content.as_object()) {
        obj.extend(extra.clone());
    }
    if let Some(vm) = bundle
        .get_mut("verificationMaterial")
        .and_then(|v| v.as_object_mut())
    {
        vm.insert("tlogEntries".into(), json!([tlog_entry]));
    }
    let bytes =
        serde_json::to_vec(&bundle).map_err(|e| malformed("converted bundle", e.to_string()))?;
    Ok(CosignLayer {
        kind,
        bundle: parse_bundle(&bytes, limits)?,
        payload: blob.to_vec(),
    })
}
