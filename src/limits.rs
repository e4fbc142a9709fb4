//! Every bound custody applies to input, in one place.
//!
//! Each limit is named; exceeding one is its own error that names the limit, the maximum and
//! the value found ([`crate::evidence::EvidenceError::LimitExceeded`]). Defaults are chosen to be
//! far above what real Sigstore evidence needs (a keyless bundle is ~5 KiB, a DSSE bundle with a
//! large SLSA predicate a few hundred KiB) and far below what would hurt a service.

use serde::Serialize;

/// Bounds on input sizes and counts. `Limits::default()` is what the CLI and service use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Maximum size of a Sigstore bundle document, in bytes (default 16 MiB).
    pub max_bundle_bytes: u64,
    /// Maximum nesting depth of any JSON document custody parses (default 64).
    pub max_json_depth: usize,
    /// Maximum number of transparency-log entries in one bundle (default 32, as sigstore-go).
    pub max_tlog_entries: usize,
    /// Maximum number of RFC 3161 timestamps in one bundle (default 32).
    pub max_timestamps: usize,
    /// Maximum number of certificates in a bundle's certificate chain (default 10).
    pub max_chain_certificates: usize,
    /// Maximum size of a DSSE payload, in bytes (default 8 MiB).
    pub max_dsse_payload_bytes: u64,
    /// Maximum number of subjects in an in-toto statement (default 1024).
    pub max_statement_subjects: usize,
    /// Maximum size of a `trusted_root.json`, in bytes (default 4 MiB).
    pub max_trust_root_bytes: u64,
    /// Maximum size of a PEM public key file, in bytes (default 64 KiB).
    pub max_key_bytes: u64,
    /// Artifacts up to this size are read into memory and verified as bytes; larger ones are
    /// hashed while streaming and verified by digest (default 64 MiB).
    pub max_artifact_in_memory_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bundle_bytes: 16 << 20,
            max_json_depth: 64,
            max_tlog_entries: 32,
            max_timestamps: 32,
            max_chain_certificates: 10,
            max_dsse_payload_bytes: 8 << 20,
            max_statement_subjects: 1024,
            max_trust_root_bytes: 4 << 20,
            max_key_bytes: 64 << 10,
            max_artifact_in_memory_bytes: 64 << 20,
        }
    }
}
