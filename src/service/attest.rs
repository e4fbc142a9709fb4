//! `POST /v1/attest`: the service signs a SLSA Verification Summary for an image it allows, with
//! the key from its configuration (`attest.key`), and attaches it to the image on request.
//!
//! The work is [`crate::attest::attest`], as `custody attest` runs it: a **full** verification
//! (never the summary fast path: a summary is not made from a summary), and only an allow verdict
//! is signed. A deny or error verdict is answered 422 with the verdict and its reasons; nothing is
//! signed or pushed. The verdict cache is not used either way: a summary states what was verified
//! at `timeVerified`, so it is made from a verification made now.
//!
//! Answers: 200 the envelope and what it says; 400 malformed body, bad or tag-only reference;
//! 401 (the API's authentication); 403 `push: true` without `attest.allowPush`; 404 unknown
//! policy, or 404 `not-configured` when the service has no `attest:` section (whatever the
//! body); 413 body over the limit; 422 the verdict is not allow; 502 the registry refused the
//! push; 503 overloaded.
//!
//! Why 404 and not 501 (what `/v1/promotion` and the lineage routes answer without their
//! configuration): a service without a signing key does not offer this resource at all, and the
//! API fuzzing in `scripts/schemathesis` counts every 5xx as a server fault — a deployment that
//! simply has no key must still conform. The code `not-configured` (not the router's
//! `not-found`) tells a caller which 404 it got.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::AppState;
use super::api::ErrorDetail;
use super::config::{AttestConfig, ServiceConfig};
use super::handlers::{ApiError, body_bytes, json};
use crate::attest::{AttestError, AttestRequest, Attested, Envelope, SigningKey};
use crate::limits::Limits;
use crate::reference::ImageRef;
use crate::registry::discovery::{DiscoveryOptions, FoundVia};
use crate::verdict::{PolicyRef, Verdict, VerdictDecision};

/// The signing side of the service, loaded once at start.
pub struct Attestor {
    key: SigningKey,
    verifier_id: String,
    allow_push: bool,
}

impl std::fmt::Debug for Attestor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attestor")
            .field("key", &self.key)
            .field("verifier_id", &self.verifier_id)
            .field("allow_push", &self.allow_push)
            .finish()
    }
}

impl Attestor {
    /// Reads `config.key` (bounded by [`Limits::max_key_bytes`]).
    ///
    /// # Errors
    /// A message naming the file: unreadable, too large, not PEM, SEC1 or encrypted (with the
    /// `openssl` command that converts it), not ECDSA P-256 PKCS#8; an empty `verifierId`.
    pub fn load(config: &AttestConfig) -> Result<Self, String> {
        let limits = Limits::default();
        let what = |e: &dyn std::fmt::Display| format!("attest.key {}: {e}", config.key.display());
        let bytes = crate::engine::files::read_bounded(
            &config.key,
            limits.max_key_bytes,
            "signing key",
            "64 KiB",
        )
        .map_err(|e| format!("attest.key: {e}"))?;
        let key = SigningKey::from_pkcs8_pem(&bytes, &limits).map_err(|e| what(&e))?;
        if config.verifier_id.trim().is_empty() {
            return Err("attest.verifierId is empty: name this service with a URI".into());
        }
        Ok(Self {
            key,
            verifier_id: config.verifier_id.clone(),
            allow_push: config.allow_push,
        })
    }

    /// The key's identity (`sha256:` of its SubjectPublicKeyInfo), for the start-up log.
    pub fn key_id(&self) -> String {
        self.key.key_id().to_string()
    }
}

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttestApiRequest {
    /// The image, digest-pinned (`registry/repo@sha256:…` or `registry/repo:tag@sha256:…`; the
    /// tag is judged by the policy's reference rules, as by `/v1/verify`).
    pub image: String,
    /// The environment (default: the service's `environment`).
    #[serde(default)]
    pub environment: Option<String>,
    /// The policy name (default: the configured default).
    #[serde(default)]
    pub policy: Option<String>,
    /// Also attach the summary to the image (needs `attest.allowPush`).
    #[serde(default)]
    pub push: bool,
}

/// The 200 answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttestResponse {
    /// The signed DSSE envelope, as pushed (in-toto Statement v1, SLSA VSA v1 predicate).
    pub envelope: Envelope,
    /// What the summary says, so callers need not decode the payload.
    pub summary: SummaryFacts,
    /// Where it was attached, with `push: true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushed: Option<PushedTo>,
}

/// What a summary says.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryFacts {
    /// The image digest the summary is about.
    pub digest: String,
    /// `resourceUri`: `oci://registry/repository@sha256:…`.
    pub resource_uri: String,
    /// The environment judged for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The policy, with its content hash (`policy.digest` in the summary).
    pub policy: PolicyRef,
    /// The rule that allowed the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// `verifier.id`.
    pub verifier_id: String,
    /// `timeVerified`, RFC 3339 UTC.
    pub time_verified: String,
    /// `verifiedLevels`.
    pub verified_levels: Vec<String>,
    /// The signing key's id (the DSSE `keyid`).
    pub key_id: String,
    /// SHA-256 of the envelope bytes (the referrer's layer digest when pushed).
    pub envelope_digest: String,
}

/// Where a summary was attached.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushedTo {
    /// `registry/repository`.
    pub repository: String,
    /// The referrer manifest's digest.
    pub manifest_digest: String,
    /// How it is listed (`referrers-api`, or the tag-schema index custody updated).
    pub indexed: FoundVia,
}

/// The 422 answer: the API's error, and the verdict that was not an allow.
#[derive(Debug, Serialize)]
struct NotAllowedBody {
    error: ErrorDetail,
    verdict: Verdict,
}

/// `POST /v1/attest`.
pub(super) async fn attest(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    // Not configured answers the same whatever the body: the endpoint does not exist here.
    let Some(attestor) = state.attestor.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-configured",
            "attestation needs `attest: {key: …}` (an ECDSA P-256 PKCS#8 key) in the service configuration".into(),
        ));
    };
    let req: AttestApiRequest = json(&body_bytes(body)?, "attest request")?;
    if req.push && !attestor.allow_push {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "push-not-allowed",
            "this service does not push summaries (attest.allowPush is false); ask without push and attach the envelope yourself".into(),
        ));
    }
    let set = state.verdicts.policies();
    let loaded = set.get(req.policy.as_deref()).cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown-policy",
            format!(
                "unknown policy {:?}; known policies: {:?}",
                req.policy.as_deref().unwrap_or(&set.default),
                set.policies.keys().collect::<Vec<_>>()
            ),
        )
    })?;
    let shown: String = req.image.chars().take(200).collect();
    let reference: ImageRef = req.image.parse().map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-image",
            format!("invalid image reference {shown:?}: {e}"),
        )
    })?;
    if reference.digest().is_none() {
        return Err(not_pinned(&shown));
    }
    if let Some(e) = &req.environment {
        // Recorded in the summary and the lineage: the store's bounds, checked before any work.
        super::lineage::text_value("environment", e)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad-request", e.to_string()))?;
    }
    let environment = req
        .environment
        .clone()
        .or_else(|| state.config.environment.clone());
    let deadline = ServiceConfig::ms(state.config.deadlines.verify_ms);
    let request = AttestRequest {
        reference: reference.clone(),
        environment: environment.clone(),
        verifier_id: attestor.verifier_id.clone(),
        level: None,
        push: req.push,
        discovery: DiscoveryOptions::default(),
        // Leave headroom under the caller's deadline for signing and answering, as verdicts do.
        deadline: deadline.mul_f64(0.9),
    };
    #[allow(clippy::disallowed_methods)] // one clock read per summary (timeVerified)
    let now = jiff::Timestamp::now();
    let started = Instant::now();
    let before = state.verdicts.client().request_count();
    // Bounded even if the registry stalls; a verification cut short is an error verdict.
    let outcome = tokio::time::timeout(
        deadline,
        crate::attest::attest(
            state.verdicts.client(),
            &loaded,
            &attestor.key,
            &request,
            now,
        ),
    )
    .await
    .unwrap_or_else(|_| {
        Err(AttestError::NotAllowed {
            verdict: Box::new(super::verdicts::error_verdict(
                &reference,
                environment.as_deref(),
                &loaded,
                format!("deadline of {} ms exceeded", deadline.as_millis()),
            )),
        })
    });
    let requests = state
        .verdicts
        .client()
        .request_count()
        .saturating_sub(before);
    match outcome {
        // Never hand out a summary of anything but an allow, whatever the library returned.
        Ok(made) if made.verdict.decision != VerdictDecision::Allow => {
            record(&state, &made.verdict, started.elapsed(), requests);
            tracing::error!(image = %reference, decision = ?made.verdict.decision, "a summary was made for a verdict that is not an allow; withheld");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the summary could not be signed; the service log says why".into(),
            ))
        }
        Ok(made) => {
            record(&state, &made.verdict, started.elapsed(), requests);
            tracing::info!(image = %reference, policy = %loaded.policy.name, environment = ?environment, pushed = made.pushed.is_some(), key = %attestor.key_id(), "verification summary signed");
            Ok(axum::Json(response(made, &attestor)).into_response())
        }
        Err(AttestError::NotAllowed { verdict }) => {
            let mut verdict = *verdict;
            record(&state, &verdict, started.elapsed(), requests);
            verdict.trace.clear();
            verdict.http_requests = requests;
            let message = format!(
                "the verdict is {}, not allow: no summary is made",
                match verdict.decision {
                    VerdictDecision::Allow => "allow",
                    VerdictDecision::Deny => "deny",
                    VerdictDecision::Error => "error",
                }
            );
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(NotAllowedBody {
                    error: ErrorDetail {
                        code: "not-allowed",
                        message,
                    },
                    verdict,
                }),
            )
                .into_response())
        }
        Err(AttestError::NotPinned { .. }) => Err(not_pinned(&shown)),
        Err(e @ AttestError::Push(_)) => {
            tracing::warn!(image = %reference, error = %e, "verification summary made, not pushed");
            Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "push-failed",
                e.to_string(),
            ))
        }
        // Key, signing and consistency failures are custody's, not the caller's: logged here,
        // a generic answer there.
        Err(e) => {
            tracing::error!(image = %reference, error = %e, "verification summary failed");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the summary could not be signed; the service log says why".into(),
            ))
        }
    }
}

fn not_pinned(shown: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "not-pinned",
        format!(
            "{shown:?} is not digest-pinned: a summary is about one digest (registry/repo@sha256:…)"
        ),
    )
}

/// Counts the verification in the metrics and records its verdict in the lineage store, as
/// `/v1/verify` does (non-blocking; nothing else is recorded).
fn record(state: &AppState, verdict: &Verdict, took: Duration, requests: u64) {
    state.metrics.verdict(verdict, took);
    state.metrics.registry_requests(requests);
    if let Some(w) = &state.writer
        && let Some(event) = super::lineage::verdict_event(verdict)
        && let Err(e) = w.submit(crate::store::Event::Verdict(event))
    {
        tracing::error!(error = %e, "lineage: verdict event dropped (store queue full or store down)");
        state.metrics.lineage_dropped();
    }
}

fn response(made: Attested, attestor: &Arc<Attestor>) -> AttestResponse {
    let p = &made.statement.predicate;
    let summary = SummaryFacts {
        digest: made
            .verdict
            .digest
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        resource_uri: p.resource_uri.clone(),
        environment: made.verdict.environment.clone(),
        policy: made.verdict.policy.clone(),
        rule: made.verdict.rule.clone(),
        verifier_id: p.verifier.id.clone(),
        time_verified: p.time_verified.clone(),
        verified_levels: p.verified_levels.clone(),
        key_id: attestor.key_id(),
        envelope_digest: crate::reference::Digest::sha256_of(&made.envelope_bytes).to_string(),
    };
    AttestResponse {
        pushed: made.pushed.map(|p| PushedTo {
            repository: p.repository,
            manifest_digest: p.manifest_digest.to_string(),
            indexed: p.indexed,
        }),
        envelope: made.envelope,
        summary,
    }
}
