//! Globs for image names (`registry/repository`) and tags.

use regex::Regex;

/// A compiled glob. For images `*` matches within one path segment and `**` across segments;
/// for tags `*` matches anything.
#[derive(Debug, Clone)]
pub struct Glob {
    source: String,
    regex: Regex,
}

impl Glob {
    /// An image glob.
    ///
    /// # Errors
    /// When the pattern is empty or has characters no image name can contain.
    pub fn image(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty()
            || pattern
                .chars()
                .any(|c| c.is_whitespace() || c == '@' || c == '?')
        {
            return Err(format!(
                "image glob {pattern:?} is empty or contains whitespace, '@' or '?'"
            ));
        }
        Self::compile(pattern, true)
    }

    /// A tag glob.
    ///
    /// # Errors
    /// When the pattern is empty or has characters no tag can contain.
    pub fn tag(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty()
            || !pattern
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '*'))
        {
            return Err(format!(
                "tag glob {pattern:?} may contain only letters, digits, '_', '.', '-' and '*'"
            ));
        }
        Self::compile(pattern, false)
    }

    /// A repository path glob (`env/prod/**`, `values/env/*/values.yaml`): relative, `/`-separated,
    /// `*` within a segment and `**` across segments.
    ///
    /// # Errors
    /// When the pattern is empty, absolute, or climbs out with `..`.
    pub fn path(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty()
            || pattern.starts_with('/')
            || pattern.contains('\\')
            || pattern.split('/').any(|seg| seg == ".." || seg == ".")
        {
            return Err(format!(
                "path glob {pattern:?} must be relative to the repository root, '/'-separated, without '.' or '..' segments"
            ));
        }
        Self::compile(pattern, true)
    }

    fn compile(pattern: &str, segments: bool) -> Result<Self, String> {
        let mut re = String::from("^");
        let mut rest = pattern;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("**") {
                re.push_str(".*");
                rest = r;
            } else if let Some(r) = rest.strip_prefix('*') {
                re.push_str(if segments { "[^/]*" } else { ".*" });
                rest = r;
            } else {
                let c = rest.chars().next().unwrap_or_default();
                re.push_str(&regex::escape(&c.to_string()));
                rest = &rest[c.len_utf8()..];
            }
        }
        re.push('$');
        let regex = Regex::new(&re).map_err(|e| format!("glob {pattern:?}: {e}"))?;
        Ok(Self {
            source: pattern.to_owned(),
            regex,
        })
    }

    /// Whether `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }

    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether every name this glob matches is also matched by `other` (a conservative check:
    /// `true` only when certain).
    pub fn covered_by(&self, other: &Glob) -> bool {
        if other.source == self.source || other.source == "**" {
            return true;
        }
        // `prefix/**` covers anything that starts with `prefix/` and has no wildcard before it.
        if let Some(prefix) = other.source.strip_suffix("**")
            && !prefix.contains('*')
        {
            return self.source.starts_with(prefix);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_globs_respect_segments() {
        let g = Glob::image("ghcr.io/acme/*").unwrap();
        assert!(g.matches("ghcr.io/acme/app"));
        assert!(!g.matches("ghcr.io/acme/team/app"));
        let g = Glob::image("ghcr.io/acme/**").unwrap();
        assert!(g.matches("ghcr.io/acme/team/app"));
        assert!(!g.matches("ghcr.io/acmeevil/app"));
        let g = Glob::image("ghcr.io/acme/app").unwrap();
        assert!(g.matches("ghcr.io/acme/app") && !g.matches("ghcr.io/acme/app2"));
        assert!(Glob::image("").is_err() && Glob::image("a b").is_err());
    }

    #[test]
    fn path_globs_are_relative_and_segment_aware() {
        let g = Glob::path("env/prod/**").unwrap();
        assert!(g.matches("env/prod/values.yaml") && g.matches("env/prod/a/b.yaml"));
        assert!(!g.matches("env/production/values.yaml"));
        let g = Glob::path("values/env/*/values.yaml").unwrap();
        assert!(g.matches("values/env/dev/values.yaml"));
        assert!(!g.matches("values/env/dev/x/values.yaml"));
        for bad in ["", "/etc/**", "env/../secrets", "./env", "a\\b"] {
            assert!(Glob::path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tag_globs_and_coverage() {
        let g = Glob::tag("develop-*").unwrap();
        assert!(g.matches("develop-v1.2.3-abc-123") && !g.matches("v1.2.3"));
        assert!(Glob::tag("bad/tag").is_err());
        let narrow = Glob::image("ghcr.io/acme/app").unwrap();
        assert!(narrow.covered_by(&Glob::image("ghcr.io/acme/**").unwrap()));
        assert!(narrow.covered_by(&Glob::image("**").unwrap()));
        assert!(!narrow.covered_by(&Glob::image("ghcr.io/other/**").unwrap()));
        assert!(
            !Glob::image("ghcr.io/*/app")
                .unwrap()
                .covered_by(&Glob::image("ghcr.io/acme/**").unwrap())
        );
    }
}
