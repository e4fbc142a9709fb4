//! Planning a promotion: the minimal text edits that copy the digests one environment runs to the
//! next environment in promotion order.
//!
//! Pure: the caller reads the work tree and hands over the files ([`SourceFile`]); [`plan`]
//! returns the edited texts ([`FileEdit`]) and says what it did and did not do, and the caller
//! writes them. Edits touch only the bytes of a digest (and of a tag that would otherwise
//! disagree with it): comments, key order, quoting, indentation, other images and line endings
//! stay byte-identical. Every plan is checked before it is returned: the edited texts are scanned
//! again, and every promoted reference must now carry the source digest while every other
//! reference in the edited files reads exactly as before.
//!
//! Promotion copies forward one step (`dev → staging`, `staging → prod`); it never adds an image
//! an environment does not already deploy, and it never guesses between two digests.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde::Serialize;
use thiserror::Error;

use super::config::{Config, Scope};
use super::report::VerificationSummary;
use super::scan::{self, Form, ImageSite, Scan, SourceFile};
use crate::reference::{Digest, Glob, ImageRef};

/// One image reference in the target environment moved to the source environment's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagePromotion {
    /// The image name, without tag or digest (`ghcr.io/acme/app`).
    pub image: String,
    /// The target file.
    pub file: String,
    /// 1-based line of the reference in the target file.
    pub line: usize,
    /// Its place in the file (`[0].app.image.ref`).
    pub key: String,
    /// The full reference in the target before the edit.
    pub from: Option<String>,
    /// The full reference in the target after the edit.
    pub to: String,
    /// The digest copied forward.
    pub digest: String,
    /// Where the source environment names that digest.
    pub source_file: String,
    /// 1-based line of that reference in the source file.
    pub source_line: usize,
}

/// One file's text before and after the promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileEdit {
    /// Path relative to the repository root.
    pub path: String,
    /// The text as handed to [`plan`].
    pub original: String,
    /// The text to write.
    pub updated: String,
}

/// Something the promotion left alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// The image name (empty when a whole file could not be read).
    pub image: String,
    /// The file concerned, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Why, and what to do.
    pub why: String,
}

/// A planned promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// The source environment's name.
    pub source: String,
    /// The target environment's name.
    pub target: String,
    /// Every reference edited, in image then file order.
    pub promotions: Vec<ImagePromotion>,
    /// Images the target already runs at the source digest.
    pub unchanged: Vec<String>,
    /// Images and references left alone.
    pub skipped: Vec<Skipped>,
    /// The edited files, in path order.
    pub edits: Vec<FileEdit>,
}

impl Plan {
    /// Whether the promotion changes nothing.
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }
}

/// Why no promotion could be planned.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PromoteError {
    /// Occurs when an environment index is not in the config.
    #[error("environment #{index} is not in the config (environments: {environments})")]
    UnknownEnvironment {
        /// The index given.
        index: usize,
        /// The environments, in promotion order.
        environments: String,
    },
    /// Occurs when the target is not the environment right after the source.
    #[error("cannot promote {from} → {to}: {why} (promotion order: {order})")]
    Direction {
        /// The source environment.
        from: String,
        /// The target environment.
        to: String,
        /// The promotion order, `dev → staging → prod`.
        order: String,
        /// What is wrong with the direction and what to do instead.
        why: String,
    },
    /// Occurs when two files handed over have the same path.
    #[error("file {path:?} was given twice")]
    DuplicateFile {
        /// The path.
        path: String,
    },
    /// Occurs when the edited text does not say what the plan intended (a bug, never a partial
    /// write: nothing is returned to write).
    #[error("the promotion edit of {file} failed its self-check: {message}; nothing was changed")]
    SelfCheck {
        /// The file.
        file: String,
        /// What went wrong.
        message: String,
    },
}

/// A replacement of `range` in a file's text by `text` (an empty range inserts).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Edit {
    range: Range<usize>,
    text: String,
}

/// What a promoted reference must read after the edit.
#[derive(Debug, Clone)]
struct Expected {
    /// Index of the site in the original scan.
    site: usize,
    name: String,
    digest: Digest,
    tag: Option<String>,
    promotion: ImagePromotion,
}

/// A parsed site: its index in the scan and its reference.
struct Parsed<'a> {
    index: usize,
    site: &'a ImageSite,
    image: ImageRef,
}

fn at(site: &ImageSite) -> String {
    format!("{}:{}", site.file, site.pos.line)
}

/// Plans the promotion of `source_env`'s digests to `target_env` (indexes in promotion order).
///
/// `files` are the work tree's files (the caller reads them); `only` restricts the images
/// promoted (image-name globs; empty: every image).
///
/// # Errors
/// An unknown environment, a target that is not the next environment after the source, a path
/// given twice, or an edit that fails its self-check.
pub fn plan(
    config: &Config,
    source_env: usize,
    target_env: usize,
    files: &[SourceFile],
    only: &[Glob],
) -> Result<Plan, PromoteError> {
    let (source, target) = check_direction(config, source_env, target_env)?;
    let mut paths = BTreeSet::new();
    for f in files {
        if !paths.insert(f.path.as_str()) {
            return Err(PromoteError::DuplicateFile {
                path: f.path.clone(),
            });
        }
    }
    let scanned = scan::scan(config, files);
    let texts: BTreeMap<&str, &str> = files
        .iter()
        .filter_map(|f| match &f.content {
            scan::Content::Text(t) => Some((f.path.as_str(), t.as_str())),
            _ => None,
        })
        .collect();
    let in_env = |file: &str, env: usize| config.scope(file) == Some(Scope::Environment(env));

    let mut out = Plan {
        source: source.to_owned(),
        target: target.to_owned(),
        promotions: Vec::new(),
        unchanged: Vec::new(),
        skipped: Vec::new(),
        edits: Vec::new(),
    };
    for f in &scanned.findings {
        if matches!(f.rule, "yaml-syntax" | "unreadable-file" | "symlink")
            && (in_env(&f.file, source_env) || in_env(&f.file, target_env))
        {
            out.skipped.push(Skipped {
                image: String::new(),
                file: Some(f.file.clone()),
                why: format!(
                    "not read ({}): its images are neither promoted from nor edited",
                    f.message
                ),
            });
        }
    }

    let wanted = |name: &str| only.is_empty() || only.iter().any(|g| g.matches(name));
    let mut source_sites: BTreeMap<String, Vec<Parsed<'_>>> = BTreeMap::new();
    let mut target_sites: BTreeMap<String, Vec<Parsed<'_>>> = BTreeMap::new();
    for (index, site) in scanned.sites.iter().enumerate() {
        let Some(image) = site.image() else { continue };
        let name = image.name();
        if !wanted(&name) {
            continue;
        }
        let parsed = Parsed { index, site, image };
        if in_env(&site.file, source_env) {
            source_sites.entry(name).or_default().push(parsed);
        } else if in_env(&site.file, target_env) {
            target_sites.entry(name).or_default().push(parsed);
        }
    }

    let mut edits: BTreeMap<String, Vec<Edit>> = BTreeMap::new();
    let mut expected: Vec<Expected> = Vec::new();
    for (name, sites) in &source_sites {
        let from = match source_choice(sites, source) {
            Ok(f) => f,
            Err(why) => {
                out.skipped.push(Skipped {
                    image: name.clone(),
                    file: None,
                    why,
                });
                continue;
            }
        };
        let Some(targets) = target_sites.get(name) else {
            out.skipped.push(Skipped {
                image: name.clone(),
                file: None,
                why: format!(
                    "not deployed in {target}; promote adds no new images (add it to {target} by hand, then promote)"
                ),
            });
            continue;
        };
        let mut changed = false;
        for t in targets {
            if t.image.digest() == Some(&from.digest) {
                continue;
            }
            changed = true;
            let text = texts.get(t.site.file.as_str()).copied().unwrap_or_default();
            match site_edits(text, t, &from) {
                Ok((site_edits, tag)) => {
                    edits
                        .entry(t.site.file.clone())
                        .or_default()
                        .extend(site_edits);
                    expected.push(Expected {
                        site: t.index,
                        name: name.clone(),
                        digest: from.digest.clone(),
                        tag,
                        promotion: ImagePromotion {
                            image: name.clone(),
                            file: t.site.file.clone(),
                            line: t.site.pos.line,
                            key: t.site.key.clone(),
                            from: Some(t.site.reference.clone()),
                            to: String::new(),
                            digest: from.digest.to_string(),
                            source_file: from.site.file.clone(),
                            source_line: from.site.pos.line,
                        },
                    });
                }
                Err(why) => out.skipped.push(Skipped {
                    image: name.clone(),
                    file: Some(t.site.file.clone()),
                    why: format!("line {} ({}): {why}", t.site.pos.line, t.site.key),
                }),
            }
        }
        if !changed {
            out.unchanged.push(name.clone());
        }
    }

    for (path, mut file_edits) in edits {
        let original = texts.get(path.as_str()).copied().unwrap_or_default();
        let updated =
            apply(original, &mut file_edits).map_err(|message| PromoteError::SelfCheck {
                file: path.clone(),
                message,
            })?;
        self_check(config, &scanned, &path, &updated, &mut expected)?;
        out.edits.push(FileEdit {
            path,
            original: original.to_owned(),
            updated,
        });
    }
    out.promotions = expected.into_iter().map(|e| e.promotion).collect();
    Ok(out)
}

/// The two environments' names, when `target_env` is the one right after `source_env`.
fn check_direction(
    config: &Config,
    source_env: usize,
    target_env: usize,
) -> Result<(&str, &str), PromoteError> {
    let names = config.names();
    let order = names.join(" → ");
    let name = |index: usize| {
        names
            .get(index)
            .copied()
            .ok_or_else(|| PromoteError::UnknownEnvironment {
                index,
                environments: names.join(", "),
            })
    };
    let (from, to) = (name(source_env)?, name(target_env)?);
    if source_env + 1 == target_env {
        return Ok((from, to));
    }
    let why = if source_env == target_env {
        format!("{from} is both the source and the target")
    } else if target_env < source_env {
        format!(
            "{to} comes before {from}: promotion copies forward one step, never backwards (roll {to} back with a revert instead)"
        )
    } else {
        let between: Vec<&str> = names
            .get(source_env + 1..target_env)
            .unwrap_or_default()
            .to_vec();
        format!(
            "promotion copies forward one step and {from} → {to} skips {} (promote {from} → {} first)",
            between.join(", "),
            between.first().copied().unwrap_or_default()
        )
    };
    Err(PromoteError::Direction {
        from: from.to_owned(),
        to: to.to_owned(),
        order,
        why,
    })
}

/// What the source environment runs for one image.
struct SourceChoice<'a> {
    digest: Digest,
    tag: Option<String>,
    site: &'a ImageSite,
}

/// The one digest (and tag) the source runs for an image; `Err` (why) when there is nothing or
/// more than one thing to promote.
fn source_choice<'a>(sites: &'a [Parsed<'a>], source: &str) -> Result<SourceChoice<'a>, String> {
    let mut digests: BTreeMap<&Digest, Vec<&Parsed<'a>>> = BTreeMap::new();
    for s in sites {
        if let Some(d) = s.image.digest() {
            digests.entry(d).or_default().push(s);
        }
    }
    let places = |ps: &[&Parsed<'_>]| ps.iter().map(|p| at(p.site)).collect::<Vec<_>>().join(", ");
    let Some((digest, with)) = digests.iter().next() else {
        let all: Vec<&Parsed<'_>> = sites.iter().collect();
        return Err(format!(
            "no digest in {source} ({}): nothing to promote (pin a digest in {source} first)",
            places(&all)
        ));
    };
    if digests.len() > 1 {
        let each: Vec<String> = digests
            .iter()
            .map(|(d, ps)| format!("{d} at {}", places(ps)))
            .collect();
        return Err(format!(
            "{source} runs {} digests of it: {}; make {source} run one digest before promoting",
            digests.len(),
            each.join("; ")
        ));
    }
    let tags: BTreeSet<&str> = with.iter().filter_map(|p| p.image.tag()).collect();
    if tags.len() > 1 {
        return Err(format!(
            "{source} names {digest} with {} tags ({}) at {}: which one to write is ambiguous; use one tag",
            tags.len(),
            tags.iter().copied().collect::<Vec<_>>().join(", "),
            places(with)
        ));
    }
    let first = with
        .first()
        .ok_or_else(|| format!("no digest in {source}: nothing to promote"))?;
    Ok(SourceChoice {
        digest: (*digest).clone(),
        tag: tags.first().map(|t| (*t).to_owned()),
        site: first.site,
    })
}

/// The edits that move one target site to the source's digest (and tag), and the tag it will
/// have afterwards; `Err` when it cannot be edited safely.
fn site_edits(
    text: &str,
    t: &Parsed<'_>,
    from: &SourceChoice<'_>,
) -> Result<(Vec<Edit>, Option<String>), String> {
    let site = t.site;
    let mut out = Vec::new();
    let new_digest = from.digest.to_string();
    let by_hand = "edit it by hand";
    // Where the tag ends in the text (for a digest inserted after it).
    let mut tag_end = None;
    let tag_after = match (t.image.tag(), from.tag.as_deref()) {
        (None, _) => None,
        (Some(old), Some(new)) if old == new => Some(new.to_owned()),
        (Some(old), Some(new)) => {
            let Some(range) = site.tag_bytes.clone() else {
                return Err(format!(
                    "tag {old} would be left next to {new_digest} ({} has tag {new}), and custody cannot find the tag in the text; {by_hand}",
                    from.site.file
                ));
            };
            tag_end = Some(range.end);
            out.push(tag_edit(text, range, old, new, site.form)?);
            Some(new.to_owned())
        }
        (Some(old), None) => {
            let range = site.tag_bytes.clone().filter(|_| site.form == Form::Single);
            let Some(range) = range else {
                if site.form == Form::Single {
                    return Err(format!(
                        "custody cannot find tag {old} in the text to remove it; {by_hand}"
                    ));
                }
                return Err(format!(
                    "the source ({}:{}) has no tag, and tag {old} is a separate field here: a stale tag next to a new digest misleads; remove the tag field, then promote",
                    from.site.file, from.site.pos.line
                ));
            };
            let colon = range.start.checked_sub(1).unwrap_or(usize::MAX);
            let ok = text.get(colon..range.end) == Some(&format!(":{old}")[..]);
            if !ok {
                return Err(format!(
                    "custody cannot find tag {old} in the text to remove it; {by_hand}"
                ));
            }
            tag_end = Some(range.end);
            out.push(Edit {
                range: colon..range.end,
                text: String::new(),
            });
            None
        }
    };
    match (t.image.digest(), site.digest_bytes.clone()) {
        (Some(old), Some(range)) => {
            if text.get(range.clone()) != Some(&old.to_string()[..]) {
                return Err(format!(
                    "custody cannot find digest {old} in the text of this reference; {by_hand}"
                ));
            }
            out.push(Edit {
                range,
                text: new_digest,
            });
        }
        (Some(old), None) => {
            return Err(format!(
                "custody cannot find digest {old} in the text of this reference; {by_hand}"
            ));
        }
        (None, _) if site.form != Form::Single => {
            return Err(format!(
                "{} has no digest field: add a digest: field (or write image.ref: {}@{new_digest}), then promote",
                site.reference,
                t.image.name()
            ));
        }
        (None, _) => {
            let Some(value) = scalar_value(text, site.pos.offset, &site.reference) else {
                return Err(format!(
                    "custody cannot place the digest in {:?} (escaped or multi-line scalar); {by_hand}",
                    site.reference
                ));
            };
            let end = tag_end.unwrap_or(value.end);
            if end != value.end {
                return Err(format!(
                    "the tag is not at the end of {:?}; {by_hand}",
                    site.reference
                ));
            }
            out.push(Edit {
                range: end..end,
                text: format!("@{new_digest}"),
            });
        }
    }
    Ok((out, tag_after))
}

/// The replacement of a tag's bytes: inside its quotes when the tag is a quoted scalar of its
/// own; quoted when a plain tag scalar would read as something other than a string.
fn tag_edit(
    text: &str,
    range: Range<usize>,
    old: &str,
    new: &str,
    form: Form,
) -> Result<Edit, String> {
    let written = text.get(range.clone()).unwrap_or_default();
    if written == old {
        let quote = form != Form::Single && !plain_string(new);
        return Ok(Edit {
            range,
            text: if quote {
                format!("\"{new}\"")
            } else {
                new.to_owned()
            },
        });
    }
    let quoted = form != Form::Single
        && written.len() == old.len() + 2
        && (written.starts_with('"') && written.ends_with('"')
            || written.starts_with('\'') && written.ends_with('\''))
        && written.get(1..=old.len()) == Some(old);
    if quoted {
        return Ok(Edit {
            range: range.start + 1..range.end - 1,
            text: new.to_owned(),
        });
    }
    Err(format!(
        "custody cannot find tag {old} in the text ({written:?}) to replace it with {new}; edit it by hand"
    ))
}

/// Whether `value` written as a plain YAML scalar reads back as the same string (not a number,
/// boolean or null).
fn plain_string(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    let keyword = matches!(
        lower.as_str(),
        "" | "~" | "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
    );
    let numeric = value.parse::<f64>().is_ok()
        || value
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '_' | '-' | '+'))
        || value.starts_with("0x")
        || value.starts_with("0o");
    !keyword && !numeric
}

/// The bytes of a scalar's value starting at `offset` when the text is the value itself (plain)
/// or the value in quotes without escapes.
fn scalar_value(text: &str, offset: usize, value: &str) -> Option<Range<usize>> {
    let rest = text.get(offset..)?;
    if rest.starts_with(value) && !matches!(value.chars().next(), Some('"' | '\'')) {
        return Some(offset..offset + value.len());
    }
    let quote = rest.chars().next().filter(|c| matches!(c, '"' | '\''))?;
    let inner = rest.get(1..)?;
    let closes = inner.get(value.len()..)?.starts_with(quote);
    (inner.starts_with(value) && closes).then(|| offset + 1..offset + 1 + value.len())
}

/// Applies non-overlapping edits to `text`, from the end backwards.
fn apply(text: &str, edits: &mut [Edit]) -> Result<String, String> {
    edits.sort_by_key(|e| (e.range.start, e.range.end));
    for pair in edits.windows(2) {
        if let [a, b] = pair
            && (a.range.end > b.range.start || a.range.start == b.range.start)
        {
            return Err(format!(
                "edits of bytes {:?} and {:?} overlap",
                a.range, b.range
            ));
        }
    }
    let mut out = text.to_owned();
    for e in edits.iter().rev() {
        if e.range.start > e.range.end
            || out.get(e.range.clone()).is_none()
            || !out.is_char_boundary(e.range.start)
            || !out.is_char_boundary(e.range.end)
        {
            return Err(format!("bytes {:?} are not a range of the text", e.range));
        }
        out.replace_range(e.range.clone(), &e.text);
    }
    Ok(out)
}

/// Scans the edited text of `path` again: every promoted site must read the source digest (and
/// the planned tag), every other site must read as before. Fills in each promotion's `to`.
fn self_check(
    config: &Config,
    before: &Scan,
    path: &str,
    updated: &str,
    expected: &mut [Expected],
) -> Result<(), PromoteError> {
    let fail = |message: String| PromoteError::SelfCheck {
        file: path.to_owned(),
        message,
    };
    let scope = config
        .scope(path)
        .ok_or_else(|| fail("the file belongs to no environment".into()))?;
    let mut after = Scan::default();
    let file = SourceFile {
        path: path.to_owned(),
        content: scan::Content::Text(updated.to_owned()),
    };
    scan::scan_file(config, scope, &file, &mut after);
    if let Some(f) = after.findings.iter().find(|f| f.rule == "yaml-syntax") {
        return Err(fail(format!(
            "the edited text does not parse: {}",
            f.message
        )));
    }
    let old: Vec<(usize, &ImageSite)> = before
        .sites
        .iter()
        .enumerate()
        .filter(|(_, s)| s.file == path)
        .collect();
    if old.len() != after.sites.len() {
        return Err(fail(format!(
            "{} image references before the edit, {} after",
            old.len(),
            after.sites.len()
        )));
    }
    for ((index, was), now) in old.iter().zip(&after.sites) {
        if was.key != now.key || was.form != now.form {
            return Err(fail(format!(
                "reference {} at line {} became {} at line {}",
                was.key, was.pos.line, now.key, now.pos.line
            )));
        }
        match expected.iter_mut().find(|e| e.site == *index) {
            None if was.reference != now.reference => {
                return Err(fail(format!(
                    "{} at line {} changed from {} to {} but was not to be promoted",
                    was.key, was.pos.line, was.reference, now.reference
                )));
            }
            None => {}
            Some(e) => {
                let image = now.image();
                let ok = image.as_ref().is_some_and(|i| {
                    i.name() == e.name
                        && i.digest() == Some(&e.digest)
                        && i.tag() == e.tag.as_deref()
                });
                if !ok {
                    return Err(fail(format!(
                        "{} at line {} reads {} after the edit, expected {}{}@{}",
                        was.key,
                        was.pos.line,
                        now.reference,
                        e.name,
                        e.tag
                            .as_deref()
                            .map(|t| format!(":{t}"))
                            .unwrap_or_default(),
                        e.digest
                    )));
                }
                e.promotion.to.clone_from(&now.reference);
            }
        }
    }
    Ok(())
}

/// Longest pull-request title.
pub const MAX_TITLE_CHARS: usize = 72;

/// The footer of every promotion pull request.
pub const PULL_REQUEST_FOOTER: &str =
    "Generated by custody gitops promote; checked by custody gitops check.";

/// Escapes text for a Markdown table cell (or a list item): `|`, line breaks and `<>&`.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push(' ');
            }
            '\n' | '\u{2028}' | '\u{2029}' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn code_or_text(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '-' | '_' | '/' | '@'))
    {
        format!("`{text}`")
    } else {
        escape_markdown(text)
    }
}

/// The title and Markdown body of the promotion's pull request. `verification` is what the trust
/// policy said about each promoted digest (keyed by digest); a digest missing from it reads
/// "not verified".
pub fn pull_request(
    plan: &Plan,
    verification: &BTreeMap<String, VerificationSummary>,
) -> (String, String) {
    // One row per image and digest, in plan order.
    let mut rows: Vec<(&str, &str, Vec<&str>, Vec<String>)> = Vec::new();
    for p in &plan.promotions {
        let source = format!("{}:{}", p.source_file, p.source_line);
        let from = p.from.as_deref().unwrap_or("(none)");
        match rows
            .iter_mut()
            .find(|(i, d, _, _)| *i == p.image && *d == p.digest)
        {
            Some((_, _, froms, sources)) => {
                if !froms.contains(&from) {
                    froms.push(from);
                }
                if !sources.contains(&source) {
                    sources.push(source);
                }
            }
            None => rows.push((&p.image, &p.digest, vec![from], vec![source])),
        }
    }
    let title = title(plan, &rows.iter().map(|r| r.0).collect::<Vec<_>>());
    let mut body = String::new();
    let (source, target) = (escape_markdown(&plan.source), escape_markdown(&plan.target));
    if rows.is_empty() {
        body.push_str(&format!(
            "Nothing to promote from **{source}** to **{target}**.\n"
        ));
    } else {
        body.push_str(&format!(
            "Promotes the digests **{source}** runs to **{target}**: the same digests forward, no rebuild.\n\n"
        ));
        body.push_str("| Image | Digest | From | Source commit | Signer | Verification |\n");
        body.push_str("|---|---|---|---|---|---|\n");
        for (image, digest, froms, _) in &rows {
            let v = verification.get(*digest);
            let opt = |f: fn(&VerificationSummary) -> Option<&String>| {
                v.and_then(f)
                    .map_or_else(|| "—".to_owned(), |s| escape_markdown(s))
            };
            let decision = v.map_or_else(
                || "not verified".to_owned(),
                |v| {
                    if v.allowed() || v.reasons.is_empty() {
                        escape_markdown(&v.decision)
                    } else {
                        escape_markdown(&format!("{}: {}", v.decision, v.reasons.join("; ")))
                    }
                },
            );
            body.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                escape_markdown(image),
                code_or_text(digest),
                escape_markdown(&froms.join(", ")),
                opt(|v| v.source_commit.as_ref()),
                opt(|v| v.signer.as_ref()),
                decision,
            ));
        }
        body.push_str(&format!("\n### Source files ({source})\n\n"));
        for (image, _, _, sources) in &rows {
            body.push_str(&format!(
                "- {}: {}\n",
                escape_markdown(image),
                escape_markdown(&sources.join(", "))
            ));
        }
        body.push_str(&format!("\n### Changed in {target}\n\n"));
        for p in &plan.promotions {
            body.push_str(&format!(
                "- {}:{} ({})\n",
                escape_markdown(&p.file),
                p.line,
                escape_markdown(&p.key)
            ));
        }
    }
    if !plan.unchanged.is_empty() {
        body.push_str(&format!(
            "\nAlready at the {source} digest: {}.\n",
            escape_markdown(&plan.unchanged.join(", "))
        ));
    }
    if !plan.skipped.is_empty() {
        body.push_str("\n### Skipped\n\n");
        for s in &plan.skipped {
            let what = match (&s.image[..], &s.file) {
                ("", Some(f)) => escape_markdown(f),
                (i, Some(f)) => format!("{} ({})", escape_markdown(i), escape_markdown(f)),
                (i, None) => escape_markdown(i),
            };
            body.push_str(&format!("- {what}: {}\n", escape_markdown(&s.why)));
        }
    }
    body.push_str(&format!("\n---\n{PULL_REQUEST_FOOTER}\n"));
    (title, body)
}

fn title(plan: &Plan, images: &[&str]) -> String {
    let mut full_names: Vec<&str> = Vec::new();
    for i in images {
        if !full_names.contains(i) {
            full_names.push(i);
        }
    }
    // Last path segments (`app`), unless two images share one.
    let mut short: Vec<&str> = full_names
        .iter()
        .map(|i| i.rsplit('/').next().unwrap_or(i))
        .collect();
    if short.iter().collect::<BTreeSet<_>>().len() != short.len() {
        short.clone_from(&full_names);
    }
    let direction = format!("from {} to {}", plan.source, plan.target);
    let full = match short.len() {
        0 => format!("Promote nothing {direction}"),
        _ => format!("Promote {} {direction}", short.join(", ")),
    };
    let title = if full.chars().count() <= MAX_TITLE_CHARS {
        full
    } else {
        format!("Promote {} images {direction}", full_names.len())
    };
    if title.chars().count() <= MAX_TITLE_CHARS {
        return title.replace(['\r', '\n'], " ");
    }
    let mut cut: String = title.chars().take(MAX_TITLE_CHARS - 1).collect();
    cut.push('…');
    cut.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::config::load;
    use crate::gitops::scan::Content;

    const CONFIG: &str = r#"apiVersion: custody.dev/v1alpha1
kind: GitOpsConfig
environments:
  - {name: dev, paths: ["env/dev/**"], autoUpdate: true}
  - {name: staging, paths: ["env/staging/**"]}
  - {name: prod, paths: ["env/prod/**"]}
"#;

    fn config() -> Config {
        load(CONFIG).unwrap()
    }

    /// `sha256:` and 64 times `c`.
    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn file(path: &str, text: &str) -> SourceFile {
        SourceFile {
            path: path.to_owned(),
            content: Content::Text(text.to_owned()),
        }
    }

    fn run(files: &[SourceFile]) -> Plan {
        plan(&config(), 1, 2, files, &[]).unwrap()
    }

    fn updated<'a>(p: &'a Plan, path: &str) -> &'a str {
        &p.edits.iter().find(|e| e.path == path).unwrap().updated
    }

    /// The byte range where `a` and `b` (same length) differ.
    fn differing(a: &str, b: &str) -> Range<usize> {
        assert_eq!(a.len(), b.len());
        let (a, b) = (a.as_bytes(), b.as_bytes());
        let first = (0..a.len()).find(|&i| a[i] != b[i]).unwrap();
        let last = (0..a.len()).rfind(|&i| a[i] != b[i]).unwrap();
        first..last + 1
    }

    const APP: &str = "ghcr.io/acme/app";

    #[test]
    fn helm_values_change_only_the_64_hex_digits() {
        let staging = format!(
            "# staging values\napp:\n  image:\n    ref: {APP}@{}  # promoted\n  replicas: 2\n",
            d('a')
        );
        let prod = format!(
            "# Production values (Größe ✓): edit through promotion only.\nglobal:\n  domain: example.com # the public name\napp:\n  image:\n    # the one image field\n    ref: {APP}@{}   # pinned\n    pullPolicy: IfNotPresent\n  replicas: 3\nother: keep\n",
            d('b')
        );
        let p = run(&[
            file("env/staging/values.yaml", &staging),
            file("env/prod/values.yaml", &prod),
        ]);
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
        assert_eq!(p.edits.len(), 1);
        let new = updated(&p, "env/prod/values.yaml");
        assert_eq!(new, prod.replace(&d('b'), &d('a')));
        let hex_start = prod.find(&d('b')).unwrap() + "sha256:".len();
        let diff = differing(&prod, new);
        assert!(
            diff.start >= hex_start && diff.end <= hex_start + 64,
            "{diff:?}"
        );
        let pr = &p.promotions[0];
        assert_eq!(pr.image, APP);
        assert_eq!((pr.file.as_str(), pr.line), ("env/prod/values.yaml", 7));
        assert_eq!(pr.key, "[0].app.image.ref");
        assert_eq!(pr.from, Some(format!("{APP}@{}", d('b'))));
        assert_eq!(pr.to, format!("{APP}@{}", d('a')));
        assert_eq!(pr.digest, d('a'));
        assert_eq!(
            (pr.source_file.as_str(), pr.source_line),
            ("env/staging/values.yaml", 4)
        );
        assert_eq!(p.edits[0].original, prod);
        assert_eq!((p.source.as_str(), p.target.as_str()), ("staging", "prod"));
    }

    const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  template:
    spec:
      containers:
        - name: app
          image: ghcr.io/acme/app:1.2.0@DIGEST
          imagePullPolicy: IfNotPresent
        - name: proxy   # third party, pinned by the platform team
          image: docker.io/envoyproxy/envoy:v1.31.0@PROXY
          imagePullPolicy: IfNotPresent
";

    #[test]
    fn a_deployment_with_two_containers_promotes_one_and_leaves_the_third_party_one() {
        // Staging runs the app alone; prod adds a proxy the platform team pins.
        let staging = DEPLOYMENT
            .split("        - name: proxy")
            .next()
            .unwrap()
            .replace("DIGEST", &d('a'));
        let prod = DEPLOYMENT
            .replace("DIGEST", &d('b'))
            .replace("PROXY", &d('f'));
        let p = run(&[
            file("env/staging/app.yaml", &staging),
            file("env/prod/app.yaml", &prod),
        ]);
        assert_eq!(p.promotions.len(), 1);
        assert_eq!(
            p.promotions[0].key,
            "[0].spec.template.spec.containers[name=app].image"
        );
        let new = updated(&p, "env/prod/app.yaml");
        assert_eq!(new, prod.replace(&d('b'), &d('a')));
        assert!(new.contains(&format!("docker.io/envoyproxy/envoy:v1.31.0@{}", d('f'))));
        assert!(p.skipped.is_empty() && p.unchanged.is_empty(), "{p:?}");
    }

    #[test]
    fn a_kustomize_images_entry_has_its_digest_edited() {
        let k = "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base
images:
  - name: app            # as named in base
    newName: ghcr.io/acme/app
    digest: DIGEST
";
        let staging = k.replace("DIGEST", &d('a'));
        let prod = k.replace("DIGEST", &d('b'));
        let p = run(&[
            file("env/staging/kustomization.yaml", &staging),
            file("env/prod/kustomization.yaml", &prod),
        ]);
        assert_eq!(p.promotions.len(), 1, "{p:?}");
        assert_eq!(p.promotions[0].key, "[0].images[0]");
        assert_eq!(
            updated(&p, "env/prod/kustomization.yaml"),
            prod.replace(&d('b'), &d('a'))
        );
    }

    #[test]
    fn split_fields_have_the_digest_field_edited() {
        let staging = format!("image: {{ref: {APP}:1.2.0@{}}}\n", d('a'));
        let prod = format!(
            "image:\n  repository: ghcr.io/acme/app\n  tag: \"1.2.0\"   # release\n  digest: {}\n  pullPolicy: IfNotPresent\n",
            d('b')
        );
        let p = run(&[
            file("env/staging/values.yaml", &staging),
            file("env/prod/values.yaml", &prod),
        ]);
        assert_eq!(p.promotions.len(), 1, "{p:?}");
        assert_eq!(
            updated(&p, "env/prod/values.yaml"),
            prod.replace(&d('b'), &d('a'))
        );
        assert_eq!(p.promotions[0].to, format!("{APP}:1.2.0@{}", d('a')));
    }

    #[test]
    fn a_different_tag_is_replaced_with_the_digest() {
        let staging = format!("image:\n  ref: {APP}:1.3.0@{}\n", d('a'));
        let prod = format!("image:\n  ref: {APP}:1.2.0@{} # current\n", d('b'));
        let p = run(&[
            file("env/staging/values.yaml", &staging),
            file("env/prod/values.yaml", &prod),
        ]);
        assert_eq!(
            updated(&p, "env/prod/values.yaml"),
            format!("image:\n  ref: {APP}:1.3.0@{} # current\n", d('a'))
        );
        assert_eq!(p.promotions[0].to, format!("{APP}:1.3.0@{}", d('a')));

        // Split fields: the tag inside its quotes; a numeric-looking plain tag gets quotes.
        let split = |tag: &str| {
            format!(
                "image:\n  repository: ghcr.io/acme/app\n  tag: {tag}\n  digest: {}\n",
                d('b')
            )
        };
        for (written, after, new) in [
            ("'1.2.0'", "'1.3.0'", "1.3.0"),
            ("v1.2", "v1.3.0", "v1.3.0"),
            ("1.2", "\"1.10\"", "1.10"),
        ] {
            let staging = format!("image: {APP}:{new}@{}\n", d('a'));
            let prod = split(written);
            let p = run(&[
                file("env/staging/values.yaml", &staging),
                file("env/prod/values.yaml", &prod),
            ]);
            assert_eq!(
                updated(&p, "env/prod/values.yaml"),
                split(after).replace(&d('b'), &d('a')),
                "{written}"
            );
        }
    }

    #[test]
    fn a_tag_the_source_does_not_have_is_removed_from_the_scalar_or_the_site_skipped() {
        let staging = format!("image: {APP}@{}\n", d('a'));
        let prod = format!("image: \"{APP}:1.2.0@{}\"\n", d('b'));
        let p = run(&[
            file("env/staging/values.yaml", &staging),
            file("env/prod/values.yaml", &prod),
        ]);
        assert_eq!(
            updated(&p, "env/prod/values.yaml"),
            format!("image: \"{APP}@{}\"\n", d('a'))
        );
        let prod = format!(
            "image:\n  repository: {APP}\n  tag: 1.2.0\n  digest: {}\n",
            d('b')
        );
        let p = run(&[
            file("env/staging/values.yaml", &staging),
            file("env/prod/values.yaml", &prod),
        ]);
        assert!(p.edits.is_empty() && p.promotions.is_empty());
        assert_eq!(p.skipped.len(), 1);
        assert_eq!(p.skipped[0].file.as_deref(), Some("env/prod/values.yaml"));
        assert!(
            p.skipped[0].why.starts_with("line 2 ([0].image): "),
            "{:?}",
            p.skipped
        );
        assert!(
            p.skipped[0].why.contains("remove the tag field"),
            "{:?}",
            p.skipped
        );
    }

    #[test]
    fn a_crlf_file_stays_crlf() {
        let staging = format!("image:\r\n  ref: {APP}@{}\r\n", d('a'));
        let prod = format!(
            "# prod\r\napp:\r\n  image:\r\n    ref: {APP}@{}\r\n  other: 1\r\nworker:\r\n  image:\r\n    ref: ghcr.io/acme/worker@{}\r\n",
            d('b'),
            d('c')
        );
        let p = run(&[
            file("env/staging/values.yaml", &staging),
            file("env/prod/values.yaml", &prod),
        ]);
        let new = updated(&p, "env/prod/values.yaml");
        assert_eq!(new, prod.replace(&d('b'), &d('a')));
        assert_eq!(new.matches("\r\n").count(), prod.matches("\r\n").count());
        assert_eq!(new.matches('\n').count(), prod.matches('\n').count());
    }

    #[test]
    fn quoted_scalars_keep_their_quotes() {
        let staging = format!("image:\n  ref: '{APP}@{}'\n", d('a'));
        for quote in ['"', '\''] {
            let prod = format!("image:\n  ref: {quote}{APP}@{}{quote}  # q\n", d('b'));
            let p = run(&[
                file("env/staging/values.yaml", &staging),
                file("env/prod/values.yaml", &prod),
            ]);
            assert_eq!(
                updated(&p, "env/prod/values.yaml"),
                format!("image:\n  ref: {quote}{APP}@{}{quote}  # q\n", d('a'))
            );
        }
    }

    #[test]
    fn two_digests_in_the_source_are_skipped_naming_both_places() {
        let p = run(&[
            file("env/staging/a.yaml", &format!("image: {APP}@{}\n", d('a'))),
            file(
                "env/staging/b.yaml",
                &format!("x: 1\nimage: {APP}@{}\n", d('c')),
            ),
            file("env/prod/a.yaml", &format!("image: {APP}@{}\n", d('b'))),
        ]);
        assert!(p.edits.is_empty() && p.promotions.is_empty());
        assert_eq!(p.skipped.len(), 1);
        let why = &p.skipped[0].why;
        assert_eq!(p.skipped[0].image, APP);
        assert!(why.contains("env/staging/a.yaml:1"), "{why}");
        assert!(why.contains("env/staging/b.yaml:2"), "{why}");
        assert!(why.contains(&d('a')) && why.contains(&d('c')), "{why}");
    }

    #[test]
    fn no_digest_in_the_source_is_skipped() {
        let p = run(&[
            file("env/staging/a.yaml", &format!("image: {APP}:1.2.0\n")),
            file("env/prod/a.yaml", &format!("image: {APP}@{}\n", d('b'))),
        ]);
        assert!(p.edits.is_empty());
        assert!(
            p.skipped[0].why.contains("no digest in staging"),
            "{:?}",
            p.skipped
        );
    }

    #[test]
    fn only_the_next_environment_forward_is_a_promotion() {
        let c = config();
        let e = plan(&c, 2, 1, &[], &[]).unwrap_err();
        assert!(
            matches!(&e, PromoteError::Direction { from, to, .. } if from == "prod" && to == "staging")
        );
        let text = e.to_string();
        assert!(text.contains("never backwards"), "{text}");
        assert!(text.contains("dev → staging → prod"), "{text}");
        let e = plan(&c, 0, 2, &[], &[]).unwrap_err().to_string();
        assert!(
            e.contains("skips staging") && e.contains("promote dev → staging first"),
            "{e}"
        );
        let e = plan(&c, 1, 1, &[], &[]).unwrap_err().to_string();
        assert!(e.contains("both the source and the target"), "{e}");
        assert!(matches!(
            plan(&c, 2, 3, &[], &[]),
            Err(PromoteError::UnknownEnvironment { index: 3, .. })
        ));
        assert!(plan(&c, 0, 1, &[], &[]).unwrap().is_empty());
    }

    #[test]
    fn the_only_filter_restricts_the_images() {
        let values = |app: char, worker: char| {
            format!(
                "app:\n  image: {APP}@{}\nworker:\n  image: ghcr.io/acme/worker@{}\n",
                d(app),
                d(worker)
            )
        };
        let files = [
            file("env/staging/values.yaml", &values('a', 'c')),
            file("env/prod/values.yaml", &values('b', 'd')),
        ];
        let only = [Glob::image("ghcr.io/acme/app").unwrap()];
        let p = plan(&config(), 1, 2, &files, &only).unwrap();
        assert_eq!(p.promotions.len(), 1);
        assert_eq!(p.promotions[0].image, APP);
        assert!(p.skipped.is_empty() && p.unchanged.is_empty());
        assert_eq!(updated(&p, "env/prod/values.yaml"), values('a', 'd'));
        let all = plan(&config(), 1, 2, &files, &[]).unwrap();
        assert_eq!(all.promotions.len(), 2);
        assert_eq!(updated(&all, "env/prod/values.yaml"), values('a', 'c'));
    }

    #[test]
    fn an_image_already_at_the_source_digest_is_unchanged() {
        let text = format!("image: {APP}@{}\n", d('a'));
        let p = run(&[
            file("env/staging/values.yaml", &text),
            file(
                "env/prod/values.yaml",
                &format!("image: {APP}:1.0@{}\n", d('a')),
            ),
        ]);
        assert_eq!(p.unchanged, [APP]);
        assert!(p.edits.is_empty() && p.promotions.is_empty() && p.skipped.is_empty());
        assert!(p.is_empty());
    }

    #[test]
    fn an_image_missing_from_the_target_is_skipped_and_target_only_images_are_untouched() {
        let p = run(&[
            file(
                "env/staging/values.yaml",
                &format!("image: {APP}@{}\n", d('a')),
            ),
            file(
                "env/prod/values.yaml",
                &format!("image: ghcr.io/acme/db@{}\n", d('b')),
            ),
        ]);
        assert!(p.edits.is_empty());
        assert_eq!(p.skipped.len(), 1);
        assert_eq!(p.skipped[0].image, APP);
        assert!(
            p.skipped[0]
                .why
                .starts_with("not deployed in prod; promote adds no new images"),
            "{:?}",
            p.skipped
        );
    }

    #[test]
    fn a_single_scalar_without_a_digest_gets_one_inserted() {
        let staging = format!("image: {APP}:1.2.0@{}\n", d('a'));
        for (before, after) in [
            (
                format!("image: {APP}:1.2.0  # tag only\n"),
                format!("image: {APP}:1.2.0@{}  # tag only\n", d('a')),
            ),
            (
                format!("image:\n  ref: \"{APP}:1.1.0\"\n"),
                format!("image:\n  ref: \"{APP}:1.2.0@{}\"\n", d('a')),
            ),
            (
                format!("image: '{APP}'\n"),
                format!("image: '{APP}@{}'\n", d('a')),
            ),
        ] {
            let p = run(&[
                file("env/staging/values.yaml", &staging),
                file("env/prod/values.yaml", &before),
            ]);
            assert_eq!(updated(&p, "env/prod/values.yaml"), after, "{before}");
            assert_eq!(
                p.promotions[0].from.as_deref().map(|f| f.contains('@')),
                Some(false)
            );
        }
        // Split fields without a digest: the site is skipped, not guessed.
        let p = run(&[
            file("env/staging/values.yaml", &staging),
            file(
                "env/prod/values.yaml",
                &format!("image:\n  repository: {APP}\n  tag: 1.2.0\n"),
            ),
        ]);
        assert!(p.edits.is_empty());
        assert!(
            p.skipped[0].why.contains("add a digest: field"),
            "{:?}",
            p.skipped
        );
    }

    #[test]
    fn several_edits_in_one_file_and_in_several_files() {
        let staging = format!(
            "a:\n  image: {APP}:2.0@{}\nb:\n  image: ghcr.io/acme/worker@{}\n",
            d('a'),
            d('c')
        );
        let prod = format!(
            "a:\n  image: {APP}:1.0@{}\nb:\n  image: ghcr.io/acme/worker:1.0@{}\nc:\n  image: {APP}\n",
            d('b'),
            d('d')
        );
        let other = format!("image: {APP}@{}\n", d('e'));
        let p = run(&[
            file("env/staging/values.yaml", &staging),
            file("env/prod/values.yaml", &prod),
            file("env/prod/other.yaml", &other),
        ]);
        assert_eq!(p.promotions.len(), 4, "{p:?}");
        assert_eq!(
            updated(&p, "env/prod/values.yaml"),
            format!(
                "a:\n  image: {APP}:2.0@{}\nb:\n  image: ghcr.io/acme/worker@{}\nc:\n  image: {APP}@{}\n",
                d('a'),
                d('c'),
                d('a')
            )
        );
        assert_eq!(
            updated(&p, "env/prod/other.yaml"),
            format!("image: {APP}@{}\n", d('a'))
        );
        assert_eq!(
            p.edits.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(),
            ["env/prod/other.yaml", "env/prod/values.yaml"]
        );
    }

    #[test]
    fn shared_and_other_environment_files_are_not_touched() {
        let c = load(&format!("{CONFIG}shared: [\"env/_shared/**\"]\n")).unwrap();
        let text = |c: char| format!("image: {APP}@{}\n", d(c));
        let files = [
            file("env/dev/values.yaml", &text('e')),
            file("env/staging/values.yaml", &text('a')),
            file("env/_shared/values.yaml", &text('f')),
            file("env/prod/values.yaml", &text('b')),
        ];
        let p = plan(&c, 1, 2, &files, &[]).unwrap();
        assert_eq!(p.edits.len(), 1);
        assert_eq!(p.edits[0].path, "env/prod/values.yaml");
        assert_eq!(p.edits[0].updated, text('a'));
    }

    #[test]
    fn an_unreadable_target_file_is_reported() {
        let p = run(&[
            file(
                "env/staging/values.yaml",
                &format!("image: {APP}@{}\n", d('a')),
            ),
            file(
                "env/prod/values.yaml",
                &format!("image: {APP}@{}\n", d('b')),
            ),
            file("env/prod/broken.yaml", "a: [unclosed\n"),
        ]);
        assert_eq!(p.edits.len(), 1);
        assert!(
            p.skipped
                .iter()
                .any(|s| s.file.as_deref() == Some("env/prod/broken.yaml")),
            "{:?}",
            p.skipped
        );
    }

    #[test]
    fn a_path_given_twice_is_refused() {
        let f = file("env/prod/values.yaml", "a: 1\n");
        assert!(matches!(
            plan(&config(), 1, 2, &[f.clone(), f], &[]),
            Err(PromoteError::DuplicateFile { .. })
        ));
    }

    #[test]
    fn overlapping_or_out_of_range_edits_are_refused() {
        let edit = |r: Range<usize>| Edit {
            range: r,
            text: "x".into(),
        };
        assert!(apply("abcdef", &mut [edit(1..3), edit(2..4)]).is_err());
        assert!(apply("abcdef", &mut [edit(2..2), edit(2..2)]).is_err());
        assert!(apply("abcdef", &mut [edit(4..9)]).is_err());
        assert!(apply("äb", &mut [edit(1..2)]).is_err());
        assert_eq!(
            apply("abcdef", &mut [edit(4..5), edit(0..1), edit(6..6)]).unwrap(),
            "xbcdxfx"
        );
    }

    #[test]
    fn the_self_check_catches_an_edit_that_changes_another_reference() {
        let c = config();
        let original = format!(
            "a:\n  image: {APP}@{}\nb:\n  image: {APP}@{}\n",
            d('b'),
            d('b')
        );
        let files = [file("env/prod/values.yaml", &original)];
        let before = scan::scan(&c, &files);
        let promotion = ImagePromotion {
            image: APP.into(),
            file: "env/prod/values.yaml".into(),
            line: 2,
            key: "[0].a.image".into(),
            from: None,
            to: String::new(),
            digest: d('a'),
            source_file: "env/staging/values.yaml".into(),
            source_line: 1,
        };
        let mut expected = vec![Expected {
            site: 0,
            name: APP.into(),
            digest: d('a').parse().unwrap(),
            tag: None,
            promotion,
        }];
        // A broken edit: both references changed.
        let broken = original.replace(&d('b'), &d('a'));
        let e = self_check(&c, &before, "env/prod/values.yaml", &broken, &mut expected)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[0].b.image") && e.contains("not to be promoted"),
            "{e}"
        );
        // An edit that missed: the promoted reference still has the old digest.
        let e = self_check(
            &c,
            &before,
            "env/prod/values.yaml",
            &original,
            &mut expected,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("expected"), "{e}");
        let good = original.replacen(&d('b'), &d('a'), 1);
        self_check(&c, &before, "env/prod/values.yaml", &good, &mut expected).unwrap();
        assert_eq!(expected[0].promotion.to, format!("{APP}@{}", d('a')));
    }

    /// A summary built from JSON (absent optional fields read as none).
    fn summary(decision: &str, reasons: &[&str]) -> VerificationSummary {
        serde_json::from_value(serde_json::json!({
            "decision": decision,
            "policy": "trust",
            "policyHash": "sha256:00",
            "environment": "prod",
            "reasons": reasons,
            "signer": "https://github.com/acme/app/.github/workflows/build.yml@refs/heads/main",
            "sourceCommit": "0123abc",
            "checkedAt": "2025-01-01T00:00:00Z",
            "cached": false,
        }))
        .unwrap()
    }

    #[test]
    fn the_pull_request_names_the_images_and_escapes_cells() {
        let values = format!(
            "app:\n  image: {APP}@{}\nworker:\n  image: ghcr.io/acme/worker@{}\n",
            d('a'),
            d('c')
        );
        let prod = format!(
            "app:\n  image: {APP}@{}\nworker:\n  image: ghcr.io/acme/worker@{}\ndb:\n  image: ghcr.io/acme/db@{}\n",
            d('b'),
            d('d'),
            d('e')
        );
        let mut p = run(&[
            file("env/staging/values.yaml", &values),
            file("env/prod/values.yaml", &prod),
            file(
                "env/staging/db.yaml",
                &format!("image: ghcr.io/acme/cache@{}\n", d('f')),
            ),
        ]);
        let mut verification = BTreeMap::new();
        verification.insert(d('a'), summary("allow", &[]));
        verification.insert(
            d('c'),
            summary("deny", &["no signature | <script>\nfrom & to"]),
        );
        let (title, body) = pull_request(&p, &verification);
        assert_eq!(title, "Promote app, worker from staging to prod");
        assert!(body.contains("| Image | Digest | From | Source commit | Signer | Verification |"));
        assert!(
            body.contains(&format!(
                "| {APP} | `{}` | {APP}@{} | 0123abc |",
                d('a'),
                d('b')
            )),
            "{body}"
        );
        assert!(body.contains("| allow |"), "{body}");
        assert!(
            body.contains("deny: no signature \\| &lt;script&gt; from &amp; to |"),
            "{body}"
        );
        assert!(body.contains("env/staging/values.yaml:2"), "{body}");
        assert!(
            body.contains("ghcr.io/acme/cache: not deployed in prod"),
            "{body}"
        );
        assert!(
            body.ends_with(
                "Generated by custody gitops promote; checked by custody gitops check.\n"
            )
        );
        // Each data row has exactly the table's columns.
        for row in body.lines().filter(|l| l.starts_with("| ghcr.io")) {
            assert_eq!(row.replace("\\|", "").matches('|').count(), 7, "{row}");
        }

        // Images that share a last segment are named in full.
        let mut same = p.clone();
        same.promotions[1].image = "ghcr.io/other/app".into();
        assert_eq!(
            pull_request(&same, &verification).0,
            "Promote ghcr.io/acme/app, ghcr.io/other/app from staging to prod"
        );
        // Long titles count images instead.
        for (i, pr) in p.promotions.iter_mut().enumerate() {
            pr.image = format!("ghcr.io/acme/a-rather-long-image-name-number-{i}");
        }
        let (title, body) = pull_request(&p, &BTreeMap::new());
        assert_eq!(title, "Promote 2 images from staging to prod");
        assert!(title.chars().count() <= MAX_TITLE_CHARS);
        assert!(body.contains("| not verified |"), "{body}");
    }

    #[test]
    fn a_registry_host_containing_sha256_does_not_misplace_the_edit() {
        // The digest is the `sha256:` after the `@`, not the one in the host name.
        let reference = |c: char| format!("image: registry-sha256:5000/app@{}\n", d(c));
        let p = run(&[
            file("env/staging/values.yaml", &reference('a')),
            file("env/prod/values.yaml", &reference('b')),
        ]);
        assert_eq!(p.edits.len(), 1, "{p:?}");
        assert_eq!(p.edits[0].updated, reference('a'));
    }

    #[test]
    fn escaping_covers_pipes_line_breaks_and_html() {
        assert_eq!(
            escape_markdown("a|b\r\nc\nd<e>&f"),
            "a\\|b c d&lt;e&gt;&amp;f"
        );
    }
}
