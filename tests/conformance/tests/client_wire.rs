//! End-to-end tests of the runtime through the public API (with the stand-in
//! operation builders), against a scripted loopback server built on tokio
//! (`scripted/mod.rs`, shared with the fault-injection tests).

mod scripted;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use runagent_client::operations::StreamAgentEvent;
use runagent_client::types::{ErrorCode, InvokeRequest, OperationStatus};
use runagent_client::{Client, Error, RequestOptions, ResumePolicy, WaitOptions};
use scripted::{Script, Server, error, json, sse};

fn query() -> InvokeRequest {
    InvokeRequest::new("hi")
}

#[tokio::test]
async fn rate_limited_then_ok_reuses_the_idempotency_key_and_waits() {
    let server = Server::start(vec![
        json(
            429,
            "Retry-After: 1\r\nX-RateLimit-Limit: 100\r\nX-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: 1\r\n",
            &error("RATE_LIMITED", "slow down"),
        ),
        json(200, "X-Request-Id: req_9\r\nX-RateLimit-Limit: 100\r\nX-RateLimit-Remaining: 99\r\nX-RateLimit-Reset: 1640995200\r\n", r#"{"status":"success","data":{"result":"hello","metadata":{"execution_time":0.1,"tokens_used":1}}}"#),
    ])
    .await;
    let response = server.client().invoke_agent("agt_1", query()).send().await.unwrap();
    match &response.body {
        runagent_client::operations::InvokeAgentResponse::Ok(ok) => assert_eq!(ok.data.result, "hello"),
        other => panic!("expected the 200 result, got {other:?}"),
    }
    assert_eq!(response.meta.request_id.as_deref(), Some("req_9"));
    assert_eq!(response.meta.rate_limit.unwrap().remaining, 99);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].header("idempotency-key"), seen[1].header("idempotency-key"));
    assert!(seen[0].header("idempotency-key").is_some());
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(990));
}

#[tokio::test]
async fn rate_limit_error_exposes_the_window_when_retries_run_out() {
    let server = Server::start(vec![json(
        429,
        "Retry-After: 7\r\nX-RateLimit-Limit: 100\r\nX-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: 1640995200\r\n",
        &error("RATE_LIMITED", "slow down"),
    )])
    .await;
    let err = server
        .client()
        .invoke_agent("agt_1", query())
        .options(RequestOptions::new().max_retries(0))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::RateLimited));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    let limit = err.rate_limit().unwrap();
    assert_eq!((limit.limit, limit.remaining, limit.reset), (100, 0, 1_640_995_200));
}

#[tokio::test]
async fn bad_request_is_returned_at_once() {
    let server = Server::start(vec![json(400, "", &error("INVALID_INPUT", "Query parameter is required"))]).await;
    let err = server.client().invoke_agent("agt_1", query()).send().await.unwrap_err();
    match &err {
        Error::Api(failure) => {
            assert_eq!(failure.code, ErrorCode::InvalidInput);
            assert_eq!(failure.message, "Query parameter is required");
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn service_unavailable_storm_gives_up() {
    let server = Server::start(vec![
        json(503, "", &error("INTERNAL_ERROR", "1")),
        json(503, "", &error("INTERNAL_ERROR", "2")),
        json(503, "", &error("INTERNAL_ERROR", "3")),
    ])
    .await;
    let err = server.client().list_agents().send().await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(err.api_failure().unwrap().message, "3");
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn sse_cut_mid_stream_resumes_without_duplicates() {
    let server = Server::start(vec![
        sse(&[
            (0, "retry: 20\nevent: start\nid: str_1:0\ndata: {\"stream_id\":\"str_1\",\"agent_id\":\"agt_1\",\"created_at\":\"t\"}\n\n"),
            (10, "event: chunk\nid: str_1:1\ndata: {\"index\":0,\"text\":\"Hel\"}\n\n"),
            (10, "event: chunk\nid: str_1:2\ndata: {\"index\":1,\"te"),
        ]),
        sse(&[(
            0,
            "event: chunk\nid: str_1:1\ndata: {\"index\":0,\"text\":\"Hel\"}\n\n\
             event: chunk\nid: str_1:2\ndata: {\"index\":1,\"text\":\"lo\"}\n\n\
             event: done\nid: str_1:3\ndata: {\"result\":\"Hello\",\"metadata\":{\"execution_time\":0.1,\"tokens_used\":1}}\n\n",
        )]),
    ])
    .await;
    let mut stream = server.client().stream_agent("agt_1", query()).send().unwrap();
    let mut text = String::new();
    let mut kinds = Vec::new();
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            StreamAgentEvent::Start(_) => kinds.push("start"),
            StreamAgentEvent::Chunk(c) => {
                kinds.push("chunk");
                text.push_str(&c.text);
            }
            StreamAgentEvent::Done(d) => {
                kinds.push("done");
                assert_eq!(d.result, "Hello");
            }
            StreamAgentEvent::Error(e) => panic!("{e:?}"),
            StreamAgentEvent::Unknown { event, data } => panic!("unexpected event {event}: {data}"),
        }
    }
    assert_eq!(kinds, ["start", "chunk", "chunk", "done"]);
    assert_eq!(text, "Hello");
    assert_eq!(stream.last_event_id().as_deref(), Some("str_1:3"));
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].header("last-event-id"), Some("str_1:1"));
    assert_eq!(seen[1].method, "POST");
}

#[tokio::test]
async fn sse_error_event_is_an_error_item() {
    let server = Server::start(vec![sse(&[(
        0,
        "event: start\nid: str_1:0\ndata: {\"stream_id\":\"str_1\",\"agent_id\":\"agt_1\",\"created_at\":\"t\"}\n\n\
         event: error\nid: str_1:1\ndata: {\"code\":\"AGENT_ERROR\",\"message\":\"exit 1\"}\n\n",
    )])])
    .await;
    let items: Vec<_> = server.client().stream_agent("agt_1", query()).send().unwrap().collect().await;
    assert_eq!(items.len(), 2);
    let err = items[1].as_ref().unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::AgentError));
}

#[tokio::test]
async fn sse_without_resume_reports_the_interruption() {
    let server = Server::start(vec![sse(&[(0, "event: start\nid: str_1:0\ndata: {\"stream_id\":\"s\"}\n\n")])]).await;
    let items: Vec<_> = server
        .client()
        .stream_agent("agt_1", query())
        .options(RequestOptions::new().resume_policy(ResumePolicy::disabled()))
        .send()
        .unwrap()
        .collect()
        .await;
    assert!(matches!(items.last(), Some(Err(Error::StreamInterrupted { .. }))));
}

fn agents_page(page: u32, pages: u32, ids: &[&str]) -> Script {
    let data: Vec<String> = ids
        .iter()
        .map(|id| {
            format!(
                r#"{{"id":"{id}","name":"n","description":null,"framework":"echo","entrypoint":null,"config":{{}},"tags":[],"status":"created","created_at":"t","updated_at":"t"}}"#
            )
        })
        .collect();
    json(
        200,
        "",
        &format!(
            r#"{{"status":"success","data":[{}],"pagination":{{"page":{page},"limit":2,"total":5,"pages":{pages}}}}}"#,
            data.join(",")
        ),
    )
}

#[tokio::test]
async fn pagination_walks_three_pages() {
    let server =
        Server::start(vec![agents_page(1, 3, &["a", "b"]), agents_page(2, 3, &["c", "d"]), agents_page(3, 3, &["e"])])
            .await;
    let ids: Vec<String> =
        server.client().list_agents().limit(2).into_stream().map_ok(|agent| agent.id).try_collect().await.unwrap();
    assert_eq!(ids, ["a", "b", "c", "d", "e"]);
    let targets: Vec<String> = server.seen().into_iter().map(|s| s.target).collect();
    assert_eq!(targets, ["/v1/agents?page=1&limit=2", "/v1/agents?page=2&limit=2", "/v1/agents?page=3&limit=2"]);
}

#[tokio::test]
async fn pagination_error_ends_the_stream() {
    let server =
        Server::start(vec![agents_page(1, 3, &["a", "b"]), json(401, "", &error("UNAUTHORIZED", "bad key"))]).await;
    let items: Vec<_> = server.client().list_agents().into_stream().collect().await;
    assert_eq!(items.len(), 3);
    assert_eq!(items[2].as_ref().unwrap_err().code(), Some(&ErrorCode::Unauthorized));
}

fn op(status: &str, extra: &str) -> Script {
    json(
        200,
        "",
        &format!(
            r#"{{"status":"success","data":{{"operation_id":"op_7","kind":"deploy","status":"{status}","check_url":"/v1/operations/op_7","agent_id":"agt_1","created_at":"t","updated_at":"t"{extra}}}}}"#
        ),
    )
}

fn accepted() -> Script {
    json(202, "", r#"{"operation_id":"op_7","status":"pending","check_url":"/v1/operations/op_7"}"#)
}

#[tokio::test]
async fn deploy_then_wait_until_succeeded() {
    let server = Server::start(vec![accepted(), op("pending", ""), op("running", ""), op("succeeded", "")]).await;
    let handle = server.client().deploy_agent("agt_1").send().await.unwrap().into_body();
    assert_eq!(handle.id(), "op_7");
    let done = handle.wait_with(WaitOptions::new().initial_interval(Duration::from_millis(10))).await.unwrap();
    assert_eq!(done.status, OperationStatus::Succeeded);
    let seen = server.seen();
    assert_eq!(seen.len(), 4);
    assert!(seen[1..].iter().all(|s| s.target == "/v1/operations/op_7"));
}

#[tokio::test]
async fn deploy_then_wait_until_failed() {
    let server = Server::start(vec![
        accepted(),
        op("running", ""),
        op("failed", r#","error":{"code":"AGENT_ERROR","message":"entrypoint missing"}"#),
    ])
    .await;
    let handle = server.client().deploy_agent("agt_1").send().await.unwrap().into_body();
    let err = handle.wait_with(WaitOptions::new().initial_interval(Duration::from_millis(10))).await.unwrap_err();
    match &err {
        Error::OperationFailed(op) => assert_eq!(op.operation_id, "op_7"),
        other => panic!("{other:?}"),
    }
    assert_eq!(err.code(), Some(&ErrorCode::AgentError));
    assert!(err.to_string().contains("entrypoint missing"));
}

#[test]
fn missing_api_key_fails_at_build() {
    let err = Client::builder().base_url("http://127.0.0.1:1/v1").build().unwrap_err();
    assert!(matches!(err, Error::Config(_)));
    let err = Client::builder().api_key("k").base_url("::nonsense").build().unwrap_err();
    assert!(matches!(err, Error::Config(_)));
}
