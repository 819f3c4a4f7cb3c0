//! Axum extractors for the API's inputs, and the one mapping of `ApiError` onto a response.
//! Each extractor hands the raw input to `taskbench-data`, so rejections are the shared ones,
//! never Axum's defaults.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use taskbench_data::auth::AuthUser;
use taskbench_data::http::{self as shared, MAX_BODY_BYTES};
use taskbench_data::model::ListQuery;
use taskbench_data::model::Uuid;
use taskbench_data::{ApiError, Service};

/// An `ApiError` on its way out as a response.
#[derive(Debug)]
pub struct Failure(pub ApiError);

impl From<ApiError> for Failure {
    fn from(err: ApiError) -> Self {
        Self(err)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, self.0.body_bytes()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some((name, value)) = self.0.headers() {
            headers.insert(name, HeaderValue::from_static(value));
        }
        response
    }
}

/// The caller, proven by `authorization: Bearer <jwt>`.
#[derive(Debug, Clone, Copy)]
pub struct Auth(pub AuthUser);

impl FromRequestParts<Service> for Auth {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, service: &Service) -> Result<Self, Failure> {
        let header = parts.headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
        Ok(Self(service.authenticate(header)?))
    }
}

/// A JSON request body: `content-type` checked (415), size bounded (413), parsed (400).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Failure;

    async fn from_request(req: Request, _: &S) -> Result<Self, Failure> {
        shared::require_json_content_type(req.headers().get(header::CONTENT_TYPE).map(HeaderValue::as_bytes))?;
        shared::declared_body_length(req.headers().get(header::CONTENT_LENGTH).map(HeaderValue::as_bytes))?;
        let body: Body = req.into_body();
        // Over the bound is a 413 (chunked uploads carry no content-length to check up front);
        // any other failure is the body itself (truncated, malformed chunks): a 400.
        let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|e| {
            let over_limit = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if over_limit { ApiError::PayloadTooLarge } else { shared::unreadable_body(&e) }
        })?;
        Ok(Self(shared::parse_json(&bytes)?))
    }
}

/// The `{id}` of `/api/v1/tasks/{id}`, parsed as a UUID (400 when it is not one).
#[derive(Debug, Clone, Copy)]
pub struct TaskId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for TaskId {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Failure> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::BadRequest("task id must be a UUID".into()))?;
        let raw = params.iter().find(|(name, _)| *name == "id").map_or("", |(_, value)| value);
        Ok(Self(shared::parse_task_id(raw)?))
    }
}

/// The list query string, parsed and validated.
#[derive(Debug, Clone, Copy)]
pub struct ListParams(pub ListQuery);

impl<S: Send + Sync> FromRequestParts<S> for ListParams {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Failure> {
        Ok(Self(shared::parse_list_query(parts.uri.query())?))
    }
}
