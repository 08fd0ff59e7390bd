//! The tower layers around every route, and the fallback.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::state::Shared;

/// Answer for a URL no route matches.
pub(crate) async fn unknown_route(method: Method) -> ApiError {
    ApiError::not_found(format!("Unknown request URL for method {method}."))
}

/// Answers smaller than this are not compressed. Starting a gzip stream cost ~60 µs of
/// CPU per answer here (measured with `wrk -H "Accept-Encoding: gzip"` on appends,
/// which the openai SDK's HTTP client asks for by default): more than the whole append,
/// to save a few hundred bytes. Item pages and histories are larger and still shrink.
const COMPRESS_FROM_BYTES: u16 = 2048;

/// Wraps the routes, outermost first: CORS when configured (so preflights need no
/// key), request-id creation, tracing, request-id propagation, metrics, gzip, JSON
/// errors, panics caught, body limit, timeout.
///
/// The layers are one stack added in one `Router::layer` call: every call boxes each
/// route again, and every boxed level is cloned and allocated anew for each request
/// (ten calls, one per layer, were ten such levels).
pub(crate) fn apply(routes: Router<Shared>, state: Shared) -> Router {
    let x_request_id = HeaderName::from_static("x-request-id");
    let config = state.config.clone();
    let stack = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(
            x_request_id.clone(),
            RandomRequestId,
        ))
        .layer(
            // Spans name the route template and request id, never the concrete path or
            // query (ids, search text) and never headers (keys).
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let route = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map(|m| m.as_str())
                    .unwrap_or("unmatched");
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!("request", method = %req.method(), route, request_id = id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(x_request_id))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        // gzip's answer body back into axum's, which the middleware above takes.
        .map_response(IntoResponse::into_response)
        .layer(
            CompressionLayer::new().compress_when(
                SizeAbove::new(COMPRESS_FROM_BYTES)
                    .and(NotForContentType::GRPC)
                    .and(NotForContentType::IMAGES)
                    .and(NotForContentType::SSE),
            ),
        )
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn(catch_panics))
        // Outside the timeout, whose inner service must answer a body with a default.
        .layer(RequestBodyLimitLayer::new(config.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            config.request_timeout,
        ))
        .layer(DefaultBodyLimit::disable());
    let mut router = routes.layer(stack).with_state(state);
    if let Some(cors) = cors(&config.cors_origins) {
        router = router.layer(cors);
    }
    router
}

/// Random (version 4) UUIDs for requests that arrive without an `x-request-id`, drawn
/// from the thread's user-space CSPRNG. tower-http's `MakeRequestUuid` asks the kernel
/// for every id: a `getrandom` system call per request, on every route.
#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let mut text = uuid::Uuid::encode_buffer();
        HeaderValue::from_str(id.hyphenated().encode_lower(&mut text))
            .ok()
            .map(RequestId::new)
    }
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static(crate::auth::USER_HEADER),
            ])
            .expose_headers([HeaderName::from_static("x-request-id")])
            .max_age(Duration::from_secs(600)),
    )
}

/// Turns a panic in a handler into a JSON 500 instead of a dropped connection (which
/// the SDK would retry).
async fn catch_panics(req: Request, next: Next) -> Response {
    match (CatchUnwind {
        inner: Box::pin(next.run(req)),
    })
    .await
    {
        Ok(resp) => resp,
        Err(_) => ApiError::internal(&"a request handler panicked").into_response(),
    }
}

struct CatchUnwind<F> {
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.get_mut().inner;
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

/// Dresses every bare error answer (413 from the body limit, 504 from the timeout,
/// 405 from routing) in OpenAI's JSON error body, and tells the SDK not to retry a
/// failed write: it sends no idempotency key, so a retried POST could store a batch
/// twice, and a retried DELETE that had committed would answer 404.
async fn json_errors(req: Request, next: Next) -> Response {
    let is_write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let mut resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        let e = match status {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::too_large(None),
            StatusCode::GATEWAY_TIMEOUT | StatusCode::REQUEST_TIMEOUT => {
                ApiError::status(status, "The request took too long.")
            }
            StatusCode::METHOD_NOT_ALLOWED => {
                ApiError::status(status, "This method is not allowed on this URL.")
            }
            s => ApiError::status(s, s.canonical_reason().unwrap_or("Error").to_string()),
        };
        let allow = resp.headers().get(header::ALLOW).cloned();
        resp = e.into_response();
        if let Some(a) = allow {
            resp.headers_mut().insert(header::ALLOW, a);
        }
    }
    let retryable = matches!(status.as_u16(), 408 | 409 | 429) || status.is_server_error();
    if is_write && retryable {
        resp.headers_mut().insert(
            HeaderName::from_static("x-should-retry"),
            HeaderValue::from_static("false"),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    async fn boom() -> &'static str {
        panic!("boom")
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_a_json_500() {
        let app = Router::new()
            .route("/boom", get(boom).post(boom))
            .layer(middleware::from_fn(catch_panics))
            .layer(middleware::from_fn(json_errors));
        let get = Request::builder().uri("/boom").body(Body::empty()).unwrap();
        let resp = app.clone().oneshot(get).await.unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        assert!(resp.headers().get("x-should-retry").is_none());
        // A write that failed is not to be retried by the SDK.
        let post = Request::builder()
            .method("POST")
            .uri("/boom")
            .body(Body::empty())
            .unwrap();
        let resp = app.oneshot(post).await.unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(resp.headers()["x-should-retry"], "false");
    }
}
