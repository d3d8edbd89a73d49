//! Fault injection against the client: a scripted loopback server (see
//! `scripted/mod.rs`) answers 503 and 429 with `Retry-After`, resets
//! connections mid-response, cuts event streams mid-event, stalls past the
//! client's timeout and sends malformed JSON. Each test asserts what the
//! client's documentation promises for that fault: the error variant,
//! whether and how often it retries, that it waits at least as long as the
//! server asked, that every attempt of one POST carries the same
//! `Idempotency-Key`, and that a stream resumes with `Last-Event-ID` without
//! delivering an event twice, or ends with a typed error when it cannot.
//!
//! Waits are checked against lower bounds only (the client may be late,
//! never early), and retry backoffs are a few milliseconds, so that the
//! tests are fast and not sensitive to a loaded machine. Run with
//! `--nocapture` to see how many faults each test injected.

mod scripted;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use runagent_client::operations::{InvokeAgentResponse, StreamAgentEvent};
use runagent_client::types::{CreateAgentRequest, ErrorCode, InvokeRequest};
use runagent_client::{Client, Error, RequestOptions, ResumePolicy, RetryPolicy};
use scripted::{Script, Seen, Server, Step, error, head, json, sse};

const AGENT: &str = r#"{"id":"agt_1","name":"n","description":null,"framework":"echo","entrypoint":null,"config":{},"tags":[],"status":"created","created_at":"t","updated_at":"t"}"#;
const INVOKED: &str =
    r#"{"status":"success","data":{"result":"hello","metadata":{"execution_time":0.1,"tokens_used":1}}}"#;

fn agent_response() -> String {
    format!(r#"{{"status":"success","data":{AGENT}}}"#)
}

fn new_agent() -> CreateAgentRequest {
    serde_json::from_value(serde_json::json!({"name": "n", "framework": "echo"})).unwrap()
}

fn query() -> InvokeRequest {
    InvokeRequest { query: "hi".into(), parameters: None, session_id: None, async_: None }
}

/// The one idempotency key every attempt of a logical POST carried.
fn one_key(seen: &[Seen]) -> String {
    let key = seen[0].header("idempotency-key").expect("a POST carries an idempotency key").to_owned();
    for attempt in seen {
        assert_eq!(attempt.header("idempotency-key"), Some(key.as_str()), "every attempt reuses the key");
        assert_eq!(attempt.body, seen[0].body, "every attempt sends the same body");
    }
    key
}

fn waited(seen: &[Seen], from: usize) -> Duration {
    seen[from + 1].at - seen[from].at
}

/// A client whose attempts time out after `millis`.
fn with_timeout(server: &Server, millis: u64) -> Client {
    server.builder().timeout(Duration::from_millis(millis)).build().unwrap()
}

mod retry_after {
    use super::*;

    #[tokio::test]
    async fn a_503_with_retry_after_seconds_is_retried_after_that_delay_with_the_same_key() {
        let server = Server::start(vec![
            json(503, "Retry-After: 1\r\n", &error("INTERNAL_ERROR", "busy")).fault("503 Retry-After: 1"),
            json(201, "", &agent_response()),
        ])
        .await;
        let created = server.client().create_agent(new_agent()).send().await.unwrap();
        assert_eq!(created.body.data.id, "agt_1");
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        one_key(&seen);
        assert!(waited(&seen, 0) >= Duration::from_secs(1), "retried after {:?}", waited(&seen, 0));
    }

    #[tokio::test]
    async fn a_429_with_an_http_date_is_retried_no_sooner_than_that_date() {
        // The date has whole seconds, so it lies between one and two seconds ahead.
        let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
        let not_before = httpdate::parse_http_date(&date).unwrap();
        let server = Server::start(vec![
            json(429, &format!("Retry-After: {date}\r\n"), &error("RATE_LIMITED", "slow down"))
                .fault("429 Retry-After: <HTTP-date>"),
            json(200, "", INVOKED),
        ])
        .await;
        let response = server.client().invoke_agent("agt_1", query()).send().await.unwrap();
        assert!(matches!(response.body, InvokeAgentResponse::Ok(_)));
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        one_key(&seen);
        assert!(seen[1].wall >= not_before, "retried {:?} before the date", not_before.duration_since(seen[1].wall));
    }

    #[tokio::test]
    async fn an_exhausted_429_without_retry_after_waits_for_the_window_reset() {
        let reset = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 2;
        let headers = format!("X-RateLimit-Limit: 10\r\nX-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: {reset}\r\n");
        let server = Server::start(vec![
            json(429, &headers, &error("RATE_LIMITED", "slow down")).fault("429 X-RateLimit-Reset"),
            json(200, "", INVOKED),
        ])
        .await;
        server.client().invoke_agent("agt_1", query()).send().await.unwrap();
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        one_key(&seen);
        assert!(seen[1].wall >= UNIX_EPOCH + Duration::from_secs(reset), "retried before the reset");
    }

    #[tokio::test]
    async fn a_retry_after_longer_than_max_retry_after_is_capped() {
        let server = Server::start(vec![
            json(503, "Retry-After: 3600\r\n", &error("INTERNAL_ERROR", "busy")).fault("503 Retry-After: 3600"),
            json(200, "", INVOKED),
        ])
        .await;
        let policy =
            RetryPolicy::new().initial_backoff(Duration::from_millis(10)).max_retry_after(Duration::from_millis(200));
        let client = server.builder().retry_policy(policy).build().unwrap();
        let started = Instant::now();
        client.invoke_agent("agt_1", query()).send().await.unwrap();
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        one_key(&seen);
        assert!(waited(&seen, 0) >= Duration::from_millis(200), "retried after {:?}", waited(&seen, 0));
        assert!(started.elapsed() < Duration::from_secs(30), "the hour-long hint was not capped");
    }

    #[tokio::test]
    async fn a_409_for_a_request_still_in_progress_is_retried_for_the_stored_answer() {
        let server = Server::start(vec![
            json(409, "Retry-After: 0\r\n", &error("CONFLICT", "still in progress")).fault("409 in_progress"),
            json(201, "", &agent_response()),
        ])
        .await;
        let created = server.client().create_agent(new_agent()).send().await.unwrap();
        assert_eq!(created.body.data.id, "agt_1");
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        one_key(&seen);
    }

    #[tokio::test]
    async fn a_409_without_retry_after_is_final() {
        let server = Server::start(vec![json(409, "", &error("CONFLICT", "not deployed"))]).await;
        let err = server.client().invoke_agent("agt_1", query()).send().await.unwrap_err();
        assert_eq!(err.status().map(|s| s.as_u16()), Some(409));
        assert!(!err.is_retryable());
        assert_eq!(server.seen().len(), 1);
    }

    #[tokio::test]
    async fn retry_after_is_kept_on_the_error_when_retries_are_spent() {
        let server = Server::start(vec![
            json(503, "Retry-After: 0\r\n", &error("INTERNAL_ERROR", "1")).fault("503 Retry-After: 0"),
            json(503, "Retry-After: 0\r\n", &error("INTERNAL_ERROR", "2")).fault("503 Retry-After: 0"),
            json(503, "Retry-After: 5\r\n", &error("INTERNAL_ERROR", "3")).fault("503 Retry-After: 5"),
        ])
        .await;
        let err = server.client().invoke_agent("agt_1", query()).send().await.unwrap_err();
        assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
        assert_eq!(err.api_failure().unwrap().message, "3", "the last attempt's error is returned");
        assert_eq!(err.retry_after(), Some(Duration::from_secs(5)));
        assert!(err.is_retryable());
        let seen = server.seen();
        assert_eq!(seen.len(), 3, "the default policy retries twice");
        one_key(&seen);
    }
}

mod resets {
    use super::*;

    /// The head of a JSON response promising `length` bytes of body.
    fn promised(status: u16, length: usize) -> Vec<u8> {
        format!("{}Content-Length: {length}\r\n\r\n", head(status, "application/json", "")).into_bytes()
    }

    #[tokio::test]
    async fn a_reset_before_any_response_is_retried_with_the_same_key() {
        let server = Server::start(vec![
            Script::new(vec![Step::Reset]).fault("reset before the response"),
            json(201, "", &agent_response()),
        ])
        .await;
        server.client().create_agent(new_agent()).send().await.unwrap();
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        one_key(&seen);
    }

    #[tokio::test]
    async fn a_reset_after_the_headers_is_retried_with_the_same_key() {
        let body = agent_response();
        let server = Server::start(vec![
            // The pause lets the client read the head before the reset.
            Script::new(vec![Step::Write(0, promised(201, body.len())), Step::Stall(50), Step::Reset])
                .fault("reset after the headers"),
            json(201, "", &body),
        ])
        .await;
        let created = server.client().create_agent(new_agent()).send().await.unwrap();
        assert_eq!(created.body.data.id, "agt_1");
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        one_key(&seen);
    }

    #[tokio::test]
    async fn a_body_cut_short_by_a_close_is_retried() {
        let body = agent_response();
        let server = Server::start(vec![
            Script::new(vec![
                Step::Write(0, promised(200, body.len())),
                Step::Write(0, body.as_bytes()[..20].to_vec()),
            ])
            .fault("body cut short (FIN)"),
            json(200, "", &body),
        ])
        .await;
        let agent = server.client().get_agent("agt_1").send().await.unwrap();
        assert_eq!(agent.body.data.id, "agt_1");
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        assert!(seen.iter().all(|s| s.header("idempotency-key").is_none()), "a GET needs no key");
    }

    #[tokio::test]
    async fn resets_mid_body_on_every_attempt_end_in_a_retryable_transport_error() {
        let cut = || {
            Script::new(vec![
                Step::Write(0, promised(200, INVOKED.len())),
                Step::Write(0, INVOKED.as_bytes()[..30].to_vec()),
                Step::Stall(50),
                Step::Reset,
            ])
            .fault("reset mid-body")
        };
        let server = Server::start(vec![cut(), cut(), cut()]).await;
        let err = server.client().invoke_agent("agt_1", query()).send().await.unwrap_err();
        assert!(matches!(err, Error::Transport(_)), "{err:?}");
        assert!(err.is_retryable());
        let seen = server.seen();
        assert_eq!(seen.len(), 3, "one attempt and two retries");
        one_key(&seen);
    }

    #[tokio::test]
    async fn an_error_response_cut_short_is_still_its_status() {
        let body = error("INTERNAL_ERROR", "busy");
        let server = Server::start(vec![
            Script::new(vec![
                Step::Write(0, promised(503, body.len())),
                Step::Write(0, body.as_bytes()[..10].to_vec()),
                Step::Stall(50),
                Step::Reset,
            ])
            .fault("503 with its body reset"),
        ])
        .await;
        let err = server
            .client()
            .invoke_agent("agt_1", query())
            .options(RequestOptions::new().max_retries(0))
            .send()
            .await
            .unwrap_err();
        let failure = err.api_failure().expect("an API failure");
        assert_eq!(failure.status().as_u16(), 503);
        assert_eq!(failure.code, ErrorCode::InternalError);
        assert_eq!(failure.body, None);
        assert!(err.is_retryable());
    }
}

mod stalls {
    use super::*;

    #[tokio::test]
    async fn no_headers_within_the_timeout_is_a_timeout_that_is_retried_with_the_same_key() {
        let server = Server::start(vec![
            Script::new(vec![Step::Stall(10_000)]).fault("stall before the headers"),
            json(201, "", &agent_response()),
        ])
        .await;
        let created = with_timeout(&server, 300).create_agent(new_agent()).send().await.unwrap();
        assert_eq!(created.body.data.id, "agt_1");
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        one_key(&seen);
        assert!(waited(&seen, 0) >= Duration::from_millis(300), "gave up after {:?}", waited(&seen, 0));
    }

    #[tokio::test]
    async fn stalls_on_every_attempt_end_in_timeout() {
        let stall = || Script::new(vec![Step::Stall(10_000)]).fault("stall before the headers");
        let server = Server::start(vec![stall(), stall(), stall()]).await;
        let started = Instant::now();
        let err = with_timeout(&server, 200).list_agents().send().await.unwrap_err();
        assert!(matches!(err, Error::Timeout), "{err:?}");
        assert!(err.is_retryable());
        assert_eq!(server.seen().len(), 3);
        assert!(
            started.elapsed() >= Duration::from_millis(600),
            "three attempts of 200 ms took {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_body_that_stalls_after_the_headers_times_out_and_is_retried() {
        let body = agent_response();
        let server = Server::start(vec![
            Script::new(vec![
                Step::Write(
                    0,
                    format!("{}Content-Length: {}\r\n\r\n", head(200, "application/json", ""), body.len()).into_bytes(),
                ),
                Step::Write(0, body.as_bytes()[..20].to_vec()),
                Step::Stall(10_000),
            ])
            .fault("stall after the headers"),
            json(200, "", &body),
        ])
        .await;
        let agent = with_timeout(&server, 300).get_agent("agt_1").send().await.unwrap();
        assert_eq!(agent.body.data.id, "agt_1");
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        assert!(waited(&seen, 0) >= Duration::from_millis(300), "gave up after {:?}", waited(&seen, 0));
    }
}

mod sse_faults {
    use super::*;

    fn start(id: u32) -> String {
        format!(
            "event: start\nid: str_1:{id}\ndata: {{\"stream_id\":\"str_1\",\"agent_id\":\"agt_1\",\"created_at\":\"t\"}}\n\n"
        )
    }

    fn chunk(id: u32, text: &str) -> String {
        format!("event: chunk\nid: str_1:{id}\ndata: {{\"index\":{},\"text\":\"{text}\"}}\n\n", id - 1)
    }

    fn done(id: u32, result: &str) -> String {
        format!(
            "event: done\nid: str_1:{id}\ndata: {{\"result\":\"{result}\",\"metadata\":{{\"execution_time\":0.1,\"tokens_used\":1}}}}\n\n"
        )
    }

    /// The first bytes of an event, cut before its end.
    fn partial(id: u32) -> String {
        format!("event: chunk\nid: str_1:{id}\ndata: {{\"index\":{},\"te", id - 1)
    }

    fn sse_steps(pieces: &[&str], then: Vec<Step>) -> Script {
        let owned: Vec<(u64, &str)> = pieces.iter().map(|p| (0, *p)).collect();
        let mut script = sse(&owned);
        script.steps.extend(then);
        script
    }

    /// Collects the stream into event names (and the text of chunks), and
    /// the errors it yielded, in order.
    async fn drain(stream: &mut runagent_client::EventStream<StreamAgentEvent>) -> (Vec<String>, Vec<Error>) {
        let (mut events, mut errors) = (Vec::new(), Vec::new());
        while let Some(item) = stream.next().await {
            match item {
                Ok(StreamAgentEvent::Start(_)) => events.push("start".to_owned()),
                Ok(StreamAgentEvent::Chunk(c)) => events.push(format!("chunk {}", c.text)),
                Ok(StreamAgentEvent::Done(d)) => events.push(format!("done {}", d.result)),
                Ok(StreamAgentEvent::Error(e)) => events.push(format!("error {e:?}")),
                Ok(StreamAgentEvent::Unknown { event, .. }) => events.push(format!("unknown {event}")),
                Err(err) => errors.push(err),
            }
        }
        (events, errors)
    }

    fn open(client: &Client, opts: RequestOptions) -> runagent_client::EventStream<StreamAgentEvent> {
        client.stream_agent("agt_1", query()).options(opts).send().unwrap()
    }

    #[tokio::test]
    async fn an_event_cut_by_a_reset_resumes_after_the_last_whole_event_without_duplicates() {
        let server = Server::start(vec![
            sse_steps(&["retry: 200\n", &start(0), &chunk(1, "Hel"), &partial(2)], vec![Step::Stall(30), Step::Reset])
                .fault("SSE reset mid-event"),
            // The server replays from the last id it was given, inclusive,
            // which a client must tolerate.
            sse(&[(0, &chunk(1, "Hel")), (0, &chunk(2, "lo")), (0, &done(3, "Hello"))]),
        ])
        .await;
        let mut stream = open(&server.client(), RequestOptions::new());
        let (events, errors) = drain(&mut stream).await;
        assert!(errors.is_empty(), "the cut event is dropped, not reported: {errors:?}");
        assert_eq!(events, ["start", "chunk Hel", "chunk lo", "done Hello"]);
        assert_eq!(stream.reconnects(), 1);
        assert_eq!(stream.last_event_id().as_deref(), Some("str_1:3"));
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].header("last-event-id"), None);
        assert_eq!(seen[1].header("last-event-id"), Some("str_1:1"), "resumes after the last whole event");
        assert_eq!((seen[1].method.as_str(), &seen[1].body), ("POST", &seen[0].body), "the same request again");
        assert!(waited(&seen, 0) >= Duration::from_millis(200), "the server's retry: 200 was not honoured");
    }

    #[tokio::test]
    async fn a_stream_cut_before_any_event_id_ends_with_stream_interrupted() {
        let server = Server::start(vec![
            sse_steps(&["event: start\ndata: {\"stream_id\":\"str_1\",\"agent"], vec![])
                .fault("SSE closed mid-event before any id"),
        ])
        .await;
        let (events, errors) = drain(&mut open(&server.client(), RequestOptions::new())).await;
        assert!(events.is_empty());
        assert!(matches!(errors.as_slice(), [Error::StreamInterrupted { attempts: 0 }]), "{errors:?}");
        // Starting over would run the agent again and repeat its events.
        assert_eq!(server.seen().len(), 1);
    }

    #[tokio::test]
    async fn a_resumption_refused_with_404_ends_with_the_api_error() {
        let server = Server::start(vec![
            sse_steps(&["retry: 10\n", &start(0), &chunk(1, "Hel"), &partial(2)], vec![]).fault("SSE closed mid-event"),
            json(404, "", &error("NOT_FOUND", "stream expired")).fault("404 on resume"),
        ])
        .await;
        let (events, errors) = drain(&mut open(&server.client(), RequestOptions::new())).await;
        assert_eq!(events, ["start", "chunk Hel"]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].code(), Some(&ErrorCode::NotFound));
        assert_eq!(errors[0].status().map(|s| s.as_u16()), Some(404));
        assert_eq!(server.seen().len(), 2, "a 404 is final");
    }

    #[tokio::test]
    async fn a_stream_cut_on_every_resumption_gives_up_after_max_attempts() {
        let server = Server::start(vec![
            sse_steps(&["retry: 10\n", &start(0), &partial(1)], vec![]).fault("SSE closed mid-event"),
            sse_steps(&[&partial(1)], vec![Step::Reset]).fault("SSE reset mid-event"),
            sse_steps(&[&start(0), &partial(1)], vec![]).fault("SSE closed mid-event"),
        ])
        .await;
        let opts = RequestOptions::new().resume_policy(ResumePolicy::new().max_attempts(2));
        let mut stream = open(&server.client(), opts);
        let (events, errors) = drain(&mut stream).await;
        assert_eq!(events, ["start"], "the replayed start is not delivered twice");
        assert!(matches!(errors.as_slice(), [Error::StreamInterrupted { attempts: 2 }]), "{errors:?}");
        assert_eq!(stream.reconnects(), 2);
        let seen = server.seen();
        assert_eq!(seen.len(), 3);
        assert!(seen[1..].iter().all(|s| s.header("last-event-id") == Some("str_1:0")));
    }

    #[tokio::test]
    async fn a_503_while_resuming_is_retried_and_the_stream_completes() {
        let server = Server::start(vec![
            sse_steps(&["retry: 10\n", &start(0), &partial(1)], vec![Step::Stall(20), Step::Reset])
                .fault("SSE reset mid-event"),
            json(503, "", &error("INTERNAL_ERROR", "busy")).fault("503 on resume"),
            sse(&[(0, &chunk(1, "ok")), (0, &done(2, "ok"))]),
        ])
        .await;
        let mut stream = open(&server.client(), RequestOptions::new());
        let (events, errors) = drain(&mut stream).await;
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(events, ["start", "chunk ok", "done ok"]);
        let seen = server.seen();
        assert_eq!(seen.len(), 3);
        assert!(seen[1..].iter().all(|s| s.header("last-event-id") == Some("str_1:0")));
    }

    #[tokio::test]
    async fn a_stream_silent_past_the_timeout_resumes() {
        let server = Server::start(vec![
            sse_steps(&["retry: 10\n", &start(0)], vec![Step::Stall(10_000)]).fault("SSE stall after an event"),
            sse(&[(0, &chunk(1, "late")), (0, &done(2, "late"))]),
        ])
        .await;
        let (events, errors) = drain(&mut open(&with_timeout(&server, 300), RequestOptions::new())).await;
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(events, ["start", "chunk late", "done late"]);
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1].header("last-event-id"), Some("str_1:0"));
        assert!(waited(&seen, 0) >= Duration::from_millis(300), "gave up after {:?}", waited(&seen, 0));
    }

    #[tokio::test]
    async fn a_stream_silent_before_its_first_event_cannot_resume() {
        let server =
            Server::start(vec![sse_steps(&[], vec![Step::Stall(10_000)]).fault("SSE stall before any event")]).await;
        let (events, errors) = drain(&mut open(&with_timeout(&server, 200), RequestOptions::new())).await;
        assert!(events.is_empty());
        assert!(matches!(errors.as_slice(), [Error::StreamInterrupted { attempts: 0 }]), "{errors:?}");
        assert_eq!(server.seen().len(), 1);
    }

    #[tokio::test]
    async fn an_event_with_malformed_json_is_a_decode_item_and_the_stream_goes_on() {
        let server = Server::start(vec![
            sse(&[
                (0, &start(0)),
                (0, "event: chunk\nid: str_1:1\ndata: {\"index\":0,\"text\":\n\n"),
                (0, &chunk(2, "after")),
                (0, &done(3, "after")),
            ])
            .fault("SSE event with malformed JSON"),
        ])
        .await;
        let (events, errors) = drain(&mut open(&server.client(), RequestOptions::new())).await;
        assert_eq!(events, ["start", "chunk after", "done after"]);
        assert!(matches!(errors.as_slice(), [Error::Decode { .. }]), "{errors:?}");
        assert_eq!(server.seen().len(), 1);
    }
}

mod malformed_json {
    use super::*;

    #[tokio::test]
    async fn malformed_json_on_a_success_status_is_a_decode_error_and_not_retried() {
        let cut = r#"{"status":"success","data":{"id":"agt_1","na"#;
        let server = Server::start(vec![json(201, "", cut).fault("malformed JSON on 201")]).await;
        let err = server.client().create_agent(new_agent()).send().await.unwrap_err();
        match &err {
            Error::Decode { status, body, .. } => {
                assert_eq!(status.as_u16(), 201);
                assert_eq!(body, cut, "the body is kept for inspection");
            }
            other => panic!("expected a decode error, got {other:?}"),
        }
        assert!(!err.is_retryable());
        // The server did the work; asking again would not fix the body.
        assert_eq!(server.seen().len(), 1);
    }

    #[tokio::test]
    async fn well_formed_json_of_the_wrong_shape_is_a_decode_error() {
        let wrong = r#"{"status":"success","data":"not a list","pagination":null}"#;
        let server = Server::start(vec![json(200, "", wrong).fault("wrong JSON shape on 200")]).await;
        let err = server.client().list_agents().send().await.unwrap_err();
        assert!(matches!(&err, Error::Decode { body, .. } if body == wrong), "{err:?}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(200));
        assert_eq!(server.seen().len(), 1);
    }

    #[tokio::test]
    async fn malformed_json_on_a_500_is_an_api_error_and_retried() {
        let cut = r#"{"status":"error","error":{"code":"INTERNAL_"#;
        let bad = || json(500, "", cut).fault("malformed JSON on 500");
        let server = Server::start(vec![bad(), bad(), bad()]).await;
        let err = server.client().invoke_agent("agt_1", query()).send().await.unwrap_err();
        let failure = err.api_failure().expect("an API failure");
        assert_eq!(failure.status().as_u16(), 500);
        assert_eq!(failure.code, ErrorCode::InternalError, "derived from the status");
        assert_eq!(failure.body, None);
        assert_eq!(failure.raw_body, cut);
        assert_eq!(failure.message, cut);
        let seen = server.seen();
        assert_eq!(seen.len(), 3);
        one_key(&seen);
    }

    #[tokio::test]
    async fn malformed_json_on_a_400_is_returned_at_once() {
        let server = Server::start(vec![json(400, "", "{\"error\": oops").fault("malformed JSON on 400")]).await;
        let err = server.client().invoke_agent("agt_1", query()).send().await.unwrap_err();
        let failure = err.api_failure().expect("an API failure");
        assert_eq!(failure.code, ErrorCode::InvalidInput);
        assert_eq!(failure.body, None);
        assert_eq!(failure.raw_body, "{\"error\": oops");
        assert!(!err.is_retryable());
        assert_eq!(server.seen().len(), 1);
    }
}
