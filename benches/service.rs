//! `custody serve` figures: start to ready (no network), warm verdicts over HTTP on loopback with
//! `wrk` (server pinned to one core, wrk on the other), and resident memory with 100 000 cached
//! verdicts.
//!
//! Run: `cargo bench --bench service` (needs docker-registry, skopeo and wrk; the load test is
//! skipped with a note when wrk is missing).

// Benches print and read the clock.
#![allow(clippy::disallowed_macros, clippy::disallowed_methods)]

#[path = "../tests/common/registry.rs"]
#[allow(dead_code)]
mod registry;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn serve(port: u16, extra: &[&str]) -> Kill {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_custody"));
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .stderr(Stdio::null());
    Kill(cmd.spawn().unwrap())
}

fn wait_ready(port: u16) -> Duration {
    let started = Instant::now();
    loop {
        if get(port, "/readyz").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "not ready");
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap())
        })
        .unwrap()
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    // 1. Start to ready, embedded defaults, no network.
    let mut times = Vec::new();
    for _ in 0..11 {
        let port = registry::free_port();
        let started = Instant::now();
        let _s = serve(port, &[]);
        wait_ready(port);
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "service/start to ready (process spawn → /readyz 200, embedded policy, no network): median {:.1} ms, max {:.1} ms over 11 starts",
        times[5].as_secs_f64() * 1e3,
        times[10].as_secs_f64() * 1e3
    );

    // 2. Warm verdicts over HTTP with wrk.
    if Command::new("wrk").arg("--version").output().is_ok() {
        let reg = registry::Registry::start();
        reg.push(&["demo/app"]);
        let port = registry::free_port();
        let mut cmd = Command::new("taskset");
        cmd.args([
            "-c",
            "0",
            env!("CARGO_BIN_EXE_custody"),
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--insecure-registry",
            &reg.host(),
            "--environment",
            "production",
        ])
        .env("CUSTODY_LOG", "warn")
        .stderr(Stdio::null());
        let _s = Kill(cmd.spawn().unwrap());
        wait_ready(port);
        let body = format!(
            r#"{{"image":"{}/demo/app@sha256:062e96531192934368726e8a972be8cd35f1af0834722409465a5b8be53493bb"}}"#,
            reg.host()
        );
        let dir = registry::TempDir::new("custody-wrk");
        std::fs::write(dir.0.join("post.lua"), format!("wrk.method = \"POST\"\nwrk.body = '{body}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n")).unwrap();
        // Warm the cache.
        let warm = Command::new("curl")
            .args([
                "-s",
                "-X",
                "POST",
                "-d",
                &body,
                &format!("http://127.0.0.1:{port}/v1/verify"),
            ])
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&warm.stdout).contains("\"decision\":\"allow\""));
        let kyverno_body = format!(
            r#"{{"images":["{}/demo/app@sha256:062e96531192934368726e8a972be8cd35f1af0834722409465a5b8be53493bb"]}}"#,
            reg.host()
        );
        std::fs::write(
            dir.0.join("kyverno.lua"),
            format!("wrk.method = \"POST\"\nwrk.body = '{kyverno_body}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"),
        )
        .unwrap();
        for (route, script, conns) in [
            ("/v1/verify", "post.lua", 1),
            ("/v1/verify", "post.lua", 16),
            ("/v1/kyverno", "kyverno.lua", 1),
            ("/v1/kyverno", "kyverno.lua", 16),
        ] {
            let out = Command::new("taskset")
                .args([
                    "-c",
                    "1",
                    "wrk",
                    "-t1",
                    &format!("-c{conns}"),
                    "-d10s",
                    "--latency",
                    "-s",
                    dir.0.join(script).to_str().unwrap(),
                    &format!("http://127.0.0.1:{port}{route}"),
                ])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let pick = |p: &str| {
                text.lines()
                    .find(|l| l.trim_start().starts_with(p))
                    .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_owned())
                    .unwrap_or_default()
            };
            let rps = text
                .lines()
                .find(|l| l.starts_with("Requests/sec:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_owned())
                .unwrap_or_default();
            let errors = text
                .lines()
                .find(|l| l.contains("Non-2xx"))
                .unwrap_or("no non-2xx responses");
            println!(
                "service/warm POST {route}, server on 1 core, wrk -t1 -c{conns} -d10s: p50 {}, p90 {}, p99 {}, {rps} req/s ({errors})",
                pick("50%"),
                pick("90%"),
                pick("99%")
            );
        }
    } else {
        println!("service/warm verdicts: skipped (wrk not installed: apt-get install wrk)");
    }

    // 3. Memory with 100 000 cached verdicts (distinct keys and verdict copies).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let state = custody::service::build_state(custody::service::ServiceConfig {
            auth: custody::service::config::AuthConfig { insecure_allow_anonymous: true, ..Default::default() },
            ..Default::default()
        })
        .unwrap();
        let set = state.verdicts.policies();
        let loaded = set.get(None).unwrap().clone();
        let (image, items) = custody::engine::saved::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/policies/tests/evidence/app")).unwrap();
        let digest = image.digest().unwrap().clone();
        let checked = custody::engine::check_items(&items, &image, &digest, &loaded.trust, &loaded.keys, jiff::Timestamp::now(), &custody::Limits::default());
        let collected = custody::engine::Collected { reference: image.clone(), image: image.clone(), resolved_from_tag: None, is_index: false, items: checked, platforms: vec![], notes: vec![], looked_at: vec![] };
        let verdict = custody::engine::judge_policy(&collected, &loaded.policy, Some("production"), &loaded.trust, "2026-11-25T00:00:00Z".into());
        let json_len = verdict.to_json().len();
        state.verdicts.sync_cache().await;
        let before = vm_rss_kib();
        for i in 0..100_000u32 {
            let mut v = verdict.clone();
            v.reference = format!("registry.example/team-{}/app{i}@{}", i % 97, digest);
            state.verdicts.insert(&format!("{}|{}|production|{}", loaded.policy.content_hash, loaded.trust.content_hash(), v.reference), &v).await;
        }
        state.verdicts.sync_cache().await;
        let after = vm_rss_kib();
        println!(
            "service/memory: 100000 cached decisions (compact form of verdicts with {} evidence items, {json_len} bytes as full JSON): RSS {:.1} MiB → {:.1} MiB (+{:.1} MiB; {} entries)",
            verdict.evidence.len(),
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            (after - before) as f64 / 1024.0,
            state.verdicts.cached()
        );
    });
}
