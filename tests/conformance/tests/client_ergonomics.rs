//! What a user of the client writes: bodies built with the generated
//! constructors and setters, a client that keeps what a newer server adds
//! (unknown events, unknown `oneOf` alternatives, unknown fields), and the
//! server crate's `spawn_fake` standing in for the API in a user's tests.

mod scripted;

use futures::StreamExt;
use runagent_client::operations::{InvokeAgentResponse, StreamAgentEvent, StreamAgentGetEvent};
use runagent_client::types::{CreateAgentRequest, Framework, InvokeParameters, InvokeRequest, OperationResult};
use runagent_client::{Client, Error};
use runagent_server::types as server_types;
use runagent_server::{ApiFailure, RequestContext, RunAgentApi};
use scripted::{Server, sse};
use serde_json::json;

#[test]
fn a_body_is_built_from_its_required_fields_and_chained_setters() {
    let request = InvokeRequest::new("Hello").session_id("s1").async_(true);
    assert_eq!(serde_json::to_value(&request).unwrap(), json!({"query": "Hello", "session_id": "s1", "async": true}));
    // Nothing optional is sent unless set.
    assert_eq!(serde_json::to_value(InvokeRequest::new("Hi")).unwrap(), json!({"query": "Hi"}));
    // A struct whose fields are all optional has `Default`.
    let parameters = InvokeParameters::default().max_tokens(5);
    assert_eq!(serde_json::to_value(&parameters).unwrap(), json!({"max_tokens": 5}));
    assert_eq!(InvokeParameters::default(), InvokeParameters::new());
}

#[test]
fn a_nullable_field_is_sent_as_null_only_through_its_null_setter() {
    let left_out = CreateAgentRequest::new("bot", Framework::Echo);
    assert_eq!(serde_json::to_value(&left_out).unwrap(), json!({"name": "bot", "framework": "echo"}));
    let cleared = CreateAgentRequest::new("bot", Framework::Echo).description_null().tags(vec!["a".into()]);
    assert_eq!(
        serde_json::to_value(&cleared).unwrap(),
        json!({"name": "bot", "framework": "echo", "description": null, "tags": ["a"]})
    );
    let set = CreateAgentRequest::new("bot", Framework::Echo).description("says hi");
    assert_eq!(set.description, Some(Some("says hi".to_owned())));
}

#[tokio::test]
async fn a_built_body_is_still_validated_before_it_is_sent() {
    // The scripted server would answer, but nothing may reach it.
    let server = Server::start(vec![]).await;
    let err = server.client().invoke_agent("agt_1", InvokeRequest::new("")).send().await.unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
    assert!(err.to_string().contains("query"), "{err}");
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn an_unknown_event_arrives_as_unknown_and_the_stream_goes_on() {
    let server = Server::start(vec![sse(&[(
        0,
        "event: start\nid: str_1:0\ndata: {\"stream_id\":\"str_1\",\"agent_id\":\"agt_1\",\"created_at\":\"t\"}\n\n\
         event: thinking\nid: str_1:1\ndata: {\"step\":1}\n\n\
         event: chunk\nid: str_1:2\ndata: {\"index\":0,\"text\":\"Hi\",\"tone\":\"new field\"}\n\n\
         event: done\nid: str_1:3\ndata: {\"result\":\"Hi\",\"metadata\":{\"execution_time\":0.1,\"tokens_used\":1}}\n\n",
    )])])
    .await;
    let mut stream = server.client().stream_agent("agt_1", InvokeRequest::new("hi")).send().unwrap();
    let mut seen = Vec::new();
    while let Some(event) = stream.next().await {
        seen.push(event.expect("no event ends the stream in an error"));
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(seen[1], StreamAgentEvent::Unknown { event: "thinking".into(), data: "{\"step\":1}".into() });
    // An unknown field of a known event is ignored.
    assert!(matches!(&seen[2], StreamAgentEvent::Chunk(c) if c.text == "Hi"), "{seen:?}");
    assert!(matches!(&seen[3], StreamAgentEvent::Done(_)), "{seen:?}");
}

#[test]
fn the_get_and_post_streams_share_one_event_type() {
    // `StreamAgentGetEvent` is kept as an alias, so both names are one type.
    let event: StreamAgentGetEvent = StreamAgentEvent::Unknown { event: "e".into(), data: String::new() };
    let _: StreamAgentEvent = event;
}

#[test]
fn an_unknown_one_of_alternative_keeps_its_json_and_fails_validation_if_sent() {
    let known: OperationResult =
        serde_json::from_value(json!({"result": "ok", "metadata": {"execution_time": 0.5, "tokens_used": 2}})).unwrap();
    assert!(matches!(known, OperationResult::InvokeResult(_)), "{known:?}");
    let newer = json!({"kind": "evaluation", "score": 0.9});
    let unknown: OperationResult = serde_json::from_value(newer.clone()).unwrap();
    assert_eq!(unknown, OperationResult::Unknown(newer));
    let mut path = runagent_client::FieldPath::default();
    assert!(runagent_client::Validate::validate(&unknown, &mut path).is_err());
}

/// A user's test double: only `invoke_agent` is implemented.
struct Fake;

impl RunAgentApi for Fake {
    async fn invoke_agent(
        &self,
        _ctx: RequestContext,
        params: runagent_server::InvokeAgentParams,
        body: server_types::InvokeRequest,
    ) -> Result<runagent_server::InvokeAgentResponse, ApiFailure> {
        let metadata = server_types::InvokeMetadata::new(0.01, 1);
        let result = server_types::InvokeResult::new(format!("{} from {}", body.query, params.agent_id), metadata);
        let response = server_types::InvokeResponse::new(server_types::SuccessStatus::Success, result);
        Ok(runagent_server::InvokeAgentResponse::Ok(response))
    }
}

#[tokio::test]
async fn the_real_client_talks_to_the_typed_fake() {
    let server = runagent_server::spawn_fake(Fake).await.expect("the fake starts");
    assert!(server.base_url().starts_with("http://127.0.0.1:"), "{}", server.base_url());
    assert!(server.base_url().ends_with("/v1"), "{}", server.base_url());
    let client = Client::builder().base_url(server.base_url()).api_key("test-key").build().unwrap();
    let response = client.invoke_agent("agt_1", InvokeRequest::new("Hello")).send().await.unwrap();
    match response.body {
        InvokeAgentResponse::Ok(ok) => assert_eq!(ok.data.result, "Hello from agt_1"),
        other => panic!("expected the fake's answer, got {other:?}"),
    }
    // An operation the fake leaves out answers 501 in the API's envelope.
    let err = client.get_agent("agt_1").send().await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(501), "{err:?}");
    // Dropping the handle stops the fake.
    let base = server.base_url().to_owned();
    drop(server);
    let client = Client::builder()
        .base_url(base)
        .api_key("test-key")
        .retry_policy(runagent_client::RetryPolicy::default().max_retries(0))
        .build()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(client.get_agent("agt_1").send().await.is_err());
}
