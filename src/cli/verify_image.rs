//! `custody verify REF` and `custody evidence REF`.

use std::path::PathBuf;

use super::identity::IdentityArgs;
use super::registry_args::RegistryArgs;
use super::{EXIT_ERROR, EXIT_OK, EXIT_REJECTED, Output, err, now, out};
use crate::engine::{ImageRequest, PredicateRequirement, verify_image};
use crate::limits::Limits;
use crate::reference::ImageRef;
use crate::registry::discovery::{DiscoveryOptions, discover};
use crate::registry::{Deadline, RegistryClient};
use crate::verdict::{EvidenceRef, Outcome};

#[derive(Debug, clap::Args)]
pub(super) struct VerifyArgs {
    /// The image: registry/repo@sha256:<digest> (or a tag with --resolve).
    #[arg(value_name = "IMAGE")]
    image: String,
    /// Resolve a tag to the digest it points to now, verify that digest, and print it.
    #[arg(long)]
    resolve: bool,
    /// Judge with this trust policy (YAML) instead of identity flags.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["certificate_identity", "certificate_identity_regexp", "certificate_oidc_issuer", "certificate_oidc_issuer_regexp", "key", "types", "staging", "trusted_root"])]
    policy: Option<PathBuf>,
    /// The environment the image is for (selects policy rules).
    #[arg(long, value_name = "ENV", requires = "policy")]
    env: Option<String>,
    #[command(flatten)]
    identity: IdentityArgs,
    /// Require an attestation of this type: slsaprovenance, slsaprovenance1, slsaprovenance02,
    /// spdx, cyclonedx, vuln, vsa, custom, or a predicate type URI. Repeatable.
    #[arg(long = "type", value_name = "TYPE")]
    types: Vec<String>,
    /// For an image index, also verify every platform manifest's own evidence.
    #[arg(long)]
    platforms: bool,
    /// Verify with the Sigstore staging trust root.
    #[arg(long, conflicts_with = "trusted_root")]
    staging: bool,
    /// A trusted_root.json to verify against instead of the embedded production root.
    #[arg(long, value_name = "FILE")]
    trusted_root: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, clap::Args)]
pub(super) struct EvidenceArgs {
    /// The image: registry/repo@sha256:<digest> (or a tag with --resolve).
    #[arg(value_name = "IMAGE")]
    image: String,
    /// Resolve a tag to the digest it points to now.
    #[arg(long)]
    resolve: bool,
    /// Also save every piece of evidence (index + blobs) in this directory, for offline
    /// `custody policy test` cases.
    #[arg(long, value_name = "DIR")]
    save: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn input_error(msg: &str) -> u8 {
    err(&format!("error: {msg}"));
    EXIT_ERROR
}

pub(super) fn run_verify(args: VerifyArgs) -> u8 {
    if let Some(policy_path) = &args.policy {
        let result = (|| {
            let reference: ImageRef = args
                .image
                .parse()
                .map_err(|e| format!("{}: {e}", args.image))?;
            let (policy, trust) = super::policy::load(policy_path)?;
            super::policy::verify_with_policy(
                &reference,
                args.resolve,
                args.platforms,
                &policy,
                &trust,
                args.env.as_deref(),
                &args.registry,
                false,
            )
        })();
        return match result {
            Ok(v) => super::policy::finish(&v, args.output),
            Err(e) => input_error(&e),
        };
    }
    let limits = Limits::default();
    let prepared = (|| -> Result<_, String> {
        let reference: ImageRef = args
            .image
            .parse()
            .map_err(|e| format!("{}: {e}", args.image))?;
        let (identity, key) = args.identity.load(&limits)?;
        let trust = super::trust_root::load(args.staging, args.trusted_root.as_ref(), &limits)?;
        let types = args
            .types
            .iter()
            .map(|t| PredicateRequirement::parse(t))
            .collect::<Result<Vec<_>, _>>()?;
        let client = RegistryClient::new(args.registry.config()?).map_err(|e| e.to_string())?;
        let discovery = DiscoveryOptions {
            signature_repository: args.registry.signature_repository()?,
            ..DiscoveryOptions::default()
        };
        let request = ImageRequest {
            reference,
            resolve: args.resolve,
            identity,
            key,
            required_predicate_types: types,
            platforms: args.platforms,
            discovery,
            deadline: args.registry.deadline()?,
        };
        Ok((trust, client, request, runtime()?))
    })();
    let (trust, client, request, rt) = match prepared {
        Ok(p) => p,
        Err(e) => return input_error(&e),
    };
    let report = rt.block_on(verify_image(&client, &trust, &request, now(), &limits));
    match args.output {
        Output::Json | Output::Sarif => out(&report.to_json()),
        Output::Text => {
            if report.outcome == Outcome::Verified {
                out(&report.to_text());
            }
        }
    }
    if let (Some(tag), Some(image)) = (&report.resolved_from_tag, &report.image) {
        err(&format!(
            "resolved {}:{tag} to {image}",
            request.reference.name()
        ));
    }
    match report.outcome {
        Outcome::Verified => EXIT_OK,
        Outcome::Rejected => {
            err(&report.to_text());
            EXIT_REJECTED
        }
        Outcome::Error => {
            err(&report.to_text());
            EXIT_ERROR
        }
    }
}

pub(super) fn run_evidence(args: EvidenceArgs) -> u8 {
    let prepared = (|| -> Result<_, String> {
        let reference: ImageRef = args
            .image
            .parse()
            .map_err(|e| format!("{}: {e}", args.image))?;
        let client = RegistryClient::new(args.registry.config()?).map_err(|e| e.to_string())?;
        let options = DiscoveryOptions {
            signature_repository: args.registry.signature_repository()?,
            ..DiscoveryOptions::default()
        };
        Ok((
            reference,
            client,
            options,
            args.registry.deadline()?,
            runtime()?,
        ))
    })();
    let (reference, client, options, deadline, rt) = match prepared {
        Ok(p) => p,
        Err(e) => return input_error(&e),
    };
    let result = rt.block_on(async {
        let deadline = Deadline::after(deadline);
        let image = match reference.digest() {
            Some(_) => reference.clone(),
            None if args.resolve => {
                reference.with_digest(client.resolve(&reference, &deadline).await?)
            }
            None => {
                return Err(crate::registry::RegistryError::Config(format!(
                    "{reference} is not digest-pinned: pass repo@sha256:<digest>, or --resolve"
                )));
            }
        };
        discover(&client, &image, &options, &deadline).await
    });
    match result {
        Err(e) => input_error(&e.to_string()),
        Ok(d) => {
            if let Some(dir) = &args.save
                && let Err(e) = crate::engine::saved::save(dir, &d)
            {
                return input_error(&e);
            }
            let items: Vec<EvidenceRef> = d.items.iter().map(EvidenceRef::from).collect();
            match args.output {
                Output::Json | Output::Sarif => {
                    out(&serde_json::to_string_pretty(&serde_json::json!({
                        "mediaType": "application/vnd.custody.evidence-list.v1+json",
                        "image": d.image,
                        "referrers": d.referrers,
                        "evidence": items,
                        "lookedAt": d.looked_at,
                        "notes": d.notes,
                        "httpRequests": client.request_count(),
                    }))
                    .unwrap_or_default())
                }
                Output::Text => {
                    let mut s = format!("evidence for {}\n", d.image);
                    if items.is_empty() {
                        s.push_str(&format!("  none (looked at: {})\n", d.looked_at.join(", ")));
                    }
                    for i in &items {
                        s.push_str(&format!(
                            "  {:<20} {} {} bytes  {}  in {}@{} ({})\n",
                            serde_json::to_value(i.kind)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_owned))
                                .unwrap_or_default(),
                            i.digest,
                            i.size,
                            i.artifact_type.as_deref().unwrap_or(&i.media_type),
                            i.repository,
                            i.manifest_digest,
                            serde_json::to_value(&i.found)
                                .ok()
                                .map(|v| v.to_string())
                                .unwrap_or_default(),
                        ));
                    }
                    for n in &d.notes {
                        s.push_str(&format!("  note: {n}\n"));
                    }
                    out(&s);
                }
            }
            EXIT_OK
        }
    }
}
