//! The lineage pages (`/ui`) of `custody serve`, end to end: the service in process on loopback
//! with a lineage store filled through `Store::record`, and Debian's chromium driven
//! headless through chromedriver (fantoccini) the way a person uses the pages — sign in, search a
//! digest, read the lineage, open a verdict, search a commit — plus plain HTTP checks of what a
//! browser cannot show (escaping, headers, status codes, refusal without credentials).
//!
//! The scenarios that read the store run on both stores, as `sqlite::NAME` (a database file) and
//! `postgres::NAME` (a fresh schema on `CUSTODY_TEST_POSTGRES`, dropped after): see
//! `common/backends.rs`. Sign-in and sessions do not touch the store and run on SQLite only.
//!
//! Screenshots for review: `<target dir>/ui-screenshots/*-{sqlite,postgres}.png` (with
//! `CARGO_TARGET_DIR` set, under it; else `target/ui-screenshots/`).
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`scripts/browser-deps` installs both):
//! without them the browser test is skipped with a message, and fails when `CI` is set.

// Tests may print and read the clock and the environment; the bans are for the library.
#![allow(clippy::disallowed_macros, clippy::disallowed_methods)]

#[path = "common/backends.rs"]
mod backends;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use backends::{TestStore, each_backend};
use common::registry::{TempDir, free_port};
use custody::reference::Digest;
use custody::service::{ServiceConfig, build_state, router};
use custody::store::{AdmissionEvent, Event, PromotionEvent, Store, VerdictEvent};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const TOKEN: &str = "ui-test-token-0123456789abcdef";
const COMMIT: &str = "5f2c1a7e9b3d4c6a8e0f1b2c3d4e5f6a7b8c9d0e";
const REPOSITORY: &str = "https://github.com/acme/app";
const WORKFLOW: &str = ".github/workflows/release.yml";
const SIGNER: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";
const IMAGE: &str = "ghcr.io/acme/app";
const HOSTILE_IMAGE: &str = "ghcr.io/acme/<script>alert(1)</script>";
const DENY_REASONS: [&str; 3] = [
    "rule production: no SLSA provenance attestation (https://slsa.dev/provenance/v1) verified from the required signer",
    "rule production: source ref refs/heads/feature/x does not match refs/heads/main or refs/tags/v*",
    "rule production: SBOM required (CycloneDX or SPDX) but none is attached",
];
/// The environments the release reached, in order, with the times the timeline shows.
const REACHED: [(&str, &str); 3] = [
    ("dev", "2026-11-02 10:00:00 UTC"),
    ("staging", "2026-11-03 10:00:00 UTC"),
    ("production", "2026-11-04 10:00:00 UTC"),
];

fn digest(seed: &str) -> String {
    Digest::sha256_of(seed.as_bytes()).to_string()
}

/// The release build (dev → staging → production), a rebuild of the same commit, and an image
/// recorded under a hostile name.
struct Fixture {
    release: String,
    rebuild: String,
    hostile: String,
}

impl Fixture {
    fn new() -> Self {
        Self {
            release: digest("acme/app release build"),
            rebuild: digest("acme/app rebuild"),
            hostile: digest("hostile image name"),
        }
    }

    fn verdict(&self, digest: &str, time: &str, env: &str, decision: &str) -> VerdictEvent {
        VerdictEvent {
            time: time.into(),
            image: IMAGE.into(),
            digest: digest.into(),
            environment: Some(env.into()),
            policy: "gitops".into(),
            policy_hash: format!("sha256:{}", "1f".repeat(32)),
            trust_root_hash: format!("sha256:{}", "7a".repeat(32)),
            decision: decision.into(),
            reasons: Vec::new(),
            signer: Some(SIGNER.into()),
            issuer: Some(ISSUER.into()),
            source_repository: Some(REPOSITORY.into()),
            source_ref: Some("refs/heads/main".into()),
            source_commit: Some(COMMIT.into()),
            workflow: Some(WORKFLOW.into()),
            run: Some("https://github.com/acme/app/actions/runs/9876543210/attempts/1".into()),
            builder: Some("https://github.com/actions/runner/github-hosted".into()),
            sbom_digest: Some(self::digest("acme/app sbom")),
            log_indexes: vec![148_227_911, 148_227_912],
        }
    }

    fn promotion(&self, env: &str, time: &str, pr: u32, from: Option<&str>) -> PromotionEvent {
        PromotionEvent {
            time: time.into(),
            repository: "https://github.com/acme/delivery".into(),
            environment: env.into(),
            commit: format!("{pr:0>7}aa0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"),
            pull_request: Some(format!("https://github.com/acme/delivery/pull/{pr}")),
            image: IMAGE.into(),
            from_digest: from.map(str::to_owned),
            to_digest: self.release.clone(),
            kind: "promotion".into(),
        }
    }

    fn events(&self) -> Vec<Event> {
        let old = digest("acme/app previous release");
        let mut deny = self.verdict(&self.release, "2026-11-04T08:30:00Z", "production", "deny");
        deny.policy = "release-only".into();
        deny.reasons = DENY_REASONS.iter().map(|r| (*r).to_owned()).collect();
        let mut rebuild = self.verdict(&self.rebuild, "2026-11-05T09:00:00Z", "dev", "allow");
        rebuild.run = Some("https://github.com/acme/app/actions/runs/9876543299/attempts/1".into());
        let mut hostile = self.verdict(&self.hostile, "2026-11-05T12:00:00Z", "dev", "deny");
        hostile.image = HOSTILE_IMAGE.into();
        hostile.reasons = vec!["<img src=x onerror=alert(2)> is not signed".into()];
        vec![
            Event::Verdict(self.verdict(&self.release, "2026-11-02T09:00:00Z", "dev", "allow")),
            Event::Promotion(self.promotion("dev", "2026-11-02T10:00:00Z", 101, Some(&old))),
            Event::Verdict(self.verdict(&self.release, "2026-11-03T09:00:00Z", "staging", "allow")),
            Event::Promotion(self.promotion("staging", "2026-11-03T10:00:00Z", 102, Some(&old))),
            Event::Verdict(deny),
            Event::Verdict(self.verdict(
                &self.release,
                "2026-11-04T09:00:00Z",
                "production",
                "allow",
            )),
            Event::Promotion(self.promotion("production", "2026-11-04T10:00:00Z", 103, Some(&old))),
            Event::Admission(AdmissionEvent {
                time: "2026-11-04T10:05:00Z".into(),
                cluster: "production".into(),
                namespace: "shop".into(),
                workload: "Deployment/api".into(),
                image: IMAGE.into(),
                digest: Some(self.release.clone()),
                outcome: "allow".into(),
            }),
            Event::Verdict(rebuild),
            Event::Verdict(hostile),
        ]
    }
}

/// The service on a loopback port, with a lineage store (or none).
struct Service {
    base: String,
    _dir: TempDir,
}

/// Starts the service on `store` (filled with the fixture's events), or with no store.
async fn start(store: Option<&TestStore>) -> (Service, Fixture) {
    let dir = TempDir::new("custody-ui");
    std::fs::write(dir.0.join("tokens"), format!("# test\n{TOKEN}\n")).unwrap();
    let mut config = ServiceConfig {
        listen: Some("127.0.0.1:0".into()),
        ..ServiceConfig::default()
    };
    config.auth.tokens_file = Some(dir.0.join("tokens"));
    let mut state = build_state(config).unwrap();
    let fixture = Fixture::new();
    if let Some(store) = store {
        let opened = Store::open(&store.url)
            .await
            .unwrap_or_else(|e| panic!("open the {} store: {e}", store.backend));
        opened.record(&fixture.events()).await.unwrap();
        state.store = Some(opened);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    (Service { base, _dir: dir }, fixture)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

// --- the browser ---------------------------------------------------------------------------

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Whether the browser tools are installed; skips (or, under CI, fails) when not.
fn browser_available() -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "{} missing: run scripts/browser-deps (Debian chromium + chromium-driver)",
        missing.join(" and ")
    );
    assert!(std::env::var_os("CI").is_none(), "CI: {message}");
    eprintln!("skipping the browser test: {message}");
    false
}

/// chromedriver on a free loopback port; killed when dropped.
struct Driver {
    child: Child,
    url: String,
    _profile: TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser() -> (Driver, Client) {
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profile: TempDir::new("custody-ui-chromium"),
    };
    // chromedriver answers once it listens.
    let mut ready = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        ready,
        "chromedriver did not listen on port {port} within 10 s"
    );
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--hide-scrollbars", "--window-size=1360,1000",
                format!("--user-data-dir={}", driver._profile.0.display()),
            ],
        },
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a chromium session through chromedriver");
    (driver, client)
}

fn screenshot_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target dir>/tmp`.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves the whole page (the window made as tall as the document) as `<name>.png`.
async fn screenshot(client: &Client, name: &str) -> PathBuf {
    // Measured in a short window: the document is at least as tall as the window.
    client.set_window_size(1360, 600).await.unwrap();
    let height = client
        .execute("return document.documentElement.scrollHeight;", vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(1000);
    // The window is taller than its viewport by the (headless) browser frame.
    client
        .set_window_size(1360, u32::try_from(height.clamp(600, 6000)).unwrap() + 140)
        .await
        .unwrap();
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
    path
}

async fn text(client: &Client, css: &str) -> String {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} did not appear: {e}"))
        .text()
        .await
        .unwrap()
}

async fn texts(client: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in client.find_all(Locator::Css(css)).await.unwrap() {
        out.push(e.text().await.unwrap());
    }
    out
}

async fn search(client: &Client, query: &str) {
    let q = client.find(Locator::Css("#q")).await.unwrap();
    q.clear().await.unwrap();
    q.send_keys(query).await.unwrap();
    client
        .find(Locator::Css("#search-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

each_backend! {
    async fn a_person_signs_in_searches_a_digest_and_reads_its_lineage_and_verdict;
    async fn hostile_values_are_escaped_and_every_page_carries_the_headers;
    async fn malformed_unknown_and_storeless_requests_get_their_pages;
}

async fn a_person_signs_in_searches_a_digest_and_reads_its_lineage_and_verdict(store: &TestStore) {
    if !browser_available() {
        return;
    }
    let shot = |page: &str| format!("{page}-{}", store.backend);
    let (service, fx) = start(Some(store)).await;
    let (_driver, client) = browser().await;
    let base = &service.base;

    // Without credentials the page is refused: the sign-in form, nothing of the lineage.
    client.goto(&format!("{base}/ui")).await.unwrap();
    assert_eq!(text(&client, "h1").await, "Sign in");
    assert!(text(&client, "#problem").await.contains("Sign in to see"));
    assert!(client.find(Locator::Css("#q")).await.is_err());
    client
        .goto(&format!("{base}/ui/digest/{}", fx.release))
        .await
        .unwrap();
    assert_eq!(text(&client, "h1").await, "Sign in");
    assert!(!client.source().await.unwrap().contains(COMMIT));
    screenshot(&client, &shot("ui-login")).await;

    // A wrong token is refused; the right one signs in and lands on the search page.
    client.goto(&format!("{base}/ui/login")).await.unwrap();
    client
        .find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys("not-the-token-0123456789")
        .await
        .unwrap();
    client
        .find(Locator::Css("#sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(
        text(&client, "#problem").await,
        "That token is not accepted."
    );
    client
        .find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(TOKEN)
        .await
        .unwrap();
    client
        .find(Locator::Css("#sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(text(&client, "h1").await, "Lineage");
    assert_eq!(client.current_url().await.unwrap().path(), "/ui");

    // Search the digest: straight to its lineage.
    search(&client, &fx.release).await;
    assert_eq!(text(&client, "#digest").await, fx.release);
    assert_eq!(
        client.current_url().await.unwrap().path(),
        format!("/ui/digest/{}", fx.release)
    );
    let builds = text(&client, "#builds").await;
    assert!(builds.contains(COMMIT), "{builds}");
    assert!(builds.contains(WORKFLOW), "{builds}");
    assert!(builds.contains(REPOSITORY), "{builds}");
    let signers = text(&client, "#signers").await;
    assert!(
        signers.contains(SIGNER) && signers.contains(ISSUER),
        "{signers}"
    );
    assert_eq!(text(&client, "#log-indexes").await, "148227911, 148227912");

    // The timeline: the three environments in the order reached, with their times.
    let timeline = texts(&client, "#timeline li").await;
    let reached: Vec<(&str, &str)> = REACHED.to_vec();
    let mut at = 0;
    for (env, time) in &reached {
        let i = timeline
            .iter()
            .position(|t| t.starts_with(&format!("{env}\n")) || t.starts_with(&format!("{env} ")))
            .unwrap_or_else(|| panic!("{env} not in the timeline {timeline:?}"));
        assert!(i >= at, "{env} out of order in {timeline:?}");
        assert!(timeline[i].contains(time), "{env} at {time}: {timeline:?}");
        at = i;
    }

    // The diagram: the four steps and a box per environment, drawn on the server.
    let steps: Vec<String> = {
        let mut v = Vec::new();
        for g in client
            .find_all(Locator::Css("#chain g.node"))
            .await
            .unwrap()
        {
            v.push(g.attr("data-step").await.unwrap().unwrap_or_default());
        }
        v
    };
    assert_eq!(&steps[..4], ["source", "build", "artifact", "evidence"]);
    assert!(steps[4..].iter().all(|s| s == "environment"), "{steps:?}");
    assert!(steps.len() >= 4 + REACHED.len(), "{steps:?}");
    let svg = client
        .find(Locator::Css("#chain"))
        .await
        .unwrap()
        .html(false)
        .await
        .unwrap();
    assert!(svg.contains("@ 5f2c1a7e9b3d"), "commit in the diagram");
    assert!(svg.contains("release.yml"), "workflow in the diagram");
    let (_, _, w, h) = client
        .find(Locator::Css("#chain"))
        .await
        .unwrap()
        .rectangle()
        .await
        .unwrap();
    assert!(w > 600.0 && h > 60.0, "the diagram is drawn ({w}×{h})");
    screenshot(&client, &shot("ui-lineage")).await;

    // The deny verdict: every reason is on its page.
    let mut opened = false;
    for row in client
        .find_all(Locator::Css("#verdicts tbody tr"))
        .await
        .unwrap()
    {
        if row
            .find(Locator::Css(".badge"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .to_lowercase()
            == "deny"
        {
            row.find(Locator::Css("a.verdict-link"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            opened = true;
            break;
        }
    }
    assert!(opened, "a deny verdict is listed");
    assert_eq!(text(&client, "#decision").await.to_lowercase(), "deny");
    let reasons = texts(&client, "#reasons li").await;
    assert_eq!(reasons, DENY_REASONS);
    assert!(text(&client, "#policy").await.contains("release-only"));
    assert_eq!(
        text(&client, "#policy-hash").await,
        format!("sha256:{}", "1f".repeat(32))
    );
    assert!(text(&client, "#facts").await.contains(SIGNER));
    screenshot(&client, &shot("ui-verdict")).await;

    // A commit: both digests built from it.
    search(&client, COMMIT).await;
    text(&client, "#built").await;
    let built = texts(&client, "#built a.digest-link").await;
    assert!(
        built.contains(&fx.release) && built.contains(&fx.rebuild),
        "{built:?}"
    );
    screenshot(&client, &shot("ui-search-commit")).await;

    // SQL in the search box is a search for that text, which matches nothing.
    search(&client, "' OR 1=1 --").await;
    assert_eq!(
        text(&client, "#no-results").await,
        "No results for “' OR 1=1 --”."
    );
    assert!(client.find(Locator::Css("#hits")).await.is_err());
    assert!(client.find(Locator::Css("#built")).await.is_err());
    screenshot(&client, &shot("ui-search-injection")).await;

    // Signing out ends the session.
    client
        .find(Locator::Css("form.signout button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text(&client, "#login").await;
    assert_eq!(text(&client, "h1").await, "Sign in");
    client.goto(&format!("{base}/ui")).await.unwrap();
    assert_eq!(text(&client, "h1").await, "Sign in");

    client.close().await.unwrap();
}

// --- plain HTTP ----------------------------------------------------------------------------

async fn hostile_values_are_escaped_and_every_page_carries_the_headers(store: &TestStore) {
    let (service, fx) = start(Some(store)).await;
    let http = http();
    let get = |path: String| {
        http.get(format!("{}{path}", service.base))
            .bearer_auth(TOKEN)
            .send()
    };

    let r = get(format!("/ui/digest/{}", fx.hostile)).await.unwrap();
    assert_eq!(r.status(), 200);
    let headers = r.headers().clone();
    let body = r.text().await.unwrap();
    assert!(
        body.contains("ghcr.io/acme/&lt;script&gt;alert(1)&lt;/script&gt;")
            || body.contains("ghcr.io/acme/&#60;script&#62;alert(1)&#60;/script&#62;"),
        "the image name is escaped: {body}"
    );
    assert!(!body.contains("<script"), "no script element: {body}");
    assert_eq!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .split("; ")
            .take(3)
            .collect::<Vec<_>>(),
        [
            "default-src 'none'",
            "style-src 'unsafe-inline'",
            "img-src data:"
        ]
    );
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-store");

    // The verdict page of that image: reason and image escaped.
    let id = {
        let page = get(format!("/ui/digest/{}", fx.hostile)).await.unwrap();
        let body = page.text().await.unwrap();
        let at = body.find("/ui/verdict/").expect("a verdict link");
        body[at + 12..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
    };
    let body = get(format!("/ui/verdict/{id}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !body.contains("<script") && !body.contains("<img"),
        "{body}"
    );
    assert!(body.contains("&lt;img src=x onerror=alert(2)&gt;") || body.contains("&#60;img"));

    // A search for the hostile name finds it, escaped.
    let r = http
        .get(format!(
            "{}/ui/search?q={}",
            service.base,
            urlencode("<script>alert(1)</script>")
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(!body.contains("<script"), "{body}");

    // Every error page carries the policy too.
    let r = get("/ui/digest/nope".into()).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().contains_key("content-security-policy"));
}

// Authentication does not depend on the store: SQLite only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_credentials_every_page_is_refused_and_sign_in_gives_a_page_only_session() {
    let store = TestStore::sqlite("ui-sessions");
    let (service, fx) = start(Some(&store)).await;
    let base = &service.base;
    let http = http();
    for path in [
        "/ui".to_owned(),
        format!("/ui/digest/{}", fx.release),
        "/ui/verdict/1".to_owned(),
        format!("/ui/search?q={COMMIT}"),
        "/ui/elsewhere".to_owned(),
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"custody\"");
        let body = r.text().await.unwrap();
        assert!(
            body.contains("id=\"login\"") && !body.contains(COMMIT),
            "{path}: {body}"
        );
        let r = http
            .get(format!("{base}{path}"))
            .bearer_auth("wrong-token-0123456789abcdef")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} with a wrong token");
        let r = http
            .get(format!("{base}{path}"))
            .header("cookie", "custody_ui=v1.99999999999.00")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} with a forged cookie");
    }

    // Sign-in: a wrong token is refused, the right one sets a session cookie.
    let r = http
        .post(format!("{base}/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=wrong-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    let r = http
        .post(format!("{base}/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .body(format!("token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "sign-in posted from another site");
    let r = http
        .post(format!("{base}/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["Path=/ui", "HttpOnly", "SameSite=Strict", "Max-Age=28800"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(
        !cookie.contains(TOKEN),
        "the cookie is not the token: {cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();
    let r = http
        .get(format!("{base}/ui/digest/{}", fx.release))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains(COMMIT));

    // The session reads pages only: it is no bearer token for the API, and no cookie there.
    let value = session.split_once('=').unwrap().1;
    let r = http
        .post(format!("{base}/v1/verify"))
        .bearer_auth(value)
        .header("content-type", "application/json")
        .body(json!({"image": format!("{IMAGE}@{}", fx.release)}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(format!("{base}/metrics"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A bearer token works on the pages as on the API (scripts, curl).
    let r = http
        .get(format!("{base}/ui"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn malformed_unknown_and_storeless_requests_get_their_pages(store: &TestStore) {
    let (service, fx) = start(Some(store)).await;
    let http = http();
    let get = |path: String| {
        let url = format!("{}{path}", service.base);
        let http = http.clone();
        async move {
            let r = http.get(url).bearer_auth(TOKEN).send().await.unwrap();
            let status = r.status().as_u16();
            let location = r
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned());
            (status, location, r.text().await.unwrap())
        }
    };
    let unknown = digest("never recorded");
    let cases = [
        ("/ui/digest/not-a-digest".to_owned(), 400, "not a digest"),
        ("/ui/digest/sha256:ABC".to_owned(), 400, "not a digest"),
        (format!("/ui/digest/{unknown}"), 404, "Nothing is recorded"),
        ("/ui/verdict/abc".to_owned(), 400, "not a verdict number"),
        ("/ui/verdict/0".to_owned(), 400, "not a verdict number"),
        (
            "/ui/verdict/99999999".to_owned(),
            404,
            "no verdict #99999999",
        ),
        ("/ui/nowhere".to_owned(), 404, "no such page"),
        (
            format!("/ui/search?q={}", "x".repeat(300)),
            400,
            "at most 256",
        ),
        ("/ui/search?q=%27+OR+1%3D1+--".to_owned(), 200, "No results"),
    ];
    for (path, status, says) in cases {
        let (s, _, body) = get(path.clone()).await;
        assert_eq!(s, status, "{path}: {body}");
        assert!(body.contains(says), "{path}: {says:?} in {body}");
    }
    // A digest, or an image reference holding one, goes straight to the lineage.
    for q in [fx.release.clone(), format!("{IMAGE}@{}", fx.release)] {
        let (s, location, _) = get(format!("/ui/search?q={}", urlencode(&q))).await;
        assert_eq!(s, 303, "{q}");
        assert_eq!(
            location.as_deref(),
            Some(format!("/ui/digest/{}", fx.release).as_str())
        );
    }
    // An image name lists the names found; a digest prefix lists digests to open.
    let (s, _, body) = get("/ui/search?q=acme%2Fapp".into()).await;
    assert_eq!(s, 200);
    assert!(
        body.contains("id=\"hits\"") && body.contains(IMAGE),
        "{body}"
    );
    let prefix = &fx.release[..19];
    let (s, _, body) = get(format!("/ui/search?q={prefix}")).await;
    assert_eq!(s, 200);
    assert!(
        body.contains(&format!("href=\"/ui/digest/{}\"", urlencode(&fx.release))),
        "{body}"
    );
    // A digest prefix too short to search is the caller's mistake, said on the page.
    let (s, _, body) = get("/ui/search?q=sha256%3Aab".into()).await;
    assert_eq!(s, 400, "{body}");

    // A service with no store says so.
    let (bare, _) = start(None).await;
    let r = http
        .get(format!("{}/ui/digest/{}", bare.base, fx.release))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("no lineage store configured")
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
