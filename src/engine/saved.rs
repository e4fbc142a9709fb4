//! Evidence saved to a directory (`custody evidence --save DIR`) and read back, so policy
//! authors can test policies offline (`custody policy test`).
//!
//! Layout: `DIR/evidence.json` (the image and each item's metadata and annotations) and one file
//! per blob under `DIR/blobs/`. Blobs are checked against their digests when read back.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::files::read_bounded;
use crate::evidence::oci::digest_of;
use crate::reference::ImageRef;
use crate::registry::discovery::{Discovery, EvidenceItem};

/// Largest blob or index read back.
const MAX_FILE: u64 = 16 << 20;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SavedEvidence {
    image: ImageRef,
    items: Vec<SavedItem>,
}

#[derive(Serialize, Deserialize)]
struct SavedItem {
    #[serde(flatten)]
    item: EvidenceItem,
    file: String,
}

/// Writes a discovery to `dir`.
///
/// # Errors
/// File-system errors, with the path.
pub fn save(dir: &Path, d: &Discovery) -> Result<(), String> {
    let io = |e: std::io::Error| format!("cannot write {}: {e}", dir.display());
    std::fs::create_dir_all(dir.join("blobs")).map_err(io)?;
    let mut items = Vec::new();
    for item in &d.items {
        let file = format!(
            "blobs/{}-{}",
            item.digest.algorithm().name(),
            item.digest.hex()
        );
        std::fs::write(dir.join(&file), &item.content).map_err(io)?;
        items.push(SavedItem {
            item: item.clone(),
            file,
        });
    }
    let index = SavedEvidence {
        image: d.image.clone(),
        items,
    };
    std::fs::write(
        dir.join("evidence.json"),
        serde_json::to_vec_pretty(&index).map_err(|e| e.to_string())?,
    )
    .map_err(io)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    read_bounded(path, MAX_FILE, "saved evidence file", "16 MiB")
}

/// Reads a saved evidence directory back: the image and the items, blobs digest-checked.
///
/// # Errors
/// Missing or malformed files, blobs that escape the directory or do not match their digest.
pub fn load(dir: &Path) -> Result<(ImageRef, Vec<EvidenceItem>), String> {
    let index: SavedEvidence = serde_json::from_slice(&read(&dir.join("evidence.json"))?)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut items = Vec::new();
    for s in index.items {
        if s.file.contains("..") || s.file.starts_with('/') {
            return Err(format!(
                "{}: evidence file {:?} escapes the directory",
                dir.display(),
                s.file
            ));
        }
        let mut item = s.item;
        item.content = read(&dir.join(&s.file))?;
        let computed = digest_of(item.digest.algorithm(), &item.content);
        if computed != item.digest {
            return Err(format!(
                "{}: {} does not match its digest {} (computed {computed})",
                dir.display(),
                s.file,
                item.digest
            ));
        }
        items.push(item);
    }
    Ok((index.image, items))
}
