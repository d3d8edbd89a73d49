//! Running generated documents through the generator: each on a worker
//! thread with a deadline, each answer checked, each strategy driven by
//! proptest from a fixed seed.

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use std::cell::{Cell, RefCell};
use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Cases per strategy when `RUNAGENT_FUZZ_CASES` is unset: enough for the
/// plain `cargo test` run to exercise every strategy, few enough that it
/// stays a matter of seconds.
const DEFAULT_CASES: u32 = 6;

/// The largest document a strategy may produce. The harness checks it so
/// that a strategy change cannot quietly turn into a memory test of the
/// machine instead of the generator.
pub const MAX_INPUT_BYTES: usize = 8 << 20;

/// The deadline for one case when `RUNAGENT_FUZZ_TIMEOUT_SECS` is unset.
/// The real spec takes well under a second in a debug build; the slack is
/// for a loaded two-core CI machine, not for slow inputs.
const DEFAULT_TIMEOUT_SECS: u64 = 10;

/// The stack of the worker thread. The generator must not need more than a
/// default Rust thread gets (2 MiB), since that is what a test or a tool
/// calling it from a spawned thread has.
const WORKER_STACK_BYTES: usize = 2 << 20;

/// The number of cases each strategy runs: `RUNAGENT_FUZZ_CASES`, or a small
/// default.
pub fn cases() -> u32 {
    env_number("RUNAGENT_FUZZ_CASES").map_or(DEFAULT_CASES, |n| n as u32)
}

fn timeout() -> Duration {
    Duration::from_secs(env_number("RUNAGENT_FUZZ_TIMEOUT_SECS").unwrap_or(DEFAULT_TIMEOUT_SECS))
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.trim().parse().unwrap_or_else(|_| panic!("{name} must be a whole number, not `{value}`")))
}

/// Runs `cases` documents made by `strategy` (rendered to text by `render`)
/// through the generator and fails the test on the first that panics, hangs
/// or answers with a malformed diagnostic.
///
/// The RNG is seeded from the strategy's name (and `RUNAGENT_FUZZ_SEED`, 0
/// unless set), so every run sees the same documents, and adding one
/// strategy does not reshuffle the others. Failures are not persisted: a
/// crash found here becomes a named fixture under `tests/fixtures/broken/`
/// instead, which documents what broke and keeps it fixed.
pub fn fuzz<S>(name: &str, cases: u32, strategy: S, render: impl Fn(&S::Value) -> String)
where
    S: Strategy,
    S::Value: Debug,
{
    let config = Config {
        cases,
        failure_persistence: None,
        // Shrinking a slow case is itself slow; these bounds keep a failing
        // run's report within a minute or so.
        max_shrink_iters: 512,
        max_shrink_time: 60_000,
        ..Config::default()
    };
    let extra_seed = env_number("RUNAGENT_FUZZ_SEED").unwrap_or(0);
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(name, extra_seed));
    let mut runner = TestRunner::new_with_rng(config, rng);

    let stats = Stats::default();
    // After a hang the worker thread is still running; every later case
    // passes at once so that proptest does not shrink towards more hangs and
    // the report names the original document.
    let hang: RefCell<Option<String>> = RefCell::new(None);
    let started = Instant::now();
    let result = runner.run(&strategy, |plan| {
        if hang.borrow().is_some() {
            return Ok(());
        }
        let text = render(&plan);
        match check(name, &text, &stats) {
            Ok(()) => Ok(()),
            Err(Failure::Hang(message)) => {
                save_failure(name, &text);
                *hang.borrow_mut() = Some(format!("{message}\ninput: {plan:?}"));
                Ok(())
            }
            Err(Failure::Wrong(message)) => {
                save_failure(name, &text);
                Err(TestCaseError::fail(message))
            }
        }
    });
    println!(
        "robustness/{name}: {} cases in {:.1}s ({} generated output, {} answered with diagnostics; slowest {:.2}s)",
        stats.cases.get(),
        started.elapsed().as_secs_f64(),
        stats.output.get(),
        stats.diagnostics.get(),
        stats.slowest.get().as_secs_f64(),
    );
    if let Some(message) = hang.into_inner() {
        panic!("{name}: {message}\n(the document is in {})", failure_path(name).display());
    }
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, plan)) => panic!(
            "{name}: {reason}\nminimal failing input: {plan:?}\n(the last failing document is in {})",
            failure_path(name).display()
        ),
        Err(TestError::Abort(reason)) => panic!("{name}: proptest gave up: {reason}"),
    }
}

fn seed_bytes(name: &str, extra: u64) -> [u8; 32] {
    // FNV-1a is enough to spread names over seeds; it only has to be stable.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes().chain(extra.to_le_bytes()) {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut seed = [0u8; 32];
    for (i, chunk) in seed.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&hash.rotate_left(i as u32 * 16).to_le_bytes());
    }
    seed
}

#[derive(Default)]
struct Stats {
    cases: Cell<u64>,
    output: Cell<u64>,
    diagnostics: Cell<u64>,
    slowest: Cell<Duration>,
}

enum Failure {
    Hang(String),
    Wrong(String),
}

fn check(name: &str, text: &str, stats: &Stats) -> Result<(), Failure> {
    assert!(text.len() <= MAX_INPUT_BYTES, "{name}: the strategy made a {}-byte document", text.len());
    stats.cases.set(stats.cases.get() + 1);
    // Written before the call, so that a crash that takes the process down
    // (a stack overflow aborts, it does not unwind) leaves the document.
    save_current(name, text);
    let started = Instant::now();
    let answer = generate_with_deadline(text)?;
    stats.slowest.set(stats.slowest.get().max(started.elapsed()));
    match answer {
        Ok(()) => {
            stats.output.set(stats.output.get() + 1);
            Ok(())
        }
        Err(diagnostics) => {
            stats.diagnostics.set(stats.diagnostics.get() + 1);
            check_diagnostics(text, &diagnostics).map_err(Failure::Wrong)
        }
    }
}

fn generate_with_deadline(text: &str) -> Result<Result<(), runagent_codegen::Diagnostics>, Failure> {
    let owned = text.to_owned();
    let answer = on_worker(move || {
        runagent_codegen::generate(&owned).and_then(|files| match files.0.len() {
            0 => Err(runagent_codegen::Diagnostics::one("#", "(harness) generate returned no files")),
            _ => Ok(()),
        })
    });
    match answer {
        Ok(answer) => Ok(answer),
        Err(Stopped::Panicked(panic)) => Err(Failure::Wrong(format!("generate panicked: {panic}"))),
        Err(Stopped::Hung(deadline)) => {
            Err(Failure::Hang(format!("generate did not answer within {}s", deadline.as_secs())))
        }
    }
}

/// Why [`on_worker`] has no answer.
#[derive(Debug)]
pub enum Stopped {
    Panicked(String),
    Hung(Duration),
}

/// Runs `work` on a fresh thread with a default-sized stack and waits for
/// it until the deadline. A thread that misses the deadline is left
/// running: Rust cannot stop it, and the test fails anyway.
pub fn on_worker<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, Stopped> {
    let (send, receive) = mpsc::channel();
    std::thread::Builder::new()
        .name("robustness-worker".into())
        .stack_size(WORKER_STACK_BYTES)
        .spawn(move || {
            let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                .map_err(|payload| panic_message(payload.as_ref()));
            // The receiver is gone only if the deadline passed; nothing to do.
            let _ = send.send(answer);
        })
        .expect("spawn the worker thread");
    let deadline = timeout();
    match receive.recv_timeout(deadline) {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(panic)) => Err(Stopped::Panicked(panic)),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(Stopped::Hung(deadline)),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(Stopped::Panicked("the worker thread died".into())),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a non-string panic payload)".into())
}

/// Every diagnostic has a message and a pointer, the pointer is a URI
/// fragment, and it names a place in the document: all of it resolves, or
/// all but its last segment does (the place where a missing key belongs).
/// Internal errors are emitter bugs, which no input may trigger.
fn check_diagnostics(text: &str, diagnostics: &runagent_codegen::Diagnostics) -> Result<(), String> {
    if diagnostics.0.is_empty() {
        return Err("generate failed with no diagnostics".into());
    }
    let document: Option<serde_yaml_ng::Value> = serde_yaml_ng::from_str(text).ok();
    for d in &diagnostics.0 {
        if d.message.trim().is_empty() {
            return Err(format!("a diagnostic at {} has no message", d.pointer));
        }
        if d.message.starts_with("internal error") || d.message.starts_with("rendering ") {
            return Err(format!("an emitter failed on input that lowering accepted: {d}"));
        }
        if d.pointer != "#" && !d.pointer.starts_with("#/") {
            return Err(format!("the pointer of `{d}` is not a URI fragment JSON pointer"));
        }
        if let Some(document) = &document {
            let segments = pointer_segments(&d.pointer);
            let resolved = resolved_prefix(document, &segments);
            if resolved + 1 < segments.len() {
                let good: Vec<&str> = segments[..resolved].iter().map(String::as_str).collect();
                return Err(format!(
                    "the pointer of `{d}` leaves the document after #/{} (all diagnostics:\n{diagnostics})",
                    good.join("/")
                ));
            }
        }
    }
    Ok(())
}

fn pointer_segments(pointer: &str) -> Vec<String> {
    match pointer.strip_prefix("#/") {
        None => Vec::new(),
        Some(rest) => rest.split('/').map(|s| s.replace("~1", "/").replace("~0", "~")).collect(),
    }
}

/// How many leading segments of a pointer name a node of the document. Keys
/// compare as the generator reads them: YAML numbers and booleans as their
/// text, tags ignored.
fn resolved_prefix(document: &serde_yaml_ng::Value, segments: &[String]) -> usize {
    use serde_yaml_ng::Value as Y;
    let mut node = document;
    for (i, segment) in segments.iter().enumerate() {
        while let Y::Tagged(tagged) = node {
            node = &tagged.value;
        }
        let next = match node {
            Y::Mapping(map) => map.iter().find(|(k, _)| key_text(k).as_deref() == Some(segment)).map(|(_, v)| v),
            Y::Sequence(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return i,
        }
    }
    segments.len()
}

fn key_text(key: &serde_yaml_ng::Value) -> Option<String> {
    match key {
        serde_yaml_ng::Value::String(s) => Some(s.clone()),
        serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
        serde_yaml_ng::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn scratch_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("robustness");
    std::fs::create_dir_all(&dir).expect("create the scratch folder");
    dir
}

fn failure_path(name: &str) -> PathBuf {
    scratch_dir().join(format!("{name}.failure.yaml"))
}

fn save_failure(name: &str, text: &str) {
    let _ = std::fs::write(failure_path(name), text);
}

fn save_current(name: &str, text: &str) {
    let _ = std::fs::write(scratch_dir().join(format!("{name}.current.yaml")), text);
}
