//! Release tags are re-tags, never rebuilds: every environment tag of one version must name one
//! digest.
//!
//! Delivery teams build an image once from `develop` and tag it `develop-vX.Y.Z-<sha>-<ts>`; a
//! release re-tags that same digest as `staging-vX.Y.Z-…` and `production-vX.Y.Z-…`. Rebuilding
//! from the release tag gives production other bytes than the ones that were tested, under a tag
//! that looks right. This is the pure half of `custody gitops retag-check`: [`tags_for_version`]
//! selects the tags of a version from a repository's tag list, and [`check`] judges the digests
//! they resolved to. Listing and resolving are the caller's (`cli`, through
//! [`crate::registry`]); nothing here does I/O.
//!
//! Selection errs on the side of including a tag. A tag belongs to version `vX.Y.Z` and prefix
//! `P` when it is `P-vX.Y.Z` or starts with `P-vX.Y.Z-`, so `v1.2.3` never takes `v1.2.30`, but
//! it does take `P-v1.2.3-rc.1-…`: the suffix after the version is free-form, and guessing which
//! suffixes are pre-releases could drop a rebuilt production tag from the check (a silent pass).
//! A tag taken by mistake can only make the check fail, and the message names it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use thiserror::Error;

use crate::reference::Digest;

/// The environment prefixes checked when none are given, in promotion order.
pub const DEFAULT_PREFIXES: [&str; 3] = ["develop", "staging", "production"];

/// Media type of the JSON report ([`RetagReport::to_json`]).
pub const MEDIA_TYPE: &str = "application/vnd.custody.retag-check.v1+json";

/// Longest tag the distribution spec allows; `PREFIX-VERSION` must fit in it.
const MAX_TAG_LEN: usize = 128;

/// Why the inputs of a retag check are unusable (exit 2 in the CLI: the check could not run).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RetagInputError {
    /// Occurs when the version is not `vMAJOR.MINOR.PATCH[-PRERELEASE]`.
    #[error(
        "version {found:?} is not vMAJOR.MINOR.PATCH with an optional -PRERELEASE (e.g. v1.2.3, v1.2.3-rc.1): {why}"
    )]
    BadVersion {
        /// The version given (at most 140 characters of it).
        found: String,
        /// What is wrong.
        why: &'static str,
    },
    /// Occurs when a prefix is not a tag fragment (`[A-Za-z0-9_][A-Za-z0-9_.-]*`) or
    /// `PREFIX-VERSION` is longer than a tag may be.
    #[error("prefix {found:?} {why}")]
    BadPrefix {
        /// The prefix given (at most 140 characters of it).
        found: String,
        /// What is wrong.
        why: String,
    },
    /// Occurs when a required prefix is not one of the prefixes checked.
    #[error(
        "required prefix {required:?} is not one of the prefixes checked ({prefixes}); add --prefix {required}"
    )]
    UnknownRequired {
        /// The required prefix.
        required: String,
        /// The prefixes checked, comma-separated.
        prefixes: String,
    },
}

/// A release version `vMAJOR.MINOR.PATCH[-PRERELEASE]` (semantic versioning with a `v`, no
/// build metadata since `+` cannot appear in a tag). Checked once, at construction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReleaseVersion(String);

impl ReleaseVersion {
    /// The version as given, e.g. `v1.2.3-rc.1`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ReleaseVersion {
    type Err = RetagInputError;

    /// # Errors
    /// [`RetagInputError::BadVersion`] unless `s` is `v` + three dot-separated numbers without
    /// leading zeros, optionally followed by `-` and dot-separated pre-release identifiers
    /// (`[0-9A-Za-z-]+`, numeric ones without leading zeros); at most 128 characters.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why| RetagInputError::BadVersion {
            found: s.chars().take(140).collect(),
            why,
        };
        if s.len() > MAX_TAG_LEN {
            return Err(bad("it is longer than a tag may be (128 characters)"));
        }
        let rest = s
            .strip_prefix('v')
            .ok_or_else(|| bad("it must start with v"))?;
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (rest, None),
        };
        let numbers: Vec<&str> = core.split('.').collect();
        if numbers.len() != 3 {
            return Err(bad("it needs exactly three numbers MAJOR.MINOR.PATCH"));
        }
        if !numbers.iter().all(|n| is_number(n)) {
            return Err(bad(
                "MAJOR, MINOR and PATCH must be decimal numbers without leading zeros",
            ));
        }
        if let Some(pre) = pre {
            let ok = pre.split('.').all(|id| {
                !id.is_empty()
                    && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && (!id.bytes().all(|b| b.is_ascii_digit()) || is_number(id))
            });
            if !ok {
                return Err(bad(
                    "the pre-release must be dot-separated identifiers of [0-9A-Za-z-], numbers without leading zeros",
                ));
            }
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for ReleaseVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

/// What to check: a repository, a version, the environment prefixes and which of them must
/// have a tag. Built by [`RetagRequest::new`], which validates every part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetagRequest {
    repository: String,
    version: ReleaseVersion,
    prefixes: Vec<String>,
    required: Vec<String>,
}

impl RetagRequest {
    /// Validates the inputs. No prefixes means [`DEFAULT_PREFIXES`]; no required prefixes means
    /// all of them. Duplicates are dropped, order is kept (it is the order of the report).
    /// `repository` is only reported (`registry/repository`).
    ///
    /// # Errors
    /// The first of: [`RetagInputError::BadVersion`], [`RetagInputError::BadPrefix`] (a prefix
    /// that is not a tag fragment, or with which `PREFIX-VERSION` exceeds 128 characters),
    /// [`RetagInputError::UnknownRequired`].
    pub fn new(
        repository: &str,
        version: &str,
        prefixes: &[String],
        required: &[String],
    ) -> Result<Self, RetagInputError> {
        let version: ReleaseVersion = version.parse()?;
        let mut checked: Vec<String> = Vec::new();
        let given: Vec<String> = if prefixes.is_empty() {
            DEFAULT_PREFIXES.iter().map(|p| (*p).to_owned()).collect()
        } else {
            prefixes.to_vec()
        };
        for p in given {
            check_prefix(&p, &version)?;
            if !checked.contains(&p) {
                checked.push(p);
            }
        }
        let mut must: Vec<String> = Vec::new();
        for r in required {
            if !checked.contains(r) {
                return Err(RetagInputError::UnknownRequired {
                    required: r.chars().take(140).collect(),
                    prefixes: checked.join(", "),
                });
            }
            if !must.contains(r) {
                must.push(r.clone());
            }
        }
        if must.is_empty() {
            must.clone_from(&checked);
        } else {
            // Report required prefixes in the order they are checked.
            must = checked
                .iter()
                .filter(|p| must.contains(p))
                .cloned()
                .collect();
        }
        Ok(Self {
            repository: repository.to_owned(),
            version,
            prefixes: checked,
            required: must,
        })
    }

    /// The repository, as reported.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The version.
    pub fn version(&self) -> &ReleaseVersion {
        &self.version
    }

    /// The prefixes checked, in order.
    pub fn prefixes(&self) -> &[String] {
        &self.prefixes
    }

    /// The prefixes that must have a tag of the version, in order.
    pub fn required(&self) -> &[String] {
        &self.required
    }
}

fn check_prefix(prefix: &str, version: &ReleaseVersion) -> Result<(), RetagInputError> {
    let bad = |why: String| RetagInputError::BadPrefix {
        found: prefix.chars().take(140).collect(),
        why,
    };
    let bytes = prefix.as_bytes();
    let fragment = bytes
        .first()
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !fragment {
        return Err(bad(
            "is not the start of a tag: 1 or more of [A-Za-z0-9_.-], not starting with . or -"
                .into(),
        ));
    }
    let len = prefix.len() + 1 + version.as_str().len();
    if len > MAX_TAG_LEN {
        return Err(bad(format!(
            "makes {prefix}-{version} {len} characters long, more than a tag may be ({MAX_TAG_LEN})"
        )));
    }
    Ok(())
}

/// Whether `tag` is a tag of `version` under `prefix`: exactly `PREFIX-VERSION`, or starting
/// with `PREFIX-VERSION-`.
pub fn is_tag_of(tag: &str, version: &ReleaseVersion, prefix: &str) -> bool {
    tag.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|rest| rest.strip_prefix(version.as_str()))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
}

/// The tags of `all` that belong to `version`, by prefix ([`is_tag_of`]).
///
/// Every prefix is a key, with an empty list when it has no tag of the version; each list is
/// sorted and free of duplicates. A tag matching two prefixes (possible only with prefixes such
/// as `a` and `a-v1.2.3`) is listed under both.
pub fn tags_for_version(
    all: &[String],
    version: &ReleaseVersion,
    prefixes: &[String],
) -> BTreeMap<String, Vec<String>> {
    prefixes
        .iter()
        .map(|p| {
            let mut tags: Vec<String> = all
                .iter()
                .filter(|t| is_tag_of(t, version, p))
                .cloned()
                .collect();
            tags.sort();
            tags.dedup();
            (p.clone(), tags)
        })
        .collect()
}

/// Judges the tags of a version: consistent when there is at least one, every required prefix
/// has one, and all name the same digest.
///
/// `resolved` holds tags and the digests the registry resolved them to; tags that are not of
/// the request's version under one of its prefixes are ignored. The caller must have resolved
/// every tag of the version (a tag it left out is not judged).
pub fn check(request: &RetagRequest, resolved: &[(String, Digest)]) -> RetagReport {
    let names: Vec<String> = resolved.iter().map(|(t, _)| t.clone()).collect();
    let selected = tags_for_version(&names, &request.version, &request.prefixes);
    let digest_of = |tag: &str| {
        resolved
            .iter()
            .find(|(t, _)| t == tag)
            .map(|(_, d)| d.clone())
    };
    let mut tags = Vec::new();
    for prefix in &request.prefixes {
        for tag in selected.get(prefix).into_iter().flatten() {
            if let Some(digest) = digest_of(tag) {
                tags.push(ResolvedTag {
                    tag: tag.clone(),
                    prefix: prefix.clone(),
                    digest,
                });
            }
        }
    }
    // Distinct digests in order of first appearance (promotion order), each with its tags.
    let mut groups: Vec<(Digest, Vec<&str>)> = Vec::new();
    for t in &tags {
        match groups.iter_mut().find(|(d, _)| d == &t.digest) {
            Some((_, names)) => {
                if !names.contains(&t.tag.as_str()) {
                    names.push(&t.tag);
                }
            }
            None => groups.push((t.digest.clone(), vec![&t.tag])),
        }
    }
    let version = &request.version;
    let mut problems = Vec::new();
    if tags.is_empty() {
        let first = request.prefixes.first().map_or("develop", String::as_str);
        problems.push(Problem {
            code: ProblemCode::RetagNoTags,
            message: format!(
                "{} has no tag of {version} under {} (expected e.g. {first}-{version} or {first}-{version}-<sha>-<ts>)",
                request.repository,
                request.prefixes.join(", "),
            ),
        });
    } else {
        let existing: Vec<&str> = tags.iter().map(|t| t.tag.as_str()).collect();
        for prefix in &request.required {
            if selected.get(prefix).is_none_or(Vec::is_empty) {
                problems.push(Problem {
                    code: ProblemCode::RetagMissingEnvironment,
                    message: format!(
                        "no {prefix} tag of {version} ({prefix}-{version} or {prefix}-{version}-…); the tags of {version} are: {}",
                        existing.join(", ")
                    ),
                });
            }
        }
    }
    if groups.len() > 1 {
        let listed: Vec<String> = groups
            .iter()
            .map(|(d, names)| format!("{d} ← {}", names.join(", ")))
            .collect();
        problems.push(Problem {
            code: ProblemCode::RetagDigestMismatch,
            message: format!(
                "the tags of {version} name {} digests, a release must re-tag one build: {}",
                groups.len(),
                listed.join("; ")
            ),
        });
    }
    RetagReport {
        media_type: MEDIA_TYPE,
        repository: request.repository.clone(),
        version: version.as_str().to_owned(),
        prefixes: request.prefixes.clone(),
        required: request.required.clone(),
        consistent: problems.is_empty(),
        digests: groups.into_iter().map(|(d, _)| d).collect(),
        tags,
        problems,
    }
}

/// The outcome of a retag check; JSON (camelCase) with media type [`MEDIA_TYPE`]:
/// `mediaType`, `repository`, `version`, `prefixes`, `required`, `tags[]` {`tag`, `prefix`,
/// `digest`} (by prefix order, then tag), `digests[]` (distinct, in order of first appearance),
/// `consistent`, `problems[]` {`code`, `message`}.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetagReport {
    /// [`MEDIA_TYPE`].
    pub media_type: &'static str,
    /// `registry/repository`.
    pub repository: String,
    /// The version checked.
    pub version: String,
    /// The prefixes checked.
    pub prefixes: Vec<String>,
    /// The prefixes that had to have a tag.
    pub required: Vec<String>,
    /// Every tag of the version with its prefix and digest.
    pub tags: Vec<ResolvedTag>,
    /// The distinct digests the tags name (one when consistent).
    pub digests: Vec<Digest>,
    /// True when there are no problems.
    pub consistent: bool,
    /// What is wrong, if anything.
    pub problems: Vec<Problem>,
}

/// One tag of the version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedTag {
    /// The tag.
    pub tag: String,
    /// The prefix it belongs to.
    pub prefix: String,
    /// The digest the registry resolved it to.
    pub digest: Digest,
}

/// One finding of a retag check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// The stable code.
    pub code: ProblemCode,
    /// What was found, naming tags and digests.
    pub message: String,
}

/// Stable, kebab-case codes of retag findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ProblemCode {
    /// `retag-digest-mismatch`.
    RetagDigestMismatch,
    /// `retag-missing-environment`.
    RetagMissingEnvironment,
    /// `retag-no-tags`.
    RetagNoTags,
}

impl ProblemCode {
    /// Every code.
    pub const ALL: [ProblemCode; 3] = [
        ProblemCode::RetagDigestMismatch,
        ProblemCode::RetagMissingEnvironment,
        ProblemCode::RetagNoTags,
    ];

    /// The code as written in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemCode::RetagDigestMismatch => "retag-digest-mismatch",
            ProblemCode::RetagMissingEnvironment => "retag-missing-environment",
            ProblemCode::RetagNoTags => "retag-no-tags",
        }
    }

    /// What the code means.
    pub fn description(self) -> &'static str {
        match self {
            ProblemCode::RetagDigestMismatch => {
                "the tags of one version name more than one digest: an environment was rebuilt instead of re-tagged"
            }
            ProblemCode::RetagMissingEnvironment => {
                "a required environment prefix has no tag of the version"
            }
            ProblemCode::RetagNoTags => "no environment prefix has a tag of the version",
        }
    }
}

impl RetagReport {
    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The report as text: a headline, one line per tag, one line per problem.
    pub fn to_text(&self) -> String {
        let mut s = if self.consistent {
            format!(
                "retag-check {} {}: consistent, {} tag(s) name {}\n",
                self.repository,
                self.version,
                self.tags.len(),
                self.digests
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            )
        } else {
            format!(
                "retag-check {} {}: inconsistent ({} problem(s))\n",
                self.repository,
                self.version,
                self.problems.len()
            )
        };
        let prefix_width = self.tags.iter().map(|t| t.prefix.len()).max().unwrap_or(0);
        let tag_width = self.tags.iter().map(|t| t.tag.len()).max().unwrap_or(0);
        for t in &self.tags {
            s.push_str(&format!(
                "  {:<prefix_width$}  {:<tag_width$}  {}\n",
                t.prefix, t.tag, t.digest
            ));
        }
        for p in &self.problems {
            s.push_str(&format!("  {}: {}\n", p.code.as_str(), p.message));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> ReleaseVersion {
        s.parse().unwrap()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn d(c: char) -> Digest {
        format!("sha256:{}", c.to_string().repeat(64))
            .parse()
            .unwrap()
    }

    fn request(prefixes: &[&str], required: &[&str]) -> RetagRequest {
        RetagRequest::new(
            "r.example/acme/app",
            "v1.2.3",
            &strings(prefixes),
            &strings(required),
        )
        .unwrap()
    }

    fn resolved(pairs: &[(&str, char)]) -> Vec<(String, Digest)> {
        pairs
            .iter()
            .map(|(t, c)| ((*t).to_owned(), d(*c)))
            .collect()
    }

    fn codes(r: &RetagReport) -> Vec<&'static str> {
        r.problems.iter().map(|p| p.code.as_str()).collect()
    }

    const DEV: &str = "develop-v1.2.3-abc1234-1700000000";
    const STG: &str = "staging-v1.2.3-abc1234-1700000000";
    const PRD: &str = "production-v1.2.3-abc1234-1700000000";

    // ---------------------------------------------------------------- versions ----

    #[test]
    fn versions_accepted() {
        for ok in [
            "v0.0.0",
            "v1.2.3",
            "v10.20.30",
            "v1.2.3-rc.1",
            "v1.2.3-0",
            "v1.2.3-alpha-beta.7",
            "v1.2.3-x.0.y",
        ] {
            assert_eq!(v(ok).as_str(), ok);
        }
    }

    #[test]
    fn versions_refused() {
        for bad in [
            "",
            "1.2.3",
            "V1.2.3",
            "v1.2",
            "v1.2.3.4",
            "v01.2.3",
            "v1.02.3",
            "v1.2.03",
            "v1..3",
            "v1.2.x",
            "v1.2.3-",
            "v1.2.3-rc..1",
            "v1.2.3-01",
            "v1.2.3-rc_1",
            "v1.2.3+build",
            "v1.2.3 ",
            "v-1.2.3",
            "v١.2.3",
        ] {
            assert!(
                matches!(
                    bad.parse::<ReleaseVersion>(),
                    Err(RetagInputError::BadVersion { .. })
                ),
                "{bad:?}"
            );
        }
        let long = format!("v1.2.3-{}", "a".repeat(122));
        assert_eq!(long.len(), 129);
        assert!(long.parse::<ReleaseVersion>().is_err());
        assert!(long[..128].parse::<ReleaseVersion>().is_ok());
    }

    // ---------------------------------------------------------------- requests ----

    #[test]
    fn request_defaults_to_three_prefixes_all_required() {
        let r = request(&[], &[]);
        assert_eq!(r.prefixes(), ["develop", "staging", "production"]);
        assert_eq!(r.required(), r.prefixes());
        let r = request(&["prod", "dev", "prod"], &["prod", "dev", "prod"]);
        assert_eq!(r.prefixes(), ["prod", "dev"]);
        assert_eq!(r.required(), ["prod", "dev"]);
        let r = request(&[], &["production"]);
        assert_eq!(r.required(), ["production"]);
    }

    #[test]
    fn request_refuses_bad_prefixes_and_unknown_required() {
        for bad in ["", "-x", ".x", "a/b", "a:b", "a b", "é"] {
            let e = RetagRequest::new("r", "v1.2.3", &strings(&[bad]), &[]).unwrap_err();
            assert!(
                matches!(e, RetagInputError::BadPrefix { .. }),
                "{bad:?}: {e}"
            );
        }
        let long = "p".repeat(MAX_TAG_LEN - "-v1.2.3".len());
        assert!(RetagRequest::new("r", "v1.2.3", std::slice::from_ref(&long), &[]).is_ok());
        let e = RetagRequest::new("r", "v1.2.3", &[format!("{long}p")], &[]).unwrap_err();
        assert!(e.to_string().contains("129 characters"), "{e}");
        let e = RetagRequest::new("r", "v1.2.3", &[], &strings(&["prod"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "required prefix \"prod\" is not one of the prefixes checked (develop, staging, production); add --prefix prod"
        );
        assert!(RetagRequest::new("r", "1.2.3", &[], &[]).is_err());
    }

    // ---------------------------------------------------------------- selection ----

    #[test]
    fn selection_takes_exact_and_dash_suffixed_tags() {
        let all = strings(&[
            DEV,
            STG,
            PRD,
            "production-v1.2.3",
            "staging-v1.2.3-rc.1-abc1234-1",
        ]);
        let s = tags_for_version(&all, &v("v1.2.3"), &strings(&DEFAULT_PREFIXES));
        assert_eq!(s["develop"], [DEV]);
        assert_eq!(s["staging"], [STG, "staging-v1.2.3-rc.1-abc1234-1"]);
        assert_eq!(s["production"], ["production-v1.2.3", PRD]);
    }

    #[test]
    fn selection_does_not_take_longer_versions_or_other_prefixes() {
        let all = strings(&[
            "develop-v1.2.30-abc1234-1",
            "develop-v1.2.30",
            "develop-v1.2.3.1",
            "develop-v1.2.3_x",
            "develop-v1.2.3x",
            "develop-v11.2.3",
            "develop-v1.2.34-abc",
            "xdevelop-v1.2.3",
            "develop-eu-v1.2.3",
            "developv1.2.3",
            "develop-1.2.3",
            "Develop-v1.2.3",
            "v1.2.3",
            "develop-",
            "develop",
        ]);
        let s = tags_for_version(&all, &v("v1.2.3"), &strings(&DEFAULT_PREFIXES));
        assert!(s.values().all(Vec::is_empty), "{s:?}");
        assert_eq!(s.len(), 3, "every prefix is a key");
    }

    #[test]
    fn selection_of_a_pre_release_takes_only_that_pre_release() {
        let all = strings(&[
            "staging-v1.2.3-rc.1-abc-1",
            "staging-v1.2.3-rc.10-abc-1",
            "staging-v1.2.3-rc.1",
            "staging-v1.2.3",
            "staging-v1.2.3-abc-1",
        ]);
        let s = tags_for_version(&all, &v("v1.2.3-rc.1"), &strings(&["staging"]));
        assert_eq!(
            s["staging"],
            ["staging-v1.2.3-rc.1", "staging-v1.2.3-rc.1-abc-1"]
        );
    }

    #[test]
    fn selection_sorts_dedups_and_lists_a_doubly_matching_tag_under_both() {
        let all = strings(&["a-v1.2.3-z", "a-v1.2.3-b", "a-v1.2.3-z", "a-v1.2.3-v1.2.3"]);
        let s = tags_for_version(&all, &v("v1.2.3"), &strings(&["a", "a-v1.2.3"]));
        assert_eq!(s["a"], ["a-v1.2.3-b", "a-v1.2.3-v1.2.3", "a-v1.2.3-z"]);
        assert_eq!(s["a-v1.2.3"], ["a-v1.2.3-v1.2.3"]);
    }

    // ---------------------------------------------------------------- judgement ----

    #[test]
    fn one_digest_under_every_prefix_is_consistent() {
        let r = check(
            &request(&[], &[]),
            &resolved(&[(PRD, 'a'), (DEV, 'a'), (STG, 'a')]),
        );
        assert!(r.consistent, "{r:?}");
        assert!(r.problems.is_empty());
        assert_eq!(r.digests, [d('a')]);
        let order: Vec<&str> = r.tags.iter().map(|t| t.prefix.as_str()).collect();
        assert_eq!(order, ["develop", "staging", "production"]);
        assert!(
            r.to_text()
                .contains("consistent, 3 tag(s) name sha256:aaaa")
        );
    }

    #[test]
    fn a_rebuilt_production_is_a_digest_mismatch_naming_each_tag_by_digest() {
        let r = check(
            &request(&[], &[]),
            &resolved(&[(DEV, 'a'), (STG, 'a'), (PRD, 'b')]),
        );
        assert!(!r.consistent);
        assert_eq!(codes(&r), ["retag-digest-mismatch"]);
        let m = &r.problems[0].message;
        let (a, b) = (d('a').to_string(), d('b').to_string());
        assert!(
            m.contains(&format!("{a} ← {DEV}, {STG}; {b} ← {PRD}")),
            "{m}"
        );
        assert_eq!(r.digests, [d('a'), d('b')]);
    }

    #[test]
    fn two_builds_under_one_prefix_are_a_mismatch_too() {
        let second = "develop-v1.2.3-def5678-1700000100";
        let r = check(
            &request(&["develop"], &[]),
            &resolved(&[(DEV, 'a'), (second, 'c')]),
        );
        assert_eq!(codes(&r), ["retag-digest-mismatch"]);
        assert!(r.problems[0].message.contains(second));
    }

    #[test]
    fn a_missing_required_environment_names_it_and_the_tags_that_exist() {
        let r = check(&request(&[], &[]), &resolved(&[(DEV, 'a'), (STG, 'a')]));
        assert!(!r.consistent);
        assert_eq!(codes(&r), ["retag-missing-environment"]);
        let m = &r.problems[0].message;
        assert!(m.starts_with("no production tag of v1.2.3"), "{m}");
        assert!(m.contains(&format!("{DEV}, {STG}")), "{m}");
    }

    #[test]
    fn a_missing_environment_that_is_not_required_is_not_a_problem() {
        let r = check(
            &request(&[], &["develop", "staging"]),
            &resolved(&[(DEV, 'a'), (STG, 'a')]),
        );
        assert!(r.consistent, "{:?}", r.problems);
    }

    #[test]
    fn missing_and_mismatch_are_both_reported() {
        let r = check(&request(&[], &[]), &resolved(&[(DEV, 'a'), (PRD, 'b')]));
        assert_eq!(
            codes(&r),
            ["retag-missing-environment", "retag-digest-mismatch"]
        );
        assert!(r.problems[0].message.starts_with("no staging tag"));
    }

    #[test]
    fn no_tag_of_the_version_is_one_problem_not_one_per_prefix() {
        let r = check(&request(&[], &[]), &[]);
        assert!(!r.consistent);
        assert_eq!(codes(&r), ["retag-no-tags"]);
        assert!(r.problems[0].message.contains(
            "r.example/acme/app has no tag of v1.2.3 under develop, staging, production"
        ));
        // Even when nothing is required beyond one prefix.
        let r = check(&request(&[], &["develop"]), &[]);
        assert_eq!(codes(&r), ["retag-no-tags"]);
    }

    #[test]
    fn resolved_tags_of_other_versions_or_prefixes_are_ignored() {
        let r = check(
            &request(&[], &[]),
            &resolved(&[
                (DEV, 'a'),
                (STG, 'a'),
                (PRD, 'a'),
                ("production-v1.2.30-abc1234-1", 'b'),
                ("canary-v1.2.3-abc1234-1", 'c'),
            ]),
        );
        assert!(r.consistent, "{:?}", r.problems);
        assert_eq!(r.tags.len(), 3);
        let r = check(
            &request(&[], &[]),
            &resolved(&[("production-v1.2.30", 'b')]),
        );
        assert_eq!(codes(&r), ["retag-no-tags"]);
    }

    #[test]
    fn json_is_camel_case_with_media_type_and_kebab_codes() {
        let r = check(&request(&[], &[]), &resolved(&[(DEV, 'a'), (PRD, 'b')]));
        let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(j["mediaType"], MEDIA_TYPE);
        assert_eq!(j["repository"], "r.example/acme/app");
        assert_eq!(j["version"], "v1.2.3");
        assert_eq!(j["consistent"], false);
        assert_eq!(j["tags"][0]["tag"], DEV);
        assert_eq!(j["tags"][0]["prefix"], "develop");
        assert_eq!(j["tags"][0]["digest"], d('a').to_string());
        assert_eq!(j["problems"][0]["code"], "retag-missing-environment");
        assert_eq!(j["problems"][1]["code"], "retag-digest-mismatch");
        assert_eq!(j["required"][2], "production");
        assert_eq!(j["digests"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn text_lists_each_tag_and_problem() {
        let r = check(&request(&[], &[]), &resolved(&[(DEV, 'a'), (PRD, 'b')]));
        let t = r.to_text();
        assert!(
            t.starts_with("retag-check r.example/acme/app v1.2.3: inconsistent (2 problem(s))\n")
        );
        assert!(
            t.contains(&format!("  develop     {DEV}     {}\n", d('a'))),
            "{t}"
        );
        assert!(
            t.contains(&format!("  production  {PRD}  {}\n", d('b'))),
            "{t}"
        );
        assert!(t.contains("  retag-digest-mismatch: "));
    }

    #[test]
    fn codes_are_unique_kebab_case_and_described() {
        let mut seen = std::collections::HashSet::new();
        for c in ProblemCode::ALL {
            assert!(seen.insert(c.as_str()), "duplicate {}", c.as_str());
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::Value::from(c.as_str())
            );
            assert!(c.as_str().starts_with("retag-"));
            assert!(!c.description().is_empty());
        }
    }
}
