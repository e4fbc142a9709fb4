//! What goes into the lineage store (events) and what comes out of it (lineage, pages, hits).
//!
//! Every type serialises to JSON with camelCase field names: the REST API and the HTML page
//! render them as they are. Times are RFC 3339 UTC strings in the store's fixed format
//! `YYYY-MM-DDTHH:MM:SS.ffffffZ` on the way out, whatever offset they were recorded with.

use serde::{Deserialize, Serialize};

/// One thing that happened to an image: a verdict, a promotion in the delivery repository, or an
/// admission into a cluster. JSON: `{"type": "verdict" | "promotion" | "admission", …fields}`.
// Verdicts are the big variant; boxing it would change the API callers build events with, and
// events are moved into the writer's queue once, not copied around.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Event {
    /// custody judged an image digest.
    Verdict(VerdictEvent),
    /// The delivery repository moved an environment to a digest.
    Promotion(PromotionEvent),
    /// A cluster's admission controller admitted (or refused) a workload's image.
    Admission(AdmissionEvent),
}

/// A verdict and the verified facts behind it.
///
/// `time` is RFC 3339 with any offset (stored as UTC, truncated to microseconds); `digest` and
/// `sbom_digest` must be `algorithm:hex` digests (sha256, sha384 or sha512, lower-case hex);
/// `decision` is `allow`, `deny` or `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerdictEvent {
    /// When the verdict was made (RFC 3339).
    pub time: String,
    /// The image name, `registry/repository` (no tag, no digest).
    pub image: String,
    /// The image digest judged.
    pub digest: String,
    /// The environment the trust policy was evaluated for, if any.
    pub environment: Option<String>,
    /// The trust policy's name.
    pub policy: String,
    /// The trust policy's content hash.
    pub policy_hash: String,
    /// The trust root's content hash.
    pub trust_root_hash: String,
    /// `allow`, `deny` or `error`.
    pub decision: String,
    /// Why (every reason of a deny or error; may be empty for an allow).
    #[serde(default)]
    pub reasons: Vec<String>,
    /// The verified signer identity (certificate SAN or key hint).
    pub signer: Option<String>,
    /// The OIDC issuer of the signer's certificate.
    pub issuer: Option<String>,
    /// The source repository the provenance names.
    pub source_repository: Option<String>,
    /// The source ref (e.g. `refs/heads/main`).
    pub source_ref: Option<String>,
    /// The source commit (hex; stored lower-case).
    pub source_commit: Option<String>,
    /// The build workflow (e.g. `.github/workflows/release.yml`).
    pub workflow: Option<String>,
    /// The build run (e.g. a run URL or id).
    pub run: Option<String>,
    /// The builder identity.
    pub builder: Option<String>,
    /// The digest of the SBOM accepted with it.
    pub sbom_digest: Option<String>,
    /// Transparency-log indexes of the accepted entries.
    #[serde(default)]
    pub log_indexes: Vec<u64>,
}

/// An environment of the delivery repository moved to a digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromotionEvent {
    /// When (RFC 3339): the merge time of the change.
    pub time: String,
    /// The delivery repository.
    pub repository: String,
    /// The environment that changed.
    pub environment: String,
    /// The delivery repository's commit that made the change (not the source commit).
    pub commit: String,
    /// The pull request, if any.
    pub pull_request: Option<String>,
    /// The image name, `registry/repository`.
    pub image: String,
    /// The digest the environment ran before, if any.
    pub from_digest: Option<String>,
    /// The digest it runs now.
    pub to_digest: String,
    /// `promotion`, `rollback` or `auto-update`.
    pub kind: String,
}

/// A cluster's admission decision for one image of a workload.
///
/// The store treats `cluster` as the environment the admission happened in: an admission
/// reaches the environment named like its cluster (see [`crate::store::Store::at`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionEvent {
    /// When (RFC 3339).
    pub time: String,
    /// The cluster.
    pub cluster: String,
    /// The namespace.
    pub namespace: String,
    /// The workload (e.g. `Deployment/api`).
    pub workload: String,
    /// The image name, `registry/repository`.
    pub image: String,
    /// The digest, when the reference carried one.
    pub digest: Option<String>,
    /// The admission outcome: `allow` counts as admitted; anything else (`deny`, `error`, …)
    /// is kept but never counts.
    pub outcome: String,
}

/// Everything the store knows about one digest.
///
/// Lists are bounded: see [`crate::store::LINEAGE_MAX_ROWS`] (verdicts, admissions and
/// promotions keep the newest rows), [`crate::store::LINEAGE_MAX_LOG_INDEXES`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lineage {
    /// The digest.
    pub digest: String,
    /// Every image name the digest was seen under, sorted.
    pub images: Vec<String>,
    /// Distinct builds (source repository, ref, commit, workflow, run, builder) the verdicts'
    /// provenance named, oldest first.
    pub builds: Vec<Build>,
    /// Distinct signers the verdicts verified, oldest first.
    pub signers: Vec<SignerSeen>,
    /// The verdicts, newest first.
    pub verdicts: Vec<VerdictSummary>,
    /// Where the digest went: per environment by promotion, per cluster/namespace by admission.
    pub environments: Vec<EnvironmentReached>,
    /// Promotions to or away from the digest, oldest first.
    pub promotions: Vec<PromotionEvent>,
    /// Admissions of the digest, newest first.
    pub admissions: Vec<AdmissionEvent>,
    /// SBOM digests accepted with it, sorted.
    pub sbom_digests: Vec<String>,
    /// Transparency-log indexes of the accepted evidence, sorted.
    pub log_indexes: Vec<u64>,
}

/// One build the provenance of a digest named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Build {
    /// The source repository.
    pub source_repository: Option<String>,
    /// The source ref.
    pub source_ref: Option<String>,
    /// The source commit.
    pub source_commit: Option<String>,
    /// The workflow.
    pub workflow: Option<String>,
    /// The run.
    pub run: Option<String>,
    /// The builder.
    pub builder: Option<String>,
    /// First verdict that named this build.
    pub first_seen: String,
    /// Last verdict that named this build.
    pub last_seen: String,
}

/// One signer identity verified on a digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignerSeen {
    /// The identity.
    pub signer: String,
    /// Its OIDC issuer.
    pub issuer: Option<String>,
    /// First verdict that verified it.
    pub first_seen: String,
    /// Last verdict that verified it.
    pub last_seen: String,
    /// How many verdicts verified it.
    pub verdicts: u64,
}

/// A verdict in a lineage (the whole record: [`crate::store::Store::verdict`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerdictSummary {
    /// The verdict's id in the store.
    pub id: i64,
    /// When.
    pub time: String,
    /// Trust policy name.
    pub policy: String,
    /// Trust policy content hash.
    pub policy_hash: String,
    /// Environment judged for.
    pub environment: Option<String>,
    /// `allow`, `deny` or `error`.
    pub decision: String,
}

/// A digest reached an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentReached {
    /// The environment (for admissions: the cluster).
    pub environment: String,
    /// First promotion or admission.
    pub first_seen: String,
    /// Last promotion or admission.
    pub last_seen: String,
    /// `promotion` or `admission`.
    pub via: String,
    /// The delivery commit of the first promotion (via promotion).
    pub commit: Option<String>,
    /// The pull request of the first promotion (via promotion).
    pub pull_request: Option<String>,
    /// The cluster (via admission).
    pub cluster: Option<String>,
    /// The namespace (via admission).
    pub namespace: Option<String>,
}

/// A digest built from a commit ([`crate::store::Store::by_commit`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Built {
    /// The digest.
    pub digest: String,
    /// Its image name (from its first verdict naming the commit).
    pub image: String,
    /// The workflow that built it (same verdict).
    pub workflow: Option<String>,
    /// First verdict naming the commit for this digest.
    pub first_verified: String,
    /// Environments it reached (promotions; clusters for admissions), in order of arrival.
    pub environments: Vec<String>,
}

/// What ran in an environment at a time ([`crate::store::Store::at`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployed {
    /// The image name.
    pub image: String,
    /// The digest running.
    pub digest: String,
    /// Since when this digest runs there without interruption.
    pub since: String,
    /// `promotion` when a promotion brought it (then `commit` is the delivery commit), else
    /// `admission`.
    pub via: String,
    /// The delivery commit of that promotion.
    pub commit: Option<String>,
}

/// A digest an identity signed that was admitted ([`crate::store::Store::by_signer`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Signed {
    /// The digest.
    pub digest: String,
    /// Its image name (from the identity's first verdict on it).
    pub image: String,
    /// First allow verdict for it by that identity, or first admission, whichever came first.
    pub first_admitted: String,
    /// Environments it reached, in order of arrival.
    pub environments: Vec<String>,
}

/// One stored verdict, whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerdictRecord {
    /// Its id in the store.
    pub id: i64,
    /// The event as recorded (time normalised to UTC).
    pub event: VerdictEvent,
}

/// A search result ([`crate::store::Store::search`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchHit {
    /// `digest`, `commit` or `image`.
    pub kind: String,
    /// The digest, commit or image name found.
    pub value: String,
    /// The digest to open (for `digest` and `commit` hits).
    pub digest: Option<String>,
}

/// A page request: at most `limit` items after `cursor`.
///
/// `limit` must be 1 to [`crate::store::MAX_PAGE_LIMIT`] (default 100); `cursor` is the `next`
/// of the previous page of the same query, opaque. Pages are keyset-based (never OFFSET): a walk
/// sees every row that existed when it started exactly once; rows recorded during the walk may or
/// may not appear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    /// Most items on the page (1..=1000).
    pub limit: u32,
    /// Where to continue (the previous page's `next`).
    pub cursor: Option<String>,
}

impl Default for Page {
    fn default() -> Self {
        Self {
            limit: crate::store::DEFAULT_PAGE_LIMIT,
            cursor: None,
        }
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Paged<T> {
    /// The items.
    pub items: Vec<T>,
    /// The cursor of the next page; `None` on the last page.
    pub next: Option<String>,
}
