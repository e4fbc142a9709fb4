//! A real OCI registry for tests: Debian's `docker-registry` (Distribution 2.8) on a free
//! loopback port with a temporary storage directory, filled with `skopeo` from the committed
//! OCI layout (`fixtures/registry/`), stopped when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Registry {
    child: Child,
    pub port: u16,
    _dir: TempDir,
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/registry")
}

/// Whether the real registry tools are installed; outside CI, tests skip when they are not.
pub fn tools_available() -> bool {
    let have = |bin: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {bin}"))
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let ok = have("docker-registry") && have("skopeo");
    if !ok && std::env::var_os("CI").is_some() {
        panic!("docker-registry and skopeo are required (scripts/test installs them)");
    }
    ok
}

impl Registry {
    /// Starts an empty registry and waits until it answers `/v2/`.
    pub fn start() -> Self {
        let dir = TempDir::new("custody-registry");
        let port = free_port();
        let config = dir.0.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.0.join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let registry = Self {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        registry
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Pushes the entries of the push plan whose repository is in `repos` (all if empty).
    pub fn push(&self, repos: &[&str]) {
        let plan: serde_json::Value =
            serde_json::from_slice(&std::fs::read(fixtures().join("push-plan.json")).unwrap())
                .unwrap();
        for entry in plan.as_array().unwrap() {
            let repo = entry["repository"].as_str().unwrap();
            if !repos.is_empty() && !repos.contains(&repo) {
                continue;
            }
            self.push_entry(entry, repo);
        }
    }

    /// Pushes one plan entry into `repo` (which may differ from the planned repository).
    pub fn push_entry(&self, entry: &serde_json::Value, repo: &str) {
        let layout = fixtures().join("layout");
        let digest = entry["digest"].as_str().unwrap();
        let dest = match entry["tag"].as_str() {
            Some(tag) => format!("docker://{}/{repo}:{tag}", self.host()),
            None => format!("docker://{}/{repo}@{digest}", self.host()),
        };
        if entry["method"].as_str() == Some("http-put-manifest") {
            // The referrers tag-schema index: no skopeo transport writes an index under a tag
            // without its children, so it is PUT as is.
            let bytes = std::fs::read(
                layout
                    .join("blobs/sha256")
                    .join(digest.trim_start_matches("sha256:")),
            )
            .unwrap();
            let media_type = entry["media_type"].as_str().unwrap();
            let url = format!(
                "http://{}/v2/{repo}/manifests/{}",
                self.host(),
                entry["tag"].as_str().unwrap()
            );
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let status = rt
                .block_on(
                    reqwest::Client::new()
                        .put(&url)
                        .header("Content-Type", media_type)
                        .body(bytes)
                        .send(),
                )
                .unwrap()
                .status();
            assert!(status.is_success(), "PUT {url} failed: {status}");
            return;
        }
        let mut cmd = Command::new("skopeo");
        cmd.args([
            "copy",
            "--quiet",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ]);
        if entry["all"].as_bool() == Some(true) {
            cmd.arg("--all");
        }
        let out = cmd
            .arg(format!(
                "oci:{}:{}",
                layout.display(),
                entry["ref_name"].as_str().unwrap()
            ))
            .arg(&dest)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo copy to {dest}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Tags an image already in `repo` (by digest) as `tag` too: a re-tag, same digest.
    pub fn copy_tag(&self, repo: &str, digest: &str, tag: &str) {
        let src = format!("docker://{}/{repo}@{digest}", self.host());
        let dest = format!("docker://{}/{repo}:{tag}", self.host());
        let out = Command::new("skopeo")
            .args([
                "copy",
                "--quiet",
                "--preserve-digests",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
            ])
            .arg(&src)
            .arg(&dest)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo copy {src} {dest}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
