//! The identity policy of the command line: who must have signed, and from which workflow.
//!
//! Flags follow cosign (`--certificate-identity[-regexp]`, `--certificate-oidc-issuer[-regexp]`,
//! `--certificate-github-workflow-*`) and `gh attestation verify` (`--source-ref`,
//! `--source-digest`, `--signer-workflow`, `--deny-self-hosted-runners`).
//!
//! Decisions (see docs/decisions.md):
//! * Regular expressions are **anchored** (`^(?:re)$`), unlike cosign and sigstore-go where an
//!   unanchored `--certificate-identity-regexp` of `foo` also accepts `evilfoo.example`.
//! * A keyless policy needs both an identity and an issuer matcher; there is no "any identity".
//! * The `--certificate-github-workflow-*` checks read the deprecated GitHub extensions
//!   (`.1.2`–`.1.6`) as cosign does; when a certificate lacks them they fall back to the
//!   provider-neutral successors (`.1.20`, `.1.13`, `.1.12` without the host, `.1.14`), since
//!   Fulcio may stop issuing the deprecated ones. `--certificate-github-workflow-name` has no
//!   successor and needs `.1.4`.
//! * Every mismatch is collected, not only the first, so one run tells the whole story.

use regex::Regex;
use serde::Serialize;
use thiserror::Error;

use crate::verify::{CertificateIdentity, VerifiedFacts};

/// How a value is matched.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Exactly equal.
    Exact(String),
    /// An anchored regular expression (the source as given is kept for messages).
    Regex {
        /// The expression as given.
        source: String,
        /// The compiled, anchored expression.
        regex: Regex,
    },
}

impl Matcher {
    /// An anchored regular-expression matcher.
    ///
    /// # Errors
    /// [`IdentityPolicyError::BadRegex`] when `source` does not compile.
    pub fn regex(flag: &'static str, source: &str) -> Result<Self, IdentityPolicyError> {
        let regex =
            Regex::new(&format!("^(?:{source})$")).map_err(|e| IdentityPolicyError::BadRegex {
                flag,
                source_text: source.to_owned(),
                detail: e.to_string(),
            })?;
        Ok(Self::Regex {
            source: source.to_owned(),
            regex,
        })
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(e) => e == value,
            Matcher::Regex { regex, .. } => regex.is_match(value),
        }
    }

    fn describe(&self) -> String {
        match self {
            Matcher::Exact(e) => e.clone(),
            Matcher::Regex { source, .. } => format!("/{source}/"),
        }
    }
}

/// A claim the policy wanted and what the certificate had instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    /// The flag or field that set the requirement.
    pub field: &'static str,
    /// What it required (`/re/` for a regular expression).
    pub expected: String,
    /// What the certificate carried (`None`: the claim was absent).
    pub found: Option<String>,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.found {
            Some(found) => write!(
                f,
                "{}: expected {}, found {found}",
                self.field, self.expected
            ),
            None => write!(
                f,
                "{}: expected {}, but the certificate has no such claim",
                self.field, self.expected
            ),
        }
    }
}

/// Why an identity policy could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IdentityPolicyError {
    /// Occurs when a regular expression does not compile.
    #[error("{flag} {source_text:?} is not a valid regular expression: {detail}")]
    BadRegex {
        /// The flag.
        flag: &'static str,
        /// The expression.
        source_text: String,
        /// The compiler's complaint.
        detail: String,
    },
    /// Occurs when a keyless policy lacks an identity or issuer matcher.
    #[error(
        "a keyless identity policy needs {missing}: pass --certificate-identity or --certificate-identity-regexp, and --certificate-oidc-issuer or --certificate-oidc-issuer-regexp (or --key for a managed-key bundle)"
    )]
    Incomplete {
        /// What is missing.
        missing: &'static str,
    },
}

/// Requirements on a verified certificate identity.
#[derive(Debug, Clone, Default)]
pub struct IdentityPolicy {
    /// SAN identity.
    pub identity: Option<Matcher>,
    /// OIDC issuer.
    pub issuer: Option<Matcher>,
    /// `--certificate-github-workflow-repository` (`owner/repo`).
    pub github_workflow_repository: Option<String>,
    /// `--certificate-github-workflow-ref`.
    pub github_workflow_ref: Option<String>,
    /// `--certificate-github-workflow-sha`.
    pub github_workflow_sha: Option<String>,
    /// `--certificate-github-workflow-trigger`.
    pub github_workflow_trigger: Option<String>,
    /// `--certificate-github-workflow-name`.
    pub github_workflow_name: Option<String>,
    /// `--source-ref` (source repository ref, `.1.14`).
    pub source_ref: Option<String>,
    /// `--source-digest` (source repository digest, `.1.13`).
    pub source_digest: Option<String>,
    /// `--signer-workflow` (`[host/]owner/repo/path/to/workflow.yml`, compared with the build
    /// signer URI `.1.9` without its `@ref`).
    pub signer_workflow: Option<String>,
    /// `--deny-self-hosted-runners` (runner environment `.1.11` must be `github-hosted`).
    pub deny_self_hosted_runners: bool,
}

impl IdentityPolicy {
    /// Fails unless both an identity and an issuer matcher are set.
    ///
    /// # Errors
    /// [`IdentityPolicyError::Incomplete`] naming what is missing.
    pub fn require_complete(&self) -> Result<(), IdentityPolicyError> {
        match (&self.identity, &self.issuer) {
            (None, _) => Err(IdentityPolicyError::Incomplete {
                missing: "a certificate identity",
            }),
            (_, None) => Err(IdentityPolicyError::Incomplete {
                missing: "an OIDC issuer",
            }),
            _ => Ok(()),
        }
    }

    /// Checks the facts' certificate identity against every requirement.
    ///
    /// # Errors
    /// Every [`Mismatch`] found. Facts from a managed-key bundle (no certificate) fail with a
    /// mismatch on `certificate` when the policy requires anything of a certificate.
    pub fn evaluate(&self, facts: &VerifiedFacts) -> Result<(), Vec<Mismatch>> {
        let Some(cert) = facts.certificate() else {
            if self.identity.is_some() || self.issuer.is_some() {
                return Err(vec![Mismatch {
                    field: "certificate",
                    expected: "a signing certificate".into(),
                    found: Some("a bundle signed with a public key".into()),
                }]);
            }
            return Ok(());
        };
        let mut mismatches = Vec::new();
        self.check_certificate(cert, &mut mismatches);
        if mismatches.is_empty() {
            Ok(())
        } else {
            Err(mismatches)
        }
    }

    fn check_certificate(&self, cert: &CertificateIdentity, out: &mut Vec<Mismatch>) {
        let c = &cert.claims;
        let mut matcher = |field: &'static str, m: &Option<Matcher>, found: Option<&str>| {
            if let Some(m) = m
                && !found.is_some_and(|f| m.matches(f))
            {
                out.push(Mismatch {
                    field,
                    expected: m.describe(),
                    found: found.map(str::to_owned),
                });
            }
        };
        // The identity matcher accepts any of the certificate's SANs only through the primary
        // identity, as cosign does: a certificate is issued for one identity.
        matcher(
            "certificate-identity",
            &self.identity,
            cert.identity.as_deref(),
        );
        matcher(
            "certificate-oidc-issuer",
            &self.issuer,
            cert.issuer.as_deref(),
        );

        let repo_fallback = c
            .source_repository_uri
            .as_deref()
            .and_then(|u| u.strip_prefix("https://github.com/"));
        let exact = [
            (
                "certificate-github-workflow-repository",
                &self.github_workflow_repository,
                c.github_workflow_repository.as_deref().or(repo_fallback),
            ),
            (
                "certificate-github-workflow-ref",
                &self.github_workflow_ref,
                c.github_workflow_ref
                    .as_deref()
                    .or(c.source_repository_ref.as_deref()),
            ),
            (
                "certificate-github-workflow-sha",
                &self.github_workflow_sha,
                c.github_workflow_sha
                    .as_deref()
                    .or(c.source_repository_digest.as_deref()),
            ),
            (
                "certificate-github-workflow-trigger",
                &self.github_workflow_trigger,
                c.github_workflow_trigger
                    .as_deref()
                    .or(c.build_trigger.as_deref()),
            ),
            (
                "certificate-github-workflow-name",
                &self.github_workflow_name,
                c.github_workflow_name.as_deref(),
            ),
            (
                "source-ref",
                &self.source_ref,
                c.source_repository_ref.as_deref(),
            ),
            (
                "source-digest",
                &self.source_digest,
                c.source_repository_digest.as_deref(),
            ),
        ];
        for (field, expected, found) in exact {
            if let Some(expected) = expected
                && found != Some(expected.as_str())
            {
                out.push(Mismatch {
                    field,
                    expected: expected.clone(),
                    found: found.map(str::to_owned),
                });
            }
        }
        if let Some(wanted) = &self.signer_workflow {
            let found = c.build_signer_uri.as_deref();
            let normalized_found = found.map(|f| {
                let without_ref = f.split_once('@').map_or(f, |(path, _)| path);
                without_ref
                    .strip_prefix("https://")
                    .unwrap_or(without_ref)
                    .to_owned()
            });
            let wanted_full = if wanted.starts_with("github.com/") || wanted.contains("://") {
                wanted.strip_prefix("https://").unwrap_or(wanted).to_owned()
            } else {
                format!("github.com/{wanted}")
            };
            if normalized_found.as_deref() != Some(wanted_full.as_str()) {
                out.push(Mismatch {
                    field: "signer-workflow",
                    expected: wanted_full,
                    found: found.map(str::to_owned),
                });
            }
        }
        if self.deny_self_hosted_runners && c.runner_environment.as_deref() != Some("github-hosted")
        {
            out.push(Mismatch {
                field: "deny-self-hosted-runners",
                expected: "runner environment github-hosted".into(),
                found: c.runner_environment.clone(),
            });
        }
    }
}
