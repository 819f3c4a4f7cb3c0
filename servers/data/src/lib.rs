//! taskbench-data: everything of the reference service that is not HTTP plumbing — models, SQL,
//! validation, auth, the error type, shared HTTP decisions, metrics, and the OpenAPI document —
//! so the Axum and Actix-web servers cannot drift apart. Only what serves requests: provisioning
//! is `taskbench-provision`, the process lifecycle `taskbench-lifecycle`.

pub mod auth;
pub mod config;
pub mod error;
pub mod http;
pub mod metrics;
pub mod model;
pub mod openapi;
pub mod routes;
pub mod service;
pub mod time;
pub mod validate;

pub use config::{ServerArgs, ServiceConfig};
pub use error::{ApiError, Result};
pub use service::{MIGRATOR, Service, StartupError};
