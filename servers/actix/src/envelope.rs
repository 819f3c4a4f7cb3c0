//! The middleware every request passes through, the same on both servers: request id, tracing
//! span, CORS, timeout, gzip and metrics, in one place so the order is visible. (405s are shaped
//! by each resource's default service, since Actix routes methods per resource.)

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError as _, web};
use taskbench_data::http::{self as shared, REQUEST_ID_HEADER};
use taskbench_data::{ApiError, Service, metrics::UNMATCHED_ROUTE};
use tracing::Instrument as _;

use crate::extract::Failure;

fn bytes(headers: &HeaderMap, name: HeaderName) -> Option<&[u8]> {
    headers.get(name).map(HeaderValue::as_bytes)
}

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
    let headers = req.headers();
    let request_id = shared::request_id(headers.get(REQUEST_ID_HEADER).map(HeaderValue::as_bytes));
    let origin = headers.get(header::ORIGIN).cloned();
    let accept_encoding = headers.get(header::ACCEPT_ENCODING).cloned();
    let preflight = service.cors().preflight(
        method.as_str(),
        origin.as_ref().map(HeaderValue::as_bytes),
        bytes(headers, header::ACCESS_CONTROL_REQUEST_METHOD),
    );
    let span =
        tracing::info_span!("request", %method, route = route.as_deref().unwrap_or(UNMATCHED_ROUTE), %request_id);

    let is_preflight = preflight.is_some();
    let mut response = match preflight {
        Some(cors) => {
            let mut response = HttpResponse::NoContent().finish();
            append(response.headers_mut(), cors);
            req.into_response(response)
        }
        None => match tokio::time::timeout(service.request_timeout(), next.call(req).instrument(span.clone())).await {
            Ok(response) => response?.map_into_boxed_body(),
            Err(_) => {
                // The timed-out call owned the request, so there is no `ServiceResponse` to build
                // on; the finished response travels as an error, which Actix sends verbatim.
                let mut response = Failure(ApiError::Unavailable("request timed out")).error_response();
                decorate(response.headers_mut(), &service, origin.as_ref(), &request_id);
                let route = route.as_deref().unwrap_or(UNMATCHED_ROUTE);
                service.metrics().observe(method.as_str(), route, 503, started.elapsed());
                return Err(actix_web::error::InternalError::from_response("request timed out", response).into());
            }
        },
    };

    if !response.headers().contains_key(header::CONTENT_ENCODING)
        && shared::accepts_gzip(accept_encoding.as_ref().map(HeaderValue::as_bytes))
    {
        response = gzip(response, accept_encoding.as_ref()).await;
    }
    if is_preflight {
        set_request_id(response.headers_mut(), &request_id);
    } else {
        decorate(response.headers_mut(), &service, origin.as_ref(), &request_id);
    }
    let status = response.status().as_u16();
    service.metrics().observe(method.as_str(), route.as_deref().unwrap_or(UNMATCHED_ROUTE), status, started.elapsed());
    span.in_scope(|| tracing::debug!(status, elapsed_us = started.elapsed().as_micros() as u64, "answered"));
    Ok(response)
}

/// The headers every non-preflight response carries: CORS and the request id.
fn decorate(headers: &mut HeaderMap, service: &Service, origin: Option<&HeaderValue>, request_id: &str) {
    append(headers, service.cors().simple(origin.map(HeaderValue::as_bytes)));
    set_request_id(headers, request_id);
}

fn set_request_id(headers: &mut HeaderMap, request_id: &str) {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
}

fn append(headers: &mut HeaderMap, extra: Vec<shared::Header>) {
    for (name, value) in extra {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(HeaderName::from_static(name), value);
        }
    }
}

/// Buffers the body and gzips it when the shared policy says so.
async fn gzip(response: ServiceResponse<BoxBody>, accept_encoding: Option<&HeaderValue>) -> ServiceResponse<BoxBody> {
    let (req, response) = response.into_parts();
    let (mut response, body) = response.into_parts();
    let Ok(bytes) = actix_web::body::to_bytes(body).await else {
        let failure = Failure(ApiError::Internal("reading the response body failed".into()));
        return ServiceResponse::new(req, failure.error_response());
    };
    let body = match shared::maybe_gzip(accept_encoding.map(HeaderValue::as_bytes), false, &bytes) {
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
