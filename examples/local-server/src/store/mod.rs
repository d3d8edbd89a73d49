//! The server's state in a database, SQLite or PostgreSQL: API keys,
//! agents, operations (the jobs of deployments and async invocations, with
//! their leases), invocations, usage counters, idempotency records and the
//! running server instances.
//!
//! One implementation serves both databases: every query goes through
//! sqlx's `Any` driver, written in the SQL the two share (`$1`
//! placeholders, `INSERT ... ON CONFLICT`, `RETURNING`). The few places
//! where they differ (the clock, row locks, notifications, migrations) ask
//! [`Backend`]. Every change that touches more than one row is one
//! transaction, and every state transition is a conditional update, so a
//! crash never leaves half of it behind and of two racing writers exactly
//! one wins, on one instance or several.

mod agents;
mod idempotency;
mod instances;
pub mod invocations;
mod keys;
mod migrations;
pub mod model;
mod operations;
mod usage;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

pub use agents::{AgentPage, DeleteOutcome};
pub use keys::hash_key;
pub use migrations::SCHEMA_VERSION;
pub use model::*;
pub use operations::{
    CANCEL_CHANNEL, CancelOutcome, ClaimedJob, DeployStart, INTERRUPTED_REASON, InvokeStart, JobKind, LeaseState,
    MAX_DEPLOY_ATTEMPTS, Reaped, interrupted_error, lost_instance_error,
};
pub use usage::Count;

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// An SQLite file, created with its parent directory when missing.
    File(PathBuf),
    /// A throwaway in-memory SQLite database (`:memory:`).
    Memory,
    /// A PostgreSQL database, by its `postgres://` (or `postgresql://`) URL.
    Postgres(String),
}

impl DbLocation {
    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self {
            DbLocation::Postgres(_) => Backend::Postgres,
            DbLocation::File(_) | DbLocation::Memory => Backend::Sqlite,
        }
    }
}

impl std::str::FromStr for DbLocation {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(if text == ":memory:" {
            DbLocation::Memory
        } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            DbLocation::Postgres(text.to_owned())
        } else {
            DbLocation::File(PathBuf::from(text))
        })
    }
}

impl std::fmt::Display for DbLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbLocation::File(path) => write!(f, "{}", path.display()),
            DbLocation::Memory => f.write_str(":memory:"),
            // Never the password.
            DbLocation::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

/// `url` with the password of its user info replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split_once(':').map_or(user_info, |(user, _)| user);
            let hidden = if user_info.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// The two databases, and the SQL in which they differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite: one process, one connection, writes serialized.
    Sqlite,
    /// PostgreSQL: any number of instances sharing one database.
    Postgres,
}

impl Backend {
    /// An expression for the database's clock in Unix milliseconds. Leases
    /// are compared on the database's clock, so instances whose clocks
    /// disagree still agree on when a lease ran out.
    pub fn now_ms(self) -> &'static str {
        match self {
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
            Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }

    /// The suffix of a `SELECT` that claims rows for this transaction and
    /// passes over those another transaction holds. SQLite has one writer
    /// at a time, so a plain `SELECT` inside the write transaction already
    /// is that.
    pub fn skip_locked(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// The suffix of a `SELECT` that locks the rows it read until the
    /// transaction ends.
    pub fn for_update(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }
}

/// A failure of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed, or could not be reached.
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    /// A JSON column did not parse, or a value did not serialize.
    #[error("stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
    /// A text column held a value this version does not know.
    #[error("unexpected value {value:?} in column {column}")]
    BadValue {
        /// The column.
        column: &'static str,
        /// What it held.
        value: String,
    },
    /// The database was written by a newer version of the server.
    #[error(
        "the database has schema version {found}, newer than the {supported} this server knows; use a newer runagent-local"
    )]
    TooNew {
        /// The database's schema version.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// The database directory could not be created.
    #[error("cannot create {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether the database could not be reached (a network error, a
    /// refused or lost connection, a server shutting down or starting, a
    /// pool with no connection to give): a failure that goes away by
    /// itself, answered `503` with `Retry-After` rather than `500`.
    pub fn is_unavailable(&self) -> bool {
        let StoreError::Sql(error) = self else { return false };
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                // Class 08: connection exceptions; 57P01..57P03: the server
                // is shutting down, crashed or starting; 53300: too many
                // connections. SQLITE_BUSY (5) and SQLITE_LOCKED (6): another
                // process held the file past the busy timeout.
                code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300" | "5" | "6")
            }),
            _ => false,
        }
    }
}

/// A result of the store.
pub type StoreResult<T> = Result<T, StoreError>;

/// How long a request waits for a PostgreSQL connection before it is
/// answered `503`: long enough to ride out a quick restart of the database,
/// short enough that clients are not left hanging.
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// The database handle; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    location: DbLocation,
    /// Until when (Unix ms) the database is believed unreachable: set by
    /// a failure that says so, cleared by the next success (see
    /// [`Store::guarded`]).
    down_until: Arc<AtomicI64>,
}

/// How long one "unavailable" failure makes [`Store::guarded`] calls
/// impatient.
const DOWN_FOR: Duration = Duration::from_secs(2);

/// How long a [`Store::guarded`] call waits while the database is believed
/// unreachable: enough for a query on a database that just came back.
const PROBE_TIMEOUT: Duration = Duration::from_millis(250);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("location", &self.location.to_string()).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating when missing, for SQLite) the database, sets it up
    /// and applies the pending migrations.
    ///
    /// SQLite gets one connection: it serializes writers anyway, and one
    /// connection keeps `:memory:` databases (which live as long as their
    /// connection) and transactions simple. PostgreSQL gets a pool.
    pub async fn open(location: &DbLocation) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let backend = location.backend();
        let (url, options) = match location {
            DbLocation::Memory => ("sqlite::memory:".to_owned(), sqlite_pool()),
            DbLocation::File(path) => {
                create_parent(path)?;
                (sqlite_url(path), sqlite_pool())
            }
            DbLocation::Postgres(url) => (
                url.clone(),
                AnyPoolOptions::new().max_connections(8).min_connections(0).acquire_timeout(PG_ACQUIRE_TIMEOUT),
            ),
        };
        let connect: AnyConnectOptions = url.parse()?;
        let pool = options
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(sqlx::raw_sql(SQLITE_SETTINGS)).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(connect)
            .await?;
        let store = Store { pool, backend, location: location.clone(), down_until: Arc::default() };
        migrations::migrate(&store).await?;
        Ok(store)
    }

    /// Runs `query` on the request path (the layers in front of every
    /// request, and the handlers' queries). While a recent failure said the
    /// database is down, the query gets only a short time (a probe) instead
    /// of the pool's full wait for a connection: otherwise every layer would
    /// wait it out in turn, and every request during an outage would take
    /// seconds before its `503`. An "unavailable" failure marks the
    /// database down for a moment; a success marks it up, so a database
    /// that came back is used again by the next request.
    pub async fn guarded<T>(&self, query: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
        let now = crate::time::unix_millis(SystemTime::now());
        let result = if self.down_until.load(Ordering::Relaxed) > now {
            tokio::time::timeout(PROBE_TIMEOUT, query).await.unwrap_or(Err(StoreError::Sql(sqlx::Error::PoolTimedOut)))
        } else {
            query.await
        };
        self.note(&result);
        result
    }

    /// Records what a query's result says about the database's
    /// reachability.
    pub fn note<T>(&self, result: &StoreResult<T>) {
        match result {
            Err(error) if error.is_unavailable() => {
                let until = crate::time::unix_millis(SystemTime::now() + DOWN_FOR);
                self.down_until.store(until, Ordering::Relaxed);
            }
            Ok(_) => self.down_until.store(0, Ordering::Relaxed),
            Err(_) => {}
        }
    }

    /// Whether a recent failure said the database cannot be reached.
    pub fn seems_down(&self) -> bool {
        self.down_until.load(Ordering::Relaxed) > crate::time::unix_millis(SystemTime::now())
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Where the database is.
    pub fn location(&self) -> &DbLocation {
        &self.location
    }

    /// The connection pool, for queries of the submodules and tests.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a write transaction. On SQLite it is `BEGIN IMMEDIATE`, which
    /// takes the write lock at once: a deferred transaction that reads
    /// first and writes later fails with "database is locked" when another
    /// connection wrote in between, instead of waiting its turn.
    pub(crate) async fn begin(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Folds SQLite's write-ahead log into the database file, so that the
    /// file alone holds everything (at shutdown); nothing for PostgreSQL.
    pub async fn checkpoint(&self) -> StoreResult<()> {
        if self.backend == Backend::Sqlite {
            self.pool.execute(sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE);")).await?;
        }
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn sqlite_pool() -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(Duration::from_secs(60))
}

/// The `sqlite:` URL of a file, percent-encoded so that any path works.
fn sqlite_url(path: &Path) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC.remove(b'/').remove(b'.').remove(b'-').remove(b'_');
    format!("sqlite:{}?mode=rwc", utf8_percent_encode(&path.to_string_lossy(), KEEP))
}

/// SQLite connection settings, applied to every connection.
///
/// - WAL: readers never block the writer, and a crash mid-write leaves the
///   last committed state (the WAL is replayed or ignored as a whole).
/// - `synchronous = FULL`: every commit is fsynced before the response that
///   reports it goes out. NORMAL would only risk the last commits on a
///   power loss, but those commits are exactly what clients were told
///   happened (a created agent, a stored idempotent response), and one
///   machine's request rate is far from what an fsync per commit costs.
/// - Foreign keys on, so operations and invocations always name an agent.
/// - A busy timeout, in case another process (say, the sqlite3 shell)
///   holds the lock for a moment.
const SQLITE_SETTINGS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;";

fn create_parent(path: &Path) -> StoreResult<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: dir.to_owned(), source })
        }
        _ => Ok(()),
    }
}

/// Reads a text column into one of the text enums.
pub(crate) fn parse_enum<T>(column: &'static str, value: String, parse: impl Fn(&str) -> Option<T>) -> StoreResult<T> {
    parse(&value).ok_or(StoreError::BadValue { column, value })
}

/// Reads an optional JSON column.
pub(crate) fn parse_json_opt(text: Option<String>) -> StoreResult<Option<serde_json::Value>> {
    text.map(|t| serde_json::from_str(&t)).transpose().map_err(StoreError::from)
}

/// Column `index` of `row`.
pub(crate) fn col<T>(row: &AnyRow, index: usize) -> StoreResult<T>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    Ok(row.try_get(index)?)
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests {
    use super::test_support::{backends, temp_sqlite};
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(":memory:".parse::<DbLocation>().unwrap(), DbLocation::Memory);
        assert_eq!("a/b.db".parse::<DbLocation>().unwrap(), DbLocation::File(PathBuf::from("a/b.db")));
        let pg = "postgres://u:secret@127.0.0.1:5432/db".parse::<DbLocation>().unwrap();
        assert_eq!(pg.backend(), Backend::Postgres);
        assert_eq!(pg.to_string(), "postgres://u:***@127.0.0.1:5432/db");
        assert_eq!("postgresql://127.0.0.1/db".parse::<DbLocation>().unwrap().to_string(), "postgresql://127.0.0.1/db");
    }

    #[tokio::test]
    async fn file_databases_use_wal_full_sync_and_foreign_keys() {
        let (store, _dir, _) = temp_sqlite().await;
        let pragma = |name: &'static str| {
            let pool = store.pool().clone();
            async move {
                let row = sqlx::query(&format!("PRAGMA {name}")).fetch_one(&pool).await.unwrap();
                row.try_get::<String, _>(0).or_else(|_| row.try_get::<i64, _>(0).map(|n| n.to_string())).unwrap()
            }
        };
        assert_eq!(pragma("journal_mode").await, "wal");
        assert_eq!(pragma("foreign_keys").await, "1");
        assert_eq!(pragma("synchronous").await, "2", "FULL");
    }

    #[tokio::test]
    async fn odd_file_names_work() {
        let dir = tempfile::tempdir().unwrap();
        let location = DbLocation::File(dir.path().join("a dir?#/state %20.db"));
        let store = Store::open(&location).await.unwrap();
        store.checkpoint().await.unwrap();
        assert!(dir.path().join("a dir?#/state %20.db").exists());
    }

    #[tokio::test]
    async fn every_backend_answers() {
        for (name, store, _guard) in backends().await {
            let one: i64 = sqlx::query_scalar("SELECT 1").fetch_one(store.pool()).await.unwrap();
            assert_eq!(one, 1, "{name}");
        }
    }
}
