//! Rows 8 and 9 of `cargo xtask bench`: what sharing state between
//! instances costs per request.
//!
//! - Row 8: the generated router with its counter and idempotency stores
//!   in Redis against the same router with them in memory, under the same
//!   wrk load as row 3 (without, then with, an `Idempotency-Key` per
//!   request).
//! - Row 9: runagent-local itself on SQLite, on PostgreSQL + Redis with one
//!   instance, and with three behind haproxy, for `GET /v1/agents` and
//!   `POST /v1/agents/{id}/invoke` of an echo agent. Besides req/s and p99,
//!   it reads the CPU time each process group spent per request
//!   (runagent-local, postgres, redis-server, haproxy), which is where the
//!   added cost goes.
//!
//! The servers are throwaways on free loopback ports in `target/bench-work`,
//! like the tests' (`redis-server`, PostgreSQL and haproxy from Debian,
//! `.ci/install-services`); PostgreSQL runs as `nobody` when the bench runs
//! as root, since it refuses root.

use super::{Env, Plan, Row, WRK_SCRIPT, find_in_path, fmt, json_line, load_core, median, output, server_core, stats};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// What rows 8 and 9 need that may be missing, as the error to stop with.
pub(super) fn check_tools(row7: bool, row8: bool) -> Result<(), String> {
    let hint = "run `.ci/install-services` (Debian's redis-server, postgresql-15 and haproxy)";
    if (row7 || row8) && find_in_path("redis-server").is_none() {
        return Err(format!("redis-server is not installed; {hint}"));
    }
    if row8 && pg_binaries().is_none() {
        return Err(format!("the PostgreSQL binaries are not installed; {hint}"));
    }
    if row8 && find_in_path("haproxy").is_none() && !Path::new("/usr/sbin/haproxy").is_file() {
        return Err(format!("haproxy is not installed; {hint}"));
    }
    Ok(())
}

/// How many interleaved rounds rows 8 and 9 run (each round runs every
/// side once).
fn rounds(plan: &Plan) -> usize {
    if plan.quick { 1 } else { 3 }
}

// ---------------------------------------------------------------- servers

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

fn wait_for_port(port: u16, what: &str, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited with {status}"));
        }
        if Instant::now() > deadline {
            return Err(format!("{what} did not listen on port {port}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// A child process killed when dropped.
struct Process {
    child: Child,
    /// Kept open for processes that stop when their stdin closes.
    _stdin: Option<ChildStdin>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis_server(work: &Path) -> Result<(Process, u16), String> {
    let port = free_port()?;
    let dir = work.join(format!("redis-{port}"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    // No persistence: the bench measures the stores' round trips, not the
    // disk (a deployment relying on idempotency records would add an
    // append-only file; see the README).
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start redis-server: {e}"))?;
    wait_for_port(port, "redis-server", &mut child)?;
    Ok((Process { child, _stdin: None }, port))
}

fn pg_binaries() -> Option<PathBuf> {
    let has_all = |dir: &Path| ["initdb", "postgres", "createdb"].iter().all(|b| dir.join(b).is_file());
    if let Some(dir) = std::env::var_os("RUNAGENT_PG_BIN") {
        let dir = PathBuf::from(dir);
        return has_all(&dir).then_some(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| has_all(bin))
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// A PostgreSQL server, stopped with a fast shutdown (SIGINT) so that its
/// connection processes go with it, and its folder.
struct Postgres {
    process: Process,
    _dir: tempfile::TempDir,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let pid = self.process.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.process.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `nobody`'s uid and gid when running as root (PostgreSQL refuses root).
fn run_as() -> Option<(u32, u32)> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().next());
    (uid == Some("0")).then_some((65534, 65534))
}

/// A fresh PostgreSQL cluster on a free port: the server and its port.
fn postgres(work: &Path) -> Result<(Postgres, u16), String> {
    let bin = pg_binaries().ok_or("the PostgreSQL binaries are missing")?;
    let port = free_port()?;
    let _ = work;
    // Under /tmp rather than the target folder: `nobody` may not be able
    // to reach the workspace.
    let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = temp.path().to_path_buf();
    let user = run_as();
    if user.is_some() {
        // chown to nobody without a crate: the same tool an admin would use.
        output(Command::new("chown").arg("65534:65534").arg(&dir), "chown")?;
    }
    let as_user = |c: &mut Command| {
        if let Some((uid, gid)) = user {
            c.uid(uid).gid(gid);
        }
    };
    let mut initdb = Command::new(bin.join("initdb"));
    initdb.args(["-D", "data", "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]);
    initdb.current_dir(&dir);
    as_user(&mut initdb);
    output(&mut initdb, "initdb")?;
    let log = std::fs::File::create(dir.join("server.log")).map_err(|e| e.to_string())?;
    let mut server = Command::new(bin.join("postgres"));
    server
        .args(["-D", "data", "-p", &port.to_string()])
        .args(["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=200"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(log);
    as_user(&mut server);
    let mut child = server.spawn().map_err(|e| format!("cannot start postgres: {e}"))?;
    wait_for_port(port, "postgres", &mut child)?;
    let process = Postgres { process: Process { child, _stdin: None }, _dir: temp };
    // The port accepts before the server takes connections: retry createdb.
    for database in ["one", "three"] {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut c = Command::new(bin.join("createdb"));
            c.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", database]);
            match output(&mut c, "createdb") {
                Ok(_) => break,
                Err(error) if Instant::now() > deadline => return Err(error),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
    Ok((process, port))
}

fn haproxy(work: &Path, backends: &[String]) -> Result<(Process, u16), String> {
    let port = free_port()?;
    let mut config = format!(
        "global\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 60s\n  \
         timeout server 60s\n  timeout http-keep-alive 10s\nfrontend api\n  bind 127.0.0.1:{port}\n  \
         default_backend instances\nbackend instances\n  balance roundrobin\n"
    );
    for (i, backend) in backends.iter().enumerate() {
        config.push_str(&format!("  server i{i} {backend}\n"));
    }
    let path = work.join(format!("haproxy-{port}.cfg"));
    std::fs::write(&path, config).map_err(|e| e.to_string())?;
    let mut child = Command::new("haproxy")
        .args(["-db", "-f"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start haproxy: {e}"))?;
    wait_for_port(port, "haproxy", &mut child)?;
    Ok((Process { child, _stdin: None }, port))
}

/// A `runagent-local` process, pinned to the measured core, and the
/// `host:port` it listens on.
fn runagent_local(env: &Env, binary: &Path, dir: &Path, extra: &[&str]) -> Result<(Process, String), String> {
    let agents = dir.join("agents");
    std::fs::create_dir_all(&agents).map_err(|e| e.to_string())?;
    let mut c = env.pinned(server_core, binary);
    c.args(["--port", "0", "--api-key", "bench-key:enterprise", "--rate-limit", "enterprise=1000000000000"])
        .arg("--agents-dir")
        .arg(&agents)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().map_err(|e| format!("cannot start runagent-local: {e}"))?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let address = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(url) = line.strip_prefix("listening on http://") {
                    break url.trim_end_matches("/v1").to_owned();
                }
            }
            _ => {
                let _ = child.kill();
                return Err("runagent-local did not print its listening line".into());
            }
        }
    };
    // Drains its output (nothing more is printed) so it never blocks.
    std::thread::spawn(move || lines.for_each(drop));
    Ok((Process { child, _stdin: None }, address))
}

// ---------------------------------------------------------------- load

/// User plus system CPU ticks of every process in `roots` and of their
/// children (PostgreSQL serves each connection from a child).
fn cpu_ticks_of(roots: &[u32]) -> f64 {
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let parent = fields.get(1).and_then(|f| f.parse::<u32>().ok()).unwrap_or(0);
        if roots.contains(&pid) || roots.contains(&parent) {
            let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
            total += tick(11) + tick(12);
        }
    }
    total
}

/// One wrk run: req/s, p50 and p99 (µs), and µs of CPU per request of each
/// named group of processes.
struct Run {
    rps: f64,
    p50: f64,
    p99: f64,
    cpu: BTreeMap<&'static str, f64>,
}

fn wrk(
    env: &Env,
    script: &Path,
    url: &str,
    seconds: u64,
    connections: usize,
    groups: &[(&'static str, Vec<u32>)],
) -> Result<Run, String> {
    let before: Vec<f64> = groups.iter().map(|(_, pids)| cpu_ticks_of(pids)).collect();
    let mut c = env.pinned(load_core, Path::new("wrk"));
    c.args(["-t1", &format!("-c{connections}"), &format!("-d{seconds}s"), "-s"]).arg(script).arg(url);
    let out = output(&mut c, "wrk")?;
    let line =
        out.lines().find_map(|l| l.strip_prefix("BENCH ")).ok_or_else(|| format!("wrk printed no result:\n{out}"))?;
    let v: Value = serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
    let bad = v["non_2xx"].as_u64().unwrap_or(0) + v["socket_errors"].as_u64().unwrap_or(0);
    let requests = v["requests"].as_f64().unwrap_or(0.0);
    if bad > 0 || requests == 0.0 {
        return Err(format!("wrk against {url} saw errors (non-2xx or socket errors): {line}"));
    }
    let cpu = groups
        .iter()
        .zip(before)
        .map(|((name, pids), before)| (*name, (cpu_ticks_of(pids) - before) / env.clock_ticks * 1e6 / requests))
        .collect();
    Ok(Run {
        rps: requests / (v["duration_us"].as_f64().unwrap_or(1.0) / 1e6),
        p50: v["p50_us"].as_f64().unwrap_or(f64::NAN),
        p99: v["p99_us"].as_f64().unwrap_or(f64::NAN),
        cpu,
    })
}

/// The `done` hook of the invoke script, shared by every script here.
fn done_hook() -> &'static str {
    WRK_SCRIPT.split("done = function").nth(1).unwrap_or("")
}

fn script(env: &Env, name: &str, head: &str) -> Result<PathBuf, String> {
    let path = env.work.join(name);
    std::fs::write(&path, format!("-- Written by `cargo xtask bench`.\n{head}\ndone = function{}", done_hook()))
        .map_err(|e| e.to_string())?;
    Ok(path)
}

const AUTH: &str =
    "wrk.headers[\"Authorization\"] = \"Bearer bench-key\"\nwrk.headers[\"Accept\"] = \"application/json\"";

/// The invoke POST of row 3, with a fresh `Idempotency-Key` on every
/// request when `keyed`.
fn invoke_head(keyed: bool) -> String {
    let body = WRK_SCRIPT.split("done = function").next().unwrap_or("");
    let body = body.lines().filter(|l| !l.starts_with("--")).collect::<Vec<_>>().join("\n");
    if !keyed {
        return body;
    }
    format!(
        "{body}\nmath.randomseed(os.time())\nlocal run = math.random(1, 1000000000)\nlocal n = 0\n\
         request = function()\n  n = n + 1\n  wrk.headers[\"Idempotency-Key\"] = run .. \"-\" .. n\n  \
         return wrk.format()\nend"
    )
}

fn describe(runs: &[Run]) -> String {
    let pick = |f: fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    format!("{} req/s, p99 {} µs", fmt(pick(|r| r.rps), 0), fmt(pick(|r| r.p99), 0))
}

fn cpu_breakdown(runs: &[Run]) -> String {
    let Some(first) = runs.first() else { return String::new() };
    first
        .cpu
        .keys()
        .map(|name| {
            let values: Vec<f64> = runs.iter().filter_map(|r| r.cpu.get(name).copied()).collect();
            format!("{name} {} µs", fmt(median(&values), 0))
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

fn runs_json(runs: &[Run]) -> Value {
    runs.iter().map(|r| json!({"rps": r.rps, "p50_us": r.p50, "p99_us": r.p99, "cpu_us_per_request": r.cpu})).collect()
}

// ---------------------------------------------------------------- row 8

/// A `runagent-bench serve --kind generated` process (with `--redis`).
fn bench_server(env: &Env, redis: Option<&str>) -> Result<(Process, String), String> {
    let mut c = env.pinned(server_core, &env.bench);
    c.args(["serve", "--kind", "generated", "--threads", "1"]);
    if let Some(url) = redis {
        c.args(["--redis", url]);
    }
    c.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = c.spawn().map_err(|e| format!("cannot start the bench server: {e}"))?;
    let stdin = child.stdin.take();
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line).map_err(|e| e.to_string())?;
    let url = line.trim().strip_prefix("listening ").unwrap_or_default().to_owned();
    let process = Process { child, _stdin: stdin };
    if url.is_empty() {
        return Err("the bench server did not start".into());
    }
    Ok((process, url))
}

/// Row 8: the generated router on Redis stores against in-memory stores.
pub(super) fn redis_router(env: &Env, plan: &Plan) -> Result<Vec<Row>, String> {
    let rounds = rounds(plan);
    eprintln!("bench: 7 router on Redis vs in memory ({rounds} pairs of {} s)", plan.wrk_seconds);
    let (redis, redis_port) = redis_server(&env.work)?;
    let (memory_server, memory_url) = bench_server(env, None)?;
    let (redis_server_, redis_url) = bench_server(env, Some(&format!("redis://127.0.0.1:{redis_port}/")))?;
    let groups = |server: &Process| vec![("server", vec![server.child.id()]), ("redis", vec![redis.child.id()])];
    let mut rows = Vec::new();
    for (id, keyed) in [("8a", false), ("8b", true)] {
        let script = script(env, &format!("invoke-{id}.lua"), &invoke_head(keyed))?;
        let path = "/v1/agents/agt_bench1/invoke";
        let warm = 1;
        wrk(env, &script, &format!("{memory_url}{path}"), warm, plan.wrk_connections, &groups(&memory_server))?;
        wrk(env, &script, &format!("{redis_url}{path}"), warm, plan.wrk_connections, &groups(&redis_server_))?;
        let (mut on_redis, mut in_memory, mut ratios, mut p99s) = (vec![], vec![], vec![], vec![]);
        for _ in 0..rounds {
            let a = wrk(
                env,
                &script,
                &format!("{redis_url}{path}"),
                plan.wrk_seconds,
                plan.wrk_connections,
                &groups(&redis_server_),
            )?;
            let b = wrk(
                env,
                &script,
                &format!("{memory_url}{path}"),
                plan.wrk_seconds,
                plan.wrk_connections,
                &groups(&memory_server),
            )?;
            ratios.push(a.rps / b.rps);
            p99s.push(a.p99 / b.p99);
            on_redis.push(a);
            in_memory.push(b);
        }
        let r = stats(&ratios);
        rows.push(Row {
            id,
            name: format!(
                "router: invoke{} with Redis stores vs in-memory (throughput)",
                if keyed { " + Idempotency-Key" } else { "" }
            ),
            ours: format!("{}; CPU/req: {}", describe(&on_redis), cpu_breakdown(&on_redis)),
            baseline: format!("{}; CPU/req: {}", describe(&in_memory), cpu_breakdown(&in_memory)),
            ratio: Some(r),
            unit: "×",
            goal: "none (report)".into(),
            met: None,
            note: format!(
                "row 3's server and load (wrk -t1 -c{} -d{}s), the stores in a local redis-server (no persistence) \
                 through one multiplexed connection; p99 ratio {}{}",
                plan.wrk_connections,
                plan.wrk_seconds,
                fmt(median(&p99s), 2),
                if keyed { "; every request claims and stores an idempotency record (SET NX, then SET)" } else { "; one counter script (EVALSHA) per request" }
            ),
            details: json!({"redis": runs_json(&on_redis), "memory": runs_json(&in_memory), "ratios": ratios, "p99_ratios": p99s}),
        });
    }
    Ok(rows)
}

// ---------------------------------------------------------------- row 9

/// One way of running runagent-local, with the processes whose CPU counts.
struct Setup {
    name: &'static str,
    /// `http://host:port/v1`, of the instance or of the proxy.
    url: String,
    agent: String,
    groups: Vec<(&'static str, Vec<u32>)>,
}

/// Row 9: runagent-local on SQLite, on PostgreSQL + Redis with 1 and 3
/// instances.
pub(super) fn local(env: &Env, plan: &Plan, binary: &Path) -> Result<Vec<Row>, String> {
    let rounds = rounds(plan);
    eprintln!(
        "bench: 8 runagent-local on SQLite / PostgreSQL + Redis ×1 / ×3 ({rounds} rounds of {} s)",
        plan.wrk_seconds
    );
    let work = env.work.join("local");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let (redis, redis_port) = redis_server(&work)?;
    let (pg, pg_port) = postgres(&work)?;
    let (redis_pid, pg_pid) = (redis.child.id(), pg.process.child.id());
    let mut keep = Vec::new();
    let mut setups = Vec::new();

    let sqlite = work.join("sqlite");
    let db = sqlite.join("runagent.db");
    std::fs::create_dir_all(&sqlite).map_err(|e| e.to_string())?;
    let (instance, address) = runagent_local(env, binary, &sqlite, &["--db", db.to_str().unwrap_or_default()])?;
    setups.push(("sqlite", address, vec![("runagent-local", vec![instance.child.id()])]));
    keep.push(instance);

    for (name, count, database, redis_db) in [("pg+redis ×1", 1, "one", 0), ("pg+redis ×3", 3, "three", 1)] {
        let db = format!("postgres://postgres@127.0.0.1:{pg_port}/{database}");
        let redis_url = format!("redis://127.0.0.1:{redis_port}/{redis_db}");
        let (mut pids, mut addresses) = (vec![], vec![]);
        for i in 0..count {
            let dir = work.join(format!("{database}-{i}"));
            let id = format!("bench-{database}-{i}");
            let (instance, address) =
                runagent_local(env, binary, &dir, &["--db", &db, "--redis", &redis_url, "--instance-id", &id])?;
            pids.push(instance.child.id());
            addresses.push(address);
            keep.push(instance);
        }
        let mut groups = vec![("runagent-local", pids), ("postgres", vec![pg_pid]), ("redis", vec![redis_pid])];
        let address = if count == 1 {
            addresses[0].clone()
        } else {
            let (proxy, port) = haproxy(&work, &addresses)?;
            groups.push(("haproxy", vec![proxy.child.id()]));
            keep.push(proxy);
            format!("127.0.0.1:{port}")
        };
        setups.push((name, address, groups));
    }
    let setups: Vec<Setup> = setups
        .into_iter()
        .map(|(name, address, groups)| {
            let url = format!("http://{address}/v1");
            let mut c = Command::new(&env.bench);
            c.args(["local-setup", "--url", &url]);
            let v = json_line(&mut c, "bench local-setup")?;
            let agent = v["agent_id"].as_str().ok_or("local-setup printed no agent")?.to_owned();
            Ok(Setup { name, url, agent, groups })
        })
        .collect::<Result<_, String>>()?;

    let list_script = script(env, "list.lua", &format!("wrk.method = \"GET\"\n{AUTH}"))?;
    let invoke_script = script(env, "local-invoke.lua", &invoke_head(false))?;
    let mut rows = Vec::new();
    for (id, what, script) in [("9a", "GET /agents", &list_script), ("9b", "POST .../invoke (echo)", &invoke_script)] {
        let url_of = |s: &Setup| {
            if id == "9a" { format!("{}/agents", s.url) } else { format!("{}/agents/{}/invoke", s.url, s.agent) }
        };
        for setup in &setups {
            wrk(env, script, &url_of(setup), 1, plan.wrk_connections, &setup.groups)?;
        }
        let mut runs: Vec<Vec<Run>> = setups.iter().map(|_| Vec::new()).collect();
        for _ in 0..rounds {
            for (i, setup) in setups.iter().enumerate() {
                runs[i].push(wrk(env, script, &url_of(setup), plan.wrk_seconds, plan.wrk_connections, &setup.groups)?);
            }
        }
        let rps = |i: usize| runs[i].iter().map(|r| r.rps).collect::<Vec<_>>();
        // Ratios of each round's runs, so that drift over the run cancels.
        let one_vs_sqlite: Vec<f64> = rps(1).iter().zip(rps(0)).map(|(a, b)| a / b).collect();
        let three_vs_one: Vec<f64> = rps(2).iter().zip(rps(1)).map(|(a, b)| a / b).collect();
        let text =
            |i: usize| format!("{}: {}; CPU/req: {}", setups[i].name, describe(&runs[i]), cpu_breakdown(&runs[i]));
        let details = json!({
            "setups": setups.iter().zip(&runs).map(|(s, r)| json!({"name": s.name, "runs": runs_json(r)})).collect::<Vec<_>>(),
            "pg1_vs_sqlite": one_vs_sqlite, "pg3_vs_pg1": three_vs_one,
        });
        rows.push(Row {
            id: if id == "9a" { "9a" } else { "9b" },
            name: format!("runagent-local {what}: PG+Redis ×1 vs SQLite"),
            ours: text(1),
            baseline: text(0),
            ratio: Some(stats(&one_vs_sqlite)),
            unit: "×",
            goal: "none (report)".into(),
            met: None,
            note: format!(
                "runagent-local ({}) with an enterprise key, wrk -t1 -c{} -d{}s{}; PostgreSQL, Redis and haproxy \
                 unpinned; rounds interleave the three setups",
                if plan.quick { "debug build" } else { "release build" },
                plan.wrk_connections,
                plan.wrk_seconds,
                if env.cores.is_some() { ", instances pinned to core 0, wrk to core 1" } else { "" }
            ),
            details,
        });
        rows.push(Row {
            id: if id == "9a" { "9c" } else { "9d" },
            name: format!("runagent-local {what}: PG+Redis ×3 (haproxy) vs ×1"),
            ours: text(2),
            baseline: text(1),
            ratio: Some(stats(&three_vs_one)),
            unit: "×",
            goal: "none (report)".into(),
            met: None,
            note: String::new(),
            details: Value::Null,
        });
    }
    drop(keep);
    drop(pg);
    drop(redis);
    Ok(rows)
}
