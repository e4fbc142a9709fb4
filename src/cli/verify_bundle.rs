//! `custody verify-bundle`: the sigstore-conformance protocol, plus `--output json`.
//!
//! ```text
//! custody verify-bundle [--staging] --bundle FILE \
//!     (--certificate-identity ID --certificate-oidc-issuer URL | --key KEY.pem) \
//!     [--trusted-root trusted_root.json] (ARTIFACT_FILE | sha256:HEX)
//! ```

use std::io::Read;
use std::path::PathBuf;

use super::{EXIT_ERROR, EXIT_OK, EXIT_REJECTED, Output, err, now, out, read_bounded};
use crate::evidence::parse_bundle;
use crate::limits::Limits;
use crate::policy::{IdentityPolicy, Matcher};
use crate::reference::Digest;
use crate::trust::StaticKey;
use crate::verdict::BundleOutcome;
use crate::verify::{ArtifactInput, verify_bundle};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The Sigstore bundle (JSON).
    #[arg(long, value_name = "FILE")]
    bundle: PathBuf,
    /// The artifact file, or its digest as sha256:<64 hex>.
    #[arg(value_name = "ARTIFACT")]
    artifact: String,
    /// Verify with the Sigstore staging trust root.
    #[arg(long, conflicts_with = "trusted_root")]
    staging: bool,
    /// A trusted_root.json to verify against instead of the embedded production root.
    #[arg(long, value_name = "FILE")]
    trusted_root: Option<PathBuf>,
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
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

impl Args {
    fn identity_policy(&self) -> Result<IdentityPolicy, String> {
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
}

/// The artifact as the core takes it: bytes when small enough, else a streamed digest.
enum Artifact {
    Bytes(Vec<u8>),
    Digest(Digest),
}

fn load_artifact(arg: &str, limits: &Limits) -> Result<Artifact, String> {
    if let Some((algorithm, _)) = arg.split_once(':')
        && matches!(algorithm, "sha256" | "sha384" | "sha512")
        && !std::path::Path::new(arg).exists()
    {
        return arg
            .parse::<Digest>()
            .map(Artifact::Digest)
            .map_err(|e| e.to_string());
    }
    let path = std::path::Path::new(arg);
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read artifact {arg}: {e}"))?;
    if meta.len() <= limits.max_artifact_in_memory_bytes {
        return read_bounded(
            path,
            limits.max_artifact_in_memory_bytes,
            "artifact",
            "max_artifact_in_memory_bytes",
        )
        .map(Artifact::Bytes);
    }
    // Large artifact: hash while streaming, verify by digest.
    let mut file =
        std::fs::File::open(path).map_err(|e| format!("cannot read artifact {arg}: {e}"))?;
    let mut hasher = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| format!("cannot read artifact {arg}: {e}"))?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Digest::from_bytes(
        crate::reference::DigestAlgorithm::Sha256,
        hasher.finish().as_ref(),
    )
    .map(Artifact::Digest)
    .map_err(|e| e.to_string())
}

pub(super) fn run(args: Args) -> u8 {
    let limits = Limits::default();
    let input_error = |msg: String| {
        err(&format!("error: {msg}"));
        EXIT_ERROR
    };

    // Inputs the user controls: any problem here means "could not decide" (exit 2).
    let policy = match args.identity_policy() {
        Ok(p) => p,
        Err(e) => return input_error(e),
    };
    let key = match &args.key {
        Some(path) => {
            let pem = match read_bounded(path, limits.max_key_bytes, "public key", "max_key_bytes")
            {
                Ok(p) => p,
                Err(e) => return input_error(e),
            };
            match StaticKey::from_pem(&pem, &limits) {
                Ok(k) => Some(k),
                Err(e) => return input_error(format!("{}: {e}", path.display())),
            }
        }
        None => {
            if let Err(e) = policy.require_complete() {
                return input_error(e.to_string());
            }
            None
        }
    };
    let trust = match super::trust_root::load(args.staging, args.trusted_root.as_ref(), &limits) {
        Ok(t) => t,
        Err(e) => return input_error(e),
    };
    let bundle_bytes = match read_bounded(
        &args.bundle,
        limits.max_bundle_bytes,
        "bundle",
        "max_bundle_bytes",
    ) {
        Ok(b) => b,
        Err(e) => return input_error(e),
    };
    let artifact = match load_artifact(&args.artifact, &limits) {
        Ok(a) => a,
        Err(e) => return input_error(e),
    };

    // Evidence: anything wrong from here on is a rejection (exit 1).
    let now = now();
    let verified_at = now.to_string();
    let outcome = match parse_bundle(&bundle_bytes, &limits) {
        Err(e) => BundleOutcome::failed(&e.into(), verified_at),
        Ok(parsed) => {
            let input = match &artifact {
                Artifact::Bytes(b) => ArtifactInput::Bytes(b),
                Artifact::Digest(d) => ArtifactInput::Digest(d),
            };
            match verify_bundle(&parsed, input, &trust, key.as_ref(), now, &limits) {
                Err(e) => BundleOutcome::failed(&e, verified_at),
                Ok(facts) => match policy.evaluate(&facts) {
                    Ok(()) => BundleOutcome::verified(facts, verified_at),
                    Err(mismatches) => {
                        BundleOutcome::rejected_by_policy(facts, mismatches, verified_at)
                    }
                },
            }
        }
    };

    match args.output {
        Output::Json => out(&outcome.to_json()),
        Output::Text if outcome.is_verified() => out(&outcome.to_text()),
        Output::Text => {}
    }
    if outcome.is_verified() {
        EXIT_OK
    } else {
        // The reason always goes to stderr, as the conformance protocol asks.
        err(&outcome.to_text());
        EXIT_REJECTED
    }
}
