//! What the client lets its users see and change on every attempt: a
//! `tracing` span per call (operation, method, path template, attempt,
//! status, request id) with an event per retry and per stream resumption,
//! never a credential; and hooks that run on every attempt, here signing
//! each request with HMAC, which a scripted server checks on every retry.

mod scripted;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use hmac::{Hmac, Mac};
use runagent_client::operations::StreamAgentEvent;
use runagent_client::types::InvokeRequest;
use runagent_client::{AttemptRequest, AttemptResponse, Hook, HookError, RequestOptions};
use scripted::{Server, Step, error, json, sse};
use sha2::Sha256;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

const INVOKED: &str =
    r#"{"status":"success","data":{"result":"hello","metadata":{"execution_time":0.1,"tokens_used":1}}}"#;

fn query() -> InvokeRequest {
    InvokeRequest { query: "hi".into(), parameters: None, session_id: None, async_: None }
}

/// A span's name and the last value of each of its fields, as text.
type SpanFields = (String, BTreeMap<String, String>);

/// Every span and every event (its fields, with the fields of the span it
/// happened in), as text.
#[derive(Clone, Default)]
struct Captured {
    spans: Arc<Mutex<BTreeMap<u64, SpanFields>>>,
    events: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}").trim_matches('"').to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Captured {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        self.spans.lock().unwrap().insert(id.into_u64(), (attrs.metadata().name().to_owned(), fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        if let Some((_, fields)) = self.spans.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        if let Some(span) = ctx.event_span(event)
            && let Some((name, span_fields)) = self.spans.lock().unwrap().get(&span.id().into_u64())
        {
            fields.insert("span".into(), name.clone());
            for (key, value) in span_fields {
                fields.entry(format!("span.{key}")).or_insert_with(|| value.clone());
            }
        }
        self.events.lock().unwrap().push(fields);
    }
}

impl Captured {
    fn calls(&self) -> Vec<BTreeMap<String, String>> {
        let spans = self.spans.lock().unwrap();
        spans.values().filter(|(name, _)| name == "api_call").map(|(_, fields)| fields.clone()).collect()
    }

    fn events_with(&self, message: &str) -> Vec<BTreeMap<String, String>> {
        let events = self.events.lock().unwrap();
        events.iter().filter(|e| e.get("message").is_some_and(|m| m.contains(message))).cloned().collect()
    }

    /// Everything captured, for checking that no credential is in it.
    fn all_text(&self) -> String {
        format!("{:?}{:?}", self.spans.lock().unwrap(), self.events.lock().unwrap())
    }
}

fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry().with(captured.clone());
    (captured, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn a_retried_call_has_one_span_with_its_attempts_and_an_event_per_retry() {
    let (captured, _guard) = capture();
    let server = Server::start(vec![
        json(503, "Retry-After: 0\r\n", &error("INTERNAL_ERROR", "busy")).fault("503"),
        json(200, "X-Request-ID: req_42\r\n", INVOKED),
    ])
    .await;
    server.client().invoke_agent("agt_1", query()).send().await.unwrap();

    let calls = captured.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert_eq!(call["operation"], "invokeAgent");
    assert_eq!(call["method"], "POST");
    assert_eq!(call["path"], "/agents/{agent_id}/invoke", "the template, not the URL with its ids");
    assert_eq!(call["attempt"], "2");
    assert_eq!(call["status"], "200");
    assert_eq!(call["request_id"], "req_42");
    let retries = captured.events_with("retrying");
    assert_eq!(retries.len(), 1, "{retries:?}");
    assert_eq!(retries[0]["attempt"], "1");
    assert!(retries[0]["reason"].contains("503") || retries[0]["reason"].contains("busy"), "{retries:?}");
    assert!(retries[0].contains_key("delay_ms"));
    assert_eq!(retries[0]["span.operation"], "invokeAgent");
    let text = captured.all_text();
    assert!(!text.contains("Bearer"), "no credential in any span or event: {text}");
}

#[tokio::test]
async fn a_resumed_stream_reports_the_last_event_id_it_resumes_from() {
    let (captured, _guard) = capture();
    let start =
        "event: start\nid: str_1:0\ndata: {\"stream_id\":\"str_1\",\"agent_id\":\"agt_1\",\"created_at\":\"t\"}\n\n";
    let done = "event: done\nid: str_1:1\ndata: {\"result\":\"x\",\"metadata\":{\"execution_time\":0.1,\"tokens_used\":1}}\n\n";
    let mut cut = sse(&[(0, "retry: 10\n"), (0, start)]);
    cut.steps.push(Step::Reset);
    let server = Server::start(vec![cut.fault("reset after start"), sse(&[(0, done)])]).await;
    let stream = server.client().stream_agent("agt_1", query()).options(RequestOptions::new()).send().unwrap();
    let events: Vec<_> = stream.collect().await;
    assert!(matches!(events.last(), Some(Ok(StreamAgentEvent::Done(_)))), "{events:?}");

    let resumed = captured.events_with("resuming");
    assert_eq!(resumed.len(), 1, "{resumed:?}");
    assert_eq!(resumed[0]["last_event_id"], "str_1:0");
    assert_eq!(resumed[0]["operation"], "streamAgent");
    // Two connections, each its own call span of the stream's operation.
    assert_eq!(captured.calls().iter().filter(|c| c["operation"] == "streamAgent").count(), 2);
}

/// Signs every attempt: `X-Timestamp` and `X-Signature`, the hex HMAC-SHA256
/// of `timestamp.method.path.body` with a shared secret.
struct Signer {
    secret: &'static [u8],
    attempts: Arc<Mutex<Vec<(u32, u16)>>>,
}

fn signature(secret: &[u8], timestamp: &str, method: &str, path: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(format!("{timestamp}.{method}.{path}.").as_bytes());
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

impl Hook for Signer {
    fn before_attempt(&self, request: &mut AttemptRequest<'_>) -> Result<(), HookError> {
        // A fresh timestamp per attempt, as a server that refuses old
        // signatures needs: the hook runs inside the retry loop.
        let timestamp = format!("{}-{}", std::process::id(), request.attempt);
        let body = request.body.map(|b| &b[..]).unwrap_or_default();
        let signed = signature(self.secret, &timestamp, request.method.as_str(), request.url.path(), body);
        request.headers.insert("x-timestamp", timestamp.parse().map_err(|_| HookError::new("bad timestamp"))?);
        request.headers.insert("x-signature", signed.parse().map_err(|_| HookError::new("bad signature"))?);
        Ok(())
    }

    fn after_response(&self, response: &AttemptResponse<'_>) {
        self.attempts.lock().unwrap().push((response.attempt, response.status.as_u16()));
    }
}

#[tokio::test]
async fn a_hook_signs_every_attempt_and_sees_every_response() {
    let server = Server::start(vec![
        json(503, "Retry-After: 0\r\n", &error("INTERNAL_ERROR", "busy")).fault("503"),
        json(200, "", INVOKED),
    ])
    .await;
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let client = server.builder().hook(Signer { secret: b"shh", attempts: attempts.clone() }).build().unwrap();
    client.invoke_agent("agt_1", query()).send().await.unwrap();

    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let mut timestamps = Vec::new();
    for request in &seen {
        let timestamp = request.header("x-timestamp").expect("every attempt is signed");
        let path = request.target.split('?').next().unwrap();
        let expected = signature(b"shh", timestamp, &request.method, path, &request.body);
        assert_eq!(request.header("x-signature"), Some(expected.as_str()), "the server verifies attempt {timestamp}");
        timestamps.push(timestamp.to_owned());
    }
    assert_ne!(timestamps[0], timestamps[1], "each attempt is signed afresh");
    assert_eq!(*attempts.lock().unwrap(), [(1, 503), (2, 200)]);
}

#[tokio::test]
async fn a_hook_that_refuses_stops_the_call_without_sending() {
    struct Refuse;
    impl Hook for Refuse {
        fn before_attempt(&self, _request: &mut AttemptRequest<'_>) -> Result<(), HookError> {
            Err(HookError::new("no signing key"))
        }
    }
    let server = Server::start(vec![]).await;
    let client = server.builder().hook(Refuse).build().unwrap();
    let error = client.invoke_agent("agt_1", query()).send().await.unwrap_err();
    assert!(matches!(error, runagent_client::Error::Hook(_)), "{error:?}");
    assert!(server.seen().is_empty());
}
