//! Retention: deleting events older than a time.
//!
//! Admissions are most of the store (one per pod start) and the least of the audit record, so
//! they are what retention removes; verdicts only when asked; promotions never (they are the
//! delivery repository's history, and few). Interned digests and image names stay.
//!
//! Deletes walk the table in id ranges of [`PRUNE_CHUNK`], one short transaction each: no time
//! index is needed (each range is a primary-key range scan), and the batched writer, which may
//! be writing at the same moment, waits for at most one chunk.

use serde::Serialize;

use super::{Store, StoreError, input, timed, with_conn};

/// Ids per delete statement.
pub const PRUNE_CHUNK: i64 = 10_000;

/// What [`Store::prune`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pruned {
    /// Admissions deleted.
    pub admissions: u64,
    /// Verdicts deleted (0 unless asked for).
    pub verdicts: u64,
}

/// A table retention may delete from; the SQL is fixed per table (no names from input).
#[derive(Clone, Copy)]
enum Table {
    Admissions,
    Verdicts,
}

impl Table {
    /// The smallest and largest id (0 and 0 for an empty table).
    fn id_range(self) -> &'static str {
        match self {
            Table::Admissions => {
                "SELECT COALESCE(MIN(id), 0), COALESCE(MAX(id), 0) FROM admissions"
            }
            Table::Verdicts => "SELECT COALESCE(MIN(id), 0), COALESCE(MAX(id), 0) FROM verdicts",
        }
    }

    fn delete(self) -> &'static str {
        match self {
            Table::Admissions => {
                "DELETE FROM admissions WHERE id > $1 AND id <= $2 AND occurred_at < $3"
            }
            Table::Verdicts => {
                "DELETE FROM verdicts WHERE id > $1 AND id <= $2 AND occurred_at < $3"
            }
        }
    }
}

impl Store {
    /// Deletes the admissions (and, with `verdicts`, the verdicts) that occurred before `before`
    /// (RFC 3339). Promotions are kept. Events recorded while it runs are untouched unless they
    /// too are older than `before`.
    ///
    /// A lineage afterwards no longer counts the deleted admissions among the environments a
    /// digest reached (its promotions still count). SQLite reuses the freed pages; the file only
    /// shrinks with `VACUUM`.
    ///
    /// # Errors
    /// [`StoreError::InvalidTime`] for a bad `before`; a query error when a delete fails, or
    /// [`StoreError::Timeout`] when one chunk takes over
    /// [`QUERY_TIMEOUT`](crate::store::QUERY_TIMEOUT) (the chunks deleted before it stay
    /// deleted; running it again goes on).
    pub async fn prune(&self, before: &str, verdicts: bool) -> Result<Pruned, StoreError> {
        let before = input::time("before", before)?;
        let admissions = self.prune_table(Table::Admissions, &before).await?;
        let verdicts = if verdicts {
            self.prune_table(Table::Verdicts, &before).await?
        } else {
            0
        };
        Ok(Pruned {
            admissions,
            verdicts,
        })
    }

    async fn prune_table(&self, table: Table, before: &str) -> Result<u64, StoreError> {
        let op = "pruning old events";
        let q = |e| StoreError::from_sqlx(op, e);
        let (min, max): (i64, i64) = timed(op, async {
            Ok(with_conn!(self, op, |conn| {
                sqlx::query_as(table.id_range())
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(q)?
            }))
        })
        .await?;
        let mut deleted = 0u64;
        // From just below the oldest id left: earlier prunes emptied the ranges below it.
        let mut low = min.saturating_sub(1).max(0);
        while low < max {
            let high = low.saturating_add(PRUNE_CHUNK);
            deleted += timed(op, async {
                Ok(with_conn!(self, op, |conn| {
                    sqlx::query(table.delete())
                        .bind(low)
                        .bind(high)
                        .bind(before)
                        .execute(&mut *conn)
                        .await
                        .map_err(q)?
                        .rows_affected()
                }))
            })
            .await?;
            low = high;
        }
        Ok(deleted)
    }
}
