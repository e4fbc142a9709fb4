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
    /// Record the changes as having reached their environments in this lineage store
    /// (`sqlite:PATH`, `postgres://…`) when the check passes — run it after the merge.
    #[arg(long, value_name = "URL", env = "CUSTODY_STORE")]
    store: Option<String>,
    /// The delivery repository's name in the recorded events (default: the directory name).
    #[arg(long, value_name = "NAME", requires = "store")]
    repository: Option<String>,
    /// The pull request that merged the change, for the recorded events.
    #[arg(long, value_name = "ID", requires = "store")]
    pull_request: Option<String>,
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
        let report = rt.block_on(check(&repo, prepared, &verifier, now, args.max_history));
        if let Some(url) = &args.store
            && report.passed
        {
            let name = args.repository.clone().unwrap_or_else(|| {
                std::fs::canonicalize(&args.path)
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .unwrap_or_else(|| "delivery".into())
            });
            rt.block_on(record(
                url,
                &report,
                &name,
                args.pull_request.as_deref(),
                now,
            ))?;
        }
        Ok::<_, String>(report)
    })();
    match result {
        Ok(report) => print_report(&report, args.output, args.summary.as_deref()),
        Err(e) => {
            err(&format!("error: {e}"));
            EXIT_ERROR
        }
    }
}

/// Records the passing changes of `report` as promotion events (acknowledged: committed).
async fn record(
    url: &str,
    report: &crate::gitops::report::CheckReport,
    repository: &str,
    pull_request: Option<&str>,
    now: jiff::Timestamp,
) -> Result<(), String> {
    use crate::gitops::classify::ChangeKind;
    use crate::store::{Event, PromotionEvent, Store};
    let events: Vec<Event> = report
        .changes
        .iter()
        .filter(|c| {
            matches!(
                c.kind,
                ChangeKind::Promotion | ChangeKind::Rollback | ChangeKind::AutoUpdate
            )
        })
        .filter_map(|c| {
            let image: crate::reference::ImageRef = c.reference.parse().ok()?;
            Some(Event::Promotion(PromotionEvent {
                time: now.to_string(),
                repository: repository.to_owned(),
                environment: c.environment.clone(),
                commit: report.head.clone().unwrap_or_default(),
                pull_request: pull_request.map(str::to_owned),
                image: image.name(),
                from_digest: c
                    .previous
                    .as_deref()
                    .and_then(|p| p.parse::<crate::reference::ImageRef>().ok())
                    .and_then(|p| p.digest().map(ToString::to_string)),
                to_digest: c.digest.clone()?,
                kind: serde_json::to_value(c.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
            }))
        })
        .collect();
    if events.is_empty() {
        return Ok(());
    }
    let store = Store::open(url)
        .await
        .map_err(|e| format!("lineage store: {e}"))?;
    store
        .record(&events)
        .await
        .map_err(|e| format!("lineage store: {e}"))
}
