//! A scripted HTTP/1.1 server on loopback, built on a raw tokio
//! `TcpListener` so that a test controls every byte of a response, when it
//! is written, and how the connection ends (a clean close, a reset, or
//! never). Each accepted connection plays the next script, in order.
//!
//! Shared by the wire tests (`client_wire.rs`) and the fault-injection tests
//! (`client_faults.rs`); each test binary uses only part of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use runagent_client::{Client, ClientBuilder, RetryPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When the whole request had arrived, for measuring waits between attempts.
    pub at: Instant,
    /// The same moment on the wall clock, for comparing with HTTP dates.
    pub wall: SystemTime,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// One thing the server does on a connection after reading the request.
#[derive(Debug, Clone)]
pub enum Step {
    /// Waits this many milliseconds, then writes the bytes.
    Write(u64, Vec<u8>),
    /// Resets the connection (RST rather than FIN): whatever the client has
    /// not read yet is lost and its next read fails.
    Reset,
    /// Keeps the connection open and silent for this many milliseconds.
    Stall(u64),
}

/// What the server does on one connection. When the steps run out the
/// connection is closed cleanly (FIN), unless a step reset it.
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub steps: Vec<Step>,
    /// The fault this connection injects, if any; counted when it is played.
    pub fault: Option<&'static str>,
}

impl Script {
    pub fn new(steps: Vec<Step>) -> Self {
        Script { steps, fault: None }
    }

    /// Marks this script as an injected fault, so that it is counted.
    pub fn fault(mut self, kind: &'static str) -> Self {
        self.fault = Some(kind);
        self
    }

    /// Appends a step.
    pub fn then(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }
}

pub struct Server {
    pub base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    faults: Arc<Mutex<Vec<&'static str>>>,
}

/// Faults injected by every server of this test binary.
static FAULTS_INJECTED: AtomicUsize = AtomicUsize::new(0);

impl Server {
    pub async fn start(scripts: Vec<Script>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let faults = Arc::new(Mutex::new(Vec::new()));
        let (log, fault_log) = (seen.clone(), faults.clone());
        tokio::spawn(async move {
            for script in scripts {
                let (mut socket, _) = listener.accept().await.unwrap();
                let (log, fault_log) = (log.clone(), fault_log.clone());
                tokio::spawn(async move {
                    let Some(seen) = read_request(&mut socket).await else { return };
                    log.lock().unwrap().push(seen);
                    if let Some(kind) = script.fault {
                        fault_log.lock().unwrap().push(kind);
                        FAULTS_INJECTED.fetch_add(1, Ordering::Relaxed);
                    }
                    play(socket, script.steps).await;
                });
            }
        });
        Server { base, seen, faults }
    }

    /// A client with retries that back off for milliseconds, not seconds,
    /// so that fault tests stay fast.
    pub fn client(&self) -> Client {
        self.builder().build().unwrap()
    }

    /// The configuration of [`Server::client`], to adjust.
    pub fn builder(&self) -> ClientBuilder {
        Client::builder()
            .api_key("k")
            .base_url(&self.base)
            .retry_policy(RetryPolicy::new().initial_backoff(Duration::from_millis(10)))
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The faults this server injected, in order.
    pub fn faults(&self) -> Vec<&'static str> {
        self.faults.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Shown with `--nocapture`, so that a run can report what it injected.
        let faults = self.faults();
        if !faults.is_empty() {
            println!(
                "faults injected: {} {:?} (this binary so far: {})",
                faults.len(),
                faults,
                FAULTS_INJECTED.load(Ordering::Relaxed)
            );
        }
    }
}

/// Reads one request (head and `Content-Length` body); `None` if the client
/// went away first.
async fn read_request(socket: &mut TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
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
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers.iter().find(|(n, _)| n == "content-length").map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = buf[end + 4..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let seen = Seen {
        method: first.next()?.to_owned(),
        target: first.next()?.to_owned(),
        headers,
        body,
        at: Instant::now(),
        wall: SystemTime::now(),
    };
    Some(seen)
}

async fn play(mut socket: TcpStream, steps: Vec<Step>) {
    for step in steps {
        match step {
            Step::Write(pause, bytes) => {
                tokio::time::sleep(Duration::from_millis(pause)).await;
                if socket.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Step::Reset => {
                // SO_LINGER 0 makes the close send RST instead of FIN.
                let _ = socket.set_zero_linger();
                drop(socket);
                return;
            }
            Step::Stall(millis) => tokio::time::sleep(Duration::from_millis(millis)).await,
        }
    }
    let _ = socket.shutdown().await;
}

fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("X")
}

/// A status line and headers, ending the head; `extra` holds more header
/// lines, each ending in CRLF.
pub fn head(status: u16, content_type: &str, extra: &str) -> String {
    format!("HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nConnection: close\r\n{extra}", reason(status))
}

/// A complete JSON response.
pub fn json(status: u16, extra: &str, body: &str) -> Script {
    let head = head(status, "application/json", extra);
    Script::new(vec![Step::Write(0, format!("{head}Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes())])
}

/// An event stream (closed by the server after the pieces, with no length),
/// written piece by piece after each pause.
pub fn sse(pieces: &[(u64, &str)]) -> Script {
    let mut steps = vec![Step::Write(0, format!("{}\r\n", head(200, "text/event-stream", "")).into_bytes())];
    steps.extend(pieces.iter().map(|(p, s)| Step::Write(*p, s.as_bytes().to_vec())));
    Script::new(steps)
}

/// The API's error envelope.
pub fn error(code: &str, message: &str) -> String {
    format!(r#"{{"status":"error","error":{{"code":"{code}","message":"{message}"}}}}"#)
}
