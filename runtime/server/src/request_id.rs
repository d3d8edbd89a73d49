//! Layers that stamp headers on responses: [`RequestIdLayer`] gives every
//! response an `X-Request-Id`, and [`DeprecationLayer`] marks the responses
//! of deprecated operations.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::{OptionalFromRequestParts, Request};
use axum::response::Response;
use http::request::Parts;
use http::{HeaderName, HeaderValue};
use tower::{Layer, Service};
use tracing::Instrument;

use crate::error::{ApiFailure, ErrorEnvelope};

/// `X-Request-Id`, on every request and response.
pub(crate) const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request, as sent back in `X-Request-Id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(pub String);

impl RequestId {
    /// A fresh id: `req_` and a random UUID in 32 hex digits.
    ///
    /// A request id is not a secret (it is echoed in headers and logs) and
    /// only needs to be unique, but it costs nothing to keep it
    /// unguessable: uuid's `fast-rng` draws it from rand's thread-local
    /// ChaCha generator, a CSPRNG seeded from the operating system, with no
    /// syscall per request. Secrets (API keys, the client's idempotency
    /// keys) come from the same generator; only non-secret jitter (retry
    /// backoff) uses `fastrand`.
    pub fn generate() -> Self {
        let mut hex = uuid::Uuid::encode_buffer();
        let mut id = String::with_capacity(36);
        id.push_str("req_");
        id.push_str(uuid::Uuid::new_v4().simple().encode_lower(&mut hex));
        Self(id)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `value` may be echoed as a request id: 1 to 128 visible
    /// ASCII characters, which keeps logs and headers free of spaces and
    /// control characters.
    pub fn is_valid(value: &[u8]) -> bool {
        (1..=128).contains(&value.len()) && value.iter().all(|byte| byte.is_ascii_graphic())
    }

    /// The id [`RequestIdLayer`] stored in a request; its absence means the
    /// router lacks the layer, a server misconfiguration, hence a `500`.
    /// The generated crate's `FromRequestParts` implementation calls it.
    pub fn require<E: ErrorEnvelope>(parts: &Parts) -> Result<Self, ApiFailure<E>> {
        parts.extensions.get::<RequestId>().cloned().ok_or_else(|| ApiFailure::internal("The request has no id."))
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<RequestId>().cloned())
    }
}

/// Gives every request an id and every response its `X-Request-Id`.
///
/// A caller's own `X-Request-Id` is kept when it is 1 to 128 visible ASCII
/// characters (so that ids can be followed across services); otherwise a
/// fresh `req_<uuid>` is made. The id goes into the request's extensions as
/// [`RequestId`], into the request's `X-Request-Id` header, and into a
/// tracing span around the request. Put it outermost, on the whole router,
/// so that 404s, 405s and 401s carry it too.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer {
    // A private field rather than a unit struct, so that the type can gain
    // settings later without breaking `RequestIdLayer::default()` callers
    // (and clippy does not flag `default()` on it).
    _private: (),
}

impl RequestIdLayer {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService { inner }
    }
}

/// The service [`RequestIdLayer`] wraps around a router.
#[derive(Debug, Clone)]
pub struct RequestIdService<S> {
    inner: S,
}

impl<S> Service<Request> for RequestIdService<S>
where
    S: Service<Request, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let (id, value) = assign(&mut request);
        let span = span(&id, &request);
        request.extensions_mut().insert(id);
        // Calling inside the span makes the inner service's synchronous work
        // (routing, layer setup) part of the request's trace too.
        let future = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                let mut response = future.await?;
                response.headers_mut().insert(REQUEST_ID_HEADER, value);
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// The request's id: the caller's `X-Request-Id` when it may be echoed,
/// else a fresh one, also set as the request's `X-Request-Id` header; with
/// the header value for the response.
fn assign(request: &mut Request) -> (RequestId, HeaderValue) {
    let echoed = request.headers().get(&REQUEST_ID_HEADER).filter(|value| RequestId::is_valid(value.as_bytes()));
    if let Some((value, text)) = echoed.and_then(|value| Some((value, value.to_str().ok()?))) {
        return (RequestId(text.to_owned()), value.clone());
    }
    let id = RequestId::generate();
    // Generated from hex digits, so always a valid value.
    let value = HeaderValue::from_str(id.as_str()).unwrap_or_else(|_| HeaderValue::from_static("req_invalid"));
    request.headers_mut().insert(REQUEST_ID_HEADER, value.clone());
    (id, value)
}

/// The tracing span of one request.
fn span(id: &RequestId, request: &Request) -> tracing::Span {
    tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path())
}

/// What [`RequestIdLayer`] does, called by a handler itself: gives the
/// request its id, runs `handler` with it inside the request's tracing
/// span, and sets `X-Request-Id` on the response. The generated router
/// calls it in every handler and fallback rather than layering the router,
/// because axum applies a router's layer to each route separately, which
/// adds a boxed service and its clone to every request.
pub async fn identified<F, Fut>(mut request: Request, handler: F) -> Response
where
    F: FnOnce(RequestId, Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let (id, value) = assign(&mut request);
    let span = span(&id, &request);
    let future = span.in_scope(|| handler(id, request));
    let mut response = future.instrument(span).await;
    response.headers_mut().insert(REQUEST_ID_HEADER, value);
    response
}

/// Marks the responses of a deprecated operation with `Deprecation` (RFC
/// 9745: `@` and the Unix time it was deprecated) and, when the operation
/// has a sunset date, `Sunset: <HTTP date>` (RFC 8594).
#[derive(Debug, Clone, Copy)]
pub struct DeprecationLayer {
    since: &'static str,
    sunset: Option<&'static str>,
}

impl DeprecationLayer {
    /// Marks responses as deprecated since `since` (such as `@1751328000`),
    /// with `sunset` (an HTTP date such as `Wed, 30 Jun 2027 00:00:00 GMT`)
    /// as the `Sunset` header when given.
    pub fn new(since: &'static str, sunset: Option<&'static str>) -> Self {
        Self { since, sunset }
    }
}

impl<S> Layer<S> for DeprecationLayer {
    type Service = DeprecationService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DeprecationService { inner, since: self.since, sunset: self.sunset }
    }
}

/// The service [`DeprecationLayer`] wraps around a route.
#[derive(Debug, Clone)]
pub struct DeprecationService<S> {
    inner: S,
    since: &'static str,
    sunset: Option<&'static str>,
}

impl<S> Service<Request> for DeprecationService<S>
where
    S: Service<Request, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let future = self.inner.call(request);
        let deprecation = crate::gate::Deprecation { since: self.since, sunset: self.sunset };
        Box::pin(async move {
            let mut response = future.await?;
            crate::gate::mark_deprecated(&mut response, &deprecation);
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::response::IntoResponse;
    use std::convert::Infallible;
    use tower::ServiceExt;

    fn echo() -> impl Service<Request, Response = Response, Error = Infallible> + Clone {
        RequestIdLayer::new().layer(tower::service_fn(|request: Request| async move {
            let id = request.extensions().get::<RequestId>().cloned().expect("an id");
            assert_eq!(request.headers()[REQUEST_ID_HEADER], id.as_str());
            Ok::<_, Infallible>(id.0.into_response())
        }))
    }

    async fn call(header: Option<&[u8]>) -> (String, String) {
        let mut request = http::Request::get("/").body(Body::empty()).unwrap();
        if let Some(value) = header {
            request.headers_mut().insert(REQUEST_ID_HEADER, HeaderValue::from_bytes(value).unwrap());
        }
        let response = echo().oneshot(request).await.unwrap();
        let header = response.headers()[REQUEST_ID_HEADER].to_str().unwrap().to_owned();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (header, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn echoes_a_valid_id() {
        let (header, seen) = call(Some(b"trace-42")).await;
        assert_eq!(header, "trace-42");
        assert_eq!(seen, "trace-42");
    }

    #[tokio::test]
    async fn replaces_missing_or_invalid_ids() {
        let long = [b'a'; 129];
        for value in [None, Some(&b"has space"[..]), Some(&long[..]), Some(&b"caf\xc3\xa9"[..])] {
            let (header, seen) = call(value).await;
            assert_eq!(header, seen);
            assert!(header.starts_with("req_") && header.len() == 36, "{header}");
        }
        assert_ne!(call(None).await.0, call(None).await.0);
        assert!(RequestId::is_valid(&[b'a'; 128]));
    }

    #[test]
    fn require_reads_the_id_or_is_a_500() {
        let (mut parts, _) = http::Request::get("/").body(Body::empty()).unwrap().into_parts();
        let missing = RequestId::require::<crate::testing::TestErrors>(&parts).unwrap_err();
        assert_eq!(missing.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        parts.extensions.insert(RequestId("req_1".into()));
        assert_eq!(RequestId::require::<crate::testing::TestErrors>(&parts).unwrap().as_str(), "req_1");
    }

    #[tokio::test]
    async fn deprecation_headers() {
        let service = DeprecationLayer::new("@1751328000", Some("Wed, 30 Jun 2027 00:00:00 GMT"))
            .layer(tower::service_fn(|_: Request| async { Ok::<_, Infallible>("ok".into_response()) }));
        let response = service.oneshot(http::Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.headers()["deprecation"], "@1751328000");
        assert_eq!(response.headers()["sunset"], "Wed, 30 Jun 2027 00:00:00 GMT");
        let service = DeprecationLayer::new("true", None)
            .layer(tower::service_fn(|_: Request| async { Ok::<_, Infallible>("ok".into_response()) }));
        let response = service.oneshot(http::Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
        assert!(!response.headers().contains_key("sunset"));
    }
}
