//! The lineage store against both backends: SQLite (a temporary file) and PostgreSQL.
//!
//! PostgreSQL: `CUSTODY_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`).
//! Each test works in its own schema `custody_test_<random>` (selected through the URL's
//! `options=-csearch_path%3D…`, as a deployment would) and drops it at the end. When PostgreSQL
//! does not answer, the PostgreSQL half of each test fails if `CI` or `CUSTODY_TEST_POSTGRES` is
//! set (PostgreSQL was asked for), and is skipped with a message otherwise: the rule of
//! `common/backends.rs`, shared with `tests/lineage.rs` and `tests/ui.rs`.

// Tests read the environment and the clock, and print skip messages.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

// The PostgreSQL rule, server URL and names; its per-test stores are `tests/lineage.rs`'s and
// `tests/ui.rs`'s (this file runs both backends inside one test).
#[path = "common/backends.rs"]
#[allow(dead_code, unused_macros, unused_imports)]
mod backends;
mod common;

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use custody::store::{
    AdmissionEvent, Event, PRUNE_CHUNK, Page, PromotionEvent, Pruned, Rejected, Store, StoreError,
    VerdictEvent, Writer, WriterOptions,
};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use backends::{postgres_base, postgres_required_by, random_hex, with_search_path};

// ---------------------------------------------------------------------------------------------
// Harness

/// One backend for one test.
#[derive(Clone)]
struct Ctx {
    backend: &'static str,
    url: String,
    /// SQLite: the database file.
    file: Option<PathBuf>,
    /// PostgreSQL: the test's schema, and an admin pool outside it.
    schema: Option<String>,
    admin: Option<PgPool>,
}

impl Ctx {
    async fn open(&self) -> Store {
        Store::open(&self.url)
            .await
            .unwrap_or_else(|e| panic!("open {}: {e}", self.backend))
    }

    /// `sql` with `{s}` standing for the schema prefix (`custody_test_x.` or nothing).
    fn sql(&self, sql: &str) -> String {
        let prefix = self
            .schema
            .as_ref()
            .map(|s| format!("{s}."))
            .unwrap_or_default();
        sql.replace("{s}", &prefix)
    }

    async fn exec(&self, sql: &str) {
        let sql = self.sql(sql);
        match &self.admin {
            Some(pool) => {
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .execute(pool)
                    .await
                    .unwrap();
            }
            None => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .execute(&mut c)
                    .await
                    .unwrap();
                c.close().await.unwrap();
            }
        }
    }

    async fn count(&self, table: &str) -> i64 {
        let sql = self.sql(&format!("SELECT COUNT(*) FROM {{s}}{table}"));
        match &self.admin {
            Some(pool) => sqlx::query_scalar(AssertSqlSafe(sql))
                .fetch_one(pool)
                .await
                .unwrap(),
            None => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                let n = sqlx::query_scalar(AssertSqlSafe(sql))
                    .fetch_one(&mut c)
                    .await
                    .unwrap();
                c.close().await.unwrap();
                n
            }
        }
    }

    async fn events(&self) -> i64 {
        self.count("verdicts").await
            + self.count("promotions").await
            + self.count("admissions").await
    }
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("custody-store-{name}-{}", random_hex()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An admin pool on the test server, or `None` (skip) when it does not answer and PostgreSQL
/// was not asked for (see [`postgres_required_by`]).
async fn postgres_admin() -> Option<PgPool> {
    let url = postgres_base();
    let result = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url)
        .await;
    match result {
        Ok(pool) => Some(pool),
        Err(e) => {
            if let Some(variable) = postgres_required_by() {
                panic!(
                    "PostgreSQL at {url} does not answer ({e}) and {variable} is set: the store \
                     tests need it"
                );
            }
            eprintln!(
                "SKIPPING the PostgreSQL half of this test: {url} does not answer ({e}); set CUSTODY_TEST_POSTGRES"
            );
            None
        }
    }
}

/// Runs `test` on SQLite, then on PostgreSQL (in a fresh schema, dropped afterwards even when
/// the test fails).
async fn each_backend<F, Fut>(name: &str, test: F)
where
    F: Fn(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = TempDir::new(name);
    let file = dir.0.join("lineage.db");
    let ctx = Ctx {
        backend: "sqlite",
        url: format!("sqlite:{}", file.display()),
        file: Some(file),
        schema: None,
        admin: None,
    };
    run_isolated(test(ctx)).await.unwrap_or_else(|p| {
        eprintln!("{name} failed on SQLite");
        std::panic::resume_unwind(p)
    });
    drop(dir);

    let Some(admin) = postgres_admin().await else {
        return;
    };
    let schema = format!("custody_test_{}", random_hex());
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    let ctx = Ctx {
        backend: "postgres",
        url: with_search_path(&postgres_base(), &schema),
        file: None,
        schema: Some(schema.clone()),
        admin: Some(admin.clone()),
    };
    let result = run_isolated(test(ctx)).await;
    sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    if let Err(p) = result {
        eprintln!("{name} failed on PostgreSQL");
        std::panic::resume_unwind(p);
    }
}

/// Runs a test body as its own task, so a panic comes back as a value and cleanup still runs.
async fn run_isolated<Fut>(fut: Fut) -> Result<(), Box<dyn std::any::Any + Send>>
where
    Fut: Future<Output = ()> + Send + 'static,
{
    match tokio::spawn(fut).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_panic() => Err(e.into_panic()),
        Err(e) => Err(Box::new(e.to_string())),
    }
}

// ---------------------------------------------------------------------------------------------
// Events

const IMAGE: &str = "ghcr.io/acme/app";
const WORKER: &str = "ghcr.io/acme/app-worker";
const COMMIT: &str = "3f2a9c1e5b7d4a6f8e0c2b4d6f8a0c2e4b6d8f0a";
const OLD_COMMIT: &str = "0badc0de0badc0de0badc0de0badc0de0badc0d";
const WORKFLOW: &str = ".github/workflows/release.yml";
const SIGNER: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";
const OTHER_SIGNER: &str = "https://github.com/acme/tools/.github/workflows/ci.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";
const DELIVERY: &str = "github.com/acme/delivery";

fn dg(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

fn numbered(n: u64) -> String {
    format!("sha256:{n:064x}")
}

fn verdict(
    time: &str,
    image: &str,
    digest: &str,
    env: Option<&str>,
    decision: &str,
) -> VerdictEvent {
    VerdictEvent {
        time: time.into(),
        image: image.into(),
        digest: digest.into(),
        environment: env.map(Into::into),
        policy: "gitops".into(),
        policy_hash: "sha256:policy".into(),
        trust_root_hash: "sha256:root".into(),
        decision: decision.into(),
        reasons: if decision == "allow" {
            vec![]
        } else {
            vec!["no signature from a trusted identity".into()]
        },
        signer: None,
        issuer: None,
        source_repository: None,
        source_ref: None,
        source_commit: None,
        workflow: None,
        run: None,
        builder: None,
        sbom_digest: None,
        log_indexes: vec![],
    }
}

fn built(mut v: VerdictEvent, commit: &str, signer: &str, run: &str, log: u64) -> Event {
    v.signer = Some(signer.into());
    v.issuer = Some(ISSUER.into());
    v.source_repository = Some("https://github.com/acme/app".into());
    v.source_ref = Some("refs/heads/main".into());
    v.source_commit = Some(commit.into());
    v.workflow = Some(WORKFLOW.into());
    v.run = Some(run.into());
    v.builder = Some("https://github.com/actions/runner/github-hosted".into());
    v.sbom_digest = Some(dg('5'));
    v.log_indexes = vec![log, log + 1];
    Event::Verdict(v)
}

#[allow(clippy::too_many_arguments)]
fn promotion(
    time: &str,
    env: &str,
    image: &str,
    from: Option<&str>,
    to: &str,
    commit: &str,
    pr: Option<&str>,
    kind: &str,
) -> Event {
    Event::Promotion(PromotionEvent {
        time: time.into(),
        repository: DELIVERY.into(),
        environment: env.into(),
        commit: commit.into(),
        pull_request: pr.map(Into::into),
        image: image.into(),
        from_digest: from.map(Into::into),
        to_digest: to.into(),
        kind: kind.into(),
    })
}

fn admission(
    time: &str,
    cluster: &str,
    ns: &str,
    image: &str,
    digest: Option<&str>,
    outcome: &str,
) -> Event {
    Event::Admission(AdmissionEvent {
        time: time.into(),
        cluster: cluster.into(),
        namespace: ns.into(),
        workload: "Deployment/api".into(),
        image: image.into(),
        digest: digest.map(Into::into),
        outcome: outcome.into(),
    })
}

/// The store's form of a time given as `…Z` without fractions.
fn norm(t: &str) -> String {
    t.replace('Z', ".000000Z")
}

/// A realistic history:
///
/// * OLD (`0…`, commit OLD_COMMIT, signed by SIGNER) promoted to prod at T0+1m.
/// * A (`a…`) and B (`b…`, the worker image) built from COMMIT by WORKFLOW, signed by SIGNER;
///   dev (auto-update) at T1, staging at T2 (A), prod at T3 (A, from OLD); admitted in clusters
///   prod-eu and prod-us; rolled back in prod to OLD at T4.
/// * U (`e…`) unsigned: deny verdict, denied admission.
/// * D (`d…`) signed by OTHER_SIGNER, deny verdict, but admitted (allow admission).
/// * E (`f…`) signed by OTHER_SIGNER, deny verdict, never admitted.
fn history() -> Vec<Event> {
    let (old, a, b) = (dg('0'), dg('a'), dg('b'));
    vec![
        built(
            verdict(
                "2026-11-01T09:00:00Z",
                IMAGE,
                &old,
                Some("production"),
                "allow",
            ),
            OLD_COMMIT,
            SIGNER,
            "run/100",
            500,
        ),
        promotion(
            "2026-11-01T09:01:00Z",
            "prod",
            IMAGE,
            None,
            &old,
            "c0ffee0000000000000000000000000000000000",
            Some("#1"),
            "promotion",
        ),
        built(
            verdict("2026-11-02T10:00:00Z", IMAGE, &a, Some("dev"), "allow"),
            COMMIT,
            SIGNER,
            "run/200",
            1000,
        ),
        built(
            verdict("2026-11-02T10:01:00Z", WORKER, &b, Some("dev"), "allow"),
            COMMIT,
            SIGNER,
            "run/200",
            1010,
        ),
        promotion(
            "2026-11-02T10:05:00Z",
            "dev",
            IMAGE,
            None,
            &a,
            "d0d0000000000000000000000000000000000001",
            None,
            "auto-update",
        ),
        promotion(
            "2026-11-02T10:06:00Z",
            "dev",
            WORKER,
            None,
            &b,
            "d0d0000000000000000000000000000000000002",
            None,
            "auto-update",
        ),
        Event::Verdict(verdict(
            "2026-11-02T11:00:00Z",
            "docker.io/library/nginx",
            &dg('e'),
            Some("dev"),
            "deny",
        )),
        built(
            verdict("2026-11-03T10:00:00Z", IMAGE, &a, Some("staging"), "allow"),
            COMMIT,
            SIGNER,
            "run/200",
            1000,
        ),
        promotion(
            "2026-11-03T10:00:00Z",
            "staging",
            IMAGE,
            None,
            &a,
            "57a9e00000000000000000000000000000000001",
            Some("#41"),
            "promotion",
        ),
        built(
            verdict(
                "2026-11-04T10:00:00Z",
                IMAGE,
                &a,
                Some("production"),
                "allow",
            ),
            COMMIT,
            SIGNER,
            "run/200",
            1000,
        ),
        promotion(
            "2026-11-04T10:00:00Z",
            "prod",
            IMAGE,
            Some(&old),
            &a,
            "9d0d000000000000000000000000000000000042",
            Some("#42"),
            "promotion",
        ),
        admission(
            "2026-11-04T10:02:00Z",
            "prod-eu",
            "payments",
            IMAGE,
            Some(&a),
            "allow",
        ),
        admission(
            "2026-11-04T10:03:00Z",
            "prod-us",
            "payments",
            IMAGE,
            Some(&a),
            "allow",
        ),
        admission(
            "2026-11-04T10:04:00Z",
            "prod-us",
            "payments",
            "docker.io/library/nginx",
            Some(&dg('e')),
            "deny",
        ),
        admission(
            "2026-11-04T10:04:30Z",
            "prod-us",
            "payments",
            "docker.io/library/nginx",
            None,
            "deny",
        ),
        built(
            verdict(
                "2026-11-04T11:00:00Z",
                "ghcr.io/acme/tool",
                &dg('d'),
                Some("production"),
                "deny",
            ),
            "7777777000000000000000000000000000000000",
            OTHER_SIGNER,
            "run/7",
            7,
        ),
        admission(
            "2026-11-04T11:01:00Z",
            "prod-eu",
            "tools",
            "ghcr.io/acme/tool",
            Some(&dg('d')),
            "allow",
        ),
        built(
            verdict(
                "2026-11-04T11:05:00Z",
                "ghcr.io/acme/tool",
                &dg('f'),
                Some("production"),
                "deny",
            ),
            "7777777000000000000000000000000000000000",
            OTHER_SIGNER,
            "run/8",
            8,
        ),
        promotion(
            "2026-11-05T10:00:00Z",
            "prod",
            IMAGE,
            Some(&a),
            &old,
            "9d0d000000000000000000000000000000000043",
            Some("#43"),
            "rollback",
        ),
    ]
}

fn page(limit: u32) -> Page {
    Page {
        limit,
        cursor: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Recording and reading the chain

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_then_every_query_returns_the_chain() {
    each_backend("chain", |ctx| async move {
        let store = ctx.open().await;
        assert_eq!(store.backend(), ctx.backend);
        store.record(&history()).await.unwrap();
        let (old, a, b) = (dg('0'), dg('a'), dg('b'));

        // lineage(A): source → build → digest → evidence → environments
        let l = store.lineage(&a).await.unwrap().expect("A is known");
        assert_eq!(l.digest, a);
        assert_eq!(l.images, [IMAGE]);
        assert_eq!(l.builds.len(), 1, "{:?}", l.builds);
        let build = &l.builds[0];
        assert_eq!(build.source_commit.as_deref(), Some(COMMIT));
        assert_eq!(build.workflow.as_deref(), Some(WORKFLOW));
        assert_eq!(build.run.as_deref(), Some("run/200"));
        assert_eq!(build.first_seen, norm("2026-11-02T10:00:00Z"));
        assert_eq!(build.last_seen, norm("2026-11-04T10:00:00Z"));
        assert_eq!(l.signers.len(), 1);
        assert_eq!(l.signers[0].signer, SIGNER);
        assert_eq!(l.signers[0].issuer.as_deref(), Some(ISSUER));
        assert_eq!(l.signers[0].verdicts, 3);
        let envs: Vec<_> = l
            .verdicts
            .iter()
            .map(|v| v.environment.as_deref().unwrap())
            .collect();
        assert_eq!(
            envs,
            ["production", "staging", "dev"],
            "verdicts newest first"
        );
        assert!(
            l.verdicts
                .iter()
                .all(|v| v.decision == "allow" && v.policy == "gitops")
        );
        let reached: Vec<(&str, &str)> = l
            .environments
            .iter()
            .map(|e| (e.environment.as_str(), e.via.as_str()))
            .collect();
        assert_eq!(
            reached,
            [
                ("dev", "promotion"),
                ("staging", "promotion"),
                ("prod", "promotion"),
                ("prod-eu", "admission"),
                ("prod-us", "admission")
            ]
        );
        let prod = &l.environments[2];
        assert_eq!(prod.first_seen, norm("2026-11-04T10:00:00Z"));
        assert_eq!(
            prod.commit.as_deref(),
            Some("9d0d000000000000000000000000000000000042")
        );
        assert_eq!(prod.pull_request.as_deref(), Some("#42"));
        let eu = &l.environments[3];
        assert_eq!(
            (eu.cluster.as_deref(), eu.namespace.as_deref()),
            (Some("prod-eu"), Some("payments"))
        );
        let kinds: Vec<_> = l
            .promotions
            .iter()
            .map(|p| (p.environment.as_str(), p.kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("dev", "auto-update"),
                ("staging", "promotion"),
                ("prod", "promotion"),
                ("prod", "rollback")
            ],
            "promotions to and away from A, oldest first"
        );
        assert_eq!(l.promotions[3].from_digest.as_deref(), Some(a.as_str()));
        assert_eq!(l.promotions[3].to_digest, old);
        let clusters: Vec<_> = l.admissions.iter().map(|x| x.cluster.as_str()).collect();
        assert_eq!(clusters, ["prod-us", "prod-eu"], "admissions newest first");
        assert_eq!(l.sbom_digests, [dg('5')]);
        assert_eq!(l.log_indexes, [1000, 1001]);

        // by_commit: A and B, in order of first verdict, with where each went
        for query in [&COMMIT[..7], COMMIT, &COMMIT.to_uppercase()] {
            let p = store.by_commit(query, &Page::default()).await.unwrap();
            assert!(p.next.is_none());
            let got: Vec<_> = p
                .items
                .iter()
                .map(|x| (x.digest.as_str(), x.image.as_str()))
                .collect();
            assert_eq!(
                got,
                [(a.as_str(), IMAGE), (b.as_str(), WORKER)],
                "query {query}"
            );
            assert_eq!(p.items[0].workflow.as_deref(), Some(WORKFLOW));
            assert_eq!(p.items[0].first_verified, norm("2026-11-02T10:00:00Z"));
            assert_eq!(
                p.items[0].environments,
                ["dev", "staging", "prod", "prod-eu", "prod-us"]
            );
            assert_eq!(p.items[1].environments, ["dev"]);
        }
        let p = store.by_commit(OLD_COMMIT, &Page::default()).await.unwrap();
        assert_eq!(p.items.len(), 1);
        assert_eq!(p.items[0].environments, ["prod"]);

        // by_signer: what SIGNER signed that was admitted, in the order the store first saw them
        let p = store.by_signer(SIGNER, &Page::default()).await.unwrap();
        let got: Vec<_> = p.items.iter().map(|s| s.digest.as_str()).collect();
        assert_eq!(got, [old.as_str(), a.as_str(), b.as_str()]);
        assert_eq!(p.items[1].first_admitted, norm("2026-11-02T10:00:00Z"));
        assert_eq!(p.items[1].image, IMAGE);
        // a digest seen later comes later, whatever its text
        let later = dg('1');
        store
            .record(&[built(
                verdict("2026-11-06T00:00:00Z", IMAGE, &later, None, "allow"),
                "1111111000000000000000000000000000000000",
                SIGNER,
                "run/300",
                9,
            )])
            .await
            .unwrap();
        let p = store.by_signer(SIGNER, &page(3)).await.unwrap();
        let p2 = store
            .by_signer(
                SIGNER,
                &Page {
                    limit: 3,
                    cursor: p.next.clone(),
                },
            )
            .await
            .unwrap();
        let got: Vec<_> = p
            .items
            .iter()
            .chain(&p2.items)
            .map(|s| s.digest.as_str())
            .collect();
        assert_eq!(got, [old.as_str(), a.as_str(), b.as_str(), later.as_str()]);
        assert!(p2.next.is_none());
        // OTHER_SIGNER: D (deny verdict, but admitted by a cluster) yes; F (never admitted) no.
        let p = store
            .by_signer(OTHER_SIGNER, &Page::default())
            .await
            .unwrap();
        let got: Vec<_> = p.items.iter().map(|s| s.digest.as_str()).collect();
        assert_eq!(got, [dg('d')]);
        assert_eq!(p.items[0].first_admitted, norm("2026-11-04T11:01:00Z"));
        assert_eq!(p.items[0].environments, ["prod-eu"]);

        // verdict(id): the whole record, time normalised
        let id = l.verdicts[0].id;
        let record = store.verdict(id).await.unwrap().expect("verdict by id");
        assert_eq!(record.id, id);
        let Event::Verdict(mut expected) = history().remove(9) else {
            panic!()
        };
        expected.time = norm(&expected.time);
        assert_eq!(record.event, expected);

        // search
        let hits = store.search(&a[..15], 10).await.unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(
            (hits[0].kind.as_str(), hits[0].digest.as_deref()),
            ("digest", Some(a.as_str()))
        );
        let hits = store.search(&a, 10).await.unwrap();
        assert_eq!(
            hits.iter().map(|h| h.value.as_str()).collect::<Vec<_>>(),
            [a.as_str()]
        );
        let hits = store.search(&COMMIT[..10], 10).await.unwrap();
        let commits: Vec<_> = hits
            .iter()
            .filter(|h| h.kind == "commit")
            .map(|h| h.digest.clone().unwrap())
            .collect();
        assert_eq!(commits, [a.clone(), b.clone()]);
        let hits = store.search("acme/app", 10).await.unwrap();
        let images: Vec<_> = hits
            .iter()
            .map(|h| (h.kind.as_str(), h.value.as_str()))
            .collect();
        assert_eq!(images, [("image", IMAGE), ("image", WORKER)]);
        let hits = store.search("APP-WORKER", 10).await.unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(
            store.search("acme", 2).await.unwrap().len(),
            2,
            "limit holds"
        );

        // unknown things
        assert!(store.lineage(&dg('c')).await.unwrap().is_none());
        assert!(
            store
                .by_commit("1234567", &Page::default())
                .await
                .unwrap()
                .items
                .is_empty()
        );
        assert!(
            store
                .by_signer("nobody@example.com", &Page::default())
                .await
                .unwrap()
                .items
                .is_empty()
        );
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_answers_what_ran_between_events() {
    each_backend("at", |ctx| async move {
        let store = ctx.open().await;
        store.record(&history()).await.unwrap();
        let (old, a, b) = (dg('0'), dg('a'), dg('b'));
        let at = |env: &'static str, t: &'static str| {
            let store = store.clone();
            async move {
                let p = store.at(env, t, &Page::default()).await.unwrap();
                assert!(p.next.is_none());
                p.items
                    .into_iter()
                    .map(|d| (d.image, d.digest, d.since, d.via, d.commit))
                    .collect::<Vec<_>>()
            }
        };
        let s = |x: &str| x.to_owned();

        assert!(
            at("prod", "2026-11-01T09:00:59Z").await.is_empty(),
            "before anything"
        );
        let promoted_old = (
            s(IMAGE),
            old.clone(),
            norm("2026-11-01T09:01:00Z"),
            s("promotion"),
            Some(s("c0ffee0000000000000000000000000000000000")),
        );
        assert_eq!(
            at("prod", "2026-11-01T09:01:00Z").await,
            std::slice::from_ref(&promoted_old),
            "at the event itself"
        );
        assert_eq!(
            at("prod", "2026-11-04T09:59:59.999999Z").await,
            [promoted_old]
        );
        let prod_a = (
            s(IMAGE),
            a.clone(),
            norm("2026-11-04T10:00:00Z"),
            s("promotion"),
            Some(s("9d0d000000000000000000000000000000000042")),
        );
        assert_eq!(
            at("prod", "2026-11-04T10:00:01Z").await,
            std::slice::from_ref(&prod_a)
        );
        // time zones: 12:00:01+02:00 is 10:00:01Z
        assert_eq!(at("prod", "2026-11-04T12:00:01+02:00").await, [prod_a]);
        // the rollback brings OLD back, since the rollback
        assert_eq!(
            at("prod", "2026-11-06T00:00:00Z").await,
            [(
                s(IMAGE),
                old.clone(),
                norm("2026-11-05T10:00:00Z"),
                s("promotion"),
                Some(s("9d0d000000000000000000000000000000000043"))
            )]
        );
        // dev: A arrived at 10:05, B at 10:06
        assert_eq!(at("dev", "2026-11-02T10:05:30Z").await.len(), 1);
        let dev = at("dev", "2026-11-03T00:00:00Z").await;
        assert_eq!(
            dev.iter()
                .map(|d| (d.0.as_str(), d.1.as_str()))
                .collect::<Vec<_>>(),
            [(IMAGE, a.as_str()), (WORKER, b.as_str())]
        );
        assert_eq!(
            at("staging", "2026-11-04T10:00:00Z").await[0].2,
            norm("2026-11-03T10:00:00Z")
        );
        // a cluster: admissions only; denied ones never count
        assert_eq!(
            at("prod-us", "2026-11-05T00:00:00Z").await,
            [(
                s(IMAGE),
                a.clone(),
                norm("2026-11-04T10:03:00Z"),
                s("admission"),
                None
            )]
        );
        let eu = at("prod-eu", "2026-11-05T00:00:00Z").await;
        assert_eq!(
            eu.iter().map(|d| d.0.as_str()).collect::<Vec<_>>(),
            [IMAGE, "ghcr.io/acme/tool"]
        );
        assert!(at("prod-eu", "2026-11-04T10:01:59Z").await.is_empty());
        assert!(at("nowhere", "2026-11-06T00:00:00Z").await.is_empty());

        // since = start of the current run: A re-admitted after the rollback keeps its first
        // post-rollback time, not its first-ever.
        store
            .record(&[
                admission(
                    "2026-11-06T10:00:00Z",
                    "prod-eu",
                    "payments",
                    IMAGE,
                    Some(&old),
                    "allow",
                ),
                admission(
                    "2026-11-06T11:00:00Z",
                    "prod-eu",
                    "payments",
                    IMAGE,
                    Some(&a),
                    "allow",
                ),
                admission(
                    "2026-11-06T12:00:00Z",
                    "prod-eu",
                    "payments",
                    IMAGE,
                    Some(&a),
                    "allow",
                ),
            ])
            .await
            .unwrap();
        let eu = at("prod-eu", "2026-11-07T00:00:00Z").await;
        assert_eq!(eu[0].1, a);
        assert_eq!(eu[0].2, norm("2026-11-06T11:00:00Z"));
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_walks_2500_rows_without_duplicates_or_gaps() {
    each_backend("pages", |ctx| async move {
        let store = ctx.open().await;
        const N: u64 = 2500;
        let commit = "abcdef0123456789abcdef0123456789abcdef01";
        let mut events = Vec::new();
        for i in 0..N {
            let d = numbered(i + 1);
            let t = format!(
                "2026-11-10T{:02}:{:02}:{:02}Z",
                i / 3600,
                (i / 60) % 60,
                i % 60
            );
            let image = format!("registry.example/bulk/img-{i:05}");
            events.push(built(
                verdict(&t, &image, &d, Some("bulk"), "allow"),
                commit,
                SIGNER,
                "run/1",
                i,
            ));
            events.push(promotion(
                &t,
                "bulk",
                &image,
                None,
                &d,
                commit,
                None,
                "promotion",
            ));
        }
        store.record(&events).await.unwrap(); // 5 000 events, one transaction
        assert_eq!(ctx.events().await, 5000);

        let expected: BTreeSet<String> = (0..N).map(|i| numbered(i + 1)).collect();
        // by_commit
        let (mut seen, mut sizes, mut cursor) = (Vec::new(), Vec::new(), None);
        loop {
            let p = store
                .by_commit(
                    &commit[..7],
                    &Page {
                        limit: 1000,
                        cursor: cursor.clone(),
                    },
                )
                .await
                .unwrap();
            sizes.push(p.items.len());
            seen.extend(p.items.into_iter().map(|b| b.digest));
            match p.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        assert_eq!(sizes, [1000, 1000, 500]);
        assert_eq!(seen.len(), 2500);
        assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), expected);
        assert_eq!(
            seen.first(),
            Some(&numbered(1)),
            "in order of first verdict"
        );
        // by_signer
        let (mut seen, mut sizes, mut cursor) = (Vec::new(), Vec::new(), None);
        loop {
            let p = store
                .by_signer(
                    SIGNER,
                    &Page {
                        limit: 1000,
                        cursor: cursor.clone(),
                    },
                )
                .await
                .unwrap();
            sizes.push(p.items.len());
            seen.extend(p.items.into_iter().map(|s| s.digest));
            match p.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        assert_eq!(sizes, [1000, 1000, 500]);
        assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), expected);
        assert_eq!(seen.len(), 2500, "no repeats");
        // at
        let (mut seen, mut sizes, mut cursor) = (Vec::new(), Vec::new(), None);
        loop {
            let p = store
                .at(
                    "bulk",
                    "2026-11-11T00:00:00Z",
                    &Page {
                        limit: 1000,
                        cursor: cursor.clone(),
                    },
                )
                .await
                .unwrap();
            sizes.push(p.items.len());
            seen.extend(p.items.into_iter().map(|d| d.digest));
            match p.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        assert_eq!(sizes, [1000, 1000, 500]);
        assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), expected);
        // an exact multiple: the last full page says there is no next one, or the next is empty
        let p = store
            .by_commit(
                commit,
                &Page {
                    limit: 1000,
                    cursor: None,
                },
            )
            .await
            .unwrap();
        let p = store
            .by_commit(
                commit,
                &Page {
                    limit: 1000,
                    cursor: p.next,
                },
            )
            .await
            .unwrap();
        let p = store
            .by_commit(
                commit,
                &Page {
                    limit: 500,
                    cursor: p.next,
                },
            )
            .await
            .unwrap();
        assert_eq!(p.items.len(), 500);
        assert!(p.next.is_none());
        // the lineage lists are capped
        let l = store.lineage(&numbered(1)).await.unwrap().unwrap();
        assert_eq!(l.verdicts.len(), 1);
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_bounds_and_foreign_cursors_are_refused() {
    each_backend("bounds", |ctx| async move {
        let store = ctx.open().await;
        store.record(&history()).await.unwrap();
        for limit in [0, 1001, u32::MAX] {
            let p = page(limit);
            let errors = [
                store.by_commit(COMMIT, &p).await.unwrap_err(),
                store.by_signer(SIGNER, &p).await.unwrap_err(),
                store
                    .at("prod", "2026-11-05T00:00:00Z", &p)
                    .await
                    .unwrap_err(),
            ];
            for e in errors {
                assert!(
                    matches!(
                        e,
                        StoreError::InvalidInput {
                            field: "page limit",
                            ..
                        }
                    ),
                    "{e}"
                );
                assert!(e.is_caller_error());
                assert!(e.to_string().contains("1 to 1000"), "{e}");
            }
            assert!(store.search("acme", limit).await.is_err());
        }
        for limit in [1, 1000] {
            assert!(store.by_commit(COMMIT, &page(limit)).await.is_ok());
        }
        // one by one
        let p = store.by_signer(SIGNER, &page(1)).await.unwrap();
        assert_eq!(p.items.len(), 1);
        let signer_cursor = p.next.clone().unwrap();
        let p2 = store
            .by_signer(
                SIGNER,
                &Page {
                    limit: 1,
                    cursor: Some(signer_cursor.clone()),
                },
            )
            .await
            .unwrap();
        assert_ne!(p.items[0].digest, p2.items[0].digest);
        // a cursor from another query, an edited one, garbage
        let foreign = Page {
            limit: 10,
            cursor: Some(signer_cursor.clone()),
        };
        let e = store.by_commit(COMMIT, &foreign).await.unwrap_err();
        assert!(e.to_string().contains("belongs to a `signer` query"), "{e}");
        let e = store
            .at("prod", "2026-11-05T00:00:00Z", &foreign)
            .await
            .unwrap_err();
        assert!(e.is_caller_error(), "{e}");
        for bad in [
            "",
            "!!!",
            "' OR 1=1 --",
            "Y29tbWl0Om5vdC1hLW51bWJlcg",
            &"A".repeat(5000),
        ] {
            let e = store
                .by_commit(
                    COMMIT,
                    &Page {
                        limit: 10,
                        cursor: Some(bad.into()),
                    },
                )
                .await
                .unwrap_err();
            assert!(e.is_caller_error(), "{bad}: {e}");
        }
        store.close().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Bad input

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_sql_looking_inputs_match_nothing_or_are_refused() {
    each_backend("malformed", |ctx| async move {
        let store = ctx.open().await;
        store.record(&history()).await.unwrap();
        let injection = "' OR 1=1 --";
        // digests: a clear error, nothing queried
        let upper = format!("sha256:{}", "A".repeat(64));
        let short = format!("sha256:{}", "a".repeat(63));
        for bad in [
            injection,
            "",
            "sha256:xyz",
            upper.as_str(),
            short.as_str(),
            "md5:abc",
            "aaaaaaaa",
            "sha256:' OR 1=1 --",
        ] {
            let e = store.lineage(bad).await.unwrap_err();
            assert!(
                matches!(e, StoreError::InvalidDigest { .. }),
                "{bad:?}: {e}"
            );
            assert!(e.is_caller_error());
            assert!(e.to_string().contains("invalid digest"), "{e}");
        }
        // commits
        for bad in [
            injection,
            "abc",
            "",
            "zzzzzzzz",
            "3f2a9c1%",
            &"a".repeat(65),
        ] {
            let e = store.by_commit(bad, &Page::default()).await.unwrap_err();
            assert!(
                matches!(
                    e,
                    StoreError::InvalidInput {
                        field: "commit",
                        ..
                    }
                ),
                "{bad:?}: {e}"
            );
        }
        // identities and environments are plain values: SQL-looking ones match nothing
        for odd in [injection, "%", "_", "*", "\\", "'; DROP TABLE verdicts; --"] {
            assert!(
                store
                    .by_signer(odd, &Page::default())
                    .await
                    .unwrap()
                    .items
                    .is_empty(),
                "{odd}"
            );
            assert!(
                store
                    .at(odd, "2026-11-06T00:00:00Z", &Page::default())
                    .await
                    .unwrap()
                    .items
                    .is_empty(),
                "{odd}"
            );
            assert!(
                store.search(odd, 100).await.unwrap().is_empty(),
                "search {odd}"
            );
        }
        assert!(store.by_signer("", &Page::default()).await.is_err());
        assert!(
            store
                .at("", "2026-11-06T00:00:00Z", &Page::default())
                .await
                .is_err()
        );
        // times
        for bad in [
            "not a time",
            "2026-11-04T10:00:00",
            "2026-13-01T00:00:00Z",
            "",
            injection,
            "-0001-01-01T00:00:00Z",
        ] {
            let e = store.at("prod", bad, &Page::default()).await.unwrap_err();
            assert!(matches!(e, StoreError::InvalidTime { .. }), "{bad:?}: {e}");
            assert!(e.to_string().contains("RFC 3339"), "{e}");
        }
        // search
        assert!(store.search("", 10).await.is_err());
        assert!(store.search("   ", 10).await.is_err());
        assert!(store.search("sha256:zz", 10).await.is_err());
        assert!(store.search(&"x".repeat(300), 10).await.is_err());
        assert!(store.search("a\0b", 10).await.is_err());
        // ids
        for id in [-1, 0, i64::MAX, i64::MIN] {
            assert!(store.verdict(id).await.unwrap().is_none());
        }
        // the tables are all still there
        assert_eq!(ctx.events().await, i64::try_from(history().len()).unwrap());
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_refuse_the_whole_batch() {
    each_backend("bad-events", |ctx| async move {
        let store = ctx.open().await;
        let good = || {
            Event::Verdict(verdict(
                "2026-11-01T00:00:00Z",
                IMAGE,
                &dg('a'),
                None,
                "allow",
            ))
        };
        let v = |f: &dyn Fn(&mut VerdictEvent)| {
            let mut v = verdict("2026-11-01T00:00:00Z", IMAGE, &dg('b'), None, "allow");
            f(&mut v);
            Event::Verdict(v)
        };
        let cases: Vec<(&str, Event)> = vec![
            ("bad digest", v(&|v| v.digest = "sha256:1234".into())),
            ("tag for digest", v(&|v| v.digest = "latest".into())),
            ("bad time", v(&|v| v.time = "yesterday".into())),
            ("no offset", v(&|v| v.time = "2026-11-01T00:00:00".into())),
            ("bad decision", v(&|v| v.decision = "maybe".into())),
            ("empty image", v(&|v| v.image = String::new())),
            ("NUL", v(&|v| v.policy = "a\0b".into())),
            ("huge field", v(&|v| v.run = Some("x".repeat(5000)))),
            (
                "too many reasons",
                v(&|v| v.reasons = vec!["r".into(); 1000]),
            ),
            (
                "bad sbom digest",
                v(&|v| v.sbom_digest = Some("nope".into())),
            ),
            (
                "bad kind",
                promotion(
                    "2026-11-01T00:00:00Z",
                    "prod",
                    IMAGE,
                    None,
                    &dg('b'),
                    "c",
                    None,
                    "yolo",
                ),
            ),
            (
                "bad from digest",
                promotion(
                    "2026-11-01T00:00:00Z",
                    "prod",
                    IMAGE,
                    Some("x"),
                    &dg('b'),
                    "c",
                    None,
                    "promotion",
                ),
            ),
            (
                "bad admission digest",
                admission(
                    "2026-11-01T00:00:00Z",
                    "c",
                    "n",
                    IMAGE,
                    Some("sha256:"),
                    "allow",
                ),
            ),
            (
                "empty cluster",
                admission("2026-11-01T00:00:00Z", "", "n", IMAGE, None, "allow"),
            ),
        ];
        for (name, bad) in cases {
            assert!(bad.validate().is_err(), "{name}");
            let e = store.record(&[good(), bad]).await.unwrap_err();
            assert!(e.is_caller_error(), "{name}: {e}");
        }
        assert_eq!(
            ctx.events().await,
            0,
            "nothing of a refused batch is written"
        );
        assert!(store.lineage(&dg('a')).await.unwrap().is_none());
        store.record(&[good()]).await.unwrap();
        store.record(&[]).await.unwrap();
        assert_eq!(ctx.events().await, 1);
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_are_stored_in_utc_with_fixed_width() {
    each_backend("times", |ctx| async move {
        let store = ctx.open().await;
        store
            .record(&[
                Event::Verdict(verdict(
                    "2026-11-01T12:00:00.123456789+02:00",
                    IMAGE,
                    &dg('a'),
                    None,
                    "allow",
                )),
                Event::Verdict(verdict(
                    "2026-11-01T09:59:59Z",
                    IMAGE,
                    &dg('a'),
                    None,
                    "deny",
                )),
            ])
            .await
            .unwrap();
        let l = store.lineage(&dg('a')).await.unwrap().unwrap();
        let times: Vec<_> = l.verdicts.iter().map(|v| v.time.as_str()).collect();
        assert_eq!(
            times,
            ["2026-11-01T09:59:59.000000Z", "2026-11-01T10:00:00.123456Z"]
        );
        store.close().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Opening: URLs, damaged files, newer schemas

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_and_unreachable_stores_are_clear_errors() {
    for url in [
        "",
        "mysql://u@h/db",
        "sqlite:",
        "sqlite://",
        "file:x.db",
        "sqlite:x.db?mode=bogus",
    ] {
        let e = Store::open(url).await.unwrap_err();
        assert!(matches!(e, StoreError::BadUrl { .. }), "{url:?}: {e}");
        assert!(e.to_string().contains("sqlite:PATH"), "{e}");
    }
    let e = Store::open("sqlite:/nonexistent-custody-dir/sub/lineage.db")
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::CannotOpen { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("/nonexistent-custody-dir/sub/lineage.db"),
        "{e}"
    );
    // nothing listens on port 1: refused, reported within the acquire timeout
    let started = Instant::now();
    let e = Store::open("postgres://custody:s3cret@127.0.0.1:1/test")
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::CannotOpen { .. }), "{e}");
    assert!(
        !e.to_string().contains("s3cret"),
        "password must not leak: {e}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    // a search_path naming a schema that does not exist: nowhere to create tables
    if postgres_admin().await.is_some() {
        let url = with_search_path(
            &postgres_base(),
            &format!("custody_missing_{}", random_hex()),
        );
        let e = Store::open(&url).await.unwrap_err();
        assert!(matches!(e, StoreError::Migration { .. }), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_store_works() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    store.record(&history()).await.unwrap();
    assert!(store.lineage(&dg('a')).await.unwrap().is_some());
    let p = store.by_commit(COMMIT, &Page::default()).await.unwrap();
    assert_eq!(p.items.len(), 2);
    assert_eq!(store.backend(), "sqlite");
    // separate memory stores are separate
    let other = Store::open("sqlite::memory:").await.unwrap();
    assert!(other.lineage(&dg('a')).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_files_are_wal_and_reopen_with_their_data() {
    let dir = TempDir::new("wal");
    let file = dir.0.join("lineage.db");
    for url in [
        format!("sqlite:{}", file.display()),
        format!("sqlite://{}", file.display()),
    ] {
        let store = Store::open(&url).await.unwrap();
        store.record(&history()[..3]).await.unwrap();
        store.close().await;
    }
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite:{}", file.display()))
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM verdicts")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 4, "both opens recorded, nothing lost on reopen");
    let v: i64 = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(
        v,
        Store::open("sqlite::memory:")
            .await
            .unwrap()
            .schema_version()
    );
}

fn sidecars(file: &Path) -> Vec<PathBuf> {
    ["-wal", "-shm", "-journal"]
        .iter()
        .map(|s| PathBuf::from(format!("{}{s}", file.display())))
        .filter(|p| p.exists())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_sqlite_file_is_refused_and_left_untouched() {
    let dir = TempDir::new("corrupt");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "garbage",
            (0..8192u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
        ),
        (
            "text",
            b"this is not a database, it is a shopping list\n".to_vec(),
        ),
        ("one byte", vec![0x42]),
        // the right header, garbage after it: SQLite itself finds the damage
        ("header then garbage", {
            let mut b = b"SQLite format 3\0".to_vec();
            b.extend((0..4080u32).map(|i| (i.wrapping_mul(40_503) >> 7) as u8));
            b
        }),
    ];
    for (name, bytes) in cases {
        let file = dir.0.join(format!("{}.db", name.replace(' ', "-")));
        std::fs::write(&file, &bytes).unwrap();
        let e = Store::open(&format!("sqlite:{}", file.display()))
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{name}: {e}");
        let msg = e.to_string();
        assert!(
            msg.contains(&file.display().to_string()) && msg.contains("untouched"),
            "{msg}"
        );
        assert_eq!(std::fs::read(&file).unwrap(), bytes, "{name}: file changed");
        assert!(sidecars(&file).is_empty(), "{name}: {:?}", sidecars(&file));
    }
    // an empty file is a new database
    let empty = dir.0.join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    Store::open(&format!("sqlite:{}", empty.display()))
        .await
        .unwrap()
        .close()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_from_a_newer_custody_is_refused_without_touching_data() {
    each_backend("newer", |ctx| async move {
        let store = ctx.open().await;
        store.record(&history()).await.unwrap();
        let known = store.schema_version();
        store.close().await;
        let checksum = if ctx.backend == "postgres" { "'\\x00'::bytea" } else { "X'00'" };
        ctx.exec(&format!(
            "INSERT INTO {{s}}_sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99990101000000, 'from the future', TRUE, {checksum}, 0)"
        ))
        .await;
        let before = ctx.events().await;
        let bytes_before = ctx.file.as_ref().map(|f| std::fs::read(f).unwrap());

        let e = Store::open(&ctx.url).await.unwrap_err();
        let StoreError::SchemaTooNew { found, supported, .. } = &e else { panic!("{e}") };
        assert_eq!((*found, *supported), (99990101000000, known));
        let msg = e.to_string();
        assert!(msg.contains("99990101000000") && msg.contains(&known.to_string()), "{msg}");
        assert!(msg.contains("nothing was changed") && msg.contains("upgrade custody"), "{msg}");

        assert_eq!(ctx.events().await, before, "no data destroyed");
        assert_eq!(ctx.count("_sqlx_migrations").await, 2, "the future migration is still recorded");
        if let (Some(f), Some(b)) = (&ctx.file, bytes_before) {
            assert_eq!(std::fs::read(f).unwrap(), b, "file unchanged");
        }
        // a half-applied migration of ours (success = false) is refused too, not re-run
        ctx.exec("DELETE FROM {s}_sqlx_migrations WHERE version = 99990101000000").await;
        ctx.exec("UPDATE {s}_sqlx_migrations SET success = FALSE").await;
        let e = Store::open(&ctx.url).await.unwrap_err();
        assert!(matches!(e, StoreError::Migration { .. }), "{e}");
        assert_eq!(ctx.events().await, before);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_selected_by_search_path_are_separate() {
    let Some(admin) = postgres_admin().await else {
        return;
    };
    let (s1, s2) = (
        format!("custody_test_{}", random_hex()),
        format!("custody_test_{}", random_hex()),
    );
    for s in [&s1, &s2] {
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {s}")))
            .execute(&admin)
            .await
            .unwrap();
    }
    let result = run_isolated({
        let (s1, s2) = (s1.clone(), s2.clone());
        async move {
            let one = Store::open(&with_search_path(&postgres_base(), &s1))
                .await
                .unwrap();
            let two = Store::open(&format!("{}?options[search_path]={s2}", postgres_base()))
                .await
                .unwrap();
            one.record(&history()).await.unwrap();
            assert!(one.lineage(&dg('a')).await.unwrap().is_some());
            assert!(two.lineage(&dg('a')).await.unwrap().is_none());
            one.close().await;
            two.close().await;
        }
    })
    .await;
    for s in [&s1, &s2] {
        sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA {s} CASCADE")))
            .execute(&admin)
            .await
            .unwrap();
    }
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

// ---------------------------------------------------------------------------------------------
// Concurrency

/// Mixed events numbered `k`, for writer `w`.
fn mixed(w: u64, k: u64) -> Event {
    let n = w * 1_000_000 + k;
    let t = format!(
        "2026-11-20T{:02}:{:02}:{:02}.{:06}Z",
        (k / 3600) % 24,
        (k / 60) % 60,
        k % 60,
        w
    );
    let d = numbered(n % 97 + 1);
    match k % 10 {
        0..=5 => admission(&t, &format!("cluster-{w}"), "ns", IMAGE, Some(&d), "allow"),
        6..=8 => built(
            verdict(&t, IMAGE, &d, Some("prod"), "allow"),
            COMMIT,
            SIGNER,
            "run/1",
            n,
        ),
        _ => promotion(&t, "prod", IMAGE, None, &d, COMMIT, None, "promotion"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_lose_no_events() {
    each_backend("concurrent", |ctx| async move {
        // four handles (four pools, as four replicas would have), opened at the same moment
        let opens = (0..4).map(|_| {
            let url = ctx.url.clone();
            tokio::spawn(async move { Store::open(&url).await })
        });
        let mut stores = Vec::new();
        for o in opens {
            stores.push(o.await.unwrap().expect("concurrent open"));
        }
        let tasks: Vec<JoinHandle<()>> = stores
            .iter()
            .cloned()
            .enumerate()
            .map(|(w, store)| {
                tokio::spawn(async move {
                    let w = w as u64;
                    for batch in 0..20u64 {
                        let events: Vec<Event> =
                            (0..100).map(|i| mixed(w, batch * 100 + i)).collect();
                        store.record(&events).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(ctx.events().await, 8000);
        for w in 0..4 {
            let p = stores[0]
                .at(
                    &format!("cluster-{w}"),
                    "2026-11-21T00:00:00Z",
                    &Page::default(),
                )
                .await
                .unwrap();
            assert_eq!(p.items.len(), 1);
        }
        for s in stores {
            s.close().await;
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The writer

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_commits_in_groups() {
    each_backend("group", |ctx| async move {
        let store = ctx.open().await;
        let writer = Writer::spawn(
            store.clone(),
            WriterOptions {
                max_batch: 100,
                max_delay: Duration::from_millis(300),
                queue: 10_000,
            },
        );
        for k in 0..1000 {
            writer.submit(mixed(0, k)).unwrap();
        }
        writer.flush().await.unwrap();
        let s = writer.stats();
        assert_eq!(s.written, 1000);
        assert!(
            (10..=12).contains(&s.batches),
            "1000 events in batches of 100: {s:?}"
        );
        assert_eq!((s.failed_batches, s.rejected, s.queued), (0, 0, 0));
        // a trickle within max_delay is one batch
        for k in 1000..1005 {
            writer.submit(mixed(0, k)).unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        writer.flush().await.unwrap();
        assert_eq!(writer.stats().batches, s.batches + 1);
        // acknowledged submits from many tasks share transactions
        let before = writer.stats().batches;
        let acks: Vec<_> = (0..50u64)
            .map(|i| {
                let w = writer.clone();
                tokio::spawn(async move {
                    w.submit_acked(vec![mixed(1, i * 2), mixed(1, i * 2 + 1)])
                        .await
                })
            })
            .collect();
        for a in acks {
            a.await.unwrap().unwrap();
        }
        let after = writer.stats();
        assert_eq!(after.written, 1105);
        assert!(after.batches - before < 50, "group commit: {after:?}");
        assert_eq!(ctx.events().await, 1105);
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_refuses_invalid_events_at_the_door() {
    each_backend("writer-invalid", |ctx| async move {
        let store = ctx.open().await;
        let writer = Writer::spawn(store.clone(), WriterOptions::default());
        let bad = Event::Verdict(verdict(
            "2026-11-01T00:00:00Z",
            IMAGE,
            "sha256:nope",
            None,
            "allow",
        ));
        assert!(matches!(
            writer.submit(bad.clone()),
            Err(Rejected::Invalid(_))
        ));
        let e = writer
            .submit_acked(vec![mixed(0, 1), bad])
            .await
            .unwrap_err();
        assert!(e.is_caller_error(), "{e}");
        let bad_time = admission("noon", "c", "n", IMAGE, None, "allow");
        assert!(writer.submit(bad_time).is_err());
        writer.submit(mixed(0, 2)).unwrap();
        writer.flush().await.unwrap();
        let s = writer.stats();
        assert_eq!((s.written, s.rejected, s.failed_batches), (1, 2, 0));
        assert_eq!(ctx.events().await, 1);
        // more than the queue holds in one acknowledged submit
        let small = Writer::spawn(
            store.clone(),
            WriterOptions {
                queue: 10,
                ..WriterOptions::default()
            },
        );
        let e = small
            .submit_acked((0..11).map(|k| mixed(0, k)).collect())
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Limit { .. }), "{e}");
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_events_survive_flush_and_reopen() {
    each_backend("durable", |ctx| async move {
        let store = ctx.open().await;
        let writer = Writer::spawn(store.clone(), WriterOptions::default());
        for chunk in 0..3u64 {
            writer
                .submit_acked((0..100).map(|k| mixed(2, chunk * 100 + k)).collect())
                .await
                .unwrap();
        }
        for k in 300..500 {
            writer.submit(mixed(2, k)).unwrap();
        }
        writer.flush().await.unwrap();
        drop(writer);
        store.close().await;
        let reopened = ctx.open().await;
        assert_eq!(ctx.events().await, 500);
        let p = reopened
            .at("cluster-2", "2026-11-21T00:00:00Z", &Page::default())
            .await
            .unwrap();
        assert_eq!(p.items.len(), 1);
        reopened.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_store_fails_batches_and_submit_never_waits() {
    each_backend("closed", |ctx| async move {
        let store = ctx.open().await;
        let writer = Writer::spawn(
            store.clone(),
            WriterOptions {
                max_batch: 50,
                max_delay: Duration::from_millis(5),
                queue: 200,
            },
        );
        writer.submit_acked(vec![mixed(3, 0)]).await.unwrap();
        store.close().await;
        let e = writer.submit_acked(vec![mixed(3, 1)]).await.unwrap_err();
        assert!(matches!(e, StoreError::ConnectionLost { .. }), "{e}");
        let started = Instant::now();
        let mut rejected = 0;
        for k in 0..5000 {
            if writer.submit(mixed(3, k)).is_err() {
                rejected += 1;
            }
        }
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "submit waited: {:?}",
            started.elapsed()
        );
        assert!(
            rejected >= 4700,
            "queue of 200 must reject the rest: {rejected}"
        );
        let s = writer.stats();
        assert!(s.failed_batches >= 1 && s.rejected >= 4700, "{s:?}");
        assert!(
            writer.flush().await.is_err(),
            "flush reports the lost batches"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_sqlite_file_fills_the_queue_without_blocking_and_loses_nothing_accepted() {
    let dir = TempDir::new("locked");
    let file = dir.0.join("lineage.db");
    let url = format!("sqlite:{}", file.display());
    let store = Store::open(&url).await.unwrap();
    let writer = Writer::spawn(
        store.clone(),
        WriterOptions {
            max_batch: 20,
            max_delay: Duration::from_millis(5),
            queue: 100,
        },
    );
    // another process holds the write lock
    let mut holder = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();
    let started = Instant::now();
    let (mut accepted, mut full) = (0u64, 0u64);
    for k in 0..1000 {
        match writer.submit(mixed(4, k)) {
            Ok(()) => accepted += 1,
            Err(Rejected::QueueFull { capacity: 100 }) => full += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(accepted, 100);
    assert_eq!(full, 900);
    tokio::time::sleep(Duration::from_millis(500)).await;
    sqlx::raw_sql("COMMIT").execute(&mut holder).await.unwrap();
    holder.close().await.unwrap();
    writer.flush().await.unwrap();
    let s = writer.stats();
    assert_eq!(
        (s.written, s.rejected, s.failed_batches),
        (100, 900, 0),
        "{s:?}"
    );
    store.close().await;
}

/// A TCP forwarder in front of PostgreSQL that can be cut and restored.
struct Proxy {
    port: u16,
    target: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(port: u16, target: SocketAddr) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let inner = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                inner.lock().unwrap().push(conn);
            }
        });
        tasks.lock().unwrap().push(accept);
        Self {
            port,
            target,
            tasks,
        }
    }

    /// Stops listening and drops every forwarded connection.
    fn cut(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

fn postgres_addr(url: &str) -> (SocketAddr, String, String) {
    use std::str::FromStr;
    let o = sqlx::postgres::PgConnectOptions::from_str(url).unwrap();
    let host = if o.get_host() == "localhost" {
        "127.0.0.1"
    } else {
        o.get_host()
    };
    let addr: SocketAddr = format!("{host}:{}", o.get_port())
        .parse()
        .expect("the test server on an IP address");
    (
        addr,
        o.get_username().to_owned(),
        o.get_database().unwrap_or("postgres").to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_fails_batches_then_the_writer_recovers() {
    let Some(admin) = postgres_admin().await else {
        return;
    };
    let schema = format!("custody_test_{}", random_hex());
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    let result = run_isolated_value({
        let schema = schema.clone();
        async move {
            let (target, user, db) = postgres_addr(&postgres_base());
            let proxy = Proxy::start(0, target).await;
            let url = format!(
                "postgres://{user}@127.0.0.1:{}/{db}?options=-csearch_path%3D{schema}",
                proxy.port
            );
            let store = Store::open(&url).await.unwrap();
            let writer = Writer::spawn(
                store.clone(),
                WriterOptions {
                    max_batch: 100,
                    max_delay: Duration::from_millis(5),
                    queue: 1000,
                },
            );
            writer
                .submit_acked((0..10).map(|k| mixed(5, k)).collect())
                .await
                .unwrap();

            proxy.cut(); // the database disappears mid-run
            let started = Instant::now();
            let e = writer.submit_acked(vec![mixed(5, 10)]).await.unwrap_err();
            assert!(
                matches!(
                    e,
                    StoreError::ConnectionLost { .. } | StoreError::Timeout { .. }
                ),
                "{e}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(40),
                "{:?}",
                started.elapsed()
            );

            let started = Instant::now();
            let mut rejected = 0;
            for k in 0..5000 {
                if writer.submit(mixed(5, 100 + k)).is_err() {
                    rejected += 1;
                }
            }
            assert!(
                started.elapsed() < Duration::from_millis(500),
                "submit waited: {:?}",
                started.elapsed()
            );
            assert!(rejected >= 4000, "{rejected}");
            let s = writer.stats();
            assert!(s.failed_batches >= 1, "{s:?}");

            // the database comes back on the same address: the writer retries and recovers
            let _back = Proxy::start(proxy.port, proxy.target).await;
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                match writer.submit_acked(vec![mixed(6, 0), mixed(6, 1)]).await {
                    Ok(()) => break,
                    Err(e) if Instant::now() < deadline => {
                        eprintln!("not yet: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(e) => panic!("the writer did not recover: {e}"),
                }
            }
            let _ = writer.flush().await; // may report the batches lost meanwhile
            writer.flush().await.unwrap();
            let s = writer.stats();
            store.close().await;
            (s.written, s.failed_events)
        }
    });
    let (written, failed) = match result.await {
        Ok(v) => v,
        Err(p) => {
            sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&admin)
                .await
                .unwrap();
            std::panic::resume_unwind(p)
        }
    };
    // every acknowledged event is there; events written + lost = everything accepted
    let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT (SELECT COUNT(*) FROM {schema}.verdicts) + (SELECT COUNT(*) FROM {schema}.promotions) + (SELECT COUNT(*) FROM {schema}.admissions)"
    )))
    .fetch_one(&admin)
    .await
    .unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await
        .unwrap();
    assert_eq!(u64::try_from(n).unwrap(), written);
    assert!(written >= 12, "the 10 + 2 acknowledged events: {written}");
    assert!(failed >= 1);
}

/// [`run_isolated`] for a body that returns a value.
async fn run_isolated_value<T: Send + 'static>(
    fut: impl Future<Output = T> + Send + 'static,
) -> Result<T, Box<dyn std::any::Any + Send>> {
    match tokio::spawn(fut).await {
        Ok(v) => Ok(v),
        Err(e) if e.is_panic() => Err(e.into_panic()),
        Err(e) => Err(Box::new(e.to_string())),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON

#[test]
fn events_serialise_as_tagged_camel_case_json() {
    let e = history().remove(2);
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["type"], "verdict");
    assert_eq!(json["sourceCommit"], COMMIT);
    assert_eq!(json["policyHash"], "sha256:policy");
    assert_eq!(json["logIndexes"], serde_json::json!([1000, 1001]));
    let back: Event = serde_json::from_value(json).unwrap();
    assert_eq!(back, e);
    let p: Event = serde_json::from_str(
        r#"{"type":"promotion","time":"2026-11-01T00:00:00Z","repository":"r","environment":"prod","commit":"c",
            "image":"i","toDigest":"sha256:x","kind":"rollback"}"#,
    )
    .unwrap();
    assert!(matches!(
        p,
        Event::Promotion(PromotionEvent {
            pull_request: None,
            from_digest: None,
            ..
        })
    ));
    let v: Event = serde_json::from_str(
        r#"{"type":"verdict","time":"t","image":"i","digest":"d","policy":"p","policyHash":"h","trustRootHash":"r","decision":"allow"}"#,
    )
    .unwrap();
    assert!(matches!(v, Event::Verdict(VerdictEvent { ref reasons, .. }) if reasons.is_empty()));
    assert!(serde_json::from_str::<Event>(r#"{"type":"deployment","time":"t"}"#).is_err());
    assert!(serde_json::from_str::<Event>(r#"{"time":"t"}"#).is_err());
    let page = serde_json::to_value(custody::store::Paged {
        items: vec![1],
        next: Some("x".to_string()),
    })
    .unwrap();
    assert_eq!(page, serde_json::json!({"items": [1], "next": "x"}));
}

/// A statement that fails half-way through a batch (here a trigger refusing one admission row,
/// standing in for a full disk or a constraint) leaves nothing of the batch behind: not the
/// verdict before it, not the admissions of the same multi-row INSERT, not the digest. On
/// SQLite this is what `INSERT OR FAIL` (see `src/store/write.rs`) must not break: the failing
/// statement keeps its earlier rows, and only the transaction's rollback removes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_failing_mid_batch_leaves_nothing_of_the_batch() {
    each_backend("mid-batch-failure", |ctx| async move {
        let store = ctx.open().await;
        let digest = dg('e');
        let mut boom = admission(
            "2026-11-01T00:00:02Z",
            "prod-eu",
            "shop",
            IMAGE,
            Some(&digest),
            "allow",
        );
        if let Event::Admission(a) = &mut boom {
            a.workload = "Deployment/boom".into();
        }
        let batch = vec![
            Event::Verdict(verdict(
                "2026-11-01T00:00:00Z",
                IMAGE,
                &digest,
                None,
                "allow",
            )),
            admission(
                "2026-11-01T00:00:01Z",
                "prod-eu",
                "shop",
                IMAGE,
                Some(&digest),
                "allow",
            ),
            boom,
            admission(
                "2026-11-01T00:00:03Z",
                "prod-eu",
                "shop",
                IMAGE,
                Some(&digest),
                "allow",
            ),
        ];
        if ctx.backend == "sqlite" {
            ctx.exec(
                "CREATE TRIGGER boom BEFORE INSERT ON admissions \
                 WHEN NEW.workload = 'Deployment/boom' BEGIN SELECT RAISE(FAIL, 'boom'); END",
            )
            .await;
        } else {
            ctx.exec(
                "CREATE FUNCTION {s}boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF NEW.workload = 'Deployment/boom' THEN RAISE EXCEPTION 'boom'; END IF; \
                 RETURN NEW; END $$; \
                 CREATE TRIGGER boom BEFORE INSERT ON {s}admissions \
                 FOR EACH ROW EXECUTE FUNCTION {s}boom()",
            )
            .await;
        }
        let err = store
            .record(&batch)
            .await
            .expect_err("the trigger refuses the batch");
        assert!(err.to_string().contains("boom"), "{err}");
        assert_eq!(
            ctx.events().await,
            0,
            "no event of the failed batch is left"
        );
        assert_eq!(ctx.count("digests").await, 0, "nor its digest");
        assert!(store.lineage(&digest).await.unwrap().is_none());

        // The same batch without the refused row goes in whole, on the same store handle.
        let without: Vec<Event> = batch
            .iter()
            .filter(|e| !matches!(e, Event::Admission(a) if a.workload == "Deployment/boom"))
            .cloned()
            .collect();
        store.record(&without).await.unwrap();
        assert_eq!(ctx.count("verdicts").await, 1);
        assert_eq!(ctx.count("admissions").await, 2);
        let lineage = store.lineage(&digest).await.unwrap().expect("recorded");
        assert_eq!(lineage.verdicts.len(), 1);
        store.close().await;
    })
    .await;
}

/// Retention: `prune` deletes the admissions (and, when asked, the verdicts) strictly before a
/// time, across more ids than one delete chunk, keeps promotions and everything at or after the
/// time, refuses a malformed time without deleting anything, and does nothing the second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_deletes_old_admissions_and_verdicts_and_keeps_the_rest() {
    each_backend("prune", |ctx| async move {
        let store = ctx.open().await;
        let (kept, gone) = (dg('c'), dg('d'));
        let cutoff = "2026-11-01T00:00:00Z";
        let time = |date: &str, i: usize| {
            format!("{date}T{:02}:{:02}:{:02}Z", i / 3600, (i / 60) % 60, i % 60)
        };
        // 2.5 delete chunks of admissions, old and new interleaved.
        let n = usize::try_from(PRUNE_CHUNK).unwrap() * 5 / 2;
        let mut events = Vec::with_capacity(n + 4);
        for i in 0..n {
            let (date, digest) = if i % 2 == 0 {
                ("2026-10-31", &gone)
            } else {
                ("2026-11-01", &kept)
            };
            events.push(admission(
                &time(date, i),
                "prod",
                "shop",
                IMAGE,
                Some(digest),
                "allow",
            ));
        }
        events.push(Event::Verdict(verdict(
            "2026-10-30T00:00:00Z",
            IMAGE,
            &gone,
            Some("prod"),
            "allow",
        )));
        events.push(Event::Verdict(verdict(
            cutoff,
            IMAGE,
            &kept,
            Some("prod"),
            "allow",
        )));
        events.push(promotion(
            "2026-10-30T00:00:00Z",
            "prod",
            IMAGE,
            None,
            &gone,
            "c0ffee0000000000000000000000000000000000",
            None,
            "promotion",
        ));
        for chunk in events.chunks(1000) {
            store.record(chunk).await.unwrap();
        }
        let half = i64::try_from(n / 2).unwrap();
        assert_eq!(ctx.count("admissions").await, 2 * half);

        let err = store.prune("last week", true).await.unwrap_err();
        assert!(err.to_string().contains("last week"), "{err}");
        assert_eq!(ctx.events().await, 2 * half + 3, "nothing deleted");

        let pruned = store.prune(cutoff, false).await.unwrap();
        assert_eq!(
            (pruned.admissions, pruned.verdicts),
            (u64::try_from(half).unwrap(), 0)
        );
        assert_eq!(ctx.count("admissions").await, half, "the newer half stays");
        assert_eq!(ctx.count("verdicts").await, 2, "verdicts only when asked");
        assert_eq!(ctx.count("promotions").await, 1, "promotions never");

        let l = store.lineage(&gone).await.unwrap().expect("still known");
        assert!(l.admissions.is_empty(), "its admissions are gone");
        assert_eq!(
            l.environments
                .iter()
                .map(|e| (e.environment.as_str(), e.via.as_str()))
                .collect::<Vec<_>>(),
            [("prod", "promotion")],
            "the promotion still says where it went"
        );
        let l = store.lineage(&kept).await.unwrap().expect("kept");
        assert!(!l.admissions.is_empty());

        let pruned = store.prune(cutoff, true).await.unwrap();
        assert_eq!((pruned.admissions, pruned.verdicts), (0, 1));
        assert_eq!(
            ctx.count("verdicts").await,
            1,
            "the verdict at the cutoff stays"
        );
        let pruned = store.prune(cutoff, true).await.unwrap();
        assert_eq!(pruned, Pruned::default(), "nothing left to prune");
        store.close().await;
    })
    .await;
}

/// `custody lineage --prune-before TIME [--prune-verdicts]`: says what it deleted (text and
/// JSON), exit 0; a malformed time or `--prune-verdicts` alone is an error (exit 2) that deletes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_prunes_and_refuses_bad_requests() {
    let dir = TempDir::new("cli-prune");
    let url = format!("sqlite:{}", dir.0.join("lineage.db").display());
    let store = Store::open(&url).await.unwrap();
    store
        .record(&[
            admission(
                "2026-10-01T00:00:00Z",
                "prod",
                "shop",
                IMAGE,
                Some(&dg('a')),
                "allow",
            ),
            admission(
                "2026-12-01T00:00:00Z",
                "prod",
                "shop",
                IMAGE,
                Some(&dg('a')),
                "allow",
            ),
            Event::Verdict(verdict(
                "2026-10-01T00:00:00Z",
                IMAGE,
                &dg('a'),
                None,
                "allow",
            )),
        ])
        .await
        .unwrap();
    store.close().await;
    let custody = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_custody"))
            .arg("lineage")
            .args(args)
            .args(["--store", &url])
            .env_remove("CUSTODY_STORE")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (code, _, stderr) = custody(&["--prune-before", "last week"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("last week"), "{stderr}");
    let (code, _, stderr) = custody(&["--prune-verdicts"]);
    assert_eq!(
        code,
        Some(2),
        "--prune-verdicts needs --prune-before: {stderr}"
    );

    let (code, stdout, stderr) = custody(&["--prune-before", "2026-11-01T00:00:00Z"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout.trim(),
        "deleted 1 admission and 0 verdicts that occurred before 2026-11-01T00:00:00Z"
    );
    let (code, stdout, stderr) = custody(&[
        "--prune-before",
        "2026-11-01T00:00:00Z",
        "--prune-verdicts",
        "--output",
        "json",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json, serde_json::json!({"admissions": 0, "verdicts": 1}));

    let store = Store::open(&url).await.unwrap();
    let l = store.lineage(&dg('a')).await.unwrap().expect("known");
    assert_eq!(l.admissions.len(), 1, "the December admission stays");
    assert!(l.verdicts.is_empty());
    store.close().await;
}

/// Pruning while the service's writer keeps recording: every acknowledged new event is there
/// afterwards, and exactly the old admissions are gone (SQLite: the deletes and the writer's
/// batches take turns on the write lock; PostgreSQL: they touch different rows).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_while_the_writer_records_loses_nothing_new() {
    each_backend("prune-concurrent", |ctx| async move {
        let store = ctx.open().await;
        let old: Vec<Event> = (0..30_000usize)
            .map(|i| {
                admission(
                    &format!(
                        "2026-10-01T{:02}:{:02}:{:02}Z",
                        i / 3600,
                        (i / 60) % 60,
                        i % 60
                    ),
                    "prod",
                    "shop",
                    IMAGE,
                    Some(&dg('a')),
                    "allow",
                )
            })
            .collect();
        for chunk in old.chunks(1000) {
            store.record(chunk).await.unwrap();
        }
        let writer = Writer::spawn(store.clone(), WriterOptions::default());
        let producer = {
            let writer = writer.clone();
            tokio::spawn(async move {
                for k in 0..40u64 {
                    let batch = (0..250u64).map(|j| mixed(7, k * 250 + j)).collect();
                    writer.submit_acked(batch).await.unwrap();
                }
            })
        };
        let pruned = store.prune("2026-11-01T00:00:00Z", false).await.unwrap();
        producer.await.unwrap();
        writer.flush().await.unwrap();
        assert_eq!(pruned.admissions, 30_000);
        let new_events = 40 * 250;
        assert_eq!(writer.stats().written, new_events);
        assert_eq!(
            ctx.events().await,
            i64::try_from(new_events).unwrap(),
            "every acknowledged new event is there, no old admission is"
        );
        store.close().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Review fixes: lineage bounds and damaged rows

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lineage_lists_at_most_100_environments_the_first_reached() {
    each_backend("lineage-env-cap", |ctx| async move {
        let store = ctx.open().await;
        let digest = dg('7');
        let mut events = Vec::new();
        // 150 environments by promotion (minutes 0..150), 150 by admission (seconds 30 later).
        for i in 0..150u32 {
            let t = format!("2026-11-01T{:02}:{:02}:00Z", i / 60, i % 60);
            let ta = format!("2026-11-01T{:02}:{:02}:30Z", i / 60, i % 60);
            events.push(promotion(
                &t,
                &format!("env-{i:03}"),
                IMAGE,
                None,
                &digest,
                "a22f1f2",
                None,
                "promotion",
            ));
            events.push(admission(
                &ta,
                &format!("cluster-{i:03}"),
                "shop",
                IMAGE,
                Some(&digest),
                "allow",
            ));
        }
        store.record(&events).await.unwrap();
        let l = store.lineage(&digest).await.unwrap().unwrap();
        assert_eq!(
            l.environments.len(),
            usize::try_from(custody::store::LINEAGE_MAX_ROWS).unwrap()
        );
        let names: Vec<&str> = l
            .environments
            .iter()
            .map(|e| e.environment.as_str())
            .collect();
        assert_eq!(
            names[..4],
            ["env-000", "cluster-000", "env-001", "cluster-001"]
        );
        assert_eq!(names[98..], ["env-049", "cluster-049"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_stored_list_is_an_error_not_an_empty_list() {
    each_backend("damaged-row", |ctx| async move {
        let store = ctx.open().await;
        let digest = dg('8');
        let mut v = verdict("2026-11-01T00:00:00Z", IMAGE, &digest, None, "deny");
        v.log_indexes = vec![7];
        store.record(&[Event::Verdict(v)]).await.unwrap();
        let id = store.lineage(&digest).await.unwrap().unwrap().verdicts[0].id;
        assert!(store.verdict(id).await.unwrap().is_some());
        ctx.exec("UPDATE {s}verdicts SET reasons = 'not json', log_indexes = '[oops'")
            .await;
        let e = store.verdict(id).await.unwrap_err();
        assert!(
            matches!(e, StoreError::Query { .. }) && !e.is_caller_error(),
            "{e:?}"
        );
        assert!(e.to_string().contains("reading a verdict"), "{e}");
        let e = store.lineage(&digest).await.unwrap_err();
        assert!(matches!(e, StoreError::Query { .. }), "{e:?}");
    })
    .await;
}

/// `custody lineage` on a SQLite path that does not exist is an error naming the path (exit 2),
/// and creates nothing: a typo must not read as "nothing recorded".
#[test]
fn the_cli_refuses_a_sqlite_store_that_does_not_exist() {
    let dir = TempDir::new("cli-missing");
    let path = dir.0.join("typo.db");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(["lineage", &dg('a'), "--store"])
        .arg(format!("sqlite:{}", path.display()))
        .env_remove("CUSTODY_STORE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no lineage store at") && stderr.contains("typo.db"),
        "{stderr}"
    );
    assert!(!path.exists(), "nothing created");
}
