//! HTTP plumbing decisions both servers must make identically: the route table, input parsing,
//! request ids, CORS and gzip. The frameworks only move bytes; what the bytes are is decided here.

use std::io::Write as _;

use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::{ApiError, Result};
use crate::model::{ListQuery, TaskPriority, TaskStatus};
pub use crate::routes::{Method, Operation, ROUTES, Route};

/// Largest accepted request body; anything larger is a 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Responses at least this large are gzipped when the client accepts gzip.
pub const GZIP_MIN_BYTES: usize = 1024;
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The 405 for a known route pattern (as written in [`ROUTES`]) called with the wrong method.
pub fn method_not_allowed(route: &str) -> ApiError {
    let allow = ROUTES.iter().find(|r| r.path == route).map_or("", Route::allow);
    ApiError::MethodNotAllowed { allow }
}

pub fn route_not_found() -> ApiError {
    ApiError::NotFound("no such route")
}

/// Checks a JSON endpoint's `content-type` (parameters such as `charset` are allowed).
pub fn require_json_content_type(content_type: Option<&[u8]>) -> Result<()> {
    let essence =
        content_type.and_then(|ct| std::str::from_utf8(ct).ok()).and_then(|ct| ct.split(';').next()).map(str::trim);
    match essence {
        Some(ct) if ct.eq_ignore_ascii_case("application/json") => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType),
    }
}

/// A request body that could not be read (the client closed the connection before sending the
/// length it declared, or sent a malformed chunked encoding): a 400 with the same message on both
/// servers; the framework's own wording of the cause goes to the log only.
pub fn unreadable_body(cause: &dyn std::fmt::Display) -> ApiError {
    tracing::debug!(%cause, "reading the request body failed");
    ApiError::BadRequest(
        "the request body could not be read: it ended before its declared length or was malformed".into(),
    )
}

/// The body length a request declares (`content-length`), refused up front when over the limit.
pub fn declared_body_length(content_length: Option<&[u8]>) -> Result<Option<usize>> {
    let declared =
        content_length.and_then(|v| std::str::from_utf8(v).ok()).and_then(|v| v.trim().parse::<usize>().ok());
    match declared {
        Some(len) if len > MAX_BODY_BYTES => Err(ApiError::PayloadTooLarge),
        other => Ok(other),
    }
}

/// Parses a request body that has passed the content-type and size checks.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

/// Parses the `{id}` of `/api/v1/tasks/{id}`.
pub fn parse_task_id(raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::BadRequest(format!("task id must be a UUID, found `{raw}`")))
}

/// Parses and validates the list query string (without the `?`). Empty values (`status=`) mean
/// "not given", as HTML forms send them; unknown parameters are ignored.
pub fn parse_list_query(raw: Option<&str>) -> Result<ListQuery> {
    let mut query = ListQuery::default();
    for (key, value) in form_pairs(raw.unwrap_or(""))? {
        if value.is_empty() {
            continue;
        }
        match key.as_str() {
            "status" => query.status = Some(enum_param::<TaskStatus>("status", &value)?),
            "priority" => query.priority = Some(enum_param::<TaskPriority>("priority", &value)?),
            "limit" => query.limit = int_param("limit", &value)?,
            "offset" => query.offset = int_param("offset", &value)?,
            _ => {}
        }
    }
    crate::validate::list_query(&query)?;
    Ok(query)
}

fn form_pairs(raw: &str) -> Result<Vec<(String, String)>> {
    serde_urlencoded::from_str(raw).map_err(|e| ApiError::BadRequest(format!("invalid query string: {e}")))
}

fn enum_param<T: DeserializeOwned>(name: &str, value: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(value.to_owned()))
        .map_err(|e| ApiError::BadRequest(format!("query parameter `{name}`: {e}")))
}

fn int_param(name: &str, value: &str) -> Result<i64> {
    value
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("query parameter `{name}` must be an integer, found `{value}`")))
}

/// The request id to send back: the client's when it is sane, else a new UUID.
pub fn request_id(incoming: Option<&[u8]>) -> String {
    incoming
        .filter(|id| !id.is_empty() && id.len() <= 128)
        .and_then(|id| std::str::from_utf8(id).ok())
        .filter(|id| id.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| Uuid::new_v4().to_string(), str::to_owned)
}

/// CORS policy: one allowed origin (or `*`), answered the same way by both servers.
#[derive(Debug, Clone)]
pub struct Cors {
    allowed_origin: String,
}

/// A response header to add: (name, value).
pub type Header = (&'static str, String);

impl Cors {
    pub fn new(allowed_origin: impl Into<String>) -> Self {
        Self { allowed_origin: allowed_origin.into() }
    }

    /// `Some(headers)` when the request is a CORS preflight, which is answered 204 with them
    /// before routing; `None` for every other request.
    pub fn preflight(&self, method: &str, origin: Option<&[u8]>, request_method: Option<&[u8]>) -> Option<Vec<Header>> {
        if method != "OPTIONS" || origin.is_none() || request_method.is_none() {
            return None;
        }
        let mut headers = self.simple(origin);
        headers.push(("access-control-allow-methods", "GET, HEAD, POST, PATCH, DELETE, OPTIONS".into()));
        headers.push(("access-control-allow-headers", "authorization, content-type, x-request-id".into()));
        headers.push(("access-control-max-age", "86400".into()));
        Some(headers)
    }

    /// Headers for an ordinary response to a request that carried `origin`.
    pub fn simple(&self, origin: Option<&[u8]>) -> Vec<Header> {
        let Some(origin) = origin else { return Vec::new() };
        let mut headers = Vec::with_capacity(4);
        if self.allowed_origin == "*" {
            headers.push(("access-control-allow-origin", "*".into()));
        } else {
            if origin == self.allowed_origin.as_bytes() {
                headers.push(("access-control-allow-origin", self.allowed_origin.clone()));
            }
            headers.push(("vary", "origin".into()));
        }
        headers.push(("access-control-expose-headers", "x-request-id, location".into()));
        headers
    }
}

/// What the middleware envelope reads from a request, read the same way by both servers.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: String,
    origin: Option<Vec<u8>>,
    pub accepts_gzip: bool,
    /// `Some(headers)` when the request is a CORS preflight, answered 204 with them before routing.
    pub preflight: Option<Vec<Header>>,
}

impl RequestMeta {
    /// Reads a request through `header` (a lookup by lower-case header name).
    pub fn read<'a>(cors: &Cors, method: &str, header: impl Fn(&'static str) -> Option<&'a [u8]>) -> Self {
        let origin = header("origin");
        Self {
            request_id: request_id(header(REQUEST_ID_HEADER)),
            accepts_gzip: accepts_gzip(header("accept-encoding")),
            preflight: cors.preflight(method, origin, header("access-control-request-method")),
            origin: origin.map(<[u8]>::to_vec),
        }
    }

    /// Headers every response carries: the request id, and CORS headers (a preflight's are
    /// already in [`RequestMeta::preflight`]).
    pub fn response_headers(&self, cors: &Cors) -> Vec<Header> {
        let mut headers = if self.preflight.is_some() { Vec::new() } else { cors.simple(self.origin.as_deref()) };
        headers.push((REQUEST_ID_HEADER, self.request_id.clone()));
        headers
    }
}

/// True when `accept-encoding` admits gzip (`q=0` refuses it).
pub fn accepts_gzip(accept_encoding: Option<&[u8]>) -> bool {
    let Some(value) = accept_encoding.and_then(|v| std::str::from_utf8(v).ok()) else { return false };
    value.split(',').any(|coding| {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or("");
        let refused = parts.any(|p| p.replace(' ', "").eq_ignore_ascii_case("q=0"));
        (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
    })
}

/// The gzipped body when the response should be compressed: client accepts gzip, body is large
/// enough to gain from it, and not already encoded.
pub fn maybe_gzip(accepts_gzip: bool, already_encoded: bool, body: &[u8]) -> Option<Vec<u8>> {
    if already_encoded || body.len() < GZIP_MIN_BYTES || !accepts_gzip {
        return None;
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
    encoder.write_all(body).ok()?;
    encoder.finish().ok()
}

pub const PLAINTEXT_BODY: &str = "Hello, World!";

/// Spins for `cost` on the calling thread: the `--inject-cpu-us` calibration knob, called by both
/// servers' envelopes on every request. It spins on the monotonic clock (read through the vDSO,
/// tens of nanoseconds a read, so sub-microsecond costs are honoured); on a server pinned to its
/// own core, as `taskbench run` pins it, that is CPU time. A no-op for zero.
pub fn burn_cpu(cost: std::time::Duration) {
    if cost.is_zero() {
        return;
    }
    let start = std::time::Instant::now();
    while start.elapsed() < cost {
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_query_parses_defaults_filters_and_errors() {
        assert_eq!(parse_list_query(None).expect("empty"), ListQuery::default());
        let q = parse_list_query(Some("status=in_progress&priority=&limit=5&offset=10&x=1")).expect("ok");
        assert_eq!((q.status, q.priority, q.limit, q.offset), (Some(TaskStatus::InProgress), None, 5, 10));
        assert_eq!(parse_list_query(Some("limit=abc")).expect_err("400").status(), 400);
        assert_eq!(parse_list_query(Some("status=urgent")).expect_err("400").status(), 400);
        assert_eq!(parse_list_query(Some("limit=101")).expect_err("422").status(), 422);
    }

    #[test]
    fn content_type_and_gzip_negotiation() {
        assert!(require_json_content_type(Some(b"application/json; charset=utf-8")).is_ok());
        assert!(require_json_content_type(Some(b"text/plain")).is_err());
        assert!(require_json_content_type(None).is_err());
        assert!(accepts_gzip(Some(b"br, gzip;q=0.8")));
        assert!(!accepts_gzip(Some(b"gzip;q=0")));
        assert!(maybe_gzip(true, false, &[b'a'; 10]).is_none());
        assert!(maybe_gzip(false, false, &[b'a'; 4096]).is_none());
        let zipped = maybe_gzip(true, false, &[b'a'; 4096]).expect("compressed");
        assert!(zipped.len() < 4096);
    }

    #[test]
    fn request_ids_are_echoed_only_when_sane() {
        assert_eq!(request_id(Some(b"abc-123")), "abc-123");
        assert_ne!(request_id(Some(b"has space")), "has space");
        assert_eq!(request_id(None).len(), 36);
    }
}
