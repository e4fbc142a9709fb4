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
const WORKER_IMAGE: &str = "ghcr.io/acme/worker";
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
    /// Another image, promoted to production beside the release.
    worker: String,
}

impl Fixture {
    fn new() -> Self {
        Self {
            release: digest("acme/app release build"),
            rebuild: digest("acme/app rebuild"),
            hostile: digest("hostile image name"),
            worker: digest("acme/worker build"),
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
            // A second image in production (no verdicts: promoted only), and the hostile name
            // admitted in dev: the environment and signer views list them.
            Event::Promotion(PromotionEvent {
                image: WORKER_IMAGE.into(),
                to_digest: self.worker.clone(),
                from_digest: None,
                ..self.promotion("production", "2026-11-04T11:00:00Z", 104, None)
            }),
            Event::Admission(AdmissionEvent {
                time: "2026-11-05T12:30:00Z".into(),
                cluster: "dev".into(),
                namespace: "shop".into(),
                workload: "Deployment/preview".into(),
                image: HOSTILE_IMAGE.into(),
                digest: Some(self.hostile.clone()),
                outcome: "allow".into(),
            }),
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

/// Signs in through the form with the service token; lands on `/ui`.
async fn sign_in(client: &Client, base: &str) {
    client.goto(&format!("{base}/ui/login")).await.unwrap();
    fill(client, "#token", TOKEN).await;
    click(client, "#sign-in").await;
    // Only the landing page has it: waiting for it waits for the navigation.
    text(client, "#environment-link").await;
    assert_eq!(text(client, "h1").await, "Lineage");
}

async fn fill(client: &Client, css: &str, value: &str) {
    let field = client.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// The path of the current page (a digest's `:` as is: links carry it percent-encoded).
async fn path(client: &Client) -> String {
    client
        .current_url()
        .await
        .unwrap()
        .path()
        .replace("%3A", ":")
}

each_backend! {
    async fn a_person_signs_in_searches_a_digest_and_reads_its_lineage_and_verdict;
    async fn a_person_asks_what_ran_in_an_environment_and_what_a_signer_signed;
    async fn hostile_values_are_escaped_and_every_page_carries_the_headers;
    async fn malformed_unknown_and_storeless_requests_get_their_pages;
    async fn environment_and_signer_views_page_refuse_bad_input_and_escape_values;
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
    // Only the landing page has it: waiting for it waits for the navigation (the sign-in
    // page's h1 may otherwise be read, or go stale, while the browser moves on).
    text(&client, "#environment-link").await;
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

async fn a_person_asks_what_ran_in_an_environment_and_what_a_signer_signed(store: &TestStore) {
    if !browser_available() {
        return;
    }
    let shot = |page: &str| format!("{page}-{}", store.backend);
    let (service, fx) = start(Some(store)).await;
    let (_driver, client) = browser().await;
    let base = &service.base;
    sign_in(&client, base).await;

    // From the landing page to the environment form: the time is filled in with now.
    click(&client, "#environment-link").await;
    text(&client, "#environment-form").await;
    assert_eq!(path(&client).await, "/ui/environment");
    let shown = client
        .find(Locator::Css("#at"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    let shown: jiff::Timestamp = shown
        .parse()
        .unwrap_or_else(|e| panic!("the default time {shown:?}: {e}"));
    let age = jiff::Timestamp::now().as_second() - shown.as_second();
    assert!((0..120).contains(&age), "the default time is now: {shown}");
    assert!(client.find(Locator::Css("#deployed")).await.is_err());

    // Production the day after both promotions: the release and the worker, each since its
    // promotion.
    fill(&client, "#env", "production").await;
    fill(&client, "#at", "2026-11-05T00:00:00Z").await;
    click(&client, "#environment-button").await;
    assert_eq!(text(&client, "#environment-name").await, "production");
    assert_eq!(
        text(&client, "h1").await,
        "What ran in production at 2026-11-05T00:00:00Z"
    );
    let rows = texts(&client, "#deployed tbody tr").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0].contains(IMAGE) && rows[0].contains(&fx.release),
        "{rows:?}"
    );
    assert!(
        rows[0].contains("2026-11-04 10:00:00 UTC") && rows[0].contains("promotion"),
        "{rows:?}"
    );
    assert!(
        rows[1].contains(WORKER_IMAGE) && rows[1].contains(&fx.worker),
        "{rows:?}"
    );
    assert!(rows[1].contains("2026-11-04 11:00:00 UTC"), "{rows:?}");
    assert_eq!(
        texts(&client, "#deployed a.digest-link").await,
        [fx.release.clone(), fx.worker.clone()]
    );
    screenshot(&client, &shot("ui-environment")).await;

    // The digest goes to its lineage page.
    click(&client, "#deployed a.digest-link").await;
    assert_eq!(text(&client, "#digest").await, fx.release);
    assert_eq!(path(&client).await, format!("/ui/digest/{}", fx.release));

    // Before production: nothing ran there.
    click(&client, "#nav-environment").await;
    text(&client, "#environment-form").await;
    fill(&client, "#env", "production").await;
    fill(&client, "#at", "2026-11-03T12:00:00+02:00").await;
    click(&client, "#environment-button").await;
    assert!(
        text(&client, "#no-results")
            .await
            .starts_with("Nothing is recorded as running in “production”"),
    );

    // The signer form, from the header: everything that identity signed that was let in — the
    // release (dev → staging → production), the rebuild (allowed, not deployed) and the image
    // with the hostile name (admitted in dev), its name shown as text.
    click(&client, "#nav-signer").await;
    text(&client, "#signer-form").await;
    assert_eq!(path(&client).await, "/ui/signer");
    fill(&client, "#id", SIGNER).await;
    click(&client, "#signer-button").await;
    assert_eq!(text(&client, "#signer-name").await, SIGNER);
    // (In the store's order of digests; which comes first is the store's business.)
    let rows = texts(&client, "#signed tbody tr").await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    let row = |digest: &str| {
        rows.iter()
            .find(|r| r.starts_with(digest))
            .unwrap_or_else(|| panic!("{digest} in {rows:?}"))
            .clone()
    };
    let release = row(&fx.release);
    assert!(
        release.contains(IMAGE) && release.contains("dev → staging → production"),
        "{release}"
    );
    assert!(release.contains("2026-11-02 09:00:00 UTC"), "{release}");
    assert!(row(&fx.rebuild).contains("not deployed"), "{rows:?}");
    assert!(row(&fx.hostile).contains(HOSTILE_IMAGE), "{rows:?}");
    let mut links = texts(&client, "#signed a.digest-link").await;
    links.sort();
    let mut signed = [fx.release.clone(), fx.rebuild.clone(), fx.hostile.clone()];
    signed.sort();
    assert_eq!(links, signed);
    assert_eq!(
        client
            .execute("return document.scripts.length;", vec![])
            .await
            .unwrap(),
        json!(0),
        "no script element made it into the page"
    );
    screenshot(&client, &shot("ui-signer")).await;

    // The release's lineage page links back: its signer to the signer view, an environment's
    // time to what ran there then.
    let release_link = format!(
        "#signed a.digest-link[href$=\"{}\"]",
        urlencode(&fx.release)
    );
    click(&client, &release_link).await;
    assert_eq!(text(&client, "#digest").await, fx.release);
    assert_eq!(path(&client).await, format!("/ui/digest/{}", fx.release));
    click(&client, "#signers a.signer-link").await;
    assert_eq!(text(&client, "#signer-name").await, SIGNER);
    assert_eq!(path(&client).await, "/ui/signer");
    client.back().await.unwrap();
    text(&client, "#timeline").await;
    let staging = client
        .find_all(Locator::Css("#timeline li"))
        .await
        .unwrap()
        .into_iter()
        .nth(1)
        .expect("staging in the timeline");
    staging
        .find(Locator::Css("a.at-link"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(text(&client, "#environment-name").await, "staging");
    assert_eq!(
        texts(&client, "#deployed a.digest-link").await,
        [fx.release.as_str()]
    );

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
        "/ui/environment".to_owned(),
        "/ui/environment?env=production&at=2026-11-05T00:00:00Z".to_owned(),
        "/ui/signer".to_owned(),
        format!("/ui/signer?id={}", urlencode(SIGNER)),
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
    // The form is read before anyone is authenticated: bounded at 4 KiB, not at the API's body
    // limit, and the refusal says the bound.
    for size in [5000, 2 << 20] {
        let r = http
            .post(format!("{base}/ui/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={TOKEN}&pad={}", "x".repeat(size)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "a sign-in form of {size} bytes");
        assert!(r.headers().get("set-cookie").is_none());
        let body = r.text().await.unwrap();
        assert!(body.contains("over the limit of 4096"), "{body}");
    }
    // A cookie whose tag is not an HMAC-SHA256 tag is refused before any work on it.
    let r = http
        .get(format!("{base}/ui"))
        .header(
            "cookie",
            format!("custody_ui=v1.99999999999.{}", "ab".repeat(4096)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "an oversized session tag");
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

async fn environment_and_signer_views_page_refuse_bad_input_and_escape_values(store: &TestStore) {
    let (service, fx) = start(Some(store)).await;
    let http = http();
    let get = |path: String| {
        let url = format!("{}{path}", service.base);
        let http = http.clone();
        async move {
            let r = http.get(url).bearer_auth(TOKEN).send().await.unwrap();
            assert!(
                r.headers().contains_key("content-security-policy"),
                "{path}"
            );
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }
    };
    // The next-page link of a page, as a path.
    let next = |body: &str| -> Option<String> {
        let at = body.find("id=\"next-page\" href=\"")? + 21;
        let end = body[at..].find('"')? + at;
        Some(body[at..end].replace("&amp;", "&"))
    };

    // --- what is shown -------------------------------------------------------------------
    // The bare forms.
    let (s, body) = get("/ui/environment".into()).await;
    assert_eq!(s, 200);
    assert!(body.contains("id=\"environment-form\"") && !body.contains("id=\"deployed\""));
    let (s, body) = get("/ui/signer".into()).await;
    assert_eq!(s, 200);
    assert!(body.contains("id=\"signer-form\"") && !body.contains("id=\"signed\""));
    // The landing page and a search page link to both.
    for path in ["/ui".to_owned(), "/ui/search?q=acme".to_owned()] {
        let (s, body) = get(path.clone()).await;
        assert_eq!(s, 200);
        assert!(
            body.contains("id=\"environment-link\" href=\"/ui/environment\"")
                || body.contains("href=\"/ui/environment\" id=\"environment-link\""),
            "{path}: {body}"
        );
        assert!(
            body.contains("href=\"/ui/signer\" id=\"signer-link\""),
            "{path}"
        );
    }
    // The lineage page links its signer and its environments.
    let (_, body) = get(format!("/ui/digest/{}", fx.release)).await;
    assert!(body.contains(&format!("href=\"/ui/signer?id={}\"", urlencode(SIGNER))));
    assert!(body.contains("href=\"/ui/environment?env=production\""));
    assert!(
        body.contains(
            "href=\"/ui/environment?env=staging&amp;at=2026-11-03T10%3A00%3A00.000000Z\""
        )
    );

    // dev a day after the hostile name was admitted, one row a page: the hostile name first
    // (name order), escaped; the next page the release, since its promotion; then no more.
    let (s, body) = get("/ui/environment?env=dev&at=2026-11-06T00:00:00Z&limit=1".into()).await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body.contains(&format!("href=\"/ui/digest/{}\"", urlencode(&fx.hostile))),
        "{body}"
    );
    assert!(!body.contains(&fx.release));
    assert!(!body.contains("<script"), "{body}");
    assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;") || body.contains("&#60;script"));
    assert!(body.contains("admission"), "{body}");
    let page2 = next(&body).expect("a next page");
    assert!(page2.contains("at=2026-11-06T00%3A00%3A00Z") && page2.contains("limit=1"));
    let (s, body) = get(page2).await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body.contains(&format!("href=\"/ui/digest/{}\"", urlencode(&fx.release))),
        "{body}"
    );
    assert!(body.contains("2026-11-02 10:00:00 UTC") && body.contains("delivery commit"));
    assert_eq!(next(&body), None, "{body}");
    // The signer, two a page: the three digests over two pages, each once; the hostile name
    // escaped; environments linked to their view.
    let signed = [&fx.release, &fx.rebuild, &fx.hostile];
    let listed = |body: &str| -> Vec<&String> {
        signed
            .iter()
            .copied()
            .filter(|d| body.contains(&format!("href=\"/ui/digest/{}\"", urlencode(d))))
            .collect()
    };
    let (s, first) = get(format!("/ui/signer?id={}&limit=2", urlencode(SIGNER))).await;
    assert_eq!(s, 200, "{first}");
    let (s, second) = get(next(&first).expect("a next page")).await;
    assert_eq!(s, 200, "{second}");
    assert_eq!(next(&second), None, "{second}");
    let (on_first, on_second) = (listed(&first), listed(&second));
    assert_eq!(
        (on_first.len(), on_second.len()),
        (2, 1),
        "{first}\n{second}"
    );
    assert!(
        signed
            .iter()
            .all(|d| on_first.contains(d) || on_second.contains(d))
    );
    let both = format!("{first}{second}");
    assert!(!both.contains("<script"), "{both}");
    assert!(
        both.contains("alert(1)"),
        "the hostile name is listed, as text"
    );
    assert!(
        both.contains("href=\"/ui/environment?env=production\""),
        "{both}"
    );
    // Blanks a form field picked up do not matter.
    let (s, body) = get(format!("/ui/signer?id=+{}+", urlencode(SIGNER))).await;
    assert_eq!(s, 200);
    assert!(body.contains(&fx.release), "{body}");

    // --- what is refused, and what finds nothing -----------------------------------------
    let long = "x".repeat(custody::store::MAX_FIELD_BYTES + 1);
    let cases: Vec<(String, u16, &str)> = vec![
        // Times that are not RFC 3339: the form again, saying so.
        (
            "/ui/environment?env=production&at=yesterday".into(),
            400,
            "is not a time",
        ),
        (
            "/ui/environment?env=production&at=2026-13-01T00%3A00%3A00Z".into(),
            400,
            "RFC 3339",
        ),
        (
            "/ui/environment?env=production&at=2026-11-05".into(),
            400,
            "is not a time",
        ),
        (
            format!(
                "/ui/environment?env=production&at=2026-11-05T00:00:00.{}Z",
                "0".repeat(60)
            ),
            400,
            "over the limit of 64",
        ),
        // Empty and oversized values.
        (
            "/ui/environment?env=".into(),
            400,
            "The environment must not be empty",
        ),
        (
            "/ui/environment?env=+++&at=2026-11-05T00%3A00%3A00Z".into(),
            400,
            "must not be empty",
        ),
        (
            format!("/ui/environment?env={long}"),
            400,
            "over the limit of 4096",
        ),
        (
            "/ui/signer?id=".into(),
            400,
            "The signer identity must not be empty",
        ),
        (
            format!("/ui/signer?id={long}"),
            400,
            "over the limit of 4096",
        ),
        ("/ui/signer?id=a%00b".into(), 400, "NUL"),
        // Pages the store refuses: a limit out of range, a cursor that is not one, or is
        // another query's.
        ("/ui/environment?env=dev&limit=0".into(), 400, "page limit"),
        ("/ui/signer?id=x&limit=1001".into(), 400, "page limit"),
        ("/ui/signer?id=x&limit=many".into(), 400, "malformed"),
        // The refusal names the parameter (axum's words).
        ("/ui/environment?env=x&limit=-1".into(), 400, "limit"),
        (
            "/ui/environment?env=dev&after=not-a-cursor".into(),
            400,
            "cursor",
        ),
        // Nothing recorded: said, with 200.
        (
            "/ui/environment?env=nowhere&at=2026-11-06T00%3A00%3A00Z".into(),
            200,
            "Nothing is recorded as running in “nowhere”",
        ),
        (
            "/ui/environment?env=production&at=2026-11-01T00%3A00%3A00Z".into(),
            200,
            "Nothing is recorded as running in “production”",
        ),
        (
            format!(
                "/ui/signer?id={}",
                urlencode("https://github.com/acme/other/.github/workflows/x.yml@refs/heads/main")
            ),
            200,
            "Nothing signed by",
        ),
        // SQL is text: it matches nothing.
        (
            format!("/ui/environment?env={}", urlencode("dev' OR '1'='1")),
            200,
            "Nothing is recorded as running in “dev&#39; OR &#39;1&#39;=&#39;1”",
        ),
        (
            format!("/ui/signer?id={}", urlencode("' OR 1=1 --")),
            200,
            "Nothing signed by “&#39; OR 1=1 --”",
        ),
    ];
    for (path, status, says) in &cases {
        let (s, body) = get(path.clone()).await;
        assert_eq!(s, *status, "{path}: {body}");
        assert!(body.contains(says), "{path}: {says:?} in {body}");
        assert!(
            !body.contains("id=\"deployed\"") && !body.contains("id=\"signed\""),
            "{path}"
        );
    }
    // A cursor of the signer query is refused by the environment query.
    let (_, body) = get(format!("/ui/signer?id={}&limit=1", urlencode(SIGNER))).await;
    let cursor = next(&body).unwrap();
    let cursor = cursor
        .split("after=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let (s, body) = get(format!("/ui/environment?env=dev&after={cursor}")).await;
    assert_eq!(s, 400, "{body}");

    // Markup in what is asked is shown as text, in the heading and in the form.
    for path in [
        format!(
            "/ui/environment?env={}&at=2026-11-06T00%3A00%3A00Z",
            urlencode("<script>alert(1)</script>")
        ),
        format!(
            "/ui/signer?id={}",
            urlencode("\"><img src=x onerror=alert(1)>")
        ),
        format!(
            "/ui/environment?env=dev&at={}",
            urlencode("\"><script>alert(1)</script>")
        ),
    ] {
        let (s, body) = get(path.clone()).await;
        assert!(s == 200 || s == 400, "{path}: {s}");
        assert!(
            !body.contains("<script") && !body.contains("<img"),
            "{path}: {body}"
        );
        assert!(
            body.contains("alert(1)"),
            "{path}: what was asked is shown: {body}"
        );
        if path.contains("%22") {
            // The quote stays inside the form's value attribute.
            assert!(
                body.contains("value=\"&#34;&#62;") || body.contains("value=\"&quot;&gt;"),
                "{path}: {body}"
            );
        }
    }

    // The API refuses a bad time with the same words (one check for both).
    let r = http
        .get(format!(
            "{}/v1/lineage/environment/production?at=yesterday",
            service.base
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert!(
        body.to_string().contains("\\\"yesterday\\\" is not a time"),
        "{body}"
    );

    // A service with no store says so.
    let (bare, _) = start(None).await;
    for path in ["/ui/environment?env=production", "/ui/signer?id=x"] {
        let r = http
            .get(format!("{}{path}", bare.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503, "{path}");
    }
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
