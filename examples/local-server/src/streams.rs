//! Resumable streams on a [`StreamLog`]: the in-memory log of one process
//! by default, or Redis (`--redis`), where every instance can resume any
//! stream.
//!
//! A stream's events are numbered from 0 and their SSE ids are
//! `<stream_id>:<sequence>`. The agent's run appends to the log from a
//! task of its own, independent of any connection; a response (the first
//! one, or a resume with `Last-Event-ID`) reads the log from a sequence on
//! and follows it until the stream closes. The log keys a stream by its
//! owner, agent and id together, so that another caller's stream (or the
//! same stream asked for under another agent) is as unknown as a missing
//! one, without a lookup of its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use runagent_server::{StreamLog, StreamLogError};
use serde_json::{Value, json};

use crate::runner::RunOutput;
use crate::service::StreamEvent;

/// Why a resume was refused; all of them are `404 NOT_FOUND` in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// `Last-Event-ID` is not `<stream_id>:<sequence>`.
    #[error("Last-Event-ID is not a stream event id")]
    Malformed,
    /// No such stream for this caller and agent, or it expired.
    #[error("the stream is unknown or has expired")]
    UnknownStream,
    /// The events after the id are no longer all in the log, or the id was
    /// never sent.
    #[error("the event is no longer in the replay buffer")]
    NotInBuffer,
}

/// Splits an event id `<stream_id>:<sequence>` into its parts.
pub fn parse_event_id(id: &str) -> Option<(&str, u64)> {
    let (stream, seq) = id.rsplit_once(':')?;
    let valid_stream = stream
        .strip_prefix("str_")
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric()));
    if !valid_stream || seq.is_empty() || !seq.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((stream, seq.parse().ok()?))
}

/// The event id of sequence `seq` of stream `stream_id`.
pub fn event_id(stream_id: &str, seq: u64) -> String {
    format!("{stream_id}:{seq}")
}

/// The log's name for a stream: owner, agent and stream id. Owners are key
/// ids and agents `agt_...` ids, neither of which holds a `/`.
pub fn log_key(owner: &str, agent_id: &str, stream_id: &str) -> String {
    format!("{owner}/{agent_id}/{stream_id}")
}

/// An event as the log stores it: one JSON object tagged by `t`.
pub fn encode(event: &StreamEvent) -> Bytes {
    let value = match event {
        StreamEvent::Start { stream_id, agent_id, created_at } => {
            json!({"t": "start", "stream_id": stream_id, "agent_id": agent_id, "created_at": created_at})
        }
        StreamEvent::Chunk { index, text } => json!({"t": "chunk", "index": index, "text": text}),
        StreamEvent::Done(output) => json!({
            "t": "done",
            "result": output.result,
            "tokens_used": output.tokens_used,
            "execution_time": output.execution_time,
        }),
        StreamEvent::Error { code, message } => json!({"t": "error", "code": code, "message": message}),
    };
    Bytes::from(value.to_string())
}

/// The error codes a stream's last event can carry; the event keeps its
/// code as a `&'static str`, so a decoded one is matched back to these.
const ERROR_CODES: [&str; 3] = ["AGENT_ERROR", "AGENT_TIMEOUT", "INTERNAL_ERROR"];

/// Reads back what [`encode`] wrote; `None` for anything else (a log
/// shared with a different program, say).
pub fn decode(data: &[u8]) -> Option<StreamEvent> {
    let value: Value = serde_json::from_slice(data).ok()?;
    let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
    Some(match value.get("t")?.as_str()? {
        "start" => StreamEvent::Start {
            stream_id: text("stream_id")?,
            agent_id: text("agent_id")?,
            created_at: text("created_at")?,
        },
        "chunk" => StreamEvent::Chunk { index: value.get("index")?.as_u64()?, text: text("text")? },
        "done" => StreamEvent::Done(RunOutput {
            result: text("result")?,
            tokens_used: value.get("tokens_used")?.as_u64()?,
            execution_time: value.get("execution_time")?.as_f64()?,
        }),
        "error" => {
            let code = text("code")?;
            StreamEvent::Error {
                code: ERROR_CODES.into_iter().find(|c| *c == code).unwrap_or("INTERNAL_ERROR"),
                message: text("message")?,
            }
        }
        _ => return None,
    })
}

/// The events of the stream under `key` after `after`, then the live
/// ones until it closes, each with its SSE id.
///
/// The first read happens here, so that a stream that cannot be resumed is
/// refused before a response starts. A failure later on (the log became
/// unreachable, or an event cannot be read) ends the response: the client
/// resumes from the last id it got, and nothing is skipped.
pub async fn follow(
    log: Arc<dyn StreamLog>,
    key: String,
    stream_id: String,
    after: Option<u64>,
) -> Result<futures::stream::BoxStream<'static, (String, StreamEvent)>, StreamLogError> {
    let events = runagent_server::follow(log, key, after).await?;
    let events = events
        .map(move |item| match item {
            Ok(logged) => match decode(&logged.data) {
                Some(event) => Some((event_id(&stream_id, logged.seq), event)),
                None => {
                    tracing::error!(stream = %stream_id, seq = logged.seq, "a stream event in the log cannot be read");
                    None
                }
            },
            Err(error) => {
                tracing::warn!(stream = %stream_id, %error, "a stream's log failed while it was being read");
                None
            }
        })
        .take_while(|item| std::future::ready(item.is_some()))
        .filter_map(std::future::ready);
    Ok(events.boxed())
}

/// How long a stream's writer retries an append while the log is
/// unreachable (a Redis restart) before it ends the stream early.
pub const APPEND_PATIENCE: Duration = Duration::from_secs(10);

/// Appends event `seq`, retrying for up to [`APPEND_PATIENCE`] while the log
/// is unreachable: appends are idempotent, so a retry after a timeout
/// cannot duplicate it. `false` when the log stayed unreachable or refused
/// the event.
pub async fn append_patiently(log: &dyn StreamLog, key: &str, seq: u64, event: &StreamEvent) -> bool {
    let data = encode(event);
    let deadline = Instant::now() + APPEND_PATIENCE;
    loop {
        match log.append(key, seq, data.clone()).await {
            Ok(()) => return true,
            Err(StreamLogError::Unavailable(unavailable)) if Instant::now() < deadline => {
                tracing::debug!(cause = %unavailable, "retrying a stream append");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => {
                tracing::error!(%error, key, seq, "a stream event could not be logged; the stream ends early");
                return false;
            }
        }
    }
}

/// Closes the stream under `key`, retrying like [`append_patiently`]; a
/// stream left open expires after the log's open TTL.
pub async fn close_patiently(log: &dyn StreamLog, key: &str) {
    let deadline = Instant::now() + APPEND_PATIENCE;
    loop {
        match log.close(key).await {
            Ok(()) => return,
            Err(StreamLogError::Unavailable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => {
                tracing::error!(%error, key, "a stream could not be closed");
                return;
            }
        }
    }
}

/// A task that appends the events sent to it to the stream under `key`,
/// from sequence `first_seq` on, and closes the stream when the sender is
/// dropped. Events come from the agent's synchronous chunk callback, so a
/// slow log never blocks the agent's output. After an event the log would
/// not take, the rest are dropped and the stream is left open: a gap would
/// be worse than an early end, since readers stop at the last event the
/// log has and resume from it.
pub fn spawn_writer(
    log: Arc<dyn StreamLog>,
    key: String,
    first_seq: u64,
) -> (tokio::sync::mpsc::UnboundedSender<StreamEvent>, tokio::task::JoinHandle<()>) {
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<StreamEvent>();
    let writer = tokio::spawn(async move {
        let mut seq = first_seq;
        let mut broken = false;
        while let Some(event) = receiver.recv().await {
            if broken {
                continue;
            }
            if append_patiently(&*log, &key, seq, &event).await {
                seq += 1;
            } else {
                broken = true;
            }
        }
        if !broken {
            close_patiently(&*log, &key).await;
        }
    });
    (sender, writer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_parse() {
        assert_eq!(parse_event_id("str_9fK2pQ:3"), Some(("str_9fK2pQ", 3)));
        assert_eq!(event_id("str_a", 12), "str_a:12");
        for bad in ["str_a", "str_:1", "abc:1", "str_a:", "str_a:-1", "str_a:1x", "str_a-b:1"] {
            assert_eq!(parse_event_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_event_survives_the_log() {
        let events = [
            StreamEvent::Start {
                stream_id: "str_a".into(),
                agent_id: "agt_b".into(),
                created_at: "2026-01-01T00:00:00Z".into(),
            },
            StreamEvent::Chunk { index: 3, text: "héllo \"there\"\n".into() },
            StreamEvent::Done(RunOutput { result: "r".into(), tokens_used: 7, execution_time: 0.25 }),
            StreamEvent::Error { code: "AGENT_TIMEOUT", message: "slow".into() },
        ];
        for event in events {
            assert_eq!(decode(&encode(&event)), Some(event.clone()), "{event:?}");
        }
        let unknown = decode(br#"{"t":"error","code":"WHATEVER","message":"m"}"#);
        assert_eq!(unknown, Some(StreamEvent::Error { code: "INTERNAL_ERROR", message: "m".into() }));
        for bad in [&b"not json"[..], br#"{"t":"chunk","index":-1,"text":"x"}"#, br#"{"t":"nope"}"#] {
            assert_eq!(decode(bad), None);
        }
    }

    #[tokio::test]
    async fn the_writer_appends_in_order_and_closes() {
        let memory = Arc::new(runagent_server::InMemoryStreamLog::default());
        let log: Arc<dyn StreamLog> = memory;
        let start = StreamEvent::Start { stream_id: "str_w".into(), agent_id: "agt_a".into(), created_at: "t".into() };
        assert!(append_patiently(&*log, "k", 0, &start).await);
        let (sender, writer) = spawn_writer(Arc::clone(&log), "k".into(), 1);
        for index in 0..3 {
            sender.send(StreamEvent::Chunk { index, text: format!("{index}") }).unwrap();
        }
        drop(sender);
        writer.await.unwrap();
        let read = log.read("k", None, 10).await.unwrap();
        assert!(read.closed);
        let events: Vec<StreamEvent> = read.events.iter().map(|e| decode(&e.data).unwrap()).collect();
        assert_eq!(events.len(), 4);
        assert_eq!(events[3], StreamEvent::Chunk { index: 2, text: "2".into() });
    }

    #[tokio::test]
    async fn a_follower_stops_at_a_gap_instead_of_skipping() {
        let log: Arc<dyn StreamLog> = Arc::new(runagent_server::InMemoryStreamLog::default());
        let chunk = |index| encode(&StreamEvent::Chunk { index, text: "x".into() });
        log.append("k", 0, chunk(0)).await.unwrap();
        log.append("k", 1, Bytes::from_static(b"garbage")).await.unwrap();
        log.append("k", 2, chunk(2)).await.unwrap();
        log.close("k").await.unwrap();
        let got: Vec<String> =
            follow(log, "k".into(), "str_s".into(), None).await.unwrap().map(|(id, _)| id).collect().await;
        assert_eq!(got, ["str_s:0"]);
    }
}
