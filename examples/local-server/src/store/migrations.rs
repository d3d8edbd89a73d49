//! Versioned schema migrations.
//!
//! The schema version is SQLite's `PRAGMA user_version`. Migration `n`
//! (1-based) takes the database from version `n - 1` to `n`, in one
//! transaction together with the version bump, so a crash leaves the
//! database at one version or the next, never in between. Migrations are
//! only ever appended: a released one is never edited.

use rusqlite::{Connection, TransactionBehavior};

use super::{StoreError, StoreResult};

/// The migrations, oldest first.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
    CREATE TABLE api_keys (
        id          TEXT PRIMARY KEY,
        key_hash    TEXT NOT NULL UNIQUE,
        tier        TEXT NOT NULL CHECK (tier IN ('free', 'pro', 'enterprise')),
        label       TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );

    -- `seq` orders agents oldest first; ids are random. Deleted agents keep
    -- their row (deleted_at set) so that their operations stay readable and
    -- their ids are never reused.
    CREATE TABLE agents (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        id           TEXT NOT NULL UNIQUE,
        name         TEXT NOT NULL,
        description  TEXT,
        framework    TEXT NOT NULL CHECK (framework IN ('echo', 'command')),
        entrypoint   TEXT,
        config       TEXT NOT NULL,
        tags         TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('created', 'deploying', 'deployed', 'failed')),
        created_at   TEXT NOT NULL,
        updated_at   TEXT NOT NULL,
        deleted_at   TEXT
    );
    CREATE INDEX agents_live ON agents (status, seq) WHERE deleted_at IS NULL;

    CREATE TABLE operations (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        id            TEXT NOT NULL UNIQUE,
        kind          TEXT NOT NULL CHECK (kind IN ('deploy', 'invoke')),
        status        TEXT NOT NULL
                      CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
        agent_id      TEXT NOT NULL REFERENCES agents (id),
        principal_id  TEXT,
        result        TEXT,
        error         TEXT,
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL
    );
    CREATE INDEX operations_open ON operations (agent_id) WHERE status IN ('pending', 'running');

    CREATE TABLE invocations (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        id              TEXT NOT NULL UNIQUE,
        agent_id        TEXT NOT NULL REFERENCES agents (id),
        operation_id    TEXT REFERENCES operations (id),
        principal_id    TEXT,
        mode            TEXT NOT NULL CHECK (mode IN ('sync', 'async', 'stream', 'batch')),
        request         TEXT NOT NULL,
        status          TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
        result          TEXT,
        error           TEXT,
        execution_time  REAL,
        tokens_used     INTEGER,
        started_at      TEXT NOT NULL,
        finished_at     TEXT
    );
    CREATE INDEX invocations_agent ON invocations (agent_id, seq);

    -- Requests counted per key in fixed windows (rate limits and GET /usage).
    CREATE TABLE usage_counters (
        principal_id  TEXT NOT NULL,
        window_start  INTEGER NOT NULL,
        used          INTEGER NOT NULL,
        PRIMARY KEY (principal_id, window_start)
    ) WITHOUT ROWID;

    -- scope = principal id, newline, Idempotency-Key. Times in Unix ms.
    CREATE TABLE idempotency_records (
        scope        TEXT PRIMARY KEY,
        fingerprint  TEXT NOT NULL,
        state        TEXT NOT NULL CHECK (state IN ('in_progress', 'done')),
        status       INTEGER,
        headers      TEXT,
        body         BLOB,
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX idempotency_expiry ON idempotency_records (expires_at);
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The database's schema version.
pub fn version(conn: &Connection) -> StoreResult<i64> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Applies every migration the database has not had yet; a no-op on an up
/// to date database. Refuses a database newer than this build.
pub fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let found = version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew { found, supported: SCHEMA_VERSION });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let target = index as i64 + 1;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        // Re-read inside the transaction: another process may have migrated
        // the file between the first read and the lock.
        if version(&tx)? >= target {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", target)?;
        tx.commit()?;
        tracing::info!(version = target, "applied database migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(conn: &Connection) -> Vec<String> {
        let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let first = tables(&conn);
        assert_eq!(version(&conn).unwrap(), SCHEMA_VERSION);
        migrate(&mut conn).unwrap();
        assert_eq!(tables(&conn), first);
        assert_eq!(version(&conn).unwrap(), SCHEMA_VERSION);
        for table in ["agents", "api_keys", "idempotency_records", "invocations", "operations", "usage_counters"] {
            assert!(first.iter().any(|t| t == table), "{table} in {first:?}");
        }
    }

    #[test]
    fn a_newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(matches!(err, StoreError::TooNew { .. }), "{err}");
    }

    #[test]
    fn a_failing_migration_leaves_the_version_alone() {
        let mut conn = Connection::open_in_memory().unwrap();
        // A table in the way makes migration 1 fail half way through its
        // batch; the transaction must take the half back.
        conn.execute_batch("CREATE TABLE agents (x INTEGER);").unwrap();
        assert!(migrate(&mut conn).is_err());
        assert_eq!(version(&conn).unwrap(), 0);
        assert_eq!(tables(&conn), vec!["agents".to_owned()]);
    }
}
