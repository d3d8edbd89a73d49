//! Three `runagent-local` instances on one PostgreSQL and one Redis,
//! behind haproxy in round robin, as a deployment runs them: the rate
//! limit holds across them to the request, an idempotent request runs once
//! whichever instance it reaches, a stream started on one resumes on
//! another without a lost or repeated event, a killed instance's
//! deployment still ends, and restarts of Redis and of PostgreSQL cost
//! `503`s at most.
//!
//! Every server is a throwaway on free loopback ports (`support/pg.rs`,
//! `support/scale.rs`). Without PostgreSQL, redis-server or haproxy the
//! tests are skipped loudly, or fail when `CI` is set.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod support;

use futures::StreamExt;
use runagent_client::operations::StreamAgentEvent;
use runagent_client::{Client, types};
use serde_json::{Value, json};
use support::pg::PgServer;
use support::scale::{Haproxy, RedisServer};

const KEY: &str = "scale-key";
const FREE_KEY: &str = "scale-free-key";
/// The free tier's documented limit, left as it is.
const FREE_LIMIT: usize = 100;

/// Counts its runs in `runs.log`; `slow` takes a second; `slow-stream`
/// streams 30 chunks over about 1.5 s.
const AGENT_SCRIPT: &str = r#"#!/bin/sh
read -r request
echo run >> runs.log
case "$request" in
  *'"query":"slow"'*) sleep 1 ;;
  *'"query":"slow-stream"'*)
    i=0
    while [ $i -lt 30 ]; do echo "{\"text\": \"c$i \"}"; i=$((i+1)); sleep 0.05; done
    exit 0 ;;
esac
echo '{"result": "counted", "tokens_used": 1}'
"#;

/// One `runagent-local` process.
struct Instance {
    child: Child,
    base_url: String,
    log: PathBuf,
}

impl Instance {
    fn port(&self) -> u16 {
        let rest = self.base_url.strip_prefix("http://127.0.0.1:").unwrap();
        rest.split('/').next().unwrap().parse().unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// PostgreSQL, Redis, three instances and the proxy in front of them.
struct Deployment {
    dir: tempfile::TempDir,
    pg: Arc<PgServer>,
    redis: RedisServer,
    instances: Vec<Instance>,
    proxy: Haproxy,
}

impl Deployment {
    /// Starts everything; `None` when a server's binaries are missing
    /// outside CI. Instances hold leases of `lease` seconds.
    async fn start(lease: &str) -> Option<Deployment> {
        let pg = Arc::new(tokio::task::spawn_blocking(PgServer::start).await.unwrap()?);
        let redis = RedisServer::start()?;
        let db = pg.create_database().await;
        let dir = tempfile::tempdir().unwrap();
        let agents = dir.path().join("agents");
        std::fs::create_dir(&agents).unwrap();
        let script = agents.join("agent.sh");
        std::fs::write(&script, AGENT_SCRIPT).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut instances = Vec::new();
        for id in ["inst-a", "inst-b", "inst-c"] {
            let log = dir.path().join(format!("{id}.log"));
            let free = format!("{FREE_KEY}:free");
            let key = format!("{KEY}:enterprise");
            let redis_url = redis.url();
            let args: Vec<&OsStr> = vec![
                "--db".as_ref(),
                db.as_ref(),
                "--redis".as_ref(),
                redis_url.as_ref(),
                "--instance-id".as_ref(),
                id.as_ref(),
                "--agents-dir".as_ref(),
                agents.as_os_str(),
                "--api-key".as_ref(),
                key.as_ref(),
                "--api-key".as_ref(),
                free.as_ref(),
                "--lease".as_ref(),
                lease.as_ref(),
                "--shutdown-timeout".as_ref(),
                "1".as_ref(),
            ];
            let (child, base_url, _) = support::spawn_logged(args, Some(&log));
            instances.push(Instance { child, base_url, log });
        }
        let backends: Vec<(&str, u16)> =
            ["inst-a", "inst-b", "inst-c"].into_iter().zip(instances.iter().map(Instance::port)).collect();
        let proxy = Haproxy::start(&backends)?;
        Some(Deployment { dir, pg, redis, instances, proxy })
    }

    fn agents(&self) -> PathBuf {
        self.dir.path().join("agents")
    }

    fn runs(&self) -> usize {
        lines_of(&self.agents().join("runs.log"))
    }

    fn client(&self, instance: usize) -> Client {
        Client::builder().api_key(KEY).base_url(&self.instances[instance].base_url).max_retries(0).build().unwrap()
    }

    fn assert_no_panic(&self) {
        for instance in &self.instances {
            assert!(!instance.log().contains("panicked"), "{}", instance.log());
        }
    }
}

fn lines_of(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |text| text.lines().count())
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

/// A request's answer: status, headers, JSON body.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The only failure a store outage may cause: `503` in the envelope,
    /// code `INTERNAL_ERROR`, with `Retry-After`.
    fn assert_documented_503(&self) {
        assert_eq!(self.status, 503, "{}", self.body);
        assert_eq!(self.body["error"]["code"], "INTERNAL_ERROR", "{}", self.body);
        let retry_after: u64 = self.header("retry-after").expect("Retry-After").parse().unwrap();
        assert!(retry_after >= 1, "{retry_after}");
    }
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("the request is answered");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
    Answer { status, headers, body }
}

async fn wait_for<T>(what: &str, within: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "{what} did not happen within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates and deploys an agent through `base` (any instance or the proxy).
async fn deployed_agent(base: &str, body: Value) -> String {
    let http = http();
    let created = send(http.post(format!("{base}/agents")).bearer_auth(KEY).json(&body)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["data"]["id"].as_str().unwrap().to_owned();
    let accepted = send(http.post(format!("{base}/agents/{id}/deployments")).bearer_auth(KEY)).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let operation = accepted.body["operation_id"].as_str().unwrap().to_owned();
    wait_for("the deployment", Duration::from_secs(20), async || {
        let read = send(http.get(format!("{base}/operations/{operation}")).bearer_auth(KEY)).await;
        (read.body["data"]["status"] == "succeeded").then_some(())
    })
    .await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_idempotency_and_streams_hold_across_three_instances() {
    let Some(deployment) = Deployment::start("10").await else { return };
    let http = http();
    let proxy = deployment.proxy.base_url();

    // --- (a) One rate-limit window for the key across the three -------------
    // A few requests one after another: the remaining count goes down by
    // one each time, whichever instance answers.
    let mut remaining = Vec::new();
    let mut served_by = BTreeMap::<String, usize>::new();
    for _ in 0..6 {
        let answer = send(http.get(format!("{proxy}/agents")).bearer_auth(FREE_KEY)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        remaining.push(answer.header("x-ratelimit-remaining").unwrap().parse::<usize>().unwrap());
        *served_by.entry(answer.header("x-served-by").unwrap().to_owned()).or_default() += 1;
    }
    assert_eq!(remaining, (FREE_LIMIT - 6..FREE_LIMIT).rev().collect::<Vec<_>>());
    assert_eq!(served_by.len(), 3, "round robin reached every instance: {served_by:?}");
    // The rest of 300 at once.
    let requests: Vec<_> = (6..300)
        .map(|_| {
            let request = http.get(format!("{proxy}/agents")).bearer_auth(FREE_KEY);
            tokio::spawn(send(request))
        })
        .collect();
    let mut admitted_remaining = BTreeSet::new();
    let mut limited = 0;
    for request in requests {
        let answer = request.await.unwrap();
        *served_by.entry(answer.header("x-served-by").unwrap().to_owned()).or_default() += 1;
        let left: usize = answer.header("x-ratelimit-remaining").unwrap().parse().unwrap();
        match answer.status {
            200 => assert!(admitted_remaining.insert(left), "two admitted requests were told {left} remain"),
            429 => {
                limited += 1;
                assert_eq!(left, 0);
                assert_eq!(answer.body["error"]["code"], "RATE_LIMITED", "{}", answer.body);
                let retry_after: u64 = answer.header("retry-after").expect("Retry-After").parse().unwrap();
                assert!(retry_after >= 1);
            }
            other => panic!("unexpected {other}: {}", answer.body),
        }
    }
    // Each admitted request took its own slot of the one counter: the
    // remaining counts are exactly 93 down to 0, so none went back up.
    assert_eq!(admitted_remaining, (0..FREE_LIMIT - 6).collect::<BTreeSet<_>>());
    assert_eq!(FREE_LIMIT - 6 + 6, admitted_remaining.len() + remaining.len());
    assert_eq!(limited, 200);
    assert!(served_by.values().all(|&n| n >= 80), "spread over the three: {served_by:?}");
    let after = send(http.get(format!("{proxy}/agents")).bearer_auth(FREE_KEY)).await;
    assert_eq!((after.status, after.header("x-ratelimit-remaining")), (429, Some("0")));

    // --- (b) One idempotency key, instance A then instance B ----------------
    let (a, b) = (&deployment.instances[0].base_url, &deployment.instances[1].base_url);
    let agent = deployed_agent(a, json!({"name": "counter", "framework": "command", "entrypoint": "agent.sh"})).await;
    let invoke = |base: &str, key: &str, query: &str| {
        http.post(format!("{base}/agents/{agent}/invoke"))
            .bearer_auth(KEY)
            .header("Idempotency-Key", key)
            .json(&json!({"query": query}))
    };
    let first = send(invoke(a, "once", "count")).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let replay = send(invoke(b, "once", "count")).await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    assert_eq!(replay.body, first.body, "the stored answer");
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(deployment.runs(), 1, "the work ran once");

    // The same key to A and B at the same moment: one runs, one is told it
    // is in progress.
    let (on_a, on_b) = tokio::join!(send(invoke(a, "race", "slow")), send(invoke(b, "race", "slow")));
    let mut statuses = [on_a.status, on_b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} / {}", on_a.body, on_b.body);
    let conflict = if on_a.status == 409 { &on_a } else { &on_b };
    assert_eq!(conflict.body["error"]["code"], "CONFLICT", "{}", conflict.body);
    assert!(conflict.header("retry-after").is_some());
    assert_eq!(deployment.runs(), 2, "the raced request ran once");

    // --- (c) A stream started on A, cut, resumed on B -------------------------
    let request = || -> types::InvokeRequest { serde_json::from_value(json!({"query": "slow-stream"})).unwrap() };
    let mut stream = deployment.client(0).stream_agent(&agent, request()).send().unwrap();
    let mut seen = Vec::new();
    while seen.len() < 6 {
        let event = stream.next().await.expect("an event").expect("no error");
        seen.push((stream.last_event_id().unwrap(), event));
    }
    // Dropping the stream cuts the connection mid-answer; the agent goes on.
    drop(stream);
    let last = seen.last().unwrap().0.clone();
    let mut resumed = deployment.client(1).stream_agent(&agent, request()).last_event_id(&last).send().unwrap();
    while let Some(event) = resumed.next().await {
        seen.push((resumed.last_event_id().unwrap(), event.expect("no error")));
    }
    let (stream_id, _) = last.rsplit_once(':').unwrap();
    let ids: Vec<String> = seen.iter().map(|(id, _)| id.clone()).collect();
    let expected: Vec<String> = (0..ids.len()).map(|i| format!("{stream_id}:{i}")).collect();
    assert_eq!(ids, expected, "every event once, in order");
    let text: String = seen
        .iter()
        .filter_map(|(_, e)| match e {
            StreamAgentEvent::Chunk(chunk) => Some(chunk.text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(text, (0..30).map(|i| format!("c{i} ")).collect::<String>());
    assert!(matches!(seen.last().unwrap().1, StreamAgentEvent::Done(_)), "{:?}", seen.last());
    // Another caller, or an id the log never had, is 404 in the envelope.
    let unknown = send(
        http.post(format!("{b}/agents/{agent}/stream"))
            .bearer_auth(KEY)
            .header("Last-Event-ID", format!("{stream_id}:999"))
            .json(&json!({"query": "slow-stream"})),
    )
    .await;
    assert_eq!((unknown.status, &unknown.body["error"]["code"]), (404, &json!("NOT_FOUND")));
    let other = send(
        http.post(format!("{b}/agents/{agent}/stream"))
            .bearer_auth(FREE_KEY)
            .header("Last-Event-ID", &last)
            .json(&json!({"query": "slow-stream"})),
    )
    .await;
    // The free key is out of requests by now; either answer keeps the
    // stream to its owner.
    assert!([404, 429].contains(&other.status), "{}", other.body);
    // All of it went through Redis: the window's counter of each of the
    // two keys, the two idempotency records, the stream's log.
    let redis = &deployment.redis;
    assert_eq!(redis.keys("runagent:ratelimit:*").len(), 2, "{:?}", redis.keys("*"));
    assert_eq!(redis.keys("runagent:idempotency:*").len(), 2, "{:?}", redis.keys("*"));
    assert_eq!(redis.keys(&format!("runagent:stream:*{stream_id}")).len(), 1, "{:?}", redis.keys("*"));
    deployment.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_on_a_killed_instance_ends_within_the_lease() {
    const LEASE: Duration = Duration::from_secs(2);
    let Some(mut deployment) = Deployment::start("2").await else { return };
    let http = http();
    let (a, b) = (deployment.instances[0].base_url.clone(), deployment.instances[1].base_url.clone());
    let created = send(http.post(format!("{a}/agents")).bearer_auth(KEY).json(&json!({
        "name": "slow", "framework": "echo", "config": {"deploy_delay_ms": 1500}
    })))
    .await;
    let agent = created.body["data"]["id"].as_str().unwrap().to_owned();
    let accepted = send(http.post(format!("{a}/agents/{agent}/deployments")).bearer_auth(KEY)).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let operation = accepted.body["operation_id"].as_str().unwrap().to_owned();
    let read = async |base: &str| send(http.get(format!("{base}/operations/{operation}")).bearer_auth(KEY)).await;
    wait_for("the deployment to run", Duration::from_secs(5), async || {
        (read(&b).await.body["data"]["status"] == "running").then_some(())
    })
    .await;

    let instance = &mut deployment.instances[0];
    instance.child.kill().unwrap();
    instance.child.wait().unwrap();
    let killed = Instant::now();

    let ended = wait_for("the deployment to end", LEASE * 6, async || {
        let body = read(&b).await.body;
        ["succeeded", "failed"].contains(&body["data"]["status"].as_str().unwrap()).then_some(body)
    })
    .await;
    let took = killed.elapsed();
    // The lease runs out, another instance notices at its next pass (a
    // third of the lease) and runs the deployment again (1.5 s).
    assert!(took < LEASE * 2 + Duration::from_millis(1500) + Duration::from_secs(1), "took {took:?}");
    match ended["data"]["status"].as_str().unwrap() {
        "succeeded" => {
            let agent = send(http.get(format!("{b}/agents/{agent}")).bearer_auth(KEY)).await;
            assert_eq!(agent.body["data"]["status"], "deployed");
        }
        _ => assert!(ended["data"]["error"]["details"]["reason"].is_string(), "a failure says why: {ended}"),
    }
    for instance in &deployment.instances[1..] {
        assert!(!instance.log().contains("panicked"), "{}", instance.log());
    }
}

/// What the load saw.
#[derive(Default)]
struct Seen {
    /// Idempotency key → the agent its creation was acknowledged with.
    created: BTreeMap<String, String>,
    successes: usize,
    unavailable: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_and_postgres_restarts_cost_503s_at_most() {
    let Some(mut deployment) = Deployment::start("2").await else { return };
    let proxy = deployment.proxy.base_url();
    let stop = Arc::new(AtomicBool::new(false));

    // Load through the proxy, three clients at once: idempotent creations
    // (Redis and PostgreSQL), reads (PostgreSQL), all rate limited (Redis).
    let loads: Vec<_> = (0..3)
        .map(|worker| {
            let proxy = proxy.clone();
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let http = http();
                let mut seen = Seen::default();
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let key = format!("restart-{worker}-{i}");
                    let created = send(
                        http.post(format!("{proxy}/agents"))
                            .bearer_auth(KEY)
                            .header("Idempotency-Key", &key)
                            .json(&json!({"name": key, "framework": "echo"})),
                    )
                    .await;
                    let listed = send(http.get(format!("{proxy}/agents?limit=5")).bearer_auth(KEY)).await;
                    if created.status == 201 {
                        seen.created.insert(key, created.body["data"]["id"].as_str().unwrap().to_owned());
                    }
                    for answer in [created, listed] {
                        if answer.status < 300 {
                            seen.successes += 1;
                        } else {
                            answer.assert_documented_503();
                            seen.unavailable += 1;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                seen
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(1000)).await;
    // Redis goes away for two seconds: idempotent requests fail closed,
    // the rate limit fails open.
    deployment.redis.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    deployment.redis.restart();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // PostgreSQL goes away for longer than a request waits for it.
    let pg = Arc::clone(&deployment.pg);
    tokio::task::spawn_blocking(move || {
        pg.stop();
        std::thread::sleep(Duration::from_secs(4));
        pg.restart();
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    let mut seen = Seen::default();
    for load in loads {
        let part = load.await.unwrap();
        seen.created.extend(part.created);
        seen.successes += part.successes;
        seen.unavailable += part.unavailable;
    }
    eprintln!(
        "restart load: {} successes, {} answered 503, {} agents acknowledged",
        seen.successes,
        seen.unavailable,
        seen.created.len()
    );
    assert!(seen.unavailable > 0, "the outages were seen");
    assert!(seen.successes > 0);

    // Service resumed by itself, on every instance.
    let http = http();
    for instance in &deployment.instances {
        let base = instance.base_url.clone();
        wait_for("the instance to answer again", Duration::from_secs(15), async || {
            (send(http.get(format!("{base}/agents")).bearer_auth(KEY)).await.status == 200).then_some(())
        })
        .await;
    }
    // Every acknowledged agent is there, and its idempotency record replays
    // (through whichever instance the proxy picks).
    for (key, id) in &seen.created {
        let agent = send(http.get(format!("{proxy}/agents/{id}")).bearer_auth(KEY)).await;
        assert_eq!(agent.status, 200, "{key}: {}", agent.body);
        let replay = wait_for("the replay", Duration::from_secs(15), async || {
            let replay = send(
                http.post(format!("{proxy}/agents"))
                    .bearer_auth(KEY)
                    .header("Idempotency-Key", key)
                    .json(&json!({"name": key, "framework": "echo"})),
            )
            .await;
            match replay.status {
                409 => None,
                _ => Some(replay),
            }
        })
        .await;
        assert_eq!(replay.status, 201, "{key}: {}", replay.body);
        assert_eq!(replay.body["data"]["id"], json!(id), "{key}");
        assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    }
    for instance in &mut deployment.instances {
        assert!(instance.is_running(), "{}", instance.log());
    }
    deployment.assert_no_panic();
}
