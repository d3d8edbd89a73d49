//! What a generated client tells the runtime about its API.
//!
//! The runtime knows no spec. Each generated crate defines one type that
//! implements [`ApiModel`] (and, when the API has long-running operations,
//! [`LongRunning`](crate::operation::LongRunning)) from the conventions the
//! generator found in the spec, and names the runtime's generic types with
//! that type filled in (`Client`, `Error`, ...), the way progenitor's
//! generated crates name `progenitor_client::Error<E>`.

use std::fmt;

use serde::de::DeserializeOwned;

/// An API as the runtime sees it: how its errors look, what its
/// long-running operation records are, and how its client introduces itself.
pub trait ApiModel: fmt::Debug + Clone + Copy + PartialEq + Eq + Send + Sync + 'static {
    /// The code of an API error: the spec's code enum (which keeps codes it
    /// does not know), or `String` when the spec has none.
    type ErrorCode: fmt::Debug + fmt::Display + Clone + PartialEq + Send + Sync + 'static;
    /// The details object of an API error; [`Infallible`](std::convert::Infallible)
    /// when errors carry none.
    type ErrorDetails: fmt::Debug + Clone + PartialEq + Send + Sync + 'static;
    /// The body of an error response: the spec's error envelope, or
    /// `serde_json::Value` when the spec has none.
    type ErrorBody: DeserializeOwned + fmt::Debug + Clone + PartialEq + Send + Sync + 'static;
    /// The record of a long-running operation, which a failed or cancelled
    /// wait reports; [`Infallible`](std::convert::Infallible) when the API has none.
    type Operation: fmt::Debug + Clone + PartialEq + Send + Sync + 'static;

    /// The environment variable the API key is read from, e.g. `PETS_API_KEY`.
    const API_KEY_ENV: &'static str;
    /// The environment variable the base URL is read from, e.g. `PETS_BASE_URL`.
    const BASE_URL_ENV: &'static str;
    /// The base URL used when none is configured: the spec's first server,
    /// if it is an absolute http(s) URL.
    const DEFAULT_BASE_URL: Option<&'static str>;
    /// The default `User-Agent`, e.g. `pets-client/0.1.0 (rust)`.
    const USER_AGENT: &'static str;
    /// Whether the API authenticates with a bearer key; a client can then
    /// not be built without one.
    const BEARER_AUTH: bool;
    /// The request header that carries an idempotency key, if the API takes
    /// one; POST and PATCH calls then send one key for all their attempts.
    const IDEMPOTENCY_KEY_HEADER: Option<&'static str>;
    /// The error code (its wire name) each HTTP status implies, for error
    /// bodies that do not carry one.
    const STATUS_CODES: &'static [(u16, &'static str)];

    /// The code, message and details an error body carries, or `None` when
    /// it carries no message; a missing code is implied by the status.
    fn split_error(body: &Self::ErrorBody) -> Option<ErrorParts<Self>>;

    /// An error code from its wire name; names the spec does not list are kept.
    fn error_code(wire: &str) -> Self::ErrorCode;

    /// The field an error's details name as the culprit, and the reason they give.
    fn describe_details(details: &Self::ErrorDetails) -> (Option<&str>, Option<&str>);

    /// A long-running operation's id.
    fn operation_id(operation: &Self::Operation) -> &str;

    /// The code and message of a long-running operation's own error, if it has one.
    fn operation_error(operation: &Self::Operation) -> Option<(&Self::ErrorCode, &str)>;
}

/// What an error body says: its code (if it has one), message and details.
pub type ErrorParts<M> = (Option<<M as ApiModel>::ErrorCode>, String, Option<<M as ApiModel>::ErrorDetails>);

/// Reads the code, message and details of an error body that is plain JSON,
/// for APIs whose spec declares no error envelope: `{"code", "message"}`,
/// the same one level down (`{"error": {"code", "message"}}`), or
/// `{"error": "message"}`; `details` beside code and message is kept.
pub fn json_error_parts(body: &serde_json::Value) -> Option<(Option<String>, String, Option<serde_json::Value>)> {
    let text = |value: &serde_json::Value, key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let object = match body.get("error") {
        Some(inner) if inner.is_object() => inner,
        Some(serde_json::Value::String(message)) => return Some((text(body, "code"), message.clone(), None)),
        _ => body,
    };
    let message = text(object, "message")?;
    let code = text(object, "code");
    let details = object.get("details").filter(|d| !d.is_null()).cloned();
    Some((code, message, details))
}

/// The culprit field and reason of JSON details, for APIs without an
/// error envelope: their `field` and `reason` strings.
pub fn json_details_parts(details: &serde_json::Value) -> (Option<&str>, Option<&str>) {
    (details.get("field").and_then(|v| v.as_str()), details.get("reason").and_then(|v| v.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_json_errors_are_read_in_their_usual_shapes() {
        let flat = json!({"code": "E1", "message": "bad", "details": {"field": "x"}});
        assert_eq!(json_error_parts(&flat), Some((Some("E1".into()), "bad".into(), Some(json!({"field": "x"})))));
        let nested = json!({"error": {"code": "E2", "message": "worse", "details": null}});
        assert_eq!(json_error_parts(&nested), Some((Some("E2".into()), "worse".into(), None)));
        let short = json!({"error": "nope"});
        assert_eq!(json_error_parts(&short), Some((None, "nope".into(), None)));
        assert_eq!(json_error_parts(&json!({"detail": "problem+json"})), None);
        assert_eq!(json_error_parts(&json!([1, 2])), None);
        let details = json!({"field": "name", "reason": "missing", "extra": 1});
        assert_eq!(json_details_parts(&details), (Some("name"), Some("missing")));
        assert_eq!(json_details_parts(&json!("text")), (None, None));
    }
}
