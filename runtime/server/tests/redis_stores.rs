//! The Redis stores against a real `redis-server`, started for each test on
//! a free loopback port (no persistence, a temporary directory) and
//! stopped at the end: the same assertions as the in-memory stores, several
//! "instances" (store values on connections of their own) sharing one
//! Redis, and Redis stopped, frozen and restarted mid-run.
//!
//! Without `redis-server` on the PATH the tests skip with a loud message,
//! unless `CI` is set: then they fail.
//!
//! ```sh
//! cargo test -p runagent-runtime-server --features redis --test redis_stores
//! ```

use std::convert::Infallible;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use http::{StatusCode, header};
use runagent_runtime_server::{
    CounterStore, Decision, ErrorEnvelope, FailurePolicy, IdempotencyBegin, IdempotencyLayer, IdempotencyStore,
    InMemoryCounterStore, InMemoryIdempotencyStore, InMemoryStreamLog, Principal, RateLimitConfig, RateLimitLayer,
    RedisConnection, RedisCounterStore, RedisIdempotencyStore, RedisOptions, RedisStreamLog, StoredResponse, StreamLog,
    StreamLogConfig, StreamLogError, StreamRead, Tier, follow,
};
use tower::{Layer, Service, ServiceExt};

// ---------------------------------------------------------------------------
// A throwaway redis-server.

struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// A fresh server, or `None` (after a loud message) when
    /// `redis-server` is missing and `CI` is not set.
    fn start() -> Option<RedisServer> {
        let found = Command::new("redis-server").arg("--version").stdout(Stdio::null()).status().is_ok();
        if !found {
            if std::env::var_os("CI").is_some() {
                panic!("redis-server is not installed, and CI is set: install it (apt-get install redis-server)");
            }
            // Straight to stderr, past the test harness's capture, so that
            // the skip shows in a passing run.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: redis-server is not on the PATH; the Redis stores were NOT tested. \
                 Install it (apt-get install redis-server) to run these tests. ***\n"
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = RedisServer { port, dir: tempfile::tempdir().unwrap(), child: None };
        server.spawn();
        Some(server)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--dir", self.dir.path().to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        let client = redis::Client::open(self.url()).unwrap();
        while Instant::now() < deadline {
            if let Ok(mut connection) = client.get_connection_with_timeout(Duration::from_millis(200))
                && redis::cmd("PING").query::<String>(&mut connection).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not come up on port {}", self.port);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the server: a Redis that
    /// accepts connections but never answers.
    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(Command::new("kill").args([signal, &pid]).status().unwrap().success());
    }

    /// A synchronous connection for checks behind the stores' backs.
    fn direct(&self) -> redis::Connection {
        redis::Client::open(self.url()).unwrap().get_connection().unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A frozen server ignores SIGKILL until thawed on some systems.
            Command::new("kill").args(["-CONT", &child.id().to_string()]).status().ok();
        }
        self.stop();
    }
}

fn connect(server: &RedisServer, options: RedisOptions) -> RedisConnection {
    RedisConnection::open(&server.url(), options).unwrap()
}

fn options() -> RedisOptions {
    RedisOptions::default().key_prefix("test:")
}

// ---------------------------------------------------------------------------
// An envelope for the layers' answers.

#[derive(Debug, Clone, Copy)]
struct Errors;

impl ErrorEnvelope for Errors {
    type Code = String;
    type Details = serde_json::Map<String, serde_json::Value>;
    type Body = serde_json::Value;

    const REALM: &'static str = "test";

    fn code_for_status(status: StatusCode) -> String {
        match status.as_u16() {
            409 => "CONFLICT".into(),
            429 => "RATE_LIMITED".into(),
            503 => "UNAVAILABLE".into(),
            _ => "OTHER".into(),
        }
    }

    fn envelope(_status: StatusCode, code: String, message: String, details: Option<Self::Details>) -> Self::Body {
        serde_json::json!({"status": "error", "error": {"code": code, "message": message, "details": details}})
    }

    fn empty_details() -> Self::Details {
        serde_json::Map::new()
    }

    fn set_field(details: &mut Self::Details, field: String) {
        details.insert("field".into(), field.into());
    }

    fn set_reason(details: &mut Self::Details, reason: String) {
        details.insert("reason".into(), reason.into());
    }

    fn set_extra(details: &mut Self::Details, name: String, value: serde_json::Value) {
        details.insert(name, value);
    }

    fn field(details: &Self::Details) -> Option<&str> {
        details.get("field").and_then(|v| v.as_str())
    }

    fn reason(details: &Self::Details) -> Option<&str> {
        details.get("reason").and_then(|v| v.as_str())
    }
}

async fn json(response: Response) -> (StatusCode, http::HeaderMap, serde_json::Value) {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    (parts.status, parts.headers, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

fn get(principal: &str, tier: Tier) -> Request {
    let mut request = http::Request::get("/usage").body(Body::empty()).unwrap();
    request.extensions_mut().insert(Principal::new(principal, tier));
    request
}

fn post(key: &str, principal: &str, body: &'static str) -> Request {
    let mut request =
        http::Request::post("/agents/agt_1/invoke").header("Idempotency-Key", key).body(Body::from(body)).unwrap();
    request.extensions_mut().insert(Principal::new(principal, Tier::Pro));
    request
}

fn ok_route() -> impl Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone + Send + 'static {
    tower::service_fn(|_request: Request| async { Ok::<_, Infallible>((StatusCode::CREATED, "ok").into_response()) })
}

fn counting_route(
    calls: Arc<AtomicUsize>,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone + Send + 'static {
    tower::service_fn(move |request: Request| {
        let calls = Arc::clone(&calls);
        async move {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            let body = axum::body::to_bytes(request.into_body(), usize::MAX).await.unwrap();
            Ok::<_, Infallible>(
                (StatusCode::CREATED, format!("call {n}: {}", String::from_utf8_lossy(&body))).into_response(),
            )
        }
    })
}

/// A key no other test (or earlier run on a reused server) has used.
fn unique(name: &str) -> String {
    format!("{name}-{}", uuid::Uuid::new_v4().simple())
}

// ---------------------------------------------------------------------------
// Rate limits.

const T0: u64 = 1_640_995_200;

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

/// The window assertions of the in-memory store's own tests, for any store.
async fn check_windows(store: &dyn CounterStore) {
    let (k, other, fresh, zero) = (unique("k"), unique("other"), unique("fresh"), unique("zero"));
    let hour = Duration::from_secs(3600);
    let first = store.hit(&k, 2, hour, at(T0 + 10)).await;
    assert_eq!(first, Decision { allowed: true, limit: 2, remaining: 1, reset: T0 + 3600, used: 1 });
    let second = store.hit(&k, 2, hour, at(T0 + 20)).await;
    assert_eq!(second, Decision { allowed: true, limit: 2, remaining: 0, reset: T0 + 3600, used: 2 });
    let third = store.hit(&k, 2, hour, at(T0 + 3599)).await;
    assert_eq!(third, Decision { allowed: false, limit: 2, remaining: 0, reset: T0 + 3600, used: 2 });
    assert_eq!(store.try_hit(&k, 2, hour, at(T0 + 3599)).await, Ok(third));
    assert_eq!(store.peek(&k, 2, hour, at(T0 + 30)).await, third);
    let next = store.hit(&k, 2, hour, at(T0 + 3600)).await;
    assert_eq!(next, Decision { allowed: true, limit: 2, remaining: 1, reset: T0 + 7200, used: 1 });
    assert_eq!(store.hit(&other, 2, hour, at(T0)).await.used, 1);
    let peeked = store.peek(&fresh, 5, hour, at(T0)).await;
    assert_eq!(peeked, Decision { allowed: true, limit: 5, remaining: 5, reset: T0 + 3600, used: 0 });
    assert_eq!(
        store.hit(&zero, 0, hour, at(T0)).await,
        Decision { allowed: false, limit: 0, remaining: 0, reset: T0 + 3600, used: 0 }
    );
    let huge = store.hit(&zero, u64::MAX, Duration::from_millis(10), at(T0 + 1)).await;
    assert_eq!((huge.allowed, huge.used, huge.reset), (true, 1, T0 + 2));
}

/// What the rate-limit layer answers, request by request, for a store.
async fn layer_answers(store: Arc<dyn CounterStore>) -> Vec<(StatusCode, Vec<String>, serde_json::Value)> {
    let service = RateLimitLayer::<Errors>::new(RateLimitConfig::default().free(3), store).layer(ok_route());
    let alice = unique("alice");
    let mut answers = Vec::new();
    for principal in [&alice, &alice, &alice, &alice, &alice, &unique("bob")] {
        let (status, headers, body) = json(service.clone().oneshot(get(principal, Tier::Free)).await.unwrap()).await;
        let named = ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"]
            .map(|name| format!("{name}: {:?}", headers.get(name).map(|v| v.to_str().unwrap().to_owned())));
        answers.push((status, named.to_vec(), body));
    }
    answers
}

#[tokio::test]
async fn rate_limit_windows_and_headers_are_the_in_memory_ones() {
    let Some(server) = RedisServer::start() else { return };
    let redis = RedisCounterStore::new(connect(&server, options()));
    check_windows(&InMemoryCounterStore::new()).await;
    check_windows(&redis).await;

    let in_memory = layer_answers(Arc::new(InMemoryCounterStore::new())).await;
    let in_redis = layer_answers(Arc::new(redis)).await;
    assert_eq!(in_memory, in_redis);
    assert_eq!(in_redis.iter().map(|a| a.0.as_u16()).collect::<Vec<_>>(), [201, 201, 201, 429, 429, 201]);
    assert_eq!(in_redis[3].2["error"]["code"], "RATE_LIMITED");

    // Every counter key expires by itself, a second after its window.
    let mut direct = server.direct();
    let keys: Vec<String> = redis::cmd("KEYS").arg("test:ratelimit:*").query(&mut direct).unwrap();
    assert!(keys.len() >= 5, "{keys:?}");
    for key in keys {
        let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut direct).unwrap();
        assert!(ttl > 0 && ttl <= 3_601_000, "{key}: {ttl}");
    }
}

#[test]
fn three_instances_admit_exactly_the_limit() {
    let Some(server) = RedisServer::start() else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    runtime.block_on(async {
        // Three "servers", each with its own connection and store.
        let instances: Vec<Arc<RedisCounterStore>> =
            (0..3).map(|_| Arc::new(RedisCounterStore::new(connect(&server, options())))).collect();
        let key = unique("shared");
        let window = Duration::from_secs(3600);
        let now = SystemTime::now();
        let tasks: Vec<_> = (0..300)
            .map(|i| {
                let store = Arc::clone(&instances[i % 3]);
                let key = key.clone();
                tokio::spawn(async move { store.try_hit(&key, 100, window, now).await.unwrap() })
            })
            .collect();
        let mut decisions = Vec::new();
        for task in tasks {
            decisions.push(task.await.unwrap());
        }
        assert_eq!(decisions.iter().filter(|d| d.allowed).count(), 100);
        let mut used: Vec<u64> = decisions.iter().filter(|d| d.allowed).map(|d| d.used).collect();
        used.sort();
        assert_eq!(used, (1..=100).collect::<Vec<_>>());
        assert!(decisions.iter().filter(|d| !d.allowed).all(|d| d.used == 100 && d.remaining == 0));
        assert_eq!(instances[0].peek(&key, 100, window, now).await.used, 100);
    });
}

// ---------------------------------------------------------------------------
// Idempotency.

fn stored(fingerprint: &str, body: &[u8]) -> StoredResponse {
    StoredResponse {
        status: 201,
        headers: vec![("content-type".into(), "application/json".into()), ("x-custom".into(), "kept".into())],
        body: body.to_vec(),
        fingerprint: fingerprint.into(),
        // Now, to the millisecond (what Redis keeps): the in-memory store
        // expires records from it.
        created_at: UNIX_EPOCH
            + Duration::from_millis(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64),
    }
}

/// Claim, in progress, mismatch, complete, replay, abandon: for any two
/// stores over one shared state (two handles on one in-memory store, or
/// two instances on one Redis).
async fn check_idempotency(a: &dyn IdempotencyStore, b: &dyn IdempotencyStore) {
    let now = SystemTime::now();
    let scope = unique("alice\nkey");
    assert_eq!(a.begin(&scope, "f1", now).await, IdempotencyBegin::Started);
    assert_eq!(b.begin(&scope, "f1", now).await, IdempotencyBegin::InProgress);
    assert_eq!(b.begin(&scope, "f2", now).await, IdempotencyBegin::Mismatch);
    let response = stored("f1", b"{\"id\":1}\n\x00\xff");
    a.complete(&scope, response.clone()).await;
    assert_eq!(b.begin(&scope, "f1", now).await, IdempotencyBegin::Replay(response.clone()));
    assert_eq!(b.begin(&scope, "f2", now).await, IdempotencyBegin::Mismatch);
    // A stored response survives an abandon; a reservation does not.
    b.abandon(&scope).await;
    assert_eq!(a.begin(&scope, "f1", now).await, IdempotencyBegin::Replay(response));
    let other = unique("alice\nother");
    assert_eq!(b.begin(&other, "f1", now).await, IdempotencyBegin::Started);
    a.abandon(&other).await;
    assert_eq!(a.begin(&other, "f9", now).await, IdempotencyBegin::Started);
}

#[tokio::test]
async fn idempotency_across_two_instances_is_the_in_memory_behaviour() {
    let Some(server) = RedisServer::start() else { return };
    let memory = InMemoryIdempotencyStore::default();
    check_idempotency(&memory, &memory).await;
    let a = RedisIdempotencyStore::new(connect(&server, options()));
    let b = RedisIdempotencyStore::new(connect(&server, options()));
    check_idempotency(&a, &b).await;

    // Retention: a completed record lives for the TTL, a marker for the
    // in-progress TTL.
    let short = RedisIdempotencyStore::new(connect(&server, options()))
        .with_ttl(Duration::from_secs(30))
        .with_in_progress_ttl(Duration::from_secs(5));
    let mut direct = server.direct();
    let scope = unique("retention");
    assert_eq!(short.begin(&scope, "f", SystemTime::now()).await, IdempotencyBegin::Started);
    let ttl: i64 = redis::cmd("PTTL").arg(format!("test:idempotency:{scope}")).query(&mut direct).unwrap();
    assert!(ttl > 0 && ttl <= 5000, "{ttl}");
    short.complete(&scope, stored("f", b"x")).await;
    let ttl: i64 = redis::cmd("PTTL").arg(format!("test:idempotency:{scope}")).query(&mut direct).unwrap();
    assert!(ttl > 5000 && ttl <= 30_000, "{ttl}");
}

#[tokio::test]
async fn the_layer_replays_across_instances() {
    let Some(server) = RedisServer::start() else { return };
    let calls = Arc::new(AtomicUsize::new(0));
    let instance = |_: usize| {
        let store = Arc::new(RedisIdempotencyStore::new(connect(&server, options())));
        IdempotencyLayer::<Errors>::new(store, 1024).layer(counting_route(Arc::clone(&calls)))
    };
    let (a, b) = (instance(0), instance(1));
    let key = unique("k");
    let first = a.clone().oneshot(post(&key, "alice", "{\"q\":1}")).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let again = b.clone().oneshot(post(&key, "alice", "{\"q\":1}")).await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let (status, _, _) = json(again).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, body) = json(b.clone().oneshot(post(&key, "alice", "{\"q\":2}")).await.unwrap()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["details"]["reason"], "reused");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_retry_on_another_instance_while_running_is_409_with_retry_after() {
    let Some(server) = RedisServer::start() else { return };
    let (release, wait) = tokio::sync::oneshot::channel::<()>();
    let (entered, running) = tokio::sync::oneshot::channel::<()>();
    let gates = Arc::new(tokio::sync::Mutex::new(Some((entered, wait))));
    let slow = tower::service_fn(move |_request: Request| {
        let gates = Arc::clone(&gates);
        async move {
            if let Some((entered, wait)) = gates.lock().await.take() {
                entered.send(()).ok();
                wait.await.ok();
            }
            Ok::<_, Infallible>(StatusCode::OK.into_response())
        }
    });
    let a = IdempotencyLayer::<Errors>::new(Arc::new(RedisIdempotencyStore::new(connect(&server, options()))), 1024)
        .layer(slow);
    let b = IdempotencyLayer::<Errors>::new(Arc::new(RedisIdempotencyStore::new(connect(&server, options()))), 1024)
        .layer(ok_route());
    let key = unique("k");
    let first = tokio::spawn(a.oneshot(post(&key, "alice", "x")));
    running.await.unwrap();
    let (status, headers, body) = json(b.clone().oneshot(post(&key, "alice", "x")).await.unwrap()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(headers[header::RETRY_AFTER], "1");
    assert_eq!(body["error"]["details"]["reason"], "in_progress");
    release.send(()).unwrap();
    assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
}

#[test]
fn concurrent_claims_on_one_key_have_one_winner() {
    let Some(server) = RedisServer::start() else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    runtime.block_on(async {
        let stores: Vec<Arc<RedisIdempotencyStore>> =
            (0..2).map(|_| Arc::new(RedisIdempotencyStore::new(connect(&server, options())))).collect();
        let scope = unique("alice\nrace");
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let store = Arc::clone(&stores[i % 2]);
                let scope = scope.clone();
                tokio::spawn(async move { store.begin(&scope, "f", SystemTime::now()).await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        assert_eq!(outcomes.iter().filter(|o| **o == IdempotencyBegin::Started).count(), 1);
        assert_eq!(outcomes.iter().filter(|o| **o == IdempotencyBegin::InProgress).count(), 99);
    });
}

// ---------------------------------------------------------------------------
// Stream logs.

fn data(seq: u64) -> Bytes {
    Bytes::from(format!("{{\"seq\":{seq}}}"))
}

async fn seqs(
    log: &dyn StreamLog,
    stream: &str,
    after: Option<u64>,
    max: usize,
) -> Result<(Vec<u64>, bool), StreamLogError> {
    let read = log.read(stream, after, max).await?;
    Ok((read.events.iter().map(|e| e.seq).collect(), read.closed))
}

/// The stream-log contract, for any log whose `max_events` is 4.
async fn check_stream_log(log: &dyn StreamLog) {
    let s = unique("str");
    assert_eq!(log.read(&s, None, 10).await, Err(StreamLogError::Unknown));
    assert_eq!(log.append(&s, 1, data(1)).await, Err(StreamLogError::Unknown));
    for seq in 0..3 {
        log.append(&s, seq, data(seq)).await.unwrap();
    }
    log.append(&s, 1, Bytes::from_static(b"retry")).await.unwrap();
    assert_eq!(log.append(&s, 5, data(5)).await, Err(StreamLogError::OutOfOrder { seq: 5, expected: 3 }));
    let read = log.read(&s, None, 10).await.unwrap();
    assert_eq!(read.events.iter().map(|e| e.data.clone()).collect::<Vec<_>>(), [data(0), data(1), data(2)]);
    assert_eq!(seqs(log, &s, Some(0), 1).await, Ok((vec![1], false)));
    assert_eq!(seqs(log, &s, Some(2), 10).await, Ok((vec![], false)));
    assert_eq!(log.read(&s, Some(3), 10).await, Err(StreamLogError::NotInLog));
    // Four kept: after six appends, 0 and 1 are gone.
    for seq in 3..6 {
        log.append(&s, seq, data(seq)).await.unwrap();
    }
    assert_eq!(seqs(log, &s, Some(1), 10).await, Ok((vec![2, 3, 4, 5], false)));
    assert_eq!(log.read(&s, Some(0), 10).await, Err(StreamLogError::NotInLog));
    assert_eq!(log.read(&s, None, 10).await, Err(StreamLogError::NotInLog));
    log.close(&s).await.unwrap();
    log.close(&s).await.unwrap();
    assert_eq!(log.append(&s, 6, data(6)).await, Err(StreamLogError::Closed));
    log.append(&s, 5, data(5)).await.unwrap();
    assert_eq!(seqs(log, &s, Some(3), 10).await, Ok((vec![4, 5], true)));
    assert_eq!(seqs(log, &s, Some(3), 1).await, Ok((vec![4], false)));
    assert_eq!(seqs(log, &s, Some(5), 10).await, Ok((vec![], true)));
    assert_eq!(log.read(&s, Some(6), 10).await, Err(StreamLogError::NotInLog));
    // Waiting at the end of a closed stream returns at once.
    let started = Instant::now();
    let closed = log.wait(&s, Some(5), 10, Duration::from_secs(5)).await;
    assert_eq!(closed, Ok(StreamRead { events: vec![], closed: true }));
    assert!(started.elapsed() < Duration::from_secs(1));
    let empty = unique("empty");
    log.close(&empty).await.unwrap();
    assert_eq!(seqs(log, &empty, None, 10).await, Ok((vec![], true)));
    assert_eq!(log.append(&empty, 0, data(0)).await, Err(StreamLogError::Closed));

    // A wait returns at the timeout, or at the next event.
    let w = unique("wait");
    log.append(&w, 0, data(0)).await.unwrap();
    let started = Instant::now();
    assert_eq!(log.wait(&w, Some(0), 10, Duration::from_millis(100)).await.map(|r| r.events.len()), Ok(0));
    assert!(started.elapsed() >= Duration::from_millis(90), "{:?}", started.elapsed());
}

fn small_logs() -> StreamLogConfig {
    StreamLogConfig { max_events: 4, ..StreamLogConfig::default() }
}

#[tokio::test]
async fn the_stream_log_contract_holds_in_memory_and_in_redis() {
    let Some(server) = RedisServer::start() else { return };
    check_stream_log(&InMemoryStreamLog::new(small_logs())).await;
    check_stream_log(&RedisStreamLog::new(connect(&server, options()), small_logs())).await;

    // Keys expire: an open stream after open_ttl, a closed one after closed_ttl.
    let config = StreamLogConfig {
        open_ttl: Duration::from_secs(60),
        closed_ttl: Duration::from_secs(5),
        ..StreamLogConfig::default()
    };
    let log = RedisStreamLog::new(connect(&server, options()), config);
    let s = unique("ttl");
    log.append(&s, 0, data(0)).await.unwrap();
    let mut direct = server.direct();
    let ttl: i64 = redis::cmd("PTTL").arg(format!("test:stream:{s}")).query(&mut direct).unwrap();
    assert!(ttl > 5000 && ttl <= 60_000, "{ttl}");
    log.close(&s).await.unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg(format!("test:stream:{s}")).query(&mut direct).unwrap();
    assert!(ttl > 0 && ttl <= 5000, "{ttl}");
}

/// A producer on one instance, readers resuming on another from random
/// points while it runs: each gets exactly the events after its point.
#[test]
fn resume_on_another_instance_has_no_gap_and_no_duplicate() {
    let Some(server) = RedisServer::start() else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        const EVENTS: u64 = 600;
        let producer_log: Arc<dyn StreamLog> =
            Arc::new(RedisStreamLog::new(connect(&server, options()), StreamLogConfig::default()));
        let reader_log: Arc<dyn StreamLog> =
            Arc::new(RedisStreamLog::new(connect(&server, options()), StreamLogConfig::default()));
        let stream = unique("str");
        producer_log.append(&stream, 0, data(0)).await.unwrap();
        let producer = {
            let (log, stream) = (Arc::clone(&producer_log), stream.clone());
            tokio::spawn(async move {
                for seq in 1..EVENTS {
                    log.append(&stream, seq, data(seq)).await.unwrap();
                    if seq % 50 == 0 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                log.close(&stream).await.unwrap();
            })
        };
        let mut readers = Vec::new();
        for n in 0..8u64 {
            let (log, stream) = (Arc::clone(&reader_log), stream.clone());
            readers.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(n * 7)).await;
                let newest = log.read(&stream, None, usize::MAX).await.unwrap().events.len() as u64;
                let after = (newest - 1).checked_sub(n % 3);
                let events: Vec<(u64, Bytes)> = follow(log, stream.as_str(), after)
                    .await
                    .unwrap()
                    .map(|event| {
                        let event = event.unwrap();
                        (event.seq, event.data)
                    })
                    .collect()
                    .await;
                let from = after.map_or(0, |seq| seq + 1);
                assert_eq!(events.iter().map(|e| e.0).collect::<Vec<_>>(), (from..EVENTS).collect::<Vec<_>>());
                assert!(events.iter().all(|(seq, bytes)| *bytes == data(*seq)));
            }));
        }
        producer.await.unwrap();
        for reader in readers {
            reader.await.unwrap();
        }
        // A reader that comes after the end reads nothing more, and ends.
        let tail: Vec<_> = follow(reader_log, stream.as_str(), Some(EVENTS - 1)).await.unwrap().collect().await;
        assert!(tail.is_empty());
    });
}

/// More waiting readers than blocking connections: the others poll, and
/// every reader still gets every event, soon after it is appended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_beyond_the_blocking_connections_poll() {
    let Some(server) = RedisServer::start() else { return };
    let log: Arc<dyn StreamLog> = Arc::new(RedisStreamLog::new(
        connect(&server, options().max_blocking_connections(1)),
        StreamLogConfig::default(),
    ));
    let stream = unique("str");
    log.append(&stream, 0, data(0)).await.unwrap();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (log, stream) = (Arc::clone(&log), stream.clone());
            tokio::spawn(async move {
                let events = follow(log, stream.as_str(), Some(0)).await.unwrap();
                events.map(|event| event.unwrap().seq).collect::<Vec<_>>().await
            })
        })
        .collect();
    let started = Instant::now();
    for seq in 1..=5 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        log.append(&stream, seq, data(seq)).await.unwrap();
    }
    log.close(&stream).await.unwrap();
    for reader in readers {
        assert_eq!(reader.await.unwrap(), [1, 2, 3, 4, 5]);
    }
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

// ---------------------------------------------------------------------------
// Redis down, frozen, and back.

const BOUND: Duration = Duration::from_millis(1500);

async fn timed<T>(future: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(10), future).await.expect("a call hung");
    assert!(started.elapsed() < BOUND, "a call took {:?}", started.elapsed());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_follows_the_policy_in_bounded_time_and_recovers() {
    let Some(mut server) = RedisServer::start() else { return };
    let fast = options().timeout(Duration::from_millis(300)).cooldown(Duration::from_millis(200));
    let redis = connect(&server, fast);
    let open_limits = RateLimitLayer::<Errors>::new(
        RateLimitConfig::default().free(2),
        Arc::new(RedisCounterStore::new(redis.clone())),
    )
    .layer(ok_route());
    let closed_limits = RateLimitLayer::<Errors>::new(
        RateLimitConfig::default(),
        Arc::new(
            RedisCounterStore::new(redis.clone())
                .with_failure_policy(FailurePolicy::FailClosed { retry_after: Duration::from_secs(3) }),
        ),
    )
    .layer(ok_route());
    let calls = Arc::new(AtomicUsize::new(0));
    let idempotent = IdempotencyLayer::<Errors>::new(Arc::new(RedisIdempotencyStore::new(redis.clone())), 1024)
        .layer(counting_route(Arc::clone(&calls)));
    let log = RedisStreamLog::new(redis.clone(), StreamLogConfig::default());
    let stream = unique("str");
    log.append(&stream, 0, data(0)).await.unwrap();
    let alice = unique("alice");
    assert_eq!(open_limits.clone().oneshot(get(&alice, Tier::Free)).await.unwrap().status(), StatusCode::CREATED);

    // Each check, with Redis stopped and then frozen.
    async fn check_down(
        open_limits: &(impl Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone),
        closed_limits: &(impl Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone),
        idempotent: &(impl Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone),
        log: &RedisStreamLog,
        stream: &str,
        calls: &AtomicUsize,
    ) {
        for _ in 0..3 {
            // Rate limits fail open: admitted, counted locally (limit 2).
            let principal = unique("carol");
            for remaining in ["1", "0"] {
                let response = timed(open_limits.clone().oneshot(get(&principal, Tier::Free))).await.unwrap();
                assert_eq!(response.status(), StatusCode::CREATED);
                assert_eq!(response.headers()["x-ratelimit-remaining"], remaining);
            }
            let response = timed(open_limits.clone().oneshot(get(&principal, Tier::Free))).await.unwrap();
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);

            // Or closed, when so configured: 503 in the envelope.
            let (status, headers, body) =
                json(timed(closed_limits.clone().oneshot(get("dave", Tier::Pro))).await.unwrap()).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(headers[header::RETRY_AFTER], "3");
            assert_eq!(body["error"]["code"], "UNAVAILABLE");
            assert_eq!(body["error"]["details"]["reason"], "unavailable");
            assert!(!headers.contains_key("x-ratelimit-limit"));

            // Idempotency fails closed: 503, and the route does not run.
            let before = calls.load(Ordering::SeqCst);
            let (status, headers, body) =
                json(timed(idempotent.clone().oneshot(post(&unique("k"), "alice", "x"))).await.unwrap()).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(headers[header::RETRY_AFTER], "2");
            assert_eq!(body["error"]["code"], "UNAVAILABLE");
            assert_eq!(calls.load(Ordering::SeqCst), before);

            // The stream log answers Unavailable.
            for result in [
                timed(log.read(stream, Some(0), 10)).await,
                timed(log.wait(stream, Some(0), 10, Duration::from_millis(200))).await,
            ] {
                let Err(StreamLogError::Unavailable(unavailable)) = result else { panic!("{result:?}") };
                assert_eq!(unavailable.retry_after, Duration::from_secs(2));
            }
            assert!(matches!(timed(log.append(stream, 1, data(1))).await, Err(StreamLogError::Unavailable(_))));
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    server.stop();
    check_down(&open_limits, &closed_limits, &idempotent, &log, &stream, &calls).await;

    // Back: every store works again by itself, within a few seconds.
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if redis.ping().await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "no reconnection after the restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let response = idempotent.clone().oneshot(post(&unique("k"), "alice", "x")).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(closed_limits.clone().oneshot(get("dave", Tier::Pro)).await.unwrap().status(), StatusCode::CREATED);
    // The restarted Redis lost everything (no persistence): the stream is gone.
    assert_eq!(log.read(&stream, None, 10).await, Err(StreamLogError::Unknown));
    log.append(&stream, 0, data(0)).await.unwrap();

    // Frozen: connections stay open but nothing answers. Still bounded.
    server.signal("-STOP");
    check_down(&open_limits, &closed_limits, &idempotent, &log, &stream, &calls).await;
    server.signal("-CONT");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if redis.ping().await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery after the thaw");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seqs(&log, &stream, None, 10).await, Ok((vec![0], false)));
}

/// The client got its answer while Redis was away: the record must still
/// appear, so that its retry replays instead of waiting for the marker to
/// expire and then running again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_redis_missed_is_stored_once_it_is_back() {
    let Some(mut server) = RedisServer::start() else { return };
    let redis = connect(&server, options().timeout(Duration::from_millis(300)).cooldown(Duration::from_millis(100)));
    let store = RedisIdempotencyStore::new(redis.clone());
    let scope = unique("alice\nkey");
    assert_eq!(store.begin(&scope, "f1", SystemTime::now()).await, IdempotencyBegin::Started);
    server.stop();
    let response = stored("f1", b"{\"id\":7}");
    timed(store.complete(&scope, response.clone())).await;
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.begin(&scope, "f1", SystemTime::now()).await {
            IdempotencyBegin::Replay(found) => {
                assert_eq!(found, response);
                break;
            }
            other => assert!(Instant::now() < deadline, "the response was never stored: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_server_starts_while_redis_is_down() {
    let Some(mut server) = RedisServer::start() else { return };
    server.stop();
    let redis = connect(&server, options().timeout(Duration::from_millis(300)).cooldown(Duration::from_millis(100)));
    assert!(timed(redis.ping()).await.is_err());
    let store = RedisIdempotencyStore::new(redis.clone());
    assert!(matches!(timed(store.begin("s", "f", SystemTime::now())).await, IdempotencyBegin::Unavailable { .. }));
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis.ping().await.is_err() {
        assert!(Instant::now() < deadline, "never connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(store.begin(&unique("s"), "f", SystemTime::now()).await, IdempotencyBegin::Started);
}

// ---------------------------------------------------------------------------
// Latency on loopback (not a test: run it by hand).
//
// cargo test --release -p runagent-runtime-server --features redis --test redis_stores -- --ignored --nocapture

async fn percentiles<F: Future>(name: &str, n: usize, mut call: impl FnMut(usize) -> F) {
    for i in 0..200 {
        call(n + i).await;
    }
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        call(i).await;
        times.push(started.elapsed());
    }
    times.sort();
    let at = |q: f64| times[((n as f64 * q) as usize).min(n - 1)].as_nanos() as f64 / 1000.0;
    println!("{name:<40} p50 {:>7.1} µs  p99 {:>7.1} µs  ({n} sequential calls)", at(0.5), at(0.99));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test"]
async fn measure_store_calls() {
    let Some(server) = RedisServer::start() else { return };
    const N: usize = 5000;
    let redis = connect(&server, options());
    let window = Duration::from_secs(3600);
    let counters = RedisCounterStore::new(redis.clone());
    percentiles("RedisCounterStore::try_hit", N, |_| counters.try_hit("k", u64::MAX, window, SystemTime::now())).await;
    percentiles("RedisCounterStore::peek", N, |_| counters.peek("k", u64::MAX, window, SystemTime::now())).await;
    let memory = InMemoryCounterStore::new();
    percentiles("InMemoryCounterStore::try_hit", N, |_| memory.try_hit("k", u64::MAX, window, SystemTime::now())).await;

    let records = RedisIdempotencyStore::new(redis.clone());
    let scopes: Vec<String> = (0..N + 200).map(|i| format!("alice\nkey{i}")).collect();
    percentiles("RedisIdempotencyStore::begin (claim)", N, |i| records.begin(&scopes[i], "f", SystemTime::now())).await;
    let body = vec![b'x'; 1024];
    percentiles("RedisIdempotencyStore::complete (1 KiB)", N, |i| {
        let mut response = stored("f", &body);
        response.created_at = SystemTime::now();
        records.complete(&scopes[i], response)
    })
    .await;
    percentiles("RedisIdempotencyStore::begin (replay)", N, |i| records.begin(&scopes[i], "f", SystemTime::now()))
        .await;

    let log = RedisStreamLog::new(redis.clone(), StreamLogConfig::default());
    let stream = unique("str");
    let payload = Bytes::from(vec![b'y'; 100]);
    percentiles("RedisStreamLog::append (100 B)", N + 200, |i| {
        // The warm-up calls come first with the highest numbers; number
        // them all in order instead.
        let seq = if i >= N + 200 { (i - N - 200) as u64 } else { i as u64 + 200 };
        log.append(&stream, seq, payload.clone())
    })
    .await;
    // Every append went in, in order.
    let last = (N + 399) as u64;
    assert_eq!(log.read(&stream, Some(last - 1), 10).await.unwrap().events[0].seq, last);
    assert_eq!(log.read(&stream, Some(last), 10).await.unwrap().events.len(), 0);
    percentiles("RedisStreamLog::read (16 events)", N, |i| log.read(&stream, Some((i % 5000) as u64), 16)).await;

    // Throughput: 3 instances, 64 concurrent callers each.
    let instances: Vec<Arc<RedisCounterStore>> =
        (0..3).map(|_| Arc::new(RedisCounterStore::new(connect(&server, options())))).collect();
    let started = Instant::now();
    let tasks: Vec<_> = (0..192)
        .map(|t| {
            let store = Arc::clone(&instances[t % 3]);
            tokio::spawn(async move {
                for _ in 0..200 {
                    store.try_hit("busy", u64::MAX, window, SystemTime::now()).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "RedisCounterStore::try_hit, 3 instances x 64 callers: {:.0} calls/s ({} calls in {elapsed:?})",
        38_400.0 / elapsed.as_secs_f64(),
        38_400
    );
}
