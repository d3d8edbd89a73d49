//! Authentication: an [`Authenticator`] turns a credential (a bearer token,
//! a basic user and password, an API key in a header, query parameter or
//! cookie) into a [`Principal`], and [`AuthLayer`] guards the secured routes
//! with it, each route with the security requirements its operation has.

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
use http::{HeaderMap, HeaderValue, header};
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

/// Checks credentials.
///
/// Implement it over your key store; `async fn` works in the impl. An API
/// whose only scheme is a bearer token implements [`authenticate`]
/// (the token after `Bearer `):
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
///
/// An API with other schemes (basic, API keys in a header, query parameter
/// or cookie, several bearer schemes) implements [`authenticate_scheme`],
/// which is told which scheme of the spec the credential was sent for:
///
/// ```
/// use runagent_runtime_server::{Authenticator, Credential, Principal, Tier};
///
/// struct Keys;
///
/// impl Authenticator for Keys {
///     async fn authenticate_scheme(&self, scheme: &str, credential: &Credential) -> Option<Principal> {
///         match (scheme, credential) {
///             ("basicAuth", Credential::Basic { user, password }) if password == "open sesame" => {
///                 Some(Principal::new(user.clone(), Tier::Free))
///             }
///             ("apiKey", Credential::ApiKey(key)) if key == "k_1" => Some(Principal::new("k_1", Tier::Pro)),
///             _ => None,
///         }
///     }
/// }
/// ```
///
/// [`authenticate`]: Authenticator::authenticate
/// [`authenticate_scheme`]: Authenticator::authenticate_scheme
pub trait Authenticator: Send + Sync + 'static {
    /// The principal owning the bearer `token` (the text after `Bearer `),
    /// or `None` when the key is unknown, revoked or expired. The default
    /// refuses every token.
    fn authenticate(&self, token: &str) -> impl Future<Output = Option<Principal>> + Send {
        let _ = token;
        std::future::ready(None)
    }

    /// The principal owning `credential`, sent for the security scheme
    /// named `scheme` in the spec (`components/securitySchemes`), or `None`
    /// when it is refused. The default passes bearer tokens (HTTP bearer,
    /// OAuth 2 and OpenID Connect schemes) to
    /// [`authenticate`](Authenticator::authenticate) and refuses the rest.
    fn authenticate_scheme(
        &self,
        scheme: &str,
        credential: &Credential,
    ) -> impl Future<Output = Option<Principal>> + Send {
        let _ = scheme;
        async move {
            match credential {
                Credential::Bearer(token) => self.authenticate(token).await,
                _ => None,
            }
        }
    }
}

impl<A: Authenticator> Authenticator for Arc<A> {
    fn authenticate(&self, token: &str) -> impl Future<Output = Option<Principal>> + Send {
        (**self).authenticate(token)
    }

    fn authenticate_scheme(
        &self,
        scheme: &str,
        credential: &Credential,
    ) -> impl Future<Output = Option<Principal>> + Send {
        (**self).authenticate_scheme(scheme, credential)
    }
}

/// A credential as a request carried it.
///
/// Its `Debug` output shows the kind only, never the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// The token of `Authorization: Bearer <token>` (HTTP bearer, OAuth 2,
    /// OpenID Connect).
    Bearer(String),
    /// The user and password of `Authorization: Basic <base64>`.
    Basic {
        /// The user id (before the first `:`).
        user: String,
        /// The password (after it).
        password: String,
    },
    /// An API key from the header, query parameter or cookie the scheme names.
    ApiKey(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Credential::Basic { .. } => f.write_str("Basic(<redacted>)"),
            Credential::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
        }
    }
}

/// Where an API key is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLocation {
    /// A request header.
    Header,
    /// A query parameter.
    Query,
    /// A cookie.
    Cookie,
}

/// How a security scheme carries its credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemeKind {
    /// `Authorization: Bearer <token>` (HTTP bearer, OAuth 2, OpenID Connect).
    Bearer,
    /// `Authorization: Basic <base64 of user:password>`.
    Basic,
    /// An API key in the header, query parameter or cookie `name`.
    ApiKey {
        /// Where the key is.
        location: KeyLocation,
        /// The header, parameter or cookie name.
        name: &'static str,
    },
}

/// A security scheme of the spec: its name in `components/securitySchemes`
/// and how it carries its credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheme {
    /// The scheme's name in the spec.
    pub name: &'static str,
    /// How the credential is sent.
    pub kind: SchemeKind,
}

/// One way to satisfy an operation's security: every scheme listed,
/// together. An empty requirement means credentials are optional.
pub type Requirement = &'static [Scheme];

/// The one requirement of an API that knows only bearer keys, which
/// `AuthLayer::new` starts with.
pub const BEARER_ONLY: &[Requirement] = &[&[Scheme { name: "bearer", kind: SchemeKind::Bearer }]];

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

/// Why a scheme's credential could not be read from a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unreadable {
    /// The request carries none.
    Missing,
    /// It carries one in the wrong form; the message to answer.
    Malformed(&'static str),
}

const MALFORMED_BASIC: &str = "The Authorization header must be `Basic <base64 of user:password>`.";
const MALFORMED_API_KEY: &str = "The API key was sent more than once or is not valid text.";

/// The credential `scheme` reads from a request's headers and query.
fn credential(scheme: &Scheme, parts: &Parts) -> Result<Credential, Unreadable> {
    match scheme.kind {
        SchemeKind::Bearer => match bearer_token(&parts.headers) {
            Ok(token) => Ok(Credential::Bearer(token.to_owned())),
            Err(MISSING_KEY) => Err(Unreadable::Missing),
            Err(message) => Err(Unreadable::Malformed(message)),
        },
        SchemeKind::Basic => basic_credentials(&parts.headers),
        SchemeKind::ApiKey { location, name } => {
            let found = match location {
                KeyLocation::Header => {
                    let mut values = parts.headers.get_all(name).iter();
                    match (values.next(), values.next()) {
                        (None, _) => None,
                        (Some(value), None) => Some(
                            value.to_str().map_err(|_| Unreadable::Malformed(MALFORMED_API_KEY))?.trim().to_owned(),
                        ),
                        _ => return Err(Unreadable::Malformed(MALFORMED_API_KEY)),
                    }
                }
                KeyLocation::Query => {
                    let query = parts.uri.query().unwrap_or("");
                    let pairs: Vec<(String, String)> =
                        serde_urlencoded::from_str(query).map_err(|_| Unreadable::Malformed(MALFORMED_API_KEY))?;
                    let mut values = pairs.into_iter().filter(|(key, _)| key == name);
                    match (values.next(), values.next()) {
                        (None, _) => None,
                        (Some((_, value)), None) => Some(value),
                        _ => return Err(Unreadable::Malformed(MALFORMED_API_KEY)),
                    }
                }
                KeyLocation::Cookie => {
                    let mut found = None;
                    for header in parts.headers.get_all(header::COOKIE) {
                        let text = header.to_str().map_err(|_| Unreadable::Malformed(MALFORMED_API_KEY))?;
                        for pair in text.split(';') {
                            if let Some((key, value)) = pair.trim().split_once('=')
                                && key.trim() == name
                            {
                                if found.is_some() {
                                    return Err(Unreadable::Malformed(MALFORMED_API_KEY));
                                }
                                found = Some(value.trim().trim_matches('"').to_owned());
                            }
                        }
                    }
                    found
                }
            };
            match found {
                Some(key) if !key.is_empty() => Ok(Credential::ApiKey(key)),
                _ => Err(Unreadable::Missing),
            }
        }
    }
}

/// The user and password of an `Authorization: Basic <base64>` header.
fn basic_credentials(headers: &HeaderMap) -> Result<Credential, Unreadable> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(Unreadable::Missing)?;
    let malformed = Unreadable::Malformed(MALFORMED_BASIC);
    if values.next().is_some() {
        return Err(malformed);
    }
    let text = value.to_str().map_err(|_| malformed)?.trim();
    let (scheme, encoded) = text.split_once(' ').ok_or(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        // Another scheme's credential: not one for this scheme.
        return Err(Unreadable::Missing);
    }
    let decoded = decode_base64(encoded.trim()).ok_or(malformed)?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed)?;
    let (user, password) = decoded.split_once(':').ok_or(malformed)?;
    Ok(Credential::Basic { user: user.to_owned(), password: password.to_owned() })
}

/// Standard base64 (RFC 4648, padding optional), or `None` for anything else.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    // Six leftover bits cannot end a valid encoding.
    (bits < 6).then_some(out)
}

/// The `WWW-Authenticate` challenges of a `401` for `requirements`: one
/// `Bearer` and one `Basic` challenge with the realm, as their schemes
/// appear. API keys have no standard challenge; when only they are asked
/// for, the `Bearer`-less answer carries `ApiKey realm="<realm>"` naming
/// what is missing.
fn challenge<E: ErrorEnvelope>(requirements: &[Requirement]) -> HeaderValue {
    let realm = E::REALM.replace('\\', "\\\\").replace('"', "\\\"");
    let mut kinds: Vec<&str> = Vec::new();
    for scheme in requirements.iter().flat_map(|r| r.iter()) {
        let kind = match scheme.kind {
            SchemeKind::Bearer => "Bearer",
            SchemeKind::Basic => "Basic",
            SchemeKind::ApiKey { .. } => "ApiKey",
        };
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    if kinds.is_empty() {
        kinds.push("Bearer");
    }
    let text = kinds.iter().map(|kind| format!("{kind} realm=\"{realm}\"")).collect::<Vec<_>>().join(", ");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

/// Requires credentials on the routes it wraps: by default
/// `Authorization: Bearer <key>`, or those of the requirements given with
/// `AuthLayer::requiring`.
///
/// A missing, malformed or unknown credential is answered `401` in the
/// envelope `E`, with a `WWW-Authenticate` challenge (`Bearer
/// realm="<realm>"` for bearer schemes), before the inner service runs;
/// otherwise the [`Principal`] is put in the request's extensions for the
/// layers and handler after it. Of several requirements the first one
/// satisfied wins; an empty requirement lets a request without
/// credentials through (without a principal), but a credential that is
/// sent and refused is still `401`.
pub struct AuthLayer<A, E> {
    authenticator: Arc<A>,
    requirements: &'static [Requirement],
    envelope: PhantomData<fn() -> E>,
}

impl<A: Authenticator, E: ErrorEnvelope> AuthLayer<A, E> {
    /// Guards routes with `authenticator`.
    pub fn new(authenticator: A) -> Self {
        Self::from_arc(Arc::new(authenticator))
    }

    /// Guards routes with an authenticator shared with other code.
    pub fn from_arc(authenticator: Arc<A>) -> Self {
        Self { authenticator, requirements: BEARER_ONLY, envelope: PhantomData }
    }
}

impl<A, E> AuthLayer<A, E> {
    /// The same layer, asking for `requirements` (alternatives: any one
    /// satisfied admits the request).
    pub fn requiring(&self, requirements: &'static [Requirement]) -> Self {
        Self { authenticator: Arc::clone(&self.authenticator), requirements, envelope: PhantomData }
    }
}

// Written out rather than derived: a derive would require `A: Clone` (and
// `E: Clone`), but only the `Arc` is cloned.
impl<A, E> Clone for AuthLayer<A, E> {
    fn clone(&self) -> Self {
        Self { authenticator: Arc::clone(&self.authenticator), requirements: self.requirements, envelope: PhantomData }
    }
}

impl<A, E> fmt::Debug for AuthLayer<A, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer").field("requirements", &self.requirements).finish_non_exhaustive()
    }
}

impl<A, S, E> Layer<S> for AuthLayer<A, E> {
    type Service = AuthService<A, S, E>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            authenticator: Arc::clone(&self.authenticator),
            requirements: self.requirements,
            envelope: PhantomData,
        }
    }
}

/// The service [`AuthLayer`](crate::AuthLayer) wraps around a route.
pub struct AuthService<A, S, E> {
    inner: S,
    authenticator: Arc<A>,
    requirements: &'static [Requirement],
    envelope: PhantomData<fn() -> E>,
}

impl<A, S: Clone, E> Clone for AuthService<A, S, E> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            authenticator: Arc::clone(&self.authenticator),
            requirements: self.requirements,
            envelope: PhantomData,
        }
    }
}

impl<A, S, E> fmt::Debug for AuthService<A, S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService").finish_non_exhaustive()
    }
}

/// Checks a request's credentials against `requirements` (alternatives:
/// the first satisfied wins). `Ok(Some(principal))` when one was, `Ok(None)`
/// when none was needed and none was sent, and otherwise the `401` to
/// answer, in the envelope `E` with its `WWW-Authenticate` challenge. What
/// [`AuthLayer`] does per request, and what the generated router's gate
/// calls directly.
pub(crate) async fn authenticate<A: Authenticator, E: ErrorEnvelope>(
    authenticator: &A,
    requirements: &'static [Requirement],
    parts: &Parts,
) -> Result<Option<Principal>, Response> {
    match check(authenticator, requirements, parts).await {
        Outcome::Admitted(principal) => Ok(Some(principal)),
        Outcome::Anonymous => Ok(None),
        Outcome::Refused(message) => Err(ApiFailure::<E>::unauthorized(message)
            .with_header(header::WWW_AUTHENTICATE, challenge::<E>(requirements))
            .into_response()),
    }
}

/// What checking the requirements found.
enum Outcome {
    /// A requirement was satisfied by this principal.
    Admitted(Principal),
    /// No credentials were needed and none were sent.
    Anonymous,
    /// Refused, with the message to answer.
    Refused(&'static str),
}

async fn check<A: Authenticator>(authenticator: &A, requirements: &[Requirement], parts: &Parts) -> Outcome {
    let mut optional = false;
    // The most telling refusal: an unknown credential beats a malformed
    // one, which beats a missing one.
    let mut refusal: Option<(u8, &'static str)> = None;
    let mut refuse = |rank: u8, message: &'static str| {
        if refusal.is_none_or(|(r, _)| rank > r) {
            refusal = Some((rank, message));
        }
    };
    'alternatives: for requirement in requirements {
        if requirement.is_empty() {
            optional = true;
            continue;
        }
        let mut principal = None;
        for scheme in requirement.iter() {
            let credential = match credential(scheme, parts) {
                Ok(credential) => credential,
                Err(Unreadable::Missing) => {
                    refuse(0, MISSING_KEY);
                    continue 'alternatives;
                }
                Err(Unreadable::Malformed(message)) => {
                    refuse(1, message);
                    continue 'alternatives;
                }
            };
            match authenticator.authenticate_scheme(scheme.name, &credential).await {
                // The first scheme of a requirement names the principal.
                Some(found) => {
                    principal.get_or_insert(found);
                }
                None => {
                    refuse(2, UNKNOWN_KEY);
                    continue 'alternatives;
                }
            }
        }
        if let Some(principal) = principal {
            return Outcome::Admitted(principal);
        }
    }
    match refusal {
        Some((0, _)) | None if optional => Outcome::Anonymous,
        Some((_, message)) => Outcome::Refused(message),
        None => Outcome::Refused(MISSING_KEY),
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

    fn call(&mut self, request: Request) -> Self::Future {
        // The clone that was polled ready is the one to call; a fresh clone
        // takes its place for the next request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let authenticator = Arc::clone(&self.authenticator);
        let requirements = self.requirements;
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            match authenticate::<A, E>(&*authenticator, requirements, &parts).await {
                Ok(principal) => {
                    if let Some(principal) = principal {
                        parts.extensions.insert(principal);
                    }
                    inner.call(Request::from_parts(parts, body)).await
                }
                Err(refusal) => Ok(refusal),
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

    struct PerScheme;
    impl Authenticator for PerScheme {
        async fn authenticate_scheme(&self, scheme: &str, credential: &Credential) -> Option<Principal> {
            let ok = match (scheme, credential) {
                ("basic", Credential::Basic { user, password }) => user == "ann" && password == "p:w",
                ("header" | "query" | "cookie", Credential::ApiKey(key)) => key == &format!("{scheme}-key"),
                ("token", Credential::Bearer(token)) => token == "t",
                _ => false,
            };
            ok.then(|| Principal::new(scheme, Tier::Free))
        }
    }

    const BASIC: Scheme = Scheme { name: "basic", kind: SchemeKind::Basic };
    const HEADER: Scheme =
        Scheme { name: "header", kind: SchemeKind::ApiKey { location: KeyLocation::Header, name: "x-key" } };
    const QUERY: Scheme =
        Scheme { name: "query", kind: SchemeKind::ApiKey { location: KeyLocation::Query, name: "key" } };
    const COOKIE: Scheme =
        Scheme { name: "cookie", kind: SchemeKind::ApiKey { location: KeyLocation::Cookie, name: "sid" } };
    const TOKEN: Scheme = Scheme { name: "token", kind: SchemeKind::Bearer };

    async fn call(
        requirements: &'static [Requirement],
        uri: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, String, String) {
        let layer = AuthLayer::<_, TestErrors>::new(PerScheme).requiring(requirements);
        let service = layer.layer(tower::service_fn(|request: Request| async move {
            let who = request.extensions().get::<Principal>().map_or("anonymous".to_owned(), |p| p.id.clone());
            Ok::<_, Infallible>(who.into_response())
        }));
        let mut builder = http::Request::get(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let response = service.oneshot(builder.body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let challenge =
            response.headers().get(header::WWW_AUTHENTICATE).map_or(String::new(), |v| v.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, challenge, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn each_scheme_kind_reads_its_credential() {
        const ANY: &[Requirement] = &[&[BASIC], &[HEADER], &[QUERY], &[COOKIE], &[TOKEN]];
        // "ann:p:w" in base64: the password keeps its colon.
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: [Case<'_>; 6] = [
            ("/", &[("authorization", "Basic YW5uOnA6dw==")], "basic"),
            ("/", &[("x-key", "header-key")], "header"),
            ("/?a=1&key=query-key", &[], "query"),
            ("/", &[("cookie", "theme=dark; sid=cookie-key")], "cookie"),
            ("/", &[("authorization", "Bearer t")], "token"),
            ("/", &[("authorization", "basic YW5uOnA6dw")], "basic"),
        ];
        for (uri, headers, who) in cases {
            let (status, _, body) = call(ANY, uri, headers).await;
            assert_eq!((status, body.as_str()), (StatusCode::OK, who), "{uri} {headers:?}");
        }
        let refused: [(&str, &[(&str, &str)]); 5] = [
            ("/", &[]),
            ("/", &[("x-key", "wrong")]),
            ("/?key=wrong", &[]),
            ("/", &[("authorization", "Basic !!!")]),
            ("/", &[("cookie", "sid=a; sid=b")]),
        ];
        for (uri, headers) in refused {
            let (status, challenge, _) = call(ANY, uri, headers).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri} {headers:?}");
            assert_eq!(
                challenge,
                "Basic realm=\"test \\\"realm\\\"\", ApiKey realm=\"test \\\"realm\\\"\", Bearer realm=\"test \\\"realm\\\"\""
            );
        }
    }

    #[tokio::test]
    async fn requirements_combine_and_may_be_optional() {
        const BOTH: &[Requirement] = &[&[HEADER, QUERY]];
        let (status, _, _) = call(BOTH, "/", &[("x-key", "header-key")]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _, body) = call(BOTH, "/?key=query-key", &[("x-key", "header-key")]).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "header"));

        const OPTIONAL: &[Requirement] = &[&[HEADER], &[]];
        let (status, _, body) = call(OPTIONAL, "/", &[]).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "anonymous"));
        let (status, _, body) = call(OPTIONAL, "/", &[("x-key", "header-key")]).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "header"));
        let (status, challenge, _) = call(OPTIONAL, "/", &[("x-key", "nope")]).await;
        assert_eq!((status, challenge.as_str()), (StatusCode::UNAUTHORIZED, "ApiKey realm=\"test \\\"realm\\\"\""));
    }

    #[test]
    fn credentials_are_redacted_and_base64_decodes() {
        let credential = Credential::Basic { user: "ann".into(), password: "secret".into() };
        assert_eq!(format!("{credential:?}"), "Basic(<redacted>)");
        assert_eq!(format!("{:?}", Credential::ApiKey("secret".into())), "ApiKey(<redacted>)");
        assert_eq!(decode_base64("YQ==").unwrap(), b"a");
        assert_eq!(decode_base64("YWJj").unwrap(), b"abc");
        assert_eq!(decode_base64("Y"), None);
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
