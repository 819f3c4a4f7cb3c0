//! The API's OpenAPI 3.1 document, built once from the shared types and served byte-for-byte
//! identically by both servers at `GET /openapi.json`.
//!
//! The functions below exist only to carry `#[utoipa::path]` descriptions: the real handlers
//! live in two frameworks, and the contract belongs to neither.
#![allow(dead_code)]

use std::sync::LazyLock;

use serde_json::{Value, json};

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorDetail};
use crate::model::{
    HealthResponse, LoginRequest, MessageResponse, NewTask, RegisterRequest, Task, TaskPatch, TaskPriority, TaskStatus,
    TokenResponse, User,
};
use crate::validate;

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
    let built = serde_json::to_value(ApiDoc::openapi()).and_then(|mut doc| {
        as_strict_as_the_servers(&mut doc);
        serde_json::to_vec_pretty(&doc)
    });
    built.unwrap_or_else(|e| {
        tracing::error!(error = %e, "serializing the OpenAPI document failed");
        Vec::new()
    })
});

/// What the derive cannot say, added to the generated document so that it states every rule the
/// servers enforce (a client generated from it, or schemathesis, sends nothing the servers
/// refuse and expects nothing they do not send):
/// - "1 to N characters once trimmed" as patterns built from the check's own whitespace, and
///   no U+0000 in stored text;
/// - an empty query value (`?status=`, `?limit=`) means "not given" (README's decisions);
/// - the headers that come with errors: `retry-after` on every 503 an `ApiError` makes (not
///   `/health`'s, which is its own body), `www-authenticate` on every 401.
fn as_strict_as_the_servers(doc: &mut Value) {
    let schemas = &mut doc["components"]["schemas"];
    for (schema, field, max) in
        [("RegisterRequest", "name", 100), ("NewTask", "title", 200), ("TaskPatch", "title", 200)]
    {
        schemas[schema]["properties"][field]["pattern"] = json!(validate::trimmed_length_pattern(max));
    }
    for schema in ["NewTask", "TaskPatch"] {
        schemas[schema]["properties"]["description"]["pattern"] = json!(validate::NO_NUL_PATTERN);
    }
    let Some(paths) = doc["paths"].as_object_mut() else { return };
    for (path, item) in paths.iter_mut() {
        let Some(operations) = item.as_object_mut() else { continue };
        for operation in operations.values_mut() {
            let parameters = operation.get_mut("parameters").and_then(Value::as_array_mut);
            for parameter in parameters.into_iter().flatten() {
                if parameter["in"] == "query" {
                    let named = parameter["schema"].take();
                    parameter["schema"] = json!({"anyOf": [named, {"const": ""}]});
                    parameter["description"] = json!(format!(
                        "{}; empty means not given",
                        parameter["description"].as_str().unwrap_or_default()
                    ));
                }
            }
            let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else { continue };
            if path != "/health"
                && let Some(unavailable) = responses.get_mut("503")
            {
                unavailable["headers"]["retry-after"] = json!({
                    "description": "Seconds to wait before trying again: the server kept a bound (database pool, \
                                    hashing slots, handling time)",
                    "required": true,
                    "schema": {"type": "integer", "minimum": 1},
                });
            }
            if let Some(unauthorized) = responses.get_mut("401") {
                unauthorized["headers"]["www-authenticate"] =
                    json!({"required": true, "schema": {"type": "string", "const": "Bearer"}});
            }
        }
    }
}

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
