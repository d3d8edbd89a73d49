//! The servers of the server benchmark (the peer stack is in `peer.rs`),
//! and the fast server of the client benchmark: runagent-server's generated router with an echo
//! implementation, and the hand-written axum handler a user would write
//! instead. Both answer an invocation with the same JSON.

use crate::{API_KEY, ServerKind};
use axum::Json;
use axum::extract::Path;
use axum::routing::post;
use runagent_server::types::{InvokeMetadata, InvokeRequest, InvokeResponse, InvokeResult, SuccessStatus};
use runagent_server::{
    ApiFailure, InvokeAgentParams, InvokeAgentResponse, RateLimitConfig, RedisConnection, RedisCounterStore,
    RedisIdempotencyStore, RedisOptions, RequestContext, RouterBuilder, RunAgentApi, ServerConfig, StaticKeys, Tier,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::Arc;

/// The echo agent: the answer is the query, the token count its words.
pub(crate) fn tokens(query: &str) -> i64 {
    query.split_whitespace().count() as i64
}

/// The generated server's implementation: `invokeAgent`, answered in
/// memory so that the benchmark measures the router and not an agent, and
/// `streamAgentGet` for the open-streams benchmark (`streams.rs`).
struct EchoApi {
    log: std::sync::Arc<runagent_server::InMemoryStreamLog>,
}

impl RunAgentApi for EchoApi {
    async fn stream_agent_get(
        &self,
        _ctx: RequestContext,
        _params: runagent_server::StreamAgentGetParams,
    ) -> Result<runagent_server::StreamAgentGetResponse, ApiFailure> {
        crate::streams::generated_stream(std::sync::Arc::clone(&self.log)).await
    }

    async fn invoke_agent(
        &self,
        _ctx: RequestContext,
        _params: InvokeAgentParams,
        body: InvokeRequest,
    ) -> Result<InvokeAgentResponse, ApiFailure> {
        let tokens_used = tokens(&body.query);
        Ok(InvokeAgentResponse::Ok(InvokeResponse {
            status: SuccessStatus::Success,
            data: InvokeResult { result: body.query, metadata: InvokeMetadata { execution_time: 0.0, tokens_used } },
        }))
    }
}

/// The generated router as a deployment would configure it, except for an
/// enterprise limit high enough that the benchmark never hits a 429: the
/// limiter still counts every request.
pub fn generated_router() -> axum::Router {
    generated_builder().build()
}

fn generated_builder() -> RouterBuilder<EchoApi, StaticKeys> {
    let keys = StaticKeys::new().with_key(API_KEY, "bench", Tier::Enterprise);
    let config = ServerConfig::default().rate_limit(RateLimitConfig::default().enterprise(u64::MAX / 2));
    RouterBuilder::new(EchoApi { log: crate::streams::stream_log() }, keys).config(config)
}

/// The same router with its counter and idempotency stores in the Redis at
/// `url`, as several instances would run it: the one difference between
/// the two sides of the Redis row. Must be called inside a tokio runtime.
pub fn generated_router_on_redis(url: &str) -> Result<axum::Router, String> {
    let redis = RedisConnection::open(url, RedisOptions::default().key_prefix("bench:")).map_err(|e| e.to_string())?;
    Ok(generated_builder()
        .counter_store(Arc::new(RedisCounterStore::new(redis.clone())))
        .idempotency_store(Arc::new(RedisIdempotencyStore::new(redis)))
        .build())
}

/// The request as a hand-written server would declare it: the same fields
/// as `InvokeRequest`, without the spec's validation.
#[derive(Deserialize)]
struct MinimalRequest {
    query: String,
    #[serde(default)]
    #[allow(dead_code)]
    parameters: Option<MinimalParameters>,
    #[serde(default)]
    #[allow(dead_code)]
    session_id: Option<String>,
    #[serde(default, rename = "async")]
    #[allow(dead_code)]
    async_: Option<bool>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct MinimalParameters {
    temperature: Option<f64>,
    max_tokens: Option<i32>,
    timeout_seconds: Option<i32>,
    #[serde(flatten)]
    extra: BTreeMap<String, serde_json::Value>,
}

#[derive(Serialize)]
struct MinimalResponse {
    status: &'static str,
    data: MinimalResult,
}

#[derive(Serialize)]
struct MinimalResult {
    result: String,
    metadata: MinimalMetadata,
}

#[derive(Serialize)]
struct MinimalMetadata {
    execution_time: f64,
    tokens_used: i64,
}

async fn minimal_invoke(Path(_agent_id): Path<String>, Json(body): Json<MinimalRequest>) -> Json<MinimalResponse> {
    let tokens_used = tokens(&body.query);
    Json(MinimalResponse {
        status: "success",
        data: MinimalResult { result: body.query, metadata: MinimalMetadata { execution_time: 0.0, tokens_used } },
    })
}

/// The hand-written alternative: one axum route, axum's `Json` extractor,
/// serde-derived structs.
pub fn minimal_router() -> axum::Router {
    axum::Router::new().route("/v1/agents/{agent_id}/invoke", post(minimal_invoke))
}

/// The minimal SSE handler of the open-streams benchmark, on the generated
/// router's path.
pub fn minimal_sse_router() -> axum::Router {
    axum::Router::new().route("/v1/agents/{agent_id}/stream", axum::routing::get(crate::streams::minimal_stream))
}

/// Serves the chosen router on an ephemeral loopback port, prints
/// `listening http://127.0.0.1:PORT` and runs until stdin closes, so that a
/// crashed xtask never leaves a server behind.
pub fn serve(kind: ServerKind, threads: usize, redis: Option<String>) -> Result<(), String> {
    crate::streams::raise_nofile();
    std::thread::spawn(|| {
        let mut sink = String::new();
        while std::io::stdin().lock().read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
        std::process::exit(0);
    });
    crate::runtime(threads)?.block_on(async move {
        let app = match (kind, redis) {
            (ServerKind::Generated, None) => generated_router(),
            (ServerKind::Generated, Some(url)) => generated_router_on_redis(&url)?,
            (ServerKind::Minimal, _) => minimal_router(),
            (ServerKind::Peer, _) => crate::peer::peer_router(),
            (ServerKind::MinimalSse, _) => minimal_sse_router(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot bind a loopback port: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        println!("listening http://127.0.0.1:{port}");
        std::io::stdout().flush().map_err(|e| e.to_string())?;
        // Every kind is served the same way, through `into_make_service`,
        // which shares the route table between connections; given the
        // router itself, axum rebuilds the table for every connection and
        // the connection keeps the copy (a cost that grows with the routes,
        // which the open-streams row would otherwise measure).
        axum::serve(listener, app.into_make_service()).await.map_err(|e| format!("the server failed: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AGENT_ID, INVOKE_BODY};
    use tower::ServiceExt;

    async fn answer(router: axum::Router) -> (u16, serde_json::Value) {
        let request = axum::http::Request::post(format!("/v1/agents/{AGENT_ID}/invoke"))
            .header("authorization", format!("Bearer {API_KEY}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(INVOKE_BODY))
            .unwrap();
        let response = router.oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn the_servers_give_the_same_answer() {
        let (a, b) = (answer(generated_router()).await, answer(minimal_router()).await);
        assert_eq!(a.0, 200, "{}", a.1);
        assert_eq!(a, b);
        assert_eq!(answer(crate::peer::peer_router()).await, a);
        assert_eq!(a.1["data"]["result"], "Summarise the support tickets of this week");
    }
}
