//! The security fixture (`tests/fixtures/security.yaml`) end to end: its
//! generated server, in process on loopback with an authenticator, driven by
//! its generated client. Every kind of scheme carries its credential where
//! the spec says, a wrong or missing one is a 401 with a challenge, and the
//! operation whose credentials are optional answers without any.

use security_client::{Client, Credential, Error};
use security_server::types::Who;
use security_server::{ApiFailure, Authenticator, Principal, RequestContext, SecurityFixtureApi, ServerConfig, Tier};

/// Answers every operation with the caller's principal id.
struct Echo;

fn who(ctx: &RequestContext) -> Who {
    Who { principal: ctx.principal.as_ref().map(|p| p.id.clone()) }
}

macro_rules! echo {
    ($($method:ident($params:ident) -> $response:ident;)*) => {
        impl SecurityFixtureApi for Echo {
            $(
                async fn $method(
                    &self,
                    ctx: RequestContext,
                    _params: security_server::$params,
                ) -> Result<security_server::$response, ApiFailure> {
                    Ok(security_server::$response::Ok(who(&ctx)))
                }
            )*
        }
    };
}

echo! {
    get_bearer(GetBearerParams) -> GetBearerResponse;
    get_basic(GetBasicParams) -> GetBasicResponse;
    get_header_key(GetHeaderKeyParams) -> GetHeaderKeyResponse;
    get_query_key(GetQueryKeyParams) -> GetQueryKeyResponse;
    get_cookie_key(GetCookieKeyParams) -> GetCookieKeyResponse;
    get_oauth(GetOauthParams) -> GetOauthResponse;
    get_either(GetEitherParams) -> GetEitherResponse;
    get_optional(GetOptionalParams) -> GetOptionalResponse;
}

/// One good credential per scheme; the principal is named after the scheme.
struct Keys;

impl Authenticator for Keys {
    async fn authenticate_scheme(&self, scheme: &str, credential: &security_server::Credential) -> Option<Principal> {
        use security_server::Credential as C;
        let good = match (scheme, credential) {
            ("bearerAuth", C::Bearer(token)) => token == "bearer-good",
            ("oauth", C::Bearer(token)) => token == "oauth-good",
            ("basicAuth", C::Basic { user, password }) => user == "ann" && password == "pass:word",
            ("headerKey", C::ApiKey(key)) => key == "header-good",
            ("queryKey", C::ApiKey(key)) => key == "query good&=",
            ("cookieKey", C::ApiKey(key)) => key == "cookie-good",
            _ => false,
        };
        good.then(|| Principal::new(scheme, Tier::Pro))
    }
}

async fn serve() -> String {
    let app = security_server::router(Echo, Keys, ServerConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}/v1")
}

fn client(base: &str, credentials: &[(&str, Credential)]) -> Client {
    let mut builder = Client::builder().base_url(base).max_retries(0);
    for (scheme, credential) in credentials {
        builder = builder.credential(*scheme, credential.clone());
    }
    builder.build().unwrap()
}

fn all_good() -> Vec<(&'static str, Credential)> {
    vec![
        ("bearerAuth", Credential::bearer("bearer-good")),
        ("oauth", Credential::bearer("oauth-good")),
        ("basicAuth", Credential::basic("ann", "pass:word")),
        ("headerKey", Credential::api_key("header-good")),
        ("queryKey", Credential::api_key("query good&=")),
        ("cookieKey", Credential::api_key("cookie-good")),
    ]
}

fn all_wrong() -> Vec<(&'static str, Credential)> {
    vec![
        ("bearerAuth", Credential::bearer("wrong")),
        ("oauth", Credential::bearer("wrong")),
        ("basicAuth", Credential::basic("ann", "wrong")),
        ("headerKey", Credential::api_key("wrong")),
        ("queryKey", Credential::api_key("wrong")),
        ("cookieKey", Credential::api_key("wrong")),
    ]
}

/// Calls every operation; the principal each answered with, or the status
/// of its error.
async fn call_all(client: &Client) -> Vec<(&'static str, Result<Option<String>, u16>)> {
    fn outcome(
        result: Result<security_client::ApiResponse<security_client::types::Who>, Error>,
    ) -> Result<Option<String>, u16> {
        match result {
            Ok(response) => Ok(response.into_body().principal),
            Err(error) => Err(error.status().map_or(0, |s| s.as_u16())),
        }
    }
    vec![
        ("bearer", outcome(client.get_bearer().send().await)),
        ("basic", outcome(client.get_basic().send().await)),
        ("header", outcome(client.get_header_key().send().await)),
        ("query", outcome(client.get_query_key().send().await)),
        ("cookie", outcome(client.get_cookie_key().send().await)),
        ("oauth", outcome(client.get_oauth().send().await)),
        ("either", outcome(client.get_either().send().await)),
        ("optional", outcome(client.get_optional().send().await)),
    ]
}

fn ok(id: &str) -> Result<Option<String>, u16> {
    Ok(Some(id.to_owned()))
}

#[tokio::test]
async fn each_scheme_is_sent_and_checked_end_to_end() {
    let base = serve().await;

    let good = call_all(&client(&base, &all_good())).await;
    assert_eq!(
        good,
        vec![
            ("bearer", ok("bearerAuth")),
            ("basic", ok("basicAuth")),
            ("header", ok("headerKey")),
            ("query", ok("queryKey")),
            ("cookie", ok("cookieKey")),
            ("oauth", ok("oauth")),
            // The first alternative whose credentials are all set: basic.
            ("either", ok("basicAuth")),
            ("optional", ok("headerKey")),
        ]
    );

    // Wrong credentials: 401 everywhere, the optional operation included
    // (a credential that is sent must be valid).
    let wrong = call_all(&client(&base, &all_wrong())).await;
    assert!(wrong.iter().all(|(_, outcome)| *outcome == Err(401)), "{wrong:?}");

    // No credentials: 401 but for the optional operation, anonymous.
    let none = call_all(&client(&base, &[])).await;
    for (name, outcome) in &none {
        let expected = if *name == "optional" { Ok(None) } else { Err(401) };
        assert_eq!(*outcome, expected, "{name}");
    }

    // The second alternative of `either`: a header key and a query key together.
    let keys = client(
        &base,
        &[("headerKey", Credential::api_key("header-good")), ("queryKey", Credential::api_key("query good&="))],
    );
    assert_eq!(keys.get_either().send().await.unwrap().into_body().principal.as_deref(), Some("headerKey"));
    // One of the two is not enough.
    let half = client(&base, &[("headerKey", Credential::api_key("header-good"))]);
    assert_eq!(half.get_either().send().await.unwrap_err().status().map(|s| s.as_u16()), Some(401));
}

#[tokio::test]
async fn refusals_carry_the_right_challenge() {
    let base = serve().await;
    let http = |path: &str| {
        let url = format!("{base}{path}");
        async move {
            let response = raw_get(&url).await;
            (response.0, response.1)
        }
    };
    assert_eq!(http("/bearer").await, (401, "Bearer realm=\"security-fixture\"".to_owned()));
    assert_eq!(http("/basic").await, (401, "Basic realm=\"security-fixture\"".to_owned()));
    assert_eq!(http("/either").await.1, "Basic realm=\"security-fixture\", ApiKey realm=\"security-fixture\"");
    assert_eq!(http("/optional").await.0, 200);
}

/// A bare GET over a raw socket: the status and `WWW-Authenticate`.
async fn raw_get(url: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    let status = text[9..12].parse().unwrap();
    let challenge =
        text.lines().find_map(|line| line.strip_prefix("www-authenticate: ")).unwrap_or_default().to_owned();
    (status, challenge)
}

#[test]
fn credentials_stay_out_of_debug_output() {
    let builder = Client::builder()
        .base_url("http://localhost:1/v1")
        .credential("basicAuth", Credential::basic("ann", "hunter2"));
    let shown = format!("{builder:?} {:?}", Credential::api_key("hunter2"));
    assert!(!shown.contains("hunter2"), "{shown}");
}
