//! Registry flags shared by `verify` and `evidence`.

use std::path::PathBuf;
use std::time::Duration;

use crate::reference::ImageRef;
use crate::registry::{Credentials, RegistryConfig};

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RegistryArgs {
    /// Registry (host[:port]) to reach over plain HTTP. Repeatable. Everything else is HTTPS.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    insecure_registries: Vec<String>,
    /// Extra CA certificates (PEM) to trust for registry TLS.
    #[arg(long, value_name = "FILE")]
    registry_ca: Option<PathBuf>,
    /// Registry user name (with --registry-password, or CUSTODY_REGISTRY_PASSWORD).
    #[arg(long, value_name = "USER", requires = "registry_password")]
    registry_username: Option<String>,
    /// Registry password or access token.
    #[arg(
        long,
        env = "CUSTODY_REGISTRY_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    registry_password: Option<String>,
    /// A bearer token sent to the registry as is.
    #[arg(
        long,
        env = "CUSTODY_REGISTRY_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true,
        conflicts_with = "registry_username"
    )]
    registry_token: Option<String>,
    /// A docker config.json to read credentials from (default: $DOCKER_CONFIG/config.json or
    /// ~/.docker/config.json when it exists).
    #[arg(long, value_name = "FILE")]
    docker_config: Option<PathBuf>,
    /// Repository holding cosign's .sig/.att/.sbom tags, when not the image's own.
    #[arg(long, env = "COSIGN_REPOSITORY", value_name = "REGISTRY/REPO")]
    signature_repository: Option<String>,
    /// Overall deadline for registry work, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    timeout: f64,
}

impl RegistryArgs {
    pub(crate) fn config(&self) -> Result<RegistryConfig, String> {
        let credentials = if let Some(token) = &self.registry_token {
            Credentials::Bearer(token.clone())
        } else if let (Some(u), Some(p)) = (&self.registry_username, &self.registry_password) {
            Credentials::Basic {
                username: u.clone(),
                password: p.clone(),
            }
        } else {
            match self.docker_config.clone().or_else(default_docker_config) {
                Some(path) if path.exists() || self.docker_config.is_some() => {
                    let bytes = super::read_bounded(&path, 1 << 20, "docker config", "1 MiB")?;
                    Credentials::DockerConfig(bytes)
                }
                _ => Credentials::Anonymous,
            }
        };
        let ca_certificates_pem = match &self.registry_ca {
            Some(path) => Some(super::read_bounded(
                path,
                1 << 20,
                "registry CA bundle",
                "1 MiB",
            )?),
            None => None,
        };
        Ok(RegistryConfig {
            insecure_registries: self.insecure_registries.clone(),
            ca_certificates_pem,
            credentials,
            ..RegistryConfig::default()
        })
    }

    pub(crate) fn signature_repository(&self) -> Result<Option<ImageRef>, String> {
        self.signature_repository
            .as_deref()
            .map(|r| {
                r.parse::<ImageRef>()
                    .map_err(|e| format!("--signature-repository / COSIGN_REPOSITORY {r:?}: {e}"))
            })
            .transpose()
    }

    pub(crate) fn deadline(&self) -> Result<Duration, String> {
        if !(self.timeout.is_finite() && self.timeout > 0.0 && self.timeout <= 600.0) {
            return Err(format!(
                "--timeout must be between 0 and 600 seconds, got {}",
                self.timeout
            ));
        }
        Ok(Duration::from_secs_f64(self.timeout))
    }
}

#[allow(clippy::disallowed_methods)] // the CLI reads the environment; the library never does
fn default_docker_config() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .map(|d| d.join("config.json"))
}
