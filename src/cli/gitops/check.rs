//! `custody gitops check --base REV --head REV [PATH]`: the promotion gate of a pull request.

use std::path::PathBuf;
use std::time::Duration;

use super::{ReportOutput, print_report};
use crate::cli::registry_args::RegistryArgs;
use crate::cli::{EXIT_ERROR, err, now};
use crate::gitops::check::{DEFAULT_MAX_HISTORY, base_policy, check, prepare};
use crate::gitops::git::Repo;
use crate::gitops::verifier::{DiskCache, RegistryVerifier};
use crate::registry::RegistryClient;
use crate::registry::discovery::DiscoveryOptions;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The delivery repository (a Git work tree; only its history is read).
    #[arg(default_value = ".")]
    path: PathBuf,
    /// The revision the pull request merges into (its config and policy judge the change).
    #[arg(long, value_name = "REV")]
    base: String,
    /// The pull request's revision.
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    head: String,
    /// Trust policy file, instead of the `policy:` the config names at the base revision.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: ReportOutput,
    /// Also append the Markdown summary to this file (e.g. $GITHUB_STEP_SUMMARY).
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,
    /// Keep verdicts here between runs (allow and deny only; errors are never kept).
    #[arg(long, value_name = "DIR", env = "CUSTODY_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// How long a cached verdict is good for, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    cache_ttl: u64,
    /// Most commits walked to find what an environment ran before (rollback check).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_HISTORY)]
    max_history: usize,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Runs it: 0 pass, 1 fail, 2 could not check.
pub fn run(args: Args) -> u8 {
    let now = now();
    let result = (|| {
        let repo = Repo::open(&args.path).map_err(|e| e.to_string())?;
        let prepared = prepare(&repo, &args.base, &args.head).map_err(|e| e.to_string())?;
        let policy = match &args.policy {
            Some(p) => crate::engine::policies::load_file(p)?,
            None => {
                base_policy(&repo, &prepared.base, &prepared.config).map_err(|e| e.to_string())?
            }
        };
        let verifier = RegistryVerifier {
            client: RegistryClient::new(args.registry.config()?).map_err(|e| e.to_string())?,
            policy,
            discovery: DiscoveryOptions {
                signature_repository: args.registry.signature_repository()?,
                ..DiscoveryOptions::default()
            },
            deadline: args.registry.deadline()?,
            now,
            cache: args.cache_dir.as_ref().map(|dir| DiskCache {
                dir: dir.clone(),
                ttl: Duration::from_secs(args.cache_ttl),
            }),
        };
        let rt = super::runtime()?;
        Ok::<_, String>(rt.block_on(check(&repo, prepared, &verifier, now, args.max_history)))
    })();
    match result {
        Ok(report) => print_report(&report, args.output, args.summary.as_deref()),
        Err(e) => {
            err(&format!("error: {e}"));
            EXIT_ERROR
        }
    }
}
