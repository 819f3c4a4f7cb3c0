//! The middleware every request passes through, the same on both servers: request id, tracing
//! span, CORS, timeout, gzip and metrics, in one place so the order is visible. (405s are shaped
//! by each resource's default service, since Actix routes methods per resource.)

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError as _, web};
use taskbench_data::http::{self as shared, RequestMeta};
use taskbench_data::{ApiError, Service, metrics::UNMATCHED_ROUTE};
use tracing::Instrument as _;

use crate::extract::Failure;

pub(crate) async fn envelope(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let Some(service) = req.app_data::<web::Data<Service>>().cloned() else {
        return Ok(req.into_response(Failure(ApiError::Internal("app data missing: Service".into())).error_response()));
    };
    let method = req.method().clone();
    let route = req.match_pattern();
    let meta =
        RequestMeta::read(service.cors(), method.as_str(), |name| req.headers().get(name).map(HeaderValue::as_bytes));
    let route_label = route.as_deref().unwrap_or(UNMATCHED_ROUTE);
    let span = tracing::info_span!("request", %method, route = route_label, request_id = %meta.request_id);

    let mut response = match &meta.preflight {
        Some(cors) => {
            let mut response = HttpResponse::NoContent().finish();
            append(response.headers_mut(), cors.clone());
            req.into_response(response)
        }
        None => match tokio::time::timeout(service.request_timeout(), next.call(req).instrument(span.clone())).await {
            Ok(response) => response?.map_into_boxed_body(),
            Err(_) => {
                // The timed-out call owned the request, so there is no `ServiceResponse` to build
                // on; the finished response travels as an error, which Actix sends verbatim.
                let mut response = Failure(ApiError::Unavailable("request timed out")).error_response();
                append(response.headers_mut(), meta.response_headers(service.cors()));
                service.metrics().observe(method.as_str(), route_label, 503, started.elapsed());
                return Err(actix_web::error::InternalError::from_response("request timed out", response).into());
            }
        },
    };

    if meta.accepts_gzip && !response.headers().contains_key(header::CONTENT_ENCODING) {
        response = gzip(response).await;
    }
    append(response.headers_mut(), meta.response_headers(service.cors()));
    shared::burn_cpu(service.inject_cpu());
    let status = response.status().as_u16();
    service.metrics().observe(method.as_str(), route_label, status, started.elapsed());
    span.in_scope(|| tracing::debug!(status, elapsed_us = started.elapsed().as_micros() as u64, "answered"));
    Ok(response)
}

fn append(headers: &mut HeaderMap, extra: Vec<shared::Header>) {
    for (name, value) in extra {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(HeaderName::from_static(name), value);
        }
    }
}

/// Buffers the body and gzips it when the shared policy says so.
async fn gzip(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let (req, response) = response.into_parts();
    let (mut response, body) = response.into_parts();
    let Ok(bytes) = actix_web::body::to_bytes(body).await else {
        let failure = Failure(ApiError::Internal("reading the response body failed".into()));
        return ServiceResponse::new(req, failure.error_response());
    };
    let body = match shared::maybe_gzip(true, false, &bytes) {
        Some(zipped) => {
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
            BoxBody::new(zipped)
        }
        None => BoxBody::new(bytes),
    };
    ServiceResponse::new(req, response.set_body(body))
}
