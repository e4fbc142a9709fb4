//! `custody serve` end to end over real HTTP on loopback, against the real local registry (behind
//! the counting proxy of tests/common): every route, each caller shape, auth, limits, cache,
//! singleflight, deadlines, hot reload, metrics, and the OpenAPI document.

// Tests may print and read the clock; the bans are for the library.
#![allow(clippy::disallowed_macros, clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::proxy::{Action, Proxy};
use common::registry::{Registry, TempDir, tools_available};
use custody::service::{ServiceConfig, build_state, router};
use serde_json::{Value, json};

const APP: &str = "sha256:062e96531192934368726e8a972be8cd35f1af0834722409465a5b8be53493bb";
const UNSIGNED: &str = "sha256:5ebf259c71e5ac0639a8d66c74331a19dd8fc0451384ee6706fc02cb9c560f4b";
const TOKEN: &str = "test-token-0123456789abcdef";

struct Env {
    _registry: Registry,
    proxy: Proxy,
    dir: TempDir,
    rt: tokio::runtime::Runtime,
    base: String,
    http: reqwest::Client,
}

fn policies_dir(dir: &Path) -> PathBuf {
    // The example policy with its relative paths made absolute.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("deploy/policies/gitops.yaml"))
        .unwrap()
        .replace("../../fixtures/", &format!("{}/fixtures/", root.display()));
    let p = dir.join("policies");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("gitops.yaml"), text).unwrap();
    p
}

fn start(configure: impl FnOnce(&mut ServiceConfig)) -> Option<Env> {
    if !tools_available() {
        return None;
    }
    let registry = Registry::start();
    registry.push(&["demo/app", "demo/unsigned"]);
    let proxy = Proxy::start(&registry.host(), false);
    let dir = TempDir::new("custody-service");
    std::fs::write(dir.0.join("tokens"), format!("# test\n{TOKEN}\n")).unwrap();
    let mut config = ServiceConfig {
        listen: Some("127.0.0.1:0".into()),
        policies_dir: Some(policies_dir(&dir.0)),
        environment: Some("production".into()),
        ..ServiceConfig::default()
    };
    config.auth.tokens_file = Some(dir.0.join("tokens"));
    // The registry itself too: the proxy forwards reads only, so pushes (POST /v1/attest with
    // push) go to the registry directly.
    config.registry.insecure = vec![proxy.host(), registry.host()];
    configure(&mut config);
    let state = build_state(config).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    {
        let _guard = rt.enter();
        custody::service::spawn_reloader(state.clone());
    }
    rt.spawn(async move { axum::serve(listener, router(state)).await });
    Some(Env {
        _registry: registry,
        proxy,
        dir,
        rt,
        base,
        http: reqwest::Client::new(),
    })
}

impl Env {
    fn image(&self, repo: &str, digest: &str) -> String {
        format!("{}/demo/{repo}@{digest}", self.proxy.host())
    }

    /// The image in the registry itself, not behind the (read-only) proxy.
    fn direct(&self, repo: &str, digest: &str) -> String {
        format!("{}/demo/{repo}@{digest}", self._registry.host())
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value, reqwest::header::HeaderMap) {
        self.post_raw(path, body.to_string().into_bytes(), Some(TOKEN))
    }

    fn post_raw(
        &self,
        path: &str,
        body: Vec<u8>,
        token: Option<&str>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        self.rt.block_on(async {
            let mut r = self
                .http
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .body(body);
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            let resp = r.send().await.unwrap();
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let bytes = resp.bytes().await.unwrap();
            (
                status,
                serde_json::from_slice(&bytes)
                    .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into())),
                headers,
            )
        })
    }

    fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        self.rt.block_on(async {
            let mut r = self.http.get(format!("{}{path}", self.base));
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            let resp = r.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        })
    }
}

fn pod(images: &[&str], dry_run: bool) -> Value {
    let containers: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, im)| json!({"name": format!("c{i}"), "image": im}))
        .collect();
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "web", "namespace": "shop", "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"}, "spec": {"containers": containers}},
            "dryRun": dry_run
        }
    })
}

macro_rules! service {
    ($configure:expr) => {
        match start($configure) {
            Some(e) => e,
            None => return,
        }
    };
}

// ------------------------------------------------------------------ the four caller shapes ----

#[test]
fn verify_endpoint_allows_denies_and_explains() {
    let e = service!(|_| {});
    let (code, body, _) = e.post("/v1/verify", json!({"images": [e.image("app", APP), e.image("unsigned", UNSIGNED)], "environment": "production"}));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["admit"], false);
    assert_eq!(body["verdicts"][0]["decision"], "allow");
    assert_eq!(body["verdicts"][1]["decision"], "deny");
    assert_eq!(body["verdicts"][1]["reasons"][0]["check"], "authorities");
    assert!(
        body["verdicts"][0]["policy"]["contentHash"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
}

#[test]
fn admission_denies_with_one_message_listing_each_failing_image() {
    let e = service!(|_| {});
    let (code, body, _) = e.post(
        "/v1/admission",
        pod(
            &[&e.image("app", APP), &e.image("unsigned", UNSIGNED)],
            false,
        ),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(body["kind"], "AdmissionReview");
    let r = &body["response"];
    assert_eq!(r["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(r["allowed"], false);
    let msg = r["status"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("custody: 1 of 2 image(s) not admitted:")
            && msg.contains("demo/unsigned")
            && msg.contains("authorities"),
        "{msg}"
    );
    assert!(!msg.contains("demo/app@"), "{msg}");

    // A Deployment of the signed image, as a dry run: allowed, same answer.
    let mut d = pod(&[], true);
    d["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    d["request"]["object"] = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"template": {"spec": {"containers": [{"name": "a", "image": e.image("app", APP)}], "initContainers": [{"name": "i", "image": e.image("app", APP)}]}}}});
    let (code, body, _) = e.post("/v1/admission", d);
    assert_eq!(code, 200);
    assert_eq!(body["response"]["allowed"], true, "{body}");
}

#[test]
fn admission_denies_a_workload_whose_images_cannot_be_read_and_allows_other_kinds() {
    let e = service!(|_| {});
    // A container without an image next to a signed one: refused, not skipped.
    let mut p = pod(&[&e.image("app", APP)], false);
    p["request"]["object"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "sidecar"}));
    let (code, body, _) = e.post("/v1/admission", p);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["response"]["allowed"], false, "{body}");
    let msg = body["response"]["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("malformed workload") && msg.contains("containers[1] has no image string"),
        "{msg}"
    );
    // A ConfigMap has no pod template: nothing to judge, allowed.
    let mut c = pod(&[], false);
    c["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "ConfigMap"});
    c["request"]["object"] =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}});
    let (code, body, _) = e.post("/v1/admission", c);
    assert_eq!(code, 200);
    assert_eq!(body["response"]["allowed"], true, "{body}");
}

#[test]
fn admission_in_warn_mode_allows_with_warnings() {
    let e = service!(|_| {});
    let p = e.dir.0.join("policies/gitops.yaml");
    std::fs::write(
        &p,
        std::fs::read_to_string(&p)
            .unwrap()
            .replace("mode: enforce", "mode: warn"),
    )
    .unwrap();
    // The reloader polls every 2 s.
    std::thread::sleep(Duration::from_millis(2500));
    let (_, body, _) = e.post(
        "/v1/admission",
        pod(&[&e.image("unsigned", UNSIGNED)], false),
    );
    assert_eq!(body["response"]["allowed"], true, "{body}");
    let w = body["response"]["warnings"][0].as_str().unwrap();
    assert!(
        w.starts_with("custody (warn mode) would deny") && w.contains("demo/unsigned"),
        "{w}"
    );
}

#[test]
fn gatekeeper_and_kyverno_shapes() {
    let e = service!(|c| c.registry.allowed = None);
    let (code, body, _) = e.post(
        "/v1/gatekeeper",
        json!({"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest", "request": {"keys": [e.image("app", APP), e.image("unsigned", UNSIGNED), "not a reference"]}}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["apiVersion"], "externaldata.gatekeeper.sh/v1beta1");
    assert_eq!(body["kind"], "ProviderResponse");
    let items = body["response"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["value"]["decision"], "allow");
    assert!(items[0].get("error").is_none());
    assert_eq!(items[1]["value"]["admit"], false);
    assert!(
        items[2]["error"]
            .as_str()
            .unwrap()
            .contains("invalid image reference"),
        "{}",
        items[2]
    );
    assert_eq!(body["response"]["idempotent"], true);

    let (code, body, _) = e.post(
        "/v1/kyverno",
        json!({"images": [e.image("app", APP), e.image("unsigned", UNSIGNED)]}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["allowed"], false);
    assert!(body["message"].as_str().unwrap().contains("demo/unsigned"));
    assert_eq!(body["verdicts"][0]["admit"], true);
}

// ------------------------------------------------------------------ bad input ----

#[test]
fn bad_requests_get_clear_errors_and_the_process_stays_up() {
    let e = service!(|c| c.limits.max_body_bytes = 64 << 10);
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("/v1/verify", b"{not json".to_vec(), 400, "bad-json"),
        (
            "/v1/verify",
            br#"{"images": []}"#.to_vec(),
            400,
            "no-images",
        ),
        (
            "/v1/verify",
            br#"{"image": "x", "colour": 1}"#.to_vec(),
            400,
            "bad-json",
        ),
        (
            "/v1/verify",
            json!({"image": e.image("app", APP), "policy": "nope"})
                .to_string()
                .into_bytes(),
            404,
            "unknown-policy",
        ),
        (
            "/v1/verify",
            json!({"image": "UPPER/Case"}).to_string().into_bytes(),
            400,
            "bad-image",
        ),
        ("/v1/verify", vec![b' '; 70 << 10], 413, "too-large"),
        (
            "/v1/admission",
            json!({"apiVersion": "v1", "kind": "Pod"})
                .to_string()
                .into_bytes(),
            400,
            "bad-kind",
        ),
        (
            "/v1/admission",
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"})
                .to_string()
                .into_bytes(),
            400,
            "no-request",
        ),
        (
            "/v1/admission",
            {
                let mut p = pod(&["x"], false);
                p["request"]["uid"] = json!("");
                p.to_string().into_bytes()
            },
            400,
            "no-uid",
        ),
        (
            "/v1/gatekeeper",
            json!({"apiVersion": "v1", "kind": "Nope", "request": {"keys": []}})
                .to_string()
                .into_bytes(),
            400,
            "bad-kind",
        ),
        (
            "/v1/verify",
            format!("{}{}", "[".repeat(100), "]".repeat(100)).into_bytes(),
            400,
            "bad-json",
        ),
    ];
    for (path, body, status, code) in cases {
        let (s, b, _) = e.post_raw(path, body, Some(TOKEN));
        assert_eq!(s, status, "{path}: {b}");
        assert_eq!(b["error"]["code"], code, "{path}: {b}");
    }
    assert_eq!(e.get("/healthz", None), (200, "ok\n".into()));
}

#[test]
fn a_pod_with_a_thousand_containers_of_one_image_verifies_it_once() {
    let e = service!(|_| {});
    let image = e.image("app", APP);
    let many: Vec<&str> = vec![image.as_str(); 1000];
    let (code, body, _) = e.post("/v1/admission", pod(&many, false));
    assert_eq!(code, 200);
    assert_eq!(body["response"]["allowed"], true, "{body}");
    let manifest_fetches = e
        .proxy
        .paths()
        .iter()
        .filter(|p| p.ends_with(&format!("/manifests/{APP}")))
        .count();
    assert_eq!(manifest_fetches, 1, "{:?}", e.proxy.paths());
    // 1001 distinct images: over the per-request bound, refused before any verification.
    let images: Vec<String> = (0..1001)
        .map(|i| format!("registry.example/app{i}@{APP}"))
        .collect();
    let refs: Vec<&str> = images.iter().map(String::as_str).collect();
    let (s, b, _) = e.post("/v1/admission", pod(&refs, false));
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (413, Some("too-many-images"))
    );
}

#[test]
fn authentication_is_required_everywhere_but_health() {
    let e = service!(|_| {});
    let (s, b, h) = e.post_raw("/v1/verify", b"{}".to_vec(), None);
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    assert!(h.get("www-authenticate").is_some());
    let (s, _, _) = e.post_raw(
        "/v1/verify",
        b"{}".to_vec(),
        Some("wrong-token-0123456789abcdef"),
    );
    assert_eq!(s, 401);
    assert_eq!(e.get("/metrics", None).0, 401);
    assert_eq!(e.get("/healthz", None).0, 200);
    assert!(e.get("/readyz", None).1.starts_with("ready: 1 policies"));
}

// ------------------------------------------------------------------ cache, singleflight, deadlines ----

#[test]
fn concurrent_requests_share_one_verification_and_repeats_hit_the_cache() {
    let e = service!(|_| {});
    let image = e.image("app", APP);
    let body = json!({ "image": image }).to_string();
    let results = e.rt.block_on(async {
        let futures = (0..16).map(|_| {
            e.http
                .post(format!("{}/v1/verify", e.base))
                .bearer_auth(TOKEN)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
        });
        futures_util::future::join_all(futures).await
    });
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.status() == 200))
    );
    let fetches = |e: &Env| {
        e.proxy
            .paths()
            .iter()
            .filter(|p| p.ends_with(&format!("/manifests/{APP}")))
            .count()
    };
    assert_eq!(
        fetches(&e),
        1,
        "16 concurrent misses → 1 registry fetch: {:?}",
        e.proxy.paths()
    );
    let before = e.proxy.requests();
    let (_, b, _) = e.post("/v1/verify", json!({ "image": image }));
    assert_eq!(b["verdicts"][0]["decision"], "allow");
    assert_eq!(
        e.proxy.requests(),
        before,
        "a cached verdict makes no registry request"
    );
    let (_, metrics) = e.get("/metrics", Some(TOKEN));
    assert!(
        metrics.contains("custody_verdict_cache_hits_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "custody_verdicts_total{decision=\"allow\",policy=\"gitops-three-environments\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("custody_http_request_seconds_bucket{"),
        "{metrics}"
    );
    assert!(
        metrics.contains("custody_registry_requests_total"),
        "{metrics}"
    );
}

#[test]
fn a_deadline_ends_in_an_error_verdict_never_an_allow() {
    let e = service!(|c| c.deadlines.gatekeeper_ms = 600);
    e.proxy
        .rule("/manifests/", Action::Delay(Duration::from_secs(3)), None);
    let started = std::time::Instant::now();
    let (code, body, _) = e.post(
        "/v1/gatekeeper",
        json!({"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest", "request": {"keys": [e.image("app", APP)]}}),
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(code, 200);
    let item = &body["response"]["items"][0];
    assert_eq!(item["value"]["decision"], "error", "{body}");
    assert_eq!(item["value"]["admit"], false);
    assert!(
        item["error"].as_str().unwrap().contains("deadline"),
        "{item}"
    );
}

#[test]
fn policy_changes_reload_and_invalidate_cached_verdicts() {
    let e = service!(|_| {});
    let image = e.image("app", APP);
    let (_, b, _) = e.post("/v1/verify", json!({ "image": image }));
    assert_eq!(b["verdicts"][0]["decision"], "allow");
    let p = e.dir.0.join("policies/gitops.yaml");
    std::fs::write(
        &p,
        std::fs::read_to_string(&p)
            .unwrap()
            .replace("sbom: present", "sbom: attested"),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let (_, b, _) = e.post("/v1/verify", json!({ "image": image }));
    assert_eq!(b["verdicts"][0]["decision"], "deny", "{b}");
    assert_eq!(b["verdicts"][0]["reasons"][0]["check"], "sbom");
    // A broken edit keeps the previous policies.
    std::fs::write(&p, "apiVersion: nope").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let (code, b, _) = e.post("/v1/verify", json!({ "image": image }));
    assert_eq!(code, 200);
    assert_eq!(b["verdicts"][0]["decision"], "deny");
}

#[test]
fn too_many_requests_in_flight_get_503_with_retry_after() {
    let e = service!(|c| c.limits.max_concurrent_requests = 1);
    e.proxy.rule(
        "/manifests/",
        Action::Delay(Duration::from_millis(1500)),
        Some(1),
    );
    let slow = {
        let http = e.http.clone();
        let url = format!("{}/v1/verify", e.base);
        let body = json!({ "image": e.image("app", APP) }).to_string();
        e.rt.spawn(async move {
            http.post(url)
                .bearer_auth(TOKEN)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let (s, b, h) = e.post(
        "/v1/verify",
        json!({ "image": e.image("unsigned", UNSIGNED) }),
    );
    assert_eq!(s, 503, "{b}");
    assert_eq!(b["error"]["code"], "overloaded");
    assert_eq!(h.get("retry-after").unwrap(), "1");
    assert_eq!(
        e.get("/healthz", None).0,
        200,
        "health is not subject to the bound"
    );
    assert_eq!(e.rt.block_on(slow).unwrap().unwrap(), 200);
}

#[test]
fn the_openapi_document_matches_the_router() {
    let e = service!(|_| {});
    let (code, text) = e.get("/openapi.json", Some(TOKEN));
    assert_eq!(code, 200);
    let doc: Value = serde_json::from_str(&text).unwrap();
    let committed: Value = serde_json::from_slice(
        &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(doc, committed);
    let mut paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        vec![
            "/healthz",
            "/metrics",
            "/openapi.json",
            "/readyz",
            "/v1/admission",
            "/v1/attest",
            "/v1/events",
            "/v1/gatekeeper",
            "/v1/kyverno",
            "/v1/lineage/commit/{commit}",
            "/v1/lineage/digest/{digest}",
            "/v1/lineage/environment/{environment}",
            "/v1/lineage/signer",
            "/v1/lineage/verdict/{id}",
            "/v1/promotion",
            "/v1/verify"
        ]
    );
    // Every documented path answers something other than the router's 404.
    for p in &paths {
        let (s, _) = e.get(p, Some(TOKEN));
        assert_ne!(s, 404, "{p} is documented but not routed");
    }
    assert_eq!(e.get("/v2/nothing", Some(TOKEN)).0, 404);
}

#[test]
fn a_tag_only_reference_is_denied_by_the_reference_rules_not_an_error() {
    let e = service!(|_| {});
    let tagged = format!("{}/demo/app:v1", e.proxy.host());
    let (code, body, _) = e.post(
        "/v1/verify",
        json!({"image": tagged, "environment": "production"}),
    );
    assert_eq!(code, 200, "{body}");
    let v = &body["verdicts"][0];
    assert_eq!(v["decision"], "deny", "{v:#}");
    assert_eq!(v["reasons"][0]["check"], "reference-digest");
    assert!(v.get("error").is_none(), "{v:#}");
    assert!(
        !v.to_string().contains("--resolve"),
        "a CLI flag means nothing to a webhook: {v}"
    );
    assert_eq!(
        v["httpRequests"], 0,
        "nothing fetched for a reference the rules refuse"
    );
    let (_, body, _) = e.post("/v1/admission", pod(&[&tagged], false));
    assert_eq!(body["response"]["allowed"], false);
    let msg = body["response"]["status"]["message"].as_str().unwrap();
    assert!(msg.contains("reference-digest"), "{msg}");
}

// ------------------------------------------------------------------ promotion gate ----

const GITOPS: &str = "apiVersion: custody.dev/v1alpha1\nkind: GitOpsConfig\nenvironments:\n  - {name: dev, paths: [\"env/dev/**\"], autoUpdate: true}\n  - {name: staging, paths: [\"env/staging/**\"]}\n  - {name: prod, paths: [\"env/prod/**\"], policyEnvironment: production}\n";
const OTHER: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";

fn gitops_file() -> TempDir {
    let dir = TempDir::new("custody-gitops-config");
    std::fs::write(dir.0.join("custody-gitops.yaml"), GITOPS).unwrap();
    dir
}

#[test]
fn promotion_endpoint_passes_same_digest_forward_and_refuses_a_new_one() {
    let g = gitops_file();
    let path = g.0.join("custody-gitops.yaml");
    let e = service!(|c| c.gitops = Some(path));
    let app = e.image("app", APP);
    let other = e.image("app", OTHER);
    // staging runs APP; prod moves from OTHER to APP: a promotion, verified for production.
    let (code, body, _) = e.post(
        "/v1/promotion",
        json!({"environment": "prod", "changes": [{"reference": app, "previous": other, "file": "env/prod/values.yaml", "line": 3}], "source": [app], "historyComplete": true}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["passed"], true, "{body:#}");
    let c = &body["changes"][0];
    assert_eq!(c["kind"], "promotion");
    assert_eq!(c["sourceEnvironment"], "staging");
    assert_eq!(c["verification"]["decision"], "allow");
    assert_eq!(c["verification"]["environment"], "production");
    assert_eq!(c["verification"]["promotedFrom"], "staging");
    assert_eq!(
        body["mediaType"],
        "application/vnd.custody.promotion-check.v1+json"
    );
    // staging runs something else: not from the source, refused, naming what staging runs.
    let (code, body, _) = e.post(
        "/v1/promotion",
        json!({"environment": "prod", "changes": [{"reference": app}], "source": [other], "historyComplete": true}),
    );
    assert_eq!(code, 200);
    assert_eq!(body["passed"], false);
    assert_eq!(body["changes"][0]["problems"][0]["rule"], "not-from-source");
    assert!(
        body["changes"][0]["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains(OTHER)
    );
    // Without a complete history the gate cannot rule out a rollback either way: fail closed.
    let (_, body, _) = e.post(
        "/v1/promotion",
        json!({"environment": "prod", "changes": [{"reference": app}], "source": [other]}),
    );
    assert_eq!(
        body["changes"][0]["problems"][0]["rule"],
        "history-unavailable"
    );
}

#[test]
fn promotion_endpoint_freeze_rollback_and_trust_policy() {
    let g = gitops_file();
    let path = g.0.join("custody-gitops.yaml");
    let e = service!(|c| c.gitops = Some(path));
    let app = e.image("app", APP);
    let unsigned = e.image("unsigned", UNSIGNED);
    let freeze = json!({"frozen": true, "reason": "release week"});
    // Frozen: a promotion fails, a rollback to a digest prod ran passes, labelled.
    let (_, body, _) = e.post(
        "/v1/promotion",
        json!({"environment": "prod", "changes": [{"reference": app}], "source": [app], "historyComplete": true, "freeze": freeze}),
    );
    assert_eq!(
        body["changes"][0]["problems"][0]["rule"], "frozen",
        "{body:#}"
    );
    let (_, body, _) = e.post(
        "/v1/promotion",
        json!({"environment": "prod", "changes": [{"reference": app}], "source": [], "history": [APP], "historyComplete": true, "freeze": freeze}),
    );
    assert_eq!(body["passed"], true, "{body:#}");
    assert_eq!(body["changes"][0]["kind"], "rollback");
    assert!(
        body["changes"][0]["label"]
            .as_str()
            .unwrap()
            .contains("during freeze")
    );
    // An expired freeze does not freeze.
    let (_, body, _) = e.post(
        "/v1/promotion",
        json!({"environment": "prod", "changes": [{"reference": app}], "source": [app], "historyComplete": true, "freeze": {"frozen": true, "until": "2020-01-01T00:00:00Z"}}),
    );
    assert_eq!(body["passed"], true, "{body:#}");
    // Promoted correctly but unsigned: the trust policy refuses it.
    let (_, body, _) = e.post(
        "/v1/promotion",
        json!({"environment": "staging", "changes": [{"reference": unsigned}], "source": [unsigned], "historyComplete": true}),
    );
    assert_eq!(body["passed"], false);
    assert_eq!(body["changes"][0]["kind"], "violation");
    assert_eq!(body["changes"][0]["problems"][0]["rule"], "trust-policy");
}

#[test]
fn promotion_endpoint_bad_requests_and_not_configured() {
    let e = service!(|_| {});
    let (code, body, _) = e.post(
        "/v1/promotion",
        json!({"environment": "prod", "changes": [{"reference": e.image("app", APP)}]}),
    );
    assert_eq!(code, 501, "{body}");
    assert_eq!(body["error"]["code"], "not-configured");
    drop(e);
    let g = gitops_file();
    let path = g.0.join("custody-gitops.yaml");
    let e = service!(|c| c.gitops = Some(path));
    for bad in [
        json!({"environment": "qa", "changes": [{"reference": e.image("app", APP)}]}),
        json!({"environment": "prod", "changes": []}),
        json!({"environment": "prod", "changes": [{"reference": "not a reference"}]}),
        json!({"environment": "prod", "changes": [{"reference": e.image("app", APP)}], "source": ["'; DROP TABLE x; --"]}),
        json!({"environment": "prod", "changes": [{"reference": e.image("app", APP)}], "freeze": {"frozen": true, "until": "soon"}}),
        json!({"environment": "prod", "changes": [{"reference": e.image("app", APP)}], "policy": "nope"}),
        json!({"environment": "prod", "changes": [{"reference": e.image("app", APP)}], "extra": 1}),
    ] {
        let (code, body, _) = e.post("/v1/promotion", bad.clone());
        assert_eq!(code, 400, "{bad} → {body}");
        assert!(
            !body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{body}"
        );
    }
    let (_, body, _) = e.post(
        "/v1/promotion",
        json!({"environment": "qa", "changes": [{"reference": e.image("app", APP)}]}),
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("dev, staging, prod"),
        "{body}"
    );
}

// ------------------------------------------------------------------ TLS and mutual TLS ----

fn openssl(args: &[&str], dir: &Path) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed P-256 certificate `{name}.crt` / `{name}.key` (the test CA, or a stranger).
fn self_signed(dir: &Path, name: &str) {
    let (key, crt, subj) = (
        format!("{name}.key"),
        format!("{name}.crt"),
        format!("/CN={name}"),
    );
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-subj",
            &subj,
            "-days",
            "2",
        ],
        dir,
    );
}

/// A P-256 certificate `{name}.crt` / `{name}.key` issued by `ca.crt`, with the extensions in `ext_file`.
fn issued(dir: &Path, name: &str, ext_file: &str) {
    let (key, csr, crt, subj) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("/CN={name}"),
    );
    openssl(
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &subj,
        ],
        dir,
    );
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            ext_file,
        ],
        dir,
    );
}

/// Kills `custody serve` when the test ends, pass or fail.
struct KillOnDrop(std::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(config: &Path) -> KillOnDrop {
    KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_custody"))
            .args(["serve", "--config", config.to_str().unwrap()])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[test]
fn https_with_mutual_tls_authenticates_by_certificate_or_token_and_probes_need_neither() {
    if !tools_available()
        || std::process::Command::new("openssl")
            .arg("version")
            .output()
            .is_err()
    {
        return;
    }
    let d = TempDir::new("custody-tls");
    let dir = d.0.as_path();
    // A CA, a server certificate for 127.0.0.1, a client certificate, and a stranger's certificate.
    self_signed(dir, "ca");
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    issued(dir, "server", "san.ext");
    issued(dir, "client", "client.ext");
    self_signed(dir, "stranger");
    let policies = policies_dir(dir);
    std::fs::write(dir.join("tokens"), format!("{TOKEN}\n")).unwrap();
    let port = common::registry::free_port();
    let config = format!(
        "listen: 127.0.0.1:{port}\nenvironment: production\npoliciesDir: {}\ntls:\n  cert: {d}/server.crt\n  key: {d}/server.key\n  clientCa: {d}/ca.crt\nauth:\n  tokensFile: {d}/tokens\n",
        policies.display(),
        d = dir.display()
    );
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let _child = serve(&dir.join("config.yaml"));
    let url = |path: &str| format!("https://127.0.0.1:{port}{path}");
    let curl = |extra: &[&str], path: &str| -> String {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "--http1.1",
                "--max-time",
                "5",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--cacert",
                dir.join("ca.crt").to_str().unwrap(),
            ])
            .args(extra)
            .arg(url(path))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let started = std::time::Instant::now();
    while curl(&[], "/readyz") != "200" {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "service did not become ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let post = [
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"images":[]}"#,
    ];
    let cert = [
        "--cert",
        dir.join("client.crt").to_str().unwrap().to_owned().leak(),
        "--key",
        dir.join("client.key").to_str().unwrap().to_owned().leak(),
    ];
    let bearer = format!("authorization: Bearer {TOKEN}");
    assert_eq!(curl(&[], "/healthz"), "200", "probes need no certificate");
    assert_eq!(curl(&post, "/v1/verify"), "401", "no certificate, no token");
    assert_eq!(
        curl(&[&post[..], &cert[..]].concat(), "/v1/verify"),
        "400",
        "a verified client certificate authenticates (400: empty image list)"
    );
    assert_eq!(
        curl(
            &[&post[..], &["-H", bearer.as_str()]].concat(),
            "/v1/verify"
        ),
        "400",
        "a bearer token authenticates"
    );
    let stranger = [
        "--cert",
        dir.join("stranger.crt").to_str().unwrap().to_owned().leak(),
        "--key",
        dir.join("stranger.key").to_str().unwrap().to_owned().leak(),
    ];
    assert_eq!(
        curl(&[&post[..], &stranger[..]].concat(), "/v1/verify"),
        "000",
        "a certificate from another CA fails the handshake"
    );
}

#[test]
fn a_slow_client_is_disconnected_and_the_service_keeps_serving() {
    use std::io::{Read, Write};
    let port = common::registry::free_port();
    let mut config = ServiceConfig {
        listen: Some(format!("127.0.0.1:{port}")),
        ..ServiceConfig::default()
    };
    config.auth.insecure_allow_anonymous = true;
    config.limits.header_read_timeout_ms = 300;
    let state = build_state(config).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.spawn(custody::service::serve(state, std::future::pending()));
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(10));
    }
    // Half a request line, then silence.
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.write_all(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let waited = std::time::Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    assert!(
        waited.elapsed() < Duration::from_secs(2),
        "the slow connection was not closed: {:?}",
        waited.elapsed()
    );
    // Meanwhile and after, others are served.
    let mut ok = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    ok.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

#[test]
fn a_renewed_certificate_is_served_without_a_restart() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
        || std::process::Command::new("curl")
            .arg("--version")
            .output()
            .is_err()
    {
        return;
    }
    let d = TempDir::new("custody-tls-reload");
    let dir = d.0.as_path();
    self_signed(dir, "ca");
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    issued(dir, "first", "san.ext");
    issued(dir, "second", "san.ext");
    std::fs::copy(dir.join("first.crt"), dir.join("tls.crt")).unwrap();
    std::fs::copy(dir.join("first.key"), dir.join("tls.key")).unwrap();
    let port = common::registry::free_port();
    std::fs::write(
        dir.join("config.yaml"),
        format!("listen: 127.0.0.1:{port}\ntls:\n  cert: {d}/tls.crt\n  key: {d}/tls.key\nauth:\n  insecureAllowAnonymous: true\n", d = dir.display()),
    )
    .unwrap();
    let _child = serve(&dir.join("config.yaml"));
    let served_cn = || -> String {
        let out = std::process::Command::new("curl")
            .args([
                "-sv",
                "--http1.1",
                "--max-time",
                "5",
                "--cacert",
                dir.join("ca.crt").to_str().unwrap(),
                &format!("https://127.0.0.1:{port}/healthz"),
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        err.lines()
            .find(|l| l.contains("subject:"))
            .map(|l| l.trim().to_owned())
            .unwrap_or(err)
    };
    let started = std::time::Instant::now();
    while !served_cn().contains("CN=first") {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "service did not start: {}",
            served_cn()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::copy(dir.join("second.crt"), dir.join("tls.crt")).unwrap();
    std::fs::copy(dir.join("second.key"), dir.join("tls.key")).unwrap();
    let renewed = std::time::Instant::now();
    while !served_cn().contains("CN=second") {
        assert!(
            renewed.elapsed() < Duration::from_secs(15),
            "the renewed certificate was not picked up: {}",
            served_cn()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

// ------------------------------------------------------------------ POST /v1/attest ----

const VERIFIER: &str = "https://ci.acme.example/custody-service";
const VSA: &str = "https://slsa.dev/verification_summary/v1";

/// An ECDSA P-256 key pair made by openssl in `dir`: (PKCS#8 private PEM, SPKI public PEM).
fn attest_keypair(dir: &Path) -> (PathBuf, PathBuf) {
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "attestor.key",
        ],
        dir,
    );
    openssl(
        &[
            "pkey",
            "-pubout",
            "-in",
            "attestor.key",
            "-out",
            "attestor.pub",
        ],
        dir,
    );
    (dir.join("attestor.key"), dir.join("attestor.pub"))
}

/// The example policy trusting summaries signed by `public` (maxAge 1h), in `dir/policies`.
fn summary_policies(dir: &Path, public: &Path) -> PathBuf {
    let p = policies_dir(dir);
    let file = p.join("gitops.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        format!(
            "{text}  verificationSummaries:\n    keys:\n      - name: ci-attestor\n        file: {}\n    maxAge: 1h\n",
            public.display()
        ),
    )
    .unwrap();
    p
}

/// Keys, a summary-trusting policy, and a service that signs with the key.
struct Attesting {
    e: Env,
    _keys: TempDir,
    public: PathBuf,
}

fn start_attesting(allow_push: bool) -> Option<Attesting> {
    let keys = TempDir::new("custody-service-attest");
    let (private, public) = attest_keypair(&keys.0);
    let policies = summary_policies(&keys.0, &public);
    let e = start(move |c| {
        c.policies_dir = Some(policies);
        c.limits.max_body_bytes = 64 << 10;
        c.attest = Some(custody::service::config::AttestConfig {
            key: private,
            verifier_id: VERIFIER.into(),
            allow_push,
        });
    })?;
    Some(Attesting {
        e,
        _keys: keys,
        public,
    })
}

macro_rules! attesting {
    ($allow_push:expr) => {
        match start_attesting($allow_push) {
            Some(a) => a,
            None => return,
        }
    };
}

fn registry_client(host: &str) -> custody::registry::RegistryClient {
    custody::registry::RegistryClient::new(custody::registry::RegistryConfig {
        insecure_registries: vec![host.to_owned()],
        ..custody::registry::RegistryConfig::default()
    })
    .unwrap()
}

/// The summaries attached to `image` (digest-pinned), read with custody's own finder.
fn attached_summaries(e: &Env, image: &str) -> usize {
    let image: custody::reference::ImageRef = image.parse().unwrap();
    let c = registry_client(&e._registry.host());
    let (found, _) =
        e.rt.block_on(custody::attest::push::find_summaries(
            &c,
            &image,
            &custody::registry::Deadline::after(Duration::from_secs(10)),
        ))
        .unwrap();
    found.len()
}

/// Whether the in-toto / securesystemslib venv is (or can be) made: vsa-setup.sh exits 3 when
/// not, and the independent check then skips (outside CI).
fn python_tools() -> bool {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/independent/vsa-setup.sh");
    let out = std::process::Command::new(&script).output().unwrap();
    if out.status.success() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "scripts/independent/vsa-setup.sh could not install in-toto: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "skipping the independent check: the in-toto venv cannot be made here: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

#[test]
fn attest_endpoint_signs_an_allow_that_the_independent_verifier_accepts() {
    let a = attesting!(false);
    let e = &a.e;
    let app = e.direct("app", APP);
    let (code, body, _) = e.post(
        "/v1/attest",
        json!({"image": app, "environment": "production"}),
    );
    assert_eq!(code, 200, "{body:#}");
    assert!(body.get("pushed").is_none(), "not asked to push: {body:#}");
    let summary = &body["summary"];
    assert_eq!(summary["digest"], APP);
    assert_eq!(summary["resourceUri"], format!("oci://{app}"));
    assert_eq!(summary["environment"], "production");
    assert_eq!(summary["rule"], "production");
    assert_eq!(summary["verifierId"], VERIFIER);
    assert_eq!(summary["verifiedLevels"], json!(["SLSA_BUILD_LEVEL_1"]));
    assert_eq!(summary["policy"]["name"], "gitops-three-environments");
    let public = custody::trust::StaticKey::from_pem(
        &std::fs::read(&a.public).unwrap(),
        &custody::Limits::default(),
    )
    .unwrap();
    assert_eq!(summary["keyId"], public.content_hash().to_string());

    // custody's own reading of the envelope: signed by the configured key, about this digest.
    let envelope = body["envelope"].to_string();
    let parsed =
        custody::attest::dsse::parse_envelope(envelope.as_bytes(), &custody::Limits::default())
            .unwrap();
    assert_eq!(parsed.verified_by(&[&public]), Some(0));
    assert_eq!(
        body["envelope"]["signatures"][0]["keyid"],
        public.content_hash().to_string()
    );
    let statement: Value = serde_json::from_slice(&parsed.payload).unwrap();
    assert_eq!(statement["predicateType"], VSA);
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        APP.trim_start_matches("sha256:")
    );
    let p = &statement["predicate"];
    assert_eq!(p["verificationResult"], "PASSED");
    assert_eq!(p["timeVerified"], summary["timeVerified"]);
    assert_eq!(
        format!(
            "sha256:{}",
            p["policy"]["digest"]["sha256"].as_str().unwrap()
        ),
        summary["policy"]["contentHash"].as_str().unwrap()
    );
    // Nothing was attached: the service pushes only when asked (and allowed).
    assert_eq!(attached_summaries(e, &app), 0);

    // The independent verifier (PyPI in-toto / securesystemslib DSSE, in-toto-attestation).
    if !python_tools() {
        return;
    }
    let dir = TempDir::new("custody-service-attest-xverify");
    let file = dir.0.join("vsa.json");
    std::fs::write(&file, &envelope).unwrap();
    let verify = |key: &Path| {
        std::process::Command::new(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/independent/vsa-verify.py"),
        )
        .arg(&file)
        .arg(key)
        .args(["--digest", APP])
        .args(["--name", &format!("{}/demo/app", e._registry.host())])
        .args(["--resource-uri", &format!("oci://{app}")])
        .args([
            "--policy-digest",
            summary["policy"]["contentHash"].as_str().unwrap(),
        ])
        .args(["--verifier-id", VERIFIER, "--environment", "production"])
        .output()
        .unwrap()
    };
    let ok = verify(&a.public);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let report: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(report["verified"], true, "{report}");
    // Another key: rejected by the independent verifier too.
    attest_keypair(&dir.0);
    let other = verify(&dir.0.join("attestor.pub"));
    assert_eq!(
        other.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
}

#[test]
fn attest_endpoint_pushes_a_summary_that_verify_then_accepts_on_the_fast_path() {
    let a = attesting!(true);
    let e = &a.e;
    let app = e.direct("app", APP);
    let (code, body, _) = e.post(
        "/v1/attest",
        json!({"image": app, "environment": "production", "push": true}),
    );
    assert_eq!(code, 200, "{body:#}");
    let pushed = &body["pushed"];
    assert_eq!(
        pushed["repository"],
        format!("{}/demo/app", e._registry.host())
    );
    // Distribution 2.8 has no referrers API: custody indexed it in the tag schema.
    assert_eq!(pushed["indexed"]["via"], "referrers-tag-schema", "{pushed}");
    assert_eq!(attached_summaries(e, &app), 1);
    // The blob attached is the envelope returned.
    let envelope_digest: custody::reference::Digest = body["summary"]["envelopeDigest"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let c = registry_client(&e._registry.host());
    let blob =
        e.rt.block_on(c.blob(
            &app.parse().unwrap(),
            &envelope_digest,
            1 << 20,
            &custody::registry::Deadline::after(Duration::from_secs(10)),
        ))
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&blob.bytes).unwrap(),
        body["envelope"]
    );
    // Discovery lists it under its own kind.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(["evidence", &app, "--insecure-registry"])
        .arg(e._registry.host())
        .args(["--output", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = listed["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "verification-summary")
            .count(),
        1,
        "{kinds:?}"
    );
    assert!(!kinds.contains(&"other"), "{kinds:?}");

    // A verification with the same policy now takes the fast path: the summary is the evidence.
    let (code, body, _) = e.post(
        "/v1/verify",
        json!({"image": app, "environment": "production"}),
    );
    assert_eq!(code, 200, "{body:#}");
    let v = &body["verdicts"][0];
    assert_eq!(v["decision"], "allow", "{v:#}");
    let evidence = v["evidence"].as_array().unwrap();
    assert_eq!(evidence.len(), 1, "{v:#}");
    assert_eq!(evidence[0]["predicateType"], VSA);
    assert_eq!(evidence[0]["digest"], envelope_digest.to_string());
    assert_eq!(
        evidence[0]["acceptedBy"],
        json!(["verification summary key ci-attestor"])
    );
    assert!(v["httpRequests"].as_u64().unwrap() <= 4, "{v:#}");
    // Another environment: the summary (made for production) is refused, full verification runs.
    let (_, body, _) = e.post(
        "/v1/verify",
        json!({"image": app, "environment": "staging"}),
    );
    let v = &body["verdicts"][0];
    assert_eq!(v["decision"], "allow", "{v:#}");
    assert!(v["evidence"].as_array().unwrap().len() > 1, "{v:#}");
}

#[test]
fn attest_endpoint_answers_a_deny_or_error_with_422_and_signs_nothing() {
    let a = attesting!(true);
    let e = &a.e;
    // Unsigned: deny, with the reasons; no envelope; nothing pushed although push was asked.
    let unsigned = e.direct("unsigned", UNSIGNED);
    let (code, body, _) = e.post(
        "/v1/attest",
        json!({"image": unsigned, "environment": "production", "push": true}),
    );
    assert_eq!(code, 422, "{body:#}");
    assert_eq!(body["error"]["code"], "not-allowed");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("deny"),
        "{body:#}"
    );
    assert!(body.get("envelope").is_none(), "{body:#}");
    let v = &body["verdict"];
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["admit"], false);
    assert!(
        v["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["check"] == "authorities"),
        "{v:#}"
    );
    assert_eq!(attached_summaries(e, &unsigned), 0);

    // A floating tag next to the digest: the reference rules deny it, as /v1/verify does.
    let floating = format!("{}/demo/app:latest@{APP}", e._registry.host());
    let (code, body, _) = e.post(
        "/v1/attest",
        json!({"image": floating, "environment": "production", "push": true}),
    );
    assert_eq!(code, 422, "{body:#}");
    assert!(
        body["verdict"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["check"] == "reference-floating-tag"),
        "{body:#}"
    );
    assert_eq!(attached_summaries(e, &e.direct("app", APP)), 0);

    // A registry that cannot be reached: an error verdict, never a summary.
    let unreachable = format!("127.0.0.1:9/demo/app@{APP}");
    let (code, body, _) = e.post(
        "/v1/attest",
        json!({"image": unreachable, "environment": "production"}),
    );
    assert_eq!(code, 422, "{body:#}");
    assert_eq!(body["verdict"]["decision"], "error", "{body:#}");
    assert!(body["verdict"]["error"].is_string(), "{body:#}");

    // The service still signs what it allows.
    let (code, body, _) = e.post(
        "/v1/attest",
        json!({"image": e.direct("app", APP), "environment": "production"}),
    );
    assert_eq!(code, 200, "{body:#}");
}

#[test]
fn attest_endpoint_needs_authentication_a_key_and_a_well_formed_request() {
    // Not configured: 404 `not-configured` (not the router's `not-found`), whatever the body;
    // authentication still comes first.
    let e = service!(|_| {});
    let good = json!({"image": e.direct("app", APP)});
    let (code, body, _) = e.post("/v1/attest", good.clone());
    assert_eq!(code, 404, "{body}");
    assert_eq!(body["error"]["code"], "not-configured");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("attest"),
        "{body}"
    );
    let (code, body, _) = e.post_raw("/v1/attest", b"{not json".to_vec(), Some(TOKEN));
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (404, Some("not-configured"))
    );
    let (code, _, _) = e.post_raw("/v1/attest", good.to_string().into_bytes(), None);
    assert_eq!(code, 401);
    drop(e);

    let a = attesting!(false);
    let e = &a.e;
    let app = e.direct("app", APP);
    // Unauthenticated: 401 with the challenge, before anything is verified or signed.
    let (code, body, headers) = e.post_raw(
        "/v1/attest",
        json!({"image": app}).to_string().into_bytes(),
        None,
    );
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    assert!(headers.get("www-authenticate").is_some());
    let (code, _, _) = e.post_raw(
        "/v1/attest",
        json!({"image": app}).to_string().into_bytes(),
        Some("wrong-token-0123456789abcdef"),
    );
    assert_eq!(code, 401);
    // Asking to push where the service does not push.
    let (code, body, _) = e.post("/v1/attest", json!({"image": app, "push": true}));
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (403, Some("push-not-allowed")),
        "{body}"
    );
    assert_eq!(attached_summaries(e, &app), 0);
    // Malformed bodies and references.
    let tagged = format!("{}/demo/app:v1", e._registry.host());
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"{not json".to_vec(), 400, "bad-json"),
        (b"{}".to_vec(), 400, "bad-json"),
        (b"[]".to_vec(), 400, "bad-json"),
        (
            json!({"image": app, "colour": 1}).to_string().into_bytes(),
            400,
            "bad-json",
        ),
        (
            json!({"image": app, "push": "yes"})
                .to_string()
                .into_bytes(),
            400,
            "bad-json",
        ),
        (
            json!({"image": 7}).to_string().into_bytes(),
            400,
            "bad-json",
        ),
        (
            format!("{}{}", "[".repeat(100), "]".repeat(100)).into_bytes(),
            400,
            "bad-json",
        ),
        (
            json!({"image": "UPPER/Case@sha256:00"})
                .to_string()
                .into_bytes(),
            400,
            "bad-image",
        ),
        (
            json!({"image": ""}).to_string().into_bytes(),
            400,
            "bad-image",
        ),
        (
            json!({"image": tagged}).to_string().into_bytes(),
            400,
            "not-pinned",
        ),
        (
            json!({"image": app, "policy": "nope"})
                .to_string()
                .into_bytes(),
            404,
            "unknown-policy",
        ),
        (vec![b' '; 70 << 10], 413, "too-large"),
    ];
    for (body, status, code) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
        let (s, b, _) = e.post_raw("/v1/attest", body, Some(TOKEN));
        assert_eq!(s, status, "{shown}: {b}");
        assert_eq!(b["error"]["code"], code, "{shown}: {b}");
        assert!(b.get("envelope").is_none());
    }
    // Only POST.
    assert_eq!(e.get("/v1/attest", Some(TOKEN)).0, 405);
    assert_eq!(attached_summaries(e, &app), 0);
}

#[test]
fn serve_refuses_to_start_with_an_unusable_attest_key_and_starts_with_a_good_one() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        return;
    }
    let d = TempDir::new("custody-attest-keys-start");
    let dir = d.0.as_path();
    let (good, _) = attest_keypair(dir);
    openssl(
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "sec1.key",
        ],
        dir,
    );
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-out",
            "p384.key",
        ],
        dir,
    );
    openssl(
        &["genpkey", "-algorithm", "ed25519", "-out", "ed25519.key"],
        dir,
    );
    std::fs::write(dir.join("garbage.key"), "not a key\n").unwrap();
    let g = good.display().to_string();
    let cases: Vec<(String, &str)> = vec![
        (
            format!("attest: {{key: {}}}", dir.join("missing.key").display()),
            "cannot read signing key",
        ),
        (
            format!("attest: {{key: {}/sec1.key}}", dir.display()),
            "SEC1",
        ),
        (
            format!("attest: {{key: {}/p384.key}}", dir.display()),
            "not an ECDSA P-256 PKCS#8 private key",
        ),
        (
            format!("attest: {{key: {}/ed25519.key}}", dir.display()),
            "not an ECDSA P-256 PKCS#8 private key",
        ),
        (
            format!("attest: {{key: {}/garbage.key}}", dir.display()),
            "not PEM",
        ),
        (
            format!("attest: {{key: {g}, verifierId: \"\"}}"),
            "verifierId",
        ),
        (format!("attest: {{keyFile: {g}}}"), "keyFile"),
        ("attest: {}".to_owned(), "key"),
    ];
    for (section, expected) in cases {
        let config = dir.join("config.yaml");
        std::fs::write(
            &config,
            format!("listen: 127.0.0.1:0\nauth: {{insecureAllowAnonymous: true}}\n{section}\n"),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_custody"))
            .args(["serve", "--config", config.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{section}: {stderr}");
        assert!(stderr.contains(expected), "{section}: {stderr}");
    }
    // A good key: the service starts and /v1/attest is there (a tag-only reference is refused
    // as such, not as "not configured").
    let port = common::registry::free_port();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!("listen: 127.0.0.1:{port}\nauth: {{insecureAllowAnonymous: true}}\nattest: {{key: {g}}}\n"),
    )
    .unwrap();
    let _child = serve(&config);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    loop {
        let ready = rt
            .block_on(http.get(format!("http://127.0.0.1:{port}/readyz")).send())
            .is_ok_and(|r| r.status() == 200);
        if ready {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "service did not become ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = rt.block_on(async {
        let r = http
            .post(format!("http://127.0.0.1:{port}/v1/attest"))
            .header("content-type", "application/json")
            .body(r#"{"image": "registry.example/app:v1"}"#)
            .send()
            .await
            .unwrap();
        (
            r.status().as_u16(),
            serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).unwrap(),
        )
    });
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("not-pinned")),
        "{body}"
    );
}

/// `custody serve --store URL` (and `CUSTODY_STORE`, which `custody lineage` reads too) opens the
/// lineage store without a configuration file: the lineage routes answer from it (an unknown digest
/// is 404, not "no store"); without it they answer 501; a store that cannot be opened stops the
/// service at start, naming the store.
#[test]
fn serve_store_flag_opens_the_lineage_store_without_a_configuration_file() {
    let d = TempDir::new("custody-serve-store");
    let digest = format!("sha256:{}", "ab".repeat(32));
    let start = |args: &[String], env: Option<&str>| -> (KillOnDrop, u16) {
        let port = common::registry::free_port();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_custody"));
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .env_remove("CUSTODY_STORE")
            .env_remove("CUSTODY_CONFIG")
            .stderr(std::process::Stdio::null());
        if let Some(url) = env {
            cmd.env("CUSTODY_STORE", url);
        }
        (KillOnDrop(cmd.spawn().unwrap()), port)
    };
    let status = |port: u16, path: &str| -> String {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "5",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
            ])
            .arg(format!("http://127.0.0.1:{port}{path}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ready = |port: u16| {
        let started = std::time::Instant::now();
        while status(port, "/readyz") != "200" {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "service did not become ready"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let lineage = format!("/v1/lineage/digest/{digest}");

    let flag_db = d.0.join("flag.db");
    let (child, port) = start(
        &["--store".into(), format!("sqlite:{}", flag_db.display())],
        None,
    );
    ready(port);
    assert_eq!(
        status(port, &lineage),
        "404",
        "a store that has not seen the digest"
    );
    assert!(flag_db.exists(), "the SQLite store was created");
    drop(child);

    // Admissions are recorded without a `cluster:` (the environment stands in) and for an object
    // without a namespace; before, the store refused both and the events were dropped.
    let admitted_db = d.0.join("admitted.db");
    let (child, port) = start(
        &[
            "--store".into(),
            format!("sqlite:{}", admitted_db.display()),
            "--environment".into(),
            "production".into(),
        ],
        None,
    );
    ready(port);
    let image = format!("127.0.0.1:1/demo/app@{digest}");
    let mut clusterless = pod(&[&image], false);
    clusterless["request"]
        .as_object_mut()
        .unwrap()
        .remove("namespace");
    clusterless["request"]["object"]["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("namespace");
    for review in [pod(&[&image], false), clusterless] {
        let body = d.0.join("review.json");
        std::fs::write(&body, review.to_string()).unwrap();
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "10",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
            ])
            .args(["-H", "content-type: application/json", "--data-binary"])
            .arg(format!("@{}", body.display()))
            .arg(format!("http://127.0.0.1:{port}/v1/admission"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rows: Vec<(String, String, String)> = rt.block_on(async {
        use sqlx::Connection as _;
        let started = std::time::Instant::now();
        loop {
            let mut c =
                sqlx::SqliteConnection::connect(&format!("sqlite:{}", admitted_db.display()))
                    .await
                    .unwrap();
            let rows: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT cluster, namespace, outcome FROM admissions ORDER BY namespace DESC",
            )
            .fetch_all(&mut c)
            .await
            .unwrap();
            c.close().await.unwrap();
            if rows.len() >= 2 || started.elapsed() > Duration::from_secs(5) {
                break rows;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    assert_eq!(
        rows,
        vec![
            ("production".into(), "shop".into(), "deny".into()),
            ("production".into(), String::new(), "deny".into()),
        ],
        "both admissions recorded, the environment standing in for the cluster"
    );
    drop(child);

    let env_db = d.0.join("env.db");
    let (child, port) = start(&[], Some(&format!("sqlite:{}", env_db.display())));
    ready(port);
    assert_eq!(status(port, &lineage), "404");
    assert!(env_db.exists(), "CUSTODY_STORE is read");
    drop(child);

    let (child, port) = start(&[], None);
    ready(port);
    assert_eq!(status(port, &lineage), "501", "no store configured");
    drop(child);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_custody"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store",
            "mysql://nope",
        ])
        .env_remove("CUSTODY_STORE")
        .env_remove("CUSTODY_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("lineage store") && stderr.contains("unknown scheme"),
        "{stderr}"
    );
}

/// Review fixes: each lineage route takes only its own query parameters (an ignored `?at=` on a
/// commit query is refused, not silently dropped); a refused event count says what it got; the
/// metrics label the lineage, events and promotion routes instead of lumping them in `other`.
#[test]
fn lineage_routes_refuse_foreign_parameters_and_say_what_they_found() {
    let dir = TempDir::new("custody-service-lineage-params");
    std::fs::write(dir.0.join("tokens"), format!("{TOKEN}\n")).unwrap();
    let mut config = ServiceConfig {
        listen: Some("127.0.0.1:0".into()),
        store: Some(format!("sqlite:{}", dir.0.join("lineage.db").display())),
        ..ServiceConfig::default()
    };
    config.auth.tokens_file = Some(dir.0.join("tokens"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let state = rt
        .block_on(custody::service::open_store(build_state(config).unwrap()))
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(async move { axum::serve(listener, router(state)).await });
    let http = reqwest::Client::new();
    let get = |path: &str| -> (u16, Value) {
        rt.block_on(async {
            let r = http
                .get(format!("{base}{path}"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or(Value::Null),
            )
        })
    };
    let at = "at=2026-11-05T00:00:00Z";
    for (path, want) in [
        ("/v1/lineage/commit/0123456789abcdef".to_owned(), 200),
        (format!("/v1/lineage/commit/0123456789abcdef?{at}"), 400),
        ("/v1/lineage/commit/0123456789abcdef?id=x".to_owned(), 400),
        (format!("/v1/lineage/environment/production?{at}"), 200),
        (format!("/v1/lineage/environment/production?{at}&id=x"), 400),
        ("/v1/lineage/signer?id=someone".to_owned(), 200),
        (format!("/v1/lineage/signer?id=someone&{at}"), 400),
    ] {
        let (code, body) = get(&path);
        assert_eq!(code, want, "{path}: {body}");
        if want == 400 {
            assert_eq!(body["error"]["code"], "bad-query", "{path}: {body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("unknown field"),
                "{path}: {body}"
            );
        }
    }
    let post = |body: Value| -> (u16, Value) {
        rt.block_on(async {
            let r = http
                .post(format!("{base}/v1/events"))
                .bearer_auth(TOKEN)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or(Value::Null),
            )
        })
    };
    let (code, body) = post(json!({"events": []}));
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("this request has 0"),
        "{body}"
    );
    let (code, metrics) = rt.block_on(async {
        let r = http
            .get(format!("{base}/metrics"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    });
    assert_eq!(code, 200);
    for label in [r#"route="/v1/lineage""#, r#"route="/v1/events""#] {
        assert!(metrics.contains(label), "{label} not in\n{metrics}");
    }
    assert!(!metrics.contains(r#"route="other""#), "{metrics}");
}
