//! taskbench-data: everything of the reference service that is not HTTP plumbing — models, SQL,
//! validation, auth, the error type, shared HTTP decisions, metrics, the OpenAPI document and
//! Postgres provisioning — so the Axum and Actix-web servers cannot drift apart.

pub mod auth;
pub mod config;
pub mod error;
pub mod http;
pub mod metrics;
pub mod model;
pub mod openapi;
pub mod provision;
pub mod service;
pub mod telemetry;
pub mod time;
pub mod validate;

pub use config::{ServerArgs, ServiceConfig};
pub use error::{ApiError, Result};
pub use service::{MIGRATOR, Service, StartupError};
