//! A misbehaving registry: a small HTTP/1.1 proxy in front of the real one that can answer with
//! errors, stall, truncate, corrupt, lie about digests, flood referrers, move tags — and that can
//! serve the OCI 1.1 referrers API the real registry (Distribution 2.8) lacks.
//!
//! It speaks just enough HTTP/1.1 for a registry client (GET and HEAD, `Connection: close`) and
//! writes responses byte by byte, so a test controls exactly what goes on the wire.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What to do with a matching request.
#[derive(Clone, Debug)]
pub enum Action {
    /// Answer with this status (and optional headers) instead of forwarding.
    Status {
        code: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Close the connection without answering.
    Reset,
    /// Wait, then forward.
    Delay(Duration),
    /// Forward, but send only half the body (Content-Length stays the full size).
    Truncate,
    /// Forward, but flip a byte of the body (headers untouched).
    Corrupt,
    /// Forward, but announce a different Docker-Content-Digest.
    WrongDigestHeader,
    /// Answer 200 with an endless body and no Content-Length.
    Endless,
    /// Answer with this body and content type.
    Body { content_type: String, body: Vec<u8> },
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub path_contains: String,
    pub action: Action,
    /// Apply this many times, then stop matching (`None`: always).
    pub times: Option<u32>,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
}

pub struct Proxy {
    pub port: u16,
    state: Arc<Mutex<State>>,
    requests: Arc<AtomicU64>,
    paths: Arc<Mutex<Vec<String>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Proxy {
    /// Starts a proxy to `upstream` (`host:port`). With `referrers_api`, it implements
    /// `/v2/<repo>/referrers/<digest>` from the referrers tag schema of the upstream.
    pub fn start(upstream: &str, referrers_api: bool) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let requests = Arc::new(AtomicU64::new(0));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let upstream = upstream.to_owned();
        let (s, r, p) = (state.clone(), requests.clone(), paths.clone());
        runtime.spawn(async move {
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (s, r, p, client, upstream) = (
                    s.clone(),
                    r.clone(),
                    p.clone(),
                    client.clone(),
                    upstream.clone(),
                );
                tokio::spawn(async move {
                    let _ = serve(stream, &client, &upstream, referrers_api, &s, &r, &p).await;
                });
            }
        });
        Self {
            port,
            state,
            requests,
            paths,
            _runtime: runtime,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn rule(&self, path_contains: &str, action: Action, times: Option<u32>) {
        self.state.lock().unwrap().rules.push(Rule {
            path_contains: path_contains.to_owned(),
            action,
            times,
        });
    }

    pub fn clear(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }
}

fn take_rule(state: &Mutex<State>, path: &str) -> Option<Action> {
    let mut st = state.lock().unwrap();
    let i = st
        .rules
        .iter()
        .position(|r| path.contains(&r.path_contains) && r.times != Some(0))?;
    let rule = &mut st.rules[i];
    if let Some(t) = rule.times.as_mut() {
        *t -= 1;
    }
    Some(rule.action.clone())
}

async fn serve(
    stream: TcpStream,
    client: &reqwest::Client,
    upstream: &str,
    referrers_api: bool,
    state: &Mutex<State>,
    requests: &AtomicU64,
    paths: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("GET").to_owned();
    let path = parts.next().unwrap_or("/").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).await? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    requests.fetch_add(1, Ordering::SeqCst);
    paths.lock().unwrap().push(path.clone());

    let action = take_rule(state, &path);
    let forward = |p: String| {
        let mut req = client.request(method.parse().unwrap(), format!("http://{upstream}{p}"));
        for (k, v) in &headers {
            if k == "accept" || k == "authorization" {
                req = req.header(k.as_str(), v.as_str());
            }
        }
        req
    };
    match action {
        Some(Action::Reset) => return Ok(()),
        Some(Action::Status {
            code,
            headers: extra,
            body,
        }) => {
            return respond(&mut write, code, &extra, body.as_bytes(), None).await;
        }
        Some(Action::Endless) => {
            write.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n").await?;
            let chunk = vec![0u8; 1 << 16];
            // Stops when the client hangs up (or after 4 GiB).
            for _ in 0..65536 {
                if write.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            return Ok(());
        }
        Some(Action::Body { content_type, body }) => {
            return respond(
                &mut write,
                200,
                &[("Content-Type".into(), content_type)],
                &body,
                None,
            )
            .await;
        }
        Some(Action::Delay(d)) => tokio::time::sleep(d).await,
        _ => {}
    }

    // The referrers API, emulated from the tag schema.
    if referrers_api
        && let Some((repo, digest)) = path
            .strip_prefix("/v2/")
            .and_then(|p| p.split_once("/referrers/"))
    {
        let digest = digest.split('?').next().unwrap_or(digest);
        let tag = digest.replace(':', "-");
        let resp = forward(format!("/v2/{repo}/manifests/{tag}"))
            .header("Accept", "application/vnd.oci.image.index.v1+json")
            .send()
            .await;
        let body = match resp {
            Ok(r) if r.status().is_success() => r.bytes().await.unwrap_or_default().to_vec(),
            _ => br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#.to_vec(),
        };
        return respond(
            &mut write,
            200,
            &[(
                "Content-Type".into(),
                "application/vnd.oci.image.index.v1+json".into(),
            )],
            &body,
            None,
        )
        .await;
    }
    if path.contains("/referrers/") {
        return respond(
            &mut write,
            404,
            &[],
            b"{\"errors\":[{\"code\":\"NOT_FOUND\"}]}",
            None,
        )
        .await;
    }

    let Ok(resp) = forward(path.clone()).send().await else {
        return respond(&mut write, 502, &[], b"upstream unreachable", None).await;
    };
    let status = resp.status().as_u16();
    let mut out_headers: Vec<(String, String)> = Vec::new();
    for name in [
        "content-type",
        "docker-content-digest",
        "www-authenticate",
        "location",
    ] {
        if let Some(v) = resp.headers().get(name).and_then(|v| v.to_str().ok()) {
            out_headers.push((name.to_owned(), v.to_owned()));
        }
    }
    let mut body = resp.bytes().await.unwrap_or_default().to_vec();
    let mut content_length = None;
    match action {
        Some(Action::Truncate) => {
            content_length = Some(body.len());
            body.truncate(body.len() / 2);
        }
        Some(Action::Corrupt) => {
            if let Some(b) = body.last_mut() {
                *b ^= 0x20;
            }
        }
        Some(Action::WrongDigestHeader) => {
            out_headers.retain(|(k, _)| k != "docker-content-digest");
            out_headers.push((
                "docker-content-digest".into(),
                format!("sha256:{}", "0".repeat(64)),
            ));
        }
        _ => {}
    }
    if method == "HEAD" {
        content_length = Some(body.len());
        body.clear();
    }
    respond(&mut write, status, &out_headers, &body, content_length).await
}

async fn respond(
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    code: u16,
    headers: &[(String, String)],
    body: &[u8],
    content_length: Option<usize>,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {code} X\r\nConnection: close\r\nContent-Length: {}\r\n",
        content_length.unwrap_or(body.len())
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    write.write_all(head.as_bytes()).await?;
    write.write_all(body).await?;
    write.shutdown().await
}
