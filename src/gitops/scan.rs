//! Finding image references in a delivery repository, and the lint findings of its rules.
//!
//! Pure: the caller reads the files (from a work tree or a Git revision) and hands over their
//! contents; nothing here touches the file system.
//!
//! Where references are recognised (every YAML document of every file in an environment's or the
//! shared paths):
//!
//! * `image: <ref>` anywhere (Kubernetes containers, Helm values, Flux `HelmRelease` values);
//! * `image: {ref: <ref>}` — the one-field form the delivery rules ask for;
//! * `image: {repository, tag, digest}` (and `registry`) — the split form, read but flagged;
//! * kustomize `images:` entries (`name`, `newName`, `newTag`, `digest`);
//! * any other string that parses as a digest-pinned image reference (flagged as unexpected,
//!   but still classified and verified: a reference the gate cannot see is a bypass).

use std::ops::Range;

use serde::Serialize;

use super::config::{Config, Scope};
use super::yaml::{self, Node, Pos, Scalar};
use crate::reference::ImageRef;

/// Largest file scanned (a values file of 4 MiB is already unusual).
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// A file handed to the scanner.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path relative to the repository root, `/`-separated.
    pub path: String,
    /// What it holds.
    pub content: Content,
}

/// A file's content as far as the scanner is concerned.
#[derive(Debug, Clone)]
pub enum Content {
    /// UTF-8 text.
    Text(String),
    /// Not UTF-8, or has NUL bytes.
    Binary,
    /// A symbolic link (never followed) and its target.
    Symlink(String),
    /// Larger than [`MAX_FILE_BYTES`].
    TooLarge(u64),
}

impl Content {
    /// Classifies raw bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        if bytes.contains(&0) {
            return Content::Binary;
        }
        match String::from_utf8(bytes) {
            Ok(t) => Content::Text(t),
            Err(_) => Content::Binary,
        }
    }
}

/// How a reference is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Form {
    /// One scalar holding the whole reference.
    Single,
    /// `repository` / `tag` / `digest` fields.
    Split,
    /// A kustomize `images:` entry.
    Kustomize,
}

/// One image reference in one file.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageSite {
    /// The file.
    pub file: String,
    /// Where the value is.
    #[serde(flatten)]
    pub pos: Pos,
    /// Its place in the file, stable across edits of other values (`[0].app.image.ref`).
    pub key: String,
    /// The reference as the deployment tool will assemble it.
    pub reference: String,
    /// How it is written.
    pub form: Form,
    /// The bytes of the `sha256:…` digest in the file, for edits.
    #[serde(skip)]
    pub digest_bytes: Option<Range<usize>>,
    /// The bytes of the tag in the file (for edits): inside the reference scalar for the
    /// single-field form; the whole `tag:`/`newTag:` scalar, quotes included, for the others.
    #[serde(skip)]
    pub tag_bytes: Option<Range<usize>>,
}

impl ImageSite {
    /// The parsed reference, if it parses.
    pub fn image(&self) -> Option<ImageRef> {
        self.reference.parse().ok()
    }
}

/// Severity of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Breaks a delivery rule: the check fails.
    Error,
    /// Probably wrong; reported, does not fail.
    Warning,
}

/// A broken delivery rule, where, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// The file.
    pub file: String,
    /// 1-based line (0: the whole file).
    pub line: usize,
    /// 1-based column (0: the whole line or file).
    pub column: usize,
    /// Stable rule id (docs/gitops.md lists them).
    pub rule: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, with what was found.
    pub message: String,
    /// What to do.
    pub fix: String,
}

impl Finding {
    fn at(file: &str, pos: Pos, rule: &'static str, message: String, fix: &str) -> Self {
        Self {
            file: file.to_owned(),
            line: pos.line,
            column: pos.column,
            rule,
            severity: Severity::Error,
            message,
            fix: fix.to_owned(),
        }
    }

    fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }
}

/// What the scanner found in a set of files.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Scan {
    /// Every reference, in file order.
    pub sites: Vec<ImageSite>,
    /// Every finding, in file order.
    pub findings: Vec<Finding>,
    /// Files read.
    pub files_scanned: usize,
}

/// Whether the scanner reads `path` at all (YAML files).
pub fn is_yaml(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml") || file_name(path) == "Kustomization"
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// kustomize's three file names.
fn is_kustomization_file(path: &str) -> bool {
    matches!(
        file_name(path),
        "kustomization.yaml" | "kustomization.yml" | "Kustomization"
    )
}

/// Scans the files that belong to an environment or to the shared paths.
pub fn scan(config: &Config, files: &[SourceFile]) -> Scan {
    let mut out = Scan::default();
    for f in files {
        let Some(scope) = config.scope(&f.path) else {
            continue;
        };
        scan_file(config, scope, f, &mut out);
    }
    out
}

/// Scans one file known to be in `scope`.
pub fn scan_file(config: &Config, scope: Scope, f: &SourceFile, out: &mut Scan) {
    let whole = Pos::default();
    match &f.content {
        Content::Symlink(target) => {
            let resolved = if target.starts_with('/') {
                None
            } else {
                normalise(&parent_of(&f.path), target)
            };
            // A link to a file of its own environment is harmless (the file is checked where it
            // is); a link out of the repository, or into another environment's or the shared
            // files, makes this environment run what another one decides.
            let (problem, severity) = match &resolved {
                None => (", outside the repository", Severity::Error),
                Some(t) if config.scope(t) == Some(scope) => ("", Severity::Warning),
                Some(_) => (
                    ", into another environment's files or files no environment owns",
                    Severity::Error,
                ),
            };
            let mut finding = Finding::at(
                &f.path,
                whole,
                "symlink",
                format!(
                    "symbolic link to {target:?}{problem}: custody never follows links, so what it points to is not checked here"
                ),
                "replace the link with the file itself (each environment's values in its own directory)",
            );
            finding.severity = severity;
            out.findings.push(finding);
        }
        Content::Binary if is_yaml(&f.path) => out.findings.push(Finding::at(
            &f.path,
            whole,
            "unreadable-file",
            "not UTF-8 text (binary content in a YAML file)".into(),
            "store values as UTF-8 YAML",
        )),
        Content::TooLarge(n) if is_yaml(&f.path) => out.findings.push(Finding::at(
            &f.path,
            whole,
            "unreadable-file",
            format!("{n} bytes, more than the {MAX_FILE_BYTES}-byte limit"),
            "split the file",
        )),
        Content::Text(text) if is_yaml(&f.path) => {
            out.files_scanned += 1;
            if is_freeze_file(config, &f.path) {
                return;
            }
            match yaml::parse(text) {
                Err(e) => out.findings.push(Finding::at(
                    &f.path,
                    e.pos,
                    "yaml-syntax",
                    format!("cannot parse YAML: {}", e.message),
                    "fix the YAML (every environment file must parse, or the gate cannot see its images)",
                )),
                Ok(docs) => {
                    let mut w = Walker {
                        config,
                        scope,
                        file: &f.path,
                        text,
                        out,
                    };
                    for (i, doc) in docs.iter().enumerate() {
                        w.document(i, doc);
                    }
                    w.setter_markers();
                }
            }
        }
        _ => {}
    }
}

/// The bytes of `sha256:<64 hex>` in a scalar's source text starting at `offset`: after the
/// `@` when `after_at` (a registry host may itself contain `sha256:`).
fn digest_range(source: &str, offset: usize, after_at: bool) -> Option<Range<usize>> {
    let from = if after_at { source.rfind('@')? + 1 } else { 0 };
    let rest = source.get(from..)?;
    let (i, hex_len) = match (rest.find("sha256:"), rest.find("sha512:")) {
        (Some(i), _) => (from + i, 64),
        (None, Some(i)) => (from + i, 128),
        (None, None) => return None,
    };
    let start = i + "sha256:".len();
    let hex = source.get(start..start + hex_len)?;
    hex.bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then_some(offset + i..offset + start + hex_len)
}

fn is_freeze_file(config: &Config, path: &str) -> bool {
    config
        .environments
        .iter()
        .any(|e| e.freeze.as_deref() == Some(path))
}

fn parent_of(path: &str) -> String {
    path.rsplit_once('/')
        .map(|(d, _)| d.to_owned())
        .unwrap_or_default()
}

/// `dir/target` with `.` and `..` resolved; `None` when it climbs above the root.
fn normalise(dir: &str, target: &str) -> Option<String> {
    let mut parts: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
    for seg in target.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

struct Walker<'a> {
    config: &'a Config,
    scope: Scope,
    file: &'a str,
    text: &'a str,
    out: &'a mut Scan,
}

const FLUX_IMAGE_API: &str = "image.toolkit.fluxcd.io/";

impl Walker<'_> {
    fn auto_update_allowed(&self) -> bool {
        match self.scope {
            Scope::Environment(i) => self.config.environments[i].auto_update,
            Scope::Shared => self.config.environments.iter().all(|e| e.auto_update),
        }
    }

    fn scope_name(&self) -> String {
        match self.scope {
            Scope::Environment(i) => format!("environment {:?}", self.config.environments[i].name),
            Scope::Shared => "the shared files (every environment)".into(),
        }
    }

    fn auto_update_envs(&self) -> String {
        let names: Vec<&str> = self
            .config
            .environments
            .iter()
            .filter(|e| e.auto_update)
            .map(|e| e.name.as_str())
            .collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    }

    fn document(&mut self, index: usize, doc: &Node) {
        let kind = doc.str("kind").unwrap_or_default();
        let api = doc.str("apiVersion").unwrap_or_default();
        if api.starts_with(FLUX_IMAGE_API)
            && matches!(kind, "ImagePolicy" | "ImageUpdateAutomation")
            && !self.auto_update_allowed()
        {
            let pos = doc.get("kind").map_or(doc.pos(), Node::pos);
            let mut detail = String::new();
            if let Some(pattern) = doc
                .get("spec")
                .and_then(|s| s.get("filterTags"))
                .and_then(|f| f.str("pattern"))
            {
                detail = format!(" (tags matching {pattern:?})");
            }
            self.out.findings.push(Finding::at(
                self.file,
                pos,
                "auto-update-environment",
                format!(
                    "Flux {kind}{detail} in {}: automatic image updates are allowed only in: {}",
                    self.scope_name(),
                    self.auto_update_envs()
                ),
                "remove it; this environment changes only through promotion pull requests (custody gitops promote)",
            ));
        }
        let kustomization = kind == "Kustomization" && api.starts_with("kustomize.config.k8s.io/")
            || is_kustomization_file(self.file);
        let path = format!("[{index}]");
        self.node(doc, &path, None, kustomization);
    }

    fn node(&mut self, node: &Node, path: &str, parent_key: Option<&str>, kustomization: bool) {
        match node {
            Node::Map(entries, _) => {
                for (k, v) in entries {
                    let child = format!("{path}.{}", k.value);
                    match (k.value.as_str(), v) {
                        ("image", Node::Scalar(s)) if !s.is_null() => {
                            self.single(s, &child, true);
                        }
                        ("image", Node::Map(..)) => self.image_map(v, &child),
                        ("image", Node::Alias(p)) => self.out.findings.push(Finding::at(
                            self.file,
                            *p,
                            "unexpected-reference",
                            "image given through a YAML alias: custody does not follow aliases, so it cannot check it".into(),
                            "write the reference out in each environment's file",
                        )),
                        ("images", Node::Seq(items, _)) if kustomization => {
                            for (i, item) in items.iter().enumerate() {
                                self.kustomize_image(item, &format!("{child}[{i}]"));
                            }
                        }
                        ("imagePullPolicy", Node::Scalar(s)) => self.pull_policy(s),
                        ("pullPolicy", Node::Scalar(s)) if parent_key == Some("image") => {
                            self.pull_policy(s);
                        }
                        _ => self.node(v, &child, Some(&k.value), kustomization),
                    }
                }
            }
            Node::Seq(items, _) => {
                for (i, item) in items.iter().enumerate() {
                    // Containers are keyed by name so reordering them is not a change.
                    let id = item
                        .str("name")
                        .map_or_else(|| i.to_string(), |n| format!("name={n}"));
                    self.node(item, &format!("{path}[{id}]"), parent_key, kustomization);
                }
            }
            Node::Scalar(s) => {
                if (s.value.contains("@sha256:") || s.value.contains("@sha512:"))
                    && s.value.len() < 512
                    && s.value.parse::<ImageRef>().is_ok()
                {
                    self.single(s, path, false);
                }
            }
            Node::Alias(_) => {}
        }
    }

    fn pull_policy(&mut self, s: &Scalar) {
        if s.value != self.config.pull_policy {
            self.out.findings.push(Finding::at(
                self.file,
                s.pos,
                "pull-policy",
                format!(
                    "imagePullPolicy is {:?}, the delivery rules require {:?}",
                    s.value, self.config.pull_policy
                ),
                &format!(
                    "set it to {}: with digest-pinned references, Always only adds registry load",
                    self.config.pull_policy
                ),
            ));
        }
    }

    /// One scalar holding a whole reference.
    fn single(&mut self, s: &Scalar, key: &str, expected: bool) {
        if s.value.contains("{{") || s.value.contains("${") {
            return; // a template, resolved elsewhere
        }
        let source = &self.text[s.bytes.clone()];
        let digest_bytes = digest_range(source, s.bytes.start, true);
        let tag_bytes = match s.value.parse::<ImageRef>() {
            Ok(r) => r.tag().and_then(|t| {
                let needle = format!(":{t}");
                let name_end = source.find('@').unwrap_or(source.len());
                source[..name_end]
                    .rfind(&needle)
                    .map(|i| s.bytes.start + i + 1..s.bytes.start + i + needle.len())
            }),
            Err(e) => {
                self.out.findings.push(Finding::at(
                    self.file,
                    s.pos,
                    "malformed-reference",
                    format!("{:?} is not an image reference: {e}", s.value),
                    "write repo@sha256:<64 hex> (optionally repo:<tag>@sha256:…)",
                ));
                return;
            }
        };
        if !expected {
            self.out.findings.push(
                Finding::at(
                    self.file,
                    s.pos,
                    "unexpected-reference",
                    format!(
                        "image reference {:?} under {key}, not an image field: custody checks it, but tools may not",
                        s.value
                    ),
                    "put image references in an image field (image.ref, containers[].image)",
                )
                .warning(),
            );
        }
        self.site(
            s.pos,
            key,
            s.value.clone(),
            Form::Single,
            digest_bytes,
            tag_bytes,
        );
    }

    fn site(
        &mut self,
        pos: Pos,
        key: &str,
        reference: String,
        form: Form,
        digest_bytes: Option<Range<usize>>,
        tag_bytes: Option<Range<usize>>,
    ) {
        if let Err(e) = reference.parse::<ImageRef>() {
            self.out.findings.push(Finding::at(
                self.file,
                pos,
                "malformed-reference",
                format!("{reference:?} (assembled from its fields) is not an image reference: {e}"),
                "write repo@sha256:<64 hex> (optionally repo:<tag>@sha256:…)",
            ));
        }
        if let Ok(image) = reference.parse::<ImageRef>() {
            for v in self.config.references.check(&image) {
                let fix = match v.code {
                    "reference-digest" => {
                        "pin the digest: custody gitops promote writes it, or `crane digest`/`skopeo inspect` gives it"
                    }
                    "reference-floating-tag" => {
                        "drop the tag (repo@sha256:…) or use a release tag (repo:v1.2.3@sha256:…)"
                    }
                    _ => "use the digest alone, or a semver tag with it",
                };
                self.out.findings.push(Finding::at(
                    self.file,
                    pos,
                    v.code,
                    format!("{}: expected {}, found {}", reference, v.expected, v.found),
                    fix,
                ));
            }
        }
        self.out.sites.push(ImageSite {
            file: self.file.to_owned(),
            pos,
            key: key.to_owned(),
            reference,
            form,
            digest_bytes,
            tag_bytes,
        });
    }

    /// `image:` as a mapping: `{ref}` (one field) or `{registry, repository, tag, digest}`.
    fn image_map(&mut self, node: &Node, key: &str) {
        for field in ["ref", "registry", "repository", "tag", "digest"] {
            if let Some(Node::Alias(p)) = node.get(field) {
                self.out.findings.push(Finding::at(
                    self.file,
                    *p,
                    "unexpected-reference",
                    format!("image.{field} given through a YAML alias: custody does not follow aliases, so it cannot check it"),
                    "write the reference out in each environment's file",
                ));
            }
        }
        if let Some(Node::Scalar(s)) = node.get("ref") {
            if let Some(Node::Scalar(pp)) = node.get("pullPolicy") {
                self.pull_policy(pp);
            }
            let split: Vec<&str> = ["repository", "tag", "digest"]
                .into_iter()
                .filter(|k| node.get(k).is_some())
                .collect();
            if !split.is_empty() {
                self.out.findings.push(Finding::at(
                    self.file,
                    s.pos,
                    "split-reference",
                    format!(
                        "image.ref next to {}: two sources of truth for one image",
                        split.join(", ")
                    ),
                    "keep only image.ref",
                ));
            }
            if !s.is_null() {
                self.single(s, &format!("{key}.ref"), true);
            }
            return;
        }
        let repository = node.get("repository").and_then(Node::scalar);
        let Some(repo) = repository else {
            // Some other mapping named image (e.g. chart settings): look inside for references.
            self.node(node, key, Some("image"), false);
            return;
        };
        if let Some(Node::Scalar(pp)) = node.get("pullPolicy") {
            self.pull_policy(pp);
        }
        let registry = node.str("registry");
        let tag = node.get("tag").and_then(Node::scalar);
        let digest = node.get("digest").and_then(Node::scalar);
        let mut reference = match registry {
            Some(r) => format!("{r}/{}", repo.value),
            None => repo.value.clone(),
        };
        if let Some(t) = tag {
            reference.push(':');
            reference.push_str(&t.value);
        }
        if let Some(d) = digest {
            reference.push('@');
            reference.push_str(&d.value);
        }
        let found: Vec<String> = [("repository", Some(repo)), ("tag", tag), ("digest", digest)]
            .iter()
            .filter_map(|(k, v)| v.map(|s| format!("{k}={:?}", s.value)))
            .collect();
        self.out.findings.push(Finding::at(
            self.file,
            repo.pos,
            "split-reference",
            format!(
                "image split over separate fields ({}): they can disagree, and the tag decides what runs when the digest is empty",
                found.join(", ")
            ),
            &format!("use one field: image.ref: {reference}"),
        ));
        let digest_bytes = digest.and_then(|d| self.digest_in(d));
        self.site(
            repo.pos,
            key,
            reference,
            Form::Split,
            digest_bytes,
            tag.map(|t| t.bytes.clone()),
        );
    }

    fn digest_in(&self, s: &Scalar) -> Option<Range<usize>> {
        digest_range(&self.text[s.bytes.clone()], s.bytes.start, false)
    }

    /// A kustomize `images:` entry.
    fn kustomize_image(&mut self, item: &Node, key: &str) {
        let Some(name) = item.get("name").and_then(Node::scalar) else {
            return;
        };
        let image = item
            .str("newName")
            .unwrap_or(name.value.as_str())
            .to_owned();
        let tag = item.get("newTag").and_then(Node::scalar);
        let digest = item.get("digest").and_then(Node::scalar);
        let mut reference = image;
        if let Some(t) = tag {
            reference.push(':');
            reference.push_str(&t.value);
        }
        if let Some(d) = digest {
            reference.push('@');
            reference.push_str(&d.value);
        }
        let pos = digest.map_or(name.pos, |d| d.pos);
        let digest_bytes = digest.and_then(|d| self.digest_in(d));
        self.site(
            pos,
            key,
            reference,
            Form::Kustomize,
            digest_bytes,
            tag.map(|t| t.bytes.clone()),
        );
    }

    /// Flux image-automation setter comments (`# {"$imagepolicy": "ns:name"}`) outside the
    /// environments that accept automatic updates.
    fn setter_markers(&mut self) {
        if self.auto_update_allowed() {
            return;
        }
        for (i, line) in self.text.lines().enumerate() {
            if let Some(col) = line.find("\"$imagepolicy\"")
                && line[..col].contains('#')
            {
                self.out.findings.push(Finding::at(
                    self.file,
                    Pos {
                        line: i + 1,
                        column: line[..col].chars().count() + 1,
                        offset: 0,
                    },
                    "auto-update-environment",
                    format!(
                        "Flux image-automation marker in {}: automatic image updates are allowed only in: {}",
                        self.scope_name(),
                        self.auto_update_envs()
                    ),
                    "remove the marker; this environment changes only through promotion pull requests",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::config;

    const D: &str = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";
    const D2: &str = "sha256:b1dfd82382e7f389f68de443f0068d4f8154fedd465d5dcc201b41e67fb12c0a";

    const CONFIG: &str = r#"apiVersion: custody.dev/v1alpha1
kind: GitOpsConfig
environments:
  - name: dev
    paths: ["env/dev/**"]
    autoUpdate: true
  - name: staging
    paths: ["env/staging/**"]
  - name: prod
    paths: ["env/prod/**"]
    freeze: env/prod/freeze.yaml
shared: ["env/_shared/**"]
references:
  firstParty: ["ghcr.io/acme/**"]
  thirdParty:
    - images: ["docker.io/library/**"]
      allowSemverTag: true
"#;

    fn cfg() -> Config {
        config::load(CONFIG).expect("the test config loads")
    }

    fn text(path: &str, text: &str) -> SourceFile {
        SourceFile {
            path: path.to_owned(),
            content: Content::Text(text.to_owned()),
        }
    }

    fn scan_one(path: &str, yaml: &str) -> Scan {
        scan(&cfg(), &[text(path, yaml)])
    }

    /// `(rule, line, column)` of every finding, in order.
    fn hits(s: &Scan) -> Vec<(&'static str, usize, usize)> {
        s.findings
            .iter()
            .map(|f| (f.rule, f.line, f.column))
            .collect()
    }

    fn rules(s: &Scan) -> Vec<&'static str> {
        s.findings.iter().map(|f| f.rule).collect()
    }

    fn keys(s: &Scan) -> Vec<&str> {
        s.sites.iter().map(|x| x.key.as_str()).collect()
    }

    fn site<'a>(s: &'a Scan, key: &str) -> &'a ImageSite {
        s.sites
            .iter()
            .find(|x| x.key == key)
            .unwrap_or_else(|| panic!("no site {key} in {:?}", keys(s)))
    }

    fn slice<'a>(yaml: &'a str, range: Option<&Range<usize>>) -> &'a str {
        &yaml[range.expect("a byte range").clone()]
    }

    // ---- yaml-syntax -------------------------------------------------------------------------

    #[test]
    fn yaml_syntax_duplicate_key_is_reported_at_the_second_key() {
        let s = scan_one(
            "env/prod/values.yaml",
            &format!("image:\n  ref: ghcr.io/acme/app@{D}\n  ref: ghcr.io/acme/app@{D2}\n"),
        );
        assert_eq!(hits(&s), [("yaml-syntax", 3, 3)]);
        assert_eq!(s.findings[0].severity, Severity::Error);
        assert!(s.findings[0].message.contains("first at line 2"), "{s:?}");
        assert!(s.sites.is_empty());
        assert_eq!(s.files_scanned, 1);
    }

    #[test]
    fn yaml_syntax_unclosed_flow_sequence_is_an_error_with_a_line() {
        let s = scan_one("env/staging/values.yaml", "a: 1\nb: [unclosed\nc: 3\n");
        assert_eq!(rules(&s), ["yaml-syntax"]);
        assert!(s.findings[0].line >= 2, "{s:?}");
    }

    #[test]
    fn yaml_syntax_not_reported_for_valid_yaml_or_files_the_scanner_does_not_read() {
        let s = scan_one(
            "env/prod/values.yaml",
            &format!("image:\n  ref: ghcr.io/acme/app@{D}\nother:\n  ref: x\n"),
        );
        assert!(s.findings.is_empty(), "{s:?}");
        // Broken YAML outside every environment, and in a non-YAML file: not read.
        let broken = "a: [unclosed\n";
        let s = scan(
            &cfg(),
            &[
                text("charts/app/values.yaml", broken),
                text("env/prod/notes.txt", broken),
            ],
        );
        assert!(s.findings.is_empty(), "{s:?}");
        assert_eq!(s.files_scanned, 0);
    }

    // ---- symlink -----------------------------------------------------------------------------

    fn link(path: &str, target: &str) -> Scan {
        scan(
            &cfg(),
            &[SourceFile {
                path: path.to_owned(),
                content: Content::Symlink(target.to_owned()),
            }],
        )
    }

    #[test]
    fn symlink_out_of_the_repository_is_an_error_for_the_whole_file() {
        for target in ["/etc/passwd", "../../../outside.yaml", "../../../../x"] {
            let s = link("env/prod/values.yaml", target);
            assert_eq!(hits(&s), [("symlink", 0, 0)], "{target}");
            assert_eq!(s.findings[0].severity, Severity::Error, "{target}");
            assert!(
                s.findings[0].message.contains("outside the repository"),
                "{target}: {s:?}"
            );
            assert_eq!(s.files_scanned, 0);
        }
    }

    #[test]
    fn symlink_inside_its_own_environment_is_a_warning_elsewhere_an_error() {
        let s = link("env/prod/values.yaml", "base/values.yaml");
        assert_eq!(hits(&s), [("symlink", 0, 0)]);
        assert_eq!(s.findings[0].severity, Severity::Warning);
        assert!(!s.findings[0].message.contains("outside the repository"));
        // Into another environment (prod would run what dev decides) or to an unchecked file.
        for target in ["../dev/values.yaml", "../../values/common.yaml"] {
            let s = link("env/prod/values.yaml", target);
            assert_eq!(s.findings[0].severity, Severity::Error, "{target}");
            assert!(
                s.findings[0].message.contains("another environment"),
                "{target}"
            );
        }
        // Any link in an environment is reported, YAML or not: it is never read through.
        let s = link("env/prod/data", "./values.yaml");
        assert_eq!(rules(&s), ["symlink"]);
    }

    #[test]
    fn symlink_outside_every_environment_is_not_reported() {
        assert!(link("docs/values.yaml", "/etc/passwd").findings.is_empty());
        assert!(
            link("charts/app/values.yaml", "../../x")
                .findings
                .is_empty()
        );
    }

    // ---- unreadable-file ---------------------------------------------------------------------

    #[test]
    fn unreadable_file_binary_or_too_large_yaml_is_an_error() {
        let files = [
            SourceFile {
                path: "env/prod/values.yaml".into(),
                content: Content::from_bytes(b"image: \0\x01".to_vec()),
            },
            SourceFile {
                path: "env/staging/values.yml".into(),
                content: Content::from_bytes(vec![b'a', b':', b' ', 0xff, 0xfe]),
            },
            SourceFile {
                path: "env/dev/big.yaml".into(),
                content: Content::TooLarge(MAX_FILE_BYTES + 1),
            },
        ];
        let s = scan(&cfg(), &files);
        assert_eq!(
            hits(&s),
            [
                ("unreadable-file", 0, 0),
                ("unreadable-file", 0, 0),
                ("unreadable-file", 0, 0)
            ]
        );
        assert!(s.findings.iter().all(|f| f.severity == Severity::Error));
        assert_eq!(
            s.findings
                .iter()
                .map(|f| f.file.as_str())
                .collect::<Vec<_>>(),
            [
                "env/prod/values.yaml",
                "env/staging/values.yml",
                "env/dev/big.yaml"
            ]
        );
        assert!(s.findings[2].message.contains("4194305 bytes"), "{s:?}");
        assert_eq!(s.files_scanned, 0);
    }

    #[test]
    fn unreadable_file_not_reported_for_binary_non_yaml_or_valid_text() {
        let files = [
            SourceFile {
                path: "env/prod/logo.png".into(),
                content: Content::Binary,
            },
            SourceFile {
                path: "env/prod/archive.tar".into(),
                content: Content::TooLarge(MAX_FILE_BYTES * 4),
            },
            SourceFile {
                path: "env/prod/values.yaml".into(),
                content: Content::from_bytes("note: größe ✓\n".as_bytes().to_vec()),
            },
        ];
        let s = scan(&cfg(), &files);
        assert!(s.findings.is_empty(), "{s:?}");
        assert_eq!(s.files_scanned, 1);
    }

    #[test]
    fn content_from_bytes_classifies_nul_and_invalid_utf8_as_binary() {
        assert!(matches!(
            Content::from_bytes(b"a\0b".to_vec()),
            Content::Binary
        ));
        assert!(matches!(
            Content::from_bytes(vec![0xc3, 0x28]),
            Content::Binary
        ));
        assert!(
            matches!(Content::from_bytes(b"a: 1\n".to_vec()), Content::Text(t) if t == "a: 1\n")
        );
        assert!(matches!(Content::from_bytes(Vec::new()), Content::Text(t) if t.is_empty()));
    }

    // ---- split-reference ---------------------------------------------------------------------

    #[test]
    fn split_reference_ref_next_to_tag_is_reported_at_ref_and_ref_is_still_checked() {
        let yaml = format!("app:\n  image:\n    ref: ghcr.io/acme/app@{D}\n    tag: v1.2.3\n");
        let s = scan_one("env/prod/values.yaml", &yaml);
        assert_eq!(hits(&s), [("split-reference", 3, 10)]);
        assert!(
            s.findings[0].message.contains("image.ref next to tag"),
            "{s:?}"
        );
        assert_eq!(keys(&s), ["[0].app.image.ref"]);
        assert_eq!(s.sites[0].form, Form::Single);
        // Its own rules still apply: a floating tag in ref is a second finding.
        let yaml = format!(
            "app:\n  image:\n    ref: ghcr.io/acme/app:latest@{D}\n    repository: x\n    digest: {D}\n"
        );
        let s = scan_one("env/prod/values.yaml", &yaml);
        assert_eq!(
            hits(&s),
            [
                ("split-reference", 3, 10),
                ("reference-floating-tag", 3, 10)
            ]
        );
        assert!(
            s.findings[0].message.contains("repository, digest"),
            "{s:?}"
        );
    }

    #[test]
    fn split_reference_helm_fields_are_assembled_into_one_reference() {
        let yaml = format!(
            "app:\n  image:\n    registry: ghcr.io\n    repository: acme/app\n    tag: \"v1.2.3\"\n    digest: \"{D}\"\n    pullPolicy: IfNotPresent\n"
        );
        let s = scan_one("env/prod/values.yaml", &yaml);
        assert_eq!(hits(&s), [("split-reference", 4, 17)]);
        let fix = &s.findings[0].fix;
        assert!(
            fix.contains(&format!("image.ref: ghcr.io/acme/app:v1.2.3@{D}")),
            "{fix}"
        );
        let x = site(&s, "[0].app.image");
        assert_eq!(x.reference, format!("ghcr.io/acme/app:v1.2.3@{D}"));
        assert_eq!(x.form, Form::Split);
        assert_eq!((x.pos.line, x.pos.column), (4, 17));
        assert_eq!(slice(&yaml, x.digest_bytes.as_ref()), D);
        // The whole tag scalar, quotes included.
        assert_eq!(slice(&yaml, x.tag_bytes.as_ref()), "\"v1.2.3\"");
        assert!(x.image().is_some());
    }

    #[test]
    fn split_reference_without_digest_is_also_reference_digest() {
        let yaml = "image:\n  repository: ghcr.io/acme/app\n  tag: v1.2.3\n";
        let s = scan_one("env/staging/values.yaml", yaml);
        assert_eq!(
            hits(&s),
            [("split-reference", 2, 15), ("reference-digest", 2, 15)]
        );
        assert_eq!(s.sites[0].reference, "ghcr.io/acme/app:v1.2.3");
        assert!(s.sites[0].digest_bytes.is_none());
    }

    #[test]
    fn split_reference_not_reported_for_ref_alone_or_other_image_settings() {
        let yaml = format!(
            "app:\n  image:\n    ref: ghcr.io/acme/app@{D}\n    pullPolicy: IfNotPresent\nchart:\n  image:\n    pullSecrets: [regcred]\n"
        );
        let s = scan_one("env/prod/values.yaml", &yaml);
        assert!(s.findings.is_empty(), "{s:?}");
        assert_eq!(keys(&s), ["[0].app.image.ref"]);
    }

    // ---- pull-policy -------------------------------------------------------------------------

    #[test]
    fn pull_policy_other_than_the_configured_one_is_reported_at_its_value() {
        let yaml = format!(
            "spec:\n  containers:\n    - name: app\n      image: ghcr.io/acme/app@{D}\n      imagePullPolicy: Always\napp:\n  image:\n    ref: ghcr.io/acme/app@{D}\n    pullPolicy: Never\nchart:\n  image:\n    pullPolicy: Always\n"
        );
        let s = scan_one("env/prod/values.yaml", &yaml);
        assert_eq!(
            hits(&s),
            [
                ("pull-policy", 5, 24),
                ("pull-policy", 9, 17),
                ("pull-policy", 12, 17)
            ]
        );
        assert!(s.findings[0].message.contains("\"Always\""), "{s:?}");
        assert!(s.findings[0].message.contains("\"IfNotPresent\""), "{s:?}");
    }

    #[test]
    fn pull_policy_matching_or_outside_an_image_is_not_reported() {
        let yaml = format!(
            "spec:\n  containers:\n    - name: app\n      image: ghcr.io/acme/app@{D}\n      imagePullPolicy: IfNotPresent\nupdates:\n  pullPolicy: Always\n"
        );
        let s = scan_one("env/prod/values.yaml", &yaml);
        assert!(s.findings.is_empty(), "{s:?}");
        // The required policy is configuration.
        let c = config::load(&format!("{CONFIG}pullPolicy: Always\n")).unwrap();
        let yaml = "imagePullPolicy: Always\n";
        assert!(
            scan(&c, &[text("env/prod/a.yaml", yaml)])
                .findings
                .is_empty()
        );
        let yaml = "imagePullPolicy: IfNotPresent\n";
        assert_eq!(
            hits(&scan(&c, &[text("env/prod/a.yaml", yaml)])),
            [("pull-policy", 1, 18)]
        );
    }

    // ---- reference-digest / reference-floating-tag / reference-tag -------------------------

    #[test]
    fn reference_digest_missing_digest_is_reported_at_the_value() {
        let s = scan_one(
            "env/prod/values.yaml",
            "app:\n  image: ghcr.io/acme/app:v1.2.3\n",
        );
        assert_eq!(hits(&s), [("reference-digest", 2, 10)]);
        assert!(
            s.findings[0]
                .message
                .starts_with("ghcr.io/acme/app:v1.2.3:"),
            "{s:?}"
        );
        assert!(s.sites[0].digest_bytes.is_none());
    }

    #[test]
    fn reference_digest_not_reported_when_pinned() {
        let yaml = format!("app:\n  image: ghcr.io/acme/app:v1.2.3@{D}\n");
        let s = scan_one("env/prod/values.yaml", &yaml);
        assert!(s.findings.is_empty(), "{s:?}");
        assert_eq!(s.sites.len(), 1);
    }

    #[test]
    fn reference_floating_tag_first_party_latest_or_branch_build_is_reported() {
        let yaml = format!(
            "a:\n  image: ghcr.io/acme/app:latest@{D}\nb:\n  image: ghcr.io/acme/app:develop-v1.2.3-abc-1700000000@{D}\n"
        );
        let s = scan_one("env/prod/values.yaml", &yaml);
        assert_eq!(
            hits(&s),
            [
                ("reference-floating-tag", 2, 10),
                ("reference-floating-tag", 4, 10)
            ]
        );
        assert!(s.findings[1].message.contains("develop-*"), "{s:?}");
    }

    #[test]
    fn reference_floating_tag_not_reported_for_a_release_tag_or_digest_alone() {
        let yaml = format!(
            "a:\n  image: ghcr.io/acme/app:v1.2.3@{D}\nb:\n  image: ghcr.io/acme/app@{D}\nc:\n  image: ghcr.io/acme/latest@{D}\n"
        );
        let s = scan_one("env/prod/values.yaml", &yaml);
        assert!(s.findings.is_empty(), "{s:?}");
        assert_eq!(s.sites.len(), 3);
    }

    #[test]
    fn reference_tag_third_party_non_semver_tag_is_reported() {
        let yaml = format!(
            "a:\n  image: nginx:stable@{D}\nb:\n  image: docker.io/library/redis:latest@{D}\n"
        );
        let s = scan_one("env/prod/values.yaml", &yaml);
        // A third-party image's tag is judged by the third-party rule (semver or nothing), so
        // `latest` there is reference-tag, not reference-floating-tag.
        assert_eq!(
            hits(&s),
            [("reference-tag", 2, 10), ("reference-tag", 4, 10)]
        );
    }

    #[test]
    fn reference_tag_not_reported_for_third_party_semver_with_digest() {
        let yaml =
            format!("a:\n  image: nginx:1.27.0@{D}\nb:\n  image: docker.io/library/redis@{D}\n");
        let s = scan_one("env/prod/values.yaml", &yaml);
        assert!(s.findings.is_empty(), "{s:?}");
        assert_eq!(s.sites[0].reference, format!("nginx:1.27.0@{D}"));
    }

    // ---- malformed-reference -----------------------------------------------------------------

    #[test]
    fn malformed_reference_in_an_image_field_is_reported() {
        let s = scan_one("env/prod/values.yaml", "image: \"UPPER/Case@@x\"\n");
        assert_eq!(hits(&s), [("malformed-reference", 1, 8)]);
        assert!(s.findings[0].message.contains("\"UPPER/Case@@x\""), "{s:?}");
        assert!(s.sites.is_empty());
        let s = scan_one("env/prod/values.yaml", "app:\n  image:\n    ref: \"\"\n");
        assert_eq!(hits(&s), [("malformed-reference", 3, 10)]);
    }

    #[test]
    fn malformed_reference_not_reported_for_null_or_non_image_strings() {
        let s = scan_one(
            "env/prod/values.yaml",
            "image: ~\nother:\n  image:\nnote: \"UPPER/Case@@x\"\nbad: \"x@sha256:zz\"\n",
        );
        assert!(s.findings.is_empty(), "{s:?}");
        assert!(s.sites.is_empty());
    }

    // ---- unexpected-reference ----------------------------------------------------------------

    #[test]
    fn unexpected_reference_outside_an_image_field_is_a_warning_and_still_checked() {
        let yaml = format!("env:\n  - name: SIDECAR\n    value: ghcr.io/acme/sidecar:main@{D}\n");
        let s = scan_one("env/prod/values.yaml", &yaml);
        assert_eq!(
            hits(&s),
            [
                ("unexpected-reference", 3, 12),
                ("reference-floating-tag", 3, 12)
            ]
        );
        assert_eq!(s.findings[0].severity, Severity::Warning);
        assert_eq!(s.findings[1].severity, Severity::Error);
        assert_eq!(keys(&s), ["[0].env[name=SIDECAR].value"]);
        assert_eq!(slice(&yaml, s.sites[0].digest_bytes.as_ref()), D);
    }

    #[test]
    fn unexpected_reference_through_a_yaml_alias_is_an_error_at_the_alias() {
        let yaml = format!("base: &img ghcr.io/acme/app@{D}\napp:\n  image: *img\n");
        let s = scan_one("env/prod/values.yaml", &yaml);
        let h = hits(&s);
        assert_eq!(h.len(), 2, "{s:?}");
        // The anchored value is seen where it is written (a warning)…
        assert_eq!((h[0].0, h[0].1), ("unexpected-reference", 1));
        assert_eq!(s.findings[0].severity, Severity::Warning);
        // … and the alias, which custody does not follow, is an error.
        assert_eq!(h[1], ("unexpected-reference", 3, 10));
        assert_eq!(s.findings[1].severity, Severity::Error);
        assert!(s.findings[1].message.contains("alias"), "{s:?}");
    }

    #[test]
    fn unexpected_reference_not_reported_for_image_fields_or_unpinned_strings() {
        let yaml = format!(
            "app:\n  image: ghcr.io/acme/app@{D}\nenv:\n  - name: TAGGED\n    value: ghcr.io/acme/app:v1\n  - name: TEXT\n    value: see ghcr.io/acme/app@{D} here\n"
        );
        let s = scan_one("env/prod/values.yaml", &yaml);
        assert!(s.findings.is_empty(), "{s:?}");
        assert_eq!(keys(&s), ["[0].app.image"]);
    }

    // ---- auto-update-environment -------------------------------------------------------------

    const IMAGE_POLICY: &str = "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImagePolicy\nmetadata:\n  name: app\nspec:\n  imageRepositoryRef:\n    name: app\n  filterTags:\n    pattern: '^develop-v.*$'\n  policy:\n    alphabetical:\n      order: asc\n";

    const UPDATE_AUTOMATION: &str = "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImageUpdateAutomation\nmetadata:\n  name: app\nspec:\n  interval: 5m\n";

    #[test]
    fn auto_update_environment_flux_objects_outside_auto_update_environments() {
        let s = scan_one("env/prod/automation.yaml", IMAGE_POLICY);
        assert_eq!(hits(&s), [("auto-update-environment", 2, 7)]);
        let m = &s.findings[0].message;
        assert!(m.contains("ImagePolicy"), "{m}");
        assert!(m.contains("\"^develop-v.*$\""), "{m}");
        assert!(m.contains("environment \"prod\""), "{m}");
        assert!(m.ends_with("allowed only in: dev"), "{m}");
        let s = scan_one("env/staging/automation.yaml", UPDATE_AUTOMATION);
        assert_eq!(hits(&s), [("auto-update-environment", 2, 7)]);
        // Shared files reach every environment, so they are not an auto-update place either.
        let s = scan_one("env/_shared/automation.yaml", IMAGE_POLICY);
        assert_eq!(hits(&s), [("auto-update-environment", 2, 7)]);
        assert!(s.findings[0].message.contains("the shared files"), "{s:?}");
        // In the second document of a file.
        let s = scan_one(
            "env/prod/automation.yaml",
            &format!("a: 1\n---\n{UPDATE_AUTOMATION}"),
        );
        assert_eq!(hits(&s), [("auto-update-environment", 4, 7)]);
    }

    #[test]
    fn auto_update_environment_not_reported_in_dev_or_for_other_apis() {
        assert!(
            scan_one("env/dev/automation.yaml", IMAGE_POLICY)
                .findings
                .is_empty()
        );
        assert!(
            scan_one("env/dev/automation.yaml", UPDATE_AUTOMATION)
                .findings
                .is_empty()
        );
        let other = IMAGE_POLICY.replace("image.toolkit.fluxcd.io/v1beta2", "example.com/v1");
        assert!(
            scan_one("env/prod/automation.yaml", &other)
                .findings
                .is_empty()
        );
        let repo = IMAGE_POLICY.replace("kind: ImagePolicy", "kind: ImageRepository");
        assert!(
            scan_one("env/prod/automation.yaml", &repo)
                .findings
                .is_empty()
        );
        // Outside every environment: not read.
        assert!(
            scan_one("flux-system/automation.yaml", IMAGE_POLICY)
                .findings
                .is_empty()
        );
    }

    #[test]
    fn auto_update_environment_setter_comment_in_prod_but_not_dev() {
        let yaml = format!(
            "app:\n  image:\n    ref: ghcr.io/acme/app@{D} # {{\"$imagepolicy\": \"flux-system:app\"}}\n"
        );
        // 4 + "ref: " + 88-character reference + " # {" → the quote at column 102.
        let s = scan_one("env/prod/values.yaml", &yaml);
        assert_eq!(hits(&s), [("auto-update-environment", 3, 102)]);
        assert!(s.findings[0].message.contains("marker"), "{s:?}");
        assert_eq!(keys(&s), ["[0].app.image.ref"]);
        let s = scan_one("env/dev/values.yaml", &yaml);
        assert!(s.findings.is_empty(), "{s:?}");
        assert_eq!(s.sites.len(), 1);
    }

    #[test]
    fn auto_update_environment_marker_text_outside_a_comment_is_not_a_marker() {
        let yaml = "note: '{\"$imagepolicy\": \"flux-system:app\"}'\n";
        assert!(scan_one("env/prod/values.yaml", yaml).findings.is_empty());
    }

    // ---- where references are found ----------------------------------------------------------

    fn deployment(first: (&str, &str), second: (&str, &str)) -> String {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      initContainers:\n        - name: migrate\n          image: ghcr.io/acme/migrate@{D}\n      containers:\n        - name: {}\n          image: {}\n          imagePullPolicy: IfNotPresent\n        - name: {}\n          image: {}\n",
            first.0, first.1, second.0, second.1
        )
    }

    #[test]
    fn deployment_containers_and_init_containers_are_keyed_by_name() {
        let app = format!("ghcr.io/acme/app@{D}");
        let sidecar = format!("ghcr.io/acme/sidecar@{D2}");
        let yaml = deployment(("app", &app), ("sidecar", &sidecar));
        let s = scan_one("env/prod/deploy.yaml", &yaml);
        assert!(s.findings.is_empty(), "{s:?}");
        assert_eq!(
            keys(&s),
            [
                "[0].spec.template.spec.initContainers[name=migrate].image",
                "[0].spec.template.spec.containers[name=app].image",
                "[0].spec.template.spec.containers[name=sidecar].image",
            ]
        );
        let x = site(&s, "[0].spec.template.spec.containers[name=sidecar].image");
        assert_eq!((x.pos.line, x.pos.column), (16, 18));
        assert_eq!(x.reference, sidecar);
        assert_eq!(x.form, Form::Single);
        // Reordering the containers moves lines, not keys.
        let swapped = scan_one(
            "env/prod/deploy.yaml",
            &deployment(("sidecar", &sidecar), ("app", &app)),
        );
        let pairs = |s: &Scan| {
            let mut v: Vec<(String, String)> = s
                .sites
                .iter()
                .map(|x| (x.key.clone(), x.reference.clone()))
                .collect();
            v.sort();
            v
        };
        assert_eq!(pairs(&s), pairs(&swapped));
        let x = site(
            &swapped,
            "[0].spec.template.spec.containers[name=sidecar].image",
        );
        assert_eq!((x.pos.line, x.pos.column), (13, 18));
    }

    #[test]
    fn unnamed_list_items_are_keyed_by_index() {
        let yaml =
            format!("images:\n  - image: ghcr.io/acme/a@{D}\n  - image: ghcr.io/acme/b@{D}\n");
        let s = scan_one("env/prod/values.yaml", &yaml);
        assert!(s.findings.is_empty(), "{s:?}");
        assert_eq!(keys(&s), ["[0].images[0].image", "[0].images[1].image"]);
    }

    #[test]
    fn cronjob_job_template_containers_are_found() {
        let yaml = format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: report\nspec:\n  schedule: \"0 * * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n            - name: report\n              image: ghcr.io/acme/report:latest@{D}\n"
        );
        let s = scan_one("env/staging/cronjob.yaml", &yaml);
        assert_eq!(
            keys(&s),
            ["[0].spec.jobTemplate.spec.template.spec.containers[name=report].image"]
        );
        assert_eq!(hits(&s), [("reference-floating-tag", 13, 22)]);
        let ok = yaml.replace(":latest@", "@");
        assert!(
            scan_one("env/staging/cronjob.yaml", &ok)
                .findings
                .is_empty()
        );
    }

    #[test]
    fn every_document_of_a_multi_document_file_is_scanned() {
        let yaml = format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n---\napiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: ghcr.io/acme/app:main\n---\nimage: ghcr.io/acme/b@{D}\n"
        );
        let s = scan_one("env/prod/all.yaml", &yaml);
        assert_eq!(
            keys(&s),
            [
                "[1].spec.template.spec.containers[name=app].image",
                "[2].image"
            ]
        );
        assert_eq!(
            hits(&s),
            [
                ("reference-digest", 14, 18),
                ("reference-floating-tag", 14, 18)
            ]
        );
        assert_eq!((s.sites[1].pos.line, s.sites[1].pos.column), (16, 8));
    }

    const KUSTOMIZATION: &str = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../base\nimages:\n  - name: app\n    newName: ghcr.io/acme/app\n    newTag: v1.2.3\n    digest: DIGEST\n  - name: worker\n    newName: ghcr.io/acme/worker\n    newTag: v2.0.0\n  - name: ghcr.io/acme/cli\n    digest: DIGEST\n";

    #[test]
    fn kustomize_images_are_assembled_and_a_missing_digest_is_reported() {
        let yaml = KUSTOMIZATION.replace("DIGEST", D);
        let s = scan_one("env/prod/overlay.yaml", &yaml);
        assert_eq!(
            keys(&s),
            ["[0].images[0]", "[0].images[1]", "[0].images[2]"]
        );
        let app = site(&s, "[0].images[0]");
        assert_eq!(app.reference, format!("ghcr.io/acme/app:v1.2.3@{D}"));
        assert_eq!(app.form, Form::Kustomize);
        // At the digest, which is what promotion edits.
        assert_eq!((app.pos.line, app.pos.column), (9, 13));
        assert_eq!(slice(&yaml, app.digest_bytes.as_ref()), D);
        assert_eq!(slice(&yaml, app.tag_bytes.as_ref()), "v1.2.3");
        let worker = site(&s, "[0].images[1]");
        assert_eq!(worker.reference, "ghcr.io/acme/worker:v2.0.0");
        assert!(worker.digest_bytes.is_none());
        assert_eq!(
            site(&s, "[0].images[2]").reference,
            format!("ghcr.io/acme/cli@{D}")
        );
        assert_eq!(hits(&s), [("reference-digest", 10, 11)]);
        assert!(
            s.findings[0].message.contains("ghcr.io/acme/worker:v2.0.0"),
            "{s:?}"
        );
    }

    #[test]
    fn kustomization_yaml_by_file_name_without_kind() {
        let yaml = format!(
            "images:\n  - name: app\n    newName: ghcr.io/acme/app\n    newTag: latest\n    digest: {D}\n"
        );
        let s = scan_one("env/prod/kustomization.yaml", &yaml);
        assert_eq!(hits(&s), [("reference-floating-tag", 5, 13)]);
        let s = scan_one("env/prod/kustomization.yml", &yaml);
        assert_eq!(rules(&s), ["reference-floating-tag"]);
    }

    #[test]
    fn kustomize_style_images_in_other_files_are_not_kustomize_entries() {
        let yaml = KUSTOMIZATION
            .replace("DIGEST", D)
            .replace("kind: Kustomization", "kind: Something");
        let s = scan_one("env/prod/overlay.yaml", &yaml);
        assert!(s.sites.is_empty(), "{s:?}");
        assert!(s.findings.is_empty(), "{s:?}");
    }

    #[test]
    fn flux_helm_release_values_image_ref() {
        let yaml = format!(
            "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: app\nspec:\n  values:\n    image:\n      ref: ghcr.io/acme/app@{D}\n      pullPolicy: IfNotPresent\n"
        );
        let s = scan_one("env/prod/release.yaml", &yaml);
        assert!(s.findings.is_empty(), "{s:?}");
        assert_eq!(keys(&s), ["[0].spec.values.image.ref"]);
        assert_eq!((s.sites[0].pos.line, s.sites[0].pos.column), (8, 12));
        let bad = yaml.replace("app@", "app:develop@");
        let s = scan_one("env/prod/release.yaml", &bad);
        assert_eq!(hits(&s), [("reference-floating-tag", 8, 12)]);
    }

    #[test]
    fn templated_values_are_skipped() {
        let yaml = "a:\n  image: \"{{ .Values.image }}\"\nb:\n  image:\n    ref: \"ghcr.io/acme/app:${TAG}\"\n";
        let s = scan_one("env/prod/values.yaml", yaml);
        assert!(s.findings.is_empty(), "{s:?}");
        assert!(s.sites.is_empty(), "{s:?}");
        // The same value without the template is read.
        let s = scan_one(
            "env/prod/values.yaml",
            "a:\n  image: \"ghcr.io/acme/app:main\"\n",
        );
        assert_eq!(
            hits(&s),
            [
                ("reference-digest", 2, 10),
                ("reference-floating-tag", 2, 10)
            ]
        );
    }

    // ---- scope ------------------------------------------------------------------------------

    #[test]
    fn files_outside_environments_freeze_files_and_non_yaml_files_are_not_scanned() {
        let bad = "image: ghcr.io/acme/app:latest\n";
        let files = [
            text("charts/app/values.yaml", bad),
            text("env/prod/freeze.yaml", bad),
            text("env/prod/README.md", bad),
            text("env/prod/values.json", bad),
        ];
        let s = scan(&cfg(), &files);
        assert!(s.findings.is_empty(), "{s:?}");
        assert!(s.sites.is_empty(), "{s:?}");
        // The freeze file is read (counted) but its contents are not references.
        assert_eq!(s.files_scanned, 1);
        // Contrast: the same text in the environment's values file, and in staging's
        // "freeze.yaml" (only prod names one).
        let files = [
            text("env/prod/values.yaml", bad),
            text("env/staging/freeze.yaml", bad),
        ];
        let s = scan(&cfg(), &files);
        assert_eq!(
            rules(&s),
            [
                "reference-digest",
                "reference-floating-tag",
                "reference-digest",
                "reference-floating-tag"
            ]
        );
        assert_eq!(s.files_scanned, 2);
    }

    #[test]
    fn findings_and_sites_follow_file_order_and_name_their_file() {
        let files = [
            text("env/dev/values.yaml", "image: ghcr.io/acme/app:main\n"),
            text(
                "env/prod/values.yml",
                &format!("image: ghcr.io/acme/app@{D}\n"),
            ),
        ];
        let s = scan(&cfg(), &files);
        assert_eq!(
            s.sites.iter().map(|x| x.file.as_str()).collect::<Vec<_>>(),
            ["env/dev/values.yaml", "env/prod/values.yml"]
        );
        assert!(s.findings.iter().all(|f| f.file == "env/dev/values.yaml"));
        assert_eq!(s.files_scanned, 2);
    }

    // ---- byte ranges for edits ---------------------------------------------------------------

    #[test]
    fn digest_and_tag_bytes_in_a_quoted_scalar() {
        for q in ["\"", "'"] {
            let yaml =
                format!("app:\n  image:\n    ref: {q}ghcr.io/acme/app:v1.2.3@{D}{q}  # pinned\n");
            let s = scan_one("env/prod/values.yaml", &yaml);
            assert!(s.findings.is_empty(), "{s:?}");
            let x = &s.sites[0];
            assert_eq!(slice(&yaml, x.digest_bytes.as_ref()), D);
            assert_eq!(slice(&yaml, x.tag_bytes.as_ref()), "v1.2.3");
            // Up to the closing quote, not past it.
            assert_eq!(x.digest_bytes.as_ref().unwrap().end, yaml.rfind(q).unwrap());
        }
    }

    #[test]
    fn digest_and_tag_bytes_skip_a_registry_host_containing_sha256() {
        let yaml = format!("image: reg-sha256:5000/app:5000@{D}\n");
        let s = scan_one("env/prod/values.yaml", &yaml);
        assert!(s.findings.is_empty(), "{s:?}");
        let x = &s.sites[0];
        let at = yaml.find('@').unwrap();
        assert_eq!(x.digest_bytes, Some(at + 1..at + 1 + D.len()));
        assert_eq!(slice(&yaml, x.digest_bytes.as_ref()), D);
        // The tag, not the port with the same digits.
        let tag = yaml.find("app:5000").unwrap() + "app:".len();
        assert_eq!(x.tag_bytes, Some(tag..tag + 4));
        // Without a tag: no tag range (the port is not one).
        let yaml = format!("image: \"reg-sha256:5000/app@{D}\"\n");
        let x = scan_one("env/prod/values.yaml", &yaml).sites.remove(0);
        assert_eq!(slice(&yaml, x.digest_bytes.as_ref()), D);
        assert!(x.tag_bytes.is_none());
    }

    #[test]
    fn digest_and_tag_bytes_in_a_block_scalar_and_with_escapes() {
        let yaml = format!("image: >-\n  ghcr.io/acme/app:v1.2.3@{D}\n");
        let s = scan_one("env/prod/values.yaml", &yaml);
        assert!(s.findings.is_empty(), "{s:?}");
        assert_eq!(slice(&yaml, s.sites[0].digest_bytes.as_ref()), D);
        assert_eq!(slice(&yaml, s.sites[0].tag_bytes.as_ref()), "v1.2.3");
        // An escaped character inside the digest or tag: no range rather than a wrong one.
        let escaped = format!(
            "image: \"ghcr.io/acme/app:v1.2.\\x33@sha256:\\x61{}\"\n",
            &D[8..]
        );
        let s = scan_one("env/prod/values.yaml", &escaped);
        assert!(s.findings.is_empty(), "{s:?}");
        assert_eq!(s.sites[0].reference, format!("ghcr.io/acme/app:v1.2.3@{D}"));
        assert!(s.sites[0].digest_bytes.is_none());
        assert!(s.sites[0].tag_bytes.is_none());
    }

    #[test]
    fn no_digest_range_for_a_value_that_is_not_a_digest() {
        let yaml = "image:\n  repository: ghcr.io/acme/app\n  digest: sha256:abc\n";
        let s = scan_one("env/prod/values.yaml", yaml);
        assert!(s.sites[0].digest_bytes.is_none());
        // Split, and the assembled reference does not parse (a 3-hex digest).
        assert_eq!(rules(&s), ["split-reference", "malformed-reference"]);
    }

    // ---- scanner bugs found by these tests (fixed; each asserts the expected behaviour) ------

    #[test]
    fn bug_alias_inside_an_image_mapping_is_reported() {
        // The anchored value has no digest, so nothing else flags it either: a bypass.
        let yaml = "base: &img ghcr.io/acme/app:latest\napp:\n  image:\n    ref: *img\n";
        let s = scan_one("env/prod/values.yaml", yaml);
        assert_eq!(hits(&s), [("unexpected-reference", 4, 10)]);
        let yaml =
            "repo: &r ghcr.io/acme/app\napp:\n  image:\n    repository: *r\n    tag: latest\n";
        let s = scan_one("env/prod/values.yaml", yaml);
        assert!(!s.findings.is_empty(), "{s:?}");
    }

    #[test]
    fn bug_malformed_kustomize_image_is_reported() {
        let yaml =
            "images:\n  - name: app\n    newName: ghcr.io/acme/app\n    digest: sha256:abc\n";
        let s = scan_one("env/prod/kustomization.yaml", yaml);
        assert_eq!(s.sites.len(), 1);
        assert_eq!(hits(&s), [("malformed-reference", 4, 13)]);
    }

    #[test]
    fn bug_setter_marker_column_is_in_characters() {
        let yaml = "a: 1 # ✓ {\"$imagepolicy\": \"flux-system:app\"}\n";
        let s = scan_one("env/prod/values.yaml", yaml);
        // `a: 1 # ✓ {` is 10 characters (12 bytes): the quote is at character column 11.
        assert_eq!(hits(&s), [("auto-update-environment", 1, 11)]);
    }

    #[test]
    fn bug_sha512_reference_in_an_unexpected_place_is_reported() {
        let yaml = format!(
            "env:\n  - name: SIDECAR\n    value: ghcr.io/acme/app:latest@sha512:{}\n",
            "ab".repeat(64)
        );
        let s = scan_one("env/prod/values.yaml", &yaml);
        assert_eq!(
            hits(&s),
            [
                ("unexpected-reference", 3, 12),
                ("reference-floating-tag", 3, 12)
            ]
        );
    }

    #[test]
    fn bug_kustomization_file_without_extension_is_scanned() {
        let yaml = "images:\n  - name: app\n    newName: ghcr.io/acme/app\n    newTag: latest\n";
        let s = scan_one("env/prod/Kustomization", yaml);
        assert_eq!(rules(&s), ["reference-digest", "reference-floating-tag"]);
    }
}
