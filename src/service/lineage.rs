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

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad-query", e.body_text()))
}

/// A single record as JSON, or 404 `not-found` saying what was looked for.
fn found<T>(
    r: Result<Option<T>, crate::store::StoreError>,
    missing: impl FnOnce() -> String,
) -> Result<axum::Json<T>, ApiError> {
    r.map_err(store_error)?
        .map(axum::Json)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not-found", missing()))
}

/// A page of results as JSON.
fn paged<T>(
    r: Result<Paged<T>, crate::store::StoreError>,
) -> Result<axum::Json<Paged<T>>, ApiError> {
    r.map(axum::Json).map_err(store_error)
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

fn bad_query(e: QueryError) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad-query", e.to_string())
}

/// Longest time a query takes (bytes; RFC 3339 with a fraction and an offset fits well).
pub(crate) const MAX_TIME_BYTES: usize = 64;

/// Why the inputs of an environment or signer query are refused before the store is asked.
/// REST (`GET /v1/lineage/environment/…`, `GET /v1/lineage/signer`) and the web pages
/// (`/ui/environment`, `/ui/signer`) check with the same [`environment_query`] and
/// [`signer_query`], so both refuse the same values in the same words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum QueryError {
    /// Occurs when a required parameter is not given (`what` says which and its form).
    #[error("give {what}")]
    Missing {
        /// The parameter and its form, e.g. `?at=<RFC 3339 time>`.
        what: &'static str,
    },
    /// Occurs when a value is empty.
    #[error("the {field} must not be empty")]
    Empty {
        /// Which value.
        field: &'static str,
    },
    /// Occurs when a value is longer than the store keeps ([`crate::store::MAX_FIELD_BYTES`],
    /// or [`MAX_TIME_BYTES`] for a time).
    #[error("the {field} is {found} bytes, over the limit of {limit}")]
    TooLong {
        /// Which value.
        field: &'static str,
        /// Its length in bytes.
        found: usize,
        /// The bound.
        limit: usize,
    },
    /// Occurs when a value holds a NUL character (PostgreSQL refuses it in text).
    #[error("the {field} must not contain NUL characters")]
    Nul {
        /// Which value.
        field: &'static str,
    },
    /// Occurs when a time is not RFC 3339.
    #[error("{found:?} is not a time: {reason} (expected RFC 3339, e.g. 2026-11-23T10:00:00Z)")]
    Time {
        /// The value (shortened to 80 characters).
        found: String,
        /// Why it did not parse.
        reason: String,
    },
}

/// Checks the inputs of "what ran in `environment` at `at`" and returns them as given: the
/// environment a non-empty name of at most [`crate::store::MAX_FIELD_BYTES`] without NUL, the
/// time (required) RFC 3339 of at most [`MAX_TIME_BYTES`]. The store normalises the time and
/// still checks everything itself (years 0001–9999, the page).
///
/// # Errors
/// The first [`QueryError`] found, environment first.
pub(crate) fn environment_query<'a>(
    environment: &'a str,
    at: Option<&'a str>,
) -> Result<(&'a str, &'a str), QueryError> {
    text_value("environment", environment)?;
    let at = at.ok_or(QueryError::Missing {
        what: "?at=<RFC 3339 time>",
    })?;
    if at.is_empty() {
        return Err(QueryError::Empty { field: "time" });
    }
    if at.len() > MAX_TIME_BYTES {
        return Err(QueryError::TooLong {
            field: "time",
            found: at.len(),
            limit: MAX_TIME_BYTES,
        });
    }
    at.parse::<jiff::Timestamp>()
        .map_err(|e| QueryError::Time {
            found: at.chars().take(80).collect(),
            reason: e.to_string(),
        })?;
    Ok((environment, at))
}

/// Checks the signer identity of "everything `id` signed that was admitted" (required, non-empty,
/// at most [`crate::store::MAX_FIELD_BYTES`], no NUL) and returns it as given: an identity is
/// matched exactly, so it is not trimmed or folded.
///
/// # Errors
/// A [`QueryError`].
pub(crate) fn signer_query(id: Option<&str>) -> Result<&str, QueryError> {
    let id = id.ok_or(QueryError::Missing {
        what: "?id=<signer identity>",
    })?;
    text_value("signer identity", id)?;
    Ok(id)
}

/// Checks a text value the store keeps: non-empty, at most [`crate::store::MAX_FIELD_BYTES`],
/// no NUL.
///
/// # Errors
/// A [`QueryError`] naming `field`.
pub(crate) fn text_value(field: &'static str, value: &str) -> Result<(), QueryError> {
    if value.is_empty() {
        return Err(QueryError::Empty { field });
    }
    if value.len() > crate::store::MAX_FIELD_BYTES {
        return Err(QueryError::TooLong {
            field,
            found: value.len(),
            limit: crate::store::MAX_FIELD_BYTES,
        });
    }
    if value.contains('\0') {
        return Err(QueryError::Nul { field });
    }
    Ok(())
}

/// The query of `GET /v1/lineage/commit/{commit}`: the page alone. Each route takes only its own
/// parameters (unknown ones are refused with 400 `bad-query`, not ignored).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// The query of `GET /v1/lineage/environment/{environment}`: the time and the page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentQuery {
    at: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// The query of `GET /v1/lineage/signer`: the identity and the page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerQuery {
    id: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// The page asked for (the store checks the limit, 1 to [`crate::store::MAX_PAGE_LIMIT`], and
/// the cursor).
fn page(limit: Option<u32>, cursor: Option<String>) -> Page {
    Page {
        limit: limit.unwrap_or(crate::store::DEFAULT_PAGE_LIMIT),
        cursor,
    }
}

/// `GET /v1/lineage/digest/{digest}`.
pub(super) async fn by_digest(
    State(state): State<AppState>,
    digest: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<Lineage>, ApiError> {
    let digest = path(digest)?;
    found(store(&state)?.lineage(&digest).await, || {
        format!("nothing recorded for {digest}")
    })
}

/// `GET /v1/lineage/commit/{commit}`.
pub(super) async fn by_commit(
    State(state): State<AppState>,
    commit: Result<Path<String>, PathRejection>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<axum::Json<Paged<Built>>, ApiError> {
    let (commit, q) = (path(commit)?, query(q)?);
    paged(
        store(&state)?
            .by_commit(&commit, &page(q.limit, q.cursor))
            .await,
    )
}

/// `GET /v1/lineage/environment/{environment}?at=TIME`.
pub(super) async fn at(
    State(state): State<AppState>,
    environment: Result<Path<String>, PathRejection>,
    q: Result<Query<EnvironmentQuery>, QueryRejection>,
) -> Result<axum::Json<Paged<Deployed>>, ApiError> {
    let (environment, q) = (path(environment)?, query(q)?);
    let (environment, at) = environment_query(&environment, q.at.as_deref()).map_err(bad_query)?;
    paged(
        store(&state)?
            .at(environment, at, &page(q.limit, q.cursor))
            .await,
    )
}

/// `GET /v1/lineage/signer?id=IDENTITY`.
pub(super) async fn by_signer(
    State(state): State<AppState>,
    q: Result<Query<SignerQuery>, QueryRejection>,
) -> Result<axum::Json<Paged<Signed>>, ApiError> {
    let q = query(q)?;
    let id = signer_query(q.id.as_deref()).map_err(bad_query)?;
    paged(store(&state)?.by_signer(id, &page(q.limit, q.cursor)).await)
}

/// `GET /v1/lineage/verdict/{id}`.
pub(super) async fn verdict(
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<axum::Json<VerdictRecord>, ApiError> {
    let id = path(id)?;
    found(store(&state)?.verdict(id).await, || {
        format!("no verdict {id}")
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
            format!(
                "give 1 to {MAX_EVENTS_PER_REQUEST} events; this request has {}",
                req.events.len()
            ),
        ));
    }
    let n = req.events.len();
    writer.submit_acked(req.events).await.map_err(store_error)?;
    Ok(axum::Json(serde_json::json!({ "recorded": n })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MAX_FIELD_BYTES;

    #[test]
    fn environment_queries_are_checked_at_their_bounds() {
        let at = "2026-11-05T00:00:00Z";
        assert_eq!(
            environment_query("production", Some(at)),
            Ok(("production", at))
        );
        let longest = "e".repeat(MAX_FIELD_BYTES);
        assert!(environment_query(&longest, Some(at)).is_ok());
        let over = "e".repeat(MAX_FIELD_BYTES + 1);
        assert_eq!(
            environment_query(&over, Some(at)),
            Err(QueryError::TooLong {
                field: "environment",
                found: MAX_FIELD_BYTES + 1,
                limit: MAX_FIELD_BYTES
            })
        );
        assert_eq!(
            environment_query("", Some(at)),
            Err(QueryError::Empty {
                field: "environment"
            })
        );
        assert_eq!(
            environment_query("a\0b", Some(at)),
            Err(QueryError::Nul {
                field: "environment"
            })
        );
        assert!(matches!(
            environment_query("production", None),
            Err(QueryError::Missing { .. })
        ));
        let e = environment_query("production", Some("yesterday")).unwrap_err();
        assert!(matches!(e, QueryError::Time { .. }));
        assert!(e.to_string().starts_with("\"yesterday\" is not a time"));
        assert!(e.to_string().contains("RFC 3339"));
        // A time at the length bound parses or not on its merits; one byte over is refused.
        let padded = format!("2026-11-05T00:00:00.{}Z", "0".repeat(MAX_TIME_BYTES - 21));
        assert_eq!(padded.len(), MAX_TIME_BYTES);
        assert!(!matches!(
            environment_query("production", Some(&padded)),
            Err(QueryError::TooLong { .. })
        ));
        let over = format!("{padded}0");
        assert!(matches!(
            environment_query("production", Some(&over)),
            Err(QueryError::TooLong { field: "time", .. })
        ));
    }

    #[test]
    fn signer_queries_are_taken_exactly_as_given() {
        let id = " https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";
        assert_eq!(signer_query(Some(id)), Ok(id));
        assert!(signer_query(Some(&"s".repeat(MAX_FIELD_BYTES))).is_ok());
        assert!(matches!(
            signer_query(Some(&"s".repeat(MAX_FIELD_BYTES + 1))),
            Err(QueryError::TooLong { .. })
        ));
        assert!(matches!(
            signer_query(Some("")),
            Err(QueryError::Empty { .. })
        ));
        assert_eq!(
            signer_query(None).unwrap_err().to_string(),
            "give ?id=<signer identity>"
        );
    }
}
