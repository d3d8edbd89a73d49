//! The generated server's pluggable stores, backed by SQLite: API keys for
//! authentication, usage counters for the rate limits, and idempotency
//! records. With them, keys, usage and replayable responses survive a
//! restart.

use std::time::{Duration, SystemTime};

use runagent_server::{
    Authenticator, CounterStore, Decision, IdempotencyBegin, IdempotencyStore, Principal, StoreFuture, StoredResponse,
    Tier, window_bounds,
};

use crate::store::{self, IdempotencyStart, IdempotentResponse, Store};
use crate::time::{from_unix_millis, unix_millis};

/// Converts the store's tier into the server's.
pub fn server_tier(tier: store::Tier) -> Tier {
    match tier {
        store::Tier::Free => Tier::Free,
        store::Tier::Pro => Tier::Pro,
        store::Tier::Enterprise => Tier::Enterprise,
    }
}

/// API keys from the `api_keys` table; the principal is the key's id.
#[derive(Debug, Clone)]
pub struct SqliteKeys {
    store: Store,
}

impl SqliteKeys {
    /// Keys from `store`.
    pub fn new(store: Store) -> Self {
        SqliteKeys { store }
    }
}

impl Authenticator for SqliteKeys {
    fn authenticate(&self, token: &str) -> impl Future<Output = Option<Principal>> + Send {
        let store = self.store.clone();
        let token = token.to_owned();
        async move {
            match store.find_key(&token).await {
                Ok(found) => found.map(|key| Principal::new(key.id, server_tier(key.tier))),
                Err(error) => {
                    // Answering 401 to a valid key during a database hiccup
                    // is wrong, but so is letting anyone in; refusing is the
                    // safe side, and the log says why.
                    tracing::error!(%error, "could not look up an API key");
                    None
                }
            }
        }
    }
}

/// Usage counters in the `usage_counters` table.
#[derive(Debug, Clone)]
pub struct SqliteCounters {
    store: Store,
}

impl SqliteCounters {
    /// Counters in `store`.
    pub fn new(store: Store) -> Self {
        SqliteCounters { store }
    }
}

fn decision(allowed: bool, used: u64, limit: u64, reset: u64) -> Decision {
    Decision { allowed, limit, remaining: limit.saturating_sub(used), reset, used }
}

impl CounterStore for SqliteCounters {
    fn hit<'a>(&'a self, key: &'a str, limit: u64, window: Duration, now: SystemTime) -> StoreFuture<'a, Decision> {
        Box::pin(async move {
            let (start, reset) = window_bounds(now, window);
            match self.store.hit_usage(key, start, limit).await {
                Ok(count) => decision(count.allowed, count.used, limit, reset),
                Err(error) => {
                    // A broken counter should not take the API down with
                    // it: admit the request, uncounted, and say so.
                    tracing::error!(%error, "could not count a request");
                    decision(true, 0, limit, reset)
                }
            }
        })
    }

    fn peek<'a>(&'a self, key: &'a str, limit: u64, window: Duration, now: SystemTime) -> StoreFuture<'a, Decision> {
        Box::pin(async move {
            let (start, reset) = window_bounds(now, window);
            let used = self.store.peek_usage(key, start).await.unwrap_or_else(|error| {
                tracing::error!(%error, "could not read a usage counter");
                0
            });
            decision(used < limit, used, limit, reset)
        })
    }
}

/// Idempotency records in the `idempotency_records` table.
#[derive(Debug, Clone)]
pub struct SqliteIdempotency {
    store: Store,
    ttl: Duration,
}

impl SqliteIdempotency {
    /// Records in `store`, kept for `ttl`.
    pub fn new(store: Store, ttl: Duration) -> Self {
        SqliteIdempotency { store, ttl }
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }
}

impl IdempotencyStore for SqliteIdempotency {
    fn begin<'a>(&'a self, scope: &'a str, fingerprint: &'a str, now: SystemTime) -> StoreFuture<'a, IdempotencyBegin> {
        Box::pin(async move {
            let started = self
                .store
                .idempotency_begin(scope.to_owned(), fingerprint.to_owned(), unix_millis(now), self.ttl_ms())
                .await;
            match started {
                Ok(IdempotencyStart::Started) => IdempotencyBegin::Started,
                Ok(IdempotencyStart::InProgress) => IdempotencyBegin::InProgress,
                Ok(IdempotencyStart::Mismatch) => IdempotencyBegin::Mismatch,
                Ok(IdempotencyStart::Replay(stored)) => IdempotencyBegin::Replay(StoredResponse {
                    status: stored.status,
                    headers: stored.headers,
                    body: stored.body,
                    fingerprint: stored.fingerprint,
                    created_at: from_unix_millis(stored.created_at_ms),
                }),
                Err(error) => {
                    // Without the store the request runs unprotected, as it
                    // would without a key; its own writes will likely fail
                    // the same way and answer 500.
                    tracing::error!(%error, "could not check an idempotency key");
                    IdempotencyBegin::Started
                }
            }
        })
    }

    fn complete<'a>(&'a self, scope: &'a str, response: StoredResponse) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let stored = IdempotentResponse {
                status: response.status,
                headers: response.headers,
                body: response.body,
                fingerprint: response.fingerprint,
                created_at_ms: unix_millis(response.created_at),
            };
            if let Err(error) = self.store.idempotency_complete(scope.to_owned(), stored, self.ttl_ms()).await {
                tracing::error!(%error, "could not store an idempotent response");
            }
        })
    }

    fn abandon<'a>(&'a self, scope: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if let Err(error) = self.store.idempotency_abandon(scope.to_owned()).await {
                tracing::error!(%error, "could not release an idempotency key");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DbLocation;

    #[tokio::test]
    async fn keys_authenticate_with_their_tier() {
        let store = Store::open(&DbLocation::Memory).unwrap();
        let record = store.upsert_key("k1".into(), store::Tier::Free, "cli".into()).await.unwrap();
        let keys = SqliteKeys::new(store);
        let principal = keys.authenticate("k1").await.unwrap();
        assert_eq!(principal.id, record.id);
        assert_eq!(principal.tier, Tier::Free);
        assert!(keys.authenticate("k2").await.is_none());
    }

    #[tokio::test]
    async fn counters_decide_like_the_in_memory_store() {
        let store = Store::open(&DbLocation::Memory).unwrap();
        let counters = SqliteCounters::new(store);
        let window = Duration::from_secs(3600);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(7200 + 5);
        let first = counters.hit("key_1", 2, window, now).await;
        assert_eq!(first, decision(true, 1, 2, 10_800));
        assert_eq!(first.remaining, 1);
        counters.hit("key_1", 2, window, now).await;
        let refused = counters.hit("key_1", 2, window, now).await;
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(counters.peek("key_1", 2, window, now).await.used, 2);
    }

    #[tokio::test]
    async fn idempotency_records_round_trip() {
        let store = Store::open(&DbLocation::Memory).unwrap();
        let records = SqliteIdempotency::new(store, Duration::from_secs(60));
        let now = SystemTime::now();
        assert_eq!(records.begin("key_1\na", "fp", now).await, IdempotencyBegin::Started);
        assert_eq!(records.begin("key_1\na", "fp", now).await, IdempotencyBegin::InProgress);
        let response = StoredResponse {
            status: 201,
            headers: vec![("content-type".into(), "application/json".into())],
            body: b"{}".to_vec(),
            fingerprint: "fp".into(),
            created_at: from_unix_millis(unix_millis(now)),
        };
        records.complete("key_1\na", response.clone()).await;
        assert_eq!(records.begin("key_1\na", "fp", now).await, IdempotencyBegin::Replay(response));
        assert_eq!(records.begin("key_1\na", "other", now).await, IdempotencyBegin::Mismatch);
        records.begin("key_1\nb", "fp", now).await;
        records.abandon("key_1\nb").await;
        assert_eq!(records.begin("key_1\nb", "fp", now).await, IdempotencyBegin::Started);
    }
}
