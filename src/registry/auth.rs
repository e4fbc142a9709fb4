//! Registry authentication: anonymous, basic, bearer tokens (the distribution token flow) and
//! docker `config.json` credentials.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use super::RegistryError;

/// How custody authenticates to registries.
#[derive(Clone, Default)]
pub enum Credentials {
    /// No credentials; registries that allow anonymous pulls still issue tokens.
    #[default]
    Anonymous,
    /// A user name and password (or token as password), for every registry.
    Basic {
        /// User name.
        username: String,
        /// Password or access token.
        password: String,
    },
    /// A bearer token sent as is, for every registry.
    Bearer(String),
    /// A docker `config.json` (its contents): per-registry `auths`, identity tokens and
    /// credential helpers (`credHelpers`, `credsStore`), as `docker login` writes it.
    DockerConfig(Vec<u8>),
}

impl std::fmt::Debug for Credentials {
    // Never print secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::Anonymous => "Anonymous",
            Credentials::Basic { .. } => "Basic(<redacted>)",
            Credentials::Bearer(_) => "Bearer(<redacted>)",
            Credentials::DockerConfig(_) => "DockerConfig(<redacted>)",
        })
    }
}

/// A resolved credential for one registry.
#[derive(Clone)]
pub(super) enum Resolved {
    None,
    UserPassword(String, String),
    IdentityToken(String),
    Bearer(String),
}

impl Credentials {
    /// The credential to use for `registry`.
    pub(super) fn resolve(&self, registry: &str) -> Result<Resolved, RegistryError> {
        match self {
            Credentials::Anonymous => Ok(Resolved::None),
            Credentials::Basic { username, password } => {
                Ok(Resolved::UserPassword(username.clone(), password.clone()))
            }
            Credentials::Bearer(token) => Ok(Resolved::Bearer(token.clone())),
            Credentials::DockerConfig(config) => {
                // Docker Hub's key in config.json is its v1 URL.
                let server = if registry == crate::reference::DOCKER_HUB {
                    "https://index.docker.io/v1/"
                } else {
                    registry
                };
                match docker_credential::get_credential_from_reader(config.as_slice(), server) {
                    Ok(docker_credential::DockerCredential::UsernamePassword(u, p)) => {
                        Ok(Resolved::UserPassword(u, p))
                    }
                    Ok(docker_credential::DockerCredential::IdentityToken(t)) => {
                        Ok(Resolved::IdentityToken(t))
                    }
                    Err(docker_credential::CredentialRetrievalError::NoCredentialConfigured) => {
                        Ok(Resolved::None)
                    }
                    Err(e) => Err(RegistryError::Credentials {
                        registry: registry.to_owned(),
                        // The helper's stdout could hold a secret: keep only the first line.
                        detail: e.to_string().lines().next().unwrap_or_default().to_owned(),
                    }),
                }
            }
        }
    }
}

impl Resolved {
    pub(super) fn basic_header(&self) -> Option<String> {
        match self {
            Resolved::UserPassword(u, p) => {
                Some(format!("Basic {}", B64.encode(format!("{u}:{p}"))))
            }
            _ => None,
        }
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `WWW-Authenticate` (`Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`).
pub(super) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    let mut scope = None;
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().trim_start_matches(',').trim();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (quoted.get(..end)?, quoted.get(end + 1..)?)
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after.get(..end)?, after.get(end..)?)
        };
        match key.to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value.to_owned()),
            "service" => service = Some(value.to_owned()),
            "scope" => scope = Some(value.to_owned()),
            _ => {}
        }
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge::Bearer {
        realm: realm?,
        service,
        scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull".into()),
            })
        );
        let c = parse_challenge(
            r#"Bearer realm="https://ghcr.io/token",scope="repository:a/b:pull,push""#,
        );
        assert!(
            matches!(c, Some(Challenge::Bearer { scope: Some(s), .. }) if s == "repository:a/b:pull,push")
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(
            parse_challenge(r#"Bearer service="x""#),
            None,
            "a bearer challenge needs a realm"
        );
        assert_eq!(parse_challenge(r#"Bearer realm="unterminated"#), None);
    }

    #[test]
    fn docker_config_auths_are_read_and_secrets_not_printed() {
        let cfg = br#"{"auths":{"registry.example":{"auth":"dXNlcjpwYXNz"}}}"#.to_vec();
        let creds = Credentials::DockerConfig(cfg);
        assert!(
            matches!(creds.resolve("registry.example").unwrap(), Resolved::UserPassword(u, p) if u == "user" && p == "pass")
        );
        assert!(matches!(
            creds.resolve("other.example").unwrap(),
            Resolved::None
        ));
        assert!(!format!("{creds:?}").contains("dXNl"));
    }
}
