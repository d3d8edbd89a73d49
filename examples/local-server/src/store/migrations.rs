//! Versioned schema migrations, one list per database.
//!
//! Migration `n` (1-based) takes the database from version `n - 1` to `n`,
//! in one transaction together with the version bump, so a crash leaves
//! the database at one version or the next, never in between. The two
//! lists have the same length and the same meaning at each version; only
//! the SQL dialect differs. Migrations are only ever appended: a released
//! one is never edited.
//!
//! - SQLite keeps the version in `PRAGMA user_version`, as it always has,
//!   so databases written by earlier builds upgrade in place.
//! - PostgreSQL keeps it in the one-row table `runagent_schema`, and every
//!   migration runs under a transaction-scoped advisory lock: instances
//!   started at the same moment on one database migrate it once, one after
//!   the other.

use sqlx::{Connection, Executor};

use super::{Backend, Store, StoreError, StoreResult};

/// SQLite's migrations, oldest first.
const SQLITE: &[&str] = &[
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
    // 2: operations become jobs with leases; instances and their heartbeats;
    // idempotency reservations name the instance that made them.
    r#"
    ALTER TABLE operations ADD COLUMN lease_owner TEXT;
    ALTER TABLE operations ADD COLUMN lease_until INTEGER;
    ALTER TABLE operations ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX operations_leases ON operations (lease_until) WHERE status IN ('pending', 'running');

    -- Every running server instance, with the time (database clock, Unix
    -- ms) until which it is known to be alive.
    CREATE TABLE instances (
        id               TEXT PRIMARY KEY,
        started_at       TEXT NOT NULL,
        heartbeat_until  INTEGER NOT NULL
    );

    ALTER TABLE idempotency_records ADD COLUMN owner TEXT;
    -- Reservations from before this version belong to a process that is
    -- gone: earlier versions released them at startup, and so does this.
    DELETE FROM idempotency_records WHERE state = 'in_progress';
    "#,
];

/// PostgreSQL's migrations, oldest first; version `n` means what SQLite's
/// version `n` means.
const POSTGRES: &[&str] = &[
    // 1: the initial schema.
    r#"
    CREATE TABLE api_keys (
        id          TEXT PRIMARY KEY,
        key_hash    TEXT NOT NULL UNIQUE,
        tier        TEXT NOT NULL CHECK (tier IN ('free', 'pro', 'enterprise')),
        label       TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );

    CREATE TABLE agents (
        seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
        seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
        seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id              TEXT NOT NULL UNIQUE,
        agent_id        TEXT NOT NULL REFERENCES agents (id),
        operation_id    TEXT REFERENCES operations (id),
        principal_id    TEXT,
        mode            TEXT NOT NULL CHECK (mode IN ('sync', 'async', 'stream', 'batch')),
        request         TEXT NOT NULL,
        status          TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
        result          TEXT,
        error           TEXT,
        execution_time  DOUBLE PRECISION,
        tokens_used     BIGINT,
        started_at      TEXT NOT NULL,
        finished_at     TEXT
    );
    CREATE INDEX invocations_agent ON invocations (agent_id, seq);
    CREATE INDEX invocations_operation ON invocations (operation_id);

    CREATE TABLE usage_counters (
        principal_id  TEXT NOT NULL,
        window_start  BIGINT NOT NULL,
        used          BIGINT NOT NULL,
        PRIMARY KEY (principal_id, window_start)
    );

    CREATE TABLE idempotency_records (
        scope        TEXT PRIMARY KEY,
        fingerprint  TEXT NOT NULL,
        state        TEXT NOT NULL CHECK (state IN ('in_progress', 'done')),
        status       BIGINT,
        headers      TEXT,
        body         BYTEA,
        created_at   BIGINT NOT NULL,
        expires_at   BIGINT NOT NULL
    );
    CREATE INDEX idempotency_expiry ON idempotency_records (expires_at);
    "#,
    // 2: operations become jobs with leases; instances and their heartbeats;
    // idempotency reservations name the instance that made them.
    r#"
    ALTER TABLE operations ADD COLUMN lease_owner TEXT;
    ALTER TABLE operations ADD COLUMN lease_until BIGINT;
    ALTER TABLE operations ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
    CREATE INDEX operations_leases ON operations (lease_until) WHERE status IN ('pending', 'running');

    CREATE TABLE instances (
        id               TEXT PRIMARY KEY,
        started_at       TEXT NOT NULL,
        heartbeat_until  BIGINT NOT NULL
    );

    ALTER TABLE idempotency_records ADD COLUMN owner TEXT;
    "#,
];

/// The schema version this build writes (the same for both databases).
pub const SCHEMA_VERSION: i64 = SQLITE.len() as i64;

const _: () = assert!(SQLITE.len() == POSTGRES.len(), "both databases have every version");

/// An arbitrary constant naming the advisory lock migrations hold on
/// PostgreSQL ("runagent" in ASCII).
const MIGRATION_LOCK: i64 = 0x72_75_6e_61_67_65_6e_74;

/// The database's schema version.
#[cfg(test)]
pub async fn version(store: &Store) -> StoreResult<i64> {
    let mut conn = store.pool().acquire().await?;
    read_version(store.backend(), &mut conn).await
}

async fn read_version(backend: Backend, conn: &mut sqlx::AnyConnection) -> StoreResult<i64> {
    Ok(match backend {
        Backend::Sqlite => sqlx::query_scalar("PRAGMA user_version").fetch_one(&mut *conn).await?,
        Backend::Postgres => {
            conn.execute(sqlx::raw_sql("CREATE TABLE IF NOT EXISTS runagent_schema (version BIGINT NOT NULL)")).await?;
            sqlx::query_scalar("SELECT version FROM runagent_schema").fetch_optional(&mut *conn).await?.unwrap_or(0)
        }
    })
}

/// Applies every migration the database has not had yet; a no-op on an up
/// to date database. Refuses a database newer than this build.
pub async fn migrate(store: &Store) -> StoreResult<()> {
    let mut conn = store.pool().acquire().await?;
    match store.backend() {
        Backend::Sqlite => migrate_sqlite(&mut conn).await,
        Backend::Postgres => migrate_postgres(&mut conn).await,
    }
}

fn check_version(found: i64) -> StoreResult<usize> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew { found, supported: SCHEMA_VERSION });
    }
    Ok(usize::try_from(found.max(0)).unwrap_or(0))
}

/// One immediate transaction per migration: it takes the write lock before
/// re-reading the version, so two processes opening one file migrate it
/// once.
async fn migrate_sqlite(conn: &mut sqlx::AnyConnection) -> StoreResult<()> {
    let found = check_version(read_version(Backend::Sqlite, conn).await?)?;
    for (index, sql) in SQLITE.iter().enumerate().skip(found) {
        let target = index as i64 + 1;
        conn.execute(sqlx::raw_sql("BEGIN IMMEDIATE")).await?;
        let applied = async {
            if read_version(Backend::Sqlite, conn).await? >= target {
                return Ok::<bool, StoreError>(false);
            }
            conn.execute(sqlx::raw_sql(sql)).await?;
            conn.execute(sqlx::raw_sql(&format!("PRAGMA user_version = {target}"))).await?;
            Ok(true)
        }
        .await;
        match applied {
            Ok(applied) => {
                conn.execute(sqlx::raw_sql("COMMIT")).await?;
                log_applied(applied, target);
            }
            Err(error) => {
                let _ = conn.execute(sqlx::raw_sql("ROLLBACK")).await;
                return Err(error);
            }
        }
    }
    Ok(())
}

/// Every pending migration in one transaction (PostgreSQL's DDL is
/// transactional) under the advisory lock, which is taken before the
/// version table is even created, so concurrent first starts never race.
async fn migrate_postgres(conn: &mut sqlx::AnyConnection) -> StoreResult<()> {
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(MIGRATION_LOCK).execute(&mut *tx).await?;
    let found = check_version(read_version(Backend::Postgres, &mut tx).await?)?;
    for (index, sql) in POSTGRES.iter().enumerate().skip(found) {
        let target = index as i64 + 1;
        tx.execute(sqlx::raw_sql(sql)).await?;
        tx.execute(sqlx::raw_sql("DELETE FROM runagent_schema")).await?;
        sqlx::query("INSERT INTO runagent_schema (version) VALUES ($1)").bind(target).execute(&mut *tx).await?;
        log_applied(true, target);
    }
    tx.commit().await?;
    Ok(())
}

fn log_applied(applied: bool, version: i64) {
    if applied {
        tracing::info!(version, "applied database migration");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{backends, temp_sqlite};

    async fn tables(store: &Store) -> Vec<String> {
        let sql = match store.backend() {
            Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
            Backend::Postgres => {
                "SELECT table_name::TEXT FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
            }
        };
        sqlx::query_scalar(sql).fetch_all(store.pool()).await.unwrap()
    }

    #[tokio::test]
    async fn migrating_twice_is_a_no_op() {
        for (name, store, _guard) in backends().await {
            let first = tables(&store).await;
            assert_eq!(version(&store).await.unwrap(), SCHEMA_VERSION, "{name}");
            migrate(&store).await.unwrap();
            assert_eq!(tables(&store).await, first, "{name}");
            assert_eq!(version(&store).await.unwrap(), SCHEMA_VERSION, "{name}");
            for table in [
                "agents",
                "api_keys",
                "idempotency_records",
                "instances",
                "invocations",
                "operations",
                "usage_counters",
            ] {
                assert!(first.iter().any(|t| t == table), "{name}: {table} in {first:?}");
            }
        }
    }

    #[tokio::test]
    async fn a_newer_database_is_refused() {
        for (name, store, _guard) in backends().await {
            let bump = match store.backend() {
                Backend::Sqlite => format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1),
                Backend::Postgres => format!("UPDATE runagent_schema SET version = {}", SCHEMA_VERSION + 1),
            };
            store.pool().execute(sqlx::raw_sql(&bump)).await.unwrap();
            let err = migrate(&store).await.unwrap_err();
            assert!(matches!(err, StoreError::TooNew { .. }), "{name}: {err}");
        }
    }

    #[tokio::test]
    async fn a_version_1_sqlite_database_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        // A database as version 1 left it, with an open reservation.
        {
            let store = {
                let location = crate::store::DbLocation::File(path.clone());
                sqlx::any::install_default_drivers();
                let pool = sqlx::any::AnyPoolOptions::new()
                    .max_connections(1)
                    .connect(&super::super::sqlite_url(&path))
                    .await
                    .unwrap();
                Store { pool, backend: Backend::Sqlite, location, down_until: Default::default() }
            };
            store.pool().execute(sqlx::raw_sql(SQLITE[0])).await.unwrap();
            store
                .pool()
                .execute(sqlx::raw_sql(
                    "PRAGMA user_version = 1;
                     INSERT INTO idempotency_records (scope, fingerprint, state, created_at, expires_at)
                     VALUES ('k\nx', 'fp', 'in_progress', 0, 9999999999999);
                     INSERT INTO api_keys VALUES ('key_1', 'h', 'pro', 'cli', 'now');",
                ))
                .await
                .unwrap();
            store.close().await;
        }
        let store = Store::open(&crate::store::DbLocation::File(path)).await.unwrap();
        assert_eq!(version(&store).await.unwrap(), SCHEMA_VERSION);
        let keys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys").fetch_one(store.pool()).await.unwrap();
        assert_eq!(keys, 1, "the data stays");
        let open: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_records").fetch_one(store.pool()).await.unwrap();
        assert_eq!(open, 0, "old reservations are released");
    }

    #[tokio::test]
    async fn a_failing_migration_leaves_the_version_alone() {
        let (store, _dir, location) = temp_sqlite().await;
        store.close().await;
        let crate::store::DbLocation::File(path) = location else { unreachable!() };
        std::fs::remove_file(&path).unwrap();
        // A table in the way makes migration 1 fail half way through its
        // batch; the transaction must take the half back.
        {
            let pool = sqlx::any::AnyPoolOptions::new()
                .max_connections(1)
                .connect(&super::super::sqlite_url(&path))
                .await
                .unwrap();
            pool.execute(sqlx::raw_sql("CREATE TABLE agents (x INTEGER);")).await.unwrap();
            pool.close().await;
        }
        let location = crate::store::DbLocation::File(path.clone());
        assert!(Store::open(&location).await.is_err());
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&super::super::sqlite_url(&path))
            .await
            .unwrap();
        let version: i64 = sqlx::query_scalar("PRAGMA user_version").fetch_one(&pool).await.unwrap();
        assert_eq!(version, 0);
        let names: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'").fetch_all(&pool).await.unwrap();
        assert_eq!(names, vec!["agents".to_owned()]);
    }

    #[tokio::test]
    async fn concurrent_instances_migrate_once() {
        for (name, store, _guard) in backends().await {
            if store.backend() != Backend::Postgres {
                continue;
            }
            // A fresh database, opened by four instances at once.
            let fresh = crate::store::test_support::fresh_postgres().await;
            let opens: Vec<_> = (0..4)
                .map(|_| {
                    let location = fresh.location.clone();
                    tokio::spawn(async move { Store::open(&location).await.map(drop) })
                })
                .collect();
            for open in opens {
                open.await.unwrap().unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
    }
}
