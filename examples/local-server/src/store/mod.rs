//! The server's state in an embedded SQLite database: API keys, agents,
//! operations, invocations, usage counters and idempotency records.
//!
//! One connection sits behind a mutex, and every access runs on tokio's
//! blocking pool ([`Store::call`]): SQLite serializes writers anyway, and a
//! single connection keeps `:memory:` databases and transactions simple.
//! Each function of the submodules takes a `&mut Connection`, so it can be
//! tested without a runtime; every multi-statement change runs in one
//! transaction, so a crash never leaves half of it behind.

mod agents;
mod idempotency;
pub mod invocations;
mod keys;
mod migrations;
pub mod model;
mod operations;
mod usage;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;

pub use agents::{AgentPage, DeleteOutcome};
pub use keys::hash_key;
pub use migrations::SCHEMA_VERSION;
pub use model::*;
pub use operations::{CancelOutcome, DeployStart, INTERRUPTED_REASON, InvokeStart, Recovered, interrupted_error};
pub use usage::Count;

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// A file, created with its parent directory when missing.
    File(PathBuf),
    /// A throwaway in-memory database (`:memory:`).
    Memory,
}

impl std::str::FromStr for DbLocation {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(if text == ":memory:" { DbLocation::Memory } else { DbLocation::File(PathBuf::from(text)) })
    }
}

impl std::fmt::Display for DbLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbLocation::File(path) => write!(f, "{}", path.display()),
            DbLocation::Memory => f.write_str(":memory:"),
        }
    }
}

/// A failure of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
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
        /// The database's `user_version`.
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
    /// The blocking task running the query panicked or was cancelled.
    #[error("the database task failed: {0}")]
    Task(String),
}

/// A result of the store.
pub type StoreResult<T> = Result<T, StoreError>;

/// The database handle; cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating when missing) the database, sets it up and applies
    /// the pending migrations. Blocking: call it before serving, or from
    /// `spawn_blocking`.
    pub fn open(location: &DbLocation) -> StoreResult<Store> {
        let mut conn = match location {
            DbLocation::Memory => Connection::open_in_memory()?,
            DbLocation::File(path) => {
                create_parent(path)?;
                Connection::open(path)?
            }
        };
        configure(&conn)?;
        migrations::migrate(&mut conn)?;
        Ok(Store { conn: Arc::new(Mutex::new(conn)) })
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<R> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock leaves the connection usable:
            // any transaction it had open was rolled back when dropped.
            let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` with the connection on the current thread (startup,
    /// shutdown and tests).
    pub fn call_blocking<R>(&self, f: impl FnOnce(&mut Connection) -> StoreResult<R>) -> StoreResult<R> {
        let mut guard = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }
}

fn create_parent(path: &Path) -> StoreResult<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: dir.to_owned(), source })
        }
        _ => Ok(()),
    }
}

/// Connection settings, applied at every open.
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
fn configure(conn: &Connection) -> StoreResult<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

/// Reads a text column into one of the text enums.
pub(crate) fn parse_enum<T>(column: &'static str, value: String, parse: impl Fn(&str) -> Option<T>) -> StoreResult<T> {
    parse(&value).ok_or(StoreError::BadValue { column, value })
}

/// Reads an optional JSON column.
pub(crate) fn parse_json_opt(text: Option<String>) -> StoreResult<Option<serde_json::Value>> {
    text.map(|t| serde_json::from_str(&t)).transpose().map_err(StoreError::from)
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// A store in a fresh temporary directory, and the directory (keep it
    /// alive as long as the store).
    pub fn temp_store() -> (Store, tempfile::TempDir, DbLocation) {
        let dir = tempfile::tempdir().unwrap();
        let location = DbLocation::File(dir.path().join("nested/state.db"));
        (Store::open(&location).unwrap(), dir, location)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::temp_store;
    use super::*;

    #[test]
    fn memory_location_parses() {
        assert_eq!(":memory:".parse::<DbLocation>().unwrap(), DbLocation::Memory);
        assert_eq!("a/b.db".parse::<DbLocation>().unwrap(), DbLocation::File(PathBuf::from("a/b.db")));
    }

    #[test]
    fn file_databases_use_wal_and_foreign_keys() {
        let (store, _dir, _) = temp_store();
        store
            .call_blocking(|c| {
                let mode: String = c.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
                assert_eq!(mode, "wal");
                let fk: i64 = c.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
                assert_eq!(fk, 1);
                let sync: i64 = c.pragma_query_value(None, "synchronous", |r| r.get(0))?;
                assert_eq!(sync, 2, "FULL");
                Ok(())
            })
            .unwrap();
    }

    #[tokio::test]
    async fn call_runs_off_the_runtime() {
        let store = Store::open(&DbLocation::Memory).unwrap();
        let one: i64 = store.call(|c| Ok(c.query_row("SELECT 1", [], |r| r.get(0))?)).await.unwrap();
        assert_eq!(one, 1);
    }
}
