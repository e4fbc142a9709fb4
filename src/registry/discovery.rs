//! Discovery: every piece of supply-chain evidence attached to an image digest.
//!
//! Looked at, for `repo@sha256:<hex>`:
//! * the OCI 1.1 referrers API (`/v2/<repo>/referrers/<digest>`), and when the registry does not
//!   implement it (404), the referrers tag schema (tag `sha256-<hex>` holding an index);
//! * cosign's tags `sha256-<hex>.sig`, `.att` and `.sbom`, in the image's repository or in the
//!   signature repository given (`COSIGN_REPOSITORY`).
//!
//! Each referrer manifest is fetched by digest and must name the image as its `subject`; each
//! evidence blob is fetched by digest (verified) within the blob limit. Nothing is judged here.

use std::collections::BTreeMap;

use futures_util::future::try_join_all;
use serde::{Deserialize, Serialize};

use super::{Deadline, RegistryClient, RegistryError};
use crate::evidence::cosign::{DSSE_MEDIA_TYPE, SIMPLE_SIGNING_MEDIA_TYPE};
use crate::evidence::oci::{Descriptor, Manifest, parse_manifest};
use crate::reference::{Digest, ImageRef};

/// Sigstore bundle media types accepted as referrer artifact types.
pub const SIGSTORE_BUNDLE_TYPES: &[&str] = &[
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
];
/// SBOM media types (SPDX JSON, CycloneDX JSON).
pub const SBOM_TYPES: &[&str] = &[
    "application/spdx+json",
    "text/spdx+json",
    "application/vnd.cyclonedx+json",
    "application/vnd.cyclonedx",
];
/// cosign's artifact type for signatures stored as referrers.
pub const COSIGN_SIGNATURE_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// `artifactType` of a custody verification summary referrer (`custody attest --push`).
pub const VERIFICATION_SUMMARY_ARTIFACT: &str = "application/vnd.custody.vsa.v1+json";
/// The SLSA Verification Summary predicate type, as other tools name it on a referrer.
pub const VERIFICATION_SUMMARY_PREDICATE: &str = "https://slsa.dev/verification_summary/v1";
/// The annotation other tools (and custody) put the predicate type of an in-toto referrer in.
pub const PREDICATE_TYPE_ANNOTATION: &str = "in-toto.io/predicate-type";

/// Discovery bounds and options.
#[derive(Debug, Clone)]
pub struct DiscoveryOptions {
    /// Where cosign's `.sig`/`.att`/`.sbom` tags live, when not in the image's repository.
    pub signature_repository: Option<ImageRef>,
    /// Most referrers read from one index (default 128).
    pub max_referrers: usize,
    /// Most evidence items (layers) fetched in total (default 64).
    pub max_items: usize,
    /// Most layers read from one signature manifest (default 16).
    pub max_layers_per_manifest: usize,
    /// Nesting depth allowed in JSON evidence (from [`crate::Limits`]).
    pub max_json_depth: usize,
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        Self {
            signature_repository: None,
            max_referrers: 128,
            max_items: 64,
            max_layers_per_manifest: 16,
            max_json_depth: crate::Limits::default().max_json_depth,
        }
    }
}

/// What a piece of evidence is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceKind {
    /// A cosign simple-signing signature layer.
    CosignSignature,
    /// A cosign DSSE attestation layer.
    CosignAttestation,
    /// An SBOM attached with `cosign attach sbom` (unsigned).
    CosignSbom,
    /// A Sigstore bundle attached as a referrer.
    SigstoreBundle,
    /// An SBOM attached as a referrer (unsigned unless a signature refers to it).
    Sbom,
    /// A signed verification summary (SLSA VSA in a DSSE envelope) attached as a referrer:
    /// listed, not fetched here. Full verification does not judge it; the summary fast path
    /// (`crate::attest::push::find_summaries`) reads it on its own terms.
    VerificationSummary,
    /// A referrer of another artifact type (listed, not fetched).
    Other,
}

/// How a piece of evidence was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "via",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum FoundVia {
    /// The OCI 1.1 referrers API.
    ReferrersApi,
    /// The referrers tag schema (`sha256-<hex>` index).
    ReferrersTagSchema {
        /// The tag.
        tag: String,
    },
    /// A cosign tag.
    CosignTag {
        /// The tag (`sha256-<hex>.sig`, …).
        tag: String,
    },
}

/// One piece of evidence, fetched and digest-checked but not judged.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceItem {
    /// Kind.
    pub kind: EvidenceKind,
    /// Media type of the evidence blob (layer).
    pub media_type: String,
    /// Artifact type of the referrer, when found as one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Digest of the evidence blob.
    pub digest: Digest,
    /// Size of the evidence blob, in bytes.
    pub size: u64,
    /// The repository it was found in (`registry/repo`).
    pub repository: String,
    /// The manifest that holds it.
    pub manifest_digest: Digest,
    /// How it was found.
    pub found: FoundVia,
    /// Layer annotations (signatures, certificates, Rekor bundles for cosign).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The blob, when fetched (not serialised).
    #[serde(skip)]
    pub content: Vec<u8>,
}

/// Everything found for one digest.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Discovery {
    /// The image (digest-pinned).
    pub image: ImageRef,
    /// The evidence found.
    pub items: Vec<EvidenceItem>,
    /// Where referrers came from (`None`: no referrers index found at all).
    pub referrers: Option<FoundVia>,
    /// Places looked at, for "nothing found" messages.
    pub looked_at: Vec<String>,
    /// Things skipped and why (a referrer whose subject is another image, …).
    pub notes: Vec<String>,
}

/// Discovers all evidence for `image`, which must be digest-pinned.
///
/// The four places are searched concurrently, and each one's blobs are fetched concurrently (the
/// client's concurrency limit bounds it): on a registry the cost is round trips, not bytes.
///
/// # Errors
/// Registry failures other than not-found; more referrers or items than the limits.
pub async fn discover(
    client: &RegistryClient,
    image: &ImageRef,
    options: &DiscoveryOptions,
    deadline: &Deadline,
) -> Result<Discovery, RegistryError> {
    let digest = image.digest().cloned().ok_or_else(|| {
        RegistryError::Config(format!(
            "discovery needs a digest-pinned reference, got {image}"
        ))
    })?;
    let subject = image.with_digest(digest.clone());
    let sig_repo = match &options.signature_repository {
        Some(r) => r.with_digest(digest.clone()),
        None => subject.clone(),
    };
    let tag_base = format!("{}-{}", digest.algorithm().name(), digest.hex());
    let (sig_tag, att_tag, sbom_tag) = (
        format!("{tag_base}.sig"),
        format!("{tag_base}.att"),
        format!("{tag_base}.sbom"),
    );
    let looked_at = vec![
        format!("referrers of {subject}"),
        format!("{}:{sig_tag}", sig_repo.name()),
        format!("{}:{att_tag}", sig_repo.name()),
        format!("{}:{sbom_tag}", sig_repo.name()),
    ];

    let (referrers, sig, att, sbom) = tokio::join!(
        referrer_evidence(client, &subject, &digest, &tag_base, options, deadline),
        tag_evidence(
            client,
            &sig_repo,
            &sig_tag,
            CosignTagKind::Sig,
            options,
            deadline
        ),
        tag_evidence(
            client,
            &sig_repo,
            &att_tag,
            CosignTagKind::Att,
            options,
            deadline
        ),
        tag_evidence(
            client,
            &sig_repo,
            &sbom_tag,
            CosignTagKind::Sbom,
            options,
            deadline
        ),
    );
    // Tags first (the order people know), then referrers.
    let (via, referrer_items, referrer_notes) = referrers?;
    let mut items = Vec::new();
    let mut notes = Vec::new();
    for (branch_items, branch_notes) in [sig?, att?, sbom?] {
        items.extend(branch_items);
        notes.extend(branch_notes);
    }
    items.extend(referrer_items);
    notes.extend(referrer_notes);
    if items.len() > options.max_items {
        return Err(RegistryError::TooMany {
            what: format!("evidence items for {subject}"),
            found: items.len(),
            max: options.max_items,
        });
    }
    Ok(Discovery {
        image: subject,
        items,
        referrers: via,
        looked_at,
        notes,
    })
}

/// The evidence of one cosign tag (`.sig`, `.att`, `.sbom`), blobs fetched.
async fn tag_evidence(
    client: &RegistryClient,
    repo: &ImageRef,
    tag: &str,
    kind_of: CosignTagKind,
    options: &DiscoveryOptions,
    deadline: &Deadline,
) -> Result<(Vec<EvidenceItem>, Vec<String>), RegistryError> {
    let mut notes = Vec::new();
    let Some((tag, manifest_digest, manifest)) = cosign_tag(client, repo, tag, deadline).await?
    else {
        return Ok((Vec::new(), notes));
    };
    if manifest.layers.len() > options.max_layers_per_manifest {
        return Err(RegistryError::TooMany {
            what: format!("layers in {}:{tag}", repo.name()),
            found: manifest.layers.len(),
            max: options.max_layers_per_manifest,
        });
    }
    let mut wanted = Vec::new();
    for layer in &manifest.layers {
        let kind = match (kind_of, layer.media_type.as_str()) {
            (CosignTagKind::Sig, SIMPLE_SIGNING_MEDIA_TYPE) => EvidenceKind::CosignSignature,
            (CosignTagKind::Att, DSSE_MEDIA_TYPE) => EvidenceKind::CosignAttestation,
            (CosignTagKind::Sbom, _) => EvidenceKind::CosignSbom,
            (_, other) => {
                notes.push(format!(
                    "{}:{tag} has a layer of media type {other:?}, ignored",
                    repo.name()
                ));
                continue;
            }
        };
        wanted.push((layer, kind));
    }
    let found = FoundVia::CosignTag { tag: tag.clone() };
    let items = try_join_all(wanted.into_iter().map(|(layer, kind)| {
        fetch_item(
            client,
            repo,
            layer,
            kind,
            None,
            &manifest_digest,
            found.clone(),
            deadline,
        )
    }))
    .await?;
    Ok((items, notes))
}

/// The evidence listed by the referrers API or tag schema, referrer manifests and blobs fetched.
async fn referrer_evidence(
    client: &RegistryClient,
    subject: &ImageRef,
    digest: &Digest,
    tag_base: &str,
    options: &DiscoveryOptions,
    deadline: &Deadline,
) -> Result<(Option<FoundVia>, Vec<EvidenceItem>, Vec<String>), RegistryError> {
    let Some((via, index)) = referrers_of(client, subject, digest, tag_base, deadline).await?
    else {
        return Ok((None, Vec::new(), Vec::new()));
    };
    if index.len() > options.max_referrers {
        return Err(RegistryError::TooMany {
            what: format!("referrers of {subject}"),
            found: index.len(),
            max: options.max_referrers,
        });
    }
    let per_referrer = index.into_iter().map(|entry| {
        let via = via.clone();
        async move {
            let artifact_type = entry.artifact_type.clone().unwrap_or_default();
            let kind = classify(
                &artifact_type,
                entry
                    .annotations
                    .get(PREDICATE_TYPE_ANNOTATION)
                    .map(String::as_str),
            );
            if matches!(
                kind,
                EvidenceKind::Other | EvidenceKind::VerificationSummary
            ) {
                return Ok::<_, RegistryError>((
                    vec![listed_only(kind, subject, &entry, &via)],
                    Vec::new(),
                ));
            }
            let fetched = client
                .manifest(&subject.with_digest(entry.digest.clone()), deadline)
                .await?;
            let manifest = match parse_manifest(
                &fetched.bytes,
                fetched.content_type.as_deref(),
                options.max_json_depth,
            ) {
                Ok(Manifest::Image(m)) => m,
                Ok(Manifest::Index(_)) | Err(_) => {
                    return Ok((
                        Vec::new(),
                        vec![format!(
                            "referrer {} is not an image manifest, ignored",
                            entry.digest
                        )],
                    ));
                }
            };
            if manifest.subject.as_ref().map(|s| &s.digest) != Some(digest) {
                let named = manifest
                    .subject
                    .as_ref()
                    .map_or("none".to_owned(), |s| s.digest.to_string());
                return Ok((
                    Vec::new(),
                    vec![format!(
                        "referrer {} names subject {named}, not {digest}: ignored",
                        entry.digest
                    )],
                ));
            }
            let layers: Vec<&Descriptor> = match kind {
                EvidenceKind::CosignSignature => manifest
                    .layers
                    .iter()
                    .filter(|l| l.media_type == SIMPLE_SIGNING_MEDIA_TYPE)
                    .take(options.max_layers_per_manifest)
                    .collect(),
                _ => manifest.layers.iter().take(1).collect(),
            };
            let items = try_join_all(layers.into_iter().map(|layer| {
                fetch_item(
                    client,
                    subject,
                    layer,
                    kind,
                    Some(artifact_type.clone()),
                    &entry.digest,
                    via.clone(),
                    deadline,
                )
            }))
            .await?;
            Ok((items, Vec::new()))
        }
    });
    let mut items = Vec::new();
    let mut notes = Vec::new();
    for (i, n) in try_join_all(per_referrer).await? {
        items.extend(i);
        notes.extend(n);
    }
    Ok((Some(via), items, notes))
}

#[derive(Clone, Copy)]
enum CosignTagKind {
    Sig,
    Att,
    Sbom,
}

/// The kind of a referrer from its index entry: `artifactType`, then (for verification summaries
/// other tools attach under their own artifact type) the predicate-type annotation. A Sigstore
/// bundle stays a bundle whatever predicate it carries: it is verified like any other.
fn classify(artifact_type: &str, predicate_type: Option<&str>) -> EvidenceKind {
    if SIGSTORE_BUNDLE_TYPES.contains(&artifact_type) {
        EvidenceKind::SigstoreBundle
    } else if SBOM_TYPES.contains(&artifact_type) {
        EvidenceKind::Sbom
    } else if artifact_type == COSIGN_SIGNATURE_ARTIFACT {
        EvidenceKind::CosignSignature
    } else if artifact_type == VERIFICATION_SUMMARY_ARTIFACT
        || predicate_type == Some(VERIFICATION_SUMMARY_PREDICATE)
    {
        EvidenceKind::VerificationSummary
    } else {
        EvidenceKind::Other
    }
}

fn listed_only(
    kind: EvidenceKind,
    subject: &ImageRef,
    entry: &Descriptor,
    via: &FoundVia,
) -> EvidenceItem {
    EvidenceItem {
        kind,
        media_type: entry.media_type.clone(),
        artifact_type: entry.artifact_type.clone(),
        digest: entry.digest.clone(),
        size: entry.size,
        repository: subject.name(),
        manifest_digest: entry.digest.clone(),
        found: via.clone(),
        annotations: entry.annotations.clone(),
        content: Vec::new(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn fetch_item(
    client: &RegistryClient,
    repo: &ImageRef,
    layer: &Descriptor,
    kind: EvidenceKind,
    artifact_type: Option<String>,
    manifest_digest: &Digest,
    found: FoundVia,
    deadline: &Deadline,
) -> Result<EvidenceItem, RegistryError> {
    if layer.size > client.config().max_blob_bytes {
        return Err(RegistryError::TooLarge {
            what: format!("evidence layer {}", layer.digest),
            url: repo.name(),
            max: client.config().max_blob_bytes,
            found: Some(layer.size),
        });
    }
    let blob = client
        .blob(
            repo,
            &layer.digest,
            client.config().max_blob_bytes,
            deadline,
        )
        .await?;
    Ok(EvidenceItem {
        kind,
        media_type: layer.media_type.clone(),
        artifact_type,
        digest: layer.digest.clone(),
        size: u64::try_from(blob.bytes.len()).unwrap_or(u64::MAX),
        repository: repo.name(),
        manifest_digest: manifest_digest.clone(),
        found,
        annotations: layer.annotations.clone(),
        content: blob.bytes,
    })
}

/// The referrers index entries, from the API or the tag schema; `None` if neither exists.
async fn referrers_of(
    client: &RegistryClient,
    subject: &ImageRef,
    digest: &Digest,
    tag: &str,
    deadline: &Deadline,
) -> Result<Option<(FoundVia, Vec<Descriptor>)>, RegistryError> {
    let (via, fetched) = match client.referrers(subject, digest, deadline).await? {
        Some(f) => (FoundVia::ReferrersApi, f),
        None => {
            let tagged = subject
                .with_tag(tag)
                .map_err(|e| RegistryError::Config(e.to_string()))?;
            match client.manifest_if_exists(&tagged, deadline).await? {
                Some(f) => (
                    FoundVia::ReferrersTagSchema {
                        tag: tag.to_owned(),
                    },
                    f,
                ),
                None => return Ok(None),
            }
        }
    };
    match parse_manifest(
        &fetched.bytes,
        fetched.content_type.as_deref(),
        crate::Limits::default().max_json_depth,
    ) {
        Ok(Manifest::Index(index)) => Ok(Some((via, index.manifests))),
        Ok(Manifest::Image(_)) => Err(RegistryError::Malformed {
            what: "referrers index".into(),
            url: fetched.url,
            detail: "it is an image manifest, not an index".into(),
        }),
        Err(e) => Err(RegistryError::Malformed {
            what: "referrers index".into(),
            url: fetched.url,
            detail: e.to_string(),
        }),
    }
}

/// A cosign tag's manifest, if the tag exists.
async fn cosign_tag(
    client: &RegistryClient,
    repo: &ImageRef,
    tag: &str,
    deadline: &Deadline,
) -> Result<Option<(String, Digest, crate::evidence::oci::ImageManifest)>, RegistryError> {
    let tagged = repo
        .with_tag(tag)
        .map_err(|e| RegistryError::Config(e.to_string()))?;
    let Some(fetched) = client.manifest_if_exists(&tagged, deadline).await? else {
        return Ok(None);
    };
    match parse_manifest(
        &fetched.bytes,
        fetched.content_type.as_deref(),
        crate::Limits::default().max_json_depth,
    ) {
        Ok(Manifest::Image(m)) => Ok(Some((tag.to_owned(), fetched.digest, *m))),
        Ok(Manifest::Index(_)) => Err(RegistryError::Malformed {
            what: format!("cosign tag {tag}"),
            url: fetched.url,
            detail: "it is an index, expected an image manifest".into(),
        }),
        Err(e) => Err(RegistryError::Malformed {
            what: format!("cosign tag {tag}"),
            url: fetched.url,
            detail: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_summaries_get_their_own_kind_by_artifact_type_or_predicate_type() {
        // custody's own referrers (`custody attest --push`).
        assert_eq!(
            classify(VERIFICATION_SUMMARY_ARTIFACT, None),
            EvidenceKind::VerificationSummary
        );
        assert_eq!(
            classify(
                VERIFICATION_SUMMARY_ARTIFACT,
                Some(VERIFICATION_SUMMARY_PREDICATE)
            ),
            EvidenceKind::VerificationSummary
        );
        // Another tool's DSSE referrer that names the VSA predicate type.
        assert_eq!(
            classify(DSSE_MEDIA_TYPE, Some(VERIFICATION_SUMMARY_PREDICATE)),
            EvidenceKind::VerificationSummary
        );
        // A DSSE referrer of another predicate, or none: still other.
        assert_eq!(
            classify(DSSE_MEDIA_TYPE, Some("https://slsa.dev/provenance/v1")),
            EvidenceKind::Other
        );
        assert_eq!(classify("", None), EvidenceKind::Other);
        // A predicate type must match whole (no prefix or case games).
        assert_eq!(
            classify(
                "application/x",
                Some("https://slsa.dev/verification_summary/v1.1")
            ),
            EvidenceKind::Other
        );
        // A Sigstore bundle carrying a VSA is verified as a bundle, not set aside.
        assert_eq!(
            classify(
                SIGSTORE_BUNDLE_TYPES[0],
                Some(VERIFICATION_SUMMARY_PREDICATE)
            ),
            EvidenceKind::SigstoreBundle
        );
        // The other kinds are unchanged.
        assert_eq!(classify(SBOM_TYPES[0], None), EvidenceKind::Sbom);
        assert_eq!(
            classify(COSIGN_SIGNATURE_ARTIFACT, None),
            EvidenceKind::CosignSignature
        );
    }

    #[test]
    fn the_kind_is_named_verification_summary_in_json() {
        assert_eq!(
            serde_json::to_value(EvidenceKind::VerificationSummary).unwrap(),
            serde_json::json!("verification-summary")
        );
        let back: EvidenceKind = serde_json::from_str("\"verification-summary\"").unwrap();
        assert_eq!(back, EvidenceKind::VerificationSummary);
    }

    #[test]
    fn custodys_summary_constants_agree_with_discovery() {
        assert_eq!(
            crate::attest::VSA_ARTIFACT_TYPE,
            VERIFICATION_SUMMARY_ARTIFACT
        );
        assert_eq!(
            crate::attest::VSA_PREDICATE_TYPE,
            VERIFICATION_SUMMARY_PREDICATE
        );
        assert_eq!(
            crate::attest::push::PREDICATE_ANNOTATION,
            PREDICATE_TYPE_ANNOTATION
        );
    }
}
