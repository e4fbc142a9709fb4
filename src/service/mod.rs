//! `custody serve`: verdicts over HTTP(S) for admission controllers and pipelines.
//!
//! Routes: `POST /v1/verify`, `POST /v1/admission` (Kubernetes `AdmissionReview` v1),
//! `POST /v1/gatekeeper` (Gatekeeper external data), `POST /v1/kyverno` (Kyverno `apiCall`),
//! `POST /v1/promotion`, `POST /v1/attest` (signed verification summaries), `POST /v1/events`,
//! `GET /v1/lineage/…`, `/ui`, `GET /healthz`, `GET /readyz`, `GET /metrics`,
//! `GET /openapi.json` (docs/openapi.json).
//!
//! Every verification runs under a deadline below the caller's timeout and answers `error` —
//! never allow — when it runs out. Verdicts are cached (policy hash + trust-root hash +
//! environment + reference) and concurrent misses share one verification. Requests beyond the
//! concurrency bound are refused at once with 503 and `Retry-After` (no unbounded queue). Every
//! route but the health probes needs a bearer token or a verified client certificate.

pub mod api;
pub mod attest;
mod auth;
pub mod config;
mod handlers;
pub mod lineage;
pub mod metrics;
pub mod promotion;
mod tls;
pub mod ui;
pub mod verdicts;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::sync::Semaphore;

pub use config::ServiceConfig;
use metrics::Metrics;
use verdicts::{PolicySet, Verdicts};

use crate::engine::policies::{load_dir, load_example};
use crate::registry::{Credentials, RegistryClient, RegistryConfig};

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// Verdicts (policies, cache, registry client).
    pub verdicts: Arc<Verdicts>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Configuration.
    pub config: Arc<ServiceConfig>,
    /// Accepted bearer tokens.
    pub tokens: Arc<Vec<String>>,
    /// Whether policies and trust roots are loaded.
    pub ready: Arc<AtomicBool>,
    /// Whether a verified client certificate authenticates (mutual TLS configured).
    pub mtls: bool,
    /// The environments of the delivery repository (`POST /v1/promotion`).
    pub gitops: Option<Arc<crate::gitops::config::Config>>,
    /// The signing key and settings of `POST /v1/attest`, when configured.
    pub attestor: Option<Arc<attest::Attestor>>,
    /// The lineage store, once opened ([`open_store`]).
    pub store: Option<crate::store::Store>,
    /// Its batched writer.
    pub writer: Option<crate::store::Writer>,
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// Loads the policies the configuration names (or the embedded example).
///
/// # Errors
/// Any policy that does not load.
pub fn load_policies(config: &ServiceConfig) -> Result<PolicySet, String> {
    let policies = match &config.policies_dir {
        Some(dir) => load_dir(dir)?,
        None => {
            let p = load_example()?;
            std::collections::BTreeMap::from([(p.policy.name.clone(), Arc::new(p))])
        }
    };
    let default = match &config.default_policy {
        Some(d) if policies.contains_key(d) => d.clone(),
        Some(d) => {
            return Err(format!(
                "default policy {d:?} is not among the loaded policies {:?}",
                policies.keys().collect::<Vec<_>>()
            ));
        }
        None => policies.keys().next().cloned().unwrap_or_default(),
    };
    Ok(PolicySet { policies, default })
}

fn read_tokens(path: &std::path::Path) -> Result<Vec<String>, String> {
    let text = crate::engine::files::read_text_bounded(path, 1 << 20, "tokens file", "1 MiB")?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if tokens.iter().any(|t| t.len() < 16) {
        return Err(format!(
            "{}: every token must be at least 16 characters",
            path.display()
        ));
    }
    Ok(tokens)
}

/// Builds the state: registry client, policies, cache, metrics.
///
/// # Errors
/// Bad configuration, policies that do not load, unreadable token or CA files.
pub fn build_state(config: ServiceConfig) -> Result<AppState, String> {
    let metrics = Arc::new(Metrics::new());
    let ca = match &config.registry.ca_file {
        Some(p) => Some(std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?),
        None => None,
    };
    let client = RegistryClient::new(RegistryConfig {
        insecure_registries: config.registry.insecure.clone(),
        allowed_registries: config.registry.allowed.clone(),
        ca_certificates_pem: ca,
        credentials: Credentials::Anonymous,
        ..RegistryConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let policies = load_policies(&config)?;
    let tokens = match &config.auth.tokens_file {
        Some(p) => read_tokens(p)?,
        None => Vec::new(),
    };
    let mtls = config.tls.as_ref().is_some_and(|t| t.client_ca.is_some());
    let gitops = match &config.gitops {
        Some(p) => {
            let text = crate::engine::files::read_text_bounded(
                p,
                crate::gitops::config::MAX_CONFIG_BYTES as u64,
                "gitops config",
                "256 KiB",
            )?;
            Some(Arc::new(crate::gitops::config::load(&text).map_err(
                |d| {
                    d.iter()
                        .map(|d| d.render(&p.display().to_string()))
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            )?))
        }
        None => None,
    };
    let attestor = match &config.attest {
        Some(a) => {
            let attestor = attest::Attestor::load(a)?;
            tracing::info!(key = %attestor.key_id(), verifier = %a.verifier_id, push = a.allow_push, "POST /v1/attest signs verification summaries");
            Some(Arc::new(attestor))
        }
        None => None,
    };
    if tokens.is_empty()
        && !mtls
        && !config.auth.insecure_allow_anonymous
        && config.auth.anonymous_routes.is_empty()
    {
        return Err("no client authentication configured: set auth.tokensFile, tls.clientCa, or (local use only) auth.insecureAllowAnonymous".into());
    }
    let verdicts = Arc::new(Verdicts::new(
        policies,
        client,
        &config.cache,
        metrics.clone(),
    ));
    Ok(AppState {
        permits: Arc::new(Semaphore::new(config.limits.max_concurrent_requests.max(1))),
        verdicts,
        metrics,
        tokens: Arc::new(tokens),
        ready: Arc::new(AtomicBool::new(true)),
        mtls,
        gitops,
        attestor,
        store: None,
        writer: None,
        config: Arc::new(config),
    })
}

/// Opens the lineage store the configuration names (running its migrations) and starts its
/// writer; verdicts and admissions are recorded from then on. Without `store:` it does nothing.
///
/// # Errors
/// A store that cannot be opened (bad URL, corrupt file, newer schema).
pub async fn open_store(mut state: AppState) -> Result<AppState, String> {
    let Some(url) = state.config.store.clone() else {
        return Ok(state);
    };
    let store = crate::store::Store::open(&url)
        .await
        .map_err(|e| format!("lineage store: {e}"))?;
    let writer = crate::store::Writer::spawn(store.clone(), crate::store::WriterOptions::default());
    state.verdicts.set_writer(writer.clone());
    state.metrics.set_writer(writer.clone());
    tracing::info!(backend = store.backend(), "lineage store open");
    state.store = Some(store);
    state.writer = Some(writer);
    Ok(state)
}

/// The HTTP router (tests drive it directly).
pub fn router(state: AppState) -> Router {
    let limit = state.config.limits.max_body_bytes;
    let protected = Router::new()
        .route("/v1/verify", post(handlers::verify))
        .route("/v1/admission", post(handlers::admission))
        .route("/v1/gatekeeper", post(handlers::gatekeeper))
        .route("/v1/kyverno", post(handlers::kyverno))
        .route("/v1/promotion", post(handlers::promotion))
        .route("/v1/attest", post(attest::attest))
        .route("/v1/events", post(lineage::events))
        .route("/v1/lineage/digest/{digest}", get(lineage::by_digest))
        .route("/v1/lineage/commit/{commit}", get(lineage::by_commit))
        .route("/v1/lineage/environment/{environment}", get(lineage::at))
        .route("/v1/lineage/signer", get(lineage::by_signer))
        .route("/v1/lineage/verdict/{id}", get(lineage::verdict))
        .route("/metrics", get(handlers::metrics))
        .route("/openapi.json", get(handlers::openapi))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            handlers::authenticate,
        ));
    Router::new()
        .merge(protected)
        .merge(ui::routes())
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .fallback(handlers::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            handlers::observe,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Watches the policies directory (polling, which also sees Kubernetes' symlink swaps) and
/// reloads on change or on SIGHUP. A reload that fails keeps the old policies and logs why.
/// [`serve`] calls it; embedders that drive [`router`] themselves call it once.
pub fn spawn_reloader(state: AppState) {
    let Some(dir) = state.config.policies_dir.clone() else {
        return;
    };
    tokio::spawn(async move {
        let mut last = fingerprint(&dir);
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            #[cfg(unix)]
            let signalled = match hup.as_mut() {
                Some(h) => tokio::select! {
                    _ = h.recv() => true,
                    _ = tokio::time::sleep(Duration::from_secs(2)) => false,
                },
                None => {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    false
                }
            };
            #[cfg(not(unix))]
            let signalled = {
                tokio::time::sleep(Duration::from_secs(2)).await;
                false
            };
            let now = fingerprint(&dir);
            if !signalled && now == last {
                continue;
            }
            last = now;
            match load_policies(&state.config) {
                Ok(set) => {
                    tracing::info!(policies = ?set.policies.keys().collect::<Vec<_>>(), "policies reloaded");
                    state.verdicts.replace_policies(set);
                }
                Err(e) => {
                    tracing::error!(error = %e, "policy reload failed; keeping the previous policies")
                }
            }
        }
    });
}

/// Names, sizes and modification times of the files in `dir` (and what symlinks point to).
fn fingerprint(dir: &std::path::Path) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let p = e.path();
            let m = std::fs::metadata(&p).ok()?;
            Some((p, m.len(), m.modified().ok()))
        })
        .collect();
    out.sort();
    out
}

/// Runs the service until `shutdown` completes.
///
/// # Errors
/// Bind failures, TLS configuration errors.
pub async fn serve(
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let addr: std::net::SocketAddr = state
        .config
        .listen_addr()
        .parse()
        .map_err(|e| format!("listen address {:?}: {e}", state.config.listen_addr()))?;
    spawn_reloader(state.clone());
    let app = router(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    state.ready.store(true, Ordering::SeqCst);
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        h.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    // Slow clients: a connection that has not sent its headers in time is closed (hyper's
    // header-read timeout; axum-server installs the timer it needs).
    let header_timeout = Duration::from_millis(state.config.limits.header_read_timeout_ms.max(1));
    match state.config.tls.clone() {
        None => {
            tracing::warn!(%addr, "serving plain HTTP: configure tls for anything but local use");
            let mut server = axum_server::bind(addr).handle(handle);
            server
                .http_builder()
                .http1()
                .header_read_timeout(header_timeout);
            server
                .serve(app)
                .await
                .map_err(|e| format!("cannot serve on {addr}: {e}"))
        }
        Some(tls) => {
            let rustls = tls::config(&tls)?;
            tls::spawn_reload(tls.clone(), rustls.clone());
            tracing::info!(%addr, mtls = tls.client_ca.is_some(), "serving HTTPS");
            let mut server = axum_server::bind_rustls(addr, rustls).handle(handle);
            server
                .http_builder()
                .http1()
                .header_read_timeout(header_timeout);
            server
                .serve(app)
                .await
                .map_err(|e| format!("cannot serve on {addr}: {e}"))
        }
    }
}
