//! `custody gitops promote SRC TGT [PATH]`: writes a promotion into the work tree as minimal
//! text edits (only the digests, and a tag that would disagree with them, change) and prints the
//! pull request's title and body.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::worktree;
use crate::cli::registry_args::RegistryArgs;
use crate::cli::{EXIT_ERROR, EXIT_OK, EXIT_REJECTED, err, now, out};
use crate::gitops::check::Verifier;
use crate::gitops::promote::{FileEdit, Plan, plan, pull_request};
use crate::gitops::report::VerificationSummary;
use crate::gitops::verifier::RegistryVerifier;
use crate::reference::{Glob, ImageRef};
use crate::registry::RegistryClient;
use crate::registry::discovery::DiscoveryOptions;

/// Output of `promote`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum PromoteOutput {
    /// The pull request's title, a blank line, its Markdown body.
    #[default]
    Text,
    /// `{title, body, promotions, unchanged, skipped, files, verification}`.
    Json,
}

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment to copy digests from.
    source: String,
    /// The environment to write them into (the next one in promotion order).
    target: String,
    /// The delivery repository's work tree.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Only these images (globs on registry/repository). Repeatable.
    #[arg(long = "images", value_name = "GLOB", num_args = 1..)]
    images: Vec<String>,
    /// Print what would change; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Do not verify the digests with the target's trust policy (the pull request says
    /// "not verified"; `gitops check` still verifies).
    #[arg(long)]
    no_verify: bool,
    /// Trust policy file, instead of the `policy:` the config names.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: PromoteOutput,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Runs it: 0 written (or nothing to do), 1 a promoted digest is refused by the target's trust
/// policy (nothing written), 2 could not promote.
pub fn run(args: Args) -> u8 {
    match promote(&args) {
        Ok(code) => code,
        Err(e) => {
            err(&format!("error: {e}"));
            EXIT_ERROR
        }
    }
}

fn promote(args: &Args) -> Result<u8, String> {
    let config = worktree::load_config(&args.path)?;
    let index = |name: &str| {
        config.environment(name).map(|(i, _)| i).ok_or_else(|| {
            format!(
                "environment {name:?} is not in custody-gitops.yaml ({})",
                config.names().join(", ")
            )
        })
    };
    let (source, target) = (index(&args.source)?, index(&args.target)?);
    let only = args
        .images
        .iter()
        .map(|g| Glob::image(g))
        .collect::<Result<Vec<_>, _>>()?;
    let files = worktree::read(&args.path, &config)?;
    let plan = plan(&config, source, target, &files, &only).map_err(|e| e.to_string())?;
    let verification = if args.no_verify || plan.promotions.is_empty() {
        BTreeMap::new()
    } else {
        verify(args, &config, &plan)?
    };
    let refused: Vec<&VerificationSummary> =
        verification.values().filter(|v| !v.allowed()).collect();
    let (title, body) = pull_request(&plan, &verification);
    match args.output {
        PromoteOutput::Text => out(&format!("{title}\n\n{body}")),
        PromoteOutput::Json => out(&serde_json::to_string_pretty(&serde_json::json!({
            "title": title,
            "body": body,
            "source": plan.source,
            "target": plan.target,
            "promotions": plan.promotions,
            "unchanged": plan.unchanged,
            "skipped": plan.skipped,
            "files": plan.edits.iter().map(|e| &e.path).collect::<Vec<_>>(),
            "verification": verification,
            "written": !args.dry_run && refused.is_empty(),
        }))
        .map_err(|e| e.to_string())?),
    }
    if !refused.is_empty() {
        err(&format!(
            "error: the trust policy for {} refuses {} promoted digest(s); nothing written",
            args.target,
            refused.len()
        ));
        return Ok(EXIT_REJECTED);
    }
    if !args.dry_run {
        for e in &plan.edits {
            write(&args.path, e)?;
        }
    }
    Ok(EXIT_OK)
}

fn verify(
    args: &Args,
    config: &crate::gitops::config::Config,
    plan: &Plan,
) -> Result<BTreeMap<String, VerificationSummary>, String> {
    let policy = match (&args.policy, &config.policy) {
        (Some(p), _) => crate::engine::policies::load_file(p)?,
        (None, Some(p)) => crate::engine::policies::load_file(&args.path.join(p))?,
        (None, None) => {
            return Err(
                "no trust policy: set `policy:` in custody-gitops.yaml, pass --policy, or --no-verify"
                    .into(),
            );
        }
    };
    let now = now();
    let verifier = RegistryVerifier {
        client: RegistryClient::new(args.registry.config()?).map_err(|e| e.to_string())?,
        policy,
        discovery: DiscoveryOptions {
            signature_repository: args.registry.signature_repository()?,
            ..DiscoveryOptions::default()
        },
        deadline: args.registry.deadline()?,
        now,
        cache: None,
    };
    let environment = config
        .environment(&args.target)
        .map(|(_, e)| e.policy_environment.clone())
        .unwrap_or_default();
    let rt = super::runtime()?;
    let mut out = BTreeMap::new();
    for p in &plan.promotions {
        if out.contains_key(&p.digest) {
            continue;
        }
        let image: ImageRef = p.to.parse().map_err(|e| format!("{}: {e}", p.to))?;
        let v = rt.block_on(verifier.verify(&image, &environment));
        out.insert(p.digest.clone(), v);
    }
    Ok(out)
}

/// Replaces a file atomically (temporary file + rename in the same directory), keeping its
/// permissions; refuses to write through a symbolic link.
fn write(root: &Path, edit: &FileEdit) -> Result<(), String> {
    let path = root.join(&edit.path);
    let meta = std::fs::symlink_metadata(&path)
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!(
            "{} is not a regular file (a symbolic link?); not written",
            path.display()
        ));
    }
    let current = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if current != edit.original {
        return Err(format!(
            "{} changed while custody was planning; nothing written to it",
            path.display()
        ));
    }
    let tmp = path.with_file_name(format!(
        ".{}.custody-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    std::fs::write(&tmp, &edit.updated)
        .and_then(|()| std::fs::set_permissions(&tmp, meta.permissions()))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot write {}: {e}", path.display())
        })
}
