//! OCI and Docker manifests and indexes, parsed with bounds.
//!
//! Only the fields custody reads are modelled; unknown fields are ignored (registries add their
//! own). Every descriptor digest is parsed into a [`Digest`], so a malformed digest in a manifest
//! is a parse error, not a request to a strange URL later.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{EvidenceError, check_count, check_json_depth};
use crate::reference::Digest;

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema 2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The media types custody asks registries for.
pub const MANIFEST_MEDIA_TYPES: &[&str] = &[
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

/// Maximum number of entries custody reads from one manifest's `layers` or `manifests`.
pub const MAX_DESCRIPTORS: usize = 1024;

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Digest of the referenced content.
    #[serde(deserialize_with = "de_digest")]
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Artifact type (OCI 1.1 referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Platform (index entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// A platform of an index entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// e.g. `amd64`.
    pub architecture: String,
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn de_digest<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

/// An image manifest (OCI or Docker schema 2), possibly an OCI 1.1 artifact with a subject.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// The config descriptor.
    pub config: Descriptor,
    /// The layers.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// The subject (OCI 1.1 referrers).
    #[serde(default)]
    pub subject: Option<Descriptor>,
    /// The artifact type (OCI 1.1).
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl ImageManifest {
    /// The artifact type: `artifactType`, else the config media type (OCI 1.1 rule).
    pub fn effective_artifact_type(&self) -> &str {
        self.artifact_type
            .as_deref()
            .unwrap_or(&self.config.media_type)
    }
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// The entries.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// A parsed manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// A single image (or artifact).
    Image(Box<ImageManifest>),
    /// An index of manifests.
    Index(ImageIndex),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    schema_version: Option<u32>,
    media_type: Option<String>,
    manifests: Option<serde_json::Value>,
}

/// Parses a manifest; `content_type` is the registry's `Content-Type`, used when the document
/// has no `mediaType`.
///
/// # Errors
/// [`EvidenceError::Malformed`] for bad JSON, an unsupported schema version or media type, or bad
/// descriptors; [`EvidenceError::LimitExceeded`] past [`MAX_DESCRIPTORS`] entries or the JSON depth.
pub fn parse_manifest(
    bytes: &[u8],
    content_type: Option<&str>,
    max_json_depth: usize,
) -> Result<Manifest, EvidenceError> {
    check_json_depth(bytes, max_json_depth)?;
    let malformed = |detail: String| EvidenceError::Malformed {
        what: "manifest",
        detail,
    };
    let head: Head = serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
    if head.schema_version != Some(2) {
        return Err(malformed(format!(
            "schemaVersion is {:?}, expected 2",
            head.schema_version
        )));
    }
    let media_type = head.media_type.or_else(|| {
        content_type.map(|c| c.split(';').next().unwrap_or_default().trim().to_owned())
    });
    let is_index = match media_type.as_deref() {
        Some(OCI_INDEX | DOCKER_MANIFEST_LIST) => true,
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
        // OCI allows omitting mediaType; tell the two apart by shape.
        None | Some("" | "application/json") => head.manifests.is_some(),
        Some(other) => {
            return Err(malformed(format!(
                "unsupported manifest media type {other:?}"
            )));
        }
    };
    if is_index {
        let index: ImageIndex =
            serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
        check_count(
            "number of index entries",
            "MAX_DESCRIPTORS",
            MAX_DESCRIPTORS,
            index.manifests.len(),
        )?;
        Ok(Manifest::Index(index))
    } else {
        let m: ImageManifest =
            serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
        check_count(
            "number of layers",
            "MAX_DESCRIPTORS",
            MAX_DESCRIPTORS,
            m.layers.len(),
        )?;
        Ok(Manifest::Image(Box::new(m)))
    }
}

/// Computes the digest of `bytes` with `algorithm`'s function.
pub fn digest_of(algorithm: crate::reference::DigestAlgorithm, bytes: &[u8]) -> Digest {
    use crate::reference::DigestAlgorithm as A;
    let alg = match algorithm {
        A::Sha256 => &aws_lc_rs::digest::SHA256,
        A::Sha384 => &aws_lc_rs::digest::SHA384,
        A::Sha512 => &aws_lc_rs::digest::SHA512,
    };
    let d = aws_lc_rs::digest::digest(alg, bytes);
    // The output length always matches the algorithm.
    Digest::from_bytes(algorithm, d.as_ref()).unwrap_or_else(|_| Digest::sha256_of(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";

    #[test]
    fn parses_image_index_and_shapeless_documents() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"c","digest":"{D}","size":2}},"layers":[{{"mediaType":"l","digest":"{D}","size":3,"annotations":{{"a":"b"}}}}],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{D}","size":1}},"artifactType":"x"}}"#
        );
        let Manifest::Image(img) = parse_manifest(m.as_bytes(), None, 64).unwrap() else {
            panic!()
        };
        assert_eq!(img.layers[0].annotations["a"], "b");
        assert_eq!(img.effective_artifact_type(), "x");
        assert!(img.subject.is_some());
        let i = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{D}","size":1,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}}]}}"#
        );
        let Manifest::Index(idx) = parse_manifest(i.as_bytes(), None, 64).unwrap() else {
            panic!()
        };
        assert_eq!(
            idx.manifests[0].platform.as_ref().unwrap().to_string(),
            "linux/arm64/v8"
        );
    }

    #[test]
    fn rejects_schema_1_unknown_types_and_bad_digests() {
        assert!(parse_manifest(br#"{"schemaVersion":1}"#, None, 64).is_err());
        assert!(
            parse_manifest(br#"{"schemaVersion":2,"mediaType":"text/html"}"#, None, 64).is_err()
        );
        let bad = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"c","digest":"sha256:xyz","size":2}}}}"#
        );
        assert!(parse_manifest(bad.as_bytes(), None, 64).is_err());
        let neg = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"c","digest":"{D}","size":-1}}}}"#
        );
        assert!(parse_manifest(neg.as_bytes(), None, 64).is_err());
    }

    #[test]
    fn digest_of_uses_the_algorithm() {
        assert_eq!(
            digest_of(crate::reference::DigestAlgorithm::Sha256, b"abc"),
            Digest::sha256_of(b"abc")
        );
        assert_eq!(
            digest_of(crate::reference::DigestAlgorithm::Sha512, b"abc")
                .hex()
                .len(),
            128
        );
    }
}
