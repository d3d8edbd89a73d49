//! Per-key rate limits in fixed windows: [`RateLimitLayer`] counts every
//! authenticated request in a [`CounterStore`], stamps the
//! `X-RateLimit-*` headers on the response and answers `429` once the
//! window's requests are used up.
//!
//! The generated router puts it on the secured routes when the spec
//! documents the `X-RateLimit-*` headers; its `RouterBuilder` turns it on
//! or off either way.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{OptionalFromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue};
use tower::{Layer, Service};

use crate::auth::{Principal, Tier};
use crate::error::{ApiFailure, ErrorEnvelope};
use crate::store::{StoreFuture, StoreUnavailable};

/// `X-RateLimit-Limit`: the requests allowed in the window.
pub(crate) const LIMIT_HEADER: HeaderName = HeaderName::from_static("x-ratelimit-limit");
/// `X-RateLimit-Remaining`: the requests left in the window.
pub(crate) const REMAINING_HEADER: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// `X-RateLimit-Reset`: when the window resets, in Unix seconds.
pub(crate) const RESET_HEADER: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The limits per tier and the window they apply to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Requests per window for [`Tier::Free`] keys (100).
    pub free: u64,
    /// Requests per window for [`Tier::Pro`] keys (1,000).
    pub pro: u64,
    /// Requests per window for [`Tier::Enterprise`] keys (10,000).
    pub enterprise: u64,
    /// The window's length (one hour). Windows are aligned to multiples of
    /// it since the Unix epoch, and at least one second long.
    pub window: Duration,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self { free: 100, pro: 1_000, enterprise: 10_000, window: Duration::from_secs(3600) }
    }
}

impl RateLimitConfig {
    /// Sets the free tier's limit.
    pub fn free(mut self, limit: u64) -> Self {
        self.free = limit;
        self
    }

    /// Sets the pro tier's limit.
    pub fn pro(mut self, limit: u64) -> Self {
        self.pro = limit;
        self
    }

    /// Sets the enterprise tier's limit.
    pub fn enterprise(mut self, limit: u64) -> Self {
        self.enterprise = limit;
        self
    }

    /// Sets the window's length.
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// The limit of a tier.
    pub fn limit_for(&self, tier: Tier) -> u64 {
        match tier {
            Tier::Free => self.free,
            Tier::Pro => self.pro,
            Tier::Enterprise => self.enterprise,
        }
    }
}

/// What a [`CounterStore`] decided about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is admitted.
    pub allowed: bool,
    /// The requests allowed in the window.
    pub limit: u64,
    /// The requests left in the window after this one.
    pub remaining: u64,
    /// When the window resets, in Unix seconds.
    pub reset: u64,
    /// The requests admitted in the window, this one included.
    pub used: u64,
}

/// Where the request counts are kept. [`InMemoryCounterStore`] serves one
/// process; implement this over a shared database to limit several (the
/// `redis` feature has one over Redis).
///
/// A store must decide atomically: two concurrent `hit`s on the last free
/// request of a window must not both be allowed.
pub trait CounterStore: Send + Sync + 'static {
    /// Counts one request for `key` against `limit` in the fixed window of
    /// length `window` that contains `now`, if the window has room.
    fn hit<'a>(&'a self, key: &'a str, limit: u64, window: Duration, now: SystemTime) -> StoreFuture<'a, Decision>;

    /// The state of `key`'s window at `now` without counting a request;
    /// `allowed` says whether one more would be admitted.
    fn peek<'a>(&'a self, key: &'a str, limit: u64, window: Duration, now: SystemTime) -> StoreFuture<'a, Decision>;

    /// [`CounterStore::hit`] for a store that can be unreachable: `Err`
    /// when it cannot decide and its [`FailurePolicy`](crate::FailurePolicy)
    /// is to fail closed, which [`RateLimitLayer`](crate::RateLimitLayer) answers `503` with
    /// `Retry-After`. The layer calls this one; by default it is `hit`,
    /// which never fails.
    fn try_hit<'a>(
        &'a self,
        key: &'a str,
        limit: u64,
        window: Duration,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<Decision, StoreUnavailable>> {
        Box::pin(async move { Ok(self.hit(key, limit, window, now).await) })
    }
}

/// The bounds of the fixed window holding `now`: its start and its end (the
/// reset), in Unix seconds. Sub-second windows count as one second, because
/// the headers speak in whole seconds.
pub fn window_bounds(now: SystemTime, window: Duration) -> (u64, u64) {
    let length = window.as_secs().max(1);
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let start = now - now % length;
    (start, start.saturating_add(length))
}

/// Counters in a mutex-guarded map, for a single process.
#[derive(Default)]
pub struct InMemoryCounterStore {
    windows: Mutex<HashMap<String, Window>>,
    calls: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: u64,
    reset: u64,
    used: u64,
}

/// How many calls pass between sweeps of expired windows: often enough to
/// bound the map by the keys active in about one window, rarely enough that
/// the sweep's cost vanishes.
const PRUNE_EVERY: u64 = 1024;

impl InMemoryCounterStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of windows held, expired ones not yet swept included.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no window is held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Window>> {
        // A panic elsewhere while holding the lock leaves plain counters,
        // which are still consistent enough to go on counting.
        self.windows.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn decide(&self, key: &str, limit: u64, window: Duration, now: SystemTime, count: bool) -> Decision {
        let (start, reset) = window_bounds(now, window);
        let now_secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let mut windows = self.lock();
        if count && self.calls.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            windows.retain(|_, window| window.reset > now_secs);
        }
        let current = windows.get(key).filter(|window| window.start == start).map_or(0, |window| window.used);
        let allowed = current < limit;
        if !(count && allowed) {
            return Decision { allowed, limit, remaining: limit.saturating_sub(current), reset, used: current };
        }
        let used = current + 1;
        let window = Window { start, reset, used };
        // Updating in place spares the key's allocation on every request.
        match windows.get_mut(key) {
            Some(slot) => *slot = window,
            None => {
                windows.insert(key.to_owned(), window);
            }
        }
        Decision { allowed, limit, remaining: limit.saturating_sub(used), reset, used }
    }
}

impl fmt::Debug for InMemoryCounterStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryCounterStore").field("windows", &self.len()).finish()
    }
}

impl CounterStore for InMemoryCounterStore {
    fn hit<'a>(&'a self, key: &'a str, limit: u64, window: Duration, now: SystemTime) -> StoreFuture<'a, Decision> {
        Box::pin(std::future::ready(self.decide(key, limit, window, now, true)))
    }

    fn peek<'a>(&'a self, key: &'a str, limit: u64, window: Duration, now: SystemTime) -> StoreFuture<'a, Decision> {
        Box::pin(std::future::ready(self.decide(key, limit, window, now, false)))
    }

    // Answered here rather than by the default, which would box a future
    // around `hit`'s boxed future on every request.
    fn try_hit<'a>(
        &'a self,
        key: &'a str,
        limit: u64,
        window: Duration,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<Decision, StoreUnavailable>> {
        Box::pin(std::future::ready(Ok(self.decide(key, limit, window, now, true))))
    }
}

/// The caller's rate-limit window after counting the current request, as
/// [`RateLimitLayer`](crate::RateLimitLayer) leaves it in the request's extensions (for an
/// operation that reports a caller's usage, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitStatus {
    /// The caller's tier.
    pub tier: Tier,
    /// The requests allowed in the window.
    pub limit: u64,
    /// The requests left in the window.
    pub remaining: u64,
    /// When the window resets, in Unix seconds.
    pub reset: u64,
    /// The requests made in the window, this one included.
    pub used: u64,
    /// The window's length in seconds.
    pub window_seconds: u64,
}

impl RateLimitStatus {
    /// Sets the `X-RateLimit-Limit`, `-Remaining` and `-Reset` headers.
    pub fn stamp(&self, headers: &mut HeaderMap) {
        headers.insert(LIMIT_HEADER, repeated_value(0, self.limit));
        headers.insert(REMAINING_HEADER, HeaderValue::from(self.remaining));
        headers.insert(RESET_HEADER, repeated_value(1, self.reset));
    }

    /// The status [`RateLimitLayer`](crate::RateLimitLayer) stored in a request; its absence means
    /// the route is not rate limited, a server misconfiguration, hence a
    /// `500`. The generated crate's `FromRequestParts` implementation calls
    /// it.
    pub fn require<E: ErrorEnvelope>(parts: &Parts) -> Result<Self, ApiFailure<E>> {
        parts
            .extensions
            .get::<RateLimitStatus>()
            .cloned()
            .ok_or_else(|| ApiFailure::internal("This route is not rate limited."))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for RateLimitStatus {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<RateLimitStatus>().cloned())
    }
}

/// Rate limits the routes it wraps, per [`Principal`].
///
/// It must sit inside [`AuthLayer`](crate::AuthLayer), which provides the
/// principal; a request without one passes through uncounted (the public
/// routes). An admitted request gets a [`RateLimitStatus`] extension and its
/// response, whatever its status, the `X-RateLimit-Limit`,
/// `X-RateLimit-Remaining` and `X-RateLimit-Reset` headers. Past the limit
/// the answer is `429` in the envelope `E`, with the same headers and
/// `Retry-After`. A store that cannot decide and fails closed (see
/// [`CounterStore::try_hit`]) gets the request answered `503` with
/// `Retry-After`, without rate-limit headers.
pub struct RateLimitLayer<E> {
    config: Arc<RateLimitConfig>,
    store: Arc<dyn CounterStore>,
    envelope: PhantomData<fn() -> E>,
}

impl<E> Clone for RateLimitLayer<E> {
    fn clone(&self) -> Self {
        Self { config: Arc::clone(&self.config), store: Arc::clone(&self.store), envelope: PhantomData }
    }
}

impl<E: ErrorEnvelope> RateLimitLayer<E> {
    /// Limits with `config`, counting in `store`.
    pub fn new(config: RateLimitConfig, store: Arc<dyn CounterStore>) -> Self {
        Self { config: Arc::new(config), store, envelope: PhantomData }
    }

    /// Limits with `config`, counting in a fresh [`InMemoryCounterStore`].
    pub fn in_memory(config: RateLimitConfig) -> Self {
        Self::new(config, Arc::new(InMemoryCounterStore::new()))
    }
}

impl<E: ErrorEnvelope> RateLimitLayer<E> {
    /// Counts one request of `principal`, as the layer does; see [`count`].
    pub(crate) async fn count(&self, principal: &Principal) -> Result<RateLimitStatus, Response> {
        count::<E>(&self.config, &*self.store, principal).await
    }
}

impl<E> fmt::Debug for RateLimitLayer<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer").field("config", &self.config).finish_non_exhaustive()
    }
}

impl<S, E> Layer<S> for RateLimitLayer<E> {
    type Service = RateLimitService<S, E>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            config: Arc::clone(&self.config),
            store: Arc::clone(&self.store),
            envelope: PhantomData,
        }
    }
}

/// The service [`RateLimitLayer`](crate::RateLimitLayer) wraps around a route.
pub struct RateLimitService<S, E> {
    inner: S,
    config: Arc<RateLimitConfig>,
    store: Arc<dyn CounterStore>,
    envelope: PhantomData<fn() -> E>,
}

impl<S: Clone, E> Clone for RateLimitService<S, E> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: Arc::clone(&self.config),
            store: Arc::clone(&self.store),
            envelope: PhantomData,
        }
    }
}

impl<S, E> fmt::Debug for RateLimitService<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitService").field("config", &self.config).finish_non_exhaustive()
    }
}

impl<S, E> Service<Request> for RateLimitService<S, E>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    E: ErrorEnvelope,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = Arc::clone(&self.config);
        let store = Arc::clone(&self.store);
        Box::pin(async move {
            // Borrowed, not cloned: the id is only the counter's key.
            let Some(principal) = request.extensions().get::<Principal>() else {
                return inner.call(request).await;
            };
            let status = match count::<E>(&config, &*store, principal).await {
                Ok(status) => status,
                Err(refusal) => return Ok(refusal),
            };
            request.extensions_mut().insert(status.clone());
            let mut response = inner.call(request).await?;
            status.stamp(response.headers_mut());
            Ok(response)
        })
    }
}

/// Counts one request of `principal`: its window after counting, or the
/// response refusing it (`429` with the rate-limit headers, or `503` with
/// `Retry-After` when the store cannot decide). What [`RateLimitLayer`]
/// does per request, and what the generated router's gate calls directly.
pub(crate) async fn count<E: ErrorEnvelope>(
    config: &RateLimitConfig,
    store: &dyn CounterStore,
    principal: &Principal,
) -> Result<RateLimitStatus, Response> {
    let tier = principal.tier;
    let limit = config.limit_for(tier);
    let now = SystemTime::now();
    let decision = match store.try_hit(&principal.id, limit, config.window, now).await {
        Ok(decision) => decision,
        Err(unavailable) => {
            tracing::warn!(reason = %unavailable.reason, "the rate-limit store is unavailable");
            return Err(ApiFailure::<E>::service_unavailable(unavailable.retry_after).into_response());
        }
    };
    let status = RateLimitStatus {
        tier,
        limit: decision.limit,
        remaining: decision.remaining,
        reset: decision.reset,
        used: decision.used,
        window_seconds: config.window.as_secs().max(1),
    };
    if !decision.allowed {
        let now_secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let retry_after = Duration::from_secs(decision.reset.saturating_sub(now_secs));
        let failure = ApiFailure::<E>::rate_limited(retry_after)
            .with_message(format!(
                "Rate limit of {} requests per {} exceeded.",
                decision.limit,
                describe_window(config.window)
            ))
            .with_detail("limit", decision.limit)
            .with_detail("reset", decision.reset);
        let mut response = failure.into_response();
        status.stamp(response.headers_mut());
        return Err(response);
    }
    Ok(status)
}

/// The header value of `number`, for the numbers that repeat from one
/// request to the next (a tier's limit, a window's reset): each thread
/// keeps the last value per `slot`, and a clone of it shares its bytes,
/// which spares an allocation per header on most requests.
fn repeated_value(slot: usize, number: u64) -> HeaderValue {
    thread_local! {
        static LAST: std::cell::RefCell<[Option<(u64, HeaderValue)>; 2]> = const { std::cell::RefCell::new([None, None]) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &last[slot] {
            Some((kept, value)) if *kept == number => value.clone(),
            _ => {
                let value = HeaderValue::from(number);
                last[slot] = Some((number, value.clone()));
                value
            }
        }
    })
}

/// "hour" for 3600 s, "minute", "day", else "N seconds", for the 429 message.
fn describe_window(window: Duration) -> String {
    match window.as_secs().max(1) {
        1 => "second".to_owned(),
        60 => "minute".to_owned(),
        3600 => "hour".to_owned(),
        86_400 => "day".to_owned(),
        seconds => format!("{seconds} seconds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::tests::envelope;
    use crate::testing::TestErrors;
    use axum::body::Body;
    use http::{StatusCode, header};
    use std::convert::Infallible;
    use tower::ServiceExt;

    const T0: u64 = 1_640_995_200;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[tokio::test]
    async fn windows_are_fixed_and_aligned() {
        let store = InMemoryCounterStore::new();
        let hour = Duration::from_secs(3600);
        let first = store.hit("k", 2, hour, at(T0 + 10)).await;
        assert_eq!(first, Decision { allowed: true, limit: 2, remaining: 1, reset: T0 + 3600, used: 1 });
        let second = store.hit("k", 2, hour, at(T0 + 20)).await;
        assert_eq!((second.allowed, second.remaining, second.used), (true, 0, 2));
        let third = store.hit("k", 2, hour, at(T0 + 3599)).await;
        assert_eq!((third.allowed, third.remaining, third.used), (false, 0, 2));
        assert!(!store.peek("k", 2, hour, at(T0 + 30)).await.allowed);
        let next = store.hit("k", 2, hour, at(T0 + 3600)).await;
        assert_eq!(next, Decision { allowed: true, limit: 2, remaining: 1, reset: T0 + 7200, used: 1 });
        assert_eq!(store.hit("other", 2, hour, at(T0)).await.used, 1);
        let peeked = store.peek("fresh", 5, hour, at(T0)).await;
        assert_eq!((peeked.allowed, peeked.used, peeked.remaining), (true, 0, 5));
        assert!(!store.hit("zero", 0, hour, at(T0)).await.allowed);
    }

    #[tokio::test]
    async fn expired_windows_are_swept() {
        let store = InMemoryCounterStore::new();
        let minute = Duration::from_secs(60);
        for i in 0..100 {
            store.hit(&format!("old{i}"), 10, minute, at(T0)).await;
        }
        assert_eq!(store.len(), 100);
        for _ in 0..PRUNE_EVERY {
            store.hit("new", u64::MAX, minute, at(T0 + 120)).await;
        }
        assert_eq!(store.len(), 1);
    }

    fn limited(
        config: RateLimitConfig,
        store: Arc<dyn CounterStore>,
    ) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone + Send + 'static {
        RateLimitLayer::<TestErrors>::new(config, store).layer(tower::service_fn(|request: Request| async move {
            let status = request.extensions().get::<RateLimitStatus>().cloned();
            let text = status.map(|s| format!("{}/{}/{}", s.tier, s.used, s.remaining)).unwrap_or_default();
            Ok::<_, Infallible>((StatusCode::CREATED, text).into_response())
        }))
    }

    fn request(principal: Option<Principal>) -> Request {
        let mut request = http::Request::get("/usage").body(Body::empty()).unwrap();
        if let Some(principal) = principal {
            request.extensions_mut().insert(principal);
        }
        request
    }

    #[tokio::test]
    async fn headers_count_down_then_429() {
        let service = limited(RateLimitConfig::default().free(3), Arc::new(InMemoryCounterStore::new()));
        let alice = Principal::new("alice", Tier::Free);
        for remaining in [2u64, 1, 0] {
            let response = service.clone().oneshot(request(Some(alice.clone()))).await.unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
            assert_eq!(response.headers()["x-ratelimit-limit"], "3");
            assert_eq!(response.headers()["x-ratelimit-remaining"], remaining.to_string().as_str());
            let reset: u64 = response.headers()["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
            assert_eq!(reset % 3600, 0);
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
            assert_eq!(body, format!("free/{}/{remaining}", 3 - remaining).as_str());
        }
        let (status, headers, body) = envelope(service.clone().oneshot(request(Some(alice))).await.unwrap()).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers["x-ratelimit-remaining"], "0");
        let retry_after: u64 = headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
        assert!((1..=3600).contains(&retry_after));
        assert_eq!(body["error"]["code"], "RATE_LIMITED");
        assert_eq!(body["error"]["message"], "Rate limit of 3 requests per hour exceeded.");
        assert_eq!(body["error"]["details"]["reason"], "rate_limited");
        assert_eq!(body["error"]["details"]["limit"], 3);
        // Another key has its own window.
        let bob = Principal::new("bob", Tier::Pro);
        let response = service.oneshot(request(Some(bob))).await.unwrap();
        assert_eq!(response.headers()["x-ratelimit-limit"], "1000");
    }

    /// A store that cannot be reached and fails closed.
    struct Unreachable;

    impl CounterStore for Unreachable {
        fn hit<'a>(&'a self, _: &'a str, limit: u64, _: Duration, _: SystemTime) -> StoreFuture<'a, Decision> {
            Box::pin(std::future::ready(Decision { allowed: false, limit, remaining: 0, reset: 0, used: 0 }))
        }

        fn peek<'a>(
            &'a self,
            key: &'a str,
            limit: u64,
            window: Duration,
            now: SystemTime,
        ) -> StoreFuture<'a, Decision> {
            self.hit(key, limit, window, now)
        }

        fn try_hit<'a>(
            &'a self,
            _: &'a str,
            _: u64,
            _: Duration,
            _: SystemTime,
        ) -> StoreFuture<'a, Result<Decision, StoreUnavailable>> {
            Box::pin(std::future::ready(Err(StoreUnavailable::new(Duration::from_secs(5), "down"))))
        }
    }

    #[tokio::test]
    async fn a_store_failing_closed_is_a_503_with_retry_after() {
        let service = limited(RateLimitConfig::default(), Arc::new(Unreachable));
        let response = service.oneshot(request(Some(Principal::new("alice", Tier::Free)))).await.unwrap();
        let (status, headers, body) = envelope(response).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::RETRY_AFTER], "5");
        assert!(!headers.contains_key("x-ratelimit-limit"));
        assert_eq!(body["error"]["details"]["reason"], "unavailable");
        // The default `try_hit` is `hit`, which never fails.
        let store = InMemoryCounterStore::new();
        let hit = store.try_hit("k", 1, Duration::from_secs(60), at(T0)).await;
        assert_eq!(hit.map(|d| d.used), Ok(1));
    }

    #[test]
    fn require_reads_the_status_or_is_a_500() {
        let (mut parts, _) = request(None).into_parts();
        let missing = RateLimitStatus::require::<TestErrors>(&parts).unwrap_err();
        assert_eq!(missing.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let status =
            RateLimitStatus { tier: Tier::Pro, limit: 2, remaining: 1, reset: T0, used: 1, window_seconds: 60 };
        parts.extensions.insert(status.clone());
        assert_eq!(RateLimitStatus::require::<TestErrors>(&parts).unwrap(), status);
    }

    #[tokio::test]
    async fn requests_without_a_principal_pass_uncounted() {
        let store = Arc::new(InMemoryCounterStore::new());
        let service = limited(RateLimitConfig::default(), store.clone());
        let response = service.oneshot(request(None)).await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert!(!response.headers().contains_key("x-ratelimit-limit"));
        assert!(store.is_empty());
    }

    #[test]
    fn never_admits_more_than_the_limit_under_concurrency() {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
        runtime.block_on(async {
            let service = limited(RateLimitConfig::default().free(20), Arc::new(InMemoryCounterStore::new()));
            let tasks: Vec<_> = (0..50)
                .map(|_| {
                    let service = service.clone();
                    tokio::spawn(async move {
                        let principal = Principal::new("shared", Tier::Free);
                        service.oneshot(request(Some(principal))).await.unwrap().status()
                    })
                })
                .collect();
            let mut statuses = Vec::new();
            for task in tasks {
                statuses.push(task.await.unwrap());
            }
            assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 20);
            assert_eq!(statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count(), 30);
        });
    }

    #[test]
    fn window_names() {
        assert_eq!(describe_window(Duration::from_secs(3600)), "hour");
        assert_eq!(describe_window(Duration::from_millis(10)), "second");
        assert_eq!(describe_window(Duration::from_secs(90)), "90 seconds");
        assert_eq!(window_bounds(at(T0 + 61), Duration::from_secs(60)), (T0 + 60, T0 + 120));
    }
}
