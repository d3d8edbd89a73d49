//! What a failed command prints and the exit code it ends with. The exit
//! code says the class of failure, so scripts can tell a missing resource
//! from a throttled or broken server without reading the message:
//!
//! | Code | Class |
//! |---|---|
//! | 0 | success |
//! | 1 | the API refused the request (another 4xx) or answered unexpectedly |
//! | 2 | usage: bad arguments, flags, body or configuration |
//! | 3 | authentication: no key, or the key was refused (401, 403) |
//! | 4 | not found (404) |
//! | 5 | rate limited (429); the reset time is printed |
//! | 6 | the server failed (5xx) |
//! | 7 | network: connection, timeout, or a stream that could not resume |
//! | 8 | a long-running operation or a stream finished with a failure |

use std::process::ExitCode;

/// The exit codes, by class (see the module's table).
pub mod code {
    /// The API refused the request, or answered in a way the client did not expect.
    pub const API: u8 = 1;
    /// Bad arguments, flags, body or configuration.
    pub const USAGE: u8 = 2;
    /// No key, or the key was refused.
    pub const AUTH: u8 = 3;
    /// The resource does not exist.
    pub const NOT_FOUND: u8 = 4;
    /// Too many requests.
    pub const RATE_LIMITED: u8 = 5;
    /// The server failed.
    pub const SERVER: u8 = 6;
    /// The network failed.
    pub const NETWORK: u8 = 7;
    /// The work failed after it was accepted.
    pub const FAILED: u8 = 8;
}

/// A command's failure: a message and an exit code.
#[derive(Debug)]
pub struct Failure {
    /// What went wrong, in lines for standard error.
    pub lines: Vec<String>,
    /// The exit code.
    pub code: u8,
}

impl Failure {
    /// A usage failure (bad input on the command line).
    pub fn usage(message: impl Into<String>) -> Self {
        Self { lines: vec![message.into()], code: code::USAGE }
    }

    /// Prints the failure to standard error and gives the exit code.
    pub fn report(&self) -> ExitCode {
        let mut lines = self.lines.iter();
        if let Some(first) = lines.next() {
            eprintln!("error: {first}");
        }
        for line in lines {
            eprintln!("  {line}");
        }
        ExitCode::from(self.code)
    }
}

impl From<crate::sdk::Error> for Failure {
    fn from(error: crate::sdk::Error) -> Self {
        use crate::sdk::Error;
        let mut lines = Vec::new();
        let code = match &error {
            Error::Api(failure) => {
                lines.push(format!("{} {}", failure.code, failure.message));
                lines.push(format!("HTTP status {}", failure.status()));
                match failure.status().as_u16() {
                    401 | 403 => code::AUTH,
                    404 => code::NOT_FOUND,
                    429 => {
                        match failure.meta.rate_limit.as_ref() {
                            Some(limit) => {
                                let reset = limit.reset_at();
                                let wait = limit.reset_after(std::time::SystemTime::now());
                                lines.push(format!(
                                    "rate limited: the limit of {} resets at {} (in {}s)",
                                    limit.limit,
                                    httpdate::fmt_http_date(reset),
                                    wait.as_secs()
                                ));
                            }
                            None => {
                                if let Some(after) = failure.retry_after {
                                    lines.push(format!("rate limited: retry after {}s", after.as_secs()));
                                }
                            }
                        }
                        code::RATE_LIMITED
                    }
                    500..=599 => code::SERVER,
                    _ => code::API,
                }
            }
            Error::Config(message) => {
                lines.push(format!("configuration: {message}"));
                // A missing key is the common configuration failure and is
                // an authentication problem to the caller.
                if message.to_ascii_lowercase().contains("key") { code::AUTH } else { code::USAGE }
            }
            Error::InvalidRequest(problem) => {
                lines.push(format!("invalid request: {problem}"));
                code::USAGE
            }
            Error::Transport(_) | Error::Timeout | Error::StreamInterrupted { .. } => {
                lines.push(error.to_string());
                code::NETWORK
            }
            Error::Stream(_) | Error::OperationFailed(_) | Error::OperationCancelled(_) | Error::WaitTimeout { .. } => {
                lines.push(error.to_string());
                code::FAILED
            }
            _ => {
                lines.push(error.to_string());
                code::API
            }
        };
        if let Some(id) = error.request_id() {
            lines.push(format!("request id: {id}"));
        }
        Failure { lines, code }
    }
}
