//! The error type every fallible call of the client returns.

use std::fmt;
use std::time::{Duration, SystemTime};

use http::StatusCode;

use crate::model::ApiModel;
use crate::response::{RateLimit, ResponseMeta};
use crate::retry::{is_retryable_status, server_retry_after};
use crate::validate::ValidationError;

/// Longest error body quoted in a message when the body is not the API's
/// JSON envelope; the whole body stays available in `ApiFailure::raw_body`.
const MESSAGE_BODY_LIMIT: usize = 512;

/// Everything that can go wrong when calling the API. `M` is the API's
/// [`ApiModel`]; the generated crate names this type `Error`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error<M: ApiModel> {
    /// The client was configured wrongly, for example without an API key or
    /// with an unparsable base URL.
    #[error("configuration error: {0}")]
    Config(String),
    /// A hook refused to send an attempt (see `Hook::before_attempt`).
    #[error("a hook stopped the request: {0}")]
    Hook(#[source] crate::hooks::HookError),
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
    Api(Box<ApiFailure<M>>),
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
    /// The server sent an event reporting a failure on an event stream.
    #[error("{0}")]
    Stream(StreamFailure<M>),
    /// An event stream dropped before its final event and could not be resumed.
    #[error("the event stream was interrupted and could not be resumed after {attempts} reconnection attempt(s)")]
    StreamInterrupted {
        /// How many reconnections were tried before giving up.
        attempts: u32,
    },
    /// A long-running operation finished with a failed status.
    #[error("operation {} failed{}", M::operation_id(.0), operation_reason::<M>(.0))]
    OperationFailed(Box<M::Operation>),
    /// A long-running operation was cancelled.
    #[error("operation {} was cancelled{}", M::operation_id(.0), operation_reason::<M>(.0))]
    OperationCancelled(Box<M::Operation>),
    /// Waiting for a long-running operation took longer than allowed.
    #[error("gave up waiting for operation {operation_id}")]
    WaitTimeout {
        /// The operation that was still running.
        operation_id: String,
    },
}

impl<M: ApiModel> Error<M> {
    /// The HTTP status of the response behind this error, if there was one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api(failure) => Some(failure.meta.status),
            Error::Decode { status, .. } => Some(*status),
            Error::Transport(err) => err.status(),
            _ => None,
        }
    }

    /// The API error code: from the error body, a stream's failure event
    /// or a failed operation.
    pub fn code(&self) -> Option<&M::ErrorCode> {
        match self {
            Error::Api(failure) => Some(&failure.code),
            Error::Stream(failure) => Some(&failure.code),
            Error::OperationFailed(op) | Error::OperationCancelled(op) => M::operation_error(op).map(|(code, _)| code),
            _ => None,
        }
    }

    /// Whether repeating the request may succeed: connection problems,
    /// timeouts, the statuses 408, 429, 500, 502, 503 and 504, and a 409
    /// that carries `Retry-After` (an idempotency key whose first request
    /// is still in progress; other conflicts carry none and stay final).
    ///
    /// The client already retries these according to its
    /// [`RetryPolicy`](crate::retry::RetryPolicy); this tells whether
    /// retrying later, at a higher level, makes sense.
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

    /// Whether the server cannot have acted on the request: it could not
    /// be connected to, or it refused the request as too many (429). Only
    /// these are retried for a POST or PATCH that carries no idempotency key.
    pub fn is_unprocessed(&self) -> bool {
        match self {
            Error::Transport(err) => err.is_connect(),
            Error::Api(failure) => failure.meta.status == StatusCode::TOO_MANY_REQUESTS,
            _ => false,
        }
    }

    /// The request id of the failed response (such as `X-Request-Id`), for
    /// support requests.
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
    pub fn api_failure(&self) -> Option<&ApiFailure<M>> {
        match self {
            Error::Api(failure) => Some(failure),
            _ => None,
        }
    }

    /// The operation, when it failed or was cancelled.
    pub fn operation(&self) -> Option<&M::Operation> {
        match self {
            Error::OperationFailed(op) | Error::OperationCancelled(op) => Some(op),
            _ => None,
        }
    }

    /// Converts a reqwest error, reporting reqwest's own timeouts (such as
    /// the connect timeout) as `Error::Timeout` so callers check one variant.
    pub(crate) fn from_reqwest(err: reqwest::Error) -> Self {
        if err.is_timeout() { Error::Timeout } else { Error::Transport(err) }
    }
}

impl<M: ApiModel> From<ValidationError> for Error<M> {
    fn from(err: ValidationError) -> Self {
        Error::InvalidRequest(err)
    }
}

impl<M: ApiModel> From<ApiFailure<M>> for Error<M> {
    fn from(failure: ApiFailure<M>) -> Self {
        Error::Api(Box::new(failure))
    }
}

impl<M: ApiModel> From<StreamFailure<M>> for Error<M> {
    fn from(failure: StreamFailure<M>) -> Self {
        Error::Stream(failure)
    }
}

/// Formats the operation's own error, if it has one, as a suffix.
fn operation_reason<M: ApiModel>(op: &M::Operation) -> String {
    match M::operation_error(op) {
        Some((code, message)) => format!(": {code}: {message}"),
        None => String::new(),
    }
}

/// A non-success response from the API.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ApiFailure<M: ApiModel> {
    /// Status, headers, request id and rate-limit window of the response.
    pub meta: ResponseMeta,
    /// The error code: from the error body, or derived from the status when
    /// the body carried none. Codes this client does not know are kept.
    pub code: M::ErrorCode,
    /// The human-readable message: from the error body, or the start of the
    /// body (or the status reason) otherwise.
    pub message: String,
    /// The error's details, when present and not null.
    pub details: Option<M::ErrorDetails>,
    /// The decoded error body; `None` when the body was not the API's error
    /// body (for example an HTML page from a proxy).
    pub body: Option<M::ErrorBody>,
    /// The body exactly as received (lossily decoded as UTF-8).
    pub raw_body: String,
    /// The delay the server asked for, from `Retry-After` or, on a 429 with
    /// no requests remaining, `X-RateLimit-Reset`.
    pub retry_after: Option<Duration>,
}

impl<M: ApiModel> ApiFailure<M> {
    /// Builds the failure from a response; `now` anchors an HTTP-date
    /// `Retry-After` and the rate-limit reset.
    pub(crate) fn from_response(meta: ResponseMeta, body: &[u8], now: SystemTime) -> Self {
        let raw_body = String::from_utf8_lossy(body).into_owned();
        let retry_after = server_retry_after(meta.status, &meta.headers, now);
        let parsed = serde_json::from_slice::<M::ErrorBody>(body).ok();
        let (code, message, details) = match parsed.as_ref().and_then(M::split_error) {
            Some((code, message, details)) => {
                (code.unwrap_or_else(|| code_for_status::<M>(meta.status)), message, details)
            }
            None => (code_for_status::<M>(meta.status), fallback_message(meta.status, &raw_body), None),
        };
        Self { meta, code, message, details, body: parsed, raw_body, retry_after }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.meta.status
    }
}

impl<M: ApiModel> fmt::Display for ApiFailure<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {} {}: {}", self.meta.status, self.code, self.message)?;
        if let Some(details) = &self.details {
            match M::describe_details(details) {
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

/// The error code a status implies when the body carries none: the API's
/// own code for that status, else the one for a status of the same meaning
/// (422 as 400, 403 as 401, any 5xx as 500), else `HTTP_<status>`.
pub(crate) fn code_for_status<M: ApiModel>(status: StatusCode) -> M::ErrorCode {
    let lookup = |status: u16| M::STATUS_CODES.iter().find(|(s, _)| *s == status).map(|(_, code)| M::error_code(code));
    let status = status.as_u16();
    let related = match status {
        422 => Some(400),
        403 => Some(401),
        501..=599 => Some(500),
        _ => None,
    };
    lookup(status).or_else(|| related.and_then(lookup)).unwrap_or_else(|| M::error_code(&format!("HTTP_{status}")))
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

/// An event reporting a failure, received on an event stream.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StreamFailure<M: ApiModel> {
    /// The error code from the event.
    pub code: M::ErrorCode,
    /// The message from the event.
    pub message: String,
    /// The SSE `id` of the event, if it had one.
    pub event_id: Option<String>,
}

impl<M: ApiModel> StreamFailure<M> {
    /// Creates a failure from a failure event's code and message.
    pub fn new(code: M::ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), event_id: None }
    }
}

impl<M: ApiModel> fmt::Display for StreamFailure<M> {
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
    use crate::testing::{ErrorCode, Model};
    use http::{HeaderMap, HeaderValue};
    use std::time::UNIX_EPOCH;

    type Error = super::Error<Model>;
    type ApiFailure = super::ApiFailure<Model>;
    type StreamFailure = super::StreamFailure<Model>;

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
            (405, ErrorCode::Unknown("HTTP_405".into())),
            (409, ErrorCode::Conflict),
            (422, ErrorCode::InvalidInput),
            (429, ErrorCode::RateLimited),
            (500, ErrorCode::InternalError),
            (501, ErrorCode::NotImplemented),
            (503, ErrorCode::InternalError),
            (418, ErrorCode::Unknown("HTTP_418".into())),
        ];
        for (status, code) in cases {
            assert_eq!(code_for_status::<Model>(StatusCode::from_u16(status).unwrap()), code, "{status}");
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
    fn without_an_envelope_errors_keep_the_json_and_a_string_code() {
        use crate::testing::PlainModel;
        type Plain = super::ApiFailure<PlainModel>;
        let body = br#"{"error":{"code":"missing","message":"no such pet","details":{"field":"id"}}}"#;
        let failure = Plain::from_response(meta(404, &[("x-request-id", "r1")]), body, now());
        assert_eq!((failure.code.as_str(), failure.message.as_str()), ("missing", "no such pet"));
        assert_eq!(failure.body.as_ref().unwrap()["error"]["code"], "missing");
        assert_eq!(failure.to_string(), "HTTP 404 Not Found missing: no such pet (field id) [request id r1]");

        let failure = Plain::from_response(meta(404, &[]), br#"{"message":"gone"}"#, now());
        assert_eq!((failure.code.as_str(), failure.message.as_str()), ("HTTP_404", "gone"));

        let failure = Plain::from_response(meta(400, &[]), b"[1]", now());
        assert_eq!(failure.body, Some(serde_json::json!([1])));
        assert_eq!((failure.code.as_str(), failure.message.as_str()), ("HTTP_400", "[1]"));

        let failure = Plain::from_response(meta(502, &[]), b"<html>", now());
        assert_eq!(failure.body, None);
        let err = super::Error::<PlainModel>::from(failure);
        assert_eq!(err.code().map(String::as_str), Some("HTTP_502"));
        assert!(err.is_retryable());
    }

    #[test]
    fn validation_error_converts() {
        let err = Error::from(ValidationError { field: "limit".into(), reason: "must be at most 100".into() });
        assert!(matches!(err, Error::InvalidRequest(_)));
        assert_eq!(err.to_string(), "invalid request: limit: must be at most 100");
    }
}
