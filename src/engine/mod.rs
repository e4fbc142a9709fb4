//! One verification of an image: resolve → discover evidence (registry) → verify each piece
//! (pure core) → judge against the identity policy → [`ImageVerification`].
//!
//! The network work is bounded by one [`Deadline`]; whatever goes wrong there ends in
//! [`Outcome::Error`] with the reason, never in `Verified`.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::evidence::cosign::layer_to_bundle;
use crate::evidence::oci::{Manifest, parse_manifest};
use crate::evidence::parse_bundle;
use crate::limits::Limits;
use crate::policy::IdentityPolicy;
use crate::reference::{Digest, ImageRef};
use crate::registry::discovery::{
    Discovery, DiscoveryOptions, EvidenceItem, EvidenceKind, discover,
};
use crate::registry::{Deadline, RegistryClient, RegistryError};
use crate::trust::{StaticKey, TrustRoot};
use crate::verdict::{
    EvidenceCheck, EvidenceRef, IMAGE_VERIFICATION_MEDIA_TYPE, ImageVerification, Outcome,
    PlatformVerification,
};
use crate::verify::cosign::{verify_attached_bundle, verify_cosign_layer};
use crate::verify::{Signer, TrustRootRef, VerifiedFacts, VerifyError};

/// The predicate type cosign 3 uses for image signatures made as Sigstore bundles.
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

/// What to verify and how.
#[derive(Debug, Clone)]
pub struct ImageRequest {
    /// The reference as given.
    pub reference: ImageRef,
    /// Resolve a tag to a digest (else a tag-only reference is refused).
    pub resolve: bool,
    /// Who must have signed (keyless). Ignored when `key` is set.
    pub identity: IdentityPolicy,
    /// A static key that must have signed.
    pub key: Option<StaticKey>,
    /// Predicate types that must each have an accepted attestation.
    pub required_predicate_types: Vec<PredicateRequirement>,
    /// Also verify every platform manifest of an index.
    pub platforms: bool,
    /// Discovery options.
    pub discovery: DiscoveryOptions,
    /// Overall deadline for the network work.
    pub deadline: Duration,
}

/// A required attestation type: a name and the predicate-type URIs that satisfy it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredicateRequirement {
    /// As given (`slsaprovenance`, a URI, …).
    pub name: String,
    /// Accepted `predicateType` values.
    pub uris: Vec<String>,
}

impl PredicateRequirement {
    /// Maps cosign's `--type` names to predicate types; anything with `://` is taken as a URI.
    ///
    /// # Errors
    /// An unknown short name, with the known ones listed.
    pub fn parse(name: &str) -> Result<Self, String> {
        let uris: &[&str] = match name {
            "slsaprovenance" => &[
                "https://slsa.dev/provenance/v1",
                "https://slsa.dev/provenance/v0.2",
            ],
            "slsaprovenance1" => &["https://slsa.dev/provenance/v1"],
            "slsaprovenance02" => &["https://slsa.dev/provenance/v0.2"],
            "spdx" | "spdxjson" => &["https://spdx.dev/Document"],
            "cyclonedx" => &["https://cyclonedx.org/bom"],
            "vuln" => &["https://cosign.sigstore.dev/attestation/vuln/v1"],
            "vsa" => &["https://slsa.dev/verification_summary/v1"],
            "custom" => &["https://cosign.sigstore.dev/attestation/v1"],
            uri if uri.contains("://") => {
                return Ok(Self {
                    name: name.to_owned(),
                    uris: vec![uri.to_owned()],
                });
            }
            other => {
                return Err(format!(
                    "unknown attestation type {other:?}: use slsaprovenance, slsaprovenance1, slsaprovenance02, spdx, cyclonedx, vuln, vsa, custom, or a predicate type URI"
                ));
            }
        };
        Ok(Self {
            name: name.to_owned(),
            uris: uris.iter().map(|u| (*u).to_owned()).collect(),
        })
    }
}

/// Verifies an image against its registry evidence. Never panics on registry input; every
/// failure is in the returned report.
pub async fn verify_image(
    client: &RegistryClient,
    trust: &TrustRoot,
    request: &ImageRequest,
    now: jiff::Timestamp,
    limits: &Limits,
) -> ImageVerification {
    let start = client.request_count();
    let deadline = Deadline::after(request.deadline);
    let mut report = ImageVerification {
        media_type: IMAGE_VERIFICATION_MEDIA_TYPE,
        custody_version: crate::VERSION,
        verified_at: now.to_string(),
        reference: request.reference.to_string(),
        image: None,
        resolved_from_tag: None,
        is_index: false,
        outcome: Outcome::Error,
        reasons: Vec::new(),
        signatures: Vec::new(),
        attestations: Vec::new(),
        sboms: Vec::new(),
        other: Vec::new(),
        platforms: Vec::new(),
        notes: Vec::new(),
        http_requests: 0,
        trust_root: TrustRootRef {
            name: trust.name().to_owned(),
            content_hash: trust.content_hash().clone(),
        },
    };
    if let Err(e) = run(client, trust, request, now, limits, &deadline, &mut report).await {
        report.outcome = Outcome::Error;
        report.reasons.push(e.to_string());
    }
    report.http_requests = client.request_count().saturating_sub(start);
    report
}

async fn run(
    client: &RegistryClient,
    trust: &TrustRoot,
    request: &ImageRequest,
    now: jiff::Timestamp,
    limits: &Limits,
    deadline: &Deadline,
    report: &mut ImageVerification,
) -> Result<(), RegistryError> {
    // 1. A digest: given, or resolved once (a tag that moves later does not matter: everything
    //    below uses this digest).
    let digest = match (request.reference.digest(), request.resolve) {
        (Some(d), _) => d.clone(),
        (None, true) => {
            let d = client.resolve(&request.reference, deadline).await?;
            report.resolved_from_tag = request
                .reference
                .tag()
                .map(str::to_owned)
                .or(Some("latest".into()));
            d
        }
        (None, false) => {
            report.outcome = Outcome::Error;
            report.reasons.push(format!(
                "{} is not digest-pinned: pass repo@sha256:<digest>, or --resolve to verify the digest the tag points to now",
                request.reference
            ));
            return Ok(());
        }
    };
    let image = request.reference.with_digest(digest.clone());
    report.image = Some(image.clone());

    // 2. The manifest itself (proves the digest exists here, tells index from image) and the
    //    evidence for the digest, concurrently: on a registry the cost is round trips.
    let (manifest, discovery) = tokio::join!(
        client.manifest(&image, deadline),
        discover(client, &image, &request.discovery, deadline)
    );
    let manifest = manifest?;
    let parsed = parse_manifest(
        &manifest.bytes,
        manifest.content_type.as_deref(),
        limits.max_json_depth,
    )
    .map_err(|e| RegistryError::Malformed {
        what: "image manifest".into(),
        url: manifest.url.clone(),
        detail: e.to_string(),
    })?;

    // 3. Judgement.
    let discovery = discovery?;
    report.notes.extend(discovery.notes.iter().cloned());
    let judged = judge(&discovery, &image, &digest, trust, request, now, limits);
    report.signatures = judged.signatures;
    report.attestations = judged.attestations;
    report.sboms = judged.sboms;
    report.other = judged.other;
    report.outcome = judged.outcome;
    report.reasons = judged.reasons;

    // 4. Platforms of an index, on request.
    if let Manifest::Index(index) = parsed {
        report.is_index = true;
        if request.platforms {
            let mut seen = BTreeSet::from([digest.clone()]);
            for entry in &index.manifests {
                if !seen.insert(entry.digest.clone()) {
                    report.notes.push(format!(
                        "index lists {} more than once (or itself): checked once",
                        entry.digest
                    ));
                    continue;
                }
                let platform = entry
                    .platform
                    .as_ref()
                    .map_or_else(|| "unknown".to_owned(), ToString::to_string);
                if platform == "unknown/unknown" {
                    // Attestation manifests (buildx) carry this platform: not runnable images.
                    continue;
                }
                let p_image = image.with_digest(entry.digest.clone());
                let p_discovery = discover(client, &p_image, &request.discovery, deadline).await?;
                let p = judge(
                    &p_discovery,
                    &p_image,
                    &entry.digest,
                    trust,
                    request,
                    now,
                    limits,
                );
                report.notes.extend(p_discovery.notes.iter().cloned());
                if p.outcome != Outcome::Verified && report.outcome == Outcome::Verified {
                    report.outcome = p.outcome;
                }
                if p.outcome != Outcome::Verified {
                    report.reasons.push(format!(
                        "platform {platform} ({}) is not verified",
                        entry.digest
                    ));
                }
                report.platforms.push(PlatformVerification {
                    platform,
                    digest: entry.digest.clone(),
                    outcome: p.outcome,
                    reasons: p.reasons,
                    signatures: p.signatures,
                    attestations: p.attestations,
                });
            }
        }
    }
    Ok(())
}

struct Judged {
    outcome: Outcome,
    reasons: Vec<String>,
    signatures: Vec<EvidenceCheck>,
    attestations: Vec<EvidenceCheck>,
    sboms: Vec<EvidenceRef>,
    other: Vec<EvidenceRef>,
}

/// Verifies every piece of evidence and decides. Pure: no I/O.
///
/// Verified iff at least one signature or attestation is accepted (verified, names this digest,
/// signed by the policy's identity or the key), and every required predicate type has an
/// accepted attestation. A verified attestation counts as a signature over the digest: its
/// statement's subject is the digest and the trusted identity signed it.
fn judge(
    discovery: &Discovery,
    image: &ImageRef,
    digest: &Digest,
    trust: &TrustRoot,
    request: &ImageRequest,
    now: jiff::Timestamp,
    limits: &Limits,
) -> Judged {
    let mut j = Judged {
        outcome: Outcome::Rejected,
        reasons: Vec::new(),
        signatures: Vec::new(),
        attestations: Vec::new(),
        sboms: Vec::new(),
        other: Vec::new(),
    };
    let key = request.key.as_ref();
    for item in &discovery.items {
        match item.kind {
            EvidenceKind::CosignSignature | EvidenceKind::CosignAttestation => {
                let result = layer_to_bundle(
                    &item.media_type,
                    &item.annotations,
                    &item.content,
                    key.is_some(),
                    limits,
                )
                .map_err(VerifyError::from)
                .and_then(|layer| {
                    verify_cosign_layer(&layer, image, digest, trust, key, now, limits)
                        .map(|c| c.facts)
                });
                let check = check_of(item, result, request);
                if item.kind == EvidenceKind::CosignSignature {
                    j.signatures.push(check);
                } else {
                    j.attestations.push(check);
                }
            }
            EvidenceKind::SigstoreBundle => {
                let result = parse_bundle(&item.content, limits)
                    .map_err(VerifyError::from)
                    .and_then(|b| verify_attached_bundle(&b, digest, trust, key, now, limits));
                let is_attestation = match &result {
                    Ok(facts) => facts
                        .statement()
                        .is_some_and(|s| s.predicate_type != COSIGN_SIGN_PREDICATE),
                    Err(_) => true,
                };
                let check = check_of(item, result, request);
                if is_attestation {
                    j.attestations.push(check);
                } else {
                    j.signatures.push(check);
                }
            }
            EvidenceKind::CosignSbom | EvidenceKind::Sbom => j.sboms.push(EvidenceRef::from(item)),
            EvidenceKind::Other => j.other.push(EvidenceRef::from(item)),
        }
    }

    let signer_kind = if key.is_some() {
        "the given key"
    } else {
        "the identity policy"
    };
    let accepted_any = j
        .signatures
        .iter()
        .chain(&j.attestations)
        .any(|c| c.accepted);
    if j.signatures.is_empty() && j.attestations.is_empty() {
        j.reasons.push(format!(
            "no signatures or attestations found for {digest} (looked at: {})",
            discovery.looked_at.join(", ")
        ));
    } else if !accepted_any {
        j.reasons.push(format!(
            "none of the {} signature(s) and {} attestation(s) found verifies and is signed by {signer_kind}",
            j.signatures.len(),
            j.attestations.len()
        ));
    }
    let mut missing = Vec::new();
    for req in &request.required_predicate_types {
        let ok = j.attestations.iter().any(|c| {
            c.accepted
                && c.predicate_type
                    .as_ref()
                    .is_some_and(|p| req.uris.contains(p))
        });
        if !ok {
            let found: Vec<String> = j
                .attestations
                .iter()
                .filter_map(|c| c.predicate_type.clone())
                .collect();
            missing.push(format!(
                "no accepted attestation of type {} ({}); attestations found: {}",
                req.name,
                req.uris.join(" or "),
                if found.is_empty() {
                    "none".into()
                } else {
                    found.join(", ")
                }
            ));
        }
    }
    j.reasons.extend(missing);
    if j.reasons.is_empty() && accepted_any {
        j.outcome = Outcome::Verified;
    }
    j
}

/// Turns one verification result into a reported check, applying the identity policy.
fn check_of(
    item: &EvidenceItem,
    result: Result<VerifiedFacts, VerifyError>,
    request: &ImageRequest,
) -> EvidenceCheck {
    let mut check = EvidenceCheck {
        evidence: EvidenceRef::from(item),
        accepted: false,
        signer: None,
        issuer: None,
        predicate_type: None,
        log_index: None,
        signed_at: None,
        check: None,
        reason: None,
        mismatches: Vec::new(),
    };
    match result {
        Err(e) => {
            check.check = Some(e.check().code());
            check.reason = Some(e.to_string());
        }
        Ok(facts) => {
            match facts.signer() {
                Signer::Certificate(c) => {
                    check.signer = c.identity.clone();
                    check.issuer = c.issuer.clone();
                }
                Signer::Key { key_digest, .. } => check.signer = Some(format!("key {key_digest}")),
            }
            check.predicate_type = facts.statement().map(|s| s.predicate_type.clone());
            check.log_index = facts.log_entries().first().map(|e| e.log_index);
            check.signed_at = facts.timestamps().iter().map(|t| t.time.clone()).min();
            if request.key.is_some() {
                check.accepted = true;
            } else {
                match request.identity.evaluate(&facts) {
                    Ok(()) => check.accepted = true,
                    Err(m) => {
                        check.reason = Some(
                            "verified, but not signed by the identity the policy requires".into(),
                        );
                        check.mismatches = m;
                    }
                }
            }
        }
    }
    check
}
