//! The `command` framework: run the agent's program and talk JSON with it.
//!
//! The contract (also in the crate README):
//!
//! - The program is started with the agents directory as its working
//!   directory, in a process group of its own, with `RUNAGENT_AGENT_ID`
//!   and `RUNAGENT_STREAM` (`0` or `1`) in its environment.
//! - Its standard input is one JSON document and a newline:
//!   `{"query", "parameters", "session_id", "stream", "agent": {"id", "name", "config"}}`,
//!   then end of file.
//! - Not streaming, its standard output is one JSON document: either a
//!   string (the result) or an object `{"result": "...", "tokens_used": N}`
//!   (`tokens_used` optional; the result's word count otherwise).
//! - Streaming, each line of its standard output is one JSON document: a
//!   string or `{"text": "..."}` is a chunk, `{"result": "..."}` is a chunk
//!   too (so a non-streaming answer streams as one chunk), and any of these
//!   objects may carry `tokens_used`. Blank lines are skipped.
//! - Exit status 0 means success. A non-zero status, death by a signal,
//!   output that is not the JSON above, or more than the output limit is
//!   `AGENT_ERROR`, with the end of the program's standard error in the
//!   details.
//! - When the run ends for any reason the whole process group is killed, so
//!   a program must not leave work behind it.

use std::path::Path;
use std::process::{ExitStatus, Stdio};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use super::{Answer, Limits, Program, RunError, RunRequest, entrypoint};

/// Kills a process group when dropped, so that every way out of a run
/// (answer, error, timeout, cancellation, the caller going away) takes the
/// program and its children down.
struct ProcessGroup(Option<i32>);

impl ProcessGroup {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            // ESRCH (the group is already gone) is the usual, fine outcome.
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The JSON document written to the program's standard input.
fn stdin_document(program: &Program, request: &RunRequest, stream: bool) -> Value {
    json!({
        "query": request.query,
        "parameters": request.parameters,
        "session_id": request.session_id,
        "stream": stream,
        "agent": {
            "id": program.agent_id,
            "name": program.name,
            "config": program.config,
        },
    })
}

pub(super) async fn run(
    agents_dir: &Path,
    limits: Limits,
    program: &Program,
    request: &RunRequest,
    on_chunk: Option<&mut (dyn FnMut(String) + Send)>,
) -> Result<Answer, RunError> {
    let path = entrypoint::resolve(agents_dir, program.entrypoint.as_deref())
        .map_err(|e| RunError::agent(e.reason, e.message))?;
    let streaming = on_chunk.is_some();
    let mut command = Command::new(&path);
    command
        .current_dir(agents_dir)
        .env("RUNAGENT_AGENT_ID", &program.agent_id)
        .env("RUNAGENT_STREAM", if streaming { "1" } else { "0" })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = spawn(&mut command).await?;
    let mut group = ProcessGroup(child.id().and_then(|id| i32::try_from(id).ok()));

    // Input is written from a task of its own: a program that answers
    // before reading (or never reads) must not block the run on a full pipe.
    if let Some(mut stdin) = child.stdin.take() {
        let mut input = stdin_document(program, request, streaming).to_string();
        input.push('\n');
        tokio::spawn(async move {
            // A program that exits without reading closes the pipe: not an
            // error of the run.
            let _ = stdin.write_all(input.as_bytes()).await;
            let _ = stdin.shutdown().await;
        });
    }
    let stderr = child.stderr.take().map(|stderr| tokio::spawn(read_tail(stderr, limits.max_stderr_bytes)));
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| RunError::agent("spawn_failed", "The agent's program has no standard output."))?;

    // Streamed lines are checked as they come; a whole answer is checked
    // after the exit status, which explains a failure better.
    let output = match on_chunk {
        Some(on_chunk) => read_stream(stdout, limits.max_output_bytes, on_chunk).await.map(Output::Streamed),
        None => read_bounded(stdout, limits.max_output_bytes).await.map(Output::Whole),
    };
    // Output the server cannot use ends the run at once: the program is
    // killed rather than waited for (it may be blocked writing more).
    if output.is_err() {
        group.kill();
    }
    let status = child.wait().await;
    // Whatever the program left running goes now, which also closes its
    // standard error so that the reader below ends.
    group.kill();
    let stderr = match stderr {
        Some(task) => task.await.unwrap_or_default(),
        None => String::new(),
    };
    let with_stderr = |mut error: RunError| {
        if let RunError::Agent { stderr: slot, .. } = &mut error {
            *slot = Some(stderr.clone()).filter(|s| !s.is_empty());
        }
        error
    };
    let output = output.map_err(with_stderr)?;
    let status = status
        .map_err(|e| RunError::agent("spawn_failed", format!("The agent's program could not be waited for: {e}.")))?;
    check_status(status, &stderr)?;
    match output {
        Output::Whole(bytes) => parse_answer(&bytes).map_err(with_stderr),
        Output::Streamed(answer) => Ok(answer),
    }
}

/// What was read from standard output.
enum Output {
    /// The chunks were handed on; the answer is complete.
    Streamed(Answer),
    /// All of it, to parse once the exit status is known.
    Whole(Vec<u8>),
}

/// Starts the program. "Text file busy" (a script still open for writing,
/// or inherited for an instant by a process forked elsewhere in the
/// server) is retried briefly, since it passes by itself.
async fn spawn(command: &mut Command) -> Result<tokio::process::Child, RunError> {
    const ETXTBSY: i32 = 26;
    let mut attempts = 0;
    loop {
        match command.spawn() {
            Ok(child) => return Ok(child),
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && attempts < 10 => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => {
                return Err(RunError::agent("spawn_failed", format!("The agent's program could not be started: {e}.")));
            }
        }
    }
}

/// Turns a failed exit into `AGENT_ERROR`.
fn check_status(status: ExitStatus, stderr: &str) -> Result<(), RunError> {
    use std::os::unix::process::ExitStatusExt;
    if status.success() {
        return Ok(());
    }
    let stderr = Some(stderr.to_owned()).filter(|s| !s.is_empty());
    Err(match (status.code(), status.signal()) {
        (Some(code), _) => RunError::Agent {
            message: format!("The agent's program exited with status {code}."),
            reason: "exit_status",
            exit_status: Some(code),
            stderr,
        },
        (None, signal) => RunError::Agent {
            message: format!("The agent's program was killed by signal {}.", signal.unwrap_or_default()),
            reason: "signal",
            exit_status: None,
            stderr,
        },
    })
}

/// Reads a stream to its end, keeping at most the last `max` bytes (the
/// end of standard error is where the reason for a failure usually is).
async fn read_tail(mut reader: impl AsyncRead + Unpin, max: usize) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > max {
                    kept.drain(..kept.len() - max);
                }
            }
        }
    }
    String::from_utf8_lossy(&kept).trim().to_owned()
}

fn invalid_output(what: impl std::fmt::Display) -> RunError {
    RunError::agent("invalid_output", format!("The agent's program printed output the server could not read: {what}."))
}

fn too_large(max: usize) -> RunError {
    RunError::agent("output_too_large", format!("The agent's program printed more than {max} bytes."))
}

/// A short, printable excerpt of bad output for an error message.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let mut short: String = text.chars().take(80).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    format!("{short:?}")
}

/// All of standard output, up to `max` bytes.
async fn read_bounded(stdout: impl AsyncRead + Unpin, max: usize) -> Result<Vec<u8>, RunError> {
    let mut bytes = Vec::new();
    stdout
        .take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| invalid_output(format!("reading it failed ({e})")))?;
    if bytes.len() > max {
        return Err(too_large(max));
    }
    Ok(bytes)
}

/// The non-streaming answer: all of standard output, one JSON document.
fn parse_answer(bytes: &[u8]) -> Result<Answer, RunError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid_output("it printed nothing, where a JSON string or {\"result\": ...} was expected"));
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| invalid_output(format_args!("{} is not one JSON document ({e})", excerpt(bytes))))?;
    let (text, tokens_used) = read_piece(&value, "result").ok_or_else(|| {
        invalid_output(format_args!(
            "{} is neither a JSON string nor an object with a string \"result\"",
            excerpt(bytes)
        ))
    })??;
    let result = text.ok_or_else(|| invalid_output("the object has no string \"result\""))?;
    Ok(Answer { result, tokens_used })
}

/// Reads a chunk or an answer: a JSON string, or an object with a string
/// under one of `keys` and an optional `tokens_used`. `None` when the value
/// has neither shape; `Some(Err)` when `tokens_used` is not a count.
#[allow(clippy::type_complexity)]
fn read_piece(value: &Value, keys: &str) -> Option<Result<(Option<String>, Option<u64>), RunError>> {
    match value {
        Value::String(text) => Some(Ok((Some(text.clone()), None))),
        Value::Object(object) => {
            let text = keys.split(',').find_map(|key| object.get(key)).map(|v| v.as_str().map(str::to_owned));
            let tokens = object.get("tokens_used").map(Value::as_u64);
            match (text, tokens) {
                (Some(None), _) | (None, None) => None,
                (_, Some(None)) => Some(Err(invalid_output("\"tokens_used\" must be a non-negative integer"))),
                (text, tokens) => Some(Ok((text.flatten(), tokens.flatten()))),
            }
        }
        _ => None,
    }
}

/// The streaming answer: one JSON document per line, each handed on as a
/// chunk as soon as its line is complete.
async fn read_stream(
    stdout: impl AsyncRead + Unpin,
    max: usize,
    on_chunk: &mut (dyn FnMut(String) + Send),
) -> Result<Answer, RunError> {
    let mut reader = BufReader::new(stdout);
    let mut result = String::new();
    let mut tokens_used = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(max as u64 + 1)
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| invalid_output(format!("reading it failed ({e})")))?;
        if read == 0 {
            break;
        }
        if line.len() > max {
            return Err(too_large(max));
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value: Value = serde_json::from_slice(&line)
            .map_err(|e| invalid_output(format_args!("the line {} is not JSON ({e})", excerpt(&line))))?;
        let (text, tokens) = read_piece(&value, "text,result").ok_or_else(|| {
            invalid_output(format_args!(
                "the line {} is neither a JSON string nor an object with a string \"text\"",
                excerpt(&line)
            ))
        })??;
        if let Some(tokens) = tokens {
            tokens_used = Some(tokens);
        }
        if let Some(text) = text {
            result.push_str(&text);
            on_chunk(text);
        }
    }
    Ok(Answer { result, tokens_used })
}
