//! The one error type of the server: what an implementation returns from an
//! operation and what every rejection (a malformed body, a missing key, an
//! exhausted rate limit, an unknown path) turns into. It always answers with
//! the API's JSON error envelope, so no response of this crate is ever
//! `text/plain`.

use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use serde::Serialize;

use crate::types::{ApiError, ErrorCode, ErrorDetails, ErrorResponse, ErrorStatus};
use crate::validate::ValidationError;

/// The `WWW-Authenticate` challenge sent with every `401`, naming the scheme
/// the API expects.
pub(crate) const BEARER_CHALLENGE: &str = "Bearer realm=\"runagent\"";

/// A failed request, answered as `{"status":"error","error":{...}}`.
///
/// Build one with a constructor named after its error code
/// ([`ApiFailure::not_found`], [`ApiFailure::conflict`], ...) or with
/// [`ApiFailure::new`], then refine it with the `with_*` methods:
///
/// ```
/// use runagent_server::ApiFailure;
///
/// let failure = ApiFailure::conflict("Agent agt_1 is not deployed (status created).")
///     .with_field("agent_id", "not_deployed")
///     .with_detail("agent_status", "created");
/// assert_eq!(failure.status(), http::StatusCode::CONFLICT);
/// ```
#[derive(Debug, Clone)]
pub struct ApiFailure {
    // Boxed so that `Result<T, ApiFailure>` stays as small as `T` plus a
    // pointer: failures are rare, results are everywhere.
    inner: Box<Failure>,
}

#[derive(Debug, Clone)]
struct Failure {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    details: Option<ErrorDetails>,
    headers: HeaderMap,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.inner.status, self.inner.message)
    }
}

impl std::error::Error for ApiFailure {}

impl ApiFailure {
    /// A failure with any status, code and human-readable message, and no
    /// details.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        let failure = Failure { status, code, message: message.into(), details: None, headers: HeaderMap::new() };
        Self { inner: Box::new(failure) }
    }

    /// `400 INVALID_INPUT` about one field, parameter or header: `field` is
    /// its name on the wire (`parameters.temperature`, `page`,
    /// `Idempotency-Key`), `reason` a short machine-readable word
    /// (`missing`, `pattern`, `too_long`).
    pub fn invalid_input(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let (field, reason) = (field.into(), reason.into());
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidInput, format!("Invalid value for {field} ({reason})."))
            .with_field(field, reason)
    }

    /// `401 UNAUTHORIZED`, with the `WWW-Authenticate: Bearer` challenge the
    /// HTTP standard requires on every 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static(BEARER_CHALLENGE))
    }

    /// `404 NOT_FOUND`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    /// `405 METHOD_NOT_ALLOWED`, with an `Allow` header listing `allow` when
    /// it is not empty. Under an axum `MethodRouter` an empty list is right:
    /// the router adds the `Allow` header itself.
    pub fn method_not_allowed(allow: &[Method]) -> Self {
        let failure = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            "This path does not support the request's method; the Allow header lists those it does.",
        );
        if allow.is_empty() {
            return failure;
        }
        let list = allow.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
        match HeaderValue::from_str(&list) {
            Ok(value) => failure.with_header(header::ALLOW, value),
            Err(_) => failure,
        }
    }

    /// `409 CONFLICT`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, ErrorCode::Conflict, message)
    }

    /// `413 PAYLOAD_TOO_LARGE` for a body over `limit` bytes; the limit is
    /// reported as `details.limit_bytes`.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("The request body is too large (the limit is {limit} bytes)."),
        )
        .with_field("body", "too_large")
        .with_detail("limit_bytes", limit)
    }

    /// `429 RATE_LIMITED` with a `Retry-After` header: `retry_after` rounded
    /// up to whole seconds, and at least one second, because `0` would invite
    /// an immediate retry that fails again.
    pub fn rate_limited(retry_after: Duration) -> Self {
        let seconds = retry_after_seconds(retry_after);
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            format!("Rate limit exceeded; retry after {seconds} seconds."),
        )
        .with_reason("rate_limited")
        .with_header(header::RETRY_AFTER, HeaderValue::from(seconds))
    }

    /// `500 INTERNAL_ERROR`. The message reaches the client, so it should
    /// not carry secrets or internals; log those instead.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::InternalError, message)
    }

    /// `501 NOT_IMPLEMENTED` for an operation this server does not implement
    /// (the default of every trait method).
    pub fn not_implemented(operation_id: &str) -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            ErrorCode::NotImplemented,
            format!("The operation {operation_id} is not implemented by this server."),
        )
    }

    /// `500 AGENT_ERROR`: the agent's program failed or printed output the
    /// server could not read.
    pub fn agent_error(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::AgentError, message)
    }

    /// `500 AGENT_TIMEOUT`: the agent's program ran past its timeout.
    pub fn agent_timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::AgentTimeout, message)
    }

    /// Replaces the details.
    pub fn with_details(mut self, details: ErrorDetails) -> Self {
        self.inner.details = Some(details);
        self
    }

    /// Sets `details.field` and `details.reason`, keeping any other details.
    pub fn with_field(mut self, field: impl Into<String>, reason: impl Into<String>) -> Self {
        let details = self.inner.details.get_or_insert_with(empty_details);
        details.field = Some(field.into());
        details.reason = Some(reason.into());
        self
    }

    /// Sets `details.reason`, keeping any other details.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.inner.details.get_or_insert_with(empty_details).reason = Some(reason.into());
        self
    }

    /// Adds an extra detail next to `field` and `reason` (a limit, an exit
    /// status). The names `field` and `reason` themselves are set with
    /// [`ApiFailure::with_field`], so that they keep their declared type.
    pub fn with_detail(mut self, name: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.inner.details.get_or_insert_with(empty_details).additional_properties.insert(name.into(), value.into());
        self
    }

    /// Replaces the human-readable message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.inner.message = message.into();
        self
    }

    /// Adds a response header (replacing one of the same name). A
    /// `Content-Type` set here is ignored: the envelope is always JSON.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.inner.headers.insert(name, value);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.inner.status
    }

    /// The machine-readable error code.
    pub fn code(&self) -> &ErrorCode {
        &self.inner.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The details, if any.
    pub fn details(&self) -> Option<&ErrorDetails> {
        self.inner.details.as_ref()
    }

    /// The extra response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.inner.headers
    }

    /// The envelope this failure is answered with.
    pub fn into_envelope(self) -> ErrorResponse {
        let Failure { code, message, details, .. } = *self.inner;
        // `details` is `null` rather than absent when there are none, as the
        // spec's examples show it.
        ErrorResponse { status: ErrorStatus::Error, error: ApiError { code, message, details: Some(details) } }
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(mut self) -> Response {
        let Failure { status, ref code, ref message, .. } = *self.inner;
        if status.is_server_error() {
            tracing::error!(%status, ?code, %message, "request failed");
        } else {
            tracing::debug!(%status, ?code, %message, "request rejected");
        }
        let headers = std::mem::take(&mut self.inner.headers);
        let body = serde_json::to_vec(&self.into_envelope()).unwrap_or_else(|error| {
            // The envelope is plain strings and JSON values, so this cannot
            // happen short of a bug; answer with a fixed envelope rather than
            // a non-JSON body.
            tracing::error!(%error, "failed to serialize an error envelope");
            FALLBACK_ENVELOPE.as_bytes().to_vec()
        });
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        response.headers_mut().extend(headers);
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
        response
    }
}

impl From<ValidationError> for ApiFailure {
    /// A value breaking a constraint of the spec: `400 INVALID_INPUT` naming
    /// the field, with the check's wording in the message and a short token
    /// for it in `details.reason`.
    fn from(error: ValidationError) -> Self {
        let reason = validation_reason(&error.reason);
        Self::invalid_input(error.field.clone(), reason).with_message(format!("{} {}.", error.field, error.reason))
    }
}

/// The media type of every JSON response.
pub(crate) const JSON: &str = "application/json";

/// What is sent if an envelope ever fails to serialize.
const FALLBACK_ENVELOPE: &str =
    r#"{"status":"error","error":{"code":"INTERNAL_ERROR","message":"An unexpected error occurred.","details":null}}"#;

/// Serializes `body` as a JSON response with `status`, for the success
/// variants of the generated responses. A value that fails to serialize (a
/// map with non-string keys, say) is answered `500 INTERNAL_ERROR`.
pub fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = Response::new(Body::from(bytes));
            *response.status_mut() = status;
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
            response
        }
        Err(error) => {
            tracing::error!(%error, "failed to serialize a response body");
            ApiFailure::internal("The server failed to encode its response.").into_response()
        }
    }
}

fn empty_details() -> ErrorDetails {
    ErrorDetails { field: None, reason: None, additional_properties: Default::default() }
}

/// Whole seconds for `Retry-After`, rounded up and at least 1.
pub(crate) fn retry_after_seconds(duration: Duration) -> u64 {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    seconds.max(1)
}

/// A short token for a validation failure, from the wording of the checks in
/// `validate.rs` ("must be at most 2" is `maximum`), because the spec's
/// `details.reason` is a machine-readable word while the checks report
/// sentences. Unknown wording falls back to `invalid`.
pub(crate) fn validation_reason(reason: &str) -> &'static str {
    // Longer, more specific wordings come first: "must be at least 2
    // characters long" also starts like the numeric "must be at least 2".
    const RULES: &[(&str, &str, &str)] = &[
        ("must be at least ", "characters long", "too_short"),
        ("must be at most ", "characters long", "too_long"),
        ("must have at least ", "items", "too_few_items"),
        ("must have at most ", "items", "too_many_items"),
        ("must match the pattern", "", "pattern"),
        ("must be a finite number", "", "not_finite"),
        ("must be at least ", "", "minimum"),
        ("must be greater than ", "", "minimum"),
        ("must be at most ", "", "maximum"),
        ("must be less than ", "", "maximum"),
    ];
    RULES
        .iter()
        .find(|(prefix, suffix, _)| reason.starts_with(prefix) && reason.ends_with(suffix))
        .map_or("invalid", |(_, _, token)| token)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// Splits a response into status, headers and its body parsed as JSON,
    /// checking on the way that the body is declared as JSON.
    pub(crate) async fn envelope(response: Response) -> (StatusCode, HeaderMap, Value) {
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.expect("body");
        assert_eq!(parts.headers[header::CONTENT_TYPE], JSON, "every envelope is JSON");
        let value = serde_json::from_slice(&bytes).expect("a JSON body");
        (parts.status, parts.headers, value)
    }

    #[tokio::test]
    async fn invalid_input_names_the_field() {
        let (status, _, body) = envelope(ApiFailure::invalid_input("query", "missing").into_response()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["status"], "error");
        assert_eq!(body["error"]["code"], "INVALID_INPUT");
        assert_eq!(body["error"]["details"], json!({"field": "query", "reason": "missing"}));
    }

    #[tokio::test]
    async fn details_are_null_when_there_are_none() {
        let (status, headers, body) =
            envelope(ApiFailure::unauthorized("A valid API key is required.").into_response()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::WWW_AUTHENTICATE], BEARER_CHALLENGE);
        assert_eq!(
            body,
            json!({"status": "error", "error": {"code": "UNAUTHORIZED", "message": "A valid API key is required.", "details": null}})
        );
    }

    #[tokio::test]
    async fn too_large_reports_the_limit() {
        let (status, _, body) = envelope(ApiFailure::payload_too_large(1024).into_response()).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");
        assert_eq!(body["error"]["details"], json!({"field": "body", "reason": "too_large", "limit_bytes": 1024}));
    }

    #[tokio::test]
    async fn rate_limited_rounds_retry_after_up() {
        let (status, headers, body) =
            envelope(ApiFailure::rate_limited(Duration::from_millis(1500)).into_response()).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[header::RETRY_AFTER], "2");
        assert_eq!(body["error"]["code"], "RATE_LIMITED");
        let zero = ApiFailure::rate_limited(Duration::ZERO);
        assert_eq!(zero.headers()[header::RETRY_AFTER], "1");
    }

    #[tokio::test]
    async fn method_not_allowed_lists_methods() {
        let failure = ApiFailure::method_not_allowed(&[Method::GET, Method::POST]);
        let (status, headers, body) = envelope(failure.into_response()).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(headers[header::ALLOW], "GET, POST");
        assert_eq!(body["error"]["code"], "METHOD_NOT_ALLOWED");
        assert!(!ApiFailure::method_not_allowed(&[]).headers().contains_key(header::ALLOW));
    }

    #[tokio::test]
    async fn not_implemented_is_a_501() {
        let (status, _, body) = envelope(ApiFailure::not_implemented("listAgents").into_response()).await;
        assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
        assert_eq!(body["error"]["code"], "NOT_IMPLEMENTED");
    }

    #[tokio::test]
    async fn builders_merge_details_and_keep_json() {
        let failure = ApiFailure::conflict("Agent agt_1 is not deployed (status created).")
            .with_field("agent_id", "not_deployed")
            .with_detail("agent_status", "created")
            .with_header(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let (status, _, body) = envelope(failure.into_response()).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            body["error"]["details"],
            json!({"field": "agent_id", "reason": "not_deployed", "agent_status": "created"})
        );
    }

    #[tokio::test]
    async fn validation_errors_become_invalid_input() {
        let error = ValidationError { field: "parameters.temperature".into(), reason: "must be at most 2".into() };
        let (status, _, body) = envelope(ApiFailure::from(error).into_response()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["message"], "parameters.temperature must be at most 2.");
        assert_eq!(body["error"]["details"], json!({"field": "parameters.temperature", "reason": "maximum"}));
    }

    #[test]
    fn validation_reasons_are_tokens() {
        assert_eq!(validation_reason("must be at least 1 characters long"), "too_short");
        assert_eq!(validation_reason("must be at most 64 characters long"), "too_long");
        assert_eq!(validation_reason("must match the pattern ^agt_[A-Za-z0-9]{1,64}$"), "pattern");
        assert_eq!(validation_reason("must be at least 1"), "minimum");
        assert_eq!(validation_reason("must be greater than 0"), "minimum");
        assert_eq!(validation_reason("must be less than 2"), "maximum");
        assert_eq!(validation_reason("must have at most 100 items"), "too_many_items");
        assert_eq!(validation_reason("must have at least 1 items"), "too_few_items");
        assert_eq!(validation_reason("must be a finite number"), "not_finite");
        assert_eq!(validation_reason("is odd"), "invalid");
    }

    #[tokio::test]
    async fn json_response_sets_status_and_type() {
        let response = json_response(StatusCode::CREATED, &json!({"status": "success", "data": {}}));
        assert_eq!(response.status(), StatusCode::CREATED);
        let (_, _, body) = envelope(response).await;
        assert_eq!(body["status"], "success");
        let mut bad = std::collections::HashMap::new();
        bad.insert(vec![1u8], 1);
        assert_eq!(json_response(StatusCode::OK, &bad).status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
