//! `custody gitops retag-check REPO --version vX.Y.Z`: lists the repository's tags, resolves
//! every environment tag of the version (concurrently, bounded by the client's concurrency,
//! within `--timeout`) and judges them with [`crate::gitops::retag::check`].
//!
//! Exit status: 0 consistent, 1 inconsistent or missing (a judgement), 2 input or registry
//! errors (could not decide; the message names the registry and the tag).

use futures_util::{StreamExt, TryStreamExt, stream};

use super::super::registry_args::RegistryArgs;
use super::super::{EXIT_ERROR, EXIT_OK, EXIT_REJECTED, Output, err, out};
use crate::gitops::retag::{RetagRequest, check, tags_for_version};
use crate::reference::{Digest, ImageRef};
use crate::registry::{Deadline, RegistryClient};

/// Arguments of `custody gitops retag-check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image repository, without tag or digest (e.g. ghcr.io/acme/app).
    #[arg(value_name = "REPO")]
    repository: String,
    /// The release version: vMAJOR.MINOR.PATCH with an optional -PRERELEASE (v1.2.3, v1.2.3-rc.1).
    /// Its tags are PREFIX-VERSION and PREFIX-VERSION-… (v1.2.3 does not take v1.2.30).
    #[arg(long, value_name = "vX.Y.Z")]
    version: String,
    /// An environment tag prefix. Repeatable [default: develop, staging, production].
    #[arg(long = "prefix", value_name = "PREFIX")]
    prefixes: Vec<String>,
    /// A prefix that must have a tag of the version. Repeatable [default: every prefix].
    #[arg(long = "require", value_name = "PREFIX")]
    required: Vec<String>,
    /// Most tags read from the repository; more is an error, never a truncated list.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    max_tags: usize,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Output format (sarif prints JSON).
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

/// Runs `retag-check`; returns the exit status.
pub fn run(args: Args) -> u8 {
    let prepared = (|| -> Result<_, String> {
        let repository = parse_repository(&args.repository)?;
        let request = RetagRequest::new(
            &repository.name(),
            &args.version,
            &args.prefixes,
            &args.required,
        )
        .map_err(|e| e.to_string())?;
        let client = RegistryClient::new(args.registry.config()?).map_err(|e| e.to_string())?;
        let deadline = args.registry.deadline()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        Ok((repository, request, client, deadline, runtime))
    })();
    let (repository, request, client, deadline, runtime) = match prepared {
        Ok(p) => p,
        Err(e) => {
            err(&format!("error: {e}"));
            return EXIT_ERROR;
        }
    };
    let resolved = runtime.block_on(async {
        let deadline = Deadline::after(deadline);
        resolve_version(&client, &repository, &request, &deadline, args.max_tags).await
    });
    let resolved = match resolved {
        Ok(r) => r,
        Err(e) => {
            err(&format!("error: {e}"));
            return EXIT_ERROR;
        }
    };
    let report = check(&request, &resolved);
    match args.output {
        Output::Json | Output::Sarif => out(&report.to_json()),
        Output::Text if report.consistent => out(&report.to_text()),
        Output::Text => {}
    }
    if report.consistent {
        EXIT_OK
    } else {
        err(&report.to_text());
        EXIT_REJECTED
    }
}

/// `REPO` as a repository: a tag or digest is refused, not ignored.
fn parse_repository(given: &str) -> Result<ImageRef, String> {
    let reference: ImageRef = given.parse().map_err(|e| format!("REPO {given:?}: {e}"))?;
    if reference.tag().is_some() || reference.digest().is_some() {
        return Err(format!(
            "REPO {given:?} names a tag or digest; pass the repository alone ({}) and the version with --version",
            reference.name()
        ));
    }
    Ok(reference)
}

/// Lists the repository's tags and resolves the version's tags to digests. Errors name the
/// registry and repository, and the tag for a resolution.
async fn resolve_version(
    client: &RegistryClient,
    repository: &ImageRef,
    request: &RetagRequest,
    deadline: &Deadline,
    max_tags: usize,
) -> Result<Vec<(String, Digest)>, String> {
    let all = client
        .tags(repository, deadline, max_tags)
        .await
        .map_err(|e| format!("cannot list the tags of {}: {e}", repository.name()))?;
    let selected = tags_for_version(&all, request.version(), request.prefixes());
    let mut wanted: Vec<&String> = selected.values().flatten().collect();
    wanted.sort();
    wanted.dedup();
    let concurrency = client.config().max_concurrency.max(1);
    let mut resolved: Vec<(String, Digest)> = stream::iter(wanted)
        .map(|tag| async move {
            let image = repository
                .with_tag(tag)
                .map_err(|e| format!("tag {tag:?} of {}: {e}", repository.name()))?;
            client
                .resolve(&image, deadline)
                .await
                .map(|digest| (tag.clone(), digest))
                .map_err(|e| format!("cannot resolve {image}: {e}"))
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    resolved.sort();
    Ok(resolved)
}
