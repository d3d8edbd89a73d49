//! The open-streams benchmark: N concurrent Server-Sent Events streams,
//! each receiving a chunk a second, against the generated router (its
//! `GET /agents/{id}/stream` fed through the in-memory stream log, as a
//! resumable stream is) and against a minimal axum SSE handler. The load
//! side opens the streams over raw TCP (so that it costs little per
//! stream), then reads the server's resident memory and CPU time from
//! `/proc`: memory per open stream and CPU per delivered event.

use crate::API_KEY;
use axum::response::sse::{Event, Sse};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use runagent_server::types::StreamChunk;
use runagent_server::{
    ApiFailure, EventStream, InMemoryStreamLog, SseItem, StreamAgentGetEvent, StreamAgentGetResponse, StreamLog,
    StreamLogConfig,
};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How often each stream gets a chunk.
const PERIOD: Duration = Duration::from_secs(1);

/// Chunks a stream's producer appends before it stops (a bound, so that a
/// forgotten server does not grow forever; far beyond a benchmark run).
const MAX_CHUNKS: u64 = 3600;

static NEXT_STREAM: AtomicU64 = AtomicU64::new(0);

fn chunk(index: u64) -> StreamChunk {
    StreamChunk { index: index as i64, text: String::from("tick") }
}

/// The in-memory log the generated server's streams go through, sized for
/// the benchmark's 10k streams (the default keeps 1024 streams).
pub fn stream_log() -> Arc<InMemoryStreamLog> {
    Arc::new(InMemoryStreamLog::new(StreamLogConfig {
        max_streams: 65_536,
        max_events: 64,
        ..StreamLogConfig::default()
    }))
}

/// The generated server's stream: a producer task appends a chunk a second
/// to the log, and the response follows the log, as an implementation
/// whose streams can be resumed with `Last-Event-ID` does.
pub async fn generated_stream(log: Arc<InMemoryStreamLog>) -> Result<StreamAgentGetResponse, ApiFailure> {
    let id = format!("str_{}", NEXT_STREAM.fetch_add(1, Ordering::Relaxed));
    let data = |index| Bytes::from(serde_json::to_vec(&chunk(index)).unwrap_or_default());
    // The first event is in the log before the response follows it.
    log.append(&id, 0, data(0)).await.map_err(|_| ApiFailure::internal("the stream log refused"))?;
    let producer = (Arc::clone(&log), id.clone());
    let start = tokio::time::Instant::now();
    tokio::spawn(async move {
        let (log, id) = producer;
        for seq in 1..MAX_CHUNKS {
            // The same schedule as the minimal handler's.
            tokio::time::sleep_until(start + PERIOD * seq as u32).await;
            if log.append(&id, seq, data(seq)).await.is_err() {
                return;
            }
        }
        let _ = log.close(&id).await;
    });
    let log: Arc<dyn StreamLog> = log;
    let events = runagent_server::follow(log, id.clone(), None)
        .await
        .map_err(|_| ApiFailure::internal("the stream log refused"))?;
    // The stream ends at the first failure (the client resumes from there).
    let items = events.scan(id, |id, event| {
        let item = event.ok().and_then(|event| {
            let chunk: StreamChunk = serde_json::from_slice(&event.data).ok()?;
            Some(SseItem::new(format!("{id}:{}", event.seq), StreamAgentGetEvent::Chunk(chunk)))
        });
        futures::future::ready(item)
    });
    Ok(StreamAgentGetResponse::Ok(EventStream::new(items)))
}

/// The minimal axum handler: `Sse` over a stream that yields a chunk now
/// and then one a second.
pub async fn minimal_stream() -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let id = format!("str_{}", NEXT_STREAM.fetch_add(1, Ordering::Relaxed));
    let start = tokio::time::Instant::now();
    let stream = futures::stream::unfold(0u64, move |seq| {
        let id = id.clone();
        async move {
            if seq >= MAX_CHUNKS {
                return None;
            }
            tokio::time::sleep_until(start + PERIOD * seq as u32).await;
            let data = serde_json::to_string(&chunk(seq)).unwrap_or_default();
            Some((Ok(Event::default().event("chunk").id(format!("{id}:{seq}")).data(data)), seq + 1))
        }
    });
    Sse::new(stream)
}

/// Raises this process's open-file limit to its hard limit, for 10k sockets.
pub fn raise_nofile() {
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// The resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()
}

/// User plus system CPU time of a process, in seconds.
fn cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?) / ticks)
}

#[derive(Default)]
struct Counters {
    opened: AtomicU64,
    events: AtomicU64,
    errors: AtomicU64,
}

/// One stream: connect, ask, count the events (blank lines) until `stop`.
async fn one(addr: std::net::SocketAddr, path: Arc<str>, counters: Arc<Counters>, stop: Instant) {
    let Ok(mut socket) = tokio::net::TcpStream::connect(addr).await else {
        counters.errors.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {API_KEY}\r\nAccept: text/event-stream\r\n\r\n"
    );
    if socket.write_all(request.as_bytes()).await.is_err() {
        counters.errors.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let mut buffer = vec![0u8; 2048];
    let mut opened = false;
    let mut last = 0u8;
    loop {
        let read = tokio::time::timeout_at(stop.into(), socket.read(&mut buffer)).await;
        let n = match read {
            Err(_) => return,
            Ok(Ok(0)) | Ok(Err(_)) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(Ok(n)) => n,
        };
        let bytes = &buffer[..n];
        if !opened {
            if !bytes.starts_with(b"HTTP/1.1 200") {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
            opened = true;
            counters.opened.fetch_add(1, Ordering::Relaxed);
        }
        // Events end with a blank line; the header block's own `\r\n\r\n`
        // is not counted (it has `\r`s between its `\n`s). Chunked framing
        // puts `\r\n` after each chunk, which never makes `\n\n`.
        let mut events = 0;
        for &byte in bytes {
            if byte == b'\n' && last == b'\n' {
                events += 1;
            }
            last = byte;
        }
        counters.events.fetch_add(events, Ordering::Relaxed);
    }
}

/// Opens `n` streams to `url` (batches of 256), waits until all are open,
/// lets them settle, then measures the server `pid` for `hold_ms`.
pub fn run(url: &str, n: usize, hold_ms: u64, pid: u32, threads: usize) -> Result<(), String> {
    raise_nofile();
    let addr: std::net::SocketAddr =
        url.trim_start_matches("http://").parse().map_err(|e| format!("bad url {url}: {e}"))?;
    let path: Arc<str> = Arc::from("/v1/agents/agt_bench1/stream?query=hi");
    let rss_idle = rss_kib(pid).ok_or("cannot read the server's memory")?;
    crate::runtime(threads)?.block_on(async move {
        let counters = Arc::new(Counters::default());
        let settle = Duration::from_secs(2);
        let open_deadline = Instant::now() + Duration::from_secs(120);
        let stop = open_deadline + settle + Duration::from_millis(hold_ms) + Duration::from_secs(5);
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            tasks.push(tokio::spawn(one(addr, Arc::clone(&path), Arc::clone(&counters), stop)));
            if i % 256 == 255 {
                // Lets the server accept a batch before the next (its listen
                // backlog is finite), and the counts catch up.
                while counters.opened.load(Ordering::Relaxed) + counters.errors.load(Ordering::Relaxed) + 128 < i as u64
                    && Instant::now() < open_deadline
                {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
        while counters.opened.load(Ordering::Relaxed) + counters.errors.load(Ordering::Relaxed) < n as u64
            && Instant::now() < open_deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let open_s = started.elapsed().as_secs_f64();
        tokio::time::sleep(settle).await;
        let (cpu0, events0) = (cpu_s(pid), counters.events.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(hold_ms)).await;
        let (cpu1, events1) = (cpu_s(pid), counters.events.load(Ordering::Relaxed));
        let rss_open = rss_kib(pid).unwrap_or(f64::NAN);
        let opened = counters.opened.load(Ordering::Relaxed);
        let errors = counters.errors.load(Ordering::Relaxed);
        for task in tasks {
            task.abort();
        }
        let delivered = events1 - events0;
        let cpu_us_per_event = match (cpu0, cpu1) {
            (Some(a), Some(b)) if delivered > 0 => (b - a) * 1e6 / delivered as f64,
            _ => f64::NAN,
        };
        let report = serde_json::json!({
            "streams": n, "opened": opened, "errors": errors, "open_s": open_s,
            "rss_idle_kib": rss_idle, "rss_open_kib": rss_open,
            "kib_per_stream": (rss_open - rss_idle) / n as f64,
            "events": delivered, "hold_ms": hold_ms,
            "events_per_s": delivered as f64 / (hold_ms as f64 / 1000.0),
            "cpu_us_per_event": cpu_us_per_event,
        });
        println!("{report}");
        Ok(())
    })
}
