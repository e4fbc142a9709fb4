//! `custody serve`.

use std::path::PathBuf;

use super::{EXIT_ERROR, EXIT_OK, err};
use crate::service::{ServiceConfig, build_state, serve};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Configuration file (YAML, see docs/service.md). Without one: embedded defaults — the
    /// example policy, plain HTTP on 127.0.0.1:8080, no authentication (loopback only).
    #[arg(long, env = "CUSTODY_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen address (overrides the file).
    #[arg(long, env = "CUSTODY_LISTEN", value_name = "ADDR")]
    listen: Option<String>,
    /// The environment judged when a request names none (overrides the file).
    #[arg(long, env = "CUSTODY_ENVIRONMENT", value_name = "ENV")]
    environment: Option<String>,
    /// Lineage store URL: `sqlite:PATH` or `postgres://…` (overrides the file's `store`; see
    /// docs/lineage.md). The same variable `custody lineage` reads, so both find one store.
    #[arg(long, env = "CUSTODY_STORE", value_name = "URL")]
    store: Option<String>,
    /// Registry reached over plain HTTP (added to the file's list). Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    insecure_registries: Vec<String>,
    /// Log format.
    #[arg(long, env = "CUSTODY_LOG_FORMAT", value_enum, default_value = "json")]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

pub(super) fn run(args: Args) -> u8 {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CUSTODY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match args.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    let mut config = match &args.config {
        Some(path) => {
            match crate::engine::files::read_text_bounded(path, 1 << 20, "config", "1 MiB")
                .and_then(|t| ServiceConfig::from_yaml(&t))
            {
                Ok(c) => c,
                Err(e) => {
                    err(&format!("error: {}: {e}", path.display()));
                    return EXIT_ERROR;
                }
            }
        }
        None => ServiceConfig::default(),
    };
    if let Some(l) = args.listen {
        config.listen = Some(l);
    }
    config.registry.insecure.extend(args.insecure_registries);
    if args.environment.is_some() {
        config.environment = args.environment;
    }
    if args.store.is_some() {
        config.store = args.store;
    }
    if args.config.is_none() {
        let addr = config.listen_addr();
        let loopback = addr
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback());
        if !loopback {
            err(
                "error: without a configuration file custody serves only on a loopback address (no TLS, no authentication); pass --config",
            );
            return EXIT_ERROR;
        }
        config.auth.insecure_allow_anonymous = true;
        tracing::warn!(
            "no configuration: embedded example policy, plain HTTP, no authentication, loopback only"
        );
    }
    let state = match build_state(config) {
        Ok(s) => s,
        Err(e) => {
            err(&format!("error: {e}"));
            return EXIT_ERROR;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            err(&format!("error: cannot start the runtime: {e}"));
            return EXIT_ERROR;
        }
    };
    let result = rt.block_on(async move {
        let shutdown = async {
            #[cfg(unix)]
            {
                let mut term =
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
                        Ok(t) => t,
                        Err(_) => return,
                    };
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
        };
        let state = crate::service::open_store(state).await?;
        serve(state, shutdown).await
    });
    match result {
        Ok(()) => EXIT_OK,
        Err(e) => {
            err(&format!("error: {e}"));
            EXIT_ERROR
        }
    }
}
