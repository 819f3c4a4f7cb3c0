//! The API's OpenAPI 3.1 document, built once from the shared types and served byte-for-byte
//! identically by both servers at `GET /openapi.json`.
//!
//! The functions below exist only to carry `#[utoipa::path]` descriptions: the real handlers
//! live in two frameworks, and the contract belongs to neither.
#![allow(dead_code)]

use std::sync::LazyLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorDetail};
use crate::model::{
    HealthResponse, LoginRequest, MessageResponse, NewTask, RegisterRequest, Task, TaskPatch, TaskPriority, TaskStatus,
    TokenResponse, User,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "taskbench reference API", version = "1.0.0",
         description = "The task-management API that taskbench runs on every framework it compares."),
    paths(health, metrics, openapi_json, plaintext, json, register, login, me, create_task, list_tasks,
          get_task, update_task, delete_task),
    components(schemas(ErrorBody, ErrorDetail, HealthResponse, MessageResponse, User, Task, TaskStatus,
                       TaskPriority, RegisterRequest, LoginRequest, TokenResponse, NewTask, TaskPatch)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

static DOCUMENT: LazyLock<Vec<u8>> = LazyLock::new(|| {
    ApiDoc::openapi().to_pretty_json().map(String::into_bytes).unwrap_or_else(|e| {
        tracing::error!(error = %e, "serializing the OpenAPI document failed");
        Vec::new()
    })
});

/// The serialized document (built on first use, then shared).
pub fn document() -> &'static [u8] {
    &DOCUMENT
}

#[utoipa::path(get, path = "/health", tag = "ops",
    responses((status = 200, body = HealthResponse), (status = 503, body = HealthResponse)))]
fn health() {}

#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String)))]
fn metrics() {}

#[utoipa::path(get, path = "/openapi.json", tag = "ops",
    responses((status = 200, description = "This document", body = Object)))]
fn openapi_json() {}

#[utoipa::path(get, path = "/bench/plaintext", tag = "bench",
    responses((status = 200, description = "`Hello, World!`", content_type = "text/plain", body = String)))]
fn plaintext() {}

#[utoipa::path(get, path = "/bench/json", tag = "bench", responses((status = 200, body = MessageResponse)))]
fn json() {}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = User), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
fn register() {}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 503, body = ErrorBody)))]
fn login() {}

#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
fn me() {}

#[utoipa::path(post, path = "/api/v1/tasks", tag = "tasks", security(("bearer" = [])), request_body = NewTask,
    responses((status = 201, body = Task, headers(("location" = String, description = "URL of the new task"))),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
fn create_task() {}

#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks", security(("bearer" = [])),
    params(("status" = Option<TaskStatus>, Query, description = "Only tasks in this status"),
           ("priority" = Option<TaskPriority>, Query, description = "Only tasks of this priority"),
           ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Page size, default 50"),
           ("offset" = Option<i64>, Query, minimum = 0, description = "Tasks to skip, default 0")),
    responses((status = 200, body = Vec<Task>, description = "The caller's tasks, newest first"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
fn list_tasks() {}

#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "tasks", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Task), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
fn get_task() {}

#[utoipa::path(patch, path = "/api/v1/tasks/{id}", tag = "tasks", security(("bearer" = [])), request_body = TaskPatch,
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Task), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
fn update_task() {}

#[utoipa::path(delete, path = "/api/v1/tasks/{id}", tag = "tasks", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
fn delete_task() {}
