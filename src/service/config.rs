//! Service configuration: a YAML file, `--listen` and `CUSTODY_*` overrides, embedded defaults.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// The service configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceConfig {
    /// Listen address (default `127.0.0.1:8080` without TLS, `0.0.0.0:8443` with).
    #[serde(default)]
    pub listen: Option<String>,
    /// TLS (absent: plain HTTP, with a warning).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Client authentication.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Directory of trust policies (`*.yaml`); absent: the embedded example policy.
    #[serde(default)]
    pub policies_dir: Option<PathBuf>,
    /// Policy used when a request names none (default: the first by name).
    #[serde(default)]
    pub default_policy: Option<String>,
    /// The environment this service judges for when a request names none — for admission and
    /// Gatekeeper, the cluster's environment (e.g. `production`).
    #[serde(default)]
    pub environment: Option<String>,
    /// The delivery repository's `custody-gitops.yaml` (environments in promotion order), for
    /// `POST /v1/promotion`; absent: that endpoint answers 501.
    #[serde(default)]
    pub gitops: Option<PathBuf>,
    /// The lineage store: `sqlite:PATH` or `postgres://…`; absent: nothing is recorded and the
    /// lineage routes and pages answer 501/503.
    #[serde(default)]
    pub store: Option<String>,
    /// This cluster's name, recorded with admission events (and counted as the environment they
    /// reached); absent: the `environment`, else `default` (see [`Self::admission_cluster`]).
    #[serde(default)]
    pub cluster: Option<String>,
    /// Signed verification summaries on request (`POST /v1/attest`); absent: that endpoint
    /// answers 404 `not-configured`.
    #[serde(default)]
    pub attest: Option<AttestConfig>,
    /// Registry access.
    #[serde(default)]
    pub registry: RegistrySection,
    /// Verdict cache.
    #[serde(default)]
    pub cache: CacheConfig,
    /// Deadlines, in milliseconds.
    #[serde(default)]
    pub deadlines: Deadlines,
    /// Request bounds.
    #[serde(default)]
    pub limits: ServiceLimits,
}

/// TLS files (PEM). Reloaded when they change.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
    /// If set, clients must present a certificate issued by this CA (mutual TLS, as Gatekeeper does).
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// Client authentication for every route but `/healthz` and `/readyz`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthConfig {
    /// File with one bearer token per line. With mutual TLS configured, a verified client
    /// certificate is enough.
    #[serde(default)]
    pub tokens_file: Option<PathBuf>,
    /// Routes that need no authentication — e.g. `/v1/admission` when the API server cannot be
    /// given a token, or `/v1/kyverno` (its service calls send no credentials). Keep them behind
    /// a NetworkPolicy. Health routes never need authentication.
    #[serde(default)]
    pub anonymous_routes: Vec<String>,
    /// Allow unauthenticated requests on every route (only for local use; logged loudly).
    #[serde(default)]
    pub insecure_allow_anonymous: bool,
}

/// `POST /v1/attest`: the key the service signs verification summaries with, and what callers
/// may ask of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttestConfig {
    /// ECDSA P-256 private key, unencrypted PKCS#8 PEM (as `custody attest --key`). Read once at
    /// start; a key that cannot be read or is not P-256 PKCS#8 stops the service from starting.
    pub key: PathBuf,
    /// `verifier.id` of the summaries: a URI naming this service (what policies' `verifierId`
    /// matches). Callers cannot choose it. Default `https://custody.dev/verifier`.
    #[serde(default = "default_verifier_id")]
    pub verifier_id: String,
    /// Whether callers may ask for `push: true` (attach the summary to the image in its
    /// registry, with the service's registry access). Default false: the summary is only
    /// returned, and a request asking to push is refused with 403.
    #[serde(default)]
    pub allow_push: bool,
}

fn default_verifier_id() -> String {
    crate::attest::DEFAULT_VERIFIER_ID.to_owned()
}

/// Registry access.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistrySection {
    /// Registries reached over plain HTTP.
    #[serde(default)]
    pub insecure: Vec<String>,
    /// Registries custody may contact (absent: any). A caller cannot make custody fetch elsewhere.
    #[serde(default)]
    pub allowed: Option<Vec<String>>,
    /// Extra CA certificates (PEM file).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// Verdict cache settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheConfig {
    /// Most decisions kept, in compact form (default 100 000).
    #[serde(default = "default_entries")]
    pub max_entries: u64,
    /// Most full verdicts kept for `/v1/verify` (default 10 000).
    #[serde(default = "default_full")]
    pub max_full_verdicts: u64,
    /// How long an allow is kept, seconds (default 600).
    #[serde(default = "default_allow_ttl")]
    pub allow_ttl_secs: u64,
    /// How long a deny is kept, seconds (default 60: evidence may be added).
    #[serde(default = "default_deny_ttl")]
    pub deny_ttl_secs: u64,
    /// How long an error is kept, seconds (default 0: not cached).
    #[serde(default)]
    pub error_ttl_secs: u64,
}

fn default_entries() -> u64 {
    100_000
}
fn default_full() -> u64 {
    10_000
}
fn default_allow_ttl() -> u64 {
    600
}
fn default_deny_ttl() -> u64 {
    60
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_entries: default_entries(),
            max_full_verdicts: default_full(),
            allow_ttl_secs: default_allow_ttl(),
            deny_ttl_secs: default_deny_ttl(),
            error_ttl_secs: 0,
        }
    }
}

/// Deadlines, below the callers' timeouts.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deadlines {
    /// `/v1/admission` (API server webhook timeout 10 s): default 8000.
    #[serde(default = "d_admission")]
    pub admission_ms: u64,
    /// `/v1/gatekeeper` (Gatekeeper's 3 s): default 2500.
    #[serde(default = "d_gatekeeper")]
    pub gatekeeper_ms: u64,
    /// `/v1/verify`, `/v1/kyverno` and `/v1/attest` (its verification and push share it):
    /// default 8000.
    #[serde(default = "d_admission")]
    pub verify_ms: u64,
}

fn d_admission() -> u64 {
    8000
}
fn d_gatekeeper() -> u64 {
    2500
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            admission_ms: d_admission(),
            gatekeeper_ms: d_gatekeeper(),
            verify_ms: d_admission(),
        }
    }
}

/// Request bounds.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceLimits {
    /// Largest request body, bytes (default 3 MiB: the API server's request limit).
    #[serde(default = "l_body")]
    pub max_body_bytes: usize,
    /// Requests handled at once; more are refused with 503 + Retry-After (default 256).
    #[serde(default = "l_conc")]
    pub max_concurrent_requests: usize,
    /// Most images judged in one request (default 1000).
    #[serde(default = "l_images")]
    pub max_images_per_request: usize,
    /// A connection that has not sent its request headers within this many milliseconds is
    /// closed (slow clients; default 10 000).
    #[serde(default = "l_header")]
    pub header_read_timeout_ms: u64,
}

fn l_header() -> u64 {
    10_000
}

fn l_body() -> usize {
    3 << 20
}
fn l_conc() -> usize {
    256
}
fn l_images() -> usize {
    1000
}

impl Default for ServiceLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: l_body(),
            max_concurrent_requests: l_conc(),
            max_images_per_request: l_images(),
            header_read_timeout_ms: l_header(),
        }
    }
}

impl ServiceConfig {
    /// Parses a configuration file.
    ///
    /// # Errors
    /// YAML errors with line and column; unknown keys are named.
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        serde_saphyr::from_str(text).map_err(|e| e.without_snippet().to_string())
    }

    /// The cluster name admission events carry: `cluster`, else `environment` (lineage counts a
    /// cluster as the environment of that name, so an unnamed cluster that judges for
    /// `production` shows up there), else `default`. Never empty: the store refuses an empty
    /// cluster, which dropped every admission event of a service configured without one.
    pub fn admission_cluster(&self) -> &str {
        fn named(s: Option<&str>) -> Option<&str> {
            s.filter(|c| !c.is_empty())
        }
        named(self.cluster.as_deref())
            .or(named(self.environment.as_deref()))
            .unwrap_or("default")
    }

    /// The listen address to use.
    pub fn listen_addr(&self) -> String {
        self.listen.clone().unwrap_or_else(|| {
            if self.tls.is_some() {
                "0.0.0.0:8443".into()
            } else {
                "127.0.0.1:8080".into()
            }
        })
    }

    /// A deadline as a `Duration`.
    pub fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_cluster_is_the_cluster_else_the_environment_else_default() {
        let mut c = ServiceConfig::default();
        assert_eq!(c.admission_cluster(), "default");
        c.environment = Some("production".into());
        assert_eq!(c.admission_cluster(), "production");
        c.cluster = Some("prod-eu-1".into());
        assert_eq!(c.admission_cluster(), "prod-eu-1");
        c.cluster = Some(String::new());
        assert_eq!(
            c.admission_cluster(),
            "production",
            "an empty name is no name"
        );
        c.environment = Some(String::new());
        assert_eq!(c.admission_cluster(), "default");
    }
}
