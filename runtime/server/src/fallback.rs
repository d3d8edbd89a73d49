//! Answers for requests no operation matches, in the error envelope rather
//! than axum's empty-bodied defaults.
//!
//! axum's `MethodRouter` answers a method it has no handler for with its
//! fallback and then adds an `Allow` header listing its methods, unless the
//! fallback's response already has one. The router gives each path's
//! `MethodRouter` [`method_not_allowed`] with the spec's methods for that
//! path, so the header is exact (axum's own list would add `HEAD` after
//! `GET`), and gives the `Router` [`not_found`] for unknown paths.

use std::future::Future;
use std::pin::Pin;

use axum::extract::{OriginalUri, Request};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};

use crate::error::{ApiFailure, ErrorEnvelope};

/// The future of a fallback handler. Boxed: these answer only requests no
/// operation takes, so their cost does not matter, and a named type keeps
/// the generated router short.
type Answer = Pin<Box<dyn Future<Output = Response> + Send>>;

/// `answer` to `request`, given a request id when `ids` says so.
fn reply<F>(ids: bool, request: Request, answer: impl FnOnce(Request) -> F + Send + 'static) -> Answer
where
    F: Future<Output = Response> + Send + 'static,
{
    if ids {
        Box::pin(crate::request_id::identified(request, move |_, request| answer(request)))
    } else {
        Box::pin(answer(request))
    }
}

/// A handler answering `404 NOT_FOUND` for a path that matches no route,
/// for `Router::fallback`; with `ids`, the answer gets a request id as
/// every other does (see [`identified`](crate::request_id::identified)).
pub(crate) fn not_found<E: ErrorEnvelope>(ids: bool) -> impl FnOnce(Request) -> Answer + Clone + Send + Sync + 'static {
    move |request: Request| -> Answer {
        let answer = |request: Request| {
            // The original URI, in case this router is nested in another.
            let uri = request.extensions().get::<OriginalUri>().map_or(request.uri(), |original| &original.0);
            let failure = ApiFailure::<E>::not_found(format!("There is no endpoint at {}.", uri.path()));
            std::future::ready(failure.into_response())
        };
        reply(ids, request, answer)
    }
}

/// A handler answering `405 METHOD_NOT_ALLOWED` with `Allow: <allow>`, for
/// `MethodRouter::fallback`; `allow` lists the path's methods, e.g.
/// `"GET, POST"`. With `ids`, the answer gets a request id.
pub(crate) fn method_not_allowed<E: ErrorEnvelope>(
    allow: &'static str,
    ids: bool,
) -> impl FnOnce(Request) -> Answer + Clone + Send + Sync + 'static {
    move |request: Request| -> Answer {
        let answer = move |request: Request| {
            let mut response = ApiFailure::<E>::method_not_allowed(&[])
                .with_message(format!("{} is not allowed here; this path supports {allow}.", request.method()))
                .into_response();
            if let Ok(value) = HeaderValue::from_str(allow) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            std::future::ready(response)
        };
        reply(ids, request, answer)
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
                    .fallback(method_not_allowed::<TestErrors>("GET, POST", false)),
            )
            .route("/health", get(|| async { "ok" }).fallback(method_not_allowed::<TestErrors>("GET", true)))
            .fallback(not_found::<TestErrors>(false));
        Router::new().nest("/v1", api).fallback(not_found::<TestErrors>(true))
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
        // Only the fallbacks asked to give ids do.
        assert!(headers["x-request-id"].to_str().unwrap().starts_with("req_"));
        assert!(!call("DELETE", "/v1/agents").await.headers().contains_key("x-request-id"));
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
