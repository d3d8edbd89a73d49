//! The generated server's pluggable stores, backed by the database (SQLite
//! or PostgreSQL): API keys for authentication, usage counters for the
//! rate limits, and idempotency records. With them, keys, usage and
//! replayable responses survive a restart, and every instance on one
//! database shares the same limits and the same idempotency records.
//!
//! The stubs' store traits cannot fail, so each adapter decides what a
//! database outage means for its layer (see each one); a handler's own
//! database failure is answered `503` with `Retry-After`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
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
///
/// Every key the database confirmed is remembered (by digest) in this
/// process, and used only while the database cannot be reached: a known
/// key keeps working through a database restart (its request then gets
/// the handler's `503`, or succeeds), instead of being refused `401`. An
/// unknown key is still refused, and a key the database no longer knows
/// is forgotten at its next lookup.
#[derive(Debug, Clone)]
pub struct DbKeys {
    store: Store,
    known: Arc<Mutex<HashMap<String, Principal>>>,
}

impl DbKeys {
    /// Keys from `store`.
    pub fn new(store: Store) -> Self {
        DbKeys { store, known: Arc::default() }
    }

    /// Remembers `key` (as given at startup) as `principal`.
    pub fn remember(&self, key: &str, principal: Principal) {
        self.known.lock().unwrap_or_else(PoisonError::into_inner).insert(store::hash_key(key), principal);
    }
}

impl Authenticator for DbKeys {
    fn authenticate(&self, token: &str) -> impl Future<Output = Option<Principal>> + Send {
        let store = self.store.clone();
        let known = Arc::clone(&self.known);
        let hash = store::hash_key(token);
        async move {
            match store.guarded(store.find_key_by_hash(&hash)).await {
                Ok(found) => {
                    let principal = found.map(|key| Principal::new(key.id, server_tier(key.tier)));
                    let mut known = known.lock().unwrap_or_else(PoisonError::into_inner);
                    match &principal {
                        Some(principal) => known.insert(hash, principal.clone()),
                        None => known.remove(&hash),
                    };
                    principal
                }
                Err(error) => {
                    // Letting anyone in is wrong, but so is answering 401 to
                    // a key we know during a database hiccup.
                    let remembered = known.lock().unwrap_or_else(PoisonError::into_inner).get(&hash).cloned();
                    tracing::warn!(%error, known = remembered.is_some(), "could not look up an API key");
                    remembered
                }
            }
        }
    }
}

/// Usage counters in the `usage_counters` table.
///
/// When the database cannot be reached the request is admitted uncounted
/// (the rate limit fails open): the handler behind it then answers `503`
/// if it needs the database too.
#[derive(Debug, Clone)]
pub struct DbCounters {
    store: Store,
}

impl DbCounters {
    /// Counters in `store`.
    pub fn new(store: Store) -> Self {
        DbCounters { store }
    }
}

fn decision(allowed: bool, used: u64, limit: u64, reset: u64) -> Decision {
    Decision { allowed, limit, remaining: limit.saturating_sub(used), reset, used }
}

impl CounterStore for DbCounters {
    fn hit<'a>(&'a self, key: &'a str, limit: u64, window: Duration, now: SystemTime) -> StoreFuture<'a, Decision> {
        Box::pin(async move {
            let (start, reset) = window_bounds(now, window);
            match self.store.guarded(self.store.hit_usage(key, start, limit)).await {
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
            let used = self.store.guarded(self.store.peek_usage(key, start)).await.unwrap_or_else(|error| {
                tracing::error!(%error, "could not read a usage counter");
                0
            });
            decision(used < limit, used, limit, reset)
        })
    }
}

/// Idempotency records in the `idempotency_records` table.
///
/// Reservations are made in the name of this instance, so that they are
/// released when it dies. When the database cannot be reached:
///
/// - `begin` lets the request run unprotected (as without a key); a
///   request that writes will itself fail with `503`, and a `5xx` is never
///   stored, so a retry runs it again;
/// - `complete` and `abandon` are retried in the background until they
///   succeed (with backoff, for up to [`WRITE_RETRY_FOR`]): the client was
///   answered, so its stored response must not be lost, and until it is
///   stored the reservation keeps a retry from running the request twice.
#[derive(Debug, Clone)]
pub struct DbIdempotency {
    store: Store,
    ttl: Duration,
    owner: String,
}

/// How long a failed `complete` or `abandon` is retried.
pub const WRITE_RETRY_FOR: Duration = Duration::from_secs(600);

impl DbIdempotency {
    /// Records in `store`, kept for `ttl`, reserved by instance `owner`.
    pub fn new(store: Store, ttl: Duration, owner: impl Into<String>) -> Self {
        DbIdempotency { store, ttl, owner: owner.into() }
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }

    /// Runs `write` now; if it fails, keeps retrying it in the background.
    async fn write_until_done<F, Fut>(&self, what: &'static str, write: F)
    where
        F: Fn(Store) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = store::StoreResult<()>> + Send,
    {
        // While the database is known to be down, the first try is a short
        // probe, so that the response it holds back is not delayed by the
        // pool's full wait.
        let Err(error) = self.store.guarded(write(self.store.clone())).await else { return };
        tracing::warn!(%error, what, "could not write an idempotency record; retrying in the background");
        let store = self.store.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let mut delay = Duration::from_millis(200);
            loop {
                tokio::time::sleep(delay).await;
                match write(store.clone()).await {
                    Ok(()) => {
                        tracing::info!(what, "wrote an idempotency record after retrying");
                        return;
                    }
                    Err(error) if started.elapsed() > WRITE_RETRY_FOR => {
                        tracing::error!(%error, what, "gave up writing an idempotency record");
                        return;
                    }
                    Err(_) => delay = (delay * 2).min(Duration::from_secs(5)),
                }
            }
        });
    }
}

impl IdempotencyStore for DbIdempotency {
    fn begin<'a>(&'a self, scope: &'a str, fingerprint: &'a str, now: SystemTime) -> StoreFuture<'a, IdempotencyBegin> {
        Box::pin(async move {
            let begin = self.store.idempotency_begin(
                scope.to_owned(),
                fingerprint.to_owned(),
                unix_millis(now),
                self.ttl_ms(),
                self.owner.clone(),
            );
            let started = self.store.guarded(begin).await;
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
                    // the same way and answer 503.
                    tracing::warn!(%error, "could not check an idempotency key");
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
            let (scope, ttl) = (scope.to_owned(), self.ttl_ms());
            self.write_until_done("complete", move |store| {
                let (scope, stored) = (scope.clone(), stored.clone());
                async move { store.idempotency_complete(scope, stored, ttl).await }
            })
            .await;
        })
    }

    fn abandon<'a>(&'a self, scope: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let scope = scope.to_owned();
            self.write_until_done("abandon", move |store| {
                let scope = scope.clone();
                async move { store.idempotency_abandon(scope).await }
            })
            .await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DbLocation;

    #[tokio::test]
    async fn keys_authenticate_with_their_tier_and_survive_an_outage() {
        let store = Store::open(&DbLocation::Memory).await.unwrap();
        let record = store.upsert_key("k1".into(), store::Tier::Free, "cli".into()).await.unwrap();
        store.upsert_key("k2".into(), store::Tier::Pro, "cli".into()).await.unwrap();
        let keys = DbKeys::new(store.clone());
        keys.remember("k3", Principal::new("key_3", Tier::Enterprise));
        let principal = keys.authenticate("k1").await.unwrap();
        assert_eq!(principal.id, record.id);
        assert_eq!(principal.tier, Tier::Free);
        assert!(keys.authenticate("nope").await.is_none());
        // The database goes away: keys it confirmed (or given at startup)
        // still work; others do not.
        store.close().await;
        assert_eq!(keys.authenticate("k1").await.unwrap().id, record.id);
        assert_eq!(keys.authenticate("k3").await.unwrap().id, "key_3");
        assert!(keys.authenticate("k2").await.is_none());
        assert!(keys.authenticate("nope").await.is_none());
    }

    #[tokio::test]
    async fn counters_decide_like_the_in_memory_store() {
        let store = Store::open(&DbLocation::Memory).await.unwrap();
        let counters = DbCounters::new(store);
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
        let store = Store::open(&DbLocation::Memory).await.unwrap();
        let records = DbIdempotency::new(store, Duration::from_secs(60), "inst_test");
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
