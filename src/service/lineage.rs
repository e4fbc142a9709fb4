//! The lineage side of the service: recording verdicts and admissions into the store (batched,
//! never blocking an answer), accepting events from CI (`POST /v1/events`, acknowledged only
//! once committed), and the queries (`GET /v1/lineage/…`).

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::AppState;
use super::handlers::ApiError;
use crate::reference::ImageRef;
use crate::store::{
    AdmissionEvent, Built, Deployed, Event, Lineage, Page, Paged, Signed, Store, VerdictEvent,
    VerdictRecord,
};
use crate::verdict::{Verdict, VerdictDecision};

/// Most events in one `POST /v1/events`.
pub const MAX_EVENTS_PER_REQUEST: usize = 1000;

/// The lineage record of a verdict: its decision and the facts behind it.
pub fn verdict_event(v: &Verdict) -> Option<VerdictEvent> {
    let digest = v.digest.as_ref()?.to_string();
    let image = v
        .reference
        .parse::<ImageRef>()
        .map(|r| r.name())
        .unwrap_or_else(|_| v.reference.clone());
    let accepted: Vec<_> = v
        .evidence
        .iter()
        .filter(|e| e.verified == Some(true) && !e.accepted_by.is_empty())
        .collect();
    let first = |f: &dyn Fn(&crate::verdict::VerdictEvidence) -> Option<String>| {
        accepted.iter().find_map(|e| f(e))
    };
    Some(VerdictEvent {
        time: v.created_at.clone(),
        image,
        digest,
        environment: v.environment.clone(),
        policy: v.policy.name.clone(),
        policy_hash: v.policy.content_hash.to_string(),
        trust_root_hash: v.trust_root.content_hash.to_string(),
        decision: decision_word(v.decision).into(),
        reasons: v
            .reasons
            .iter()
            .map(ToString::to_string)
            .chain(v.error.clone())
            .collect(),
        signer: first(&|e| e.signer.clone()),
        issuer: first(&|e| e.issuer.clone()),
        source_repository: first(&|e| e.source_repository.clone()),
        source_ref: first(&|e| e.source_ref.clone()),
        source_commit: first(&|e| e.source_commit.clone()),
        workflow: first(&|e| e.workflow.clone()),
        run: first(&|e| e.run.clone()),
        builder: first(&|e| e.builder.clone()),
        sbom_digest: v
            .evidence
            .iter()
            .find(|e| e.role == crate::evidence::Role::Sbom)
            .map(|e| e.digest.to_string()),
        log_indexes: accepted.iter().filter_map(|e| e.log_index).collect(),
    })
}

fn decision_word(d: VerdictDecision) -> &'static str {
    match d {
        VerdictDecision::Allow => "allow",
        VerdictDecision::Deny => "deny",
        VerdictDecision::Error => "error",
    }
}

/// Records an admission decision (non-blocking; a full queue is logged and counted).
pub fn record_admission(state: &AppState, event: AdmissionEvent) {
    if let Some(w) = &state.writer
        && let Err(e) = w.submit(Event::Admission(event))
    {
        tracing::error!(error = %e, "lineage: admission event dropped (store queue full or store down)");
        state.metrics.lineage_dropped();
    }
}

fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    p.map(|Path(v)| v)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad-query", e.body_text()))
}

fn query(q: Result<Query<PageQuery>, QueryRejection>) -> Result<PageQuery, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad-query", e.body_text()))
}

fn store(state: &AppState) -> Result<&Store, ApiError> {
    state.store.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "not-configured",
            "lineage needs `store:` (a SQLite path or PostgreSQL URL) in the service configuration"
                .into(),
        )
    })
}

fn store_error(e: crate::store::StoreError) -> ApiError {
    if e.is_caller_error() {
        ApiError::new(StatusCode::BAD_REQUEST, "bad-query", e.to_string())
    } else {
        tracing::error!(error = %e, "lineage store failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store-unavailable",
            e.to_string(),
        )
    }
}

/// Pagination parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    limit: Option<u32>,
    cursor: Option<String>,
    at: Option<String>,
    id: Option<String>,
}

impl PageQuery {
    fn page(&self) -> Page {
        Page {
            limit: self.limit.unwrap_or(100),
            cursor: self.cursor.clone(),
        }
    }
}

/// `GET /v1/lineage/digest/{digest}`.
pub(super) async fn by_digest(
    State(state): State<AppState>,
    digest: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<Lineage>, ApiError> {
    let digest = path(digest)?;
    store(&state)?
        .lineage(&digest)
        .await
        .map_err(store_error)?
        .map(axum::Json)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("nothing recorded for {digest}"),
            )
        })
}

/// `GET /v1/lineage/commit/{commit}`.
pub(super) async fn by_commit(
    State(state): State<AppState>,
    commit: Result<Path<String>, PathRejection>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<axum::Json<Paged<Built>>, ApiError> {
    let (commit, q) = (path(commit)?, query(q)?);
    store(&state)?
        .by_commit(&commit, &q.page())
        .await
        .map(axum::Json)
        .map_err(store_error)
}

/// `GET /v1/lineage/environment/{environment}?at=TIME`.
pub(super) async fn at(
    State(state): State<AppState>,
    environment: Result<Path<String>, PathRejection>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<axum::Json<Paged<Deployed>>, ApiError> {
    let (environment, q) = (path(environment)?, query(q)?);
    let Some(at) = q.at.clone() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-query",
            "give ?at=<RFC 3339 time>".into(),
        ));
    };
    store(&state)?
        .at(&environment, &at, &q.page())
        .await
        .map(axum::Json)
        .map_err(store_error)
}

/// `GET /v1/lineage/signer?id=IDENTITY`.
pub(super) async fn by_signer(
    State(state): State<AppState>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<axum::Json<Paged<Signed>>, ApiError> {
    let q = query(q)?;
    let Some(id) = q.id.clone() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-query",
            "give ?id=<signer identity>".into(),
        ));
    };
    store(&state)?
        .by_signer(&id, &q.page())
        .await
        .map(axum::Json)
        .map_err(store_error)
}

/// `GET /v1/lineage/verdict/{id}`.
pub(super) async fn verdict(
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<axum::Json<VerdictRecord>, ApiError> {
    let id = path(id)?;
    store(&state)?
        .verdict(id)
        .await
        .map_err(store_error)?
        .map(axum::Json)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("no verdict {id}"),
            )
        })
}

/// The body of `POST /v1/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsRequest {
    events: Vec<Event>,
}

/// `POST /v1/events`: records events (promotions from CI, verdicts or admissions from other
/// tools) and answers only once they are committed: an acknowledged event is never lost.
pub(super) async fn events(
    State(state): State<AppState>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    store(&state)?;
    let Some(writer) = &state.writer else {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "not-configured",
            "no store writer".into(),
        ));
    };
    let bytes = super::handlers::body_bytes(body)?;
    let req: EventsRequest = super::handlers::json(&bytes, "events request")?;
    if req.events.is_empty() || req.events.len() > MAX_EVENTS_PER_REQUEST {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            format!("give 1 to {MAX_EVENTS_PER_REQUEST} events"),
        ));
    }
    let n = req.events.len();
    writer.submit_acked(req.events).await.map_err(store_error)?;
    Ok(axum::Json(serde_json::json!({ "recorded": n })))
}
