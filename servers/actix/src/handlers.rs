//! Handlers: translate HTTP to a `Service` call and its result back. Nothing else.

use actix_web::HttpResponse;
use actix_web::http::header;
use actix_web::web::Data;
use taskbench_data::model::{HealthResponse, LoginRequest, MessageResponse, NewTask, RegisterRequest, TaskPatch};
use taskbench_data::{Service, http as shared, metrics, openapi};

use crate::extract::{ApiJson, Auth, Failure, ListParams, TaskId};

type ApiResult = Result<HttpResponse, Failure>;

pub(crate) async fn health(service: Data<Service>) -> HttpResponse {
    if service.healthy().await {
        HttpResponse::Ok().json(HealthResponse { status: "ok" })
    } else {
        HttpResponse::ServiceUnavailable().json(HealthResponse { status: "unavailable" })
    }
}

pub(crate) async fn metrics(service: Data<Service>) -> HttpResponse {
    HttpResponse::Ok().insert_header((header::CONTENT_TYPE, metrics::CONTENT_TYPE)).body(service.metrics().render())
}

pub(crate) async fn openapi() -> HttpResponse {
    HttpResponse::Ok().insert_header((header::CONTENT_TYPE, "application/json")).body(openapi::document())
}

pub(crate) async fn plaintext() -> HttpResponse {
    HttpResponse::Ok().insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8")).body(shared::PLAINTEXT_BODY)
}

pub(crate) async fn json() -> HttpResponse {
    HttpResponse::Ok().json(MessageResponse { message: shared::PLAINTEXT_BODY })
}

pub(crate) async fn register(service: Data<Service>, ApiJson(req): ApiJson<RegisterRequest>) -> ApiResult {
    Ok(HttpResponse::Created().json(service.register(req).await?))
}

pub(crate) async fn login(service: Data<Service>, ApiJson(req): ApiJson<LoginRequest>) -> ApiResult {
    Ok(HttpResponse::Ok().json(service.login(req).await?))
}

pub(crate) async fn me(service: Data<Service>, Auth(user): Auth) -> ApiResult {
    Ok(HttpResponse::Ok().json(service.me(user).await?))
}

pub(crate) async fn create_task(
    service: Data<Service>,
    Auth(user): Auth,
    ApiJson(task): ApiJson<NewTask>,
) -> ApiResult {
    let task = service.create_task(user, task).await?;
    Ok(HttpResponse::Created().insert_header((header::LOCATION, task.location())).json(task))
}

pub(crate) async fn list_tasks(service: Data<Service>, Auth(user): Auth, ListParams(query): ListParams) -> ApiResult {
    Ok(HttpResponse::Ok().json(service.list_tasks(user, query).await?))
}

pub(crate) async fn get_task(service: Data<Service>, Auth(user): Auth, TaskId(id): TaskId) -> ApiResult {
    Ok(HttpResponse::Ok().json(service.get_task(user, id).await?))
}

pub(crate) async fn update_task(
    service: Data<Service>,
    Auth(user): Auth,
    TaskId(id): TaskId,
    ApiJson(patch): ApiJson<TaskPatch>,
) -> ApiResult {
    Ok(HttpResponse::Ok().json(service.update_task(user, id, patch).await?))
}

pub(crate) async fn delete_task(service: Data<Service>, Auth(user): Auth, TaskId(id): TaskId) -> ApiResult {
    service.delete_task(user, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub(crate) async fn not_found() -> Failure {
    shared::route_not_found().into()
}
