//! Idempotency records: the stored response of the first request made
//! with an `Idempotency-Key`, per API key, for a limited time.
//!
//! A reservation (`in_progress`) names the instance that made it: if that
//! instance dies before answering, the reservation is released once its
//! heartbeat runs out ([`Store::release_orphaned_reservations`]), so a
//! retry runs instead of being told "in progress" until the record
//! expires.

use super::{IdempotencyStart, IdempotentResponse, Store, StoreResult, col};

impl Store {
    /// Looks up `scope` at `now_ms` and, when it is free or its record
    /// expired, reserves it for `owner` as in progress with `fingerprint`
    /// until `now_ms + ttl_ms`.
    ///
    /// The reservation is one statement, an `INSERT ... ON CONFLICT DO
    /// UPDATE` that only takes over an expired record, so of two concurrent
    /// requests with one key (on one instance or two) exactly one runs and
    /// the other is told it is in progress (or gets the replay).
    pub async fn idempotency_begin(
        &self,
        scope: String,
        fingerprint: String,
        now_ms: i64,
        ttl_ms: i64,
        owner: String,
    ) -> StoreResult<IdempotencyStart> {
        // The record can change between the claim and the read (it is
        // completed, abandoned or expires); a few rounds settle it.
        for _ in 0..5 {
            let claimed: Option<String> = sqlx::query_scalar(
                "INSERT INTO idempotency_records (scope, fingerprint, state, created_at, expires_at, owner)
                 VALUES ($1, $2, 'in_progress', $3, $4, $5)
                 ON CONFLICT (scope) DO UPDATE SET fingerprint = excluded.fingerprint,
                     state = 'in_progress', status = NULL, headers = NULL, body = NULL,
                     created_at = excluded.created_at, expires_at = excluded.expires_at,
                     owner = excluded.owner
                 WHERE idempotency_records.expires_at <= $3
                 RETURNING scope",
            )
            .bind(&scope)
            .bind(&fingerprint)
            .bind(now_ms)
            .bind(now_ms.saturating_add(ttl_ms))
            .bind(&owner)
            .fetch_optional(self.pool())
            .await?;
            if claimed.is_some() {
                return Ok(IdempotencyStart::Started);
            }
            let found = sqlx::query(
                "SELECT fingerprint, state, status, headers, body, created_at, expires_at
                 FROM idempotency_records WHERE scope = $1",
            )
            .bind(&scope)
            .fetch_optional(self.pool())
            .await?;
            let Some(row) = found else { continue };
            let (stored, state): (String, String) = (col(&row, 0)?, col(&row, 1)?);
            let expires_at: i64 = col(&row, 6)?;
            if expires_at <= now_ms {
                continue;
            }
            return Ok(if stored != fingerprint {
                IdempotencyStart::Mismatch
            } else if state == "in_progress" {
                IdempotencyStart::InProgress
            } else {
                let status: Option<i64> = col(&row, 2)?;
                let headers: Option<String> = col(&row, 3)?;
                IdempotencyStart::Replay(IdempotentResponse {
                    status: status.and_then(|s| u16::try_from(s).ok()).unwrap_or(500),
                    headers: headers.map(|h| serde_json::from_str(&h)).transpose()?.unwrap_or_default(),
                    body: col::<Option<Vec<u8>>>(&row, 4)?.unwrap_or_default(),
                    fingerprint: stored,
                    created_at_ms: col(&row, 5)?,
                })
            });
        }
        Ok(IdempotencyStart::InProgress)
    }

    /// Stores the response of the request that reserved `scope`; it expires
    /// `ttl_ms` after it was stored.
    pub async fn idempotency_complete(
        &self,
        scope: String,
        response: IdempotentResponse,
        ttl_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO idempotency_records
                 (scope, fingerprint, state, status, headers, body, created_at, expires_at, owner)
             VALUES ($1, $2, 'done', $3, $4, $5, $6, $7, NULL)
             ON CONFLICT (scope) DO UPDATE SET fingerprint = excluded.fingerprint, state = 'done',
                 status = excluded.status, headers = excluded.headers, body = excluded.body,
                 created_at = excluded.created_at, expires_at = excluded.expires_at, owner = NULL",
        )
        .bind(&scope)
        .bind(&response.fingerprint)
        .bind(i64::from(response.status))
        .bind(serde_json::to_string(&response.headers)?)
        .bind(&response.body)
        .bind(response.created_at_ms)
        .bind(response.created_at_ms.saturating_add(ttl_ms))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Releases the reservation of `scope` without storing a response (the
    /// request failed with a 5xx, streamed, or was cancelled), so a retry
    /// runs.
    pub async fn idempotency_abandon(&self, scope: String) -> StoreResult<()> {
        sqlx::query("DELETE FROM idempotency_records WHERE scope = $1 AND state = 'in_progress'")
            .bind(&scope)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Drops records that expired before `now_ms`; returns how many.
    pub async fn delete_expired_idempotency(&self, now_ms: i64) -> StoreResult<u64> {
        Ok(sqlx::query("DELETE FROM idempotency_records WHERE expires_at <= $1")
            .bind(now_ms)
            .execute(self.pool())
            .await?
            .rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{backends, reopen};

    const TTL: i64 = 60_000;

    fn response(fingerprint: &str, at: i64) -> IdempotentResponse {
        IdempotentResponse {
            status: 201,
            headers: vec![("content-type".into(), "application/json".into())],
            body: b"{\"status\":\"success\"}".to_vec(),
            fingerprint: fingerprint.into(),
            created_at_ms: at,
        }
    }

    async fn begin_at(store: &Store, scope: &str, fp: &str, at: i64) -> IdempotencyStart {
        store.idempotency_begin(scope.into(), fp.into(), at, TTL, "inst_a".into()).await.unwrap()
    }

    #[tokio::test]
    async fn first_request_runs_then_replays_survive_restart() {
        for (name, store, _guard) in backends().await {
            let scope = "key_1\nabc";
            assert_eq!(begin_at(&store, scope, "fp1", 1_000).await, IdempotencyStart::Started, "{name}");
            assert_eq!(begin_at(&store, scope, "fp1", 1_001).await, IdempotencyStart::InProgress);
            assert_eq!(begin_at(&store, scope, "fp2", 1_001).await, IdempotencyStart::Mismatch);
            store.idempotency_complete(scope.into(), response("fp1", 1_002), TTL).await.unwrap();
            store.close().await;

            let store = reopen(&store).await;
            assert_eq!(begin_at(&store, scope, "fp1", 2_000).await, IdempotencyStart::Replay(response("fp1", 1_002)));
            assert_eq!(begin_at(&store, scope, "fp2", 2_000).await, IdempotencyStart::Mismatch);
            // Once expired, the key is free again, for any request.
            assert_eq!(begin_at(&store, scope, "fp2", 1_002 + TTL).await, IdempotencyStart::Started);
            assert_eq!(store.delete_expired_idempotency(1_002 + 2 * TTL).await.unwrap(), 1);
        }
    }

    #[tokio::test]
    async fn abandon_releases_only_reservations() {
        for (name, store, _guard) in backends().await {
            let scope = "key_1\nxyz";
            assert_eq!(begin_at(&store, scope, "fp", 0).await, IdempotencyStart::Started, "{name}");
            store.idempotency_abandon(scope.into()).await.unwrap();
            assert_eq!(begin_at(&store, scope, "fp", 1).await, IdempotencyStart::Started);
            store.idempotency_complete(scope.into(), response("fp", 2), TTL).await.unwrap();
            store.idempotency_abandon(scope.into()).await.unwrap();
            assert!(matches!(begin_at(&store, scope, "fp", 3).await, IdempotencyStart::Replay(_)));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn of_concurrent_requests_with_one_key_exactly_one_runs() {
        for (name, store, _guard) in backends().await {
            let other = reopen(&store).await;
            let tasks: Vec<_> = (0..20)
                .map(|i| {
                    let store = if i % 2 == 0 { store.clone() } else { other.clone() };
                    tokio::spawn(async move { begin_at(&store, "key_1\nrace", "fp", 5).await })
                })
                .collect();
            let mut started = 0;
            for task in tasks {
                match task.await.unwrap() {
                    IdempotencyStart::Started => started += 1,
                    IdempotencyStart::InProgress => {}
                    other => panic!("{name}: {other:?}"),
                }
            }
            assert_eq!(started, 1, "{name}");
        }
    }
}
