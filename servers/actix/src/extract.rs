//! Actix-web extractors for the API's inputs, and the one mapping of `ApiError` onto a response.
//! Each extractor hands the raw input to `taskbench-data`, so rejections are the shared ones,
//! never Actix's defaults.

use std::fmt;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError};
use bytes::BytesMut;
use futures_util::StreamExt as _;
use futures_util::future::{LocalBoxFuture, Ready, ready};
use serde::de::DeserializeOwned;
use taskbench_data::auth::AuthUser;
use taskbench_data::http::{self as shared, MAX_BODY_BYTES};
use taskbench_data::model::{ListQuery, Uuid};
use taskbench_data::{ApiError, Service};

/// An `ApiError` on its way out as a response.
#[derive(Debug)]
pub struct Failure(pub ApiError);

impl From<ApiError> for Failure {
    fn from(err: ApiError) -> Self {
        Self(err)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for Failure {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, "application/json"));
        match self.0.headers() {
            // Actix manages `connection` itself; ask it to close rather than set the header.
            Some(("connection", "close")) => {
                response.force_close();
            }
            Some(extra) => {
                response.insert_header(extra);
            }
            None => {}
        }
        response.body(self.0.body_bytes())
    }
}

impl actix_web::Responder for Failure {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        self.error_response()
    }
}

fn service(req: &HttpRequest) -> Result<&Service, Failure> {
    req.app_data::<actix_web::web::Data<Service>>()
        .map(|data| data.get_ref())
        .ok_or_else(|| ApiError::Internal("app data missing: Service".into()).into())
}

/// The caller, proven by `authorization: Bearer <jwt>`.
#[derive(Debug, Clone, Copy)]
pub struct Auth(pub AuthUser);

impl FromRequest for Auth {
    type Error = Failure;
    type Future = Ready<Result<Self, Failure>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let header = req.headers().get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
        ready(service(req).and_then(|s| Ok(Self(s.authenticate(header)?))))
    }
}

/// A JSON request body: `content-type` checked (415), size bounded (413), parsed (400).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = Failure;
    type Future = LocalBoxFuture<'static, Result<Self, Failure>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type =
            shared::require_json_content_type(req.headers().get(header::CONTENT_TYPE).map(HeaderValue::as_bytes));
        let declared =
            shared::declared_body_length(req.headers().get(header::CONTENT_LENGTH).map(HeaderValue::as_bytes));
        let mut payload = payload.take();
        Box::pin(async move {
            content_type?;
            let declared = declared?;
            // Read by hand rather than through `web::Bytes`/`PayloadConfig`: their limit error
            // is Actix's own response, and the contract wants the shared 413.
            let mut body = BytesMut::with_capacity(declared.unwrap_or(1024));
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| shared::unreadable_body(&e))?;
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(ApiError::PayloadTooLarge.into());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Self(shared::parse_json(&body)?))
        })
    }
}

/// The `{id}` of `/api/v1/tasks/{id}`, parsed as a UUID (400 when it is not one).
#[derive(Debug, Clone, Copy)]
pub struct TaskId(pub Uuid);

impl FromRequest for TaskId {
    type Error = Failure;
    type Future = Ready<Result<Self, Failure>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let raw = req.match_info().get("id").unwrap_or("");
        ready(shared::parse_task_id(raw).map(Self).map_err(Failure))
    }
}

/// The list query string, parsed and validated.
#[derive(Debug, Clone, Copy)]
pub struct ListParams(pub ListQuery);

impl FromRequest for ListParams {
    type Error = Failure;
    type Future = Ready<Result<Self, Failure>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let query = Some(req.query_string()).filter(|q| !q.is_empty());
        ready(shared::parse_list_query(query).map(Self).map_err(Failure))
    }
}
