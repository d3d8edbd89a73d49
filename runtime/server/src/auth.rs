//! Bearer-key authentication: an [`Authenticator`] turns an API key into a
//! [`Principal`], and [`AuthLayer`] guards the secured routes with it.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{OptionalFromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, header};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tower::{Layer, Service};

use crate::error::{ApiFailure, ErrorEnvelope};

/// The rate-limit tier of an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// 100 requests per hour by default.
    Free,
    /// 1,000 requests per hour by default.
    Pro,
    /// A custom limit.
    Enterprise,
}

impl Tier {
    /// The tier's name on the wire: `free`, `pro` or `enterprise`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Pro => "pro",
            Tier::Enterprise => "enterprise",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tier name that is not `free`, `pro` or `enterprise`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tier {0:?}; expected free, pro or enterprise")]
pub struct UnknownTier(pub String);

impl FromStr for Tier {
    type Err = UnknownTier;

    /// Reads a tier name, ignoring letter case (for keys kept in files or
    /// databases).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "free" => Ok(Tier::Free),
            "pro" => Ok(Tier::Pro),
            "enterprise" => Ok(Tier::Enterprise),
            _ => Err(UnknownTier(text.to_owned())),
        }
    }
}

/// Who is calling: the owner of the API key, as the [`Authenticator`] found it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// A stable id of the key's owner; rate limits and idempotency records
    /// are kept per id.
    pub id: String,
    /// The key's rate-limit tier.
    pub tier: Tier,
}

impl Principal {
    /// A principal with this id and tier.
    pub fn new(id: impl Into<String>, tier: Tier) -> Self {
        Self { id: id.into(), tier }
    }

    /// The principal [`AuthLayer`](crate::AuthLayer) stored in a request; on a route without
    /// the layer, `401` (the request was not authenticated). The generated
    /// crate's `FromRequestParts` implementation calls it.
    pub fn require<E: ErrorEnvelope>(parts: &Parts) -> Result<Self, ApiFailure<E>> {
        parts.extensions.get::<Principal>().cloned().ok_or_else(|| ApiFailure::unauthorized(MISSING_KEY))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Principal>().cloned())
    }
}

/// Checks API keys.
///
/// Implement it over your key store; `async fn` works in the impl:
///
/// ```
/// use runagent_runtime_server::{Authenticator, Principal, Tier};
///
/// struct Prefixed;
///
/// impl Authenticator for Prefixed {
///     async fn authenticate(&self, token: &str) -> Option<Principal> {
///         // A real implementation would look the key up in its store.
///         token.strip_prefix("sk_").map(|owner| Principal::new(owner, Tier::Pro))
///     }
/// }
/// ```
pub trait Authenticator: Send + Sync + 'static {
    /// The principal owning `token` (the text after `Bearer `), or `None`
    /// when the key is unknown, revoked or expired.
    fn authenticate(&self, token: &str) -> impl Future<Output = Option<Principal>> + Send;
}

impl<A: Authenticator> Authenticator for Arc<A> {
    fn authenticate(&self, token: &str) -> impl Future<Output = Option<Principal>> + Send {
        (**self).authenticate(token)
    }
}

/// A fixed set of API keys, for tests, examples and simple servers.
///
/// Keys are held as SHA-256 digests, so that looking one up compares
/// digests, not the secret itself, and a memory dump shows no keys.
#[derive(Clone, Default)]
pub struct StaticKeys {
    keys: HashMap<[u8; 32], Principal>,
}

impl StaticKeys {
    /// No keys: every request is refused.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the key `token`, owned by principal `id` with `tier`.
    pub fn with_key(mut self, token: impl AsRef<str>, id: impl Into<String>, tier: Tier) -> Self {
        self.insert(token, Principal::new(id, tier));
        self
    }

    /// Adds (or replaces) the key `token`, owned by `principal`.
    pub fn insert(&mut self, token: impl AsRef<str>, principal: Principal) {
        self.keys.insert(digest(token.as_ref()), principal);
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn lookup(&self, token: &str) -> Option<Principal> {
        self.keys.get(&digest(token)).cloned()
    }
}

impl fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the count: neither keys nor their digests belong in logs.
        f.debug_struct("StaticKeys").field("keys", &self.keys.len()).finish()
    }
}

impl Authenticator for StaticKeys {
    fn authenticate(&self, token: &str) -> impl Future<Output = Option<Principal>> + Send {
        std::future::ready(self.lookup(token))
    }
}

fn digest(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha256::digest(token.as_bytes()));
    out
}

const MISSING_KEY: &str = "A valid API key is required (Authorization: Bearer YOUR_API_KEY).";
const MALFORMED_KEY: &str = "The Authorization header must be `Bearer YOUR_API_KEY`.";
const UNKNOWN_KEY: &str = "The API key is not valid.";

/// The token of an `Authorization: Bearer <token>` header. The scheme is
/// matched without regard to case, as RFC 9110 says; anything else (no
/// header, two headers, another scheme, an empty or spaced token) fails
/// with the message to answer.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<&str, &'static str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(MISSING_KEY)?;
    if values.next().is_some() {
        return Err(MALFORMED_KEY);
    }
    let text = value.to_str().map_err(|_| MALFORMED_KEY)?.trim();
    let (scheme, token) = text.split_once(' ').ok_or(MALFORMED_KEY)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(char::is_whitespace) {
        return Err(MALFORMED_KEY);
    }
    Ok(token)
}

/// Requires `Authorization: Bearer <key>` on the routes it wraps.
///
/// A missing, malformed or unknown key is answered `401` in the envelope
/// `E`, with `WWW-Authenticate: Bearer realm="<realm>"`, before the inner
/// service runs; otherwise the [`Principal`] is put in the request's
/// extensions for the layers and handler after it.
pub struct AuthLayer<A, E> {
    authenticator: Arc<A>,
    envelope: PhantomData<fn() -> E>,
}

impl<A: Authenticator, E: ErrorEnvelope> AuthLayer<A, E> {
    /// Guards routes with `authenticator`.
    pub fn new(authenticator: A) -> Self {
        Self::from_arc(Arc::new(authenticator))
    }

    /// Guards routes with an authenticator shared with other code.
    pub fn from_arc(authenticator: Arc<A>) -> Self {
        Self { authenticator, envelope: PhantomData }
    }
}

// Written out rather than derived: a derive would require `A: Clone` (and
// `E: Clone`), but only the `Arc` is cloned.
impl<A, E> Clone for AuthLayer<A, E> {
    fn clone(&self) -> Self {
        Self { authenticator: Arc::clone(&self.authenticator), envelope: PhantomData }
    }
}

impl<A, E> fmt::Debug for AuthLayer<A, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer").finish_non_exhaustive()
    }
}

impl<A, S, E> Layer<S> for AuthLayer<A, E> {
    type Service = AuthService<A, S, E>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService { inner, authenticator: Arc::clone(&self.authenticator), envelope: PhantomData }
    }
}

/// The service [`AuthLayer`](crate::AuthLayer) wraps around a route.
pub struct AuthService<A, S, E> {
    inner: S,
    authenticator: Arc<A>,
    envelope: PhantomData<fn() -> E>,
}

impl<A, S: Clone, E> Clone for AuthService<A, S, E> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), authenticator: Arc::clone(&self.authenticator), envelope: PhantomData }
    }
}

impl<A, S, E> fmt::Debug for AuthService<A, S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService").finish_non_exhaustive()
    }
}

impl<A, S, E> Service<Request> for AuthService<A, S, E>
where
    A: Authenticator,
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    E: ErrorEnvelope,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // The clone that was polled ready is the one to call; a fresh clone
        // takes its place for the next request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let authenticator = Arc::clone(&self.authenticator);
        Box::pin(async move {
            let token = match bearer_token(request.headers()) {
                Ok(token) => token.to_owned(),
                Err(message) => return Ok(ApiFailure::<E>::unauthorized(message).into_response()),
            };
            match authenticator.authenticate(&token).await {
                Some(principal) => {
                    request.extensions_mut().insert(principal);
                    inner.call(request).await
                }
                None => Ok(ApiFailure::<E>::unauthorized(UNKNOWN_KEY).into_response()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::tests::envelope;
    use crate::testing::TestErrors;
    use axum::body::Body;
    use http::{HeaderValue, StatusCode};
    use std::convert::Infallible;
    use tower::ServiceExt;

    fn keys() -> StaticKeys {
        StaticKeys::new().with_key("sk_pro", "user_pro", Tier::Pro).with_key("sk_free", "user_free", Tier::Free)
    }

    fn service() -> impl Service<Request, Response = Response, Error = Infallible> + Clone {
        AuthLayer::<_, TestErrors>::new(keys()).layer(tower::service_fn(|request: Request| async move {
            let principal = request.extensions().get::<Principal>().cloned().expect("a principal");
            Ok::<_, Infallible>(format!("{}:{}", principal.id, principal.tier).into_response())
        }))
    }

    fn request(authorization: Option<&str>) -> Request {
        let mut builder = http::Request::get("/agents");
        if let Some(value) = authorization {
            builder = builder.header(header::AUTHORIZATION, value);
        }
        builder.body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn a_known_key_reaches_the_route() {
        for value in ["Bearer sk_pro", "bearer sk_pro", "BEARER   sk_pro "] {
            let response = service().oneshot(request(Some(value))).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{value}");
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
            assert_eq!(body, "user_pro:pro");
        }
    }

    #[tokio::test]
    async fn bad_keys_are_401_with_a_challenge() {
        let cases = [
            (None, MISSING_KEY),
            (Some("Basic dXNlcjpwYXNz"), MALFORMED_KEY),
            (Some("Bearer"), MALFORMED_KEY),
            (Some("Bearer "), MALFORMED_KEY),
            (Some("Bearer two words"), MALFORMED_KEY),
            (Some("sk_pro"), MALFORMED_KEY),
            (Some("Bearer sk_nope"), UNKNOWN_KEY),
        ];
        for (value, message) in cases {
            let response = service().oneshot(request(value)).await.unwrap();
            let (status, headers, body) = envelope(response).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{value:?}");
            assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer realm=\"test \\\"realm\\\"\"");
            assert_eq!(
                body,
                serde_json::json!({"status": "error", "error": {"code": "UNAUTHORIZED", "message": message, "details": null}})
            );
        }
    }

    #[tokio::test]
    async fn two_authorization_headers_are_refused() {
        let mut request = request(Some("Bearer sk_pro"));
        request.headers_mut().append(header::AUTHORIZATION, HeaderValue::from_static("Bearer sk_free"));
        let response = service().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn custom_authenticators_may_be_async_fns() {
        struct Prefix;
        impl Authenticator for Prefix {
            async fn authenticate(&self, token: &str) -> Option<Principal> {
                tokio::task::yield_now().await;
                token.strip_prefix("ent_").map(|id| Principal::new(id, Tier::Enterprise))
            }
        }
        let layer = AuthLayer::<_, TestErrors>::from_arc(Arc::new(Arc::new(Prefix)));
        let service = layer.layer(tower::service_fn(|request: Request| async move {
            let principal = request.extensions().get::<Principal>().cloned().unwrap();
            Ok::<_, Infallible>(principal.id.into_response())
        }));
        let response = service.oneshot(request(Some("Bearer ent_acme"))).await.unwrap();
        assert_eq!(axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap(), "acme");
    }

    #[test]
    fn require_reads_the_principal_or_refuses() {
        let (mut parts, _) = request(None).into_parts();
        let refused = Principal::require::<TestErrors>(&parts).unwrap_err();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(refused.message(), MISSING_KEY);
        parts.extensions.insert(Principal::new("p", Tier::Free));
        assert_eq!(Principal::require::<TestErrors>(&parts).unwrap(), Principal::new("p", Tier::Free));
    }

    #[test]
    fn tiers_read_and_print() {
        assert_eq!("Pro".parse::<Tier>(), Ok(Tier::Pro));
        assert_eq!(Tier::Enterprise.to_string(), "enterprise");
        assert!("gold".parse::<Tier>().is_err());
        assert_eq!(serde_json::to_string(&Tier::Free).unwrap(), "\"free\"");
        assert_eq!(format!("{:?}", keys()), "StaticKeys { keys: 2 }");
        assert_eq!(keys().len(), 2);
        assert!(StaticKeys::new().is_empty());
    }
}
