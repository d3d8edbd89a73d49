//! Stores in Redis, shared by every instance of a server (cargo feature
//! `redis`): [`RedisCounterStore`] for rate limits, [`RedisIdempotencyStore`]
//! for idempotent retries and [`RedisStreamLog`] for resuming event streams
//! on any instance. They need Redis 7.0 or newer (or Valkey), and touch one
//! key per call, so they work on a cluster too.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use runagent_runtime_server::{RedisConnection, RedisCounterStore, RedisIdempotencyStore, RedisOptions};
//!
//! let redis = RedisConnection::open("redis://127.0.0.1:6379/", RedisOptions::default().key_prefix("myapi:"))?;
//! let counters = Arc::new(RedisCounterStore::new(redis.clone()));
//! let idempotency = Arc::new(RedisIdempotencyStore::new(redis));
//! // Hand them to the router builder's `counter_store` and
//! // `idempotency_store`.
//! # let _ = (counters, idempotency);
//! # Ok(()) }
//! ```
//!
//! # When Redis is unreachable
//!
//! Every call is bounded by [`RedisOptions::timeout`]; a request never
//! waits on Redis longer than that, and nothing panics. What the request
//! then gets is each store's [`FailurePolicy`]: the rate limiter fails
//! open by default (counting in process memory meanwhile), idempotency and
//! the stream log fail closed (`503` with `Retry-After`).
//!
//! After a connection failure or a timeout, calls fail at once for
//! [`RedisOptions::cooldown`] instead of each waiting out its timeout, so
//! a Redis that stopped answering costs requests no latency. Reconnecting
//! is the `redis` crate's `ConnectionManager`'s job: it reconnects in the
//! background after a dropped connection, and the first call after the
//! cooldown finds the new connection, or tries again.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, RedisError, Script};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::idempotency::{DEFAULT_IDEMPOTENCY_TTL, IdempotencyBegin, IdempotencyStore, StoredResponse};
use crate::rate_limit::{CounterStore, Decision, InMemoryCounterStore, window_bounds};
use crate::store::{FailurePolicy, StoreFuture, StoreUnavailable};
use crate::stream_log::{LoggedEvent, StreamLog, StreamLogConfig, StreamLogError, StreamRead, next_seq};

/// How to reach Redis and how long to wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// Put before every key the stores write (`""` by default), so that
    /// several APIs or environments can share one Redis.
    pub key_prefix: String,
    /// The longest a call may take, round trip included (500 ms). Past it
    /// the call fails as unavailable.
    pub timeout: Duration,
    /// The longest a connection attempt may take (1 s).
    pub connect_timeout: Duration,
    /// After a connection failure or a timeout, how long calls fail at
    /// once without trying Redis (1 s).
    pub cooldown: Duration,
    /// Connections kept for [`RedisStreamLog`]'s blocking waits, one per
    /// waiting reader (64). Readers beyond it poll instead, every 250 ms.
    pub max_blocking_connections: usize,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            key_prefix: String::new(),
            timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(1),
            cooldown: Duration::from_secs(1),
            max_blocking_connections: 64,
        }
    }
}

impl RedisOptions {
    /// Sets [`RedisOptions::key_prefix`].
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Sets [`RedisOptions::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`RedisOptions::connect_timeout`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`RedisOptions::cooldown`].
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Sets [`RedisOptions::max_blocking_connections`].
    pub fn max_blocking_connections(mut self, connections: usize) -> Self {
        self.max_blocking_connections = connections;
        self
    }
}

/// A connection to Redis that the stores share: a reconnecting,
/// multiplexed connection (the `redis` crate's `ConnectionManager`), the
/// timeouts, and the cooldown after failures. Cheap to clone.
#[derive(Clone)]
pub struct RedisConnection {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    manager: ConnectionManager,
    options: RedisOptions,
    /// The base of `down_until`.
    epoch: Instant,
    /// Until when (milliseconds since `epoch`) calls fail at once; 0 when
    /// Redis is thought up.
    down_until: AtomicU64,
    /// Idle connections for blocking reads, and how many may exist.
    idle_blocking: Mutex<Vec<MultiplexedConnection>>,
    blocking_permits: Semaphore,
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection").field("options", &self.inner.options).finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// A connection to the Redis at `url` (`redis://[user:password@]host:port/[db]`
    /// or `redis+unix:///path`). It connects on first use, so a server
    /// starts while Redis is down, and its requests get the stores'
    /// failure policies until Redis is back; call
    /// [`RedisConnection::ping`] to check at startup. Fails on a malformed
    /// URL, or outside a Tokio runtime.
    pub fn open(url: &str, options: RedisOptions) -> Result<Self, RedisError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(RedisError::from((redis::ErrorKind::Client, "RedisConnection::open needs a Tokio runtime")));
        }
        let client = Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.timeout))
            // Few, quick retries: calls are bounded by the timeout anyway,
            // and a failed reconnect is tried again on the next call.
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        let inner = Inner {
            client,
            manager,
            blocking_permits: Semaphore::new(options.max_blocking_connections),
            options,
            epoch: Instant::now(),
            down_until: AtomicU64::new(0),
            idle_blocking: Mutex::new(Vec::new()),
        };
        Ok(RedisConnection { inner: Arc::new(inner) })
    }

    /// The options it was opened with.
    pub fn options(&self) -> &RedisOptions {
        &self.inner.options
    }

    /// Sends `PING`: `Ok` when Redis answers within the timeout.
    pub async fn ping(&self) -> Result<(), String> {
        let mut manager = self.inner.manager.clone();
        self.run(async move { redis::cmd("PING").query_async::<String>(&mut manager).await }).await.map(drop)
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}:{name}", self.inner.options.key_prefix)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX).max(1)
    }

    /// Runs one Redis call within the timeout, unless in the cooldown;
    /// the error is a reason for the logs.
    async fn run<T>(&self, call: impl Future<Output = Result<T, RedisError>>) -> Result<T, String> {
        let down_until = self.inner.down_until.load(Ordering::Relaxed);
        if down_until != 0 && self.now_ms() < down_until {
            return Err("Redis is unreachable (cooling down after a failure)".to_owned());
        }
        let outcome = tokio::time::timeout(self.inner.options.timeout, call).await;
        match outcome {
            Ok(Ok(value)) => {
                if down_until != 0 {
                    self.inner.down_until.store(0, Ordering::Relaxed);
                    tracing::info!("Redis answers again");
                }
                Ok(value)
            }
            Ok(Err(error)) => {
                let reason = format!("Redis failed: {error}");
                if error.is_io_error()
                    || error.is_connection_dropped()
                    || error.is_connection_refusal()
                    || error.is_timeout()
                {
                    self.trip(&reason);
                }
                Err(reason)
            }
            Err(_) => {
                let reason = format!("Redis did not answer within {:?}", self.inner.options.timeout);
                self.trip(&reason);
                Err(reason)
            }
        }
    }

    /// Starts a cooldown; logs once per outage rather than per request.
    fn trip(&self, reason: &str) {
        let until = self.now_ms().saturating_add(u64::try_from(self.inner.options.cooldown.as_millis()).unwrap_or(0));
        if self.inner.down_until.swap(until, Ordering::Relaxed) == 0 {
            tracing::warn!(%reason, cooldown = ?self.inner.options.cooldown, "Redis is unreachable; failing calls fast for the cooldown");
        }
    }

    fn manager(&self) -> ConnectionManager {
        self.inner.manager.clone()
    }

    /// Waits up to `timeout` for an entry after `id` in the stream `key`
    /// (`XREAD BLOCK`), on a connection of its own: a blocking command
    /// would hold up every other call on the shared one. Returns when
    /// something may have changed; the caller reads to see what.
    async fn block_for_entry(&self, key: &str, id: &str, timeout: Duration) -> Result<(), String> {
        let poll = timeout.min(BLOCKING_POLL);
        let Ok(Ok(permit)) = tokio::time::timeout(poll, self.inner.blocking_permits.acquire()).await else {
            // Every blocking connection is taken: the caller reads again,
            // so it polls every `BLOCKING_POLL` instead.
            return Ok(());
        };
        let idle = self.inner.idle_blocking.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut connection = match idle {
            Some(connection) => connection,
            None => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.inner.options.connect_timeout))
                    .set_response_timeout(None);
                let client = self.inner.client.clone();
                self.run(async move { client.get_multiplexed_async_connection_with_config(&config).await }).await?
            }
        };
        let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut command = redis::cmd("XREAD");
        command.arg("BLOCK").arg(millis).arg("COUNT").arg(1).arg("STREAMS").arg(key).arg(id);
        let bound = timeout + self.inner.options.timeout;
        match tokio::time::timeout(bound, command.query_async::<redis::Value>(&mut connection)).await {
            Ok(Ok(_)) => {
                // Only a connection whose answer came back is reused; one
                // dropped mid-command (timeout, or the reader went away)
                // is closed with its pending answer.
                self.inner.idle_blocking.lock().unwrap_or_else(PoisonError::into_inner).push(connection);
                drop(permit);
                Ok(())
            }
            Ok(Err(error)) => Err(format!("Redis failed: {error}")),
            Err(_) => {
                let reason = format!("Redis did not answer a blocking read within {bound:?}");
                self.trip(&reason);
                Err(reason)
            }
        }
    }
}

/// How often a stream reader polls when every blocking connection is
/// taken.
const BLOCKING_POLL: Duration = Duration::from_millis(250);

fn unix_millis(time: SystemTime) -> u64 {
    u64::try_from(time.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()).unwrap_or(u64::MAX)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Counts a request if the window has room: one round trip, atomic, and
/// the key expires with its window. The time comes in as arguments
/// (managed Redis services forbid `TIME` in scripts).
const HIT_SCRIPT: &str = r"
local limit = tonumber(ARGV[1])
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= limit then
  return {0, used}
end
used = redis.call('INCR', KEYS[1])
if used == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return {1, used}
";

/// Rate-limit counters in Redis: the same fixed windows, decisions and
/// headers as [`InMemoryCounterStore`], shared by every instance.
///
/// Each window of each key is one integer key,
/// `<prefix>ratelimit:<key>:<window start>`, counted by a Lua script in one
/// atomic round trip, which also sets it to expire a second after the
/// window ends. Windows are computed from each instance's clock, so
/// instances should keep their clocks in sync (NTP).
///
/// Fails open by default: while Redis is unreachable, each instance counts
/// in an [`InMemoryCounterStore`] of its own. With
/// [`FailurePolicy::FailClosed`], the request is answered `503`.
pub struct RedisCounterStore {
    redis: RedisConnection,
    policy: FailurePolicy,
    hit: Script,
    fallback: InMemoryCounterStore,
}

impl fmt::Debug for RedisCounterStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCounterStore").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl RedisCounterStore {
    /// Counters in `redis`, failing open.
    pub fn new(redis: RedisConnection) -> Self {
        RedisCounterStore {
            redis,
            policy: FailurePolicy::FailOpen,
            hit: Script::new(HIT_SCRIPT),
            fallback: InMemoryCounterStore::new(),
        }
    }

    /// Sets what happens while Redis is unreachable.
    pub fn with_failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.policy = policy;
        self
    }

    fn key(&self, key: &str, start: u64) -> String {
        self.redis.key("ratelimit", &format!("{key}:{start}"))
    }

    async fn hit_in_redis(&self, key: &str, limit: u64, window: Duration, now: SystemTime) -> Result<Decision, String> {
        let (start, reset) = window_bounds(now, window);
        // Until a second past the window's end, so that an instance whose
        // clock runs a little behind still finds the count.
        let ttl = (reset * 1000 + 1000).saturating_sub(unix_millis(now)).max(1000);
        let mut invocation = self.hit.prepare_invoke();
        invocation.key(self.key(key, start)).arg(limit).arg(ttl);
        let mut manager = self.redis.manager();
        let (allowed, used): (i64, u64) = self.redis.run(invocation.invoke_async(&mut manager)).await?;
        Ok(Decision { allowed: allowed == 1, limit, remaining: limit.saturating_sub(used), reset, used })
    }

    async fn peek_in_redis(
        &self,
        key: &str,
        limit: u64,
        window: Duration,
        now: SystemTime,
    ) -> Result<Decision, String> {
        let (start, reset) = window_bounds(now, window);
        let mut manager = self.redis.manager();
        let mut command = redis::cmd("GET");
        command.arg(self.key(key, start));
        let used: Option<u64> = self.redis.run(command.query_async(&mut manager)).await?;
        let used = used.unwrap_or(0);
        Ok(Decision { allowed: used < limit, limit, remaining: limit.saturating_sub(used), reset, used })
    }
}

impl CounterStore for RedisCounterStore {
    /// [`CounterStore::try_hit`], with a failure under
    /// [`FailurePolicy::FailClosed`] turned into a refusal (allowed:
    /// false, resetting after `retry_after`), since a `Decision` cannot
    /// say "unavailable". The rate-limit layer calls `try_hit` instead.
    fn hit<'a>(&'a self, key: &'a str, limit: u64, window: Duration, now: SystemTime) -> StoreFuture<'a, Decision> {
        Box::pin(async move {
            match self.try_hit(key, limit, window, now).await {
                Ok(decision) => decision,
                Err(unavailable) => {
                    let reset = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
                        + unavailable.retry_after.as_secs().max(1);
                    Decision { allowed: false, limit, remaining: 0, reset, used: 0 }
                }
            }
        })
    }

    fn peek<'a>(&'a self, key: &'a str, limit: u64, window: Duration, now: SystemTime) -> StoreFuture<'a, Decision> {
        Box::pin(async move {
            match self.peek_in_redis(key, limit, window, now).await {
                Ok(decision) => decision,
                Err(reason) => {
                    tracing::debug!(%reason, "could not read a rate-limit counter; reading the local one");
                    self.fallback.peek(key, limit, window, now).await
                }
            }
        })
    }

    fn try_hit<'a>(
        &'a self,
        key: &'a str,
        limit: u64,
        window: Duration,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<Decision, StoreUnavailable>> {
        Box::pin(async move {
            match self.hit_in_redis(key, limit, window, now).await {
                Ok(decision) => Ok(decision),
                Err(reason) => match self.policy {
                    FailurePolicy::FailOpen => {
                        tracing::debug!(%reason, "could not count a request in Redis; counting it locally");
                        Ok(self.fallback.hit(key, limit, window, now).await)
                    }
                    FailurePolicy::FailClosed { retry_after } => Err(StoreUnavailable::new(retry_after, reason)),
                },
            }
        })
    }
}

/// How long an in-progress marker lives by default: a request still
/// running after this long loses its protection (a retry runs). It bounds
/// how long a key stays blocked when an instance dies mid-request.
pub const DEFAULT_IN_PROGRESS_TTL: Duration = Duration::from_secs(600);

/// Releases a key only if it is still in progress (a stored response
/// stays).
const ABANDON_SCRIPT: &str = r"
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, 1) == 'R' then
  redis.call('DEL', KEYS[1])
end
return 0
";

/// The part of a stored response before its body.
#[derive(Serialize, Deserialize)]
struct StoredHead {
    status: u16,
    headers: Vec<(String, String)>,
    fingerprint: String,
    created_at_ms: u64,
}

/// Idempotency records in Redis, shared by every instance.
///
/// A record is one string key, `<prefix>idempotency:<scope>`:
///
/// - claimed atomically with `SET NX PX ... GET`: `R` and the request's
///   fingerprint, expiring after the in-progress TTL
///   ([`DEFAULT_IN_PROGRESS_TTL`], ten minutes), so that a key claimed by
///   an instance that died frees itself;
/// - completed with `D`, the status, headers, fingerprint and time as
///   JSON, a newline and the body's bytes, kept for the record TTL
///   ([`DEFAULT_IDEMPOTENCY_TTL`], a day) from completion: the retention
///   clients are told about.
///
/// Expiry is Redis's (the `now` of [`IdempotencyStore::begin`] is not
/// used). Fails closed by default: while Redis is unreachable, requests
/// with a key are answered `503` with `Retry-After` and do not run. Failing
/// open instead runs them unprotected, as if they had no key.
pub struct RedisIdempotencyStore {
    redis: RedisConnection,
    policy: FailurePolicy,
    ttl: Duration,
    in_progress_ttl: Duration,
    abandon: Script,
}

impl fmt::Debug for RedisIdempotencyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisIdempotencyStore")
            .field("policy", &self.policy)
            .field("ttl", &self.ttl)
            .field("in_progress_ttl", &self.in_progress_ttl)
            .finish_non_exhaustive()
    }
}

impl RedisIdempotencyStore {
    /// Records in `redis` with the default TTLs, failing closed.
    pub fn new(redis: RedisConnection) -> Self {
        RedisIdempotencyStore {
            redis,
            policy: FailurePolicy::fail_closed(),
            ttl: DEFAULT_IDEMPOTENCY_TTL,
            in_progress_ttl: DEFAULT_IN_PROGRESS_TTL,
            abandon: Script::new(ABANDON_SCRIPT),
        }
    }

    /// Sets what happens while Redis is unreachable.
    pub fn with_failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets how long a stored response is kept.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets how long a claimed key stays in progress at most; make it
    /// longer than your slowest request.
    pub fn with_in_progress_ttl(mut self, ttl: Duration) -> Self {
        self.in_progress_ttl = ttl;
        self
    }

    fn key(&self, scope: &str) -> String {
        self.redis.key("idempotency", scope)
    }

    async fn begin_in_redis(&self, scope: &str, fingerprint: &str) -> Result<IdempotencyBegin, String> {
        let mut marker = Vec::with_capacity(fingerprint.len() + 1);
        marker.push(b'R');
        marker.extend_from_slice(fingerprint.as_bytes());
        let mut command = redis::cmd("SET");
        command.arg(self.key(scope)).arg(marker).arg("NX").arg("PX").arg(millis(self.in_progress_ttl)).arg("GET");
        let mut manager = self.redis.manager();
        let previous: Option<Vec<u8>> = self.redis.run(command.query_async(&mut manager)).await?;
        let Some(previous) = previous else {
            return Ok(IdempotencyBegin::Started);
        };
        match previous.split_first() {
            Some((b'R', running)) if running == fingerprint.as_bytes() => Ok(IdempotencyBegin::InProgress),
            Some((b'R', _)) => Ok(IdempotencyBegin::Mismatch),
            Some((b'D', record)) => {
                let stored = decode_stored(record).ok_or("an unreadable idempotency record")?;
                Ok(if stored.fingerprint == fingerprint {
                    IdempotencyBegin::Replay(stored)
                } else {
                    IdempotencyBegin::Mismatch
                })
            }
            _ => Err("an unreadable idempotency record".to_owned()),
        }
    }
}

fn encode_stored(response: StoredResponse) -> Vec<u8> {
    let head = StoredHead {
        status: response.status,
        headers: response.headers,
        fingerprint: response.fingerprint,
        created_at_ms: unix_millis(response.created_at),
    };
    // Compact JSON has no raw newline: the first one ends the head.
    let head = serde_json::to_vec(&head).unwrap_or_default();
    let mut value = Vec::with_capacity(head.len() + response.body.len() + 2);
    value.push(b'D');
    value.extend_from_slice(&head);
    value.push(b'\n');
    value.extend_from_slice(&response.body);
    value
}

fn decode_stored(record: &[u8]) -> Option<StoredResponse> {
    let newline = record.iter().position(|byte| *byte == b'\n')?;
    let head: StoredHead = serde_json::from_slice(&record[..newline]).ok()?;
    Some(StoredResponse {
        status: head.status,
        headers: head.headers,
        body: record[newline + 1..].to_vec(),
        fingerprint: head.fingerprint,
        created_at: UNIX_EPOCH + Duration::from_millis(head.created_at_ms),
    })
}

impl IdempotencyStore for RedisIdempotencyStore {
    fn begin<'a>(
        &'a self,
        scope: &'a str,
        fingerprint: &'a str,
        _now: SystemTime,
    ) -> StoreFuture<'a, IdempotencyBegin> {
        Box::pin(async move {
            match self.begin_in_redis(scope, fingerprint).await {
                Ok(begin) => begin,
                Err(reason) => match self.policy {
                    FailurePolicy::FailClosed { retry_after } => {
                        tracing::debug!(%reason, "could not check an idempotency key; refusing the request");
                        IdempotencyBegin::Unavailable { retry_after }
                    }
                    FailurePolicy::FailOpen => {
                        tracing::warn!(%reason, "could not check an idempotency key; running the request unprotected");
                        IdempotencyBegin::Started
                    }
                },
            }
        })
    }

    /// Stores the response. If Redis fails here, the response still
    /// reaches the client, and a task of its own keeps trying to store it
    /// (every [`COMPLETE_RETRY_EVERY`], for as long as the in-progress
    /// marker lives): the client was answered, so its retry must replay
    /// that answer once Redis is back, not wait for the marker to expire
    /// and then run the request again.
    fn complete<'a>(&'a self, scope: &'a str, response: StoredResponse) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let key = self.key(scope);
            let value = encode_stored(response);
            let ttl = millis(self.ttl);
            let Err(reason) = store_response(&self.redis, &key, &value, ttl).await else {
                return;
            };
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                tracing::warn!(%reason, "could not store an idempotent response; the key frees itself when its marker expires");
                return;
            };
            tracing::warn!(%reason, "could not store an idempotent response; retrying in the background");
            let redis = self.redis.clone();
            let give_up = Instant::now() + self.in_progress_ttl;
            runtime.spawn(async move {
                while Instant::now() < give_up {
                    tokio::time::sleep(COMPLETE_RETRY_EVERY).await;
                    if store_response(&redis, &key, &value, ttl).await.is_ok() {
                        tracing::info!("stored an idempotent response after Redis came back");
                        return;
                    }
                }
                tracing::warn!("gave up storing an idempotent response; its in-progress marker has expired");
            });
        })
    }

    fn abandon<'a>(&'a self, scope: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut invocation = self.abandon.prepare_invoke();
            invocation.key(self.key(scope));
            let mut manager = self.redis.manager();
            if let Err(reason) = self.redis.run(invocation.invoke_async::<()>(&mut manager)).await {
                tracing::warn!(%reason, "could not release an idempotency key; it frees itself when its marker expires");
            }
        })
    }
}

/// How often [`RedisIdempotencyStore`] tries again to store a response
/// that Redis did not take.
pub const COMPLETE_RETRY_EVERY: Duration = Duration::from_millis(250);

/// `SET` of a completed record, replacing its in-progress marker.
async fn store_response(redis: &RedisConnection, key: &str, value: &[u8], ttl_ms: u64) -> Result<(), String> {
    let mut command = redis::cmd("SET");
    command.arg(key).arg(value).arg("PX").arg(ttl_ms);
    let mut manager = redis.manager();
    redis.run(command.query_async::<()>(&mut manager)).await
}

/// Appends an event if it is the next: a stream's entry ids are `0-<seq +
/// 1>` (so `XADD 0-*` numbers them), its data under `d`; a last entry with
/// the field `end` marks it closed. Answers `{code, next}`: 0 appended, 1
/// already there, 2 closed, 3 unknown stream, 4 out of order.
const APPEND_SCRIPT: &str = r"
local seq = tonumber(ARGV[1])
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local next_seq = 0
if #last > 0 then
  local n = tonumber(string.sub(last[1][1], 3))
  if last[1][2][1] == 'end' then
    if seq < n - 1 then return {1, 0} end
    return {2, 0}
  end
  next_seq = n
elseif seq > 0 then
  return {3, 0}
end
if seq < next_seq then return {1, 0} end
if seq > next_seq then return {4, next_seq} end
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], '0-*', 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {0, 0}
";

/// Closes a stream (once) and sets it to expire.
const CLOSE_SCRIPT: &str = r"
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last == 0 or last[1][2][1] ~= 'end' then
  redis.call('XADD', KEYS[1], '0-*', 'end', '1')
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 0
";

/// The first and last entry ids, whether it is closed, and the entries
/// from an id on, in one consistent look.
const READ_SCRIPT: &str = r"
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #first == 0 then return false end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local closed = 0
if last[1][2][1] == 'end' then closed = 1 end
return {first[1][1], last[1][1], closed, redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])}
";

/// The reply of [`READ_SCRIPT`].
type ReadReply = Option<(String, String, i64, Vec<(String, Vec<Bytes>)>)>;

/// The sequence number of the entry id `0-<seq + 1>`.
fn entry_seq(id: &str) -> Option<u64> {
    id.strip_prefix("0-")?.parse::<u64>().ok()?.checked_sub(1)
}

/// Stream logs in Redis Streams, shared by every instance: a reader on any
/// instance follows a stream that another one produces.
///
/// A stream is one key, `<prefix>stream:<name>`; event `seq` is the entry
/// `0-<seq + 1>` with the data in its field `d`, and the close appends an
/// entry with the field `end`, which wakes blocked readers like an event.
/// Appends are a Lua script (check the sequence, `XADD` capped with
/// `MAXLEN` at [`StreamLogConfig::max_events`], `PEXPIRE` to
/// [`StreamLogConfig::open_ttl`]); the close sets the key to expire after
/// [`StreamLogConfig::closed_ttl`]; reads are a script around `XRANGE`;
/// waits are `XREAD BLOCK` from the last id, on connections of their own
/// ([`RedisOptions::max_blocking_connections`]).
///
/// Fails closed: while Redis is unreachable every call answers
/// [`StreamLogError::Unavailable`] with `retry_after` (2 s by default).
pub struct RedisStreamLog {
    redis: RedisConnection,
    config: StreamLogConfig,
    retry_after: Duration,
    append: Script,
    close: Script,
    read: Script,
}

impl fmt::Debug for RedisStreamLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStreamLog").field("config", &self.config).finish_non_exhaustive()
    }
}

impl RedisStreamLog {
    /// Logs in `redis` with these bounds (`max_streams` is not used: every
    /// key expires).
    pub fn new(redis: RedisConnection, config: StreamLogConfig) -> Self {
        RedisStreamLog {
            redis,
            config,
            retry_after: crate::store::DEFAULT_UNAVAILABLE_RETRY_AFTER,
            append: Script::new(APPEND_SCRIPT),
            close: Script::new(CLOSE_SCRIPT),
            read: Script::new(READ_SCRIPT),
        }
    }

    /// Sets the `Retry-After` of failures while Redis is unreachable.
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = retry_after;
        self
    }

    fn key(&self, stream: &str) -> String {
        self.redis.key("stream", stream)
    }

    fn unavailable(&self, reason: String) -> StreamLogError {
        StreamLogError::Unavailable(StoreUnavailable::new(self.retry_after, reason))
    }

    async fn append_in_redis(&self, stream: &str, seq: u64, data: Bytes) -> Result<(), StreamLogError> {
        let mut invocation = self.append.prepare_invoke();
        invocation
            .key(self.key(stream))
            .arg(seq)
            .arg(data.as_ref())
            .arg(self.config.max_events.max(1))
            .arg(millis(self.config.open_ttl));
        let mut manager = self.redis.manager();
        let (code, next): (i64, u64) =
            self.redis.run(invocation.invoke_async(&mut manager)).await.map_err(|reason| self.unavailable(reason))?;
        match code {
            0 | 1 => Ok(()),
            2 => Err(StreamLogError::Closed),
            3 => Err(StreamLogError::Unknown),
            _ => Err(StreamLogError::OutOfOrder { seq, expected: next }),
        }
    }

    async fn read_in_redis(&self, stream: &str, after: Option<u64>, max: usize) -> Result<StreamRead, StreamLogError> {
        let next = next_seq(after)?;
        let start = next.checked_add(1).ok_or(StreamLogError::NotInLog)?;
        let max = max.clamp(1, 1 << 20);
        let mut invocation = self.read.prepare_invoke();
        invocation.key(self.key(stream)).arg(format!("0-{start}")).arg(max + 1);
        let mut manager = self.redis.manager();
        let reply: ReadReply =
            self.redis.run(invocation.invoke_async(&mut manager)).await.map_err(|reason| self.unavailable(reason))?;
        let (first, last, closed, entries) = reply.ok_or(StreamLogError::Unknown)?;
        let malformed = || self.unavailable(format!("an unreadable stream entry in {stream}"));
        let first = entry_seq(&first).ok_or_else(malformed)?;
        let last = entry_seq(&last).ok_or_else(malformed)?;
        let closed = closed == 1;
        // The end: the sequence of the close marker, or after the last event.
        let end = if closed { last } else { last + 1 };
        if next < first || next > end {
            return Err(StreamLogError::NotInLog);
        }
        let mut events = Vec::with_capacity(entries.len().min(max));
        for (id, fields) in entries {
            let seq = entry_seq(&id).ok_or_else(malformed)?;
            match fields.as_slice() {
                [name, data] if name.as_ref() == b"d" => events.push(LoggedEvent { seq, data: data.clone() }),
                _ => break,
            }
            if events.len() == max {
                break;
            }
        }
        let closed = closed && next + events.len() as u64 == end;
        Ok(StreamRead { events, closed })
    }
}

impl StreamLog for RedisStreamLog {
    fn append<'a>(&'a self, stream: &'a str, seq: u64, data: Bytes) -> StoreFuture<'a, Result<(), StreamLogError>> {
        Box::pin(self.append_in_redis(stream, seq, data))
    }

    fn close<'a>(&'a self, stream: &'a str) -> StoreFuture<'a, Result<(), StreamLogError>> {
        Box::pin(async move {
            let mut invocation = self.close.prepare_invoke();
            invocation.key(self.key(stream)).arg(millis(self.config.closed_ttl));
            let mut manager = self.redis.manager();
            self.redis.run(invocation.invoke_async::<()>(&mut manager)).await.map_err(|reason| self.unavailable(reason))
        })
    }

    fn read<'a>(
        &'a self,
        stream: &'a str,
        after: Option<u64>,
        max: usize,
    ) -> StoreFuture<'a, Result<StreamRead, StreamLogError>> {
        Box::pin(self.read_in_redis(stream, after, max))
    }

    fn wait<'a>(
        &'a self,
        stream: &'a str,
        after: Option<u64>,
        max: usize,
        timeout: Duration,
    ) -> StoreFuture<'a, Result<StreamRead, StreamLogError>> {
        Box::pin(async move {
            let read = self.read_in_redis(stream, after, max).await?;
            if !read.events.is_empty() || read.closed {
                return Ok(read);
            }
            // `XREAD` answers at once if an entry came after the read.
            let last_seen = after.map_or(0, |seq| seq.saturating_add(1));
            self.redis
                .block_for_entry(&self.key(stream), &format!("0-{last_seen}"), timeout)
                .await
                .map_err(|reason| self.unavailable(reason))?;
            self.read_in_redis(stream, after, max).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_responses_round_trip() {
        let response = StoredResponse {
            status: 201,
            headers: vec![("content-type".into(), "application/json".into()), ("x-a".into(), "line\nbreak".into())],
            body: b"{\"a\":1}\n\x00\xff".to_vec(),
            fingerprint: "f".repeat(64),
            created_at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        };
        let encoded = encode_stored(response.clone());
        assert_eq!(encoded[0], b'D');
        assert_eq!(decode_stored(&encoded[1..]), Some(response));
        assert_eq!(decode_stored(b"not json\nbody"), None);
        assert_eq!(decode_stored(b"no newline"), None);
    }

    #[test]
    fn entry_ids_are_sequence_numbers_plus_one() {
        assert_eq!(entry_seq("0-1"), Some(0));
        assert_eq!(entry_seq("0-18446744073709551615"), Some(u64::MAX - 1));
        assert_eq!(entry_seq("0-0"), None);
        assert_eq!(entry_seq("1-1"), None);
        assert_eq!(entry_seq("0-x"), None);
    }
}
