//! Trust roots: what custody trusts, loaded once and identified by a content hash.
//!
//! A [`TrustRoot`] wraps a Sigstore `trusted_root.json` (Fulcio CAs, Rekor v1/v2 log keys, CT
//! log keys, timestamp authorities, each with its validity window). custody ships the Sigstore
//! production and staging roots in `trust-roots/` (embedded at build time); a private or
//! air-gapped Sigstore is a `trusted_root.json` file. A [`StaticKey`] is a PEM public key for
//! managed-key signing.
//!
//! Both carry a stable content hash ([`TrustRoot::content_hash`], [`StaticKey::content_hash`])
//! that verdicts record, so an auditor can tell exactly which roots judged an artifact. The
//! trust-root hash is the SHA-256 of the document's canonical JSON (object keys sorted, no
//! insignificant whitespace), so re-indenting a file does not change it but any change of
//! content does.
//!
//! This module never touches the network: updating a trust root is a reviewed commit (or a file
//! an operator provides), never a TUF fetch at verification time.

mod key;
mod summary;

use sigstore_verify::Verifier;
use sigstore_verify::trust_root::TrustedRoot;
use thiserror::Error;

use crate::limits::Limits;
use crate::reference::Digest;

pub use key::{KeyError, StaticKey};
pub use summary::{AuthoritySummary, LogSummary, TrustRootSummary, Window};

/// The Sigstore public-good production trusted root shipped in `trust-roots/`.
pub const PRODUCTION_TRUSTED_ROOT: &str =
    include_str!("../../trust-roots/sigstore-public-good.trusted_root.json");
/// The Sigstore staging trusted root shipped in `trust-roots/`.
pub const STAGING_TRUSTED_ROOT: &str =
    include_str!("../../trust-roots/sigstore-staging.trusted_root.json");

const TRUSTED_ROOT_MEDIA_TYPE_PREFIX: &str = "application/vnd.dev.sigstore.trustedroot";

/// A loaded, validated trust root, ready to verify with.
pub struct TrustRoot {
    name: String,
    content_hash: Digest,
    root: TrustedRoot,
    verifier: Verifier,
}

impl std::fmt::Debug for TrustRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustRoot")
            .field("name", &self.name)
            .field("content_hash", &self.content_hash.to_string())
            .finish_non_exhaustive()
    }
}

/// Why a trust root could not be loaded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TrustError {
    /// Occurs when the document is larger than [`Limits::max_trust_root_bytes`].
    #[error("trusted root {name} is {found} bytes, more than the limit of {max} bytes")]
    TooLarge {
        /// Name of the trust root.
        name: String,
        /// The limit.
        max: u64,
        /// The size found.
        found: u64,
    },
    /// Occurs when the document is not JSON or not a Sigstore trusted root.
    #[error("trusted root {name} is not a valid Sigstore trusted_root.json: {detail}")]
    Malformed {
        /// Name of the trust root.
        name: String,
        /// What was wrong.
        detail: String,
    },
    /// Occurs when the trusted root parses but its material is unusable (bad key, bad
    /// certificate, a validity window that ends before it starts, duplicate log IDs).
    #[error("trusted root {name} is unusable: {detail}")]
    Invalid {
        /// Name of the trust root.
        name: String,
        /// What was wrong.
        detail: String,
    },
}

impl TrustRoot {
    /// The Sigstore public-good production root shipped with custody.
    ///
    /// # Errors
    /// Only if the embedded file is broken, which the test suite rules out.
    pub fn production() -> Result<Self, TrustError> {
        Self::from_json(
            "sigstore-production",
            PRODUCTION_TRUSTED_ROOT.as_bytes(),
            &Limits::default(),
        )
    }

    /// The Sigstore staging root shipped with custody.
    ///
    /// # Errors
    /// Only if the embedded file is broken, which the test suite rules out.
    pub fn staging() -> Result<Self, TrustError> {
        Self::from_json(
            "sigstore-staging",
            STAGING_TRUSTED_ROOT.as_bytes(),
            &Limits::default(),
        )
    }

    /// Loads a `trusted_root.json` document (any Sigstore deployment, public or private).
    ///
    /// `name` is how verdicts and errors refer to it (a file path or a configured name).
    ///
    /// # Errors
    /// [`TrustError::TooLarge`] past [`Limits::max_trust_root_bytes`]; [`TrustError::Malformed`]
    /// for bad JSON, a wrong `mediaType` or missing fields; [`TrustError::Invalid`] for unusable
    /// keys, certificates or validity windows.
    pub fn from_json(name: &str, json: &[u8], limits: &Limits) -> Result<Self, TrustError> {
        let found = u64::try_from(json.len()).unwrap_or(u64::MAX);
        if found > limits.max_trust_root_bytes {
            return Err(TrustError::TooLarge {
                name: name.to_owned(),
                max: limits.max_trust_root_bytes,
                found,
            });
        }
        let malformed = |detail: String| TrustError::Malformed {
            name: name.to_owned(),
            detail,
        };
        crate::evidence::check_json_depth(json, limits.max_json_depth)
            .map_err(|e| malformed(e.to_string()))?;
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| malformed(e.to_string()))?;
        let media_type = value
            .get("mediaType")
            .and_then(|m| m.as_str())
            .unwrap_or_default();
        if !media_type.starts_with(TRUSTED_ROOT_MEDIA_TYPE_PREFIX) {
            return Err(malformed(format!(
                "mediaType is {media_type:?}, expected {TRUSTED_ROOT_MEDIA_TYPE_PREFIX}+json;version=0.1"
            )));
        }
        // serde_json's Value keeps object keys sorted (BTreeMap), so this is canonical.
        let canonical = serde_json::to_vec(&value).map_err(|e| malformed(e.to_string()))?;
        let text = std::str::from_utf8(json).map_err(|e| malformed(e.to_string()))?;
        let root = TrustedRoot::from_json(text).map_err(|e| malformed(e.to_string()))?;
        if root.certificate_authorities.is_empty() && root.tlogs.is_empty() {
            return Err(TrustError::Invalid {
                name: name.to_owned(),
                detail: "it has neither certificate authorities nor transparency logs".into(),
            });
        }
        let verifier = Verifier::new(&root).map_err(|e| TrustError::Invalid {
            name: name.to_owned(),
            detail: e.to_string(),
        })?;
        Ok(Self {
            name: name.to_owned(),
            content_hash: Digest::sha256_of(&canonical),
            root,
            verifier,
        })
    }

    /// How verdicts refer to this root.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 of the root's canonical JSON; stable across re-formatting.
    pub fn content_hash(&self) -> &Digest {
        &self.content_hash
    }

    /// The parsed document.
    pub fn trusted_root(&self) -> &TrustedRoot {
        &self.root
    }

    /// The prepared Sigstore verifier (keys parsed and anchors built once, at load).
    pub(crate) fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// What this root trusts, with validity windows, for people and for `--output json`.
    pub fn summary(&self) -> TrustRootSummary {
        summary::summarize(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_roots_load_and_hash_is_stable_under_reformatting() {
        let prod = TrustRoot::production().unwrap();
        let staging = TrustRoot::staging().unwrap();
        assert_ne!(prod.content_hash(), staging.content_hash());

        let value: serde_json::Value = serde_json::from_str(PRODUCTION_TRUSTED_ROOT).unwrap();
        let compact = serde_json::to_vec(&value).unwrap();
        let reloaded = TrustRoot::from_json("compact", &compact, &Limits::default()).unwrap();
        assert_eq!(prod.content_hash(), reloaded.content_hash());
    }

    #[test]
    fn any_content_change_changes_the_hash() {
        let edited = PRODUCTION_TRUSTED_ROOT.replacen(
            "https://rekor.sigstore.dev",
            "https://rekor.example",
            1,
        );
        let a = TrustRoot::production().unwrap();
        let b = TrustRoot::from_json("edited", edited.as_bytes(), &Limits::default()).unwrap();
        assert_ne!(a.content_hash(), b.content_hash());
    }

    #[test]
    fn rejects_wrong_media_type_bad_json_and_oversize() {
        let wrong = PRODUCTION_TRUSTED_ROOT.replacen("trustedroot", "bundle", 1);
        assert!(matches!(
            TrustRoot::from_json("x", wrong.as_bytes(), &Limits::default()),
            Err(TrustError::Malformed { .. })
        ));
        assert!(matches!(
            TrustRoot::from_json("x", b"{not json", &Limits::default()),
            Err(TrustError::Malformed { .. })
        ));
        let limits = Limits {
            max_trust_root_bytes: 10,
            ..Limits::default()
        };
        assert!(matches!(
            TrustRoot::from_json("x", PRODUCTION_TRUSTED_ROOT.as_bytes(), &limits),
            Err(TrustError::TooLarge { max: 10, .. })
        ));
    }

    #[test]
    fn rejects_an_empty_root() {
        let empty = br#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","tlogs":[],"certificateAuthorities":[],"ctlogs":[],"timestampAuthorities":[]}"#;
        assert!(matches!(
            TrustRoot::from_json("empty", empty, &Limits::default()),
            Err(TrustError::Invalid { .. })
        ));
    }

    #[test]
    fn rejects_a_window_that_ends_before_it_starts() {
        let mut value: serde_json::Value = serde_json::from_str(PRODUCTION_TRUSTED_ROOT).unwrap();
        value["tlogs"][0]["publicKey"]["validFor"] =
            serde_json::json!({"start": "2024-01-01T00:00:00Z", "end": "2023-01-01T00:00:00Z"});
        let json = serde_json::to_vec(&value).unwrap();
        assert!(matches!(
            TrustRoot::from_json("backwards", &json, &Limits::default()),
            Err(TrustError::Invalid { .. })
        ));
    }
}
