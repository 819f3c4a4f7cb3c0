//! The reference API on Actix-web. Routes (built from the shared route table), extractors, the
//! middleware envelope and the error mapping; every decision about *what* to answer lives in
//! `taskbench-data`.

mod envelope;
mod extract;
mod handlers;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, HttpServer, web};
use taskbench_data::Service;
use taskbench_data::http::{self as shared, Method, Operation, ROUTES};

pub use extract::{ApiJson, Auth, Failure, ListParams, TaskId};

/// The whole application, ready for `HttpServer` or `actix_web::test`. Its routes are the shared
/// table's, one resource per path.
pub fn app(
    service: Service,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    ROUTES
        .iter()
        .fold(App::new().app_data(web::Data::new(service)), |app, route| app.service(resource(route)))
        .default_service(web::to(handlers::not_found))
        .wrap(actix_web::middleware::from_fn(envelope::envelope))
}

/// A resource answering `route`'s methods, with the shared 405 for the others (Actix routes
/// methods per resource, so the 405 is each resource's default service).
fn resource(route: &'static shared::Route) -> actix_web::Resource {
    let path = route.path;
    let mut resource =
        web::resource(path).default_service(web::to(move || async move { Failure(shared::method_not_allowed(path)) }));
    for &(method, operation) in route.operations {
        // A GET route also answers HEAD, as the HTTP spec (and Axum) do.
        let guards: &[fn() -> actix_web::Route] = match method {
            Method::Get => &[web::get, web::head],
            Method::Post => &[web::post],
            Method::Patch => &[web::patch],
            Method::Delete => &[web::delete],
        };
        for guard in guards {
            resource = resource.route(handler(guard(), operation));
        }
    }
    resource
}

/// The handler of each operation, on a route already guarded by its method. Exhaustive on
/// purpose: an operation added to the table without a handler here does not compile.
fn handler(route: actix_web::Route, operation: Operation) -> actix_web::Route {
    use handlers::*;
    match operation {
        Operation::Health => route.to(health),
        Operation::Metrics => route.to(metrics),
        Operation::OpenApi => route.to(openapi),
        Operation::Plaintext => route.to(plaintext),
        Operation::Json => route.to(json),
        Operation::Register => route.to(register),
        Operation::Login => route.to(login),
        Operation::Me => route.to(me),
        Operation::ListTasks => route.to(list_tasks),
        Operation::CreateTask => route.to(create_task),
        Operation::GetTask => route.to(get_task),
        Operation::UpdateTask => route.to(update_task),
        Operation::DeleteTask => route.to(delete_task),
    }
}

/// An HTTP server for `service` on `listener` with `workers` threads. Signals are not handled
/// here (Actix treats SIGINT as a forced stop); callers stop it gracefully via its handle.
pub fn server(listener: std::net::TcpListener, service: Service, workers: usize) -> std::io::Result<Server> {
    let grace_secs = service.request_timeout().as_secs_f64().ceil() as u64;
    let header_timeout = service.header_timeout();
    Ok(HttpServer::new(move || app(service.clone()))
        .workers(workers)
        // The slowloris bound, as on Axum: a request head must arrive within it, and an idle
        // keep-alive connection is closed after it.
        .client_request_timeout(header_timeout)
        .keep_alive(header_timeout)
        .disable_signals()
        // In-flight requests get at most the request timeout to finish once a stop is asked
        // (Axum's `serve` has the same bound).
        .shutdown_timeout(grace_secs)
        .listen(listener)?
        .run())
}
