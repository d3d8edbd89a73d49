//! The error type every fallible call of the client returns.

use std::fmt;
use std::time::{Duration, SystemTime};

use http::StatusCode;

use crate::response::{RateLimit, ResponseMeta};
use crate::retry::{is_retryable_status, server_retry_after};
use crate::types::{ApiError, ErrorCode, ErrorDetails, ErrorResponse, Operation};
use crate::validate::ValidationError;

/// Longest error body quoted in a message when the body is not the API's
/// JSON envelope; the whole body stays available in [`ApiFailure::raw_body`].
const MESSAGE_BODY_LIMIT: usize = 512;

/// Everything that can go wrong when calling the RunAgent API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client was configured wrongly, for example without an API key or
    /// with an unparsable base URL.
    #[error("configuration error: {0}")]
    Config(String),
    /// A request value broke a constraint of the API specification and was
    /// not sent.
    #[error("invalid request: {0}")]
    InvalidRequest(ValidationError),
    /// The request could not be sent or the response could not be read
    /// (connection refused or reset, DNS failure, TLS failure, ...).
    #[error("transport error: {0}")]
    Transport(#[source] reqwest::Error),
    /// An attempt took longer than the configured timeout.
    #[error("the request timed out")]
    Timeout,
    /// The server answered with a non-success status.
    #[error("{0}")]
    Api(Box<ApiFailure>),
    /// A success response's body did not match the expected shape.
    #[error("could not decode the response body (HTTP {status}): {source}")]
    Decode {
        /// The response status.
        status: StatusCode,
        /// The body as received, so that the mismatch can be inspected.
        body: String,
        /// What the JSON decoder objected to.
        #[source]
        source: serde_json::Error,
    },
    /// The server sent an `error` event on an event stream.
    #[error("{0}")]
    Stream(StreamFailure),
    /// An event stream dropped before its final event and could not be resumed.
    #[error("the event stream was interrupted and could not be resumed after {attempts} reconnection attempt(s)")]
    StreamInterrupted {
        /// How many reconnections were tried before giving up.
        attempts: u32,
    },
    /// A long-running operation finished with status `failed`.
    #[error("operation {} failed{}", .0.operation_id, operation_reason(.0))]
    OperationFailed(Box<Operation>),
    /// A long-running operation was cancelled.
    #[error("operation {} was cancelled{}", .0.operation_id, operation_reason(.0))]
    OperationCancelled(Box<Operation>),
    /// Waiting for a long-running operation took longer than allowed.
    #[error("gave up waiting for operation {operation_id}")]
    WaitTimeout {
        /// The operation that was still running.
        operation_id: String,
    },
}

impl Error {
    /// The HTTP status of the response behind this error, if there was one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api(failure) => Some(failure.meta.status),
            Error::Decode { status, .. } => Some(*status),
            Error::Transport(err) => err.status(),
            _ => None,
        }
    }

    /// The API error code: from the error envelope, a stream `error` event
    /// or a failed operation.
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            Error::Api(failure) => Some(&failure.code),
            Error::Stream(failure) => Some(&failure.code),
            Error::OperationFailed(op) | Error::OperationCancelled(op) => op.error.api_error().map(|e| &e.code),
            _ => None,
        }
    }

    /// Whether repeating the request may succeed: connection problems,
    /// timeouts, the statuses 408, 429, 500, 502, 503 and 504, and a 409
    /// that carries `Retry-After` (an `Idempotency-Key` whose first request
    /// is still in progress; other conflicts carry none and stay final).
    ///
    /// The client already retries these according to its [`RetryPolicy`](crate::RetryPolicy);
    /// this tells whether retrying later, at a higher level, makes sense.
    pub fn is_retryable(&self) -> bool {
        match self {
            // Building a request or following a redirect fails the same way
            // every time; everything else reqwest reports is a transport fault.
            Error::Transport(err) => !err.is_builder() && !err.is_redirect(),
            Error::Timeout => true,
            Error::Api(failure) => {
                is_retryable_status(failure.meta.status)
                    || (failure.meta.status == StatusCode::CONFLICT && failure.retry_after.is_some())
            }
            _ => false,
        }
    }

    /// The `X-Request-Id` of the failed response, for support requests.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Api(failure) => failure.meta.request_id.as_deref(),
            _ => None,
        }
    }

    /// How long the server asked the client to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api(failure) => failure.retry_after,
            _ => None,
        }
    }

    /// The rate-limit window reported with the failed response.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        match self {
            Error::Api(failure) => failure.meta.rate_limit,
            _ => None,
        }
    }

    /// The failed response, when the server answered with an error status.
    pub fn api_failure(&self) -> Option<&ApiFailure> {
        match self {
            Error::Api(failure) => Some(failure),
            _ => None,
        }
    }

    /// The operation, when it failed or was cancelled.
    pub fn operation(&self) -> Option<&Operation> {
        match self {
            Error::OperationFailed(op) | Error::OperationCancelled(op) => Some(op),
            _ => None,
        }
    }

    /// Converts a reqwest error, reporting reqwest's own timeouts (such as
    /// the connect timeout) as [`Error::Timeout`] so callers check one variant.
    pub(crate) fn from_reqwest(err: reqwest::Error) -> Self {
        if err.is_timeout() { Error::Timeout } else { Error::Transport(err) }
    }
}

impl From<ValidationError> for Error {
    fn from(err: ValidationError) -> Self {
        Error::InvalidRequest(err)
    }
}

impl From<ApiFailure> for Error {
    fn from(failure: ApiFailure) -> Self {
        Error::Api(Box::new(failure))
    }
}

impl From<StreamFailure> for Error {
    fn from(failure: StreamFailure) -> Self {
        Error::Stream(failure)
    }
}

/// Formats the operation's own error, if it has one, as a suffix.
fn operation_reason(op: &Operation) -> String {
    match op.error.api_error() {
        Some(err) => format!(": {}: {}", err.code, err.message),
        None => String::new(),
    }
}

/// Reads an operation's `error`, whichever way the generator typed it:
/// `Option<ApiError>` while the spec marks the field optional only, or
/// `Option<Option<ApiError>>` if it is ever marked nullable as well.
pub(crate) trait OptionalApiError {
    /// The error, when present and not null.
    fn api_error(&self) -> Option<&ApiError>;
}

impl OptionalApiError for Option<ApiError> {
    fn api_error(&self) -> Option<&ApiError> {
        self.as_ref()
    }
}

impl OptionalApiError for Option<Option<ApiError>> {
    fn api_error(&self) -> Option<&ApiError> {
        self.as_ref().and_then(Option::as_ref)
    }
}

/// Reads an error's `details`, whichever way the generator typed it:
/// `Option<Option<ErrorDetails>>` while the spec marks the field optional
/// and nullable, or `Option<ErrorDetails>` if it ever becomes optional only.
pub(crate) trait OptionalErrorDetails {
    /// The details, when present and not null.
    fn error_details(&self) -> Option<ErrorDetails>;
}

impl OptionalErrorDetails for Option<ErrorDetails> {
    fn error_details(&self) -> Option<ErrorDetails> {
        self.clone()
    }
}

impl OptionalErrorDetails for Option<Option<ErrorDetails>> {
    fn error_details(&self) -> Option<ErrorDetails> {
        self.clone().flatten()
    }
}

/// A non-success response from the API.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ApiFailure {
    /// Status, headers, request id and rate-limit window of the response.
    pub meta: ResponseMeta,
    /// The error code: from the envelope, or derived from the status when
    /// the body was not the envelope. Codes this client does not know are
    /// kept as [`ErrorCode::Unknown`].
    pub code: ErrorCode,
    /// The human-readable message: from the envelope, or the start of the
    /// body (or the status reason) otherwise.
    pub message: String,
    /// The envelope's `details`, when present and not null.
    pub details: Option<ErrorDetails>,
    /// The whole envelope; `None` when the body was not the API's envelope
    /// (for example an HTML page from a proxy).
    pub body: Option<ErrorResponse>,
    /// The body exactly as received (lossily decoded as UTF-8).
    pub raw_body: String,
    /// The delay the server asked for, from `Retry-After` or, on a 429 with
    /// no requests remaining, `X-RateLimit-Reset`.
    pub retry_after: Option<Duration>,
}

impl ApiFailure {
    /// Builds the failure from a response; `now` anchors an HTTP-date
    /// `Retry-After` and the rate-limit reset.
    pub(crate) fn from_response(meta: ResponseMeta, body: &[u8], now: SystemTime) -> Self {
        let raw_body = String::from_utf8_lossy(body).into_owned();
        let retry_after = server_retry_after(meta.status, &meta.headers, now);
        match serde_json::from_slice::<ErrorResponse>(body) {
            Ok(envelope) => Self {
                code: envelope.error.code.clone(),
                message: envelope.error.message.clone(),
                details: envelope.error.details.error_details(),
                body: Some(envelope),
                meta,
                raw_body,
                retry_after,
            },
            Err(_) => Self {
                code: code_for_status(meta.status),
                message: fallback_message(meta.status, &raw_body),
                details: None,
                body: None,
                meta,
                raw_body,
                retry_after,
            },
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.meta.status
    }
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {} {}: {}", self.meta.status, self.code, self.message)?;
        if let Some(details) = &self.details {
            match (&details.field, &details.reason) {
                (Some(field), Some(reason)) => write!(f, " ({field}: {reason})")?,
                (Some(field), None) => write!(f, " (field {field})")?,
                (None, Some(reason)) => write!(f, " ({reason})")?,
                (None, None) => {}
            }
        }
        if let Some(id) = &self.meta.request_id {
            write!(f, " [request id {id}]")?;
        }
        Ok(())
    }
}

/// The error code a status implies when the body is not the envelope.
pub(crate) fn code_for_status(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        400 | 422 => ErrorCode::InvalidInput,
        401 | 403 => ErrorCode::Unauthorized,
        404 => ErrorCode::NotFound,
        405 => ErrorCode::MethodNotAllowed,
        409 => ErrorCode::Conflict,
        413 => ErrorCode::PayloadTooLarge,
        429 => ErrorCode::RateLimited,
        501 => ErrorCode::NotImplemented,
        500..=599 => ErrorCode::InternalError,
        other => ErrorCode::Unknown(format!("HTTP_{other}")),
    }
}

/// A readable message for a body that is not the envelope: its start, or
/// the status's reason phrase when it is empty.
fn fallback_message(status: StatusCode, body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        return status.canonical_reason().unwrap_or("unexpected status").to_owned();
    }
    match body.char_indices().nth(MESSAGE_BODY_LIMIT) {
        Some((cut, _)) => format!("{}...", &body[..cut]),
        None => body.to_owned(),
    }
}

/// An `error` event received on an event stream.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StreamFailure {
    /// The error code from the event.
    pub code: ErrorCode,
    /// The message from the event.
    pub message: String,
    /// The SSE `id` of the event, if it had one.
    pub event_id: Option<String>,
}

impl StreamFailure {
    /// Creates a failure from an `error` event's code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), event_id: None }
    }
}

impl From<crate::types::StreamError> for StreamFailure {
    fn from(err: crate::types::StreamError) -> Self {
        Self::new(err.code, err.message)
    }
}

impl fmt::Display for StreamFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stream error {}: {}", self.code, self.message)?;
        if let Some(id) = &self.event_id {
            write!(f, " [event id {id}]")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};
    use std::time::UNIX_EPOCH;

    fn meta(status: u16, pairs: &[(&'static str, &'static str)]) -> ResponseMeta {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        ResponseMeta::from_parts(StatusCode::from_u16(status).unwrap(), headers)
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_640_995_000)
    }

    #[test]
    fn error_is_send_sync_static() {
        fn assert_bounds<T: Send + Sync + 'static + std::error::Error>() {}
        assert_bounds::<Error>();
    }

    #[test]
    fn envelope_is_parsed() {
        let body = br#"{"status":"error","error":{"code":"INVALID_INPUT","message":"Query parameter is required","details":{"field":"query","reason":"missing","hint":"add it"}}}"#;
        let failure = ApiFailure::from_response(meta(400, &[("x-request-id", "req_1")]), body, now());
        assert_eq!(failure.code, ErrorCode::InvalidInput);
        assert_eq!(failure.message, "Query parameter is required");
        let details = failure.details.clone().unwrap();
        assert_eq!(details.field.as_deref(), Some("query"));
        assert_eq!(details.reason.as_deref(), Some("missing"));
        assert!(failure.body.is_some());
        let err = Error::from(failure);
        assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
        assert_eq!(err.code(), Some(&ErrorCode::InvalidInput));
        assert_eq!(err.request_id(), Some("req_1"));
        assert!(!err.is_retryable());
        let text = err.to_string();
        assert!(text.contains("400"), "{text}");
        assert!(text.contains("INVALID_INPUT"), "{text}");
        assert!(text.contains("query: missing"), "{text}");
        assert!(text.contains("req_1"), "{text}");
    }

    #[test]
    fn only_a_conflict_that_asks_to_wait_is_retryable() {
        let in_progress = br#"{"status":"error","error":{"code":"CONFLICT","message":"still running","details":{"field":"Idempotency-Key","reason":"in_progress"}}}"#;
        let waiting = ApiFailure::from_response(meta(409, &[("retry-after", "1")]), in_progress, now());
        assert_eq!(waiting.retry_after, Some(Duration::from_secs(1)));
        assert!(Error::from(waiting).is_retryable());

        let not_deployed = br#"{"status":"error","error":{"code":"CONFLICT","message":"not deployed","details":{"field":"agent_id","reason":"not_deployed"}}}"#;
        let final_conflict = ApiFailure::from_response(meta(409, &[]), not_deployed, now());
        assert!(!Error::from(final_conflict).is_retryable());
    }

    #[test]
    fn unknown_code_is_kept() {
        let body = br#"{"status":"error","error":{"code":"QUOTA_EXCEEDED","message":"no more","details":null}}"#;
        let failure = ApiFailure::from_response(meta(402, &[]), body, now());
        assert_eq!(failure.code, ErrorCode::Unknown("QUOTA_EXCEEDED".into()));
        assert_eq!(failure.details, None);
        assert!(failure.body.is_some());
    }

    #[test]
    fn non_envelope_body_is_still_a_failure() {
        let failure = ApiFailure::from_response(meta(502, &[]), b"<html>Bad Gateway</html>", now());
        assert_eq!(failure.code, ErrorCode::InternalError);
        assert_eq!(failure.message, "<html>Bad Gateway</html>");
        assert_eq!(failure.body, None);
        assert_eq!(failure.raw_body, "<html>Bad Gateway</html>");
        assert!(Error::from(failure).is_retryable());

        let empty = ApiFailure::from_response(meta(404, &[]), b"", now());
        assert_eq!(empty.code, ErrorCode::NotFound);
        assert_eq!(empty.message, "Not Found");

        let long = "x".repeat(2_000);
        let failure = ApiFailure::from_response(meta(500, &[]), long.as_bytes(), now());
        assert_eq!(failure.message.len(), MESSAGE_BODY_LIMIT + 3);
        assert_eq!(failure.raw_body.len(), 2_000);
    }

    #[test]
    fn status_codes_map_to_error_codes() {
        let cases = [
            (400, ErrorCode::InvalidInput),
            (401, ErrorCode::Unauthorized),
            (403, ErrorCode::Unauthorized),
            (404, ErrorCode::NotFound),
            (405, ErrorCode::MethodNotAllowed),
            (409, ErrorCode::Conflict),
            (413, ErrorCode::PayloadTooLarge),
            (422, ErrorCode::InvalidInput),
            (429, ErrorCode::RateLimited),
            (500, ErrorCode::InternalError),
            (501, ErrorCode::NotImplemented),
            (503, ErrorCode::InternalError),
            (418, ErrorCode::Unknown("HTTP_418".into())),
        ];
        for (status, code) in cases {
            assert_eq!(code_for_status(StatusCode::from_u16(status).unwrap()), code, "{status}");
        }
    }

    #[test]
    fn rate_limited_failure_carries_window_and_delay() {
        let failure = ApiFailure::from_response(
            meta(
                429,
                &[("x-ratelimit-limit", "100"), ("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1640995020")],
            ),
            br#"{"status":"error","error":{"code":"RATE_LIMITED","message":"slow down"}}"#,
            now(),
        );
        assert_eq!(failure.retry_after, Some(Duration::from_secs(20)));
        let err = Error::from(failure);
        assert!(err.is_retryable());
        assert_eq!(err.retry_after(), Some(Duration::from_secs(20)));
        assert_eq!(err.rate_limit().map(|r| r.remaining), Some(0));
        assert_eq!(err.code(), Some(&ErrorCode::RateLimited));
    }

    #[test]
    fn retry_after_header_is_kept() {
        let failure = ApiFailure::from_response(meta(503, &[("retry-after", "3")]), b"", now());
        assert_eq!(failure.retry_after, Some(Duration::from_secs(3)));
    }

    #[test]
    fn simple_variants_classify() {
        assert!(Error::Timeout.is_retryable());
        assert!(!Error::Config("x".into()).is_retryable());
        assert!(!Error::StreamInterrupted { attempts: 5 }.is_retryable());
        let stream = Error::from(StreamFailure::new(ErrorCode::AgentError, "boom"));
        assert_eq!(stream.code(), Some(&ErrorCode::AgentError));
        assert_eq!(stream.status(), None);
        assert!(stream.to_string().contains("AGENT_ERROR"));
    }

    #[test]
    fn validation_error_converts() {
        let err = Error::from(ValidationError { field: "limit".into(), reason: "must be at most 100".into() });
        assert!(matches!(err, Error::InvalidRequest(_)));
        assert_eq!(err.to_string(), "invalid request: limit: must be at most 100");
    }
}
