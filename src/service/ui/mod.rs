//! The lineage pages of `custody serve` at `/ui`: server-rendered HTML (askama templates under
//! `templates/ui/`, compiled in; no JavaScript, no external assets), read-only, over the lineage
//! store.
//!
//! | route | page |
//! |---|---|
//! | `GET /ui` | the search box |
//! | `GET /ui/search?q=` | a digest (or `image@digest`) goes straight to its lineage; a commit lists what was built from it; anything else lists the store's search hits |
//! | `GET /ui/digest/{digest}` | the lineage: a chain diagram (source → build → artifact → signatures → environments), a timeline of environments, verdicts, builds, evidence, promotions, admissions |
//! | `GET /ui/verdict/{id}` | one verdict: every reason, the policy and its hash, the facts |
//! | `GET /ui/environment?env=&at=` | what ran in an environment at a time (default now), paged ([`queries`]) |
//! | `GET /ui/signer?id=` | everything a signer identity signed that was admitted, paged ([`queries`]) |
//! | `GET`/`POST /ui/login`, `POST /ui/logout` | browser sign-in with a service token |
//!
//! # Authentication
//!
//! A browser cannot attach a bearer token to a link, so a person signs in once at `/ui/login`
//! with one of the service's tokens (`auth.tokensFile`) and gets a session cookie (see
//! [`session`]: HttpOnly, `SameSite=Strict`, `Path=/ui`, `Secure` when the service terminates TLS,
//! 8 hours, HMAC-bound to the token and not usable as one). Every page also accepts what the API
//! accepts — a bearer token, a verified client certificate, `auth.insecureAllowAnonymous`, or the
//! exact path in `auth.anonymousRoutes` — so scripts and mutual-TLS browsers need no sign-in.
//! Without any of these a page answers 401 with the sign-in form.
//!
//! The router from [`routes`] authenticates each page itself (the [`Viewer`] extractor), so it is
//! merged **beside** the API's authenticated routes, not under their bearer-token layer (which
//! would refuse the cookie and the sign-in form).
//!
//! # Escaping and headers
//!
//! Digests, commits, image names, signer identities and reasons come from registries, CI and
//! callers: every value goes through askama's HTML escaping (and `urlencode` inside links), and a
//! digest in a URL is parsed ([`Digest`]) before use. Every answer carries
//! `Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; img-src data:;
//! form-action 'self'; frame-ancestors 'none'; base-uri 'none'`, `X-Content-Type-Options: nosniff`,
//! `Referrer-Policy: no-referrer` and `Cache-Control: no-store`.

mod diagram;
mod queries;
mod session;
mod views;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::AppState;
use crate::reference::Digest;
use crate::store::{Page, Store, StoreError};

/// The `Content-Security-Policy` of every page: no scripts, no external anything, inline styles
/// and `data:` images only, forms post back here only, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Longest search query accepted (characters).
const MAX_QUERY: usize = 256;
/// Results on one search page.
const RESULTS_PER_PAGE: u32 = 50;
/// Largest sign-in form body accepted.
const MAX_LOGIN_BODY: usize = 4096;

/// The pages, for the service to merge beside its authenticated API routes (see the module
/// documentation: each page authenticates itself).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(index))
        .route("/ui/", get(index))
        .route("/ui/search", get(search))
        .route("/ui/digest/{digest}", get(lineage))
        .route("/ui/verdict/{id}", get(verdict))
        .route("/ui/environment", get(queries::environment))
        .route("/ui/signer", get(queries::signer))
        // The sign-in form is read before anyone is authenticated: its body is bounded here,
        // not by the API's `limits.maxBodyBytes`.
        .route(
            "/ui/login",
            get(login_form)
                .post(login)
                .layer(axum::extract::DefaultBodyLimit::max(MAX_LOGIN_BODY)),
        )
        .route("/ui/logout", post(logout))
        .route("/ui/{*rest}", get(unknown_page))
        .layer(axum::middleware::map_response(security_headers))
}

// --- authentication -----------------------------------------------------------------------

/// A person (or script) allowed to read the pages: a valid session cookie, or whatever the API
/// accepts. Rejects with the 401 sign-in page.
#[derive(Debug)]
pub struct Viewer;

impl FromRequestParts<AppState> for Viewer {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, UiError> {
        #[allow(clippy::disallowed_methods)] // one clock read per page (session expiry)
        let now = jiff::Timestamp::now().as_second();
        if authenticated(parts, state, now) {
            Ok(Viewer)
        } else {
            Err(UiError::Unauthenticated)
        }
    }
}

/// What the API accepts (the one function both use, [`super::auth::api_credentials`]), plus the
/// session cookie.
fn authenticated(parts: &Parts, state: &AppState, now: i64) -> bool {
    if super::auth::api_credentials(state, parts.uri.path(), &parts.headers, &parts.extensions) {
        return true;
    }
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| session::cookie(v, session::COOKIE))
        .any(|v| session::verify(v, &state.tokens, now))
}

/// `GET /ui/login`.
async fn login_form(State(state): State<AppState>) -> Response {
    render(StatusCode::OK, &login_page(&state, None))
}

/// `POST /ui/login` (`token=…`, form-encoded): a session cookie and a redirect to `/ui`, or the
/// form again with 401.
async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if cross_site(&headers) {
        return UiError::Forbidden("sign-in from another site is refused".into()).into_response();
    }
    let body = match body {
        Ok(b) if b.len() <= MAX_LOGIN_BODY => b,
        Ok(b) => {
            return UiError::BadRequest(format!(
                "the sign-in form is {} bytes, over the limit of {MAX_LOGIN_BODY}",
                b.len()
            ))
            .into_response();
        }
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return UiError::BadRequest(format!(
                "the sign-in form is over the limit of {MAX_LOGIN_BODY} bytes"
            ))
            .into_response();
        }
        Err(e) => {
            return UiError::BadRequest(format!(
                "the sign-in form could not be read: {}",
                e.body_text()
            ))
            .into_response();
        }
    };
    let token = session::form_field(&body, "token").unwrap_or_default();
    if token.is_empty() || !super::auth::token_accepted(&token, &state.tokens) {
        return render(
            StatusCode::UNAUTHORIZED,
            &login_page(&state, Some("That token is not accepted.")),
        );
    }
    #[allow(clippy::disallowed_methods)] // the session's expiry
    let now = jiff::Timestamp::now().as_second();
    let value = session::mint(&token, now + session::LIFETIME_SECS);
    let cookie = format!(
        "{}={value}; Path=/ui; Max-Age={}; HttpOnly; SameSite=Strict{}",
        session::COOKIE,
        session::LIFETIME_SECS,
        if state.config.tls.is_some() {
            "; Secure"
        } else {
            ""
        }
    );
    see_other("/ui", Some(cookie))
}

/// `POST /ui/logout`: clears the session cookie.
async fn logout(headers: HeaderMap) -> Response {
    if cross_site(&headers) {
        return UiError::Forbidden("sign-out from another site is refused".into()).into_response();
    }
    let cookie = format!(
        "{}=; Path=/ui; Max-Age=0; HttpOnly; SameSite=Strict",
        session::COOKIE
    );
    see_other("/ui/login", Some(cookie))
}

/// A form posted from another site (the browser says so in `Sec-Fetch-Site`).
fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site" || v.as_bytes() == b"same-site")
}

fn login_page(state: &AppState, problem: Option<&str>) -> LoginPage {
    LoginPage {
        nav: false,
        query: String::new(),
        version: crate::VERSION,
        tokens: !state.tokens.is_empty(),
        hours: session::LIFETIME_SECS / 3600,
        problem: problem.map(str::to_owned),
    }
}

// --- pages ---------------------------------------------------------------------------------

/// `GET /ui`.
async fn index(_: Viewer, State(state): State<AppState>) -> Response {
    render(
        StatusCode::OK,
        &IndexPage {
            nav: true,
            query: String::new(),
            version: crate::VERSION,
            store: state.store.is_some(),
        },
    )
}

/// Parameters of `GET /ui/search`.
#[derive(Debug, Deserialize)]
struct SearchParams {
    q: Option<String>,
    after: Option<String>,
}

/// `GET /ui/search?q=`.
async fn search(
    _: Viewer,
    State(state): State<AppState>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Response, UiError> {
    let params = query_params(params)?;
    let query = params.q.unwrap_or_default().trim().to_owned();
    if query.is_empty() {
        return Ok(see_other("/ui", None));
    }
    if query.chars().count() > MAX_QUERY {
        return Err(UiError::BadRequest(format!(
            "a search is at most {MAX_QUERY} characters"
        )));
    }
    if let Some(digest) = as_digest(&query) {
        // A parsed digest is `algorithm:lowercase-hex`: safe in a Location header as it is.
        return Ok(see_other(&format!("/ui/digest/{digest}"), None));
    }
    let store = store(&state)?;
    let mut page = SearchPage {
        nav: true,
        version: crate::VERSION,
        builds: Vec::new(),
        next: None,
        hits: Vec::new(),
        query,
    };
    if is_commit(&page.query) {
        let commit = page.query.to_ascii_lowercase();
        let built = store
            .by_commit(
                &commit,
                &Page {
                    limit: RESULTS_PER_PAGE,
                    cursor: params.after,
                },
            )
            .await
            .map_err(UiError::Store)?;
        page.next = built.next;
        page.builds = built.items.iter().map(views::built).collect();
    }
    if page.builds.is_empty() {
        let hits = store
            .search(&page.query, RESULTS_PER_PAGE)
            .await
            .map_err(UiError::Store)?;
        page.hits = hits.iter().map(views::hit).collect();
    }
    Ok(render(StatusCode::OK, &page))
}

/// `GET /ui/digest/{digest}`.
async fn lineage(
    _: Viewer,
    State(state): State<AppState>,
    digest: Result<Path<String>, PathRejection>,
) -> Result<Response, UiError> {
    let Path(raw) = digest.map_err(|_| UiError::BadRequest("malformed path".into()))?;
    let digest: Digest = raw.parse().map_err(|e| {
        UiError::BadRequest(format!("{:?} is not a digest: {e}", shorten(&raw, 100)))
    })?;
    let digest = digest.to_string();
    let lineage = store(&state)?
        .lineage(&digest)
        .await
        .map_err(UiError::Store)?
        .ok_or_else(|| UiError::NotFound(format!("Nothing is recorded for {digest}.")))?;
    Ok(render(
        StatusCode::OK,
        &LineagePage {
            nav: true,
            query: String::new(),
            version: crate::VERSION,
            l: views::lineage(&lineage),
        },
    ))
}

/// `GET /ui/verdict/{id}`.
async fn verdict(
    _: Viewer,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, UiError> {
    let Path(raw) = id.map_err(|_| UiError::BadRequest("malformed path".into()))?;
    let id: i64 = raw.parse().ok().filter(|id| *id > 0).ok_or_else(|| {
        UiError::BadRequest(format!("{:?} is not a verdict number", shorten(&raw, 40)))
    })?;
    let record = store(&state)?
        .verdict(id)
        .await
        .map_err(UiError::Store)?
        .ok_or_else(|| UiError::NotFound(format!("There is no verdict #{id}.")))?;
    Ok(render(
        StatusCode::OK,
        &VerdictPage {
            nav: true,
            query: String::new(),
            version: crate::VERSION,
            v: views::verdict(&record),
        },
    ))
}

/// Any other `/ui/…` path.
async fn unknown_page(_: Viewer) -> UiError {
    UiError::NotFound("There is no such page.".into())
}

/// The parameters of a page, or 400 saying which one is malformed and how (axum's words).
fn query_params<T>(params: Result<Query<T>, QueryRejection>) -> Result<T, UiError> {
    params
        .map(|Query(p)| p)
        .map_err(|e| UiError::BadRequest(format!("malformed query parameters: {}", e.body_text())))
}

fn store(state: &AppState) -> Result<&Store, UiError> {
    state.store.as_ref().ok_or(UiError::NoStore)
}

/// A digest, or the digest of an `image@digest` reference (upper-case hex accepted).
fn as_digest(query: &str) -> Option<Digest> {
    let candidate = query.rsplit_once('@').map_or(query, |(_, d)| d);
    candidate
        .parse()
        .ok()
        .or_else(|| candidate.to_ascii_lowercase().parse().ok())
}

/// 7 to 64 hex digits: a (possibly abbreviated) git commit, SHA-1 or SHA-256.
fn is_commit(query: &str) -> bool {
    (7..=64).contains(&query.len()) && query.bytes().all(|b| b.is_ascii_hexdigit())
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

// --- responses -----------------------------------------------------------------------------

/// Why a page could not be shown; each becomes an HTML page with its status.
#[derive(Debug)]
#[non_exhaustive]
pub enum UiError {
    /// No valid session, token or client certificate: 401 with the sign-in form.
    Unauthenticated,
    /// A malformed digest, verdict number or search: 400.
    BadRequest(String),
    /// A form posted from another site: 403.
    Forbidden(String),
    /// Nothing recorded under that digest or number: 404.
    NotFound(String),
    /// The service has no lineage store configured: 503.
    NoStore,
    /// The store failed (logged; the page says only that): 503.
    Store(StoreError),
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, heading, message) = match self {
            UiError::Unauthenticated => {
                let mut r = render(
                    StatusCode::UNAUTHORIZED,
                    &LoginPage {
                        nav: false,
                        query: String::new(),
                        version: crate::VERSION,
                        // Whether tokens exist is not told to someone not signed in.
                        tokens: true,
                        hours: session::LIFETIME_SECS / 3600,
                        problem: Some("Sign in to see the lineage pages.".into()),
                    },
                );
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"custody\""),
                );
                return r;
            }
            UiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Bad request", m),
            UiError::Forbidden(m) => (StatusCode::FORBIDDEN, "Forbidden", m),
            UiError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m),
            UiError::NoStore => (
                StatusCode::SERVICE_UNAVAILABLE,
                "No lineage store",
                "This service has no lineage store configured (`store:` in its configuration), so there is no lineage to show.".into(),
            ),
            UiError::Store(e) if e.is_caller_error() => {
                (StatusCode::BAD_REQUEST, "Bad request", e.to_string())
            }
            UiError::Store(e) => {
                tracing::error!(error = %e, "lineage page: store query failed");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Lineage store unavailable",
                    "The lineage store could not answer; try again shortly.".into(),
                )
            }
        };
        render(
            status,
            &ErrorPage {
                nav: status != StatusCode::FORBIDDEN,
                query: String::new(),
                version: crate::VERSION,
                status: status.as_u16(),
                heading,
                message,
            },
        )
    }
}

fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "lineage page: template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

/// 303 See Other to `location` (a path on this service), optionally setting a cookie.
fn see_other(location: &str, cookie: Option<String>) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    if let Some(v) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

// --- templates -----------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "ui/index.html")]
struct IndexPage {
    nav: bool,
    query: String,
    version: &'static str,
    store: bool,
}

#[derive(Template)]
#[template(path = "ui/login.html")]
struct LoginPage {
    nav: bool,
    query: String,
    version: &'static str,
    tokens: bool,
    hours: i64,
    problem: Option<String>,
}

#[derive(Template)]
#[template(path = "ui/error.html")]
struct ErrorPage {
    nav: bool,
    query: String,
    version: &'static str,
    status: u16,
    heading: &'static str,
    message: String,
}

#[derive(Template)]
#[template(path = "ui/search.html")]
struct SearchPage {
    nav: bool,
    query: String,
    version: &'static str,
    builds: Vec<views::BuiltRow>,
    next: Option<String>,
    hits: Vec<views::HitRow>,
}

#[derive(Template)]
#[template(path = "ui/digest.html")]
struct LineagePage {
    nav: bool,
    query: String,
    version: &'static str,
    l: views::LineageView,
}

#[derive(Template)]
#[template(path = "ui/verdict.html")]
struct VerdictPage {
    nav: bool,
    query: String,
    version: &'static str,
    v: views::VerdictView,
}
