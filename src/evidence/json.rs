//! A pre-parse scan that bounds JSON nesting before serde sees the document.

use super::EvidenceError;

/// Rejects JSON nested deeper than `max_depth` arrays/objects.
///
/// serde_json has its own recursion limit (128) but reports it as a generic syntax error; this
/// scan runs first so the rejection names the limit. It is linear, allocation-free and ignores
/// brackets inside strings (including escaped quotes).
///
/// # Errors
/// [`EvidenceError::LimitExceeded`] with `limit = "max_json_depth"`.
pub fn check_json_depth(json: &[u8], max_depth: usize) -> Result<(), EvidenceError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(super::limit(
                        "JSON nesting depth",
                        "max_json_depth",
                        u64::try_from(max_depth).unwrap_or(u64::MAX),
                        depth,
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_at_limit_passes_and_one_more_fails() {
        let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(check_json_depth(ok.as_bytes(), 64).is_ok());
        let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert!(matches!(
            check_json_depth(deep.as_bytes(), 64),
            Err(EvidenceError::LimitExceeded {
                limit: "max_json_depth",
                found: 65,
                ..
            })
        ));
    }

    #[test]
    fn brackets_in_strings_do_not_count() {
        let s = format!(r#"{{"a":"{}\"{}"}}"#, "[".repeat(100), "{".repeat(100));
        assert!(check_json_depth(s.as_bytes(), 2).is_ok());
    }
}
