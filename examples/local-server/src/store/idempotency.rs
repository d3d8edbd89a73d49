//! Idempotency records: the stored response of the first request made
//! with an `Idempotency-Key`, per API key, for a limited time.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{IdempotencyStart, IdempotentResponse, Store, StoreResult};

/// Looks up `scope` at `now_ms` and, when it is free or its record expired,
/// reserves it as in progress with `fingerprint` until `now_ms + ttl_ms`.
/// Atomic (an immediate transaction), so that of two concurrent requests
/// with one key, one runs and the other is told it is in progress.
pub fn begin(
    conn: &mut Connection,
    scope: &str,
    fingerprint: &str,
    now_ms: i64,
    ttl_ms: i64,
) -> StoreResult<IdempotencyStart> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    type Raw = (String, String, Option<i64>, Option<String>, Option<Vec<u8>>, i64, i64);
    let found: Option<Raw> = tx
        .query_row(
            "SELECT fingerprint, state, status, headers, body, created_at, expires_at
             FROM idempotency_records WHERE scope = ?1",
            [scope],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
        )
        .optional()?;
    let outcome = match found {
        Some((stored, state, status, headers, body, created_at, expires_at)) if expires_at > now_ms => {
            if stored != fingerprint {
                Some(IdempotencyStart::Mismatch)
            } else if state == "in_progress" {
                Some(IdempotencyStart::InProgress)
            } else {
                Some(IdempotencyStart::Replay(IdempotentResponse {
                    status: status.and_then(|s| u16::try_from(s).ok()).unwrap_or(500),
                    headers: headers.map(|h| serde_json::from_str(&h)).transpose()?.unwrap_or_default(),
                    body: body.unwrap_or_default(),
                    fingerprint: stored,
                    created_at_ms: created_at,
                }))
            }
        }
        _ => None,
    };
    if let Some(outcome) = outcome {
        return Ok(outcome);
    }
    tx.execute(
        "INSERT INTO idempotency_records (scope, fingerprint, state, created_at, expires_at)
         VALUES (?1, ?2, 'in_progress', ?3, ?4)
         ON CONFLICT (scope) DO UPDATE SET fingerprint = excluded.fingerprint,
             state = 'in_progress', status = NULL, headers = NULL, body = NULL,
             created_at = excluded.created_at, expires_at = excluded.expires_at",
        params![scope, fingerprint, now_ms, now_ms.saturating_add(ttl_ms)],
    )?;
    // Expired records of any scope go on the way, so the table stays about
    // as large as the keys used within one TTL.
    tx.execute("DELETE FROM idempotency_records WHERE expires_at <= ?1", [now_ms])?;
    tx.commit()?;
    Ok(IdempotencyStart::Started)
}

/// Stores the response of the request that reserved `scope`; it expires
/// `ttl_ms` after it was stored.
pub fn complete(conn: &Connection, scope: &str, response: &IdempotentResponse, ttl_ms: i64) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO idempotency_records
             (scope, fingerprint, state, status, headers, body, created_at, expires_at)
         VALUES (?1, ?2, 'done', ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (scope) DO UPDATE SET fingerprint = excluded.fingerprint, state = 'done',
             status = excluded.status, headers = excluded.headers, body = excluded.body,
             created_at = excluded.created_at, expires_at = excluded.expires_at",
        params![
            scope,
            response.fingerprint,
            i64::from(response.status),
            serde_json::to_string(&response.headers)?,
            response.body,
            response.created_at_ms,
            response.created_at_ms.saturating_add(ttl_ms),
        ],
    )?;
    Ok(())
}

/// Releases the reservation of `scope` without storing a response (the
/// request failed with a 5xx, streamed, or was cancelled), so a retry runs.
pub fn abandon(conn: &Connection, scope: &str) -> StoreResult<()> {
    conn.execute("DELETE FROM idempotency_records WHERE scope = ?1 AND state = 'in_progress'", [scope])?;
    Ok(())
}

impl Store {
    /// See [`begin`].
    pub async fn idempotency_begin(
        &self,
        scope: String,
        fingerprint: String,
        now_ms: i64,
        ttl_ms: i64,
    ) -> StoreResult<IdempotencyStart> {
        self.call(move |c| begin(c, &scope, &fingerprint, now_ms, ttl_ms)).await
    }

    /// See [`complete`].
    pub async fn idempotency_complete(
        &self,
        scope: String,
        response: IdempotentResponse,
        ttl_ms: i64,
    ) -> StoreResult<()> {
        self.call(move |c| complete(c, &scope, &response, ttl_ms)).await
    }

    /// See [`abandon`].
    pub async fn idempotency_abandon(&self, scope: String) -> StoreResult<()> {
        self.call(move |c| abandon(c, &scope)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

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

    #[test]
    fn first_request_runs_then_replays_survive_restart() {
        let (store, _dir, location) = temp_store();
        let begin_at =
            |store: &Store, fp: &str, at: i64| store.call_blocking(|c| begin(c, "key_1\nabc", fp, at, TTL)).unwrap();
        assert_eq!(begin_at(&store, "fp1", 1_000), IdempotencyStart::Started);
        assert_eq!(begin_at(&store, "fp1", 1_001), IdempotencyStart::InProgress);
        assert_eq!(begin_at(&store, "fp2", 1_001), IdempotencyStart::Mismatch);
        store.call_blocking(|c| complete(c, "key_1\nabc", &response("fp1", 1_002), TTL)).unwrap();
        drop(store);

        let store = Store::open(&location).unwrap();
        assert_eq!(begin_at(&store, "fp1", 2_000), IdempotencyStart::Replay(response("fp1", 1_002)));
        assert_eq!(begin_at(&store, "fp2", 2_000), IdempotencyStart::Mismatch);
        // Once expired, the key is free again, for any request.
        assert_eq!(begin_at(&store, "fp2", 1_002 + TTL), IdempotencyStart::Started);
    }

    #[test]
    fn abandon_releases_only_reservations() {
        let (store, _dir, _) = temp_store();
        let scope = "key_1\nxyz";
        assert_eq!(store.call_blocking(|c| begin(c, scope, "fp", 0, TTL)).unwrap(), IdempotencyStart::Started);
        store.call_blocking(|c| abandon(c, scope)).unwrap();
        assert_eq!(store.call_blocking(|c| begin(c, scope, "fp", 1, TTL)).unwrap(), IdempotencyStart::Started);
        store.call_blocking(|c| complete(c, scope, &response("fp", 2), TTL)).unwrap();
        store.call_blocking(|c| abandon(c, scope)).unwrap();
        assert!(matches!(store.call_blocking(|c| begin(c, scope, "fp", 3, TTL)).unwrap(), IdempotencyStart::Replay(_)));
    }
}
