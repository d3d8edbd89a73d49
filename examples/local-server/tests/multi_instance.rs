//! Several `runagent-local` processes on one PostgreSQL database, as a
//! deployment behind a load balancer runs them: they share agents, rate
//! limits and idempotency records; a job whose instance is killed is
//! finished (or failed with a reason) by another; a cancel made on one
//! instance stops the work on another; and a PostgreSQL restart mid-run
//! costs `503`s with `Retry-After` at most, never a lost acknowledged
//! write, a panic or a server that does not come back by itself.
//!
//! Each test starts its own throwaway PostgreSQL (or a database of its own
//! in a shared one) on a free port: see `support/pg.rs`. Without the
//! PostgreSQL binaries the tests are skipped loudly, or fail when `CI` is
//! set.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;

use runagent_client::operations::InvokeAgentResponse;
use runagent_client::types;
use runagent_client::{Client, Error};
use serde_json::{Value, json};
use support::pg::PgServer;

const KEY: &str = "multi-key";
const FREE_KEY: &str = "multi-free-key";
/// The free tier's limit in these tests.
const FREE_LIMIT: usize = 20;

const AGENT_SCRIPT: &str = r#"#!/bin/sh
read -r request
case "$request" in
  *'"query":"hang"'*) echo $$ > hang.pid; sleep 60 ;;
esac
echo '{"result": "command answer", "tokens_used": 2}'
"#;

/// One `runagent-local` process.
struct Instance {
    child: Child,
    base_url: String,
    log: PathBuf,
}

impl Instance {
    fn client(&self, key: &str) -> Client {
        Client::builder().api_key(key).base_url(&self.base_url).max_retries(0).build().unwrap()
    }

    /// SIGKILL: the instance dies without a word.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A database, an agents directory and the instances started on them.
struct Cluster {
    dir: tempfile::TempDir,
    db: String,
    /// A PostgreSQL server of the test's own, when it needs one.
    server: Option<Arc<PgServer>>,
}

impl Cluster {
    /// A fresh database in the binary's shared server.
    async fn shared() -> Option<Cluster> {
        let server = tokio::task::spawn_blocking(support::pg::shared).await.unwrap()?;
        Some(Cluster::with_db(server.create_database().await, None))
    }

    /// A server of the test's own (to restart it).
    async fn own() -> Option<Cluster> {
        let server = Arc::new(tokio::task::spawn_blocking(PgServer::start).await.unwrap()?);
        Some(Cluster::with_db(server.create_database().await, Some(server)))
    }

    fn with_db(db: String, server: Option<Arc<PgServer>>) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let agents = dir.path().join("agents");
        std::fs::create_dir(&agents).unwrap();
        let script = agents.join("agent.sh");
        std::fs::write(&script, AGENT_SCRIPT).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        Cluster { dir, db, server }
    }

    fn agents(&self) -> PathBuf {
        self.dir.path().join("agents")
    }

    /// Starts an instance named `id` with `extra` flags.
    fn start(&self, id: &str, extra: &[&str]) -> Instance {
        let log = self.dir.path().join(format!("{id}.log"));
        let agents = self.agents();
        let free = format!("{FREE_KEY}:free");
        let key = format!("{KEY}:enterprise");
        let limit = format!("free={FREE_LIMIT}");
        let mut args: Vec<&OsStr> = vec![
            "--db".as_ref(),
            self.db.as_ref(),
            "--instance-id".as_ref(),
            id.as_ref(),
            "--agents-dir".as_ref(),
            agents.as_os_str(),
            "--api-key".as_ref(),
            key.as_ref(),
            "--api-key".as_ref(),
            free.as_ref(),
            "--rate-limit".as_ref(),
            limit.as_ref(),
            "--shutdown-timeout".as_ref(),
            "1".as_ref(),
        ];
        args.extend(extra.iter().map(OsStr::new));
        let (child, base_url, _) = support::spawn_logged(args, Some(&log));
        Instance { child, base_url, log }
    }
}

fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

fn json_of<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap()
}

fn status_of(error: &Error) -> u16 {
    error.status().map(|s| s.as_u16()).unwrap_or_default()
}

async fn create(client: &Client, body: Value) -> types::Agent {
    client.create_agent(from_json(body)).send().await.unwrap().into_body().data
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

async fn operation(client: &Client, id: &str) -> types::Operation {
    client.get_operation(id).send().await.unwrap().into_body().data
}

fn is_final(operation: &types::Operation) -> bool {
    ["succeeded", "failed", "cancelled"].contains(&json_of(&operation.status).as_str().unwrap())
}

async fn wait_for_file(path: &Path) -> i32 {
    let text = wait_for(&format!("{} to appear", path.display()), Duration::from_secs(10), async || {
        std::fs::read_to_string(path).ok().filter(|t| t.ends_with('\n'))
    })
    .await;
    text.trim().parse().unwrap()
}

fn is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn kill_pid(pid: i32) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_agents_rate_limits_and_idempotency() {
    let Some(cluster) = Cluster::shared().await else { return };
    let a = cluster.start("inst-a", &[]);
    let b = cluster.start("inst-b", &[]);
    let (on_a, on_b) = (a.client(KEY), b.client(KEY));

    // --- Agents: written on one, read on the other ---------------------------
    let agent = create(&on_a, json!({"name": "shared", "framework": "echo"})).await;
    assert_eq!(on_b.get_agent(&agent.id).send().await.unwrap().into_body().data, agent);
    let renamed = on_b
        .update_agent(
            &agent.id,
            from_json(json!({"name": "renamed", "description": null, "entrypoint": null, "config": {}, "tags": []})),
        )
        .send()
        .await
        .unwrap()
        .into_body()
        .data;
    assert_eq!(on_a.get_agent(&agent.id).send().await.unwrap().into_body().data, renamed);
    // Deployed through B, invoked through A.
    on_b.deploy_agent(&agent.id).send().await.unwrap().into_body().wait().await.unwrap();
    let InvokeAgentResponse::Ok(answer) =
        on_a.invoke_agent(&agent.id, from_json(json!({"query": "hello both"}))).send().await.unwrap().into_body()
    else {
        panic!("expected 200")
    };
    assert_eq!(answer.data.result, "hello both");
    on_a.delete_agent(&agent.id).send().await.unwrap();
    assert_eq!(status_of(&on_b.get_agent(&agent.id).send().await.unwrap_err()), 404);

    // --- Rate limits: one window for the key across both -----------------------
    let (free_a, free_b) = (a.client(FREE_KEY), b.client(FREE_KEY));
    let requests: Vec<_> = (0..FREE_LIMIT + 10)
        .map(|i| {
            let client = if i % 2 == 0 { free_a.clone() } else { free_b.clone() };
            tokio::spawn(async move { client.get_usage().send().await.map(drop).map_err(|e| status_of(&e)) })
        })
        .collect();
    let (mut admitted, mut limited) = (0, 0);
    for request in requests {
        match request.await.unwrap() {
            Ok(()) => admitted += 1,
            Err(429) => limited += 1,
            Err(other) => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((admitted, limited), (FREE_LIMIT, 10), "exactly the limit is admitted across both instances");

    // --- Idempotency: one key, either instance, runs once ----------------------
    let body = json!({"name": "idempotent", "framework": "echo"});
    let first = on_a.create_agent(from_json(body.clone())).idempotency_key("same-key").send().await.unwrap();
    let replay = on_b.create_agent(from_json(body.clone())).idempotency_key("same-key").send().await.unwrap();
    assert_eq!(replay.body.data.id, first.body.data.id);
    assert_eq!(replay.meta.header("idempotent-replayed"), Some("true"));
    let reused = on_b
        .create_agent(from_json(json!({"name": "other", "framework": "echo"})))
        .idempotency_key("same-key")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_of(&reused), 409);

    // The same key sent to both at once: one runs, the others are told it is
    // in progress or get the replay.
    let racers: Vec<_> = (0..10)
        .map(|i| {
            let client = if i % 2 == 0 { on_a.clone() } else { on_b.clone() };
            tokio::spawn(async move {
                client
                    .create_agent(from_json(json!({"name": "race", "framework": "echo"})))
                    .idempotency_key("race-key")
                    .send()
                    .await
                    .map(|r| r.body.data.id)
                    .map_err(|e| status_of(&e))
            })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for racer in racers {
        match racer.await.unwrap() {
            Ok(id) => {
                ids.insert(id);
            }
            Err(409) => {}
            Err(other) => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ids.len(), 1, "one agent created: {ids:?}");
    let listed = on_b.list_agents().limit(100).send().await.unwrap().into_body();
    let races = listed.data.iter().filter(|agent| agent.name == "race").count();
    assert_eq!(races, 1);
    assert!(!a.log().contains("panicked") && !b.log().contains("panicked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_s_jobs_end_on_another_within_the_lease() {
    let Some(cluster) = Cluster::shared().await else { return };
    const LEASE: Duration = Duration::from_secs(2);
    let mut a = cluster.start("inst-a", &["--lease", "2"]);
    let b = cluster.start("inst-b", &["--lease", "2"]);
    let (on_a, on_b) = (a.client(KEY), b.client(KEY));

    // An invocation running on A (a program that hangs) ...
    let command = create(&on_b, json!({"name": "hang", "framework": "command", "entrypoint": "agent.sh"})).await;
    on_b.deploy_agent(&command.id).send().await.unwrap().into_body().wait().await.unwrap();
    let InvokeAgentResponse::Accepted(invocation) = on_a
        .invoke_agent(&command.id, from_json(json!({"query": "hang", "async": true})))
        .send()
        .await
        .unwrap()
        .into_body()
    else {
        panic!("expected 202")
    };
    let pid = wait_for_file(&cluster.agents().join("hang.pid")).await;
    // ... and a deployment running on A (slowed down to be caught midway).
    let slow = create(&on_a, json!({"name": "slow", "framework": "echo", "config": {"deploy_delay_ms": 1500}})).await;
    let deployment = on_a.deploy_agent(&slow.id).send().await.unwrap().into_body();
    wait_for("the deployment to run", Duration::from_secs(5), async || {
        (json_of(&operation(&on_b, deployment.id()).await.status) == "running").then_some(())
    })
    .await;

    a.kill();
    let killed = Instant::now();
    // The program outlives its server; end it for the test.
    kill_pid(pid);

    // B takes both over once A's lease ran out: the deployment runs again
    // (it is idempotent) and succeeds; the invocation fails with a reason
    // naming A (its program may have had side effects).
    let deployed = wait_for("the deployment to end", LEASE * 5, async || {
        Some(operation(&on_b, deployment.id()).await).filter(is_final)
    })
    .await;
    assert_eq!(json_of(&deployed.status), "succeeded", "{deployed:?}");
    let took = killed.elapsed();
    assert!(took < LEASE * 2 + Duration::from_millis(1500) + Duration::from_secs(2), "took {took:?}");
    let agent = on_b.get_agent(&slow.id).send().await.unwrap().into_body().data;
    assert_eq!(json_of(&agent.status), "deployed");

    let failed = operation(&on_b, invocation.id()).await;
    assert!(is_final(&failed), "{failed:?}");
    assert_eq!(json_of(&failed.status), "failed");
    let error = json_of(&failed.error);
    assert_eq!(error["code"], "INTERNAL_ERROR");
    assert_eq!(error["details"]["reason"], "instance_lost");
    assert_eq!(error["details"]["instance_id"], "inst-a");
    assert!(error["message"].as_str().unwrap().contains("inst-a"), "{error}");
    assert!(b.log().contains("taking over a job"), "{}", b.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_on_one_instance_stops_the_job_running_on_another() {
    let Some(cluster) = Cluster::shared().await else { return };
    // A long lease: renewals (every 10 s) are far too slow to explain the
    // program dying quickly, so it is the notification that does it.
    let a = cluster.start("inst-a", &["--lease", "30"]);
    let b = cluster.start("inst-b", &["--lease", "30"]);
    let (on_a, on_b) = (a.client(KEY), b.client(KEY));
    let command = create(&on_a, json!({"name": "hang", "framework": "command", "entrypoint": "agent.sh"})).await;
    on_a.deploy_agent(&command.id).send().await.unwrap().into_body().wait().await.unwrap();
    let InvokeAgentResponse::Accepted(invocation) = on_a
        .invoke_agent(&command.id, from_json(json!({"query": "hang", "async": true})))
        .send()
        .await
        .unwrap()
        .into_body()
    else {
        panic!("expected 202")
    };
    let pid = wait_for_file(&cluster.agents().join("hang.pid")).await;

    let cancelled = on_b.cancel_operation(invocation.id()).send().await.unwrap().into_body().data;
    assert_eq!(json_of(&cancelled.status), "cancelled");
    let asked = Instant::now();
    wait_for("the program on A to die", Duration::from_secs(3), async || is_dead(pid).then_some(())).await;
    eprintln!("the program on A died {:?} after the cancel on B", asked.elapsed());
    let read = operation(&on_a, invocation.id()).await;
    assert_eq!(json_of(&read.status), "cancelled");
    assert_eq!(status_of(&on_a.cancel_operation(invocation.id()).send().await.unwrap_err()), 409);
    kill_pid(pid);
}

/// What the load saw: every acknowledged write, and every refusal.
#[derive(Default)]
struct Seen {
    /// Idempotency key → the agent its creation was acknowledged with.
    created: BTreeMap<String, String>,
    /// Deployments acknowledged (202).
    deployments: Vec<String>,
    successes: usize,
    unavailable: usize,
    unavailable_after_restart: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_mid_run_costs_503s_at_most() {
    let Some(cluster) = Cluster::own().await else { return };
    let server = Arc::clone(cluster.server.as_ref().unwrap());
    // A short lease, so that jobs cut off by the outage are taken over soon
    // after it.
    let mut a = cluster.start("inst-a", &["--lease", "2"]);
    let mut b = cluster.start("inst-b", &["--lease", "2"]);
    let clients = [a.client(KEY), b.client(KEY)];
    let outage_over = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // Load on both instances, four clients at once: idempotent creations,
    // deployments, reads.
    let loads: Vec<_> = (0..4)
        .map(|worker| {
            let client = clients[worker % 2].clone();
            let outage_over = Arc::clone(&outage_over);
            tokio::spawn(async move {
                let mut seen = Seen::default();
                let started = Instant::now();
                let mut i = 0;
                while started.elapsed() < Duration::from_secs(14) {
                    i += 1;
                    let key = format!("restart-{worker}-{i}");
                    let mut results: Vec<Result<(), Error>> = Vec::new();
                    let created = client
                        .create_agent(from_json(json!({"name": format!("r{worker}-{i}"), "framework": "echo"})))
                        .idempotency_key(&key)
                        .send()
                        .await;
                    match created {
                        Ok(created) => {
                            let id = created.body.data.id;
                            seen.created.insert(key, id.clone());
                            match client.deploy_agent(&id).send().await {
                                Ok(accepted) => {
                                    seen.deployments.push(accepted.into_body().id().to_owned());
                                    results.push(Ok(()));
                                }
                                Err(error) => results.push(Err(error)),
                            }
                        }
                        Err(error) => results.push(Err(error)),
                    }
                    results.push(client.list_agents().limit(5).send().await.map(drop));
                    for result in results {
                        match result {
                            Ok(()) => seen.successes += 1,
                            Err(error) => {
                                // The only failure allowed: 503 in the error
                                // envelope, with Retry-After.
                                assert_eq!(status_of(&error), 503, "{error}");
                                assert_eq!(json_of(&error.code().unwrap()), "INTERNAL_ERROR");
                                assert!(error.retry_after().is_some(), "{error}");
                                seen.unavailable += 1;
                                if outage_over.load(std::sync::atomic::Ordering::SeqCst) {
                                    seen.unavailable_after_restart += 1;
                                }
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                seen
            })
        })
        .collect();

    // Mid-run, PostgreSQL goes away for longer than a request waits for a
    // connection (3 s), then comes back on the same port and data.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let restart = {
        let server = Arc::clone(&server);
        tokio::task::spawn_blocking(move || {
            server.stop();
            let refused = std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err();
            assert!(refused, "PostgreSQL stopped");
            std::thread::sleep(Duration::from_secs(6));
            server.restart();
        })
    };
    restart.await.unwrap();
    outage_over.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut seen = Seen::default();
    for load in loads {
        let part = load.await.unwrap();
        seen.created.extend(part.created);
        seen.deployments.extend(part.deployments);
        seen.successes += part.successes;
        seen.unavailable += part.unavailable;
        seen.unavailable_after_restart += part.unavailable_after_restart;
    }
    eprintln!(
        "restart load: {} successes, {} answered 503 ({} of them after the restart), {} agents acknowledged",
        seen.successes,
        seen.unavailable,
        seen.unavailable_after_restart,
        seen.created.len()
    );
    assert!(seen.unavailable > 0, "the outage was seen");
    assert!(seen.successes > 0);

    // Service resumed by itself: both instances answer, and every
    // acknowledged agent, deployment and idempotency record is there.
    for client in &clients {
        wait_for("the instance to answer again", Duration::from_secs(15), async || {
            client.list_agents().send().await.ok().map(drop)
        })
        .await;
    }
    for (key, id) in &seen.created {
        let agent = clients[0].get_agent(id).send().await.unwrap().into_body().data;
        assert_eq!(&agent.id, id);
        // The stored response replays (it may be being written back by the
        // instance that answered, if the database went away just then).
        let name = agent.name.clone();
        let replayed = wait_for("the replay", Duration::from_secs(15), async || {
            let replay = clients[1]
                .create_agent(from_json(json!({"name": name, "framework": "echo"})))
                .idempotency_key(key)
                .send()
                .await;
            match replay {
                Ok(replay) => Some(replay),
                Err(error) if status_of(&error) == 409 => None,
                Err(error) => panic!("{key}: {error}"),
            }
        })
        .await;
        assert_eq!(&replayed.body.data.id, id, "{key}");
        assert_eq!(replayed.meta.header("idempotent-replayed"), Some("true"));
    }
    for id in &seen.deployments {
        let deployment = wait_for("the deployment to end", Duration::from_secs(30), async || {
            Some(operation(&clients[1], id).await).filter(is_final)
        })
        .await;
        assert_eq!(json_of(&deployment.status), "succeeded", "{deployment:?}");
    }
    assert!(a.is_running() && b.is_running(), "both instances are still up");
    for instance in [&a, &b] {
        assert!(!instance.log().contains("panicked"), "{}", instance.log());
    }
}
