//! Verified facts: what verification proved, as a typed record.
//!
//! A [`VerifiedFacts`] can only be made by [`super::verify_bundle`] after every check passed
//! (its fields are private and it has no public constructor), so holding one is proof that the
//! bundle verified against the trust root it names. Whether the facts are *acceptable* is a
//! question for [`crate::policy`].

use serde::Serialize;

use crate::evidence::{BundleKind, InTotoStatement};
use crate::reference::Digest;

/// Media type of the JSON rendering of [`VerifiedFacts`]; bumped on incompatible changes.
pub const FACTS_MEDIA_TYPE: &str = "application/vnd.custody.verified-facts.v1+json";

/// What a successful verification established.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedFacts {
    pub(super) media_type: &'static str,
    pub(super) bundle_media_type: String,
    pub(super) bundle_digest: Digest,
    pub(super) kind: BundleKind,
    pub(super) artifact_digest: Digest,
    pub(super) signer: Signer,
    pub(super) timestamps: Vec<VerifiedTime>,
    pub(super) log_entries: Vec<LogEntry>,
    pub(super) statement: Option<InTotoStatement>,
    pub(super) trust_root: TrustRootRef,
}

impl VerifiedFacts {
    /// The bundle's media type as written.
    pub fn bundle_media_type(&self) -> &str {
        &self.bundle_media_type
    }
    /// SHA-256 of the bundle document.
    pub fn bundle_digest(&self) -> &Digest {
        &self.bundle_digest
    }
    /// Message signature or DSSE.
    pub fn kind(&self) -> BundleKind {
        self.kind
    }
    /// The artifact's digest, as verified (for DSSE: the matching subject digest).
    pub fn artifact_digest(&self) -> &Digest {
        &self.artifact_digest
    }
    /// Who signed.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }
    /// The certificate identity, if keyless.
    pub fn certificate(&self) -> Option<&CertificateIdentity> {
        match &self.signer {
            Signer::Certificate(c) => Some(c),
            Signer::Key { .. } => None,
        }
    }
    /// Every verified time, with its source.
    pub fn timestamps(&self) -> &[VerifiedTime] {
        &self.timestamps
    }
    /// The verified transparency-log entries.
    pub fn log_entries(&self) -> &[LogEntry] {
        &self.log_entries
    }
    /// The in-toto statement, for DSSE bundles.
    pub fn statement(&self) -> Option<&InTotoStatement> {
        self.statement.as_ref()
    }
    /// The trust root the bundle was verified against.
    pub fn trust_root(&self) -> &TrustRootRef {
        &self.trust_root
    }
}

/// The trust root a verification used.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustRootRef {
    /// Its name.
    pub name: String,
    /// Its content hash.
    pub content_hash: Digest,
}

/// Who signed: a Fulcio certificate identity or a static key.
#[derive(Debug, Clone, Serialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum Signer {
    /// Keyless: a short-lived certificate chained to a trusted Fulcio CA.
    Certificate(Box<CertificateIdentity>),
    /// Managed key: the signature verified with this key.
    Key {
        /// SHA-256 of the key's DER SubjectPublicKeyInfo.
        key_digest: Digest,
        /// Key algorithm.
        algorithm: &'static str,
        /// The bundle's key hint (unauthenticated).
        hint: String,
    },
}

/// A verified signing certificate's identity and claims.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateIdentity {
    /// The identity policies match against: the first email or URI SAN, else the first other
    /// SAN (e.g. a Fulcio username `otherName`).
    pub identity: Option<String>,
    /// Every subject alternative name, in certificate order.
    pub subject_alternative_names: Vec<San>,
    /// OIDC issuer (`1.3.6.1.4.1.57264.1.8`, else deprecated `.1.1`).
    pub issuer: Option<String>,
    /// Certificate `notBefore`, RFC 3339.
    pub not_before: String,
    /// Certificate `notAfter`, RFC 3339.
    pub not_after: String,
    /// SHA-256 of the leaf certificate DER.
    pub certificate_digest: Digest,
    /// Fulcio extension claims.
    pub claims: FulcioClaims,
}

/// One subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct San {
    /// `email`, `uri`, `dns` or `other`.
    pub kind: SanKind,
    /// The value (for `other`, the UTF-8 string it carries, if any).
    pub value: String,
    /// For `other`: the type OID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oid: Option<String>,
}

/// Kinds of SAN custody reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SanKind {
    /// rfc822Name
    Email,
    /// uniformResourceIdentifier
    Uri,
    /// dNSName
    Dns,
    /// otherName (Fulcio uses `1.3.6.1.4.1.57264.1.7` for usernames)
    Other,
}

/// Every Fulcio certificate extension under `1.3.6.1.4.1.57264.1`, named as in Fulcio's OID list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FulcioClaims {
    /// `.1.2` (deprecated) GitHub workflow trigger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github_workflow_trigger: Option<String>,
    /// `.1.3` (deprecated) GitHub workflow SHA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github_workflow_sha: Option<String>,
    /// `.1.4` (deprecated) GitHub workflow name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github_workflow_name: Option<String>,
    /// `.1.5` (deprecated) GitHub workflow repository (`owner/repo`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github_workflow_repository: Option<String>,
    /// `.1.6` (deprecated) GitHub workflow ref.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github_workflow_ref: Option<String>,
    /// `.1.9` build signer URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_signer_uri: Option<String>,
    /// `.1.10` build signer digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_signer_digest: Option<String>,
    /// `.1.11` runner environment (`github-hosted`, `self-hosted`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner_environment: Option<String>,
    /// `.1.12` source repository URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_repository_uri: Option<String>,
    /// `.1.13` source repository digest (commit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_repository_digest: Option<String>,
    /// `.1.14` source repository ref.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_repository_ref: Option<String>,
    /// `.1.15` source repository identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_repository_identifier: Option<String>,
    /// `.1.16` source repository owner URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_repository_owner_uri: Option<String>,
    /// `.1.17` source repository owner identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_repository_owner_identifier: Option<String>,
    /// `.1.18` build config URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_config_uri: Option<String>,
    /// `.1.19` build config digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_config_digest: Option<String>,
    /// `.1.20` build trigger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_trigger: Option<String>,
    /// `.1.21` run invocation URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_invocation_uri: Option<String>,
    /// `.1.22` source repository visibility at signing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_repository_visibility_at_signing: Option<String>,
    /// `.1.23` deployment environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_environment: Option<String>,
    /// `.1.24` token subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_subject: Option<String>,
}

impl FulcioClaims {
    /// A claim by its name in the facts' JSON (`sourceRepositoryRef`, …); `None` when absent or
    /// unknown.
    pub fn get(&self, name: &str) -> Option<&str> {
        let v = match name {
            "githubWorkflowTrigger" => &self.github_workflow_trigger,
            "githubWorkflowSha" => &self.github_workflow_sha,
            "githubWorkflowName" => &self.github_workflow_name,
            "githubWorkflowRepository" => &self.github_workflow_repository,
            "githubWorkflowRef" => &self.github_workflow_ref,
            "buildSignerUri" => &self.build_signer_uri,
            "buildSignerDigest" => &self.build_signer_digest,
            "runnerEnvironment" => &self.runner_environment,
            "sourceRepositoryUri" => &self.source_repository_uri,
            "sourceRepositoryDigest" => &self.source_repository_digest,
            "sourceRepositoryRef" => &self.source_repository_ref,
            "sourceRepositoryIdentifier" => &self.source_repository_identifier,
            "sourceRepositoryOwnerUri" => &self.source_repository_owner_uri,
            "sourceRepositoryOwnerIdentifier" => &self.source_repository_owner_identifier,
            "buildConfigUri" => &self.build_config_uri,
            "buildConfigDigest" => &self.build_config_digest,
            "buildTrigger" => &self.build_trigger,
            "runInvocationUri" => &self.run_invocation_uri,
            "sourceRepositoryVisibilityAtSigning" => &self.source_repository_visibility_at_signing,
            "deploymentEnvironment" => &self.deployment_environment,
            "tokenSubject" => &self.token_subject,
            _ => return None,
        };
        v.as_deref()
    }

    pub(super) fn from_sigstore(c: &sigstore_verify::crypto::x509::FulcioCiClaims) -> Self {
        let d = &c.deprecated_github;
        Self {
            github_workflow_trigger: d.workflow_trigger.clone(),
            github_workflow_sha: d.workflow_sha.clone(),
            github_workflow_name: d.workflow_name.clone(),
            github_workflow_repository: d.workflow_repository.clone(),
            github_workflow_ref: d.workflow_ref.clone(),
            build_signer_uri: c.build_signer_uri.clone(),
            build_signer_digest: c.build_signer_digest.clone(),
            runner_environment: c.runner_environment.clone(),
            source_repository_uri: c.source_repository_uri.clone(),
            source_repository_digest: c.source_repository_digest.clone(),
            source_repository_ref: c.source_repository_ref.clone(),
            source_repository_identifier: c.source_repository_identifier.clone(),
            source_repository_owner_uri: c.source_repository_owner_uri.clone(),
            source_repository_owner_identifier: c.source_repository_owner_identifier.clone(),
            build_config_uri: c.build_config_uri.clone(),
            build_config_digest: c.build_config_digest.clone(),
            build_trigger: c.build_trigger.clone(),
            run_invocation_uri: c.run_invocation_uri.clone(),
            source_repository_visibility_at_signing: c
                .source_repository_visibility_at_signing
                .clone(),
            deployment_environment: c.deployment_environment.clone(),
            token_subject: c.token_subject.clone(),
        }
    }
}

/// A verified time and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedTime {
    /// RFC 3339.
    pub time: String,
    /// Source of the time.
    pub source: TimeSource,
}

/// Sources of verified time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum TimeSource {
    /// A Rekor v1 `integratedTime` authenticated by a signed entry timestamp.
    TransparencyLog {
        /// Log ID (hex).
        log_id: String,
        /// Log index.
        log_index: u64,
    },
    /// An RFC 3161 timestamp verified against a trusted TSA.
    Rfc3161,
}

/// A verified transparency-log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    /// Log ID (hex of the key ID).
    pub log_id: String,
    /// Log index.
    pub log_index: u64,
    /// Entry kind (`hashedrekord`, `dsse`, `intoto`).
    pub kind: &'static str,
    /// Entry version (`0.0.1`, `0.0.2`).
    pub version: &'static str,
    /// Integrated time (Rekor v1), RFC 3339, if present.
    pub integrated_time: Option<String>,
    /// Whether a signed entry timestamp was verified.
    pub inclusion_promise: bool,
    /// Whether an inclusion proof with a signed checkpoint was verified.
    pub inclusion_proof: bool,
}
