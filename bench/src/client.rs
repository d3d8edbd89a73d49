//! The client benchmark: invoke calls per second through runagent-client
//! and through raw reqwest, the same request to the same server at the same
//! concurrency, in alternating runs within one process and one runtime.

use crate::{AGENT_ID, API_KEY};
use runagent_client::types::{InvokeParameters, InvokeRequest};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The per-attempt timeout runagent-client applies by default, given to raw
/// reqwest too so that both sides arm the same timer per call.
const TIMEOUT: Duration = Duration::from_secs(60);

/// What a raw reqwest user declares for the request body.
#[derive(Serialize, Clone)]
struct RawRequest {
    query: String,
    parameters: RawParameters,
    session_id: String,
}

#[derive(Serialize, Clone)]
struct RawParameters {
    temperature: f64,
    max_tokens: i32,
}

/// What a raw reqwest user declares for the answer.
#[derive(Deserialize)]
#[allow(dead_code)]
struct RawResponse {
    status: String,
    data: RawResult,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct RawResult {
    result: String,
    metadata: RawMetadata,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct RawMetadata {
    execution_time: f64,
    tokens_used: i64,
}

const QUERY: &str = "Summarise the support tickets of this week";

/// One side of the comparison: something that makes one invoke call.
#[derive(Clone)]
enum Side {
    Ours(runagent_client::Client, InvokeRequest),
    Raw { http: reqwest::Client, url: Arc<str>, body: RawRequest },
}

impl Side {
    async fn call(&self) -> Result<(), String> {
        match self {
            Side::Ours(client, body) => {
                let answer = client.invoke_agent(AGENT_ID, body.clone()).send().await.map_err(|e| e.to_string())?;
                match answer.body {
                    runagent_client::operations::InvokeAgentResponse::Ok(r) if r.data.result == QUERY => Ok(()),
                    other => Err(format!("unexpected answer {other:?}")),
                }
            }
            Side::Raw { http, url, body } => {
                let response = http
                    .post(&**url)
                    .header(reqwest::header::AUTHORIZATION, format!("Bearer {API_KEY}"))
                    .header(reqwest::header::ACCEPT, "application/json")
                    .json(body)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if !response.status().is_success() {
                    return Err(format!("status {}", response.status()));
                }
                let answer: RawResponse = response.json().await.map_err(|e| e.to_string())?;
                if answer.data.result == QUERY { Ok(()) } else { Err("unexpected answer".into()) }
            }
        }
    }
}

/// User plus system CPU time this process has used so far, in microseconds.
fn cpu_us() -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    us(usage.ru_utime) + us(usage.ru_stime)
}

/// Runs `concurrency` loops of calls for `duration`; returns calls per
/// second and this process's CPU microseconds per call, which tells whether
/// the client side is what limits the rate.
async fn load(side: &Side, concurrency: usize, duration: Duration) -> Result<(f64, f64), String> {
    let done = Arc::new(AtomicU64::new(0));
    let cpu = cpu_us();
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (side, done) = (side.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                side.call().await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let calls = done.load(Ordering::Relaxed) as f64;
    Ok((calls / start.elapsed().as_secs_f64(), (cpu_us() - cpu) / calls))
}

/// Makes exactly `calls` calls on one side (`concurrency` loops sharing
/// them), for counting what does not move with the machine's load
/// (instructions, allocations) with `perf stat` around the whole process.
async fn fixed(side: &Side, concurrency: usize, calls: u64) -> Result<(), String> {
    let left = Arc::new(AtomicU64::new(calls));
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (side, left) = (side.clone(), left.clone());
        tasks.push(tokio::spawn(async move {
            while left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok() {
                side.call().await?;
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// Runs the comparison; with `RUNAGENT_BENCH_CLIENT_SIDE=ours|raw` (a
/// profiling aid, not used by `cargo xtask bench`) it instead makes
/// `RUNAGENT_BENCH_CLIENT_CALLS` calls (default 20000) on that side only,
/// so that two counts of `perf stat` differ by exactly the calls' cost.
pub fn run(url: &str, concurrency: usize, duration_ms: u64, pairs: usize, threads: usize) -> Result<(), String> {
    let duration = Duration::from_millis(duration_ms);
    let only = std::env::var("RUNAGENT_BENCH_CLIENT_SIDE").ok();
    let calls: u64 = match std::env::var("RUNAGENT_BENCH_CLIENT_CALLS") {
        Ok(n) => n.parse().map_err(|_| format!("RUNAGENT_BENCH_CLIENT_CALLS={n:?} is not a number"))?,
        Err(_) => 20_000,
    };
    crate::runtime(threads)?.block_on(async {
        let client = runagent_client::Client::builder()
            .api_key(API_KEY)
            .base_url(format!("{url}/v1"))
            .build()
            .map_err(|e| e.to_string())?;
        let parameters = InvokeParameters {
            temperature: Some(0.7),
            max_tokens: Some(150),
            timeout_seconds: None,
            additional_properties: Default::default(),
        };
        let request = InvokeRequest {
            query: QUERY.into(),
            parameters: Some(parameters),
            session_id: Some("sess_42".into()),
            async_: None,
        };
        let ours = Side::Ours(client, request);
        let http = reqwest::Client::builder().timeout(TIMEOUT).build().map_err(|e| e.to_string())?;
        let raw = Side::Raw {
            http,
            url: format!("{url}/v1/agents/{AGENT_ID}/invoke").into(),
            body: RawRequest {
                query: QUERY.into(),
                parameters: RawParameters { temperature: 0.7, max_tokens: 150 },
                session_id: "sess_42".into(),
            },
        };
        match only.as_deref() {
            None => {}
            Some("ours") => return fixed(&ours, concurrency, calls).await,
            Some("raw") => return fixed(&raw, concurrency, calls).await,
            Some(other) => return Err(format!("RUNAGENT_BENCH_CLIENT_SIDE={other:?}: expected ours or raw")),
        }
        // A short warm-up opens each side's connections and fills the
        // allocator's caches before anything is counted.
        let warm_up = duration / 5;
        load(&ours, concurrency, warm_up).await?;
        load(&raw, concurrency, warm_up).await?;
        let (mut a, mut b, mut a_cpu, mut b_cpu) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..pairs {
            let (rate, cpu) = load(&ours, concurrency, duration).await?;
            a.push(rate);
            a_cpu.push(cpu);
            let (rate, cpu) = load(&raw, concurrency, duration).await?;
            b.push(rate);
            b_cpu.push(cpu);
        }
        let line = serde_json::json!({
            "ours_calls_per_s": a, "raw_calls_per_s": b,
            "ours_cpu_us_per_call": a_cpu, "raw_cpu_us_per_call": b_cpu,
            "concurrency": concurrency,
        });
        println!("{line}");
        Ok(())
    })
}
