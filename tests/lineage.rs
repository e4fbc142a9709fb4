//! Lineage end to end, through the real binary: `custody serve` with a lineage store verifies an
//! image against the real registry (verdict recorded), `custody gitops check --store` records the
//! merged promotion from a real Git repository, the webhook admits the image (admission
//! recorded); then every query — CLI and REST — gives the chain. And durability: the service is
//! SIGKILLed during a burst of acknowledged writes; every acknowledged event is there after. And a
//! full disk (SQLite only, a file-size limit): writes fail loudly, admission goes on, writes
//! resume once there is room.
//!
//! Each scenario runs on both stores, as `sqlite::NAME` (a database file) and `postgres::NAME`
//! (a fresh schema on `CUSTODY_TEST_POSTGRES`, dropped after): see `common/backends.rs`.

#![allow(clippy::disallowed_macros, clippy::disallowed_methods)]

#[path = "common/backends.rs"]
mod backends;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use backends::{TestStore, each_backend};
use common::registry::{Registry, TempDir, fixtures, free_port, tools_available};
use serde_json::{Value, json};

const TOKEN: &str = "lineage-test-token-0123456789";
const IDENTITY: &str =
    "https://github.com/custody-fixtures/demo/.github/workflows/release.yml@refs/heads/main";
const COMMIT: &str = "5e1f0c3a9b7d2468ace013579bdf2468ace01357";

fn app_digest() -> String {
    let s: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("scenario.json")).unwrap()).unwrap();
    s["images"][0]["digest"].as_str().unwrap().to_owned()
}

struct Service {
    child: Child,
    base: String,
    config: PathBuf,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test shows what the service said (its log is in the test's directory).
        if std::thread::panicking() {
            let log = std::fs::read_to_string(log_path(&self.config)).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- custody serve, last lines of its log:");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// Where `custody serve` writes its log: next to its configuration, appended across restarts.
fn log_path(config: &Path) -> PathBuf {
    config.with_file_name("serve.log")
}

fn write_config(dir: &Path, store: &str, registry: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(
        policies.join("gitops.yaml"),
        std::fs::read_to_string(root.join("deploy/policies/gitops.yaml"))
            .unwrap()
            .replace("../../fixtures/", &format!("{}/fixtures/", root.display())),
    )
    .unwrap();
    std::fs::write(dir.join("tokens"), format!("{TOKEN}\n")).unwrap();
    let port = free_port();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\npoliciesDir: {}\nenvironment: production\ncluster: prod-eu-1\nstore: \"{store}\"\nauth: {{tokensFile: {}}}\nregistry: {{insecure: [\"{registry}\"]}}\n",
            policies.display(),
            dir.join("tokens").display()
        ),
    )
    .unwrap();
    config
}

fn start(config: &Path) -> Service {
    let text = std::fs::read_to_string(config).unwrap();
    let port = text
        .lines()
        .find_map(|l| l.strip_prefix("listen: 127.0.0.1:"))
        .unwrap()
        .to_owned();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(config))
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(["serve", "--config"])
        .arg(config)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_until_ready(child, config, &port)
}

/// Waits until the service just spawned answers `/readyz`.
fn wait_until_ready(child: Child, config: &Path, port: &str) -> Service {
    // Owned before waiting, so a service that never answers is killed (and its log shown).
    let service = Service {
        child,
        base: format!("http://127.0.0.1:{port}"),
        config: config.to_owned(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::blocking_get(&format!("{}/readyz", service.base)).is_none() {
        assert!(Instant::now() < deadline, "custody serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    service
}

/// Tiny blocking HTTP helpers on a current-thread runtime.
mod reqwest {
    pub fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    pub fn blocking_get(url: &str) -> Option<u16> {
        rt().block_on(async {
            ::reqwest::Client::new()
                .get(url)
                .send()
                .await
                .ok()
                .map(|r| r.status().as_u16())
        })
    }
}

fn get(base: &str, path: &str) -> (u16, Value) {
    reqwest::rt().block_on(async {
        let r = ::reqwest::Client::new()
            .get(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (
            status,
            serde_json::from_slice(&r.bytes().await.unwrap_or_default()).unwrap_or(Value::Null),
        )
    })
}

fn post(base: &str, path: &str, body: &Value) -> (u16, Value) {
    reqwest::rt().block_on(async {
        let r = ::reqwest::Client::new()
            .post(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (
            status,
            serde_json::from_slice(&r.bytes().await.unwrap_or_default()).unwrap_or(Value::Null),
        )
    })
}

fn custody(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(args)
        .env_remove("CUSTODY_STORE")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=T", "-c", "user.email=t@example.invalid"])
        .args(["-c", "commit.gpgsign=false"])
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Waits until the batched writer has committed what `check` looks for.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

each_backend! {
    fn verify_promote_admit_then_every_query_gives_the_chain;
    fn every_acknowledged_event_survives_a_sigkill_during_a_write_burst;
}

fn verify_promote_admit_then_every_query_gives_the_chain(store: &TestStore) {
    if !tools_available() {
        return;
    }
    let registry = Registry::start();
    registry.push(&["demo/app"]);
    let host = registry.host();
    let dir = TempDir::new("custody-lineage");
    let store = store.url.as_str();
    let service = start(&write_config(&dir.0, store, &host));
    let digest = app_digest();
    let image = format!("{host}/demo/app@{digest}");

    // 1. verify: the verdict and its facts are recorded.
    let (code, body) = post(
        &service.base,
        "/v1/verify",
        &json!({"image": image, "environment": "staging"}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["verdicts"][0]["decision"], "allow", "{body:#}");

    // 2. promote: dev → staging merged in a real delivery repository, recorded by the gate.
    let repo = dir.0.join("delivery");
    std::fs::create_dir_all(repo.join("policy")).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::write(
        repo.join("policy/trust.yaml"),
        std::fs::read_to_string(root.join("deploy/policies/gitops.yaml"))
            .unwrap()
            .replace("../../fixtures/registry/", ""),
    )
    .unwrap();
    std::fs::copy(
        fixtures().join("trusted_root.json"),
        repo.join("policy/trusted_root.json"),
    )
    .unwrap();
    std::fs::create_dir_all(repo.join("policy/keys")).unwrap();
    std::fs::copy(
        fixtures().join("keys/cosign.pub"),
        repo.join("policy/keys/cosign.pub"),
    )
    .unwrap();
    std::fs::write(
        repo.join("custody-gitops.yaml"),
        "apiVersion: custody.dev/v1alpha1\nkind: GitOpsConfig\nenvironments:\n  - {name: dev, paths: [\"env/dev/**\"], autoUpdate: true}\n  - {name: staging, paths: [\"env/staging/**\"]}\n  - {name: production, paths: [\"env/prod/**\"]}\npolicy: policy/trust.yaml\n",
    )
    .unwrap();
    let values = |d: &str| format!("app:\n  image:\n    ref: {host}/demo/app@{d}\n");
    let old = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
    std::fs::create_dir_all(repo.join("env/dev")).unwrap();
    std::fs::create_dir_all(repo.join("env/staging")).unwrap();
    std::fs::write(repo.join("env/dev/values.yaml"), values(&digest)).unwrap();
    std::fs::write(repo.join("env/staging/values.yaml"), values(old)).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "dev runs the build"]);
    let before = git(&repo, &["rev-parse", "HEAD"]);
    std::fs::write(repo.join("env/staging/values.yaml"), values(&digest)).unwrap();
    git(&repo, &["commit", "-qam", "promote to staging (#42)"]);
    let merged = git(&repo, &["rev-parse", "HEAD"]);
    let (code, out, err) = custody(&[
        "gitops",
        "check",
        repo.to_str().unwrap(),
        "--base",
        &before,
        "--head",
        "main",
        "--insecure-registry",
        &host,
        "--store",
        store,
        "--repository",
        "acme/delivery",
        "--pull-request",
        "42",
    ]);
    assert_eq!(code, 0, "{out}{err}");

    // 3. admit: a Pod with the image in the production cluster.
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "namespace": "shop",
        "name": "web-1", "operation": "CREATE", "userInfo": {},
        "object": {"metadata": {"name": "web-1"}, "spec": {"containers": [{"name": "web", "image": image}]}}}});
    let (code, body) = post(&service.base, "/v1/admission", &review);
    assert_eq!(code, 200);
    assert_eq!(body["response"]["allowed"], true, "{body:#}");

    // The chain over REST (the writer batches: wait for the admission to land).
    let mut lineage = Value::Null;
    eventually("the admission event", || {
        let (code, body) = get(&service.base, &format!("/v1/lineage/digest/{digest}"));
        lineage = body;
        code == 200 && !lineage["admissions"].as_array().is_none_or(Vec::is_empty)
    });
    assert_eq!(lineage["builds"][0]["sourceCommit"], COMMIT, "{lineage:#}");
    assert!(
        lineage["builds"][0]["workflow"]
            .as_str()
            .unwrap()
            .contains("release.yml")
    );
    assert_eq!(lineage["signers"][0]["signer"], IDENTITY);
    assert_eq!(lineage["admissions"][0]["cluster"], "prod-eu-1");
    assert_eq!(lineage["admissions"][0]["namespace"], "shop");
    let envs: Vec<&str> = lineage["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["environment"].as_str().unwrap_or_default())
        .collect();
    assert!(envs.contains(&"staging"), "{lineage:#}");
    let staging = lineage["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["environment"] == "staging")
        .unwrap();
    assert_eq!(staging["commit"], merged.as_str());
    assert_eq!(staging["pullRequest"], "42");

    let (code, built) = get(
        &service.base,
        &format!("/v1/lineage/commit/{}", &COMMIT[..12]),
    );
    assert_eq!(code, 200, "{built}");
    assert_eq!(built["items"][0]["digest"], digest.as_str());
    let now = "2100-01-01T00:00:00Z";
    let (code, at) = get(
        &service.base,
        &format!("/v1/lineage/environment/staging?at={now}"),
    );
    assert_eq!(code, 200, "{at}");
    assert_eq!(at["items"][0]["digest"], digest.as_str());
    let (code, at) = get(
        &service.base,
        "/v1/lineage/environment/staging?at=2000-01-01T00:00:00Z",
    );
    assert_eq!(code, 200);
    assert_eq!(
        at["items"].as_array().unwrap().len(),
        0,
        "nothing ran there in 2000"
    );
    let (code, signed) = get(
        &service.base,
        &format!("/v1/lineage/signer?id={}&limit=1", urlencode(IDENTITY)),
    );
    assert_eq!(code, 200, "{signed}");
    assert_eq!(signed["items"][0]["digest"], digest.as_str());
    let id = lineage["verdicts"][0]["id"].as_i64().unwrap();
    let (code, v) = get(&service.base, &format!("/v1/lineage/verdict/{id}"));
    assert_eq!(code, 200);
    assert_eq!(v["event"]["decision"], "allow");
    // Bad input: a malformed digest, SQL-looking text, an unknown digest.
    assert_eq!(get(&service.base, "/v1/lineage/digest/sha256:xyz").0, 400);
    let (code, body) = get(
        &service.base,
        &format!("/v1/lineage/commit/{}", urlencode("' OR 1=1 --")),
    );
    assert!(
        code == 400 || body["items"].as_array().is_some_and(Vec::is_empty),
        "{code} {body}"
    );
    let unknown = format!("sha256:{}", "ab".repeat(32));
    assert_eq!(
        get(&service.base, &format!("/v1/lineage/digest/{unknown}")).0,
        404
    );

    // The same chain from the CLI, on the same store.
    let (code, out, err) = custody(&["lineage", "--store", store, &digest]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(COMMIT) && out.contains(IDENTITY) && out.contains("staging"),
        "{out}"
    );
    let (code, out, _) = custody(&[
        "lineage",
        "--store",
        store,
        "--commit",
        &COMMIT[..7],
        "--output",
        "json",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains(&digest), "{out}");
    let (code, out, _) = custody(&["lineage", "--store", store, "--env", "staging", "--at", now]);
    assert_eq!(code, 0);
    assert!(out.contains(&digest), "{out}");
    let (code, out, _) = custody(&["lineage", "--store", store, "--signer", IDENTITY]);
    assert_eq!(code, 0);
    assert!(out.contains(&digest), "{out}");
    let (code, _, _) = custody(&["lineage", "--store", store, &unknown]);
    assert_eq!(code, 1, "nothing recorded is exit 1");
    drop(service);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn every_acknowledged_event_survives_a_sigkill_during_a_write_burst(store: &TestStore) {
    let dir = TempDir::new("custody-durability");
    let config = write_config(&dir.0, &store.url, "127.0.0.1:9");
    let mut service = start(&config);
    let base = service.base.clone();
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4u32 {
        let (base, acked, stop) = (base.clone(), acked.clone(), stop.clone());
        writers.push(std::thread::spawn(move || {
            let rt = reqwest::rt();
            let _entered = rt.enter();
            let client = ::reqwest::Client::new();
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                n += 1;
                let digests: Vec<String> = (0..20u32)
                    .map(|i| format!("sha256:{:08x}{:08x}{:048x}", w, n, i))
                    .collect();
                let events: Vec<Value> = digests
                    .iter()
                    .map(|d| json!({"type": "verdict", "time": "2026-11-25T00:00:00Z", "image": "127.0.0.1:9/demo/app", "digest": d,
                        "environment": "production", "policy": "p", "policyHash": format!("sha256:{}", "0".repeat(64)),
                        "trustRootHash": format!("sha256:{}", "0".repeat(64)), "decision": "allow", "reasons": [],
                        "logIndexes": []}))
                    .collect();
                let sent = rt.block_on(
                    client
                        .post(format!("{base}/v1/events"))
                        .bearer_auth(TOKEN)
                        .header("content-type", "application/json")
                        .body(json!({"events": events}).to_string())
                        .timeout(Duration::from_secs(5))
                        .send(),
                );
                match sent {
                    Ok(r) if r.status().as_u16() == 200 => acked.lock().unwrap().extend(digests),
                    Ok(r) => {
                        let status = r.status();
                        let body = rt.block_on(r.text()).unwrap_or_default();
                        panic!("events refused before the kill: {status} {body}");
                    }
                    Err(_) => break, // the service is gone: these were not acknowledged
                }
            }
        }));
    }
    // Let the burst run, then kill the service without warning.
    eventually("some acknowledged writes", || {
        acked.lock().unwrap().len() >= 400
    });
    service.child.kill().unwrap(); // SIGKILL
    service.child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 400);
    // Restart on the same store: every acknowledged event is there.
    let service = start(&service.config.clone());
    let rt = reqwest::rt();
    let client = ::reqwest::Client::new();
    let mut missing = Vec::new();
    for d in &acked {
        let status = rt.block_on(async {
            client
                .get(format!("{}/v1/lineage/digest/{d}", service.base))
                .bearer_auth(TOKEN)
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
        if !matches!(status, Ok(200)) {
            missing.push(d.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "{}: {} of {} acknowledged events lost: {:?}",
        store.backend,
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    eprintln!(
        "{}: {} acknowledged events, all present after SIGKILL + restart",
        store.backend,
        acked.len()
    );
}

// A full disk, for real and without root: the service runs with a small file-size limit
// (RLIMIT_FSIZE) and SIGXFSZ ignored, so a write that would grow a file past the limit fails
// with EFBIG, which SQLite reports as a disk I/O error (or "database or disk is full"), exactly
// where a full disk fails it. A fresh store (database 4 KiB, WAL about 90 KiB after the
// migrations, shared memory 32 KiB) fits in the limit; a few batches of events fill the WAL.

/// The file-size limit of the full-disk test: the service starts and migrates within it, and
/// the WAL reaches it after a few batches of [`BATCH`] events.
const FULL_DISK_LIMIT: u64 = 256 * 1024;
/// Events per `POST /v1/events` while filling the disk.
const BATCH: u32 = 100;
/// Batches sent at most: the limited service fails within them, the control writes them all.
const BATCHES: u32 = 20;
/// Longest a request may take while the store is failing: the configured verification and
/// admission deadline (8 s, `deadlines` in the configuration). A functional bound (admission
/// is not held up by the store), not a benchmark.
const PROMPT: Duration = Duration::from_secs(8);

/// Starts `custody serve` with the file-size limit `bytes` (soft only, so the test can lift
/// it without privileges) and SIGXFSZ ignored (an ignored signal stays ignored across `exec`).
/// Its log goes through a pipe, as a container's does, so the limit does not cut the log.
fn start_with_file_limit(config: &Path, bytes: u64) -> Service {
    let port = std::fs::read_to_string(config)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("listen: 127.0.0.1:"))
        .unwrap()
        .to_owned();
    assert_eq!(bytes % 512, 0);
    // POSIX `ulimit -f` counts 512-byte blocks (dash, and bash as `sh`); checked below.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -S -f {}; exec \"$0\" serve --config \"$1\"",
            bytes / 512
        ))
        .arg(env!("CARGO_BIN_EXE_custody"))
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pipes: [Box<dyn std::io::Read + Send>; 2] = [
        Box::new(child.stdout.take().unwrap()),
        Box::new(child.stderr.take().unwrap()),
    ];
    for mut pipe in pipes {
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path(config))
            .unwrap();
        std::thread::spawn(move || std::io::copy(&mut pipe, &mut log));
    }
    let service = wait_until_ready(child, config, &port);
    // The limit the service runs under (the shell `exec`ed it: same process).
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", service.child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max file size"))
        .unwrap();
    let soft: Vec<&str> = line.split_whitespace().skip(3).take(1).collect();
    assert_eq!(soft, [bytes.to_string().as_str()], "{line}");
    service
}

/// `POST /v1/events` with `n` verdict events for new digests (`tag` keeps them apart); the
/// status, the body and how long it took.
fn post_events(base: &str, tag: u32, n: u32) -> (u16, Value, Duration) {
    let events: Vec<Value> = (0..n)
        .map(|i| json!({"type": "verdict", "time": "2026-11-25T00:00:00Z", "image": "127.0.0.1:9/demo/app",
            "digest": event_digest(tag, i), "environment": "production", "policy": "p",
            "policyHash": format!("sha256:{}", "0".repeat(64)),
            "trustRootHash": format!("sha256:{}", "0".repeat(64)), "decision": "allow",
            "reasons": [], "logIndexes": []}))
        .collect();
    let started = Instant::now();
    let (code, body) = post(base, "/v1/events", &json!({ "events": events }));
    (code, body, started.elapsed())
}

fn event_digest(tag: u32, i: u32) -> String {
    format!("sha256:{tag:08x}{i:056x}")
}

/// The value of a counter on `/metrics` (0 when absent).
fn counter(base: &str, name: &str) -> u64 {
    let text = reqwest::rt().block_on(async {
        ::reqwest::Client::new()
            .get(format!("{base}/metrics"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// A request while the store fails: answered within [`PROMPT`]; its status, body and time.
fn timed_post(base: &str, path: &str, body: &Value) -> (u16, Value, Duration) {
    let started = Instant::now();
    let (code, body) = post(base, path, body);
    let took = started.elapsed();
    assert!(took < PROMPT, "{path} took {took:?} while the store failed");
    (code, body, took)
}

#[test]
fn a_full_disk_fails_writes_loudly_and_admission_goes_on() {
    if !tools_available() {
        return;
    }
    let registry = Registry::start();
    registry.push(&["demo/app"]);
    let host = registry.host();
    let dir = TempDir::new("custody-full-disk");
    let db = dir.0.join("lineage.db");
    let config = write_config(&dir.0, &format!("sqlite:{}", db.display()), &host);
    let service = start_with_file_limit(&config, FULL_DISK_LIMIT);
    let base = service.base.clone();
    let wal = db.with_file_name("lineage.db-wal");
    let fresh = std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert!(
        fresh > 0 && fresh < FULL_DISK_LIMIT / 2,
        "the migrated store's WAL ({fresh} bytes) leaves room under the limit"
    );

    // 1. Acknowledged writes: answered 200 while they fit, then an error naming the store.
    let mut written = 0;
    let failed = (0..BATCHES).find_map(|tag| {
        let (code, body, took) = post_events(&base, tag, BATCH);
        if code == 200 {
            assert_eq!(body["recorded"], BATCH, "{body}");
            written += 1;
            None
        } else {
            Some((tag, code, body, took))
        }
    });
    let Some((tag, code, body, took)) = failed else {
        panic!(
            "{BATCHES} batches of {BATCH} events all written under a {FULL_DISK_LIMIT}-byte limit"
        );
    };
    assert!(written > 0, "nothing written before the disk was full");
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["error"]["code"], "store-unavailable", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("lineage store recording events failed:")
            && (message.contains("disk I/O error") || message.contains("disk is full")),
        "{message}"
    );
    assert!(took < PROMPT, "the failed write took {took:?}");
    eprintln!(
        "full disk: {written} batches written, then {code} in {took:?}: {message}; WAL {} bytes",
        std::fs::metadata(&wal).unwrap().len()
    );
    // The refused events are not there.
    assert_eq!(
        get(
            &base,
            &format!("/v1/lineage/digest/{}", event_digest(tag, 0))
        )
        .0,
        404
    );

    // 2. Admission and verification go on, with their normal verdicts, while the store fails
    // (each records an event that the writer fails to write).
    let image = format!("{host}/demo/app@{}", app_digest());
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u-full", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "namespace": "shop",
        "name": "web-1", "operation": "CREATE", "userInfo": {},
        "object": {"metadata": {"name": "web-1"}, "spec": {"containers": [{"name": "web", "image": image}]}}}});
    let (code, body, took) = timed_post(&base, "/v1/admission", &review);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["response"]["allowed"], true, "{body:#}");
    eprintln!("full disk: admission allowed in {took:?}");
    let (code, body, took) = timed_post(
        &base,
        "/v1/verify",
        &json!({"image": image, "environment": "staging"}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["verdicts"][0]["decision"], "allow", "{body:#}");
    eprintln!("full disk: verify allowed in {took:?}");
    let (code, body, took) = timed_post(&base, "/v1/admission", &review);
    assert_eq!((code, &body["response"]["allowed"]), (200, &json!(true)));
    eprintln!("full disk: admission again in {took:?}");

    // Acknowledged writes keep failing, each with the store's own error, as long as it is full.
    let (code, body, took) = post_events(&base, tag + 1, BATCH);
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["error"]["message"], message, "{body}");
    assert!(took < PROMPT, "the failed write took {took:?}");

    // 3. The log says what failed, and the metrics count it.
    eventually("the failed batches in the log and the metrics", || {
        counter(&base, "custody_lineage_batches_failed_total") >= 2
            && counter(&base, "custody_lineage_events_failed_total") >= u64::from(BATCH) + 2
    });
    let log = std::fs::read_to_string(log_path(&config)).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("lineage store: batch not written"))
        .unwrap_or_else(|| panic!("no failed batch in the log:\n{log}"));
    let line: Value = serde_json::from_str(line).unwrap();
    assert_eq!(line["level"], "ERROR", "{line}");
    let error = line["fields"]["error"].as_str().unwrap();
    assert!(
        error.contains("disk I/O error") || error.contains("disk is full"),
        "{line}"
    );
    assert_eq!(line["fields"]["store"], db.to_str().unwrap(), "{line}");
    eprintln!("full disk: logged {line}");
    // Every failed batch names the disk, not a connection left broken by the first failure.
    for l in log.lines().filter(|l| l.contains("batch not written")) {
        assert!(
            l.contains("(code: 778) disk I/O error") || l.contains("disk is full"),
            "{l}"
        );
    }

    // 4. Still alive, and still ready: readiness is about answering admission, which goes on
    // without the store (an unready webhook would block admission, the opposite of the aim).
    let mut service = service;
    assert!(
        service.child.try_wait().unwrap().is_none(),
        "the service died"
    );
    assert_eq!(reqwest::blocking_get(&format!("{base}/readyz")), Some(200));

    // 5. Room again (the limit lifted, as when space is freed): writes resume by themselves.
    let lifted = Command::new("prlimit")
        .arg(format!("--pid={}", service.child.id()))
        .arg("--fsize=unlimited")
        .status()
        .unwrap();
    assert!(lifted.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = (0, Value::Null);
    while Instant::now() < deadline {
        let (code, body, _) = post_events(&base, BATCHES + 1, 1);
        if code == 200 {
            break;
        }
        last = (code, body);
    }
    assert_eq!(
        get(
            &base,
            &format!("/v1/lineage/digest/{}", event_digest(BATCHES + 1, 0))
        )
        .0,
        200,
        "writes did not resume after the disk had room again; last answer: {last:?}"
    );
    assert!(service.child.try_wait().unwrap().is_none());
}

/// The control: the same service under a generous file-size limit writes every batch the
/// limited one could not, and counts no failure.
#[test]
fn full_disk_control_a_generous_limit_writes_every_batch() {
    let dir = TempDir::new("custody-full-disk-control");
    let db = dir.0.join("lineage.db");
    let config = write_config(&dir.0, &format!("sqlite:{}", db.display()), "127.0.0.1:9");
    let service = start_with_file_limit(&config, 1024 * FULL_DISK_LIMIT);
    for tag in 0..BATCHES {
        let (code, body, _) = post_events(&service.base, tag, BATCH);
        assert_eq!(code, 200, "batch {tag}: {body}");
    }
    assert_eq!(
        get(
            &service.base,
            &format!("/v1/lineage/digest/{}", event_digest(BATCHES - 1, 0))
        )
        .0,
        200
    );
    assert!(
        std::fs::metadata(db.with_file_name("lineage.db-wal"))
            .unwrap()
            .len()
            > FULL_DISK_LIMIT
    );
    assert_eq!(
        counter(&service.base, "custody_lineage_batches_failed_total"),
        0
    );
    assert_eq!(
        counter(&service.base, "custody_lineage_events_written_total"),
        u64::from(BATCHES * BATCH)
    );
    let log = std::fs::read_to_string(log_path(&config)).unwrap();
    assert!(!log.contains("batch not written"), "{log}");
}
