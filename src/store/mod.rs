//! The lineage store: which commit and workflow built an image, who signed it, when it reached
//! each environment, and what else was built from that commit.
//!
//! # Backends
//!
//! One logical schema in two dialects (`migrations/sqlite`, `migrations/postgres`), reached
//! through `sqlx` with runtime-checked queries (`sqlx::query`/`query_as`, never the `query!`
//! macros, so no database is needed at build time and both backends run the same SQL):
//!
//! * **SQLite** (default, embedded): `sqlite:PATH` or `sqlite://PATH` (created if missing), or
//!   `sqlite::memory:` (one connection, gone when the store is dropped). WAL journal,
//!   `synchronous=FULL` (a committed batch survives power loss), 5 s busy timeout, write
//!   transactions `BEGIN IMMEDIATE`, a 64 MiB page cache per connection, checkpoints every
//!   ~160 MiB of WAL, temporary storage in memory. No memory-mapped I/O: with mmap an I/O error or
//!   a file truncated underneath would kill the process instead of failing a query. Several
//!   processes may share a file (each write waits its turn); a file that is not SQLite is
//!   refused and left untouched.
//! * **PostgreSQL** (shared deployments, several service replicas): `postgres://…` or
//!   `postgresql://…`, with libpq-style parameters (`sslmode`, `sslrootcert`, `application_name`,
//!   …). TLS uses rustls with the Mozilla roots unless `sslrootcert` names a CA file. The tables
//!   live in the first schema of the `search_path`; to use another schema than `public`, set it
//!   in the URL: `postgres://u@h/db?options=-csearch_path%3Dlineage` (or
//!   `?options[search_path]=lineage`). The schema must exist.
//!
//! # Schema versions
//!
//! Migrations are embedded (`sqlx::migrate!`) and applied by [`Store::open`], recorded in
//! sqlx's `_sqlx_migrations` table. A store whose applied migrations include a version this
//! custody does not know was written by a newer custody: it is refused
//! ([`StoreError::SchemaTooNew`], naming both versions) before anything is changed. custody
//! never migrates down.
//!
//! # Times
//!
//! The store never reads the clock: every time comes from the events and queries, RFC 3339 with
//! any offset, stored as UTC text `YYYY-MM-DDTHH:MM:SS.ffffffZ` (fixed width, so text order is
//! time order on both backends; sub-microsecond digits are truncated).
//!
//! # Writing
//!
//! [`Store::record`] writes a batch in one transaction (multi-row inserts, chunked well below
//! both backends' bind-parameter limits). [`Writer`] batches events from many callers (group
//! commit) without ever blocking the admission path.
//!
//! # Reading
//!
//! Every query binds its arguments (never formats them into SQL), checks digests, commit
//! prefixes and times before touching the database, and pages with an opaque keyset cursor
//! ([`Page`], never OFFSET). Lists inside a [`Lineage`] are capped at [`LINEAGE_MAX_ROWS`]. A
//! query (and each prune chunk) that takes longer than [`QUERY_TIMEOUT`] fails with
//! [`StoreError::Timeout`].

mod cursor;
mod error;
mod input;
mod model;
mod prune;
mod read;
mod write;
pub mod writer;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use error::StoreError;
pub use input::{
    MAX_FIELD_BYTES, MAX_LOG_INDEXES, MAX_REASONS, MAX_SEARCH_BYTES, MIN_COMMIT_PREFIX,
};
pub use model::{
    AdmissionEvent, Build, Built, Deployed, EnvironmentReached, Event, Lineage, Page, Paged,
    PromotionEvent, SearchHit, Signed, SignerSeen, VerdictEvent, VerdictRecord, VerdictSummary,
};
pub use prune::{PRUNE_CHUNK, Pruned};
pub use writer::{Rejected, Writer, WriterOptions, WriterStats};

/// Default [`Page::limit`].
pub const DEFAULT_PAGE_LIMIT: u32 = 100;
/// Largest [`Page::limit`] (and search limit).
pub const MAX_PAGE_LIMIT: u32 = 1000;
/// Most rows in each list of a [`Lineage`] (verdicts, admissions and promotions keep the newest).
pub const LINEAGE_MAX_ROWS: u32 = 100;
/// Most transparency-log indexes in a [`Lineage`].
pub const LINEAGE_MAX_LOG_INDEXES: usize = 1000;
/// SQLite busy timeout: how long a write waits for another writer of the same file.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite page cache per connection, in KiB (filled on demand). Every event lands at a random
/// place of the digest indexes: a cache that holds them saves a read per index per event.
pub const SQLITE_CACHE_KIB: u32 = 64 * 1024;
/// SQLite WAL pages between automatic checkpoints (4 KiB pages: about 160 MiB of WAL). Far
/// larger than SQLite's 1 000: events land at random places of the digest indexes, and an index
/// page changed by many batches is copied back to the database once per checkpoint, not once per
/// batch (measured: 10 000 → 40 000 pages, +20 % events/s).
pub const SQLITE_WAL_AUTOCHECKPOINT: u32 = 40_000;
/// Connections per SQLite store (readers run concurrently with the one writer in WAL mode).
pub const SQLITE_MAX_CONNECTIONS: u32 = 4;
/// Connections per PostgreSQL store (per process: mind `max_connections` with many replicas).
pub const POSTGRES_MAX_CONNECTIONS: u32 = 8;
/// How long an operation waits for a pooled connection (and so how soon an unreachable
/// PostgreSQL server is reported).
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a query (a lineage, a page, a search, a verdict) or one prune chunk may take,
/// connection wait included, before it fails with [`StoreError::Timeout`].
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// A handle on the lineage store (cheap to clone: clones share one connection pool).
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// The file path or URL, password removed: for messages.
    location: Arc<str>,
    /// SQLite: the one connection every write goes through (see [`open_sqlite`]); `None` for
    /// PostgreSQL and for `sqlite::memory:` (whose one connection does everything).
    sqlite_writer: Option<SqlitePool>,
}

#[derive(Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .field("location", &self.location)
            .finish()
    }
}

/// Runs `$body` with `$conn` bound to a pooled connection (`&mut SqliteConnection` or
/// `&mut PgConnection`): the body is compiled once per backend, the SQL is the same.
macro_rules! with_conn {
    ($store:expr, $operation:expr, |$conn:ident| $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite(pool) => {
                let mut pooled = pool
                    .acquire()
                    .await
                    .map_err(|e| $crate::store::StoreError::from_sqlx($operation, e))?;
                let $conn = &mut *pooled;
                $body
            }
            $crate::store::Backend::Postgres(pool) => {
                let mut pooled = pool
                    .acquire()
                    .await
                    .map_err(|e| $crate::store::StoreError::from_sqlx($operation, e))?;
                let $conn = &mut *pooled;
                $body
            }
        }
    };
}
pub(crate) use with_conn;

/// Runs `operation` under [`QUERY_TIMEOUT`]: a query that takes longer fails with
/// [`StoreError::Timeout`] (its connection is dropped with it, not reused half-read).
pub(crate) async fn timed<T>(
    operation: &'static str,
    fut: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(QUERY_TIMEOUT, fut)
        .await
        .unwrap_or(Err(StoreError::Timeout {
            operation,
            after: QUERY_TIMEOUT,
        }))
}

impl Store {
    /// Opens (creating if needed) the store at `url` and brings its schema up to date.
    ///
    /// URLs: `sqlite:PATH`, `sqlite://PATH` (relative or absolute; `sqlite:///abs/path` also
    /// works), `sqlite::memory:`, `postgres://…`, `postgresql://…` (see the module docs for the
    /// `search_path` option).
    ///
    /// # Errors
    /// [`StoreError::BadUrl`]; [`StoreError::Corrupt`] for a file that is not SQLite (left
    /// untouched); [`StoreError::CannotOpen`] when the file or server cannot be reached;
    /// [`StoreError::SchemaTooNew`] for a store migrated by a newer custody (nothing changed);
    /// [`StoreError::Migration`] when a migration fails.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        if let Some(rest) = url.strip_prefix("sqlite:") {
            open_sqlite(url, rest).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            open_postgres(url).await
        } else {
            Err(StoreError::BadUrl {
                url: redact(url),
                reason: "unknown scheme".into(),
            })
        }
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The file path or URL (password removed), for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The newest schema version this custody knows (the one [`Store::open`] migrates to).
    pub fn schema_version(&self) -> i64 {
        latest(self.migrator())
    }

    /// Closes every connection. Operations after this fail (as a lost connection); clones share
    /// the pool, so this closes them too.
    pub async fn close(&self) {
        if let Some(writer) = &self.sqlite_writer {
            writer.close().await;
        }
        match &self.backend {
            Backend::Sqlite(p) => p.close().await,
            Backend::Postgres(p) => p.close().await,
        }
    }

    fn migrator(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite(_) => &SQLITE_MIGRATIONS,
            Backend::Postgres(_) => &POSTGRES_MIGRATIONS,
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = self.migrator();
        let supported = latest(migrator);
        let failed = |detail: String| StoreError::Migration {
            location: self.location.to_string(),
            supported,
            detail,
        };
        // Refuse a newer schema before the migrator touches anything.
        let applied = self.applied_migrations().await?;
        let unknown: Vec<i64> = applied
            .iter()
            .map(|(v, _)| *v)
            .filter(|v| !migrator.version_exists(*v))
            .collect();
        if !unknown.is_empty() {
            return Err(StoreError::SchemaTooNew {
                location: self.location.to_string(),
                found: applied.iter().map(|(v, _)| *v).max().unwrap_or_default(),
                supported,
            });
        }
        let result = match &self.backend {
            Backend::Sqlite(p) => migrator.run(p).await,
            Backend::Postgres(p) => migrator.run(p).await,
        };
        if let Err(e) = result {
            // Another process may have applied the same migrations at the same moment (SQLite
            // has no migration lock): that is success.
            let now = self.applied_migrations().await?;
            let complete = migrator
                .iter()
                .filter(|m| m.migration_type.is_up_migration())
                .all(|m| now.iter().any(|(v, ok)| *v == m.version && *ok));
            if !complete {
                return Err(failed(e.to_string()));
            }
        }
        Ok(())
    }

    /// `(version, success)` of every applied migration; empty for a fresh database.
    async fn applied_migrations(&self) -> Result<Vec<(i64, bool)>, StoreError> {
        let op = "reading the schema version";
        let err = |e| self.open_error(e);
        let exists: bool = match &self.backend {
            Backend::Sqlite(p) => {
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
                )
                .fetch_one(p)
                .await
                .map_err(err)?
                    > 0
            }
            Backend::Postgres(p) => {
                sqlx::query_scalar::<_, Option<String>>("SELECT to_regclass('_sqlx_migrations')::text")
                    .fetch_one(p)
                    .await
                    .map_err(err)?
                    .is_some()
            }
        };
        if !exists {
            return Ok(Vec::new());
        }
        const SQL: &str = "SELECT version, success FROM _sqlx_migrations ORDER BY version";
        match &self.backend {
            Backend::Sqlite(p) => sqlx::query_as::<_, (i64, bool)>(SQL).fetch_all(p).await,
            Backend::Postgres(p) => sqlx::query_as::<_, (i64, bool)>(SQL).fetch_all(p).await,
        }
        .map_err(|e| StoreError::from_sqlx(op, e))
    }

    /// An error while opening: a damaged SQLite file, else "cannot open".
    fn open_error(&self, e: sqlx::Error) -> StoreError {
        open_error(
            &self.location,
            matches!(self.backend, Backend::Sqlite(_)),
            e,
        )
    }
}

fn open_error(location: &str, sqlite: bool, e: sqlx::Error) -> StoreError {
    if sqlite && let Some(detail) = sqlite_damage(&e) {
        return StoreError::Corrupt {
            path: location.to_owned(),
            detail,
        };
    }
    StoreError::CannotOpen {
        location: location.to_owned(),
        source: Arc::new(e),
    }
}

/// SQLITE_CORRUPT (11) and SQLITE_NOTADB (26), primary or extended.
fn sqlite_damage(e: &sqlx::Error) -> Option<String> {
    let sqlx::Error::Database(db) = e else {
        return None;
    };
    let code: i64 = db.code()?.parse().ok()?;
    matches!(code & 0xff, 11 | 26).then(|| db.message().to_owned())
}

fn latest(m: &Migrator) -> i64 {
    m.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The SQLite header every database file starts with.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

async fn open_sqlite(url: &str, rest: &str) -> Result<Store, StoreError> {
    let bad = |reason: &str| StoreError::BadUrl {
        url: redact(url),
        reason: reason.into(),
    };
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path_part = rest.split('?').next().unwrap_or_default();
    if path_part.is_empty() {
        return Err(bad("no file path"));
    }
    let memory = path_part == ":memory:";
    let options = SqliteConnectOptions::from_str(url).map_err(|e| bad(&e.to_string()))?;
    let path = options.get_filename().to_path_buf();
    let location = if memory {
        ":memory:".to_owned()
    } else {
        path.display().to_string()
    };
    if !memory {
        check_sqlite_header(&path, &location)?;
    }
    let options = options
        .create_if_missing(true)
        .journal_mode(if memory {
            SqliteJournalMode::Memory
        } else {
            SqliteJournalMode::Wal
        })
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .foreign_keys(false)
        .pragma("cache_size", format!("-{SQLITE_CACHE_KIB}"))
        .pragma("wal_autocheckpoint", SQLITE_WAL_AUTOCHECKPOINT.to_string())
        // Statement journals (multi-row INSERTs) in memory, not in temporary files.
        .pragma("temp_store", "MEMORY")
        // A lineage is one statement of up to ~1 000 rows: let the worker thread hand them all
        // over without waiting for the reader.
        .row_buffer_size(1024);
    let pool_options = if memory {
        // One connection holds the database: it must never be closed while the store lives.
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        SqlitePoolOptions::new().max_connections(SQLITE_MAX_CONNECTIONS)
    };
    let pool = pool_options
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options.clone())
        .await
        .map_err(|e| open_error(&location, true, e))?;
    // Writes go through one long-lived connection of their own. In WAL mode a connection that
    // sees another connection's commit drops its whole page cache; when batches took turns on
    // the pooled connections every batch started cold and re-read the digest indexes through
    // read(2) (measured with perf: `pcache1TruncateUnsafe`, `_copy_to_iter`; one writer
    // connection: +N % events/s). Readers' caches still reset after each write, which a lineage
    // query (a few index pages) barely notices.
    let sqlite_writer = if memory {
        None
    } else {
        Some(
            SqlitePoolOptions::new()
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(SQLITE_BUSY_TIMEOUT + ACQUIRE_TIMEOUT)
                .connect_lazy_with(options),
        )
    };
    let store = Store {
        backend: Backend::Sqlite(pool),
        location: location.into(),
        sqlite_writer,
    };
    if let Err(e) = store.migrate().await {
        store.close().await;
        return Err(e);
    }
    Ok(store)
}

/// Refuses an existing file that does not start with the SQLite header, before SQLite opens it
/// (so nothing, not even a journal, is written next to it). An empty file is a new database.
fn check_sqlite_header(path: &std::path::Path, location: &str) -> Result<(), StoreError> {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else {
        return Ok(()); // missing: created by SQLite; unreadable: SQLite reports it
    };
    if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Ok(()); // SQLite reports it
    }
    let mut header = [0u8; 16];
    let mut read = 0;
    while read < header.len() {
        match file.read(header.get_mut(read..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(_) => return Ok(()),
        }
    }
    if read == 0 || &header == SQLITE_HEADER {
        return Ok(());
    }
    Err(StoreError::Corrupt {
        path: location.to_owned(),
        detail: format!(
            "it does not start with the SQLite header (found {} byte{} of something else)",
            read,
            if read == 1 { "" } else { "s" }
        ),
    })
}

async fn open_postgres(url: &str) -> Result<Store, StoreError> {
    let location = redact(url);
    let options = PgConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl {
        url: location.clone(),
        reason: e.to_string(),
    })?;
    // The server stops a statement at the same bound the client gives up at ([`QUERY_TIMEOUT`]),
    // so a query the client abandoned does not run on. A URL that sets its own wins.
    let options = if url.contains("statement_timeout") {
        options
    } else {
        options.options([("statement_timeout", format!("{}s", QUERY_TIMEOUT.as_secs()))])
    };
    let pool = PgPoolOptions::new()
        .max_connections(POSTGRES_MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|e| open_error(&location, false, e))?;
    let store = Store {
        backend: Backend::Postgres(pool),
        location: location.into(),
        sqlite_writer: None,
    };
    if let Err(e) = store.migrate().await {
        store.close().await;
        return Err(e);
    }
    Ok(store)
}

/// The URL without its password (`postgres://user:secret@h` → `postgres://user:***@h`).
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dialects_have_the_same_schema_versions() {
        let v = |m: &Migrator| m.iter().map(|m| m.version).collect::<Vec<_>>();
        assert_eq!(v(&SQLITE_MIGRATIONS), v(&POSTGRES_MIGRATIONS));
        assert!(latest(&SQLITE_MIGRATIONS) >= 1);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite:x.db"), "sqlite:x.db");
    }
}
