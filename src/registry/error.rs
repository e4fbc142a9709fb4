//! Registry errors: what went wrong talking to a registry, with the URL and what was found.

use thiserror::Error;

/// Why a registry operation failed. [`RegistryError::is_transient`] tells retryable from final.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The registry answered 404 for something custody needed.
    #[error("{what} not found at {url}")]
    NotFound {
        /// What was asked for.
        what: String,
        /// The URL.
        url: String,
    },
    /// 401 after authenticating, or authentication itself failed.
    #[error("registry {registry} refused authentication: {detail}")]
    Unauthorized {
        /// The registry.
        registry: String,
        /// What happened.
        detail: String,
    },
    /// 403.
    #[error("registry refused access to {url} (403 Forbidden)")]
    Forbidden {
        /// The URL.
        url: String,
    },
    /// 429 after the allowed retries.
    #[error("registry rate-limited {url} (429) after {attempts} attempts{}", retry_after.map(|s| format!("; it asked to wait {s} s")).unwrap_or_default())]
    RateLimited {
        /// The URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last `Retry-After`, in seconds.
        retry_after: Option<u64>,
    },
    /// Another unexpected HTTP status (5xx after retries, 400, …).
    #[error("registry answered {status} for {url} after {attempts} attempt(s){}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// Attempts made.
        attempts: u32,
        /// The first 200 bytes of the body, for the error message.
        body: String,
    },
    /// The connection failed (refused, reset, TLS) after retries.
    #[error("cannot reach {url} after {attempts} attempt(s): {detail}")]
    Connection {
        /// The URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// What failed.
        detail: String,
    },
    /// One request took longer than the per-request timeout.
    #[error("{url} did not answer within {timeout_ms} ms")]
    Timeout {
        /// The URL.
        url: String,
        /// The timeout.
        timeout_ms: u64,
    },
    /// The overall deadline of the operation ran out.
    #[error("deadline of {deadline_ms} ms exceeded while {doing}")]
    DeadlineExceeded {
        /// What was in progress.
        doing: String,
        /// The deadline.
        deadline_ms: u64,
    },
    /// A body was larger than its limit (or the connection ended early).
    #[error("{what} at {url} is larger than the limit of {max} bytes{}", found.map(|f| format!(" ({f} bytes announced)")).unwrap_or_default())]
    TooLarge {
        /// What was read.
        what: String,
        /// The URL.
        url: String,
        /// The limit.
        max: u64,
        /// The announced size, if any.
        found: Option<u64>,
    },
    /// The body ended before its announced length.
    #[error("{what} at {url} was truncated: {detail}")]
    Truncated {
        /// What was read.
        what: String,
        /// The URL.
        url: String,
        /// What happened.
        detail: String,
    },
    /// Content did not hash to the digest it was fetched by (or the registry announced).
    #[error("{what} at {url} does not match its digest: expected {expected}, computed {computed}")]
    DigestMismatch {
        /// What was read.
        what: String,
        /// The URL.
        url: String,
        /// The digest asked for or announced.
        expected: String,
        /// The digest of what arrived.
        computed: String,
    },
    /// The content did not parse.
    #[error("{what} at {url} is malformed: {detail}")]
    Malformed {
        /// What was read.
        what: String,
        /// The URL.
        url: String,
        /// The parser's complaint.
        detail: String,
    },
    /// More referrers (or evidence items) than the limit.
    #[error("{what}: {found} entries, more than the limit of {max}")]
    TooMany {
        /// What was counted.
        what: String,
        /// The count.
        found: usize,
        /// The limit.
        max: usize,
    },
    /// A pagination `Link` pointed outside the registry and repository being listed. custody
    /// does not follow it: the request would carry the repository's credentials elsewhere.
    #[error("{what} at {url} links its next page to {link}, outside {expected}; not following it")]
    ForeignLink {
        /// What was being listed.
        what: String,
        /// The page that sent the link.
        url: String,
        /// The link target, resolved against the page URL.
        link: String,
        /// Where next pages must be (`scheme://registry/v2/<repository>/…`).
        expected: String,
    },
    /// An index nests deeper than the limit or refers to itself.
    #[error("image index {digest} {why}")]
    BadIndex {
        /// The index digest.
        digest: String,
        /// What is wrong.
        why: String,
    },
    /// The registry is not in the allow-list, or plain HTTP was not allowed for it.
    #[error("registry {registry} is not allowed: {why}")]
    NotAllowed {
        /// The registry.
        registry: String,
        /// Why.
        why: String,
    },
    /// Credentials could not be read.
    #[error("credentials for {registry}: {detail}")]
    Credentials {
        /// The registry.
        registry: String,
        /// What failed.
        detail: String,
    },
    /// The client could not be configured (bad CA bundle, …).
    #[error("registry client configuration: {0}")]
    Config(String),
}

impl RegistryError {
    /// Whether retrying could help (rate limits, 5xx, connection failures, timeouts).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RegistryError::RateLimited { .. }
                | RegistryError::Connection { .. }
                | RegistryError::Timeout { .. }
                | RegistryError::Truncated { .. }
                | RegistryError::Status {
                    status: 500..=599,
                    ..
                }
        )
    }
}
