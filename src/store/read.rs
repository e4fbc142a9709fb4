//! The queries. Every argument is checked in Rust first (digest, commit prefix, time, page) and
//! then bound, never formatted into SQL; prefix matches are index range scans
//! (`col >= prefix AND col < prefix || U+007F`), substring matches escape `%`, `_` and `\`.
//!
//! Digest ids are turned back into digests with scalar subqueries
//! (`(SELECT digest FROM digests WHERE id = …)`), not joins: PostgreSQL's generic plans for
//! prepared statements otherwise hash-join the whole `digests` table for a handful of rows.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{FromRow, QueryBuilder};

use super::cursor::{self, Query};
use super::error::truncated;
use super::input::{self, MAX_SEARCH_BYTES};
use super::model::{
    AdmissionEvent, Build, Built, Deployed, EnvironmentReached, Lineage, Page, Paged,
    PromotionEvent, SearchHit, Signed, SignerSeen, VerdictEvent, VerdictRecord, VerdictSummary,
};
use super::{
    LINEAGE_MAX_LOG_INDEXES, LINEAGE_MAX_ROWS, MAX_PAGE_LIMIT, Store, StoreError, timed, with_conn,
};

/// Maps a driver error during `operation`.
fn q(operation: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| StoreError::from_sqlx(operation, e)
}

/// Cuts `rows`, fetched with `limit + 1`, to `limit`; whether a next page exists.
fn trim_page<T>(rows: &mut Vec<T>, limit: i64) -> bool {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    more
}

/// A page with nothing on it (and no next page).
fn no_items<T>() -> Paged<T> {
    Paged {
        items: Vec::new(),
        next: None,
    }
}

/// A stored JSON list (reasons, log indexes) that does not parse: the row is damaged.
fn damaged(operation: &'static str, e: serde_json::Error) -> StoreError {
    StoreError::from_sqlx(operation, sqlx::Error::Decode(Box::new(e)))
}

/// One row of the lineage statement: a kind tag and up to nine text columns.
#[derive(FromRow)]
struct LineageRow {
    k: String,
    c1: Option<String>,
    c2: Option<String>,
    c3: Option<String>,
    c4: Option<String>,
    c5: Option<String>,
    c6: Option<String>,
    c7: Option<String>,
    c8: Option<String>,
    c9: Option<String>,
}

#[derive(FromRow)]
struct VerdictFullRow {
    id: i64,
    occurred_at: String,
    image: String,
    digest: String,
    environment: Option<String>,
    policy: String,
    policy_hash: String,
    trust_root_hash: String,
    decision: String,
    reasons: String,
    signer: Option<String>,
    issuer: Option<String>,
    source_repository: Option<String>,
    source_ref: Option<String>,
    source_commit: Option<String>,
    workflow: Option<String>,
    run: Option<String>,
    builder: Option<String>,
    sbom_digest: Option<String>,
    log_indexes: String,
}

#[derive(FromRow)]
struct CommitDigestRow {
    digest_id: i64,
    digest: String,
    first_id: i64,
    first_verified: String,
}

#[derive(FromRow)]
struct FirstVerdictRow {
    id: i64,
    image: String,
    workflow: Option<String>,
}

#[derive(FromRow)]
struct DigestEnvRow {
    digest_id: i64,
    environment: String,
    first_seen: String,
}

#[derive(FromRow)]
struct SignedRow {
    digest_id: i64,
    digest: String,
    image: String,
    first_allow: Option<String>,
}

#[derive(FromRow)]
struct DeployedRow {
    image: String,
    digest: String,
    since: String,
    via: String,
    commit_sha: Option<String>,
}

#[derive(FromRow)]
struct CommitHitRow {
    commit_sha: String,
    digest: String,
}

/// Everything about one digest in one statement (one round trip, one snapshot): a `UNION ALL`
/// of tagged rows, every column text. `$1` the digest. The cap per list,
/// [`LINEAGE_MAX_ROWS`](crate::store::LINEAGE_MAX_ROWS), is written into the SQL: SQLite re-prepares a statement whenever a
/// bound `LIMIT` is re-bound, and this one is long to prepare.
///
/// * `v` verdicts (newest): id, time, policy, policy hash, environment, decision
/// * `b` builds: repository, ref, commit, workflow, run, builder, first, last
/// * `s` signers: signer, issuer, first, last, count
/// * `m` SBOM digests; `l` log-index lists (JSON); `i` image names
/// * `p` promotions to or from it (newest): time, repository, environment, commit, pull request,
///   image, from digest, to digest, kind
/// * `e` environments by promotion: environment, first, last, commit and pull request of the first
/// * `n` clusters by allowed admission: cluster, namespace, first, last
/// * `a` admissions (newest): time, cluster, namespace, workload, image, outcome
const LINEAGE: &str = "\
SELECT 'v' AS k, CAST(id AS TEXT) AS c1, occurred_at AS c2, policy AS c3, policy_hash AS c4, \
       environment AS c5, decision AS c6, NULL AS c7, NULL AS c8, NULL AS c9 \
  FROM (SELECT id, occurred_at, policy, policy_hash, environment, decision FROM verdicts \
        WHERE digest_id = (SELECT id FROM digests WHERE digest = $1) ORDER BY id DESC LIMIT 100) v \
UNION ALL \
SELECT 'b', source_repository, source_ref, source_commit, workflow, run, builder, first_seen, last_seen, NULL \
  FROM (SELECT source_repository, source_ref, source_commit, workflow, run, builder, \
               MIN(occurred_at) AS first_seen, MAX(occurred_at) AS last_seen FROM verdicts \
        WHERE digest_id = (SELECT id FROM digests WHERE digest = $1) \
          AND (source_repository IS NOT NULL OR source_ref IS NOT NULL OR source_commit IS NOT NULL \
               OR workflow IS NOT NULL OR run IS NOT NULL OR builder IS NOT NULL) \
        GROUP BY source_repository, source_ref, source_commit, workflow, run, builder \
        ORDER BY first_seen LIMIT 100) b \
UNION ALL \
SELECT 's', signer, issuer, first_seen, last_seen, CAST(n AS TEXT), NULL, NULL, NULL, NULL \
  FROM (SELECT signer, issuer, MIN(occurred_at) AS first_seen, MAX(occurred_at) AS last_seen, \
               COUNT(*) AS n FROM verdicts \
        WHERE digest_id = (SELECT id FROM digests WHERE digest = $1) AND signer IS NOT NULL \
        GROUP BY signer, issuer ORDER BY first_seen LIMIT 100) s \
UNION ALL \
SELECT 'm', sbom_digest, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
  FROM (SELECT DISTINCT sbom_digest FROM verdicts \
        WHERE digest_id = (SELECT id FROM digests WHERE digest = $1) AND sbom_digest IS NOT NULL \
        ORDER BY sbom_digest LIMIT 100) m \
UNION ALL \
SELECT 'l', log_indexes, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
  FROM (SELECT DISTINCT log_indexes FROM verdicts \
        WHERE digest_id = (SELECT id FROM digests WHERE digest = $1) AND log_indexes <> '[]' \
        LIMIT 100) l \
UNION ALL \
SELECT 'i', image, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
  FROM (SELECT image FROM verdicts WHERE digest_id = (SELECT id FROM digests WHERE digest = $1) \
        UNION SELECT image FROM promotions WHERE to_digest_id = (SELECT id FROM digests WHERE digest = $1) \
        UNION SELECT image FROM admissions WHERE digest_id = (SELECT id FROM digests WHERE digest = $1) \
        ORDER BY image LIMIT 100) i \
UNION ALL \
SELECT 'p', p.occurred_at, p.repository, p.environment, p.delivery_commit, p.pull_request, p.image, \
       (SELECT digest FROM digests WHERE id = p.from_digest_id), \
       (SELECT digest FROM digests WHERE id = p.to_digest_id), p.kind \
  FROM (SELECT id, occurred_at, repository, environment, delivery_commit, pull_request, image, \
               from_digest_id, to_digest_id, kind FROM promotions \
        WHERE to_digest_id = (SELECT id FROM digests WHERE digest = $1) \
           OR from_digest_id = (SELECT id FROM digests WHERE digest = $1) \
        ORDER BY occurred_at DESC, id DESC LIMIT 100) p \
UNION ALL \
SELECT 'e', environment, first_seen, last_seen, delivery_commit, pull_request, NULL, NULL, NULL, NULL \
  FROM (SELECT environment, first_seen, last_seen, delivery_commit, pull_request \
        FROM (SELECT environment, delivery_commit, pull_request, \
                     MIN(occurred_at) OVER (PARTITION BY environment) AS first_seen, \
                     MAX(occurred_at) OVER (PARTITION BY environment) AS last_seen, \
                     ROW_NUMBER() OVER (PARTITION BY environment ORDER BY occurred_at, id) AS rn \
              FROM promotions WHERE to_digest_id = (SELECT id FROM digests WHERE digest = $1)) w \
        WHERE rn = 1 ORDER BY first_seen, environment LIMIT 100) e \
UNION ALL \
SELECT 'n', cluster, namespace, first_seen, last_seen, NULL, NULL, NULL, NULL, NULL \
  FROM (SELECT cluster, namespace, MIN(occurred_at) AS first_seen, MAX(occurred_at) AS last_seen \
        FROM admissions WHERE digest_id = (SELECT id FROM digests WHERE digest = $1) \
          AND outcome = 'allow' \
        GROUP BY cluster, namespace ORDER BY first_seen LIMIT 100) n \
UNION ALL \
SELECT 'a', occurred_at, cluster, namespace, workload, image, outcome, NULL, NULL, NULL \
  FROM (SELECT occurred_at, cluster, namespace, workload, image, outcome, id FROM admissions \
        WHERE digest_id = (SELECT id FROM digests WHERE digest = $1) \
        ORDER BY occurred_at DESC, id DESC LIMIT 100) a";

const VERDICT_BY_ID: &str = "SELECT v.id, v.occurred_at, v.image, \
     (SELECT digest FROM digests WHERE id = v.digest_id) AS digest, v.environment, v.policy, \
     v.policy_hash, v.trust_root_hash, v.decision, v.reasons, v.signer, v.issuer, \
     v.source_repository, v.source_ref, v.source_commit, v.workflow, v.run, v.builder, \
     v.sbom_digest, v.log_indexes \
     FROM verdicts v WHERE v.id = $1";

const COMMIT_DIGESTS: &str = "SELECT c.digest_id, \
     (SELECT digest FROM digests WHERE id = c.digest_id) AS digest, c.first_id, c.first_verified FROM (\
       SELECT digest_id, MIN(id) AS first_id, MIN(occurred_at) AS first_verified FROM verdicts \
       WHERE source_commit >= $1 AND source_commit < $2 \
       GROUP BY digest_id HAVING MIN(id) > $3 ORDER BY first_id LIMIT $4) c \
     ORDER BY c.first_id";

const SIGNER_DIGESTS: &str = "SELECT v.digest_id FROM verdicts v \
     WHERE v.signer = $1 AND v.digest_id > $2 GROUP BY v.digest_id \
     HAVING MAX(CASE WHEN v.decision = 'allow' THEN 1 ELSE 0 END) = 1 \
       OR EXISTS (SELECT 1 FROM admissions a WHERE a.digest_id = v.digest_id AND a.outcome = 'allow') \
     ORDER BY v.digest_id LIMIT $3";

/// `at`, step 1: the page of image names with a promotion or allowed admission in the
/// environment at or before the time.
const AT_IMAGES: &str = "SELECT image FROM (\
       SELECT image FROM promotions WHERE environment = $1 AND occurred_at <= $2 AND image > $3 \
       UNION \
       SELECT image FROM admissions WHERE cluster = $1 AND occurred_at <= $2 AND image > $3 \
         AND outcome = 'allow' AND digest_id IS NOT NULL) u \
     ORDER BY image LIMIT $4";

/// `at`, step 2, for the images `$3..=$4`: the latest event decides the digest (promotions win
/// ties over admissions); the run of that digest starts after the last event of another digest;
/// `since` is the run's first event; `via`/`commit` come from the run's first promotion, if
/// any, else it came by admission.
const AT_DEPLOYED: &str = "WITH ev AS (\
       SELECT image, to_digest_id AS digest_id, occurred_at, 1 AS prio, id, delivery_commit AS commit_sha \
       FROM promotions WHERE environment = $1 AND occurred_at <= $2 AND image >= $3 AND image <= $4 \
       UNION ALL \
       SELECT image, digest_id, occurred_at, 0 AS prio, id, NULL AS commit_sha \
       FROM admissions WHERE cluster = $1 AND occurred_at <= $2 AND image >= $3 AND image <= $4 \
         AND outcome = 'allow' AND digest_id IS NOT NULL), \
     ranked AS (SELECT image, digest_id, occurred_at, \
         ROW_NUMBER() OVER (PARTITION BY image ORDER BY occurred_at DESC, prio DESC, id DESC) AS rn \
       FROM ev), \
     cur AS (SELECT image, digest_id, occurred_at FROM ranked WHERE rn = 1), \
     other AS (SELECT ev.image, MAX(ev.occurred_at) AS last_other FROM ev \
       JOIN cur ON ev.image = cur.image WHERE ev.digest_id <> cur.digest_id GROUP BY ev.image), \
     run AS (SELECT ev.image, ev.digest_id, ev.occurred_at, ev.prio, ev.id, ev.commit_sha FROM ev \
       JOIN cur ON ev.image = cur.image AND ev.digest_id = cur.digest_id \
       LEFT JOIN other ON other.image = ev.image \
       WHERE other.last_other IS NULL OR ev.occurred_at >= other.last_other), \
     first_of_run AS (SELECT image, digest_id, prio, commit_sha, \
         ROW_NUMBER() OVER (PARTITION BY image ORDER BY prio DESC, occurred_at, id) AS rn \
       FROM run), \
     since AS (SELECT image, MIN(occurred_at) AS since FROM run GROUP BY image) \
     SELECT f.image, (SELECT digest FROM digests WHERE id = f.digest_id) AS digest, s.since, \
       CASE WHEN f.prio = 1 THEN 'promotion' ELSE 'admission' END AS via, f.commit_sha \
     FROM first_of_run f JOIN since s ON s.image = f.image \
     WHERE f.rn = 1 ORDER BY f.image";

const SEARCH_DIGESTS: &str =
    "SELECT digest FROM digests WHERE digest >= $1 AND digest < $2 ORDER BY digest LIMIT $3";

const SEARCH_COMMITS: &str = "SELECT c.commit_sha, \
     (SELECT digest FROM digests WHERE id = c.digest_id) AS digest FROM (\
       SELECT source_commit AS commit_sha, digest_id FROM verdicts \
         WHERE source_commit >= $1 AND source_commit < $2 \
       UNION SELECT delivery_commit, to_digest_id FROM promotions \
         WHERE delivery_commit >= $1 AND delivery_commit < $2) c \
     ORDER BY c.commit_sha, digest LIMIT $3";

const SEARCH_IMAGES: &str =
    "SELECT name FROM images WHERE LOWER(name) LIKE $1 ESCAPE '\\' ORDER BY name LIMIT $2";

/// Environments each digest (by id) reached (promotions; clusters of allowed admissions), in
/// order of arrival, without repeats. A macro so it runs on either backend's connection.
macro_rules! environments_of {
    ($conn:expr, $ids:expr, $op:expr) => {{
        let ids: &[i64] = $ids;
        let mut qb = QueryBuilder::new(
            "SELECT to_digest_id AS digest_id, environment, MIN(occurred_at) AS first_seen \
             FROM promotions WHERE to_digest_id IN (",
        );
        let mut list = qb.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        qb.push(
            ") GROUP BY to_digest_id, environment UNION ALL \
             SELECT digest_id, cluster AS environment, MIN(occurred_at) AS first_seen \
             FROM admissions WHERE outcome = 'allow' AND digest_id IN (",
        );
        let mut list = qb.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        qb.push(") GROUP BY digest_id, cluster");
        let mut rows: Vec<DigestEnvRow> = qb
            .build_query_as()
            .fetch_all(&mut *$conn)
            .await
            .map_err(q($op))?;
        rows.sort_by(|a, b| (a.digest_id, &a.first_seen).cmp(&(b.digest_id, &b.first_seen)));
        let mut envs: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for r in rows {
            let list = envs.entry(r.digest_id).or_default();
            if !list.contains(&r.environment) {
                list.push(r.environment);
            }
        }
        envs
    }};
}

impl Store {
    /// Everything recorded about `digest`; `None` when nothing is.
    ///
    /// # Errors
    /// [`StoreError::InvalidDigest`] for a malformed digest (nothing is queried);
    /// [`StoreError::ConnectionLost`] / [`StoreError::Query`] (also for a damaged stored row);
    /// [`StoreError::Timeout`] after [`QUERY_TIMEOUT`](crate::store::QUERY_TIMEOUT).
    ///
    /// # Limits
    /// Each list holds at most [`LINEAGE_MAX_ROWS`] rows (the
    /// newest verdicts, promotions and admissions; the first environments reached), log indexes
    /// at most [`LINEAGE_MAX_LOG_INDEXES`]. Everything is read by one
    /// statement, so the lists agree with each other (one snapshot).
    pub async fn lineage(&self, digest: &str) -> Result<Option<Lineage>, StoreError> {
        let digest = input::digest("digest", digest)?;
        let op = "reading a lineage";
        let rows: Vec<LineageRow> = timed(op, async {
            Ok(with_conn!(self, op, |conn| {
                sqlx::query_as(LINEAGE)
                    .bind(&digest)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(q(op))?
            }))
        })
        .await?;
        assemble(digest, rows)
    }

    /// Every digest built from `commit` (a full SHA or a prefix of at least 7 hex digits, any
    /// case) according to its verdicts' provenance, in order of first verdict, with the
    /// environments each reached.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for a commit that is not 7–64 hex digits or a bad page;
    /// [`StoreError::ConnectionLost`] / [`StoreError::Query`] (also for a damaged stored row);
    /// [`StoreError::Timeout`] after [`QUERY_TIMEOUT`](crate::store::QUERY_TIMEOUT).
    pub async fn by_commit(&self, commit: &str, page: &Page) -> Result<Paged<Built>, StoreError> {
        let prefix = input::commit_prefix(commit)?;
        let end = input::prefix_end(&prefix);
        let (limit, key) = cursor::page(Query::Commit, page)?;
        let after = cursor_id(page, key)?;
        let op = "listing digests built from a commit";
        timed(op, async {
            with_conn!(self, op, |conn| {
                let mut rows: Vec<CommitDigestRow> = sqlx::query_as(COMMIT_DIGESTS)
                    .bind(&prefix)
                    .bind(&end)
                    .bind(after)
                    .bind(limit + 1)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(q(op))?;
                let more = trim_page(&mut rows, limit);
                if rows.is_empty() {
                    return Ok(no_items());
                }
                let mut qb =
                    QueryBuilder::new("SELECT id, image, workflow FROM verdicts WHERE id IN (");
                let mut list = qb.separated(", ");
                for r in &rows {
                    list.push_bind(r.first_id);
                }
                qb.push(")");
                let firsts: Vec<FirstVerdictRow> = qb
                    .build_query_as()
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(q(op))?;
                let firsts: BTreeMap<i64, FirstVerdictRow> =
                    firsts.into_iter().map(|f| (f.id, f)).collect();
                let ids: Vec<i64> = rows.iter().map(|r| r.digest_id).collect();
                let envs = environments_of!(conn, &ids, op);
                let next = if more {
                    rows.last()
                        .map(|r| cursor::encode(Query::Commit, &r.first_id.to_string()))
                } else {
                    None
                };
                let items = rows
                    .into_iter()
                    .map(|r| {
                        let first = firsts.get(&r.first_id);
                        Built {
                            environments: envs.get(&r.digest_id).cloned().unwrap_or_default(),
                            image: first.map(|f| f.image.clone()).unwrap_or_default(),
                            workflow: first.and_then(|f| f.workflow.clone()),
                            digest: r.digest,
                            first_verified: r.first_verified,
                        }
                    })
                    .collect();
                Ok(Paged { items, next })
            })
        })
        .await
    }

    /// What ran in `environment` at `time` (RFC 3339): per image, the digest of the latest
    /// promotion to that environment, or allowed admission in the cluster of that name, at or
    /// before `time` (a rollback is a promotion too). `since` is when that digest's
    /// uninterrupted run there began. Images in name order.
    ///
    /// # Errors
    /// [`StoreError::InvalidTime`], an empty or over-long environment ([`StoreError::InvalidInput`],
    /// [`StoreError::Limit`]), a bad page; [`StoreError::ConnectionLost`] /
    /// [`StoreError::Query`]; [`StoreError::Timeout`] after
    /// [`QUERY_TIMEOUT`](crate::store::QUERY_TIMEOUT).
    pub async fn at(
        &self,
        environment: &str,
        time: &str,
        page: &Page,
    ) -> Result<Paged<Deployed>, StoreError> {
        let environment = input::text("environment", environment, true)?;
        let time = input::time("time", time)?;
        let (limit, key) = cursor::page(Query::At, page)?;
        let after = key.unwrap_or_default();
        let op = "reading what ran in an environment";
        timed(op, async {
            with_conn!(self, op, |conn| {
                let mut images: Vec<String> = sqlx::query_scalar(AT_IMAGES)
                    .bind(&environment)
                    .bind(&time)
                    .bind(&after)
                    .bind(limit + 1)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(q(op))?;
                let more = trim_page(&mut images, limit);
                let (Some(first), Some(last)) = (images.first(), images.last()) else {
                    return Ok(no_items());
                };
                let rows: Vec<DeployedRow> = sqlx::query_as(AT_DEPLOYED)
                    .bind(&environment)
                    .bind(&time)
                    .bind(first)
                    .bind(last)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(q(op))?;
                let next = if more {
                    Some(cursor::encode(Query::At, last))
                } else {
                    None
                };
                Ok(Paged {
                    items: rows
                        .into_iter()
                        .map(|r| Deployed {
                            image: r.image,
                            digest: r.digest,
                            since: r.since,
                            via: r.via,
                            commit: r.commit_sha,
                        })
                        .collect(),
                    next,
                })
            })
        })
        .await
    }

    /// Every digest `signer` (exact identity) signed — a verdict verified its signature — that
    /// was admitted: an allow verdict naming that signer, or an admission with outcome `allow`.
    /// In the order the store first saw each digest.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for an empty identity or a bad page;
    /// [`StoreError::ConnectionLost`] / [`StoreError::Query`] (also for a damaged stored row);
    /// [`StoreError::Timeout`] after [`QUERY_TIMEOUT`](crate::store::QUERY_TIMEOUT).
    pub async fn by_signer(&self, signer: &str, page: &Page) -> Result<Paged<Signed>, StoreError> {
        let signer = input::text("signer", signer, true)?;
        let (limit, key) = cursor::page(Query::Signer, page)?;
        let after = cursor_id(page, key)?;
        let op = "listing what a signer signed";
        timed(op, async { with_conn!(self, op, |conn| {
            let mut ids: Vec<i64> = sqlx::query_scalar(SIGNER_DIGESTS)
                .bind(&signer)
                .bind(after)
                .bind(limit + 1)
                .fetch_all(&mut *conn)
                .await
                .map_err(q(op))?;
            let more = trim_page(&mut ids, limit);
            if ids.is_empty() {
                return Ok(no_items());
            }
            let mut qb = QueryBuilder::new(
                "SELECT x.digest_id, (SELECT digest FROM digests WHERE id = x.digest_id) AS digest, \
                 x.image, x.first_allow FROM (SELECT digest_id, image, \
                 ROW_NUMBER() OVER (PARTITION BY digest_id ORDER BY id) AS rn, \
                 MIN(CASE WHEN decision = 'allow' THEN occurred_at END) OVER (PARTITION BY digest_id) AS first_allow \
                 FROM verdicts WHERE signer = ",
            );
            qb.push_bind(signer.as_str()).push(" AND digest_id IN (");
            let mut list = qb.separated(", ");
            for id in &ids {
                list.push_bind(*id);
            }
            qb.push(")) x WHERE x.rn = 1");
            let signed: Vec<SignedRow> = qb
                .build_query_as()
                .fetch_all(&mut *conn)
                .await
                .map_err(q(op))?;
            let mut qb = QueryBuilder::new(
                "SELECT digest_id, MIN(occurred_at) AS first_seen FROM admissions \
                 WHERE outcome = 'allow' AND digest_id IN (",
            );
            let mut list = qb.separated(", ");
            for id in &ids {
                list.push_bind(*id);
            }
            qb.push(") GROUP BY digest_id");
            let first_admission: Vec<(i64, String)> = qb
                .build_query_as()
                .fetch_all(&mut *conn)
                .await
                .map_err(q(op))?;
            let first_admission: BTreeMap<i64, String> = first_admission.into_iter().collect();
            let envs = environments_of!(conn, &ids, op);
            let mut signed: BTreeMap<i64, SignedRow> =
                signed.into_iter().map(|s| (s.digest_id, s)).collect();
            let next = if more {
                ids.last()
                    .map(|id| cursor::encode(Query::Signer, &id.to_string()))
            } else {
                None
            };
            let items = ids
                .into_iter()
                .filter_map(|id| {
                    let s = signed.remove(&id)?;
                    let first_admitted = [s.first_allow, first_admission.get(&id).cloned()]
                        .into_iter()
                        .flatten()
                        .min()
                        .unwrap_or_default();
                    Some(Signed {
                        digest: s.digest,
                        image: s.image,
                        first_admitted,
                        environments: envs.get(&id).cloned().unwrap_or_default(),
                    })
                })
                .collect();
            Ok(Paged { items, next })
        }) }).await
    }

    /// One stored verdict, whole; `None` when there is no verdict `id`.
    ///
    /// # Errors
    /// [`StoreError::ConnectionLost`] / [`StoreError::Query`] (also for a damaged stored row);
    /// [`StoreError::Timeout`] after [`QUERY_TIMEOUT`](crate::store::QUERY_TIMEOUT).
    pub async fn verdict(&self, id: i64) -> Result<Option<VerdictRecord>, StoreError> {
        if id <= 0 {
            return Ok(None);
        }
        let op = "reading a verdict";
        timed(op, async {
            with_conn!(self, op, |conn| {
                let row: Option<VerdictFullRow> = sqlx::query_as(VERDICT_BY_ID)
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(q(op))?;
                let Some(r) = row else {
                    return Ok(None);
                };
                Ok(Some(VerdictRecord {
                    id: r.id,
                    event: VerdictEvent {
                        time: r.occurred_at,
                        image: r.image,
                        digest: r.digest,
                        environment: r.environment,
                        policy: r.policy,
                        policy_hash: r.policy_hash,
                        trust_root_hash: r.trust_root_hash,
                        decision: r.decision,
                        reasons: serde_json::from_str(&r.reasons).map_err(|e| damaged(op, e))?,
                        signer: r.signer,
                        issuer: r.issuer,
                        source_repository: r.source_repository,
                        source_ref: r.source_ref,
                        source_commit: r.source_commit,
                        workflow: r.workflow,
                        run: r.run,
                        builder: r.builder,
                        sbom_digest: r.sbom_digest,
                        log_indexes: serde_json::from_str(&r.log_indexes)
                            .map_err(|e| damaged(op, e))?,
                    },
                }))
            })
        })
        .await
    }

    /// Finds digests, commits and images: a digest (`sha256:…`, full or a prefix of at least 7
    /// hex digits), a bare hex prefix (7–128 digits: digests and commits starting with it), or
    /// any text (image names containing it, case-insensitive). At most `limit` hits (1..=1000):
    /// digests first, then commits, then images.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for an empty or over-long query or a bad limit,
    /// [`StoreError::InvalidDigest`] for `algorithm:` followed by something not hex;
    /// [`StoreError::ConnectionLost`] / [`StoreError::Query`] (also for a damaged stored row);
    /// [`StoreError::Timeout`] after [`QUERY_TIMEOUT`](crate::store::QUERY_TIMEOUT).
    pub async fn search(&self, query: &str, limit: u32) -> Result<Vec<SearchHit>, StoreError> {
        let bad = |reason: String| StoreError::InvalidInput {
            field: "search query",
            found: truncated(query, 80),
            reason,
        };
        if limit == 0 || limit > MAX_PAGE_LIMIT {
            return Err(StoreError::InvalidInput {
                field: "search limit",
                found: limit.to_string(),
                reason: format!("give 1 to {MAX_PAGE_LIMIT}"),
            });
        }
        let query = query.trim();
        if query.is_empty() {
            return Err(bad(
                "empty: give a digest, a commit or part of an image name".into(),
            ));
        }
        if query.len() > MAX_SEARCH_BYTES {
            return Err(input::limit(
                "search query bytes",
                MAX_SEARCH_BYTES,
                query.len(),
            ));
        }
        if query.contains('\0') {
            return Err(bad("must not contain NUL characters".into()));
        }
        let plan = plan(query)?;
        let op = "searching";
        let limit_i = i64::from(limit);
        let cap = usize::try_from(limit).unwrap_or(usize::MAX);
        timed(op, async {
            with_conn!(self, op, |conn| {
                let mut hits = Vec::new();
                for prefix in &plan.digest_prefixes {
                    let digests: Vec<String> = sqlx::query_scalar(SEARCH_DIGESTS)
                        .bind(prefix)
                        .bind(input::prefix_end(prefix))
                        .bind(limit_i)
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(q(op))?;
                    hits.extend(digests.into_iter().map(|d| SearchHit {
                        kind: "digest".into(),
                        value: d.clone(),
                        digest: Some(d),
                    }));
                }
                if let Some(prefix) = &plan.commit_prefix
                    && hits.len() < cap
                {
                    let commits: Vec<CommitHitRow> = sqlx::query_as(SEARCH_COMMITS)
                        .bind(prefix)
                        .bind(input::prefix_end(prefix))
                        .bind(limit_i)
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(q(op))?;
                    hits.extend(commits.into_iter().map(|c| SearchHit {
                        kind: "commit".into(),
                        value: c.commit_sha,
                        digest: Some(c.digest),
                    }));
                }
                if let Some(pattern) = &plan.image_pattern
                    && hits.len() < cap
                {
                    let names: Vec<String> = sqlx::query_scalar(SEARCH_IMAGES)
                        .bind(pattern)
                        .bind(limit_i)
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(q(op))?;
                    hits.extend(names.into_iter().map(|n| SearchHit {
                        kind: "image".into(),
                        value: n,
                        digest: None,
                    }));
                }
                hits.truncate(cap);
                Ok(hits)
            })
        })
        .await
    }
}

/// The id a keyset cursor carries (0: the first page).
fn cursor_id(page: &Page, key: Option<String>) -> Result<i64, StoreError> {
    match key {
        None => Ok(0),
        Some(k) => k.parse().map_err(|_| StoreError::InvalidInput {
            field: "cursor",
            found: truncated(page.cursor.as_deref().unwrap_or_default(), 80),
            reason: "not a cursor this store made".into(),
        }),
    }
}

/// Builds a [`Lineage`] from the tagged rows of [`LINEAGE`]; `None` when no event names the
/// digest. Each list is sorted here (a `UNION ALL` keeps no order).
///
/// # Errors
/// [`StoreError::Query`] for a stored log-index list that is not JSON (a damaged row).
fn assemble(digest: String, rows: Vec<LineageRow>) -> Result<Option<Lineage>, StoreError> {
    let mut l = Lineage {
        digest,
        images: Vec::new(),
        builds: Vec::new(),
        signers: Vec::new(),
        verdicts: Vec::new(),
        environments: Vec::new(),
        promotions: Vec::new(),
        admissions: Vec::new(),
        sbom_digests: Vec::new(),
        log_indexes: Vec::new(),
    };
    let mut log_indexes: BTreeSet<u64> = BTreeSet::new();
    let mut admitted = Vec::new();
    for r in rows {
        let t = |c: Option<String>| c.unwrap_or_default();
        match r.k.as_str() {
            "v" => l.verdicts.push(VerdictSummary {
                id: t(r.c1).parse().unwrap_or_default(),
                time: t(r.c2),
                policy: t(r.c3),
                policy_hash: t(r.c4),
                environment: r.c5,
                decision: t(r.c6),
            }),
            "b" => l.builds.push(Build {
                source_repository: r.c1,
                source_ref: r.c2,
                source_commit: r.c3,
                workflow: r.c4,
                run: r.c5,
                builder: r.c6,
                first_seen: t(r.c7),
                last_seen: t(r.c8),
            }),
            "s" => l.signers.push(SignerSeen {
                signer: t(r.c1),
                issuer: r.c2,
                first_seen: t(r.c3),
                last_seen: t(r.c4),
                verdicts: t(r.c5).parse().unwrap_or_default(),
            }),
            "m" => l.sbom_digests.extend(r.c1),
            "l" => {
                let v: Vec<u64> =
                    serde_json::from_str(&t(r.c1)).map_err(|e| damaged("reading a lineage", e))?;
                log_indexes.extend(v);
            }
            "i" => l.images.extend(r.c1),
            "p" => l.promotions.push(PromotionEvent {
                time: t(r.c1),
                repository: t(r.c2),
                environment: t(r.c3),
                commit: t(r.c4),
                pull_request: r.c5,
                image: t(r.c6),
                from_digest: r.c7,
                to_digest: t(r.c8),
                kind: t(r.c9),
            }),
            "e" => l.environments.push(EnvironmentReached {
                environment: t(r.c1),
                first_seen: t(r.c2),
                last_seen: t(r.c3),
                via: "promotion".into(),
                commit: r.c4,
                pull_request: r.c5,
                cluster: None,
                namespace: None,
            }),
            "n" => admitted.push(EnvironmentReached {
                environment: r.c1.clone().unwrap_or_default(),
                first_seen: t(r.c3),
                last_seen: t(r.c4),
                via: "admission".into(),
                commit: None,
                pull_request: None,
                cluster: r.c1,
                namespace: r.c2,
            }),
            "a" => l.admissions.push(AdmissionEvent {
                time: t(r.c1),
                cluster: t(r.c2),
                namespace: t(r.c3),
                workload: t(r.c4),
                image: t(r.c5),
                digest: Some(l.digest.clone()),
                outcome: t(r.c6),
            }),
            _ => {}
        }
    }
    if l.verdicts.is_empty() && l.promotions.is_empty() && l.admissions.is_empty() {
        return Ok(None);
    }
    l.environments.append(&mut admitted);
    l.environments.sort_by(|a, b| {
        (&a.first_seen, &a.via, &a.environment).cmp(&(&b.first_seen, &b.via, &b.environment))
    });
    // Up to 100 by promotion and 100 by admission, each the first reached: the first 100 of both.
    l.environments
        .truncate(usize::try_from(LINEAGE_MAX_ROWS).unwrap_or(usize::MAX));
    l.verdicts.sort_by_key(|v| std::cmp::Reverse(v.id));
    l.builds.sort_by(|a, b| a.first_seen.cmp(&b.first_seen));
    l.signers.sort_by(|a, b| a.first_seen.cmp(&b.first_seen));
    l.promotions.sort_by(|a, b| a.time.cmp(&b.time));
    l.admissions.sort_by(|a, b| b.time.cmp(&a.time));
    l.images.sort();
    l.sbom_digests.sort();
    l.log_indexes = log_indexes
        .into_iter()
        .take(LINEAGE_MAX_LOG_INDEXES)
        .collect();
    Ok(Some(l))
}

/// What a search query is looked up as.
struct Plan {
    digest_prefixes: Vec<String>,
    commit_prefix: Option<String>,
    image_pattern: Option<String>,
}

fn plan(query: &str) -> Result<Plan, StoreError> {
    const ALGORITHMS: [&str; 3] = ["sha256", "sha384", "sha512"];
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some((algorithm, value)) = query.split_once(':')
        && ALGORITHMS.contains(&algorithm.to_ascii_lowercase().as_str())
    {
        // A digest or a digest prefix: nothing else.
        if !hex(value) || value.len() < input::MIN_COMMIT_PREFIX {
            return Err(StoreError::InvalidDigest {
                field: "search query",
                found: truncated(query, 80),
                reason: format!(
                    "after `{algorithm}:` give at least {} hexadecimal digits",
                    input::MIN_COMMIT_PREFIX
                ),
            });
        }
        return Ok(Plan {
            digest_prefixes: vec![format!(
                "{}:{}",
                algorithm.to_ascii_lowercase(),
                value.to_ascii_lowercase()
            )],
            commit_prefix: None,
            image_pattern: None,
        });
    }
    let mut plan = Plan {
        digest_prefixes: Vec::new(),
        commit_prefix: None,
        image_pattern: Some(like_pattern(query)),
    };
    if hex(query) && query.len() >= input::MIN_COMMIT_PREFIX && query.len() <= 128 {
        let lower = query.to_ascii_lowercase();
        plan.digest_prefixes = ALGORITHMS.iter().map(|a| format!("{a}:{lower}")).collect();
        if lower.len() <= 64 {
            plan.commit_prefix = Some(lower);
        }
    }
    Ok(plan)
}

/// `%text%`, lower-cased, with `\`, `%` and `_` escaped (`ESCAPE '\'`).
fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lineage_cap_is_the_one_in_the_sql() {
        assert_eq!(crate::store::LINEAGE_MAX_ROWS, 100);
        assert!(LINEAGE.contains("LIMIT 100") && !LINEAGE.contains("$2"));
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("a%b_c\\"), "%a\\%b\\_c\\\\%");
        assert_eq!(like_pattern("' OR 1=1 --"), "%' or 1=1 --%");
    }

    #[test]
    fn search_plans() {
        let p = plan("sha256:ABCDEF0").unwrap();
        assert_eq!(p.digest_prefixes, ["sha256:abcdef0"]);
        assert!(p.commit_prefix.is_none() && p.image_pattern.is_none());
        assert!(plan("sha256:xyz").is_err());
        assert!(plan("sha256:abc").is_err());
        let p = plan("deadbeef").unwrap();
        assert_eq!(p.digest_prefixes.len(), 3);
        assert_eq!(p.commit_prefix.as_deref(), Some("deadbeef"));
        let p = plan("acme/app").unwrap();
        assert!(p.digest_prefixes.is_empty() && p.commit_prefix.is_none());
    }
}
