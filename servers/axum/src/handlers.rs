//! Handlers: translate HTTP to a `Service` call and its result back. Nothing else.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use taskbench_data::model::{HealthResponse, LoginRequest, MessageResponse, NewTask, RegisterRequest, TaskPatch};
use taskbench_data::{Service, http as shared, metrics, openapi};

use crate::extract::{ApiJson, Auth, Failure, ListParams, TaskId};

type ApiResult<T> = Result<T, Failure>;

pub(crate) async fn health(State(service): State<Service>) -> Response {
    if service.healthy().await {
        Json(HealthResponse { status: "ok" }).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(HealthResponse { status: "unavailable" })).into_response()
    }
}

pub(crate) async fn metrics(State(service): State<Service>) -> Response {
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], service.metrics().render()).into_response()
}

pub(crate) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], openapi::document()).into_response()
}

pub(crate) async fn plaintext() -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], shared::PLAINTEXT_BODY).into_response()
}

pub(crate) async fn json() -> Json<MessageResponse> {
    Json(MessageResponse { message: shared::PLAINTEXT_BODY })
}

pub(crate) async fn register(
    State(service): State<Service>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<Response> {
    Ok((StatusCode::CREATED, Json(service.register(req).await?)).into_response())
}

pub(crate) async fn login(State(service): State<Service>, ApiJson(req): ApiJson<LoginRequest>) -> ApiResult<Response> {
    Ok(Json(service.login(req).await?).into_response())
}

pub(crate) async fn me(State(service): State<Service>, Auth(user): Auth) -> ApiResult<Response> {
    Ok(Json(service.me(user).await?).into_response())
}

pub(crate) async fn create_task(
    State(service): State<Service>,
    Auth(user): Auth,
    ApiJson(task): ApiJson<NewTask>,
) -> ApiResult<Response> {
    let task = service.create_task(user, task).await?;
    Ok((StatusCode::CREATED, [(header::LOCATION, task.location())], Json(task)).into_response())
}

pub(crate) async fn list_tasks(
    State(service): State<Service>,
    Auth(user): Auth,
    ListParams(query): ListParams,
) -> ApiResult<Response> {
    Ok(Json(service.list_tasks(user, query).await?).into_response())
}

pub(crate) async fn get_task(
    State(service): State<Service>,
    Auth(user): Auth,
    TaskId(id): TaskId,
) -> ApiResult<Response> {
    Ok(Json(service.get_task(user, id).await?).into_response())
}

pub(crate) async fn update_task(
    State(service): State<Service>,
    Auth(user): Auth,
    TaskId(id): TaskId,
    ApiJson(patch): ApiJson<TaskPatch>,
) -> ApiResult<Response> {
    Ok(Json(service.update_task(user, id, patch).await?).into_response())
}

pub(crate) async fn delete_task(
    State(service): State<Service>,
    Auth(user): Auth,
    TaskId(id): TaskId,
) -> ApiResult<StatusCode> {
    service.delete_task(user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn not_found() -> Failure {
    shared::route_not_found().into()
}
