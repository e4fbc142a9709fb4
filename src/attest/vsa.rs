//! The SLSA Verification Summary Attestation v1 (`https://slsa.dev/verification_summary/v1`) in
//! an in-toto Statement v1, built from an allow verdict. Pure: time comes in as an argument.
//!
//! What custody writes, field by field (docs/attest.md has the reasoning):
//!
//! * `subject`: one entry, `name` = `registry/repository`, `digest.sha256` = the image digest.
//! * `verifier.id`: the operator's verifier URI (`--verifier-id`); `verifier.version.custody`.
//! * `timeVerified`: the verification time (RFC 3339, UTC).
//! * `resourceUri`: `oci://registry/repository@sha256:<hex>` — the digest-pinned image, no tag.
//! * `policy`: `uri` `custody:policy/<metadata.name>`, `digest.sha256` = the policy file's
//!   content hash (what verdicts cite), `name` = `metadata.name`.
//! * `inputAttestations`: every piece of evidence the verdict used — signatures and attestations
//!   an authority of the matched rule accepted, and the attached SBOMs when the rule required one
//!   — each `{uri: oci://<repository>@<manifest digest>, digest: {sha256: <blob digest>},
//!   mediaType}`: the manifest that holds it and the blob itself.
//! * `verificationResult`: `PASSED` (custody attests allow verdicts only).
//! * `verifiedLevels`: one build-track level, never more than was checked ([`BuildLevel`]).
//! * `slsaVersion`: `1.0`. `dependencyLevels` is omitted: custody does not verify dependencies.
//! * the extension field [`CONTEXT_FIELD`] (the spec lets producers add URI-named fields):
//!   the environment and rule that decided, the trust root's content hash and the content hashes
//!   of the static keys the policy trusts. The policy hash covers the policy file only, not the
//!   files it names; the fast path compares these too so that a rotated key or trust root, or a
//!   summary made for a laxer environment, is never taken for a current decision.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::AttestError;
use crate::policy::Policy;
use crate::policy::document::SbomRequirement;
use crate::reference::{Digest, ImageRef};
use crate::verdict::{EvidenceRef, Verdict, VerdictDecision};

/// The in-toto Statement type custody writes.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// The VSA predicate type.
pub const VSA_PREDICATE_TYPE: &str = "https://slsa.dev/verification_summary/v1";
/// The SLSA specification version the levels refer to.
pub const SLSA_VERSION: &str = "1.0";
/// The predicate extension field holding custody's decision context.
pub const CONTEXT_FIELD: &str = "https://custody.dev/vsa/context/v1";
/// `verifier.id` when the operator names none.
pub const DEFAULT_VERIFIER_ID: &str = "https://custody.dev/verifier";

/// An in-toto Statement v1 carrying a VSA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VsaStatement {
    /// `https://in-toto.io/Statement/v1`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// What was verified.
    pub subject: Vec<Subject>,
    /// `https://slsa.dev/verification_summary/v1`.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The summary.
    pub predicate: VsaPredicate,
}

/// A statement subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// `registry/repository`.
    pub name: String,
    /// `{"sha256": "<hex>"}`.
    pub digest: BTreeMap<String, String>,
}

/// The VSA predicate. Unknown fields are ignored when reading (the spec's parsing rules).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VsaPredicate {
    /// Who verified.
    pub verifier: Verifier,
    /// When (RFC 3339).
    pub time_verified: String,
    /// The resource verified.
    pub resource_uri: String,
    /// The policy it was verified against.
    pub policy: ResourceDescriptor,
    /// The attestations used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_attestations: Vec<ResourceDescriptor>,
    /// `PASSED` or `FAILED`.
    pub verification_result: String,
    /// The highest level verified per track.
    pub verified_levels: Vec<String>,
    /// Dependency levels (custody writes none).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dependency_levels: BTreeMap<String, u64>,
    /// `1.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slsa_version: Option<String>,
    /// custody's decision context ([`CONTEXT_FIELD`]).
    #[serde(
        rename = "https://custody.dev/vsa/context/v1",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub context: Option<DecisionContext>,
}

/// `verifier`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verifier {
    /// The verifier's URI.
    pub id: String,
    /// Component versions (`{"custody": "0.1.0"}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub version: BTreeMap<String, String>,
}

/// An in-toto ResourceDescriptor (the fields custody writes or reads).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDescriptor {
    /// Where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Its digests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

/// What decided, beyond the policy file ([`CONTEXT_FIELD`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionContext {
    /// The environment asked about (`null`: none).
    pub environment: Option<String>,
    /// The rule that matched.
    #[serde(default)]
    pub rule: Option<String>,
    /// The trust root: `{name, contentHash}`.
    pub trust_root: TrustRootHash,
    /// Content hashes of the static keys the policy trusts, sorted (`sha256:<hex>`).
    pub authority_keys: Vec<String>,
}

/// A trust root's name and content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustRootHash {
    /// Its name.
    pub name: String,
    /// `sha256:<hex>` of its canonical JSON.
    pub content_hash: String,
}

/// A SLSA build-track level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BuildLevel {
    /// No provenance was required.
    L0,
    /// Provenance exists (custody: a SLSA provenance attestation the rule required, signed by
    /// one of its authorities, was verified).
    L1,
    /// Signed provenance from a hosted build platform: the operator vouches that the rule's
    /// authorities are such a platform.
    L2,
    /// Hardened build platform: the operator vouches for it.
    L3,
}

impl fmt::Display for BuildLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = match self {
            Self::L0 => 0,
            Self::L1 => 1,
            Self::L2 => 2,
            Self::L3 => 3,
        };
        write!(f, "SLSA_BUILD_LEVEL_{n}")
    }
}

impl FromStr for BuildLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "SLSA_BUILD_LEVEL_0" => Ok(Self::L0),
            "SLSA_BUILD_LEVEL_1" => Ok(Self::L1),
            "SLSA_BUILD_LEVEL_2" => Ok(Self::L2),
            "SLSA_BUILD_LEVEL_3" => Ok(Self::L3),
            other => Err(format!(
                "{other:?} is not a SLSA build level: use SLSA_BUILD_LEVEL_0, _1, _2 or _3"
            )),
        }
    }
}

/// The build level to claim for a verdict of `policy`'s rule `rule`.
///
/// Checked: L1 when the rule requires a SLSA provenance attestation (the allow verdict proves one
/// was verified, signed by the rule's authorities, its conditions true), else L0. `requested`
/// may lower that, or raise it to L2/L3 when provenance was checked (whether the builder is a
/// hosted or hardened platform is the operator's knowledge of the identity the rule trusts,
/// not something the evidence shows); raising it without checked provenance is refused.
///
/// # Errors
/// [`AttestError::Level`] when `requested` claims provenance that was not checked.
pub fn build_level(
    policy: &Policy,
    rule: Option<&str>,
    requested: Option<BuildLevel>,
) -> Result<BuildLevel, AttestError> {
    let provenance_checked = rule
        .and_then(|name| policy.rules.iter().find(|r| r.name == name))
        .is_some_and(|r| {
            r.attestations.iter().any(|a| {
                a.predicate
                    .uris
                    .iter()
                    .any(|u| u.starts_with("https://slsa.dev/provenance/"))
            })
        });
    let checked = if provenance_checked {
        BuildLevel::L1
    } else {
        BuildLevel::L0
    };
    match requested {
        None => Ok(checked),
        Some(l) if l <= checked || provenance_checked => Ok(l),
        Some(l) => Err(AttestError::Level {
            requested: l.to_string(),
            detail: format!(
                "rule {} requires no SLSA provenance attestation, so custody verified {checked} only",
                rule.unwrap_or("(none)")
            ),
        }),
    }
}

/// The `resourceUri` custody writes and expects for a digest-pinned image:
/// `oci://registry/repository@sha256:<hex>` (no tag).
pub fn resource_uri(name: &str, digest: &Digest) -> String {
    format!("oci://{name}@{digest}")
}

/// The `policy.uri` custody writes.
pub fn policy_uri(policy_name: &str) -> String {
    format!("custody:policy/{policy_name}")
}

/// Everything a summary is built from.
#[derive(Debug, Clone, Copy)]
pub struct SummaryInput<'a> {
    /// The verdict: must be an allow.
    pub verdict: &'a Verdict,
    /// Where each piece of the verdict's evidence was found, index-aligned with
    /// `verdict.evidence` (the engine's collected items).
    pub evidence: &'a [EvidenceRef],
    /// The policy that decided.
    pub policy: &'a Policy,
    /// Content hashes of the static keys the policy trusts.
    pub authority_keys: &'a [Digest],
    /// `verifier.id`.
    pub verifier_id: &'a str,
    /// The level to claim (see [`build_level`]).
    pub level: BuildLevel,
    /// The verification time.
    pub time_verified: jiff::Timestamp,
}

/// Builds the VSA statement for an allow verdict.
///
/// # Errors
/// [`AttestError::NotAllowed`] for anything but an allow, [`AttestError::NotPinned`] without a
/// digest; [`AttestError::Input`] when the verdict and evidence lists disagree.
pub fn build_statement(input: &SummaryInput<'_>) -> Result<VsaStatement, AttestError> {
    let v = input.verdict;
    if v.decision != VerdictDecision::Allow {
        return Err(AttestError::NotAllowed {
            verdict: Box::new(v.clone()),
        });
    }
    let digest = v.digest.clone().ok_or_else(|| AttestError::NotPinned {
        reference: v.reference.clone(),
    })?;
    if v.evidence.len() != input.evidence.len() {
        return Err(AttestError::Input(format!(
            "the verdict lists {} pieces of evidence, the locations {}",
            v.evidence.len(),
            input.evidence.len()
        )));
    }
    let image: ImageRef = v
        .reference
        .parse()
        .map_err(|e| AttestError::Input(format!("verdict reference {}: {e}", v.reference)))?;
    let name = image.name();
    let rule = v
        .rule
        .as_deref()
        .and_then(|r| input.policy.rules.iter().find(|x| x.name == r));
    let sbom_used = rule.is_some_and(|r| r.sbom != SbomRequirement::None);
    let inputs = v
        .evidence
        .iter()
        .zip(input.evidence)
        .filter(|(e, _)| {
            !e.accepted_by.is_empty() || (sbom_used && e.role == crate::evidence::Role::Sbom)
        })
        .map(|(e, at)| ResourceDescriptor {
            uri: Some(format!("oci://{}@{}", at.repository, at.manifest_digest)),
            digest: digest_set(&e.digest),
            name: None,
            media_type: Some(e.media_type.clone()),
        })
        .collect();
    let mut keys: Vec<String> = input
        .authority_keys
        .iter()
        .map(ToString::to_string)
        .collect();
    keys.sort();
    keys.dedup();
    Ok(VsaStatement {
        type_: STATEMENT_V1.to_owned(),
        subject: vec![Subject {
            name: name.clone(),
            digest: digest_set(&digest),
        }],
        predicate_type: VSA_PREDICATE_TYPE.to_owned(),
        predicate: VsaPredicate {
            verifier: Verifier {
                id: input.verifier_id.to_owned(),
                version: BTreeMap::from([("custody".to_owned(), crate::VERSION.to_owned())]),
            },
            time_verified: input.time_verified.to_string(),
            resource_uri: resource_uri(&name, &digest),
            policy: ResourceDescriptor {
                uri: Some(policy_uri(&v.policy.name)),
                digest: digest_set(&v.policy.content_hash),
                name: Some(v.policy.name.clone()),
                media_type: None,
            },
            input_attestations: inputs,
            verification_result: "PASSED".to_owned(),
            verified_levels: vec![input.level.to_string()],
            dependency_levels: BTreeMap::new(),
            slsa_version: Some(SLSA_VERSION.to_owned()),
            context: Some(DecisionContext {
                environment: v.environment.clone(),
                rule: v.rule.clone(),
                trust_root: TrustRootHash {
                    name: v.trust_root.name.clone(),
                    content_hash: v.trust_root.content_hash.to_string(),
                },
                authority_keys: keys,
            }),
        },
    })
}

/// `{"<algorithm>": "<hex>"}`.
pub fn digest_set(d: &Digest) -> BTreeMap<String, String> {
    BTreeMap::from([(d.algorithm().name().to_owned(), d.hex().to_owned())])
}

impl VsaStatement {
    /// The statement as compact JSON (the DSSE payload).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Plain data with string keys always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_print_and_parse() {
        for l in [
            BuildLevel::L0,
            BuildLevel::L1,
            BuildLevel::L2,
            BuildLevel::L3,
        ] {
            assert_eq!(l.to_string().parse::<BuildLevel>().unwrap(), l);
        }
        assert!("SLSA_BUILD_LEVEL_4".parse::<BuildLevel>().is_err());
        assert!("slsa_build_level_1".parse::<BuildLevel>().is_err());
    }

    #[test]
    fn the_resource_uri_names_the_pinned_image_without_a_tag() {
        let d: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        assert_eq!(
            resource_uri("ghcr.io/acme/app", &d),
            format!("oci://ghcr.io/acme/app@sha256:{}", "a".repeat(64))
        );
    }
}
