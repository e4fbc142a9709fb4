//! Cold `verify` of a digest against a real local registry: one keyless cosign signature and one
//! SLSA provenance attestation (demo/app from fixtures/registry), a fresh client per run (no
//! connection, token or verdict reuse), in process. Reports p50/p99 over the runs and the HTTP
//! requests per verify.
//!
//! Run: `cargo bench --bench registry` (needs docker-registry and skopeo; scripts/test installs
//! them). `RUNS=N` changes the number of runs (default 300).

// Tests and benches may print and read the clock; the bans are for the library.
#![allow(clippy::disallowed_macros, clippy::disallowed_methods)]

#[path = "../tests/common/registry.rs"]
#[allow(dead_code, clippy::disallowed_methods, clippy::disallowed_macros)]
mod registry;

use std::time::{Duration, Instant};

use custody::Limits;
use custody::engine::{ImageRequest, PredicateRequirement, verify_image};
use custody::policy::{IdentityPolicy, Matcher};
use custody::registry::discovery::DiscoveryOptions;
use custody::registry::{RegistryClient, RegistryConfig};
use custody::trust::TrustRoot;
use custody::verdict::Outcome;
use registry::{Registry, fixtures};

#[allow(clippy::disallowed_macros, clippy::disallowed_methods)]
fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` / nextest listing: nothing to run quickly.
    }
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(300);
    let scenario: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("scenario.json")).unwrap()).unwrap();
    let app = scenario["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["repository"] == "demo/app")
        .unwrap();
    let digest = app["digest"].as_str().unwrap();
    let tag_base = digest.replace(':', "-");

    let reg = Registry::start();
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("push-plan.json")).unwrap()).unwrap();
    for e in plan.as_array().unwrap() {
        let tag = e["tag"].as_str().unwrap_or_default();
        if e["repository"] == "demo/app"
            && (tag == "v1" || tag == format!("{tag_base}.sig") || tag == format!("{tag_base}.att"))
        {
            reg.push_entry(e, "demo/app");
        }
    }
    let trust = TrustRoot::from_json(
        "fixtures",
        &std::fs::read(fixtures().join("trusted_root.json")).unwrap(),
        &Limits::default(),
    )
    .unwrap();
    let request = ImageRequest {
        reference: format!("{}/demo/app@{digest}", reg.host()).parse().unwrap(),
        resolve: false,
        identity: IdentityPolicy {
            identity: Some(Matcher::Exact(
                scenario["policy"]["identity"].as_str().unwrap().into(),
            )),
            issuer: Some(Matcher::Exact(
                scenario["policy"]["issuer"].as_str().unwrap().into(),
            )),
            ..IdentityPolicy::default()
        },
        key: None,
        required_predicate_types: vec![PredicateRequirement::parse("slsaprovenance").unwrap()],
        platforms: false,
        discovery: DiscoveryOptions::default(),
        deadline: Duration::from_secs(10),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let now = jiff::Timestamp::now();
    let config = RegistryConfig {
        insecure_registries: vec![reg.host()],
        ..RegistryConfig::default()
    };
    let shared = RegistryClient::new(config.clone()).unwrap();
    for (label, fresh) in [
        ("fresh client per verify (new connections)", true),
        (
            "one client (connections kept alive, nothing else cached)",
            false,
        ),
    ] {
        let mut times = Vec::with_capacity(runs);
        let mut requests = 0;
        for i in 0..runs + 20 {
            let start = Instant::now();
            let own;
            let client = if fresh {
                own = RegistryClient::new(config.clone()).unwrap();
                &own
            } else {
                &shared
            };
            let v = rt.block_on(verify_image(
                client,
                &trust,
                &request,
                now,
                &Limits::default(),
            ));
            let elapsed = start.elapsed();
            assert_eq!(v.outcome, Outcome::Verified, "{}", v.to_text());
            if i >= 20 {
                times.push(elapsed);
                requests = v.http_requests;
            }
        }
        times.sort();
        let pct = |p: f64| {
            times[((times.len() as f64 * p).ceil() as usize)
                .saturating_sub(1)
                .min(times.len() - 1)]
        };
        println!(
            "registry/cold verify (1 keyless signature + 1 SLSA attestation), {label}, {runs} runs after 20 warm-up: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {requests} HTTP requests per verify",
            pct(0.50).as_secs_f64() * 1e3,
            pct(0.90).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
            times.last().unwrap().as_secs_f64() * 1e3,
        );
    }
    // Where the time goes: discovery alone (network), and client construction.
    let mut d = Vec::new();
    let image = request.reference.clone();
    for _ in 0..100 {
        let start = Instant::now();
        let deadline = custody::registry::Deadline::after(Duration::from_secs(10));
        rt.block_on(custody::registry::discovery::discover(
            &shared,
            &image,
            &DiscoveryOptions::default(),
            &deadline,
        ))
        .unwrap();
        d.push(start.elapsed());
    }
    d.sort();
    println!(
        "registry/discovery only (one client): p50 {:.2} ms",
        d[50].as_secs_f64() * 1e3
    );
    // The registry's own latency for the same requests, one at a time (curl-like: one client, keep-alive).
    let plain = reqwest::Client::new();
    let base = format!("http://{}/v2/demo/app", reg.host());
    let urls = [
        format!("{base}/manifests/{digest}"),
        format!("{base}/referrers/{digest}"),
        format!("{base}/manifests/{tag_base}"),
        format!("{base}/manifests/{tag_base}.sig"),
        format!("{base}/manifests/{tag_base}.att"),
        format!("{base}/manifests/{tag_base}.sbom"),
    ];
    for url in &urls {
        let mut t = Vec::new();
        for _ in 0..50 {
            let start = Instant::now();
            rt.block_on(async { plain.get(url).header("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json").send().await.unwrap().bytes().await.unwrap() });
            t.push(start.elapsed());
        }
        t.sort();
        println!(
            "registry/docker-registry latency {}: p50 {:.2} ms",
            url.rsplit('/').next().unwrap_or_default(),
            t[25].as_secs_f64() * 1e3
        );
    }
    // The floor: the same requests, issued the way custody issues them (manifest, referrers and
    // the three cosign tags concurrently; then the tag-schema index and the two evidence blobs),
    // with a plain HTTP client and no verification.
    let sig_blob = format!(
        "{base}/blobs/{}",
        app["evidence"][0]["layer_digest"].as_str().unwrap()
    );
    let att_blob = format!(
        "{base}/blobs/{}",
        app["evidence"][1]["layer_digest"].as_str().unwrap()
    );
    let get = |url: String| {
        let plain = plain.clone();
        async move {
            plain.get(url).header("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json").send().await.unwrap().bytes().await.unwrap()
        }
    };
    let mut t = Vec::new();
    for _ in 0..100 {
        let start = Instant::now();
        rt.block_on(async {
            tokio::join!(
                get(urls[0].clone()),
                async {
                    get(urls[1].clone()).await;
                    get(urls[2].clone()).await
                },
                async {
                    get(urls[3].clone()).await;
                    get(sig_blob.clone()).await
                },
                async {
                    get(urls[4].clone()).await;
                    get(att_blob.clone()).await
                },
                get(urls[5].clone()),
            )
        });
        t.push(start.elapsed());
    }
    t.sort();
    println!(
        "registry/floor: the same 8 requests, same concurrency, plain client, no verification: p50 {:.2} ms, p99 {:.2} ms",
        t[50].as_secs_f64() * 1e3,
        t[98].as_secs_f64() * 1e3
    );
    // Client construction.
    let start = Instant::now();
    for _ in 0..50 {
        let _ = RegistryClient::new(config.clone()).unwrap();
    }
    println!(
        "registry/client construction: {:.2} ms each",
        start.elapsed().as_secs_f64() * 1e3 / 50.0
    );
}
