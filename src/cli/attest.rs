//! `custody attest REF --key KEY`: verify an image with a trust policy and, for an allow verdict,
//! sign a SLSA Verification Summary Attestation (DSSE) and optionally attach it to the image.
//!
//! Exit status: 0 summary made (and pushed), 1 the verdict is deny (no summary), 2 anything else
//! (error verdict, unreadable key or policy, registry refusing the push).

use std::path::PathBuf;

use super::registry_args::RegistryArgs;
use super::{EXIT_ERROR, EXIT_OK, EXIT_REJECTED, err, now, out, read_bounded};
use crate::attest::{AttestError, AttestRequest, BuildLevel, DEFAULT_VERIFIER_ID, SigningKey};
use crate::limits::Limits;
use crate::reference::ImageRef;
use crate::registry::RegistryClient;
use crate::registry::discovery::DiscoveryOptions;
use crate::verdict::VerdictDecision;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The image: registry/repo@sha256:<digest> (a tag next to the digest is judged too).
    #[arg(value_name = "IMAGE")]
    image: String,
    /// ECDSA P-256 private key, unencrypted PKCS#8 PEM (`openssl genpkey -algorithm EC -pkeyopt
    /// ec_paramgen_curve:P-256 -out KEY`).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The trust policy (default: the embedded example policy, as `custody serve`).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// The environment the image is for (selects policy rules; recorded in the summary).
    #[arg(long, value_name = "ENV")]
    env: Option<String>,
    /// `verifier.id` of the summary: a URI naming this verifier (what policies' `verifierId`
    /// matches).
    #[arg(long, value_name = "URI", default_value = DEFAULT_VERIFIER_ID)]
    verifier_id: String,
    /// The SLSA build level to claim (default: what was verified — SLSA_BUILD_LEVEL_1 when the
    /// matched rule requires SLSA provenance, else _0). _2/_3 only where provenance was checked.
    #[arg(long, value_name = "SLSA_BUILD_LEVEL_N")]
    level: Option<String>,
    /// Attach the summary to the image in its registry (OCI 1.1 referrer).
    #[arg(long)]
    push: bool,
    /// Write the envelope to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
}

fn input_error(msg: &str) -> u8 {
    err(&format!("error: {msg}"));
    EXIT_ERROR
}

pub(super) fn run(args: Args) -> u8 {
    let limits = Limits::default();
    let prepared = (|| -> Result<_, String> {
        let reference: ImageRef = args
            .image
            .parse()
            .map_err(|e| format!("{}: {e}", args.image))?;
        let key_bytes = read_bounded(&args.key, limits.max_key_bytes, "private key", "64 KiB")?;
        let key = SigningKey::from_pkcs8_pem(&key_bytes, &limits)
            .map_err(|e| format!("{}: {e}", args.key.display()))?;
        let loaded = match &args.policy {
            Some(p) => crate::engine::policies::load_file(p)?,
            None => crate::engine::policies::load_example()?,
        };
        let level = args
            .level
            .as_deref()
            .map(str::parse::<BuildLevel>)
            .transpose()?;
        let client = RegistryClient::new(args.registry.config()?).map_err(|e| e.to_string())?;
        let request = AttestRequest {
            reference,
            environment: args.env.clone(),
            verifier_id: args.verifier_id.clone(),
            level,
            push: args.push,
            discovery: DiscoveryOptions {
                signature_repository: args.registry.signature_repository()?,
                ..DiscoveryOptions::default()
            },
            deadline: args.registry.deadline()?,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        Ok((key, loaded, client, request, rt))
    })();
    let (key, loaded, client, request, rt) = match prepared {
        Ok(p) => p,
        Err(e) => return input_error(&e),
    };
    let result = rt.block_on(crate::attest::attest(
        &client,
        &loaded,
        &key,
        &request,
        now(),
    ));
    match result {
        Ok(a) => {
            let mut bytes = a.envelope_bytes.clone();
            bytes.push(b'\n');
            match &args.output {
                Some(path) => {
                    if let Err(e) = std::fs::write(path, &bytes) {
                        return input_error(&format!("cannot write {}: {e}", path.display()));
                    }
                }
                None => out(&String::from_utf8_lossy(&bytes)),
            }
            let mut summary = format!(
                "attested {} ({}, policy {} {}, {}) with key {}",
                a.verdict.reference,
                a.statement.predicate.verified_levels.join(", "),
                a.verdict.policy.name,
                a.verdict.policy.content_hash,
                a.verdict.environment.as_deref().map_or_else(
                    || "no environment".to_owned(),
                    |e| format!("environment {e}")
                ),
                key.key_id()
            );
            if let Some(p) = &a.pushed {
                summary.push_str(&format!(
                    "\npushed as referrer {}@{} ({})",
                    p.repository,
                    p.manifest_digest,
                    serde_json::to_value(&p.indexed)
                        .ok()
                        .map(|v| v.to_string())
                        .unwrap_or_default()
                ));
            }
            err(&summary);
            EXIT_OK
        }
        Err(AttestError::NotAllowed { verdict }) => {
            err(&format!(
                "no summary: the verdict is not allow\n{}",
                verdict.to_text()
            ));
            if verdict.decision == VerdictDecision::Deny {
                EXIT_REJECTED
            } else {
                EXIT_ERROR
            }
        }
        Err(e) => input_error(&e.to_string()),
    }
}
