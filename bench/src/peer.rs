//! The peer of the server benchmark: what a user would assemble instead of
//! the generated router to get the same jobs done with the usual crates.
//! axum with tower-http's request-id (set and propagate `X-Request-Id`) and
//! body-limit layers, a bearer-key middleware, `tower_governor` for a rate
//! limit per key (with its `X-RateLimit-*` headers), and `validator` on the
//! same request type as the spec's (lengths, ranges, the agent id's
//! pattern). It answers the same JSON as the other two servers.

use crate::API_KEY;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::KeyExtractor;
use validator::Validate;

/// The agent id's pattern, as the spec gives it.
static AGENT_ID: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new("^agt_[A-Za-z0-9]{1,64}$").expect("a valid pattern"));

/// The path, validated.
#[derive(Deserialize, Validate)]
struct InvokePath {
    #[validate(regex(path = *AGENT_ID))]
    agent_id: String,
}

/// The request with the spec's constraints, as `validator` spells them.
#[derive(Deserialize, Validate)]
#[serde(deny_unknown_fields)]
struct PeerRequest {
    #[validate(length(min = 1, max = 10000))]
    query: String,
    #[serde(default)]
    #[validate(nested)]
    parameters: Option<PeerParameters>,
    #[serde(default)]
    #[validate(length(min = 1, max = 128))]
    session_id: Option<String>,
    #[serde(default, rename = "async")]
    #[allow(dead_code)]
    async_: Option<bool>,
}

#[derive(Deserialize, Validate)]
#[allow(dead_code)]
struct PeerParameters {
    #[validate(range(min = 0.0, max = 2.0))]
    temperature: Option<f64>,
    #[validate(range(min = 1, max = 100000))]
    max_tokens: Option<i32>,
    #[validate(range(min = 1, max = 300))]
    timeout_seconds: Option<i32>,
    #[serde(flatten)]
    extra: BTreeMap<String, serde_json::Value>,
}

#[derive(Serialize)]
struct PeerResponse {
    status: &'static str,
    data: PeerResult,
}

#[derive(Serialize)]
struct PeerResult {
    result: String,
    metadata: PeerMetadata,
}

#[derive(Serialize)]
struct PeerMetadata {
    execution_time: f64,
    tokens_used: i64,
}

/// Who a key belongs to, as the auth middleware leaves it in the request.
#[derive(Clone)]
#[allow(dead_code)]
struct User {
    id: String,
    tier: &'static str,
}

type Keys = Arc<HashMap<String, User>>;

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"status": "error", "error": {"code": code, "message": message}});
    (status, Json(body)).into_response()
}

/// The auth middleware: the bearer key must be known.
async fn authenticate(State(keys): State<Keys>, mut request: Request, next: Next) -> Response {
    let Some(user) = bearer(request.headers()).and_then(|key| keys.get(key)).cloned() else {
        return refuse(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "A valid API key is required.");
    };
    request.extensions_mut().insert(user);
    next.run(request).await
}

/// The rate limit's key: the caller's bearer key.
#[derive(Clone)]
struct BearerKey;

impl KeyExtractor for BearerKey {
    type Key = String;

    fn extract<T>(&self, request: &axum::http::Request<T>) -> Result<String, tower_governor::GovernorError> {
        bearer(request.headers()).map(str::to_owned).ok_or(tower_governor::GovernorError::UnableToExtractKey)
    }
}

async fn invoke(Path(path): Path<InvokePath>, Json(body): Json<PeerRequest>) -> Response {
    if let Err(errors) = path.validate() {
        return refuse(StatusCode::BAD_REQUEST, "INVALID_INPUT", &errors.to_string());
    }
    if let Err(errors) = body.validate() {
        return refuse(StatusCode::BAD_REQUEST, "INVALID_INPUT", &errors.to_string());
    }
    let tokens_used = crate::servers::tokens(&body.query);
    Json(PeerResponse {
        status: "success",
        data: PeerResult { result: body.query, metadata: PeerMetadata { execution_time: 0.0, tokens_used } },
    })
    .into_response()
}

/// The peer router. The rate limit is per key and, like the generated
/// router's in the benchmark, too high to reach: it still counts every
/// request.
pub fn peer_router() -> Router {
    let keys: Keys = Arc::new(HashMap::from([(API_KEY.to_owned(), User { id: "bench".into(), tier: "enterprise" })]));
    let governor = GovernorConfigBuilder::default()
        .per_nanosecond(1)
        .burst_size(u32::MAX)
        .key_extractor(BearerKey)
        .use_headers()
        .finish()
        .expect("a valid rate-limit configuration");
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    Router::new()
        .route("/v1/agents/{agent_id}/invoke", post(invoke))
        // Layers run outermost last: request id, body limit, auth, then the
        // rate limit (which needs the key auth checked) around the handler.
        .layer(GovernorLayer::new(governor))
        .layer(middleware::from_fn_with_state(keys, authenticate))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(1 << 20))
        .layer(tower_http::request_id::PropagateRequestIdLayer::new(request_id.clone()))
        .layer(tower_http::request_id::SetRequestIdLayer::new(request_id, tower_http::request_id::MakeRequestUuid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AGENT_ID, INVOKE_BODY};
    use tower::ServiceExt;

    async fn status(key: Option<&str>, agent: &str, body: &str) -> u16 {
        let mut request = axum::http::Request::post(format!("/v1/agents/{agent}/invoke"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap();
        if let Some(key) = key {
            request.headers_mut().insert("authorization", format!("Bearer {key}").parse().unwrap());
        }
        let response = peer_router().oneshot(request).await.unwrap();
        assert!(response.headers().contains_key("x-request-id"));
        response.status().as_u16()
    }

    /// The peer does the jobs it stands in for: auth, validation.
    #[tokio::test]
    async fn the_peer_authenticates_and_validates() {
        assert_eq!(status(Some(API_KEY), AGENT_ID, INVOKE_BODY).await, 200);
        assert_eq!(status(None, AGENT_ID, INVOKE_BODY).await, 401);
        assert_eq!(status(Some("nope"), AGENT_ID, INVOKE_BODY).await, 401);
        assert_eq!(status(Some(API_KEY), "bad-id", INVOKE_BODY).await, 400);
        assert_eq!(status(Some(API_KEY), AGENT_ID, r#"{"query":""}"#).await, 400);
        assert_eq!(status(Some(API_KEY), AGENT_ID, r#"{"query":"q","parameters":{"temperature":3}}"#).await, 400);
    }
}
