//! The middleware every request passes through, the same on both servers: request id, tracing
//! span, CORS, timeout, gzip and metrics, in one place so the order is visible. It wraps the
//! whole router, so CORS preflights are answered before Axum's method routing sees them; 405
//! shaping and the route label come from `route_info`, which runs inside the router.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use taskbench_data::http::{self as shared, RequestMeta};
use taskbench_data::{ApiError, Service, metrics::UNMATCHED_ROUTE};
use tracing::Instrument as _;

use crate::extract::Failure;

pub(crate) async fn envelope(State(service): State<Service>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let meta =
        RequestMeta::read(service.cors(), method.as_str(), |name| req.headers().get(name).map(HeaderValue::as_bytes));
    // The route is known only once the inner router has matched; the span records it then.
    let span = tracing::info_span!("request", %method, route = tracing::field::Empty, request_id = %meta.request_id);

    let mut response = match &meta.preflight {
        Some(cors) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            append(response.headers_mut(), cors.clone());
            response
        }
        None => match tokio::time::timeout(service.request_timeout(), next.run(req).instrument(span.clone())).await {
            Ok(response) => response,
            Err(_) => Failure(ApiError::Unavailable("request timed out")).into_response(),
        },
    };

    if meta.accepts_gzip && !response.headers().contains_key(header::CONTENT_ENCODING) {
        response = gzip(response).await;
    }
    append(response.headers_mut(), meta.response_headers(service.cors()));
    let route = response.extensions().get::<RouteLabel>().map_or(UNMATCHED_ROUTE, |r| r.0.as_str()).to_owned();
    span.record("route", route.as_str());
    shared::burn_cpu(service.inject_cpu());
    let status = response.status().as_u16();
    service.metrics().observe(method.as_str(), &route, status, started.elapsed());
    span.in_scope(|| tracing::debug!(status, elapsed_us = started.elapsed().as_micros() as u64, "answered"));
    response
}

/// The matched route pattern, carried out on the response so the outer envelope can label
/// metrics and logs with it.
#[derive(Debug, Clone)]
struct RouteLabel(String);

/// Runs inside the router, where the matched route is known: labels the response with it and
/// gives a wrong-method answer the shared 405 body and `allow` header.
pub(crate) async fn route_info(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let mut response = next.run(req).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        response = Failure(shared::method_not_allowed(route.as_deref().unwrap_or(""))).into_response();
    }
    if let Some(route) = route {
        response.extensions_mut().insert(RouteLabel(route));
    }
    response
}

fn append(headers: &mut HeaderMap, extra: Vec<shared::Header>) {
    for (name, value) in extra {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(name, value);
        }
    }
}

/// Buffers the body and gzips it when the shared policy says so.
async fn gzip(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Failure(ApiError::Internal("reading the response body failed".into())).into_response();
    };
    match shared::maybe_gzip(true, false, &bytes) {
        Some(zipped) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            parts.headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
            Response::from_parts(parts, Body::from(zipped))
        }
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}
