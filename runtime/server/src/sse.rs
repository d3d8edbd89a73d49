//! Server-Sent Events responses.
//!
//! The framing is written here rather than with axum's `Sse`, because
//! axum's `Event` panics on an id or event name holding a line break (the
//! ids come from implementations, and a server must not panic on data),
//! splits `\r\n` in data into an extra empty `data:` line, and orders the
//! fields by call rather than as the spec's examples show them. The format
//! is small: see the WHATWG HTML standard, "Server-sent events".

use std::convert::Infallible;
use std::fmt;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::Stream;
use http::{HeaderValue, StatusCode, header};

/// The data of one kind of event: the generator implements it for each
/// stream's event enum.
pub trait SseEventData {
    /// The `event:` field, e.g. `chunk`.
    fn event_name(&self) -> &str;
    /// The `data:` field: the event's payload as JSON.
    fn data_json(&self) -> String;
}

/// One event of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct SseItem<E> {
    /// The `id:` field, which a client sends back as `Last-Event-ID` to
    /// resume. Line breaks and NUL characters are dropped when it is
    /// written, since they would end the field or make clients ignore it.
    pub id: String,
    /// The event.
    pub event: E,
    /// The `retry:` field: how long a client should wait before
    /// reconnecting.
    pub retry: Option<Duration>,
}

impl<E> SseItem<E> {
    /// An event with an id and no `retry`.
    pub fn new(id: impl Into<String>, event: E) -> Self {
        Self { id: id.into(), event, retry: None }
    }

    /// Sets the `retry` field.
    pub fn with_retry(mut self, retry: Duration) -> Self {
        self.retry = Some(retry);
        self
    }
}

impl<E: SseEventData> SseItem<E> {
    /// The event on the wire, blank line included:
    /// `event: NAME\nid: ID\n[retry: MS\n]data: LINE\n...\n`.
    pub fn to_frame(&self) -> Bytes {
        let data = self.event.data_json();
        let mut frame = String::with_capacity(data.len() + self.id.len() + 32);
        push_field(&mut frame, "event", self.event.event_name());
        push_field(&mut frame, "id", &self.id);
        if let Some(retry) = self.retry {
            push_field(&mut frame, "retry", &retry.as_millis().to_string());
        }
        // Each line of the data is a `data:` field of its own; a client joins
        // them back with `\n`. CRLF, CR and LF all end a line in SSE (the
        // usual data has no CR, and is then split as it is).
        let data = if data.contains('\r') { data.replace("\r\n", "\n").replace('\r', "\n") } else { data };
        for line in data.split('\n') {
            frame.push_str("data: ");
            frame.push_str(line);
            frame.push('\n');
        }
        frame.push('\n');
        Bytes::from(frame)
    }
}

/// Writes `name: value\n`, leaving out the characters that would break the
/// field (line breaks) or make clients drop it (NUL in an id).
fn push_field(frame: &mut String, name: &str, value: &str) {
    frame.push_str(name);
    frame.push_str(": ");
    frame.extend(value.chars().filter(|c| !matches!(c, '\r' | '\n' | '\0')));
    frame.push('\n');
}

/// The comment sent as a keep-alive: clients ignore it, proxies see traffic.
const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// A `text/event-stream` response: `200`, `Cache-Control: no-cache`, one
/// frame per item, ending when the stream ends.
pub struct EventStream<E> {
    stream: Pin<Box<dyn Stream<Item = SseItem<E>> + Send>>,
    keep_alive: Option<Duration>,
}

impl<E> EventStream<E> {
    /// A response that sends the items of `stream`, then ends.
    pub fn new(stream: impl Stream<Item = SseItem<E>> + Send + 'static) -> Self {
        Self { stream: Box::pin(stream), keep_alive: None }
    }

    /// Sends a comment whenever `interval` passes without an event, so that
    /// proxies and clients do not time out a quiet stream.
    pub fn keep_alive(mut self, interval: Duration) -> Self {
        self.keep_alive = Some(interval);
        self
    }
}

impl<E> fmt::Debug for EventStream<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream").field("keep_alive", &self.keep_alive).finish_non_exhaustive()
    }
}

impl<E: SseEventData + Send + 'static> IntoResponse for EventStream<E> {
    fn into_response(self) -> Response {
        let frames = Frames {
            stream: self.stream,
            keep_alive: self.keep_alive.map(|interval| (interval, Box::pin(tokio::time::sleep(interval)))),
        };
        let mut response = Response::new(Body::from_stream(frames));
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}

/// The body: the frames of the items, with keep-alive comments in the gaps.
struct Frames<E> {
    stream: Pin<Box<dyn Stream<Item = SseItem<E>> + Send>>,
    keep_alive: Option<(Duration, Pin<Box<tokio::time::Sleep>>)>,
}

impl<E: SseEventData> Stream for Frames<E> {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match this.stream.as_mut().poll_next(cx) {
            Poll::Ready(Some(item)) => {
                if let Some((interval, sleep)) = &mut this.keep_alive {
                    sleep.as_mut().reset(tokio::time::Instant::now() + *interval);
                }
                Poll::Ready(Some(Ok(item.to_frame())))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let Some((interval, sleep)) = &mut this.keep_alive else {
                    return Poll::Pending;
                };
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                sleep.as_mut().reset(tokio::time::Instant::now() + *interval);
                Poll::Ready(Some(Ok(Bytes::from_static(KEEP_ALIVE))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    enum Event {
        Chunk(&'static str),
        Done,
    }

    impl SseEventData for Event {
        fn event_name(&self) -> &str {
            match self {
                Event::Chunk(_) => "chunk",
                Event::Done => "done",
            }
        }

        fn data_json(&self) -> String {
            match self {
                Event::Chunk(text) => (*text).to_owned(),
                Event::Done => "{\"result\":\"ok\"}".to_owned(),
            }
        }
    }

    async fn body(response: Response) -> String {
        String::from_utf8(axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn frames_events_and_ends() {
        let items = vec![
            SseItem::new("str_1:0", Event::Chunk("{\"index\":0}")).with_retry(Duration::from_secs(3)),
            SseItem::new("str_1:1", Event::Done),
        ];
        let response = EventStream::new(futures::stream::iter(items)).into_response();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/event-stream");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-cache");
        assert_eq!(
            body(response).await,
            "event: chunk\nid: str_1:0\nretry: 3000\ndata: {\"index\":0}\n\nevent: done\nid: str_1:1\ndata: {\"result\":\"ok\"}\n\n"
        );
    }

    #[test]
    fn multi_line_data_and_hostile_ids() {
        let frame = SseItem::new("a\r\nb\0c", Event::Chunk("one\r\ntwo\rthree\nfour")).to_frame();
        assert_eq!(frame, "event: chunk\nid: abc\ndata: one\ndata: two\ndata: three\ndata: four\n\n");
        let frame = SseItem::new("1", Event::Chunk("{\"a\":1}\n{\"b\":2}")).to_frame();
        assert_eq!(frame, "event: chunk\nid: 1\ndata: {\"a\":1}\ndata: {\"b\":2}\n\n");
        let frame = SseItem::new("", Event::Chunk("")).to_frame();
        assert_eq!(frame, "event: chunk\nid: \ndata: \n\n");
    }

    #[tokio::test]
    async fn an_empty_stream_is_an_empty_body() {
        let response = EventStream::<Event>::new(futures::stream::empty()).into_response();
        assert_eq!(body(response).await, "");
    }

    #[tokio::test]
    async fn keep_alive_fills_quiet_gaps() {
        let (sender, receiver) = futures::channel::mpsc::unbounded();
        let response = EventStream::new(receiver).keep_alive(Duration::from_millis(40)).into_response();
        let reader = tokio::spawn(body(response));
        tokio::time::sleep(Duration::from_millis(60)).await;
        sender.unbounded_send(SseItem::new("1", Event::Done)).unwrap();
        drop(sender);
        let text = reader.await.unwrap();
        // A busy machine may oversleep into a second keep-alive; one at least
        // must come, and only keep-alives before the event.
        let gap = text.strip_suffix("event: done\nid: 1\ndata: {\"result\":\"ok\"}\n\n").expect("the event last");
        assert!(!gap.is_empty() && gap.replace(": keep-alive\n\n", "").is_empty(), "{gap:?}");
    }
}
