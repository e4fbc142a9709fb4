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
    path.ends_with(".yaml") || path.ends_with(".yml")
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
            let escapes =
                target.starts_with('/') || normalise(&parent_of(&f.path), target).is_none();
            let finding = Finding::at(
                &f.path,
                whole,
                "symlink",
                format!(
                    "symbolic link to {target:?}{}: custody never follows links, so what it points to is not checked here",
                    if escapes {
                        ", outside the repository"
                    } else {
                        ""
                    }
                ),
                "replace the link with the file itself (each environment's values in its own directory)",
            );
            out.findings
                .push(if escapes { finding } else { finding.warning() });
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
    let i = from + source.get(from..)?.find("sha256:")?;
    let hex = source.get(i + "sha256:".len()..i + "sha256:".len() + 64)?;
    hex.bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then_some(offset + i..offset + i + "sha256:".len() + 64)
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
            || self.file.ends_with("kustomization.yaml")
            || self.file.ends_with("kustomization.yml");
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
                if s.value.contains("@sha256:")
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
                        column: col + 1,
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
