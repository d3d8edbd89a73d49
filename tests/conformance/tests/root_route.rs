//! An operation at the spec's root path (`/`, USPTO's `list-data-sets`)
//! answers under a prefix with and without the trailing slash, as it does
//! at the root without one.

use axum::body::Body;
use http::{Request, StatusCode};
use oai_uspto_server::{RouterBuilder, ServerConfig, UsptoDataSetApi};
use tower::ServiceExt;

/// Every operation left to the trait's default: `501` in the envelope,
/// which tells a matched route from the router's `404`.
struct Unimplemented;

impl UsptoDataSetApi for Unimplemented {}

async fn status(prefix: &str, path: &str) -> StatusCode {
    let router = RouterBuilder::new(Unimplemented).config(ServerConfig::default().prefix(prefix)).build();
    let request = Request::get(path).body(Body::empty()).unwrap();
    router.oneshot(request).await.unwrap().status()
}

#[tokio::test]
async fn the_root_operation_answers_with_and_without_the_slash() {
    assert_eq!(status("/ds-api", "/ds-api").await, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(status("/ds-api", "/ds-api/").await, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(status("/ds-api/", "/ds-api/").await, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(status("", "/").await, StatusCode::NOT_IMPLEMENTED);
    // Other paths are still unknown.
    assert_eq!(status("/ds-api", "/").await, StatusCode::NOT_FOUND);
    assert_eq!(status("/ds-api", "/ds-api/nope").await, StatusCode::NOT_FOUND);
    assert_eq!(status("/ds-api", "/ds-apix").await, StatusCode::NOT_FOUND);
}
