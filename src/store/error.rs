//! The store's errors, sorted by who can fix them: the caller (invalid input, limits), the
//! operator (URL, file, schema version, connection), or nobody in particular (a query failed).

use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

/// Why a store operation failed. Every message names what was found and what to do.
///
/// [`StoreError::is_caller_error`] separates mistakes in the request (answer 400) from trouble
/// with the store (answer 503 and log).
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Occurs when the store URL is not one custody understands.
    #[error(
        "invalid store URL {url:?}: {reason} (expected sqlite:PATH, sqlite://PATH, sqlite::memory: or postgres://USER@HOST:PORT/DB)"
    )]
    BadUrl {
        /// The URL, password removed.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Occurs when the database cannot be opened or reached at start.
    #[error("cannot open the lineage store {location}: {source}")]
    CannotOpen {
        /// The file path or the URL (password removed).
        location: String,
        /// The driver's error.
        #[source]
        source: Arc<sqlx::Error>,
    },
    /// Occurs when a SQLite file is not a SQLite database or is damaged. The file is left as it
    /// was.
    #[error(
        "{path} is not a usable SQLite database ({detail}); custody left it untouched: restore it from a backup or give another path"
    )]
    Corrupt {
        /// The file.
        path: String,
        /// What SQLite (or the header check) said.
        detail: String,
    },
    /// Occurs when the store was migrated by a newer custody. Nothing was changed: custody never
    /// migrates down.
    #[error(
        "the lineage store {location} has schema version {found}, newer than this custody knows (up to {supported}); upgrade custody or point it at another store (nothing was changed)"
    )]
    SchemaTooNew {
        /// The file path or the URL (password removed).
        location: String,
        /// The newest schema version applied to the store.
        found: i64,
        /// The newest schema version this custody has.
        supported: i64,
    },
    /// Occurs when applying the schema migrations fails (a migration left half-applied, a
    /// changed migration, no schema to create tables in, …).
    #[error("cannot bring the lineage store {location} to schema version {supported}: {detail}")]
    Migration {
        /// The file path or the URL (password removed).
        location: String,
        /// The schema version this custody needs.
        supported: i64,
        /// What failed.
        detail: String,
    },
    /// Occurs when the connection to the database is lost or cannot be (re)established.
    #[error("lost the connection to the lineage store ({operation}): {source}")]
    ConnectionLost {
        /// What was being done.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: Arc<sqlx::Error>,
    },
    /// Occurs when a statement fails (disk full, database locked past the busy timeout, …).
    #[error("lineage store {operation} failed: {source}")]
    Query {
        /// What was being done.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: Arc<sqlx::Error>,
    },
    /// Occurs when a value is not a digest (`sha256:` + 64 lower-case hex, sha384, sha512).
    #[error("invalid digest in {field}: {found:?}: {reason}")]
    InvalidDigest {
        /// Where the digest was given.
        field: &'static str,
        /// The value (truncated).
        found: String,
        /// Why.
        reason: String,
    },
    /// Occurs when a time is not RFC 3339 (or out of the years 0001–9999).
    #[error(
        "invalid time in {field}: {found:?}: {reason} (expected RFC 3339, e.g. 2026-11-23T10:00:00Z)"
    )]
    InvalidTime {
        /// Where the time was given.
        field: &'static str,
        /// The value (truncated).
        found: String,
        /// Why.
        reason: String,
    },
    /// Occurs when some other input is not acceptable (a commit prefix, a decision, an empty
    /// field, a cursor from another query, …).
    #[error("invalid {field}: {found:?}: {reason}")]
    InvalidInput {
        /// Which input.
        field: &'static str,
        /// The value (truncated).
        found: String,
        /// Why, and what is expected.
        reason: String,
    },
    /// Occurs when a request or an event is over one of the store's bounds.
    #[error("{what} is {found}, over the limit of {limit}")]
    Limit {
        /// What is counted.
        what: &'static str,
        /// The bound.
        limit: u64,
        /// The value found.
        found: u64,
    },
    /// Occurs when an operation did not finish in time.
    #[error("lineage store {operation} did not finish within {after:?}")]
    Timeout {
        /// What was being done.
        operation: &'static str,
        /// The bound.
        after: Duration,
    },
    /// Occurs when the writer's queue stayed full while an acknowledged submit waited for room.
    #[error(
        "the lineage store writer's queue ({capacity} events) stayed full for {waited:?}: the store is too slow or down"
    )]
    QueueFull {
        /// The queue's size in events.
        capacity: usize,
        /// How long the submit waited.
        waited: Duration,
    },
    /// Occurs when the writer has stopped (its task ended).
    #[error("the lineage store writer has stopped")]
    WriterStopped,
}

impl StoreError {
    /// Whether the caller's input is at fault (invalid digest, time, cursor, limit, URL) rather
    /// than the store.
    pub fn is_caller_error(&self) -> bool {
        matches!(
            self,
            Self::BadUrl { .. }
                | Self::InvalidDigest { .. }
                | Self::InvalidTime { .. }
                | Self::InvalidInput { .. }
                | Self::Limit { .. }
        )
    }

    /// A store error from a driver error during `operation`: lost connections apart from
    /// failed statements.
    pub(crate) fn from_sqlx(operation: &'static str, e: sqlx::Error) -> Self {
        if is_connection_error(&e) {
            Self::ConnectionLost {
                operation,
                source: Arc::new(e),
            }
        } else {
            Self::Query {
                operation,
                source: Arc::new(e),
            }
        }
    }
}

/// Connection-level failures: I/O, TLS, pool, and the server's "connection exception" (08…)
/// and "operator intervention" (57P01–57P03: terminated, crash shutdown, cannot connect now).
pub(crate) fn is_connection_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

/// The first `max` characters of an input, for error messages.
pub(crate) fn truncated(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}
