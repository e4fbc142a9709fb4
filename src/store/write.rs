//! Writing a batch: one transaction, multi-row inserts.
//!
//! 1. The batch's digests go into `digests` (`ON CONFLICT DO NOTHING`) and their ids are read
//!    back; events then refer to digests by id (see `migrations/` for why).
//! 2. Verdicts, promotions and admissions go in with multi-row `INSERT … VALUES`, in chunks of
//!    at most [`MAX_ROWS_PER_INSERT`] rows; chunk sizes are powers of two, so only a handful
//!    of statement shapes exist and the per-connection statement cache keeps them prepared.
//!    256 rows × 19 columns = 4 864 parameters, far below SQLite's 32 766 and PostgreSQL's
//!    65 535.
//! 3. Image names go last into `images`.
//!
//! Large statements to PostgreSQL over TCP rely on `TCP_NODELAY`, which sqlx 0.9.0 forgot
//! (launchbadge/sqlx#4335): `vendor/sqlx-core` sets it. Without it every statement over ~16 KiB
//! waited ~40 ms for the server's delayed ACK (4 900 events/s over TCP against 17 400 over a
//! Unix socket, measured on loopback).
//!
//! `digests` and `images` rows are inserted in sorted order: concurrent writers on PostgreSQL
//! then take those unique-index locks in one global order and cannot deadlock. A transaction that
//! still fails with a deadlock or serialization failure is retried whole (it wrote nothing).

use std::collections::HashMap;

use sqlx::{Executor as _, QueryBuilder};

use super::input::{Row, Rows};
use super::{Backend, Store, StoreError};
use crate::store::model::Event;

/// Most rows in one INSERT statement.
pub(crate) const MAX_ROWS_PER_INSERT: usize = 256;
/// Most columns of a table (verdicts): `MAX_ROWS_PER_INSERT × this` parameters per statement.
const MAX_COLUMNS: usize = 19;
const _: () = assert!(MAX_ROWS_PER_INSERT * MAX_COLUMNS < 32_766);
/// Attempts for a transaction PostgreSQL aborted for a deadlock or serialization failure.
const MAX_ATTEMPTS: usize = 3;

/// Inserts every row of a [`Rows`] through `$conn` (an executor inside a transaction).
/// A macro, not a function: the same code is compiled for both backends' connection types.
///
/// `$insert` starts the event inserts: `INSERT OR FAIL INTO` on SQLite. A multi-row INSERT whose
/// constraints may abort makes SQLite keep a statement journal (a copy of every page the
/// statement changes, so it can undo just that statement); with `OR FAIL` a failing statement
/// keeps its earlier rows instead, which changes nothing here because any failure rolls the
/// whole transaction back. perf showed the journal copies and their allocations as ~20 % of the
/// writer thread.
macro_rules! insert_rows {
    ($conn:expr, $rows:expr, $insert:literal) => {{
        let rows: &Rows = $rows;
        let digests: Vec<&str> = rows.digests().into_iter().collect();
        for chunk in chunks(&digests) {
            let mut qb = QueryBuilder::new("INSERT INTO digests (digest) ");
            qb.push_values(chunk, |mut b, d| {
                b.push_bind(*d);
            });
            qb.push(" ON CONFLICT (digest) DO NOTHING");
            ($conn).execute(qb.build()).await?;
        }
        let mut ids: HashMap<String, i64> = HashMap::with_capacity(digests.len());
        for chunk in chunks(&digests) {
            let mut qb = QueryBuilder::new("SELECT digest, id FROM digests WHERE digest IN (");
            let mut list = qb.separated(", ");
            for d in chunk {
                list.push_bind(*d);
            }
            qb.push(")");
            let found: Vec<(String, i64)> = qb.build_query_as().fetch_all(&mut *$conn).await?;
            ids.extend(found);
        }
        let id = |d: &str| ids.get(d).copied().ok_or(sqlx::Error::RowNotFound);

        let verdicts = rows
            .verdicts
            .iter()
            .map(|v| Ok((v, id(&v.digest)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        for chunk in chunks(&verdicts) {
            let mut qb = QueryBuilder::new(concat!(
                $insert,
                " verdicts (occurred_at, image, digest_id, environment, policy, policy_hash, \
                 trust_root_hash, decision, reasons, signer, issuer, source_repository, source_ref, \
                 source_commit, workflow, run, builder, sbom_digest, log_indexes) "
            ));
            qb.push_values(chunk, |mut b, (v, digest_id)| {
                b.push_bind(v.time.as_str())
                    .push_bind(v.image.as_str())
                    .push_bind(*digest_id)
                    .push_bind(v.environment.as_deref())
                    .push_bind(v.policy.as_str())
                    .push_bind(v.policy_hash.as_str())
                    .push_bind(v.trust_root_hash.as_str())
                    .push_bind(v.decision.as_str())
                    .push_bind(v.reasons.as_str())
                    .push_bind(v.signer.as_deref())
                    .push_bind(v.issuer.as_deref())
                    .push_bind(v.source_repository.as_deref())
                    .push_bind(v.source_ref.as_deref())
                    .push_bind(v.source_commit.as_deref())
                    .push_bind(v.workflow.as_deref())
                    .push_bind(v.run.as_deref())
                    .push_bind(v.builder.as_deref())
                    .push_bind(v.sbom_digest.as_deref())
                    .push_bind(v.log_indexes.as_str());
            });
            ($conn).execute(qb.build()).await?;
        }

        let promotions = rows
            .promotions
            .iter()
            .map(|p| {
                let from = p.from_digest.as_deref().map(id).transpose()?;
                Ok((p, (from, id(&p.to_digest)?)))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        for chunk in chunks(&promotions) {
            let mut qb = QueryBuilder::new(concat!(
                $insert,
                " promotions (occurred_at, repository, environment, delivery_commit, \
                 pull_request, image, from_digest_id, to_digest_id, kind) "
            ));
            qb.push_values(chunk, |mut b, (p, (from, to))| {
                b.push_bind(p.time.as_str())
                    .push_bind(p.repository.as_str())
                    .push_bind(p.environment.as_str())
                    .push_bind(p.commit.as_str())
                    .push_bind(p.pull_request.as_deref())
                    .push_bind(p.image.as_str())
                    .push_bind(*from)
                    .push_bind(*to)
                    .push_bind(p.kind.as_str());
            });
            ($conn).execute(qb.build()).await?;
        }

        let admissions = rows
            .admissions
            .iter()
            .map(|a| Ok((a, a.digest.as_deref().map(id).transpose()?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        for chunk in chunks(&admissions) {
            let mut qb = QueryBuilder::new(concat!(
                $insert,
                " admissions (occurred_at, cluster, namespace, workload, image, digest_id, \
                 outcome) "
            ));
            qb.push_values(chunk, |mut b, (a, digest_id)| {
                b.push_bind(a.time.as_str())
                    .push_bind(a.cluster.as_str())
                    .push_bind(a.namespace.as_str())
                    .push_bind(a.workload.as_str())
                    .push_bind(a.image.as_str())
                    .push_bind(*digest_id)
                    .push_bind(a.outcome.as_str());
            });
            ($conn).execute(qb.build()).await?;
        }

        let images: Vec<&str> = rows.images().into_iter().collect();
        for chunk in chunks(&images) {
            let mut qb = QueryBuilder::new("INSERT INTO images (name) ");
            qb.push_values(chunk, |mut b, name| {
                b.push_bind(*name);
            });
            qb.push(" ON CONFLICT (name) DO NOTHING");
            ($conn).execute(qb.build()).await?;
        }
    }};
}

impl Store {
    /// Records `events` in one transaction: all of them or none.
    ///
    /// Each event is checked first ([`Event::validate`]): a bad time, digest or value refuses
    /// the whole batch before anything is written, naming the field.
    ///
    /// # Errors
    /// An input error for the first bad event ([`StoreError::InvalidTime`],
    /// [`StoreError::InvalidDigest`], [`StoreError::InvalidInput`], [`StoreError::Limit`]);
    /// [`StoreError::ConnectionLost`] or [`StoreError::Query`] when the transaction fails
    /// (nothing was written).
    pub async fn record(&self, events: &[Event]) -> Result<(), StoreError> {
        let mut rows = Rows::default();
        for event in events {
            rows.push(Row::from_event(event)?);
        }
        self.record_rows(&rows).await
    }

    /// Writes checked rows in one transaction.
    pub(crate) async fn record_rows(&self, rows: &Rows) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut attempt = 1;
        loop {
            let result = match &self.backend {
                Backend::Sqlite(pool) => {
                    let dedicated = self.sqlite_writer.is_some();
                    let pool = self.sqlite_writer.as_ref().unwrap_or(pool);
                    async {
                        let mut conn = pool.acquire().await?;
                        // IMMEDIATE: take the write lock now (waiting up to the busy timeout)
                        // rather than when the first insert follows a read, where SQLite
                        // refuses at once.
                        let result = async {
                            let mut tx =
                                sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
                            insert_rows!(&mut *tx, rows, "INSERT OR FAIL INTO");
                            tx.commit().await
                        }
                        .await;
                        // After an I/O error or a full disk SQLite rolls the transaction back
                        // itself; sqlx's ROLLBACK then fails and the connection keeps counting
                        // an open transaction, refusing every later BEGIN ("begin_with at
                        // non-zero transaction depth"): the long-lived writer connection would
                        // never write again. Close it after any failure; the next batch opens
                        // a fresh one (`tests/lineage.rs`, a_full_disk_…). An in-memory store
                        // keeps its only connection (closing it would drop the database).
                        if result.is_err() && dedicated {
                            conn.close_on_drop();
                        }
                        result
                    }
                    .await
                }
                Backend::Postgres(pool) => {
                    async {
                        let mut tx = pool.begin().await?;
                        insert_rows!(&mut *tx, rows, "INSERT INTO");
                        tx.commit().await
                    }
                    .await
                }
            };
            match result {
                Ok(()) => return Ok(()),
                Err(e) if attempt < MAX_ATTEMPTS && retryable(&e) => {
                    tracing::warn!(error = %e, attempt, "lineage store: transaction aborted, retrying");
                    attempt += 1;
                }
                Err(e) => return Err(StoreError::from_sqlx("recording events", e)),
            }
        }
    }
}

/// PostgreSQL deadlock_detected and serialization_failure: the transaction was rolled back and
/// may simply be run again.
fn retryable(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| c == "40P01" || c == "40001"))
}

/// Splits `rows` into chunks of at most [`MAX_ROWS_PER_INSERT`] rows, each a power of two long.
pub(crate) fn chunks<T>(rows: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        let n = power_of_two_floor(rest.len().min(MAX_ROWS_PER_INSERT));
        let (chunk, tail) = rest.split_at_checked(n).filter(|_| n > 0)?;
        rest = tail;
        Some(chunk)
    })
}

fn power_of_two_floor(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        1usize << (usize::BITS - 1 - n.leading_zeros())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_row_once_in_few_shapes() {
        for n in [0usize, 1, 2, 3, 255, 256, 257, 500, 1000, 1023] {
            let rows: Vec<usize> = (0..n).collect();
            let parts: Vec<&[usize]> = chunks(&rows).collect();
            assert_eq!(parts.concat(), rows);
            assert!(
                parts
                    .iter()
                    .all(|p| p.len().is_power_of_two() && p.len() <= MAX_ROWS_PER_INSERT)
            );
        }
    }
}
