//! `custody gitops check` on a delivery repository of 500 image references across 4 environments
//! with a 200-commit history, against a real local registry: wall time with a cold and a warm
//! verdict cache (`--cache-dir`), the registry requests, and where the warm time goes.
//!
//! The repository is generated at start with `git fast-import` in a temporary directory:
//!
//! * environments `dev` (autoUpdate) → `qa` (trust policy `dev`) → `staging` → `prod` (trust
//!   policy `production`, freeze file), `policy: policy/trust.yaml` (deploy/policies/gitops.yaml
//!   with the fixture trust root and key next to it);
//! * per environment 25 files × 5 services = 125 references: 13 Helm values files
//!   (`services.<svc>.image.ref`) and 12 Deployments (5 containers each);
//! * 200 commits on `main`: config and policy, the initial files, 194 single-file digest bumps
//!   spread over the four environments (dummy digests), dev/qa/staging rolled to the real digest,
//!   and a last dev bump of one service to a dummy digest;
//! * pull requests: `pr-big` promotes all 125 prod references to staging's digest (125 changes),
//!   `pr-small` promotes one, `pr-dev` sets one dev reference back to a digest dev ran before (a
//!   rollback: the only kind here that walks the history).
//!
//! Every reference names `demo/app`, the one fully signed fixture image (signature, SLSA
//! provenance, SBOM): its cosign signature payload names `registry.custody.test/demo/app` and
//! custody checks that repository path against the image's, so a copy pushed into another
//! repository would be denied. Two variants: `identical` (every reference `demo/app@<digest>`:
//! one verification per trust-policy environment) and `distinct` (`demo/app:svc-NNN@<digest>`,
//! one tag per service: 125 distinct references per environment, each verified and cached on its
//! own, as 125 separately built images would be).
//!
//! Measured through the library (what `custody gitops check` does: `Repo::open`, `prepare`,
//! `base_policy`, `RegistryVerifier` with `DiskCache`, `check` on a current-thread runtime, the
//! JSON rendering) and through the release binary as a process. Results are printed and written
//! to `<target dir>/gitops-bench.txt`.
//!
//! Run: `cargo bench --bench gitops` (needs git, docker-registry and skopeo). `RUNS=N` sets the
//! warm runs (default 30), `COLD_RUNS=N` the cold ones (default 3).

// Benches print and read the clock.
#![allow(clippy::disallowed_macros, clippy::disallowed_methods)]

#[path = "../tests/common/registry.rs"]
#[allow(dead_code)]
mod registry;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use custody::gitops::check::{
    DEFAULT_MAX_HISTORY, Tree, Verifier, base_config, base_policy, check, prepare,
};
use custody::gitops::git::Repo;
use custody::gitops::report::CheckReport;
use custody::gitops::scan;
use custody::gitops::verifier::{DiskCache, RegistryVerifier};
use custody::reference::ImageRef;
use custody::registry::discovery::DiscoveryOptions;
use custody::registry::{RegistryClient, RegistryConfig};
use registry::{Registry, TempDir, fixtures};

/// Environments in promotion order: name, trust-policy environment (None: the name). `qa` maps
/// onto the policy's `dev` rule (no `promotedFrom`), so staging's `promotedFrom: dev` holds for a
/// promotion from qa; dev (index [`DEV`]) takes automatic updates.
const ENVS: [(&str, Option<&str>); 4] = [
    ("dev", None),
    ("qa", Some("dev")),
    ("staging", None),
    ("prod", Some("production")),
];
const FILES_PER_ENV: usize = 25;
const SERVICES_PER_FILE: usize = 5;
const SERVICES: usize = FILES_PER_ENV * SERVICES_PER_FILE;
/// Files `0..HELM_FILES` are Helm values, the rest Deployments.
const HELM_FILES: usize = 13;
const COMMITS: usize = 200;
const PROD: usize = 3;
const DEV: usize = 0;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Identical,
    Distinct,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Identical => "identical",
            Variant::Distinct => "distinct",
        }
    }
}

fn dummy(n: usize) -> String {
    format!("sha256:{:064x}", 0xd000_0000 + n)
}

fn reference(host: &str, variant: Variant, svc: usize, digest: &str) -> String {
    match variant {
        Variant::Identical => format!("{host}/demo/app@{digest}"),
        Variant::Distinct => format!("{host}/demo/app:svc-{svc:03}@{digest}"),
    }
}

/// The digest every service runs, per environment.
type State = Vec<Vec<String>>;

/// One environment file from the state.
fn render(
    host: &str,
    variant: Variant,
    state: &State,
    env: usize,
    file: usize,
) -> (String, String) {
    let name = ENVS[env].0;
    let svcs = file * SERVICES_PER_FILE..(file + 1) * SERVICES_PER_FILE;
    let mut s = String::new();
    if file < HELM_FILES {
        let _ = writeln!(
            s,
            "# app-{file:02} Helm values ({name})\nglobal:\n  environment: {name}\nservices:"
        );
        for svc in svcs {
            let r = reference(host, variant, svc, &state[env][svc]);
            let _ = write!(
                s,
                "  svc-{svc:03}:\n    replicas: 2\n    image:\n      ref: {r}\n      pullPolicy: IfNotPresent\n    resources:\n      requests: {{cpu: 100m, memory: 128Mi}}\n    env:\n      - {{name: LOG_LEVEL, value: info}}\n"
            );
        }
        (format!("env/{name}/app-{file:02}/values.yaml"), s)
    } else {
        let _ = write!(
            s,
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{file:02}\n  namespace: {name}\n  labels: {{app: app-{file:02}}}\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: app-{file:02}}}\n  template:\n    metadata:\n      labels: {{app: app-{file:02}}}\n    spec:\n      containers:\n"
        );
        for svc in svcs {
            let r = reference(host, variant, svc, &state[env][svc]);
            let _ = write!(
                s,
                "        - name: svc-{svc:03}\n          image: {r}\n          imagePullPolicy: IfNotPresent\n          ports:\n            - containerPort: 8080\n          resources:\n            requests: {{cpu: 100m, memory: 128Mi}}\n"
            );
        }
        (format!("env/{name}/app-{file:02}/deployment.yaml"), s)
    }
}

fn config() -> String {
    let mut c =
        String::from("apiVersion: custody.dev/v1alpha1\nkind: GitOpsConfig\nenvironments:\n");
    for (i, (name, policy_env)) in ENVS.iter().enumerate() {
        let _ = writeln!(c, "  - name: {name}\n    paths: [\"env/{name}/**\"]");
        if i == DEV {
            c.push_str("    autoUpdate: true\n");
        }
        if let Some(p) = policy_env {
            let _ = writeln!(c, "    policyEnvironment: {p}");
        }
        if i == PROD {
            c.push_str("    freeze: env/prod/freeze.yaml\n");
        }
    }
    c.push_str("policy: policy/trust.yaml\nreferences:\n  firstParty: [\"*/demo/**\"]\n");
    c
}

/// A `git fast-import` stream.
struct Stream {
    out: Vec<u8>,
    marks: usize,
    time: u64,
}

impl Stream {
    fn commit(
        &mut self,
        branch: &str,
        from: Option<usize>,
        msg: &str,
        files: &[(String, Vec<u8>)],
    ) -> usize {
        self.marks += 1;
        self.time += 3600;
        let mark = self.marks;
        let _ = write!(
            self.out,
            "commit refs/heads/{branch}\nmark :{mark}\ncommitter Bench <bench@example.invalid> {} +0000\ndata {}\n{msg}\n",
            self.time,
            msg.len()
        );
        if let Some(f) = from {
            let _ = writeln!(self.out, "from :{f}");
        }
        for (path, bytes) in files {
            let _ = write!(self.out, "M 100644 inline {path}\ndata {}\n", bytes.len());
            self.out.extend_from_slice(bytes);
            self.out.push(b'\n');
        }
        self.out.push(b'\n');
        mark
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Bench",
            "-c",
            "user.email=bench@example.invalid",
        ])
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Builds the delivery repository; returns it and the time taken.
fn generate(host: &str, variant: Variant, digest: &str) -> (TempDir, Duration) {
    let started = Instant::now();
    let dir = TempDir::new(&format!("custody-gitops-bench-{}", variant.name()));
    git(&dir.0, &["init", "-q", "-b", "main"]);
    let mut s = Stream {
        out: Vec::new(),
        marks: 0,
        time: 1_767_225_600,
    };
    let policy = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/policies/gitops.yaml"),
    )
    .unwrap()
    .replace(
        "../../fixtures/registry/trusted_root.json",
        "trusted_root.json",
    )
    .replace("../../fixtures/registry/keys/cosign.pub", "cosign.pub");
    let mut last = s.commit(
        "main",
        None,
        "config and trust policy",
        &[
            ("custody-gitops.yaml".into(), config().into_bytes()),
            ("policy/trust.yaml".into(), policy.into_bytes()),
            (
                "policy/trusted_root.json".into(),
                std::fs::read(fixtures().join("trusted_root.json")).unwrap(),
            ),
            (
                "policy/cosign.pub".into(),
                std::fs::read(fixtures().join("keys/cosign.pub")).unwrap(),
            ),
        ],
    );
    let mut state: State = vec![vec![dummy(0); SERVICES]; ENVS.len()];
    let all_files = |state: &State, envs: &[usize]| -> Vec<(String, Vec<u8>)> {
        envs.iter()
            .flat_map(|&e| (0..FILES_PER_ENV).map(move |f| (e, f)))
            .map(|(e, f)| {
                let (p, t) = render(host, variant, state, e, f);
                (p, t.into_bytes())
            })
            .collect()
    };
    let mut initial = all_files(&state, &[0, 1, 2, 3]);
    initial.push(("env/prod/freeze.yaml".into(), b"frozen: false\n".to_vec()));
    last = s.commit("main", Some(last), "initial environments", &initial);
    // 194 single-file bumps, spread over the environments and files.
    let mut commits = 2;
    let mut k = 0;
    while commits < COMMITS - 4 {
        k += 1;
        let env = k % ENVS.len();
        let file = (k * 7) % FILES_PER_ENV;
        state[env][file * SERVICES_PER_FILE..(file + 1) * SERVICES_PER_FILE].fill(dummy(k));
        let (p, t) = render(host, variant, &state, env, file);
        last = s.commit(
            "main",
            Some(last),
            &format!("{}: app-{file:02} to build {k}", ENVS[env].0),
            &[(p, t.into_bytes())],
        );
        commits += 1;
    }
    // dev, qa and staging run the real digest.
    for env in 0..3 {
        state[env] = vec![digest.to_owned(); SERVICES];
        last = s.commit(
            "main",
            Some(last),
            &format!("{}: release", ENVS[env].0),
            &all_files(&state, &[env]),
        );
        commits += 1;
    }
    // The image automation bumps one dev service to a new (dummy) build.
    state[DEV][0] = dummy(9999);
    let (p, t) = render(host, variant, &state, DEV, 0);
    let main = s.commit(
        "main",
        Some(last),
        "dev: svc-000 to build 9999",
        &[(p, t.into_bytes())],
    );
    commits += 1;
    assert_eq!(commits, COMMITS);
    // pr-big: every prod reference to staging's digest.
    let mut big = state.clone();
    big[PROD] = vec![digest.to_owned(); SERVICES];
    s.commit(
        "pr-big",
        Some(main),
        "promote staging to prod",
        &all_files(&big, &[PROD]),
    );
    // pr-small: one prod reference.
    let mut small = state.clone();
    small[PROD][0] = digest.to_owned();
    let (p, t) = render(host, variant, &small, PROD, 0);
    s.commit(
        "pr-small",
        Some(main),
        "promote svc-000 to prod",
        &[(p, t.into_bytes())],
    );
    // pr-dev: dev's svc-000 back to the digest dev ran before.
    let mut dev = state.clone();
    dev[DEV][0] = digest.to_owned();
    let (p, t) = render(host, variant, &dev, DEV, 0);
    s.commit(
        "pr-dev",
        Some(main),
        "dev: roll svc-000 back",
        &[(p, t.into_bytes())],
    );
    s.out.extend_from_slice(b"done\n");
    let mut child = Command::new("git")
        .arg("-C")
        .arg(&dir.0)
        .args(["fast-import", "--quiet", "--done"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&s.out).unwrap();
    assert!(child.wait().unwrap().success(), "git fast-import failed");
    assert_eq!(
        git(&dir.0, &["rev-list", "--count", "main"]),
        COMMITS.to_string()
    );
    (dir, started.elapsed())
}

struct Pr {
    branch: &'static str,
    what: &'static str,
    changes: usize,
    walks_history: bool,
}

const PRS: [Pr; 3] = [
    Pr {
        branch: "pr-big",
        what: "staging→prod, all 125 prod refs",
        changes: SERVICES,
        walks_history: false,
    },
    Pr {
        branch: "pr-small",
        what: "staging→prod, 1 ref",
        changes: 1,
        walks_history: false,
    },
    Pr {
        branch: "pr-dev",
        what: "dev rollback, 1 ref (walks history)",
        changes: 1,
        walks_history: true,
    },
];

/// Phases of one in-process check, as the CLI runs it.
#[derive(Default, Clone, Copy)]
struct Phases {
    open: Duration,
    prepare: Duration,
    policy: Duration,
    verifier: Duration,
    check: Duration,
    json: Duration,
    total: Duration,
}

fn lib_check(path: &Path, branch: &str, host: &str, cache: &Path) -> (Phases, CheckReport) {
    let now = jiff::Timestamp::now();
    let t0 = Instant::now();
    let repo = Repo::open(path).unwrap();
    let t1 = Instant::now();
    let prepared = prepare(&repo, "main", branch).unwrap();
    let t2 = Instant::now();
    let policy = base_policy(&repo, &prepared.base, &prepared.config).unwrap();
    let t3 = Instant::now();
    let verifier = RegistryVerifier {
        client: RegistryClient::new(RegistryConfig {
            insecure_registries: vec![host.to_owned()],
            ..RegistryConfig::default()
        })
        .unwrap(),
        policy,
        discovery: DiscoveryOptions::default(),
        deadline: Duration::from_secs(30),
        now,
        cache: Some(DiskCache {
            dir: cache.to_path_buf(),
            ttl: Duration::from_secs(600),
        }),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let t4 = Instant::now();
    let report = rt.block_on(check(&repo, prepared, &verifier, now, DEFAULT_MAX_HISTORY));
    let t5 = Instant::now();
    let json = report.to_json();
    std::hint::black_box(json);
    let t6 = Instant::now();
    (
        Phases {
            open: t1 - t0,
            prepare: t2 - t1,
            policy: t3 - t2,
            verifier: t4 - t3,
            check: t5 - t4,
            json: t6 - t5,
            total: t6 - t0,
        },
        report,
    )
}

fn cli_command(path: &Path, branch: &str, host: &str, cache: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_custody"));
    cmd.args([
        "gitops",
        "check",
        "--base",
        "main",
        "--head",
        branch,
        "--output",
        "json",
        "--cache-dir",
    ])
    .arg(cache)
    .args(["--insecure-registry", host])
    .arg(path)
    .env_remove("CUSTODY_CACHE_DIR")
    .env_remove("RUST_LOG");
    cmd
}

/// Runs the binary; returns the wall time and the JSON report.
fn cli_check(cmd: &mut Command) -> (Duration, serde_json::Value) {
    let t = Instant::now();
    let out = cmd.output().unwrap();
    let elapsed = t.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "custody gitops check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (elapsed, serde_json::from_slice(&out.stdout).unwrap())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize)
        .saturating_sub(1)
        .min(sorted.len() - 1)]
}

/// `p50 / p95 / max` of a sample, in ms.
fn summary(mut v: Vec<Duration>) -> String {
    v.sort();
    format!(
        "{:7.1} {:7.1} {:7.1}",
        ms(pct(&v, 0.5)),
        ms(pct(&v, 0.95)),
        ms(*v.last().unwrap())
    )
}

fn p50(mut v: Vec<Duration>) -> f64 {
    v.sort();
    ms(pct(&v, 0.5))
}

/// The distinct values of a sample (`140` or `139/140`).
fn reqs(v: &[u64]) -> String {
    let set: BTreeSet<_> = v.iter().collect();
    set.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("/")
}

fn check_report(report: &CheckReport, pr: &Pr) {
    assert!(report.passed, "{}: {}", pr.branch, report.to_json());
    assert_eq!(report.changes.len(), pr.changes, "{}", report.to_json());
    for c in &report.changes {
        let v = c.verification.as_ref().expect("verified");
        assert_eq!(v.decision, "allow", "{}", report.to_json());
    }
}

/// The distinct (reference, policy environment) pairs the check verifies.
fn wanted(report: &CheckReport) -> Vec<(ImageRef, String)> {
    report
        .changes
        .iter()
        .filter_map(|c| {
            Some((
                c.reference.clone(),
                c.verification.as_ref()?.environment.clone(),
            ))
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|(r, e)| (r.parse().unwrap(), e))
        .collect()
}

/// Counts the git processes of one CLI run with a logging `git` first on PATH.
fn git_processes(
    path: &Path,
    branch: &str,
    host: &str,
    cache: &Path,
) -> (usize, BTreeMap<String, usize>) {
    let real = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let shim = TempDir::new("custody-gitops-bench-shim");
    let log = shim.0.join("log");
    let script = shim.0.join("git");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            real.trim()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path_var = std::env::var("PATH").unwrap_or_default();
    let mut cmd = cli_command(path, branch, host, cache);
    cmd.env("PATH", format!("{}:{path_var}", shim.0.display()));
    let (_, report) = cli_check(&mut cmd);
    assert_eq!(report["registryRequests"], 0);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let mut by = BTreeMap::new();
    let root = path.display().to_string();
    for line in text.lines() {
        // `… -C <root> <subcommand> …`
        let sub = line
            .split_once(&format!("-C {root} "))
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or("?");
        *by.entry(sub.to_owned()).or_insert(0) += 1;
    }
    (text.lines().count(), by)
}

/// The warm breakdown of one variant and pull request.
struct Column {
    label: String,
    steps: BTreeMap<&'static str, f64>,
    git: usize,
    by: BTreeMap<String, usize>,
}

struct Out {
    text: String,
}

impl Out {
    fn line(&mut self, s: impl AsRef<str>) {
        println!("{}", s.as_ref());
        self.text.push_str(s.as_ref());
        self.text.push('\n');
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// `<target>/` from `<target>/<profile>/deps/<bench>`.
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent()?.parent()?.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    if !registry::tools_available() || Command::new("git").arg("--version").output().is_err() {
        println!("gitops: skipped (needs git, docker-registry and skopeo)");
        return;
    }
    let env_num = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let runs = env_num("RUNS", 30).max(2);
    let cold_runs = env_num("COLD_RUNS", 3).max(1);
    let mut out = Out {
        text: String::new(),
    };
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    out.line(format!(
        "custody gitops check benchmark — {cpus} CPUs, load average at start {} — git {}",
        loadavg(),
        git(Path::new("."), &["--version"]).trim_start_matches("git version ")
    ));

    let reg = Registry::start();
    reg.push(&["demo/app"]);
    let host = reg.host();
    let digest = {
        let s: serde_json::Value =
            serde_json::from_slice(&std::fs::read(fixtures().join("scenario.json")).unwrap())
                .unwrap();
        s["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["repository"] == "demo/app")
            .unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    out.line(format!(
        "registry: docker-registry on {host}, demo/app@{digest} (signature, SLSA provenance, SBOM)"
    ));
    out.line(format!(
        "scenario: 4 environments (dev autoUpdate → qa [policy dev] → staging → prod [policy production, freeze file]), {FILES_PER_ENV} files × {SERVICES_PER_FILE} services = {SERVICES} references each ({HELM_FILES} Helm values + {} Deployments), {COMMITS} commits on main",
        FILES_PER_ENV - HELM_FILES
    ));
    out.line(format!("warm: {runs} runs after 3 warm-up runs, same --cache-dir; cold: {cold_runs} runs, each with a new empty cache dir and a new client"));

    let mut columns: Vec<Column> = Vec::new();
    for variant in [Variant::Identical, Variant::Distinct] {
        let (dir, took) = generate(&host, variant, &digest);
        let path = dir.0.clone();
        let example = reference(&host, variant, 7, &digest);
        out.line(String::new());
        out.line(format!(
            "== variant {} (e.g. {example}); repository generated in {:.0} ms ({} objects packed by fast-import)",
            variant.name(),
            ms(took),
            git(&path, &["count-objects", "-v"]).lines().find_map(|l| l.strip_prefix("in-pack: ")).unwrap_or("?"),
        ));
        {
            let repo = Repo::open(&path).unwrap();
            let p = prepare(&repo, "main", "pr-big").unwrap();
            let files: BTreeSet<&str> = p.head_scan.sites.iter().map(|s| s.file.as_str()).collect();
            let paths: Vec<&str> = files.iter().copied().collect();
            let bytes: usize = p
                .head
                .files(&repo, &paths)
                .unwrap()
                .iter()
                .map(|f| match &f.content {
                    scan::Content::Text(t) => t.len(),
                    _ => 0,
                })
                .sum();
            out.line(format!(
                "   references at head: {} in {} files, {} KiB of YAML (lint findings {})",
                p.head_scan.sites.len(),
                files.len(),
                bytes / 1024,
                p.head_scan.findings.len()
            ));
            assert_eq!(p.head_scan.sites.len(), ENVS.len() * SERVICES);
        }
        out.line(format!(
            "   {:<40} {:>7} {:>5} | {:>8} {:>9} | {:>7} {:>7} {:>7} {:>4} | warm p50 by phase (ms)",
            "pull request, path", "changes", "verif", "cold ms", "cold reqs", "warm p50", "p95", "max", "reqs"
        ));
        for pr in &PRS {
            let scratch = TempDir::new("custody-gitops-bench-cache");
            // Library, cold.
            let mut cold = Vec::new();
            let mut cold_requests = Vec::new();
            let mut verifications = 0;
            for i in 0..cold_runs {
                let cache = scratch.0.join(format!("lib-{i}"));
                let (ph, report) = lib_check(&path, pr.branch, &host, &cache);
                check_report(&report, pr);
                for c in &report.changes {
                    assert!(!c.verification.as_ref().unwrap().cached);
                }
                verifications = wanted(&report).len();
                cold.push(ph.total);
                cold_requests.push(report.registry_requests);
            }
            // Library, warm (the first cold run's cache).
            let cache = scratch.0.join("lib-0");
            let mut phases = Vec::new();
            let mut to_verify = Vec::new();
            for i in 0..runs + 3 {
                let (ph, report) = lib_check(&path, pr.branch, &host, &cache);
                check_report(&report, pr);
                assert_eq!(
                    report.registry_requests, 0,
                    "a warm run made registry requests"
                );
                assert!(
                    report
                        .changes
                        .iter()
                        .all(|c| c.verification.as_ref().unwrap().cached)
                );
                if i >= 3 {
                    phases.push(ph);
                }
                to_verify = wanted(&report);
            }
            let col = |f: fn(&Phases) -> Duration| p50(phases.iter().map(f).collect());
            cold.sort();
            out.line(format!(
                "   {:<40} {:>7} {:>5} | {:>8.1} {:>9} | {} {:>4} | open {:.1}, prepare {:.1}, policy {:.1}, client {:.1}, check {:.1}, json {:.1}",
                format!("{} (lib)", pr.what),
                pr.changes,
                verifications,
                ms(cold[cold.len() / 2]),
                reqs(&cold_requests),
                summary(phases.iter().map(|p| p.total).collect()),
                0,
                col(|p| p.open),
                col(|p| p.prepare),
                col(|p| p.policy),
                col(|p| p.verifier),
                col(|p| p.check),
                col(|p| p.json),
            ));
            // CLI process, cold and warm.
            let mut cli_cold = Vec::new();
            let mut cli_cold_requests = Vec::new();
            for i in 0..cold_runs {
                let cache = scratch.0.join(format!("cli-{i}"));
                let (t, report) = cli_check(&mut cli_command(&path, pr.branch, &host, &cache));
                assert_eq!(report["changes"].as_array().unwrap().len(), pr.changes);
                cli_cold.push(t);
                cli_cold_requests.push(report["registryRequests"].as_u64().unwrap());
            }
            let cache = scratch.0.join("cli-0");
            let mut cli_warm = Vec::new();
            for i in 0..runs + 3 {
                let (t, report) = cli_check(&mut cli_command(&path, pr.branch, &host, &cache));
                assert_eq!(
                    report["registryRequests"], 0,
                    "a warm run made registry requests"
                );
                if i >= 3 {
                    cli_warm.push(t);
                }
            }
            cli_cold.sort();
            out.line(format!(
                "   {:<40} {:>7} {:>5} | {:>8.1} {:>9} | {} {:>4} | process: start, check, JSON to stdout, exit",
                format!("{} (CLI)", pr.what),
                pr.changes,
                verifications,
                ms(cli_cold[cli_cold.len() / 2]),
                reqs(&cli_cold_requests),
                summary(cli_warm),
                0
            ));
            // Where the warm time goes, step by step (same calls as prepare and check).
            let (git_count, by) = git_processes(&path, pr.branch, &host, &cache);
            let mut steps: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
            let mut time = |name: &'static str, d: Duration| steps.entry(name).or_default().push(d);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            for _ in 0..runs {
                let t = Instant::now();
                let repo = Repo::open(&path).unwrap();
                time("a git: open (1 rev-parse)", t.elapsed());
                let t = Instant::now();
                let base_id = repo.resolve("main").unwrap();
                let head_id = repo.resolve(pr.branch).unwrap();
                time("b git: resolve base+head (2)", t.elapsed());
                let t = Instant::now();
                let base = Tree::read(&repo, &base_id).unwrap();
                let head = Tree::read(&repo, &head_id).unwrap();
                time(
                    "c git: list both trees (2×(rev-parse+ls-tree))",
                    t.elapsed(),
                );
                let t = Instant::now();
                let config = base_config(&repo, &base, &head).unwrap();
                time("d git: config (cat-file) + parse", t.elapsed());
                let t = Instant::now();
                let changed = repo.changed_files(&base_id, &head_id).unwrap();
                time("e git: changed files (2 rev-parse+diff)", t.elapsed());
                let t = Instant::now();
                let head_paths: Vec<&str> =
                    head.paths().filter(|p| config.scope(p).is_some()).collect();
                let head_files = head.files(&repo, &head_paths).unwrap();
                time("f git: read 101 env files at head (cat-file)", t.elapsed());
                let t = Instant::now();
                let head_scan = scan::scan(&config, &head_files);
                time("g scan: 101 files at head (500 refs)", t.elapsed());
                let t = Instant::now();
                let changed_paths: Vec<&str> = changed
                    .iter()
                    .map(|c| c.path.as_str())
                    .filter(|p| config.scope(p).is_some())
                    .collect();
                let base_files = base.files(&repo, &changed_paths).unwrap();
                let base_scan = scan::scan(&config, &base_files);
                time("h git+scan: changed files at base", t.elapsed());
                std::hint::black_box((head_scan, base_scan));
                let t = Instant::now();
                let policy = base_policy(&repo, &base, &config).unwrap();
                time("j policy: base_policy (3 cat-file + load)", t.elapsed());
                let t = Instant::now();
                for f in [
                    "policy/trust.yaml",
                    "policy/trusted_root.json",
                    "policy/cosign.pub",
                ] {
                    std::hint::black_box(base.files(&repo, &[f]).unwrap());
                }
                time("i policy: its 3 files alone (3 cat-file)", t.elapsed());
                let t = Instant::now();
                let client = RegistryClient::new(RegistryConfig {
                    insecure_registries: vec![host.clone()],
                    ..RegistryConfig::default()
                })
                .unwrap();
                std::hint::black_box(client);
                time("k registry client construction", t.elapsed());
                let verifier = RegistryVerifier {
                    client: RegistryClient::new(RegistryConfig {
                        insecure_registries: vec![host.clone()],
                        ..RegistryConfig::default()
                    })
                    .unwrap(),
                    policy,
                    discovery: DiscoveryOptions::default(),
                    deadline: Duration::from_secs(30),
                    now: jiff::Timestamp::now(),
                    cache: Some(DiskCache {
                        dir: cache.clone(),
                        ttl: Duration::from_secs(600),
                    }),
                };
                let t = Instant::now();
                let prod_freeze = ["env/prod/freeze.yaml"];
                std::hint::black_box(base.files(&repo, &prod_freeze).unwrap());
                std::hint::black_box(head.files(&repo, &prod_freeze).unwrap());
                time("l git: freeze file at base+head (2 cat-file)", t.elapsed());
                if pr.walks_history {
                    let pathspecs: Vec<String> = config.environments[DEV]
                        .paths
                        .iter()
                        .map(|g| g.source().to_owned())
                        .collect();
                    let t = Instant::now();
                    let h = repo
                        .digest_history(&base_id, &pathspecs, DEFAULT_MAX_HISTORY)
                        .unwrap();
                    time(
                        "m git: history of dev (rev-parse, is-shallow, log -p)",
                        t.elapsed(),
                    );
                    assert!(h.digests.contains_key(&digest));
                }
                let t = Instant::now();
                let verdicts = rt.block_on(futures_util::future::join_all(
                    to_verify
                        .iter()
                        .map(|(image, env)| verifier.verify(image, env)),
                ));
                time("n verify: cache hits (key hash, read, parse)", t.elapsed());
                assert!(verdicts.iter().all(|v| v.cached && v.allowed()));
                assert_eq!(verifier.requests(), 0);
            }
            columns.push(Column {
                label: format!("{}/{}", &variant.name()[..5], &pr.branch[3..]),
                steps: steps.into_iter().map(|(k, v)| (k, p50(v))).collect(),
                git: git_count,
                by,
            });
        }
        drop(dir);
    }
    // The cost of one git process here (spawn, repository discovery, exit).
    let probe = TempDir::new("custody-gitops-bench-probe");
    git(&probe.0, &["init", "-q"]);
    let mut spawn = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let _ = Repo::open(&probe.0).unwrap();
        spawn.push(t.elapsed());
    }
    let mut plain = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let _ = Command::new("git")
            .arg("-C")
            .arg(&probe.0)
            .args(["rev-parse", "--show-toplevel"])
            .output()
            .unwrap();
        plain.push(t.elapsed());
    }
    let mut bin = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let _ = Command::new(env!("CARGO_BIN_EXE_custody"))
            .arg("--version")
            .output()
            .unwrap();
        bin.push(t.elapsed());
    }
    out.line(String::new());
    out.line(
        "where the warm time goes: each step of prepare/base_policy/check timed on its own, same calls, p50 ms over the warm runs",
    );
    let mut header = format!("   {:<52}", "step");
    for c in &columns {
        let _ = write!(header, " {:>12}", c.label);
    }
    out.line(header);
    let names: BTreeSet<&str> = columns
        .iter()
        .flat_map(|c| c.steps.keys().copied())
        .collect();
    for name in names {
        let mut row = format!("   {:<52}", &name[2..]);
        for c in &columns {
            match c.steps.get(name) {
                Some(v) => {
                    let _ = write!(row, " {v:>12.1}");
                }
                None => {
                    let _ = write!(row, " {:>12}", "-");
                }
            }
        }
        out.line(row);
    }
    let mut row = format!("   {:<52}", "git processes in one CLI run (PATH shim)");
    for c in &columns {
        let _ = write!(row, " {:>12}", c.git);
    }
    out.line(row);
    for c in &columns {
        out.line(format!(
            "   {}: {}",
            c.label,
            c.by.iter()
                .map(|(k, v)| format!("{k} ×{v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out.line(format!(
        "one git process: {:.2} ms through Repo::run (p50; spawn + stderr/timer threads), {:.2} ms plain Command::output; custody --version process: {:.2} ms",
        p50(spawn),
        p50(plain),
        p50(bin)
    ));
    out.line(format!("load average at end {}", loadavg()));
    let file = target_dir().join("gitops-bench.txt");
    match std::fs::write(&file, &out.text) {
        Ok(()) => println!("written to {}", file.display()),
        Err(e) => println!("cannot write {}: {e}", file.display()),
    }
}
