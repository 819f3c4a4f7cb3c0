//! The hot paths on Actix-web: its extractors called through `FromRequest` on requests from
//! `actix_web::test::TestRequest`, whole requests through its test service, and its JSON
//! responders.

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, Service as _, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::rt::System;
use actix_web::test::{self, TestRequest};
use actix_web::{App, FromRequest as _, HttpRequest, HttpResponse, web};
use taskbench_actix::{ApiJson, Auth, Failure, ListParams, TaskId};
use taskbench_data::auth::AuthUser;
use taskbench_data::model::{ListQuery, NewTask, Task};
use taskbench_data::{ApiError, Service};

use crate::fixture::TASK_ROUTE;
use crate::{Reply, complete};

/// An initialised app and the Actix system it runs on, as one Actix server worker would be.
pub struct ActixApp {
    /// The app's service type cannot be named (`init_service` returns `impl Service`), so the
    /// call is kept as a closure; that costs an indirect call, not an allocation per request.
    call: Box<dyn Fn(actix_http::Request) -> Reply>,
}

impl std::fmt::Debug for ActixApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ActixApp")
    }
}

impl ActixApp {
    /// The whole reference application (envelope, routing, handlers).
    pub fn reference(service: Service) -> Self {
        Self::new(taskbench_actix::app(service))
    }

    /// One route, `GET /api/v1/tasks/{id}`, whose handler takes the server's `TaskId` and answers
    /// 204: the same shape as the Axum one, so both measure routing one path plus the extractor.
    pub fn task_id_route() -> Self {
        let handler = |TaskId(id): TaskId| async move {
            std::hint::black_box(id);
            HttpResponse::NoContent().finish()
        };
        Self::new(App::new().route(TASK_ROUTE, web::get().to(handler)))
    }

    fn new<T, B>(app: App<T>) -> Self
    where
        T: ServiceFactory<
                ServiceRequest,
                Config = (),
                Response = ServiceResponse<B>,
                Error = actix_web::Error,
                InitError = (),
            > + 'static,
        B: MessageBody + 'static,
    {
        let system = System::new();
        let service = system.block_on(test::init_service(app));
        let call = move |request| {
            system.block_on(async {
                let response = service.call(request).await.expect("the app answers every fixture request");
                let status = response.status().as_u16();
                let Ok(body) = actix_web::body::to_bytes(response.into_body()).await else {
                    panic!("an in-memory body could not be read");
                };
                Reply { status, body }
            })
        };
        Self { call: Box::new(call) }
    }

    /// Sends `request` once and panics unless it is answered `status`: a fixture whose request
    /// went somewhere else (a 401, a 503 from the absent database) must fail loudly rather than
    /// measure the wrong path. The call also warms the app up.
    pub fn expect(&self, request: actix_http::Request, status: u16) -> &Self {
        let reply = self.call(request);
        assert_eq!(reply.status, status, "unexpected answer: {}", String::from_utf8_lossy(&reply.body));
        self
    }

    /// One request through the app's service, without a socket: status and collected body.
    pub fn call(&self, request: actix_http::Request) -> Reply {
        (self.call)(request)
    }
}

/// `GET uri`.
pub fn get_request(uri: &str) -> actix_http::Request {
    TestRequest::get().uri(uri).to_request()
}

/// `POST uri` with a JSON body, and a bearer token when given.
pub fn post_json_request(uri: &str, body: &'static str, bearer: Option<&str>) -> actix_http::Request {
    json_request(uri, body, bearer).to_request()
}

fn json_request(uri: &str, body: &'static str, bearer: Option<&str>) -> TestRequest {
    let mut request = TestRequest::post()
        .uri(uri)
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::CONTENT_LENGTH, body.len()))
        .set_payload(body);
    if let Some(bearer) = bearer {
        request = request.insert_header((header::AUTHORIZATION, bearer));
    }
    request
}

/// A create-task request and its unread payload, as the JSON extractor receives them.
pub fn json_body_parts(body: &'static str) -> (HttpRequest, Payload) {
    json_request("/api/v1/tasks", body, None).to_http_parts()
}

/// `GET uri` as a handler sees it, with the service in its app data (the bearer-token extractor
/// finds the keys there) and a bearer token when given.
pub fn http_request(uri: &str, service: &Service, bearer: Option<&str>) -> HttpRequest {
    let mut request = TestRequest::get().uri(uri).app_data(web::Data::new(service.clone()));
    if let Some(bearer) = bearer {
        request = request.insert_header((header::AUTHORIZATION, bearer));
    }
    request.to_http_request()
}

/// The server's JSON body extractor on a create-task request.
pub fn extract_json_body(parts: &mut (HttpRequest, Payload)) -> NewTask {
    let ApiJson(task) =
        complete(ApiJson::<NewTask>::from_request(&parts.0, &mut parts.1)).expect("the fixture body is accepted");
    task
}

/// The server's list-query extractor.
pub fn extract_list_query(request: &HttpRequest) -> ListQuery {
    let ListParams(query) =
        complete(ListParams::from_request(request, &mut Payload::None)).expect("the fixture query is valid");
    query
}

/// The server's bearer-token extractor (JWT verification included).
pub fn extract_auth(request: &HttpRequest) -> AuthUser {
    let Auth(user) = complete(Auth::from_request(request, &mut Payload::None)).expect("the fixture token is valid");
    user
}

/// A task list through Actix's JSON responder, as the list handler answers.
pub fn tasks_response(tasks: &[Task]) -> HttpResponse {
    HttpResponse::Ok().json(tasks)
}

/// An error through the server's one error mapping, the way Actix answers a handler's `Err`.
pub fn error_response(err: ApiError) -> HttpResponse {
    HttpResponse::from_error(Failure(err))
}
