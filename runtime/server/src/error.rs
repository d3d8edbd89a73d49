//! The one error type of the server: what an implementation returns from an
//! operation and what every rejection (a malformed body, a missing key, an
//! exhausted rate limit, an unknown path) turns into.
//!
//! # Policy
//!
//! Every failure this crate answers is written in the API's error envelope,
//! so no response of the server is ever `text/plain` or empty-bodied. What
//! the envelope looks like is the spec's business, not this module's:
//! [`ApiFailure`] is generic over an [`ErrorEnvelope`], which the generated
//! crate implements from the envelope the spec's error responses share (its
//! code type, its details object, its constant fields such as
//! `status: error`). The runtime's own rejections pick their code from the
//! HTTP status through [`ErrorEnvelope::code_for_status`]: `400` for invalid
//! input, `401`, `404`, `405`, `409`, `413`, `429`, `500` and `501`, each
//! mapped to the code the spec's examples (or the code named after the
//! status) give it. They name the culprit in the details' `field` and
//! `reason` when the envelope has them; extra facts (a limit, a line
//! number) go into the details when they are open to extra properties, and
//! are dropped otherwise.
//!
//! A spec whose error responses share no recognizable envelope gets RFC 9457
//! problem details instead (`application/problem+json`: `type`, `title`,
//! `status`, `detail`, with `field`, `reason` and any extra details as
//! extension members); see [`ProblemDetails`]. It is the standard answer
//! for HTTP APIs that define none of their own, and every generic client
//! understands it.

use std::fmt;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use serde::Serialize;

use crate::validate::ValidationError;

/// How an API writes its errors: the code and details types of its
/// envelope, how to build one, and the code each HTTP status implies.
///
/// The generated crate implements it for the spec's envelope (or for
/// [`ProblemDetails`] when the spec has none); the runtime only ever goes
/// through it, so it works with any envelope.
pub trait ErrorEnvelope: Sized + Send + Sync + 'static {
    /// The machine-readable error code (an enum of the spec's codes, or a
    /// string).
    type Code: Clone + fmt::Debug + Send + Sync + 'static;
    /// The details object beside the code and message (`()` when the
    /// envelope has none).
    type Details: Clone + fmt::Debug + Send + Sync + 'static;
    /// The whole body as sent.
    type Body: Serialize;

    /// The media type of the body.
    const CONTENT_TYPE: &'static str = JSON;
    /// The realm named in the `WWW-Authenticate: Bearer realm="..."`
    /// challenge of every `401`.
    const REALM: &'static str;

    /// The code of a failure that only has a status: the runtime's own
    /// rejections, and `ApiFailure::from_status`.
    fn code_for_status(status: StatusCode) -> Self::Code;

    /// The body for a failure; `details` is `None` when none were set.
    fn envelope(status: StatusCode, code: Self::Code, message: String, details: Option<Self::Details>) -> Self::Body;

    /// Details with nothing set, to fill in with the setters below.
    fn empty_details() -> Self::Details;

    /// Records the field, parameter or header the failure is about (ignored
    /// when the details have no place for it).
    fn set_field(details: &mut Self::Details, field: String);

    /// Records a short machine-readable reason (ignored when the details
    /// have no place for it).
    fn set_reason(details: &mut Self::Details, reason: String);

    /// Records any other detail (ignored when the details take no extra
    /// properties, or none of this value's type).
    fn set_extra(details: &mut Self::Details, name: String, value: serde_json::Value);

    /// The field recorded by [`ErrorEnvelope::set_field`], if kept.
    fn field(details: &Self::Details) -> Option<&str>;

    /// The reason recorded by [`ErrorEnvelope::set_reason`], if kept.
    fn reason(details: &Self::Details) -> Option<&str>;
}

/// A failed request, answered in the envelope `E` describes.
///
/// Build one with a constructor named after its status
/// (`ApiFailure::not_found`, `ApiFailure::conflict`, ...), with
/// `ApiFailure::new` for any status and code, then refine it with the
/// `with_*` methods:
///
/// ```
/// use runagent_runtime_server::ApiFailure;
///
/// let failure = ApiFailure::conflict("Order ord_1 is already shipped.")
///     .with_field("order_id", "already_shipped")
///     .with_detail("order_status", "shipped");
/// assert_eq!(failure.status(), http::StatusCode::CONFLICT);
/// ```
pub struct ApiFailure<E: ErrorEnvelope> {
    // Boxed so that `Result<T, ApiFailure>` stays as small as `T` plus a
    // pointer: failures are rare, results are everywhere.
    inner: Box<Failure<E>>,
}

struct Failure<E: ErrorEnvelope> {
    status: StatusCode,
    code: E::Code,
    message: String,
    details: Option<E::Details>,
    headers: HeaderMap,
}

// Written out rather than derived: a derive would require `E: Clone` and
// `E: Debug` of the envelope's marker type, not of its code and details.
impl<E: ErrorEnvelope> Clone for ApiFailure<E> {
    fn clone(&self) -> Self {
        let Failure { status, code, message, details, headers } = &*self.inner;
        let failure = Failure {
            status: *status,
            code: code.clone(),
            message: message.clone(),
            details: details.clone(),
            headers: headers.clone(),
        };
        Self { inner: Box::new(failure) }
    }
}

impl<E: ErrorEnvelope> fmt::Debug for ApiFailure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Failure { status, code, message, details, headers } = &*self.inner;
        f.debug_struct("ApiFailure")
            .field("status", status)
            .field("code", code)
            .field("message", message)
            .field("details", details)
            .field("headers", headers)
            .finish()
    }
}

impl<E: ErrorEnvelope> fmt::Display for ApiFailure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.inner.status, self.inner.message)
    }
}

impl<E: ErrorEnvelope> std::error::Error for ApiFailure<E> {}

impl<E: ErrorEnvelope> ApiFailure<E> {
    /// A failure with any status, code and human-readable message, and no
    /// details.
    pub fn new(status: StatusCode, code: E::Code, message: impl Into<String>) -> Self {
        let failure = Failure { status, code, message: message.into(), details: None, headers: HeaderMap::new() };
        Self { inner: Box::new(failure) }
    }

    /// A failure with any status and the code the envelope gives that
    /// status (see [`ErrorEnvelope::code_for_status`]).
    pub fn from_status(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, E::code_for_status(status), message)
    }

    /// `400` about one field, parameter or header: `field` is its name on
    /// the wire (`parameters.temperature`, `page`, `Idempotency-Key`),
    /// `reason` a short machine-readable word (`missing`, `pattern`,
    /// `too_long`).
    pub fn invalid_input(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let (field, reason) = (field.into(), reason.into());
        Self::from_status(StatusCode::BAD_REQUEST, format!("Invalid value for {field} ({reason})."))
            .with_field(field, reason)
    }

    /// `401`, with the `WWW-Authenticate: Bearer realm="..."` challenge the
    /// HTTP standard requires on every 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::from_status(StatusCode::UNAUTHORIZED, message)
            .with_header(header::WWW_AUTHENTICATE, bearer_challenge::<E>())
    }

    /// `404`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::from_status(StatusCode::NOT_FOUND, message)
    }

    /// `405`, with an `Allow` header listing `allow` when it is not empty.
    /// Under an axum `MethodRouter` an empty list is right: the router adds
    /// the `Allow` header itself.
    pub fn method_not_allowed(allow: &[Method]) -> Self {
        let failure = Self::from_status(
            StatusCode::METHOD_NOT_ALLOWED,
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

    /// `409`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::from_status(StatusCode::CONFLICT, message)
    }

    /// `413` for a body over `limit` bytes; the limit is reported as the
    /// detail `limit_bytes`.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::from_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The request body is too large (the limit is {limit} bytes)."),
        )
        .with_field("body", "too_large")
        .with_detail("limit_bytes", limit)
    }

    /// `429` with a `Retry-After` header: `retry_after` rounded up to whole
    /// seconds, and at least one second, because `0` would invite an
    /// immediate retry that fails again.
    pub fn rate_limited(retry_after: Duration) -> Self {
        let seconds = retry_after_seconds(retry_after);
        Self::from_status(StatusCode::TOO_MANY_REQUESTS, format!("Rate limit exceeded; retry after {seconds} seconds."))
            .with_reason("rate_limited")
            .with_header(header::RETRY_AFTER, HeaderValue::from(seconds))
    }

    /// `503` with a `Retry-After` header, for a server that cannot answer
    /// for now (a store it needs is unreachable): `retry_after` rounded up
    /// to whole seconds, at least one. The reason is `unavailable`.
    pub fn service_unavailable(retry_after: Duration) -> Self {
        let seconds = retry_after_seconds(retry_after);
        Self::from_status(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("The service is temporarily unavailable; retry after {seconds} seconds."),
        )
        .with_reason("unavailable")
        .with_header(header::RETRY_AFTER, HeaderValue::from(seconds))
    }

    /// `500`. The message reaches the client, so it should not carry
    /// secrets or internals; log those instead.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::from_status(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// `501` for an operation this server does not implement (the default
    /// of every trait method).
    pub fn not_implemented(operation_id: &str) -> Self {
        Self::from_status(
            StatusCode::NOT_IMPLEMENTED,
            format!("The operation {operation_id} is not implemented by this server."),
        )
    }

    /// Replaces the details.
    pub fn with_details(mut self, details: E::Details) -> Self {
        self.inner.details = Some(details);
        self
    }

    /// Sets the details' field and reason, keeping any other details.
    pub fn with_field(mut self, field: impl Into<String>, reason: impl Into<String>) -> Self {
        let details = self.inner.details.get_or_insert_with(E::empty_details);
        E::set_field(details, field.into());
        E::set_reason(details, reason.into());
        self
    }

    /// Sets the details' reason, keeping any other details.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        E::set_reason(self.inner.details.get_or_insert_with(E::empty_details), reason.into());
        self
    }

    /// Adds an extra detail next to the field and reason (a limit, an exit
    /// status). The field and reason themselves are set with
    /// `ApiFailure::with_field`, so that they keep their declared type.
    pub fn with_detail(mut self, name: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        E::set_extra(self.inner.details.get_or_insert_with(E::empty_details), name.into(), value.into());
        self
    }

    /// Replaces the human-readable message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.inner.message = message.into();
        self
    }

    /// Adds a response header (replacing one of the same name). A
    /// `Content-Type` set here is ignored: the envelope decides it.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.inner.headers.insert(name, value);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.inner.status
    }

    /// The machine-readable error code.
    pub fn code(&self) -> &E::Code {
        &self.inner.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The details, if any.
    pub fn details(&self) -> Option<&E::Details> {
        self.inner.details.as_ref()
    }

    /// The field, parameter or header the failure is about, if the details
    /// name one.
    pub fn field(&self) -> Option<&str> {
        self.inner.details.as_ref().and_then(E::field)
    }

    /// The short reason in the details, if any.
    pub fn reason(&self) -> Option<&str> {
        self.inner.details.as_ref().and_then(E::reason)
    }

    /// The extra response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.inner.headers
    }

    /// The envelope this failure is answered with.
    pub fn into_envelope(self) -> E::Body {
        let Failure { status, code, message, details, .. } = *self.inner;
        E::envelope(status, code, message, details)
    }
}

impl<E: ErrorEnvelope> IntoResponse for ApiFailure<E> {
    fn into_response(mut self) -> Response {
        let Failure { status, ref code, ref message, .. } = *self.inner;
        if status.is_server_error() {
            tracing::error!(%status, ?code, %message, "request failed");
        } else {
            tracing::debug!(%status, ?code, %message, "request rejected");
        }
        let headers = std::mem::take(&mut self.inner.headers);
        let body = serde_json::to_vec(&self.into_envelope()).unwrap_or_else(|error| {
            // The envelope is strings and JSON values, so this cannot happen
            // short of a bug; answer with a fixed envelope rather than a
            // body in another format.
            tracing::error!(%error, "failed to serialize an error envelope");
            fallback_envelope::<E>(status)
        });
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        response.headers_mut().extend(headers);
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(E::CONTENT_TYPE));
        response
    }
}

impl<E: ErrorEnvelope> From<ValidationError> for ApiFailure<E> {
    /// A value breaking a constraint of the spec: `400` naming the field,
    /// with the check's wording in the message and a short token for it as
    /// the reason.
    fn from(error: ValidationError) -> Self {
        let reason = validation_reason(&error.reason);
        Self::invalid_input(error.field.clone(), reason).with_message(format!("{} {}.", error.field, error.reason))
    }
}

/// The media type of every JSON response.
pub const JSON: &str = "application/json";

/// The media type of RFC 9457 problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// What is sent if an envelope ever fails to serialize: the envelope of a
/// plain internal error, or nothing if even that fails.
fn fallback_envelope<E: ErrorEnvelope>(status: StatusCode) -> Vec<u8> {
    let internal = StatusCode::INTERNAL_SERVER_ERROR;
    let envelope = E::envelope(status, E::code_for_status(internal), "An unexpected error occurred.".to_owned(), None);
    serde_json::to_vec(&envelope).unwrap_or_default()
}

/// The `WWW-Authenticate` challenge of a `401`: `Bearer realm="<realm>"`,
/// the realm quoted as RFC 9110 says; a realm that cannot be sent in a
/// header leaves a bare `Bearer`.
pub fn bearer_challenge<E: ErrorEnvelope>() -> HeaderValue {
    let realm = E::REALM.replace('\\', "\\\\").replace('"', "\\\"");
    HeaderValue::from_str(&format!("Bearer realm=\"{realm}\"")).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

/// Serializes `body` as a JSON response with `status`, for the success
/// variants of the generated responses. A value that fails to serialize (a
/// map with non-string keys, say) is answered `500` in the envelope `E`.
pub fn json_response<E: ErrorEnvelope, T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = Response::new(Body::from(bytes));
            *response.status_mut() = status;
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
            response
        }
        Err(error) => {
            tracing::error!(%error, "failed to serialize a response body");
            ApiFailure::<E>::internal("The server failed to encode its response.").into_response()
        }
    }
}

/// A code named after a status's reason phrase, `NOT_FOUND` for `404`, for
/// envelopes whose codes are plain strings; `HTTP_<code>` for a status
/// without one.
pub fn status_code_name(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => reason.to_ascii_uppercase().replace([' ', '-'], "_").replace('\'', ""),
        None => format!("HTTP_{}", status.as_u16()),
    }
}

/// RFC 9457 problem details, the error body of an API whose spec declares no
/// envelope of its own: `{"type", "title", "status", "detail"}` plus
/// extension members (`field`, `reason`, and any other detail).
///
/// The code of a problem is its `type`, a URI; `about:blank` (the default
/// for every status) says the status is all there is to know, and the
/// title is then the status's reason phrase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProblemDetails {
    /// A URI naming the kind of problem (`about:blank` when the status says it all).
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary of the kind of problem: the status's reason phrase.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong this time.
    pub detail: String,
    /// Extension members: `field`, `reason` and any other detail.
    #[serde(flatten)]
    pub extensions: ProblemExtensions,
}

/// The extension members of [`ProblemDetails`].
pub type ProblemExtensions = serde_json::Map<String, serde_json::Value>;

impl ProblemDetails {
    /// The problem type that says nothing beyond the status.
    pub const BLANK: &'static str = "about:blank";

    /// The problem for a failure.
    pub fn new(
        status: StatusCode,
        problem_type: String,
        detail: String,
        extensions: Option<ProblemExtensions>,
    ) -> Self {
        Self {
            problem_type,
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            extensions: extensions.unwrap_or_default(),
        }
    }

    /// Sets an extension member (never one of the standard members, which
    /// the failure itself sets).
    pub fn set_extension(extensions: &mut ProblemExtensions, name: String, value: serde_json::Value) {
        if !matches!(name.as_str(), "type" | "title" | "status" | "detail" | "instance") {
            extensions.insert(name, value);
        }
    }

    /// A string extension member, if set.
    pub fn extension_str<'a>(extensions: &'a ProblemExtensions, name: &str) -> Option<&'a str> {
        extensions.get(name).and_then(serde_json::Value::as_str)
    }
}

/// Whole seconds for `Retry-After`, rounded up and at least 1.
pub(crate) fn retry_after_seconds(duration: Duration) -> u64 {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    seconds.max(1)
}

/// A short token for a validation failure, from the wording of the checks in
/// `validate.rs` ("must be at most 2" is `maximum`), because a reason is a
/// machine-readable word while the checks report sentences. Unknown wording
/// falls back to `invalid`.
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
    use crate::testing::{Problem, TestCode, TestFailure};
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
        let (status, _, body) = envelope(TestFailure::invalid_input("query", "missing").into_response()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["status"], "error");
        assert_eq!(body["error"]["code"], "INVALID_INPUT");
        assert_eq!(body["error"]["details"], json!({"field": "query", "reason": "missing"}));
    }

    #[tokio::test]
    async fn details_are_null_when_there_are_none() {
        let (status, headers, body) =
            envelope(TestFailure::unauthorized("A valid API key is required.").into_response()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer realm=\"test \\\"realm\\\"\"");
        assert_eq!(
            body,
            json!({"status": "error", "error": {"code": "UNAUTHORIZED", "message": "A valid API key is required.", "details": null}})
        );
    }

    #[tokio::test]
    async fn too_large_reports_the_limit() {
        let (status, _, body) = envelope(TestFailure::payload_too_large(1024).into_response()).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");
        assert_eq!(body["error"]["details"], json!({"field": "body", "reason": "too_large", "limit_bytes": 1024}));
    }

    #[tokio::test]
    async fn rate_limited_rounds_retry_after_up() {
        let (status, headers, body) =
            envelope(TestFailure::rate_limited(Duration::from_millis(1500)).into_response()).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[header::RETRY_AFTER], "2");
        assert_eq!(body["error"]["code"], "RATE_LIMITED");
        let zero = TestFailure::rate_limited(Duration::ZERO);
        assert_eq!(zero.headers()[header::RETRY_AFTER], "1");
    }

    #[tokio::test]
    async fn service_unavailable_has_retry_after_and_the_503_code() {
        let failure = TestFailure::service_unavailable(Duration::from_millis(2500));
        assert_eq!(failure.reason(), Some("unavailable"));
        let (status, headers, body) = envelope(failure.into_response()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::RETRY_AFTER], "3");
        // The code the envelope gives 503 (the test envelope has none of its own).
        assert_eq!(body["error"]["code"], "INTERNAL_ERROR");
        assert_eq!(body["error"]["message"], "The service is temporarily unavailable; retry after 3 seconds.");
        assert_eq!(body["error"]["details"]["reason"], "unavailable");
    }

    #[tokio::test]
    async fn method_not_allowed_lists_methods() {
        let failure = TestFailure::method_not_allowed(&[Method::GET, Method::POST]);
        let (status, headers, body) = envelope(failure.into_response()).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(headers[header::ALLOW], "GET, POST");
        assert_eq!(body["error"]["code"], "METHOD_NOT_ALLOWED");
        assert!(!TestFailure::method_not_allowed(&[]).headers().contains_key(header::ALLOW));
    }

    #[tokio::test]
    async fn every_runtime_status_has_its_code() {
        let cases = [
            (TestFailure::not_implemented("listThings"), StatusCode::NOT_IMPLEMENTED, "NOT_IMPLEMENTED"),
            (TestFailure::not_found("gone"), StatusCode::NOT_FOUND, "NOT_FOUND"),
            (TestFailure::conflict("twice"), StatusCode::CONFLICT, "CONFLICT"),
            (TestFailure::internal("oops"), StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR"),
            (TestFailure::from_status(StatusCode::FORBIDDEN, "no"), StatusCode::FORBIDDEN, "INVALID_INPUT"),
        ];
        for (failure, status, code) in cases {
            let (got, _, body) = envelope(failure.into_response()).await;
            assert_eq!((got, body["error"]["code"].as_str()), (status, Some(code)));
        }
        let custom = TestFailure::new(StatusCode::SERVICE_UNAVAILABLE, TestCode::Custom, "down");
        assert_eq!(custom.code(), &TestCode::Custom);
        assert_eq!(custom.to_string(), "503 Service Unavailable: down");
    }

    #[tokio::test]
    async fn builders_merge_details_and_keep_json() {
        let failure = TestFailure::conflict("Order ord_1 is already shipped.")
            .with_field("order_id", "already_shipped")
            .with_detail("order_status", "shipped")
            .with_header(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!((failure.field(), failure.reason()), (Some("order_id"), Some("already_shipped")));
        let (status, _, body) = envelope(failure.into_response()).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            body["error"]["details"],
            json!({"field": "order_id", "reason": "already_shipped", "order_status": "shipped"})
        );
    }

    #[tokio::test]
    async fn validation_errors_become_invalid_input() {
        let error = ValidationError { field: "parameters.temperature".into(), reason: "must be at most 2".into() };
        let (status, _, body) = envelope(TestFailure::from(error).into_response()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["message"], "parameters.temperature must be at most 2.");
        assert_eq!(body["error"]["details"], json!({"field": "parameters.temperature", "reason": "maximum"}));
    }

    #[tokio::test]
    async fn problem_details_without_an_envelope() {
        let failure = ApiFailure::<Problem>::invalid_input("page", "minimum").with_detail("minimum", 1);
        let (parts, body) = failure.into_response().into_parts();
        assert_eq!(parts.status, StatusCode::BAD_REQUEST);
        assert_eq!(parts.headers[header::CONTENT_TYPE], PROBLEM_JSON);
        let body: Value = serde_json::from_slice(&axum::body::to_bytes(body, usize::MAX).await.unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"type": "about:blank", "title": "Bad Request", "status": 400,
                   "detail": "Invalid value for page (minimum).", "field": "page", "reason": "minimum", "minimum": 1})
        );
        let failure = ApiFailure::<Problem>::not_found("No such pet.").with_detail("status", 200);
        let body = serde_json::to_value(failure.into_envelope()).unwrap();
        assert_eq!(body, json!({"type": "about:blank", "title": "Not Found", "status": 404, "detail": "No such pet."}));
    }

    #[test]
    fn status_code_names() {
        assert_eq!(status_code_name(StatusCode::NOT_FOUND), "NOT_FOUND");
        assert_eq!(status_code_name(StatusCode::IM_A_TEAPOT), "IM_A_TEAPOT");
        assert_eq!(status_code_name(StatusCode::from_u16(599).unwrap()), "HTTP_599");
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
        let response = json_response::<crate::testing::TestErrors, _>(StatusCode::CREATED, &json!({"data": {}}));
        assert_eq!(response.status(), StatusCode::CREATED);
        let (_, _, body) = envelope(response).await;
        assert_eq!(body["data"], json!({}));
        let mut bad = std::collections::HashMap::new();
        bad.insert(vec![1u8], 1);
        let response = json_response::<crate::testing::TestErrors, _>(StatusCode::OK, &bad);
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
