//! The one error type of the API: every failure a handler can meet, its status, code and body.
//!
//! Both servers map this type onto a response in exactly one place each, so the bytes of an error
//! response cannot differ between frameworks.

use std::collections::BTreeMap;

use serde::Serialize;

/// `Result` with [`ApiError`] as the default error, so signatures stay short.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Field name -> rule it broke. A `BTreeMap` so the order (and the message built from it) is
/// stable across runs and frameworks.
pub type FieldErrors = BTreeMap<&'static str, String>;

/// Every error the API answers with. The variant decides status, code and extra headers.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("{0}")]
    Conflict(&'static str),
    #[error("request body is larger than {} bytes", crate::http::MAX_BODY_BYTES)]
    PayloadTooLarge,
    #[error("expected `content-type: application/json`")]
    UnsupportedMediaType,
    #[error("{}", validation_message(.0))]
    Validation(FieldErrors),
    #[error("{0}")]
    Unavailable(&'static str),
    /// The cause is logged, never sent: a 500 must not leak internals.
    #[error("internal server error")]
    Internal(String),
}

fn validation_message(fields: &FieldErrors) -> String {
    fields.iter().map(|(field, rule)| format!("{field}: {rule}")).collect::<Vec<_>>().join("; ")
}

/// The JSON body of every error response: `{"error": {...}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `validation_failed`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// Only for `validation_failed`: field name -> the rule it broke.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub fields: Option<FieldErrors>,
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::Unauthorized(_) => 401,
            Self::NotFound(_) => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::Conflict(_) => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::Validation(_) => 422,
            Self::Unavailable(_) => 503,
            Self::Internal(_) => 500,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized(_) => "unauthorized",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Validation(_) => "validation_failed",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// Headers the contract requires alongside some errors.
    pub fn headers(&self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::Unauthorized(_) => Some(("www-authenticate", "Bearer")),
            Self::MethodNotAllowed { allow } => Some(("allow", allow)),
            // The unread rest of an oversize body is still on the wire; the connection cannot be
            // reused, and saying so keeps clients from sending the next request into it.
            Self::PayloadTooLarge => Some(("connection", "close")),
            // Every 503 is a bound the server chose to keep (pool, hashing slots, handling
            // time): a client may come back, and a second is long enough for any of them.
            Self::Unavailable(_) => Some(("retry-after", "1")),
            _ => None,
        }
    }

    pub fn body(&self) -> ErrorBody {
        if let Self::Internal(cause) = self {
            tracing::error!(%cause, "internal error");
        }
        ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
                fields: match self {
                    Self::Validation(fields) => Some(fields.clone()),
                    _ => None,
                },
            },
        }
    }

    /// The serialized body, ready to send with `content-type: application/json`.
    pub fn body_bytes(&self) -> Vec<u8> {
        // Serializing a struct of strings cannot fail; fall back to a fixed body rather than panic.
        serde_json::to_vec(&self.body())
            .unwrap_or_else(|_| br#"{"error":{"code":"internal","message":"internal server error"}}"#.to_vec())
    }

    pub fn validation(field: &'static str, rule: impl Into<String>) -> Self {
        Self::Validation(FieldErrors::from([(field, rule.into())]))
    }
}

impl From<sqlx::Error> for ApiError {
    /// Why a conversion and not `map_err` at each call: every query has the same failure modes,
    /// and "database down" must be a fast 503 everywhere, never a 500 or a hang.
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut => Self::Unavailable("database pool exhausted: acquire timed out"),
            sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                tracing::warn!(error = %err, "database unreachable");
                Self::Unavailable("database unavailable")
            }
            other => Self::Internal(other.to_string()),
        }
    }
}
