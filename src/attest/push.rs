//! Attaching a summary to its image as an OCI 1.1 referrer, and finding summaries again.
//!
//! The referrer is an image manifest with `artifactType` [`VSA_ARTIFACT_TYPE`], the empty config
//! (`application/vnd.oci.empty.v1+json`, `{}`), one layer — the DSSE envelope, media type
//! `application/vnd.dsse.envelope.v1+json` — and `subject` = the image manifest. A registry with
//! the referrers API indexes it itself (it answers the manifest `PUT` with `OCI-Subject`); for
//! one without (Distribution 2.8), custody keeps the referrers tag schema index `sha256-<hex>`
//! up to date, read-modify-write as the distribution spec describes. That read-modify-write is
//! not atomic: two pushers racing on one image can drop each other's entry (the referrer
//! manifest itself stays; re-run `custody attest --push` to re-index it).
//!
//! Why a custody artifact type rather than the DSSE media type: the fast path can pick
//! summaries out of the referrers index by `artifactType` alone, without fetching every other
//! referrer's manifest.

use serde_json::{Value, json};

use super::dsse::MAX_ENVELOPE_BYTES;
use crate::evidence::cosign::DSSE_MEDIA_TYPE;
use crate::evidence::oci::{Manifest, OCI_INDEX, OCI_MANIFEST, parse_manifest};
use crate::reference::{Digest, ImageRef};
use crate::registry::discovery::FoundVia;
use crate::registry::{Deadline, RegistryClient, RegistryError};

/// `artifactType` of a custody verification summary referrer (discovery lists referrers of this
/// type as kind `verification-summary`).
pub const VSA_ARTIFACT_TYPE: &str = crate::registry::discovery::VERIFICATION_SUMMARY_ARTIFACT;
/// Media type of the OCI empty descriptor.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The OCI empty JSON blob.
pub const EMPTY_JSON: &[u8] = b"{}";
/// Annotation naming the predicate type on the referrer and its index entry.
pub const PREDICATE_ANNOTATION: &str = crate::registry::discovery::PREDICATE_TYPE_ANNOTATION;
/// Most summary referrers the fast path looks at (newest first).
pub const MAX_SUMMARIES: usize = 8;

/// Where a pushed summary went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedSummary {
    /// `registry/repository`.
    pub repository: String,
    /// The referrer manifest's digest.
    pub manifest_digest: Digest,
    /// The envelope blob's digest.
    pub envelope_digest: Digest,
    /// How it is listed: by the registry's referrers API, or in the tag schema index custody
    /// updated.
    pub indexed: FoundVia,
}

/// The referrer manifest for `envelope` about `subject` (`(media type, digest, size)` of the
/// image manifest). `created` is the summary's `timeVerified`.
pub fn referrer_manifest(
    subject: (&str, &Digest, u64),
    envelope: &[u8],
    created: &str,
    predicate_type: &str,
) -> Vec<u8> {
    let (media_type, digest, size) = subject;
    let doc = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": VSA_ARTIFACT_TYPE,
        "config": {
            "mediaType": EMPTY_MEDIA_TYPE,
            "digest": Digest::sha256_of(EMPTY_JSON).to_string(),
            "size": EMPTY_JSON.len(),
        },
        "layers": [{
            "mediaType": DSSE_MEDIA_TYPE,
            "digest": Digest::sha256_of(envelope).to_string(),
            "size": envelope.len(),
        }],
        "subject": {"mediaType": media_type, "digest": digest.to_string(), "size": size},
        "annotations": {
            "org.opencontainers.image.created": created,
            PREDICATE_ANNOTATION: predicate_type,
        },
    });
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// The referrers tag-schema index with `entry` added (`None`: it is listed already). `existing`
/// is the index now at the tag, if any.
///
/// # Errors
/// A message when `existing` is not an OCI index.
pub fn add_to_index(existing: Option<&[u8]>, entry: &Value) -> Result<Option<Vec<u8>>, String> {
    let mut index = match existing {
        None => json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
        Some(bytes) => {
            crate::evidence::check_json_depth(bytes, crate::Limits::default().max_json_depth)
                .map_err(|e| e.to_string())?;
            let v: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
            if !v.get("manifests").is_some_and(Value::is_array) {
                return Err("the tag holds something other than an index".into());
            }
            v
        }
    };
    let Some(list) = index.get_mut("manifests").and_then(Value::as_array_mut) else {
        return Err("the index has no manifests list".into());
    };
    if list.iter().any(|m| m.get("digest") == entry.get("digest")) {
        return Ok(None);
    }
    list.push(entry.clone());
    Ok(Some(serde_json::to_vec(&index).map_err(|e| e.to_string())?))
}

/// Pushes `envelope` as a referrer of `image` (digest-pinned), and indexes it in the tag schema
/// when the registry does not do it itself.
///
/// # Errors
/// Registry failures, a tag-schema tag holding something other than an index, an unpinned
/// image.
pub async fn push_summary(
    client: &RegistryClient,
    image: &ImageRef,
    envelope: &[u8],
    created: &str,
    deadline: &Deadline,
) -> Result<PushedSummary, RegistryError> {
    let digest = image.digest().cloned().ok_or_else(|| {
        RegistryError::Config(format!("{image} is not digest-pinned: cannot attach to it"))
    })?;
    let subject = client
        .manifest(&image.with_digest(digest.clone()), deadline)
        .await?;
    let subject_type = match parse_manifest(
        &subject.bytes,
        subject.content_type.as_deref(),
        crate::Limits::default().max_json_depth,
    ) {
        Ok(Manifest::Index(_)) => OCI_INDEX.to_owned(),
        Ok(Manifest::Image(_)) => media_type_of(&subject.bytes, subject.content_type.as_deref()),
        Err(e) => {
            return Err(RegistryError::Malformed {
                what: format!("manifest {image}"),
                url: subject.url,
                detail: e.to_string(),
            });
        }
    };
    let subject_size = u64::try_from(subject.bytes.len()).unwrap_or(u64::MAX);
    let created_text = created.to_owned();
    client.push_blob(image, EMPTY_JSON, deadline).await?;
    let envelope_digest = client.push_blob(image, envelope, deadline).await?;
    let manifest = referrer_manifest(
        (&subject_type, &digest, subject_size),
        envelope,
        &created_text,
        super::vsa::VSA_PREDICATE_TYPE,
    );
    let manifest_digest = Digest::sha256_of(&manifest);
    let pushed = client
        .push_manifest(
            image,
            &manifest_digest.to_string(),
            OCI_MANIFEST,
            &manifest,
            deadline,
        )
        .await?;
    let indexed = if pushed.subject_indexed {
        FoundVia::ReferrersApi
    } else {
        let tag = format!("{}-{}", digest.algorithm().name(), digest.hex());
        let tagged = image
            .with_tag(&tag)
            .map_err(|e| RegistryError::Config(e.to_string()))?;
        let existing = client.manifest_if_exists(&tagged, deadline).await?;
        let entry = json!({
            "mediaType": OCI_MANIFEST,
            "digest": manifest_digest.to_string(),
            "size": manifest.len(),
            "artifactType": VSA_ARTIFACT_TYPE,
            "annotations": {
                "org.opencontainers.image.created": created_text,
                PREDICATE_ANNOTATION: super::vsa::VSA_PREDICATE_TYPE,
            },
        });
        let updated = add_to_index(existing.as_ref().map(|f| f.bytes.as_slice()), &entry).map_err(
            |detail| RegistryError::Malformed {
                what: format!("referrers tag schema index {}:{tag}", image.name()),
                url: existing.as_ref().map(|f| f.url.clone()).unwrap_or_default(),
                detail,
            },
        )?;
        if let Some(bytes) = updated {
            client
                .push_manifest(image, &tag, OCI_INDEX, &bytes, deadline)
                .await?;
        }
        FoundVia::ReferrersTagSchema { tag }
    };
    Ok(PushedSummary {
        repository: image.name(),
        manifest_digest,
        envelope_digest,
        indexed,
    })
}

fn media_type_of(bytes: &[u8], content_type: Option<&str>) -> String {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Head {
        media_type: Option<String>,
    }
    serde_json::from_slice::<Head>(bytes)
        .ok()
        .and_then(|h| h.media_type)
        .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or_default().trim().to_owned()))
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| OCI_MANIFEST.to_owned())
}

/// A summary referrer as found: its envelope and where it was.
#[derive(Debug, Clone)]
pub struct FoundSummary {
    /// The envelope bytes (digest-checked by the client).
    pub envelope: Vec<u8>,
    /// The envelope blob's digest.
    pub envelope_digest: Digest,
    /// The referrer manifest's digest.
    pub manifest_digest: Digest,
    /// How the referrer was listed.
    pub found: FoundVia,
}

/// The summary referrers of `image` (digest-pinned), newest listed first, at most
/// [`MAX_SUMMARIES`]: the referrers API, else the tag schema index; entries whose `artifactType`
/// is not [`VSA_ARTIFACT_TYPE`] are not fetched. Each manifest must name the image as its
/// `subject` and hold a DSSE layer of at most the envelope limit; others are reported in the
/// notes and skipped.
///
/// # Errors
/// Registry failures (the fast path then falls back to full verification).
pub async fn find_summaries(
    client: &RegistryClient,
    image: &ImageRef,
    deadline: &Deadline,
) -> Result<(Vec<FoundSummary>, Vec<String>), RegistryError> {
    let digest = image
        .digest()
        .cloned()
        .ok_or_else(|| RegistryError::Config(format!("{image} is not digest-pinned")))?;
    let pinned = image.with_digest(digest.clone());
    let max_depth = crate::Limits::default().max_json_depth;
    let (via, index) = match client.referrers(&pinned, &digest, deadline).await? {
        Some(f) => (FoundVia::ReferrersApi, f),
        None => {
            let tag = format!("{}-{}", digest.algorithm().name(), digest.hex());
            let tagged = pinned
                .with_tag(&tag)
                .map_err(|e| RegistryError::Config(e.to_string()))?;
            match client.manifest_if_exists(&tagged, deadline).await? {
                Some(f) => (FoundVia::ReferrersTagSchema { tag }, f),
                None => return Ok((Vec::new(), vec![format!("no referrers of {pinned}")])),
            }
        }
    };
    let entries = match parse_manifest(&index.bytes, index.content_type.as_deref(), max_depth) {
        Ok(Manifest::Index(i)) => i.manifests,
        _ => {
            return Err(RegistryError::Malformed {
                what: "referrers index".into(),
                url: index.url,
                detail: "not an image index".into(),
            });
        }
    };
    let mut notes = Vec::new();
    let mut found = Vec::new();
    let candidates: Vec<_> = entries
        .iter()
        .rev()
        .filter(|e| e.artifact_type.as_deref() == Some(VSA_ARTIFACT_TYPE))
        .take(MAX_SUMMARIES)
        .collect();
    for entry in candidates {
        let fetched = client
            .manifest(&pinned.with_digest(entry.digest.clone()), deadline)
            .await?;
        let manifest =
            match parse_manifest(&fetched.bytes, fetched.content_type.as_deref(), max_depth) {
                Ok(Manifest::Image(m)) => m,
                _ => {
                    notes.push(format!(
                        "summary referrer {} is not an image manifest",
                        entry.digest
                    ));
                    continue;
                }
            };
        if manifest.subject.as_ref().map(|s| &s.digest) != Some(&digest) {
            notes.push(format!(
                "summary referrer {} names another subject: skipped",
                entry.digest
            ));
            continue;
        }
        let Some(layer) = manifest
            .layers
            .iter()
            .find(|l| l.media_type == DSSE_MEDIA_TYPE)
        else {
            notes.push(format!(
                "summary referrer {} has no DSSE layer",
                entry.digest
            ));
            continue;
        };
        if layer.size > MAX_ENVELOPE_BYTES {
            notes.push(format!(
                "summary referrer {} announces a {} byte envelope, more than {MAX_ENVELOPE_BYTES}",
                entry.digest, layer.size
            ));
            continue;
        }
        let blob = client
            .blob(&pinned, &layer.digest, MAX_ENVELOPE_BYTES, deadline)
            .await?;
        found.push(FoundSummary {
            envelope: blob.bytes,
            envelope_digest: layer.digest.clone(),
            manifest_digest: entry.digest.clone(),
            found: via.clone(),
        });
    }
    Ok((found, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_referrer_manifest_parses_as_an_artifact_about_its_subject() {
        let d = Digest::sha256_of(b"image");
        let m = referrer_manifest(
            (OCI_MANIFEST, &d, 569),
            b"{\"env\":1}",
            "2026-01-01T00:00:00Z",
            "p",
        );
        match parse_manifest(&m, None, 64).unwrap() {
            Manifest::Image(m) => {
                assert_eq!(m.artifact_type.as_deref(), Some(VSA_ARTIFACT_TYPE));
                assert_eq!(m.subject.unwrap().digest, d);
                assert_eq!(m.layers[0].media_type, DSSE_MEDIA_TYPE);
                assert_eq!(m.layers[0].digest, Digest::sha256_of(b"{\"env\":1}"));
                assert_eq!(m.config.digest, Digest::sha256_of(b"{}"));
            }
            Manifest::Index(_) => panic!("not an index"),
        }
    }

    #[test]
    fn the_tag_schema_index_gains_the_entry_once_and_keeps_the_others() {
        let entry = json!({"mediaType": OCI_MANIFEST, "digest": "sha256:aa", "size": 1});
        let fresh = add_to_index(None, &entry).unwrap().unwrap();
        let v: Value = serde_json::from_slice(&fresh).unwrap();
        assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
        assert_eq!(v["mediaType"], OCI_INDEX);
        assert_eq!(add_to_index(Some(&fresh), &entry).unwrap(), None);
        let other = br#"{"schemaVersion":2,"manifests":[{"digest":"sha256:bb","x-keep":1}]}"#;
        let both = add_to_index(Some(other), &entry).unwrap().unwrap();
        let v: Value = serde_json::from_slice(&both).unwrap();
        assert_eq!(v["manifests"][0]["x-keep"], 1);
        assert_eq!(v["manifests"][1]["digest"], "sha256:aa");
        assert!(add_to_index(Some(br#"{"schemaVersion":2,"layers":[]}"#), &entry).is_err());
    }
}
