//! Answers for requests no operation matches, in the error envelope rather
//! than axum's empty-bodied defaults.
//!
//! axum's `MethodRouter` answers a method it has no handler for with its
//! fallback and then adds an `Allow` header listing its methods, unless the
//! fallback's response already has one. The router gives each path's
//! `MethodRouter` [`method_not_allowed`] with the spec's methods for that
//! path, so the header is exact (axum's own list would add `HEAD` after
//! `GET`), and gives the `Router` [`not_found`] for unknown paths.

use axum::extract::OriginalUri;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, header};

use crate::error::{ApiFailure, ErrorEnvelope};

/// `404 NOT_FOUND` for a path that matches no route. The original URI is
/// quoted because inside a nested router the URI has lost its prefix.
pub(crate) async fn not_found<E: ErrorEnvelope>(OriginalUri(uri): OriginalUri) -> ApiFailure<E> {
    ApiFailure::not_found(format!("There is no endpoint at {}.", uri.path()))
}

/// A handler answering `405 METHOD_NOT_ALLOWED` with `Allow: <allow>`, for
/// `MethodRouter::fallback`; `allow` lists the path's methods, e.g.
/// `"GET, POST"`.
pub(crate) fn method_not_allowed<E: ErrorEnvelope>(
    allow: &'static str,
) -> impl FnOnce(Method) -> std::future::Ready<Response> + Clone + Send + Sync + 'static {
    move |method: Method| {
        let mut response = ApiFailure::<E>::method_not_allowed(&[])
            .with_message(format!("{method} is not allowed here; this path supports {allow}."))
            .into_response();
        if let Ok(value) = HeaderValue::from_str(allow) {
            response.headers_mut().insert(header::ALLOW, value);
        }
        std::future::ready(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::tests::envelope;
    use crate::testing::TestErrors;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::{MethodRouter, get};
    use http::StatusCode;
    use tower::ServiceExt;

    fn app() -> Router {
        let api = Router::new()
            .route(
                "/agents",
                MethodRouter::new()
                    .get(|| async { "list" })
                    .post(|| async { "create" })
                    .fallback(method_not_allowed::<TestErrors>("GET, POST")),
            )
            .route("/health", get(|| async { "ok" }).fallback(method_not_allowed::<TestErrors>("GET")))
            .fallback(not_found::<TestErrors>);
        Router::new().nest("/v1", api).fallback(not_found::<TestErrors>)
    }

    async fn call(method: &str, path: &str) -> Response {
        let request = http::Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
        app().oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn unknown_methods_are_405_with_allow() {
        for method in ["DELETE", "PUT", "PATCH", "OPTIONS", "TRACE", "PURGE"] {
            let (status, headers, body) = envelope(call(method, "/v1/agents").await).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
            assert_eq!(headers[header::ALLOW], "GET, POST");
            assert_eq!(body["error"]["code"], "METHOD_NOT_ALLOWED");
            assert_eq!(body["error"]["details"], serde_json::Value::Null);
        }
        let (status, headers, _) = envelope(call("POST", "/v1/health").await).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(headers[header::ALLOW], "GET");
        assert_eq!(call("HEAD", "/v1/health").await.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn unknown_paths_are_404() {
        for path in ["/", "/v1", "/v1/", "/v1/nope", "/v1/agents/", "/v2/agents", "/agents"] {
            let (status, _, body) = envelope(call("GET", path).await).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(body["error"]["code"], "NOT_FOUND");
            assert_eq!(body["error"]["message"], format!("There is no endpoint at {path}."));
        }
        let (status, _, _) = envelope(call("DELETE", "/v1/nope").await).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
