//! Cryptographic verification of Sigstore bundles, offline, against a [`TrustRoot`].
//!
//! [`verify_bundle`] is a pure function: bundle bytes (already parsed), the artifact (bytes or
//! digest), a trust root, an optional static key and the verification time go in; verified
//! facts or the failed check come out. No network, no file system, no clock.
//!
//! The steps follow the Sigstore client specification and sigstore-go's order:
//!
//! 1. verification material is of the kind asked for (certificate, or key with `--key`);
//! 2. custody's own chain checks (no root or self-signed certificate in the bundle);
//! 3. the Sigstore verifier (`sigstore-verify`): verified times (RFC 3161 TSA timestamps and
//!    SET-backed Rekor v1 integrated times), the Fulcio chain at *every* verified time (not wall
//!    time) with the code-signing EKU, the SCT, Rekor v1/v2 inclusion proofs with signed
//!    (co-signed) checkpoints and SETs, the signature (message or DSSE PAE), the artifact binding
//!    (message digest or in-toto subject) and the log entry's consistency with the bundle;
//! 4. verified times are not later than the verification time given;
//! 5. facts: identity, every SAN, issuer, every Fulcio claim, times and their sources, log
//!    entries, and for DSSE the in-toto statement.
//!
//! It does not judge *who* signed: that is [`crate::policy`]'s job, on the facts.

mod cert;
pub mod cosign;
mod error;
mod facts;

use jiff::Timestamp;
use sigstore_verify::types::{
    Artifact, ArtifactDigest, HashAlgorithm, KindVersion, SignatureContent,
};
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy};

use crate::evidence::{ParsedBundle, parse_statement};
use crate::limits::Limits;
use crate::reference::{Digest, DigestAlgorithm};
use crate::trust::{StaticKey, TrustRoot};

pub use error::{Check, VerifyError};
pub use facts::{
    CertificateIdentity, FACTS_MEDIA_TYPE, FulcioClaims, LogEntry, San, SanKind, Signer,
    TimeSource, TrustRootRef, VerifiedFacts, VerifiedTime,
};

/// The artifact a bundle is checked against.
#[derive(Debug, Clone, Copy)]
pub enum ArtifactInput<'a> {
    /// The artifact's bytes.
    Bytes(&'a [u8]),
    /// The artifact's digest, when the bytes are not at hand (an image digest, a large file
    /// hashed while streaming). Signatures that cannot be checked from a digest (Ed25519 over
    /// the raw message) fail with [`Check::ArtifactBinding`].
    Digest(&'a Digest),
}

/// Verifies a parsed bundle against an artifact, offline.
///
/// `key`: `None` verifies a keyless (certificate) bundle; `Some` verifies a managed-key bundle
/// with that key. `now` is the verification time: verified signing times must not be later.
/// Certificates are checked at the verified signing times, never at `now`.
///
/// Callers must still apply an identity policy to the returned facts
/// ([`crate::policy::IdentityPolicy::evaluate`]): verification alone proves only that *some*
/// identity the trust root's CAs accept signed.
///
/// # Errors
/// A [`VerifyError`] naming the failed [`Check`] and what it found.
pub fn verify_bundle(
    parsed: &ParsedBundle,
    artifact: ArtifactInput<'_>,
    trust: &TrustRoot,
    key: Option<&StaticKey>,
    now: Timestamp,
    limits: &Limits,
) -> Result<VerifiedFacts, VerifyError> {
    let bundle = parsed.bundle();

    // 1. The material must be what the caller asked for.
    match (key, parsed.public_key_hint()) {
        (None, Some(hint)) => {
            return Err(VerifyError::KeyRequired {
                hint: hint.to_owned(),
            });
        }
        (Some(_), None) => return Err(VerifyError::CertificateInsteadOfKey),
        _ => {}
    }

    // 2. custody's own chain checks.
    let certificates = parsed.certificates();
    if key.is_none() {
        cert::check_chain(&certificates)?;
    }

    // 3. The Sigstore verifier, with no identity requirement: judgement is policy's job.
    let sigstore_artifact = match artifact {
        ArtifactInput::Bytes(bytes) => Artifact::from_blob(bytes),
        ArtifactInput::Digest(d) => Artifact::from_digest(to_sigstore_digest(d)?),
    };
    let result = match key {
        None => trust.verifier().verify(
            sigstore_artifact,
            bundle,
            &VerificationPolicy::any_identity(),
        ),
        Some(k) => trust.verifier().verify(
            sigstore_artifact,
            bundle,
            &PublicKeyVerificationPolicy::new(k.spki().clone()),
        ),
    }
    .map_err(error::from_sigstore)?;

    // 4. Verified times must not be later than the verification time.
    for time in result.verified_timestamps() {
        if *time > now {
            return Err(VerifyError::TimeInFuture {
                check: Check::IntegratedTime,
                time: time.to_string(),
                now: now.to_string(),
            });
        }
    }

    // 5. Facts.
    let log_entries: Vec<facts::LogEntry> = bundle
        .verification_material
        .tlog_entries
        .iter()
        .map(|e| facts::LogEntry {
            log_id: hex::encode(e.log_id.key_id.as_bytes()),
            log_index: e.log_index.get(),
            kind: e.kind_version.kind(),
            version: e.kind_version.version(),
            integrated_time: e.integrated_time.map(|t| t.to_string()),
            inclusion_promise: e.inclusion_promise.is_some()
                && e.kind_version != KindVersion::HashedRekordV002,
            inclusion_proof: e.inclusion_proof.is_some(),
        })
        .collect();
    // The Sigstore verifier lists verified times by source, in a fixed order: for certificates,
    // RFC 3161 timestamps first, then SET-backed integrated times; for keys, the reverse.
    let tsa_count = bundle
        .verification_material
        .timestamp_verification_data
        .rfc3161_timestamps
        .len();
    let log_times: Vec<facts::TimeSource> = bundle
        .verification_material
        .tlog_entries
        .iter()
        .filter(|e| {
            e.inclusion_promise.is_some()
                && e.integrated_time.is_some()
                && e.kind_version != KindVersion::HashedRekordV002
        })
        .map(|e| facts::TimeSource::TransparencyLog {
            log_id: hex::encode(e.log_id.key_id.as_bytes()),
            log_index: e.log_index.get(),
        })
        .collect();
    let sources: Vec<facts::TimeSource> = if key.is_none() {
        std::iter::repeat_n(facts::TimeSource::Rfc3161, tsa_count)
            .chain(log_times)
            .collect()
    } else {
        log_times
            .into_iter()
            .chain(std::iter::repeat_n(facts::TimeSource::Rfc3161, tsa_count))
            .collect()
    };
    let timestamps = result
        .verified_timestamps()
        .iter()
        .zip(
            sources
                .into_iter()
                .chain(std::iter::repeat(facts::TimeSource::Rfc3161)),
        )
        .map(|(t, source)| facts::VerifiedTime {
            time: t.to_string(),
            source,
        })
        .collect();

    let statement = match &bundle.content {
        SignatureContent::DsseEnvelope(envelope) => Some(
            parse_statement(envelope.payload.as_bytes(), limits).map_err(|e| {
                VerifyError::Failed {
                    check: Check::Statement,
                    detail: e.to_string(),
                }
            })?,
        ),
        _ => None,
    };

    let artifact_digest = match (artifact, &statement) {
        (ArtifactInput::Digest(d), _) => d.clone(),
        (ArtifactInput::Bytes(bytes), _) => Digest::sha256_of(bytes),
    };

    let signer = match key {
        Some(k) => facts::Signer::Key {
            key_digest: k.content_hash().clone(),
            algorithm: k.algorithm_name(),
            hint: parsed.public_key_hint().unwrap_or_default().to_owned(),
        },
        None => {
            let info = result.certificate().ok_or_else(|| VerifyError::Failed {
                check: Check::CertificateChain,
                detail: "the verifier returned no certificate for a keyless bundle".into(),
            })?;
            let leaf = certificates.first().copied().unwrap_or_default();
            let sans = cert::subject_alternative_names(leaf);
            let identity = result
                .identity()
                .map(|s| s.as_str().to_owned())
                .or_else(|| sans.first().map(|s| s.value.clone()));
            facts::Signer::Certificate(Box::new(facts::CertificateIdentity {
                identity,
                subject_alternative_names: sans,
                issuer: result.issuer().map(str::to_owned),
                not_before: info.not_before.to_string(),
                not_after: info.not_after.to_string(),
                certificate_digest: Digest::sha256_of(leaf),
                claims: facts::FulcioClaims::from_sigstore(&info.ci_claims),
            }))
        }
    };

    Ok(VerifiedFacts {
        media_type: facts::FACTS_MEDIA_TYPE,
        bundle_media_type: parsed.media_type().to_owned(),
        bundle_digest: parsed.digest().clone(),
        kind: parsed.kind(),
        artifact_digest,
        signer,
        timestamps,
        log_entries,
        statement,
        trust_root: facts::TrustRootRef {
            name: trust.name().to_owned(),
            content_hash: trust.content_hash().clone(),
        },
    })
}

fn to_sigstore_digest(d: &Digest) -> Result<ArtifactDigest, VerifyError> {
    let algorithm = match d.algorithm() {
        DigestAlgorithm::Sha256 => HashAlgorithm::Sha2256,
        DigestAlgorithm::Sha384 => HashAlgorithm::Sha2384,
        DigestAlgorithm::Sha512 => HashAlgorithm::Sha2512,
    };
    ArtifactDigest::new(algorithm, d.to_bytes()).map_err(|e| VerifyError::Failed {
        check: Check::ArtifactBinding,
        detail: e.to_string(),
    })
}
