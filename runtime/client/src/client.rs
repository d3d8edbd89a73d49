//! The client: configuration, authentication, and sending requests with
//! retries.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use reqwest::Url;

use crate::error::{ApiFailure, Error};
use crate::events::ResumePolicy;
use crate::hooks::{AttemptRequest, AttemptResponse, Hook};
use crate::model::ApiModel;
use crate::response::{RawResponse, ResponseMeta};
use crate::retry::{RetryPolicy, retry_delay};

/// How long one attempt may take unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

const JSON: &str = "application/json";
const EVENT_STREAM: &str = "text/event-stream";
/// The idempotency header sent when a call sets a key but the API names none.
const IDEMPOTENCY_KEY: &str = "idempotency-key";
const LAST_EVENT_ID: &str = "last-event-id";
// Header names the runtime looks up or sends on every call, parsed once: a
// `&str` name is parsed and lowercased again on every use.
static IDEMPOTENCY_KEY_NAME: HeaderName = HeaderName::from_static(IDEMPOTENCY_KEY);
static LAST_EVENT_ID_NAME: HeaderName = HeaderName::from_static(LAST_EVENT_ID);

/// A client for an API described by `M`; the generated crate names it
/// `Client`, and adds one method per operation.
///
/// Cloning is cheap and clones share one connection pool, so create one
/// client and pass clones around.
pub struct Client<M: ApiModel> {
    inner: Arc<Inner>,
    model: PhantomData<fn() -> M>,
}

impl<M: ApiModel> Clone for Client<M> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner), model: PhantomData }
    }
}

struct Inner {
    http: reqwest::Client,
    /// The base URL with a trailing slash, so that relative references
    /// resolve beneath it.
    base_url: Url,
    /// The base URL as configured, without a trailing slash, for appending
    /// operation paths that start with '/'.
    base_prefix: String,
    /// `Bearer <key>`, when a key was configured: sent on every request of
    /// an API with one bearer scheme, and on requests that name no
    /// security requirements (URLs the API returned).
    authorization: Option<HeaderValue>,
    /// The credential of each security scheme configured, ready to send.
    credentials: Vec<(&'static str, Applied)>,
    /// Sent with every request; includes the user agent.
    default_headers: HeaderMap,
    /// The header the API names for idempotency keys, parsed once.
    idempotency_header: Option<HeaderName>,
    timeout: Duration,
    retry: RetryPolicy,
    resume: Option<ResumePolicy>,
    /// Run on every attempt, in order.
    hooks: Vec<Arc<dyn Hook>>,
}

impl<M: ApiModel> fmt::Debug for Client<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The API key is deliberately left out so that logs never hold it.
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_prefix)
            .field("timeout", &self.inner.timeout)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

impl<M: ApiModel> Client<M> {
    /// Starts configuring a client.
    pub fn builder() -> ClientBuilder<M> {
        ClientBuilder::default()
    }

    /// Creates a client from the API key variable ([`ApiModel::API_KEY_ENV`],
    /// required when the API uses bearer keys) and the base URL variable
    /// ([`ApiModel::BASE_URL_ENV`], default the spec's server).
    pub fn from_env() -> Result<Self, Error<M>> {
        ClientBuilder::from_env().build()
    }

    /// The base URL requests are sent to, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.inner.base_prefix
    }

    /// The retry policy used unless a call overrides it.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// The per-attempt timeout used unless a call overrides it.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// The resume policy set with `ClientBuilder::resume_policy`, if any.
    pub(crate) fn resume_policy(&self) -> Option<&ResumePolicy> {
        self.inner.resume.as_ref()
    }

    /// Sends an API request, retrying according to the retry policy, and
    /// returns the success response with its body read.
    // Called by the generated operations, which a spec may not have.
    #[allow(dead_code)]
    pub(crate) async fn execute(
        &self,
        mut spec: RequestSpec,
        opts: &RequestOptions,
    ) -> Result<RawResponse<M>, Error<M>> {
        let mut url = self.endpoint_url(&spec.path, &spec.query)?;
        append_free_query(&mut url, &spec.free_query);
        self.apply_query_credentials(&spec, &mut url);
        let body = spec.body.take();
        let (has_body, accept, mut key) = (body.is_some(), spec.accept.unwrap_or(JSON), None);
        let headers = || self.assemble_headers(&spec, has_body, opts, accept, None, &mut key);
        let call = Call { operation: spec.operation, path: spec.path_template, method: spec.method.clone() };
        self.send_with_retries(call, url, headers, body, opts, read_body).await
    }

    /// Sends a request to a URL the API returned, such as an operation's
    /// `check_url`. An absolute path (`/v1/operations/op_1`) is resolved
    /// against the base URL's origin, a relative one against the base URL.
    /// URLs on another origin are refused, since the API key would be sent
    /// along.
    pub(crate) async fn execute_url(
        &self,
        method: Method,
        url: &str,
        opts: &RequestOptions,
    ) -> Result<RawResponse<M>, Error<M>> {
        let url = self.resolve_url(url)?;
        let spec = RequestSpec::new(method, String::new());
        let mut key = None;
        let headers = || self.assemble_headers(&spec, false, opts, JSON, None, &mut key);
        let path = url.path().to_owned();
        let call = Call { operation: "", path: &path, method: spec.method.clone() };
        self.send_with_retries(call, url, headers, None, opts, read_body).await
    }

    /// Opens a Server-Sent Events response, retrying according to the retry
    /// policy until the response headers arrive, and returns the success
    /// response with its body unread. A success response that declares a
    /// content type other than `text/event-stream` is an `Error::Decode`
    /// carrying its body, rather than a stream that silently yields nothing.
    pub(crate) async fn execute_stream(
        &self,
        mut spec: RequestSpec,
        opts: &RequestOptions,
        last_event_id: Option<&str>,
    ) -> Result<reqwest::Response, Error<M>> {
        let mut url = self.endpoint_url(&spec.path, &spec.query)?;
        append_free_query(&mut url, &spec.free_query);
        self.apply_query_credentials(&spec, &mut url);
        let body = spec.body.take();
        let (has_body, mut key) = (body.is_some(), None);
        let headers = || self.assemble_headers(&spec, has_body, opts, EVENT_STREAM, last_event_id, &mut key);
        let call = Call { operation: spec.operation, path: spec.path_template, method: spec.method.clone() };
        self.send_with_retries(call, url, headers, body, opts, expect_event_stream).await
    }

    /// The timeout of one attempt for a call.
    pub(crate) fn attempt_timeout(&self, opts: &RequestOptions) -> Duration {
        opts.timeout.unwrap_or(self.inner.timeout)
    }

    /// The retry policy for a call: the call's policy or the client's, with
    /// the call's retry count on top.
    pub(crate) fn retry_policy_for(&self, opts: &RequestOptions) -> RetryPolicy {
        let mut policy = opts.retry_policy.clone().unwrap_or_else(|| self.inner.retry.clone());
        if let Some(max_retries) = opts.max_retries {
            policy.max_retries = max_retries;
        }
        policy
    }

    /// Joins an operation path (already percent-encoded, starting with '/')
    /// and query to the base URL.
    pub(crate) fn endpoint_url(&self, path: &str, query: &[(&'static str, String)]) -> Result<Url, Error<M>> {
        let mut url = if path.contains(['?', '#']) {
            // A path that would start a query or a fragment (a spec can
            // write one) is parsed as part of a whole URL, as it always was.
            let prefix = &self.inner.base_prefix;
            let mut joined = String::with_capacity(prefix.len() + 1 + path.len());
            joined.push_str(prefix);
            if !path.starts_with('/') {
                joined.push('/');
            }
            joined.push_str(path);
            Url::parse(&joined).map_err(|err| Error::Config(format!("invalid request URL {joined:?}: {err}")))?
        } else {
            // The base URL was parsed once, when the client was built: only
            // the path is parsed per call (scheme and host parsing, IDNA
            // included, cost several times more). The result is the URL the
            // whole text would parse to.
            let mut url = self.inner.base_url.clone();
            let base_path = url.path().trim_end_matches('/');
            let mut joined = String::with_capacity(base_path.len() + 1 + path.len());
            joined.push_str(base_path);
            if !path.starts_with('/') {
                joined.push('/');
            }
            joined.push_str(path);
            url.set_path(&joined);
            url
        };
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in query {
                pairs.append_pair(name, value);
            }
        }
        Ok(url)
    }

    /// Resolves a URL reference the API returned; see `Client::execute_url`.
    pub(crate) fn resolve_url(&self, reference: &str) -> Result<Url, Error<M>> {
        let base = &self.inner.base_url;
        let url = base.join(reference).map_err(|err| Error::Config(format!("invalid URL {reference:?}: {err}")))?;
        if url.origin() != base.origin() {
            return Err(Error::Config(format!(
                "refusing to send credentials to {url}, which is not on the API's origin {}",
                base.origin().ascii_serialization()
            )));
        }
        Ok(url)
    }

    /// The headers of a call's first attempt, for the tests.
    #[cfg(test)]
    fn request_headers(
        &self,
        spec: &RequestSpec,
        opts: &RequestOptions,
        accept: &'static str,
        last_event_id: Option<&str>,
    ) -> Result<HeaderMap, Error<M>> {
        self.assemble_headers(spec, spec.body.is_some(), opts, accept, last_event_id, &mut None)
    }

    /// Assembles the headers of one attempt of a call. Every attempt of a
    /// call gets the same ones: `key` holds the idempotency key generated
    /// for the call's first attempt, which its retries send again.
    fn assemble_headers(
        &self,
        spec: &RequestSpec,
        has_body: bool,
        opts: &RequestOptions,
        accept: &'static str,
        last_event_id: Option<&str>,
        key: &mut Option<uuid::Uuid>,
    ) -> Result<HeaderMap, Error<M>> {
        // Room for the usual set (authorization, accept, content type, user
        // agent, idempotency key) without growing.
        let mut headers = HeaderMap::with_capacity(8);
        let mut sent_authorization = None;
        if let Some(authorization) = &self.inner.authorization
            && (M::BEARER_AUTH || spec.security.is_none())
        {
            headers.insert(header::AUTHORIZATION, authorization.clone());
            sent_authorization = Some(authorization);
        }
        let mut cookies = Vec::new();
        for applied in self.chosen_credentials(spec) {
            match applied {
                // The API key's bearer scheme is usually the authorization
                // already inserted: the same value is not inserted twice.
                Applied::Header(name, value)
                    if *name == header::AUTHORIZATION
                        && sent_authorization.is_some_and(|sent| sent.as_bytes() == value.as_bytes()) => {}
                Applied::Header(name, value) => {
                    headers.insert(name, value.clone());
                }
                Applied::Cookie(pair) => cookies.push(pair.as_str()),
                Applied::Query(..) => {}
            }
        }
        headers.insert(header::ACCEPT, HeaderValue::from_static(accept));
        if has_body {
            let content_type = match &spec.content_type {
                None => HeaderValue::from_static(JSON),
                Some(media) => HeaderValue::from_str(media)
                    .map_err(|_| Error::Config(format!("the content type {media:?} is not valid in a header")))?,
            };
            headers.insert(header::CONTENT_TYPE, content_type);
        }
        for (name, value) in &self.inner.default_headers {
            headers.insert(name, value.clone());
        }
        // Later sources win: the operation's header parameters, then the
        // caller's per-call headers.
        for (name, value) in &spec.headers {
            let (name, value) = parse_header(name, value)?;
            headers.insert(name, value);
        }
        for (name, value) in &opts.headers {
            let (name, value) = parse_header(name, value)?;
            headers.insert(name, value);
        }
        if let Some(key) = &opts.idempotency_key {
            let name = self.inner.idempotency_header.clone().unwrap_or_else(|| IDEMPOTENCY_KEY_NAME.clone());
            let value = parse_header_value(&name, key)?;
            headers.insert(name, value);
        } else if needs_idempotency_key(&spec.method)
            && let Some(name) = &self.inner.idempotency_header
            && !headers.contains_key(name)
        {
            // A v4 UUID from a CSPRNG (uuid's `fast-rng`: rand's thread-local
            // ChaCha, seeded from the OS), so keys stay unguessable without a
            // syscall per call; encoded on the stack, copied once.
            let mut buffer = uuid::Uuid::encode_buffer();
            let key = key.get_or_insert_with(uuid::Uuid::new_v4).hyphenated().encode_lower(&mut buffer);
            let value = parse_header_value(name, key)?;
            headers.insert(name.clone(), value);
        }
        if let Some(id) = last_event_id {
            let value = parse_header_value(&LAST_EVENT_ID_NAME, id)?;
            headers.insert(LAST_EVENT_ID_NAME.clone(), value);
        }
        if !cookies.is_empty() {
            if let Some(existing) = headers.get(header::COOKIE).and_then(|v| v.to_str().ok()) {
                cookies.insert(0, existing);
            }
            let mut value = HeaderValue::from_str(&cookies.join("; "))
                .map_err(|_| Error::Config("a cookie credential is not valid in a header".to_owned()))?;
            value.set_sensitive(true);
            headers.insert(header::COOKIE, value);
        }
        Ok(headers)
    }

    /// The credentials a request sends: those of the first of its security
    /// requirements whose schemes all have credentials configured; none for
    /// a request without requirements, or when none is satisfied (an empty
    /// requirement, credentials optional, is satisfied by sending none).
    fn chosen_credentials<'a>(&'a self, spec: &RequestSpec) -> impl Iterator<Item = &'a Applied> + 'a {
        let credentials = &self.inner.credentials;
        let configured = |name: &&str| credentials.iter().any(|(scheme, _)| scheme == name);
        let chosen = spec
            .security
            .unwrap_or(&[])
            .iter()
            .find(|requirement| !requirement.is_empty() && requirement.iter().all(&configured))
            .copied()
            .unwrap_or(&[]);
        credentials.iter().filter(move |(scheme, _)| chosen.contains(scheme)).map(|(_, applied)| applied)
    }

    /// Adds the API keys a request sends in its query.
    fn apply_query_credentials(&self, spec: &RequestSpec, url: &mut Url) {
        for applied in self.chosen_credentials(spec) {
            if let Applied::Query(name, value) = applied {
                url.query_pairs_mut().append_pair(name, value);
            }
        }
    }

    /// Sends one logical call: attempts until success, a failure that is not
    /// retryable, or the retry budget is spent, and then returns the last
    /// error. `read` turns a success response into the result within the
    /// attempt's timeout. A POST or PATCH without an idempotency key is
    /// repeated only when the server cannot have acted on it.
    async fn send_with_retries<T, H, R, Fut>(
        &self,
        call: Call<'_>,
        url: Url,
        mut headers: H,
        body: Option<Bytes>,
        opts: &RequestOptions,
        read: R,
    ) -> Result<T, Error<M>>
    where
        H: FnMut() -> Result<HeaderMap, Error<M>>,
        R: Fn(reqwest::Response) -> Fut,
        Fut: Future<Output = Result<T, Error<M>>>,
    {
        let method = call.method;
        // One span per call. Its fields name the operation and the path
        // template, never the URL (which may carry an API key in its query)
        // or a header.
        let span = tracing::info_span!(
            "api_call",
            operation = call.operation,
            method = method.as_str(),
            path = call.path,
            attempt = tracing::field::Empty,
            status = tracing::field::Empty,
            request_id = tracing::field::Empty,
        );
        let policy = self.retry_policy_for(opts);
        let timeout = self.attempt_timeout(opts);
        let mut replay_safe = None;
        let mut retry = 0;
        let calling = async {
            loop {
                let attempt_number = retry + 1;
                span.record("attempt", attempt_number);
                // The request is assembled directly rather than through a
                // `RequestBuilder`, whose `headers` merges the map entry by entry.
                let mut request = reqwest::Request::new(method.clone(), url.clone());
                // Assembled again for each attempt (the same headers, the
                // idempotency key included) rather than cloned from a copy
                // kept for retries: a call that succeeds at once builds them
                // once. Hooks then change this attempt's copy only.
                let attempt_headers = headers()?;
                let replay_safe = *replay_safe.get_or_insert_with(|| {
                    !needs_idempotency_key(&method)
                        || self
                            .inner
                            .idempotency_header
                            .as_ref()
                            .or(opts.idempotency_key.as_ref().map(|_| &IDEMPOTENCY_KEY_NAME))
                            .is_some_and(|name| attempt_headers.contains_key(name))
                });
                *request.headers_mut() = attempt_headers;
                if !self.inner.hooks.is_empty() {
                    let mut attempt = AttemptRequest {
                        operation: call.operation,
                        attempt: attempt_number,
                        method: &method,
                        url: &url,
                        headers: request.headers_mut(),
                        body: body.as_ref(),
                    };
                    for hook in &self.inner.hooks {
                        hook.before_attempt(&mut attempt).map_err(Error::Hook)?;
                    }
                }
                if let Some(body) = &body {
                    // Bytes clones share the buffer, so retries copy nothing.
                    *request.body_mut() = Some(body.clone().into());
                }
                let attempt = async {
                    let sent = std::time::Instant::now();
                    let response = self.inner.http.execute(request).await.map_err(|err| {
                        // A URL may carry an API key in its query: errors must not.
                        let keyed =
                            self.inner.credentials.iter().any(|(_, applied)| matches!(applied, Applied::Query(..)));
                        Error::from_reqwest(if keyed { err.without_url() } else { err })
                    })?;
                    span.record("status", response.status().as_u16());
                    if let Some(id) = response.headers().get(&crate::response::REQUEST_ID).and_then(|v| v.to_str().ok())
                    {
                        span.record("request_id", id);
                    }
                    for hook in &self.inner.hooks {
                        hook.after_response(&AttemptResponse {
                            operation: call.operation,
                            attempt: attempt_number,
                            status: response.status(),
                            headers: response.headers(),
                            elapsed: sent.elapsed(),
                        });
                    }
                    if !response.status().is_success() {
                        return Err(read_failure(response).await);
                    }
                    read(response).await
                };
                let result = match tokio::time::timeout(timeout, attempt).await {
                    Ok(result) => result,
                    Err(_) => Err(Error::Timeout),
                };
                match result {
                    Err(err)
                        if retry < policy.max_retries
                            && err.is_retryable()
                            && (replay_safe || err.is_unprocessed()) =>
                    {
                        let delay = retry_delay(&policy, retry, err.retry_after(), fastrand::f64());
                        tracing::info!(
                            attempt = attempt_number,
                            reason = %err,
                            delay_ms = delay.as_millis() as u64,
                            "retrying"
                        );
                        tokio::time::sleep(delay).await;
                        retry += 1;
                    }
                    result => return result,
                }
            }
        };
        // The loop records into `span` directly rather than looking up the
        // current span, which costs a thread-local lookup per use. A span
        // no subscriber wants is not entered on every poll: there is
        // nothing to enter.
        if span.is_disabled() { calling.await } else { tracing::Instrument::instrument(calling, span.clone()).await }
    }
}

/// What a call is: its method, and for its tracing span and the hooks, its
/// operation and path template.
struct Call<'a> {
    operation: &'a str,
    path: &'a str,
    method: Method,
}

/// Adds query pairs whose names are data (a free-form object parameter).
fn append_free_query(url: &mut Url, pairs: &[(String, String)]) {
    if !pairs.is_empty() {
        let mut query = url.query_pairs_mut();
        for (name, value) in pairs {
            query.append_pair(name, value);
        }
    }
}

/// Reads a success response's whole body.
async fn read_body<M: ApiModel>(mut response: reqwest::Response) -> Result<RawResponse<M>, Error<M>> {
    // The headers are moved out, not copied: reading the body needs none.
    let meta = ResponseMeta::from_parts(response.status(), std::mem::take(response.headers_mut()));
    let body = response.bytes().await.map_err(Error::from_reqwest)?;
    Ok(RawResponse::new(meta, body))
}

/// Passes an event-stream response through, and turns any other success
/// response into a decode error with its body.
async fn expect_event_stream<M: ApiModel>(response: reqwest::Response) -> Result<reqwest::Response, Error<M>> {
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let Some(content_type) = content_type else {
        return Ok(response);
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case(EVENT_STREAM) {
        return Ok(response);
    }
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    Err(Error::Decode {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        source: serde::de::Error::custom(format!("expected an event stream, got Content-Type {content_type:?}")),
    })
}

/// Reads an error response into an `Error::Api`. A body that cannot be
/// read is treated as empty: the status alone is still a precise error.
async fn read_failure<M: ApiModel>(mut response: reqwest::Response) -> Error<M> {
    let meta = ResponseMeta::from_parts(response.status(), std::mem::take(response.headers_mut()));
    let body = response.bytes().await.unwrap_or_default();
    ApiFailure::from_response(meta, &body, SystemTime::now()).into()
}

/// Methods whose repetition is not harmless by definition, and which
/// therefore carry an idempotency key that lets the server deduplicate
/// retries.
fn needs_idempotency_key(method: &Method) -> bool {
    *method == Method::POST || *method == Method::PATCH
}

/// The header the API names for idempotency keys, if any, parsed when the
/// client is built rather than on every call.
fn idempotency_header_name<M: ApiModel>() -> Result<Option<HeaderName>, Error<M>> {
    match M::IDEMPOTENCY_KEY_HEADER {
        None => Ok(None),
        Some(name) if name.eq_ignore_ascii_case(IDEMPOTENCY_KEY) => Ok(Some(IDEMPOTENCY_KEY_NAME.clone())),
        Some(name) => HeaderName::from_bytes(name.as_bytes())
            .map(Some)
            .map_err(|_| Error::Config(format!("invalid header name {name:?}"))),
    }
}

/// Validates a header value given as text.
fn parse_header_value<M: ApiModel>(name: &HeaderName, value: &str) -> Result<HeaderValue, Error<M>> {
    HeaderValue::from_str(value).map_err(|_| Error::Config(format!("invalid value for header {:?}", name.as_str())))
}

/// Validates a header name and value given as text.
fn parse_header<M: ApiModel>(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), Error<M>> {
    // The names the runtime sends on every call are not standard headers,
    // which `from_bytes` would lowercase into a fresh allocation each time.
    let header_name = if name.eq_ignore_ascii_case(IDEMPOTENCY_KEY) {
        IDEMPOTENCY_KEY_NAME.clone()
    } else {
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| Error::Config(format!("invalid header name {name:?}")))?
    };
    let header_value =
        HeaderValue::from_str(value).map_err(|_| Error::Config(format!("invalid value for header {name:?}")))?;
    Ok((header_name, header_value))
}

/// Configures and builds a `Client`; the generated crate names it `ClientBuilder`.
pub struct ClientBuilder<M: ApiModel> {
    api_key: Option<String>,
    credentials: Vec<(String, Credential)>,
    base_url: Option<String>,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    max_retries: Option<u32>,
    retry_policy: Option<RetryPolicy>,
    resume_policy: Option<ResumePolicy>,
    user_agent: Option<String>,
    default_headers: Vec<(String, String)>,
    http_client: Option<reqwest::Client>,
    hooks: Vec<Arc<dyn Hook>>,
    /// Where the key was expected to come from, for the error message.
    key_source: Option<&'static str>,
    model: PhantomData<fn() -> M>,
}

impl<M: ApiModel> Default for ClientBuilder<M> {
    fn default() -> Self {
        Self {
            api_key: None,
            credentials: Vec::new(),
            base_url: None,
            timeout: None,
            connect_timeout: None,
            max_retries: None,
            retry_policy: None,
            resume_policy: None,
            user_agent: None,
            default_headers: Vec::new(),
            http_client: None,
            hooks: Vec::new(),
            key_source: None,
            model: PhantomData,
        }
    }
}

impl<M: ApiModel> fmt::Debug for ClientBuilder<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The API key is deliberately left out so that logs never hold it.
        f.debug_struct("ClientBuilder")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("credentials", &self.credentials)
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_retries", &self.max_retries)
            .field("retry_policy", &self.retry_policy)
            .field("resume_policy", &self.resume_policy)
            .field("user_agent", &self.user_agent)
            .field("default_headers", &self.default_headers)
            .field("http_client", &self.http_client.is_some())
            .finish()
    }
}

impl<M: ApiModel> ClientBuilder<M> {
    /// A builder with the API key and base URL taken from the variables
    /// [`ApiModel::API_KEY_ENV`] and [`ApiModel::BASE_URL_ENV`] name; a
    /// missing key is reported by `ClientBuilder::build`.
    pub fn from_env() -> Self {
        Self::from_vars(std::env::var(M::API_KEY_ENV).ok(), std::env::var(M::BASE_URL_ENV).ok())
    }

    /// `ClientBuilder::from_env` with the variables passed in, so that it
    /// can be tested without touching the process environment.
    pub(crate) fn from_vars(api_key: Option<String>, base_url: Option<String>) -> Self {
        let mut builder = Self { key_source: Some(M::API_KEY_ENV), ..Self::default() };
        builder.api_key = api_key;
        builder.base_url = base_url.filter(|url| !url.trim().is_empty());
        builder
    }

    /// Sets the API key: the credential of the API's only security scheme
    /// (for a basic scheme, `user:password`), or else of its first bearer
    /// scheme, sent as `Authorization: Bearer <key>`; required when the API
    /// authenticates with one bearer scheme only. The environment variable
    /// [`ApiModel::API_KEY_ENV`] fills it in `ClientBuilder::from_env`.
    pub fn api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = Some(api_key.into());
        self
    }

    /// Sets the credential of the security scheme named `scheme` in the
    /// spec (`components/securitySchemes`); each operation sends the
    /// credentials of the first of its security requirements that are all
    /// set. An unknown scheme, or a credential of the wrong kind for it, is
    /// an `Error::Config` from `ClientBuilder::build`.
    pub fn credential(mut self, scheme: impl Into<String>, credential: Credential) -> Self {
        self.credentials.push((scheme.into(), credential));
        self
    }

    /// Sets the base URL, including any version path; default
    /// [`ApiModel::DEFAULT_BASE_URL`], the spec's server.
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }

    /// Sets how long one attempt may take, from sending until the body is
    /// read (for event streams: until the headers arrive, and then the
    /// longest silence between two reads); default 60 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets how long connecting may take. Ignored with
    /// `ClientBuilder::http_client`, whose own setting applies.
    pub fn connect_timeout(mut self, connect_timeout: Duration) -> Self {
        self.connect_timeout = Some(connect_timeout);
        self
    }

    /// Sets how many times a failed request is retried; default 2. Applies
    /// on top of `ClientBuilder::retry_policy` whatever the call order.
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = Some(max_retries);
        self
    }

    /// Sets the retry policy; default [`RetryPolicy::default`].
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry_policy = Some(policy);
        self
    }

    /// Sets how event streams resume after a dropped connection, for every
    /// call that does not set its own; default [`ResumePolicy::default`].
    pub fn resume_policy(mut self, policy: ResumePolicy) -> Self {
        self.resume_policy = Some(policy);
        self
    }

    /// Sets the `User-Agent` header; default [`ApiModel::USER_AGENT`],
    /// `<crate>/<version> (rust)`.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Adds a header sent with every request.
    pub fn default_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.default_headers.push((name.into(), value.into()));
        self
    }

    /// Uses the caller's reqwest client, for its proxy, TLS or pool
    /// settings. Authentication, timeouts and retries still come from this
    /// builder.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Adds a hook run on every attempt of every call (see [`Hook`]), after
    /// the hooks added before it.
    pub fn hook(mut self, hook: impl Hook) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// Validates the configuration and builds the client.
    ///
    /// A missing or empty API key (when the API uses bearer keys), a missing
    /// or unparsable base URL or an invalid header is an `Error::Config`
    /// here rather than a failed request later.
    pub fn build(self) -> Result<Client<M>, Error<M>> {
        let api_key = self.api_key.as_deref().map(str::trim).filter(|key| !key.is_empty());
        let authorization = match api_key {
            Some(api_key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {api_key}")).map_err(|_| {
                    Error::Config("the API key contains characters not allowed in an HTTP header".to_owned())
                })?;
                value.set_sensitive(true);
                Some(value)
            }
            None if M::BEARER_AUTH && self.credentials.is_empty() => {
                return Err(match self.key_source {
                    Some(var) => Error::Config(format!("missing API key: {var} is not set or empty")),
                    None => Error::Config("missing API key: set it with ClientBuilder::api_key".to_owned()),
                });
            }
            None => None,
        };

        let mut credentials: Vec<(&'static str, Applied)> = Vec::new();
        for (name, credential) in &self.credentials {
            let scheme = M::SECURITY_SCHEMES.iter().find(|scheme| scheme.name == name).ok_or_else(|| {
                Error::Config(format!("unknown security scheme {name:?}: the spec names no such scheme"))
            })?;
            credentials.retain(|(other, _)| *other != scheme.name);
            credentials.push((scheme.name, applied(scheme, credential)?));
        }
        if let Some(api_key) = api_key {
            let target = match M::SECURITY_SCHEMES {
                [only] => Some(only),
                schemes => schemes.iter().find(|scheme| scheme.kind == SchemeKind::Bearer),
            };
            if let Some(scheme) = target
                && !credentials.iter().any(|(name, _)| *name == scheme.name)
            {
                let credential = match scheme.kind {
                    SchemeKind::Basic => {
                        let (user, password) = api_key.split_once(':').ok_or_else(|| {
                            Error::Config("the API key of a basic scheme must be `user:password`".to_owned())
                        })?;
                        Credential::basic(user, password)
                    }
                    SchemeKind::Bearer => Credential::Bearer(api_key.to_owned()),
                    SchemeKind::ApiKey { .. } => Credential::ApiKey(api_key.to_owned()),
                };
                credentials.push((scheme.name, applied(scheme, &credential)?));
            }
        }

        let base_url = self.base_url.as_deref().or(M::DEFAULT_BASE_URL).ok_or_else(|| {
            Error::Config(format!(
                "missing base URL: the spec names no server; set {} or ClientBuilder::base_url",
                M::BASE_URL_ENV
            ))
        })?;
        let (base_url, base_prefix) = parse_base_url(base_url)?;

        let mut default_headers = HeaderMap::new();
        let user_agent = self.user_agent.as_deref().unwrap_or(M::USER_AGENT);
        let (name, value) = parse_header(header::USER_AGENT.as_str(), user_agent)?;
        default_headers.insert(name, value);
        for (name, value) in &self.default_headers {
            let (name, value) = parse_header(name, value)?;
            default_headers.insert(name, value);
        }

        let http = match self.http_client {
            Some(client) => client,
            None => {
                let mut builder = reqwest::Client::builder();
                if let Some(connect_timeout) = self.connect_timeout {
                    builder = builder.connect_timeout(connect_timeout);
                }
                builder.build().map_err(|err| Error::Config(format!("could not build the HTTP client: {err}")))?
            }
        };

        let mut retry = self.retry_policy.unwrap_or_default();
        if let Some(max_retries) = self.max_retries {
            retry.max_retries = max_retries;
        }

        Ok(Client {
            model: PhantomData,
            inner: Arc::new(Inner {
                http,
                base_url,
                base_prefix,
                authorization,
                credentials,
                default_headers,
                idempotency_header: idempotency_header_name::<M>()?,
                timeout: self.timeout.unwrap_or(DEFAULT_TIMEOUT),
                retry,
                resume: self.resume_policy,
                hooks: self.hooks,
            }),
        })
    }
}

/// A credential the client sends, for `ClientBuilder::credential`.
///
/// Its `Debug` output shows the kind only, never the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A token sent as `Authorization: Bearer <token>`: an HTTP bearer key,
    /// or an OAuth 2 or OpenID Connect access token.
    Bearer(String),
    /// A user and password sent as `Authorization: Basic <base64>`.
    Basic {
        /// The user id.
        user: String,
        /// The password.
        password: String,
    },
    /// An API key, sent in the header, query parameter or cookie its scheme names.
    ApiKey(String),
}

impl Credential {
    /// A bearer token (also an OAuth 2 or OpenID Connect access token).
    pub fn bearer(token: impl Into<String>) -> Self {
        Credential::Bearer(token.into())
    }

    /// A basic user and password.
    pub fn basic(user: impl Into<String>, password: impl Into<String>) -> Self {
        Credential::Basic { user: user.into(), password: password.into() }
    }

    /// An API key.
    pub fn api_key(key: impl Into<String>) -> Self {
        Credential::ApiKey(key.into())
    }
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
        /// Where the key goes.
        location: KeyLocation,
        /// The header, parameter or cookie name.
        name: &'static str,
    },
}

/// A security scheme of the spec, as [`ApiModel::SECURITY_SCHEMES`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheme {
    /// The scheme's name in the spec.
    pub name: &'static str,
    /// How the credential is sent.
    pub kind: SchemeKind,
}

/// A credential ready to send.
enum Applied {
    Header(HeaderName, HeaderValue),
    Query(&'static str, String),
    /// `name=value`.
    Cookie(String),
}

/// What `credential` sends for `scheme`; a credential of another kind is a
/// configuration error (a bearer token and an API key are both plain
/// strings, so either serves the other's scheme).
fn applied<M: ApiModel>(scheme: &Scheme, credential: &Credential) -> Result<Applied, Error<M>> {
    let invalid = || Error::Config(format!("the credential of {:?} is not valid in a request", scheme.name));
    let sensitive = |text: String| {
        let mut value = HeaderValue::from_str(&text).map_err(|_| invalid())?;
        value.set_sensitive(true);
        Ok::<_, Error<M>>(value)
    };
    let plain = match credential {
        Credential::Bearer(text) | Credential::ApiKey(text) => Some(text.trim()),
        Credential::Basic { .. } => None,
    };
    match (scheme.kind, credential, plain) {
        (SchemeKind::Basic, Credential::Basic { user, password }, _) => Ok(Applied::Header(
            header::AUTHORIZATION,
            sensitive(format!("Basic {}", encode_base64(&format!("{user}:{password}"))))?,
        )),
        (SchemeKind::Bearer, _, Some(token)) if !token.is_empty() => {
            Ok(Applied::Header(header::AUTHORIZATION, sensitive(format!("Bearer {token}"))?))
        }
        (SchemeKind::ApiKey { location, name }, _, Some(key)) if !key.is_empty() => match location {
            KeyLocation::Header => {
                let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
                Ok(Applied::Header(name, sensitive(key.to_owned())?))
            }
            KeyLocation::Query => Ok(Applied::Query(name, key.to_owned())),
            KeyLocation::Cookie => {
                if key.contains([';', ',', ' ', '"']) || key.chars().any(|c| c.is_control()) {
                    return Err(invalid());
                }
                Ok(Applied::Cookie(format!("{name}={key}")))
            }
        },
        _ => Err(Error::Config(format!("the credential given for {:?} is empty or of the wrong kind", scheme.name))),
    }
}

/// Standard base64 with padding (RFC 4648), for basic credentials.
fn encode_base64(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Parses and normalises the base URL: an http(s) URL without query or
/// fragment. Returns it with a trailing slash (for resolving references)
/// and as a prefix without one (for appending paths).
fn parse_base_url<M: ApiModel>(raw: &str) -> Result<(Url, String), Error<M>> {
    let raw = raw.trim();
    let invalid = |why: &str| Error::Config(format!("invalid base URL {raw:?}: {why}"));
    let mut url = Url::parse(raw).map_err(|err| invalid(&err.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it must not have a query or fragment"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    let prefix = url.as_str().trim_end_matches('/').to_owned();
    Ok((url, prefix))
}

/// Per-call settings that override the client's: retries, timeout,
/// idempotency key, extra headers, and for streams where to resume.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestOptions {
    pub(crate) max_retries: Option<u32>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) retry_policy: Option<RetryPolicy>,
    pub(crate) resume_policy: Option<ResumePolicy>,
    pub(crate) last_event_id: Option<String>,
}

impl RequestOptions {
    /// Options that change nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Overrides how many times this call is retried.
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = Some(max_retries);
        self
    }

    /// Overrides the per-attempt timeout of this call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the idempotency key instead of a generated one, so that the
    /// server deduplicates this call against an earlier one with the same key.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Adds a header to this call; it replaces a default header of the
    /// same name. Invalid names or values fail the call with `Error::Config`.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Overrides the retry policy of this call; [`RequestOptions::max_retries`]
    /// still applies on top.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry_policy = Some(policy);
        self
    }

    /// Overrides how this call's event stream resumes after a dropped
    /// connection; only streaming calls use it.
    pub fn resume_policy(mut self, policy: ResumePolicy) -> Self {
        self.resume_policy = Some(policy);
        self
    }

    /// Starts a streaming call after the event with this id (sent as
    /// `Last-Event-ID`), to pick up a stream an earlier call lost; only
    /// streaming calls use it.
    pub fn last_event_id(mut self, id: impl Into<String>) -> Self {
        self.last_event_id = Some(id.into());
        self
    }
}

/// A request as the generated operation builders describe it.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    /// The HTTP method.
    pub method: Method,
    /// The path relative to the base URL, starting with '/' and already
    /// percent-encoded, e.g. `/pets/pet_1/photos`.
    pub path: String,
    /// Query parameters, encoded by the client.
    pub query: Vec<(&'static str, String)>,
    /// Query pairs whose names come from data: the entries of a free-form
    /// object parameter (`key=value`, or `name[key]=value` for
    /// `style: deepObject`), sent after `query`.
    pub free_query: Vec<(String, String)>,
    /// Header parameters.
    pub headers: Vec<(&'static str, String)>,
    /// The encoded body, if any.
    pub body: Option<Bytes>,
    /// The body's media type; `None` for `application/json`.
    pub content_type: Option<String>,
    /// The media types asked for in `Accept`; `None` for `application/json`.
    pub accept: Option<&'static str>,
    /// The operation's id, for tracing and hooks (`invokeAgent`).
    pub operation: &'static str,
    /// The path as the spec writes it (`/agents/{agent_id}/invoke`), for
    /// tracing: unlike `path`, it holds no ids.
    pub path_template: &'static str,
    /// The operation's security requirements (alternatives, each the names
    /// of the schemes it needs together; an empty one means credentials
    /// are optional), or `None` for a request that names none, which sends
    /// the API key as `Authorization: Bearer`.
    pub security: Option<&'static [&'static [&'static str]]>,
}

impl RequestSpec {
    /// A request without query, headers, body or security requirements.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            free_query: Vec::new(),
            headers: Vec::new(),
            body: None,
            content_type: None,
            accept: None,
            operation: "",
            path_template: "",
            security: None,
        }
    }
}

/// A scripted HTTP/1.1 server on the loopback interface, for the tests of
/// this crate's modules. It lives here, in a hand-written file, so that the
/// generated crate's unit tests can use it without a test-only dependency.
#[cfg(test)]
pub(crate) mod test_server {
    use std::io::{ErrorKind, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};
    use std::thread::{self, JoinHandle};
    use std::time::{Duration, Instant};

    /// How long the server waits for each expected connection before it
    /// gives up, so that a failing test cannot hang the suite.
    const ACCEPT_PATIENCE: Duration = Duration::from_secs(20);

    /// One request as the server received it.
    #[derive(Debug, Clone)]
    pub(crate) struct Recorded {
        pub(crate) method: String,
        pub(crate) target: String,
        /// Header names are lower-cased.
        pub(crate) headers: Vec<(String, String)>,
        pub(crate) body: Vec<u8>,
        pub(crate) at: Instant,
    }

    impl Recorded {
        pub(crate) fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
        }
    }

    /// What the server writes for one connection, after reading the request.
    pub(crate) enum Reply {
        /// Raw bytes, in pieces with a pause before each, then the
        /// connection is closed.
        Pieces(Vec<(Duration, Vec<u8>)>),
    }

    /// A complete response with a body and `Connection: close`.
    pub(crate) fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut head = format!("HTTP/1.1 {status} Status\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        head.push_str(body);
        Reply::Pieces(vec![(Duration::ZERO, head.into_bytes())])
    }

    /// A JSON response.
    pub(crate) fn json(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        response(status, &all, body)
    }

    /// An event stream whose body ends when the connection closes, sent in
    /// the given pieces, each after its pause.
    pub(crate) fn event_stream(pieces: &[(u64, &str)]) -> Reply {
        let mut out = vec![(
            Duration::ZERO,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n".to_vec(),
        )];
        for (pause_ms, text) in pieces {
            out.push((Duration::from_millis(*pause_ms), text.as_bytes().to_vec()));
        }
        Reply::Pieces(out)
    }

    /// Accepts the connection and reads the request, then closes it
    /// without answering.
    pub(crate) fn hang_up() -> Reply {
        Reply::Pieces(Vec::new())
    }

    /// The running server; dropping it waits for its thread.
    pub(crate) struct TestServer {
        pub(crate) base_url: String,
        requests: Arc<Mutex<Vec<Recorded>>>,
        thread: Option<JoinHandle<()>>,
    }

    impl TestServer {
        /// Serves `replies` in order, one per connection, then stops.
        pub(crate) fn start(replies: Vec<Reply>) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
            listener.set_nonblocking(true).expect("nonblocking listener");
            let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
            let requests = Arc::new(Mutex::new(Vec::new()));
            let recorded = Arc::clone(&requests);
            // Connections are answered concurrently, so that a reply that
            // stalls on purpose does not hold up the client's next attempt.
            let thread = thread::spawn(move || {
                let mut handlers = Vec::new();
                for reply in replies {
                    let Some(stream) = accept(&listener) else {
                        break;
                    };
                    let recorded = Arc::clone(&recorded);
                    handlers.push(thread::spawn(move || answer(stream, reply, &recorded)));
                }
                for handler in handlers {
                    let _ = handler.join();
                }
            });
            Self { base_url, requests, thread: Some(thread) }
        }

        /// The requests received so far.
        pub(crate) fn requests(&self) -> Vec<Recorded> {
            self.requests.lock().unwrap().clone()
        }

        /// A client for this server with fast retries.
        pub(crate) fn client(&self) -> crate::testing::TestClient {
            self.builder().build().unwrap()
        }

        /// A client builder for this server with fast retries.
        pub(crate) fn builder(&self) -> crate::client::ClientBuilder<crate::testing::Model> {
            crate::testing::TestClient::builder()
                .api_key("test-key")
                .base_url(&self.base_url)
                .timeout(Duration::from_secs(5))
                .retry_policy(
                    crate::retry::RetryPolicy::default()
                        .initial_backoff(Duration::from_millis(10))
                        .max_backoff(Duration::from_millis(40)),
                )
        }
    }

    impl Drop for TestServer {
        fn drop(&mut self) {
            if let Some(thread) = self.thread.take() {
                if thread::panicking() {
                    return;
                }
                let _ = thread.join();
            }
        }
    }

    fn answer(mut stream: TcpStream, reply: Reply, recorded: &Mutex<Vec<Recorded>>) {
        let Some(request) = read_request(&mut stream) else {
            return;
        };
        recorded.lock().unwrap().push(request);
        let Reply::Pieces(pieces) = reply;
        for (pause, bytes) in pieces {
            thread::sleep(pause);
            if stream.write_all(&bytes).and_then(|()| stream.flush()).is_err() {
                break;
            }
        }
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }

    fn accept(listener: &TcpListener) -> Option<TcpStream> {
        let started = Instant::now();
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).ok()?;
                    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
                    return Some(stream);
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => {
                    if started.elapsed() > ACCEPT_PATIENCE {
                        return None;
                    }
                    thread::sleep(Duration::from_millis(2));
                }
                Err(_) => return None,
            }
        }
    }

    fn read_request(stream: &mut TcpStream) -> Option<Recorded> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            let n = stream.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next()?.split(' ');
        let method = request_line.next()?.to_owned();
        let target = request_line.next()?.to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length =
            headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse::<usize>().ok()).unwrap_or(0);
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < length {
            let n = stream.read(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        Some(Recorded { method, target, headers, body, at: Instant::now() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Model, TestError};

    type Client = super::Client<Model>;
    type ClientBuilder = super::ClientBuilder<Model>;

    fn client(base: &str) -> Client {
        Client::builder().api_key("key").base_url(base).build().unwrap()
    }

    fn config_error(result: Result<Client, TestError>) -> String {
        match result {
            Err(Error::Config(message)) => message,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn missing_or_empty_key_is_a_config_error() {
        assert!(config_error(Client::builder().build()).contains("API key"));
        assert!(config_error(Client::builder().api_key("  ").build()).contains("API key"));
        let from_env = config_error(ClientBuilder::from_vars(None, None).build());
        assert!(from_env.contains("TEST_API_KEY"), "{from_env}");
        assert!(config_error(Client::builder().api_key("a\nb").build()).contains("API key"));
    }

    #[test]
    fn an_api_without_bearer_keys_or_servers_needs_a_base_url_only() {
        use crate::testing::PlainModel;
        type Plain = super::Client<PlainModel>;
        match super::ClientBuilder::<PlainModel>::from_vars(None, None).build() {
            Err(Error::Config(message)) => assert!(message.contains("PLAIN_BASE_URL"), "{message}"),
            other => panic!("expected a config error, got {other:?}"),
        }
        let client = Plain::builder().base_url("http://localhost:1/").build().unwrap();
        let spec = RequestSpec::new(Method::GET, "/pets");
        let headers = client.request_headers(&spec, &RequestOptions::new(), JSON, None).unwrap();
        assert!(!headers.contains_key(header::AUTHORIZATION));
        assert_eq!(headers[header::USER_AGENT], PlainModel::USER_AGENT);
        let keyed = Plain::builder().base_url("http://localhost:1/").api_key("k").build().unwrap();
        let headers = keyed.request_headers(&spec, &RequestOptions::new(), JSON, None).unwrap();
        assert_eq!(headers[header::AUTHORIZATION], "Bearer k");
    }

    #[test]
    fn bad_base_urls_are_config_errors() {
        for bad in ["not a url", "ftp://example.com/v1", "https://example.com/v1?x=1", "mailto:a@b.c"] {
            let message = config_error(Client::builder().api_key("k").base_url(bad).build());
            assert!(message.contains("base URL"), "{bad}: {message}");
        }
    }

    #[test]
    fn bad_default_header_is_a_config_error() {
        let result = Client::builder().api_key("k").default_header("bad name", "v").build();
        assert!(config_error(result).contains("header"));
    }

    #[test]
    fn from_vars_defaults_the_base_url() {
        let client = ClientBuilder::from_vars(Some("k".into()), Some("".into())).build().unwrap();
        assert_eq!(Some(client.base_url()), Model::DEFAULT_BASE_URL);
        let client =
            ClientBuilder::from_vars(Some("k".into()), Some("http://localhost:8080/v1/".into())).build().unwrap();
        assert_eq!(client.base_url(), "http://localhost:8080/v1");
    }

    #[test]
    fn debug_output_hides_the_key() {
        let builder = Client::builder().api_key("secret-key");
        assert!(!format!("{builder:?}").contains("secret-key"));
        let client = builder.build().unwrap();
        assert!(!format!("{client:?}").contains("secret-key"));
    }

    #[test]
    fn endpoint_urls_append_to_the_base_path() {
        let client = client("https://api.example.com/v1");
        let url =
            client.endpoint_url("/agents/agt%2F1/invoke", &[("page", "2".into()), ("q", "a b&c".into())]).unwrap();
        assert_eq!(url.as_str(), "https://api.example.com/v1/agents/agt%2F1/invoke?page=2&q=a+b%26c");
        let url = client.endpoint_url("/agents", &[]).unwrap();
        assert_eq!(url.as_str(), "https://api.example.com/v1/agents");
        let slash = client_with_slash();
        assert_eq!(slash.endpoint_url("/agents", &[]).unwrap().as_str(), "https://api.example.com/v1/agents");
    }

    #[test]
    fn endpoint_urls_are_what_the_whole_text_parses_to() {
        let paths = [
            "/agents",
            "agents/a",
            "",
            "/",
            "/a/../b/./c",
            "/a%2Fb/%20/x",
            "/with space/ünïcode/\\back",
            "/a//b/",
            "/pets?kind=dog",
            "/pets#frag",
            "/a/%2e%2e/b",
        ];
        for base in
            ["https://api.example.com/v1", "http://127.0.0.1:8450/v1/", "https://h.example", "https://h.example/a//"]
        {
            let client = client(base);
            for path in paths {
                let prefix = &client.inner.base_prefix;
                let whole = if path.starts_with('/') { format!("{prefix}{path}") } else { format!("{prefix}/{path}") };
                let expected = Url::parse(&whole).unwrap();
                assert_eq!(client.endpoint_url(path, &[]).unwrap(), expected, "{base} + {path}");
                let mut expected = expected;
                expected.query_pairs_mut().append_pair("q", "a b");
                assert_eq!(client.endpoint_url(path, &[("q", "a b".into())]).unwrap(), expected, "{base} + {path}");
            }
        }
    }

    fn client_with_slash() -> Client {
        client("https://api.example.com/v1/")
    }

    #[test]
    fn check_urls_resolve_against_the_origin() {
        let client = client("https://api.example.com/v1");
        let url = client.resolve_url("/v1/operations/op_1").unwrap();
        assert_eq!(url.as_str(), "https://api.example.com/v1/operations/op_1");
        let url = client.resolve_url("operations/op_1").unwrap();
        assert_eq!(url.as_str(), "https://api.example.com/v1/operations/op_1");
        let url = client.resolve_url("https://api.example.com/v1/operations/op_2").unwrap();
        assert_eq!(url.as_str(), "https://api.example.com/v1/operations/op_2");
        let err = client.resolve_url("https://evil.example.net/v1/operations/op_1").unwrap_err();
        assert!(matches!(err, Error::Config(_)));
    }

    #[test]
    fn retry_policy_for_merges_overrides() {
        let client = Client::builder().api_key("k").max_retries(5).build().unwrap();
        assert_eq!(client.retry_policy().max_retries, 5);
        let opts = RequestOptions::new();
        assert_eq!(client.retry_policy_for(&opts).max_retries, 5);
        let opts = RequestOptions::new().retry_policy(RetryPolicy::none());
        assert_eq!(client.retry_policy_for(&opts).max_retries, 0);
        let opts = RequestOptions::new().retry_policy(RetryPolicy::none()).max_retries(1);
        assert_eq!(client.retry_policy_for(&opts).max_retries, 1);
        // The builder's retry count applies whichever order it was set in.
        let client = Client::builder().api_key("k").max_retries(4).retry_policy(RetryPolicy::none()).build().unwrap();
        assert_eq!(client.retry_policy().max_retries, 4);
    }

    #[test]
    fn each_operation_sends_the_credentials_its_requirements_name() {
        use crate::testing::SecuredModel;
        let client = crate::client::Client::<SecuredModel>::builder()
            .base_url("http://localhost:1/")
            .api_key("token")
            .credential("basic", Credential::basic("ann", "p:w"))
            .credential("header", Credential::api_key("hk"))
            .credential("query", Credential::api_key("q k"))
            .credential("cookie", Credential::api_key("ck"))
            .build()
            .unwrap();
        let send = |security: &'static [&'static [&'static str]]| {
            let mut spec = RequestSpec::new(Method::GET, "/x");
            spec.security = Some(security);
            spec.headers.push(("cookie", "theme=dark".into()));
            let headers = client.request_headers(&spec, &RequestOptions::new(), JSON, None).unwrap();
            let mut url = client.endpoint_url(&spec.path, &spec.query).unwrap();
            client.apply_query_credentials(&spec, &mut url);
            let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
            (text("authorization"), text("x-key"), text("cookie"), url.query().map(str::to_owned))
        };
        assert_eq!(send(&[&["oauth"]]), (Some("Bearer token".into()), None, Some("theme=dark".into()), None));
        assert_eq!(send(&[&["basic"]]).0.as_deref(), Some("Basic YW5uOnA6dw=="));
        assert_eq!(
            send(&[&["header", "query"]]),
            (None, Some("hk".into()), Some("theme=dark".into()), Some("key=q+k".into()))
        );
        assert_eq!(send(&[&["cookie"]]).2.as_deref(), Some("theme=dark; sid=ck"));
        // The first requirement whose credentials are all set wins.
        assert_eq!(send(&[&["nothing"], &["basic"], &["oauth"]]).0.as_deref(), Some("Basic YW5uOnA6dw=="));
        // Optional, or no requirement satisfied: nothing is sent.
        assert_eq!(send(&[&[]]), (None, None, Some("theme=dark".into()), None));
        assert_eq!(send(&[&["nothing"]]), (None, None, Some("theme=dark".into()), None));
        assert_eq!(send(&[]).0, None);

        let bare = crate::client::Client::<SecuredModel>::builder().base_url("http://localhost:1/").build().unwrap();
        let mut spec = RequestSpec::new(Method::GET, "/x");
        spec.security = Some(&[&["oauth"], &[]]);
        let headers = bare.request_headers(&spec, &RequestOptions::new(), JSON, None).unwrap();
        assert!(!headers.contains_key(header::AUTHORIZATION));
    }

    #[test]
    fn credentials_are_checked_and_never_shown() {
        use crate::testing::SecuredModel;
        let builder = || crate::client::Client::<SecuredModel>::builder().base_url("http://localhost:1/");
        let error = |result: Result<crate::client::Client<SecuredModel>, Error<SecuredModel>>| match result {
            Err(Error::Config(message)) => message,
            other => panic!("expected a config error, got {other:?}"),
        };
        assert!(
            error(builder().credential("nope", Credential::api_key("k")).build()).contains("unknown security scheme")
        );
        assert!(error(builder().credential("basic", Credential::api_key("k")).build()).contains("wrong kind"));
        assert!(error(builder().credential("cookie", Credential::api_key("a;b")).build()).contains("not valid"));
        let secret = || builder().credential("basic", Credential::basic("ann", "hunter2")).api_key("tok_secret");
        let shown = format!("{:?} {:?}", secret(), secret().build().unwrap());
        assert!(!shown.contains("hunter2") && !shown.contains("tok_secret"), "{shown}");
        assert_eq!(encode_base64("a"), "YQ==");
        assert_eq!(encode_base64("ab"), "YWI=");
        assert_eq!(encode_base64("abc"), "YWJj");
    }

    #[test]
    fn headers_are_assembled_once_per_call() {
        let client =
            Client::builder().api_key("key").default_header("x-team", "a").user_agent("custom/1").build().unwrap();
        let mut spec = RequestSpec::new(Method::POST, "/agents");
        spec.body = Some(Bytes::from_static(b"{}"));
        spec.headers.push(("x-team", "b".into()));
        let opts = RequestOptions::new().header("x-trace", "t");
        let headers = client.request_headers(&spec, &opts, JSON, None).unwrap();
        assert_eq!(headers[header::AUTHORIZATION], "Bearer key");
        assert!(headers[header::AUTHORIZATION].is_sensitive());
        assert_eq!(headers[header::ACCEPT], JSON);
        assert_eq!(headers[header::CONTENT_TYPE], JSON);
        assert_eq!(headers[header::USER_AGENT], "custom/1");
        assert_eq!(headers["x-team"], "b");
        assert_eq!(headers["x-trace"], "t");
        let key = headers[IDEMPOTENCY_KEY].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(key).is_ok(), "{key}");

        let get = RequestSpec::new(Method::GET, "/agents");
        let headers = client.request_headers(&get, &RequestOptions::new(), EVENT_STREAM, Some("7")).unwrap();
        assert!(!headers.contains_key(IDEMPOTENCY_KEY));
        assert!(!headers.contains_key(header::CONTENT_TYPE));
        assert_eq!(headers[header::ACCEPT], EVENT_STREAM);
        assert_eq!(headers[LAST_EVENT_ID], "7");

        let opts = RequestOptions::new().idempotency_key("mine");
        let headers = client.request_headers(&spec, &opts, JSON, None).unwrap();
        assert_eq!(headers[IDEMPOTENCY_KEY], "mine");
        let bad = RequestOptions::new().header("x", "line\nbreak");
        assert!(matches!(client.request_headers(&spec, &bad, JSON, None), Err(Error::Config(_))));
    }

    #[test]
    fn default_user_agent_names_the_crate() {
        let client = client("https://api.example.com/v1");
        let ua = client.inner.default_headers[header::USER_AGENT].to_str().unwrap();
        assert_eq!(ua, Model::USER_AGENT);
    }
    mod over_the_wire {
        use super::super::test_server::{TestServer, hang_up, json, response};
        use super::*;
        use crate::testing::ErrorCode;

        const RATE_LIMITED: &str = r#"{"status":"error","error":{"code":"RATE_LIMITED","message":"slow down"}}"#;

        fn envelope(code: &str, message: &str) -> String {
            format!(r#"{{"status":"error","error":{{"code":"{code}","message":"{message}"}}}}"#)
        }

        fn post(path: &str, body: &'static str) -> RequestSpec {
            let mut spec = RequestSpec::new(Method::POST, path);
            spec.body = Some(Bytes::from_static(body.as_bytes()));
            spec
        }

        #[tokio::test]
        async fn retries_429_after_retry_after_with_the_same_idempotency_key() {
            let server = TestServer::start(vec![
                json(429, &[("Retry-After", "1"), ("X-RateLimit-Remaining", "0")], RATE_LIMITED),
                json(200, &[("X-Request-Id", "req_2")], r#"{"ok":true}"#),
            ]);
            let raw = server
                .client()
                .execute(post("/agents/agt_1/invoke", r#"{"query":"hi"}"#), &RequestOptions::new())
                .await
                .unwrap();
            let response = raw.json::<serde_json::Value>().unwrap();
            assert_eq!(response.body["ok"], true);
            assert_eq!(response.request_id(), Some("req_2"));

            let requests = server.requests();
            assert_eq!(requests.len(), 2);
            let first = &requests[0];
            assert_eq!(first.method, "POST");
            assert_eq!(first.target, "/v1/agents/agt_1/invoke");
            assert_eq!(first.body, br#"{"query":"hi"}"#);
            assert_eq!(first.header("authorization"), Some("Bearer test-key"));
            assert_eq!(first.header("accept"), Some("application/json"));
            assert_eq!(first.header("content-type"), Some("application/json"));
            assert_eq!(first.header("user-agent"), Some(Model::USER_AGENT));
            let key = first.header("idempotency-key").unwrap();
            assert!(uuid::Uuid::parse_str(key).is_ok());
            assert_eq!(requests[1].header("idempotency-key"), Some(key));
            let waited = requests[1].at - first.at;
            assert!(waited >= Duration::from_millis(990), "retried after {waited:?}");
        }

        #[tokio::test]
        async fn the_callers_idempotency_key_is_sent_on_every_attempt() {
            let server =
                TestServer::start(vec![json(503, &[], &envelope("INTERNAL_ERROR", "busy")), json(200, &[], "{}")]);
            let opts = RequestOptions::new().idempotency_key("order-1").header("x-trace", "t1");
            server.client().execute(post("/agents", "{}"), &opts).await.unwrap();
            for request in server.requests() {
                assert_eq!(request.header("idempotency-key"), Some("order-1"));
                assert_eq!(request.header("x-trace"), Some("t1"));
            }
        }

        #[tokio::test]
        async fn bad_request_is_not_retried() {
            let server = TestServer::start(vec![json(
                400,
                &[("X-Request-Id", "req_1")],
                r#"{"status":"error","error":{"code":"INVALID_INPUT","message":"Query parameter is required","details":{"field":"query","reason":"missing"}}}"#,
            )]);
            let err =
                server.client().execute(post("/agents/agt_1/invoke", "{}"), &RequestOptions::new()).await.unwrap_err();
            assert_eq!(err.status(), Some(http::StatusCode::BAD_REQUEST));
            assert_eq!(err.code(), Some(&ErrorCode::InvalidInput));
            assert_eq!(err.request_id(), Some("req_1"));
            let failure = err.api_failure().unwrap();
            assert_eq!(failure.details.as_ref().unwrap().field.as_deref(), Some("query"));
            assert_eq!(server.requests().len(), 1);
        }

        #[tokio::test]
        async fn a_503_storm_gives_up_with_the_last_error() {
            let server = TestServer::start(vec![
                json(503, &[], &envelope("INTERNAL_ERROR", "attempt 1")),
                json(503, &[], &envelope("INTERNAL_ERROR", "attempt 2")),
                json(503, &[], &envelope("INTERNAL_ERROR", "attempt 3")),
            ]);
            let spec = RequestSpec::new(Method::GET, "/agents");
            let err = server.client().execute(spec, &RequestOptions::new()).await.unwrap_err();
            assert_eq!(err.status(), Some(http::StatusCode::SERVICE_UNAVAILABLE));
            assert_eq!(err.api_failure().unwrap().message, "attempt 3");
            let requests = server.requests();
            assert_eq!(requests.len(), 3);
            // A GET is safe to repeat and carries no idempotency key.
            assert!(requests.iter().all(|r| r.header("idempotency-key").is_none()));
        }

        #[tokio::test]
        async fn per_call_max_retries_overrides_the_client() {
            let server = TestServer::start(vec![json(500, &[], &envelope("INTERNAL_ERROR", "once"))]);
            let spec = RequestSpec::new(Method::GET, "/agents");
            let err = server.client().execute(spec, &RequestOptions::new().max_retries(0)).await.unwrap_err();
            assert_eq!(err.code(), Some(&ErrorCode::InternalError));
            assert_eq!(server.requests().len(), 1);
        }

        #[tokio::test]
        async fn non_envelope_error_bodies_become_api_failures() {
            let server =
                TestServer::start(vec![response(502, &[("Content-Type", "text/html")], "<html>bad gateway</html>")]);
            let spec = RequestSpec::new(Method::GET, "/agents");
            let err = server.client().execute(spec, &RequestOptions::new().max_retries(0)).await.unwrap_err();
            let failure = err.api_failure().unwrap();
            assert_eq!(failure.code, ErrorCode::InternalError);
            assert_eq!(failure.body, None);
            assert_eq!(failure.raw_body, "<html>bad gateway</html>");
            assert!(err.is_retryable());
        }

        #[tokio::test]
        async fn a_dropped_connection_is_retried() {
            let server = TestServer::start(vec![hang_up(), json(200, &[], r#"[1]"#)]);
            let raw = server.client().execute(post("/agents", "{}"), &RequestOptions::new()).await.unwrap();
            assert_eq!(&raw.body[..], b"[1]");
            let requests = server.requests();
            assert_eq!(requests.len(), 2);
            assert_eq!(requests[0].header("idempotency-key"), requests[1].header("idempotency-key"));
        }

        #[tokio::test]
        async fn a_slow_attempt_times_out_and_is_retried() {
            let slow = || {
                super::super::test_server::Reply::Pieces(vec![(
                    Duration::from_millis(400),
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".to_vec(),
                )])
            };
            let server = TestServer::start(vec![slow(), slow()]);
            let opts = RequestOptions::new().timeout(Duration::from_millis(100)).max_retries(1);
            let err = server.client().execute(RequestSpec::new(Method::GET, "/agents"), &opts).await.unwrap_err();
            assert!(matches!(err, Error::Timeout), "{err:?}");
            assert_eq!(server.requests().len(), 2);
        }

        #[tokio::test]
        async fn connection_refused_is_a_retryable_transport_error() {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let client = Client::builder()
                .api_key("k")
                .base_url(format!("http://127.0.0.1:{port}/v1"))
                .retry_policy(RetryPolicy::default().initial_backoff(Duration::from_millis(5)))
                .build()
                .unwrap();
            let err =
                client.execute(RequestSpec::new(Method::GET, "/agents"), &RequestOptions::new()).await.unwrap_err();
            assert!(matches!(err, Error::Transport(_)), "{err:?}");
            assert!(err.is_retryable());
        }

        #[tokio::test]
        async fn query_parameters_are_encoded() {
            let server = TestServer::start(vec![json(200, &[], "{}")]);
            let mut spec = RequestSpec::new(Method::GET, "/agents");
            spec.query = vec![("page", "2".into()), ("q", "a b&c".into())];
            server.client().execute(spec, &RequestOptions::new()).await.unwrap();
            assert_eq!(server.requests()[0].target, "/v1/agents?page=2&q=a+b%26c");
        }

        #[tokio::test]
        async fn without_idempotency_keys_a_post_is_repeated_only_when_unprocessed() {
            use crate::testing::PlainModel;
            let plain = |server: &TestServer| {
                super::super::Client::<PlainModel>::builder()
                    .base_url(&server.base_url)
                    .retry_policy(RetryPolicy::default().initial_backoff(Duration::from_millis(5)))
                    .build()
                    .unwrap()
            };
            let server = TestServer::start(vec![json(503, &[], "{}"), json(200, &[], "{}")]);
            let err = plain(&server).execute(post("/pets", "{}"), &RequestOptions::new()).await.unwrap_err();
            assert_eq!(err.status(), Some(http::StatusCode::SERVICE_UNAVAILABLE));
            let requests = server.requests();
            assert_eq!(requests.len(), 1, "a 503 may have done the work");
            assert_eq!(requests[0].header("idempotency-key"), None);
            assert_eq!(requests[0].header("authorization"), None);
            drop(server);

            let server = TestServer::start(vec![json(429, &[], "{}"), json(200, &[], "{}")]);
            plain(&server).execute(post("/pets", "{}"), &RequestOptions::new()).await.unwrap();
            assert_eq!(server.requests().len(), 2, "a 429 did nothing");
            drop(server);

            let server = TestServer::start(vec![json(503, &[], "{}"), json(200, &[], "{}")]);
            let opts = RequestOptions::new().idempotency_key("k1");
            plain(&server).execute(post("/pets", "{}"), &opts).await.unwrap();
            let requests = server.requests();
            assert_eq!(requests.len(), 2, "the caller's key makes it safe");
            assert!(requests.iter().all(|r| r.header("idempotency-key") == Some("k1")));
            drop(server);

            let server = TestServer::start(vec![json(503, &[], "{}"), json(200, &[], "{}")]);
            plain(&server).execute(RequestSpec::new(Method::GET, "/pets"), &RequestOptions::new()).await.unwrap();
            assert_eq!(server.requests().len(), 2, "a GET is safe to repeat");
        }

        #[tokio::test]
        async fn check_urls_are_fetched_from_the_origin() {
            let server = TestServer::start(vec![json(200, &[], "{}")]);
            server.client().execute_url(Method::GET, "/v1/operations/op_1", &RequestOptions::new()).await.unwrap();
            assert_eq!(server.requests()[0].target, "/v1/operations/op_1");
        }
    }
}
