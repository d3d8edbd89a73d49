//! Running agents for real.
//!
//! - `echo` (built in): the result is the query; streaming sends it word by
//!   word; `tokens_used` counts the words. `config.delay_ms` (optional)
//!   waits that long before each word, to make an echo agent slow enough
//!   to watch, cancel or time out.
//! - `command`: the agent's entrypoint, a program inside the agents
//!   directory, runs with the invoke request as JSON on its standard input
//!   and answers on its standard output (see the crate README for the
//!   contract, and [`command`]).
//!
//! Every run has a timeout (`parameters.timeout_seconds`, 30 seconds by
//! default) and a [`CancellationToken`]; either one ending the run drops
//! the work, which kills the program and everything it started.

mod command;
mod echo;
pub mod entrypoint;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
pub use tokio_util::sync::CancellationToken;

pub use echo::echo_chunks;
pub use entrypoint::EntrypointError;

use crate::store::{AgentRecord, Framework};

/// The timeout of a run whose parameters name none (the spec's default).
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 30;
/// The longest timeout a request may ask for (the spec's maximum).
pub const MAX_TIMEOUT_SECONDS: u64 = 300;

/// The agent to run: what the runner needs of an agent record.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    /// The agent's id.
    pub agent_id: String,
    /// The agent's name.
    pub name: String,
    /// How it runs.
    pub framework: Framework,
    /// A `command` agent's program, relative to the agents directory.
    pub entrypoint: Option<String>,
    /// The agent's configuration, passed to the program.
    pub config: Value,
}

impl From<&AgentRecord> for Program {
    fn from(agent: &AgentRecord) -> Self {
        Program {
            agent_id: agent.id.clone(),
            name: agent.name.clone(),
            framework: agent.framework,
            entrypoint: agent.entrypoint.clone(),
            config: agent.config.clone(),
        }
    }
}

/// One invocation's input.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunRequest {
    /// The query.
    pub query: String,
    /// The free-form parameters (`timeout_seconds` among them).
    pub parameters: Map<String, Value>,
    /// The conversation id, passed through.
    pub session_id: Option<String>,
}

impl RunRequest {
    /// A request with just a query.
    pub fn new(query: impl Into<String>) -> Self {
        RunRequest { query: query.into(), ..RunRequest::default() }
    }

    /// The run's timeout in whole seconds: `parameters.timeout_seconds`
    /// when it is an integer from 1 to 300 (the API validates that before
    /// the runner sees it), else the default.
    pub fn timeout_seconds(&self) -> u64 {
        self.parameters
            .get("timeout_seconds")
            .and_then(Value::as_u64)
            .filter(|s| (1..=MAX_TIMEOUT_SECONDS).contains(s))
            .unwrap_or(DEFAULT_TIMEOUT_SECONDS)
    }
}

/// A finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutput {
    /// The answer.
    pub result: String,
    /// The tokens the agent reports (words, for `echo`).
    pub tokens_used: u64,
    /// Seconds the run took.
    pub execution_time: f64,
}

/// A run that did not produce an answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    /// The program could not start, failed, or printed output that could
    /// not be read (`AGENT_ERROR`).
    #[error("{message}")]
    Agent {
        /// What to tell people.
        message: String,
        /// A short machine-readable reason (`exit_status`, `signal`,
        /// `invalid_output`, `output_too_large`, `spawn_failed`, or an
        /// entrypoint reason such as `not_found`).
        reason: &'static str,
        /// The exit status, when the program exited with one.
        exit_status: Option<i32>,
        /// The end of what the program wrote on its standard error.
        stderr: Option<String>,
    },
    /// The run took longer than its timeout and was stopped
    /// (`AGENT_TIMEOUT`).
    #[error(
        "The agent did not answer within {seconds} second{}.",
        if *seconds == 1 { "" } else { "s" }
    )]
    Timeout {
        /// The timeout.
        seconds: u64,
    },
    /// The run was cancelled (operation cancelled, agent deleted, server
    /// stopping).
    #[error("The run was cancelled.")]
    Cancelled,
}

impl RunError {
    fn agent(reason: &'static str, message: impl Into<String>) -> Self {
        RunError::Agent { message: message.into(), reason, exit_status: None, stderr: None }
    }

    /// The API error code: `AGENT_ERROR` or `AGENT_TIMEOUT` (a cancelled
    /// run is reported as `AGENT_ERROR` by whoever still asks).
    pub fn code(&self) -> &'static str {
        match self {
            RunError::Timeout { .. } => "AGENT_TIMEOUT",
            RunError::Agent { .. } | RunError::Cancelled => "AGENT_ERROR",
        }
    }

    /// The `details` of the API error; `field_prefix` is prepended to the
    /// field (`batch[2].` for a batch item).
    pub fn details(&self, field_prefix: &str) -> Value {
        match self {
            RunError::Agent { reason, exit_status, stderr, .. } => {
                let mut details = json!({ "reason": reason });
                if let Some(status) = exit_status {
                    details["exit_status"] = json!(status);
                }
                if let Some(stderr) = stderr.as_deref().filter(|s| !s.is_empty()) {
                    details["stderr"] = json!(stderr);
                }
                details
            }
            RunError::Timeout { seconds } => json!({
                "field": format!("{field_prefix}parameters.timeout_seconds"),
                "reason": "exceeded",
                "timeout_seconds": seconds,
            }),
            RunError::Cancelled => json!({ "reason": "cancelled" }),
        }
    }

    /// The error as an `ApiError` document (`code`, `message`, `details`).
    pub fn to_api_error(&self, field_prefix: &str) -> Value {
        json!({
            "code": self.code(),
            "message": self.to_string(),
            "details": self.details(field_prefix),
        })
    }
}

/// Runs agents. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Runner {
    agents_dir: PathBuf,
    limits: Limits,
}

/// Bounds on what a program may print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes of standard output read (the whole answer, or one
    /// streamed line); more is `AGENT_ERROR` (`output_too_large`).
    pub max_output_bytes: usize,
    /// The most bytes of standard error kept for the error message (the
    /// rest is read and dropped, so the program never blocks on it).
    pub max_stderr_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_output_bytes: 1024 * 1024, max_stderr_bytes: 4 * 1024 }
    }
}

impl Runner {
    /// A runner for programs under `agents_dir`.
    pub fn new(agents_dir: impl Into<PathBuf>) -> Self {
        Runner { agents_dir: agents_dir.into(), limits: Limits::default() }
    }

    /// Changes the output bounds.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The agents directory.
    pub fn agents_dir(&self) -> &Path {
        &self.agents_dir
    }

    /// Checks a `command` agent's entrypoint, as a deployment does.
    pub fn check_entrypoint(&self, entrypoint: Option<&str>) -> Result<PathBuf, EntrypointError> {
        entrypoint::resolve(&self.agents_dir, entrypoint)
    }

    /// Whether `program` can run now: always for `echo`, and for `command`
    /// when its entrypoint passes the checks.
    pub fn is_available(&self, program: &Program) -> bool {
        match program.framework {
            Framework::Echo => true,
            Framework::Command => self.check_entrypoint(program.entrypoint.as_deref()).is_ok(),
        }
    }

    /// Runs `program` on `request` to the end.
    pub async fn run(
        &self,
        program: &Program,
        request: &RunRequest,
        cancel: &CancellationToken,
    ) -> Result<RunOutput, RunError> {
        self.run_inner(program, request, cancel, None).await
    }

    /// Runs `program` on `request`, handing each piece of the answer to
    /// `on_chunk` as it comes. The output's `result` is all the chunks
    /// joined.
    pub async fn run_streaming(
        &self,
        program: &Program,
        request: &RunRequest,
        cancel: &CancellationToken,
        on_chunk: &mut (dyn FnMut(String) + Send),
    ) -> Result<RunOutput, RunError> {
        self.run_inner(program, request, cancel, Some(on_chunk)).await
    }

    async fn run_inner(
        &self,
        program: &Program,
        request: &RunRequest,
        cancel: &CancellationToken,
        on_chunk: Option<&mut (dyn FnMut(String) + Send)>,
    ) -> Result<RunOutput, RunError> {
        let started = Instant::now();
        let seconds = request.timeout_seconds();
        let work = async {
            match program.framework {
                Framework::Echo => echo::run(program, request, on_chunk).await,
                Framework::Command => command::run(&self.agents_dir, self.limits, program, request, on_chunk).await,
            }
        };
        // Whichever ends first wins; the others are dropped, and dropping
        // the work kills the program's process group.
        let answer = tokio::select! {
            answer = work => answer?,
            () = tokio::time::sleep(Duration::from_secs(seconds)) => {
                return Err(RunError::Timeout { seconds });
            }
            () = cancel.cancelled() => return Err(RunError::Cancelled),
        };
        Ok(RunOutput {
            tokens_used: answer.tokens_used.unwrap_or_else(|| count_words(&answer.result)),
            result: answer.result,
            execution_time: started.elapsed().as_secs_f64(),
        })
    }
}

/// What a framework answered, before timing.
struct Answer {
    result: String,
    tokens_used: Option<u64>,
}

/// The number of whitespace-separated words: `echo`'s token count, and
/// the default for programs that report none.
pub fn count_words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

#[cfg(test)]
mod tests;
