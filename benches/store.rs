//! Lineage store: ingest throughput through the [`Writer`] and lineage query latency, on SQLite
//! and PostgreSQL.
//!
//! * Ingest: `CUSTODY_BENCH_EVENTS` events (default 1 000 000): 60 % admissions, 30 % verdicts
//!   (with full build facts), 10 % promotions, over `events / 50` digests (20 000 at full size),
//!   each digest with its commit, image and signer. Four producer tasks generate events and
//!   hand them to one [`Writer`] (default options: batches of up to 2 000, 20 ms) with
//!   `submit_acked` in batches of 500, so every event counted is committed. Reported: events/s
//!   from the first submit to the last acknowledgement (target ≥ 20 000/s).
//! * Query: `Store::lineage` for `CUSTODY_BENCH_QUERIES` (default 10 000) random digests, one
//!   after another on the filled store: p50, p99, max (target p99 ≤ 5 ms).
//!
//! SQLite: a file in the temporary directory (WAL, synchronous=FULL). PostgreSQL
//! (`CUSTODY_BENCH_POSTGRES`, else `CUSTODY_TEST_POSTGRES`, else
//! `postgres://postgres@127.0.0.1:5432/test`) twice: over TCP (`pg-tcp`) and, when the server
//! has a socket in /var/run/postgresql, over its Unix socket (`pg-unix`), which shows what the
//! sqlx 0.9.0 Nagle problem costs (see `src/store/write.rs`). Each in a fresh schema dropped
//! afterwards; skipped with a note when it does not answer. `CUSTODY_BENCH_BACKENDS` (default
//! `sqlite,pg-tcp,pg-unix`) picks which run. The table is printed and written to
//! `<target dir>/store-bench.txt`.
//!
//! Run: `cargo bench --bench store` (`CUSTODY_BENCH_EVENTS=100000` for a quick run;
//! `CUSTODY_BENCH_KEEP=1` keeps the SQLite file and the PostgreSQL schema for inspection;
//! `CUSTODY_BENCH_MAX_BATCH` overrides the writer's `max_batch`, default 2 000).

// Benches print, read the clock and the environment.
#![allow(clippy::disallowed_macros, clippy::disallowed_methods)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use custody::store::{
    AdmissionEvent, Event, PromotionEvent, Store, VerdictEvent, Writer, WriterOptions,
};
use sqlx::AssertSqlSafe;

const PRODUCERS: u64 = 4;
const SUBMIT_BATCH: u64 = 500;

fn main() {
    // Only `cargo bench` runs it (it passes --bench); test runners listing targets get nothing.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let events: u64 = env_number("CUSTODY_BENCH_EVENTS", 1_000_000);
    let queries: u64 = env_number("CUSTODY_BENCH_QUERIES", 10_000);
    let digests = (events / 50).max(1);
    let max_batch = env_number("CUSTODY_BENCH_MAX_BATCH", 2000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let mut out = String::new();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let _ = writeln!(
        out,
        "custody lineage store: {events} events (60% admissions, 30% verdicts, 10% promotions) over {digests} digests,\n\
         {PRODUCERS} producers x submit_acked({SUBMIT_BATCH}) into one Writer (max_batch {max_batch}, max_delay 20 ms); \
         then {queries} lineage queries on random digests, sequential.\n\
         machine: {cores} cores, load average at start {}",
        loadavg()
    );
    println!("{out}");

    let backends =
        std::env::var("CUSTODY_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,pg-tcp,pg-unix".into());
    let base = std::env::var("CUSTODY_BENCH_POSTGRES")
        .or_else(|_| std::env::var("CUSTODY_TEST_POSTGRES"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut rows = Vec::new();
    if backends.contains("sqlite") {
        rows.push(sqlite(&rt, events, digests, queries));
    }
    if backends.contains("pg-tcp") {
        postgres(
            &rt, "pg-tcp", &base, events, digests, queries, &mut rows, &mut out,
        );
    }
    if backends.contains("pg-unix") {
        match unix_socket_url(&base) {
            Some(url) => postgres(
                &rt, "pg-unix", &url, events, digests, queries, &mut rows, &mut out,
            ),
            None => {
                let _ = writeln!(out, "pg-unix skipped: no {UNIX_SOCKET_DIR}/.s.PGSQL.<port>");
            }
        }
    }
    table(&rows, &mut out);
}

fn sqlite(rt: &tokio::runtime::Runtime, events: u64, digests: u64, queries: u64) -> Row {
    let dir = std::env::temp_dir().join(format!("custody-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("lineage.db");
    let url = format!("sqlite:{}", file.display());
    let mut sqlite = rt.block_on(run("sqlite", &url, events, digests, queries));
    let size = |p: PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
    sqlite.size = size(file.clone()) + size(PathBuf::from(format!("{}-wal", file.display())));
    if std::env::var_os("CUSTODY_BENCH_KEEP").is_some() {
        println!("kept {}", file.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    sqlite
}

const UNIX_SOCKET_DIR: &str = "/var/run/postgresql";

/// The same server through its Unix socket, when it has one here.
fn unix_socket_url(base: &str) -> Option<String> {
    use std::str::FromStr;
    let o = sqlx::postgres::PgConnectOptions::from_str(base).ok()?;
    let socket = format!("{UNIX_SOCKET_DIR}/.s.PGSQL.{}", o.get_port());
    Path::new(&socket).exists().then(|| {
        format!(
            "postgres://{}@localhost:{}/{}?host={UNIX_SOCKET_DIR}",
            o.get_username(),
            o.get_port(),
            o.get_database().unwrap_or("postgres")
        )
    })
}

#[allow(clippy::too_many_arguments)]
fn postgres(
    rt: &tokio::runtime::Runtime,
    label: &'static str,
    base: &str,
    events: u64,
    digests: u64,
    queries: u64,
    rows: &mut Vec<Row>,
    out: &mut String,
) {
    match rt.block_on(sqlx::PgPool::connect(base)) {
        Err(e) => {
            let _ = writeln!(out, "{label} skipped: {base} does not answer ({e})");
        }
        Ok(admin) => {
            let schema = format!(
                "custody_bench_{}_{}",
                label.replace('-', "_"),
                std::process::id()
            );
            rt.block_on(async {
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
                )))
                .execute(&admin)
                .await
                .expect("create schema");
            });
            let sep = if base.contains('?') { '&' } else { '?' };
            let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
            let size_sql = format!(
                "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '{schema}' AND c.relkind = 'r'"
            );
            let mut pg = rt.block_on(run(label, &url, events, digests, queries));
            pg.size = rt.block_on(async {
                sqlx::query_scalar::<_, i64>(AssertSqlSafe(size_sql))
                    .fetch_one(&admin)
                    .await
                    .map_or(0, |n| u64::try_from(n).unwrap_or(0))
            });
            rows.push(pg);
            if std::env::var_os("CUSTODY_BENCH_KEEP").is_some() {
                println!("kept schema {schema}");
            } else {
                rt.block_on(async {
                    let _ = sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                        .execute(&admin)
                        .await;
                });
            }
        }
    }
}

fn table(rows: &[Row], out: &mut String) {
    let _ = writeln!(
        out,
        "\n{:<9} {:>9} {:>8} {:>10} {:>8} {:>10} {:>10} {:>10} {:>9}",
        "backend", "events", "secs", "events/s", "batches", "p50", "p99", "max", "size"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<9} {:>9} {:>8.1} {:>10.0} {:>8} {:>10} {:>10} {:>10} {:>8}M",
            r.backend,
            r.events,
            r.ingest.as_secs_f64(),
            r.events as f64 / r.ingest.as_secs_f64(),
            r.batches,
            micros(r.p50),
            micros(r.p99),
            micros(r.max),
            r.size / (1024 * 1024)
        );
    }
    let _ = writeln!(
        out,
        "targets: >= 20000 events/s, lineage p99 <= 5 ms. load average at end {}",
        loadavg()
    );
    println!("{}", out.lines().skip(4).collect::<Vec<_>>().join("\n"));
    // A non-default max_batch gets its own file, so the default run's table stays.
    let file = match std::env::var("CUSTODY_BENCH_MAX_BATCH") {
        Ok(n) => target_dir().join(format!("store-bench-max-batch-{n}.txt")),
        Err(_) => target_dir().join("store-bench.txt"),
    };
    match std::fs::write(&file, &*out) {
        Ok(()) => println!("written to {}", file.display()),
        Err(e) => println!("cannot write {}: {e}", file.display()),
    }
}

struct Row {
    backend: &'static str,
    events: u64,
    ingest: Duration,
    batches: u64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    size: u64,
}

async fn run(backend: &'static str, url: &str, events: u64, digests: u64, queries: u64) -> Row {
    let store = Store::open(url).await.expect("open store");
    let opts = WriterOptions {
        max_batch: usize::try_from(env_number("CUSTODY_BENCH_MAX_BATCH", 2000)).unwrap_or(2000),
        ..WriterOptions::default()
    };
    let writer = Writer::spawn(store.clone(), opts);
    println!("{backend}: ingesting {events} events…");
    let started = Instant::now();
    let per = events / PRODUCERS;
    let tasks: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let writer = writer.clone();
            let (from, to) = (
                p * per,
                if p + 1 == PRODUCERS {
                    events
                } else {
                    (p + 1) * per
                },
            );
            tokio::spawn(async move {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (p + 1));
                let mut i = from;
                while i < to {
                    let end = (i + SUBMIT_BATCH).min(to);
                    let batch = (i..end).map(|k| event(k, &mut rng, digests)).collect();
                    writer
                        .submit_acked(batch)
                        .await
                        .expect("acknowledged batch");
                    i = end;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("producer");
    }
    writer.flush().await.expect("flush");
    let ingest = started.elapsed();
    let stats = writer.stats();
    assert_eq!(stats.written, events, "{stats:?}");
    println!(
        "{backend}: {events} events in {:.1} s = {:.0}/s ({} batches)",
        ingest.as_secs_f64(),
        events as f64 / ingest.as_secs_f64(),
        stats.batches
    );

    let mut rng = Rng(42);
    let mut times = Vec::with_capacity(usize::try_from(queries).unwrap_or(0));
    let mut found = 0;
    for _ in 0..queries {
        let d = digest(rng.next() % digests);
        let t = Instant::now();
        let l = store.lineage(&d).await.expect("lineage");
        times.push(t.elapsed());
        found += usize::from(l.is_some());
    }
    times.sort();
    let pick = |q: f64| {
        times
            .get(((times.len() as f64 * q) as usize).min(times.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let row = Row {
        backend,
        events,
        ingest,
        batches: stats.batches,
        p50: pick(0.50),
        p99: pick(0.99),
        max: times.last().copied().unwrap_or_default(),
        size: 0,
    };
    println!(
        "{backend}: lineage p50 {} p99 {} max {} ({found}/{queries} digests known)",
        micros(row.p50),
        micros(row.p99),
        micros(row.max)
    );
    drop(writer);
    store.close().await;
    row
}

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn digest(n: u64) -> String {
    format!("sha256:{:064x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ n)
}

/// Event `k`: its kind and digest drawn at random; the digest fixes commit, image and signer.
fn event(k: u64, rng: &mut Rng, digests: u64) -> Event {
    let d = rng.next() % digests;
    let digest_s = digest(d);
    let image = format!("ghcr.io/acme/service-{:03}", d % 200);
    // 10 ms apart: 1 000 000 events span about 2.8 hours.
    let ms = 1_795_000_000_000u64 + k * 10;
    let time = jiff::Timestamp::from_millisecond(ms as i64)
        .expect("time")
        .to_string();
    match rng.next() % 10 {
        0..=5 => Event::Admission(AdmissionEvent {
            time,
            cluster: format!("prod-{}", rng.next() % 3),
            namespace: format!("team-{}", d % 20),
            workload: format!("Deployment/service-{:03}", d % 200),
            image,
            digest: Some(digest_s),
            outcome: if rng.next().is_multiple_of(20) {
                "deny"
            } else {
                "allow"
            }
            .into(),
        }),
        6..=8 => Event::Verdict(VerdictEvent {
            time,
            image,
            digest: digest_s,
            environment: Some(["dev", "staging", "production"][(rng.next() % 3) as usize].into()),
            policy: "gitops".into(),
            policy_hash: "sha256:6d1f4c8e0a2b4d6f8a0c2e4b6d8f0a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f"
                .into(),
            trust_root_hash:
                "sha256:0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9".into(),
            decision: "allow".into(),
            reasons: vec![],
            signer: Some(format!(
                "https://github.com/acme/service-{:03}/.github/workflows/release.yml@refs/heads/main",
                d % 200
            )),
            issuer: Some("https://token.actions.githubusercontent.com".into()),
            source_repository: Some(format!("https://github.com/acme/service-{:03}", d % 200)),
            source_ref: Some("refs/heads/main".into()),
            source_commit: Some(format!(
                "{:040x}",
                (d / 2).wrapping_mul(0x1000_0000_01b3) + 1
            )),
            workflow: Some(".github/workflows/release.yml".into()),
            run: Some(format!(
                "https://github.com/acme/service-{:03}/actions/runs/{}",
                d % 200,
                d
            )),
            builder: Some("https://github.com/actions/runner/github-hosted".into()),
            sbom_digest: Some(digest(d + 1_000_000_000)),
            log_indexes: vec![100_000_000 + d],
        }),
        _ => Event::Promotion(PromotionEvent {
            time,
            repository: "github.com/acme/delivery".into(),
            environment: ["dev", "staging", "prod"][(rng.next() % 3) as usize].into(),
            commit: format!("{:040x}", rng.next()),
            pull_request: Some(format!("#{}", k % 10_000)),
            image,
            from_digest: Some(digest(d.saturating_sub(1))),
            to_digest: digest_s,
            kind: "promotion".into(),
        }),
    }
}

fn micros(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 1000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{us:.0}us")
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent()?.parent()?.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}
