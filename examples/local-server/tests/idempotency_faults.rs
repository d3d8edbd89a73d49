//! Idempotency end to end: `runagent-client` talks to a real
//! `runagent-local` through a fault-injecting TCP proxy that loses the
//! response to a POST after the server has processed it (a reset, or a body
//! cut short), or answers 503 without forwarding. The client retries with
//! the same `Idempotency-Key`, and each test checks on the server's side
//! that every logical POST took effect exactly once: the agents listed, the
//! runs of a `command` agent that counts its runs in a file, the operation
//! ids, and the usage counters.
//!
//! Run with `--nocapture` to see how many faults each test injected.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use runagent_client::operations::InvokeAgentResponse;
use runagent_client::types::{BatchRequest, CreateAgentRequest, InvokeRequest};
use runagent_client::{Client, RetryPolicy};
use serde_json::{Value, json};
use support::{KEY, LocalServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A `command` agent that appends a line to `runs.log` each time it runs,
/// so that the test can count the runs the server really made.
const COUNTING_AGENT: &str = r#"#!/bin/sh
read -r request
echo run >> runs.log
echo '{"result": "counted", "tokens_used": 1}'
"#;

/// What the proxy does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Forwards the request and the response untouched.
    None,
    /// Forwards the request, reads the whole response, then resets the
    /// client's connection without sending a byte of it.
    LoseResponse,
    /// Forwards the request, then sends the response's head and half its
    /// body, and closes.
    CutResponse,
    /// Answers 503 itself; the server never sees the request.
    Unavailable,
}

/// One request as the proxy handled it.
#[derive(Debug, Clone)]
struct Exchange {
    method: String,
    path: String,
    idempotency_key: Option<String>,
    fault: Fault,
    /// The server's response, when the request was forwarded.
    upstream: Option<Upstream>,
}

#[derive(Debug, Clone)]
struct Upstream {
    status: u16,
    replayed: bool,
    body: Vec<u8>,
}

impl Upstream {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct State {
    /// One-shot faults: the first request with this method and path suffix
    /// gets the fault, and the entry is used up.
    planned: Vec<(&'static str, &'static str, Fault)>,
    log: Vec<Exchange>,
}

struct Proxy {
    base_url: String,
    state: Arc<Mutex<State>>,
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        let upstream = upstream.trim_start_matches("http://").split('/').next().unwrap().to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                tokio::spawn(relay(socket, upstream.clone(), shared.clone()));
            }
        });
        Proxy { base_url, state }
    }

    /// Plans `fault` for the next request with `method` whose path ends
    /// with `suffix`.
    fn inject(&self, method: &'static str, suffix: &'static str, fault: Fault) {
        self.state.lock().unwrap().planned.push((method, suffix, fault));
    }

    fn log(&self) -> Vec<Exchange> {
        self.state.lock().unwrap().log.clone()
    }

    fn faults_injected(&self) -> usize {
        self.log().iter().filter(|e| e.fault != Fault::None).count()
    }

    /// Asserts that every planned fault was injected, and prints the count.
    fn report(&self, test: &str) {
        let state = self.state.lock().unwrap();
        assert!(state.planned.is_empty(), "faults planned but never injected: {:?}", state.planned);
        drop(state);
        println!("{test}: faults injected: {}", self.faults_injected());
    }

    /// The exchanges of one logical POST: every attempt sent the key of
    /// the first one.
    fn attempts_with_key(&self, key: &str) -> Vec<Exchange> {
        self.log().into_iter().filter(|e| e.idempotency_key.as_deref() == Some(key)).collect()
    }

    fn last_key(&self, method: &str, suffix: &str) -> String {
        self.log()
            .iter()
            .rev()
            .find(|e| e.method == method && e.path.ends_with(suffix))
            .and_then(|e| e.idempotency_key.clone())
            .expect("a POST with an idempotency key went through the proxy")
    }
}

/// Reads a message head and its `Content-Length` body (or, with `to_eof`,
/// everything until the peer closes).
async fn read_message(socket: &mut TcpStream, to_eof: bool) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut body = buf[end + 4..].to_vec();
    if to_eof {
        socket.read_to_end(&mut body).await.ok()?;
    } else {
        let length = header(&head, "content-length").map_or(0, |v| v.parse().unwrap());
        while body.len() < length {
            let n = socket.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    Some((head, body))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .find_map(|(n, v)| n.trim().eq_ignore_ascii_case(name).then_some(v.trim()))
}

/// Decodes a chunked body; bodies with a length pass through.
fn dechunk(head: &str, body: &[u8]) -> Vec<u8> {
    if !header(head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        return body.to_vec();
    }
    let (mut out, mut rest) = (Vec::new(), body);
    while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..line_end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
        rest = &rest[line_end + 2 + size + 2..];
    }
    out
}

/// Handles one client connection: one request, one response, then close.
async fn relay(mut client: TcpStream, upstream: String, state: Arc<Mutex<State>>) {
    let Some((head, body)) = read_message(&mut client, false).await else { return };
    let mut request_line = head.lines().next().unwrap().split(' ');
    let method = request_line.next().unwrap().to_owned();
    let path = request_line.next().unwrap().split('?').next().unwrap().to_owned();
    let fault = {
        let mut state = state.lock().unwrap();
        let planned = state.planned.iter().position(|(m, suffix, _)| *m == method && path.ends_with(suffix));
        planned.map_or(Fault::None, |i| state.planned.remove(i).2)
    };
    let mut exchange = Exchange {
        method,
        path,
        idempotency_key: header(&head, "idempotency-key").map(str::to_owned),
        fault,
        upstream: None,
    };
    if fault == Fault::Unavailable {
        let body = r#"{"status":"error","error":{"code":"INTERNAL_ERROR","message":"injected by the proxy"}}"#;
        let response = format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        state.lock().unwrap().log.push(exchange);
        let _ = client.write_all(response.as_bytes()).await;
        let _ = client.shutdown().await;
        return;
    }
    // One request per upstream connection, so that its end marks the end
    // of the response.
    let forwarded: String = head
        .split("\r\n")
        .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
        .map(|line| format!("{line}\r\n"))
        .collect();
    let mut server = TcpStream::connect(&upstream).await.unwrap();
    server.write_all(format!("{forwarded}Connection: close\r\n\r\n").as_bytes()).await.unwrap();
    server.write_all(&body).await.unwrap();
    let (response_head, response_body) = read_message(&mut server, true).await.expect("the server answers");
    exchange.upstream = Some(Upstream {
        status: response_head.split(' ').nth(1).unwrap().parse().unwrap(),
        replayed: header(&response_head, "idempotent-replayed") == Some("true"),
        body: dechunk(&response_head, &response_body),
    });
    state.lock().unwrap().log.push(exchange);
    match fault {
        Fault::LoseResponse => {
            // SO_LINGER 0: the close is a reset, as when a middlebox drops
            // the connection.
            let _ = client.set_zero_linger();
            drop(client);
        }
        Fault::CutResponse => {
            let _ = client.write_all(format!("{response_head}\r\n\r\n").as_bytes()).await;
            let _ = client.write_all(&response_body[..response_body.len() / 2]).await;
            let _ = client.shutdown().await;
        }
        Fault::None | Fault::Unavailable => {
            let _ = client.write_all(format!("{response_head}\r\n\r\n").as_bytes()).await;
            let _ = client.write_all(&response_body).await;
            let _ = client.shutdown().await;
        }
    }
}

/// A client through the proxy that retries quickly and often enough for
/// two faults in a row.
fn client(proxy: &Proxy) -> Client {
    Client::builder()
        .api_key(KEY)
        .base_url(&proxy.base_url)
        .timeout(Duration::from_secs(20))
        .retry_policy(RetryPolicy::new().max_retries(3).initial_backoff(Duration::from_millis(20)))
        .build()
        .unwrap()
}

fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

async fn create(client: &Client, name: &str, framework: &str) -> String {
    let mut body = json!({"name": name, "framework": framework});
    if framework == "command" {
        body["entrypoint"] = json!("agent.sh");
    }
    client.create_agent(from_json::<CreateAgentRequest>(body)).send().await.unwrap().into_body().data.id
}

async fn agent_count(client: &Client) -> i64 {
    client.list_agents().send().await.unwrap().into_body().pagination.total
}

/// Checks one logical POST that met `faults` (in order) before succeeding:
/// one attempt per fault plus the successful one, all with one key; every
/// forwarded attempt after the first processed one was a replay of the
/// stored response, which is the one the client got.
fn assert_exactly_once(proxy: &Proxy, key: &str, faults: &[Fault], client_got: &Value) {
    let attempts = proxy.attempts_with_key(key);
    let seen: Vec<Fault> = attempts.iter().map(|e| e.fault).collect();
    let mut expected = faults.to_vec();
    expected.push(Fault::None);
    assert_eq!(seen, expected, "attempts of one logical POST, all with key {key}");
    let forwarded: Vec<&Upstream> = attempts.iter().filter_map(|e| e.upstream.as_ref()).collect();
    assert!(!forwarded[0].replayed, "the first forwarded attempt ran");
    for later in &forwarded[1..] {
        assert!(later.replayed, "a retry reaching the server is a replay, not a second run");
        assert_eq!((later.status, &later.body), (forwarded[0].status, &forwarded[0].body));
    }
    assert_eq!(&forwarded[0].json(), client_got, "the client got the response of the one run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_agent_whose_response_is_lost_creates_one_agent() {
    let server = LocalServer::start(COUNTING_AGENT);
    let proxy = Proxy::start(&server.base_url).await;
    let client = client(&proxy);

    proxy.inject("POST", "/agents", Fault::LoseResponse);
    let first = client.create_agent(from_json(json!({"name": "lost", "framework": "echo"}))).send().await.unwrap();
    assert_exactly_once(&proxy, &proxy.last_key("POST", "/agents"), &[Fault::LoseResponse], &json_of(&first.body));

    proxy.inject("POST", "/agents", Fault::CutResponse);
    let second = client.create_agent(from_json(json!({"name": "cut", "framework": "echo"}))).send().await.unwrap();
    assert_exactly_once(&proxy, &proxy.last_key("POST", "/agents"), &[Fault::CutResponse], &json_of(&second.body));

    proxy.inject("POST", "/agents", Fault::Unavailable);
    proxy.inject("POST", "/agents", Fault::LoseResponse);
    let third = client.create_agent(from_json(json!({"name": "both", "framework": "echo"}))).send().await.unwrap();
    let faults = [Fault::Unavailable, Fault::LoseResponse];
    assert_exactly_once(&proxy, &proxy.last_key("POST", "/agents"), &faults, &json_of(&third.body));

    assert_eq!(agent_count(&client).await, 3, "three logical creates, three agents");
    let keys: std::collections::HashSet<_> =
        proxy.log().into_iter().filter(|e| e.method == "POST").filter_map(|e| e.idempotency_key).collect();
    assert_eq!(keys.len(), 3, "each logical POST has its own key");

    // Every request that reached the server counted against the rate
    // limit, replays included; the proxy's 503 never reached it.
    let reached = i64::try_from(proxy.log().iter().filter(|e| e.upstream.is_some()).count()).unwrap();
    let usage = client.get_usage().send().await.unwrap().into_body().data;
    assert_eq!(usage.used, reached + 1, "used counts this request too");
    proxy.report("create_agent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_whose_responses_are_lost_run_the_agent_once() {
    let server = LocalServer::start(COUNTING_AGENT);
    let proxy = Proxy::start(&server.base_url).await;
    let client = client(&proxy);
    let agent = create(&client, "counter", "command").await;
    client.deploy_agent(&agent).send().await.unwrap().into_body().wait().await.unwrap();
    let query = |text: &str| from_json::<InvokeRequest>(json!({"query": text}));

    proxy.inject("POST", "/invoke", Fault::LoseResponse);
    let answer = client.invoke_agent(&agent, query("one")).send().await.unwrap();
    let InvokeAgentResponse::Ok(answer) = answer.into_body() else { panic!("expected 200") };
    assert_eq!(answer.data.result, "counted");
    assert_exactly_once(&proxy, &proxy.last_key("POST", "/invoke"), &[Fault::LoseResponse], &json_of(&answer));
    assert_eq!(server.lines_of("runs.log"), 1);

    proxy.inject("POST", "/invoke", Fault::Unavailable);
    proxy.inject("POST", "/invoke", Fault::CutResponse);
    let answer = client.invoke_agent(&agent, query("two")).send().await.unwrap();
    let InvokeAgentResponse::Ok(answer) = answer.into_body() else { panic!("expected 200") };
    let faults = [Fault::Unavailable, Fault::CutResponse];
    assert_exactly_once(&proxy, &proxy.last_key("POST", "/invoke"), &faults, &json_of(&answer));
    assert_eq!(server.lines_of("runs.log"), 2);

    proxy.inject("POST", "/batch", Fault::LoseResponse);
    let batch: BatchRequest = from_json(json!({"batch": [{"query": "a"}, {"query": "b"}, {"query": "c"}]}));
    let batch = client.batch_invoke(&agent, batch).send().await.unwrap().into_body();
    assert_eq!(batch.data.len(), 3);
    assert_exactly_once(&proxy, &proxy.last_key("POST", "/batch"), &[Fault::LoseResponse], &json_of(&batch));
    assert_eq!(server.lines_of("runs.log"), 5, "three queries, three runs");

    // Asynchronously: the replayed 202 names the one operation that ran.
    proxy.inject("POST", "/invoke", Fault::LoseResponse);
    let accepted = client.invoke_agent(&agent, from_json(json!({"query": "async", "async": true}))).send().await;
    let InvokeAgentResponse::Accepted(handle) = accepted.unwrap().into_body() else { panic!("expected 202") };
    let key = proxy.last_key("POST", "/invoke");
    let attempts = proxy.attempts_with_key(&key);
    let lost = attempts[0].upstream.as_ref().unwrap();
    assert_eq!(lost.status, 202);
    assert_eq!(lost.json()["operation_id"], handle.id());
    assert!(attempts[1].upstream.as_ref().unwrap().replayed);
    handle.wait().await.unwrap();
    assert_eq!(server.lines_of("runs.log"), 6);
    proxy.report("invoke/batch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_whose_response_is_lost_starts_one_operation() {
    let server = LocalServer::start(COUNTING_AGENT);
    let proxy = Proxy::start(&server.base_url).await;
    let client = client(&proxy);
    let agent = create(&client, "deployed", "echo").await;

    proxy.inject("POST", "/deployments", Fault::LoseResponse);
    let handle = client.deploy_agent(&agent).send().await.unwrap().into_body();
    let attempts = proxy.attempts_with_key(&proxy.last_key("POST", "/deployments"));
    assert_eq!(attempts.iter().map(|e| e.fault).collect::<Vec<_>>(), [Fault::LoseResponse, Fault::None]);
    let (lost, replay) = (attempts[0].upstream.as_ref().unwrap(), attempts[1].upstream.as_ref().unwrap());
    assert_eq!(lost.status, 202);
    assert!(replay.replayed, "the retry was answered from the stored response");
    assert_eq!(lost.json()["operation_id"], handle.id(), "the client waits on the operation that was started");
    let done = handle.wait().await.unwrap();
    assert_eq!(json_of(&done.status), "succeeded");
    proxy.report("deploy_agent");
}

fn json_of<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap()
}
