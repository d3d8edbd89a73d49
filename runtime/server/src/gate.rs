//! The checkpoint of the generated router: authentication, the rate limit,
//! idempotent replays and deprecation headers for one operation, in one
//! call from its handler.
//!
//! The same jobs exist as tower layers ([`AuthLayer`](crate::AuthLayer),
//! [`RateLimitLayer`](crate::RateLimitLayer),
//! [`IdempotencyLayer`](crate::IdempotencyLayer),
//! [`DeprecationLayer`](crate::DeprecationLayer)) for routes of your own,
//! and both call the same functions. The generated router does not stack
//! the layers because a stack costs per request what the jobs themselves
//! do not: each layer boxes a future and clones the service inside it, and
//! each hands its findings to the next through the request's extensions
//! (a boxed value each). Measured in `cargo xtask bench` (row 3), the
//! stack took about a third of the server's time per request; see
//! BENCHMARKS.md. The [`Gate`] passes what it found to the handler as an
//! [`Admission`] instead.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Method};

use crate::auth::{Authenticator, Principal, Requirement};
use crate::error::{ApiFailure, ErrorEnvelope};
use crate::idempotency::IdempotencyStore;
use crate::rate_limit::{RateLimitLayer, RateLimitStatus};

/// What the spec asks of one operation's requests before its handler runs,
/// written by the generator as a `static` per operation.
#[derive(Debug, Clone, Copy)]
pub struct RoutePolicy {
    /// The security requirements (alternatives); empty for an operation
    /// open to anyone.
    pub requirements: &'static [Requirement],
    /// Whether an authenticated request counts against its caller's rate
    /// limit (when the router has a limiter).
    pub rate_limited: bool,
    /// Whether a request with an `Idempotency-Key` runs at most once (when
    /// the router has an idempotency store).
    pub idempotent: bool,
    /// `Deprecation` (RFC 9745) and `Sunset` (RFC 8594) header values for a
    /// deprecated operation, as [`mark_deprecated`] sets them.
    pub deprecation: Option<Deprecation>,
}

/// The header values marking a deprecated operation's responses.
#[derive(Debug, Clone, Copy)]
pub struct Deprecation {
    /// `Deprecation`: `@` and the Unix time of deprecation, or `true`.
    pub since: &'static str,
    /// `Sunset`: the HTTP date the operation goes away, when known.
    pub sunset: Option<&'static str>,
}

/// What the checkpoint learned about a request it let through.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Admission {
    /// The authenticated caller; `None` for an operation without security,
    /// or whose credentials are optional when none were sent.
    pub principal: Option<Principal>,
    /// The caller's rate-limit window after counting this request.
    pub rate_limit: Option<RateLimitStatus>,
}

/// Authentication, rate limits and idempotency for the routes of one
/// router, built once by the generated `RouterBuilder`.
pub struct Gate<A, E> {
    authenticator: A,
    limiter: Option<RateLimitLayer<E>>,
    idempotency: Option<(Arc<dyn IdempotencyStore>, usize)>,
    envelope: PhantomData<fn() -> E>,
}

impl<A: Authenticator, E: ErrorEnvelope> Gate<A, E> {
    /// Checks credentials with `authenticator`; no rate limit, no
    /// idempotency until they are added.
    pub fn new(authenticator: A) -> Self {
        Gate { authenticator, limiter: None, idempotency: None, envelope: PhantomData }
    }

    /// Counts the requests of rate-limited operations with `limiter`.
    pub fn rate_limit(mut self, limiter: RateLimitLayer<E>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Runs the requests of idempotent operations once per key, keeping
    /// the records in `store`; a body over `body_limit` bytes is `413`.
    pub fn idempotency(mut self, store: Arc<dyn IdempotencyStore>, body_limit: usize) -> Self {
        self.idempotency = Some((store, body_limit));
        self
    }

    /// Passes `request` through the checks `policy` names, in the order
    /// the layers would run them: authentication (`401`), the rate limit
    /// (`429`, or `503` when its store cannot decide), then at most one run
    /// per `Idempotency-Key`. `handler` answers what gets through, or fails
    /// with the envelope to answer. Every response of a rate-limited
    /// request carries the `X-RateLimit-*` headers, replays included, and
    /// every response of a deprecated operation its deprecation headers,
    /// refusals included.
    ///
    /// One `async fn` taking the handler's result rather than its response:
    /// each level of future around the handler's is another copy of it
    /// every time the request's future moves.
    pub async fn pass<F, Fut, R>(&self, policy: &RoutePolicy, request: Request, handler: F) -> Response
    where
        F: FnOnce(Admission, Parts, Body) -> Fut,
        Fut: Future<Output = Result<R, ApiFailure<E>>>,
        R: IntoResponse,
    {
        let (parts, body) = request.into_parts();
        let mut admission = Admission::default();
        let mut refusal = None;
        if !policy.requirements.is_empty() {
            match crate::auth::authenticate::<A, E>(&self.authenticator, policy.requirements, &parts).await {
                Ok(principal) => admission.principal = principal,
                Err(response) => refusal = Some(response),
            }
        }
        if let (None, true, Some(limiter), Some(principal)) =
            (&refusal, policy.rate_limited, &self.limiter, &admission.principal)
        {
            match limiter.count(principal).await {
                Ok(status) => admission.rate_limit = Some(status),
                Err(response) => refusal = Some(response),
            }
        }
        // Rate-limit headers go on every answer to a counted request.
        let status = admission.rate_limit.clone();
        let mut response = match (refusal, self.scope(policy, &parts, &admission)) {
            (Some(refusal), _) => refusal,
            (None, Ok(None)) => answer(handler(admission, parts, body).await),
            (None, Ok(Some((scope, store, body_limit)))) => {
                let run = |request: Request| {
                    let (parts, body) = request.into_parts();
                    async move { Ok::<_, std::convert::Infallible>(answer(handler(admission, parts, body).await)) }
                };
                let request = Request::from_parts(parts, body);
                // Boxed: only requests with a key take this path, and inline
                // it would double the size of every request's future (the
                // handler's future sits in both arms), which is copied as a
                // whole each time it moves.
                match Box::pin(crate::idempotency::run_once::<E, _, _, _>(store, body_limit, scope, request, run)).await
                {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            }
            (None, Err(failure)) => failure.into_response(),
        };
        if let Some(status) = status {
            status.stamp(response.headers_mut());
        }
        if let Some(deprecation) = &policy.deprecation {
            mark_deprecated(&mut response, deprecation);
        }
        response
    }

    /// For a request the policy protects and that carries a key, its
    /// idempotency scope, the store and the body limit (`None` when it runs
    /// unprotected); or the `400` for a key that is not a valid value.
    fn scope(
        &self,
        policy: &RoutePolicy,
        parts: &Parts,
        admission: &Admission,
    ) -> Result<Option<Scope<'_>>, ApiFailure<E>> {
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE);
        let (true, false, Some((store, body_limit)), Some(principal)) =
            (policy.idempotent, safe, &self.idempotency, &admission.principal)
        else {
            return Ok(None);
        };
        match crate::idempotency::idempotency_key::<E>(&parts.headers) {
            Ok(Some(key)) => Ok(Some((crate::idempotency::idempotency_scope(&principal.id, key), store, *body_limit))),
            Ok(None) => Ok(None),
            Err(failure) => Err(failure),
        }
    }
}

/// A protected request's idempotency scope, store and body limit.
type Scope<'a> = (String, &'a Arc<dyn IdempotencyStore>, usize);

impl<A, E> std::fmt::Debug for Gate<A, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("rate_limit", &self.limiter)
            .field("idempotency", &self.idempotency.is_some())
            .finish_non_exhaustive()
    }
}

/// The response to a handler's result: its own, or the failure's envelope.
pub fn answer<R: IntoResponse, E: ErrorEnvelope>(result: Result<R, ApiFailure<E>>) -> Response {
    match result {
        Ok(response) => response.into_response(),
        Err(failure) => failure.into_response(),
    }
}

/// Sets a deprecated operation's `Deprecation` and `Sunset` headers.
pub fn mark_deprecated(response: &mut Response, deprecation: &Deprecation) {
    let headers = response.headers_mut();
    let since = HeaderValue::from_str(deprecation.since).unwrap_or_else(|_| HeaderValue::from_static("true"));
    headers.insert(HeaderName::from_static("deprecation"), since);
    if let Some(sunset) = deprecation.sunset.and_then(|date| HeaderValue::from_str(date).ok()) {
        headers.insert(HeaderName::from_static("sunset"), sunset);
    }
}
