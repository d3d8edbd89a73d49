//! Safe retries of POST requests: [`IdempotencyLayer`] stores the response
//! to the first request made with an `Idempotency-Key` and replays it for a
//! retry of the same request, without running the operation again.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tower::{Layer, Service};

use crate::auth::Principal;
use crate::error::{ApiFailure, ErrorEnvelope};
use crate::extract::read_body;
use crate::store::StoreFuture;

/// The request header naming an idempotent request.
pub(crate) const KEY_HEADER: &str = "Idempotency-Key";
/// [`KEY_HEADER`] as a header name, for lookups.
const KEY_NAME: HeaderName = HeaderName::from_static("idempotency-key");
/// The response header marking a replayed response.
pub(crate) const REPLAYED_HEADER: HeaderName = HeaderName::from_static("idempotent-replayed");

/// A response kept for replay, in a form any store can serialize.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// The HTTP status.
    pub status: u16,
    /// The headers, in order, without the per-request ones (`X-Request-Id`,
    /// the rate-limit headers) and the framing ones (`Content-Length`).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The fingerprint of the request that produced it (see
    /// [`request_fingerprint`]).
    pub fingerprint: String,
    /// When it was stored; stores expire records from this.
    pub created_at: SystemTime,
}

/// What an [`IdempotencyStore`] found when a request with a key arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// The key is new (or its record expired): it is now reserved as in
    /// progress with this fingerprint, and the request should run.
    Started,
    /// A response was stored for this key and the same fingerprint.
    Replay(StoredResponse),
    /// The key was used for a request with another fingerprint.
    Mismatch,
    /// A request with this key is still running.
    InProgress,
    /// The store could not be reached and fails closed (see
    /// [`FailurePolicy`](crate::FailurePolicy)): the request is answered
    /// `503` with `Retry-After: retry_after`, without running.
    Unavailable {
        /// How long the client is asked to wait.
        retry_after: Duration,
    },
}

/// Where idempotency records are kept. [`InMemoryIdempotencyStore`] serves
/// one process; implement this over a database to persist records (the
/// `redis` feature has one over Redis, for several instances).
///
/// `begin` must check and reserve atomically, so that of two concurrent
/// requests with one key, one runs and the other is told `InProgress`.
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Looks up `scope` (principal id and key) at `now` and, when it is free
    /// or expired, reserves it as in progress with `fingerprint`.
    fn begin<'a>(&'a self, scope: &'a str, fingerprint: &'a str, now: SystemTime) -> StoreFuture<'a, IdempotencyBegin>;

    /// Stores the response of the request that reserved `scope`.
    fn complete<'a>(&'a self, scope: &'a str, response: StoredResponse) -> StoreFuture<'a, ()>;

    /// Releases a reservation without storing a response (the request
    /// failed with a 5xx, streamed, or was cancelled), so that a retry runs.
    fn abandon<'a>(&'a self, scope: &'a str) -> StoreFuture<'a, ()>;
}

/// Records in a mutex-guarded map, for a single process. Records (and
/// reservations, should one ever be left behind) expire after the TTL.
pub struct InMemoryIdempotencyStore {
    ttl: Duration,
    records: Mutex<HashMap<String, Record>>,
    calls: AtomicU64,
}

#[derive(Debug, Clone)]
enum Record {
    InProgress { fingerprint: String, since: SystemTime },
    Done(StoredResponse),
}

impl Record {
    fn since(&self) -> SystemTime {
        match self {
            Record::InProgress { since, .. } => *since,
            Record::Done(stored) => stored.created_at,
        }
    }
}

/// How many `begin`s pass between sweeps of expired records.
const PRUNE_EVERY: u64 = 256;

/// How long records are kept by default: a day, as retries after network
/// failures come within minutes and clients are told keys are kept "for a
/// limited time".
pub const DEFAULT_IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);

impl Default for InMemoryIdempotencyStore {
    fn default() -> Self {
        Self::new(DEFAULT_IDEMPOTENCY_TTL)
    }
}

impl InMemoryIdempotencyStore {
    /// An empty store keeping records for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, records: Mutex::new(HashMap::new()), calls: AtomicU64::new(0) }
    }

    /// The number of records held, expired ones not yet swept included.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        // The map holds plain data, still usable after a panic elsewhere.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn expired(&self, record: &Record, now: SystemTime) -> bool {
        record.since().checked_add(self.ttl).is_some_and(|end| end <= now)
    }

    fn begin_now(&self, scope: &str, fingerprint: &str, now: SystemTime) -> IdempotencyBegin {
        let mut records = self.lock();
        if self.calls.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            records.retain(|_, record| !self.expired(record, now));
        }
        let outcome = match records.get(scope) {
            Some(record) if self.expired(record, now) => None,
            Some(Record::Done(stored)) if stored.fingerprint == fingerprint => {
                Some(IdempotencyBegin::Replay(stored.clone()))
            }
            Some(Record::Done(_)) => Some(IdempotencyBegin::Mismatch),
            Some(Record::InProgress { fingerprint: running, .. }) if running == fingerprint => {
                Some(IdempotencyBegin::InProgress)
            }
            Some(Record::InProgress { .. }) => Some(IdempotencyBegin::Mismatch),
            None => None,
        };
        outcome.unwrap_or_else(|| {
            records.insert(scope.to_owned(), Record::InProgress { fingerprint: fingerprint.to_owned(), since: now });
            IdempotencyBegin::Started
        })
    }
}

impl fmt::Debug for InMemoryIdempotencyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryIdempotencyStore").field("ttl", &self.ttl).field("records", &self.len()).finish()
    }
}

impl IdempotencyStore for InMemoryIdempotencyStore {
    fn begin<'a>(&'a self, scope: &'a str, fingerprint: &'a str, now: SystemTime) -> StoreFuture<'a, IdempotencyBegin> {
        Box::pin(std::future::ready(self.begin_now(scope, fingerprint, now)))
    }

    fn complete<'a>(&'a self, scope: &'a str, response: StoredResponse) -> StoreFuture<'a, ()> {
        self.lock().insert(scope.to_owned(), Record::Done(response));
        Box::pin(std::future::ready(()))
    }

    fn abandon<'a>(&'a self, scope: &'a str) -> StoreFuture<'a, ()> {
        let mut records = self.lock();
        if matches!(records.get(scope), Some(Record::InProgress { .. })) {
            records.remove(scope);
        }
        Box::pin(std::future::ready(()))
    }
}

/// The fingerprint of a request: the hex SHA-256 of its method, path (with
/// query string) and body, separated by NUL bytes so that no two different
/// requests run together into the same input.
pub fn request_fingerprint(method: &Method, uri: &Uri, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(uri.path_and_query().map_or("/", |p| p.as_str()).as_bytes());
    hasher.update([0]);
    hasher.update(body);
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The store key of a principal's idempotency key: the principal's id, a
/// newline, and the key. A key cannot hold a newline (HTTP forbids it in
/// header values), so the last newline always splits the two apart.
pub fn idempotency_scope(principal_id: &str, key: &str) -> String {
    format!("{principal_id}\n{key}")
}

/// The request's `Idempotency-Key`: `None` when absent; 1 to 255
/// characters of UTF-8, exactly as the spec's schema says (any other check
/// would refuse keys the spec allows), else `400`.
pub(crate) fn idempotency_key<E: ErrorEnvelope>(headers: &HeaderMap) -> Result<Option<&str>, ApiFailure<E>> {
    let Some(key) = crate::extract::header_named(headers, &KEY_NAME, KEY_HEADER)? else {
        return Ok(None);
    };
    let reason = match key.chars().count() {
        0 => "too_short",
        256.. => "too_long",
        _ => return Ok(Some(key)),
    };
    Err(ApiFailure::invalid_input(KEY_HEADER, reason).with_message("Idempotency-Key must be 1 to 255 characters long."))
}

/// Response headers that belong to one request and not to a replay, and
/// the framing headers that the server recomputes.
fn is_unstored_header(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "x-request-id"
            | "x-ratelimit-limit"
            | "x-ratelimit-remaining"
            | "x-ratelimit-reset"
            | "idempotent-replayed"
            | "content-length"
            | "transfer-encoding"
            | "connection"
            | "date"
    )
}

/// Makes POST routes safe to retry.
///
/// It must sit inside [`AuthLayer`](crate::AuthLayer) (records are kept per
/// principal) and inside [`RateLimitLayer`](crate::RateLimitLayer), so that
/// a replay is counted and carries fresh rate-limit headers. For a request
/// with a principal and an `Idempotency-Key` header, it buffers the body (up
/// to the body limit, else `413`), fingerprints the request, and then:
///
/// - first time: runs the route, and stores its response unless it is a
///   `5xx` or an event stream (those are not replayable: a retry should run);
/// - same key and fingerprint, response stored: replays it, with
///   `Idempotent-Replayed: true`, without running the route;
/// - same key, another fingerprint: `409` (`reason: reused`);
/// - same key while the first request still runs: `409`
///   (`reason: in_progress`), with `Retry-After`;
/// - the store cannot be reached and fails closed: `503` with
///   `Retry-After`, without running the route.
///
/// Safe methods (GET, HEAD, OPTIONS, TRACE) and requests without a key or
/// principal pass through untouched. Failures are answered in the envelope
/// `E`.
pub struct IdempotencyLayer<E> {
    store: Arc<dyn IdempotencyStore>,
    body_limit: usize,
    envelope: PhantomData<fn() -> E>,
}

impl<E> Clone for IdempotencyLayer<E> {
    fn clone(&self) -> Self {
        Self { store: Arc::clone(&self.store), body_limit: self.body_limit, envelope: PhantomData }
    }
}

impl<E: ErrorEnvelope> IdempotencyLayer<E> {
    /// Keeps records in `store`, buffering request bodies up to
    /// `body_limit` bytes.
    pub fn new(store: Arc<dyn IdempotencyStore>, body_limit: usize) -> Self {
        Self { store, body_limit, envelope: PhantomData }
    }

    /// Keeps records in a fresh [`InMemoryIdempotencyStore`] with the
    /// default TTL.
    pub fn in_memory(body_limit: usize) -> Self {
        Self::new(Arc::new(InMemoryIdempotencyStore::default()), body_limit)
    }
}

impl<E> fmt::Debug for IdempotencyLayer<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdempotencyLayer").field("body_limit", &self.body_limit).finish_non_exhaustive()
    }
}

impl<S, E> Layer<S> for IdempotencyLayer<E> {
    type Service = IdempotencyService<S, E>;

    fn layer(&self, inner: S) -> Self::Service {
        IdempotencyService { inner, store: Arc::clone(&self.store), body_limit: self.body_limit, envelope: PhantomData }
    }
}

/// The service [`IdempotencyLayer`](crate::IdempotencyLayer) wraps around a route.
pub struct IdempotencyService<S, E> {
    inner: S,
    store: Arc<dyn IdempotencyStore>,
    body_limit: usize,
    envelope: PhantomData<fn() -> E>,
}

impl<S: Clone, E> Clone for IdempotencyService<S, E> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            store: Arc::clone(&self.store),
            body_limit: self.body_limit,
            envelope: PhantomData,
        }
    }
}

impl<S, E> fmt::Debug for IdempotencyService<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdempotencyService").field("body_limit", &self.body_limit).finish_non_exhaustive()
    }
}

impl<S, E> Service<Request> for IdempotencyService<S, E>
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

    fn call(&mut self, request: Request) -> Self::Future {
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let store = Arc::clone(&self.store);
        let body_limit = self.body_limit;
        Box::pin(idempotent::<S, E>(inner, store, body_limit, request))
    }
}

async fn idempotent<S, E>(
    mut inner: S,
    store: Arc<dyn IdempotencyStore>,
    body_limit: usize,
    request: Request,
) -> Result<Response, S::Error>
where
    S: Service<Request, Response = Response>,
    E: ErrorEnvelope,
{
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE) {
        return inner.call(request).await;
    }
    let scope = match idempotency_key::<E>(request.headers()) {
        Ok(Some(key)) => match request.extensions().get::<Principal>() {
            Some(principal) => idempotency_scope(&principal.id, key),
            None => return inner.call(request).await,
        },
        Ok(None) => return inner.call(request).await,
        Err(failure) => return Ok(failure.into_response()),
    };
    run_once::<E, _, _, _>(&store, body_limit, scope, request, |request| inner.call(request)).await
}

/// Runs `run` on `request` at most once per `scope` (the caller's id and the
/// request's `Idempotency-Key`, see [`idempotency_scope`]): a retry with the
/// same body gets the stored response back, one with another body or while
/// the first still runs a `409`. What [`IdempotencyLayer`] does for a request
/// with a key, and what the generated router's gate calls directly.
pub(crate) async fn run_once<E, F, Fut, Err>(
    store: &Arc<dyn IdempotencyStore>,
    body_limit: usize,
    scope: String,
    request: Request,
    run: F,
) -> Result<Response, Err>
where
    E: ErrorEnvelope,
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Result<Response, Err>>,
{
    let (parts, body) = request.into_parts();
    let bytes = match read_body::<E>(body, body_limit).await {
        Ok(bytes) => bytes,
        Err(failure) => return Ok(failure.into_response()),
    };
    let fingerprint = request_fingerprint(&parts.method, &parts.uri, &bytes);
    match store.begin(&scope, &fingerprint, SystemTime::now()).await {
        // A store that keys on scope alone could hand back another request's
        // response; comparing here keeps that from ever being replayed.
        IdempotencyBegin::Replay(stored) if stored.fingerprint == fingerprint => {
            return Ok(replay(stored));
        }
        IdempotencyBegin::Replay(_) | IdempotencyBegin::Mismatch => {
            return Ok(reused::<E>().into_response());
        }
        IdempotencyBegin::InProgress => return Ok(in_progress::<E>().into_response()),
        IdempotencyBegin::Unavailable { retry_after } => {
            return Ok(ApiFailure::<E>::service_unavailable(retry_after).into_response());
        }
        IdempotencyBegin::Started => {}
    }
    let reservation = Reservation { store: Some(Arc::clone(store)), scope };
    let response = run(Request::from_parts(parts, Body::from(bytes))).await?;
    if response.status().is_server_error() || is_event_stream(response.headers()) {
        reservation.abandon().await;
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    // The routes build their responses in memory, so reading one whole does
    // not change what the client receives, only when.
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, "failed to read a response body for idempotency");
            reservation.abandon().await;
            return Ok(ApiFailure::<E>::internal("The server failed to produce its response.").into_response());
        }
    };
    let headers = parts
        .headers
        .iter()
        .filter(|(name, _)| !is_unstored_header(name))
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
        .collect();
    let stored = StoredResponse {
        status: parts.status.as_u16(),
        headers,
        body: body.to_vec(),
        fingerprint,
        created_at: SystemTime::now(),
    };
    reservation.complete(stored).await;
    Ok(Response::from_parts(parts, Body::from(body)))
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().to_ascii_lowercase().starts_with("text/event-stream"))
}

fn reused<E: ErrorEnvelope>() -> ApiFailure<E> {
    ApiFailure::conflict("This Idempotency-Key was already used for a different request.")
        .with_field(KEY_HEADER, "reused")
}

/// The answer to a retry whose first request is still running. Unlike other
/// conflicts this one goes away by waiting, so it carries `Retry-After`: a
/// client that timed out while the first request kept running learns to
/// come back for the stored response instead of giving up.
fn in_progress<E: ErrorEnvelope>() -> ApiFailure<E> {
    ApiFailure::conflict("A request with this Idempotency-Key is still in progress; retry after it finishes.")
        .with_field(KEY_HEADER, "in_progress")
        .with_header(header::RETRY_AFTER, HeaderValue::from_static(IN_PROGRESS_RETRY_AFTER))
}

/// Seconds a client is asked to wait before retrying a request still in
/// progress: short, since most requests finish within seconds.
const IN_PROGRESS_RETRY_AFTER: &str = "1";

fn replay(stored: StoredResponse) -> Response {
    let mut response = Response::new(Body::from(stored.body));
    *response.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for (name, value) in &stored.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str())) {
            headers.append(name, value);
        }
    }
    headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

/// A key reserved in the store. Dropped without being completed or
/// abandoned (the client went away and the request future was dropped), it
/// abandons the key in a task of its own, so that a retry is not refused as
/// in progress until the record expires.
struct Reservation {
    store: Option<Arc<dyn IdempotencyStore>>,
    scope: String,
}

impl Reservation {
    async fn complete(mut self, response: StoredResponse) {
        if let Some(store) = self.store.take() {
            store.complete(&self.scope, response).await;
        }
    }

    async fn abandon(mut self) {
        if let Some(store) = self.store.take() {
            store.abandon(&self.scope).await;
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let Some(store) = self.store.take() else {
            return;
        };
        let scope = std::mem::take(&mut self.scope);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { store.abandon(&scope).await });
            }
            Err(_) => tracing::warn!("an idempotency key stays reserved until it expires: no runtime to release it"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Tier;
    use crate::error::tests::envelope;
    use crate::testing::{TestErrors, TestFailure};
    use std::convert::Infallible;
    use std::sync::atomic::AtomicUsize;
    use tower::ServiceExt;

    /// A route that counts its calls and answers with the call number, a
    /// per-request header and the body it read.
    fn counting(
        calls: Arc<AtomicUsize>,
    ) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone {
        tower::service_fn(move |request: Request| {
            let calls = Arc::clone(&calls);
            async move {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                let body = axum::body::to_bytes(request.into_body(), usize::MAX).await.unwrap();
                let mut response =
                    (StatusCode::CREATED, format!("call {n}: {}", String::from_utf8_lossy(&body))).into_response();
                response.headers_mut().insert("x-request-id", HeaderValue::from_static("req_inner"));
                response.headers_mut().insert("x-custom", HeaderValue::from_static("kept"));
                Ok::<_, Infallible>(response)
            }
        })
    }

    fn post(key: Option<&str>, principal: Option<&str>, body: &'static str) -> Request {
        let mut builder = http::Request::post("/agents/agt_1/invoke");
        if let Some(key) = key {
            builder = builder.header(KEY_HEADER, key);
        }
        let mut request = builder.body(Body::from(body)).unwrap();
        if let Some(id) = principal {
            request.extensions_mut().insert(Principal::new(id, Tier::Pro));
        }
        request
    }

    async fn text(response: Response) -> String {
        String::from_utf8(axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn replays_the_first_response() {
        let calls = Arc::new(AtomicUsize::new(0));
        let service = IdempotencyLayer::<TestErrors>::in_memory(1024).layer(counting(calls.clone()));
        let first = service.clone().oneshot(post(Some("k1"), Some("alice"), "{\"q\":1}")).await.unwrap();
        assert_eq!(first.status(), StatusCode::CREATED);
        assert!(!first.headers().contains_key(REPLAYED_HEADER));
        assert_eq!(text(first).await, "call 1: {\"q\":1}");
        let again = service.clone().oneshot(post(Some("k1"), Some("alice"), "{\"q\":1}")).await.unwrap();
        assert_eq!(again.status(), StatusCode::CREATED);
        assert_eq!(again.headers()[REPLAYED_HEADER], "true");
        assert_eq!(again.headers()["x-custom"], "kept");
        assert!(!again.headers().contains_key("x-request-id"));
        assert_eq!(text(again).await, "call 1: {\"q\":1}");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // The same key of another principal is another record.
        let bob = service.clone().oneshot(post(Some("k1"), Some("bob"), "{\"q\":1}")).await.unwrap();
        assert_eq!(text(bob).await, "call 2: {\"q\":1}");
    }

    #[tokio::test]
    async fn a_different_request_with_the_key_conflicts() {
        let calls = Arc::new(AtomicUsize::new(0));
        let service = IdempotencyLayer::<TestErrors>::in_memory(1024).layer(counting(calls.clone()));
        service.clone().oneshot(post(Some("k1"), Some("alice"), "{\"q\":1}")).await.unwrap();
        let response = service.clone().oneshot(post(Some("k1"), Some("alice"), "{\"q\":2}")).await.unwrap();
        let (status, _, body) = envelope(response).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["error"]["code"], "CONFLICT");
        assert_eq!(body["error"]["details"], serde_json::json!({"field": "Idempotency-Key", "reason": "reused"}));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_retry_while_running_conflicts() {
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let wait = Arc::new(tokio::sync::Mutex::new(Some(wait)));
        let slow = tower::service_fn(move |_request: Request| {
            let wait = Arc::clone(&wait);
            async move {
                if let Some(wait) = wait.lock().await.take() {
                    wait.await.ok();
                }
                Ok::<_, Infallible>(StatusCode::OK.into_response())
            }
        });
        let service = IdempotencyLayer::<TestErrors>::in_memory(1024).layer(slow);
        let first = tokio::spawn(service.clone().oneshot(post(Some("k"), Some("alice"), "x")));
        tokio::task::yield_now().await;
        let mut second = None;
        for _ in 0..100 {
            let response = service.clone().oneshot(post(Some("k"), Some("alice"), "x")).await.unwrap();
            if response.status() == StatusCode::CONFLICT {
                second = Some(response);
                break;
            }
            tokio::task::yield_now().await;
        }
        let second = second.expect("a 409 while the first runs");
        assert_eq!(second.headers()[header::RETRY_AFTER], "1");
        let (_, _, body) = envelope(second).await;
        assert_eq!(body["error"]["details"]["reason"], "in_progress");
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn failures_and_streams_are_not_stored() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let flaky = tower::service_fn(move |_request: Request| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                Ok::<_, Infallible>(match n {
                    0 => TestFailure::internal("boom").into_response(),
                    1 => ([(header::CONTENT_TYPE, "text/event-stream")], "data: 1\n\n").into_response(),
                    _ => StatusCode::OK.into_response(),
                })
            }
        });
        let service = IdempotencyLayer::<TestErrors>::in_memory(1024).layer(flaky);
        let statuses = [StatusCode::INTERNAL_SERVER_ERROR, StatusCode::OK, StatusCode::OK, StatusCode::OK];
        for status in statuses {
            let response = service.clone().oneshot(post(Some("k"), Some("alice"), "x")).await.unwrap();
            assert_eq!(response.status(), status);
        }
        // Two unstored answers, then one stored and replayed.
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn keys_are_checked_and_bodies_limited() {
        let calls = Arc::new(AtomicUsize::new(0));
        let service = IdempotencyLayer::<TestErrors>::in_memory(4).layer(counting(calls.clone()));
        let long = "k".repeat(256);
        let long: &'static str = Box::leak(long.into_boxed_str());
        let (status, _, body) =
            envelope(service.clone().oneshot(post(Some(long), Some("alice"), "x")).await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["details"], serde_json::json!({"field": "Idempotency-Key", "reason": "too_long"}));
        let (status, _, body) =
            envelope(service.clone().oneshot(post(Some(""), Some("alice"), "x")).await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["details"]["reason"], "too_short");
        let (status, _, _) =
            envelope(service.clone().oneshot(post(Some("k"), Some("alice"), "12345")).await.unwrap()).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(
            service
                .clone()
                .oneshot(post(Some("a key\twith spaces"), Some("alice"), "x"))
                .await
                .unwrap()
                .status()
                .is_success()
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn requests_without_key_or_principal_pass_through() {
        let calls = Arc::new(AtomicUsize::new(0));
        let service = IdempotencyLayer::<TestErrors>::in_memory(1024).layer(counting(calls.clone()));
        for request in [
            post(None, Some("alice"), "x"),
            post(None, Some("alice"), "x"),
            post(Some("k"), None, "x"),
            post(Some("k"), None, "x"),
        ] {
            assert!(!service.clone().oneshot(request).await.unwrap().headers().contains_key(REPLAYED_HEADER));
        }
        let get = http::Request::get("/x").header(KEY_HEADER, "k").body(Body::empty()).unwrap();
        service.clone().oneshot(get).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn a_dropped_request_releases_its_key() {
        let store = Arc::new(InMemoryIdempotencyStore::default());
        let pending = tower::service_fn(|_request: Request| std::future::pending::<Result<Response, Infallible>>());
        let service = IdempotencyLayer::<TestErrors>::new(store.clone(), 1024).layer(pending);
        let call = service.oneshot(post(Some("k"), Some("alice"), "x"));
        assert!(tokio::time::timeout(Duration::from_millis(20), call).await.is_err());
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(store.is_empty());
    }

    /// A store that cannot be reached and fails closed.
    struct Unreachable;

    impl IdempotencyStore for Unreachable {
        fn begin<'a>(&'a self, _: &'a str, _: &'a str, _: SystemTime) -> StoreFuture<'a, IdempotencyBegin> {
            Box::pin(std::future::ready(IdempotencyBegin::Unavailable { retry_after: Duration::from_secs(2) }))
        }

        fn complete<'a>(&'a self, _: &'a str, _: StoredResponse) -> StoreFuture<'a, ()> {
            Box::pin(std::future::ready(()))
        }

        fn abandon<'a>(&'a self, _: &'a str) -> StoreFuture<'a, ()> {
            Box::pin(std::future::ready(()))
        }
    }

    #[tokio::test]
    async fn an_unreachable_store_is_a_503_and_the_route_does_not_run() {
        let calls = Arc::new(AtomicUsize::new(0));
        let service = IdempotencyLayer::<TestErrors>::new(Arc::new(Unreachable), 1024).layer(counting(calls.clone()));
        let response = service.clone().oneshot(post(Some("k"), Some("alice"), "x")).await.unwrap();
        let (status, headers, body) = envelope(response).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::RETRY_AFTER], "2");
        assert_eq!(body["error"]["details"]["reason"], "unavailable");
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        // Without a key the store is not asked.
        assert!(service.oneshot(post(None, Some("alice"), "x")).await.unwrap().status().is_success());
    }

    #[tokio::test]
    async fn records_expire() {
        let store = InMemoryIdempotencyStore::new(Duration::from_secs(10));
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(store.begin("s", "f", t0).await, IdempotencyBegin::Started);
        assert_eq!(store.begin("s", "f", t0).await, IdempotencyBegin::InProgress);
        assert_eq!(store.begin("s", "g", t0).await, IdempotencyBegin::Mismatch);
        let stored = StoredResponse {
            status: 201,
            headers: vec![],
            body: b"ok".to_vec(),
            fingerprint: "f".into(),
            created_at: t0,
        };
        store.complete("s", stored.clone()).await;
        assert_eq!(store.begin("s", "f", t0 + Duration::from_secs(9)).await, IdempotencyBegin::Replay(stored));
        assert_eq!(store.begin("s", "g", t0 + Duration::from_secs(10)).await, IdempotencyBegin::Started);
        store.abandon("s").await;
        assert!(store.is_empty());
    }

    #[test]
    fn fingerprints_cover_method_path_and_body() {
        let uri: Uri = "/agents/a/invoke".parse().unwrap();
        let base = request_fingerprint(&Method::POST, &uri, b"{}");
        assert_eq!(base.len(), 64);
        assert_eq!(base, request_fingerprint(&Method::POST, &uri, b"{}"));
        assert_ne!(base, request_fingerprint(&Method::PUT, &uri, b"{}"));
        assert_ne!(base, request_fingerprint(&Method::POST, &"/agents/b/invoke".parse().unwrap(), b"{}"));
        assert_ne!(base, request_fingerprint(&Method::POST, &uri, b"{ }"));
        assert_eq!(idempotency_scope("alice", "k"), "alice\nk");
    }
}
