//! The measuring side of `cargo xtask bench`: servers, load, parsers and
//! synthetic specs, one subcommand each. The xtask builds this binary with
//! `--release`, starts the pieces it needs as separate processes (so each can
//! be pinned to its own core) and turns what they print into the table.
//!
//! Every subcommand that measures prints exactly one line of JSON on stdout,
//! which is the whole interface with the xtask.

mod client;
mod local;
mod peer;
mod rusage;
mod scale;
mod servers;
mod sse;
mod streams;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// The API key both servers accept and both clients send.
pub const API_KEY: &str = "bench-key";

/// The agent every invocation addresses.
pub const AGENT_ID: &str = "agt_bench1";

/// The body of every benchmarked invocation: a query, parameters and a
/// session, so that parsing touches nested objects and optional fields.
pub const INVOKE_BODY: &str = r#"{"query":"Summarise the support tickets of this week","parameters":{"temperature":0.7,"max_tokens":150},"session_id":"sess_42"}"#;

#[derive(Parser)]
#[command(about = "RunAgent benchmark pieces (run through `cargo xtask bench`)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ServerKind {
    /// runagent-server's router with an in-memory echo implementation.
    Generated,
    /// A hand-written axum handler doing the same JSON work.
    Minimal,
    /// What a user would assemble instead: axum, tower-http, an auth
    /// middleware, tower_governor and validator.
    Peer,
    /// A minimal axum SSE handler (the open-streams benchmark's baseline).
    MinimalSse,
}

#[derive(Subcommand)]
enum Command {
    /// Serves `POST /v1/agents/{agent_id}/invoke` on loopback until stdin closes.
    Serve {
        #[arg(long, value_enum)]
        kind: ServerKind,
        /// Tokio worker threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Keep the generated router's counters and idempotency records in
        /// this Redis (`redis://HOST:PORT/`) instead of memory.
        #[arg(long, value_name = "URL")]
        redis: Option<String>,
    },
    /// Creates and deploys an echo agent on a running runagent-local and
    /// prints `{"agent_id": ...}`.
    LocalSetup {
        /// The server's base URL, ending in `/v1`.
        #[arg(long)]
        url: String,
    },
    /// Calls invoke through runagent-client and raw reqwest, alternately.
    Client {
        /// The server's base URL, without `/v1`.
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// The length of one side's run, in milliseconds.
        #[arg(long, default_value_t = 5000)]
        duration_ms: u64,
        /// How many A-then-B pairs to run.
        #[arg(long, default_value_t = 5)]
        pairs: usize,
        /// Tokio worker threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// Opens N SSE streams on a server and measures it (memory per stream,
    /// CPU per event) through /proc.
    Streams {
        /// The server's base URL, without `/v1`.
        #[arg(long)]
        url: String,
        /// The server's process id.
        #[arg(long)]
        pid: u32,
        #[arg(long, default_value_t = 1000)]
        streams: usize,
        /// How long to measure once every stream is open, in milliseconds.
        #[arg(long, default_value_t = 10000)]
        hold_ms: u64,
        /// Tokio worker threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// Parses the same byte streams with SseParser and eventsource-stream.
    Sse {
        /// How many A-then-B pairs to run per case.
        #[arg(long, default_value_t = 7)]
        pairs: usize,
        /// Roughly how many bytes each case's stream has.
        #[arg(long, default_value_t = 8 << 20)]
        bytes: usize,
    },
    /// Writes a spec with `factor` times the operations and schemas of `spec`.
    ScaleSpec {
        #[arg(long)]
        spec: PathBuf,
        #[arg(long)]
        factor: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Times `runagent_codegen::generate` in process (no rustfmt, no files).
    GenTime {
        #[arg(long)]
        spec: PathBuf,
        #[arg(long, default_value_t = 3)]
        reps: usize,
    },
    /// Runs a command and reports its wall time and peak memory.
    Rusage {
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Serve { kind, threads, redis } => servers::serve(kind, threads, redis),
        Command::LocalSetup { url } => local::setup(&url),
        Command::Client { url, concurrency, duration_ms, pairs, threads } => {
            client::run(&url, concurrency, duration_ms, pairs, threads)
        }
        Command::Sse { pairs, bytes } => sse::run(pairs, bytes),
        Command::Streams { url, pid, streams, hold_ms, threads } => streams::run(&url, streams, hold_ms, pid, threads),
        Command::ScaleSpec { spec, factor, out } => scale::write(&spec, factor, &out),
        Command::GenTime { spec, reps } => scale::gen_time(&spec, reps),
        Command::Rusage { command } => rusage::run(&command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("runagent-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

/// A multi-threaded tokio runtime with `threads` workers: the one setup every
/// server and client side uses, so that runtime choices cancel out.
pub fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 }
}
