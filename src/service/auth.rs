//! Who may call the service: the one set of acceptance rules behind both the API's middleware
//! ([`super::handlers::authenticate`]) and the pages' check ([`super::ui::Viewer`], which adds
//! its session cookie on top). One function, so the two cannot drift apart.
//!
//! Accepted, in order: `auth.insecureAllowAnonymous`; the exact path listed in
//! `auth.anonymousRoutes`; with mutual TLS configured, a client certificate that verified against
//! the client CA during the handshake; a bearer token from `auth.tokensFile`, compared in
//! constant time.

use std::sync::Arc;

use axum::http::{Extensions, HeaderMap, header};

use super::AppState;

/// Whether a request to `path` with these headers and extensions (where the TLS layer leaves the
/// peer's certificates) carries what the API accepts.
pub(super) fn api_credentials(
    state: &AppState,
    path: &str,
    headers: &HeaderMap,
    extensions: &Extensions,
) -> bool {
    let auth = &state.config.auth;
    if auth.insecure_allow_anonymous || auth.anonymous_routes.iter().any(|r| r == path) {
        return true;
    }
    // With mutual TLS configured, a client certificate that verified against the client CA
    // during the handshake authenticates (an unverified one never gets this far: the handshake
    // fails).
    if state.mtls
        && extensions
            .get::<Arc<axum_server::tls::TlsInfo>>()
            .is_some_and(|i| !i.peer_certificates.is_empty())
    {
        return true;
    }
    bearer(headers).is_some_and(|t| token_accepted(t, &state.tokens))
}

/// Why a request was refused, in words that say what was found and nothing about the tokens.
pub(super) fn refusal(headers: &HeaderMap) -> &'static str {
    match headers.get(header::AUTHORIZATION) {
        None => "no Authorization header: a valid bearer token (or client certificate) is required",
        Some(_) if bearer(headers).is_none() => {
            "the Authorization header is not `Bearer <token>`: a valid bearer token is required"
        }
        Some(_) => "the bearer token is not accepted",
    }
}

/// The bearer token of an `Authorization: Bearer …` header, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Whether `presented` equals one of `tokens`, comparing every byte of every token of the same
/// length (no early exit on a mismatch, nor on a match; the length of a token is not secret).
pub(super) fn token_accepted(presented: &str, tokens: &[String]) -> bool {
    tokens.iter().fold(false, |found, t| {
        let same = t.len() == presented.len()
            && t.bytes()
                .zip(presented.bytes())
                .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                == 0;
        found | same
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Vec<String> {
        vec![
            "first-token-0123456789".into(),
            "second-token-012345678".into(),
        ]
    }

    #[test]
    fn tokens_are_compared_whole() {
        assert!(token_accepted("first-token-0123456789", &tokens()));
        assert!(token_accepted("second-token-012345678", &tokens()));
        assert!(!token_accepted("first-token-012345678", &tokens()));
        assert!(!token_accepted("first-token-01234567890", &tokens()));
        assert!(!token_accepted("", &tokens()));
        assert!(!token_accepted("x", &[]));
    }

    #[test]
    fn only_a_bearer_authorization_is_read() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
    }

    #[test]
    fn a_refusal_says_what_was_found() {
        let mut h = HeaderMap::new();
        assert!(refusal(&h).starts_with("no Authorization header"));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(refusal(&h).contains("not `Bearer <token>`"));
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(refusal(&h), "the bearer token is not accepted");
    }
}
