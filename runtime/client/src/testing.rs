//! A small API model for the runtime's own tests, shaped like a typical
//! generated one: an error envelope `{"status": "error", "error": {code,
//! message, details}}` with a code enum that keeps unknown codes, and
//! long-running operations accepted with `{operation_id, status, check_url}`
//! and polled at `/operations/{id}`. It is compiled only for tests, in the
//! runtime crate and in every generated crate that vendors the runtime.

use std::fmt;
use std::future::Future;

use http::Method;
use serde::Deserialize;

use crate::client::{Client, RequestOptions, RequestSpec};
use crate::error::Error;
use crate::model::{ApiModel, ErrorParts};
use crate::operation::{CancelOperation, LongRunning, OperationState};
use crate::response::ApiResponse;

/// The test API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct Model;

/// An error code, kept as sent when unknown.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) enum ErrorCode {
    #[serde(rename = "INVALID_INPUT")]
    InvalidInput,
    #[serde(rename = "UNAUTHORIZED")]
    Unauthorized,
    #[serde(rename = "NOT_FOUND")]
    NotFound,
    #[serde(rename = "CONFLICT")]
    Conflict,
    #[serde(rename = "RATE_LIMITED")]
    RateLimited,
    #[serde(rename = "INTERNAL_ERROR")]
    InternalError,
    #[serde(rename = "NOT_IMPLEMENTED")]
    NotImplemented,
    #[serde(rename = "AGENT_ERROR")]
    AgentError,
    #[serde(rename = "AGENT_TIMEOUT")]
    AgentTimeout,
    #[serde(untagged)]
    Unknown(String),
}

impl ErrorCode {
    fn as_str(&self) -> &str {
        match self {
            ErrorCode::InvalidInput => "INVALID_INPUT",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::NotImplemented => "NOT_IMPLEMENTED",
            ErrorCode::AgentError => "AGENT_ERROR",
            ErrorCode::AgentTimeout => "AGENT_TIMEOUT",
            ErrorCode::Unknown(code) => code,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The envelope (its constant `status` is not kept).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct ErrorResponse {
    pub(crate) error: ApiError,
}

/// The error object.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct ApiError {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) details: Option<ErrorDetails>,
}

/// The details.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct ErrorDetails {
    #[serde(default)]
    pub(crate) field: Option<String>,
    #[serde(default)]
    pub(crate) reason: Option<String>,
}

/// An operation's status.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OperationStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    #[serde(untagged)]
    Unknown(String),
}

/// The `202 Accepted` body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct OperationAccepted {
    pub(crate) operation_id: String,
    pub(crate) status: OperationStatus,
    pub(crate) check_url: String,
}

/// An operation record.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct Operation {
    pub(crate) operation_id: String,
    pub(crate) status: OperationStatus,
    #[serde(default)]
    pub(crate) error: Option<ApiError>,
}

/// The poll operation's body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct OperationResponse {
    pub(crate) data: Operation,
}

impl ApiModel for Model {
    type ErrorCode = ErrorCode;
    type ErrorDetails = ErrorDetails;
    type ErrorBody = ErrorResponse;
    type Operation = Operation;

    const API_KEY_ENV: &'static str = "TEST_API_KEY";
    const BASE_URL_ENV: &'static str = "TEST_BASE_URL";
    const DEFAULT_BASE_URL: Option<&'static str> = Some("https://api.example.com/v1");
    const USER_AGENT: &'static str = "test-client/1.0.0 (rust)";
    const BEARER_AUTH: bool = true;
    const IDEMPOTENCY_KEY_HEADER: Option<&'static str> = Some("Idempotency-Key");
    const STATUS_CODES: &'static [(u16, &'static str)] = &[
        (400, "INVALID_INPUT"),
        (401, "UNAUTHORIZED"),
        (404, "NOT_FOUND"),
        (409, "CONFLICT"),
        (429, "RATE_LIMITED"),
        (500, "INTERNAL_ERROR"),
        (501, "NOT_IMPLEMENTED"),
    ];

    fn split_error(body: &ErrorResponse) -> Option<ErrorParts<Self>> {
        Some((Some(body.error.code.clone()), body.error.message.clone(), body.error.details.clone()))
    }

    fn error_code(wire: &str) -> ErrorCode {
        serde_json::from_value(serde_json::Value::String(wire.to_owned()))
            .unwrap_or_else(|_| ErrorCode::Unknown(wire.to_owned()))
    }

    fn describe_details(details: &ErrorDetails) -> (Option<&str>, Option<&str>) {
        (details.field.as_deref(), details.reason.as_deref())
    }

    fn operation_id(operation: &Operation) -> &str {
        &operation.operation_id
    }

    fn operation_error(operation: &Operation) -> Option<(&ErrorCode, &str)> {
        operation.error.as_ref().map(|e| (&e.code, e.message.as_str()))
    }
}

impl LongRunning for Model {
    type Accepted = OperationAccepted;
    type PollBody = OperationResponse;

    fn accepted_id(accepted: &OperationAccepted) -> &str {
        &accepted.operation_id
    }

    fn check_url(accepted: &OperationAccepted) -> Option<&str> {
        Some(&accepted.check_url)
    }

    fn poll(
        client: &Client<Self>,
        id: &str,
    ) -> impl Future<Output = Result<ApiResponse<OperationResponse>, Error<Self>>> + Send {
        let spec = RequestSpec::new(Method::GET, format!("/operations/{id}"));
        let client = client.clone();
        async move { client.execute(spec, &RequestOptions::new()).await?.json() }
    }

    fn into_record(body: OperationResponse) -> Operation {
        body.data
    }

    fn state(operation: &Operation) -> OperationState {
        match operation.status {
            OperationStatus::Succeeded => OperationState::Succeeded,
            OperationStatus::Failed => OperationState::Failed,
            OperationStatus::Cancelled => OperationState::Cancelled,
            _ => OperationState::Running,
        }
    }
}

impl CancelOperation for Model {
    fn cancel(
        client: &Client<Self>,
        id: &str,
    ) -> impl Future<Output = Result<ApiResponse<OperationResponse>, Error<Self>>> + Send {
        let spec = RequestSpec::new(Method::POST, format!("/operations/{id}/cancel"));
        let client = client.clone();
        async move { client.execute(spec, &RequestOptions::new()).await?.json() }
    }
}

/// The names the tests use, with the model filled in.
pub(crate) type TestClient = Client<Model>;
/// See [`TestClient`].
pub(crate) type TestError = Error<Model>;

/// An API that follows no convention: errors are plain JSON with string
/// codes, there are no long-running operations, no bearer keys, no server
/// and no idempotency keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct PlainModel;

impl ApiModel for PlainModel {
    type ErrorCode = String;
    type ErrorDetails = serde_json::Value;
    type ErrorBody = serde_json::Value;
    type Operation = std::convert::Infallible;

    const API_KEY_ENV: &'static str = "PLAIN_API_KEY";
    const BASE_URL_ENV: &'static str = "PLAIN_BASE_URL";
    const DEFAULT_BASE_URL: Option<&'static str> = None;
    const USER_AGENT: &'static str = "plain-client/0.1.0 (rust)";
    const BEARER_AUTH: bool = false;
    const IDEMPOTENCY_KEY_HEADER: Option<&'static str> = None;
    const STATUS_CODES: &'static [(u16, &'static str)] = &[];

    fn split_error(body: &serde_json::Value) -> Option<ErrorParts<Self>> {
        crate::model::json_error_parts(body)
    }

    fn error_code(wire: &str) -> String {
        wire.to_owned()
    }

    fn describe_details(details: &serde_json::Value) -> (Option<&str>, Option<&str>) {
        crate::model::json_details_parts(details)
    }

    fn operation_id(operation: &std::convert::Infallible) -> &str {
        match *operation {}
    }

    fn operation_error(operation: &std::convert::Infallible) -> Option<(&String, &str)> {
        match *operation {}
    }
}
