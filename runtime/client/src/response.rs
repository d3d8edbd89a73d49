//! Successful responses and the metadata every response carries.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::AsHeaderName;
use http::{HeaderMap, HeaderName, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::model::ApiModel;

// The names are `HeaderName`s rather than text: looking a header up by
// `&str` parses (and lowercases) the name on every lookup.
/// The header APIs commonly use to identify a request in their logs.
pub(crate) static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The rate-limit headers APIs commonly send on every response.
static RATE_LIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
pub(crate) static RATE_LIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
pub(crate) static RATE_LIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The status line and headers of a response, with the well-known request-id
/// and rate-limit headers already parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseMeta {
    /// The HTTP status code.
    pub status: StatusCode,
    /// All response headers, as received.
    pub headers: HeaderMap,
    /// The `X-Request-Id` header, which support needs to find the request.
    pub request_id: Option<String>,
    /// The `X-RateLimit-*` headers, when the server sent all three.
    pub rate_limit: Option<RateLimit>,
}

impl ResponseMeta {
    /// Parses the request-id and rate-limit headers out of a status and header map.
    pub fn from_parts(status: StatusCode, headers: HeaderMap) -> Self {
        let request_id = header_str(&headers, &REQUEST_ID).map(str::to_owned);
        let rate_limit = RateLimit::from_headers(&headers);
        Self { status, headers, request_id, rate_limit }
    }

    /// Returns a header's value when it is present and valid visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_str(&self.headers, name)
    }
}

/// The rate-limit window reported by the `X-RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// `X-RateLimit-Limit`: requests allowed in the current window.
    pub limit: u64,
    /// `X-RateLimit-Remaining`: requests left in the current window.
    pub remaining: u64,
    /// `X-RateLimit-Reset`: when the window resets, in seconds since the Unix epoch.
    pub reset: u64,
}

impl RateLimit {
    /// Reads the three `X-RateLimit-*` headers; `None` unless all three are
    /// present and are non-negative integers.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        Some(Self {
            limit: header_u64(headers, &RATE_LIMIT_LIMIT)?,
            remaining: header_u64(headers, &RATE_LIMIT_REMAINING)?,
            reset: header_u64(headers, &RATE_LIMIT_RESET)?,
        })
    }

    /// The instant the window resets.
    pub fn reset_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.reset)
    }

    /// How long until the window resets, measured from `now`; zero once it has.
    pub fn reset_after(&self, now: SystemTime) -> Duration {
        self.reset_at().duration_since(now).unwrap_or(Duration::ZERO)
    }
}

/// A decoded response body together with the response's metadata.
///
/// It dereferences to the body, so `response.data` works directly; use
/// [`ApiResponse::into_body`] to keep only the body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse<T> {
    /// The decoded body.
    pub body: T,
    /// The status, headers, request id and rate-limit information.
    pub meta: ResponseMeta,
}

impl<T> ApiResponse<T> {
    /// Discards the metadata and returns the body.
    pub fn into_body(self) -> T {
        self.body
    }

    /// Splits the response into its body and metadata.
    pub fn into_parts(self) -> (T, ResponseMeta) {
        (self.body, self.meta)
    }

    /// Transforms the body while keeping the metadata.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> ApiResponse<U> {
        ApiResponse { body: f(self.body), meta: self.meta }
    }

    /// The `X-Request-Id` of the response, if the server sent one.
    pub fn request_id(&self) -> Option<&str> {
        self.meta.request_id.as_deref()
    }

    /// The rate-limit window the server reported, if it sent one.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.meta.rate_limit
    }
}

impl<T> Deref for ApiResponse<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.body
    }
}

impl<T> DerefMut for ApiResponse<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.body
    }
}

/// A successful response whose body has been read but not decoded yet.
#[derive(Debug, Clone)]
pub(crate) struct RawResponse<M> {
    pub(crate) meta: ResponseMeta,
    pub(crate) body: Bytes,
    model: PhantomData<fn() -> M>,
}

impl<M: ApiModel> RawResponse<M> {
    /// Wraps a read response.
    pub(crate) fn new(meta: ResponseMeta, body: Bytes) -> Self {
        Self { meta, body, model: PhantomData }
    }

    /// The response status, for operations with several success statuses.
    // Only operations with several success responses look at the status.
    #[allow(dead_code)]
    pub(crate) fn status(&self) -> StatusCode {
        self.meta.status
    }

    /// The error for a success status the spec does not list for the
    /// operation: the body cannot be decoded without knowing its type.
    // Only operations with several success responses can meet this.
    #[allow(dead_code)]
    pub(crate) fn unexpected_status(self) -> Error<M> {
        let status = self.meta.status;
        Error::Decode {
            status,
            body: String::from_utf8_lossy(&self.body).into_owned(),
            source: serde::de::Error::custom(format!("unexpected success status {status} for this operation")),
        }
    }

    /// Decodes the body as JSON, keeping the raw text in the error when the
    /// body does not match the expected type so that callers can see what
    /// the server actually sent.
    // Called by the generated operations, which a spec may not have.
    #[allow(dead_code)]
    pub(crate) fn json<T: DeserializeOwned>(self) -> Result<ApiResponse<T>, Error<M>> {
        match serde_json::from_slice(&self.body) {
            Ok(body) => Ok(ApiResponse { body, meta: self.meta }),
            Err(source) => Err(Error::Decode {
                status: self.meta.status,
                body: String::from_utf8_lossy(&self.body).into_owned(),
                source,
            }),
        }
    }

    /// The body as text, for responses the spec gives as `text/*` or XML.
    // Called by the generated operations, which a spec may not have.
    #[allow(dead_code)]
    pub(crate) fn text(self) -> Result<ApiResponse<String>, Error<M>> {
        match String::from_utf8(self.body.to_vec()) {
            Ok(body) => Ok(ApiResponse { body, meta: self.meta }),
            Err(err) => Err(Error::Decode {
                status: self.meta.status,
                body: String::from_utf8_lossy(&self.body).into_owned(),
                source: serde::de::Error::custom(format!("the text response is not UTF-8: {err}")),
            }),
        }
    }

    /// The body as it came, for binary responses.
    // Called by the generated operations, which a spec may not have.
    #[allow(dead_code)]
    pub(crate) fn bytes(self) -> ApiResponse<Bytes> {
        ApiResponse { body: self.body, meta: self.meta }
    }

    /// Drops the body, for operations whose success response has none
    /// (such as 204 No Content).
    // The generator only calls this for operations without a response body,
    // so a spec without such operations leaves it unused.
    #[allow(dead_code)]
    pub(crate) fn empty(self) -> ApiResponse<()> {
        ApiResponse { body: (), meta: self.meta }
    }
}

/// Returns a header as text, or `None` when absent or not visible ASCII.
pub(crate) fn header_str(headers: &HeaderMap, name: impl AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok()).map(str::trim)
}

/// Returns a header parsed as an unsigned integer.
pub(crate) fn header_u64(headers: &HeaderMap, name: impl AsHeaderName) -> Option<u64> {
    header_str(headers, name).and_then(|value| value.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Model;
    use http::HeaderValue;

    type RawResponse = super::RawResponse<Model>;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn meta_parses_request_id_and_rate_limit() {
        let meta = ResponseMeta::from_parts(
            StatusCode::OK,
            headers(&[
                ("x-request-id", "req_42"),
                ("x-ratelimit-limit", "1000"),
                ("x-ratelimit-remaining", " 999 "),
                ("x-ratelimit-reset", "1640995200"),
            ]),
        );
        assert_eq!(meta.request_id.as_deref(), Some("req_42"));
        assert_eq!(meta.rate_limit, Some(RateLimit { limit: 1000, remaining: 999, reset: 1_640_995_200 }));
        assert_eq!(meta.header("X-Request-Id"), Some("req_42"));
    }

    #[test]
    fn rate_limit_needs_all_three_headers() {
        let partial = headers(&[("x-ratelimit-limit", "10"), ("x-ratelimit-remaining", "0")]);
        assert_eq!(RateLimit::from_headers(&partial), None);
        let garbage =
            headers(&[("x-ratelimit-limit", "10"), ("x-ratelimit-remaining", "-1"), ("x-ratelimit-reset", "soon")]);
        assert_eq!(RateLimit::from_headers(&garbage), None);
    }

    #[test]
    fn rate_limit_reset_after_counts_from_now() {
        let limit = RateLimit { limit: 1, remaining: 0, reset: 1_000 };
        let now = UNIX_EPOCH + Duration::from_millis(997_500);
        assert_eq!(limit.reset_after(now), Duration::from_millis(2_500));
        assert_eq!(limit.reset_after(UNIX_EPOCH + Duration::from_secs(2_000)), Duration::ZERO);
    }

    #[test]
    fn api_response_map_deref_and_into_body() {
        let response =
            ApiResponse { body: vec![1, 2, 3], meta: ResponseMeta::from_parts(StatusCode::OK, HeaderMap::new()) };
        assert_eq!(response.len(), 3);
        let mapped = response.map(|items| items.len());
        assert_eq!(mapped.meta.status, StatusCode::OK);
        assert_eq!(mapped.into_body(), 3);
    }

    #[test]
    fn raw_json_decode_failure_keeps_the_body() {
        let raw = RawResponse::new(
            ResponseMeta::from_parts(StatusCode::OK, HeaderMap::new()),
            Bytes::from_static(b"{\"unexpected\": true"),
        );
        match raw.json::<Vec<u32>>() {
            Err(Error::Decode { status, body, .. }) => {
                assert_eq!(status, StatusCode::OK);
                assert_eq!(body, "{\"unexpected\": true");
            }
            other => panic!("expected a decode error, got {other:?}"),
        }
    }

    #[test]
    fn raw_json_decodes() {
        let raw = RawResponse::new(
            ResponseMeta::from_parts(StatusCode::CREATED, HeaderMap::new()),
            Bytes::from_static(b"[1,2]"),
        );
        let decoded = raw.json::<Vec<u32>>().unwrap();
        assert_eq!(decoded.body, vec![1, 2]);
        assert_eq!(decoded.meta.status, StatusCode::CREATED);
        let raw = RawResponse::new(decoded.meta.clone(), Bytes::new());
        assert_eq!(raw.status(), StatusCode::CREATED);
        assert_eq!(raw.empty().body, ());
    }

    #[test]
    fn unexpected_status_is_a_decode_error() {
        let raw = RawResponse::new(
            ResponseMeta::from_parts(StatusCode::PARTIAL_CONTENT, HeaderMap::new()),
            Bytes::from_static(b"{}"),
        );
        match raw.unexpected_status() {
            Error::Decode { status, body, source } => {
                assert_eq!(status, StatusCode::PARTIAL_CONTENT);
                assert_eq!(body, "{}");
                assert!(source.to_string().contains("206"), "{source}");
            }
            other => panic!("expected a decode error, got {other:?}"),
        }
    }
}
