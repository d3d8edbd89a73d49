//! The binary, started on a free port with a temporary database (an SQLite
//! file, and a fresh PostgreSQL database when its binaries are installed),
//! driven through every operation with `runagent-client`, then restarted on
//! the same database.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

mod support;

use futures::StreamExt;
use runagent_client::operations::{InvokeAgentResponse, StreamAgentEvent};
use runagent_client::types;
use runagent_client::{Client, Error};
use serde_json::{Value, json};

const KEY: &str = "e2e-key";
const FREE_KEY: &str = "e2e-free-key";

/// The command agent of the tests: a tiny shell script that answers,
/// streams, fails or hangs depending on the query.
const AGENT_SCRIPT: &str = r#"#!/bin/sh
read -r request
case "$request" in
  *'"query":"fail"'*) echo "asked to fail" >&2; exit 3 ;;
  *'"query":"garbage"'*) echo "this is not json"; exit 0 ;;
  *'"query":"hang"'*) echo $$ > hang.pid; sleep 60 ;;
esac
case "$request" in
  *'"stream":true'*)
    echo '{"text": "streamed "}'
    echo '{"text": "answer", "tokens_used": 2}' ;;
  *) echo '{"result": "command answer", "tokens_used": 2}' ;;
esac
"#;

/// A running `runagent-local`.
struct Server {
    child: Child,
    base_url: String,
    /// Lines printed before `listening on` (the development key, if any).
    preamble: Vec<String>,
}

impl Server {
    fn start(db: &OsStr, agents: &Path, extra: &[&str]) -> Server {
        // A slower shutdown than the other tests: this one stops the server
        // with streams and operations in flight and checks they finish.
        let mut args: Vec<&OsStr> = vec!["--shutdown-timeout".as_ref(), "2".as_ref(), "--db".as_ref(), db];
        args.extend(["--agents-dir".as_ref(), agents.as_os_str()]);
        args.extend(extra.iter().map(OsStr::new));
        let (child, base_url, preamble) = support::spawn(args);
        Server { child, base_url, preamble }
    }

    fn client(&self, key: &str) -> Client {
        Client::builder().api_key(key).base_url(&self.base_url).max_retries(0).build().unwrap()
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap()), signal).unwrap();
    }

    /// SIGTERM, then waits for a clean exit.
    fn stop(mut self) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "the server exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "the server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the server to exit by itself (after a signal), cleanly.
    fn wait_exit(mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "the server exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "the server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: a crash.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    /// `--db`: an SQLite file or a PostgreSQL URL.
    db: std::ffi::OsString,
    agents: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Db {
    Sqlite,
    Postgres,
}

/// A fresh database of kind `db` and an agents directory; `None` when
/// PostgreSQL is asked for and its binaries are missing (the test is then
/// skipped loudly, or fails on CI).
async fn setup_on(db: Db) -> Option<Setup> {
    let dir = tempfile::tempdir().unwrap();
    let agents = dir.path().join("agents");
    std::fs::create_dir(&agents).unwrap();
    let script = agents.join("agent.sh");
    std::fs::write(&script, AGENT_SCRIPT).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = match db {
        Db::Sqlite => dir.path().join("state/runagent.db").into_os_string(),
        Db::Postgres => {
            let server = tokio::task::spawn_blocking(support::pg::shared).await.unwrap()?;
            server.create_database().await.into()
        }
    };
    Some(Setup { db, agents, _dir: dir })
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let agents = dir.path().join("agents");
    std::fs::create_dir(&agents).unwrap();
    let script = agents.join("agent.sh");
    std::fs::write(&script, AGENT_SCRIPT).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    Setup { db: dir.path().join("state/runagent.db").into_os_string(), agents, _dir: dir }
}

fn key_args() -> Vec<String> {
    vec!["--api-key".into(), format!("{KEY}:enterprise"), "--api-key".into(), format!("{FREE_KEY}:free")]
}

fn start(setup: &Setup) -> Server {
    start_with(setup, &[])
}

/// Starts the server on `setup` with the test keys, a one-second lease and
/// `extra` flags.
fn start_with(setup: &Setup, extra: &[&str]) -> Server {
    let mut args = key_args();
    args.extend(["--lease".to_owned(), "1".to_owned()]);
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&setup.db, &setup.agents, &args)
}

/// Polls operation `id` until it is final, for at most `within`.
async fn wait_final(client: &Client, id: &str, within: Duration) -> types::Operation {
    let deadline = Instant::now() + within;
    loop {
        let operation = client.get_operation(id).send().await.unwrap().into_body().data;
        if ["succeeded", "failed", "cancelled"].contains(&json_of(&operation.status).as_str().unwrap()) {
            return operation;
        }
        assert!(Instant::now() < deadline, "{id} is still {:?} after {within:?}", operation.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

fn json_of<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap()
}

fn invoke_request(value: Value) -> types::InvokeRequest {
    from_json(value)
}

async fn create(client: &Client, body: Value) -> types::Agent {
    client.create_agent(from_json(body)).send().await.unwrap().into_body().data
}

async fn deploy(client: &Client, agent_id: &str) -> types::Operation {
    let handle = client.deploy_agent(agent_id).send().await.unwrap().into_body();
    handle.wait().await.unwrap()
}

fn api_status(error: &Error) -> u16 {
    error.status().map(|s| s.as_u16()).unwrap_or_default()
}

fn api_code(error: &Error) -> String {
    error.code().map(|c| json_of(c).as_str().unwrap_or_default().to_owned()).unwrap_or_default()
}

async fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text.trim().to_owned();
        }
        assert!(Instant::now() < deadline, "{} never appeared", path.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_dead(pid: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let gone = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
        };
        if gone {
            return;
        }
        assert!(Instant::now() < deadline, "process {pid} survived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The events of a stream as (id, event) pairs, reading at most `limit`.
async fn read_events(
    stream: &mut runagent_client::EventStream<StreamAgentEvent>,
    limit: usize,
) -> Vec<(String, StreamAgentEvent)> {
    let mut events = Vec::new();
    while events.len() < limit {
        match stream.next().await {
            Some(Ok(event)) => events.push((stream.last_event_id().unwrap(), event)),
            Some(Err(error)) => panic!("stream failed: {error}"),
            None => break,
        }
    }
    events
}

fn chunk_text(event: &StreamAgentEvent) -> Option<String> {
    match event {
        StreamAgentEvent::Chunk(chunk) => Some(chunk.text.clone()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_then_a_restart() {
    every_operation_then_a_restart_on(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_then_a_restart_on_postgres() {
    every_operation_then_a_restart_on(Db::Postgres).await;
}

async fn every_operation_then_a_restart_on(db: Db) {
    let Some(setup) = setup_on(db).await else { return };
    let server = start(&setup);
    assert!(server.preamble.is_empty(), "no dev key when keys are given");
    let client = server.client(KEY);

    // --- Health, public ---------------------------------------------------
    let health = server.client("not-a-key").get_health().send().await.unwrap();
    assert!(health.body.data.healthy);
    assert!(health.meta.rate_limit.is_none());
    let unauthorized = server.client("not-a-key").list_agents().send().await.unwrap_err();
    assert_eq!(api_status(&unauthorized), 401);

    // --- Pagination over 45 agents -----------------------------------------
    let mut bulk = Vec::new();
    for i in 0..45 {
        bulk.push(create(&client, json!({"name": format!("bulk-{i}"), "framework": "echo"})).await.id);
    }
    let mut seen = Vec::new();
    for page in 1..=3 {
        let body = client.list_agents().page(page).limit(20).send().await.unwrap().into_body();
        assert_eq!(body.pagination.page, page);
        assert_eq!(body.pagination.limit, 20);
        assert_eq!(body.pagination.total, 45);
        assert_eq!(body.pagination.pages, 3);
        assert_eq!(body.data.len(), if page < 3 { 20 } else { 5 });
        seen.extend(body.data.into_iter().map(|a| a.id));
    }
    assert_eq!(seen, bulk, "oldest first, no gap, no repeat");
    let past = client.list_agents().page(4).limit(20).send().await.unwrap();
    assert!(past.body.data.is_empty());
    let all: Vec<types::Agent> = client.list_agents().limit(20).into_stream().map(Result::unwrap).collect().await;
    assert_eq!(all.len(), 45);

    // --- Create, read, replace, delete --------------------------------------
    let echo = create(
        &client,
        json!({"name": "echo-test", "framework": "echo", "description": "says it back",
               "config": {"delay_ms": 100}, "tags": ["e2e"]}),
    )
    .await;
    assert_eq!(json_of(&echo.status), "created");
    let read = client.get_agent(&echo.id).send().await.unwrap().into_body().data;
    assert_eq!(read, echo);
    let updated = client
        .update_agent(
            &echo.id,
            from_json(json!({"name": "echo-renamed", "description": null, "entrypoint": null,
                              "config": {"delay_ms": 100}, "tags": []})),
        )
        .send()
        .await
        .unwrap()
        .into_body()
        .data;
    assert_eq!(updated.name, "echo-renamed");
    assert_eq!(updated.description, None);
    assert!(updated.tags.is_empty());
    let doomed = create(&client, json!({"name": "doomed", "framework": "echo"})).await;
    let deleted = client.delete_agent(&doomed.id).send().await.unwrap().into_body();
    assert!(deleted.data.deleted);
    let gone = client.get_agent(&doomed.id).send().await.unwrap_err();
    assert_eq!(api_status(&gone), 404);
    let filtered = client.list_agents().status(from_json(json!("deployed"))).send().await.unwrap();
    assert_eq!(filtered.body.pagination.total, 0);

    // --- Deploy ---------------------------------------------------------
    let not_deployed = client.invoke_agent(&echo.id, invoke_request(json!({"query": "hi"}))).send().await.unwrap_err();
    assert_eq!(api_status(&not_deployed), 409);
    let deployed = deploy(&client, &echo.id).await;
    assert_eq!(json_of(&deployed.kind), "deploy");
    assert_eq!(json_of(&deployed.result)["status"], "deployed");
    let echo = client.get_agent(&echo.id).send().await.unwrap().into_body().data;
    assert_eq!(json_of(&echo.status), "deployed");

    let command =
        create(&client, json!({"name": "command-test", "framework": "command", "entrypoint": "agent.sh"})).await;
    deploy(&client, &command.id).await;
    let broken =
        create(&client, json!({"name": "broken", "framework": "command", "entrypoint": "../outside.sh"})).await;
    let failed = client.deploy_agent(&broken.id).send().await.unwrap().into_body().wait().await.unwrap_err();
    let Error::OperationFailed(failed) = failed else { panic!("{failed}") };
    assert_eq!(json_of(&failed.error)["details"]["reason"], "not_found");
    let broken = client.get_agent(&broken.id).send().await.unwrap().into_body().data;
    assert_eq!(json_of(&broken.status), "failed");

    // --- Health ---------------------------------------------------------------
    let health = client.get_agent_health(&command.id).send().await.unwrap().into_body();
    assert!(health.data.healthy);
    let unhealthy = client.get_agent_health(&broken.id).send().await.unwrap().into_body();
    assert!(!unhealthy.data.healthy);
    #[allow(deprecated)]
    let status = client.get_agent_status(&command.id).send().await.unwrap();
    assert!(status.body.data.healthy);
    assert!(status.meta.header("deprecation").is_some());
    assert!(status.meta.header("sunset").is_some());

    // --- Invoke -----------------------------------------------------------
    let answer =
        client.invoke_agent(&command.id, invoke_request(json!({"query": "Hello"}))).send().await.unwrap().into_body();
    let InvokeAgentResponse::Ok(answer) = answer else { panic!("expected 200") };
    assert_eq!(answer.data.result, "command answer");
    assert_eq!(answer.data.metadata.tokens_used, 2);
    for (query, code) in [("fail", "AGENT_ERROR"), ("garbage", "AGENT_ERROR")] {
        let error = client.invoke_agent(&command.id, invoke_request(json!({"query": query}))).send().await.unwrap_err();
        assert_eq!((api_status(&error), api_code(&error).as_str()), (500, code));
    }
    let timeout = client
        .invoke_agent(&command.id, invoke_request(json!({"query": "hang", "parameters": {"timeout_seconds": 1}})))
        .send()
        .await
        .unwrap_err();
    assert_eq!(api_code(&timeout), "AGENT_TIMEOUT");
    std::fs::remove_file(setup.agents.join("hang.pid")).unwrap();

    // Asynchronously: 202 and an operation whose result is the answer.
    let accepted = client
        .invoke_agent(&echo.id, invoke_request(json!({"query": "async hello", "async": true})))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.meta.status.as_u16(), 202);
    let InvokeAgentResponse::Accepted(handle) = accepted.into_body() else { panic!("expected 202") };
    assert!(handle.check_url().ends_with(handle.id()));
    let async_done = handle.wait().await.unwrap();
    assert_eq!(json_of(&async_done.kind), "invoke");
    assert_eq!(json_of(&async_done.result)["result"], "async hello");
    let polled = client.get_operation(handle.id()).send().await.unwrap().into_body().data;
    assert_eq!(polled, async_done);

    // --- Cancel -------------------------------------------------------------
    let hanging = client
        .invoke_agent(&command.id, invoke_request(json!({"query": "hang", "async": true})))
        .send()
        .await
        .unwrap()
        .into_body();
    let InvokeAgentResponse::Accepted(hanging) = hanging else { panic!("expected 202") };
    let pid = wait_for_file(&setup.agents.join("hang.pid")).await;
    let cancelled = hanging.cancel().await.unwrap();
    assert_eq!(json_of(&cancelled.status), "cancelled");
    wait_dead(&pid).await;
    let again = client.cancel_operation(hanging.id()).send().await.unwrap_err();
    assert_eq!(api_status(&again), 409);
    let cancelled_id = hanging.id().to_owned();

    // --- Batch --------------------------------------------------------------
    let batch = client
        .batch_invoke(
            &command.id,
            from_json(json!({"batch": [
                {"query": "one"},
                {"query": "fail"},
                {"query": "three"},
                {"query": "four", "async": true},
            ]})),
        )
        .send()
        .await
        .unwrap()
        .into_body();
    let items: Vec<Value> = batch.data.iter().map(json_of).collect();
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["data"]["result"], "command answer");
    assert_eq!(items[1]["error"]["code"], "AGENT_ERROR");
    assert_eq!(items[1]["error"]["details"]["exit_status"], 3);
    assert_eq!(items[2]["status"], "success");
    assert_eq!(items[3]["error"]["code"], "INVALID_INPUT");
    assert_eq!(items[3]["error"]["details"]["field"], "batch[3].async");

    // --- Streams, and a resume after a dropped connection ---------------------
    let query = "one two three four five six";
    let mut stream = client.stream_agent(&echo.id, invoke_request(json!({"query": query}))).send().unwrap();
    let first = read_events(&mut stream, 3).await;
    assert!(matches!(first[0].1, StreamAgentEvent::Start(_)));
    assert_eq!(chunk_text(&first[2].1).as_deref(), Some(" two"));
    let last_id = first[2].0.clone();
    // Dropping the stream drops the connection mid-answer.
    drop(stream);
    let mut resumed =
        client.stream_agent(&echo.id, invoke_request(json!({"query": query}))).last_event_id(&last_id).send().unwrap();
    let rest = read_events(&mut resumed, 100).await;
    let (stream_id, _) = last_id.rsplit_once(':').unwrap();
    let ids: Vec<String> = first.iter().chain(&rest).map(|(id, _)| id.clone()).collect();
    let expected: Vec<String> = (0..ids.len()).map(|i| format!("{stream_id}:{i}")).collect();
    assert_eq!(ids, expected, "exactly the events after the id, once each");
    let text: String = first.iter().chain(&rest).filter_map(|(_, e)| chunk_text(e)).collect();
    assert_eq!(text, query);
    let Some((_, StreamAgentEvent::Done(done))) = rest.last() else { panic!("{rest:?}") };
    assert_eq!(done.result, query);
    assert_eq!(done.metadata.tokens_used, 6);
    // A stream id nobody knows is 404 before any event.
    let mut unknown = client
        .stream_agent(&echo.id, invoke_request(json!({"query": query})))
        .last_event_id("str_unknown:3")
        .send()
        .unwrap();
    let error = unknown.next().await.unwrap().unwrap_err();
    assert_eq!(api_status(&error), 404);

    // A command agent streams its lines; the GET form works the same.
    let mut stream = client.stream_agent(&command.id, invoke_request(json!({"query": "stream me"}))).send().unwrap();
    let events = read_events(&mut stream, 100).await;
    let text: String = events.iter().filter_map(|(_, e)| chunk_text(e)).collect();
    assert_eq!(text, "streamed answer");
    let get_events: Vec<_> = client.stream_agent_get(&echo.id, "hi there").send().unwrap().collect().await;
    assert_eq!(get_events.len(), 4, "start, two chunks, done");
    let mut failing = client.stream_agent(&command.id, invoke_request(json!({"query": "fail"}))).send().unwrap();
    let mut last = None;
    while let Some(item) = failing.next().await {
        last = Some(item);
    }
    let error = last.unwrap().unwrap_err();
    assert!(matches!(error, Error::Stream(_)), "{error}");

    // --- Idempotency ---------------------------------------------------------
    let body = json!({"name": "idempotent", "framework": "echo"});
    let first = client.create_agent(from_json(body.clone())).idempotency_key("create-once").send().await.unwrap();
    let replay = client.create_agent(from_json(body.clone())).idempotency_key("create-once").send().await.unwrap();
    assert_eq!(replay.body.data.id, first.body.data.id);
    assert_eq!(replay.meta.header("idempotent-replayed"), Some("true"));
    let reused = client
        .create_agent(from_json(json!({"name": "other", "framework": "echo"})))
        .idempotency_key("create-once")
        .send()
        .await
        .unwrap_err();
    assert_eq!(api_status(&reused), 409);

    // --- Usage ----------------------------------------------------------------
    let usage = client.get_usage().send().await.unwrap();
    assert_eq!(json_of(&usage.body.data.tier), "enterprise");
    assert!(usage.body.data.used > 50, "{:?}", usage.body.data);
    let limit = usage.meta.rate_limit.unwrap();
    assert_eq!(limit.remaining, u64::try_from(usage.body.data.remaining).unwrap());
    let free = server.client(FREE_KEY).get_usage().send().await.unwrap();
    assert_eq!(json_of(&free.body.data.tier), "free");
    assert_eq!((free.body.data.limit, free.body.data.used), (100, 1));
    let used_before = usage.body.data.used;
    // The free tier's 100 requests an hour run out, with the stubs' 429.
    let free_client = server.client(FREE_KEY);
    for _ in 1..100 {
        free_client.get_usage().send().await.unwrap();
    }
    let limited = free_client.get_usage().send().await.unwrap_err();
    assert_eq!(api_status(&limited), 429);
    assert!(limited.retry_after().is_some());

    // --- Restart on the same database -------------------------------------------
    server.stop();
    let server = start(&setup);
    let client = server.client(KEY);
    let listed = client.list_agents().limit(100).send().await.unwrap().into_body();
    // The 45, echo, command, broken and idempotent (doomed was deleted).
    assert_eq!(listed.pagination.total, 45 + 4);
    let echo_again = client.get_agent(&echo.id).send().await.unwrap().into_body().data;
    assert_eq!(echo_again, echo);
    let operation = client.get_operation(&cancelled_id).send().await.unwrap().into_body().data;
    assert_eq!(json_of(&operation.status), "cancelled");
    let operation = client.get_operation(&async_done.operation_id).send().await.unwrap().into_body().data;
    assert_eq!(operation, async_done);
    let replay = client.create_agent(from_json(body)).idempotency_key("create-once").send().await.unwrap();
    assert_eq!(replay.body.data.id, first.body.data.id);
    assert_eq!(replay.meta.header("idempotent-replayed"), Some("true"));
    // The usage window carried over too.
    let usage = client.get_usage().send().await.unwrap().into_body();
    assert!(usage.data.used > used_before);
    // And the agents still run.
    let InvokeAgentResponse::Ok(answer) = client
        .invoke_agent(&command.id, invoke_request(json!({"query": "after restart"})))
        .send()
        .await
        .unwrap()
        .into_body()
    else {
        panic!("expected 200")
    };
    assert_eq!(answer.data.result, "command answer");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_cut_off_by_a_crash_or_a_shutdown_is_failed_with_a_reason() {
    work_cut_off_on(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_cut_off_by_a_crash_or_a_shutdown_is_failed_with_a_reason_on_postgres() {
    work_cut_off_on(Db::Postgres).await;
}

async fn work_cut_off_on(db: Db) {
    let Some(setup) = setup_on(db).await else { return };
    let server = start_with(&setup, &["--instance-id", "e2e-crashed"]);
    let client = server.client(KEY);
    let agent = create(&client, json!({"name": "hang", "framework": "command", "entrypoint": "agent.sh"})).await;
    deploy(&client, &agent.id).await;

    // A crash (SIGKILL) leaves the operation running in the database.
    let InvokeAgentResponse::Accepted(crashed) = client
        .invoke_agent(&agent.id, invoke_request(json!({"query": "hang", "async": true})))
        .send()
        .await
        .unwrap()
        .into_body()
    else {
        panic!("expected 202")
    };
    let pid = wait_for_file(&setup.agents.join("hang.pid")).await;
    server.kill();
    // The program outlives a crashed server; end it for the test.
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid.parse().unwrap()), nix::sys::signal::Signal::SIGKILL);
    std::fs::remove_file(setup.agents.join("hang.pid")).unwrap();

    // The next start takes the job over once its lease (one second) ran
    // out, and fails it naming the lost instance: the program may have
    // had side effects, so it is not run again.
    let server = start(&setup);
    let client = server.client(KEY);
    let operation = wait_final(&client, crashed.id(), Duration::from_secs(10)).await;
    assert_eq!(json_of(&operation.status), "failed");
    let error = json_of(&operation.error);
    assert_eq!(error["code"], "INTERNAL_ERROR");
    assert_eq!(error["details"]["reason"], "instance_lost");
    assert_eq!(error["details"]["instance_id"], "e2e-crashed");
    assert!(error["message"].as_str().unwrap().contains("e2e-crashed"), "{error}");

    // A shutdown lets a stream in flight finish.
    let slow = create(&client, json!({"name": "slow", "framework": "echo", "config": {"delay_ms": 100}})).await;
    deploy(&client, &slow.id).await;
    let mut stream = client.stream_agent(&slow.id, invoke_request(json!({"query": "a b c d e"}))).send().unwrap();
    let opened = read_events(&mut stream, 1).await;
    assert!(matches!(opened[0].1, StreamAgentEvent::Start(_)));
    server.signal(nix::sys::signal::Signal::SIGTERM);
    let rest = read_events(&mut stream, 100).await;
    assert!(matches!(rest.last(), Some((_, StreamAgentEvent::Done(done))) if done.result == "a b c d e"), "{rest:?}");
    server.wait_exit();
    let server = start(&setup);
    let client = server.client(KEY);

    // A shutdown with work still running past the grace period stops the
    // program and fails the operation before exiting.
    let InvokeAgentResponse::Accepted(stopped) = client
        .invoke_agent(&agent.id, invoke_request(json!({"query": "hang", "async": true})))
        .send()
        .await
        .unwrap()
        .into_body()
    else {
        panic!("expected 202")
    };
    let pid = wait_for_file(&setup.agents.join("hang.pid")).await;
    let started = Instant::now();
    server.stop();
    assert!(started.elapsed() < Duration::from_secs(15));
    wait_dead(&pid).await;

    let server = start(&setup);
    let client = server.client(KEY);
    let operation = client.get_operation(stopped.id()).send().await.unwrap().into_body().data;
    assert_eq!(json_of(&operation.status), "failed");
    let agent = client.get_agent(&agent.id).send().await.unwrap().into_body().data;
    assert_eq!(json_of(&agent.status), "deployed");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keys_a_development_key_is_printed_and_remote_needs_a_flag() {
    let setup = setup();
    let server = Server::start(&setup.db, &setup.agents, &[]);
    let key = server
        .preamble
        .iter()
        .find_map(|line| line.strip_prefix("development API key: "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a development key is printed")
        .to_owned();
    let usage = server.client(&key).get_usage().send().await.unwrap();
    assert_eq!(json_of(&usage.body.data.tier), "pro");
    server.stop();

    let refused = Command::new(env!("CARGO_BIN_EXE_runagent-local"))
        .args(["--bind", "0.0.0.0", "--port", "0", "--db", ":memory:"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--allow-remote"));
}

/// A TCP proxy in front of the server that cuts the first event-stream
/// response it carries after `events` events, as a flaky network would.
async fn cutting_proxy(upstream: String, events: usize) -> String {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let armed = Arc::new(AtomicBool::new(true));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let armed = Arc::clone(&armed);
            tokio::spawn(async move {
                let server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let requests = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                });
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let n = match server_read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let before = seen.len();
                    seen.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&seen).into_owned();
                    let cut = text.find("\r\n\r\n").and_then(|head| {
                        if !text[..head].contains("text/event-stream") || !armed.load(Ordering::SeqCst) {
                            return None;
                        }
                        // The end of the `events`-th event after the headers.
                        let body = head + 4;
                        let mut end = body;
                        for _ in 0..events {
                            end += text[end..].find("\n\n")? + 2;
                        }
                        Some(end)
                    });
                    match cut {
                        Some(end) if end > before => {
                            armed.store(false, Ordering::SeqCst);
                            // The cut lands inside the response's chunked
                            // framing, as a real dropped connection would.
                            let upto = (end - before).min(n);
                            let _ = client_write.write_all(&buf[..upto]).await;
                            let _ = client_write.shutdown().await;
                            break;
                        }
                        _ => {
                            if client_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                requests.abort();
            });
        }
    });
    format!("http://{address}/v1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_resumes_a_stream_cut_mid_answer() {
    let setup = setup();
    let server = start(&setup);
    let client = server.client(KEY);
    let agent = create(&client, json!({"name": "slow", "framework": "echo", "config": {"delay_ms": 50}})).await;
    deploy(&client, &agent.id).await;

    let upstream = server.base_url.trim_start_matches("http://").trim_end_matches("/v1").to_owned();
    let proxied = Client::builder()
        .api_key(KEY)
        .base_url(cutting_proxy(upstream, 3).await)
        .max_retries(0)
        .resume_policy(runagent_client::ResumePolicy::new().max_retry(Duration::from_millis(50)))
        .build()
        .unwrap();
    let query = "the quick brown fox jumps over the lazy dog";
    let mut stream = proxied.stream_agent(&agent.id, invoke_request(json!({"query": query}))).send().unwrap();
    let events = read_events(&mut stream, 100).await;
    assert!(stream.reconnects() >= 1, "the connection was cut and resumed");
    let ids: Vec<&str> = events.iter().map(|(id, _)| id.as_str()).collect();
    let (stream_id, _) = ids[0].rsplit_once(':').unwrap();
    let expected: Vec<String> = (0..ids.len()).map(|i| format!("{stream_id}:{i}")).collect();
    assert_eq!(ids, expected, "every event once, in order");
    let text: String = events.iter().filter_map(|(_, e)| chunk_text(e)).collect();
    assert_eq!(text, query);
    assert!(matches!(events.last(), Some((_, StreamAgentEvent::Done(_)))));
    server.stop();
}
