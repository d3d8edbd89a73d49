//! Stores for tests: a temporary SQLite file, and a fresh database in the
//! test binary's throwaway PostgreSQL server when its binaries are there.

use super::{DbLocation, Store};

#[path = "../../tests/support/pg.rs"]
pub mod pg;

/// What keeps a test's store alive: its temporary folder.
pub struct Guard {
    _dir: Option<tempfile::TempDir>,
}

/// A store in a fresh temporary directory, the directory (keep it alive as
/// long as the store) and its location.
pub async fn temp_sqlite() -> (Store, tempfile::TempDir, DbLocation) {
    let dir = tempfile::tempdir().unwrap();
    let location = DbLocation::File(dir.path().join("nested/state.db"));
    (Store::open(&location).await.unwrap(), dir, location)
}

/// A fresh database in the shared PostgreSQL server.
pub struct FreshPostgres {
    /// Where it is.
    pub location: DbLocation,
}

/// A new, empty PostgreSQL database (the shared server is started on first
/// use). Panics when PostgreSQL is unavailable: call it only after
/// [`backends`] returned a PostgreSQL store.
pub async fn fresh_postgres() -> FreshPostgres {
    let server = tokio::task::spawn_blocking(pg::shared).await.unwrap().expect("PostgreSQL is available");
    FreshPostgres { location: DbLocation::Postgres(server.create_database().await) }
}

/// The backends every store test runs on: SQLite (a temporary file) and,
/// when its binaries are installed, PostgreSQL (a fresh database). Without
/// them PostgreSQL is skipped with a loud message, or the test fails when
/// `CI` is set.
pub async fn backends() -> Vec<(&'static str, Store, Guard)> {
    let (sqlite, dir, _) = temp_sqlite().await;
    let mut stores = vec![("sqlite", sqlite, Guard { _dir: Some(dir) })];
    if tokio::task::spawn_blocking(pg::shared).await.unwrap().is_some() {
        let fresh = fresh_postgres().await;
        stores.push(("postgres", Store::open(&fresh.location).await.unwrap(), Guard { _dir: None }));
    }
    stores
}

/// Opens the same database again (a restart).
pub async fn reopen(store: &Store) -> Store {
    Store::open(store.location()).await.unwrap()
}
