//! HTTP handlers: thin — parse, ask [`super::verdicts::Verdicts`], render. Errors become JSON
//! bodies with a stable code in one place ([`ApiError`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::future::join_all;
use kube_core::DynamicObject;
use kube_core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};

use super::AppState;
use super::api::{
    ErrorBody, ErrorDetail, ImageSummary, KyvernoResponse, PodImagesError, ProviderItem,
    ProviderRequest, ProviderResponse, ProviderResponseBody, VerifyRequest, VerifyResponse,
    pod_images,
};
use super::config::ServiceConfig;
use super::verdicts::{Decision, RequestError};
use crate::verdict::{Verdict, VerdictDecision};

/// The committed OpenAPI document, served as is (a test checks it matches the router).
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

/// An API error: status, stable code, message.
pub(super) struct ApiError(StatusCode, &'static str, String);

impl ApiError {
    /// An error answer: status, stable code, message.
    pub(super) fn new(status: StatusCode, code: &'static str, message: String) -> Self {
        Self(status, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.1,
                message: self.2,
            },
        };
        let mut r = (self.0, axum::Json(body)).into_response();
        if self.0 == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::UnknownPolicy(..) => {
                ApiError(StatusCode::NOT_FOUND, "unknown-policy", e.to_string())
            }
            RequestError::BadImage(..) => {
                ApiError(StatusCode::BAD_REQUEST, "bad-image", e.to_string())
            }
        }
    }
}

pub(super) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        let status = e.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "too-large"
        } else {
            "bad-body"
        };
        ApiError(status, code, e.body_text())
    })
}

pub(super) fn json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
) -> Result<T, ApiError> {
    crate::evidence::check_json_depth(bytes, 64)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, "bad-json", format!("{what}: {e}")))?;
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, "bad-json", format!("{what}: {e}")))
}

fn check_count(n: usize, config: &ServiceConfig) -> Result<(), ApiError> {
    if n > config.limits.max_images_per_request {
        return Err(ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-many-images",
            format!(
                "{n} images in one request, more than the limit of {}",
                config.limits.max_images_per_request
            ),
        ));
    }
    Ok(())
}

/// Verdicts for several images, concurrently (each cached and single-flighted).
async fn verdicts_for(
    state: &AppState,
    images: &[String],
    policy: Option<&str>,
    environment: Option<&str>,
    deadline: Duration,
) -> Result<Vec<Arc<Verdict>>, ApiError> {
    let futures = images
        .iter()
        .map(|i| state.verdicts.verdict(i, policy, environment, deadline));
    join_all(futures)
        .await
        .into_iter()
        .map(|r| r.map_err(ApiError::from))
        .collect()
}

/// Compact decisions for several images (admission, Gatekeeper, Kyverno), concurrently.
async fn decisions_for(
    state: &AppState,
    images: &[String],
    policy: Option<&str>,
    environment: Option<&str>,
    deadline: Duration,
) -> Result<Vec<Arc<Decision>>, ApiError> {
    let futures = images
        .iter()
        .map(|i| state.verdicts.decision(i, policy, environment, deadline));
    join_all(futures)
        .await
        .into_iter()
        .map(|r| r.map_err(ApiError::from))
        .collect()
}

/// `POST /v1/verify`.
pub(super) async fn verify(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<VerifyResponse>, ApiError> {
    let req: VerifyRequest = json(&body_bytes(body)?, "verify request")?;
    let images = req.all_images();
    if images.is_empty() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "no-images",
            "give image or images".into(),
        ));
    }
    check_count(images.len(), &state.config)?;
    let deadline = ServiceConfig::ms(state.config.deadlines.verify_ms);
    let verdicts = verdicts_for(
        &state,
        &images,
        req.policy.as_deref(),
        req.environment
            .as_deref()
            .or(state.config.environment.as_deref()),
        deadline,
    )
    .await?;
    Ok(axum::Json(VerifyResponse {
        admit: verdicts.iter().all(|v| v.admit),
        verdicts,
    }))
}

/// `POST /v1/promotion`.
pub(super) async fn promotion(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<crate::gitops::report::CheckReport>, ApiError> {
    use super::promotion::{PromotionError, PromotionRequest, check};
    let req: PromotionRequest = json(&body_bytes(body)?, "promotion request")?;
    #[allow(clippy::disallowed_methods)] // one clock read per request (freeze expiry)
    let now = jiff::Timestamp::now();
    check(&state, req, now)
        .await
        .map(axum::Json)
        .map_err(|e| match e {
            PromotionError::NotConfigured => {
                ApiError(StatusCode::NOT_IMPLEMENTED, "not-configured", e.to_string())
            }
            PromotionError::BadRequest(m) => ApiError(StatusCode::BAD_REQUEST, "bad-request", m),
        })
}

/// `POST /v1/kyverno`.
pub(super) async fn kyverno(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<KyvernoResponse>, ApiError> {
    let req: VerifyRequest = json(&body_bytes(body)?, "kyverno request")?;
    let images = req.all_images();
    check_count(images.len(), &state.config)?;
    let deadline = ServiceConfig::ms(state.config.deadlines.verify_ms);
    let verdicts = decisions_for(
        &state,
        &images,
        req.policy.as_deref(),
        req.environment
            .as_deref()
            .or(state.config.environment.as_deref()),
        deadline,
    )
    .await?;
    let summaries: Vec<ImageSummary> = images
        .iter()
        .zip(&verdicts)
        .map(|(i, v)| ImageSummary::of(i, v))
        .collect();
    let message = summaries
        .iter()
        .filter(|s| !s.admit)
        .map(|s| format!("{}: {}", s.image, s.reasons.join("; ")))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(axum::Json(KyvernoResponse {
        allowed: summaries.iter().all(|s| s.admit),
        message,
        verdicts: summaries,
    }))
}

/// `POST /v1/gatekeeper`.
pub(super) async fn gatekeeper(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<ProviderResponse>, ApiError> {
    let req: ProviderRequest = json(&body_bytes(body)?, "ProviderRequest")?;
    if req.api_version != "externaldata.gatekeeper.sh/v1beta1"
        && req.api_version != "externaldata.gatekeeper.sh/v1alpha1"
        || req.kind != "ProviderRequest"
    {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "bad-kind",
            format!(
                "expected externaldata.gatekeeper.sh/v1beta1 ProviderRequest, got {} {}",
                req.api_version, req.kind
            ),
        ));
    }
    check_count(req.request.keys.len(), &state.config)?;
    let deadline = ServiceConfig::ms(state.config.deadlines.gatekeeper_ms);
    let mut items = Vec::new();
    let results = join_all(req.request.keys.iter().map(|k| {
        state
            .verdicts
            .decision(k, None, state.config.environment.as_deref(), deadline)
    }))
    .await;
    for (key, result) in req.request.keys.iter().zip(results) {
        items.push(match result {
            Ok(v) => {
                let s = ImageSummary::of(key, &v);
                ProviderItem {
                    key: key.clone(),
                    error: if v.decision == VerdictDecision::Error { s.reasons.join("; ") } else { String::new() },
                    value: serde_json::json!({"decision": s.decision, "admit": s.admit, "reasons": s.reasons, "digest": v.digest_string()}),
                }
            }
            Err(e) => ProviderItem {
                key: key.clone(),
                value: serde_json::Value::Null,
                error: e.to_string(),
            },
        });
    }
    Ok(axum::Json(ProviderResponse {
        api_version: "externaldata.gatekeeper.sh/v1beta1",
        kind: "ProviderResponse",
        response: ProviderResponseBody {
            idempotent: true,
            items,
            system_error: String::new(),
        },
    }))
}

/// `POST /v1/admission`: a Kubernetes validating webhook.
pub(super) async fn admission(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<AdmissionReview<DynamicObject>>, ApiError> {
    let _ = headers;
    let bytes = body_bytes(body)?;
    let review: AdmissionReview<DynamicObject> = json(&bytes, "AdmissionReview")?;
    if review.types.api_version != "admission.k8s.io/v1" || review.types.kind != "AdmissionReview" {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "bad-kind",
            format!(
                "expected admission.k8s.io/v1 AdmissionReview, got {} {}",
                review.types.api_version, review.types.kind
            ),
        ));
    }
    let req: AdmissionRequest<DynamicObject> = review.try_into().map_err(|_| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "no-request",
            "AdmissionReview has no request".into(),
        )
    })?;
    if req.uid.is_empty() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "no-uid",
            "AdmissionReview request has no uid".into(),
        ));
    }
    let mut response = AdmissionResponse::from(&req);
    let Some(object) = &req.object else {
        // DELETE and friends carry no object: nothing to judge.
        return Ok(axum::Json(response.into_review()));
    };
    let images = match pod_images(&req.kind.kind, &object.data) {
        Ok(i) => i,
        // Not a workload (ConfigMap, Service, …): nothing to judge.
        Err(PodImagesError::NotAWorkload(_)) => return Ok(axum::Json(response.into_review())),
        Err(e @ PodImagesError::Malformed(_)) => {
            return Ok(axum::Json(
                response.deny(format!("custody: {e}")).into_review(),
            ));
        }
    };
    check_count(images.len(), &state.config)?;
    let environment = state.config.environment.as_deref();
    let deadline = ServiceConfig::ms(state.config.deadlines.admission_ms);
    let verdicts = decisions_for(&state, &images, None, environment, deadline).await?;
    let mut denied = Vec::new();
    let mut warnings = Vec::new();
    if !req.dry_run {
        #[allow(clippy::disallowed_methods)] // one clock read per admission (event time)
        let now = jiff::Timestamp::now().to_string();
        let workload = format!(
            "{}/{}",
            req.kind.kind,
            object.metadata.name.as_deref().unwrap_or(&req.name)
        );
        let cluster = state.config.admission_cluster();
        for (image, v) in images.iter().zip(&verdicts) {
            super::lineage::record_admission(
                &state,
                crate::store::AdmissionEvent {
                    time: now.clone(),
                    cluster: cluster.to_owned(),
                    namespace: req.namespace.clone().unwrap_or_default(),
                    workload: workload.clone(),
                    image: image
                        .parse::<crate::reference::ImageRef>()
                        .map(|r| r.name())
                        .unwrap_or_else(|_| image.clone()),
                    digest: v.digest_string(),
                    outcome: if v.admit { "allow" } else { "deny" }.into(),
                },
            );
        }
    }
    for (image, v) in images.iter().zip(&verdicts) {
        let s = ImageSummary::of(image, v);
        let line = format!("{image}: {} ({})", decision_word(v), s.reasons.join("; "));
        if !v.admit {
            denied.push(line);
        } else if v.decision != VerdictDecision::Allow {
            warnings.push(format!("custody (warn mode) would deny {line}"));
        }
    }
    if !denied.is_empty() {
        response = response.deny(format!(
            "custody: {} of {} image(s) not admitted: {}",
            denied.len(),
            images.len(),
            denied.join(" | ")
        ));
    }
    if !warnings.is_empty() {
        response.warnings = Some(warnings);
    }
    if req.dry_run {
        tracing::info!(uid = %req.uid, "dry-run admission: answered, nothing recorded");
    }
    Ok(axum::Json(response.into_review()))
}

fn decision_word(v: &Decision) -> &'static str {
    match v.decision {
        VerdictDecision::Allow => "allow",
        VerdictDecision::Deny => "deny",
        VerdictDecision::Error => "error (could not verify)",
    }
}

/// `GET /healthz`.
pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 200 once policies and trust roots are loaded.
pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    let set = state.verdicts.policies();
    if state.ready.load(std::sync::atomic::Ordering::SeqCst) && !set.policies.is_empty() {
        (
            StatusCode::OK,
            format!("ready: {} policies\n", set.policies.len()),
        )
            .into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

/// `GET /metrics`.
pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// `GET /openapi.json`.
pub(super) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// 404 in the API's error format.
pub(super) async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "not-found", "no such route".into())
}

/// The API's authentication: whatever [`super::auth::api_credentials`] accepts, else 401 with
/// `WWW-Authenticate`.
pub(super) async fn authenticate(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if super::auth::api_credentials(
        &state,
        request.uri().path(),
        request.headers(),
        request.extensions(),
    ) {
        return next.run(request).await;
    }
    let mut r = ApiError(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        super::auth::refusal(request.headers()).into(),
    )
    .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"custody\""),
    );
    r
}

/// Concurrency bound (503 + Retry-After when full, never an unbounded queue) and metrics.
pub(super) async fn observe(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let route = route_label(request.uri().path());
    let started = Instant::now();
    let response = if route == "/healthz" || route == "/readyz" {
        next.run(request).await
    } else {
        match state.permits.clone().try_acquire_owned() {
            Ok(_permit) => next.run(request).await,
            Err(_) => ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "too many requests in flight; retry".into(),
            )
            .into_response(),
        }
    };
    state
        .metrics
        .request(route, response.status().as_u16(), started.elapsed());
    response
}

/// The `route` label of a request: the route itself, or its family for routes with path
/// parameters (`/v1/lineage`, `/ui`), else `other` — a closed set, so callers cannot grow the
/// metrics with made-up paths.
pub(super) fn route_label(path: &str) -> &'static str {
    match path {
        "/v1/verify" => "/v1/verify",
        "/v1/admission" => "/v1/admission",
        "/v1/gatekeeper" => "/v1/gatekeeper",
        "/v1/kyverno" => "/v1/kyverno",
        "/v1/promotion" => "/v1/promotion",
        "/v1/attest" => "/v1/attest",
        "/v1/events" => "/v1/events",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        "/openapi.json" => "/openapi.json",
        p if p.starts_with("/v1/lineage/") => "/v1/lineage",
        p if p == "/ui" || p.starts_with("/ui/") => "/ui",
        _ => "other",
    }
}
