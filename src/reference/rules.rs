//! The GitOps reference rules: how a deployed image may be referenced.
//!
//! From the delivery policy custody serves: first-party images are digest-pinned
//! (`repo@sha256:…` or `repo:<tag>@sha256:…`) and floating or branch-like tags are refused even
//! next to a digest; listed third-party images may carry a semver tag with the digest.

use serde::Serialize;

use super::{Glob, ImageRef};

/// The tags refused by default, even next to a digest.
pub const DEFAULT_DENIED_TAGS: &[&str] = &[
    "latest",
    "main",
    "master",
    "develop",
    "develop-*",
    "staging-*",
    "production-*",
];

/// Compiled reference rules.
#[derive(Debug, Clone)]
pub struct ReferenceRules {
    /// Require a digest on every reference.
    pub require_digest: bool,
    /// First-party image globs.
    pub first_party: Vec<Glob>,
    /// Denied tag globs.
    pub denied_tags: Vec<Glob>,
    /// Third-party image globs and whether a semver tag is allowed with the digest.
    pub third_party: Vec<(Vec<Glob>, bool)>,
}

/// A broken reference rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferenceViolation {
    /// `reference-digest`, `reference-floating-tag` or `reference-tag`.
    pub code: &'static str,
    /// What the rule requires.
    pub expected: String,
    /// What the reference has.
    pub found: String,
}

fn is_semver(tag: &str) -> bool {
    let t = tag.strip_prefix('v').unwrap_or(tag);
    let core = t.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

impl ReferenceRules {
    /// Every rule `reference` breaks (empty: it complies).
    pub fn check(&self, reference: &ImageRef) -> Vec<ReferenceViolation> {
        let name = reference.name();
        let mut out = Vec::new();
        if self.require_digest && !reference.is_digest_pinned() {
            out.push(ReferenceViolation {
                code: "reference-digest",
                expected: "a digest-pinned reference (repo@sha256:… or repo:tag@sha256:…)".into(),
                found: reference.to_string(),
            });
        }
        let Some(tag) = reference.tag() else {
            return out;
        };
        let third_party = self
            .third_party
            .iter()
            .find(|(globs, _)| globs.iter().any(|g| g.matches(&name)));
        let first_party = self.first_party.iter().any(|g| g.matches(&name));
        match third_party {
            Some((_, allow_semver)) if !first_party => {
                if !(*allow_semver && is_semver(tag)) {
                    out.push(ReferenceViolation {
                        code: "reference-tag",
                        expected: if *allow_semver {
                            "third-party image: no tag, or a semver tag (1.2.3) with the digest"
                                .into()
                        } else {
                            "third-party image: no tag, only the digest".into()
                        },
                        found: format!("tag {tag}"),
                    });
                }
            }
            _ => {
                if let Some(g) = self.denied_tags.iter().find(|g| g.matches(tag)) {
                    out.push(ReferenceViolation {
                        code: "reference-floating-tag",
                        expected: format!(
                            "no floating or branch-like tag (denied: {})",
                            g.source()
                        ),
                        found: format!("tag {tag}"),
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";

    fn rules() -> ReferenceRules {
        ReferenceRules {
            require_digest: true,
            first_party: vec![Glob::image("ghcr.io/acme/**").unwrap()],
            denied_tags: DEFAULT_DENIED_TAGS
                .iter()
                .map(|t| Glob::tag(t).unwrap())
                .collect(),
            third_party: vec![(vec![Glob::image("docker.io/library/**").unwrap()], true)],
        }
    }

    fn check(r: &str) -> Vec<&'static str> {
        rules()
            .check(&r.parse().unwrap())
            .iter()
            .map(|v| v.code)
            .collect()
    }

    #[test]
    fn first_party_digest_pinned_passes_with_or_without_a_release_tag() {
        assert!(check(&format!("ghcr.io/acme/app@{D}")).is_empty());
        assert!(check(&format!("ghcr.io/acme/app:v1.2.3@{D}")).is_empty());
    }

    #[test]
    fn floating_and_branch_tags_fail_even_with_a_digest() {
        assert_eq!(
            check(&format!("ghcr.io/acme/app:latest@{D}")),
            vec!["reference-floating-tag"]
        );
        assert_eq!(
            check(&format!(
                "ghcr.io/acme/app:develop-v1.2.3-abc-1700000000@{D}"
            )),
            vec!["reference-floating-tag"]
        );
        assert_eq!(
            check("ghcr.io/acme/app:main"),
            vec!["reference-digest", "reference-floating-tag"]
        );
        assert_eq!(check("ghcr.io/acme/app:v1.2.3"), vec!["reference-digest"]);
    }

    #[test]
    fn third_party_semver_with_digest_only() {
        assert!(check(&format!("nginx:1.27.0@{D}")).is_empty());
        assert_eq!(check(&format!("nginx:stable@{D}")), vec!["reference-tag"]);
        assert_eq!(check("nginx:1.27.0"), vec!["reference-digest"]);
        assert!(is_semver("v1.2.3-rc.1+build.5") && !is_semver("1.2") && !is_semver("1.2.x"));
    }
}
