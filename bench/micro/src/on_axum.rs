//! The hot paths on Axum: its extractors called through `FromRequest`/`FromRequestParts`, whole
//! requests through the router with `tower::ServiceExt::oneshot`, and its JSON responders.

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest as _, FromRequestParts as _, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use taskbench_axum::{ApiJson, Auth, Failure, ListParams, TaskId};
use taskbench_data::auth::AuthUser;
use taskbench_data::model::{ListQuery, NewTask, Task};
use taskbench_data::{ApiError, Service};
use tokio::runtime::Runtime;
use tower::ServiceExt as _;

use crate::fixture::TASK_ROUTE;
use crate::{Reply, complete};

/// A router and the current-thread runtime it is called on, as one Axum server worker would be.
pub struct AxumApp {
    runtime: Runtime,
    router: Router,
}

impl std::fmt::Debug for AxumApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AxumApp")
    }
}

impl AxumApp {
    /// The whole reference application (envelope, routing, handlers).
    pub fn reference(service: Service) -> Self {
        Self::new(taskbench_axum::app(service))
    }

    /// One route, `GET /api/v1/tasks/{id}`, whose handler takes the server's `TaskId` and answers 204.
    /// Axum's path extraction reads the parameters the router stored in the request when it
    /// matched (a private extension), so the path extractor can only be exercised faithfully
    /// through a router; this is the smallest one.
    pub fn task_id_route() -> Self {
        let handler = |TaskId(id): TaskId| async move {
            std::hint::black_box(id);
            StatusCode::NO_CONTENT
        };
        Self::new(Router::new().route(TASK_ROUTE, get(handler)))
    }

    fn new(router: Router) -> Self {
        // Time is enabled because the envelope bounds every request with a timeout.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime starts");
        Self { runtime, router }
    }

    /// Sends `request` once and panics unless it is answered `status`: a fixture whose request
    /// went somewhere else (a 401, a 503 from the absent database) must fail loudly rather than
    /// measure the wrong path. The call also warms the app up.
    pub fn expect(&self, request: Request, status: u16) -> &Self {
        let reply = self.call(request);
        assert_eq!(reply.status, status, "unexpected answer: {}", String::from_utf8_lossy(&reply.body));
        self
    }

    /// One request through the router, without a socket: status and collected body.
    pub fn call(&self, request: Request) -> Reply {
        self.runtime.block_on(async {
            let response = self.router.clone().oneshot(request).await.unwrap_or_else(|never| match never {});
            let status = response.status().as_u16();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("an in-memory body");
            Reply { status, body }
        })
    }
}

/// `GET uri`.
pub fn get_request(uri: &str) -> Request {
    Request::builder().uri(uri).body(Body::empty()).expect("a valid request")
}

/// `POST uri` with a JSON body, and a bearer token when given.
pub fn post_json_request(uri: &str, body: &'static str, bearer: Option<&str>) -> Request {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len());
    if let Some(bearer) = bearer {
        builder = builder.header(header::AUTHORIZATION, bearer);
    }
    builder.body(Body::from(body)).expect("a valid request")
}

/// The head of `GET uri`, with a bearer token when given, for the extractors that read only that.
pub fn request_parts(uri: &str, bearer: Option<&str>) -> Parts {
    let mut builder = Request::builder().uri(uri);
    if let Some(bearer) = bearer {
        builder = builder.header(header::AUTHORIZATION, bearer);
    }
    builder.body(()).expect("a valid request").into_parts().0
}

/// The server's JSON body extractor on a create-task request.
pub fn extract_json_body(request: Request) -> NewTask {
    let ApiJson(task) = complete(ApiJson::<NewTask>::from_request(request, &())).expect("the fixture body is accepted");
    task
}

/// The server's list-query extractor.
pub fn extract_list_query(parts: &mut Parts) -> ListQuery {
    let ListParams(query) = complete(ListParams::from_request_parts(parts, &())).expect("the fixture query is valid");
    query
}

/// The server's bearer-token extractor (JWT verification included).
pub fn extract_auth(parts: &mut Parts, service: &Service) -> AuthUser {
    let Auth(user) = complete(Auth::from_request_parts(parts, service)).expect("the fixture token is valid");
    user
}

/// A task list through Axum's `Json` responder, as the list handler answers.
pub fn tasks_response(tasks: &[Task]) -> Response {
    axum::Json(tasks).into_response()
}

/// An error through the server's one error mapping.
pub fn error_response(err: ApiError) -> Response {
    Failure(err).into_response()
}
