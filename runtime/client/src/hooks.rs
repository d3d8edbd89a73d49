//! Code run on every attempt of every call: before it is sent (to add or
//! sign headers) and when its response arrives (to record metrics or look
//! at what came back).
//!
//! A small trait rather than a middleware stack (tower, reqwest-middleware):
//! the client already owns the one retry loop, and a hook must run inside it,
//! once per attempt, so that a signature with a timestamp is fresh on every
//! retry; a middleware around the client would see one call, and one inside
//! reqwest would not know the operation or the attempt. Hooks are
//! synchronous: signing and counting need no I/O, and the hot path stays
//! free of boxed futures.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};

/// One attempt about to be sent.
#[non_exhaustive]
pub struct AttemptRequest<'a> {
    /// The operation's id, e.g. `invokeAgent` (empty for a URL the API
    /// returned).
    pub operation: &'a str,
    /// The attempt's number, from 1.
    pub attempt: u32,
    /// The HTTP method.
    pub method: &'a Method,
    /// The full URL, query included.
    pub url: &'a reqwest::Url,
    /// The headers to send, which the hook may change. They hold the
    /// credentials: a hook must not log them.
    pub headers: &'a mut HeaderMap,
    /// The body as it will be sent, if any.
    pub body: Option<&'a Bytes>,
}

/// The response to one attempt, before its body is read.
#[non_exhaustive]
pub struct AttemptResponse<'a> {
    /// The operation's id.
    pub operation: &'a str,
    /// The attempt's number, from 1.
    pub attempt: u32,
    /// The status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: &'a HeaderMap,
    /// How long the response took to arrive since the attempt was sent.
    pub elapsed: Duration,
}

/// Refuses to send an attempt; the call fails with `Error::Hook`, without
/// retrying.
#[derive(Debug)]
pub struct HookError(pub Box<dyn std::error::Error + Send + Sync>);

impl HookError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into().into())
    }
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for HookError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// Runs on every attempt of every call, in the order hooks were added.
pub trait Hook: Send + Sync + 'static {
    /// Before an attempt is sent: add, change or sign headers. An error
    /// stops the call.
    fn before_attempt(&self, request: &mut AttemptRequest<'_>) -> Result<(), HookError> {
        let _ = request;
        Ok(())
    }

    /// When an attempt's response arrives, success or not.
    fn after_response(&self, response: &AttemptResponse<'_>) {
        let _ = response;
    }
}
