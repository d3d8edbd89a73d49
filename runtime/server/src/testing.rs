//! Envelopes for the runtime's own tests, which need concrete types where
//! the runtime is generic. Compiled only for tests, in the runtime crate and
//! in every generated crate (whose tests run these modules too).
//!
//! [`TestErrors`] is an envelope of the common nested shape,
//! `{"status": "error", "error": {"code", "message", "details"}}`, with an
//! enum of codes and open details; [`Problem`] is RFC 9457 problem details,
//! what a spec without an envelope gets.

use http::StatusCode;
use serde::Serialize;

use crate::error::{ApiFailure, ErrorEnvelope, PROBLEM_JSON, ProblemDetails, ProblemExtensions};

/// A failure in the test envelope.
pub(crate) type TestFailure = ApiFailure<TestErrors>;

/// The test envelope.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TestErrors;

/// The test envelope's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum TestCode {
    InvalidInput,
    Unauthorized,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    RateLimited,
    InternalError,
    NotImplemented,
    Custom,
}

/// The test envelope's details: a field, a reason and anything else.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct TestDetails {
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(flatten)]
    extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub(crate) struct TestBody {
    status: &'static str,
    error: TestError,
}

#[derive(Debug, Serialize)]
struct TestError {
    code: TestCode,
    message: String,
    details: Option<TestDetails>,
}

impl ErrorEnvelope for TestErrors {
    type Code = TestCode;
    type Details = TestDetails;
    type Body = TestBody;

    const REALM: &'static str = "test \"realm\"";

    fn code_for_status(status: StatusCode) -> TestCode {
        match status.as_u16() {
            401 => TestCode::Unauthorized,
            404 => TestCode::NotFound,
            405 => TestCode::MethodNotAllowed,
            409 => TestCode::Conflict,
            413 => TestCode::PayloadTooLarge,
            429 => TestCode::RateLimited,
            501 => TestCode::NotImplemented,
            _ if status.is_client_error() => TestCode::InvalidInput,
            _ => TestCode::InternalError,
        }
    }

    fn envelope(_status: StatusCode, code: TestCode, message: String, details: Option<TestDetails>) -> TestBody {
        TestBody { status: "error", error: TestError { code, message, details } }
    }

    fn empty_details() -> TestDetails {
        TestDetails::default()
    }

    fn set_field(details: &mut TestDetails, field: String) {
        details.field = Some(field);
    }

    fn set_reason(details: &mut TestDetails, reason: String) {
        details.reason = Some(reason);
    }

    fn set_extra(details: &mut TestDetails, name: String, value: serde_json::Value) {
        details.extra.insert(name, value);
    }

    fn field(details: &TestDetails) -> Option<&str> {
        details.field.as_deref()
    }

    fn reason(details: &TestDetails) -> Option<&str> {
        details.reason.as_deref()
    }
}

/// RFC 9457 problem details, as the generated crate of a spec without an
/// envelope implements them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Problem;

impl ErrorEnvelope for Problem {
    type Code = String;
    type Details = ProblemExtensions;
    type Body = ProblemDetails;

    const CONTENT_TYPE: &'static str = PROBLEM_JSON;
    const REALM: &'static str = "test";

    fn code_for_status(_status: StatusCode) -> String {
        ProblemDetails::BLANK.to_owned()
    }

    fn envelope(
        status: StatusCode,
        code: String,
        message: String,
        details: Option<ProblemExtensions>,
    ) -> ProblemDetails {
        ProblemDetails::new(status, code, message, details)
    }

    fn empty_details() -> ProblemExtensions {
        ProblemExtensions::new()
    }

    fn set_field(details: &mut ProblemExtensions, field: String) {
        ProblemDetails::set_extension(details, "field".to_owned(), field.into());
    }

    fn set_reason(details: &mut ProblemExtensions, reason: String) {
        ProblemDetails::set_extension(details, "reason".to_owned(), reason.into());
    }

    fn set_extra(details: &mut ProblemExtensions, name: String, value: serde_json::Value) {
        ProblemDetails::set_extension(details, name, value);
    }

    fn field(details: &ProblemExtensions) -> Option<&str> {
        ProblemDetails::extension_str(details, "field")
    }

    fn reason(details: &ProblemExtensions) -> Option<&str> {
        ProblemDetails::extension_str(details, "reason")
    }
}
