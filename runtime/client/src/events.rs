//! Typed event streams that resume after a dropped connection.

use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use futures::stream::BoxStream;
use http::StatusCode;

use crate::client::{Client, RequestOptions, RequestSpec};
use crate::error::{Error, StreamFailure};
use crate::model::ApiModel;
use crate::response::ResponseMeta;
use crate::sse::SseParser;

/// The events of one streaming operation; the generator implements it for
/// each stream's event enum.
pub trait StreamEvent: Sized + Send + 'static {
    /// The API the stream belongs to.
    type Model: ApiModel;

    /// Decodes an event from its SSE `event` field (`None` for the default
    /// type) and its `data`.
    fn decode(event: Option<&str>, data: &str) -> Result<Self, serde_json::Error>;

    /// Whether this event is the last one of the stream (such as `done`).
    fn is_terminal(&self) -> bool;

    /// The failure this event reports, if it reports one (such as `error`).
    fn stream_error(&self) -> Option<StreamFailure<Self::Model>>;
}

/// How an event stream reconnects after the connection drops before the
/// stream's final event.
///
/// A reconnection sends `Last-Event-ID` with the id of the last event
/// received, so it is only possible once the server has sent an id. It
/// waits the delay the server set with the SSE `retry` field (or
/// [`ResumePolicy::default_retry`]), capped at [`ResumePolicy::max_retry`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ResumePolicy {
    /// Reconnections tried in a row without receiving a new event before
    /// giving up; 0 disables resuming. Default 5.
    pub max_attempts: u32,
    /// The delay before reconnecting when the server set none. Default 1 s.
    pub default_retry: Duration,
    /// The longest delay before reconnecting, whatever the server set. Default 30 s.
    pub max_retry: Duration,
}

impl Default for ResumePolicy {
    fn default() -> Self {
        Self { max_attempts: 5, default_retry: Duration::from_secs(1), max_retry: Duration::from_secs(30) }
    }
}

impl ResumePolicy {
    /// The default policy: up to 5 reconnections, 1 s apart unless the
    /// server says otherwise.
    pub fn new() -> Self {
        Self::default()
    }

    /// Never reconnect: a dropped connection ends the stream with
    /// `Error::StreamInterrupted`.
    pub fn disabled() -> Self {
        Self::default().max_attempts(0)
    }

    /// Sets how many reconnections are tried in a row.
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Sets the delay used when the server set none.
    pub fn default_retry(mut self, delay: Duration) -> Self {
        self.default_retry = delay;
        self
    }

    /// Sets the longest delay before reconnecting.
    pub fn max_retry(mut self, delay: Duration) -> Self {
        self.max_retry = delay;
        self
    }

    /// Whether dropped connections are resumed at all.
    pub fn is_enabled(&self) -> bool {
        self.max_attempts > 0
    }

    /// The delay before reconnecting, given the server's `retry` value.
    pub(crate) fn delay(&self, server_retry: Option<Duration>) -> Duration {
        server_retry.unwrap_or(self.default_retry).min(self.max_retry)
    }
}

/// A stream of typed events from a streaming operation.
///
/// Nothing is sent until it is first polled. Items are `Ok(event)` until the
/// final event (which is yielded, then the stream ends), or one `Err`:
/// an event reporting a failure arrives as `Error::Stream` and ends the
/// stream, and so does a failure to connect. An event whose data does not decode is yielded
/// as `Error::Decode` and the stream goes on; an event name the generated
/// enum does not list arrives as its `Unknown { event, data }` variant. An
/// event type added to the API later does not break older clients.
///
/// If the connection drops (an error, the server closing it, or no data for
/// the call's timeout) before the final event, the stream reconnects with
/// `Last-Event-ID` as its [`ResumePolicy`] allows and skips any event whose
/// id it already delivered; when it cannot, it ends with
/// `Error::StreamInterrupted`.
pub struct EventStream<E: StreamEvent> {
    inner: BoxStream<'static, Result<E, Error<E::Model>>>,
    shared: Arc<Mutex<Shared>>,
}

/// What the stream's driver reports to the handle while it runs.
#[derive(Debug, Default)]
struct Shared {
    last_event_id: Option<String>,
    meta: Option<ResponseMeta>,
    reconnects: u32,
}

impl<E: StreamEvent> EventStream<E> {
    /// Creates the stream. The resume policy is the call's
    /// ([`RequestOptions::resume_policy`]), else the client's
    /// (`ClientBuilder::resume_policy`),
    /// else the default.
    // Called by the generated streaming operations, which a spec may not have.
    #[allow(dead_code)]
    pub(crate) fn new(client: Client<E::Model>, spec: RequestSpec, opts: RequestOptions) -> Self {
        let resume = opts.resume_policy.clone().or_else(|| client.resume_policy().cloned()).unwrap_or_default();
        Self::with_resume(client, spec, opts, resume)
    }

    /// Creates the stream with an explicit resume policy.
    pub(crate) fn with_resume(
        client: Client<E::Model>,
        spec: RequestSpec,
        opts: RequestOptions,
        resume: ResumePolicy,
    ) -> Self {
        let shared = Arc::new(Mutex::new(Shared { last_event_id: opts.last_event_id.clone(), ..Shared::default() }));
        let driver = Driver::<E> {
            read_timeout: client.attempt_timeout(&opts),
            client,
            spec,
            opts,
            resume,
            parser: SseParser::new(),
            response: None,
            status: StatusCode::OK,
            connections: 0,
            attempts: 0,
            server_retry: None,
            delivered: HashSet::new(),
            finished: false,
            shared: Arc::clone(&shared),
            _event: PhantomData,
        };
        let inner = futures::stream::unfold(driver, |mut driver| async move {
            let item = driver.next_item().await?;
            Some((item, driver))
        });
        Self { inner: Box::pin(inner), shared }
    }
}

impl<E: StreamEvent> EventStream<E> {
    /// The id of the last event received, to pass to
    /// [`RequestOptions::last_event_id`] to pick the stream up later.
    pub fn last_event_id(&self) -> Option<String> {
        self.lock().last_event_id.clone()
    }

    /// The status and headers of the current (or last) connection.
    pub fn response_meta(&self) -> Option<ResponseMeta> {
        self.lock().meta.clone()
    }

    /// How many reconnections the stream has attempted, successful or not.
    pub fn reconnects(&self) -> u32 {
        self.lock().reconnects
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        // The data stays consistent even if a holder panicked, since every
        // update is a single assignment.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<E: StreamEvent> Stream for EventStream<E> {
    type Item = Result<E, Error<E::Model>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl<E: StreamEvent> fmt::Debug for EventStream<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = self.lock();
        f.debug_struct("EventStream")
            .field("last_event_id", &shared.last_event_id)
            .field("reconnects", &shared.reconnects)
            .finish_non_exhaustive()
    }
}

/// The state behind an [`EventStream`]: the connection, the parser and
/// what has been delivered.
struct Driver<E: StreamEvent> {
    client: Client<E::Model>,
    spec: RequestSpec,
    opts: RequestOptions,
    resume: ResumePolicy,
    /// The longest silence tolerated on an open connection.
    read_timeout: Duration,
    parser: SseParser,
    response: Option<reqwest::Response>,
    /// The status of the current connection, for decode errors.
    status: StatusCode,
    /// Successful connections so far; after the first, connecting is resuming.
    connections: u32,
    /// Reconnections tried since an event was last delivered.
    attempts: u32,
    /// The server's latest `retry` value, which outlives its connection.
    server_retry: Option<Duration>,
    /// The ids events set themselves, so that replayed ones are skipped.
    delivered: HashSet<String>,
    finished: bool,
    shared: Arc<Mutex<Shared>>,
    _event: PhantomData<fn() -> E>,
}

/// The data of the message that ends a stream without being an event.
const DONE_SENTINEL: &str = "[DONE]";

impl<E: StreamEvent> Driver<E> {
    /// Produces the next item, or `None` once the stream has ended.
    async fn next_item(&mut self) -> Option<Result<E, Error<E::Model>>> {
        loop {
            if self.finished {
                return None;
            }
            if let Some(item) = self.take_queued() {
                return Some(item);
            }
            if self.finished {
                return None;
            }
            // Everything parsed so far has been delivered, so the parser's
            // last id (which also counts id-only blocks) is now accurate.
            let last_id = self.parser.last_event_id().map(str::to_owned);
            if last_id.is_some() {
                self.update(|shared| shared.last_event_id = last_id);
            }
            let Some(response) = self.response.as_mut() else {
                if let Err(err) = self.connect().await {
                    self.finish();
                    return Some(Err(err));
                }
                continue;
            };
            match tokio::time::timeout(self.read_timeout, response.chunk()).await {
                Ok(Ok(Some(bytes))) => {
                    self.parser.push(&bytes);
                    if let Some(retry) = self.parser.reconnection_time() {
                        self.server_retry = Some(retry);
                    }
                }
                // The server closed the connection, it broke, or it went
                // silent for too long: all are a drop before the final event.
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => self.response = None,
            }
        }
    }

    /// Decodes the next parsed event that was not delivered before.
    fn take_queued(&mut self) -> Option<Result<E, Error<E::Model>>> {
        while let Some(dispatched) = self.parser.next_dispatched() {
            let sse = dispatched.event;
            if dispatched.has_own_id
                && let Some(id) = &sse.id
                && !self.delivered.insert(id.clone())
            {
                continue;
            }
            self.attempts = 0;
            // `data: [DONE]` is how OpenAI and the many APIs that copy it
            // end a stream whose events are otherwise JSON: an end, not an
            // event that fails to decode.
            if sse.data == DONE_SENTINEL && sse.event.as_deref().is_none_or(|e| e == "message") {
                self.finish();
                return None;
            }
            let id = sse.id.clone();
            if id.is_some() {
                self.update(|shared| shared.last_event_id = id.clone());
            }
            let event = match E::decode(sse.event.as_deref(), &sse.data) {
                Ok(event) => event,
                Err(source) => {
                    return Some(Err(Error::Decode { status: self.status, body: sse.data, source }));
                }
            };
            if let Some(mut failure) = event.stream_error() {
                failure.event_id = failure.event_id.or(id);
                self.finish();
                return Some(Err(Error::Stream(failure)));
            }
            if event.is_terminal() {
                self.finish();
            }
            return Some(Ok(event));
        }
        None
    }

    /// Opens the first connection, or resumes after a drop.
    async fn connect(&mut self) -> Result<(), Error<E::Model>> {
        loop {
            let resuming = self.connections > 0;
            let (opts, last_id) = if resuming {
                let Some(last_id) = self.parser.last_event_id().map(str::to_owned) else {
                    // Without an id the server cannot know where to resume,
                    // and starting over would repeat events.
                    return Err(self.interrupted());
                };
                if self.attempts >= self.resume.max_attempts {
                    return Err(self.interrupted());
                }
                self.attempts += 1;
                self.update(|shared| shared.reconnects += 1);
                let delay = self.resume.delay(self.server_retry);
                tracing::info!(
                    operation = self.spec.operation,
                    last_event_id = %last_id,
                    attempt = self.attempts,
                    delay_ms = delay.as_millis() as u64,
                    "the stream dropped; resuming"
                );
                tokio::time::sleep(delay).await;
                // A resumption is a new request that the server answers from
                // its replay buffer; it gets its own idempotency key, because
                // reusing the first one would be refused with 409 while the
                // original stream is still in progress.
                let mut opts = self.opts.clone();
                opts.idempotency_key = None;
                (opts, Some(last_id))
            } else {
                (self.opts.clone(), self.opts.last_event_id.clone())
            };
            match self.client.execute_stream(self.spec.clone(), &opts, last_id.as_deref()).await {
                Ok(response) => {
                    self.status = response.status();
                    let meta = ResponseMeta::from_parts(response.status(), response.headers().clone());
                    self.update(|shared| shared.meta = Some(meta));
                    if resuming && response.status() == StatusCode::NO_CONTENT {
                        // 204 is the standard's way for a server to say
                        // "do not reconnect".
                        return Err(self.interrupted());
                    }
                    self.connections += 1;
                    self.parser = match last_id {
                        Some(id) => SseParser::with_last_event_id(id),
                        None => SseParser::new(),
                    };
                    self.response = Some(response);
                    return Ok(());
                }
                // A transient failure while resuming counts as one attempt;
                // anything else (an expired stream's 404, say) is final.
                Err(err) if resuming && err.is_retryable() => continue,
                Err(err) => return Err(err),
            }
        }
    }

    fn interrupted(&self) -> Error<E::Model> {
        Error::StreamInterrupted { attempts: self.attempts }
    }

    /// Ends the stream and releases the connection at once.
    fn finish(&mut self) {
        self.finished = true;
        self.response = None;
    }

    fn update(&self, f: impl FnOnce(&mut Shared)) {
        f(&mut self.shared.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_policy_defaults_and_delay() {
        let policy = ResumePolicy::default();
        assert_eq!(policy.max_attempts, 5);
        assert!(policy.is_enabled());
        assert!(!ResumePolicy::disabled().is_enabled());
        assert_eq!(policy.delay(None), Duration::from_secs(1));
        assert_eq!(policy.delay(Some(Duration::from_millis(250))), Duration::from_millis(250));
        assert_eq!(policy.delay(Some(Duration::from_secs(3600))), Duration::from_secs(30));
        let custom = ResumePolicy::new()
            .max_attempts(2)
            .default_retry(Duration::from_millis(10))
            .max_retry(Duration::from_millis(20));
        assert_eq!(custom.delay(None), Duration::from_millis(10));
        assert_eq!(custom.delay(Some(Duration::from_secs(1))), Duration::from_millis(20));
    }

    #[test]
    fn event_stream_is_send_and_unpin() {
        fn assert_bounds<T: Send + Unpin + 'static>() {}
        struct Nothing;
        impl StreamEvent for Nothing {
            type Model = crate::testing::Model;
            fn decode(_: Option<&str>, _: &str) -> Result<Self, serde_json::Error> {
                Ok(Nothing)
            }
            fn is_terminal(&self) -> bool {
                true
            }
            fn stream_error(&self) -> Option<StreamFailure<crate::testing::Model>> {
                None
            }
        }
        assert_bounds::<EventStream<Nothing>>();
    }
    mod over_the_wire {
        use super::*;
        use crate::client::test_server::{Reply, TestServer, event_stream, json};
        use crate::testing::{ErrorCode, Model};
        use bytes::Bytes;
        use futures::StreamExt;
        use http::Method;

        /// A minimal event type standing in for a generated one.
        #[derive(Debug, Clone, PartialEq)]
        enum Ev {
            Start(String),
            Chunk(String),
            Failed(StreamFailure<Model>),
            Done,
        }

        type Error = super::Error<Model>;

        impl StreamEvent for Ev {
            type Model = Model;
            fn decode(event: Option<&str>, data: &str) -> Result<Self, serde_json::Error> {
                match event.unwrap_or("message") {
                    "start" => Ok(Ev::Start(data.to_owned())),
                    "chunk" => Ok(Ev::Chunk(data.to_owned())),
                    "done" => Ok(Ev::Done),
                    "error" => {
                        let value: serde_json::Value = serde_json::from_str(data)?;
                        let code: ErrorCode = serde_json::from_value(value["code"].clone())?;
                        let message = value["message"].as_str().unwrap_or_default();
                        Ok(Ev::Failed(StreamFailure::new(code, message)))
                    }
                    other => Err(serde::de::Error::custom(format!("unknown event `{other}`"))),
                }
            }
            fn is_terminal(&self) -> bool {
                matches!(self, Ev::Done | Ev::Failed(_))
            }
            fn stream_error(&self) -> Option<StreamFailure<Model>> {
                match self {
                    Ev::Failed(failure) => Some(failure.clone()),
                    _ => None,
                }
            }
        }

        fn open(server: &TestServer, opts: RequestOptions) -> EventStream<Ev> {
            let mut spec = RequestSpec::new(Method::POST, "/agents/agt_1/stream");
            spec.body = Some(Bytes::from_static(br#"{"query":"hi"}"#));
            EventStream::new(server.client(), spec, opts)
        }

        fn ok(items: &[Result<Ev, Error>]) -> Vec<Ev> {
            items.iter().filter_map(|item| item.as_ref().ok().cloned()).collect()
        }

        fn start(n: u32) -> String {
            format!("event: start\nid: s:{n}\ndata: a\n\n")
        }

        fn chunk(n: u32, text: &str) -> String {
            format!("event: chunk\nid: s:{n}\ndata: {text}\n\n")
        }

        fn done(n: u32) -> String {
            format!("event: done\nid: s:{n}\ndata: {{}}\n\n")
        }

        #[tokio::test]
        async fn a_complete_stream_ends_after_the_final_event() {
            let body = format!("retry: 10\n{}{}{}", start(0), chunk(1, "b"), done(2));
            let server = TestServer::start(vec![event_stream(&[(0, &body)])]);
            let mut stream = open(&server, RequestOptions::new());
            assert_eq!(stream.last_event_id(), None);
            let items: Vec<_> = (&mut stream).collect().await;
            assert_eq!(ok(&items), [Ev::Start("a".into()), Ev::Chunk("b".into()), Ev::Done]);
            assert_eq!(items.len(), 3);
            assert_eq!(stream.last_event_id().as_deref(), Some("s:2"));
            assert_eq!(stream.reconnects(), 0);
            assert_eq!(stream.response_meta().unwrap().status, http::StatusCode::OK);
            let request = &server.requests()[0];
            assert_eq!(request.header("accept"), Some("text/event-stream"));
            assert_eq!(request.header("last-event-id"), None);
            assert!(request.header("idempotency-key").is_some());
        }

        #[tokio::test]
        async fn a_done_sentinel_ends_the_stream_without_an_error() {
            let body = format!("retry: 10\n{}{}data: [DONE]\n\n", start(0), chunk(1, "b"));
            let server = TestServer::start(vec![event_stream(&[(0, &body)])]);
            let mut stream = open(&server, RequestOptions::new());
            let items: Vec<_> = (&mut stream).collect().await;
            assert_eq!(ok(&items), [Ev::Start("a".into()), Ev::Chunk("b".into())]);
            assert_eq!(items.len(), 2);
            // An end, so no reconnection follows.
            assert_eq!(stream.reconnects(), 0);
            assert_eq!(server.requests().len(), 1);
        }

        #[tokio::test]
        async fn nothing_is_sent_until_the_first_poll() {
            let server = TestServer::start(vec![event_stream(&[(0, &done(0))])]);
            let mut stream = open(&server, RequestOptions::new());
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(server.requests().is_empty());
            assert_eq!(stream.next().await.unwrap().unwrap(), Ev::Done);
        }

        #[tokio::test]
        async fn a_cut_stream_resumes_without_duplicates() {
            let first = format!("retry: 10\n{}{}event: chunk\nid: s:2\ndata: par", start(0), chunk(1, "b"));
            // A sloppy server replays from the last id received, inclusive.
            let second = format!("{}{}{}", chunk(1, "b"), chunk(2, "c"), done(3));
            let server = TestServer::start(vec![event_stream(&[(0, &first)]), event_stream(&[(0, &second)])]);
            let mut stream = open(&server, RequestOptions::new());
            let items: Vec<_> = (&mut stream).collect().await;
            assert_eq!(ok(&items), [Ev::Start("a".into()), Ev::Chunk("b".into()), Ev::Chunk("c".into()), Ev::Done]);
            assert_eq!(items.len(), 4);
            assert_eq!(stream.reconnects(), 1);
            let requests = server.requests();
            assert_eq!(requests.len(), 2);
            assert_eq!(requests[1].header("last-event-id"), Some("s:1"));
            assert_eq!(requests[1].body, requests[0].body);
            // Each connection is its own request with its own key, so that the
            // server does not refuse the resumption as a replay in progress.
            let keys: Vec<_> = requests.iter().map(|r| r.header("idempotency-key")).collect();
            assert!(keys[0].is_some() && keys[1].is_some() && keys[0] != keys[1]);
        }

        #[tokio::test]
        async fn a_broken_chunked_body_resumes() {
            let events = format!("retry: 10\n{}", start(0));
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
            // One chunk, then the connection closes without the final chunk.
            let broken = format!("{head}{:x}\r\n{events}\r\n", events.len());
            let server = TestServer::start(vec![
                Reply::Pieces(vec![(Duration::ZERO, broken.into_bytes())]),
                event_stream(&[(0, &done(1))]),
            ]);
            let items: Vec<_> = open(&server, RequestOptions::new()).collect().await;
            assert_eq!(ok(&items), [Ev::Start("a".into()), Ev::Done]);
            assert_eq!(server.requests()[1].header("last-event-id"), Some("s:0"));
        }

        #[tokio::test]
        async fn a_silent_connection_counts_as_dropped() {
            let first = format!("retry: 10\n{}", start(0));
            let server = TestServer::start(vec![
                event_stream(&[(0, &first), (1_000, &done(1))]),
                event_stream(&[(0, &done(1))]),
            ]);
            let opts = RequestOptions::new().timeout(Duration::from_millis(300));
            let items: Vec<_> = open(&server, opts).collect().await;
            assert_eq!(ok(&items), [Ev::Start("a".into()), Ev::Done]);
            assert_eq!(server.requests().len(), 2);
        }

        #[tokio::test]
        async fn an_error_event_ends_the_stream() {
            let body = format!(
                "{}event: error\nid: s:1\ndata: {{\"code\":\"AGENT_TIMEOUT\",\"message\":\"too slow\"}}\n\n{}",
                start(0),
                chunk(2, "never")
            );
            let server = TestServer::start(vec![event_stream(&[(0, &body)])]);
            let items: Vec<_> = open(&server, RequestOptions::new()).collect().await;
            assert_eq!(items.len(), 2);
            match &items[1] {
                Err(Error::Stream(failure)) => {
                    assert_eq!(failure.code, ErrorCode::AgentTimeout);
                    assert_eq!(failure.message, "too slow");
                    assert_eq!(failure.event_id.as_deref(), Some("s:1"));
                }
                other => panic!("expected a stream error, got {other:?}"),
            }
        }

        #[tokio::test]
        async fn an_undecodable_event_is_reported_and_skipped() {
            let body = format!("event: ping\ndata: x\n\n{}", done(1));
            let server = TestServer::start(vec![event_stream(&[(0, &body)])]);
            let items: Vec<_> = open(&server, RequestOptions::new()).collect().await;
            assert_eq!(items.len(), 2);
            assert!(matches!(&items[0], Err(Error::Decode { body, .. }) if body == "x"));
            assert!(matches!(&items[1], Ok(Ev::Done)));
        }

        #[tokio::test]
        async fn a_drop_without_ids_cannot_resume() {
            let server = TestServer::start(vec![event_stream(&[(0, "event: start\ndata: a\n\n")])]);
            let items: Vec<_> = open(&server, RequestOptions::new()).collect().await;
            assert_eq!(items.len(), 2);
            assert!(matches!(items[1], Err(Error::StreamInterrupted { attempts: 0 })));
            assert_eq!(server.requests().len(), 1);
        }

        #[tokio::test]
        async fn disabled_resume_reports_the_interruption() {
            let server = TestServer::start(vec![event_stream(&[(0, &start(0))])]);
            let opts = RequestOptions::new().resume_policy(ResumePolicy::disabled());
            let items: Vec<_> = open(&server, opts).collect().await;
            assert_eq!(items.len(), 2);
            assert!(matches!(items[1], Err(Error::StreamInterrupted { attempts: 0 })));
            assert_eq!(server.requests().len(), 1);
        }

        #[tokio::test]
        async fn resuming_gives_up_after_max_attempts_without_progress() {
            let first = format!("retry: 10\n{}", start(0));
            let server = TestServer::start(vec![
                event_stream(&[(0, &first)]),
                // Replays of what was delivered are no progress.
                event_stream(&[(0, &start(0))]),
                event_stream(&[(0, ": nothing new\n\n")]),
            ]);
            let opts = RequestOptions::new().resume_policy(ResumePolicy::new().max_attempts(2));
            let mut stream = open(&server, opts);
            let items: Vec<_> = (&mut stream).collect().await;
            assert_eq!(ok(&items), [Ev::Start("a".into())]);
            assert!(matches!(items[1], Err(Error::StreamInterrupted { attempts: 2 })));
            assert_eq!(stream.reconnects(), 2);
            assert_eq!(server.requests().len(), 3);
        }

        #[tokio::test]
        async fn an_expired_stream_ends_with_the_api_error() {
            let first = format!("retry: 10\n{}", start(0));
            let server = TestServer::start(vec![
                event_stream(&[(0, &first)]),
                json(404, &[], r#"{"status":"error","error":{"code":"NOT_FOUND","message":"expired"}}"#),
            ]);
            let items: Vec<_> = open(&server, RequestOptions::new()).collect().await;
            assert_eq!(items.len(), 2);
            assert_eq!(items[1].as_ref().unwrap_err().code(), Some(&ErrorCode::NotFound));
        }

        #[tokio::test]
        async fn a_json_answer_is_a_decode_error() {
            let server = TestServer::start(vec![json(200, &[], r#"{"status":"success"}"#)]);
            let items: Vec<_> = open(&server, RequestOptions::new()).collect().await;
            assert_eq!(items.len(), 1);
            match &items[0] {
                Err(Error::Decode { body, source, .. }) => {
                    assert_eq!(body, r#"{"status":"success"}"#);
                    assert!(source.to_string().contains("application/json"), "{source}");
                }
                other => panic!("expected a decode error, got {other:?}"),
            }
        }

        #[tokio::test]
        async fn a_refused_stream_is_one_error() {
            let server = TestServer::start(vec![json(
                401,
                &[],
                r#"{"status":"error","error":{"code":"UNAUTHORIZED","message":"bad key"}}"#,
            )]);
            let items: Vec<_> = open(&server, RequestOptions::new()).collect().await;
            assert_eq!(items.len(), 1);
            assert_eq!(items[0].as_ref().unwrap_err().code(), Some(&ErrorCode::Unauthorized));
        }

        #[tokio::test]
        async fn a_given_last_event_id_starts_after_it() {
            let server = TestServer::start(vec![event_stream(&[(0, &done(6))])]);
            let stream = open(&server, RequestOptions::new().last_event_id("s:5"));
            assert_eq!(stream.last_event_id().as_deref(), Some("s:5"));
            let items: Vec<_> = stream.collect().await;
            assert_eq!(ok(&items), [Ev::Done]);
            assert_eq!(server.requests()[0].header("last-event-id"), Some("s:5"));
        }
    }
}
