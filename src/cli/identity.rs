//! Identity flags shared by `verify-bundle` and `verify`.

use std::path::PathBuf;

use crate::policy::{IdentityPolicy, Matcher};

#[derive(Debug, Clone, clap::Args)]
pub(super) struct IdentityArgs {
    /// A PEM public key: verify a managed-key bundle with it instead of a certificate identity.
    #[arg(long, value_name = "KEY.pem", conflicts_with_all = ["certificate_identity", "certificate_identity_regexp", "certificate_oidc_issuer", "certificate_oidc_issuer_regexp"])]
    key: Option<PathBuf>,
    /// Exact certificate identity (SAN) required.
    #[arg(
        long,
        value_name = "ID",
        conflicts_with = "certificate_identity_regexp"
    )]
    certificate_identity: Option<String>,
    /// Certificate identity as a regular expression (anchored: must match the whole SAN).
    #[arg(long, value_name = "RE")]
    certificate_identity_regexp: Option<String>,
    /// Exact OIDC issuer required.
    #[arg(
        long,
        value_name = "URL",
        conflicts_with = "certificate_oidc_issuer_regexp"
    )]
    certificate_oidc_issuer: Option<String>,
    /// OIDC issuer as a regular expression (anchored).
    #[arg(long, value_name = "RE")]
    certificate_oidc_issuer_regexp: Option<String>,
    /// GitHub workflow repository (owner/repo) required.
    #[arg(long, value_name = "OWNER/REPO")]
    certificate_github_workflow_repository: Option<String>,
    /// GitHub workflow ref required (e.g. refs/heads/main).
    #[arg(long, value_name = "REF")]
    certificate_github_workflow_ref: Option<String>,
    /// GitHub workflow commit SHA required.
    #[arg(long, value_name = "SHA")]
    certificate_github_workflow_sha: Option<String>,
    /// GitHub workflow trigger required (e.g. push, release).
    #[arg(long, value_name = "EVENT")]
    certificate_github_workflow_trigger: Option<String>,
    /// GitHub workflow name required.
    #[arg(long, value_name = "NAME")]
    certificate_github_workflow_name: Option<String>,
    /// Source repository ref required (Fulcio claim 1.3.6.1.4.1.57264.1.14).
    #[arg(long, value_name = "REF")]
    source_ref: Option<String>,
    /// Source repository digest (commit) required (claim .1.13).
    #[arg(long, value_name = "SHA")]
    source_digest: Option<String>,
    /// Signer workflow required: [host/]owner/repo/path/to/workflow.yml (claim .1.9 without @ref).
    #[arg(long, value_name = "WORKFLOW")]
    signer_workflow: Option<String>,
    /// Reject signatures made on self-hosted runners (claim .1.11 must be github-hosted).
    #[arg(long)]
    deny_self_hosted_runners: bool,
}

impl IdentityArgs {
    pub(super) fn identity_policy(&self) -> Result<IdentityPolicy, String> {
        let identity = match (
            &self.certificate_identity,
            &self.certificate_identity_regexp,
        ) {
            (Some(id), _) => Some(Matcher::Exact(id.clone())),
            (None, Some(re)) => Some(
                Matcher::regex("--certificate-identity-regexp", re).map_err(|e| e.to_string())?,
            ),
            (None, None) => None,
        };
        let issuer = match (
            &self.certificate_oidc_issuer,
            &self.certificate_oidc_issuer_regexp,
        ) {
            (Some(i), _) => Some(Matcher::Exact(i.clone())),
            (None, Some(re)) => Some(
                Matcher::regex("--certificate-oidc-issuer-regexp", re)
                    .map_err(|e| e.to_string())?,
            ),
            (None, None) => None,
        };
        Ok(IdentityPolicy {
            identity,
            issuer,
            github_workflow_repository: self.certificate_github_workflow_repository.clone(),
            github_workflow_ref: self.certificate_github_workflow_ref.clone(),
            github_workflow_sha: self.certificate_github_workflow_sha.clone(),
            github_workflow_trigger: self.certificate_github_workflow_trigger.clone(),
            github_workflow_name: self.certificate_github_workflow_name.clone(),
            source_ref: self.source_ref.clone(),
            source_digest: self.source_digest.clone(),
            signer_workflow: self.signer_workflow.clone(),
            deny_self_hosted_runners: self.deny_self_hosted_runners,
        })
    }

    /// The identity policy and the static key, read and checked.
    pub(super) fn load(
        &self,
        limits: &crate::Limits,
    ) -> Result<(IdentityPolicy, Option<crate::trust::StaticKey>), String> {
        let policy = self.identity_policy()?;
        let key = match &self.key {
            Some(path) => {
                let pem =
                    super::read_bounded(path, limits.max_key_bytes, "public key", "max_key_bytes")?;
                Some(
                    crate::trust::StaticKey::from_pem(&pem, limits)
                        .map_err(|e| format!("{}: {e}", path.display()))?,
                )
            }
            None => {
                policy.require_complete().map_err(|e| e.to_string())?;
                None
            }
        };
        Ok((policy, key))
    }
}
