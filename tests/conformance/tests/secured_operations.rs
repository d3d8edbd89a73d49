//! Every operation the spec secures refuses a missing or wrong key, and
//! every operation it leaves open does not ask for one. The operations come
//! from the spec itself (through the generator's IR), not a hand-picked list.

use axum::body::Body;
use http::{Request, StatusCode};
use runagent_codegen::ir::{ParamLocation, PathSegment};
use runagent_server::{RunAgentApi, ServerConfig, StaticKeys, Tier};
use tower::ServiceExt;

/// An implementation of nothing: every operation answers NOT_IMPLEMENTED.
struct Unimplemented;

impl RunAgentApi for Unimplemented {}

fn spec() -> runagent_codegen::ir::Api {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/openapi.yaml")).unwrap();
    runagent_codegen::load(&text).unwrap()
}

/// A request for the operation with every required parameter and the body
/// filled from the spec's examples.
fn request(op: &runagent_codegen::ir::Operation, key: Option<&str>) -> Request<Body> {
    let example = |name: &str| {
        op.parameters
            .iter()
            .find(|p| p.api_name == name)
            .and_then(|p| p.example.as_ref())
            .map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))
            .unwrap_or_else(|| "x".to_owned())
    };
    let mut uri = String::from("/v1");
    for segment in &op.segments {
        match segment {
            PathSegment::Literal(l) => uri.push_str(l),
            PathSegment::Param(p) => uri.push_str(&example(p)),
        }
    }
    let query: Vec<String> = op
        .params_in(ParamLocation::Query)
        .filter(|p| p.required)
        .map(|p| format!("{}={}", p.api_name, example(&p.api_name)))
        .collect();
    if !query.is_empty() {
        uri = format!("{uri}?{}", query.join("&"));
    }
    let mut builder = Request::builder().method(op.method.as_str()).uri(uri);
    if let Some(key) = key {
        builder = builder.header("authorization", format!("Bearer {key}"));
    }
    let body = if let Some(body) = &op.body {
        builder = builder.header("content-type", "application/json");
        Body::from(body.primary().example.as_ref().expect("every body has an example").to_string())
    } else {
        Body::empty()
    };
    builder.body(body).unwrap()
}

#[tokio::test]
async fn secured_operations_refuse_missing_and_wrong_keys_and_open_ones_do_not() {
    let app = runagent_server::router(
        Unimplemented,
        StaticKeys::new().with_key("sk_good", "user_1", Tier::Pro),
        ServerConfig::default(),
    );
    let api = spec();
    let (mut secured, mut open) = (0, 0);
    for op in &api.operations {
        for key in [None, Some("sk_wrong")] {
            let response = app.clone().oneshot(request(op, key)).await.unwrap();
            let status = response.status();
            let www = response.headers().get("www-authenticate").cloned();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            if op.secured {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{} with key {key:?}", op.id);
                assert_eq!(body["error"]["code"], "UNAUTHORIZED", "{}", op.id);
                assert!(www.is_some(), "{}: 401 without WWW-Authenticate", op.id);
            } else {
                assert_ne!(status, StatusCode::UNAUTHORIZED, "{} is open in the spec", op.id);
            }
        }
        // With the right key the request gets past authentication to the
        // default implementation.
        let response = app.clone().oneshot(request(op, Some("sk_good"))).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_IMPLEMENTED, "{} with a good key", op.id);
        if op.secured { secured += 1 } else { open += 1 }
    }
    assert_eq!((secured, open), (14, 2), "the spec secures all but the two health checks");
}
