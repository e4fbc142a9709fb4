//! Why verification failed: which check, and what it found.

use serde::Serialize;
use thiserror::Error;

use crate::evidence::EvidenceError;

/// The cryptographic checks of bundle verification, each with a stable kebab-case code.
///
/// The codes appear in JSON output and in docs/verification.md; a test asserts they are unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Check {
    /// The bundle parses, has a known media type and is within limits.
    BundleFormat,
    /// The bundle's verification material is of the kind the caller asked for (certificate for
    /// keyless, public key for `--key`).
    VerificationMaterial,
    /// The certificate chain is well-formed and contains no root or self-signed certificate.
    CertificateChain,
    /// The leaf chains to a trusted Fulcio CA valid at the signing time, with the code-signing EKU.
    CertificateChainTrust,
    /// The leaf certificate is within its validity period at every verified signing time.
    CertificateValidity,
    /// The embedded signed certificate timestamp verifies against a trusted CT log key.
    Sct,
    /// The log entry's log ID is one the trust root knows.
    TransparencyLogKey,
    /// The Merkle inclusion proof hashes to the checkpoint's root.
    InclusionProof,
    /// The checkpoint (signed tree head) is well-formed and signed by the log.
    Checkpoint,
    /// The signed entry timestamp (SET) verifies against the log key.
    InclusionPromise,
    /// The log entry describes this bundle: same signature, certificate/key and artifact digest.
    LogEntryMatch,
    /// The log's integrated time lies within the certificate's validity and not in the future.
    IntegratedTime,
    /// RFC 3161 timestamps verify against a trusted TSA valid at that time.
    Timestamp,
    /// There is at least one verified source of time (SET-backed integrated time or TSA).
    VerifiedTime,
    /// The signature (message or DSSE) verifies with the certificate's or given key.
    Signature,
    /// The signature is over the given artifact (message digest or in-toto subject).
    ArtifactBinding,
    /// The DSSE payload is an in-toto statement custody can read.
    Statement,
    /// The trust root could be used for this verification.
    TrustRoot,
    /// A cosign signature's payload names the image digest being verified.
    ImageDigest,
    /// A cosign signature's payload names the repository being verified.
    ImageReference,
}

impl Check {
    /// Every check, in the order verification runs them.
    pub const ALL: &'static [Check] = &[
        Check::BundleFormat,
        Check::VerificationMaterial,
        Check::CertificateChain,
        Check::VerifiedTime,
        Check::Timestamp,
        Check::CertificateChainTrust,
        Check::CertificateValidity,
        Check::Sct,
        Check::TransparencyLogKey,
        Check::InclusionProof,
        Check::Checkpoint,
        Check::InclusionPromise,
        Check::IntegratedTime,
        Check::Signature,
        Check::ArtifactBinding,
        Check::LogEntryMatch,
        Check::Statement,
        Check::ImageDigest,
        Check::ImageReference,
        Check::TrustRoot,
    ];

    /// The stable code, as serialised.
    pub fn code(self) -> &'static str {
        match self {
            Check::BundleFormat => "bundle-format",
            Check::VerificationMaterial => "verification-material",
            Check::CertificateChain => "certificate-chain",
            Check::CertificateChainTrust => "certificate-chain-trust",
            Check::CertificateValidity => "certificate-validity",
            Check::Sct => "sct",
            Check::TransparencyLogKey => "transparency-log-key",
            Check::InclusionProof => "inclusion-proof",
            Check::Checkpoint => "checkpoint",
            Check::InclusionPromise => "inclusion-promise",
            Check::LogEntryMatch => "log-entry-match",
            Check::IntegratedTime => "integrated-time",
            Check::Timestamp => "timestamp",
            Check::VerifiedTime => "verified-time",
            Check::Signature => "signature",
            Check::ArtifactBinding => "artifact-binding",
            Check::Statement => "statement",
            Check::TrustRoot => "trust-root",
            Check::ImageDigest => "image-digest",
            Check::ImageReference => "image-reference",
        }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// Why a bundle did not verify. Every variant names its [`Check`] (see [`VerifyError::check`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The bundle could not be parsed or is outside the limits.
    #[error("bundle-format: {0}")]
    Evidence(#[from] EvidenceError),
    /// The bundle is signed with a managed key but no key was given.
    #[error(
        "verification-material: the bundle is signed with a public key (hint {hint:?}), not a certificate; pass the key with --key"
    )]
    KeyRequired {
        /// The bundle's key hint.
        hint: String,
    },
    /// A key was given but the bundle carries a certificate.
    #[error(
        "verification-material: a public key was given but the bundle carries a signing certificate; verify it with an identity policy instead"
    )]
    CertificateInsteadOfKey,
    /// The bundle carries no certificate.
    #[error("certificate-chain: the bundle's certificate chain is empty")]
    EmptyChain,
    /// The bundle's chain contains a root (self-signed or trusted-root) certificate.
    #[error(
        "certificate-chain: certificate {position} of the bundle's chain ({subject}) is a root certificate; a bundle must not carry its trust anchor"
    )]
    RootInChain {
        /// Position in the chain (0 = leaf).
        position: usize,
        /// The certificate's subject.
        subject: String,
    },
    /// A certificate carries a critical extension custody does not know.
    #[error(
        "certificate-chain: certificate {position} of the bundle's chain has an unknown critical extension {oid}"
    )]
    UnknownCriticalExtension {
        /// Position in the chain (0 = leaf).
        position: usize,
        /// The extension's OID.
        oid: String,
    },
    /// A certificate in the chain does not parse.
    #[error(
        "certificate-chain: certificate {position} of the bundle's chain does not parse: {detail}"
    )]
    BadCertificate {
        /// Position in the chain (0 = leaf).
        position: usize,
        /// The parser's complaint.
        detail: String,
    },
    /// A verified time is later than the verification time.
    #[error("{check}: verified time {time} is later than the verification time {now}")]
    TimeInFuture {
        /// Which check (integrated time or timestamp).
        check: Check,
        /// The time found.
        time: String,
        /// The verification time given.
        now: String,
    },
    /// A cryptographic check failed; `detail` says what was found.
    #[error("{check}: {detail}")]
    Failed {
        /// Which check.
        check: Check,
        /// What it found.
        detail: String,
    },
}

impl VerifyError {
    /// The check that failed.
    pub fn check(&self) -> Check {
        match self {
            VerifyError::Evidence(_) => Check::BundleFormat,
            VerifyError::KeyRequired { .. } | VerifyError::CertificateInsteadOfKey => {
                Check::VerificationMaterial
            }
            VerifyError::EmptyChain
            | VerifyError::UnknownCriticalExtension { .. }
            | VerifyError::RootInChain { .. }
            | VerifyError::BadCertificate { .. } => Check::CertificateChain,
            VerifyError::TimeInFuture { check, .. } | VerifyError::Failed { check, .. } => *check,
        }
    }
}

/// Sorts an error of the Sigstore verifier into custody's checks.
pub(super) fn from_sigstore(error: sigstore_verify::Error) -> VerifyError {
    use sigstore_verify::bundle::Error as B;
    use sigstore_verify::{
        CertificateError as C, Error as E, TimestampError as T, TransparencyLogError as L,
    };
    let check = match &error {
        E::Certificate(C::Malformed(_)) => Check::CertificateChain,
        E::Certificate(C::ChainInvalid(_) | C::NoValidAuthority { .. }) => {
            Check::CertificateChainTrust
        }
        E::Certificate(C::NotYetValid { .. } | C::Expired { .. }) => Check::CertificateValidity,
        E::Certificate(C::Sct(_)) => Check::Sct,
        E::TransparencyLog(L::UnknownLog { .. }) => Check::TransparencyLogKey,
        E::TransparencyLog(L::InclusionProof(_)) => Check::InclusionProof,
        E::TransparencyLog(L::Checkpoint(_)) => Check::Checkpoint,
        E::TransparencyLog(L::InclusionPromise(_)) => Check::InclusionPromise,
        E::TransparencyLog(L::EntryMismatch(_) | L::MalformedEntry(_)) => Check::LogEntryMatch,
        E::TransparencyLog(L::IntegratedTime(_)) => Check::IntegratedTime,
        E::Timestamp(T::NoVerifiedTimestamp(_)) => Check::VerifiedTime,
        E::Timestamp(_) => Check::Timestamp,
        E::SignatureInvalid(_) => Check::Signature,
        E::ArtifactMismatch(_) | E::UnsupportedArtifact(_) => Check::ArtifactBinding,
        E::InvalidTrustRoot(_) | E::TrustRoot(_) | E::TrustedCertificate(_) => Check::TrustRoot,
        E::Crypto(_) => Check::Signature,
        E::Bundle(
            B::MissingInclusionProof(_) | B::MissingCheckpoint | B::LogIndexOutOfRange { .. },
        ) => Check::InclusionProof,
        E::Bundle(B::MissingInclusionPromise(_)) => Check::InclusionPromise,
        E::Bundle(B::MissingSigningTimeEvidence | B::MissingTimestamp) => Check::VerifiedTime,
        E::Bundle(B::CertificateChainNotAllowed(_)) => Check::CertificateChain,
        // Structure errors, unsupported content, and anything added to the
        // non-exhaustive enum later: the bundle is not something we can verify.
        _ => Check::BundleFormat,
    };
    VerifyError::Failed {
        check,
        detail: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_codes_are_unique_and_all_listed() {
        let mut codes: Vec<_> = Check::ALL.iter().map(|c| c.code()).collect();
        let n = codes.len();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), n, "duplicate check code");
        assert_eq!(
            n, 20,
            "a check was added: list it in Check::ALL and docs/verification.md"
        );
        for c in Check::ALL {
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::Value::String(c.code().into())
            );
        }
    }
}
