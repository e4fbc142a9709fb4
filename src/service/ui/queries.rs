//! The two list views beside search: what ran in an environment at a time (`GET
//! /ui/environment?env=&at=`), and everything a signer identity signed that was admitted (`GET
//! /ui/signer?id=`). Each is a form and, once asked, a page of rows.
//!
//! They answer with the store queries the REST routes use ([`Store::at`], [`Store::by_signer`]),
//! after the same input checks ([`lineage::environment_query`], [`lineage::signer_query`]): the
//! page, the API and the CLI cannot disagree about what ran where. Pages are keyset pages like
//! the API's (`limit`, 1–1000, default [`ROWS_PER_PAGE`]; `after`, the previous page's cursor);
//! the next-page link carries the time as asked, so a view of "now" stays one instant across
//! pages.
//!
//! Refusals are the form again with the problem said and status 400 (an empty or oversized
//! value, a time that is not RFC 3339); the store's own refusals (a cursor from another query,
//! a limit out of range) are the error page with 400.
//!
//! [`Store::at`]: crate::store::Store::at
//! [`Store::by_signer`]: crate::store::Store::by_signer

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::{UiError, Viewer, query_params, render, store, views};
use crate::service::AppState;
use crate::service::lineage::{self, QueryError};
use crate::store::Page;

/// Rows on one page unless `limit` says otherwise.
pub(super) const ROWS_PER_PAGE: u32 = 50;

/// Parameters of `GET /ui/environment`.
#[derive(Debug, Deserialize)]
pub(super) struct EnvironmentParams {
    env: Option<String>,
    at: Option<String>,
    after: Option<String>,
    limit: Option<u32>,
}

/// `GET /ui/environment`: without `env`, the form (the time set to now); with it, what ran there
/// at `at` (now when empty).
pub(super) async fn environment(
    _: Viewer,
    State(state): State<AppState>,
    params: Result<Query<EnvironmentParams>, QueryRejection>,
) -> Result<Response, UiError> {
    let params = query_params(params)?;
    #[allow(clippy::disallowed_methods)] // the default time of the view: now
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let at = params
        .at
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map_or(now, str::to_owned);
    let mut page = EnvironmentPage {
        nav: true,
        query: String::new(),
        version: crate::VERSION,
        environment: params
            .env
            .as_deref()
            .map(str::trim)
            .unwrap_or_default()
            .to_owned(),
        at,
        limit: params.limit,
        asked: params.env.is_some(),
        problem: None,
        rows: Vec::new(),
        next: None,
    };
    if !page.asked {
        return Ok(render(StatusCode::OK, &page));
    }
    if let Err(e) = lineage::environment_query(&page.environment, Some(&page.at)) {
        page.problem = Some(problem(&e));
        return Ok(render(StatusCode::BAD_REQUEST, &page));
    }
    let found = store(&state)?
        .at(
            &page.environment,
            &page.at,
            &Page {
                limit: params.limit.unwrap_or(ROWS_PER_PAGE),
                cursor: params.after,
            },
        )
        .await
        .map_err(UiError::Store)?;
    page.rows = found.items.iter().map(views::deployed).collect();
    page.next = found.next;
    Ok(render(StatusCode::OK, &page))
}

/// Parameters of `GET /ui/signer`.
#[derive(Debug, Deserialize)]
pub(super) struct SignerParams {
    id: Option<String>,
    after: Option<String>,
    limit: Option<u32>,
}

/// `GET /ui/signer`: without `id`, the form; with it, what that identity signed that was
/// admitted.
pub(super) async fn signer(
    _: Viewer,
    State(state): State<AppState>,
    params: Result<Query<SignerParams>, QueryRejection>,
) -> Result<Response, UiError> {
    let params = query_params(params)?;
    let mut page = SignerPage {
        nav: true,
        query: String::new(),
        version: crate::VERSION,
        // An identity is matched exactly; only the blanks a form field picks up are dropped.
        signer: params
            .id
            .as_deref()
            .map(str::trim)
            .unwrap_or_default()
            .to_owned(),
        limit: params.limit,
        asked: params.id.is_some(),
        problem: None,
        rows: Vec::new(),
        next: None,
    };
    if !page.asked {
        return Ok(render(StatusCode::OK, &page));
    }
    if let Err(e) = lineage::signer_query(Some(&page.signer)) {
        page.problem = Some(problem(&e));
        return Ok(render(StatusCode::BAD_REQUEST, &page));
    }
    let found = store(&state)?
        .by_signer(
            &page.signer,
            &Page {
                limit: params.limit.unwrap_or(ROWS_PER_PAGE),
                cursor: params.after,
            },
        )
        .await
        .map_err(UiError::Store)?;
    page.rows = found.items.iter().map(views::signed).collect();
    page.next = found.next;
    Ok(render(StatusCode::OK, &page))
}

/// The sentence the form shows: the shared check's words, with the first letter raised.
fn problem(e: &QueryError) -> String {
    let s = e.to_string();
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => s,
    }
}

#[derive(Template)]
#[template(path = "ui/environment.html")]
struct EnvironmentPage {
    nav: bool,
    query: String,
    version: &'static str,
    /// As asked (trimmed); empty on the bare form.
    environment: String,
    /// The time asked, or now.
    at: String,
    limit: Option<u32>,
    /// `env` was given: show results (or the problem).
    asked: bool,
    problem: Option<String>,
    rows: Vec<views::DeployedRow>,
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "ui/signer.html")]
struct SignerPage {
    nav: bool,
    query: String,
    version: &'static str,
    signer: String,
    limit: Option<u32>,
    asked: bool,
    problem: Option<String>,
    rows: Vec<views::SignedRow>,
    next: Option<String>,
}
