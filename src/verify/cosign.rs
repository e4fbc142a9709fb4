//! Verification of cosign OCI evidence (signature and attestation layers) for an image digest.

use serde::Serialize;

use super::{ArtifactInput, Check, VerifiedFacts, VerifyError, verify_bundle};
use crate::evidence::cosign::{
    CosignLayer, CosignLayerKind, SIMPLE_SIGNING_TYPE, parse_simple_signing,
};
use crate::limits::Limits;
use crate::reference::{Digest, ImageRef};
use crate::trust::{StaticKey, TrustRoot};

/// What a verified cosign layer established, beyond the bundle facts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CosignFacts {
    /// The bundle-level facts (signer, times, log entries, statement for attestations).
    pub facts: VerifiedFacts,
    /// For signatures: the repository the signer named (`critical.identity.docker-reference`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_reference: Option<String>,
}

/// Verifies a converted cosign layer as evidence for `image` (which must be digest-pinned).
///
/// Signatures: the bundle verifies over the payload, the payload is a cosign simple-signing
/// document whose `docker-manifest-digest` is the image's digest, and whose `docker-reference`
/// names the same repository path. The registry host is not compared: images are mirrored and
/// promoted between registries by digest, and the digest — which is what is signed — already
/// pins the content. Attestations: the DSSE bundle verifies and the in-toto statement has a
/// subject with the image's digest.
///
/// # Errors
/// The failed [`Check`], including [`Check::ImageDigest`] and [`Check::ImageReference`].
pub fn verify_cosign_layer(
    layer: &CosignLayer,
    image: &ImageRef,
    digest: &Digest,
    trust: &TrustRoot,
    key: Option<&StaticKey>,
    now: jiff::Timestamp,
    limits: &Limits,
) -> Result<CosignFacts, VerifyError> {
    match layer.kind {
        CosignLayerKind::Signature => {
            let facts = verify_bundle(
                &layer.bundle,
                ArtifactInput::Bytes(&layer.payload),
                trust,
                key,
                now,
                limits,
            )?;
            let payload = parse_simple_signing(&layer.payload, limits)?;
            if payload.critical.type_ != SIMPLE_SIGNING_TYPE {
                return Err(VerifyError::Failed {
                    check: Check::ImageDigest,
                    detail: format!(
                        "payload type is {:?}, expected {SIMPLE_SIGNING_TYPE:?}",
                        payload.critical.type_
                    ),
                });
            }
            if payload.critical.image.docker_manifest_digest != digest.to_string() {
                return Err(VerifyError::Failed {
                    check: Check::ImageDigest,
                    detail: format!(
                        "the signed payload names {}, not the image digest {digest}",
                        payload.critical.image.docker_manifest_digest
                    ),
                });
            }
            let named = &payload.critical.identity.docker_reference;
            if !same_repository(named, image) {
                return Err(VerifyError::Failed {
                    check: Check::ImageReference,
                    detail: format!(
                        "the signed payload names repository {named}, not {}",
                        image.repository()
                    ),
                });
            }
            Ok(CosignFacts {
                facts,
                docker_reference: Some(named.clone()),
            })
        }
        CosignLayerKind::Attestation => {
            let facts = verify_bundle(
                &layer.bundle,
                ArtifactInput::Digest(digest),
                trust,
                key,
                now,
                limits,
            )?;
            Ok(CosignFacts {
                facts,
                docker_reference: None,
            })
        }
    }
}

/// Whether a signed `docker-reference` names `image`'s repository path (any registry host).
fn same_repository(named: &str, image: &ImageRef) -> bool {
    match named.parse::<ImageRef>() {
        Ok(r) => r.repository() == image.repository(),
        Err(_) => false,
    }
}

/// Verifies a Sigstore bundle attached to an image (OCI 1.1 referrer) against the image digest.
///
/// # Errors
/// The failed [`Check`].
pub fn verify_attached_bundle(
    bundle: &crate::evidence::ParsedBundle,
    digest: &Digest,
    trust: &TrustRoot,
    key: Option<&StaticKey>,
    now: jiff::Timestamp,
    limits: &Limits,
) -> Result<VerifiedFacts, VerifyError> {
    verify_bundle(
        bundle,
        ArtifactInput::Digest(digest),
        trust,
        key,
        now,
        limits,
    )
}
