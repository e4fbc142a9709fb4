//! Parsed evidence: Sigstore bundles and in-toto statements, behind size-bounded parsers.
//!
//! Parsing establishes shape only; nothing here says whether a signature is good. Every parser
//! takes [`Limits`] and every exceeded limit is an [`EvidenceError::LimitExceeded`] naming the
//! limit, the maximum and the value found.

mod bundle;
pub mod cosign;
mod json;
pub mod oci;
mod statement;

use thiserror::Error;

pub use bundle::{BundleKind, ParsedBundle, parse_bundle};
pub use json::check_json_depth;
pub use statement::{
    InTotoStatement, PredicateRequirement, StatementSubject, StatementVersion, parse_statement,
};

#[cfg(doc)]
use crate::limits::Limits;

/// Why a piece of evidence could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// Occurs when a size or count in the input is above a [`Limits`] bound.
    #[error("{what} is {found}, above the limit of {max} ({limit})")]
    LimitExceeded {
        /// What was measured, for a person ("bundle size in bytes").
        what: &'static str,
        /// The name of the field of [`Limits`].
        limit: &'static str,
        /// The bound.
        max: u64,
        /// The value found.
        found: u64,
    },
    /// Occurs when the input is not valid JSON of the expected shape.
    #[error("{what} is malformed: {detail}")]
    Malformed {
        /// What was being parsed.
        what: &'static str,
        /// The parser's complaint.
        detail: String,
    },
    /// Occurs when a bundle's `mediaType` is not a Sigstore bundle version custody knows.
    #[error(
        "unsupported bundle media type {found:?}: expected application/vnd.dev.sigstore.bundle+json;version=0.1 or 0.2, or application/vnd.dev.sigstore.bundle.v0.3+json"
    )]
    UnsupportedMediaType {
        /// The media type found.
        found: String,
    },
    /// Occurs when a DSSE payload is not an in-toto statement custody understands.
    #[error("in-toto statement: {0}")]
    Statement(String),
}

pub(crate) fn limit(
    what: &'static str,
    limit: &'static str,
    max: u64,
    found: usize,
) -> EvidenceError {
    EvidenceError::LimitExceeded {
        what,
        limit,
        max,
        found: u64::try_from(found).unwrap_or(u64::MAX),
    }
}

pub(crate) fn check_count(
    what: &'static str,
    limit_name: &'static str,
    max: usize,
    found: usize,
) -> Result<(), EvidenceError> {
    if found > max {
        return Err(limit(
            what,
            limit_name,
            u64::try_from(max).unwrap_or(u64::MAX),
            found,
        ));
    }
    Ok(())
}

/// What a piece of evidence is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A signature over the digest.
    Signature,
    /// An attestation about the digest.
    Attestation,
    /// An unsigned SBOM document.
    Sbom,
    /// Something else (listed only).
    Other,
}
