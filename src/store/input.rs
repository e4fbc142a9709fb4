//! Checking and normalising what comes in: events before they are written, and query
//! arguments before they are bound. Nothing here touches the database.
//!
//! * Times: RFC 3339 with any offset → UTC `YYYY-MM-DDTHH:MM:SS.ffffffZ` (truncated to
//!   microseconds). The fixed width makes text order time order on both backends, so range
//!   queries work without dialect-specific time types.
//! * Digests: `algorithm:hex` as [`crate::reference::Digest`] accepts them.
//! * Commits: hex is stored lower-case.
//! * Text: non-empty where required, at most [`MAX_FIELD_BYTES`], no NUL (PostgreSQL refuses it
//!   in text, which would fail a whole batch).

use std::collections::BTreeSet;

use jiff::Timestamp;

use super::StoreError;
use super::error::truncated;
use super::model::{AdmissionEvent, Event, PromotionEvent, VerdictEvent};
use crate::reference::Digest;

/// Longest text field of an event, in bytes.
pub const MAX_FIELD_BYTES: usize = 4096;
/// Most reasons in one verdict event.
pub const MAX_REASONS: usize = 256;
/// Most log indexes in one verdict event.
pub const MAX_LOG_INDEXES: usize = 256;
/// Shortest commit prefix a query accepts.
pub const MIN_COMMIT_PREFIX: usize = 7;
/// Longest search query, in bytes.
pub const MAX_SEARCH_BYTES: usize = 256;

/// A verdict ready to insert.
#[derive(Debug, Clone)]
pub(crate) struct VerdictRow {
    pub(crate) time: String,
    pub(crate) image: String,
    pub(crate) digest: String,
    pub(crate) environment: Option<String>,
    pub(crate) policy: String,
    pub(crate) policy_hash: String,
    pub(crate) trust_root_hash: String,
    pub(crate) decision: String,
    /// JSON array of strings.
    pub(crate) reasons: String,
    pub(crate) signer: Option<String>,
    pub(crate) issuer: Option<String>,
    pub(crate) source_repository: Option<String>,
    pub(crate) source_ref: Option<String>,
    pub(crate) source_commit: Option<String>,
    pub(crate) workflow: Option<String>,
    pub(crate) run: Option<String>,
    pub(crate) builder: Option<String>,
    pub(crate) sbom_digest: Option<String>,
    /// JSON array of integers.
    pub(crate) log_indexes: String,
}

/// A promotion ready to insert.
#[derive(Debug, Clone)]
pub(crate) struct PromotionRow {
    pub(crate) time: String,
    pub(crate) repository: String,
    pub(crate) environment: String,
    pub(crate) commit: String,
    pub(crate) pull_request: Option<String>,
    pub(crate) image: String,
    pub(crate) from_digest: Option<String>,
    pub(crate) to_digest: String,
    pub(crate) kind: String,
}

/// An admission ready to insert.
#[derive(Debug, Clone)]
pub(crate) struct AdmissionRow {
    pub(crate) time: String,
    pub(crate) cluster: String,
    pub(crate) namespace: String,
    pub(crate) workload: String,
    pub(crate) image: String,
    pub(crate) digest: Option<String>,
    pub(crate) outcome: String,
}

/// One checked event.
#[derive(Debug, Clone)]
pub(crate) enum Row {
    Verdict(Box<VerdictRow>),
    Promotion(PromotionRow),
    Admission(AdmissionRow),
}

/// Checked events grouped by table: what one transaction writes.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    pub(crate) verdicts: Vec<VerdictRow>,
    pub(crate) promotions: Vec<PromotionRow>,
    pub(crate) admissions: Vec<AdmissionRow>,
}

impl Rows {
    pub(crate) fn push(&mut self, row: Row) {
        match row {
            Row::Verdict(v) => self.verdicts.push(*v),
            Row::Promotion(p) => self.promotions.push(p),
            Row::Admission(a) => self.admissions.push(a),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.verdicts.len() + self.promotions.len() + self.admissions.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every image digest the rows name, sorted (a fixed lock order for concurrent writers).
    pub(crate) fn digests(&self) -> BTreeSet<&str> {
        self.verdicts
            .iter()
            .map(|v| v.digest.as_str())
            .chain(
                self.promotions
                    .iter()
                    .flat_map(|p| [Some(p.to_digest.as_str()), p.from_digest.as_deref()])
                    .flatten(),
            )
            .chain(self.admissions.iter().filter_map(|a| a.digest.as_deref()))
            .collect()
    }

    /// Every image name, sorted (a fixed lock order for concurrent writers).
    pub(crate) fn images(&self) -> BTreeSet<&str> {
        self.verdicts
            .iter()
            .map(|v| v.image.as_str())
            .chain(self.promotions.iter().map(|p| p.image.as_str()))
            .chain(self.admissions.iter().map(|a| a.image.as_str()))
            .collect()
    }
}

impl Event {
    /// Checks the event as [`crate::store::Store::record`] would, without writing it.
    ///
    /// # Errors
    /// The first field that is not acceptable: [`StoreError::InvalidTime`],
    /// [`StoreError::InvalidDigest`], [`StoreError::InvalidInput`] or [`StoreError::Limit`].
    pub fn validate(&self) -> Result<(), StoreError> {
        Row::from_event(self).map(drop)
    }
}

impl Row {
    pub(crate) fn from_event(event: &Event) -> Result<Self, StoreError> {
        Ok(match event {
            Event::Verdict(v) => Self::Verdict(Box::new(verdict(v)?)),
            Event::Promotion(p) => Self::Promotion(promotion(p)?),
            Event::Admission(a) => Self::Admission(admission(a)?),
        })
    }
}

fn verdict(v: &VerdictEvent) -> Result<VerdictRow, StoreError> {
    let decision = one_of("verdict decision", &v.decision, &["allow", "deny", "error"])?;
    if v.reasons.len() > MAX_REASONS {
        return Err(limit(
            "reasons in one verdict",
            MAX_REASONS,
            v.reasons.len(),
        ));
    }
    for r in &v.reasons {
        text("verdict reason", r, true)?;
    }
    if v.log_indexes.len() > MAX_LOG_INDEXES {
        return Err(limit(
            "log indexes in one verdict",
            MAX_LOG_INDEXES,
            v.log_indexes.len(),
        ));
    }
    Ok(VerdictRow {
        time: time("verdict time", &v.time)?,
        image: text("verdict image", &v.image, true)?,
        digest: digest("verdict digest", &v.digest)?,
        environment: opt_text("verdict environment", v.environment.as_deref())?,
        policy: text("verdict policy", &v.policy, true)?,
        policy_hash: text("verdict policyHash", &v.policy_hash, true)?,
        trust_root_hash: text("verdict trustRootHash", &v.trust_root_hash, true)?,
        decision,
        reasons: json(&v.reasons),
        signer: opt_text("verdict signer", v.signer.as_deref())?,
        issuer: opt_text("verdict issuer", v.issuer.as_deref())?,
        source_repository: opt_text("verdict sourceRepository", v.source_repository.as_deref())?,
        source_ref: opt_text("verdict sourceRef", v.source_ref.as_deref())?,
        source_commit: opt_text("verdict sourceCommit", v.source_commit.as_deref())?
            .map(commit_case),
        workflow: opt_text("verdict workflow", v.workflow.as_deref())?,
        run: opt_text("verdict run", v.run.as_deref())?,
        builder: opt_text("verdict builder", v.builder.as_deref())?,
        sbom_digest: v
            .sbom_digest
            .as_deref()
            .map(|d| digest("verdict sbomDigest", d))
            .transpose()?,
        log_indexes: json(&v.log_indexes),
    })
}

fn promotion(p: &PromotionEvent) -> Result<PromotionRow, StoreError> {
    Ok(PromotionRow {
        time: time("promotion time", &p.time)?,
        repository: text("promotion repository", &p.repository, true)?,
        environment: text("promotion environment", &p.environment, true)?,
        commit: commit_case(text("promotion commit", &p.commit, true)?),
        pull_request: opt_text("promotion pullRequest", p.pull_request.as_deref())?,
        image: text("promotion image", &p.image, true)?,
        from_digest: p
            .from_digest
            .as_deref()
            .map(|d| digest("promotion fromDigest", d))
            .transpose()?,
        to_digest: digest("promotion toDigest", &p.to_digest)?,
        kind: one_of(
            "promotion kind",
            &p.kind,
            &["promotion", "rollback", "auto-update"],
        )?,
    })
}

fn admission(a: &AdmissionEvent) -> Result<AdmissionRow, StoreError> {
    Ok(AdmissionRow {
        time: time("admission time", &a.time)?,
        cluster: text("admission cluster", &a.cluster, true)?,
        // Empty for a cluster-scoped object.
        namespace: text("admission namespace", &a.namespace, false)?,
        workload: text("admission workload", &a.workload, true)?,
        image: text("admission image", &a.image, true)?,
        digest: a
            .digest
            .as_deref()
            .map(|d| digest("admission digest", d))
            .transpose()?,
        outcome: text("admission outcome", &a.outcome, true)?,
    })
}

/// An RFC 3339 time (any offset) in the store's fixed UTC format.
pub(crate) fn time(field: &'static str, value: &str) -> Result<String, StoreError> {
    let bad = |reason: String| StoreError::InvalidTime {
        field,
        found: truncated(value, 80),
        reason,
    };
    if value.len() > 64 {
        return Err(bad("too long".into()));
    }
    let ts: Timestamp = value.parse().map_err(|e: jiff::Error| bad(e.to_string()))?;
    // Truncate to microseconds: PostgreSQL's precision, and a fixed width.
    let micros = ts.subsec_nanosecond() / 1000 * 1000;
    let ts = Timestamp::new(ts.as_second(), micros).map_err(|e| bad(e.to_string()))?;
    let s = ts.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string();
    // Years before 0001 would print with a sign and break text order.
    if s.len() != 27 || !s.starts_with(|c: char| c.is_ascii_digit()) || s.starts_with("0000") {
        return Err(bad("the year must be 0001 to 9999".into()));
    }
    Ok(s)
}

/// A digest, checked.
pub(crate) fn digest(field: &'static str, value: &str) -> Result<String, StoreError> {
    value
        .parse::<Digest>()
        .map(|d| d.to_string())
        .map_err(|e| StoreError::InvalidDigest {
            field,
            found: truncated(value, 80),
            reason: e.to_string(),
        })
}

/// A commit prefix for a query: 7 to 64 hex digits, lower-cased. Returns the prefix and
/// whether it is a full commit (40 or 64 digits).
pub(crate) fn commit_prefix(value: &str) -> Result<String, StoreError> {
    let bad = |reason: &str| StoreError::InvalidInput {
        field: "commit",
        found: truncated(value, 80),
        reason: reason.into(),
    };
    if value.len() < MIN_COMMIT_PREFIX || value.len() > 64 {
        return Err(bad(
            "a commit is 7 to 64 hexadecimal digits (a full SHA or a prefix)",
        ));
    }
    if !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("a commit is hexadecimal digits only"));
    }
    Ok(value.to_ascii_lowercase())
}

/// The exclusive upper bound of the strings starting with `prefix` (prefix + U+007F, above every
/// character digests, commits and image names use). Prefix searches are then index range scans
/// on both backends, without LIKE.
pub(crate) fn prefix_end(prefix: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + 1);
    s.push_str(prefix);
    s.push('\u{7f}');
    s
}

/// A required (non-empty) or optional text field.
pub(crate) fn text(field: &'static str, value: &str, required: bool) -> Result<String, StoreError> {
    let bad = |reason: &str| StoreError::InvalidInput {
        field,
        found: truncated(value, 80),
        reason: reason.into(),
    };
    if required && value.is_empty() {
        return Err(bad("must not be empty"));
    }
    if value.len() > MAX_FIELD_BYTES {
        return Err(limit(field, MAX_FIELD_BYTES, value.len()));
    }
    if value.contains('\0') {
        return Err(bad("must not contain NUL characters"));
    }
    Ok(value.to_owned())
}

fn opt_text(field: &'static str, value: Option<&str>) -> Result<Option<String>, StoreError> {
    value.map(|v| text(field, v, true)).transpose()
}

fn one_of(field: &'static str, value: &str, allowed: &[&str]) -> Result<String, StoreError> {
    if allowed.contains(&value) {
        Ok(value.to_owned())
    } else {
        Err(StoreError::InvalidInput {
            field,
            found: truncated(value, 80),
            reason: format!("expected one of {}", allowed.join(", ")),
        })
    }
}

fn commit_case(c: String) -> String {
    if c.bytes().all(|b| b.is_ascii_hexdigit()) {
        c.to_ascii_lowercase()
    } else {
        c
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    // Vec<String> and Vec<u64> always serialise.
    serde_json::to_string(value).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn limit(what: &'static str, limit: usize, found: usize) -> StoreError {
    StoreError::Limit {
        what,
        limit: u64::try_from(limit).unwrap_or(u64::MAX),
        found: u64::try_from(found).unwrap_or(u64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_normalised_to_fixed_width_utc() {
        assert_eq!(
            time("t", "2026-11-23T12:00:00+02:00").unwrap(),
            "2026-11-23T10:00:00.000000Z"
        );
        assert_eq!(
            time("t", "2026-11-23T10:00:00.123456789Z").unwrap(),
            "2026-11-23T10:00:00.123456Z"
        );
        assert!(time("t", "yesterday").is_err());
        assert!(time("t", "2026-11-23T10:00:00").is_err(), "no offset");
        assert!(time("t", "-0001-01-01T00:00:00Z").is_err());
    }

    #[test]
    fn commit_prefixes() {
        assert_eq!(commit_prefix("ABCDEF0").unwrap(), "abcdef0");
        assert!(commit_prefix("abcdef").is_err());
        assert!(commit_prefix("' OR 1=1 --").is_err());
        assert!(commit_prefix(&"a".repeat(65)).is_err());
    }
}
