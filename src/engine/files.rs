//! Reading operator-supplied files (policies, trust roots, keys, saved evidence, config) with a
//! size bound, so a wrong path (a device, a log, a huge blob) is an error naming the limit
//! rather than an unbounded allocation.

use std::io::Read;
use std::path::Path;

/// Reads a file of at most `max` bytes; larger files are an error naming the limit.
/// `what` names the file's role in messages ("policy", "public key"); `limit` names the setting
/// or size that bounds it.
pub fn read_bounded(path: &Path, max: u64, what: &str, limit: &str) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path)
        .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    let mut buf = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    if u64::try_from(buf.len()).unwrap_or(u64::MAX) > max {
        return Err(format!(
            "{what} {} is larger than the limit of {max} bytes ({limit})",
            path.display()
        ));
    }
    Ok(buf)
}

/// [`read_bounded`] for UTF-8 text.
pub fn read_text_bounded(path: &Path, max: u64, what: &str, limit: &str) -> Result<String, String> {
    String::from_utf8(read_bounded(path, max, what, limit)?)
        .map_err(|_| format!("{what} {} is not UTF-8", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_over_the_bound_is_refused_and_one_at_the_bound_is_read() {
        let dir = std::env::temp_dir().join(format!("custody-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read_bounded(&p, 5, "file", "5 B").unwrap(), b"12345");
        let e = read_bounded(&p, 4, "file", "4 B").unwrap_err();
        assert!(e.contains("larger than the limit of 4 bytes (4 B)"), "{e}");
        let e = read_bounded(&dir.join("missing"), 4, "file", "4 B").unwrap_err();
        assert!(e.starts_with("cannot read file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
