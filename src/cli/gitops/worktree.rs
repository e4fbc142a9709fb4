//! Reading a delivery repository's work tree for `gitops lint` and `gitops promote`: bounded,
//! never following symbolic links (a link is reported with its target, not read through).

use std::path::Path;

use crate::gitops::config::{CONFIG_FILE, Config};
use crate::gitops::scan::{Content, MAX_FILE_BYTES, SourceFile};

/// Most files walked.
const MAX_FILES: usize = 50_000;

/// Loads `custody-gitops.yaml` from the root.
pub(super) fn load_config(root: &Path) -> Result<Config, String> {
    let path = root.join(CONFIG_FILE);
    let text = crate::engine::files::read_text_bounded(
        &path,
        crate::gitops::config::MAX_CONFIG_BYTES as u64,
        "config",
        "256 KiB",
    )
    .map_err(|e| {
        if path.exists() {
            e
        } else {
            format!(
                "no {CONFIG_FILE} in {}: the environments, their order and paths are configuration (see docs/gitops.md)",
                root.display()
            )
        }
    })?;
    crate::gitops::config::load(&text).map_err(|d| {
        d.iter()
            .map(|d| d.render(&path.display().to_string()))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// Every file under `root` that belongs to an environment or the shared paths.
pub(super) fn read(root: &Path, config: &Config) -> Result<Vec<SourceFile>, String> {
    let mut out = Vec::new();
    let mut stack = vec![String::new()];
    let mut seen = 0usize;
    while let Some(rel) = stack.pop() {
        let dir = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(&rel)
        };
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let mut names: Vec<_> = entries.filter_map(Result::ok).collect();
        names.sort_by_key(std::fs::DirEntry::file_name);
        for entry in names {
            seen += 1;
            if seen > MAX_FILES {
                return Err(format!(
                    "more than {MAX_FILES} files under {}: point custody at the delivery repository",
                    root.display()
                ));
            }
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if rel.is_empty() && name == ".git" {
                continue;
            }
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            // symlink_metadata: never follow a link.
            let meta = std::fs::symlink_metadata(entry.path())
                .map_err(|e| format!("cannot stat {path}: {e}"))?;
            if meta.is_dir() {
                stack.push(path);
                continue;
            }
            if config.scope(&path).is_none() {
                continue;
            }
            let content = if meta.file_type().is_symlink() {
                let target = std::fs::read_link(entry.path())
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                Content::Symlink(target)
            } else if !meta.is_file() || !crate::gitops::scan::is_yaml(&path) {
                continue;
            } else if meta.len() > MAX_FILE_BYTES {
                Content::TooLarge(meta.len())
            } else {
                Content::from_bytes(crate::engine::files::read_bounded(
                    &entry.path(),
                    MAX_FILE_BYTES,
                    "file",
                    "4 MiB",
                )?)
            };
            out.push(SourceFile { path, content });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}
