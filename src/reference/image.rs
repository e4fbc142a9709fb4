//! OCI image references (`registry/repository[:tag][@digest]`), parsed by the distribution
//! reference grammar.
//!
//! Normalisation follows Docker's: a first component without `.`, `:` or `localhost` is not a
//! registry (`alpine` → `docker.io/library/alpine`). A reference may carry both a tag and a digest
//! (`repo:1.2.3@sha256:…`); the digest is what is verified, the tag is kept for the GitOps rules.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};
use thiserror::Error;

use super::{Digest, DigestError};

/// Registry Docker Hub references resolve to.
pub const DOCKER_HUB: &str = "docker.io";
/// Longest reference custody parses (Docker caps the name at 255; tags add 128, digests 135).
pub const MAX_REFERENCE_LEN: usize = 1024;

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// Occurs for an empty string.
    #[error("image reference is empty")]
    Empty,
    /// Occurs past [`MAX_REFERENCE_LEN`].
    #[error("image reference is {found} characters long, more than the limit of {max}")]
    TooLong {
        /// The limit.
        max: usize,
        /// The length found.
        found: usize,
    },
    /// Occurs when the registry part is not a host name or address with an optional port.
    #[error("invalid registry {found:?} in image reference")]
    BadRegistry {
        /// The registry part.
        found: String,
    },
    /// Occurs when the repository path breaks the grammar (lower-case components separated by
    /// `/`, each alphanumeric runs joined by `.`, `_`, `__` or dashes).
    #[error("invalid repository {found:?}: {why}")]
    BadRepository {
        /// The repository part.
        found: String,
        /// What is wrong.
        why: &'static str,
    },
    /// Occurs when the tag is not `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[error("invalid tag {found:?}: a tag is 1-128 of [A-Za-z0-9_.-], not starting with . or -")]
    BadTag {
        /// The tag.
        found: String,
    },
    /// Occurs when the digest part is malformed.
    #[error("invalid digest in image reference: {0}")]
    BadDigest(#[from] DigestError),
}

impl ImageRef {
    /// The registry host (and port), e.g. `ghcr.io`, `127.0.0.1:5000`, `docker.io`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path, e.g. `acme/app` (`library/alpine` on Docker Hub).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference is digest-pinned.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// Whether the reference names a digest (`repo@sha256:…` or `repo:tag@sha256:…`).
    pub fn is_digest_pinned(&self) -> bool {
        self.digest.is_some()
    }

    /// `registry/repository`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository at `digest` (the tag dropped).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    /// The same repository at `tag` (no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        check_tag(tag)?;
        Ok(Self {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(tag.to_owned()),
            digest: None,
        })
    }

    /// Another repository on the same or another registry, e.g. a `COSIGN_REPOSITORY` override
    /// given as `registry/repo`.
    pub fn in_repository(&self, name: &str) -> Result<Self, ReferenceError> {
        let other: ImageRef = name.parse()?;
        Ok(Self {
            registry: other.registry,
            repository: other.repository,
            tag: None,
            digest: self.digest.clone(),
        })
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if s.len() > MAX_REFERENCE_LEN {
            return Err(ReferenceError::TooLong {
                max: MAX_REFERENCE_LEN,
                found: s.len(),
            });
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => (rest, Some(d.parse::<Digest>()?)),
            None => (s, None),
        };
        // A tag follows the last ':' that comes after the last '/' (a ':' before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest.get(last_slash..).and_then(|tail| tail.rfind(':')) {
            Some(i) => {
                let at = last_slash + i;
                (
                    rest.get(..at).unwrap_or_default(),
                    rest.get(at + 1..).map(str::to_owned),
                )
            }
            None => (rest, None),
        };
        if let Some(t) = &tag {
            check_tag(t)?;
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path)) if is_registry(first) => (first.to_owned(), path.to_owned()),
            _ => (DOCKER_HUB.to_owned(), name.to_owned()),
        };
        check_registry(&registry)?;
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        check_repository(&repository)?;
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

fn is_registry(first: &str) -> bool {
    first.contains('.')
        || first.contains(':')
        || first == "localhost"
        || first.chars().any(|c| c.is_ascii_uppercase())
}

fn check_registry(registry: &str) -> Result<(), ReferenceError> {
    let bad = || ReferenceError::BadRegistry {
        found: registry.chars().take(100).collect(),
    };
    let (host, port) = if let Some(v6) = registry.strip_prefix('[') {
        let (addr, rest) = v6.split_once(']').ok_or_else(bad)?;
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(bad());
        }
        (None, rest.strip_prefix(':'))
    } else {
        match registry.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        let ok = !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !ok {
            return Err(bad());
        }
    }
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(bad());
    }
    Ok(())
}

fn check_repository(repo: &str) -> Result<(), ReferenceError> {
    let bad = |why| ReferenceError::BadRepository {
        found: repo.chars().take(100).collect(),
        why,
    };
    if repo.is_empty() {
        return Err(bad("it is empty"));
    }
    if repo.len() > 255 {
        return Err(bad("it is longer than 255 characters"));
    }
    for component in repo.split('/') {
        if component.is_empty() {
            return Err(bad("it has an empty path component"));
        }
        let bytes = component.as_bytes();
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if !bytes.first().copied().is_some_and(alnum) || !bytes.last().copied().is_some_and(alnum) {
            return Err(bad(
                "each path component must start and end with a lower-case letter or digit",
            ));
        }
        // Separators between alphanumeric runs: '.', '_', '__', or one or more '-'.
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes.get(i).copied().unwrap_or_default();
            if alnum(b) {
                i += 1;
                continue;
            }
            let start = i;
            while bytes.get(i).is_some_and(|b| !alnum(*b)) {
                i += 1;
            }
            let sep = component.get(start..i).unwrap_or_default();
            let ok = sep == "." || sep == "_" || sep == "__" || sep.chars().all(|c| c == '-');
            if !ok {
                return Err(bad(
                    "path components may contain only lower-case letters, digits and the separators . _ __ -",
                ));
            }
        }
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), ReferenceError> {
    let bytes = tag.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 128
        && bytes
            .first()
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ReferenceError::BadTag {
            found: tag.chars().take(140).collect(),
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl<'de> serde::Deserialize<'de> for ImageRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for ImageRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";

    #[test]
    fn normalises_docker_hub_and_keeps_registries_with_ports() {
        let r: ImageRef = "alpine".parse().unwrap();
        assert_eq!(r.to_string(), "docker.io/library/alpine");
        let r: ImageRef = "acme/app:1.2.3".parse().unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("docker.io", "acme/app", Some("1.2.3"))
        );
        let r: ImageRef = format!("127.0.0.1:5000/team/app:v1@{D}").parse().unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "team/app");
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.digest().unwrap().to_string(), D);
        assert!(r.is_digest_pinned());
        let r: ImageRef = format!("localhost/app@{D}").parse().unwrap();
        assert_eq!((r.registry(), r.tag()), ("localhost", None));
        let r: ImageRef = "[::1]:5000/app".parse().unwrap();
        assert_eq!(r.registry(), "[::1]:5000");
    }

    #[test]
    fn rejects_malformed_references_with_the_part_named() {
        assert_eq!("".parse::<ImageRef>(), Err(ReferenceError::Empty));
        assert!(matches!(
            "ghcr.io/Acme/app".parse::<ImageRef>(),
            Err(ReferenceError::BadRepository { .. })
        ));
        assert!(matches!(
            "ghcr.io/acme//app".parse::<ImageRef>(),
            Err(ReferenceError::BadRepository { .. })
        ));
        assert!(matches!(
            "ghcr.io/acme/app-".parse::<ImageRef>(),
            Err(ReferenceError::BadRepository { .. })
        ));
        assert!(matches!(
            "ghcr.io/a..b".parse::<ImageRef>(),
            Err(ReferenceError::BadRepository { .. })
        ));
        assert!(matches!(
            "ghcr.io/app:-bad".parse::<ImageRef>(),
            Err(ReferenceError::BadTag { .. })
        ));
        assert!(matches!(
            "ghcr.io/app:".parse::<ImageRef>(),
            Err(ReferenceError::BadTag { .. })
        ));
        assert!(matches!(
            "ghcr.io/app@sha256:zz".parse::<ImageRef>(),
            Err(ReferenceError::BadDigest(_))
        ));
        assert!(matches!(
            "bad_host.io/app".parse::<ImageRef>(),
            Err(ReferenceError::BadRegistry { .. })
        ));
        assert!(matches!(
            "host:99a/app".parse::<ImageRef>(),
            Err(ReferenceError::BadRegistry { .. })
        ));
        let long = format!("ghcr.io/{}", "a".repeat(2000));
        assert!(matches!(
            long.parse::<ImageRef>(),
            Err(ReferenceError::TooLong { .. })
        ));
        assert!(matches!(
            format!("ghcr.io/app:{}", "t".repeat(129)).parse::<ImageRef>(),
            Err(ReferenceError::BadTag { .. })
        ));
    }

    #[test]
    fn separators_follow_the_grammar() {
        for ok in [
            "ghcr.io/a.b",
            "ghcr.io/a_b",
            "ghcr.io/a__b",
            "ghcr.io/a---b",
            "ghcr.io/a/b/c",
        ] {
            assert!(ok.parse::<ImageRef>().is_ok(), "{ok}");
        }
        for bad in [
            "ghcr.io/a___b",
            "ghcr.io/a.-b",
            "ghcr.io/a_-b",
            "ghcr.io/.a",
        ] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad}");
        }
    }
}
