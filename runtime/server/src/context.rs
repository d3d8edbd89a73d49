//! What an implementation learns about the request besides its inputs.

use crate::auth::Principal;
use crate::gate::Admission;
use crate::rate_limit::RateLimitStatus;
use crate::request_id::RequestId;

/// The caller and the request, as the layers before the handler saw them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RequestContext {
    /// The authenticated caller; `None` only for operations without
    /// security in the spec, or whose credentials are optional (an empty
    /// security requirement) when none were sent.
    pub principal: Option<Principal>,
    /// The request id sent back in `X-Request-Id`; empty when the router
    /// gives requests no ids (the spec documents no request-id header).
    pub request_id: String,
    /// The caller's rate-limit window after counting this request.
    pub rate_limit: Option<RateLimitStatus>,
    /// The request headers.
    pub headers: http::HeaderMap,
}

impl RequestContext {
    /// Reads the context from a request's parts.
    pub fn from_parts(parts: &http::request::Parts) -> Self {
        RequestContext {
            principal: parts.extensions.get::<Principal>().cloned(),
            request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default(),
            rate_limit: parts.extensions.get::<RateLimitStatus>().cloned(),
            headers: parts.headers.clone(),
        }
    }

    /// The context of a request the generated router let through: what
    /// its [`Gate`](crate::Gate) found, the request's id (see
    /// [`identified`](crate::identified)), and the headers, moved out of
    /// `parts` (so read the inputs from them first).
    pub fn admitted(admission: Admission, request_id: Option<RequestId>, parts: &mut http::request::Parts) -> Self {
        RequestContext {
            principal: admission.principal,
            request_id: request_id.map(|id| id.0).unwrap_or_default(),
            rate_limit: admission.rate_limit,
            headers: std::mem::take(&mut parts.headers),
        }
    }

    /// A context for calling an implementation directly, in tests.
    pub fn for_principal(principal: Option<Principal>) -> Self {
        RequestContext {
            principal,
            request_id: String::from("req_test"),
            rate_limit: None,
            headers: http::HeaderMap::new(),
        }
    }
}
