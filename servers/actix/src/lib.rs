//! The reference API on Actix-web. Routes, extractors, the middleware envelope and the error
//! mapping; every decision about *what* to answer lives in `taskbench-data`.

mod envelope;
mod extract;
mod handlers;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, HttpServer, web};
use taskbench_data::Service;
use taskbench_data::http as shared;

pub use extract::{ApiJson, Auth, Failure, ListParams, TaskId};

/// A resource answering `route` (as written in the shared route table), with the shared 405
/// for methods it does not serve.
fn resource(route: &'static str) -> actix_web::Resource {
    web::resource(route).default_service(web::to(move || async move { Failure(shared::method_not_allowed(route)) }))
}

/// A GET route that also answers HEAD, as the HTTP spec (and Axum) do.
macro_rules! get_and_head {
    ($res:expr, $handler:path) => {
        $res.route(web::get().to($handler)).route(web::head().to($handler))
    };
}

/// The whole application, ready for `HttpServer` or `actix_web::test`.
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
    use handlers::*;
    App::new()
        .app_data(web::Data::new(service))
        .service(get_and_head!(resource("/health"), health))
        .service(get_and_head!(resource("/metrics"), metrics))
        .service(get_and_head!(resource("/openapi.json"), openapi))
        .service(get_and_head!(resource("/bench/plaintext"), plaintext))
        .service(get_and_head!(resource("/bench/json"), json))
        .service(resource("/api/v1/auth/register").route(web::post().to(register)))
        .service(resource("/api/v1/auth/login").route(web::post().to(login)))
        .service(get_and_head!(resource("/api/v1/auth/me"), me))
        .service(get_and_head!(resource("/api/v1/tasks"), list_tasks).route(web::post().to(create_task)))
        .service(
            get_and_head!(resource("/api/v1/tasks/{id}"), get_task)
                .route(web::patch().to(update_task))
                .route(web::delete().to(delete_task)),
        )
        .default_service(web::to(not_found))
        .wrap(actix_web::middleware::from_fn(envelope::envelope))
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
