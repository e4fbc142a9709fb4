//! One verification of an image: resolve → discover evidence (registry) → verify each piece
//! (pure core) → judge against the identity policy → [`ImageVerification`].
//!
//! The network work is bounded by one [`Deadline`]; whatever goes wrong there ends in
//! [`Outcome::Error`] with the reason, never in `Verified`.

pub mod files;
pub mod policies;
pub mod saved;

use std::collections::BTreeSet;
use std::time::Duration;

use crate::evidence::cosign::layer_to_bundle;
use crate::evidence::oci::{Manifest, parse_manifest};
use crate::evidence::parse_bundle;
pub use crate::evidence::{PredicateRequirement, Role};
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

/// Everything found and cryptographically checked for one image: the facts, before judgement.
#[derive(Debug, Clone)]
pub struct Collected {
    /// The reference as given (tag kept: the GitOps rules judge it).
    pub reference: ImageRef,
    /// The digest-pinned image.
    pub image: ImageRef,
    /// The tag the digest was resolved from.
    pub resolved_from_tag: Option<String>,
    /// Whether the manifest is an index.
    pub is_index: bool,
    /// The evidence of the image itself.
    pub items: Vec<Checked>,
    /// Per platform, when requested for an index.
    pub platforms: Vec<PlatformCollected>,
    /// Discovery notes.
    pub notes: Vec<String>,
    /// What was looked at (for "nothing found" messages).
    pub looked_at: Vec<String>,
}

/// The evidence of one platform manifest.
#[derive(Debug, Clone)]
pub struct PlatformCollected {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Its digest.
    pub digest: Digest,
    /// Its evidence.
    pub items: Vec<Checked>,
    /// What was looked at.
    pub looked_at: Vec<String>,
}

/// One piece of evidence and the result of verifying it (`None` for unsigned documents).
#[derive(Debug, Clone)]
pub struct Checked {
    /// The evidence.
    pub evidence: EvidenceRef,
    /// Its role.
    pub role: Role,
    /// Verification result: facts, or the failed check.
    pub result: Option<Result<VerifiedFacts, VerifyError>>,
}

/// Why collection could not finish: the verdict is an error, never an allow.
#[derive(Debug, Clone)]
pub struct CollectError {
    /// The digest-pinned image, when known.
    pub image: Option<ImageRef>,
    /// The tag resolved, if any.
    pub resolved_from_tag: Option<String>,
    /// What went wrong.
    pub reason: String,
}

/// Resolves, discovers and verifies every piece of evidence for `reference`.
///
/// `keys`: static keys to try on evidence that carries no certificate.
///
/// # Errors
/// [`CollectError`] for registry failures, limits, the deadline, or a tag without `resolve`.
#[allow(clippy::too_many_arguments)]
pub async fn collect(
    client: &RegistryClient,
    trust: &TrustRoot,
    reference: &ImageRef,
    resolve: bool,
    keys: &[StaticKey],
    platforms: bool,
    discovery_options: &DiscoveryOptions,
    deadline: Duration,
    now: jiff::Timestamp,
    limits: &Limits,
) -> Result<Collected, CollectError> {
    let deadline = Deadline::after(deadline);
    let mut resolved_from_tag = None;
    let err = |image: Option<ImageRef>, tag: &Option<String>, e: RegistryError| CollectError {
        image,
        resolved_from_tag: tag.clone(),
        reason: e.to_string(),
    };
    // 1. A digest: given, or resolved once (a tag that moves later does not matter).
    let digest = match (reference.digest(), resolve) {
        (Some(d), _) => d.clone(),
        (None, true) => {
            let d = client
                .resolve(reference, &deadline)
                .await
                .map_err(|e| err(None, &None, e))?;
            resolved_from_tag = Some(reference.tag().unwrap_or("latest").to_owned());
            d
        }
        (None, false) => {
            return Err(CollectError {
                image: None,
                resolved_from_tag: None,
                reason: format!(
                    "{reference} is not digest-pinned: pass repo@sha256:<digest>, or --resolve to verify the digest the tag points to now"
                ),
            });
        }
    };
    let image = reference.with_digest(digest.clone());
    let fail = |e: RegistryError| err(Some(image.clone()), &resolved_from_tag, e);

    // 2. The manifest (exists here; index or image) and the evidence, concurrently.
    let (manifest, discovery) = tokio::join!(
        client.manifest(&image, &deadline),
        discover(client, &image, discovery_options, &deadline)
    );
    let manifest = manifest.map_err(fail)?;
    let discovery = discovery.map_err(fail)?;
    let parsed = parse_manifest(
        &manifest.bytes,
        manifest.content_type.as_deref(),
        limits.max_json_depth,
    )
    .map_err(|e| {
        fail(RegistryError::Malformed {
            what: "image manifest".into(),
            url: manifest.url.clone(),
            detail: e.to_string(),
        })
    })?;
    let mut collected = Collected {
        reference: reference.clone(),
        image: image.clone(),
        resolved_from_tag: resolved_from_tag.clone(),
        is_index: matches!(parsed, Manifest::Index(_)),
        items: check_all(&discovery, &image, &digest, trust, keys, now, limits),
        platforms: Vec::new(),
        notes: discovery.notes.clone(),
        looked_at: discovery.looked_at.clone(),
    };

    // 3. Platforms of an index, on request.
    if let (Manifest::Index(index), true) = (parsed, platforms) {
        let mut seen = BTreeSet::from([digest.clone()]);
        for entry in &index.manifests {
            if !seen.insert(entry.digest.clone()) {
                collected.notes.push(format!(
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
                // buildx attestation manifests carry this platform: not runnable images.
                continue;
            }
            let p_image = image.with_digest(entry.digest.clone());
            let d = discover(client, &p_image, discovery_options, &deadline)
                .await
                .map_err(fail)?;
            collected.notes.extend(d.notes.iter().cloned());
            collected.platforms.push(PlatformCollected {
                platform,
                digest: entry.digest.clone(),
                items: check_all(&d, &p_image, &entry.digest, trust, keys, now, limits),
                looked_at: d.looked_at.clone(),
            });
        }
    }
    Ok(collected)
}

/// Verifies every piece of evidence found (fetched, or loaded from a saved evidence directory).
/// Pure: no I/O.
pub fn check_items(
    items: &[EvidenceItem],
    image: &ImageRef,
    digest: &Digest,
    trust: &TrustRoot,
    keys: &[StaticKey],
    now: jiff::Timestamp,
    limits: &Limits,
) -> Vec<Checked> {
    items
        .iter()
        .map(|item| check_one(item, image, digest, trust, keys, now, limits))
        .collect()
}

fn check_all(
    discovery: &Discovery,
    image: &ImageRef,
    digest: &Digest,
    trust: &TrustRoot,
    keys: &[StaticKey],
    now: jiff::Timestamp,
    limits: &Limits,
) -> Vec<Checked> {
    check_items(&discovery.items, image, digest, trust, keys, now, limits)
}

fn check_one(
    item: &EvidenceItem,
    image: &ImageRef,
    digest: &Digest,
    trust: &TrustRoot,
    keys: &[StaticKey],
    now: jiff::Timestamp,
    limits: &Limits,
) -> Checked {
    let evidence = EvidenceRef::from(item);
    match item.kind {
        EvidenceKind::CosignSignature | EvidenceKind::CosignAttestation => {
            let keyless = item
                .annotations
                .get(crate::evidence::cosign::ANNOTATION_CERTIFICATE)
                .is_some_and(|c| !c.is_empty());
            let attempt = |key: Option<&StaticKey>| {
                layer_to_bundle(
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
                })
            };
            let result = if keyless || keys.is_empty() {
                attempt(None)
            } else {
                first_ok(keys.iter().map(|k| attempt(Some(k))))
            };
            let role = if item.kind == EvidenceKind::CosignSignature {
                Role::Signature
            } else {
                Role::Attestation
            };
            Checked {
                evidence,
                role,
                result: Some(result),
            }
        }
        EvidenceKind::SigstoreBundle => {
            let result = parse_bundle(&item.content, limits)
                .map_err(VerifyError::from)
                .and_then(|b| {
                    if b.public_key_hint().is_some() && !keys.is_empty() {
                        first_ok(keys.iter().map(|k| {
                            verify_attached_bundle(&b, digest, trust, Some(k), now, limits)
                        }))
                    } else {
                        verify_attached_bundle(&b, digest, trust, None, now, limits)
                    }
                });
            let role = match &result {
                Ok(facts)
                    if facts
                        .statement()
                        .is_none_or(|s| s.predicate_type == COSIGN_SIGN_PREDICATE) =>
                {
                    Role::Signature
                }
                _ => Role::Attestation,
            };
            Checked {
                evidence,
                role,
                result: Some(result),
            }
        }
        EvidenceKind::CosignSbom | EvidenceKind::Sbom => Checked {
            evidence,
            role: Role::Sbom,
            result: None,
        },
        // A verification summary is listed, never judged here: only the fast path
        // (`summary_verdict`) may accept one, and only on its own checks.
        EvidenceKind::VerificationSummary | EvidenceKind::Other => Checked {
            evidence,
            role: Role::Other,
            result: None,
        },
    }
}

/// The first success, else the last failure.
fn first_ok(
    attempts: impl Iterator<Item = Result<VerifiedFacts, VerifyError>>,
) -> Result<VerifiedFacts, VerifyError> {
    let mut last = Err(VerifyError::Failed {
        check: crate::verify::Check::VerificationMaterial,
        detail: "no key to try".into(),
    });
    for a in attempts {
        if a.is_ok() {
            return a;
        }
        last = a;
    }
    last
}

/// Verifies an image against its registry evidence with the command-line identity policy (or
/// key). Never panics on registry input; every failure is in the returned report.
pub async fn verify_image(
    client: &RegistryClient,
    trust: &TrustRoot,
    request: &ImageRequest,
    now: jiff::Timestamp,
    limits: &Limits,
) -> ImageVerification {
    let start = client.request_count();
    let keys: Vec<StaticKey> = request.key.iter().cloned().collect();
    let collected = collect(
        client,
        trust,
        &request.reference,
        request.resolve,
        &keys,
        request.platforms,
        &request.discovery,
        request.deadline,
        now,
        limits,
    )
    .await;
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
    match collected {
        Err(e) => {
            report.image = e.image;
            report.resolved_from_tag = e.resolved_from_tag;
            report.reasons.push(e.reason);
        }
        Ok(c) => {
            report.image = Some(c.image.clone());
            report.resolved_from_tag = c.resolved_from_tag.clone();
            report.is_index = c.is_index;
            report.notes = c.notes.clone();
            let j = judge(&c.items, &c.image, &c.looked_at, request);
            report.outcome = j.outcome;
            report.reasons = j.reasons;
            report.signatures = j.signatures;
            report.attestations = j.attestations;
            report.sboms = j.sboms;
            report.other = j.other;
            for p in &c.platforms {
                let pj = judge(
                    &p.items,
                    &c.image.with_digest(p.digest.clone()),
                    &p.looked_at,
                    request,
                );
                if pj.outcome != Outcome::Verified {
                    report.reasons.push(format!(
                        "platform {} ({}) is not verified",
                        p.platform, p.digest
                    ));
                    if report.outcome == Outcome::Verified {
                        report.outcome = pj.outcome;
                    }
                }
                report.platforms.push(PlatformVerification {
                    platform: p.platform.clone(),
                    digest: p.digest.clone(),
                    outcome: pj.outcome,
                    reasons: pj.reasons,
                    signatures: pj.signatures,
                    attestations: pj.attestations,
                });
            }
        }
    }
    report.http_requests = client.request_count().saturating_sub(start);
    report
}

struct Judged {
    outcome: Outcome,
    reasons: Vec<String>,
    signatures: Vec<EvidenceCheck>,
    attestations: Vec<EvidenceCheck>,
    sboms: Vec<EvidenceRef>,
    other: Vec<EvidenceRef>,
}

/// Judges checked evidence against the command-line identity policy. Pure.
///
/// Verified iff at least one signature or attestation is accepted (verified, names this digest,
/// signed by the policy's identity or the key), and every required predicate type has an
/// accepted attestation. A verified attestation counts as a signature over the digest: its
/// statement's subject is the digest and the trusted identity signed it.
fn judge(
    items: &[Checked],
    image: &ImageRef,
    looked_at: &[String],
    request: &ImageRequest,
) -> Judged {
    let mut j = Judged {
        outcome: Outcome::Rejected,
        reasons: Vec::new(),
        signatures: Vec::new(),
        attestations: Vec::new(),
        sboms: Vec::new(),
        other: Vec::new(),
    };
    for item in items {
        match (item.role, &item.result) {
            (Role::Signature, Some(r)) => j.signatures.push(check_of(&item.evidence, r, request)),
            (Role::Attestation, Some(r)) => {
                j.attestations.push(check_of(&item.evidence, r, request))
            }
            (Role::Sbom, _) => j.sboms.push(item.evidence.clone()),
            _ => j.other.push(item.evidence.clone()),
        }
    }
    let digest = image.digest().map(ToString::to_string).unwrap_or_default();
    let signer_kind = if request.key.is_some() {
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
            looked_at.join(", ")
        ));
    } else if !accepted_any {
        j.reasons.push(format!(
            "none of the {} signature(s) and {} attestation(s) found verifies and is signed by {signer_kind}",
            j.signatures.len(),
            j.attestations.len()
        ));
    }
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
            j.reasons.push(format!(
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
    if j.reasons.is_empty() && accepted_any {
        j.outcome = Outcome::Verified;
    }
    j
}

/// Turns one verification result into a reported check, applying the identity policy.
fn check_of(
    evidence: &EvidenceRef,
    result: &Result<VerifiedFacts, VerifyError>,
    request: &ImageRequest,
) -> EvidenceCheck {
    let mut check = EvidenceCheck {
        evidence: evidence.clone(),
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
            let key_ok = |k: &StaticKey| matches!(facts.signer(), Signer::Key { key_digest, .. } if key_digest == k.content_hash());
            match &request.key {
                Some(k) if key_ok(k) => check.accepted = true,
                Some(_) => {
                    check.reason = Some("verified with another key than the one given".into())
                }
                None => match request.identity.evaluate(facts) {
                    Ok(()) => check.accepted = true,
                    Err(m) => {
                        check.reason = Some(
                            "verified, but not signed by the identity the policy requires".into(),
                        );
                        check.mismatches = m;
                    }
                },
            }
        }
    }
    check
}

/// Judges collected evidence with a trust policy. Pure.
pub fn judge_policy(
    collected: &Collected,
    policy: &crate::policy::Policy,
    environment: Option<&str>,
    trust: &TrustRoot,
    created_at: String,
) -> crate::verdict::Verdict {
    use crate::policy::{Decision, evaluate};
    use crate::verdict::{
        PolicyRef, VERDICT_MEDIA_TYPE, Verdict, VerdictDecision, VerdictEvidence,
    };

    // The reference rules judge the reference as deployed (tag included).
    let mut j = evaluate(
        policy,
        &collected.reference,
        environment,
        &candidates(&collected.items),
    );
    for p in &collected.platforms {
        let pj = evaluate(
            policy,
            &collected.image.with_digest(p.digest.clone()),
            environment,
            &candidates(&p.items),
        );
        for mut r in pj
            .reasons
            .into_iter()
            .filter(|r| !r.check.starts_with("reference-"))
        {
            r.found = format!("platform {}: {}", p.platform, r.found);
            j.reasons.push(r);
        }
        if pj.decision == Decision::Deny && j.decision == Decision::Allow {
            j.decision = Decision::Deny;
        }
    }
    if !j.reasons.is_empty() {
        j.decision = Decision::Deny;
    }
    let evidence = collected
        .items
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let facts = c.result.as_ref().and_then(|r| r.as_ref().ok());
            let failure = c.result.as_ref().and_then(|r| r.as_ref().err());
            let cert = match facts.map(VerifiedFacts::signer) {
                Some(Signer::Certificate(cert)) => Some(cert),
                _ => None,
            };
            let claim = |f: fn(&crate::verify::FulcioClaims) -> &Option<String>| {
                cert.and_then(|c| f(&c.claims).clone())
            };
            let signer = match facts.map(VerifiedFacts::signer) {
                Some(Signer::Certificate(cert)) => cert.identity.clone(),
                Some(Signer::Key { key_digest, .. }) => Some(format!("key {key_digest}")),
                None => None,
            };
            let issuer = cert.and_then(|c| c.issuer.clone());
            let source_commit = claim(|c| &c.source_repository_digest);
            let workflow =
                claim(|c| &c.build_config_uri).or_else(|| claim(|c| &c.build_signer_uri));
            // The builder a provenance attestation names (SLSA v1, then v0.2).
            let builder = facts.and_then(VerifiedFacts::statement).and_then(|s| {
                let p = &s.predicate;
                p.pointer("/runDetails/builder/id")
                    .or_else(|| p.pointer("/builder/id"))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            });
            VerdictEvidence {
                role: c.role,
                media_type: c.evidence.media_type.clone(),
                digest: c.evidence.digest.clone(),
                found: c.evidence.found.clone(),
                verified: c.result.as_ref().map(Result::is_ok),
                check: failure.map(|e| e.check().code()),
                failure: failure.map(ToString::to_string),
                signer,
                issuer,
                source_commit,
                source_repository: claim(|c| &c.source_repository_uri),
                source_ref: claim(|c| &c.source_repository_ref),
                workflow,
                run: claim(|c| &c.run_invocation_uri),
                builder,
                predicate_type: facts.and_then(|f| f.statement().map(|s| s.predicate_type.clone())),
                log_index: facts.and_then(|f| f.log_entries().first().map(|e| e.log_index)),
                signed_at: facts.and_then(|f| f.timestamps().iter().map(|t| t.time.clone()).min()),
                accepted_by: j
                    .accepted
                    .iter()
                    .filter(|(k, _)| *k == i)
                    .map(|(_, a)| a.clone())
                    .collect(),
            }
        })
        .collect();
    let decision = VerdictDecision::from(j.decision);
    Verdict {
        media_type: VERDICT_MEDIA_TYPE,
        custody_version: crate::VERSION,
        created_at,
        decision,
        mode: policy.mode,
        admit: decision == VerdictDecision::Allow
            || (decision == VerdictDecision::Deny
                && policy.mode == crate::policy::document::Mode::Warn),
        reference: collected.reference.to_string(),
        digest: collected.image.digest().cloned(),
        resolved_from_tag: collected.resolved_from_tag.clone(),
        environment: environment.map(str::to_owned),
        policy: PolicyRef {
            name: policy.name.clone(),
            content_hash: policy.content_hash.clone(),
        },
        trust_root: TrustRootRef {
            name: trust.name().to_owned(),
            content_hash: trust.content_hash().clone(),
        },
        rule: j.rule,
        reasons: j.reasons,
        error: None,
        deferred: j.deferred,
        evidence,
        trace: j.trace,
        http_requests: 0,
    }
}

fn candidates(items: &[Checked]) -> Vec<crate::policy::Candidate<'_>> {
    items
        .iter()
        .map(|c| crate::policy::Candidate {
            role: c.role,
            facts: c.result.as_ref().and_then(|r| r.as_ref().ok()),
            label: format!("{:?} {}", c.role, c.evidence.digest).to_lowercase(),
        })
        .collect()
}

/// Every static key a policy names (tried on evidence without a certificate).
pub fn policy_keys(policy: &crate::policy::Policy) -> Vec<StaticKey> {
    policy
        .rules
        .iter()
        .flat_map(|r| r.authorities.iter())
        .filter_map(|a| match a {
            crate::policy::Authority::Key { key, .. } => Some(key.clone()),
            crate::policy::Authority::Keyless(_) => None,
        })
        .collect()
}

/// Collects the evidence of a digest-pinned `reference` and judges it with a loaded policy: the
/// whole verification of one image, as the service and `gitops check` run it. Registry failures
/// become an error verdict (never an allow).
///
/// When the policy has `spec.verificationSummaries`, a signed verification summary attached to
/// the image is tried first ([`summary_or_full`]); an accepted one is the verdict (its trace and
/// evidence name it), anything else falls back to full verification with the reason in the trace.
/// Both share `deadline`.
pub async fn policy_verdict(
    client: &RegistryClient,
    loaded: &policies::LoadedPolicy,
    reference: &ImageRef,
    environment: Option<&str>,
    discovery: &DiscoveryOptions,
    deadline: Duration,
    now: jiff::Timestamp,
) -> crate::verdict::Verdict {
    if let Some(v) = unpinned_verdict(loaded, reference, environment, now) {
        return v;
    }
    summary_or_full(
        client,
        &loaded.policy,
        &loaded.trust,
        reference,
        environment,
        deadline,
        now,
        |left| async move {
            full_policy_verdict(client, loaded, reference, environment, discovery, left, now)
                .await
                .0
        },
    )
    .await
}

/// The summary fast path in front of a full verification: the one place that wires it, for the
/// service, `gitops check` ([`policy_verdict`]) and `custody verify --policy` (which collects
/// with its own `--resolve`).
///
/// Without `spec.verificationSummaries` in `policy` this is `full(deadline)`. With it,
/// [`summary_verdict`] runs first under `deadline`; an accepted summary is the verdict (allow,
/// the summary its one piece of evidence) and `full` is never called. Otherwise `full` gets what
/// is left of `deadline` (zero when the fast path used it all: the full verification is then an
/// error verdict, never an allow), and its verdict stands, with the reasons no summary was
/// accepted and "full verification follows" put in front of its trace. The fast path never
/// denies and never turns a deny into an allow by itself: only a summary that passes every check
/// allows, and anything else is decided by `full`.
#[allow(clippy::too_many_arguments)]
pub async fn summary_or_full<F, Fut>(
    client: &RegistryClient,
    policy: &crate::policy::Policy,
    trust: &TrustRoot,
    reference: &ImageRef,
    environment: Option<&str>,
    deadline: Duration,
    now: jiff::Timestamp,
    full: F,
) -> crate::verdict::Verdict
where
    F: FnOnce(Duration) -> Fut,
    Fut: std::future::Future<Output = crate::verdict::Verdict>,
{
    if policy.verification_summaries.is_none() {
        return full(deadline).await;
    }
    let shared = Deadline::after(deadline);
    let mut notes =
        match summary_verdict(client, policy, trust, reference, environment, &shared, now).await {
            SummaryOutcome::Accepted(v) => return *v,
            SummaryOutcome::Declined(n) => n,
        };
    // An exhausted deadline leaves zero: the verification below is then an error verdict.
    let left = shared.remaining("verifying").unwrap_or(Duration::ZERO);
    let mut v = full(left).await;
    if !notes.is_empty() {
        notes.push("full verification follows".into());
        notes.append(&mut v.trace);
        v.trace = notes;
    }
    v
}

/// Full verification with a loaded policy (never the summary fast path): the verdict, and what
/// was collected when the registry could be read (`custody attest` cites the evidence from it).
pub async fn full_policy_verdict(
    client: &RegistryClient,
    loaded: &policies::LoadedPolicy,
    reference: &ImageRef,
    environment: Option<&str>,
    discovery: &DiscoveryOptions,
    deadline: Duration,
    now: jiff::Timestamp,
) -> (crate::verdict::Verdict, Option<Collected>) {
    if let Some(v) = unpinned_verdict(loaded, reference, environment, now) {
        return (v, None);
    }
    let limits = Limits::default();
    let collected = collect(
        client,
        &loaded.trust,
        reference,
        false,
        &loaded.keys,
        false,
        discovery,
        deadline,
        now,
        &limits,
    )
    .await;
    match collected {
        Ok(c) => (
            judge_policy(
                &c,
                &loaded.policy,
                environment,
                &loaded.trust,
                now.to_string(),
            ),
            Some(c),
        ),
        Err(e) => {
            let mut v = crate::verdict::Verdict::error(
                reference,
                e.image.and_then(|i| i.digest().cloned()),
                environment,
                crate::verdict::PolicyRef {
                    name: loaded.policy.name.clone(),
                    content_hash: loaded.policy.content_hash.clone(),
                },
                loaded.policy.mode,
                TrustRootRef {
                    name: loaded.trust.name().to_owned(),
                    content_hash: loaded.trust.content_hash().clone(),
                },
                now.to_string(),
                e.reason,
            );
            v.resolved_from_tag = e.resolved_from_tag;
            (v, None)
        }
    }
}

/// What the summary fast path concluded.
#[derive(Debug, Clone)]
pub enum SummaryOutcome {
    /// A summary was accepted: this allow verdict stands, full verification is skipped.
    Accepted(Box<crate::verdict::Verdict>),
    /// No summary was accepted; the lines say why (for the trace). Verify fully.
    Declined(Vec<String>),
}

/// The admission fast path: accepts a signed verification summary attached to `reference`
/// instead of verifying its evidence, when the policy has `spec.verificationSummaries`.
///
/// Declined (never a deny) when the policy has no such block, the reference is not digest-pinned,
/// the reference rules object to it, no rule matches, the registry cannot be read, or no summary
/// passes every check of [`crate::attest::accept_summary`] — signed by a trusted key, this
/// digest and resource, this policy hash, environment, trust root and key set, PASSED, verifier,
/// not in the future and within `maxAge` at `now`. Accepted: an allow verdict whose trace says
/// which summary, key and verification time, with the summary as its one piece of evidence.
pub async fn summary_verdict(
    client: &RegistryClient,
    policy: &crate::policy::Policy,
    trust: &TrustRoot,
    reference: &ImageRef,
    environment: Option<&str>,
    deadline: &Deadline,
    now: jiff::Timestamp,
) -> SummaryOutcome {
    use crate::attest::{Expected, accept_summary, push::find_summaries};
    let declined =
        |why: String| SummaryOutcome::Declined(vec![format!("verification summary: {why}")]);
    let Some(summaries) = &policy.verification_summaries else {
        return SummaryOutcome::Declined(Vec::new());
    };
    let Some(digest) = reference.digest() else {
        return declined(format!("{reference} is not digest-pinned"));
    };
    if let Some(rules) = &policy.references {
        let broken: Vec<&str> = rules.check(reference).iter().map(|v| v.code).collect();
        if !broken.is_empty() {
            return declined(format!(
                "{reference} breaks reference rule(s) {}: not taken from a summary",
                broken.join(", ")
            ));
        }
    }
    let name = reference.name();
    let Some(rule) = policy.rules.iter().find(|r| r.matches(&name, environment)) else {
        return declined(format!("no rule matches {name}"));
    };
    let (found, mut notes) = match find_summaries(client, reference, deadline).await {
        Ok(f) => f,
        Err(e) => return declined(format!("could not read the summaries attached: {e}")),
    };
    notes
        .iter_mut()
        .for_each(|n| *n = format!("verification summary: {n}"));
    if found.is_empty() {
        notes.push(format!(
            "verification summary: none attached to {name}@{digest}"
        ));
        return SummaryOutcome::Declined(notes);
    }
    let authority_keys: Vec<Digest> = policy_keys(policy)
        .iter()
        .map(|k| k.content_hash().clone())
        .collect();
    let expected = Expected {
        name: &name,
        digest,
        environment,
        policy_hash: &policy.content_hash,
        trust_root_hash: trust.content_hash(),
        authority_keys: &authority_keys,
        now,
    };
    let limits = Limits::default();
    for f in found {
        let accepted = match accept_summary(&f.envelope, summaries, &expected, &limits) {
            Ok(a) => a,
            Err(refusal) => {
                notes.push(format!(
                    "verification summary {} not accepted ({}): {refusal}",
                    f.envelope_digest,
                    refusal.code()
                ));
                continue;
            }
        };
        let mut v = crate::verdict::Verdict::error(
            reference,
            Some(digest.clone()),
            environment,
            crate::verdict::PolicyRef {
                name: policy.name.clone(),
                content_hash: policy.content_hash.clone(),
            },
            policy.mode,
            TrustRootRef {
                name: trust.name().to_owned(),
                content_hash: trust.content_hash().clone(),
            },
            now.to_string(),
            String::new(),
        );
        v.error = None;
        v.decision = crate::verdict::VerdictDecision::Allow;
        v.admit = true;
        v.rule = Some(rule.name.clone());
        if let Some(from) = &rule.promoted_from {
            v.deferred.push(format!("the digest must be the one environment {from:?} runs: checked by the promotion gate (custody gitops check), not here"));
        }
        let age = now.duration_since(accepted.time_verified);
        notes.push(format!("rule {:?} matches {name}", rule.name));
        notes.push(format!(
            "verification summary {} accepted: signed by summary key {:?} ({}), verifier {}, verified at {} ({age:#} ago, maxAge {}), policy {}, levels {}; full verification skipped",
            accepted.envelope_digest,
            accepted.key_name,
            accepted.key_digest,
            accepted.verifier_id,
            accepted.time_verified,
            summaries.max_age_text,
            policy.content_hash,
            accepted.verified_levels.join(", ")
        ));
        v.trace = notes;
        v.evidence = vec![crate::verdict::VerdictEvidence {
            role: Role::Attestation,
            media_type: crate::evidence::cosign::DSSE_MEDIA_TYPE.to_owned(),
            digest: f.envelope_digest.clone(),
            found: f.found.clone(),
            verified: Some(true),
            check: None,
            failure: None,
            signer: Some(format!("key {}", accepted.key_digest)),
            issuer: None,
            source_commit: None,
            source_repository: None,
            source_ref: None,
            workflow: None,
            run: None,
            builder: None,
            predicate_type: Some(crate::attest::VSA_PREDICATE_TYPE.to_owned()),
            log_index: None,
            signed_at: Some(accepted.time_verified.to_string()),
            accepted_by: vec![format!("verification summary key {}", accepted.key_name)],
        }];
        return SummaryOutcome::Accepted(Box::new(v));
    }
    SummaryOutcome::Declined(notes)
}

/// The verdict on a reference without a digest when the policy's reference rules require one:
/// a deny naming `reference-digest` (what a person needs to fix), not a registry error. `None`
/// when the reference is digest-pinned or the policy does not require digests (then the
/// verification itself refuses to guess what the tag points to).
pub fn unpinned_verdict(
    loaded: &policies::LoadedPolicy,
    reference: &ImageRef,
    environment: Option<&str>,
    now: jiff::Timestamp,
) -> Option<crate::verdict::Verdict> {
    use crate::verdict::VerdictDecision;
    if reference.digest().is_some() {
        return None;
    }
    let reasons: Vec<crate::policy::Reason> = loaded
        .policy
        .references
        .as_ref()?
        .check(reference)
        .into_iter()
        .map(|v| crate::policy::Reason {
            rule: None,
            check: v.code,
            expected: v.expected,
            found: v.found,
        })
        .collect();
    if !reasons.iter().any(|r| r.check == "reference-digest") {
        return None;
    }
    let mut v = crate::verdict::Verdict::error(
        reference,
        None,
        environment,
        crate::verdict::PolicyRef {
            name: loaded.policy.name.clone(),
            content_hash: loaded.policy.content_hash.clone(),
        },
        loaded.policy.mode,
        TrustRootRef {
            name: loaded.trust.name().to_owned(),
            content_hash: loaded.trust.content_hash().clone(),
        },
        now.to_string(),
        String::new(),
    );
    v.error = None;
    v.decision = VerdictDecision::Deny;
    v.admit = loaded.policy.mode == crate::policy::document::Mode::Warn;
    v.reasons = reasons;
    Some(v)
}
