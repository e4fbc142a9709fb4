//! The two lineage-store backends every end-to-end scenario of `tests/lineage.rs` and
//! `tests/ui.rs` runs on: a SQLite file in a temporary directory, and a fresh PostgreSQL schema.
//!
//! PostgreSQL is the server at `CUSTODY_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`, as in `tests/store.rs`). Each test gets a schema of
//! its own, `custody_test_<label>_<random>` (parallel runs do not meet), selected the way a
//! deployment selects one: the store URL's `options=-csearch_path%3D<schema>`. The schema is
//! dropped when the [`TestStore`] is dropped, also when the test fails.
//!
//! When the server does not answer, the PostgreSQL variant fails if `CI` or
//! `CUSTODY_TEST_POSTGRES` is set (PostgreSQL was asked for), and is skipped with a message
//! otherwise ([`postgres_required_by`]; `tests/store.rs` decides by the same rule).
//!
//! [`each_backend!`] declares a scenario's two tests, `sqlite::NAME` and `postgres::NAME`, so a
//! failure names its backend.
//!
//! Included with `#[path]` by the test binaries that use it (`tests/lineage.rs`, `tests/ui.rs`,
//! and `tests/store.rs` for the rule, the server URL and [`random_hex`]; not from
//! `common/mod.rs`), so the other test binaries do not compile it.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection as _, PgConnection};

use crate::common::registry::TempDir;

const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";
/// How long the PostgreSQL server has to answer before it counts as absent.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long creating or dropping a test schema may take (a lock held elsewhere must not hang
/// the run).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A lineage store for one test: its URL (what `store:` and `--store` take) and whatever has
/// to go when the test ends.
pub struct TestStore {
    /// `"sqlite"` or `"postgres"`: the screenshot and message suffix.
    pub backend: &'static str,
    /// The store URL.
    pub url: String,
    /// PostgreSQL: the schema to drop.
    schema: Option<String>,
    /// SQLite: the directory holding the database file.
    _dir: Option<TempDir>,
}

impl TestStore {
    /// A new SQLite database file (`lineage.db` in a temporary directory).
    pub fn sqlite(label: &str) -> Self {
        let dir = TempDir::new(&format!("custody-{label}-sqlite"));
        let url = format!("sqlite:{}", dir.0.join("lineage.db").display());
        Self {
            backend: "sqlite",
            url,
            schema: None,
            _dir: Some(dir),
        }
    }

    /// A new, empty schema on the test PostgreSQL server; `None` (skip) when the server does
    /// not answer and PostgreSQL was not asked for.
    ///
    /// # Panics
    /// When the server does not answer and `CI` or `CUSTODY_TEST_POSTGRES` is set, or when it
    /// answers but refuses to create the schema.
    pub fn postgres(label: &str) -> Option<Self> {
        let base = postgres_base();
        // An unquoted identifier of at most 63 bytes: lower-case letters, digits, underscores.
        let label: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(24)
            .collect();
        let schema = format!("custody_test_{label}_{}", random_hex());
        match admin(&base, &format!("CREATE SCHEMA {schema}")) {
            Ok(()) => Some(Self {
                backend: "postgres",
                url: with_search_path(&base, &schema),
                schema: Some(schema),
                _dir: None,
            }),
            Err(Admin::Unreachable(e)) => {
                if let Some(variable) = postgres_required_by() {
                    panic!(
                        "PostgreSQL at {base} does not answer ({e}), and {variable} is set: the \
                         PostgreSQL variant of this test needs it (start PostgreSQL, or point \
                         CUSTODY_TEST_POSTGRES at one)"
                    );
                }
                eprintln!(
                    "SKIPPING the PostgreSQL variant of this test: {base} does not answer ({e}); \
                     set CUSTODY_TEST_POSTGRES to run it"
                );
                None
            }
            Err(Admin::Failed(e)) => panic!("CREATE SCHEMA {schema} on {base}: {e}"),
        }
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        let Some(schema) = &self.schema else {
            return;
        };
        // Never panic here: this also runs while a failed test unwinds.
        if let Err(Admin::Unreachable(e) | Admin::Failed(e)) = admin(
            &postgres_base(),
            &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
        ) {
            eprintln!("could not drop the test schema {schema}: {e}");
        }
    }
}

/// Declares the tests `sqlite::NAME` and `postgres::NAME` for each scenario `NAME`, a function
/// taking `&TestStore` (`fn`, run as `#[test]`; or `async fn`, run as a two-worker
/// `#[tokio::test]`).
macro_rules! each_backend {
    ($(fn $name:ident;)+) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(&$crate::backends::TestStore::sqlite(stringify!($name)));
                }
            )+
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(store) = $crate::backends::TestStore::postgres(stringify!($name)) {
                        super::$name(&store);
                    }
                }
            )+
        }
    };
    ($(async fn $name:ident;)+) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&$crate::backends::TestStore::sqlite(stringify!($name))).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(store) = $crate::backends::TestStore::postgres(stringify!($name)) {
                        super::$name(&store).await;
                    }
                }
            )+
        }
    };
}
pub(crate) use each_backend;

/// The test PostgreSQL server: `CUSTODY_TEST_POSTGRES`, or the loopback default.
pub fn postgres_base() -> String {
    std::env::var("CUSTODY_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.into())
}

/// Whether a PostgreSQL that does not answer is a failure rather than a skip, and why: the
/// variable that asked for it (`CI`, else `CUSTODY_TEST_POSTGRES`), or `None` (skip).
pub fn postgres_required_by() -> Option<&'static str> {
    ["CI", "CUSTODY_TEST_POSTGRES"]
        .into_iter()
        .find(|v| std::env::var_os(v).is_some())
}

/// `base` with `schema` as its `search_path` (the store URL's `options`).
pub fn with_search_path(base: &str, schema: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-csearch_path%3D{schema}")
}

enum Admin {
    /// No connection within [`CONNECT_TIMEOUT`].
    Unreachable(String),
    /// Connected, but the statement failed or timed out.
    Failed(String),
}

/// Runs one statement on its own connection (and its own runtime, so it works from sync tests,
/// async tests and `Drop` alike).
fn admin(url: &str, sql: &str) -> Result<(), Admin> {
    on_own_runtime(async {
        let mut c = match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(url)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(Admin::Unreachable(e.to_string())),
            Err(_) => {
                return Err(Admin::Unreachable(format!(
                    "no connection within {CONNECT_TIMEOUT:?}"
                )));
            }
        };
        let run = sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).execute(&mut c);
        let result = match tokio::time::timeout(STATEMENT_TIMEOUT, run).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Admin::Failed(e.to_string())),
            Err(_) => Err(Admin::Failed(format!(
                "not done within {STATEMENT_TIMEOUT:?}"
            ))),
        };
        let _ = c.close().await;
        result
    })
}

fn on_own_runtime<T: Send>(work: impl Future<Output = T> + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(work)
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// 16 hex digits, different on every call (time, process and a counter hashed): names of test
/// schemas and directories that parallel runs do not share.
pub fn random_hex() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    h.write_u32(N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    format!("{:016x}", h.finish())
}
