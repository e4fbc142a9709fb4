//! The trust-policy file as written (YAML), before validation. The JSON Schema published in
//! `docs/policy.schema.json` is generated from these types (`custody policy schema`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// `apiVersion` custody reads.
pub const API_VERSION: &str = "custody.dev/v1";
/// `kind` of a trust policy.
pub const KIND: &str = "TrustPolicy";

/// A trust policy document.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyDocument {
    /// Must be `custody.dev/v1`.
    #[schemars(with = "String")]
    pub api_version: Spanned<String>,
    /// Must be `TrustPolicy`.
    #[schemars(with = "String")]
    pub kind: Spanned<String>,
    /// Name and description.
    pub metadata: Metadata,
    /// The policy.
    pub spec: Spec,
}

/// Metadata.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// The policy's name, as verdicts cite it.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: Option<String>,
}

/// The policy proper.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Spec {
    /// `enforce` (deny means deny) or `warn` (deny is reported, callers admit with a warning).
    #[serde(default)]
    pub mode: Mode,
    /// `production`, `staging`, or a path to a `trusted_root.json` (relative to the policy file).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub trust_root: Option<Spanned<String>>,
    /// The GitOps reference rules.
    #[serde(default)]
    pub references: Option<References>,
    /// Rules, in order: the first whose images and environment match decides.
    pub rules: Vec<Rule>,
    /// Signed verification summaries (SLSA VSAs made by `custody attest`) accepted in place of
    /// re-verifying an image, when fresh, signed by one of these keys and made under this very
    /// policy (docs/attest.md).
    #[serde(default)]
    pub verification_summaries: Option<VerificationSummaries>,
}

/// Which signed verification summaries the fast path accepts.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerificationSummaries {
    /// ECDSA P-256 public keys of the custody instances whose summaries are trusted.
    pub keys: Vec<Key>,
    /// How old a summary may be (`30m`, `1h`, `24h`; at most 720h).
    #[schemars(with = "String")]
    pub max_age: Spanned<String>,
    /// The `verifier.id` a summary must carry (any, when absent).
    #[serde(default)]
    pub verifier_id: Option<String>,
}

/// Enforcement mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A deny is a deny.
    #[default]
    Enforce,
    /// A deny is reported; callers admit with a warning.
    Warn,
}

/// How images must be referenced (the delivery repository's rules).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct References {
    /// Require `@sha256:…` on every reference (default true).
    #[serde(default = "yes")]
    pub require_digest: bool,
    /// First-party image globs (`ghcr.io/acme/**`): tags allowed only if not denied.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub first_party: Vec<Spanned<String>>,
    /// Tag globs rejected even next to a digest (default: latest, main, master, develop, develop-*, staging-*, production-*).
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub denied_tags: Option<Vec<Spanned<String>>>,
    /// Third-party images: a semver tag with a digest is allowed when `allowSemverTag`.
    #[serde(default)]
    pub third_party: Vec<ThirdParty>,
}

fn yes() -> bool {
    true
}

/// Third-party image globs.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThirdParty {
    /// Image globs.
    #[schemars(with = "Vec<String>")]
    pub images: Vec<Spanned<String>>,
    /// Allow `repo:1.2.3@sha256:…` (semver tag with digest).
    #[serde(default)]
    pub allow_semver_tag: bool,
}

/// A rule.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// Name, unique in the policy.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Image globs on `registry/repository`: `*` within a path segment, `**` across segments.
    #[schemars(with = "Vec<String>")]
    pub images: Vec<Spanned<String>>,
    /// Environments the rule applies to (empty: any, including none).
    #[serde(default)]
    pub environments: Vec<String>,
    /// Who may sign.
    pub authorities: Authorities,
    /// Attestations required, each from one of the authorities.
    #[serde(default)]
    pub attestations: Vec<Attestation>,
    /// `none` (default), `present` (an SBOM is attached, signed or not), or `attested` (an SPDX or
    /// CycloneDX attestation from one of the authorities).
    #[serde(default)]
    pub sbom: SbomRequirement,
    /// The environment this one is promoted from: checked by the promotion gate
    /// (`custody gitops check`), reported here.
    #[serde(default)]
    pub promoted_from: Option<String>,
}

/// SBOM requirement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SbomRequirement {
    /// No requirement.
    #[default]
    None,
    /// An SBOM is attached (signed or not).
    Present,
    /// An SBOM attestation signed by one of the rule's authorities.
    Attested,
}

/// Authorities: keyless identities and static keys, with a threshold.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Authorities {
    /// How many distinct authorities must have signed (default 1).
    #[serde(default)]
    pub threshold: Option<u32>,
    /// Keyless (Fulcio) identities.
    #[serde(default)]
    pub keyless: Vec<Keyless>,
    /// Static public keys.
    #[serde(default)]
    pub keys: Vec<Key>,
}

/// A keyless identity: issuer, subject and any Fulcio claims.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Keyless {
    /// Name, for verdicts.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Exact OIDC issuer.
    #[serde(default)]
    pub issuer: Option<String>,
    /// OIDC issuer regexp (anchored).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub issuer_reg_exp: Option<Spanned<String>>,
    /// Exact certificate identity (SAN).
    #[serde(default)]
    pub subject: Option<String>,
    /// Certificate identity regexp (anchored).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub subject_reg_exp: Option<Spanned<String>>,
    /// Fulcio claims that must equal these values (names as in the verified facts, e.g.
    /// `sourceRepositoryRef`, `runnerEnvironment`, `buildSignerUri`).
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    /// Fulcio claims that must match these regexps (anchored).
    #[serde(default)]
    pub claims_reg_exp: BTreeMap<String, String>,
}

/// A static public key.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Key {
    /// Name, for verdicts.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// PEM public key.
    #[serde(default)]
    pub public_key: Option<String>,
    /// Path to a PEM public key (relative to the policy file).
    #[serde(default)]
    pub file: Option<String>,
}

/// A required attestation.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Attestation {
    /// Name, for verdicts.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// `slsaprovenance`, `slsaprovenance1`, `slsaprovenance02`, `spdx`, `cyclonedx`, `vuln`,
    /// `vsa`, `custom`, or a predicate-type URI.
    #[schemars(with = "String")]
    pub predicate_type: Spanned<String>,
    /// CEL expressions over `predicate`, `predicateType`, `subjects`, `image`, `signer`; each must
    /// be true.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub conditions: Vec<Spanned<String>>,
    /// Provenance ↔ certificate consistency (default true for SLSA provenance): the
    /// provenance's source repository, ref, commit and builder must match the signing
    /// certificate's claims.
    #[serde(default)]
    pub match_certificate: Option<bool>,
}
