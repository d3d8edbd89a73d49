//! The runtime driven through the generator's real router (a snapshot of
//! generated/server), as a user of the crate would.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use runagent_server::types::{InvokeRequest, InvokeResponse, UsageResponse};
use runagent_server::*;
use serde_json::{Value, json};
use tower::ServiceExt;

#[derive(Default, Clone)]
struct Server {
    invocations: Arc<AtomicUsize>,
}

impl RunAgentApi for Server {
    async fn get_health(
        &self,
        _ctx: RequestContext,
        _params: GetHealthParams,
    ) -> Result<GetHealthResponse, ApiFailure> {
        let body = serde_json::from_value(
            json!({"status": "success", "data": {"healthy": true, "version": "1.0.0", "uptime_seconds": 1}}),
        )
        .map_err(|e| ApiFailure::internal(e.to_string()))?;
        Ok(GetHealthResponse::Ok(body))
    }

    async fn get_usage(&self, ctx: RequestContext, _params: GetUsageParams) -> Result<GetUsageResponse, ApiFailure> {
        let status = ctx.rate_limit.ok_or_else(|| ApiFailure::internal("no rate limit"))?;
        let body: UsageResponse = serde_json::from_value(json!({"status": "success", "data": {
            "tier": status.tier.as_str(), "limit": status.limit, "used": status.used,
            "remaining": status.remaining, "reset": status.reset, "window_seconds": status.window_seconds,
        }}))
        .map_err(|e| ApiFailure::internal(e.to_string()))?;
        Ok(GetUsageResponse::Ok(body))
    }

    async fn invoke_agent(
        &self,
        _ctx: RequestContext,
        params: InvokeAgentParams,
        body: InvokeRequest,
    ) -> Result<InvokeAgentResponse, ApiFailure> {
        if params.agent_id == "agt_missing" {
            return Err(ApiFailure::not_found("Agent agt_missing not found.").with_field("agent_id", "not_found"));
        }
        let n = self.invocations.fetch_add(1, Ordering::SeqCst) + 1;
        let body: InvokeResponse = serde_json::from_value(json!({"status": "success", "data": {
            "result": format!("#{n}: {}", body.query), "metadata": {"execution_time": 0.01, "tokens_used": 1},
        }}))
        .map_err(|e| ApiFailure::internal(e.to_string()))?;
        Ok(InvokeAgentResponse::Ok(body))
    }

    async fn stream_agent_get(
        &self,
        _ctx: RequestContext,
        params: StreamAgentGetParams,
    ) -> Result<StreamAgentGetResponse, ApiFailure> {
        let start = serde_json::from_value(
            json!({"stream_id": "str_1", "agent_id": params.agent_id, "created_at": "2025-01-15T10:40:00Z"}),
        )
        .unwrap();
        let chunk = serde_json::from_value(json!({"index": 0, "text": params.query})).unwrap();
        let done = serde_json::from_value(
            json!({"result": params.query, "metadata": {"execution_time": 0.01, "tokens_used": 1}}),
        )
        .unwrap();
        let items = vec![
            SseItem::new("str_1:0", StreamAgentGetEvent::Start(start)).with_retry(Duration::from_secs(3)),
            SseItem::new("str_1:1", StreamAgentGetEvent::Chunk(chunk)),
            SseItem::new("str_1:2", StreamAgentGetEvent::Done(done)),
        ];
        Ok(StreamAgentGetResponse::Ok(EventStream::new(futures::stream::iter(items))))
    }
}

fn keys() -> StaticKeys {
    StaticKeys::new().with_key("sk_pro", "user_pro", Tier::Pro).with_key("sk_free", "user_free", Tier::Free)
}

fn app_with(server: Server, config: ServerConfig) -> Router {
    router(server, keys(), config)
}

fn app() -> Router {
    app_with(Server::default(), ServerConfig::default().body_limit(2048))
}

fn request(method: &str, path: &str, key: Option<&str>, body: Option<(&str, &str)>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(key) = key {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    match body {
        Some((content_type, body)) => {
            if !content_type.is_empty() {
                builder = builder.header(header::CONTENT_TYPE, content_type);
            }
            builder.body(Body::from(body.to_owned())).unwrap()
        }
        None => builder.body(Body::empty()).unwrap(),
    }
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Value,
    text: String,
}

async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert!(parts.headers.contains_key("x-request-id"), "every response has X-Request-Id");
    let is_json = parts.headers.get(header::CONTENT_TYPE).is_some_and(|v| v == "application/json");
    let body = if is_json { serde_json::from_slice(&bytes).unwrap() } else { Value::Null };
    Answer { status: parts.status, headers: parts.headers, body, text }
}

/// Checks an error answer: status, JSON envelope, code and details.
fn assert_error(answer: &Answer, status: StatusCode, code: &str, details: Value) {
    assert_eq!(answer.status, status, "{}", answer.text);
    assert_eq!(answer.headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(answer.body["status"], "error");
    assert_eq!(answer.body["error"]["code"], code, "{}", answer.text);
    assert!(answer.body["error"]["message"].is_string());
    if !details.is_null() || answer.body["error"]["details"].is_null() {
        assert_eq!(answer.body["error"]["details"], details, "{}", answer.text);
    }
}

const INVOKE: &str = "/v1/agents/agt_1/invoke";

#[tokio::test]
async fn invoke_accepts_a_valid_request() {
    let app = app();
    let answer =
        send(&app, request("POST", INVOKE, Some("sk_pro"), Some(("application/json", r#"{"query":"hi"}"#)))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.body["data"]["result"], "#1: hi");
    assert_eq!(answer.headers["x-ratelimit-limit"], "1000");
    assert_eq!(answer.headers["x-ratelimit-remaining"], "999");
}

#[tokio::test]
async fn body_rejections_use_the_envelope() {
    let app = app();
    let cases: Vec<(&str, &str, Value)> = vec![
        ("application/json", r#"{"query": "hi""#, Value::Null),
        ("", r#"{"query":"hi"}"#, json!({"field": "body", "reason": "content_type"})),
        ("text/plain", r#"{"query":"hi"}"#, json!({"field": "body", "reason": "content_type"})),
        ("application/x-www-form-urlencoded", "query=hi", json!({"field": "body", "reason": "content_type"})),
        ("application/json", "", json!({"field": "body", "reason": "empty"})),
        ("application/json", r#"{}"#, json!({"field": "query", "reason": "missing"})),
        ("application/json", r#"{"query": 5}"#, json!({"field": "query", "reason": "invalid_type"})),
        ("application/json", r#"{"query": "hi", "bogus": 1}"#, json!({"field": "bogus", "reason": "unknown_field"})),
        ("application/json", r#"["hi"]"#, json!({"field": "body", "reason": "invalid_type"})),
        ("application/json", r#"{"query": ""}"#, json!({"field": "query", "reason": "too_short"})),
        (
            "application/json",
            r#"{"query": "hi", "parameters": {"temperature": 9}}"#,
            json!({"field": "parameters.temperature", "reason": "maximum"}),
        ),
        ("application/json", r#"{"query": "hi", "async": "yes"}"#, json!({"field": "async", "reason": "invalid_type"})),
    ];
    for (content_type, body, details) in cases {
        let answer = send(&app, request("POST", INVOKE, Some("sk_pro"), Some((content_type, body)))).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "INVALID_INPUT", details);
        assert_eq!(answer.headers["x-ratelimit-limit"], "1000", "rejections are counted too");
    }
    let answer =
        send(&app, request("POST", INVOKE, Some("sk_pro"), Some(("application/json", r#"{"query": "hi""#)))).await;
    assert_eq!(answer.body["error"]["details"]["reason"], "malformed_json");
    assert_eq!(answer.body["error"]["details"]["field"], "body");
}

#[tokio::test]
async fn nested_wrong_types_name_their_path() {
    let app = app();
    let body = r#"{"query": "hi", "parameters": {"temperature": "hot"}}"#;
    let answer = send(&app, request("POST", INVOKE, Some("sk_pro"), Some(("application/json", body)))).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    println!("nested wrong type: {}", answer.text);
    let body = r#"{"query": "hi", "parameters": [1]}"#;
    let answer = send(&app, request("POST", INVOKE, Some("sk_pro"), Some(("application/json", body)))).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "INVALID_INPUT", Value::Null);
    println!("parameters as array: {}", answer.text);
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = app();
    let big = format!(r#"{{"query": "{}"}}"#, "x".repeat(4096));
    let answer = send(&app, request("POST", INVOKE, Some("sk_pro"), Some(("application/json", &big)))).await;
    assert_error(
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        json!({"field": "body", "reason": "too_large", "limit_bytes": 2048}),
    );
    let mut with_key = request("POST", INVOKE, Some("sk_pro"), Some(("application/json", &big)));
    with_key.headers_mut().insert("idempotency-key", "k-big".parse().unwrap());
    let answer = send(&app, with_key).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let app = app();
    for path in ["/v1/nope", "/v1/agents/agt_1/nope", "/", "/v2/agents", "/v1/agents/"] {
        let answer = send(&app, request("GET", path, Some("sk_pro"), None)).await;
        assert_error(&answer, StatusCode::NOT_FOUND, "NOT_FOUND", Value::Null);
    }
    let cases = [
        ("DELETE", "/v1/agents", "GET, POST"),
        ("PATCH", "/v1/agents/agt_1", "GET, PUT, DELETE"),
        ("GET", INVOKE, "POST"),
        ("POST", "/v1/health", "GET"),
        ("TRACE", "/v1/usage", "GET"),
    ];
    for (method, path, allow) in cases {
        for key in [Some("sk_pro"), None] {
            let answer = send(&app, request(method, path, key, None)).await;
            assert_error(&answer, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", Value::Null);
            assert_eq!(answer.headers[header::ALLOW], allow);
        }
    }
}

#[tokio::test]
async fn keys_are_required_on_secured_routes_only() {
    let app = app();
    for key in [None, Some("sk_nope")] {
        let answer = send(&app, request("GET", "/v1/usage", key, None)).await;
        assert_error(&answer, StatusCode::UNAUTHORIZED, "UNAUTHORIZED", Value::Null);
        assert_eq!(answer.headers[header::WWW_AUTHENTICATE], "Bearer realm=\"runagent\"");
        assert!(!answer.headers.contains_key("x-ratelimit-limit"));
    }
    let mut basic = request("GET", "/v1/usage", None, None);
    basic.headers_mut().insert(header::AUTHORIZATION, "Basic Zm9vOmJhcg==".parse().unwrap());
    assert_eq!(send(&app, basic).await.status, StatusCode::UNAUTHORIZED);
    let answer = send(&app, request("GET", "/v1/health", None, None)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert!(!answer.headers.contains_key("x-ratelimit-limit"), "health is not rate limited");
}

#[tokio::test]
async fn usage_reports_the_window_and_counts_down() {
    let app = app();
    for used in 1..=3u64 {
        let answer = send(&app, request("GET", "/v1/usage", Some("sk_free"), None)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert_eq!(answer.body["data"]["tier"], "free");
        assert_eq!(answer.body["data"]["used"], used);
        assert_eq!(answer.body["data"]["remaining"], 100 - used);
        assert_eq!(answer.body["data"]["window_seconds"], 3600);
        assert_eq!(answer.headers["x-ratelimit-remaining"], (100 - used).to_string().as_str());
        assert_eq!(answer.headers["x-ratelimit-reset"].to_str().unwrap(), answer.body["data"]["reset"].to_string());
    }
}

#[test]
fn fifty_concurrent_requests_admit_exactly_the_limit() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    runtime.block_on(async {
        let config = ServerConfig::default().rate_limit(RateLimitConfig::default().free(20));
        let app = app_with(Server::default(), config);
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move { send(&app, request("GET", "/v1/usage", Some("sk_free"), None)).await })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        let ok: Vec<_> = answers.iter().filter(|a| a.status == StatusCode::OK).collect();
        let limited: Vec<_> = answers.iter().filter(|a| a.status == StatusCode::TOO_MANY_REQUESTS).collect();
        assert_eq!((ok.len(), limited.len()), (20, 30));
        let mut remaining: Vec<u64> =
            ok.iter().map(|a| a.headers["x-ratelimit-remaining"].to_str().unwrap().parse().unwrap()).collect();
        remaining.sort_unstable();
        assert_eq!(remaining, (0..20).collect::<Vec<_>>(), "each admitted request saw its own count");
        for answer in limited {
            assert_error(answer, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", Value::Null);
            assert_eq!(answer.headers["x-ratelimit-remaining"], "0");
            let retry: u64 = answer.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
            assert!(retry >= 1);
        }
    });
}

#[tokio::test]
async fn idempotent_retries_replay_and_conflict() {
    let server = Server::default();
    let app = app_with(server.clone(), ServerConfig::default());
    let post = |key: &str, body: &str| {
        let mut request = request("POST", INVOKE, Some("sk_pro"), Some(("application/json", body)));
        request.headers_mut().insert("idempotency-key", key.parse().unwrap());
        request
    };
    let first = send(&app, post("key-1", r#"{"query":"hi"}"#)).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(!first.headers.contains_key("idempotent-replayed"));
    let replay = send(&app, post("key-1", r#"{"query":"hi"}"#)).await;
    assert_eq!(replay.status, StatusCode::OK);
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(replay.text, first.text);
    assert_ne!(replay.headers["x-request-id"], first.headers["x-request-id"]);
    assert_eq!(replay.headers["x-ratelimit-remaining"], "998", "a replay counts and has fresh headers");
    assert_eq!(server.invocations.load(Ordering::SeqCst), 1);
    let conflict = send(&app, post("key-1", r#"{"query":"bye"}"#)).await;
    assert_error(&conflict, StatusCode::CONFLICT, "CONFLICT", json!({"field": "Idempotency-Key", "reason": "reused"}));
    // A 404 is stored and replayed too; a bad key is a 400.
    let mut missing = post("key-2", r#"{"query":"hi"}"#);
    *missing.uri_mut() = "/v1/agents/agt_missing/invoke".parse().unwrap();
    assert_eq!(send(&app, missing).await.status, StatusCode::NOT_FOUND);
    let long = "k".repeat(300);
    let answer = send(&app, post(&long, r#"{"query":"hi"}"#)).await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "INVALID_INPUT",
        json!({"field": "Idempotency-Key", "reason": "too_long"}),
    );
    assert_eq!(server.invocations.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn streams_are_framed_and_end() {
    let app = app();
    let answer = send(&app, request("GET", "/v1/agents/agt_1/stream?query=Hello%20you", Some("sk_pro"), None)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers[header::CONTENT_TYPE], "text/event-stream");
    assert_eq!(answer.headers[header::CACHE_CONTROL], "no-cache");
    assert_eq!(answer.headers["x-ratelimit-limit"], "1000");
    let expected = concat!(
        "event: start\nid: str_1:0\nretry: 3000\ndata: {\"stream_id\":\"str_1\",\"agent_id\":\"agt_1\",\"created_at\":\"2025-01-15T10:40:00Z\"}\n\n",
        "event: chunk\nid: str_1:1\ndata: {\"index\":0,\"text\":\"Hello you\"}\n\n",
        "event: done\nid: str_1:2\ndata: {\"result\":\"Hello you\",\"metadata\":{\"execution_time\":0.01,\"tokens_used\":1}}\n\n",
    );
    assert_eq!(answer.text, expected);
    let answer = send(&app, request("GET", "/v1/agents/agt_1/stream", Some("sk_pro"), None)).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "INVALID_INPUT", json!({"field": "query", "reason": "missing"}));
    let answer = send(&app, request("GET", "/v1/agents/agt_1/stream?query=a&query=b", Some("sk_pro"), None)).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "INVALID_INPUT", json!({"field": "query", "reason": "duplicate"}));
    let answer = send(&app, request("GET", "/v1/agents?page=zero", Some("sk_pro"), None)).await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "INVALID_INPUT",
        json!({"field": "page", "reason": "invalid_value"}),
    );
    let answer = send(&app, request("GET", "/v1/agents?limit=0", Some("sk_pro"), None)).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "INVALID_INPUT", json!({"field": "limit", "reason": "minimum"}));
}

#[tokio::test]
async fn request_ids_are_echoed_or_made() {
    let app = app();
    let mut with_id = request("GET", "/v1/health", None, None);
    with_id.headers_mut().insert("x-request-id", "trace-abc".parse().unwrap());
    assert_eq!(send(&app, with_id).await.headers["x-request-id"], "trace-abc");
    let answer = send(&app, request("GET", "/v1/nope", None, None)).await;
    assert!(answer.headers["x-request-id"].to_str().unwrap().starts_with("req_"));
}

#[tokio::test]
async fn unimplemented_operations_and_path_checks() {
    let app = app();
    let answer = send(&app, request("GET", "/v1/agents", Some("sk_pro"), None)).await;
    assert_error(&answer, StatusCode::NOT_IMPLEMENTED, "NOT_IMPLEMENTED", Value::Null);
    let answer = send(&app, request("GET", "/v1/agents/bad%20id", Some("sk_pro"), None)).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "INVALID_INPUT", json!({"field": "agent_id", "reason": "pattern"}));
    let answer = send(&app, request("GET", "/v1/agents/agt_1/status", Some("sk_pro"), None)).await;
    assert_eq!(answer.headers["deprecation"], "@1751328000");
    assert_eq!(answer.headers["sunset"], "Wed, 30 Jun 2027 00:00:00 GMT");
}
